//! Provider answers not yet committed: made durable in the journal first (see
//! `crate::journal`), kept in memory when a commit fails, and adopted — from memory,
//! or from the journal of a process that died — before a connection's next refresh
//! can spend the refresh token those answers replaced.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Manager, OrphanProbe};
use crate::crash::crash_point;
use crate::error::{Error, ErrorCode, Result};
use crate::journal::{Answer, Entry, Journal, JournalKey};
use crate::model::Connection;
use crate::store::backend::Lease;
use crate::store::vault::TokenBundle;

/// How long a proof that the keyring is unlocked counts.
const PROOF_LIFETIME: std::time::Duration = std::time::Duration::from_secs(1);

/// An answer whose commit failed, kept until it can be committed.
pub(super) struct Unsaved {
    pub answer: Answer,
    pub entry: Option<Entry>,
    /// The connection's lock, held until the answer is saved: no other refresher (in
    /// any process) may spend the refresh token it replaced. (A team store's lock may be
    /// lost meanwhile, e.g. with the link to the database: its in-flight mark, kept
    /// through [`Lease::keep_mark`], still refuses other refreshers, and the lock is taken
    /// again to save.)
    pub guard: Lease,
}

/// The answer for `next`, refreshed from `old`: at the generation it is committed as.
pub(super) fn staged(old: &Connection, next: &Connection, tokens: TokenBundle) -> Answer {
    let mut connection = next.clone();
    connection.secret_generation = old.secret_generation + 1;
    connection.token_set = None;
    connection.pending_generation = None;
    Answer { connection, tokens }
}

/// The error of a commit that failed after the provider answered with new tokens (kept
/// with [`Manager::keep_unsaved`]): the store's message says what the store did (often
/// "nothing was changed"), so it is told that the answer is not lost, and where it is.
/// A locked keyring's error stays as it is: the fronts explain that case themselves
/// (they wait for the keyring, `Manager::save_unsaved`).
pub(super) fn kept(e: Error) -> Error {
    if e.code == ErrorCode::KeyringUnavailable {
        return e;
    }
    Error {
        message: format!(
            "{} The provider had already sent new tokens: they are kept on this machine (encrypted, in its journal) and saved by its next refresh of this connection, so refresh it here once the store is back.",
            e.message
        ),
        ..e
    }
}

/// A connection whose journalled answer is not adopted yet must wait for it.
pub(super) fn held_back() -> Error {
    Error::new(
        ErrorCode::KeyringUnavailable,
        "Refreshed tokens of this connection from an interrupted run are not saved yet: unlock the keyring and try again.",
    )
}

impl Manager {
    /// The journal and its key, ready for an append: call before the provider call.
    /// `None` without a journal (unit tests). Fails when the keyring cannot be read:
    /// better no provider call than an answer that cannot be kept.
    pub(super) async fn journal_ready(&self) -> Result<Option<(Arc<Journal>, JournalKey)>> {
        let Some(journal) = self.inner.journal.clone() else {
            return Ok(None);
        };
        let key = self.journal_key().await?;
        self.prove_keyring_unlocked().await?;
        if let Some(err) = {
            let j = journal.clone();
            tokio::task::spawn_blocking(move || j.prepare())
                .await
                .map_err(|_| Error::internal("Opening the journal panicked."))?
                .err()
        } {
            // Not fatal: the answer is still committed as before, only less early.
            tracing::warn!(code = %err.code, "journal not available");
        }
        Ok(Some((journal, key)))
    }

    /// The journal key: read from the keyring once per process, created on first use
    /// (under a cross-process lock, so two first refreshes agree on one key).
    async fn journal_key(&self) -> Result<JournalKey> {
        self.inner
            .journal_key
            .get_or_try_init(|| async {
                if let Some(key) = self.read_journal_key().await? {
                    return Ok(key);
                }
                let _guard = self.inner.local.locks.acquire("journal-key").await?;
                if let Some(key) = self.read_journal_key().await? {
                    return Ok(key);
                }
                let (key, stored) = JournalKey::generate()?;
                self.inner.local.vault.set_journal_key(&stored).await?;
                Ok(key)
            })
            .await
            .cloned()
    }

    /// A locked collection refuses to read an existing item (gnome-keyring: it asks for
    /// an unlock prompt, which fails without a display), so reading the journal key is
    /// the cheap proof (one D-Bus read, no write) that the keyring will take the answer.
    /// Done at most once a second, so a batch pays it once.
    async fn prove_keyring_unlocked(&self) -> Result<()> {
        let fresh = |at: &Option<Instant>| at.is_some_and(|t| t.elapsed() < PROOF_LIFETIME);
        if fresh(&self.keyring_proof()) {
            return Ok(());
        }
        let checked = Instant::now();
        if self.inner.local.vault.journal_key().await?.is_none() {
            return Err(Error::new(
                ErrorCode::KeyringUnavailable,
                "The journal key vanished from the keyring.",
            ));
        }
        *self
            .inner
            .keyring_proof
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(checked);
        Ok(())
    }

    /// Whether the keyring gives and takes secrets now, for a front that would rather
    /// wait for it than fail refreshes (the always-on agent): creates the journal key on
    /// first use, then proves the keyring unlocked as before every provider call (one
    /// read, at most once a second). `keyring_unavailable` while it is locked.
    pub async fn keyring_ready(&self) -> Result<()> {
        self.journal_key().await?;
        self.prove_keyring_unlocked().await
    }

    fn keyring_proof(&self) -> Option<Instant> {
        *self
            .inner
            .keyring_proof
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    async fn read_journal_key(&self) -> Result<Option<JournalKey>> {
        let read = Instant::now();
        match self.inner.local.vault.journal_key().await? {
            None => Ok(None),
            Some(secret) if JournalKey::from_secret(&secret).is_some() => {
                // A read of an existing item: the keyring is unlocked right now.
                *self
                    .inner
                    .keyring_proof
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = Some(read);
                Ok(JournalKey::from_secret(&secret))
            }
            Some(secret) => JournalKey::from_secret(&secret).map(Some).ok_or_else(|| {
                Error::new(
                    ErrorCode::KeyringUnavailable,
                    "The journal key in the keyring is damaged.",
                )
            }),
        }
    }

    /// Append the answer for `next` (refreshed from `old`) to the journal. Best effort:
    /// on failure the answer is committed all the same, only without the early copy.
    pub(super) async fn journal_answer(
        &self,
        journal: Option<(Arc<Journal>, JournalKey)>,
        old: &Connection,
        next: &Connection,
        tokens: &TokenBundle,
        answered: Instant,
        in_batch: bool,
    ) -> Option<Entry> {
        let (journal, key) = journal?;
        let answer = staged(old, next, tokens.clone());
        let appended = tokio::task::spawn_blocking(move || journal.append(&key, &answer, answered))
            .await
            .map_err(|_| Error::internal("Writing the journal panicked."))
            .and_then(|r| r);
        match appended {
            Ok(entry) => {
                // A batch has other calls in flight, whose answers a crash here would
                // lose whatever we do: it crashes at `before_token_set_written` instead.
                if !in_batch {
                    crash_point("after_answer_journalled");
                }
                Some(entry)
            }
            Err(e) => {
                tracing::warn!(connection = %old.id, code = %e.code, "answer not journalled");
                None
            }
        }
    }

    /// Keep an answer whose commit failed, for the next refresh of its connection.
    pub(super) fn keep_unsaved(&self, answer: Answer, entry: Option<Entry>, guard: Lease) {
        let id = answer.connection.id.clone();
        tracing::warn!(connection = %id, "answer kept until it can be committed");
        // Its in-flight mark stays until the answer is saved (the commit deletes it).
        guard.keep_mark();
        self.unsaved().insert(
            id,
            Unsaved {
                answer,
                entry,
                guard,
            },
        );
    }

    fn unsaved(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Unsaved>> {
        self.inner.unsaved.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The labels of the connections whose refreshed tokens wait for the keyring.
    pub fn unsaved_labels(&self) -> Vec<String> {
        let mut labels: Vec<String> = self
            .unsaved()
            .values()
            .map(|u| u.answer.connection.label.clone())
            .collect();
        labels.sort();
        labels
    }

    /// Connections whose newest answer is kept in memory, uncommitted.
    pub fn unsaved_connections(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.unsaved().keys().cloned().collect();
        ids.sort();
        ids
    }

    /// Commit the answer kept in memory for connection `id`, if any, under the lock it
    /// kept; fails (keeping it) while the keyring still refuses it. Call before taking
    /// the connection's lock.
    pub(super) async fn settle_unsaved(&self, id: &str) -> Result<()> {
        let Some(mut kept) = self.unsaved().remove(id) else {
            return Ok(());
        };
        // The kept lock lost (a team store's session broke with its link): another
        // holder may be at work. Take it again, so the answer is saved under the lock.
        if kept.guard.ensure_held(Duration::ZERO).await.is_err() {
            match self.inner.store.lock(id).await {
                Ok(lease) => kept.guard = lease,
                Err(e) if e.code == ErrorCode::NotFound => return Ok(()),
                Err(e) => {
                    self.unsaved().insert(id.to_owned(), kept);
                    return Err(e);
                }
            }
        }
        let conn = match self.connection(id).await {
            Ok(conn) => conn,
            Err(e) if e.code == ErrorCode::NotFound => return Ok(()),
            Err(e) => {
                self.unsaved().insert(id.to_owned(), kept);
                return Err(e);
            }
        };
        match self.adopt(conn, &kept.answer).await {
            Ok(_) => {
                if let Some(entry) = kept.entry {
                    entry.committed();
                }
                Ok(())
            }
            Err(e) => {
                self.unsaved().insert(id.to_owned(), kept);
                Err(e)
            }
        }
    }

    /// Commit `answer` for `conn` (read under its lock) if it is the generation after
    /// the stored one; an older answer is obsolete and changes nothing.
    async fn adopt(&self, conn: Connection, answer: &Answer) -> Result<Connection> {
        let generation = answer.connection.secret_generation;
        if conn.secret_generation + 1 != generation {
            if conn.secret_generation + 1 < generation {
                tracing::warn!(connection = %conn.id, "a journalled answer skips a generation: not adopted");
            }
            return Ok(conn);
        }
        let mut next = answer.connection.clone();
        next.secret_generation = conn.secret_generation;
        // The answer was refreshed from an active connection. If it is marked otherwise
        // now, another refresher (another machine, once this one's lock was lost) found
        // the grant dead or a logout pending since: with the refresh token this answer
        // replaced spent twice, the provider may have revoked the whole grant. The mark
        // stays (the window keeps offering Reconnect), never hidden by the adoption.
        let kept_mark = next.state != conn.state;
        if kept_mark {
            next.state = conn.state;
            next.last_error = conn.last_error.clone();
        }
        let adopted = self
            .commit_bundle(&conn, next, answer.tokens.clone())
            .await?;
        tracing::warn!(connection = %conn.id, "adopted an answer that was not committed");
        let detail = match kept_mark {
            false => "saved refreshed tokens whose commit was interrupted",
            true => "saved refreshed tokens whose commit was interrupted; another refresher marked the connection meanwhile, and the mark stays",
        };
        self.announce_recovered(&adopted, detail).await;
        Ok(adopted)
    }

    /// Adopt the answers in the journals of processes that died. Returns the
    /// connections whose answers could not be adopted (now): they must not be refreshed
    /// until they are, or the provider would see a spent refresh token.
    pub(super) async fn adopt_journals(&self) -> HashSet<String> {
        self.adopt_journals_of(None).await
    }

    /// `adopt_journals` for the connections in `only`: the answers for others
    /// are left in the journal (a file is removed only once all of its answers were
    /// among them and are adopted or obsolete). For `team import`, which must carry a
    /// connection's newest tokens, on a journal a team-mode manager shares.
    pub async fn adopt_journalled(&self, only: &HashSet<String>) -> HashSet<String> {
        let mut unresolved = self.adopt_journals_of(Some(only)).await;
        unresolved.retain(|id| only.contains(id));
        unresolved
    }

    async fn adopt_journals_of(&self, only: Option<&HashSet<String>>) -> HashSet<String> {
        let mut unresolved = HashSet::new();
        let Some(journal) = self.inner.journal.clone() else {
            return unresolved;
        };
        let scan = |key: Option<JournalKey>| {
            let journal = journal.clone();
            async move {
                tokio::task::spawn_blocking(move || journal.orphans(key.as_ref()))
                    .await
                    .map_err(|_| Error::internal("Reading the journal panicked."))?
            }
        };
        // Most runs find nothing: look first, read the key only when there is something.
        let orphans = match scan(self.inner.journal_key.get().cloned()).await {
            Ok(o) if o.is_empty() => return unresolved,
            Ok(o) if self.inner.journal_key.get().is_some() => o,
            Ok(o) => {
                drop(o);
                match self.journal_key().await {
                    Ok(key) => match scan(Some(key)).await {
                        Ok(o) => o,
                        Err(e) => {
                            tracing::warn!(code = %e.code, "journal not read");
                            return unresolved;
                        }
                    },
                    Err(e) => {
                        // Without the key nothing can be adopted: hold every connection
                        // with an entry back until the keyring can be read.
                        tracing::warn!(code = %e.code, "journal key not readable");
                        if let Ok(o) = scan(None).await {
                            for orphan in &o {
                                for (id, _, _) in &orphan.answers {
                                    unresolved.insert(id.clone());
                                }
                            }
                        }
                        return unresolved;
                    }
                }
            }
            Err(e) => {
                tracing::warn!(code = %e.code, "journal not read");
                return unresolved;
            }
        };
        for mut orphan in orphans {
            let mut done = true;
            orphan.answers.sort_by_key(|(_, generation, _)| *generation);
            for (id, _, answer) in std::mem::take(&mut orphan.answers) {
                if only.is_some_and(|only| !only.contains(&id)) {
                    done = false;
                    continue;
                }
                let answer = match answer {
                    Ok(a) => a,
                    Err(e) => {
                        // Sealed with another key: nothing can open it, ever.
                        tracing::warn!(connection = %id, code = %e.code, "journal entry unreadable: dropped");
                        continue;
                    }
                };
                if let Err(e) = self.adopt_orphan(&id, &answer).await {
                    tracing::warn!(connection = %id, code = %e.code, "journalled answer not adopted yet");
                    unresolved.insert(id);
                    done = false;
                }
            }
            if done {
                tokio::task::spawn_blocking(move || orphan.remove())
                    .await
                    .ok();
            }
        }
        unresolved
    }

    async fn adopt_orphan(&self, id: &str, answer: &Answer) -> Result<()> {
        let _lease = self.inner.store.lock(id).await?;
        let conn = match self
            .finish_interrupted_switch(id, OrphanProbe::Always)
            .await
        {
            Ok(conn) => conn,
            Err(e) if e.code == ErrorCode::NotFound => return Ok(()), // logged out since
            Err(e) => return Err(e),
        };
        self.adopt(conn, answer).await.map(|_| ())
    }
}

impl Manager {
    /// Commit the answers kept in memory (a keyring that was locked when they came),
    /// retrying every 2 s for at most `wait`. `waiting` is told once, with how many
    /// connections' tokens are at risk, when the first attempt did not save them all.
    /// Returns the connections still unsaved (their answers stay in the journal, for
    /// the next refresh to adopt once the keyring is unlocked).
    pub async fn save_unsaved(
        &self,
        wait: std::time::Duration,
        waiting: impl FnOnce(usize),
    ) -> Vec<Connection> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut waiting = Some(waiting);
        loop {
            for id in self.unsaved_connections() {
                if let Err(e) = self.settle_unsaved(&id).await {
                    tracing::debug!(connection = %id, code = %e.code, "kept answer not saved yet");
                }
            }
            let left = self.unsaved_connections();
            let now = tokio::time::Instant::now();
            if left.is_empty() || now >= deadline || self.inner.shutdown.is_stopping() {
                let mut at_risk = Vec::new();
                for id in left {
                    if let Ok(conn) = self.connection(&id).await {
                        at_risk.push(conn);
                    }
                }
                return at_risk;
            }
            if let Some(tell) = waiting.take() {
                tell(left.len());
            }
            let pause = (deadline - now).min(std::time::Duration::from_secs(2));
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = self.inner.shutdown.stopping() => {}
            }
        }
    }
}
