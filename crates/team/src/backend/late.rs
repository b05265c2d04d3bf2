//! [`LateBackend`]: the team store for a front that must start while the team database
//! does not answer (the desktop app: its window shows the last known list meanwhile).
//!
//! Until the store opens, every call is `team_unavailable` and changes nothing (no local
//! stand-in is written), and [`Backend::kind`] says the team is unreachable. A task tries
//! to open the store again, 0.25 s … 2 s apart; once it has, every call goes to the
//! [`TeamBackend`], whose change feed is forwarded, after a `Resynced` (read everything
//! again).

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use authdeck_core::activity::ActivityEntry;
use authdeck_core::model::{Client, Connection, HistoryEntry};
use authdeck_core::store::backend::{Backend, Lease, SchedulerRole, TokenPrefetch};
use authdeck_core::store::db::PendingRecord;
use authdeck_core::store::vault::TokenBundle;
use authdeck_core::store::{
    BackendKind, CommitOutcome, OrphanProbe, Settled, StoreChange, StoreChangeKind, TokenCommit,
};
use authdeck_core::{ChildSecret, ClientSecret, Error, ErrorCode, PkceVerifier, Result};
use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use tokio::sync::broadcast;

use super::TeamBackend;

/// How the store is opened (again): the membership's store and its backend.
pub type Opener = Box<dyn Fn() -> BoxFuture<'static, Result<TeamBackend>> + Send + Sync>;

/// The pauses between attempts to open the store.
const FIRST_PAUSE: Duration = Duration::from_millis(250);
const LONGEST_PAUSE: Duration = Duration::from_secs(2);

/// The team store, opened as soon as the database answers. See the module docs.
pub struct LateBackend {
    name: String,
    opened: Arc<OnceLock<Arc<TeamBackend>>>,
    /// Why the store is not open yet (the last attempt's error).
    why: Arc<Mutex<Option<Error>>>,
    changes: broadcast::Sender<StoreChange>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for LateBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LateBackend")
            .field("name", &self.name)
            .field("open", &self.opened.get().is_some())
            .finish_non_exhaustive()
    }
}

impl Drop for LateBackend {
    fn drop(&mut self) {
        if let Ok(mut task) = self.task.lock() {
            if let Some(task) = task.take() {
                task.abort();
            }
        }
    }
}

impl LateBackend {
    /// The store of the team `name`, not open yet because of `error`; `open` is tried
    /// again in the background (call within a Tokio runtime) until it succeeds.
    pub fn new(name: impl Into<String>, error: Error, open: Opener) -> Self {
        let opened = Arc::new(OnceLock::new());
        let why = Arc::new(Mutex::new(Some(error)));
        let (changes, _) = broadcast::channel(1024);
        let task = tokio::spawn(keep_trying(
            open,
            opened.clone(),
            why.clone(),
            changes.clone(),
        ));
        Self {
            name: name.into(),
            opened,
            why,
            changes,
            task: Mutex::new(Some(task)),
        }
    }

    /// Whether the store is open (the database answered once since the start).
    pub fn is_open(&self) -> bool {
        self.opened.get().is_some()
    }

    fn store(&self) -> Result<&TeamBackend> {
        match self.opened.get() {
            Some(backend) => Ok(backend),
            None => Err(self.unavailable()),
        }
    }

    fn unavailable(&self) -> Error {
        let why = self.why.lock().ok().and_then(|w| w.clone());
        let e = Error::new(
            ErrorCode::TeamUnavailable,
            "The team database has not answered since Authdeck started: nothing was changed. Authdeck connects by itself as soon as it is back.",
        );
        match why.and_then(|w| w.detail.or(Some(w.message))) {
            Some(detail) => e.with_detail(detail),
            None => e,
        }
    }
}

async fn keep_trying(
    open: Opener,
    opened: Arc<OnceLock<Arc<TeamBackend>>>,
    why: Arc<Mutex<Option<Error>>>,
    changes: broadcast::Sender<StoreChange>,
) {
    let mut pause = FIRST_PAUSE;
    let backend = loop {
        tokio::time::sleep(pause).await;
        match open().await {
            Ok(backend) => break Arc::new(backend),
            Err(e) => {
                if e.code != ErrorCode::TeamUnavailable {
                    // A key missing from the keyring, a team that is gone: tried again,
                    // but the user has to act.
                    tracing::warn!(code = %e.code, "team store: cannot open it yet");
                }
                if let Ok(mut w) = why.lock() {
                    *w = Some(e);
                }
                pause = (pause * 2).min(LONGEST_PAUSE);
            }
        }
    };
    let feed = backend.changes();
    let _ = opened.set(backend);
    tracing::info!("team store: opened (the database answers)");
    let _ = changes.send(StoreChange {
        kind: StoreChangeKind::Resynced,
        id: None,
    });
    let Some(mut feed) = feed else { return };
    loop {
        match feed.recv().await {
            Ok(change) => {
                let _ = changes.send(change);
            }
            Err(broadcast::error::RecvError::Lagged(_)) => {
                let _ = changes.send(StoreChange {
                    kind: StoreChangeKind::Resynced,
                    id: None,
                });
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

#[async_trait]
impl Backend for LateBackend {
    fn kind(&self) -> BackendKind {
        match self.opened.get() {
            Some(backend) => backend.kind(),
            None => BackendKind::Team {
                name: self.name.clone(),
                reachable: false,
            },
        }
    }

    async fn clients(&self) -> Result<Vec<Client>> {
        self.store()?.clients().await
    }
    async fn client(&self, reference: &str) -> Result<Client> {
        self.store()?.client(reference).await
    }
    async fn insert_client(&self, client: &Client, secret: Option<&ClientSecret>) -> Result<()> {
        self.store()?.insert_client(client, secret).await
    }
    async fn update_client(&self, client: &Client) -> Result<()> {
        self.store()?.update_client(client).await
    }
    async fn remove_client(&self, client: &Client) -> Result<()> {
        self.store()?.remove_client(client).await
    }
    async fn client_secret(&self, client: &Client) -> Result<ClientSecret> {
        self.store()?.client_secret(client).await
    }

    async fn connections(&self) -> Result<Vec<Connection>> {
        self.store()?.connections().await
    }
    async fn connection(&self, reference: &str) -> Result<Connection> {
        self.store()?.connection(reference).await
    }
    async fn connection_by_natural_key(
        &self,
        client_key: &str,
        natural_key: &str,
    ) -> Result<Option<Connection>> {
        self.store()?
            .connection_by_natural_key(client_key, natural_key)
            .await
    }
    async fn connection_count_for_client(&self, client_key: &str) -> Result<usize> {
        self.store()?.connection_count_for_client(client_key).await
    }
    async fn ensure_writable(&self) -> Result<()> {
        self.store()?.ensure_writable().await
    }

    async fn tokens(&self, conn: &Connection) -> Result<Option<TokenBundle>> {
        self.store()?.tokens(conn).await
    }
    fn prefetch(&self, connections: &[Connection]) -> Option<Arc<dyn TokenPrefetch>> {
        self.opened.get()?.prefetch(connections)
    }
    async fn insert_connection(
        &self,
        conn: &Connection,
        natural_key: &str,
        tokens: &TokenBundle,
        child: Option<&ChildSecret>,
    ) -> Result<()> {
        self.store()?
            .insert_connection(conn, natural_key, tokens, child)
            .await
    }
    async fn commit(
        &self,
        old: &Connection,
        next: &Connection,
        tokens: &TokenBundle,
    ) -> Result<CommitOutcome> {
        self.store()?.commit(old, next, tokens).await
    }
    async fn commit_many(&self, items: Vec<TokenCommit>) -> Vec<Result<CommitOutcome>> {
        match self.store() {
            Ok(store) => store.commit_many(items).await,
            Err(e) => items.iter().map(|_| Err(e.clone())).collect(),
        }
    }
    async fn settle(&self, id: &str, probe: OrphanProbe) -> Result<Settled> {
        self.store()?.settle(id, probe).await
    }
    async fn save_metadata(&self, conn: &Connection) -> Result<bool> {
        self.store()?.save_metadata(conn).await
    }
    async fn remove_connection(&self, conn: &Connection) -> Result<()> {
        self.store()?.remove_connection(conn).await
    }
    async fn set_child_secret(&self, connection_id: &str, secret: &ChildSecret) -> Result<()> {
        self.store()?.set_child_secret(connection_id, secret).await
    }
    async fn child_secret(&self, connection_id: &str) -> Result<Option<ChildSecret>> {
        self.store()?.child_secret(connection_id).await
    }
    async fn maintain(&self) -> Result<()> {
        self.store()?.maintain().await
    }

    async fn lock(&self, connection_id: &str) -> Result<Lease> {
        self.store()?.lock(connection_id).await
    }
    fn forget_lock(&self, connection_id: &str) {
        if let Some(store) = self.opened.get() {
            store.forget_lock(connection_id);
        }
    }

    async fn record(
        &self,
        connection_id: Option<&str>,
        client_key: Option<&str>,
        entry: &HistoryEntry,
        coalesce: Option<&str>,
    ) -> Result<()> {
        self.store()?
            .record(connection_id, client_key, entry, coalesce)
            .await
    }
    async fn history(
        &self,
        connection_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>> {
        self.store()?.history(connection_id, limit).await
    }
    async fn activity(&self, limit: usize) -> Result<Vec<ActivityEntry>> {
        self.store()?.activity(limit).await
    }

    async fn insert_pending(
        &self,
        record: &PendingRecord,
        verifier: Option<&PkceVerifier>,
        purge_before: DateTime<Utc>,
    ) -> Result<()> {
        self.store()?
            .insert_pending(record, verifier, purge_before)
            .await
    }
    async fn pending(&self, state_hash: &str) -> Result<Option<PendingRecord>> {
        self.store()?.pending(state_hash).await
    }
    async fn consume_pending(&self, state_hash: &str, now: DateTime<Utc>) -> Result<bool> {
        self.store()?.consume_pending(state_hash, now).await
    }
    async fn set_pending_outcome(&self, state_hash: &str, outcome: &str) -> Result<()> {
        self.store()?.set_pending_outcome(state_hash, outcome).await
    }
    async fn pending_outcome(&self, state_hash: &str) -> Result<Option<String>> {
        self.store()?.pending_outcome(state_hash).await
    }
    async fn take_pkce_verifier(&self, state_hash: &str) -> Result<Option<PkceVerifier>> {
        self.store()?.take_pkce_verifier(state_hash).await
    }

    /// This backend's own feed: `Resynced` once the store opened, then the store's.
    fn changes(&self) -> Option<broadcast::Receiver<StoreChange>> {
        Some(self.changes.subscribe())
    }

    /// The team's leadership once the store is open; before that, no scheduled refresh
    /// (never [`SchedulerRole::Alone`], the local store's answer: this scheduler would
    /// then refresh beside the team's leader).
    async fn scheduler_role(&self) -> SchedulerRole {
        match self.opened.get() {
            Some(backend) => backend.scheduler_role().await,
            None => SchedulerRole::Standby { leader: None },
        }
    }
}
