//! What the app holds while it runs: the core's manager, the in-process sandbox
//! emulator once the user starts it, and the feed of changes the window follows.

use std::sync::Arc;

use authdeck_core::authorize::{APP_REDIRECT_URI, APP_SCHEME};
use authdeck_core::manager::{Manager, ManagerOptions};
use authdeck_core::sandbox::{demo_clients, SandboxEndpoints};
use authdeck_core::store::db::Db;
use authdeck_core::store::keyring::KeyringStore;
use authdeck_core::store::paths::Paths;
use authdeck_core::{Error, ErrorCode, Result};
use authdeck_emulator::{EmulatorConfig, RunningEmulator};
use tokio::sync::Mutex;

use crate::changes::ChangeFeed;
use crate::commands::{AppInfo, SandboxInfo, Snapshot};
use crate::summary::ConnectionSummary;

/// The sandbox's fixed port, shared with `authdeckctl sandbox`, so demo clients added
/// once keep pointing at the right place.
pub const SANDBOX_PORT: u16 = 47801;

pub struct AppState {
    manager: Manager,
    paths: Paths,
    single_instance: bool,
    deep_link_problem: std::sync::Mutex<Option<String>>,
    sandbox: Mutex<Option<(RunningEmulator, SandboxInfo)>>,
    /// What the window hears about changes (see `changes`).
    changes: ChangeFeed,
}

impl AppState {
    pub fn open(paths: Paths, single_instance: bool) -> Result<Self> {
        paths.ensure()?;
        let db = Db::open(&paths.database())?;
        let secrets = Arc::new(KeyringStore::new(paths.keyring_service.clone()));
        let options = ManagerOptions {
            lock_dir: Some(paths.data_dir.join("locks")),
            journal: Some(authdeck_core::journal::JournalConfig {
                dir: paths.data_dir.join("journal"),
                store: paths.keyring_service.clone(),
            }),
            ..ManagerOptions::default()
        };
        let manager = Manager::new(db, secrets, options)?;
        // Just the cause: the window words the consequence and the way out.
        let problem = (!single_instance).then(|| "No D-Bus session bus".to_string());
        Ok(Self {
            manager,
            paths,
            single_instance,
            deep_link_problem: std::sync::Mutex::new(problem),
            sandbox: Mutex::new(None),
            changes: ChangeFeed::default(),
        })
    }

    pub fn manager(&self) -> &Manager {
        &self.manager
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
        let version = self.changes.version();
        let connections = self.manager.list().await?;
        Ok(Snapshot {
            version,
            app_info: self.app_info().await,
            connections: connections.iter().map(ConnectionSummary::from).collect(),
        })
    }

    /// Start the built-in emulator (once) and register the demo clients that point at it.
    pub async fn start_sandbox(&self) -> Result<SandboxInfo> {
        let mut slot = self.sandbox.lock().await;
        if let Some((_, info)) = slot.as_ref() {
            return Ok(info.clone());
        }
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], SANDBOX_PORT));
        let emulator = authdeck_emulator::start(EmulatorConfig::demo(), addr).await.map_err(|e| {
            Error::new(
                ErrorCode::InvalidInput,
                format!("The sandbox could not start on 127.0.0.1:{SANDBOX_PORT}: is `authdeckctl sandbox` already running?"),
            )
            .with_detail(e.to_string())
        })?;
        let endpoints = SandboxEndpoints {
            flowaccount_authorize_url: emulator.flowaccount_authorize_url(),
            flowaccount_token_url: emulator.flowaccount_token_url(),
            fedex_token_url: emulator.fedex_token_url(),
            iot_auth_url: emulator.iot_auth_url(),
        };
        let mut names = Vec::new();
        for client in demo_clients(&endpoints) {
            let name = client.name.clone();
            match self.manager.add_client(client).await {
                Ok(_) => {}
                Err(e) if e.code == ErrorCode::AlreadyExists => {}
                Err(e) => return Err(e),
            }
            names.push(name);
        }
        let info = SandboxInfo {
            base_url: emulator.base_url(),
            clients: names,
        };
        tracing::info!(base_url = %info.base_url, "sandbox started");
        *slot = Some((emulator, info.clone()));
        Ok(info)
    }
}
