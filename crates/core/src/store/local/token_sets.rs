//! Batch commits: many connections' new tokens in *token sets*, one keyring entry per
//! batch ([`Backend::commit_many`]).
//!
//! Why: gnome-keyring rewrites its whole keyring file on every create and delete
//! (measured: ≈ 50 ms per create and ≈ 35 ms per delete with 1,000 items), and one
//! daemon serves every call in turn. A refresh of 1,000 connections with one entry per
//! connection spends a minute in the keyring whatever the concurrency; with one entry
//! per batch it spends well under a second.
//!
//! The commit order of a single commit (`commit.rs`) carries over, per batch:
//! 1. record the set and its members (connection, new generation) in SQLite;
//! 2. write the set to the keyring in one call — the connections still point at their
//!    old tokens;
//! 3. one SQLite transaction switches every member whose generation is still the one it
//!    was refreshed from — the commit point;
//! 4. release what the members used before: delete their own old entries, and delete
//!    the old sets nobody uses any more (rewriting the ones still partly used waits for
//!    [`Backend::maintain`], when later batches may have emptied them).
//!
//! A crash between 2 and 3 leaves members one generation behind a set that holds their
//! newest tokens: [`LocalBackend::finish_interrupted_switch`] adopts them. A crash after
//! 3 leaves old entries behind, which [`LocalBackend::sweep_token_sets`] removes.
//!
//! Step 4 of one batch runs while its callers get their answers; the next batch (or
//! `maintain`) waits for it, so the keyring sees one batch's calls at a time.

use std::collections::{BTreeSet, HashMap};

use tokio::sync::OnceCell;

use super::*;
use crate::crash::crash_point;
use crate::store::backend::{CommitOutcome, TokenPrefetch};
use crate::store::vault::TokenSetContents;

/// What tidying a token set does to one that other connections still use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SharedSet {
    /// Rewrite it without the connections that left it.
    Rewrite,
    /// Leave it as it is (a later sweep rewrites it).
    Keep,
}

impl LocalBackend {
    /// Steps 1–4 of the module's commit order for one batch.
    pub(super) async fn commit_token_set(
        &self,
        items: Vec<TokenCommit>,
    ) -> Vec<Result<CommitOutcome>> {
        self.released().await;
        let set_id = uuid::Uuid::new_v4().simple().to_string();
        let now = self.now();
        let fail_all = |e: Error| items.iter().map(|_| Err(e.clone())).collect::<Vec<_>>();
        let members: Vec<(String, i64, Option<i64>)> = items
            .iter()
            .map(|p| {
                let left_entry = p.old.token_set.is_none().then_some(p.old.secret_generation);
                (p.old.id.clone(), p.old.secret_generation + 1, left_entry)
            })
            .collect();
        let id = set_id.clone();
        if let Err(e) = self
            .db(move |db| db.insert_token_set(&id, now, &members))
            .await
        {
            return fail_all(e);
        }
        let entries: Vec<(String, i64, TokenBundle)> = items
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
        if let Err(e) = self.vault.put_token_set(&set_id, &entries).await {
            // The members stay recorded: should a timed-out write land after all, the
            // next refresh of each member adopts its tokens from it.
            return fail_all(e);
        }
        drop(entries);
        crash_point("after_token_set_written");
        let switches: Vec<(Connection, i64)> = items
            .iter()
            .map(|p| {
                let mut next = p.next.clone();
                next.secret_generation = p.old.secret_generation + 1;
                next.token_set = Some(set_id.clone());
                (next, p.old.secret_generation)
            })
            .collect();
        let switched = match self.switch_members(&items, &switches).await {
            Ok(s) => s,
            Err(e) => return fail_all(e),
        };
        crash_point("after_token_set_switched");
        let mut superseded = Vec::new();
        let mut outcomes = Vec::with_capacity(items.len());
        for ((item, (next, _)), ok) in items.into_iter().zip(switches).zip(switched) {
            if ok {
                superseded.push((item.old, Some(set_id.clone())));
                outcomes.push(Ok(CommitOutcome::Committed(next)));
            } else {
                outcomes.push(Ok(CommitOutcome::Superseded));
            }
        }
        let this = self.clone();
        let release = tokio::spawn(async move {
            let started = std::time::Instant::now();
            this.release_superseded(superseded, SharedSet::Keep).await;
            tracing::debug!(
                release_ms = started.elapsed().as_millis() as u64,
                "batch released"
            );
        });
        *self.release.lock().unwrap_or_else(|p| p.into_inner()) = Some(release);
        outcomes
    }

    /// Step 3: the members' switches in one transaction per history entry they record
    /// (a batch refresh records one for all), those recording none one by one.
    async fn switch_members(
        &self,
        items: &[TokenCommit],
        switches: &[(Connection, i64)],
    ) -> Result<Vec<bool>> {
        let mut switched = vec![false; items.len()];
        let mut groups: Vec<(Option<HistoryEntry>, Vec<usize>)> = Vec::new();
        for (index, item) in items.iter().enumerate() {
            match groups.iter_mut().find(|(h, _)| *h == item.history) {
                Some((_, members)) => members.push(index),
                None => groups.push((item.history.clone(), vec![index])),
            }
        }
        for (history, members) in groups {
            let group: Vec<(Connection, i64)> =
                members.iter().map(|i| switches[*i].clone()).collect();
            let results = self
                .db(move |db| match history {
                    Some(history) => db.switch_connections(&group, &history),
                    None => group
                        .iter()
                        .map(|(conn, expected)| db.update_connection(conn, *expected))
                        .collect(),
                })
                .await?;
            for (index, ok) in members.into_iter().zip(results) {
                switched[index] = ok;
            }
        }
        Ok(switched)
    }

    /// Wait for the previous batch's step 4.
    async fn released(&self) {
        let pending = self
            .release
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(release) = pending {
            if release.await.is_err() {
                tracing::warn!("releasing a batch's old tokens panicked");
            }
        }
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
    /// it), else ([`SharedSet::Rewrite`]) rewrite it without the members that left it —
    /// and without `remove`, a connection being removed. Returns `true` when the set is
    /// gone. Best effort: a failure is logged and the set swept again later.
    async fn sweep_token_set(&self, set: &str, remove: Option<&str>, shared: SharedSet) -> bool {
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
    async fn delete_own_entries(&self, connection_id: &str, generation: i64) -> bool {
        let mut all = true;
        for stale in [generation, generation - 1].into_iter().filter(|g| *g >= 1) {
            if let Err(e) = self.vault.delete_tokens(connection_id, stale).await {
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
        let guard = self.locks.acquire(&lock).await?;
        let id = set.to_owned();
        let Some(record) = self.db(move |db| db.token_set(&id)).await? else {
            drop(guard);
            self.locks.remove(&lock);
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
            self.vault.delete_token_set(set).await?;
            let id = set.to_owned();
            self.db(move |db| db.delete_token_set(&id)).await?;
            // Whoever waits for this lock next finds no set and does nothing.
            drop(guard);
            self.locks.remove(&lock);
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
        if let Some(contents) = self.vault.token_set(set).await? {
            self.vault.rewrite_token_set(set, &contents, &keep).await?;
        }
        let id = set.to_owned();
        self.db(move |db| db.remove_token_set_members(&id, &departed))
            .await?;
        Ok(false)
    }

    /// Sweep every token set (after a crash, unused sets may be left behind). Returns how
    /// many sets were removed.
    pub(super) async fn sweep_token_sets(&self) -> Result<usize> {
        self.released().await;
        let ids = self.db(|db| db.token_set_ids()).await?;
        let mut removed = 0;
        for id in ids {
            if self.sweep_token_set(&id, None, SharedSet::Rewrite).await {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Read the token sets `connections` use ahead, in the order they are needed, while
    /// the batch's first provider calls go out: once the batch's commits write, reads
    /// would queue behind their writes.
    pub(super) fn prefetch_token_sets(&self, connections: &[Connection]) -> Arc<dyn TokenPrefetch> {
        let mut sets: Vec<String> = Vec::new();
        for set in connections.iter().filter_map(|c| c.token_set.as_ref()) {
            if !sets.contains(set) {
                sets.push(set.clone());
            }
        }
        let reader = Arc::new(SetReader {
            vault: self.vault.clone(),
            sets: Default::default(),
        });
        let ahead = reader.clone();
        let read_ahead = tokio::spawn(async move {
            let started = std::time::Instant::now();
            for set in sets {
                if let Err(e) = ahead.read(&set).await {
                    tracing::warn!(code = %e.code, "token set not read ahead");
                }
            }
            tracing::debug!(
                ms = started.elapsed().as_millis() as u64,
                "batch refresh: token sets read"
            );
        });
        Arc::new(Prefetch { reader, read_ahead })
    }
}

/// A token set's contents once read (`None`: no such entry).
type SetCell = OnceCell<Option<Arc<TokenSetContents>>>;

/// Token sets read for one batch refresh, by id: each is read once.
struct SetReader {
    vault: Vault,
    sets: std::sync::Mutex<HashMap<String, Arc<SetCell>>>,
}

impl SetReader {
    async fn read(&self, set: &str) -> Result<Option<Arc<TokenSetContents>>> {
        let cell = self
            .sets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(set.to_owned())
            .or_default()
            .clone();
        let contents = cell
            .get_or_try_init(|| async {
                Ok::<_, Error>(self.vault.token_set(set).await?.map(Arc::new))
            })
            .await?;
        Ok(contents.clone())
    }
}

struct Prefetch {
    reader: Arc<SetReader>,
    read_ahead: tokio::task::JoinHandle<()>,
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        self.read_ahead.abort();
    }
}

#[async_trait]
impl TokenPrefetch for Prefetch {
    /// The current tokens of `conn` if it is in a token set, reading each set once. `None`
    /// when the connection is not in a set or the set has no tokens for its current
    /// generation (the caller reads them the usual way).
    async fn tokens(&self, conn: &Connection) -> Result<Option<TokenBundle>> {
        let Some(set) = &conn.token_set else {
            return Ok(None);
        };
        let contents = self.reader.read(set).await?;
        Ok(contents.and_then(|c| {
            c.get(&conn.id)
                .filter(|(generation, _)| *generation == conn.secret_generation)
                .map(|(_, tokens)| tokens.clone())
        }))
    }
}
