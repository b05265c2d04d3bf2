//! What the app holds while it runs: the core's manager, the in-process sandbox
//! emulator once the user starts it, and the feed of changes the window follows.

use authdeck_core::authorize::{APP_REDIRECT_URI, APP_SCHEME};
use authdeck_core::loopback::LoopbackFlows;
use authdeck_core::manager::{Manager, ManagerOptions};
use authdeck_core::sandbox::{LeaveReport, SandboxEndpoints};
use authdeck_core::store::paths::Paths;
use authdeck_core::ErrorCode;
use authdeck_core::{Error, Result};
use authdeck_emulator::{AdminToken, EmulatorConfig, RunningEmulator};
use authdeck_team::membership::Membership;
use authdeck_team::open::{open_manager_or_later, Opened};
use authdeck_team::Via;
use std::sync::Arc;

use tokio::sync::Mutex;

use crate::changes::{ChangeEvent, ChangeFeed};
use crate::commands::{AppInfo, SandboxInfo, Snapshot, StoreInfo};
use crate::summary::ConnectionSummary;
use crate::team_list::{self, TeamList};

/// `AUTHDECK_SANDBOX_PORT`: the port the in-app sandbox listens on. Unset: a free port,
/// new on every start (the sandbox clients are pointed at it each time).
pub const SANDBOX_PORT_ENV: &str = "AUTHDECK_SANDBOX_PORT";

/// `AUTHDECK_EMULATOR_ADMIN_TOKEN`: the sandbox's admin token, honoured by debug builds
/// only (the desktop E2E tests read the emulator's state with it). Release builds
/// always make up a fresh one and never show it.
pub const SANDBOX_ADMIN_TOKEN_ENV: &str = "AUTHDECK_EMULATOR_ADMIN_TOKEN";

/// The port asked for in `AUTHDECK_SANDBOX_PORT`, or 0 (any free port).
pub fn sandbox_port(value: Option<&std::ffi::OsStr>) -> Result<u16> {
    let Some(value) = value else {
        return Ok(0);
    };
    value
        .to_str()
        .and_then(|v| v.trim().parse::<u16>().ok())
        .ok_or_else(|| {
            Error::invalid_input(format!(
                "{SANDBOX_PORT_ENV} is not a port number (1-65535, or 0 for any free port)."
            ))
        })
}

pub struct AppState {
    manager: Manager,
    paths: Paths,
    /// Which store the manager is on (the team's when the data directory is in a team).
    opened: Opened,
    /// Team mode: the list as last known (shown while the database does not answer).
    team_list: Option<Arc<TeamList>>,
    single_instance: bool,
    deep_link_problem: std::sync::Mutex<Option<String>>,
    sandbox: Mutex<Option<(RunningEmulator, SandboxInfo)>>,
    /// What the window hears about changes (see `changes`).
    changes: ChangeFeed,
    /// Listeners for loopback redirects of authorizations started here.
    loopback: LoopbackFlows,
}

impl AppState {
    /// Open the data directory's store: the team's when it is in a team (also while the
    /// team database does not answer: the store opens by itself once it does; see
    /// `authdeck_team::open::open_manager_or_later`), else this desktop's own. Blocks;
    /// call it outside the async runtime.
    pub fn open(paths: Paths, single_instance: bool) -> Result<Self> {
        let (manager, opened) = tauri::async_runtime::block_on(open_manager_or_later(
            paths.clone(),
            ManagerOptions::default(),
            Via::Desktop,
        ))?;
        let team_list = match &opened {
            Opened::Local => None,
            Opened::Team { .. } => Membership::load(&paths.data_dir)?
                .map(|m| TeamList::load(paths.data_dir.clone(), &m.team_id)),
        };
        // Just the cause: the window words the consequence and the way out.
        let problem = (!single_instance).then(|| "No D-Bus session bus".to_string());
        Ok(Self {
            manager,
            paths,
            opened,
            team_list,
            single_instance,
            deep_link_problem: std::sync::Mutex::new(problem),
            sandbox: Mutex::new(None),
            changes: ChangeFeed::default(),
            loopback: LoopbackFlows::default(),
        })
    }

    pub fn manager(&self) -> &Manager {
        &self.manager
    }

    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    /// Team mode: the last known list (`None`: the window shows this desktop's store).
    pub fn team_list(&self) -> Option<&Arc<TeamList>> {
        self.team_list.as_ref()
    }

    /// Which store the window shows, and whether it answers.
    pub fn store_info(&self) -> StoreInfo {
        let reachable = team_list::reachable(&self.manager);
        match &self.opened {
            Opened::Local => StoreInfo {
                team: None,
                machine: None,
                reachable: true,
                last_known_at: None,
            },
            Opened::Team { team_name, machine } => StoreInfo {
                team: Some(team_name.clone()),
                machine: Some(machine.clone()),
                reachable,
                last_known_at: if reachable {
                    None
                } else {
                    self.team_list.as_ref().and_then(|l| l.as_of())
                },
            },
        }
    }

    pub fn loopback(&self) -> &LoopbackFlows {
        &self.loopback
    }

    pub fn report_deep_link_problem(&self, problem: String) {
        if let Ok(mut slot) = self.deep_link_problem.lock() {
            slot.get_or_insert(problem);
        }
    }

    pub async fn app_info(&self) -> AppInfo {
        AppInfo {
            version: env!("CARGO_PKG_VERSION").to_string(),
            redirect_uri: APP_REDIRECT_URI.to_string(),
            scheme: APP_SCHEME.to_string(),
            data_dir: self.paths.data_dir.display().to_string(),
            single_instance: self.single_instance,
            deep_link_problem: self.deep_link_problem.lock().ok().and_then(|p| p.clone()),
            unsaved_tokens: self.manager.unsaved_labels(),
            store: self.store_info(),
            sandbox: self
                .sandbox
                .lock()
                .await
                .as_ref()
                .map(|(_, info)| info.clone()),
        }
    }

    pub fn changes(&self) -> &ChangeFeed {
        &self.changes
    }

    /// What the window shows; it then follows the `changes` after `version`.
    pub async fn snapshot(&self) -> Result<Snapshot> {
        // The version is read before the list: a change it misses is in the list, or
        // comes after `version` in the feed (and is applied again, harmlessly).
        // In a team whose database does not answer: the last known list (the app info
        // says it is, and of when).
        let version = self.changes.version();
        let connections = match (self.manager.list().await, &self.team_list) {
            (Ok(connections), list) => {
                let rows: Vec<_> = connections.iter().map(ConnectionSummary::from).collect();
                if let Some(list) = list {
                    list.replace(&rows);
                }
                rows
            }
            (Err(e), Some(list)) if e.code == ErrorCode::TeamUnavailable => list.rows().0,
            (Err(e), _) => return Err(e),
        };
        Ok(Snapshot {
            version,
            app_info: self.app_info().await,
            connections,
        })
    }

    /// Start the built-in emulator (once), on a free port unless `AUTHDECK_SANDBOX_PORT`
    /// asks for one, and point the sandbox clients at it (adding the missing demo ones).
    pub async fn start_sandbox(&self) -> Result<SandboxInfo> {
        let mut slot = self.sandbox.lock().await;
        if let Some((_, info)) = slot.as_ref() {
            return Ok(info.clone());
        }
        let port = sandbox_port(std::env::var_os(SANDBOX_PORT_ENV).as_deref())?;
        let mut config = EmulatorConfig::demo();
        if cfg!(debug_assertions) {
            if let Ok(token) = std::env::var(SANDBOX_ADMIN_TOKEN_ENV) {
                config.admin_token = Some(AdminToken::new(token).map_err(|e| {
                    Error::invalid_input(format!("{SANDBOX_ADMIN_TOKEN_ENV}: {e}"))
                })?);
            }
        }
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let emulator = authdeck_core::sandbox::start(
            config,
            addr,
            &format!("pick another {SANDBOX_PORT_ENV}, or leave it unset for a free port."),
        )
        .await?;
        let endpoints = SandboxEndpoints::of(&emulator);
        let installed = match self.manager.install_sandbox(&endpoints, true).await {
            Ok(installed) => installed,
            Err(e) => {
                emulator.shutdown().await;
                return Err(e);
            }
        };
        let info = SandboxInfo {
            base_url: emulator.base_url(),
            clients: installed.clients(),
            skipped: installed.skipped,
        };
        tracing::info!(base_url = %info.base_url, "sandbox started");
        *slot = Some((emulator, info.clone()));
        drop(slot);
        self.changes.push(ChangeEvent::AppInfoChanged);
        Ok(info)
    }

    /// Stop the sandbox if it runs. Its clients stay (they say the sandbox is not
    /// running until it is started again).
    pub async fn stop_sandbox(&self) {
        let running = self.sandbox.lock().await.take();
        if let Some((emulator, _)) = running {
            emulator.shutdown().await;
            tracing::info!("sandbox stopped");
            self.changes.push(ChangeEvent::AppInfoChanged);
        }
    }

    /// "Leave the sandbox": log out and remove every sandbox connection and client
    /// (while the sandbox still runs, so its sessions are revoked), then stop it.
    pub async fn leave_sandbox(&self) -> Result<LeaveReport> {
        let report = self.manager.leave_sandbox().await?;
        self.stop_sandbox().await;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use super::sandbox_port;

    #[test]
    fn the_sandbox_port_is_free_unless_asked_for() {
        assert_eq!(sandbox_port(None).unwrap(), 0);
        assert_eq!(sandbox_port(Some(OsStr::new("47801"))).unwrap(), 47801);
        assert_eq!(sandbox_port(Some(OsStr::new("0"))).unwrap(), 0);
        for bad in ["", "http", "65536", "-1"] {
            let e = sandbox_port(Some(OsStr::new(bad))).unwrap_err();
            assert_eq!(e.code, authdeck_core::ErrorCode::InvalidInput, "{bad:?}");
        }
    }
}
