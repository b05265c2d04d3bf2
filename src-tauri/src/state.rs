//! What the app holds while it runs: the core's manager, the in-process sandbox
//! emulator once the user starts it, and redirect results the window has yet to hear.

use std::sync::Arc;

use authdeck_core::authorize::{APP_REDIRECT_URI, APP_SCHEME};
use authdeck_core::manager::{Manager, ManagerOptions};
use authdeck_core::sandbox::{demo_clients, SandboxEndpoints};
use authdeck_core::store::db::Db;
use authdeck_core::store::keyring::KeyringStore;
use authdeck_core::store::paths::Paths;
use authdeck_core::{Error, ErrorCode, Result};
use authdeck_emulator::{EmulatorConfig, RunningEmulator};
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::Mutex;

use crate::commands::{AppInfo, CallbackResult, SandboxInfo, Snapshot};
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
    callbacks: std::sync::Mutex<Callbacks>,
    /// Counts the changes sent to the window (see [`AppState::note_change`]).
    changes: AtomicU64,
}

/// A redirect can finish before the window listens (one that started the app): its
/// result waits here and goes out with the window's first `snapshot`.
#[derive(Default)]
struct Callbacks {
    window_listening: bool,
    waiting: Vec<CallbackResult>,
}

impl AppState {
    pub fn open(paths: Paths, single_instance: bool) -> Result<Self> {
        paths.ensure()?;
        let db = Db::open(&paths.database())?;
        let secrets = Arc::new(KeyringStore::new(paths.keyring_service.clone()));
        let options = ManagerOptions {
            lock_dir: Some(paths.data_dir.join("locks")),
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
            callbacks: std::sync::Mutex::default(),
            changes: AtomicU64::new(0),
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
            sandbox: self
                .sandbox
                .lock()
                .await
                .as_ref()
                .map(|(_, info)| info.clone()),
        }
    }

    /// A change is about to be sent to the window (after the store has it).
    pub fn note_change(&self) {
        self.changes.fetch_add(1, Ordering::SeqCst);
    }

    /// What the window shows, for its first paint: read before the window exists.
    pub async fn first_snapshot(&self) -> Result<Snapshot> {
        // The count is read before the list: a change it misses is in the list, or
        // counted after it, and then `snapshot` sends the list again.
        let version = self.changes.load(Ordering::SeqCst);
        Ok(Snapshot {
            version,
            app_info: self.app_info().await,
            connections: Some(self.summaries().await?),
            callbacks: Vec::new(),
        })
    }

    /// What the window shows, asked for once it listens to events: from now on redirect
    /// results are sent as events; those that finished earlier come with this snapshot.
    /// The list is left out when nothing changed since the window's `known` version.
    pub async fn snapshot(&self, known: Option<u64>) -> Result<Snapshot> {
        let version = self.changes.load(Ordering::SeqCst);
        let connections = if known == Some(version) {
            None
        } else {
            Some(self.summaries().await?)
        };
        let app_info = self.app_info().await;
        let callbacks = match self.callbacks.lock() {
            Ok(mut c) => {
                c.window_listening = true;
                std::mem::take(&mut c.waiting)
            }
            Err(_) => Vec::new(),
        };
        Ok(Snapshot {
            version,
            app_info,
            connections,
            callbacks,
        })
    }

    async fn summaries(&self) -> Result<Vec<ConnectionSummary>> {
        let connections = self.manager.list().await?;
        Ok(connections.iter().map(ConnectionSummary::from).collect())
    }

    /// A redirect finished: `Some` when the window listens and should be told now;
    /// `None` when it is kept for the window's first `snapshot`.
    pub fn deliver_callback(&self, result: CallbackResult) -> Option<CallbackResult> {
        let Ok(mut c) = self.callbacks.lock() else {
            return Some(result);
        };
        if c.window_listening {
            Some(result)
        } else {
            c.waiting.push(result);
            None
        }
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
