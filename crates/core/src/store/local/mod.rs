//! The local backend: one desktop's store. Metadata and history in SQLite
//! (`store::db`), every secret in the OS keyring (`store::vault`), connection locks as
//! files in the data directory (`crate::locks`). See `store::backend` for the contract
//! it keeps.
//!
//! - [`commit`]: a connection's tokens, one at a time — the keyring-then-SQLite commit
//!   sequence, the recovery of one a crash interrupted, removal.
//! - [`token_sets`]: a batch's tokens in one keyring entry, and the sweep of the
//!   entries nobody uses any more.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::backend::{
    Backend, BackendKind, CommitOutcome, Lease, OrphanProbe, Settled, TokenCommit, TokenPrefetch,
};
use super::db::{Db, PendingRecord};
use super::vault::{TokenBundle, Vault};
use crate::activity::ActivityEntry;
use crate::clock::{SharedClock, SystemClock};
use crate::error::{Error, Result};
use crate::locks::ConnectionLocks;
use crate::model::{Client, Connection, HistoryEntry};
use crate::secret::{ChildSecret, ClientSecret, PkceVerifier};

mod commit;
mod token_sets;

/// SQLite + the OS keyring + file locks (see the module docs). Cheap to clone; clones
/// share everything.
#[derive(Clone)]
pub struct LocalBackend {
    pub(crate) db: Arc<Db>,
    pub(crate) vault: Vault,
    pub(crate) locks: Arc<ConnectionLocks>,
    clock: SharedClock,
    /// The last batch's release of old tokens, still running (see `token_sets`).
    release: Arc<std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

impl LocalBackend {
    pub fn new(db: Arc<Db>, vault: Vault, locks: Arc<ConnectionLocks>) -> Self {
        Self {
            db,
            vault,
            locks,
            clock: Arc::new(SystemClock),
            release: Arc::default(),
        }
    }

    /// `clock` for the time the backend stamps on what it writes on its own (token
    /// sets, adopted tokens); the system clock by default.
    pub fn with_clock(self, clock: SharedClock) -> Self {
        Self { clock, ..self }
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Run a blocking database call on the blocking pool.
    pub(crate) async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Db) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(|_| Error::internal("A database call panicked."))?
    }
}

#[async_trait]
impl Backend for LocalBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Local
    }

    async fn clients(&self) -> Result<Vec<Client>> {
        self.db(|db| db.clients()).await
    }

    async fn client(&self, reference: &str) -> Result<Client> {
        let r = reference.to_owned();
        self.db(move |db| db.client(&r)).await
    }

    async fn insert_client(&self, client: &Client, secret: Option<&ClientSecret>) -> Result<()> {
        // Keyring first: a client row never exists without its secret.
        if let Some(secret) = secret {
            self.vault.set_client_secret(&client.id, secret).await?;
        }
        let stored = client.clone();
        if let Err(e) = self.db(move |db| db.insert_client(&stored)).await {
            let _ = self.vault.delete_client_secret(&client.id).await;
            return Err(e);
        }
        Ok(())
    }

    async fn update_client(&self, client: &Client) -> Result<()> {
        let stored = client.clone();
        self.db(move |db| db.update_client(&stored)).await
    }

    async fn remove_client(&self, client: &Client) -> Result<()> {
        // Keyring first: if it is unavailable nothing is removed and the user can retry.
        self.vault.delete_client_secret(&client.id).await?;
        let id = client.id.clone();
        self.db(move |db| db.delete_client(&id)).await
    }

    async fn client_secret(&self, client: &Client) -> Result<ClientSecret> {
        self.vault.client_secret(&client.id, &client.name).await
    }

    async fn connections(&self) -> Result<Vec<Connection>> {
        self.db(|db| db.connections()).await
    }

    async fn connection(&self, reference: &str) -> Result<Connection> {
        let r = reference.to_owned();
        self.db(move |db| db.connection(&r)).await
    }

    async fn connection_by_natural_key(
        &self,
        client_key: &str,
        natural_key: &str,
    ) -> Result<Option<Connection>> {
        let (client, key) = (client_key.to_owned(), natural_key.to_owned());
        self.db(move |db| db.connection_by_natural_key(&client, &key))
            .await
    }

    async fn connection_count_for_client(&self, client_key: &str) -> Result<usize> {
        let client = client_key.to_owned();
        self.db(move |db| db.connection_count_for_client(&client))
            .await
    }

    async fn ensure_writable(&self) -> Result<()> {
        // The fast path reads a flag; only a database known to be read-only is probed.
        if self.db.read_only_reason().is_some() {
            self.db(|db| db.ensure_writable()).await?;
        }
        Ok(())
    }

    async fn tokens(&self, conn: &Connection) -> Result<Option<TokenBundle>> {
        self.vault.current_tokens(conn).await
    }

    fn prefetch(&self, connections: &[Connection]) -> Option<Arc<dyn TokenPrefetch>> {
        Some(self.prefetch_token_sets(connections))
    }

    async fn insert_connection(
        &self,
        conn: &Connection,
        natural_key: &str,
        tokens: &TokenBundle,
        child: Option<&ChildSecret>,
    ) -> Result<()> {
        // Secrets first, then the row: a row never exists without its tokens; a failed
        // insert removes what it wrote.
        let generation = conn.secret_generation;
        if let Some(secret) = child {
            self.vault.set_child_secret(&conn.id, secret).await?;
        }
        self.vault.put_tokens(&conn.id, generation, tokens).await?;
        let (stored, key) = (conn.clone(), natural_key.to_owned());
        if let Err(e) = self.db(move |db| db.insert_connection(&stored, &key)).await {
            let _ = self.vault.delete_tokens(&conn.id, generation).await;
            let _ = self.vault.delete_child_secret(&conn.id).await;
            return Err(e);
        }
        Ok(())
    }

    async fn commit(
        &self,
        old: &Connection,
        next: &Connection,
        tokens: &TokenBundle,
    ) -> Result<CommitOutcome> {
        self.commit_own_entry(old, next, tokens).await
    }

    async fn commit_many(&self, items: Vec<TokenCommit>) -> Vec<Result<CommitOutcome>> {
        self.commit_token_set(items).await
    }

    async fn settle(&self, id: &str, probe: OrphanProbe) -> Result<Settled> {
        self.finish_interrupted_switch(id, probe).await
    }

    async fn save_metadata(&self, conn: &Connection) -> Result<bool> {
        let stored = conn.clone();
        let generation = stored.secret_generation;
        self.db(move |db| db.update_connection(&stored, generation))
            .await
    }

    async fn remove_connection(&self, conn: &Connection) -> Result<()> {
        self.remove_with_secrets(conn).await
    }

    async fn set_child_secret(&self, connection_id: &str, secret: &ChildSecret) -> Result<()> {
        self.vault.set_child_secret(connection_id, secret).await
    }

    async fn child_secret(&self, connection_id: &str) -> Result<Option<ChildSecret>> {
        self.vault.child_secret(connection_id).await
    }

    async fn maintain(&self) -> Result<()> {
        self.sweep_token_sets().await.map(|_| ())
    }

    async fn lock(&self, connection_id: &str) -> Result<Lease> {
        Ok(Lease::new(self.locks.acquire(connection_id).await?))
    }

    fn forget_lock(&self, connection_id: &str) {
        self.locks.remove(connection_id);
    }

    async fn record(
        &self,
        connection_id: Option<&str>,
        client_key: Option<&str>,
        entry: &HistoryEntry,
        coalesce: Option<&str>,
    ) -> Result<()> {
        let (conn, client) = (
            connection_id.map(str::to_owned),
            client_key.map(str::to_owned),
        );
        let (entry, kind) = (entry.clone(), coalesce.map(str::to_owned));
        self.db(move |db| match kind {
            None => db.add_history(conn.as_deref(), client.as_deref(), &entry),
            Some(kind) => {
                db.add_history_coalesced(conn.as_deref(), client.as_deref(), &entry, &kind)
            }
        })
        .await
    }

    async fn history(
        &self,
        connection_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>> {
        let id = connection_id.map(str::to_owned);
        self.db(move |db| db.history(id.as_deref(), limit)).await
    }

    async fn activity(&self, limit: usize) -> Result<Vec<ActivityEntry>> {
        self.db(move |db| db.activity(limit)).await
    }

    async fn insert_pending(
        &self,
        record: &PendingRecord,
        verifier: Option<&PkceVerifier>,
        purge_before: DateTime<Utc>,
    ) -> Result<()> {
        if let Some(verifier) = verifier {
            self.vault
                .set_pkce_verifier(&record.state_hash, verifier)
                .await?;
        }
        let record = record.clone();
        self.db(move |db| {
            db.purge_pending(purge_before)?;
            db.insert_pending(&record)
        })
        .await
    }

    async fn pending(&self, state_hash: &str) -> Result<Option<PendingRecord>> {
        let hash = state_hash.to_owned();
        self.db(move |db| db.pending(&hash)).await
    }

    async fn consume_pending(&self, state_hash: &str, now: DateTime<Utc>) -> Result<bool> {
        let hash = state_hash.to_owned();
        self.db(move |db| db.consume_pending(&hash, now)).await
    }

    async fn set_pending_outcome(&self, state_hash: &str, outcome: &str) -> Result<()> {
        let (hash, outcome) = (state_hash.to_owned(), outcome.to_owned());
        self.db(move |db| db.set_pending_outcome(&hash, &outcome))
            .await
    }

    async fn pending_outcome(&self, state_hash: &str) -> Result<Option<String>> {
        let hash = state_hash.to_owned();
        self.db(move |db| db.pending_outcome(&hash)).await
    }

    async fn take_pkce_verifier(&self, state_hash: &str) -> Result<Option<PkceVerifier>> {
        self.vault.take_pkce_verifier(state_hash).await
    }
}
