//! `authdeck-bench kill9`: how many grants `kill -9` loses. A FlowAccount emulator with
//! reuse detection on, N connections made through `CTL`'s own authorization round trip,
//! then ROUNDS runs of `CTL refresh --all`, each killed with SIGKILL at a random instant
//! of its run; a last, unkilled `refresh --all` adopts what can be adopted. A lost
//! grant is a connection that ends needing re-authorization (its refresh token was
//! rotated by the provider and never kept). For a `CTL` with the answer journal, the
//! time from each provider answer to its journal fsync (`window_us`) is summarised too.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use authdeck_emulator::{EmulatorConfig, FaBusiness};

pub struct Options {
    pub ctl: std::path::PathBuf,
    pub connections: usize,
    pub rounds: usize,
    pub latency_ms: u64,
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
    let service = format!("authdeck-kill9-{}", std::process::id());
    let ctl = |args: &[&str], stdin: Option<&str>| -> Result<std::process::Output, String> {
        let mut cmd = command(&o.ctl, &dir, &service);
        cmd.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| e.to_string())?;
        if let Some(text) = stdin {
            use std::io::Write;
            let _ = child.stdin.take().unwrap().write_all(text.as_bytes());
        }
        drop(child.stdin.take());
        child.wait_with_output().map_err(|e| e.to_string())
    };
    let fa = &config.flowaccount.clients[0];
    let (authorize, token) = (
        emulator.flowaccount_authorize_url(),
        emulator.flowaccount_token_url(),
    );
    let out = ctl(
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
    check(&out, "client add")?;
    for i in 0..o.connections {
        let out = ctl(
            &["connect", "flowaccount", "--client", "fa", "--no-browser"],
            None,
        )?;
        check(&out, "connect")?;
        let url = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let redirect =
            authdeck_emulator::approve(&url, "demo@example.com", "demo", &format!("FA-K{i:05}"))
                .await
                .map_err(|e| format!("approve: {e}"))?;
        check(&ctl(&["callback", &redirect], None)?, "callback")?;
    }
    control.set_latency(Duration::from_millis(o.latency_ms));
    // How long one unkilled run takes: the kills fall uniformly inside it.
    let started = Instant::now();
    check(&ctl(&["refresh", "--all"], None)?, "refresh --all")?;
    let span = started.elapsed();
    let before = control.stats();
    let mut seed = (std::process::id() as u64) << 32 ^ 0x9e37_79b9_7f4a_7c15;
    let mut windows: Vec<u64> = Vec::new();
    let mut killed = 0;
    for _ in 0..o.rounds {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let at = Duration::from_micros(seed % (span.as_micros() as u64).max(1));
        let stderr_path = dir.join("stderr.log");
        let stderr = std::fs::File::create(&stderr_path).map_err(|e| e.to_string())?;
        let mut child = command(&o.ctl, &dir, &service)
            .args(["refresh", "--all"])
            .env("AUTHDECK_LOG", "authdeck_core::journal=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| e.to_string())?;
        std::thread::sleep(at);
        if child.try_wait().map_err(|e| e.to_string())?.is_none() {
            let _ = child.kill(); // SIGKILL
            killed += 1;
        }
        let _ = child.wait();
        windows.extend(window_us(&stderr_path));
    }
    // The recovery run: adopts whatever a killed run left adoptable.
    let out = ctl(&["--json", "refresh", "--all"], None)?;
    let after = control.stats();
    let list = ctl(&["--json", "list"], None)?;
    let list: serde_json::Value =
        serde_json::from_slice(&list.stdout).map_err(|e| format!("list: {e}"))?;
    let dead = list
        .as_array()
        .map(|a| a.iter().filter(|c| c["status"] != "active").count())
        .unwrap_or(0);
    let _ = out;
    windows.sort_unstable();
    let pct = |p: f64| {
        windows
            .get(((windows.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(0)
    };
    println!(
        "kill9 ctl={} connections={} rounds={} killed={} span_ms={} refreshes={} invalid_grant={} reuse_detected={} families_revoked={} grants_lost={} windows={} window_p50_us={} window_p95_us={} window_max_us={}",
        o.ctl.display(),
        o.connections,
        o.rounds,
        killed,
        span.as_millis(),
        after.refresh_ok - before.refresh_ok,
        after.invalid_grant - before.invalid_grant,
        after.reuse_detected - before.reuse_detected,
        after.families_revoked - before.families_revoked,
        dead,
        windows.len(),
        pct(0.5),
        pct(0.95),
        windows.last().copied().unwrap_or(0),
    );
    let _ = std::fs::remove_dir_all(&dir);
    emulator.shutdown().await;
    Ok(())
}

fn command(ctl: &Path, dir: &Path, service: &str) -> Command {
    let mut cmd = Command::new(ctl);
    cmd.env("AUTHDECK_DATA_DIR", dir)
        .env("AUTHDECK_KEYRING_SERVICE", service)
        .env_remove("AUTHDECK_LOG")
        .env_remove("DISPLAY")
        .env("BROWSER", "true");
    cmd
}

fn check(out: &std::process::Output, what: &str) -> Result<(), String> {
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "{what} failed ({:?}): {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    ))
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
