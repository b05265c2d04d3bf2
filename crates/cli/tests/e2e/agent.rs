//! `authdeckctl agent` and `agent status`: the real binary run in the background on a
//! private data dir, the real keyring, the in-process emulator. A connection comes due
//! (short access-token lifetimes) and the agent refreshes it; SIGTERM stops it with exit
//! 0; one agent per data dir; a kill -9'd agent is reported not running; the agent and
//! the desktop app's scheduler refresh the same connections at once without a reuse.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use authdeck_core::manager::{Manager, ManagerOptions};
use authdeck_core::scheduler::{Scheduler, SchedulerConfig};
use authdeck_core::store::paths::{Paths, KEYRING_SERVICE_ENV};
use authdeck_core::ErrorCode;
use authdeck_emulator::EmulatorConfig;
use serde_json::Value;

use super::common::*;
use super::rotation::{all_ok, assert_current, businesses};

/// The scheduler refreshes 5 minutes (plus up to a minute of per-connection jitter)
/// before the access token expires: with 363 s tokens a fresh connection is due 3 to
/// 63 s after it was connected.
const COMES_DUE_LIFETIME: Duration = Duration::from_secs(363);
/// 300 s tokens are due as soon as they are issued: every pass refreshes them.
pub(crate) const ALWAYS_DUE_LIFETIME: Duration = Duration::from_secs(300);

const CANARY_SECRET: &str = "CANARY-agent-flowaccount-secret-9c1e47";

/// `authdeckctl agent` running in the background; killed if the test ends early.
pub(crate) struct Agent {
    child: Child,
    pub(crate) lines: mpsc::Receiver<String>,
    pub(crate) seen: Vec<String>,
    stdout: Option<std::thread::JoinHandle<String>>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Agent {
    pub(crate) fn start(fx: &Fixture, envs: &[(&str, &str)]) -> Agent {
        let mut cmd = fx.std_command();
        cmd.arg("agent")
            .envs(envs.iter().copied())
            .env_remove("JOURNAL_STREAM")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("authdeckctl agent starts");
        let stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        let out = std::thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line.clone());
                all.push_str(&line);
                all.push('\n');
            }
            all
        });
        let err = std::thread::spawn(move || {
            let mut all = Vec::new();
            let _ = stderr.read_to_end(&mut all);
            String::from_utf8_lossy(&all).into_owned()
        });
        Agent {
            child,
            lines,
            seen: Vec::new(),
            stdout: Some(out),
            stderr: Some(err),
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The first stdout line (from the start) containing `text`, within `within`.
    pub(crate) fn line(&mut self, text: &str, within: Duration) -> String {
        if let Some(l) = self.seen.iter().find(|l| l.contains(text)) {
            return l.clone();
        }
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if l.contains(text) {
                        return l;
                    }
                }
                Err(_) => panic!(
                    "no agent line with {text:?} within {within:?}; so far:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    pub(crate) fn signal(&self, name: &str) {
        let ok = std::process::Command::new("kill")
            .args(["-s", name, &self.pid().to_string()])
            .status()
            .expect("kill runs")
            .success();
        assert!(ok, "kill -s {name} {}", self.pid());
    }

    /// Wait for the exit (bounded); its status, all of stdout and all of stderr.
    pub(crate) fn wait(mut self) -> (ExitStatus, String, String) {
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            assert!(Instant::now() < deadline, "the agent did not exit");
            std::thread::sleep(Duration::from_millis(20));
        };
        let out = self.stdout.take().unwrap().join().unwrap();
        let err = self.stderr.take().unwrap().join().unwrap();
        (status, out, err)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub(crate) fn status(fx: &Fixture) -> Value {
    fx.json(&["agent", "status"])
}

/// Poll `agent status --json` until `done` holds (bounded).
pub(crate) fn status_until(fx: &Fixture, within: Duration, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let s = status(fx);
        if done(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "agent status never got there: {s}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn time(v: &Value) -> chrono::DateTime<chrono::Utc> {
    v.as_str()
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .unwrap_or_else(|| panic!("not an RFC 3339 time: {v}"))
        .with_timezone(&chrono::Utc)
}

/// Secrets to look for, whole and as 16-character fragments.
#[derive(Default)]
struct Canaries(Vec<String>);

impl Canaries {
    fn add_tokens(&mut self, bundle: Option<Value>) {
        let Some(bundle) = bundle else { return };
        for key in ["access_token", "refresh_token"] {
            if let Some(t) = bundle[key].as_str() {
                if !self.0.iter().any(|c| c == t) {
                    self.0.push(t.to_owned());
                }
            }
        }
    }

    fn assert_absent(&self, what: &str, haystack: &[u8]) {
        for canary in &self.0 {
            let b = canary.as_bytes();
            // JWTs share their header: fragments of what follows it.
            let body = match canary.split_once('.') {
                Some((_, rest)) if canary.starts_with("eyJ") => rest.as_bytes(),
                _ => b,
            };
            for fragment in body.chunks(16).filter(|c| c.len() == 16) {
                assert!(
                    !haystack.windows(16).any(|w| w == fragment),
                    "{what} holds a piece of a secret ({}…, {} chars)",
                    &canary[..4],
                    canary.len()
                );
            }
        }
    }
}

#[test]
fn the_agent_refreshes_a_connection_that_comes_due_and_stops_on_sigterm() {
    let mut config = EmulatorConfig::demo();
    config.flowaccount.access_token_lifetime = COMES_DUE_LIFETIME;
    config.flowaccount.clients[0].client_secret = CANARY_SECRET.into();
    let fx = Fixture::with_config(config);
    fx.add_flowaccount_client("fa", None);
    let (conn, _) = fx.connect_flowaccount("fa", FA_BUSINESS);
    let id = id_of(&conn);
    let mut canaries = Canaries(vec![CANARY_SECRET.to_owned()]);
    canaries.add_tokens(fx.current_tokens(&id));

    assert_eq!(status(&fx)["state"], "never_ran");
    // Traced at every level on stderr too: no secret there either.
    let mut agent = Agent::start(&fx, &[("AUTHDECK_LOG", "trace")]);
    agent.line("agent started", Duration::from_secs(20));
    let running = status_until(&fx, Duration::from_secs(20), |s| {
        s["running"] == true && s["next_due"].is_object()
    });
    assert_eq!(running["state"], "running", "{running}");
    assert_eq!(running["pid"], agent.pid(), "{running}");
    assert_eq!(running["store"], "local");
    assert_eq!(running["next_due"]["connection"], id.as_str(), "{running}");
    let due = time(&running["next_due"]["at"]);
    let expires = time(&fx.json(&["status", &id])["access_expires"]["at"]);
    assert!(
        due < expires - chrono::Duration::minutes(4)
            && due > expires - chrono::Duration::minutes(7),
        "due 5 min (+ jitter) before the expiry {expires}: {running}"
    );
    agent.line("next refresh: ", Duration::from_secs(5));

    // It comes due (3 to 63 s after the connect): the agent refreshes it, once.
    let deadline = Instant::now() + Duration::from_secs(90);
    while fx.control().stats().refresh_ok == 0 {
        assert!(
            Instant::now() < deadline,
            "the agent never refreshed the due connection"
        );
        canaries.add_tokens(fx.current_tokens(&id));
        std::thread::sleep(Duration::from_millis(100));
    }
    let line = agent.line("refreshed ", Duration::from_secs(10));
    assert!(
        line.contains(FA_BUSINESS) && line.contains(&id[..8]),
        "{line}"
    );
    canaries.add_tokens(fx.current_tokens(&id));
    assert_current(&fx, &id);
    let after = status_until(&fx, Duration::from_secs(10), |s| {
        s["last_refresh"].is_object()
    });
    let last = &after["last_refresh"];
    assert_eq!(last["ok"], true, "{after}");
    assert_eq!(last["connection"], id.as_str());
    assert!(
        time(&last["at"]) >= due,
        "not refreshed before it was due ({due}): {after}"
    );
    assert_eq!(after["refreshes_ok"], 1, "{after}");
    assert!(time(&after["last_tick"]) >= time(&last["at"]) - chrono::Duration::seconds(1));
    assert!(
        time(&after["next_due"]["at"]) > time(&last["at"]),
        "the next refresh is after this one: {after}"
    );
    let state_file = fx.data_dir().join("agent.json");
    let mode = std::fs::metadata(&state_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the state file is private");

    agent.signal("TERM");
    let (exit, stdout, stderr) = agent.wait();
    assert_eq!(
        exit.code(),
        Some(0),
        "SIGTERM is a clean stop: {exit:?}\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("SIGTERM received: stopping"), "{stdout}");
    assert!(
        stdout
            .lines()
            .last()
            .unwrap_or("")
            .contains("stopped (SIGTERM)"),
        "{stdout}"
    );
    let stopped = status(&fx);
    assert_eq!(stopped["running"], false, "{stopped}");
    assert_eq!(stopped["state"], "stopped", "{stopped}");
    assert!(
        stopped["pid"].is_null(),
        "no pid once it stopped: {stopped}"
    );
    let text = fx.ok(&["agent", "status"]).stdout;
    assert!(text.starts_with("Agent: not running"), "{text}");
    assert!(
        text.contains("Last refresh:  ")
            && text.contains("(FA-100001) at ")
            && text.contains(": ok"),
        "{text}"
    );

    // Journald-friendly lines: one per event, a timestamp (not under journald here),
    // no colour on a pipe.
    for l in stdout.lines() {
        assert!(!l.contains('\x1b'), "no ANSI escapes on a pipe: {l:?}");
        let stamp = l.split(' ').next().unwrap_or("");
        assert!(
            chrono::DateTime::parse_from_rfc3339(stamp).is_ok(),
            "each line starts with its time: {l:?}"
        );
    }
    canaries.add_tokens(fx.current_tokens(&id));
    assert!(
        canaries.0.len() >= 5,
        "the canaries include both generations' tokens"
    );
    canaries.assert_absent("the agent's stdout", stdout.as_bytes());
    canaries.assert_absent("the agent's stderr (trace logs)", stderr.as_bytes());
    canaries.assert_absent("the state file", &std::fs::read(&state_file).unwrap());
    for run in fx.all_runs() {
        canaries.assert_absent("agent status", run.stdout.as_bytes());
        canaries.assert_absent("agent status (stderr)", run.stderr.as_bytes());
    }
}

#[test]
fn a_second_agent_on_the_same_data_dir_is_refused() {
    let fx = Fixture::new();
    let mut first = Agent::start(&fx, &[]);
    first.line("agent started", Duration::from_secs(20));
    status_until(&fx, Duration::from_secs(20), |s| s["running"] == true);

    let second = fx.run(&["agent"]);
    second.assert_one_line_error(1, "busy");
    assert!(
        second.stderr.contains("already runs") && second.stderr.contains(&first.pid().to_string()),
        "names the running agent: {}",
        second.describe()
    );
    let json = fx.run(&["--json", "agent"]);
    assert_eq!(
        json.code,
        Some(2),
        "--json is for agent status: {}",
        json.describe()
    );
    let s = status(&fx);
    assert_eq!(s["pid"], first.pid(), "the first one still runs: {s}");

    first.signal("INT");
    let (exit, stdout, _) = first.wait();
    assert_eq!(exit.code(), Some(0), "{stdout}");
    assert!(stdout.contains("stopped (SIGINT)"), "{stdout}");
}

#[test]
fn a_killed_agent_is_reported_not_running_and_a_new_one_starts() {
    let fx = Fixture::new();
    let mut agent = Agent::start(&fx, &[]);
    agent.line("agent started", Duration::from_secs(20));
    let running = status_until(&fx, Duration::from_secs(20), |s| s["last_tick"].is_string());
    assert_eq!(running["state"], "running");
    agent.signal("KILL");
    let (exit, _, _) = agent.wait();
    assert_eq!(exit.signal(), Some(libc_sigkill()));

    // Its state file still says "running"; the lock, gone with the process, does not.
    let saved: Value =
        serde_json::from_slice(&std::fs::read(fx.data_dir().join("agent.json")).unwrap()).unwrap();
    assert_eq!(saved["phase"], "running", "{saved}");
    let dead = status(&fx);
    assert_eq!(dead["running"], false, "{dead}");
    assert_eq!(dead["state"], "ended", "{dead}");
    assert!(
        dead["pid"].is_null() && dead["next_due"].is_null(),
        "{dead}"
    );
    let text = fx.ok(&["agent", "status"]).stdout;
    assert!(
        text.contains("not running") && text.contains("killed or crashed"),
        "{text}"
    );

    let mut next = Agent::start(&fx, &[]);
    next.line("agent started", Duration::from_secs(20));
    let again = status_until(&fx, Duration::from_secs(20), |s| s["running"] == true);
    assert_eq!(again["pid"], next.pid(), "{again}");
    next.signal("TERM");
    assert_eq!(next.wait().0.code(), Some(0));
}

fn libc_sigkill() -> i32 {
    9
}

#[test]
fn under_journald_lines_carry_a_level_prefix_and_no_timestamp() {
    let fx = Fixture::new();
    let (reader, writer) = std::io::pipe().expect("a pipe");
    // What systemd sets: the device and inode of the stream it connected to stdout.
    let meta = std::fs::File::from(
        std::os::fd::AsFd::as_fd(&writer)
            .try_clone_to_owned()
            .unwrap(),
    )
    .metadata()
    .unwrap();
    use std::os::unix::fs::MetadataExt;
    let stream = format!("{}:{}", meta.dev(), meta.ino());
    let mut cmd = fx.std_command();
    cmd.arg("agent")
        .env("JOURNAL_STREAM", &stream)
        .stdin(Stdio::null())
        .stdout(Stdio::from(writer))
        .stderr(Stdio::null());
    let child = cmd.spawn().expect("authdeckctl agent starts");
    drop(cmd); // our copy of the pipe's write end: EOF once the agent exits
    let mut guard = KillGuard(child);
    let lines = std::thread::spawn(move || {
        BufReader::new(reader)
            .lines()
            .map_while(|l| l.ok())
            .collect::<Vec<_>>()
    });
    status_until(&fx, Duration::from_secs(20), |s| s["last_tick"].is_string());
    let ok = std::process::Command::new("kill")
        .args(["-s", "TERM", &guard.0.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let exit = loop {
        if let Some(s) = guard.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "the agent did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(exit.code(), Some(0));
    let lines = lines.join().unwrap();
    assert!(lines.len() >= 3, "{lines:?}");
    for l in &lines {
        assert!(l.starts_with("<6>"), "an info line under journald: {l:?}");
        assert!(
            !l.contains(&chrono::Utc::now().format("%Y-%m-%dT").to_string()),
            "no timestamp (journald adds its own): {l:?}"
        );
    }
    assert!(lines[0].starts_with("<6>agent started"), "{lines:?}");
}

struct KillGuard(Child);

impl Drop for KillGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// The agent and the desktop app's scheduler (the same core scheduler, on a manager
/// opened on the same data dir, as the app opens it) plus `refresh --all` runs, all
/// refreshing the same connections at once, with reuse detection on: the connection
/// locks serialise them; no refresh token is ever presented twice.
#[test]
fn the_agent_and_the_desktop_scheduler_share_a_data_dir_without_a_reuse() {
    const N: usize = 3;
    let mut config = businesses(N, "FA-8");
    config.flowaccount.access_token_lifetime = ALWAYS_DUE_LIFETIME;
    assert!(config.flowaccount.reuse_detection);
    let fx = Fixture::with_config(config);
    fx.add_flowaccount_client("fa", None);
    let ids: Vec<String> = (0..N)
        .map(|i| id_of(&fx.connect_flowaccount("fa", &format!("FA-8{i:05}")).0))
        .collect();

    let mut agent = Agent::start(&fx, &[]);
    agent.line("agent started", Duration::from_secs(20));

    // The desktop app's scheduler, in this process.
    let stop = Arc::new(AtomicBool::new(false));
    let paths = Paths::resolve_with(Some(fx.data_dir()), |name| {
        (name == KEYRING_SERVICE_ENV).then(|| fx.service.clone())
    })
    .unwrap();
    let desktop = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let manager = Manager::open_async(paths, ManagerOptions::default())
                    .await
                    .expect("the desktop's manager opens the data dir");
                let mut scheduler = Scheduler::new(manager, SchedulerConfig::default());
                let (mut ok, mut errors) = (0usize, Vec::new());
                while !stop.load(Ordering::Relaxed) {
                    let pass = scheduler.pass().await;
                    for r in pass.refreshes {
                        match r.result {
                            Ok(_) => ok += 1,
                            Err(e) => errors.push(e.code),
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                (ok, errors)
            })
        })
    };
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(8) {
        all_ok(&fx.json(&["refresh", "--all"]));
    }
    stop.store(true, Ordering::Relaxed);
    let (desktop_ok, desktop_errors) = desktop.join().expect("the desktop scheduler ran");
    let agent_status = status(&fx);
    agent.signal("TERM");
    let (exit, stdout, stderr) = agent.wait();
    assert_eq!(exit.code(), Some(0), "{stdout}\n{stderr}");

    let stats = fx.control_stats();
    assert_eq!(
        stats["reuse_detected"], 0,
        "no refresh token presented twice: {stats}"
    );
    assert_eq!(stats["invalid_grant"], 0, "no grant lost: {stats}");
    assert!(
        !desktop_errors.contains(&ErrorCode::ReauthorizationRequired),
        "the desktop scheduler lost no grant: {desktop_errors:?}"
    );
    assert!(
        !stdout.contains("refresh failed"),
        "the agent's refreshes all succeeded:\n{stdout}"
    );
    let agent_ok = agent_status["refreshes_ok"].as_u64().unwrap_or(0);
    assert!(
        agent_ok > 0 && desktop_ok > 0,
        "both refreshed: agent {agent_ok}, desktop {desktop_ok}"
    );
    assert_eq!(agent_status["refreshes_failed"], 0, "{agent_status}");
    let total = fx.control().stats().refresh_ok;
    assert!(total as usize >= 3 * N, "{total} refreshes in all");
    for id in &ids {
        let s = fx.json(&["status", id]);
        assert_eq!(s["state"], "active", "{s}");
        assert_current(&fx, id);
    }
}

/// SIGTERM while the agent's refresh waits on the provider (1 s latency): it starts
/// nothing new, waits for that answer, commits it, and exits 0; the stored refresh
/// token is the provider's newest and the grant lives on.
#[test]
fn sigterm_during_a_refresh_waits_for_it_to_be_saved() {
    let mut config = EmulatorConfig::demo();
    config.flowaccount.access_token_lifetime = ALWAYS_DUE_LIFETIME;
    let fx = Fixture::with_config(config);
    fx.add_flowaccount_client("fa", None);
    let id = id_of(&fx.connect_flowaccount("fa", FA_BUSINESS).0);
    fx.control().set_latency(Duration::from_millis(1000));
    let before = fx.control().stats();

    let mut agent = Agent::start(&fx, &[]);
    agent.line("agent started", Duration::from_secs(20));
    // A request the provider has not answered yet: the agent's refresh is in flight.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = fx.control().stats();
        if now.requests - before.requests > now.refresh_ok - before.refresh_ok {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the agent never called the provider"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    agent.signal("TERM");
    let (exit, stdout, stderr) = agent.wait();
    assert_eq!(exit.code(), Some(0), "{stdout}\n{stderr}");
    let stop_at = stdout
        .find("SIGTERM received: stopping; starting nothing new, waiting for 1 refresh in flight")
        .unwrap_or_else(|| panic!("says what it waits for:\n{stdout}"));
    assert!(
        stdout[stop_at..].contains("refreshed "),
        "the answer in flight was saved after the signal:\n{stdout}"
    );
    let after = fx.control().stats();
    assert_eq!(
        after.requests - before.requests,
        after.refresh_ok - before.refresh_ok,
        "every call was answered and nothing started after the signal"
    );
    assert_current(&fx, &id);
    fx.control().set_latency(Duration::ZERO);
    all_ok(&fx.json(&["refresh", "--all"]));
    let stats = fx.control().stats();
    assert_eq!(
        (stats.invalid_grant, stats.reuse_detected),
        (0, 0),
        "{stats:?}"
    );
}
