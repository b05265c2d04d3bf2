//! The storage seam: what the [`crate::manager::Manager`] needs from wherever clients,
//! connections, their locks, the history and pending authorizations are kept.
//!
//! [`LocalBackend`] (SQLite for metadata and history, the OS keyring for secrets, file
//! locks in the data directory) is the first implementation; a shared team store is
//! meant to be the second.
//!
//! # Contract
//! - **Reads** ([`Backend::clients`], [`Backend::connections`], …) see every write
//!   that returned `Ok`, from this process or any other sharing the store. They never
//!   return a secret.
//! - **Writes are atomic.** Each method either changes everything it names or nothing.
//!   A crash in the middle leaves the old state. [`Backend::insert_client`] stores the
//!   client and its secret together. A write that returns `Err` has changed nothing the
//!   caller must undo.
//! - **Locks** ([`Backend::lock`]): at most one holder per connection, across every
//!   process and machine sharing the store. Waiting is bounded: after the store's wait
//!   the caller gets `busy`. A holder that dies (crash, kill -9, lost session) releases
//!   the lock without anyone's help. A holder must re-read the connection after taking
//!   the lock, because another holder may have changed it meanwhile. Dropping the
//!   [`Lease`] releases the lock.
//! - **History** is append-only; [`Backend::record`] with a coalescing `kind` may fold
//!   the entry into an earlier one of that kind from the same minute, adding to its
//!   count. History outlives the connection it is about.
//! - **Pending authorizations** are single-use: [`Backend::consume_pending`] succeeds
//!   for exactly one caller per state. Its outcome, once set, is kept until purged.
//!
//! Not behind the seam yet: token storage and its commit sequence. The local commit
//! (keyring first, then one SQLite switch with a compare-and-swap on the generation, and
//! the recovery of an interrupted one) still lives in `manager/{commit,token_sets,
//! answers}.rs`. It moves here, as a `commit` with the same compare-and-swap promise,
//! together with the second backend.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::db::{Db, PendingRecord};
use super::vault::Vault;
use crate::error::{Error, Result};
use crate::locks::ConnectionLocks;
use crate::model::{Client, Connection, HistoryEntry};
use crate::secret::{ClientSecret, PkceVerifier};

/// A held connection lock (see [`Backend::lock`]); dropping it releases the lock.
pub struct Lease {
    _held: Box<dyn Send + Sync>,
}

impl Lease {
    pub fn new(held: impl Send + Sync + 'static) -> Self {
        Self {
            _held: Box::new(held),
        }
    }
}

/// See the module's contract.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    // ---- clients ---------------------------------------------------------------------

    async fn clients(&self) -> Result<Vec<Client>>;
    /// By id or name; `not_found` when neither matches.
    async fn client(&self, reference: &str) -> Result<Client>;
    /// A new client and (for confidential clients) its secret, together.
    async fn insert_client(&self, client: &Client, secret: Option<&ClientSecret>) -> Result<()>;
    /// New settings of an existing client (its secret unchanged).
    async fn update_client(&self, client: &Client) -> Result<()>;
    /// A client and its secret. The caller has checked no connection uses it.
    async fn remove_client(&self, client: &Client) -> Result<()>;

    // ---- connections -----------------------------------------------------------------

    async fn connections(&self) -> Result<Vec<Connection>>;
    /// By id or label; `not_found` when neither matches.
    async fn connection(&self, reference: &str) -> Result<Connection>;
    /// The connection of one business / project / account of a client, if connected.
    async fn connection_by_natural_key(
        &self,
        client_key: &str,
        natural_key: &str,
    ) -> Result<Option<Connection>>;
    async fn connection_count_for_client(&self, client_key: &str) -> Result<usize>;

    // ---- locks -----------------------------------------------------------------------

    /// Take the connection's lock, waiting at most the store's bound.
    async fn lock(&self, connection_id: &str) -> Result<Lease>;
    /// The connection is gone: its lock's resources may go too (best effort).
    fn forget_lock(&self, connection_id: &str);

    // ---- history ---------------------------------------------------------------------

    /// Append `entry`; with `coalesce`, fold it into the same minute's entry of that
    /// kind (same connection and client) if there is one.
    async fn record(
        &self,
        connection_id: Option<&str>,
        client_key: Option<&str>,
        entry: &HistoryEntry,
        coalesce: Option<&str>,
    ) -> Result<()>;
    /// Newest first; `None`: every entry, including those of no connection.
    async fn history(&self, connection_id: Option<&str>, limit: usize)
        -> Result<Vec<HistoryEntry>>;

    // ---- pending authorizations --------------------------------------------------------

    /// A started authorization, with its PKCE verifier when it uses one. Pending
    /// authorizations created before `purge_before` may be dropped at the same time.
    async fn insert_pending(
        &self,
        record: &PendingRecord,
        verifier: Option<&PkceVerifier>,
        purge_before: DateTime<Utc>,
    ) -> Result<()>;
    async fn pending(&self, state_hash: &str) -> Result<Option<PendingRecord>>;
    /// Mark it used at `now`; `true` for exactly one caller per state.
    async fn consume_pending(&self, state_hash: &str, now: DateTime<Utc>) -> Result<bool>;
    async fn set_pending_outcome(&self, state_hash: &str, outcome: &str) -> Result<()>;
    async fn pending_outcome(&self, state_hash: &str) -> Result<Option<String>>;
    /// The verifier, removed (a verifier is used once).
    async fn take_pkce_verifier(&self, state_hash: &str) -> Result<Option<PkceVerifier>>;
}

/// SQLite + the OS keyring + file locks: one desktop's store (see `store::db`,
/// `store::vault`, `crate::locks`).
pub struct LocalBackend {
    pub(crate) db: Arc<Db>,
    pub(crate) vault: Vault,
    pub(crate) locks: Arc<ConnectionLocks>,
}

impl LocalBackend {
    pub fn new(db: Arc<Db>, vault: Vault, locks: Arc<ConnectionLocks>) -> Self {
        Self { db, vault, locks }
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
