//! [`TeamBackend`]: the core's storage seam (`authdeck_core::store::backend::Backend`)
//! on a [`TeamStore`] in PostgreSQL.
//!
//! What maps where (the mapping itself is in [`records`], in one place):
//! - clients → `clients` (`record` = the core's JSON + `"v": 1`; the client secret sealed
//!   in `secret`, AD: team, client);
//! - connections → `connections` (`record`; `generation` is the connection's
//!   `secret_generation`; `natural_key`), their tokens → `token_sets` (a versioned JSON
//!   bundle, sealed with AD: team, connection, generation), FedEx child secrets →
//!   `child_secrets` (AD: team, connection);
//! - the connection lock → [`TeamStore::lock_refresh`] (a session advisory lock) with a
//!   bounded wait: `busy` when it runs out; the row is re-read after the lock is taken;
//!   its `Lease` says whether it is still held with enough time left
//!   (`Lease::ensure_held`: the heartbeat, then a round trip on the lock's session),
//!   which the manager asks before each provider call; before one that spends a
//!   refresh token it asks `Lease::begin_call`, which also writes the call's in-flight
//!   mark (`calls_in_flight`, see `lock::RefreshLock::begin_call`) in that round trip;
//! - history → `history` (with the member, the machine and via; coalesced lines keep a
//!   `count`);
//! - pending authorizations → `pending_authorizations` (marked used once, outcome kept
//!   until purged; the PKCE verifier sealed, AD: team, state hash, and removed once taken);
//! - the change feed → [`TeamStore::feed`] (LISTEN/NOTIFY + resync by version);
//! - the scheduler's role → the team's [`crate::Leadership`], competed for by every
//!   scheduler of the team (see [`leading`]).
//!

mod held;
pub mod late;
mod leading;
pub mod records;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use authdeck_core::activity::ActivityEntry;
use authdeck_core::model::{Client, Connection, HistoryEntry};
use authdeck_core::store::backend::{Backend, Lease};
use authdeck_core::store::db::PendingRecord;
use authdeck_core::store::vault::TokenBundle;
use authdeck_core::{ChildSecret, ClientSecret, Error, ErrorCode, PkceVerifier, Result};
use chrono::{DateTime, Utc};
use tokio::sync::broadcast;

use crate::feed::{ChangeKind, FeedEvent};
use crate::lock::RefreshLock;
use crate::store::{CommitRequest, HistoryLine, NewConnection, TeamStore};
use authdeck_core::store::{
    BackendKind, CommitOutcome, OrphanProbe, Settled, StoreChange, StoreChangeKind, TokenCommit,
};
use records::*;

/// How long [`Backend::lock`] waits for another desktop or agent by default (the local
/// store's `DEFAULT_LOCK_WAIT`).
pub const DEFAULT_LOCK_WAIT: Duration = authdeck_core::locks::DEFAULT_LOCK_WAIT;

/// The team store behind the core's storage seam. See the module docs.
pub struct TeamBackend {
    store: TeamStore,
    lock_wait: Duration,
    name: String,
    /// The team's change version when this backend was opened: the feed starts there.
    opened_version: i64,
    reachable: Arc<AtomicBool>,
    changes: broadcast::Sender<StoreChange>,
    feed: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Tests: connections whose locks [`Backend::lock`] hands out frozen.
    #[cfg(feature = "testing")]
    frozen: Mutex<std::collections::HashSet<String>>,
    /// The scheduler's leadership, competed for from the first `scheduler_role` call.
    leading: leading::Competition,
}

impl std::fmt::Debug for TeamBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TeamBackend")
            .field("store", &self.store)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Drop for TeamBackend {
    fn drop(&mut self) {
        if let Ok(mut feed) = self.feed.lock() {
            if let Some(task) = feed.take() {
                task.abort();
            }
        }
    }
}

/// At most this many commits share one transaction (and the team row lock).
pub const COMMIT_BATCH: usize = 64;

/// The connection as stored after a store commit's outcome.
fn committed(next: &Connection, outcome: crate::store::CommitOutcome) -> CommitOutcome {
    match outcome {
        crate::store::CommitOutcome::Won { generation, .. } => {
            let mut stored = next.clone();
            stored.secret_generation = generation;
            stored.token_set = None;
            stored.pending_generation = None;
            CommitOutcome::Committed(stored)
        }
        crate::store::CommitOutcome::Lost { .. } => CommitOutcome::Superseded,
    }
}

fn secret_text(what: &str, bytes: &[u8]) -> Result<String> {
    std::str::from_utf8(bytes).map(str::to_owned).map_err(|_| {
        Error::new(
            ErrorCode::Storage,
            format!("A {what} in the team store is damaged (not text)."),
        )
    })
}

impl TeamBackend {
    /// The seam on `store`; [`Backend::lock`] waits at most `lock_wait`.
    pub async fn open(store: TeamStore, lock_wait: Duration) -> Result<Self> {
        let name = store.team_name().await?;
        let opened_version = store.current_version().await?;
        let (changes, _) = broadcast::channel(1024);
        Ok(Self {
            leading: leading::Competition::new(store.clone()),
            store,
            lock_wait,
            name,
            opened_version,
            reachable: Arc::new(AtomicBool::new(true)),
            changes,
            feed: Mutex::new(None),
            #[cfg(feature = "testing")]
            frozen: Mutex::new(Default::default()),
        })
    }

    pub fn store(&self) -> &TeamStore {
        &self.store
    }

    /// Tests only: from now on [`Backend::lock`] hands out `connection_id`'s lock
    /// frozen ([`RefreshLock::freeze_for_test`]: no heartbeat, as if this process hung
    /// while holding it).
    #[cfg(feature = "testing")]
    pub fn freeze_locks_for_test(&self, connection_id: &str) {
        if let Ok(mut frozen) = self.frozen.lock() {
            frozen.insert(connection_id.to_owned());
        }
    }

    /// Note whether the store answered (for [`TeamBackend::kind`]).
    fn seen<T>(&self, result: Result<T>) -> Result<T> {
        match &result {
            Ok(_) => self.reachable.store(true, Ordering::Relaxed),
            Err(e) if e.code == ErrorCode::TeamUnavailable => {
                self.reachable.store(false, Ordering::Relaxed)
            }
            Err(_) => {}
        }
        result
    }

    /// The connection's refresh lock itself, with the same bounded wait as
    /// [`Backend::lock`] (whose `Lease` checks it the same way: `Lease::ensure_held`).
    pub async fn refresh_lock(&self, connection_id: &str) -> Result<RefreshLock> {
        let lock = self.store.lock_refresh(connection_id, self.lock_wait).await;
        self.seen(lock)
    }

    // ---- the token half of the seam (SEAM.md; inherent until the core has it) -------

    /// One item of a batch on its own: the commit, then its history if it committed.
    async fn commit_one(&self, item: &TokenCommit) -> Result<CommitOutcome> {
        let outcome = self.commit(&item.old, &item.next, &item.tokens).await;
        if let (Ok(CommitOutcome::Committed(conn)), Some(entry)) = (&outcome, &item.history) {
            if let Err(e) = self
                .record(Some(&conn.id), Some(&conn.client_key), entry, None)
                .await
            {
                tracing::warn!(code = %e.code, "team store: history of a commit not recorded");
            }
        }
        outcome
    }
}

#[async_trait]
impl Backend for TeamBackend {
    // ---- tokens, and what else only the store knows -----------------------------

    /// A client's secret; `invalid_client` (add the client again) when the store has
    /// none for it. (The seam at this crate's base has no such read: the local store's
    /// manager reads the keyring directly; the `seam` branch adds this signature.)
    async fn client_secret(&self, client: &Client) -> Result<ClientSecret> {
        let opened = self.seen(self.store.client_secret(&client.id).await)?;
        match opened {
            Some(bytes) => secret_text("client secret", &bytes).map(ClientSecret::new),
            None => Err(Error::new(
                ErrorCode::InvalidClient,
                format!(
                    "The client secret of {:?} is missing from the team store: remove and add the client again.",
                    client.name
                ),
            )),
        }
    }

    /// Newest first, at most `limit`: every history line with its connection's label and
    /// provider (kept after a removal) and whether it still exists (the `seam` branch's
    /// `Backend::activity`).
    async fn activity(&self, limit: usize) -> Result<Vec<ActivityEntry>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.seen(self.store.activity(limit).await)?;
        Ok(rows.iter().map(activity_of).collect())
    }

    /// The connection's current tokens: those of its stored generation, if that is
    /// still `conn.secret_generation`; `None` when none are stored or the connection
    /// moved to another generation since `conn` was read (read it again), as the local
    /// store (which reads the entry of `conn`'s generation).
    async fn tokens(&self, conn: &Connection) -> Result<Option<TokenBundle>> {
        let set = self.seen(self.store.token_set(&conn.id).await)?;
        match set {
            Some((generation, bytes)) if generation == conn.secret_generation => {
                tokens_from_bytes(&conn.id, &bytes).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// A new connection with its first tokens and child secret, all or nothing.
    async fn insert_connection(
        &self,
        conn: &Connection,
        natural_key: &str,
        tokens: &TokenBundle,
        child: Option<&ChildSecret>,
    ) -> Result<()> {
        let record = connection_record(conn)?;
        let bytes = tokens_to_bytes(tokens)?;
        let result = self
            .store
            .insert_new_connection(&NewConnection {
                id: &conn.id,
                client_id: &conn.client_key,
                natural_key: Some(natural_key),
                record: &record,
                generation: conn.secret_generation,
                token_set: &bytes,
                child_secret: child.map(|c| c.expose().as_bytes()),
                history: None,
            })
            .await;
        self.seen(result).map(|_| ())
    }

    /// Store `next` and `tokens` at generation `old.secret_generation + 1` iff the stored
    /// generation is still `old.secret_generation` (one transaction).
    async fn commit(
        &self,
        old: &Connection,
        next: &Connection,
        tokens: &TokenBundle,
    ) -> Result<CommitOutcome> {
        if old.id != next.id {
            return Err(Error::internal("A commit must keep the connection's id."));
        }
        let record = connection_record(next)?;
        let bytes = tokens_to_bytes(tokens)?;
        let outcome = self
            .store
            .commit(&CommitRequest {
                connection_id: &old.id,
                expected_generation: old.secret_generation,
                token_set: &bytes,
                record: &record,
                refreshed: is_refresh(old, next),
                history: None,
            })
            .await;
        Ok(committed(next, self.seen(outcome)?))
    }

    /// One outcome per item, in order. One transaction per [`COMMIT_BATCH`] items (the
    /// store's `commit_many`: about one round trip each); if a batch is refused as a
    /// whole (nothing written), its items are committed one by one, so one bad item
    /// does not fail the others. The store unreachable fails the batch's items.
    async fn commit_many(&self, items: Vec<TokenCommit>) -> Vec<Result<CommitOutcome>> {
        let mut results: Vec<Option<Result<CommitOutcome>>> = vec![None; items.len()];
        let mut prepared = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            if item.old.id != item.next.id {
                results[i] = Some(Err(Error::internal(
                    "A commit must keep the connection's id.",
                )));
                continue;
            }
            match (connection_record(&item.next), tokens_to_bytes(&item.tokens)) {
                (Ok(record), Ok(bytes)) => prepared.push((i, record, bytes)),
                (Err(e), _) | (_, Err(e)) => results[i] = Some(Err(e)),
            }
        }
        let details: Vec<_> = items
            .iter()
            .map(|item| {
                item.history
                    .as_ref()
                    .map(|h| capped_detail(h.detail.as_deref()))
            })
            .collect();
        for batch in prepared.chunks(COMMIT_BATCH) {
            let requests: Vec<(CommitRequest<'_>, Option<HistoryLine<'_>>)> = batch
                .iter()
                .map(|(i, record, bytes)| {
                    let item = &items[*i];
                    let line = item.history.as_ref().map(|h| HistoryLine {
                        connection_id: Some(&item.next.id),
                        client_id: Some(&item.next.client_key),
                        at: h.at,
                        event: &h.event,
                        outcome: &h.outcome,
                        detail: details[*i].as_ref().and_then(|d| d.as_deref()),
                        count: history_count(h),
                    });
                    let request = CommitRequest {
                        connection_id: &item.old.id,
                        expected_generation: item.old.secret_generation,
                        token_set: bytes,
                        record,
                        refreshed: is_refresh(&item.old, &item.next),
                        history: None,
                    };
                    (request, line)
                })
                .collect();
            let outcome = self.store.commit_many(&requests).await;
            match self.seen(outcome) {
                Ok(outcomes) => {
                    for ((i, _, _), outcome) in batch.iter().zip(outcomes) {
                        results[*i] = Some(Ok(committed(&items[*i].next, outcome)));
                    }
                }
                Err(e) if e.code == ErrorCode::TeamUnavailable => {
                    for (i, _, _) in batch {
                        results[*i] = Some(Err(e.clone()));
                    }
                }
                Err(_) => {
                    for (i, _, _) in batch {
                        results[*i] = Some(self.commit_one(&items[*i]).await);
                    }
                }
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(Error::internal("A batch commit lost an item."))))
            .collect()
    }

    /// A transactional store leaves nothing half done: re-read.
    async fn settle(&self, id: &str, _probe: OrphanProbe) -> Result<Settled> {
        let row = self.seen(self.store.connection(id).await)?;
        let row = row.ok_or_else(|| Error::not_found("No such connection in the team store."))?;
        Ok(Settled {
            connection: connection_of(&row)?,
            completed: false,
        })
    }

    /// Metadata only, tokens untouched; `false` when the generation moved on (nothing
    /// written).
    async fn save_metadata(&self, conn: &Connection) -> Result<bool> {
        let record = connection_record(conn)?;
        let result = self
            .store
            .update_record_if(&conn.id, conn.secret_generation, &record)
            .await;
        self.seen(result)
    }

    /// The connection with its tokens and child secret (history stays). A connection
    /// already gone is fine.
    async fn remove_connection(&self, conn: &Connection) -> Result<()> {
        match self.seen(self.store.remove_connection(&conn.id, None).await) {
            Ok(_) => Ok(()),
            Err(e) if e.code == ErrorCode::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn set_child_secret(&self, connection_id: &str, secret: &ChildSecret) -> Result<()> {
        let result = self
            .store
            .set_child_secret(connection_id, secret.expose().as_bytes())
            .await;
        self.seen(result)
    }

    async fn child_secret(&self, connection_id: &str) -> Result<Option<ChildSecret>> {
        let opened = self.seen(self.store.child_secret(connection_id).await)?;
        opened
            .map(|bytes| secret_text("child secret", &bytes).map(ChildSecret::new))
            .transpose()
    }

    /// Nothing to sweep: the store keeps one token set per connection.
    async fn maintain(&self) -> Result<()> {
        Ok(())
    }

    /// Changes made by other desktops and agents (and this one), from the team's feed:
    /// started on the first call, from the version the backend was opened at.
    fn changes(&self) -> Option<broadcast::Receiver<StoreChange>> {
        let receiver = self.changes.subscribe();
        let Ok(mut feed) = self.feed.lock() else {
            return Some(receiver);
        };
        if feed.is_none() {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    let mut source = self.store.feed(self.opened_version);
                    let sender = self.changes.clone();
                    let reachable = self.reachable.clone();
                    *feed = Some(runtime.spawn(async move {
                        while let Some(event) = source.recv().await {
                            let change = match event {
                                FeedEvent::Change(c) => StoreChange {
                                    kind: match (c.kind, c.deleted) {
                                        (ChangeKind::Client, _) => StoreChangeKind::ClientChanged,
                                        (ChangeKind::Connection, Some(true)) => {
                                            StoreChangeKind::ConnectionRemoved
                                        }
                                        (ChangeKind::Connection, _) => {
                                            StoreChangeKind::ConnectionChanged
                                        }
                                    },
                                    id: Some(c.id),
                                },
                                FeedEvent::Connected { .. } => {
                                    reachable.store(true, Ordering::Relaxed);
                                    StoreChange {
                                        kind: StoreChangeKind::Resynced,
                                        id: None,
                                    }
                                }
                                FeedEvent::Disconnected { .. } => {
                                    reachable.store(false, Ordering::Relaxed);
                                    StoreChange {
                                        kind: StoreChangeKind::Unreachable,
                                        id: None,
                                    }
                                }
                            };
                            // No receiver right now is fine: the next one re-reads.
                            let _ = sender.send(change);
                        }
                    }));
                }
                Err(_) => tracing::warn!("team store: change feed asked for outside a runtime"),
            }
        }
        Some(receiver)
    }

    /// The team's scheduler leadership: `Leader` while this backend holds it, else
    /// `Standby` naming who leads (see [`leading`]).
    async fn scheduler_role(&self) -> authdeck_core::store::backend::SchedulerRole {
        self.leading.role().await
    }

    /// The team's name and whether the store answered last time.
    fn kind(&self) -> BackendKind {
        BackendKind::Team {
            name: self.name.clone(),
            reachable: self.reachable.load(Ordering::Relaxed),
        }
    }

    // ---- clients ---------------------------------------------------------------------

    async fn clients(&self) -> Result<Vec<Client>> {
        let rows = self.seen(self.store.clients().await)?;
        let mut clients = rows.iter().map(client_of).collect::<Result<Vec<_>>>()?;
        clients.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
        Ok(clients)
    }

    async fn client(&self, reference: &str) -> Result<Client> {
        match self.seen(self.store.find_client(reference).await)? {
            Some(row) => client_of(&row),
            None => Err(Error::not_found(format!(
                "No client named {reference:?}: see `authdeckctl client list`."
            ))),
        }
    }

    async fn insert_client(&self, client: &Client, secret: Option<&ClientSecret>) -> Result<()> {
        let record = client_record(client)?;
        let result = self
            .store
            .insert_client(&client.id, &record, secret.map(|s| s.expose().as_bytes()))
            .await;
        self.seen(result).map(|_| ())
    }

    async fn update_client(&self, client: &Client) -> Result<()> {
        let record = client_record(client)?;
        let result = self
            .store
            .update_client_record(&client.id, &client.name, &record)
            .await;
        self.seen(result).map(|_| ())
    }

    async fn remove_client(&self, client: &Client) -> Result<()> {
        match self.seen(self.store.remove_client(&client.id).await) {
            Ok(()) => Ok(()),
            // Removed meanwhile (another desktop): what was asked for is done.
            Err(e) if e.code == ErrorCode::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    // ---- connections -----------------------------------------------------------------

    async fn connections(&self) -> Result<Vec<Connection>> {
        let rows = self.seen(self.store.connections().await)?;
        let mut conns = rows.iter().map(connection_of).collect::<Result<Vec<_>>>()?;
        conns.sort_by(|a, b| a.label.cmp(&b.label).then_with(|| a.id.cmp(&b.id)));
        Ok(conns)
    }

    async fn connection(&self, reference: &str) -> Result<Connection> {
        let rows = self.seen(self.store.find_connections(reference).await)?;
        match rows.as_slice() {
            [row] => connection_of(row),
            [] => Err(Error::not_found(format!(
                "No connection {reference:?}: see `authdeckctl list`."
            ))),
            rows => Err(Error::invalid_input(format!(
                "{} connections match {reference:?}: use the connection id instead.",
                rows.len()
            ))),
        }
    }

    async fn connection_by_natural_key(
        &self,
        client_key: &str,
        natural_key: &str,
    ) -> Result<Option<Connection>> {
        let row = self.seen(
            self.store
                .connection_by_natural_key(client_key, natural_key)
                .await,
        )?;
        row.as_ref().map(connection_of).transpose()
    }

    async fn connection_count_for_client(&self, client_key: &str) -> Result<usize> {
        let n = self.seen(self.store.connection_count_for_client(client_key).await)?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    // ---- locks -----------------------------------------------------------------------

    async fn lock(&self, connection_id: &str) -> Result<Lease> {
        let lock = self.seen(self.store.lock_refresh(connection_id, self.lock_wait).await)?;
        #[cfg(feature = "testing")]
        let lock = match self.frozen.lock().map(|f| f.contains(connection_id)) {
            Ok(true) => lock.freeze_for_test(),
            _ => lock,
        };
        Ok(Lease::checked(held::HeldLock(Some(lock))))
    }

    /// Nothing to free: the lock's key is the connection row's.
    fn forget_lock(&self, _connection_id: &str) {}

    // ---- history ---------------------------------------------------------------------

    async fn record(
        &self,
        connection_id: Option<&str>,
        client_key: Option<&str>,
        entry: &HistoryEntry,
        coalesce: Option<&str>,
    ) -> Result<()> {
        let detail = capped_detail(entry.detail.as_deref());
        let line = HistoryLine {
            connection_id,
            client_id: client_key,
            at: entry.at,
            event: &entry.event,
            outcome: &entry.outcome,
            detail: detail.as_deref(),
            count: history_count(entry),
        };
        let result = self.store.add_history(&line, coalesce).await;
        self.seen(result)
    }

    async fn history(
        &self,
        connection_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.seen(self.store.history(connection_id, limit).await)?;
        Ok(rows.iter().map(history_of).collect())
    }

    // ---- pending authorizations --------------------------------------------------------

    async fn insert_pending(
        &self,
        record: &PendingRecord,
        verifier: Option<&PkceVerifier>,
        purge_before: DateTime<Utc>,
    ) -> Result<()> {
        let json = pending_record(record)?;
        let result = self
            .store
            .insert_pending(
                &record.state_hash,
                &record.client_key,
                &json,
                verifier.map(|v| v.expose().as_bytes()),
                record.expires_at,
                purge_before,
            )
            .await;
        self.seen(result)
    }

    async fn pending(&self, state_hash: &str) -> Result<Option<PendingRecord>> {
        let row = self.seen(self.store.pending_by_id(state_hash).await)?;
        row.as_ref().map(pending_of).transpose()
    }

    async fn consume_pending(&self, state_hash: &str, now: DateTime<Utc>) -> Result<bool> {
        let result = self.store.consume_pending(state_hash, now).await;
        self.seen(result)
    }

    async fn set_pending_outcome(&self, state_hash: &str, outcome: &str) -> Result<()> {
        let result = self.store.set_pending_outcome(state_hash, outcome).await;
        self.seen(result)
    }

    async fn pending_outcome(&self, state_hash: &str) -> Result<Option<String>> {
        let row = self.seen(self.store.pending_by_id(state_hash).await)?;
        Ok(row.as_ref().and_then(pending_outcome_of))
    }

    async fn take_pkce_verifier(&self, state_hash: &str) -> Result<Option<PkceVerifier>> {
        let opened = self.seen(self.store.take_pending_secret(state_hash).await)?;
        opened
            .map(|bytes| secret_text("PKCE verifier", &bytes).map(PkceVerifier::new))
            .transpose()
    }
}
