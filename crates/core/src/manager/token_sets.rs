//! Batch refresh: many connections' new tokens committed in *token sets*, one keyring
//! entry per batch.
//!
//! Why: gnome-keyring rewrites its whole keyring file on every create and delete
//! (measured: ≈ 50 ms per create and ≈ 35 ms per delete with 1,000 items), and one
//! daemon serves every call in turn. A refresh of 1,000 connections with one entry per
//! connection spends a minute in the keyring whatever the concurrency; with one entry
//! per batch it spends well under a second.
//!
//! The commit order of a single refresh carries over, per batch:
//! 1. record the set and its members (connection, new generation) in SQLite;
//! 2. write the set to the keyring in one call — the connections still point at their
//!    old tokens;
//! 3. one SQLite transaction switches every member whose generation is still the one it
//!    was refreshed from — the commit point;
//! 4. release what the members used before: delete their own old entries, and rewrite or
//!    delete the old sets they left.
//!
//! A crash between 2 and 3 leaves members one generation behind a set that holds their
//! newest tokens: [`Manager::finish_interrupted_switch`] adopts them. A crash after 3
//! leaves old entries behind, which [`Manager::sweep_token_sets`] removes.
//!
//! Each connection's lock is held from before its provider call until its batch is
//! committed, so no other refresher can spend the refresh token in the meantime.
//! Provider calls are bounded by `refresh_concurrency`, and twice as many connections get
//! ready (lock, re-read) meanwhile; both permits are released as soon as the provider
//! answered, so provider calls go on while earlier batches are being written.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::{crash_point, Manager};
use crate::error::{Error, ErrorCode, Result};
use crate::model::{Client, Connection, HistoryEntry};
use crate::store::vault::{TokenBundle, TokenSetContents};

/// At most this many connections per token set: small enough that reading one
/// connection's token out of its set stays cheap.
pub(super) const MAX_SET_SIZE: usize = 48;
/// How long the first result of a batch waits for company before it is written. Kept
/// short: until its batch is written, a connection's newest tokens exist only in memory.
pub(super) const MAX_BATCH_WAIT: Duration = Duration::from_millis(40);

/// New tokens waiting to be committed with the next batch.
struct PendingCommit {
    old: Connection,
    next: Connection,
    tokens: TokenBundle,
    done: oneshot::Sender<Result<Connection>>,
}

/// A token set's contents once read (`None`: no such entry).
type SetCell = tokio::sync::OnceCell<Option<Arc<TokenSetContents>>>;

/// The shared state of one batch refresh, handed to each connection's refresh.
pub(super) struct Batch {
    commits: mpsc::UnboundedSender<PendingCommit>,
    /// Refreshes that may still submit a commit (started, neither submitted nor ended):
    /// when none is left, a partial batch is written at once.
    unsettled: Arc<AtomicUsize>,
    /// Token sets read during this batch refresh, by id: each is read once.
    sets: std::sync::Mutex<HashMap<String, Arc<SetCell>>>,
    /// Clients read during this batch refresh, by id.
    clients: std::sync::Mutex<HashMap<String, Client>>,
    /// At most `refresh_concurrency` provider calls at a time.
    calls: Arc<Semaphore>,
    /// Connections with a journalled answer not adopted yet: not refreshed.
    held_back: std::collections::HashSet<String>,
}

/// One connection's share of a [`Batch`]: its permit to get ready for its provider call
/// (released once the provider answered), and its place among the unsettled refreshes.
pub(super) struct BatchSlot<'a> {
    pub batch: &'a Batch,
    pub preparing: Option<OwnedSemaphorePermit>,
    pub settled: Unsettled,
}

/// Marks one refresh settled when dropped (however it ended).
pub(super) struct Unsettled(Arc<AtomicUsize>);

impl Drop for Unsettled {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Batch {
    pub(super) fn held_back(&self, id: &str) -> bool {
        self.held_back.contains(id)
    }

    /// Counts one more refresh that may submit a commit.
    pub(super) fn start(&self) -> Unsettled {
        self.unsettled.fetch_add(1, Ordering::AcqRel);
        Unsettled(self.unsettled.clone())
    }

    /// Commit `next` (a refreshed `old`) with the next batch; returns once it is
    /// committed (or failed).
    pub(super) async fn commit(
        &self,
        old: Connection,
        next: Connection,
        tokens: TokenBundle,
        settled: Unsettled,
    ) -> Result<Connection> {
        let (done, result) = oneshot::channel();
        self.commits
            .send(PendingCommit {
                old,
                next,
                tokens,
                done,
            })
            .map_err(|_| Error::internal("The batch committer stopped early."))?;
        drop(settled);
        result
            .await
            .map_err(|_| Error::internal("The batch committer stopped early."))?
    }

    /// Wait for a provider call slot; held until the call returns.
    pub(super) async fn provider_call(&self) -> Result<OwnedSemaphorePermit> {
        self.calls
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::internal("The batch refresh stopped early."))
    }

    /// A client, read from the database once per batch.
    pub(super) async fn client(&self, manager: &Manager, id: &str) -> Result<Client> {
        let cached = self
            .clients
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned();
        if let Some(client) = cached {
            return Ok(client);
        }
        let client = manager.client(id).await?;
        self.clients
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_owned(), client.clone());
        Ok(client)
    }

    /// A token set's contents, read from the keyring once per batch.
    async fn read_set(
        &self,
        manager: &Manager,
        set: &str,
    ) -> Result<Option<Arc<TokenSetContents>>> {
        let cell = self
            .sets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(set.to_owned())
            .or_default()
            .clone();
        let contents = cell
            .get_or_try_init(|| async {
                Ok::<_, Error>(manager.inner.vault.token_set(set).await?.map(Arc::new))
            })
            .await?;
        Ok(contents.clone())
    }

    /// The current tokens of `conn` if it is in a token set, reading each set once per
    /// batch. `None` when the connection is not in a set or the set has no tokens for its
    /// current generation (the caller reads them the usual way).
    pub(super) async fn cached_tokens(
        &self,
        manager: &Manager,
        conn: &Connection,
    ) -> Result<Option<TokenBundle>> {
        let Some(set) = &conn.token_set else {
            return Ok(None);
        };
        let contents = self.read_set(manager, set).await?;
        Ok(contents.and_then(|c| {
            c.get(&conn.id)
                .filter(|(generation, _)| *generation == conn.secret_generation)
                .map(|(_, tokens)| tokens.clone())
        }))
    }
}

impl Manager {
    /// Refresh `connections` as one batch: `refresh_concurrency` provider calls at a
    /// time, new tokens committed in token sets. Returns one result per connection, in
    /// the order given.
    pub(super) async fn refresh_batch(
        &self,
        connections: Vec<Connection>,
    ) -> Vec<(Connection, Result<Connection>)> {
        let started = Instant::now();
        // What a dead process journalled is adopted before anything is refreshed.
        let held_back = self.adopt_journals().await;
        let (commits, rx) = mpsc::unbounded_channel();
        let batch = Arc::new(Batch {
            commits,
            unsettled: Arc::new(AtomicUsize::new(0)),
            sets: std::sync::Mutex::new(HashMap::new()),
            clients: std::sync::Mutex::new(HashMap::new()),
            calls: Arc::new(Semaphore::new(self.inner.refresh_concurrency)),
            held_back,
        });
        // Read the token sets the batch refreshes from ahead, in the order they are
        // needed, while the first provider calls go out: once the committer writes,
        // reads would queue behind its writes.
        let mut sets: Vec<String> = Vec::new();
        for set in connections.iter().filter_map(|c| c.token_set.as_ref()) {
            if !sets.contains(set) {
                sets.push(set.clone());
            }
        }
        let read_ahead = {
            let (this, batch) = (self.clone(), batch.clone());
            tokio::spawn(async move {
                for set in sets {
                    if let Err(e) = batch.read_set(&this, &set).await {
                        tracing::warn!(code = %e.code, "token set not read ahead");
                    }
                }
                tracing::debug!(
                    ms = started.elapsed().as_millis() as u64,
                    "batch refresh: token sets read"
                );
            })
        };
        let committer = tokio::spawn(self.clone().run_committer(rx, batch.unsettled.clone()));
        // Twice as many connections get ready (lock, re-read) as call the provider, so a
        // call slot that frees up is taken at once by a connection that is ready.
        let preparing = Arc::new(Semaphore::new(2 * self.inner.refresh_concurrency));
        let mut tasks = tokio::task::JoinSet::new();
        for (index, conn) in connections.iter().enumerate() {
            let this = self.clone();
            let batch = batch.clone();
            let preparing = preparing.clone();
            let (id, generation) = (conn.id.clone(), conn.secret_generation);
            let settled = batch.start();
            tasks.spawn(async move {
                let slot = BatchSlot {
                    batch: &batch,
                    preparing: preparing.acquire_owned().await.ok(),
                    settled,
                };
                let result = this
                    .refresh_connection(&id, Some(generation), Some(slot))
                    .await;
                (index, result)
            });
        }
        let mut results: Vec<Option<Result<Connection>>> =
            connections.iter().map(|_| None).collect();
        while let Some(done) = tasks.join_next().await {
            if let Ok((index, result)) = done {
                results[index] = Some(result);
            }
        }
        // Every sender is gone once the tasks ended: the committer drains and stops.
        let _ = read_ahead.await;
        drop(batch);
        // Then tidy every set: those left partly by this batch, and any an interrupted
        // run left behind.
        if committer.await.is_err() {
            tracing::warn!("the batch committer panicked");
        }
        tracing::debug!(
            ms = started.elapsed().as_millis() as u64,
            "batch refresh: all committed"
        );
        if let Err(e) = self.sweep_token_sets().await {
            tracing::warn!(code = %e.code, "token sets not swept");
        }
        tracing::debug!(
            ms = started.elapsed().as_millis() as u64,
            "batch refresh: swept"
        );
        connections
            .into_iter()
            .zip(results)
            .map(|(conn, result)| {
                let result =
                    result.unwrap_or_else(|| Err(Error::internal("A refresh task panicked.")));
                (conn, result)
            })
            .collect()
    }

    /// Writes batches until every refresh has ended. Sets left completely are deleted as
    /// it goes; rewriting the partly left ones waits for the sweep at the end, when later
    /// batches may have emptied them.
    async fn run_committer(
        self,
        mut rx: mpsc::UnboundedReceiver<PendingCommit>,
        unsettled: Arc<AtomicUsize>,
    ) {
        while let Some(first) = rx.recv().await {
            let deadline = Instant::now() + MAX_BATCH_WAIT;
            let mut pending = vec![first];
            while pending.len() < MAX_SET_SIZE {
                if unsettled.load(Ordering::Acquire) == 0 {
                    // Nobody else can submit: drain what is queued and write now.
                    while pending.len() < MAX_SET_SIZE {
                        match rx.try_recv() {
                            Ok(p) => pending.push(p),
                            Err(_) => break,
                        }
                    }
                    break;
                }
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                let step = (deadline - now).min(Duration::from_millis(5));
                match tokio::time::timeout(step, rx.recv()).await {
                    Ok(Some(p)) => pending.push(p),
                    Ok(None) => break,
                    Err(_) => {}
                }
            }
            let size = pending.len();
            let flush = Instant::now();
            let superseded = self.commit_batch(pending).await;
            let committed = flush.elapsed();
            self.release_superseded(superseded, SharedSet::Keep).await;
            tracing::debug!(
                size,
                commit_ms = committed.as_millis() as u64,
                release_ms = (flush.elapsed() - committed).as_millis() as u64,
                "batch committed"
            );
        }
    }

    /// Steps 1–3 of the module's commit order for one batch; answers every pending
    /// commit. Returns the connections as they were before they switched, with the set
    /// they switched to.
    async fn commit_batch(&self, pending: Vec<PendingCommit>) -> Vec<(Connection, Option<String>)> {
        let set_id = uuid::Uuid::new_v4().simple().to_string();
        let now = self.now();
        let members: Vec<(String, i64, Option<i64>)> = pending
            .iter()
            .map(|p| {
                let left_entry = p.old.token_set.is_none().then_some(p.old.secret_generation);
                (p.old.id.clone(), p.old.secret_generation + 1, left_entry)
            })
            .collect();
        let (id, recorded) = (set_id.clone(), members.clone());
        if let Err(e) = self
            .db(move |db| db.insert_token_set(&id, now, &recorded))
            .await
        {
            return fail_all(pending, &e);
        }
        let entries: Vec<(String, i64, TokenBundle)> = pending
            .iter()
            .map(|p| {
                (
                    p.old.id.clone(),
                    p.old.secret_generation + 1,
                    p.tokens.clone(),
                )
            })
            .collect();
        // Every member's answer is in the journal by now (journalled before submitted).
        crash_point("before_token_set_written");
        if let Err(e) = self.inner.vault.put_token_set(&set_id, &entries).await {
            // The members stay recorded: should a timed-out write land after all, the
            // next refresh of each member adopts its tokens from it.
            return fail_all(pending, &e);
        }
        drop(entries);
        crash_point("after_token_set_written");
        let switches: Vec<(Connection, i64)> = pending
            .iter()
            .map(|p| {
                let mut next = p.next.clone();
                next.secret_generation = p.old.secret_generation + 1;
                next.token_set = Some(set_id.clone());
                next.updated_at = now;
                (next, p.old.secret_generation)
            })
            .collect();
        let to_store = switches.clone();
        let history = HistoryEntry::new(now, "refresh", "ok", None);
        let switched = match self
            .db(move |db| db.switch_connections(&to_store, &history))
            .await
        {
            Ok(s) => s,
            Err(e) => return fail_all(pending, &e),
        };
        crash_point("after_token_set_switched");
        let mut superseded = Vec::new();
        for ((p, (next, _)), ok) in pending.into_iter().zip(switches).zip(switched) {
            if ok {
                self.emit(super::Event::HistoryAdded {
                    connection_id: Some(next.id.clone()),
                });
                superseded.push((p.old, Some(set_id.clone())));
                let _ = p.done.send(Ok(next));
            } else {
                let _ = p.done.send(Err(switched_elsewhere()));
            }
        }
        superseded
    }

    /// Step 4 for connections that switched away from `old` (to the token set given,
    /// if any): delete their own old entries, and sweep the token sets they left
    /// (`shared`: whether a set that other connections still use is rewritten without
    /// the ones that left).
    pub(super) async fn release_superseded(
        &self,
        old: Vec<(Connection, Option<String>)>,
        shared: SharedSet,
    ) {
        let mut sets = BTreeSet::new();
        let mut cleared: HashMap<String, Vec<String>> = HashMap::new();
        for (conn, switched_to) in old {
            match &conn.token_set {
                None => {
                    if self
                        .delete_own_entries(&conn.id, conn.secret_generation)
                        .await
                    {
                        if let Some(set) = switched_to {
                            cleared.entry(set).or_default().push(conn.id.clone());
                        }
                    }
                }
                Some(set) => {
                    sets.insert(set.clone());
                }
            }
        }
        for (set, members) in cleared {
            if let Err(e) = self
                .db(move |db| db.clear_left_entries(&set, &members))
                .await
            {
                tracing::warn!(code = %e.code, "could not record deleted token entries");
            }
        }
        for set in sets {
            self.sweep_token_set(&set, None, shared).await;
        }
    }

    /// Tidy one token set: delete it when no connection uses it (or is being switched to
    /// it), else ([`SharedSet::Rewrite`]) rewrite it without the members that left it — and without
    /// `remove`, a connection being removed. Returns `true` when the set is gone. Best
    /// effort: a failure is logged and the set swept again later.
    pub(super) async fn sweep_token_set(
        &self,
        set: &str,
        remove: Option<&str>,
        shared: SharedSet,
    ) -> bool {
        match self.try_sweep_token_set(set, remove, shared).await {
            Ok(gone) => gone,
            Err(e) => {
                tracing::warn!(set, code = %e.code, "token set not swept");
                false
            }
        }
    }

    /// Delete a connection's own entry of `generation`, and of `generation - 1` should
    /// an earlier run have died before removing it (generations start at 1). Returns
    /// whether both are gone.
    pub(super) async fn delete_own_entries(&self, connection_id: &str, generation: i64) -> bool {
        let mut all = true;
        for stale in [generation, generation - 1].into_iter().filter(|g| *g >= 1) {
            if let Err(e) = self.inner.vault.delete_tokens(connection_id, stale).await {
                tracing::warn!(connection = %connection_id, code = %e.code, "old token generation not deleted");
                all = false;
            }
        }
        all
    }

    pub(super) async fn try_sweep_token_set(
        &self,
        set: &str,
        remove: Option<&str>,
        shared: SharedSet,
    ) -> Result<bool> {
        let lock = format!("set-{set}");
        let guard = self.inner.locks.acquire(&lock).await?;
        let id = set.to_owned();
        let Some(record) = self.db(move |db| db.token_set(&id)).await? else {
            drop(guard);
            self.inner.locks.remove(&lock);
            return Ok(true);
        };
        // Own entries that members left for this set, should a run have died before
        // deleting them.
        let mut deleted = Vec::new();
        for (member, generation) in &record.left_entries {
            if self.delete_own_entries(member, *generation).await {
                deleted.push(member.clone());
            }
        }
        if !deleted.is_empty() {
            let id = set.to_owned();
            self.db(move |db| db.clear_left_entries(&id, &deleted))
                .await?;
        }
        let keep: Vec<String> = record
            .live
            .iter()
            .chain(&record.adoptable)
            .filter(|m| Some(m.as_str()) != remove)
            .cloned()
            .collect();
        if keep.is_empty() {
            self.inner.vault.delete_token_set(set).await?;
            let id = set.to_owned();
            self.db(move |db| db.delete_token_set(&id)).await?;
            // Whoever waits for this lock next finds no set and does nothing.
            drop(guard);
            self.inner.locks.remove(&lock);
            return Ok(true);
        }
        let departed: Vec<String> = record
            .members
            .iter()
            .map(|(m, _)| m)
            .filter(|m| !keep.contains(m))
            .cloned()
            .collect();
        if departed.is_empty() || shared == SharedSet::Keep {
            return Ok(false);
        }
        if let Some(contents) = self.inner.vault.token_set(set).await? {
            self.inner
                .vault
                .rewrite_token_set(set, &contents, &keep)
                .await?;
        }
        let id = set.to_owned();
        self.db(move |db| db.remove_token_set_members(&id, &departed))
            .await?;
        Ok(false)
    }

    /// Sweep every token set (after a crash, unused sets may be left behind). Returns how
    /// many sets were removed.
    pub async fn sweep_token_sets(&self) -> Result<usize> {
        let ids = self.db(|db| db.token_set_ids()).await?;
        let mut removed = 0;
        for id in ids {
            if self.sweep_token_set(&id, None, SharedSet::Rewrite).await {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// What tidying a token set does to one that other connections still use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SharedSet {
    /// Rewrite it without the connections that left it.
    Rewrite,
    /// Leave it as it is (a later sweep rewrites it).
    Keep,
}

fn switched_elsewhere() -> Error {
    Error::new(
        ErrorCode::Busy,
        "Another Authdeck process updated this connection at the same time: try again.",
    )
}

fn fail_all(pending: Vec<PendingCommit>, error: &Error) -> Vec<(Connection, Option<String>)> {
    for p in pending {
        let _ = p.done.send(Err(error.clone()));
    }
    Vec::new()
}
