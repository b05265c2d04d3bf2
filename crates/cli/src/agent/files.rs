//! The agent's lock file (one agent per data directory) and its state file (what
//! `agent status` reads).

use super::*;

/// The agent's files in a data directory.
pub struct AgentFiles {
    pub(super) lock: PathBuf,
    pub(super) state: PathBuf,
}

impl AgentFiles {
    pub fn new(data_dir: &Path) -> Self {
        Self {
            lock: data_dir.join(LOCK_FILE),
            state: data_dir.join(STATE_FILE),
        }
    }

    /// Take the one agent lock of this data directory, or fail with `busy`.
    pub(super) async fn lock(&self) -> Result<File> {
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
    pub(super) fn held(&self) -> Result<bool> {
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
    pub(super) fn save(&self, state: &AgentState) {
        if let Err(e) = self.write(state) {
            tracing::warn!(error = %e, "could not write the agent's state file");
        }
    }

    pub(super) fn write(&self, state: &AgentState) -> std::io::Result<()> {
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
    pub(super) fn read(&self) -> Result<Option<AgentState>> {
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
pub(super) enum Phase {
    Running,
    WaitingForKeyring,
    /// In a team: the database did not answer when the agent started.
    WaitingForTeam,
    Stopping,
    Stopped,
}

/// In a team: this agent's part in the team's one scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Role {
    /// It refreshes the team's connections.
    Leader,
    /// Another desktop or agent does; this one takes over if that one stops.
    Standby,
}

/// What `<data dir>/agent.json` holds. No secret: ids, titles, times, error codes and
/// the core's (redacted) messages.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentState {
    pub(super) v: u32,
    pub(super) pid: u32,
    pub(super) started_at: DateTime<Utc>,
    /// `local` (this machine's SQLite + keyring) or `team` (the team's store).
    pub(super) store: String,
    pub(super) data_dir: PathBuf,
    pub(super) phase: Phase,
    /// The end of the last scheduler pass.
    pub(super) last_tick: Option<DateTime<Utc>>,
    pub(super) next_pass: Option<DateTime<Utc>>,
    pub(super) last_refresh: Option<RefreshRecord>,
    pub(super) next_due: Option<Due>,
    pub(super) refreshes_ok: u64,
    pub(super) refreshes_failed: u64,
    pub(super) stopped_at: Option<DateTime<Utc>>,
    /// In a team: whether it leads the team's scheduler (none before its first pass).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) role: Option<Role>,
    /// While it stands by: who leads (`member on machine`, the team's leadership row).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) leader: Option<String>,
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
            role: None,
            leader: None,
        }
    }

    pub(super) fn stopped(&mut self, at: DateTime<Utc>) {
        self.phase = Phase::Stopped;
        self.stopped_at = Some(at);
        self.next_due = None;
        self.next_pass = None;
        self.role = None;
        self.leader = None;
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct RefreshRecord {
    pub(super) at: DateTime<Utc>,
    pub(super) connection: String,
    pub(super) title: String,
    /// Its name (supportCode, FedEx project, IoT username) when the title is another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) name: Option<String>,
    pub(super) ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) code: Option<ErrorCode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) message: Option<String>,
}

impl RefreshRecord {
    pub(super) fn new(conn: Connection, result: &Result<Connection>) -> Self {
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
pub(super) struct Due {
    pub(super) at: DateTime<Utc>,
    pub(super) connection: String,
    pub(super) title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) name: Option<String>,
}

/// `title (name)`, or the title alone.
pub(super) fn titled(title: &str, name: Option<&str>) -> String {
    match name {
        Some(n) => format!("{title} ({n})"),
        None => title.to_owned(),
    }
}
