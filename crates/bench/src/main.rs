//! `authdeck-bench`: the helpers `scripts/bench.sh` (`make bench`) drives. Not shipped.
//!
//! - `serve`: an in-process provider emulator whose demo FlowAccount user owns N
//!   businesses, plus N FlowAccount connections made through the real authorization round
//!   trip (authdeck-core's `Manager`, the real keyring, the given data directory), then
//!   the emulator keeps serving (with the requested latency) until SIGTERM / Ctrl-C.
//! - `runs`: run a command N times, report p50 / p95 of the process wall time.
//! - `once`: run a command once, report its wall time (stdout kept in a file).
//! - `tree`: PSS and CPU ticks summed over a process and all its descendants.
//! - `stats`: the emulator's `/admin/stats` counters that matter for the refresh run.
//! - `criterion`: the mean of a criterion benchmark, in ns.
//! - `team` / `team-follow`: the team store's figures on a throwaway PostgreSQL cluster
//!   with fsync on (change propagation to another desktop, commit latency, database
//!   size per 1,000 connections; see team.rs).
//! - `team-refresh`: `refresh --all` of N team connections by several processes at
//!   once, and the team-mode agent's memory with them (team_refresh.rs).

mod kill9;
mod team;
mod team_refresh;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use authdeck_core::manager::{Manager, ManagerOptions, NewClient};
use authdeck_core::model::Provider;
use authdeck_core::secret::{ClientSecret, KeyringValue};
use authdeck_core::store::db::Db;
use authdeck_core::store::keyring::KeyringStore;
use authdeck_core::store::paths::Paths;
use authdeck_emulator::{EmulatorConfig, FaBusiness};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "authdeck-bench", about = "Helpers of `make bench`.")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Emulator + N FlowAccount connections in --data-dir; serves until SIGTERM.
    Serve {
        #[arg(long)]
        data_dir: PathBuf,
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Latency injected once the connections exist (seeding runs without it).
        #[arg(long, default_value_t = 20)]
        latency_ms: u64,
        #[arg(long, default_value_t = 1000)]
        connections: usize,
        /// Authorization round trips in flight while seeding.
        #[arg(long, default_value_t = 16)]
        seed_concurrency: usize,
    },
    /// Run CMD --count times (after --warmup runs); print p50/p95 wall time.
    Runs {
        #[arg(long, default_value_t = 200)]
        count: usize,
        #[arg(long, default_value_t = 5)]
        warmup: usize,
        #[arg(trailing_var_arg = true, required = true)]
        cmd: Vec<String>,
    },
    /// Run CMD once; print its wall time and exit code; stdout goes to --stdout.
    Once {
        #[arg(long)]
        stdout: PathBuf,
        #[arg(trailing_var_arg = true, required = true)]
        cmd: Vec<String>,
    },
    /// PSS (kB) and utime+stime (clock ticks) of PID and all its descendants.
    Tree { pid: u32 },
    /// The emulator's refresh counters (GET BASE/admin/stats, with the admin token from
    /// $AUTHDECK_EMULATOR_ADMIN_TOKEN).
    Stats { base_url: String },
    /// Time each keyring operation against the real Secret Service, with --items entries
    /// present (what one refresh costs in keyring round trips).
    KeyringProbe {
        #[arg(long, default_value_t = 1000)]
        items: usize,
        #[arg(long, default_value_t = 50)]
        rounds: usize,
    },
    /// Mean time of a criterion benchmark (target/criterion/<id>/new/estimates.json), ns.
    Criterion { dir: PathBuf },
    /// kill -9 `refresh --all` at random instants; count the grants lost (see kill9.rs).
    Kill9 {
        /// The authdeckctl to measure.
        #[arg(long)]
        ctl: PathBuf,
        #[arg(long, default_value_t = 8)]
        connections: usize,
        #[arg(long, default_value_t = 70)]
        rounds: usize,
        #[arg(long, default_value_t = 20)]
        latency_ms: u64,
        /// Each kill falls within this long after the run's last provider answer.
        #[arg(long, default_value_t = 150)]
        window_ms: u64,
    },
    /// The team store's figures on a throwaway PostgreSQL cluster, fsync on (team.rs).
    Team {
        /// Commits of the propagation figure.
        #[arg(long, default_value_t = 1000)]
        commits: usize,
        /// Their steady rate, per second.
        #[arg(long, default_value_t = 50.0)]
        rate_hz: f64,
        /// Connections the propagation commits go round.
        #[arg(long, default_value_t = 100)]
        connections: usize,
        /// Concurrent writers of the commit figure (also measured alone).
        #[arg(long, default_value_t = 3)]
        writers: usize,
        #[arg(long, default_value_t = 300)]
        writer_commits: usize,
        /// Connections of the database-size figure.
        #[arg(long, default_value_t = 10_000)]
        size_connections: usize,
        /// History rows per connection of the database-size figure.
        #[arg(long, default_value_t = 10)]
        history: usize,
        /// The server in a network namespace, reached over a veth with TLS verify-full
        /// (root, iproute2), instead of TCP to 127.0.0.1.
        #[arg(long)]
        netns: bool,
    },
    /// `refresh --all` of N team connections by --agents processes at once (and by one
    /// alone), and the team-mode agent's memory with them (team_refresh.rs).
    TeamRefresh {
        /// The authdeckctl to measure.
        #[arg(long)]
        ctl: PathBuf,
        #[arg(long, default_value_t = 10_000)]
        connections: usize,
        #[arg(long, default_value_t = 3)]
        agents: usize,
        #[arg(long, default_value_t = 20)]
        latency_ms: u64,
        /// Each process's `refresh --all --concurrency`.
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Authorization round trips in flight while seeding.
        #[arg(long, default_value_t = 16)]
        seed_concurrency: usize,
    },
    /// The second desktop of `team`: join key on stdin, follow the feed, print
    /// `v VERSION MONO_NS` per change.
    TeamFollow {
        #[arg(long)]
        address: String,
        #[arg(long, default_value_t = 0)]
        from: i64,
        #[arg(long)]
        count: usize,
        #[arg(long, default_value_t = 120)]
        timeout_s: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Serve {
            data_dir,
            port,
            latency_ms,
            connections,
            seed_concurrency,
        } => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
            .and_then(|rt| {
                rt.block_on(serve(
                    data_dir,
                    port,
                    latency_ms,
                    connections,
                    seed_concurrency,
                ))
            }),
        Cmd::Runs { count, warmup, cmd } => runs(count, warmup, &cmd),
        Cmd::Once { stdout, cmd } => once(&stdout, &cmd),
        Cmd::Tree { pid } => tree(pid),
        Cmd::Stats { base_url } => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
            .and_then(|rt| rt.block_on(stats(&base_url))),
        Cmd::Criterion { dir } => criterion(&dir),
        Cmd::KeyringProbe { items, rounds } => keyring_probe(items, rounds),
        Cmd::Kill9 {
            ctl,
            connections,
            rounds,
            latency_ms,
            window_ms,
        } => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
            .and_then(|rt| {
                rt.block_on(kill9::run(kill9::Options {
                    ctl,
                    connections,
                    rounds,
                    latency_ms,
                    window_ms,
                }))
            }),
        Cmd::Team {
            commits,
            rate_hz,
            connections,
            writers,
            writer_commits,
            size_connections,
            history,
            netns,
        } => team::run(team::Options {
            commits,
            rate_hz,
            connections,
            writers,
            writer_commits,
            size_connections,
            history,
            netns,
        }),
        Cmd::TeamRefresh {
            ctl,
            connections,
            agents,
            latency_ms,
            concurrency,
            seed_concurrency,
        } => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
            .and_then(|rt| {
                rt.block_on(team_refresh::run(team_refresh::Options {
                    ctl,
                    connections,
                    agents,
                    latency_ms,
                    concurrency,
                    seed_concurrency,
                }))
            }),
        Cmd::TeamFollow {
            address,
            from,
            count,
            timeout_s,
        } => team::follow(&address, from, count, timeout_s),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("authdeck-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

// ---- serve ----------------------------------------------------------------------------

const FA_CLIENT: &str = "bench-flowaccount";

async fn serve(
    data_dir: PathBuf,
    port: u16,
    latency_ms: u64,
    connections: usize,
    seed_concurrency: usize,
) -> Result<(), String> {
    let mut config = EmulatorConfig::demo();
    config.flowaccount.users[0].businesses = (0..connections)
        .map(|i| FaBusiness {
            support_code: support_code(i),
            name: format!("Bench business {i}"),
        })
        .collect();
    config.admin_token = admin_token_from_env()?;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let emulator = authdeck_emulator::start(config, addr)
        .await
        .map_err(|e| format!("emulator on {addr}: {e}"))?;

    let paths = Paths::resolve(Some(data_dir)).map_err(|e| e.message)?;
    paths.ensure().map_err(|e| e.message)?;
    let db = Db::open(&paths.database()).map_err(|e| e.message)?;
    let secrets = Arc::new(KeyringStore::new(paths.keyring_service.clone()));
    let manager = Manager::new(
        db,
        secrets,
        ManagerOptions {
            lock_dir: Some(paths.data_dir.join("locks")),
            ..ManagerOptions::default()
        },
    )
    .map_err(|e| e.message)?;

    let started = Instant::now();
    if connections > 0 {
        seed_flowaccount(&manager, &emulator, connections, seed_concurrency).await?;
    }
    let made = manager.list().await.map_err(|e| e.message)?.len();
    if made != connections {
        return Err(format!("{made} connections stored, {connections} wanted"));
    }
    emulator
        .control()
        .set_latency(Duration::from_millis(latency_ms));
    println!(
        "seeded connections={made} seconds={:.1}",
        started.elapsed().as_secs_f64()
    );
    println!("ready {}", emulator.base_url());
    use std::io::Write;
    let _ = std::io::stdout().flush();
    drop(manager);

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| e.to_string())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    emulator.shutdown().await;
    Ok(())
}

/// The bench's FlowAccount client on `emulator`, and `n` businesses connected through
/// the real authorization round trip, `concurrency` at a time.
async fn seed_flowaccount(
    manager: &Manager,
    emulator: &authdeck_emulator::RunningEmulator,
    n: usize,
    concurrency: usize,
) -> Result<(), String> {
    let mut client = NewClient::new(FA_CLIENT, Provider::FlowAccount, "demo-flowaccount");
    client.client_secret = Some(ClientSecret::new("demo-flowaccount-secret"));
    client.authorize_url = Some(emulator.flowaccount_authorize_url());
    client.token_url = Some(emulator.flowaccount_token_url());
    manager.add_client(client).await.map_err(|e| e.message)?;
    let permits = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let (manager, permits) = (manager.clone(), permits.clone());
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            connect_one(&manager, &support_code(i)).await
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.map_err(|e| e.to_string())??;
    }
    Ok(())
}

fn support_code(i: usize) -> String {
    format!("FA-B{i:05}")
}

async fn connect_one(manager: &Manager, support_code: &str) -> Result<(), String> {
    let pending = manager
        .begin_flowaccount(FA_CLIENT)
        .await
        .map_err(|e| e.message)?;
    let location = authdeck_emulator::approve(
        &pending.authorize_url,
        "demo@example.com",
        "demo",
        support_code,
    )
    .await?;
    manager
        .complete_callback(&location)
        .await
        .map(|_| ())
        .map_err(|e| format!("{support_code}: {} ({:?})", e.message, e.detail))
}

// ---- timing commands ------------------------------------------------------------------

fn command(cmd: &[String]) -> Command {
    let mut c = Command::new(&cmd[0]);
    c.args(&cmd[1..]).stdin(Stdio::null());
    c
}

fn runs(count: usize, warmup: usize, cmd: &[String]) -> Result<(), String> {
    let mut times = Vec::with_capacity(count);
    let mut failures = 0;
    for i in 0..warmup + count {
        let started = Instant::now();
        let out = command(cmd)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| format!("{}: {e}", cmd[0]))?;
        let took = started.elapsed();
        if !out.status.success() {
            failures += 1;
            if failures == 1 {
                eprintln!(
                    "authdeck-bench: run failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
        }
        if i >= warmup {
            times.push(took.as_secs_f64() * 1000.0);
        }
    }
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| times[((times.len() as f64 * p).ceil() as usize).clamp(1, times.len()) - 1];
    println!(
        "runs={} failures={failures} p50_ms={:.2} p95_ms={:.2} min_ms={:.2} max_ms={:.2}",
        times.len(),
        pct(0.50),
        pct(0.95),
        times[0],
        times[times.len() - 1]
    );
    Ok(())
}

fn once(stdout: &Path, cmd: &[String]) -> Result<(), String> {
    let file = std::fs::File::create(stdout).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let status = command(cmd)
        .stdout(file)
        .status()
        .map_err(|e| format!("{}: {e}", cmd[0]))?;
    println!(
        "wall_ms={:.1} exit={}",
        started.elapsed().as_secs_f64() * 1000.0,
        status.code().unwrap_or(-1)
    );
    Ok(())
}

// ---- /proc ----------------------------------------------------------------------------

/// (ppid, comm, utime + stime) from /proc/PID/stat.
fn stat(pid: u32) -> Option<(u32, String, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text[open + 1..close].to_string();
    let rest: Vec<&str> = text[close + 2..].split_whitespace().collect();
    // Fields after "(comm)": state(3) ppid(4) ... utime(14) stime(15), 1-based in proc(5).
    let ppid = rest.get(1)?.parse().ok()?;
    let utime: u64 = rest.get(11)?.parse().ok()?;
    let stime: u64 = rest.get(12)?.parse().ok()?;
    Some((ppid, comm, utime + stime))
}

fn pss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("Pss:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn tree(root: u32) -> Result<(), String> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir("/proc").map_err(|e| e.to_string())? {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if let Some((ppid, comm, ticks)) = stat(pid) {
            all.push((pid, ppid, comm, ticks));
        }
    }
    if !all.iter().any(|p| p.0 == root) {
        return Err(format!("no process {root}"));
    }
    let mut members = vec![root];
    let mut i = 0;
    while i < members.len() {
        let parent = members[i];
        members.extend(all.iter().filter(|p| p.1 == parent).map(|p| p.0));
        i += 1;
    }
    let (mut pss, mut ticks, mut names) = (0, 0, Vec::new());
    for pid in &members {
        if let Some(p) = all.iter().find(|p| p.0 == *pid) {
            pss += pss_kb(*pid);
            ticks += p.3;
            names.push(p.2.replace(' ', "_"));
        }
    }
    println!(
        "pss_kb={pss} cpu_ticks={ticks} procs={} names={}",
        members.len(),
        names.join(",")
    );
    Ok(())
}

// ---- emulator stats, criterion -------------------------------------------------------

/// The emulator's admin token, shared by `serve` and `stats` through the environment.
const ADMIN_TOKEN_ENV: &str = "AUTHDECK_EMULATOR_ADMIN_TOKEN";

fn admin_token_from_env() -> Result<Option<authdeck_emulator::AdminToken>, String> {
    match std::env::var(ADMIN_TOKEN_ENV) {
        Ok(token) => authdeck_emulator::AdminToken::new(token)
            .map(Some)
            .map_err(|e| format!("${ADMIN_TOKEN_ENV}: {e}")),
        Err(_) => Ok(None),
    }
}

async fn stats(base_url: &str) -> Result<(), String> {
    let url = format!("{}/admin/stats", base_url.trim_end_matches('/'));
    let token = admin_token_from_env()?
        .ok_or_else(|| format!("${ADMIN_TOKEN_ENV} is not set (the token `serve` was given)"))?;
    let body: serde_json::Value = reqwest::Client::new()
        .get(&url)
        .bearer_auth(token.expose())
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let field = |k: &str| body[k].as_u64().unwrap_or(0);
    println!(
        "refresh_ok={} invalid_grant={} reuse_detected={} families_revoked={} token_requests={}",
        field("refresh_ok"),
        field("invalid_grant"),
        field("reuse_detected"),
        field("families_revoked"),
        field("token_requests")
    );
    Ok(())
}

fn criterion(dir: &Path) -> Result<(), String> {
    let path = dir.join("new/estimates.json");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let mean = json["mean"]["point_estimate"]
        .as_f64()
        .ok_or("no mean in estimates.json")?;
    println!("{mean:.1}");
    Ok(())
}

// ---- keyring probe --------------------------------------------------------------------

fn keyring_probe(items: usize, rounds: usize) -> Result<(), String> {
    use authdeck_core::store::SecretStore;
    let store = KeyringStore::new(format!("authdeck-probe-{}", std::process::id()));
    let value = KeyringValue::new("x".repeat(400));
    let t = Instant::now();
    store.get("warm-up").map_err(|e| e.message)?;
    println!(
        "first call (store init + D-Bus session): {:.2} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    let t = Instant::now();
    for i in 0..items {
        store
            .set(&format!("filler/{i}"), &value)
            .map_err(|e| e.message)?;
    }
    println!(
        "{items} creates: {:.2} ms each",
        t.elapsed().as_secs_f64() * 1e3 / items as f64
    );
    let time = |name: &str, f: &dyn Fn(usize) -> authdeck_core::Result<()>| -> Result<(), String> {
        let t = Instant::now();
        for i in 0..rounds {
            f(i).map_err(|e| e.message)?;
        }
        println!(
            "{name}: {:.2} ms",
            t.elapsed().as_secs_f64() * 1e3 / rounds as f64
        );
        Ok(())
    };
    time("get existing", &|i| {
        store.get(&format!("filler/{i}")).map(|_| ())
    })?;
    time("get missing", &|i| {
        store.get(&format!("missing/{i}")).map(|_| ())
    })?;
    time("set new", &|i| store.set(&format!("new/{i}"), &value))?;
    time("set existing", &|i| store.set(&format!("new/{i}"), &value))?;
    time("delete existing", &|i| store.delete(&format!("new/{i}")))?;
    time("delete missing", &|i| store.delete(&format!("new/{i}")))?;
    for i in 0..items {
        let _ = store.delete(&format!("filler/{i}"));
    }
    Ok(())
}
