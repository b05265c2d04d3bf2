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
use crate::secret::{AccessToken, ChildSecret, ClientSecret, OAuthState, Password, RefreshToken};
use crate::shutdown::{stopping, Shutdown};
use crate::store::db::{Db, PendingRecord};
use crate::store::vault::{TokenBundle, Vault};
use crate::store::SecretStore;

mod activity;
mod answers;
mod sandbox;
mod token_sets;
use token_sets::{BatchSlot, SharedSet};

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

/// A new app registration, as entered by the user.
#[derive(Debug, Clone)]
pub struct NewClient {
    pub name: String,
    pub provider: Provider,
    /// `None`: sandbox, unless custom URLs are given (then `custom`).
    pub environment: Option<Environment>,
    pub client_id: String,
    pub client_secret: Option<ClientSecret>,
    pub authorize_url: Option<String>,
    pub token_url: Option<String>,
    /// IoT platform: the deployment's `auth_url`.
    pub auth_url: Option<String>,
    pub redirect_uri: Option<String>,
    pub pkce: bool,
    pub iot_basic_auth: IotBasicAuth,
    pub iot_body: IotBodyEncoding,
    /// A demo client of the built-in sandbox (`crate::sandbox::demo_clients`).
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

struct Inner {
    db: Arc<Db>,
    vault: Vault,
    http: HttpClient,
    clock: SharedClock,
    refresh_concurrency: usize,
    /// One lock per connection, within and across processes.
    locks: ConnectionLocks,
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
    pub fn new(db: Db, secrets: Arc<dyn SecretStore>, options: ManagerOptions) -> Result<Self> {
        let (events, _) = broadcast::channel(256);
        Ok(Self {
            inner: Arc::new(Inner {
                db: Arc::new(db),
                vault: Vault::new(secrets),
                shutdown_grace: Shutdown::grace(options.http.request_timeout),
                http: HttpClient::lazy(options.http),
                clock: options.clock,
                refresh_concurrency: options.refresh_concurrency.max(1),
                locks: ConnectionLocks::new(options.lock_dir, options.lock_wait),
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

    /// Run a (blocking) database call on the blocking pool.
    async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Db) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let db = self.inner.db.clone();
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(|_| Error::internal("A database call panicked."))?
    }

    async fn record(
        &self,
        connection_id: Option<&str>,
        client_id: Option<&str>,
        event: &str,
        outcome: std::result::Result<(), &Error>,
        detail: Option<String>,
    ) {
        let entry = HistoryEntry::new(
            self.now(),
            event,
            match outcome {
                Ok(()) => "ok".to_string(),
                Err(e) => e.code.as_str().to_string(),
            },
            detail.or_else(|| outcome.err().map(|e| e.message.clone())),
        );
        let (conn, client) = (
            connection_id.map(str::to_owned),
            client_id.map(str::to_owned),
        );
        let conn2 = conn.clone();
        if let Err(e) = self
            .db(move |db| db.add_history(conn.as_deref(), client.as_deref(), &entry))
            .await
        {
            tracing::warn!(code = %e.code, "could not write a history entry");
        }
        self.emit(Event::HistoryAdded {
            connection_id: conn2,
        });
    }

    /// A rejected redirect, in the history: rejections of one kind (same message, the
    /// parts a sender chooses masked; same client) within one minute share one row with a
    /// count, so a burst of forged links cannot flood the history.
    async fn record_rejection(&self, client_id: Option<&str>, error: &Error) {
        let detail = format!(
            "{}{}",
            error.message,
            error
                .detail
                .as_deref()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default()
        );
        let entry = HistoryEntry::new(
            self.now(),
            "callback_rejected",
            error.code.as_str(),
            Some(detail),
        );
        let kind = format!(
            "callback_rejected:{}:{}",
            error.code.as_str(),
            rejection_kind(&error.message)
        );
        let client = client_id.map(str::to_owned);
        if let Err(e) = self
            .db(move |db| db.add_history_coalesced(None, client.as_deref(), &entry, &kind))
            .await
        {
            tracing::warn!(code = %e.code, "could not write a history entry");
        }
        self.emit(Event::HistoryAdded {
            connection_id: None,
        });
    }

    // ---- clients -------------------------------------------------------------------

    pub async fn add_client(&self, new: NewClient) -> Result<Client> {
        let client = self.validate_new_client(&new)?;
        let name = client.name.clone();
        if self.db(move |db| db.client(&name)).await.is_ok() {
            return Err(Error::new(
                ErrorCode::AlreadyExists,
                format!(
                    "A client named {:?} exists already: pick another name.",
                    client.name
                ),
            ));
        }
        // Secret first: if the keyring is unavailable, nothing is written anywhere.
        if let Some(secret) = &new.client_secret {
            self.inner
                .vault
                .set_client_secret(&client.id, secret)
                .await?;
        }
        let stored = client.clone();
        if let Err(e) = self.db(move |db| db.insert_client(&stored)).await {
            let _ = self.inner.vault.delete_client_secret(&client.id).await;
            return Err(e);
        }
        tracing::info!(client = %client.id, provider = %client.provider, "client added");
        self.emit(Event::ClientsChanged);
        Ok(client)
    }

    fn validate_new_client(&self, new: &NewClient) -> Result<Client> {
        let name = new.name.trim();
        if name.is_empty()
            || name.chars().count() > limits::NAME
            || name.chars().any(char::is_control)
        {
            return Err(Error::invalid_input(format!(
                "A client name is 1 to {} printable characters.",
                limits::NAME
            )));
        }
        let client_id = new.client_id.trim();
        check_length("The client id", client_id, limits::CLIENT_ID)?;
        if client_id.is_empty() || client_id.chars().any(char::is_control) {
            return Err(Error::invalid_input(
                "The client id is empty or not printable.",
            ));
        }
        for (what, url) in [
            ("The authorize URL", &new.authorize_url),
            ("The token URL", &new.token_url),
            ("The auth URL", &new.auth_url),
            ("The redirect URI", &new.redirect_uri),
        ] {
            if let Some(url) = url {
                check_length(what, url, limits::URL)?;
            }
        }
        if let Some(secret) = &new.client_secret {
            check_secret_length("The client secret", secret)?;
        }
        let has_custom =
            new.authorize_url.is_some() || new.token_url.is_some() || new.auth_url.is_some();
        let environment = new.environment.unwrap_or(if has_custom {
            Environment::Custom
        } else {
            Environment::Sandbox
        });
        let preset = presets::endpoints(new.provider, environment);
        let url =
            |given: &Option<String>| given.as_deref().map(presets::validate_endpoint).transpose();
        let mut options = ClientOptions::default();
        let endpoints = match new.provider {
            Provider::FlowAccount => {
                let authorize_url = url(&new.authorize_url)?
                    .or_else(|| preset.as_ref().and_then(|p| p.authorize_url.clone()))
                    .ok_or_else(|| {
                        Error::invalid_input(
                            "FlowAccount needs --authorize-url for a custom environment.",
                        )
                    })?;
                let token_url = url(&new.token_url)?
                    .or_else(|| preset.as_ref().map(|p| p.token_url.clone()))
                    .ok_or_else(|| {
                        Error::invalid_input(
                            "FlowAccount needs --token-url for a custom environment.",
                        )
                    })?;
                let redirect = new.redirect_uri.as_deref().unwrap_or(APP_REDIRECT_URI);
                options.redirect_uri =
                    Some(authorize::validate_redirect_uri(redirect)?.to_string());
                options.pkce = new.pkce;
                if new.client_secret.as_ref().is_none_or(|s| s.is_empty()) {
                    return Err(Error::invalid_input("FlowAccount clients are confidential: give the client secret (--client-secret-stdin)."));
                }
                Endpoints {
                    authorize_url: Some(authorize_url),
                    token_url,
                    logout_url: None,
                }
            }
            Provider::Fedex => {
                let token_url = url(&new.token_url)?
                    .or_else(|| preset.as_ref().map(|p| p.token_url.clone()))
                    .ok_or_else(|| {
                        Error::invalid_input("FedEx needs --token-url for a custom environment.")
                    })?;
                if new.client_secret.as_ref().is_none_or(|s| s.is_empty()) {
                    return Err(Error::invalid_input(
                        "A FedEx project needs its secret key (--client-secret-stdin).",
                    ));
                }
                Endpoints {
                    authorize_url: None,
                    token_url,
                    logout_url: None,
                }
            }
            Provider::Iot => {
                if new.client_secret.is_some() {
                    return Err(Error::invalid_input(
                        "The IoT platform uses no client secret: leave it out.",
                    ));
                }
                options.iot_basic_auth = new.iot_basic_auth;
                options.iot_body = new.iot_body;
                match url(&new.auth_url)? {
                    Some(auth_url) => presets::iot_endpoints(&auth_url),
                    None => preset.ok_or_else(|| {
                        Error::invalid_input(
                            "The IoT platform has no sandbox preset: give --auth-url.",
                        )
                    })?,
                }
            }
        };
        if new.provider != Provider::FlowAccount && (new.redirect_uri.is_some() || new.pkce) {
            return Err(Error::invalid_input(
                "--redirect-uri and --pkce apply to FlowAccount clients only.",
            ));
        }
        Ok(Client {
            id: uuid::Uuid::new_v4().to_string(),
            name: name.to_string(),
            provider: new.provider,
            environment,
            client_id: client_id.to_string(),
            endpoints,
            options,
            has_secret: new.client_secret.is_some(),
            created_at: self.now(),
            sandbox: new.sandbox,
        })
    }

    pub async fn clients(&self) -> Result<Vec<Client>> {
        self.db(|db| db.clients()).await
    }

    pub async fn client(&self, reference: &str) -> Result<Client> {
        let r = reference.to_owned();
        self.db(move |db| db.client(&r)).await
    }

    pub async fn remove_client(&self, reference: &str) -> Result<()> {
        let client = self.client(reference).await?;
        let id = client.id.clone();
        let n = self
            .db(move |db| db.connection_count_for_client(&id))
            .await?;
        if n > 0 {
            return Err(Error::invalid_input(format!(
                "Client {:?} still has {n} connection(s): log out or disconnect them first.",
                client.name
            )));
        }
        self.inner.vault.delete_client_secret(&client.id).await?;
        let id = client.id.clone();
        self.db(move |db| db.delete_client(&id)).await?;
        self.emit(Event::ClientsChanged);
        Ok(())
    }

    // ---- connections: reading ------------------------------------------------------

    pub async fn list(&self) -> Result<Vec<Connection>> {
        self.db(|db| db.connections()).await
    }

    pub async fn connection(&self, reference: &str) -> Result<Connection> {
        let r = reference.to_owned();
        self.db(move |db| db.connection(&r)).await
    }

    /// Newest first. With no reference: every entry, including rejected callbacks.
    pub async fn history(
        &self,
        reference: Option<&str>,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>> {
        let id = match reference {
            None => None,
            Some(r) => match self.connection(r).await {
                Ok(c) => Some(c.id),
                // A disconnected connection keeps its history under its id.
                Err(e) if e.code == ErrorCode::NotFound => Some(r.to_owned()),
                Err(e) => return Err(e),
            },
        };
        let missing = id.clone();
        let entries = self.db(move |db| db.history(id.as_deref(), limit)).await?;
        if entries.is_empty() {
            if let Some(r) = missing {
                if self.connection(&r).await.is_err() {
                    return Err(Error::not_found(format!(
                        "No connection or history for {r:?}."
                    )));
                }
            }
        }
        Ok(entries)
    }

    // ---- connecting ----------------------------------------------------------------

    /// Start a FlowAccount authorization. The returned URL is for the system browser.
    pub async fn begin_flowaccount(&self, client_ref: &str) -> Result<PendingAuthorization> {
        let client = self.client(client_ref).await?;
        if client.provider != Provider::FlowAccount {
            return Err(Error::invalid_input(format!(
                "{:?} is not a FlowAccount client.",
                client.name
            )));
        }
        // The browser would only say "unable to connect".
        sandbox::ensure_running(&client).await?;
        let authorize_url = client
            .endpoints
            .authorize_url
            .clone()
            .ok_or_else(|| Error::internal("FlowAccount client without authorize URL."))?;
        let redirect_uri = client
            .options
            .redirect_uri
            .clone()
            .unwrap_or_else(|| APP_REDIRECT_URI.to_string());
        let state: OAuthState = authorize::random_token();
        let state_hash = authorize::state_hash(state.expose());
        let challenge = if client.options.pkce {
            let verifier = authorize::random_token();
            self.inner
                .vault
                .set_pkce_verifier(&state_hash, &verifier)
                .await?;
            Some(authorize::pkce_challenge(&verifier))
        } else {
            None
        };
        let now = self.now();
        let id = state_hash.clone();
        let record = PendingRecord {
            state_hash,
            client_id: client.id.clone(),
            redirect_uri: redirect_uri.clone(),
            pkce: challenge.is_some(),
            reconnect_connection_id: None,
            created_at: now,
            expires_at: now + PENDING_LIFETIME,
            consumed_at: None,
        };
        let expires_at = record.expires_at;
        self.db(move |db| {
            db.purge_pending(now - chrono::Duration::days(1))?;
            db.insert_pending(&record)
        })
        .await?;
        let url = flowaccount::authorize_url(
            &authorize_url,
            &client.client_id,
            &redirect_uri,
            state.expose(),
            challenge.as_deref(),
        );
        tracing::info!(client = %client.id, "authorization started");
        Ok(PendingAuthorization {
            id,
            authorize_url: url.to_string(),
            redirect_uri,
            expires_at,
        })
    }

    /// Whether `authorize_url` carries the `state` of an authorization that is still
    /// pending: started, not used, not expired. Only that is worth opening again.
    pub async fn authorization_is_pending(&self, authorize_url: &str) -> Result<bool> {
        let url = url::Url::parse(authorize_url)
            .map_err(|_| Error::invalid_input("Not an authorize URL."))?;
        let mut states = url.query_pairs().filter(|(k, _)| k == "state");
        let (Some((_, state)), None) = (states.next(), states.next()) else {
            return Ok(false);
        };
        let hash = authorize::state_hash(&state);
        let now = self.now();
        let pending = self.db(move |db| db.pending(&hash)).await?;
        Ok(pending.is_some_and(|p| p.consumed_at.is_none() && p.expires_at > now))
    }

    /// Finish an authorization from the redirect URL the browser was sent to (custom
    /// scheme deep link or loopback). Untrusted input: anything wrong is rejected,
    /// recorded in the history, and changes nothing else.
    pub async fn complete_callback(&self, raw_url: &str) -> Result<Connection> {
        let mut used = None;
        let result = self.complete_callback_inner(raw_url, &mut used).await;
        // Once its state was used, the pending authorization records how it ended.
        if let Some(hash) = used {
            let outcome = match &result {
                Ok(_) => "ok",
                Err((e, _)) => e.code.as_str(),
            };
            if let Err(e) = self
                .db(move |db| db.set_pending_outcome(&hash, outcome))
                .await
            {
                tracing::warn!(code = %e.code, "could not record how an authorization ended");
            }
        }
        match result {
            Ok(c) => Ok(c),
            Err((e, client_id)) => {
                if e.code == ErrorCode::InvalidCallback {
                    self.record_rejection(client_id.as_deref(), &e).await;
                } else {
                    self.record(
                        None,
                        client_id.as_deref(),
                        "connect",
                        Err(&e),
                        Some(format!(
                            "{}{}",
                            e.message,
                            e.detail
                                .as_deref()
                                .map(|d| format!(" ({d})"))
                                .unwrap_or_default()
                        )),
                    )
                    .await;
                }
                tracing::warn!(code = %e.code, "authorization callback failed");
                Err(e)
            }
        }
    }

    async fn complete_callback_inner(
        &self,
        raw_url: &str,
        used: &mut Option<String>,
    ) -> std::result::Result<Connection, (Error, Option<String>)> {
        let callback = authorize::parse_callback(raw_url).map_err(|e| (e, None))?;
        let hash = authorize::state_hash(callback.state.expose());
        let h = hash.clone();
        let pending = self
            .db(move |db| db.pending(&h))
            .await
            .map_err(|e| (e, None))?
            .ok_or_else(|| (Error::invalid_callback("This redirect does not belong to an authorization started by Authdeck (unknown state): ignored."), None))?;
        let client_id = Some(pending.client_id.clone());
        let fail = |e: Error| (e, client_id.clone());
        if pending.consumed_at.is_some() {
            return Err(fail(Error::invalid_callback(
                "This redirect was already used (replayed state): ignored.",
            )));
        }
        let now = self.now();
        if pending.expires_at <= now {
            return Err(fail(Error::invalid_callback(
                "This authorization expired (10 minutes): start connecting again.",
            )));
        }
        if !authorize::matches_redirect(&callback, &pending.redirect_uri) {
            return Err(fail(Error::invalid_callback("The redirect arrived at a different address than the authorization was started with: ignored.")));
        }
        let h = hash.clone();
        if !self
            .db(move |db| db.consume_pending(&h, now))
            .await
            .map_err(fail)?
        {
            return Err(fail(Error::invalid_callback(
                "This redirect was already used (replayed state): ignored.",
            )));
        }
        *used = Some(hash.clone());
        let verifier = if pending.pkce {
            self.inner
                .vault
                .take_pkce_verifier(&hash)
                .await
                .map_err(fail)?
        } else {
            None
        };
        let code = match callback.outcome {
            CallbackOutcome::Denied { error, description } => {
                return Err(fail(authorize::denied_error(
                    &error,
                    description.as_deref(),
                )))
            }
            CallbackOutcome::Code(code) => code,
        };
        let client = self.client(&pending.client_id).await.map_err(fail)?;
        // Held until the connection is saved: a stop waits for it.
        let _in_flight = self.inner.shutdown.begin_call().map_err(fail)?;
        let secret = self
            .inner
            .vault
            .client_secret(&client.id, &client.name)
            .await
            .map_err(fail)?;
        let tokens = flowaccount::exchange_code(
            &self.inner.http,
            &client.endpoints.token_url,
            &client.client_id,
            &secret,
            &code,
            &pending.redirect_uri,
            verifier.as_ref(),
            self.now(),
        )
        .await
        .map_err(fail)?;
        let mut tokens = tokens;
        if tokens.scope.is_none() {
            tokens.scope = callback.scope.clone();
        }
        let natural_key = tokens
            .support_code
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let label = tokens
            .support_code
            .clone()
            .unwrap_or_else(|| format!("{} business", client.name));
        self.save_connection(&client, natural_key, label, tokens, None, |c| c)
            .await
            .map_err(fail)
    }

    /// How a started authorization ended: `None` while it still waits for its redirect,
    /// else `ok`, an error code (e.g. `invalid_grant` for a refused code), `cancelled`,
    /// or `expired`. `id` is [`PendingAuthorization::id`].
    pub async fn authorization_outcome(&self, id: &str) -> Result<Option<String>> {
        let hash = id.to_owned();
        let now = self.now();
        self.db(move |db| {
            let Some(pending) = db.pending(&hash)? else {
                return Err(Error::not_found(
                    "No such authorization (it may have been purged).",
                ));
            };
            match db.pending_outcome(&hash)? {
                Some(outcome) => Ok(Some(outcome)),
                None if pending.expires_at <= now => Ok(Some("expired".into())),
                None => Ok(None),
            }
        })
        .await
    }

    /// Give up a started authorization: its redirect, should it still arrive, is
    /// rejected as already used. `false` if it had ended already.
    pub async fn cancel_authorization(&self, id: &str) -> Result<bool> {
        let hash = id.to_owned();
        let now = self.now();
        let cancelled = self
            .db(move |db| {
                if db.pending(&hash)?.is_none() {
                    return Err(Error::not_found("No such authorization."));
                }
                let cancelled = db.consume_pending(&hash, now)?;
                if cancelled {
                    db.set_pending_outcome(&hash, "cancelled")?;
                }
                Ok(cancelled)
            })
            .await?;
        if cancelled {
            // The verifier is of no use any more.
            let _ = self.inner.vault.take_pkce_verifier(id).await;
            tracing::info!("authorization cancelled");
        }
        Ok(cancelled)
    }

    /// Request a FedEx token and keep the project as a connection.
    pub async fn connect_fedex(
        &self,
        client_ref: &str,
        grant: FedexGrant,
        child: Option<(String, ChildSecret)>,
    ) -> Result<Connection> {
        let client = self.client(client_ref).await?;
        if client.provider != Provider::Fedex {
            return Err(Error::invalid_input(format!(
                "{:?} is not a FedEx client.",
                client.name
            )));
        }
        if grant.needs_child_credentials() != child.is_some() {
            return Err(Error::invalid_input(if child.is_some() {
                "client_credentials takes no child key: use csp_credentials or client_pc_credentials."
            } else {
                "This grant needs the child key and child secret (--child-key, --child-secret-stdin)."
            }));
        }
        if let Some((key, secret)) = &child {
            check_length("The child key", key, limits::USERNAME)?;
            check_secret_length("The child secret", secret)?;
            if key.trim().is_empty() || key.chars().any(char::is_control) {
                return Err(Error::invalid_input(
                    "The child key is empty or not printable.",
                ));
            }
        }
        let secret = self
            .inner
            .vault
            .client_secret(&client.id, &client.name)
            .await?;
        let _in_flight = self.inner.shutdown.begin_call()?;
        let result = fedex::request_token(
            &self.inner.http,
            &client.endpoints.token_url,
            grant,
            &client.client_id,
            &secret,
            child.as_ref().map(|(k, s)| (k.as_str(), s)),
            self.now(),
        )
        .await;
        let result = sandbox::explain_failure(&client, result).await;
        let tokens = match result {
            Ok(t) => t,
            Err(e) => {
                self.record(None, Some(&client.id), "connect", Err(&e), None)
                    .await;
                return Err(e);
            }
        };
        let child_key = child.as_ref().map(|(k, _)| k.clone());
        let natural_key = format!("{}:{}", grant.as_str(), child_key.as_deref().unwrap_or(""));
        let label = match &child_key {
            Some(k) => format!("{} / {k}", client.name),
            None => client.name.clone(),
        };
        let child_secret = child.map(|(_, s)| s);
        self.save_connection(
            &client,
            natural_key,
            label,
            tokens,
            child_secret,
            move |mut c| {
                c.grant = Some(grant);
                c.child_key = child_key;
                c
            },
        )
        .await
    }

    /// Log in to the IoT platform. The password is used for this one request and dropped.
    pub async fn connect_iot(
        &self,
        client_ref: &str,
        username: &str,
        password: Password,
    ) -> Result<Connection> {
        let client = self.client(client_ref).await?;
        if client.provider != Provider::Iot {
            return Err(Error::invalid_input(format!(
                "{:?} is not an IoT-platform client.",
                client.name
            )));
        }
        let username = username.trim();
        check_length("The username", username, limits::USERNAME)?;
        check_secret_length("The password", &password)?;
        if username.is_empty() || username.chars().any(char::is_control) {
            return Err(Error::invalid_input(
                "The username is empty or not printable.",
            ));
        }
        let _in_flight = self.inner.shutdown.begin_call()?;
        let result = iot::login(
            &self.inner.http,
            &iot_client(&client)?,
            username,
            &password,
            self.now(),
        )
        .await;
        drop(password);
        let result = sandbox::explain_failure(&client, result).await;
        let tokens = match result {
            Ok(t) => t,
            Err(e) => {
                self.record(
                    None,
                    Some(&client.id),
                    "connect",
                    Err(&e),
                    Some(format!("login as {username}: {}", e.message)),
                )
                .await;
                return Err(e);
            }
        };
        let natural_key = tokens
            .user_id
            .clone()
            .unwrap_or_else(|| username.to_owned());
        let username = username.to_owned();
        self.save_connection(
            &client,
            natural_key,
            username.clone(),
            tokens,
            None,
            move |mut c| {
                c.username = Some(username);
                c
            },
        )
        .await
    }

    /// Store the tokens of a fresh connect. If the same business / project / account is
    /// connected already, it is updated in place (history kept): that is "reconnect".
    async fn save_connection(
        &self,
        client: &Client,
        natural_key: String,
        label: String,
        tokens: IssuedTokens,
        child_secret: Option<ChildSecret>,
        customize: impl FnOnce(Connection) -> Connection,
    ) -> Result<Connection> {
        let (cid, key) = (client.id.clone(), natural_key.clone());
        let existing = self
            .db(move |db| db.connection_by_natural_key(&cid, &key))
            .await?;
        let now = self.now();
        match existing {
            Some(old) => {
                let _guard = self.inner.locks.acquire(&old.id).await?;
                let old = self.connection(&old.id).await?;
                if let Some(secret) = &child_secret {
                    self.inner.vault.set_child_secret(&old.id, secret).await?;
                }
                let mut conn = customize(old.clone());
                conn.label = label;
                conn.state = ConnectionState::Active;
                conn.last_error = None;
                let refresh = tokens.refresh_token.clone();
                apply_tokens(&mut conn, &tokens, now);
                let conn = self
                    .commit_tokens(&old, conn, tokens.access_token, refresh)
                    .await?;
                self.record(Some(&conn.id), Some(&client.id), "reconnect", Ok(()), None)
                    .await;
                self.emit(Event::ConnectionChanged {
                    connection: Box::new(conn.clone()),
                });
                Ok(conn)
            }
            None => {
                let mut conn = customize(Connection {
                    sandbox: client.sandbox,
                    ..Connection::new(
                        uuid::Uuid::new_v4().to_string(),
                        &client.id,
                        &client.name,
                        client.provider,
                        client.environment,
                        label,
                        now,
                    )
                });
                apply_tokens(&mut conn, &tokens, now);
                let bundle = bundle_of(&conn, tokens.access_token, tokens.refresh_token);
                if let Some(secret) = &child_secret {
                    self.inner.vault.set_child_secret(&conn.id, secret).await?;
                }
                self.inner.vault.put_tokens(&conn.id, 1, &bundle).await?;
                let stored = conn.clone();
                if let Err(e) = self
                    .db(move |db| db.insert_connection(&stored, &natural_key))
                    .await
                {
                    let _ = self.inner.vault.delete_tokens(&conn.id, 1).await;
                    let _ = self.inner.vault.delete_child_secret(&conn.id).await;
                    return Err(e);
                }
                tracing::info!(connection = %conn.id, provider = %conn.provider, "connected");
                self.record(Some(&conn.id), Some(&client.id), "connect", Ok(()), None)
                    .await;
                self.emit(Event::ConnectionChanged {
                    connection: Box::new(conn.clone()),
                });
                Ok(conn)
            }
        }
    }

    /// The commit sequence for new tokens of an existing connection:
    /// 1. write them to the keyring under generation g+1 (the old entry is untouched);
    /// 2. one SQLite update switches the connection to g+1 — the commit point;
    /// 3. delete generation g.
    ///
    /// A crash before 2 leaves the connection on g (an orphan g+1 entry); after 2, on g+1
    /// (an orphan g entry). Either way the stored generation holds a complete token set.
    async fn commit_tokens(
        &self,
        old: &Connection,
        mut conn: Connection,
        access: AccessToken,
        refresh: Option<RefreshToken>,
    ) -> Result<Connection> {
        conn.secret_generation = old.secret_generation + 1;
        let bundle = self.bundle_for(old, &conn, access, refresh).await?;
        self.commit_bundle(old, conn, bundle).await
    }

    /// [`Self::commit_tokens`] with the token bundle made already.
    async fn commit_bundle(
        &self,
        old: &Connection,
        mut conn: Connection,
        bundle: TokenBundle,
    ) -> Result<Connection> {
        let old_gen = old.secret_generation;
        let new_gen = old_gen + 1;
        conn.secret_generation = new_gen;
        conn.token_set = None;
        conn.updated_at = self.now();
        let id = conn.id.clone();
        if let Err(e) = self
            .db(move |db| db.set_pending_generation(&id, Some(new_gen)))
            .await
        {
            // The tokens must reach the keyring all the same (the provider may have
            // rotated already); a refresh of this one connection looks for an orphan
            // generation even without the mark.
            tracing::warn!(connection = %conn.id, code = %e.code, "token write not marked");
        }
        // Should this write fail or time out, the mark stays: a write that lands late is
        // found and adopted by the next refresh.
        self.inner
            .vault
            .put_tokens(&conn.id, new_gen, &bundle)
            .await?;
        crash_point("after_new_tokens_written");
        let stored = conn.clone();
        let switched = self
            .db(move |db| db.update_connection(&stored, old_gen))
            .await?;
        if !switched {
            // Only possible if a writer bypassed the connection lock. Leave the keyring
            // alone: deleting generation g+1 could delete the tokens SQLite points at.
            return Err(Error::new(
                ErrorCode::Busy,
                "Another Authdeck process updated this connection at the same time: try again.",
            ));
        }
        crash_point("after_generation_switched");
        self.release_superseded(vec![(old.clone(), None)], SharedSet::Rewrite)
            .await;
        crash_point("after_old_tokens_deleted");
        Ok(conn)
    }

    /// The token bundle to store for `conn`'s new tokens. RFC 6749 §6: when the provider
    /// sent no new refresh token, the old one stays valid and is kept.
    async fn bundle_for(
        &self,
        old: &Connection,
        conn: &Connection,
        access: AccessToken,
        refresh: Option<RefreshToken>,
    ) -> Result<TokenBundle> {
        let refresh = match refresh {
            Some(r) => Some(r),
            None => self
                .inner
                .vault
                .current_tokens(old)
                .await?
                .and_then(|b| b.refresh_token),
        };
        Ok(bundle_of(conn, access, refresh))
    }

    /// A process killed after step 1 of [`Self::commit_tokens`] and before step 2 leaves
    /// generation g+1 in the keyring while SQLite still says g; one killed in the middle
    /// of a batch refresh leaves it in a token set (see `token_sets`). Those are the
    /// provider's newest tokens (the refresh token of g may already be spent, and reusing
    /// it could revoke the whole grant), so they are adopted before anything uses g.
    /// Call with the connection's lock held. `probe`: whether to look for an orphan own
    /// entry even when no write is marked.
    async fn finish_interrupted_switch(&self, id: &str, probe: OrphanProbe) -> Result<Connection> {
        let key = id.to_owned();
        let (conn, ahead) = self.db(move |db| db.connection_for_update(&key)).await?;
        let next = conn.secret_generation + 1;
        // A batch looks in the keyring only for a generation marked as being written (most
        // find no mark and cost no keyring call here); `probe` always looks.
        let own = match (conn.pending_generation, probe) {
            (None, OrphanProbe::MarkedOnly) => None,
            (pending, _) => {
                let found = match pending.is_none_or(|p| p == next) {
                    true => self.inner.vault.tokens(&conn.id, next).await?,
                    false => None,
                };
                if found.is_none() && pending.is_some() {
                    let id = conn.id.clone();
                    self.db(move |db| db.set_pending_generation(&id, None))
                        .await?;
                }
                found
            }
        };
        let (bundle, token_set) = match own {
            Some(bundle) => (bundle, None),
            None => {
                let Some(set) = ahead else {
                    return Ok(conn);
                };
                let found = self
                    .inner
                    .vault
                    .token_set(&set)
                    .await?
                    .and_then(|mut members| members.remove(&conn.id))
                    .filter(|(generation, _)| *generation == next);
                match found {
                    Some((_, bundle)) => (bundle, Some(set)),
                    None => {
                        // The set was never written (or lost this member): nothing to
                        // adopt; forget the member so the set can be swept.
                        let (id, member) = (set.clone(), conn.id.clone());
                        self.db(move |db| db.remove_token_set_members(&id, &[member]))
                            .await?;
                        return Ok(conn);
                    }
                }
            }
        };
        let now = self.now();
        let mut adopted = conn.clone();
        adopted.secret_generation = next;
        adopted.token_set = token_set.clone();
        let token_set_of_adopted = token_set;
        adopted.access_expires = bundle.access_expires;
        if bundle.refresh_expires.is_some() {
            adopted.refresh_expires = bundle.refresh_expires;
        }
        adopted.jwt = crate::providers::jwt::decode(bundle.access_token.expose());
        adopted.last_refresh_at = Some(now);
        adopted.last_error = None;
        adopted.updated_at = now;
        let stored = adopted.clone();
        let old = conn.secret_generation;
        if !self
            .db(move |db| db.update_connection(&stored, old))
            .await?
        {
            return self.connection(&conn.id).await;
        }
        self.release_superseded(
            vec![(conn.clone(), token_set_of_adopted)],
            SharedSet::Rewrite,
        )
        .await;
        tracing::warn!(connection = %conn.id, "finished an interrupted token update");
        self.record(
            Some(&conn.id),
            Some(&conn.client_id),
            "recovered",
            Ok(()),
            Some("finished a token update that was interrupted".into()),
        )
        .await;
        self.emit(Event::ConnectionChanged {
            connection: Box::new(adopted.clone()),
        });
        Ok(adopted)
    }

    /// Save metadata (state, last error) without touching the tokens.
    async fn save_metadata(&self, conn: &Connection) -> Result<()> {
        let mut stored = conn.clone();
        stored.updated_at = self.now();
        let generation = stored.secret_generation;
        self.db(move |db| db.update_connection(&stored, generation))
            .await?;
        Ok(())
    }

    // ---- refresh, token, logout ----------------------------------------------------

    /// Refresh a connection now (FedEx: request a new token). If another caller
    /// refreshed it while this one waited for the lock, that result is returned instead
    /// of refreshing twice.
    pub async fn refresh(&self, reference: &str) -> Result<Connection> {
        let conn = self.connection(reference).await?;
        self.refresh_connection(&conn.id, Some(conn.secret_generation), None)
            .await
    }

    /// Refresh every active connection, `refresh_concurrency` provider calls at a time,
    /// committing the new tokens in batches (see `token_sets`).
    pub async fn refresh_all(&self) -> Result<Vec<RefreshReport>> {
        let connections: Vec<Connection> = self
            .list()
            .await?
            .into_iter()
            .filter(|c| c.state == ConnectionState::Active)
            .collect();
        let mut reports: Vec<RefreshReport> = self
            .refresh_batch(connections)
            .await
            .into_iter()
            .map(|(conn, result)| RefreshReport {
                id: conn.id,
                label: conn.label,
                result,
            })
            .collect();
        reports.sort_by(|a, b| a.label.cmp(&b.label).then(a.id.cmp(&b.id)));
        Ok(reports)
    }

    /// Refresh the given connections (by id) as one batch, like [`Self::refresh_all`].
    /// One result per id, in order.
    pub async fn refresh_many(&self, ids: &[String]) -> Vec<Result<Connection>> {
        let mut connections = Vec::new();
        let mut results: Vec<Option<Result<Connection>>> = Vec::new();
        for id in ids {
            match self.connection(id).await {
                Ok(conn) => {
                    connections.push(conn);
                    results.push(None);
                }
                Err(e) => results.push(Some(Err(e))),
            }
        }
        let mut refreshed = self.refresh_batch(connections).await.into_iter();
        results
            .into_iter()
            .map(|r| match r {
                Some(r) => r,
                None => refreshed
                    .next()
                    .map(|(_, r)| r)
                    .unwrap_or_else(|| Err(Error::internal("A refresh result went missing."))),
            })
            .collect()
    }

    /// Refresh one connection under its lock. `batch`: part of a batch refresh, whose
    /// committer writes the new tokens (see `token_sets`); else they are committed here.
    async fn refresh_connection(
        &self,
        id: &str,
        seen_generation: Option<i64>,
        batch: Option<BatchSlot<'_>>,
    ) -> Result<Connection> {
        // New tokens that cannot be stored must not be asked for (a full disk).
        if self.inner.db.read_only_reason().is_some() {
            self.db(|db| db.ensure_writable()).await?;
        }
        if self.inner.shutdown.is_stopping() {
            return Err(stopping());
        }
        // Answers a dead process journalled come first (a batch adopted them at its start).
        let held_back = match &batch {
            Some(slot) => slot.batch.held_back(id),
            None => self.adopt_journals().await.contains(id),
        };
        if held_back {
            return Err(answers::held_back());
        }
        // An answer this process kept (the keyring refused it) is saved first.
        self.settle_unsaved(id).await?;
        let guard = tokio::select! {
            guard = self.inner.locks.acquire(id) => guard?,
            _ = self.inner.shutdown.stopping() => return Err(stopping()),
        };
        // Re-read under the lock: another caller (or process) may have refreshed it.
        let probe = match batch {
            None => OrphanProbe::Always,
            Some(_) => OrphanProbe::MarkedOnly,
        };
        let conn = self.finish_interrupted_switch(id, probe).await?;
        if seen_generation.is_some_and(|g| g != conn.secret_generation) {
            return Ok(conn); // refreshed by someone else meanwhile: single flight
        }
        match conn.state {
            ConnectionState::LogoutPending => {
                return Err(Error::invalid_input(
                    "A logout of this connection is pending: retry the logout.",
                ));
            }
            ConnectionState::ReauthorizationRequired => {
                return Err(reauthorization_required(&conn));
            }
            ConnectionState::Active => {}
        }
        let (batch, settled) = match batch {
            Some(slot) => {
                let BatchSlot {
                    batch,
                    preparing,
                    settled,
                } = slot;
                (Some((batch, preparing)), Some(settled))
            }
            None => (None, None),
        };
        let (current, client) = match batch {
            Some((batch, _)) => (
                batch.cached_tokens(self, &conn).await?,
                batch.client(self, &conn.client_id).await,
            ),
            None => (None, self.client(&conn.client_id).await),
        };
        // Set right before the provider call, held until its answer is committed: a stop
        // starts no new call and waits for this one.
        let _in_flight;
        let mut journal = None;
        let result = match client {
            // The journal's key is read before the call: no answer it could not keep.
            Ok(client) => match self.journal_ready().await {
                Ok(ready) => {
                    journal = ready;
                    // A batch bounds its provider calls on their own, so the next
                    // connections get ready (lock, re-read) while these are in flight.
                    let _call = match batch {
                        Some((batch, _)) => Some(tokio::select! {
                            call = batch.provider_call() => call?,
                            _ = self.inner.shutdown.stopping() => return Err(stopping()),
                        }),
                        None => None,
                    };
                    _in_flight = self.inner.shutdown.begin_call()?;
                    let result = self.refresh_with_provider(&conn, &client, current).await;
                    sandbox::explain_failure(&client, result).await
                }
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        let answered = std::time::Instant::now();
        let batch = batch.map(|(batch, preparing)| {
            drop(preparing); // the provider answered: let the next refresh start
            batch
        });
        match result {
            Ok(tokens) => {
                let mut next = conn.clone();
                let refresh = tokens.refresh_token.clone();
                // Only an answer with a new refresh token spends the old one.
                let rotated = refresh.is_some();
                apply_tokens(&mut next, &tokens, self.now());
                next.last_refresh_at = Some(self.now());
                next.last_error = None;
                let bundle = self
                    .bundle_for(&conn, &next, tokens.access_token, refresh)
                    .await?;
                let in_batch = batch.is_some();
                let entry = match rotated {
                    true => {
                        self.journal_answer(journal, &conn, &next, &bundle, answered, in_batch)
                            .await
                    }
                    false => None,
                };
                let committed = match (batch, settled) {
                    // The committer writes the history with the batch.
                    (Some(batch), Some(settled)) => {
                        batch
                            .commit(conn.clone(), next.clone(), bundle.clone(), settled)
                            .await
                    }
                    _ => {
                        self.commit_bundle(&conn, next.clone(), bundle.clone())
                            .await
                    }
                };
                let next = match committed {
                    Ok(committed) => {
                        if let Some(entry) = entry {
                            entry.committed();
                        }
                        committed
                    }
                    Err(e) => {
                        if rotated {
                            let answer = answers::staged(&conn, &next, bundle);
                            self.keep_unsaved(answer, entry, guard);
                        }
                        return Err(e);
                    }
                };
                if !in_batch {
                    self.record(
                        Some(&next.id),
                        Some(&next.client_id),
                        "refresh",
                        Ok(()),
                        None,
                    )
                    .await;
                }
                tracing::info!(connection = %next.id, "refreshed");
                self.emit(Event::ConnectionChanged {
                    connection: Box::new(next.clone()),
                });
                Ok(next)
            }
            Err(e) => {
                let state = (e.code == ErrorCode::ReauthorizationRequired)
                    .then_some(ConnectionState::ReauthorizationRequired);
                tracing::warn!(connection = %conn.id, code = %e.code, "refresh failed");
                if let Err(save) = self
                    .record_failure(&conn, state, "refresh", &e, IfUnsaved::Announce)
                    .await
                {
                    tracing::warn!(code = %save.code, "could not record a refresh failure");
                }
                Err(e)
            }
        }
    }

    /// `current`: the connection's current tokens when the caller already has them.
    async fn refresh_with_provider(
        &self,
        conn: &Connection,
        client: &Client,
        current: Option<TokenBundle>,
    ) -> Result<IssuedTokens> {
        let now = self.now();
        let http = &self.inner.http;
        match conn.provider {
            Provider::FlowAccount => {
                let refresh = self.current_refresh_token(conn, current).await?;
                let secret = self
                    .inner
                    .vault
                    .client_secret(&client.id, &client.name)
                    .await?;
                flowaccount::refresh(
                    http,
                    &client.endpoints.token_url,
                    &client.client_id,
                    &secret,
                    &refresh,
                    now,
                )
                .await
            }
            Provider::Fedex => {
                let grant = conn.grant.unwrap_or(FedexGrant::ClientCredentials);
                let secret = self
                    .inner
                    .vault
                    .client_secret(&client.id, &client.name)
                    .await?;
                let child_secret = match &conn.child_key {
                    Some(_) => Some(self.inner.vault.child_secret(&conn.id).await?.ok_or_else(|| {
                        Error::new(ErrorCode::InvalidClient, "The child secret is missing from the keyring: connect this project again.")
                    })?),
                    None => None,
                };
                let child = conn.child_key.as_deref().zip(child_secret.as_ref());
                fedex::request_token(
                    http,
                    &client.endpoints.token_url,
                    grant,
                    &client.client_id,
                    &secret,
                    child,
                    now,
                )
                .await
            }
            Provider::Iot => {
                let refresh = self.current_refresh_token(conn, current).await?;
                let user_id = conn.user_id.as_deref().ok_or_else(|| {
                    Error::new(ErrorCode::ReauthorizationRequired, "The IoT platform did not say who this account is, so it cannot be renewed: log in again.")
                })?;
                iot::refresh(http, &iot_client(client)?, &refresh, user_id, now).await
            }
        }
    }

    async fn current_refresh_token(
        &self,
        conn: &Connection,
        current: Option<TokenBundle>,
    ) -> Result<RefreshToken> {
        let current = match current {
            Some(tokens) => Some(tokens),
            None => self.inner.vault.current_tokens(conn).await?,
        };
        match current {
            Some(bundle) => bundle
                .refresh_token
                .ok_or_else(|| reauthorization_required(conn)),
            None => Err(tokens_missing_error(conn)),
        }
    }

    /// A failed `event` on `conn`: its `last_error` (and `state`, if given) saved, the
    /// failure in the history, the change announced. Returns a failed save's error;
    /// `if_unsaved` says whether the history and the window still hear of the failure.
    async fn record_failure(
        &self,
        conn: &Connection,
        state: Option<ConnectionState>,
        event: &str,
        e: &Error,
        if_unsaved: IfUnsaved,
    ) -> Result<()> {
        let mut failed = conn.clone();
        if let Some(state) = state {
            failed.state = state;
        }
        failed.last_error = Some(LastError::of(e, self.now()));
        let saved = self.save_metadata(&failed).await;
        if saved.is_err() && if_unsaved == IfUnsaved::Stop {
            return saved;
        }
        self.record(Some(&conn.id), Some(&conn.client_id), event, Err(e), None)
            .await;
        self.emit(Event::ConnectionChanged {
            connection: Box::new(failed),
        });
        saved
    }

    /// The keyring has no tokens where SQLite says this connection's are (deleted behind
    /// Authdeck's back, or a keyring reset): the grant cannot be used any more. The
    /// connection is marked for re-authorization, so the window offers Reconnect.
    async fn tokens_missing(&self, mut conn: Connection) -> Error {
        let e = tokens_missing_error(&conn);
        conn.state = ConnectionState::ReauthorizationRequired;
        conn.last_error = Some(LastError::of(&e, self.now()));
        match self.save_metadata(&conn).await {
            Ok(()) => self.emit(Event::ConnectionChanged {
                connection: Box::new(conn.clone()),
            }),
            Err(save) => {
                tracing::warn!(code = %save.code, "could not record missing tokens")
            }
        }
        tracing::warn!(connection = %conn.id, "tokens missing from the keyring");
        e
    }

    /// FedEx: whether the scheduler re-requests this connection's token before it
    /// expires (other providers are always kept fresh).
    pub async fn set_keep_fresh(&self, reference: &str, keep_fresh: bool) -> Result<Connection> {
        let conn = self.connection(reference).await?;
        let _guard = self.inner.locks.acquire(&conn.id).await?;
        let mut conn = self.connection(&conn.id).await?;
        conn.keep_fresh = keep_fresh;
        self.save_metadata(&conn).await?;
        let conn = self.connection(&conn.id).await?;
        self.emit(Event::ConnectionChanged {
            connection: Box::new(conn.clone()),
        });
        Ok(conn)
    }

    /// A valid access token: the cached one, or a refreshed one when it expires within
    /// `min_validity` (or has already expired).
    pub async fn access_token(
        &self,
        reference: &str,
        min_validity: Duration,
    ) -> Result<(AccessToken, Connection)> {
        let mut conn = self.connection(reference).await?;
        let min_validity =
            chrono::Duration::from_std(min_validity).unwrap_or(chrono::Duration::zero());
        for _ in 0..3 {
            if conn.state == ConnectionState::ReauthorizationRequired {
                return Err(reauthorization_required(&conn));
            }
            let fresh_enough = match &conn.access_expires {
                Some(e) => e.at - self.now() > min_validity,
                None => true, // unknown expiry: the cached token is all we can offer
            };
            if !fresh_enough {
                conn = self
                    .refresh_connection(&conn.id, Some(conn.secret_generation), None)
                    .await?;
            }
            if let Some(bundle) = self.inner.vault.current_tokens(&conn).await? {
                return Ok((bundle.access_token, conn));
            }
            // Either switched to a new generation between our two reads (read again), or
            // the keyring lost the tokens SQLite still points at.
            let again = self.connection(&conn.id).await?;
            if again.secret_generation == conn.secret_generation
                && again.token_set == conn.token_set
            {
                return Err(self.tokens_missing(again).await);
            }
            conn = again;
        }
        Err(Error::new(
            ErrorCode::Busy,
            "The connection kept changing while its token was read: try again.",
        ))
    }

    /// IoT: revoke the session at the server, then delete the local secrets (only after
    /// the server confirmed). FlowAccount / FedEx: disconnect, deleting local secrets.
    /// History is kept either way.
    pub async fn logout(&self, reference: &str) -> Result<LogoutOutcome> {
        let conn = self.connection(reference).await?;
        if self.adopt_journals().await.contains(&conn.id) {
            return Err(answers::held_back());
        }
        self.settle_unsaved(&conn.id).await?;
        let _guard = self.inner.locks.acquire(&conn.id).await?;
        let conn = self
            .finish_interrupted_switch(&conn.id, OrphanProbe::Always)
            .await?;
        // Set once the server is asked; held until the local secrets are gone.
        let mut in_flight = None;
        let outcome = match conn.provider {
            Provider::Iot => {
                // Without a refresh token there is nothing to send: the server is not
                // asked, and must not be said to have ended the session.
                let revoked = match self.inner.vault.current_tokens(&conn).await? {
                    Some(TokenBundle {
                        refresh_token: Some(refresh),
                        ..
                    }) => {
                        let client = self.client(&conn.client_id).await?;
                        in_flight = Some(self.inner.shutdown.begin_call()?);
                        let result =
                            iot::logout(&self.inner.http, &iot_client(&client)?, &refresh).await;
                        Some(sandbox::explain_failure(&client, result).await)
                    }
                    _ => None,
                };
                match revoked {
                    None => LogoutOutcome::TokensMissing,
                    Some(Ok(())) => LogoutOutcome::Revoked,
                    Some(Err(e)) if e.code == ErrorCode::ReauthorizationRequired => {
                        LogoutOutcome::AlreadyRevoked
                    }
                    Some(Err(e)) => {
                        let pending = Some(ConnectionState::LogoutPending);
                        self.record_failure(&conn, pending, "logout", &e, IfUnsaved::Stop)
                            .await?;
                        return Err(Error {
                            message: format!("{} The logout is pending: retry it.", e.message),
                            ..e
                        });
                    }
                }
            }
            Provider::FlowAccount | Provider::Fedex => LogoutOutcome::Disconnected,
        };
        let event = if conn.provider == Provider::Iot {
            "logout"
        } else {
            "disconnect"
        };
        let detail = match outcome {
            LogoutOutcome::AlreadyRevoked => {
                Some("the server no longer knew this session".to_string())
            }
            LogoutOutcome::TokensMissing => Some(
                "the tokens were missing from the keyring, so the server was not asked to end the session: it may still be active"
                    .to_string(),
            ),
            _ => None,
        };
        self.remove_connection_locally(&conn, event, detail).await?;
        drop(in_flight);
        Ok(outcome)
    }

    /// Delete a connection's secrets and row (its history stays), under its lock, and
    /// record `event`. What a logout does once the server side is settled.
    async fn remove_connection_locally(
        &self,
        conn: &Connection,
        event: &str,
        detail: Option<String>,
    ) -> Result<()> {
        // Keyring first: if it is unavailable nothing is removed and the user can retry.
        match &conn.token_set {
            None => {
                self.inner
                    .vault
                    .delete_tokens(&conn.id, conn.secret_generation)
                    .await?
            }
            Some(set) => {
                // Rewrite the set without this connection's tokens (or delete it).
                self.try_sweep_token_set(set, Some(&conn.id), SharedSet::Rewrite)
                    .await?;
            }
        }
        self.inner.vault.delete_child_secret(&conn.id).await?;
        let id = conn.id.clone();
        self.db(move |db| db.delete_connection(&id)).await?;
        self.inner.locks.remove(&conn.id);
        self.record(Some(&conn.id), Some(&conn.client_id), event, Ok(()), detail)
            .await;
        tracing::info!(connection = %conn.id, "{event}");
        self.emit(Event::ConnectionRemoved {
            id: conn.id.clone(),
        });
        Ok(())
    }
}

/// Test hook for the crash-safety tests: in debug builds, `AUTHDECK_CRASH_AT=<name>`
/// kills the process at that point of the token commit sequence, like `kill -9`.
/// The kind of a rejection, for coalescing its history rows: its message with every
/// quoted part (`{:?}` of what the sender chose: a scheme, a host, a parameter name)
/// masked, so varying those cannot make a burst of forged links into many rows.
fn rejection_kind(message: &str) -> String {
    let mut kind = String::with_capacity(message.len());
    let mut quoted = false;
    let mut escaped = false;
    for c in message.chars() {
        if quoted {
            match (escaped, c) {
                (false, '\\') => escaped = true,
                (false, '"') => quoted = false,
                _ => escaped = false,
            }
            continue;
        }
        if c == '"' {
            quoted = true;
            kind.push_str("\"…\"");
        } else {
            kind.push(c);
        }
    }
    kind
}

fn crash_point(name: &str) {
    #[cfg(debug_assertions)]
    if std::env::var("AUTHDECK_CRASH_AT").is_ok_and(|at| at == name) {
        std::process::abort();
    }
    let _ = name;
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
    TokenBundle {
        access_token: access,
        refresh_token: refresh,
        access_expires: conn.access_expires,
        refresh_expires: conn.refresh_expires,
    }
}

/// What [`Manager::record_failure`] does when the failure could not be saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IfUnsaved {
    /// Still record it in the history and announce the connection.
    Announce,
    /// Stop there (the caller returns the save's error).
    Stop,
}

/// Whether [`Manager::finish_interrupted_switch`] looks in the keyring for an orphan
/// own entry when no write is marked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OrphanProbe {
    /// Always look (one keyring call).
    Always,
    /// Only when a write is marked (batch refreshes rely on the marks).
    MarkedOnly,
}

#[cfg(test)]
mod tests {
    //! Validation and keyring-failure behaviour, with in-memory doubles. The provider
    //! round trips are tested against the emulator in `tests/manager_*.rs`.
    use super::*;
    use crate::store::keyring::MemoryStore;

    #[test]
    fn rejection_kinds_mask_what_the_sender_chose() {
        let kind = |m: &str| rejection_kind(m);
        assert_eq!(
            kind(r#"Not an Authdeck redirect (scheme "https", host "evil.example"): ignored."#),
            kind(r#"Not an Authdeck redirect (scheme "x", host "a\"b"): ignored."#),
        );
        assert_eq!(
            kind(r#"The redirect URL repeats the "state" parameter."#),
            r#"The redirect URL repeats the "…" parameter."#
        );
        assert_ne!(
            kind("This redirect was already used (replayed state): ignored."),
            kind("This authorization expired (10 minutes): start connecting again.")
        );
    }

    fn manager(store: Arc<MemoryStore>) -> Manager {
        Manager::new(
            Db::open_in_memory().unwrap(),
            store,
            ManagerOptions::default(),
        )
        .unwrap()
    }

    fn fedex(name: &str, secret: Option<&str>) -> NewClient {
        let mut c = NewClient::new(name, Provider::Fedex, "key");
        c.client_secret = secret.map(ClientSecret::new);
        c
    }

    #[tokio::test]
    async fn presets_fill_endpoints_and_custom_urls_mean_custom() {
        let m = manager(Arc::new(MemoryStore::new()));
        let c = m.add_client(fedex("f", Some("s"))).await.unwrap();
        assert_eq!(c.environment, Environment::Sandbox);
        assert_eq!(
            c.endpoints.token_url.as_str(),
            "https://apis-sandbox.fedex.com/oauth/token"
        );
        let mut custom = fedex("g", Some("s"));
        custom.token_url = Some("http://127.0.0.1:9/oauth/token".into());
        assert_eq!(
            m.add_client(custom).await.unwrap().environment,
            Environment::Custom
        );
        let mut fa = NewClient::new("fa", Provider::FlowAccount, "id");
        fa.client_secret = Some(ClientSecret::new("s"));
        fa.environment = Some(Environment::Production);
        let fa = m.add_client(fa).await.unwrap();
        assert_eq!(
            fa.endpoints.authorize_url.unwrap().as_str(),
            "https://auth.flowaccount.com/connect/authorize"
        );
        assert_eq!(fa.options.redirect_uri.as_deref(), Some(APP_REDIRECT_URI));
    }

    #[tokio::test]
    async fn invalid_clients_are_rejected_and_nothing_is_stored() {
        let store = Arc::new(MemoryStore::new());
        let m = manager(store.clone());
        let mut plain_http = fedex("a", Some("s"));
        plain_http.token_url = Some("http://example.com/token".into());
        let mut iot_sandbox = NewClient::new("b", Provider::Iot, "id");
        iot_sandbox.environment = Some(Environment::Sandbox);
        let mut iot_secret = NewClient::new("c", Provider::Iot, "id");
        iot_secret.client_secret = Some(ClientSecret::new("s"));
        iot_secret.auth_url = Some("https://iot.example".into());
        let mut bad_redirect = NewClient::new("d", Provider::FlowAccount, "id");
        bad_redirect.client_secret = Some(ClientSecret::new("s"));
        bad_redirect.redirect_uri = Some("https://example.com/cb".into());
        for bad in [
            fedex("", Some("s")),
            fedex("x", None),
            plain_http,
            iot_sandbox,
            iot_secret,
            bad_redirect,
        ] {
            let err = m.add_client(bad).await.unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidInput, "{err:?}");
        }
        assert!(m.clients().await.unwrap().is_empty());
        assert!(store.keys().is_empty());
    }

    #[tokio::test]
    async fn over_long_inputs_are_invalid_input_and_change_nothing() {
        let store = Arc::new(MemoryStore::new());
        let m = manager(store.clone());
        let long = "x".repeat(70_000);
        let mut iot = NewClient::new("iot", Provider::Iot, "app");
        iot.auth_url = Some("https://iot.example".into());
        m.add_client(iot).await.unwrap();
        m.add_client(fedex("f", Some("s"))).await.unwrap();
        let keys = store.keys();

        let err = m
            .connect_iot("iot", &long, Password::new("pw"))
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidInput);
        assert!(err.message.contains("username is too long"), "{err:?}");
        let err = m
            .connect_iot("iot", "op", Password::new(long.clone()))
            .await
            .unwrap_err();
        assert!(err.message.contains("password is too long"), "{err:?}");
        assert!(!err.message.contains("xxxx"), "the secret is not shown");
        let err = m
            .connect_fedex(
                "f",
                FedexGrant::CspCredentials,
                Some((long.clone(), ChildSecret::new("s"))),
            )
            .await
            .unwrap_err();
        assert!(err.message.contains("child key is too long"), "{err:?}");
        let mut c = fedex("g", Some("s"));
        c.client_id = long.clone();
        assert_eq!(
            m.add_client(c).await.unwrap_err().code,
            ErrorCode::InvalidInput
        );
        let mut c = fedex("g", Some(&long));
        c.token_url = Some(format!("https://example.com/{long}"));
        assert_eq!(
            m.add_client(c).await.unwrap_err().code,
            ErrorCode::InvalidInput
        );

        assert_eq!(store.keys(), keys, "nothing reached the keyring");
        assert_eq!(m.clients().await.unwrap().len(), 2);
        assert!(m.history(None, 10).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn keyring_unavailable_writes_nothing() {
        let store = Arc::new(MemoryStore::new());
        store.set_unavailable(true);
        let m = manager(store.clone());
        let err = m
            .add_client(fedex("f", Some("canary-secret")))
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::KeyringUnavailable);
        assert!(
            m.clients().await.unwrap().is_empty(),
            "no client row without its secret"
        );
    }

    #[tokio::test]
    async fn duplicate_names_and_removal() {
        let store = Arc::new(MemoryStore::new());
        let m = manager(store.clone());
        m.add_client(fedex("f", Some("s"))).await.unwrap();
        assert_eq!(
            m.add_client(fedex("f", Some("t"))).await.unwrap_err().code,
            ErrorCode::AlreadyExists
        );
        assert_eq!(
            store.keys().len(),
            1,
            "the duplicate's secret was not written"
        );
        m.remove_client("f").await.unwrap();
        assert!(store.keys().is_empty());
        assert_eq!(
            m.remove_client("f").await.unwrap_err().code,
            ErrorCode::NotFound
        );
    }
}
