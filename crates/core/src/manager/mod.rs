//! The one façade the CLI and the desktop app call: clients, connections, the
//! FlowAccount authorization round trip, refresh, token, logout, history, and a stream
//! of change events. Every trigger (button, scheduler, CLI) goes through the same
//! methods, so there is one refresh code path.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde::Serialize;
use tokio::sync::broadcast;

use crate::authorize::{self, CallbackOutcome, APP_REDIRECT_URI, PENDING_LIFETIME};
use crate::clock::{SharedClock, SystemClock};
use crate::error::{Error, ErrorCode, Result};
use crate::journal::{Journal, JournalConfig, JournalKey};
use crate::locks::ConnectionLocks;
use crate::model::*;
use crate::providers::http::HttpSettings;
use crate::providers::iot::IotClient;
use crate::providers::{fedex, flowaccount, iot, presets, HttpClient, IssuedTokens};
use crate::secret::{
    AccessToken, ChildSecret, ClientSecret, OAuthState, Password, PkceVerifier, RefreshToken,
};
use crate::shutdown::{stopping, Shutdown};
use crate::store::backend::{Backend, CommitOutcome, OrphanProbe};
use crate::store::db::{Db, PendingRecord};
use crate::store::local::LocalBackend;
use crate::store::vault::{TokenBundle, Vault};
use crate::store::SecretStore;

mod activity;
mod answers;
mod batch;
mod check;
mod clients;
mod commit;
mod connect;
mod devices;
mod history;
mod logout;
mod open;
mod refresh;
mod sandbox;
use batch::BatchSlot;
pub use devices::{DeviceCheckReport, DeviceCredentials, NewDevice};

/// What changed, for fronts that keep a live view.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    ConnectionChanged {
        connection: Box<Connection>,
    },
    ConnectionRemoved {
        id: String,
    },
    ClientsChanged,
    /// A device was added, checked or removed.
    DevicesChanged,
    /// Something was written to the history (e.g. a rejected callback).
    HistoryAdded {
        connection_id: Option<String>,
    },
}

#[derive(Clone)]
pub struct ManagerOptions {
    pub http: HttpSettings,
    /// How many refreshes `refresh_all` runs at once.
    pub refresh_concurrency: usize,
    pub clock: SharedClock,
    /// Where cross-process connection locks live (`<data dir>/locks`); `None` locks
    /// within this process only (unit tests).
    pub lock_dir: Option<std::path::PathBuf>,
    /// How long to wait for another process to finish with a connection.
    pub lock_wait: Duration,
    /// The front's handle to stop this manager without dropping an answer.
    pub shutdown: Shutdown,
    /// Where answers are made durable before they are committed (`<data dir>/journal`);
    /// `None`: no journal (unit tests).
    pub journal: Option<JournalConfig>,
}

impl Default for ManagerOptions {
    fn default() -> Self {
        Self {
            http: HttpSettings::default(),
            refresh_concurrency: 16,
            clock: Arc::new(SystemClock),
            lock_dir: None,
            lock_wait: crate::locks::DEFAULT_LOCK_WAIT,
            shutdown: Shutdown::new(),
            journal: None,
        }
    }
}

/// A new app registration, as entered by the user. The window sends one as JSON (the
/// shell's `NewClientInput`); one read from JSON is never a sandbox client.
#[derive(Debug, Clone, serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct NewClient {
    pub name: String,
    pub provider: Provider,
    /// `None`: sandbox, unless custom URLs are given (then `custom`).
    pub environment: Option<Environment>,
    pub client_id: String,
    #[cfg_attr(feature = "ts", ts(type = "string | null"))]
    pub client_secret: Option<ClientSecret>,
    pub authorize_url: Option<String>,
    pub token_url: Option<String>,
    /// IoT platform: the deployment's `auth_url`.
    pub auth_url: Option<String>,
    /// FlowAccount: the API base (`{it}/company/info`); `None`: the environment's preset,
    /// or for custom endpoints the token URL without its `/token`.
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub api_url: Option<String>,
    /// IoT platform: the device API's base (default: the environment's preset, NETPIE's
    /// `https://api.netpie.io/v2/device` in production).
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub device_api_url: Option<String>,
    pub redirect_uri: Option<String>,
    pub pkce: bool,
    pub iot_basic_auth: IotBasicAuth,
    pub iot_body: IotBodyEncoding,
    /// A demo client of the built-in sandbox (`crate::sandbox::demo_clients`).
    #[serde(skip)]
    #[cfg_attr(feature = "ts", ts(skip))]
    pub sandbox: bool,
}

impl NewClient {
    pub fn new(name: impl Into<String>, provider: Provider, client_id: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            provider,
            environment: None,
            client_id: client_id.into(),
            client_secret: None,
            authorize_url: None,
            token_url: None,
            auth_url: None,
            api_url: None,
            device_api_url: None,
            redirect_uri: None,
            // PKCE (S256) by default for FlowAccount: it defeats code injection (RFC 9700
            // §4.5); `pkce = false` is the explicit opt-out.
            pkce: provider == Provider::FlowAccount,
            iot_basic_auth: IotBasicAuth::Raw,
            iot_body: IotBodyEncoding::Form,
            sandbox: false,
        }
    }
}

/// A started FlowAccount authorization: send the user's system browser to `authorize_url`.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct PendingAuthorization {
    /// Names this authorization (to cancel it, or to match a redirect): the SHA-256 of
    /// its `state`, as SQLite stores it. Not a secret.
    pub id: String,
    /// Carries the `state`: show it to the user or open it, never log it.
    pub authorize_url: String,
    pub redirect_uri: String,
    pub expires_at: chrono::DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum LogoutOutcome {
    /// IoT: the server revoked the session, local secrets are deleted.
    Revoked,
    /// IoT: the server no longer knew the session; local secrets are deleted.
    AlreadyRevoked,
    /// IoT: the session's tokens were missing from the keyring, so the server could not be
    /// asked to end it: the local record is deleted, and the session may still be active
    /// at the server until it expires (log in again, then log out, to end it).
    TokensMissing,
    /// FlowAccount / FedEx: local secrets deleted (no revocation endpoint is documented).
    Disconnected,
}

/// One line of `refresh_all`'s result.
#[derive(Debug)]
pub struct RefreshReport {
    pub id: String,
    pub label: String,
    pub result: Result<Connection>,
}

/// What stays on this machine whatever the [`Backend`]: the devices (SQLite and
/// keyring; team mode keeps them local for now), the answer journal's key (keyring) and
/// the cross-process lock that guards its creation. With the local backend these are the
/// same database, keyring and lock directory the backend uses.
#[derive(Clone)]
pub struct LocalParts {
    pub db: Arc<Db>,
    pub vault: Vault,
    pub locks: Arc<ConnectionLocks>,
    /// The keyring the vault writes to (a team front reads its membership's key and
    /// password from it).
    pub secrets: Arc<dyn SecretStore>,
}

impl LocalParts {
    /// `db` and `secrets`, with the file locks `options` names (`lock_dir`, `lock_wait`).
    pub fn new(db: Db, secrets: Arc<dyn SecretStore>, options: &ManagerOptions) -> Self {
        Self {
            db: Arc::new(db),
            vault: Vault::new(secrets.clone()),
            secrets,
            locks: Arc::new(ConnectionLocks::new(
                options.lock_dir.clone(),
                options.lock_wait,
            )),
        }
    }

    /// The local backend on these parts (what [`Manager::new`] uses).
    pub fn backend(&self, clock: SharedClock) -> LocalBackend {
        LocalBackend::new(self.db.clone(), self.vault.clone(), self.locks.clone()).with_clock(clock)
    }
}

struct Inner {
    /// Where clients, connections, their tokens and locks, history and pending
    /// authorizations are kept (see `store::backend`).
    store: Arc<dyn Backend>,
    /// What stays on this machine (devices, the journal key); see [`LocalParts`].
    local: LocalParts,
    http: HttpClient,
    clock: SharedClock,
    refresh_concurrency: usize,
    events: broadcast::Sender<Event>,
    shutdown: Shutdown,
    /// How long the front waits for calls in flight when it stops.
    shutdown_grace: Duration,
    journal: Option<Arc<Journal>>,
    journal_key: tokio::sync::OnceCell<JournalKey>,
    /// When the keyring was last seen unlocked (see `answers`).
    keyring_proof: std::sync::Mutex<Option<std::time::Instant>>,
    /// Answers whose commit failed, by connection id (see `answers`).
    unsaved: std::sync::Mutex<std::collections::HashMap<String, answers::Unsaved>>,
}

/// Cheap to clone; all clones share one database handle, keyring and HTTP pool.
#[derive(Clone)]
pub struct Manager {
    inner: Arc<Inner>,
}

impl Manager {
    /// A manager on the local backend: `db` and `secrets` (the keyring) hold everything,
    /// with the file locks of `options.lock_dir`.
    pub fn new(db: Db, secrets: Arc<dyn SecretStore>, options: ManagerOptions) -> Result<Self> {
        let local = LocalParts::new(db, secrets, &options);
        let store = Arc::new(local.backend(options.clock.clone()));
        Self::with_backend(store, local, options)
    }

    /// A manager on any backend (team mode passes its team store), with this machine's
    /// `local` parts for what stays per machine. `options.lock_dir` and `lock_wait`
    /// are the backend's business here (they made `local.locks`).
    pub fn with_backend(
        store: Arc<dyn Backend>,
        local: LocalParts,
        options: ManagerOptions,
    ) -> Result<Self> {
        let (events, _) = broadcast::channel(256);
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                local,
                shutdown_grace: Shutdown::grace(options.http.request_timeout),
                http: HttpClient::lazy(options.http),
                clock: options.clock,
                refresh_concurrency: options.refresh_concurrency.max(1),
                events,
                shutdown: options.shutdown,
                journal: options.journal.map(|c| Arc::new(Journal::new(c))),
                journal_key: tokio::sync::OnceCell::new(),
                keyring_proof: std::sync::Mutex::new(None),
                unsaved: Default::default(),
            }),
        })
    }

    /// The handle a front stops this manager with (see [`crate::shutdown`]).
    pub fn shutdown(&self) -> &Shutdown {
        &self.inner.shutdown
    }

    /// How long a front waits for the calls in flight once it began a stop.
    pub fn shutdown_grace(&self) -> Duration {
        self.inner.shutdown_grace
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    pub fn now(&self) -> chrono::DateTime<Utc> {
        self.inner.clock.now()
    }

    fn emit(&self, event: Event) {
        // No receivers is fine (the CLI has none).
        let _ = self.inner.events.send(event);
    }

    /// The store behind this manager (see `store::backend`).
    pub fn store(&self) -> &Arc<dyn Backend> {
        &self.inner.store
    }

    /// Changes other processes or machines make to the store (the team store's feed,
    /// for a front's live view); `None` when the store has no feed (the local store:
    /// [`Manager::subscribe`] and the data directory's watch).
    pub fn store_changes(&self) -> Option<broadcast::Receiver<crate::store::StoreChange>> {
        self.inner.store.changes()
    }

    /// Run a (blocking) call on this machine's database (devices) on the blocking pool.
    async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Db) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let db = self.inner.local.db.clone();
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(|_| Error::internal("A database call panicked."))?
    }

    // ---- connections: reading ------------------------------------------------------

    pub async fn list(&self) -> Result<Vec<Connection>> {
        self.inner.store.connections().await
    }

    pub async fn connection(&self, reference: &str) -> Result<Connection> {
        self.inner.store.connection(reference).await
    }
}

/// The connection's grant is dead: say what the user must do for this provider.
fn reauthorization_required(conn: &Connection) -> Error {
    Error::new(
        ErrorCode::ReauthorizationRequired,
        reauthorize_message(conn),
    )
}

/// The connection's tokens are not in the keyring any more: say so, and how to get new
/// ones (for this provider).
fn tokens_missing_error(conn: &Connection) -> Error {
    Error::new(
        ErrorCode::ReauthorizationRequired,
        format!(
            "The tokens of {} are missing from the system keyring (deleted outside Authdeck?). {}",
            conn.label,
            match conn.provider {
                Provider::FlowAccount =>
                    "Reconnect the business (authorize it again) to get new ones.",
                Provider::Iot => "Log in again to get new ones.",
                Provider::Fedex => "Connect the project again to get a new token.",
            }
        ),
    )
}

fn reauthorize_message(conn: &Connection) -> String {
    match conn.provider {
        Provider::FlowAccount => format!(
            "FlowAccount business {} must be authorized again: connect it again.",
            conn.label
        ),
        Provider::Iot => format!("The IoT session of {} has ended: log in again.", conn.label),
        Provider::Fedex => format!("FedEx project {} must be connected again.", conn.label),
    }
}

fn iot_client(client: &Client) -> Result<IotClient<'_>> {
    Ok(IotClient {
        token_url: &client.endpoints.token_url,
        logout_url: client
            .endpoints
            .logout_url
            .as_ref()
            .ok_or_else(|| Error::internal("IoT client without logout URL."))?,
        client_id: &client.client_id,
        basic: client.options.iot_basic_auth,
        body: client.options.iot_body,
    })
}

/// Copy what a token response says about a connection into it.
fn apply_tokens(conn: &mut Connection, tokens: &IssuedTokens, now: chrono::DateTime<Utc>) {
    conn.token_type = tokens.token_type.clone().or(conn.token_type.take());
    conn.scope = tokens.scope.clone().or(conn.scope.take());
    conn.access_expires = tokens.access_expires;
    if tokens.refresh_expires.is_some() || tokens.refresh_token.is_some() {
        conn.refresh_expires = tokens.refresh_expires;
    }
    if tokens.support_code.is_some() {
        conn.support_code = tokens.support_code.clone();
    }
    if tokens.userinfo.is_some() {
        conn.userinfo = tokens.userinfo.clone();
    }
    if tokens.user_id.is_some() {
        conn.user_id = tokens.user_id.clone();
    }
    conn.jwt = tokens.jwt.clone();
    conn.updated_at = now;
}

fn bundle_of(conn: &Connection, access: AccessToken, refresh: Option<RefreshToken>) -> TokenBundle {
    TokenBundle::new(access, refresh, conn.access_expires, conn.refresh_expires)
}

/// What [`Manager::record_failure`] does when the failure could not be saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IfUnsaved {
    /// Still record it in the history and announce the connection.
    Announce,
    /// Stop there (the caller returns the save's error).
    Stop,
}
