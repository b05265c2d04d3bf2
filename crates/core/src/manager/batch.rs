//! Batch refresh: many connections refreshed at once, their new tokens collected into
//! batches the store commits together ([`crate::store::Backend::commit_many`]; the local store writes
//! one keyring entry per batch, see `store::local::token_sets`).
//!
//! Each connection's lock is held from before its provider call until its batch is
//! committed, so no other refresher can spend the refresh token in the meantime.
//! Provider calls are bounded by `refresh_concurrency`, and twice as many connections get
//! ready (lock, re-read) meanwhile; both permits are released as soon as the provider
//! answered, so provider calls go on while earlier batches are being written. A batch is
//! written once it holds [`MAX_BATCH_SIZE`] commits, [`MAX_BATCH_WAIT`] after its first,
//! or as soon as no refresh still running could add to it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::commit::superseded;
use super::Manager;
use crate::error::{Error, Result};
use crate::model::{Client, Connection, HistoryEntry};
use crate::store::backend::{CommitOutcome, TokenCommit, TokenPrefetch};
use crate::store::vault::TokenBundle;

/// At most this many connections per batch (the local store's token set: small enough
/// that reading one connection's token out of its set stays cheap).
pub(super) const MAX_BATCH_SIZE: usize = 48;
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

/// The shared state of one batch refresh, handed to each connection's refresh.
pub(super) struct Batch {
    commits: mpsc::UnboundedSender<PendingCommit>,
    /// Refreshes that may still submit a commit (started, neither submitted nor ended):
    /// when none is left, a partial batch is written at once.
    unsettled: Arc<AtomicUsize>,
    /// The connections' current tokens, fetched ahead by the store (if it does).
    prefetch: Option<Arc<dyn TokenPrefetch>>,
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

    /// The current tokens of `conn` if the store fetched them ahead; `None`: read them
    /// the usual way.
    pub(super) async fn cached_tokens(&self, conn: &Connection) -> Result<Option<TokenBundle>> {
        match &self.prefetch {
            Some(prefetch) => prefetch.tokens(conn).await,
            None => Ok(None),
        }
    }
}

impl Manager {
    /// Refresh `connections` as one batch: `refresh_concurrency` provider calls at a
    /// time, new tokens committed in batches. Returns one result per connection, in the
    /// order given.
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
            // Read ahead, in the order needed, while the first provider calls go out.
            prefetch: self.inner.store.prefetch(&connections),
            clients: std::sync::Mutex::new(HashMap::new()),
            calls: Arc::new(Semaphore::new(self.inner.refresh_concurrency)),
            held_back,
        });
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
        drop(batch);
        if committer.await.is_err() {
            tracing::warn!("the batch committer panicked");
        }
        tracing::debug!(
            ms = started.elapsed().as_millis() as u64,
            "batch refresh: all committed"
        );
        // Then tidy what the batches left (local: token sets left partly by this batch,
        // and any an interrupted run left behind).
        if let Err(e) = self.inner.store.maintain().await {
            tracing::warn!(code = %e.code, "store not tidied");
        }
        tracing::debug!(
            ms = started.elapsed().as_millis() as u64,
            "batch refresh: tidied"
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

    /// Writes batches until every refresh has ended.
    async fn run_committer(
        self,
        mut rx: mpsc::UnboundedReceiver<PendingCommit>,
        unsettled: Arc<AtomicUsize>,
    ) {
        while let Some(first) = rx.recv().await {
            let deadline = Instant::now() + MAX_BATCH_WAIT;
            let mut pending = vec![first];
            while pending.len() < MAX_BATCH_SIZE {
                if unsettled.load(Ordering::Acquire) == 0 {
                    // Nobody else can submit: drain what is queued and write now.
                    while pending.len() < MAX_BATCH_SIZE {
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
            self.commit_batch(pending).await;
            tracing::debug!(
                size,
                commit_ms = flush.elapsed().as_millis() as u64,
                "batch committed"
            );
        }
    }

    /// One batch through the store, every pending commit answered; the history entry of
    /// each refresh is written with its commit.
    async fn commit_batch(&self, pending: Vec<PendingCommit>) {
        let now = self.now();
        let history = HistoryEntry::new(now, "refresh", "ok", None);
        let (items, done): (Vec<TokenCommit>, Vec<_>) = pending
            .into_iter()
            .map(|p| {
                let mut next = p.next;
                next.updated_at = now;
                let item = TokenCommit {
                    old: p.old,
                    next,
                    tokens: p.tokens,
                    history: Some(history.clone()),
                };
                (item, p.done)
            })
            .unzip();
        let outcomes = self.inner.store.commit_many(items).await;
        let mut outcomes = outcomes.into_iter();
        for done in done {
            let result = match outcomes.next() {
                Some(Ok(CommitOutcome::Committed(conn))) => {
                    self.emit(super::Event::HistoryAdded {
                        connection_id: Some(conn.id.clone()),
                    });
                    Ok(conn)
                }
                Some(Ok(CommitOutcome::Superseded)) => Err(superseded()),
                Some(Err(e)) => Err(e),
                None => Err(Error::internal("The store lost a commit of the batch.")),
            };
            let _ = done.send(result);
        }
    }
}
