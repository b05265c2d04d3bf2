//! `authdeckctl agent status`: whether an agent runs for this data directory, and what
//! it last did.

use super::*;

/// `--json` of `agent status`.
#[derive(Serialize)]
pub(super) struct StatusView {
    pub(super) running: bool,
    /// `running`, `waiting_for_keyring`, `waiting_for_team` (in a team: the database did
    /// not answer at start), `stopping`; when not running: `stopped` (it
    /// stopped cleanly), `ended` (killed or crashed: its state file says it ran), or
    /// `never_ran`.
    pub(super) state: &'static str,
    pub(super) data_dir: PathBuf,
    /// Only while it runs (a dead agent's pid may be another process's by now).
    pub(super) pid: Option<u32>,
    pub(super) store: Option<String>,
    pub(super) since: Option<DateTime<Utc>>,
    pub(super) last_tick: Option<DateTime<Utc>>,
    pub(super) last_refresh: Option<RefreshRecord>,
    pub(super) next_due: Option<Due>,
    pub(super) refreshes_ok: u64,
    pub(super) refreshes_failed: u64,
    pub(super) stopped_at: Option<DateTime<Utc>>,
    /// In a team, while it runs: `leader` (it refreshes the team's connections) or
    /// `standby` (another desktop or agent does).
    pub(super) role: Option<Role>,
    /// While it stands by: who leads (`member on machine`), when known.
    pub(super) leader: Option<String>,
}

pub(super) fn status(paths: &Paths, json: bool) -> Result<ExitCode> {
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
        (true, Some(Phase::WaitingForTeam)) => "waiting_for_team",
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
        role: saved.as_ref().filter(|_| running).and_then(|s| s.role),
        leader: saved
            .as_ref()
            .filter(|_| running)
            .and_then(|s| s.leader.clone()),
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
    match (view.role, view.leader.as_deref()) {
        (Some(Role::Leader), _) => {
            outln!("Scheduler:     leads the team's (refreshes for every member)")
        }
        (Some(Role::Standby), leader) => outln!(
            "Scheduler:     stands by; {} leads the team's",
            leader.unwrap_or("another desktop or agent")
        ),
        (None, _) => {}
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
    } else if view.role == Some(Role::Standby) {
        outln!("Next refresh:  the leader's to make");
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

pub(super) fn relative(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    pub(super) fn relative_times_read_naturally() {
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
    pub(super) fn journal_stream_must_name_our_stdout() {
        let stdout = std::io::stdout();
        assert!(!is_our_stream("", &stdout));
        assert!(!is_our_stream("1:2:3", &stdout));
        assert!(!is_our_stream("x:y", &stdout));
        assert!(!is_our_stream("0:0", &stdout));
    }
}
