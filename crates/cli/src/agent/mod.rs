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
//! - **Team mode**: when the data directory is in a team (`team.json`), the agent opens
//!   the team's store (`authdeck_team::open`, as an agent: the team key from the keyring,
//!   a 0600 file or the systemd credential `team-key`). Its scheduler competes with every
//!   other scheduler of the team (agents and desktop apps) for the one leadership: the
//!   agent leads (refreshes for the whole team) or stands by, and says which in its log,
//!   its state file and `agent status`, with who leads. An unreachable database at start
//!   is waited for, like a locked keyring.
//!
//! [`serve`] takes a [`Manager`], whatever store is behind it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{IsTerminal, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use authdeck_core::manager::{Manager, ManagerOptions};
use authdeck_core::model::Connection;
use authdeck_core::scheduler::{Notice, Pass, Scheduler, SchedulerConfig, SchedulerRole};
use authdeck_core::shutdown::Shutdown;
use authdeck_core::store::paths::Paths;
use authdeck_core::{Error, ErrorCode, Result};
use chrono::{DateTime, SecondsFormat, Utc};
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};

use crate::signals::{Signals, Stop};

mod files;
mod log;
mod status;

pub use files::*;
pub use log::*;
use status::*;

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
/// A locked or missing keyring (or, in a team, an unreachable database) at start: try
/// again this often.
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
        None => run_agent(paths).await,
    }
}

// ---- the agent ----------------------------------------------------------------------

/// Local mode: this machine's store, opened as the app opens it (the keyring must be
/// unlocked; while it is not, the agent waits for it). Team mode (the data directory is
/// in a team): the team's store, as an agent (the database must answer; while it does
/// not, the agent waits for it).
async fn run_agent(paths: Paths) -> Result<ExitCode> {
    // Before anything else: a stop request always finds our handler.
    let mut signals = Signals::new()?;
    let log = Log::for_stdout();
    paths.ensure()?;
    let files = AgentFiles::new(&paths.data_dir);
    let _lock = files.lock().await?;
    let membership = authdeck_team::membership::Membership::load(&paths.data_dir)?;
    let (mode, store) = match &membership {
        None => ("local", "the local store".to_owned()),
        Some(m) => (
            "team",
            format!("team {:?} as {} (its team store)", m.team_name, m.machine),
        ),
    };
    let mut state = AgentState::new(&paths.data_dir, mode);
    files.save(&state);
    log.info(format_args!(
        "agent started (pid {}) for {}: {store}; stop it with SIGTERM or Ctrl-C",
        state.pid,
        paths.data_dir.display()
    ));
    let shutdown = Shutdown::new();
    let options = ManagerOptions {
        shutdown: shutdown.clone(),
        ..ManagerOptions::default()
    };
    let mut waited_for: Option<&str> = None;
    let manager = loop {
        let opened = match &membership {
            None => Manager::open_async(paths.clone(), options.clone()).await,
            Some(_) => authdeck_team::open::open_manager(
                paths.clone(),
                options.clone(),
                authdeck_team::Via::Agent,
            )
            .await
            .map(|(manager, _)| manager),
        };
        match opened {
            Ok(manager) => break manager,
            Err(e)
                if e.code == ErrorCode::KeyringUnavailable
                    || (membership.is_some() && e.code == ErrorCode::TeamUnavailable) =>
            {
                let (phase, what) = match e.code {
                    ErrorCode::KeyringUnavailable => (Phase::WaitingForKeyring, "the keyring"),
                    _ => (Phase::WaitingForTeam, "the team database"),
                };
                state.phase = phase;
                state.last_tick = Some(Utc::now());
                files.save(&state);
                if waited_for != Some(what) {
                    log.warn(format_args!(
                        "waiting for {what}: {} [{}]; trying again every {} s",
                        e.message,
                        e.code,
                        KEYRING_RETRY.as_secs()
                    ));
                    waited_for = Some(what);
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
    if let Some(what) = waited_for {
        log.info(format_args!("{what} is available: store opened"));
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
    role: Option<SchedulerRole>,
}

impl Reporter {
    /// In a team: whether this agent leads the team's scheduler or stands by, and who
    /// leads; said when it changes.
    fn role(&mut self, role: &SchedulerRole, log: &Log, state: &mut AgentState) {
        (state.role, state.leader) = match role {
            SchedulerRole::Alone => (None, None),
            SchedulerRole::Leader => (Some(Role::Leader), None),
            SchedulerRole::Standby { leader } => (Some(Role::Standby), leader.clone()),
        };
        if self.role.as_ref() == Some(role) {
            return;
        }
        match role {
            SchedulerRole::Alone => {}
            SchedulerRole::Leader => log.info(format_args!(
                "leading the team's scheduler: this agent refreshes the team's connections as they fall due"
            )),
            SchedulerRole::Standby { leader } => log.info(format_args!(
                "standing by: {} leads the team's scheduler; this agent takes over if it stops or is cut off",
                leader.as_deref().unwrap_or("another desktop or agent")
            )),
        }
        self.role = Some(role.clone());
    }

    fn pass(&mut self, pass: &Pass, shutdown: &Shutdown, log: &Log, state: &mut AgentState) {
        self.role(&pass.role, log, state);
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
