//! `authdeckctl agent`: the always-on refresher. The core's scheduler — the one the
//! desktop app runs — without a window, until SIGTERM / SIGINT / SIGHUP; and
//! `authdeckctl agent status`, which says whether one runs for a data directory.
//!
//! - **One per data directory.** The agent holds an exclusive `flock` on
//!   `<data dir>/agent.lock` for its whole life; a second agent finds it held and
//!   exits 1 with `busy`. The kernel drops the lock when the process ends however it
//!   ends, so `agent status` tells "running" by the lock alone: a killed or crashed
//!   agent is never reported running, whatever its state file still says.
//! - **The state file** `<data dir>/agent.json` (0600, replaced atomically: written to a
//!   temporary file, then renamed) says what the agent did: pid, since, last pass, last
//!   refresh and its outcome, next due refresh. Metadata only, never a token or secret
//!   (the error of a refresh is the core's code and message, already redacted).
//! - **A stop** begins the core's [`Shutdown`]: no new provider call starts, the calls in
//!   flight finish and are committed (at most the manager's grace; an answer not
//!   committed by then stays in the answer journal for the next refresh to adopt), then
//!   the agent exits 0.
//! - **Logs**: one line per event on stdout (start, each refresh and its outcome, the
//!   next due refresh when it changes, a lapse warning, a locked keyring, the stop).
//!   Under journald (`JOURNAL_STREAM` names our stdout) a line carries its syslog level
//!   as a `<N>` prefix instead of a timestamp; colours only on a terminal.
//! - **Beside the desktop app**: both may refresh the same connections; the connection
//!   locks serialise them across processes, and whoever comes second re-reads the store.
//!
//! [`serve`] takes a [`Manager`], whatever store is behind it: this file opens the local
//! one (SQLite + the user's keyring); team mode passes a manager on the team store.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{IsTerminal, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use authdeck_core::manager::{Manager, ManagerOptions};
use authdeck_core::model::Connection;
use authdeck_core::scheduler::{Notice, Pass, Scheduler, SchedulerConfig};
use authdeck_core::shutdown::Shutdown;
use authdeck_core::store::paths::Paths;
use authdeck_core::{Error, ErrorCode, Result};
use chrono::{DateTime, SecondsFormat, Utc};
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};
use tokio::signal::unix::{signal, Signal, SignalKind};

/// Without a subcommand: run the agent until SIGTERM or Ctrl-C.
#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AgentArgs {
    #[command(subcommand)]
    action: Option<AgentAction>,
}

#[derive(Subcommand)]
enum AgentAction {
    /// Whether an agent runs for this data directory: pid, since, last pass, last
    /// refresh and its outcome, next due refresh (`--json`: one object).
    Status,
}

pub const LOCK_FILE: &str = "agent.lock";
pub const STATE_FILE: &str = "agent.json";
/// How long a starting agent retries a lock held for a moment (`agent status` probes it).
const LOCK_RETRY: Duration = Duration::from_secs(2);
/// A locked or missing keyring at start: try again this often.
const KEYRING_RETRY: Duration = Duration::from_secs(10);
/// Answers a locked keyring refused are retried this often (the window: every 3 s).
const UNSAVED_RETRY: Duration = Duration::from_secs(3);

pub async fn run(args: AgentArgs, data_dir: Option<PathBuf>, json: bool) -> Result<ExitCode> {
    let paths = Paths::resolve(data_dir)?;
    match args.action {
        Some(AgentAction::Status) => status(&paths, json),
        None if json => Err(Error::invalid_input(
            "The agent logs plain lines; --json applies to `authdeckctl agent status`.",
        )),
        None => run_local(paths).await,
    }
}

// ---- the agent ----------------------------------------------------------------------

/// Local mode: this machine's store, opened as the app opens it (the keyring must be
/// unlocked; while it is not, the agent waits for it).
async fn run_local(paths: Paths) -> Result<ExitCode> {
    // Before anything else: a stop request always finds our handler.
    let mut signals = Signals::new()?;
    let log = Log::for_stdout();
    paths.ensure()?;
    let files = AgentFiles::new(&paths.data_dir);
    let _lock = files.lock().await?;
    let mut state = AgentState::new(&paths.data_dir, "local");
    files.save(&state);
    log.info(format_args!(
        "agent started (pid {}) for {}: the local store; stop it with SIGTERM or Ctrl-C",
        state.pid,
        paths.data_dir.display()
    ));
    let shutdown = Shutdown::new();
    let options = ManagerOptions {
        shutdown: shutdown.clone(),
        ..ManagerOptions::default()
    };
    let mut waiting_said = false;
    let manager = loop {
        match Manager::open_async(paths.clone(), options.clone()).await {
            Ok(manager) => break manager,
            Err(e) if e.code == ErrorCode::KeyringUnavailable => {
                state.phase = Phase::WaitingForKeyring;
                state.last_tick = Some(Utc::now());
                files.save(&state);
                if !waiting_said {
                    log.warn(format_args!(
                        "waiting for the keyring: {} [{}]; trying again every {} s",
                        e.message,
                        e.code,
                        KEYRING_RETRY.as_secs()
                    ));
                    waiting_said = true;
                }
                tokio::select! {
                    _ = tokio::time::sleep(KEYRING_RETRY) => {}
                    stop = signals.next() => {
                        log.info(format_args!("{} received: stopped (the store was never opened)", stop.name()));
                        state.stopped(Utc::now());
                        files.save(&state);
                        return Ok(ExitCode::SUCCESS);
                    }
                }
            }
            Err(e) => {
                state.stopped(Utc::now());
                files.save(&state);
                return Err(e);
            }
        }
    };
    if waiting_said {
        log.info(format_args!("the keyring is available: store opened"));
    }
    serve(manager, &files, state, &log, &mut signals).await
}

/// Run the scheduler on `manager` until a stop signal, keeping `files`' state current.
pub async fn serve(
    manager: Manager,
    files: &AgentFiles,
    mut state: AgentState,
    log: &Log,
    signals: &mut Signals,
) -> Result<ExitCode> {
    let shutdown = manager.shutdown().clone();
    let grace = manager.shutdown_grace();
    let mut scheduler = Scheduler::new(manager.clone(), SchedulerConfig::default());
    let mut report = Reporter::default();
    state.phase = Phase::Running;
    let mut keyring_locked = false;
    loop {
        // A locked keyring: no pass (its refreshes would fail and back off for up to
        // 30 minutes); wait for it, saying so once.
        match manager.keyring_ready().await {
            Err(e) if e.code == ErrorCode::KeyringUnavailable => {
                state.phase = Phase::WaitingForKeyring;
                state.last_tick = Some(Utc::now());
                files.save(&state);
                if !keyring_locked {
                    log.warn(format_args!(
                        "waiting for the keyring: {} [{}]; nothing is refreshed until it is unlocked (checked every {} s)",
                        e.message,
                        e.code,
                        KEYRING_RETRY.as_secs()
                    ));
                    keyring_locked = true;
                }
                tokio::select! {
                    _ = tokio::time::sleep(KEYRING_RETRY) => continue,
                    stop = signals.next() => {
                        let deadline = begin_stop(stop, &shutdown, grace, log, files, &mut state);
                        return stopped(stop, &shutdown, deadline, log, files, state).await;
                    }
                }
            }
            Err(e) => tracing::warn!(code = %e.code, "keyring check failed"),
            Ok(()) => {}
        }
        if keyring_locked {
            log.info(format_args!("the keyring is unlocked: refreshing again"));
            keyring_locked = false;
        }
        state.phase = Phase::Running;
        let (pass, stop) = {
            let pass = scheduler.pass();
            tokio::pin!(pass);
            tokio::select! {
                pass = &mut pass => (Some(pass), None),
                stop = signals.next() => {
                    let deadline = begin_stop(stop, &shutdown, grace, log, files, &mut state);
                    let pass = finish(&mut pass, &shutdown, deadline, log, signals).await;
                    (pass, Some((stop, deadline)))
                }
            }
        };
        if let Some(pass) = pass {
            report.pass(&pass, &shutdown, log, &mut state);
        }
        if !manager.unsaved_connections().is_empty() && !shutdown.is_stopping() {
            manager.save_unsaved(Duration::ZERO, |_| {}).await;
        }
        report.unsaved(&manager.unsaved_labels(), log);
        state.last_tick = Some(Utc::now());
        files.save(&state);
        if let Some((stop, deadline)) = stop {
            return stopped(stop, &shutdown, deadline, log, files, state).await;
        }
        let next = state.next_pass.unwrap_or_else(|| manager.now());
        let mut wait = (next - manager.now())
            .to_std()
            .unwrap_or_default()
            .max(Duration::from_millis(500));
        if !manager.unsaved_connections().is_empty() {
            wait = wait.min(UNSAVED_RETRY);
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            stop = signals.next() => {
                let deadline = begin_stop(stop, &shutdown, grace, log, files, &mut state);
                return stopped(stop, &shutdown, deadline, log, files, state).await;
            }
        }
    }
}

/// Start no new provider call; the stop's deadline (now + the grace).
fn begin_stop(
    stop: Stop,
    shutdown: &Shutdown,
    grace: Duration,
    log: &Log,
    files: &AgentFiles,
    state: &mut AgentState,
) -> tokio::time::Instant {
    let deadline = tokio::time::Instant::now() + grace;
    shutdown.begin();
    state.phase = Phase::Stopping;
    files.save(state);
    match shutdown.in_flight() {
        0 => log.info(format_args!("{} received: stopping", stop.name())),
        n => log.info(format_args!(
            "{} received: stopping; starting nothing new, waiting for {} in flight to be saved (at most {} s)",
            stop.name(),
            refreshes(n),
            grace.as_secs()
        )),
    }
    deadline
}

/// The rest of a pass a stop interrupted: its calls in flight finish and commit (it
/// starts no new one), bounded by the grace; further signals only say so.
async fn finish(
    pass: &mut std::pin::Pin<&mut impl std::future::Future<Output = Pass>>,
    shutdown: &Shutdown,
    deadline: tokio::time::Instant,
    log: &Log,
    signals: &mut Signals,
) -> Option<Pass> {
    loop {
        tokio::select! {
            pass = pass.as_mut() => return Some(pass),
            again = signals.next() => {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                log.warn(format_args!(
                    "{} again: still waiting for {} to be saved (at most {} s more); stopping now would lose their new tokens",
                    again.name(),
                    refreshes(shutdown.in_flight()),
                    left.as_secs().max(1)
                ));
            }
            _ = tokio::time::sleep_until(deadline) => return None,
        }
    }
}

async fn stopped(
    stop: Stop,
    shutdown: &Shutdown,
    deadline: tokio::time::Instant,
    log: &Log,
    files: &AgentFiles,
    mut state: AgentState,
) -> Result<ExitCode> {
    let idle = tokio::time::timeout_at(deadline, shutdown.idle())
        .await
        .is_ok();
    state.stopped(Utc::now());
    files.save(&state);
    if idle {
        log.info(format_args!("stopped ({})", stop.name()));
        Ok(ExitCode::SUCCESS)
    } else {
        // Their answers, if any came, are in the answer journal: the next refresh of
        // those connections adopts them.
        log.error(format_args!(
            "stopped ({}) without {} being saved: the provider did not answer in time",
            stop.name(),
            refreshes(shutdown.in_flight())
        ));
        Ok(ExitCode::from(1))
    }
}

fn refreshes(n: usize) -> String {
    format!("{n} refresh{}", if n == 1 { "" } else { "es" })
}

/// Turns passes into log lines and state, saying only what changed.
#[derive(Default)]
struct Reporter {
    next_due: Option<(String, DateTime<Utc>)>,
    unsaved: Vec<String>,
}

impl Reporter {
    fn pass(&mut self, pass: &Pass, shutdown: &Shutdown, log: &Log, state: &mut AgentState) {
        for r in &pass.refreshes {
            let conn = &r.connection;
            match &r.result {
                Ok(fresh) => {
                    state.refreshes_ok += 1;
                    let until = fresh
                        .access_expires
                        .map(|e| format!("; access token valid until {}", time(e.at)))
                        .unwrap_or_default();
                    log.info(format_args!("refreshed {}{until}", name(conn)));
                }
                // Not started because the agent is stopping: nothing happened to it.
                Err(e) if e.code == ErrorCode::Busy && shutdown.is_stopping() => {
                    log.info(format_args!("not refreshed {}: stopping", name(conn)));
                    continue;
                }
                Err(e) => {
                    state.refreshes_failed += 1;
                    let then = match r.retry_at {
                        Some(at) => format!("retry at {}", time(at)),
                        None => "needs attention: not retried until it is reconnected or changed"
                            .to_owned(),
                    };
                    log.warn(format_args!(
                        "refresh failed {}: {} [{}]; {then}",
                        name(conn),
                        e.message,
                        e.code
                    ));
                }
            }
            state.last_refresh = Some(RefreshRecord::new(r.connection.clone(), &r.result));
        }
        for notice in &pass.notices {
            if let Notice::Lapsing { connection, at } = notice {
                log.warn(format_args!(
                    "{} lapses at {} and cannot be refreshed now: reconnect it before then",
                    name(connection),
                    time(*at)
                ));
            }
        }
        state.next_pass = Some(pass.next);
        state.next_due = pass.next_due.as_ref().map(|(c, at)| Due {
            at: *at,
            connection: c.id.clone(),
            title: c.title().to_owned(),
            name: (c.title() != c.label).then(|| c.label.clone()),
        });
        let key = pass.next_due.as_ref().map(|(c, at)| (c.id.clone(), *at));
        if key != self.next_due {
            match &pass.next_due {
                Some((c, at)) => {
                    log.info(format_args!("next refresh: {} at {}", name(c), time(*at)))
                }
                None if self.next_due.is_some() => log.info(format_args!("no refresh scheduled")),
                None => {}
            }
            self.next_due = key;
        }
    }

    fn unsaved(&mut self, labels: &[String], log: &Log) {
        if labels == self.unsaved.as_slice() {
            return;
        }
        if labels.is_empty() {
            log.info(format_args!(
                "the keyring took the refreshed tokens that waited"
            ));
        } else {
            log.error(format_args!(
                "the keyring is locked: the refreshed tokens of {} wait (in memory and in the answer journal); unlock it to keep them",
                labels.join(", ")
            ));
        }
        self.unsaved = labels.to_vec();
    }
}

/// How a log line names a connection: its title, its name when that differs (the
/// supportCode under a company's name), provider and short id.
fn name(conn: &Connection) -> String {
    let short: String = conn.id.chars().take(8).collect();
    let provider = conn.provider.display_name();
    match conn.title() {
        title if title != conn.label => format!("{title} ({}, {provider}, {short})", conn.label),
        title => format!("{title} ({provider}, {short})"),
    }
}

fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

// ---- the lock and the state file -----------------------------------------------------

/// The agent's files in a data directory.
pub struct AgentFiles {
    lock: PathBuf,
    state: PathBuf,
}

impl AgentFiles {
    pub fn new(data_dir: &Path) -> Self {
        Self {
            lock: data_dir.join(LOCK_FILE),
            state: data_dir.join(STATE_FILE),
        }
    }

    /// Take the one agent lock of this data directory, or fail with `busy`.
    async fn lock(&self) -> Result<File> {
        let fail = |e: std::io::Error| {
            Error::new(
                ErrorCode::Storage,
                format!(
                    "Could not open the agent's lock file {}.",
                    self.lock.display()
                ),
            )
            .with_detail(e.to_string())
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&self.lock)
            .map_err(fail)?;
        let deadline = tokio::time::Instant::now() + LOCK_RETRY;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(file),
                Err(TryLockError::Error(e)) => return Err(fail(e)),
                // `agent status` holds it for a moment; another agent for good.
                Err(TryLockError::WouldBlock) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(TryLockError::WouldBlock) => {
                    let other = self
                        .read()
                        .ok()
                        .flatten()
                        .map(|s| format!(" (pid {}, since {})", s.pid, time(s.started_at)))
                        .unwrap_or_default();
                    return Err(Error::new(
                        ErrorCode::Busy,
                        format!(
                            "An agent already runs for {}{other}: one agent per data directory. See `authdeckctl agent status`.",
                            self.lock.parent().unwrap_or(&self.lock).display()
                        ),
                    ));
                }
            }
        }
    }

    /// Whether an agent holds the lock now (probed with a shared lock, released at once).
    fn held(&self) -> Result<bool> {
        let file = match File::open(&self.lock) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => {
                return Err(Error::new(
                    ErrorCode::Storage,
                    format!(
                        "Could not read the agent's lock file {}.",
                        self.lock.display()
                    ),
                )
                .with_detail(e.to_string()))
            }
        };
        match file.try_lock_shared() {
            Ok(()) => Ok(false),
            Err(TryLockError::WouldBlock) => Ok(true),
            Err(TryLockError::Error(e)) => Err(Error::new(
                ErrorCode::Storage,
                format!(
                    "Could not probe the agent's lock file {}.",
                    self.lock.display()
                ),
            )
            .with_detail(e.to_string())),
        }
    }

    /// Replace the state file (0600) atomically; a failure is logged, never fatal: the
    /// refreshes matter more than their report.
    fn save(&self, state: &AgentState) {
        if let Err(e) = self.write(state) {
            tracing::warn!(error = %e, "could not write the agent's state file");
        }
    }

    fn write(&self, state: &AgentState) -> std::io::Result<()> {
        let text = serde_json::to_vec_pretty(state).map_err(std::io::Error::other)?;
        let tmp = self
            .state
            .with_extension(format!("json.{}.tmp", std::process::id()));
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        let written = file
            .write_all(&text)
            .and_then(|()| file.write_all(b"\n"))
            .and_then(|()| file.sync_data())
            .and_then(|()| std::fs::rename(&tmp, &self.state));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written
    }

    /// The last state an agent wrote; `None` when none ever ran here.
    fn read(&self) -> Result<Option<AgentState>> {
        let bytes = match std::fs::read(&self.state) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(Error::new(
                    ErrorCode::Storage,
                    format!(
                        "Could not read the agent's state file {}.",
                        self.state.display()
                    ),
                )
                .with_detail(e.to_string()))
            }
        };
        serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            Error::new(
                ErrorCode::Storage,
                format!(
                    "The agent's state file {} is not readable (damaged?); the next agent rewrites it.",
                    self.state.display()
                ),
            )
            .with_detail(e.to_string())
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Phase {
    Running,
    WaitingForKeyring,
    Stopping,
    Stopped,
}

/// What `<data dir>/agent.json` holds. No secret: ids, titles, times, error codes and
/// the core's (redacted) messages.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentState {
    v: u32,
    pid: u32,
    started_at: DateTime<Utc>,
    /// `local` (this machine's SQLite + keyring) or, later, `team`.
    store: String,
    data_dir: PathBuf,
    phase: Phase,
    /// The end of the last scheduler pass.
    last_tick: Option<DateTime<Utc>>,
    next_pass: Option<DateTime<Utc>>,
    last_refresh: Option<RefreshRecord>,
    next_due: Option<Due>,
    refreshes_ok: u64,
    refreshes_failed: u64,
    stopped_at: Option<DateTime<Utc>>,
}

impl AgentState {
    pub fn new(data_dir: &Path, store: &str) -> Self {
        Self {
            v: 1,
            pid: std::process::id(),
            started_at: Utc::now(),
            store: store.to_owned(),
            data_dir: data_dir.to_owned(),
            phase: Phase::Running,
            last_tick: None,
            next_pass: None,
            last_refresh: None,
            next_due: None,
            refreshes_ok: 0,
            refreshes_failed: 0,
            stopped_at: None,
        }
    }

    fn stopped(&mut self, at: DateTime<Utc>) {
        self.phase = Phase::Stopped;
        self.stopped_at = Some(at);
        self.next_due = None;
        self.next_pass = None;
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct RefreshRecord {
    at: DateTime<Utc>,
    connection: String,
    title: String,
    /// Its name (supportCode, FedEx project, IoT username) when the title is another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<ErrorCode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

impl RefreshRecord {
    fn new(conn: Connection, result: &Result<Connection>) -> Self {
        Self {
            at: Utc::now(),
            title: conn.title().to_owned(),
            name: (conn.title() != conn.label).then(|| conn.label.clone()),
            connection: conn.id,
            ok: result.is_ok(),
            code: result.as_ref().err().map(|e| e.code),
            message: result.as_ref().err().map(|e| e.message.clone()),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Due {
    at: DateTime<Utc>,
    connection: String,
    title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
}

/// `title (name)`, or the title alone.
fn titled(title: &str, name: Option<&str>) -> String {
    match name {
        Some(n) => format!("{title} ({n})"),
        None => title.to_owned(),
    }
}

// ---- agent status -----------------------------------------------------------------------

/// `--json` of `agent status`.
#[derive(Serialize)]
struct StatusView {
    running: bool,
    /// `running`, `waiting_for_keyring`, `stopping`; when not running: `stopped` (it
    /// stopped cleanly), `ended` (killed or crashed: its state file says it ran), or
    /// `never_ran`.
    state: &'static str,
    data_dir: PathBuf,
    /// Only while it runs (a dead agent's pid may be another process's by now).
    pid: Option<u32>,
    store: Option<String>,
    since: Option<DateTime<Utc>>,
    last_tick: Option<DateTime<Utc>>,
    last_refresh: Option<RefreshRecord>,
    next_due: Option<Due>,
    refreshes_ok: u64,
    refreshes_failed: u64,
    stopped_at: Option<DateTime<Utc>>,
}

fn status(paths: &Paths, json: bool) -> Result<ExitCode> {
    let files = AgentFiles::new(&paths.data_dir);
    let running = files.held()?;
    let saved = match files.read() {
        Ok(s) => s,
        // A damaged file says nothing; the lock still says whether one runs.
        Err(e) if running => {
            tracing::warn!(code = %e.code, "agent state unreadable");
            None
        }
        Err(e) => return Err(e),
    };
    let state = match (running, saved.as_ref().map(|s| s.phase)) {
        (true, Some(Phase::WaitingForKeyring)) => "waiting_for_keyring",
        (true, Some(Phase::Stopping | Phase::Stopped)) => "stopping",
        (true, _) => "running",
        (false, None) => "never_ran",
        (false, Some(Phase::Stopped)) => "stopped",
        (false, Some(_)) => "ended",
    };
    let view = StatusView {
        running,
        state,
        data_dir: paths.data_dir.clone(),
        pid: saved.as_ref().filter(|_| running).map(|s| s.pid),
        store: saved.as_ref().map(|s| s.store.clone()),
        since: saved.as_ref().map(|s| s.started_at),
        last_tick: saved.as_ref().and_then(|s| s.last_tick),
        last_refresh: saved.as_ref().and_then(|s| s.last_refresh.clone()),
        next_due: saved
            .as_ref()
            .filter(|_| running)
            .and_then(|s| s.next_due.clone()),
        refreshes_ok: saved.as_ref().map_or(0, |s| s.refreshes_ok),
        refreshes_failed: saved.as_ref().map_or(0, |s| s.refreshes_failed),
        stopped_at: saved.as_ref().and_then(|s| s.stopped_at),
    };
    if json {
        let text = serde_json::to_string_pretty(&view).map_err(|e| {
            Error::internal("Could not encode JSON output.").with_detail(e.to_string())
        })?;
        outln!("{text}");
        return Ok(ExitCode::SUCCESS);
    }
    let now = Utc::now();
    let ago = |at: DateTime<Utc>| format!("{} ({})", time(at), relative(at, now));
    let dir = view.data_dir.display();
    match (view.running, view.pid, view.since) {
        (true, Some(pid), Some(since)) => outln!(
            "Agent: {} for {dir} (pid {pid}, since {}, {} store)",
            state.replace('_', " "),
            ago(since),
            view.store.as_deref().unwrap_or("local")
        ),
        (true, _, _) => outln!("Agent: running for {dir} (starting)"),
        (false, _, _) => outln!(
            "Agent: not running for {dir}{}",
            match state {
                "never_ran" => " (none ever ran here)".to_owned(),
                "stopped" => format!(
                    " (the last one stopped at {})",
                    view.stopped_at.map(ago).unwrap_or_default()
                ),
                _ => " (the last one ended without stopping: killed or crashed)".to_owned(),
            }
        ),
    }
    if let Some(tick) = view.last_tick {
        outln!("Last pass:     {}", ago(tick));
    }
    match &view.last_refresh {
        Some(r) if r.ok => outln!(
            "Last refresh:  {} at {}: ok",
            titled(&r.title, r.name.as_deref()),
            ago(r.at)
        ),
        Some(r) => outln!(
            "Last refresh:  {} at {}: failed: {} [{}]",
            titled(&r.title, r.name.as_deref()),
            ago(r.at),
            r.message.as_deref().unwrap_or(""),
            r.code.map(|c| c.to_string()).unwrap_or_default()
        ),
        None if saved.is_some() => outln!("Last refresh:  none yet"),
        None => {}
    }
    if let Some(d) = &view.next_due {
        outln!(
            "Next refresh:  {} at {}",
            titled(&d.title, d.name.as_deref()),
            ago(d.at)
        );
    } else if view.running {
        outln!("Next refresh:  none scheduled");
    }
    if saved.is_some() {
        outln!(
            "Refreshes:     {} ok, {} failed since it started",
            view.refreshes_ok,
            view.refreshes_failed
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn relative(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (at - now).num_seconds();
    let (n, future) = (secs.unsigned_abs(), secs > 0);
    let amount = match n {
        0..=89 => format!("{n} s"),
        90..=5399 => format!("{} min", (n + 30) / 60),
        _ => format!("{} h", (n + 1800) / 3600),
    };
    if future {
        format!("in {amount}")
    } else {
        format!("{amount} ago")
    }
}

// ---- logging ------------------------------------------------------------------------------

/// One line per event on stdout. A write that fails (a closed pipe, a journal gone) is
/// dropped: the agent keeps refreshing.
pub struct Log {
    /// stdout is the journal's stream: `<N>` level prefixes, no timestamps.
    journal: bool,
    color: bool,
}

#[derive(Clone, Copy)]
enum Level {
    Info,
    Warn,
    Error,
}

impl Log {
    pub fn for_stdout() -> Self {
        let stdout = std::io::stdout();
        let journal = std::env::var("JOURNAL_STREAM")
            .ok()
            .is_some_and(|v| is_our_stream(&v, &stdout));
        let color = !journal
            && stdout.is_terminal()
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            && std::env::var("TERM").map_or(true, |t| t != "dumb");
        Self { journal, color }
    }

    fn info(&self, args: std::fmt::Arguments<'_>) {
        self.line(Level::Info, args)
    }

    fn warn(&self, args: std::fmt::Arguments<'_>) {
        self.line(Level::Warn, args)
    }

    fn error(&self, args: std::fmt::Arguments<'_>) {
        self.line(Level::Error, args)
    }

    fn line(&self, level: Level, args: std::fmt::Arguments<'_>) {
        let text = args.to_string();
        // One event, one line, whatever a title holds.
        let text: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let line = if self.journal {
            let priority = match level {
                Level::Info => 6,
                Level::Warn => 4,
                Level::Error => 3,
            };
            format!("<{priority}>{text}\n")
        } else {
            let (word, colour) = match level {
                Level::Info => ("info ", "32"),
                Level::Warn => ("warn ", "33"),
                Level::Error => ("error", "31"),
            };
            let stamp = time(Utc::now());
            if self.color {
                format!("\x1b[2m{stamp}\x1b[0m \x1b[{colour}m{word}\x1b[0m {text}\n")
            } else {
                format!("{stamp} {word} {text}\n")
            }
        };
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(line.as_bytes()).and_then(|()| out.flush());
    }
}

/// `JOURNAL_STREAM` is `device:inode` of the journal's socket when systemd connected
/// stdout or stderr to it; it counts only if it is our stdout (not inherited by a
/// process whose output goes elsewhere).
fn is_our_stream(value: &str, stdout: &std::io::Stdout) -> bool {
    use std::os::fd::AsFd;
    let Some((dev, ino)) = value.split_once(':') else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    let Ok(fd) = stdout.as_fd().try_clone_to_owned() else {
        return false;
    };
    File::from(fd)
        .metadata()
        .is_ok_and(|m| m.dev() == dev && m.ino() == ino)
}

// ---- signals --------------------------------------------------------------------------------

#[derive(Clone, Copy)]
pub enum Stop {
    Interrupt,
    Terminate,
    Hangup,
}

impl Stop {
    fn name(self) -> &'static str {
        match self {
            Stop::Interrupt => "SIGINT",
            Stop::Terminate => "SIGTERM",
            Stop::Hangup => "SIGHUP",
        }
    }
}

/// SIGTERM (systemd's stop), SIGINT (Ctrl-C) and SIGHUP (a closed terminal): each
/// stops the agent cleanly.
pub struct Signals {
    interrupt: Signal,
    terminate: Signal,
    hangup: Signal,
}

impl Signals {
    pub fn new() -> Result<Self> {
        let install = |kind: SignalKind| {
            signal(kind).map_err(|e| {
                Error::internal("Could not install a signal handler.").with_detail(e.to_string())
            })
        };
        Ok(Self {
            interrupt: install(SignalKind::interrupt())?,
            terminate: install(SignalKind::terminate())?,
            hangup: install(SignalKind::hangup())?,
        })
    }

    pub async fn next(&mut self) -> Stop {
        tokio::select! {
            _ = self.interrupt.recv() => Stop::Interrupt,
            _ = self.terminate.recv() => Stop::Terminate,
            _ = self.hangup.recv() => Stop::Hangup,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times_read_naturally() {
        let now = Utc::now();
        assert_eq!(
            relative(now + chrono::Duration::seconds(30), now),
            "in 30 s"
        );
        assert_eq!(
            relative(now - chrono::Duration::seconds(600), now),
            "10 min ago"
        );
        assert_eq!(relative(now + chrono::Duration::hours(20), now), "in 20 h");
    }

    #[test]
    fn journal_stream_must_name_our_stdout() {
        let stdout = std::io::stdout();
        assert!(!is_our_stream("", &stdout));
        assert!(!is_our_stream("1:2:3", &stdout));
        assert!(!is_our_stream("x:y", &stdout));
        assert!(!is_our_stream("0:0", &stdout));
    }
}
