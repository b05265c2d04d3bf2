//! `authdeck-bench team-refresh`: issue 13 §7's `refresh --all` of N team connections
//! shared by several agents, and the team-mode agent's memory with them.
//!
//! A throwaway PostgreSQL cluster (fsync on), the in-process emulator whose demo
//! FlowAccount user owns N businesses, and `--agents` data directories in one team (each
//! its own keyring service; the team key in a 0600 file). N connections are made in the
//! first one through the real authorization round trip (on the team store, as the CLI
//! opens it); then the emulator answers with `--latency-ms`, and:
//!
//! - `refresh --all --concurrency C` of every data directory at once (real `authdeckctl`
//!   processes): the wall time from their start to the last exit, against the limit
//!   N × latency / (agents × C): the ratio. Then the same from one process alone
//!   (limit N × latency / C) for comparison. The connections' tokens are fresh after the
//!   first run; `refresh --all` refreshes them anyway (it asks for new tokens).
//! - `authdeckctl agent` on one data directory (it leads the team's scheduler: nothing
//!   else runs): VmRSS, VmHWM and PSS once it has made two passes over the N connections.
//!
//! One line per figure on stdout (`key=value` words), like `team`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use authdeck_core::manager::ManagerOptions;
use authdeck_core::store::paths::Paths;
use authdeck_emulator::{EmulatorConfig, FaBusiness};
use authdeck_team::testing::{PgCluster, PgOptions};
use serde_json::Value;

use super::{pss_kb, seed_flowaccount, support_code};

pub struct Options {
    pub ctl: PathBuf,
    pub connections: usize,
    pub agents: usize,
    pub latency_ms: u64,
    pub concurrency: usize,
    pub seed_concurrency: usize,
}

fn ctl(opts: &Options, dir: &Path) -> Command {
    let mut c = Command::new(&opts.ctl);
    c.arg("--data-dir").arg(dir).env_remove("AUTHDECK_LOG");
    c
}

fn output(mut c: Command, stdin: Option<&str>) -> Result<String, String> {
    use std::io::Write;
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().map_err(|e| format!("{c:?}: {e}"))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).map_err(|e| e.to_string())?;
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "{c:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub async fn run(opts: Options) -> Result<(), String> {
    let n = opts.connections;
    let cluster = PgCluster::start_with(PgOptions {
        fsync: true,
        ..PgOptions::default()
    });
    let address = cluster.tcp_config("postgres");
    let mut config = EmulatorConfig::demo();
    config.flowaccount.users[0].businesses = (0..n)
        .map(|i| FaBusiness {
            support_code: support_code(i),
            name: format!("Bench business {i}"),
        })
        .collect();
    let emulator = authdeck_emulator::start(config, ([127, 0, 0, 1], 0).into())
        .await
        .map_err(|e| format!("emulator: {e}"))?;

    // The data directories and the team (the key in a 0600 file in each).
    let base = std::env::temp_dir().join(format!(
        "authdeck-bench-team-refresh-{}",
        std::process::id()
    ));
    let dirs: Vec<PathBuf> = (0..opts.agents.max(1))
        .map(|i| base.join(format!("agent-{i}")))
        .collect();
    for d in &dirs {
        std::fs::create_dir_all(d).map_err(|e| e.to_string())?;
    }
    let key_arg = |d: &Path| d.join("team-key").to_string_lossy().into_owned();
    let mut init = ctl(&opts, &dirs[0]);
    init.args([
        "team",
        "init",
        "--database",
        &address,
        "--name",
        "Bench",
        "--machine",
        "agent-0",
        "--key-file",
    ])
    .arg(key_arg(&dirs[0]));
    let join = output(init, None)?;
    for (i, d) in dirs.iter().enumerate().skip(1) {
        let mut c = ctl(&opts, d);
        c.args([
            "team",
            "join",
            "--database",
            &address,
            "--machine",
            &format!("agent-{i}"),
            "--key-file",
        ])
        .arg(key_arg(d));
        output(c, Some(&format!("{}\n", join.trim())))?;
    }

    // N connections on the team store, through the real authorization round trip.
    let seeding = Instant::now();
    {
        let paths = Paths::resolve(Some(dirs[0].clone())).map_err(|e| e.message)?;
        let (manager, _) = authdeck_team::open::open_manager(
            paths,
            ManagerOptions::default(),
            authdeck_team::Via::Cli,
        )
        .await
        .map_err(|e| e.message)?;
        seed_flowaccount(&manager, &emulator, n, opts.seed_concurrency).await?;
        let made = manager.list().await.map_err(|e| e.message)?.len();
        if made != n {
            return Err(format!("{made} team connections stored, {n} wanted"));
        }
    }
    println!(
        "team_seed connections={n} seconds={:.1}",
        seeding.elapsed().as_secs_f64()
    );
    emulator
        .control()
        .set_latency(Duration::from_millis(opts.latency_ms));

    let latency = opts.latency_ms as f64 / 1000.0;
    for (label, procs) in [("team_refresh", dirs.len()), ("team_refresh_alone", 1)] {
        let before = emulator.control().stats();
        let started = Instant::now();
        let children: Vec<_> = dirs[..procs]
            .iter()
            .map(|d| {
                let mut c = ctl(&opts, d);
                c.args(["--json", "refresh", "--all", "--concurrency"])
                    .arg(opts.concurrency.to_string())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped());
                c.spawn().map_err(|e| e.to_string())
            })
            .collect::<Result<_, _>>()?;
        let mut ok = 0usize;
        let mut failed = std::collections::BTreeMap::<String, usize>::new();
        let mut first_error: Option<Value> = None;
        let mut slowest = 0f64;
        for child in children {
            let out = tokio::task::spawn_blocking(move || child.wait_with_output())
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
            slowest = slowest.max(started.elapsed().as_secs_f64());
            let rows: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
            for row in rows.as_array().into_iter().flatten() {
                if row["ok"] == true {
                    ok += 1;
                } else {
                    let code = row["error"]["code"].as_str().unwrap_or("other").to_owned();
                    first_error.get_or_insert_with(|| row["error"].clone());
                    *failed.entry(code).or_default() += 1;
                }
            }
        }
        let after = emulator.control().stats();
        let limit = n as f64 * latency / (procs * opts.concurrency) as f64;
        let failed: Vec<String> = failed.iter().map(|(c, k)| format!("{c}:{k}")).collect();
        let failed = if failed.is_empty() {
            "none".to_owned()
        } else {
            failed.join(",")
        };
        println!(
            "{label} connections={n} processes={procs} concurrency={} latency_ms={} wall_s={slowest:.2} limit_s={limit:.2} ratio={:.2} provider_refreshes={} rows_ok={ok} rows_failed={failed} invalid_grant={} reuse={}",
            opts.concurrency,
            opts.latency_ms,
            slowest / limit,
            after.refresh_ok - before.refresh_ok,
            after.invalid_grant - before.invalid_grant,
            after.reuse_detected - before.reuse_detected,
        );
        if let Some(e) = first_error {
            // The core's redacted error (code, message, detail): no secret.
            println!("{label}_first_error {e}");
        }
    }

    // The team-mode agent's memory with N connections.
    let mut agent = ctl(&opts, &dirs[0])
        .arg("agent")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let pid = agent.id();
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut ticks = Vec::new();
    let memory = loop {
        let status = output(
            {
                let mut c = ctl(&opts, &dirs[0]);
                c.args(["agent", "status", "--json"]);
                c
            },
            None,
        )?;
        let s: Value = serde_json::from_str(&status).unwrap_or(Value::Null);
        if let Some(t) = s["last_tick"].as_str() {
            if ticks.last().map(String::as_str) != Some(t) {
                ticks.push(t.to_owned());
            }
        }
        if ticks.len() >= 2 {
            break Ok((
                s["role"].as_str().unwrap_or("").to_owned(),
                proc_status(pid),
                pss_kb(pid),
            ));
        }
        if Instant::now() > deadline {
            break Err("the agent made no two passes in 300 s".to_owned());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = tokio::task::spawn_blocking(move || agent.wait()).await;
    let (role, (rss, hwm), pss) = memory?;
    println!(
        "team_agent_memory connections={n} role={role} rss_kib={rss} hwm_kib={hwm} pss_kib={pss}"
    );
    let _ = std::fs::remove_dir_all(&base);
    emulator.shutdown().await;
    Ok(())
}

/// VmRSS and VmHWM of `pid`, kB.
fn proc_status(pid: u32) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}
