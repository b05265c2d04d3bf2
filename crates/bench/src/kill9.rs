//! `authdeck-bench kill9`: how many grants `kill -9` loses. A FlowAccount emulator with
//! reuse detection on, N connections made through `CTL`'s own authorization round trip,
//! then ROUNDS runs of `CTL refresh --all`, each killed with SIGKILL at a random instant
//! between 0 and --window-ms after the provider answered every connection of the run
//! (the emulator counts its rotations; a kill while a request still waits at the
//! provider would lose that rotation whatever the client does, so none is made then).
//! After each run, a connection that needs re-authorization is a grant lost: it is
//! counted and connected again. For a `CTL` with the answer journal, the time from
//! each provider answer to its journal fsync (`window_us`) is summarised too.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use authdeck_emulator::{EmulatorConfig, FaBusiness};

pub struct Options {
    pub ctl: std::path::PathBuf,
    pub connections: usize,
    pub rounds: usize,
    pub latency_ms: u64,
    pub window_ms: u64,
}

struct Ctl<'a> {
    path: &'a Path,
    dir: std::path::PathBuf,
    service: String,
}

impl Ctl<'_> {
    fn command(&self) -> Command {
        let mut cmd = Command::new(self.path);
        cmd.env("AUTHDECK_DATA_DIR", &self.dir)
            .env("AUTHDECK_KEYRING_SERVICE", &self.service)
            .env_remove("AUTHDECK_LOG")
            .env_remove("DISPLAY")
            .env("BROWSER", "true");
        cmd
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> Result<Output, String> {
        let mut cmd = self.command();
        cmd.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| e.to_string())?;
        if let (Some(text), Some(mut input)) = (stdin, child.stdin.take()) {
            use std::io::Write;
            let _ = input.write_all(text.as_bytes());
        }
        drop(child.stdin.take());
        child.wait_with_output().map_err(|e| e.to_string())
    }

    fn ok(&self, args: &[&str], stdin: Option<&str>) -> Result<Output, String> {
        let out = self.run(args, stdin)?;
        if out.status.success() {
            return Ok(out);
        }
        Err(format!(
            "`{}` failed ({:?}): {}",
            args.join(" "),
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        ))
    }

    /// The authorization round trip, as a user would make it (a reconnect if it exists).
    async fn connect(&self, business: &str) -> Result<(), String> {
        let out = self.ok(
            &["connect", "flowaccount", "--client", "fa", "--no-browser"],
            None,
        )?;
        let url = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let redirect = authdeck_emulator::approve(&url, "demo@example.com", "demo", business)
            .await
            .map_err(|e| format!("approve: {e}"))?;
        self.ok(&["callback", &redirect], None).map(|_| ())
    }

    /// The labels (supportCodes) of the connections that need re-authorization.
    fn dead(&self) -> Result<Vec<String>, String> {
        let list = self.ok(&["--json", "list"], None)?;
        let list: serde_json::Value =
            serde_json::from_slice(&list.stdout).map_err(|e| format!("list: {e}"))?;
        Ok(list
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| c["status"] != "active")
            .filter_map(|c| c["label"].as_str().map(str::to_owned))
            .collect())
    }
}

pub async fn run(o: Options) -> Result<(), String> {
    let mut config = EmulatorConfig::demo();
    config.flowaccount.users[0].businesses = (0..o.connections)
        .map(|i| FaBusiness {
            support_code: format!("FA-K{i:05}"),
            name: format!("Kill business {i}"),
        })
        .collect();
    let emulator = authdeck_emulator::start(config.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .map_err(|e| e.to_string())?;
    let control = emulator.control();
    let dir = std::env::temp_dir().join(format!("authdeck-kill9-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let ctl = Ctl {
        path: &o.ctl,
        dir: dir.clone(),
        service: format!("authdeck-kill9-{}", std::process::id()),
    };
    let fa = &config.flowaccount.clients[0];
    let (authorize, token) = (
        emulator.flowaccount_authorize_url(),
        emulator.flowaccount_token_url(),
    );
    ctl.ok(
        &[
            "client",
            "add",
            "flowaccount",
            "--name",
            "fa",
            "--client-id",
            &fa.client_id,
            "--client-secret-stdin",
            "--authorize-url",
            &authorize,
            "--token-url",
            &token,
        ],
        Some(&format!("{}\n", fa.client_secret)),
    )?;
    for i in 0..o.connections {
        ctl.connect(&format!("FA-K{i:05}")).await?;
    }
    control.set_latency(Duration::from_millis(o.latency_ms));
    ctl.ok(&["refresh", "--all"], None)?;
    let before = control.stats();
    let mut seed = ((std::process::id() as u64) << 32) ^ 0x9e37_79b9_7f4a_7c15;
    let mut windows: Vec<u64> = Vec::new();
    let (mut killed, mut lost) = (0, 0);
    let stderr_path = dir.join("stderr.log");
    for _ in 0..o.rounds {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let at = Duration::from_micros(seed % (o.window_ms * 1000).max(1));
        let answered_before = control.stats().refresh_ok;
        let stderr = std::fs::File::create(&stderr_path).map_err(|e| e.to_string())?;
        let mut child = ctl
            .command()
            .args(["refresh", "--all"])
            .env("AUTHDECK_LOG", "authdeck_core::journal=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| e.to_string())?;
        // Every connection of the run answered (or the run ended): then the kill.
        let deadline = Instant::now() + Duration::from_secs(10);
        while control.stats().refresh_ok < answered_before + o.connections as u64
            && child.try_wait().map_err(|e| e.to_string())?.is_none()
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_micros(200));
        }
        std::thread::sleep(at);
        if child.try_wait().map_err(|e| e.to_string())?.is_none() {
            let _ = child.kill(); // SIGKILL
            killed += 1;
        }
        let _ = child.wait();
        windows.extend(window_us(&stderr_path));
        // A grant lost shows once a later run tried it: count it, connect again.
        for business in ctl.dead()? {
            lost += 1;
            ctl.connect(&business).await?;
        }
    }
    // The last run adopts what the last kill left; then the last losses show.
    ctl.run(&["refresh", "--all"], None)?;
    ctl.run(&["refresh", "--all"], None)?;
    lost += ctl.dead()?.len();
    let after = control.stats();
    windows.sort_unstable();
    let pct = |p: f64| {
        windows
            .get(((windows.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(0)
    };
    println!(
        "kill9 ctl={} connections={} rounds={} kill_within_ms={} killed={} refreshes={} invalid_grant={} reuse_detected={} grants_lost={} windows={} window_p50_us={} window_p95_us={} window_max_us={}",
        o.ctl.display(),
        o.connections,
        o.rounds,
        o.window_ms,
        killed,
        after.refresh_ok - before.refresh_ok,
        after.invalid_grant - before.invalid_grant,
        after.reuse_detected - before.reuse_detected,
        lost,
        windows.len(),
        pct(0.5),
        pct(0.95),
        windows.last().copied().unwrap_or(0),
    );
    let _ = std::fs::remove_dir_all(&dir);
    emulator.shutdown().await;
    Ok(())
}

fn window_us(path: &Path) -> Vec<u64> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            l.split("window_us=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect()
}
