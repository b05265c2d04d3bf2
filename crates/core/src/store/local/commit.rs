//! A connection's tokens, one at a time: the commit of new ones, the recovery of a
//! commit a crash interrupted, and removal. Token bundles
//! go to the keyring first, then one SQLite statement switches the connection to them
//! (batches: see `token_sets`).

use super::token_sets::SharedSet;
use super::*;
use crate::crash::crash_point;
use crate::store::backend::{CommitOutcome, OrphanProbe, Settled};

impl LocalBackend {
    /// The commit sequence for new tokens of an existing connection:
    /// 1. check the connection is still at g and mark g+1 as being written in SQLite,
    ///    then write the tokens to the keyring under g+1 (the old entry is untouched);
    /// 2. one SQLite update switches the connection to g+1 — the commit point, and the
    ///    compare-and-swap (only if it is still at g);
    /// 3. delete generation g.
    ///
    /// A crash before 2 leaves the connection on g (an orphan g+1 entry, which
    /// [`Self::finish_interrupted_switch`] adopts); after 2, on g+1 (an orphan g entry,
    /// deleted with the next commit). Either way the stored generation holds a complete
    /// token set.
    pub(super) async fn commit_own_entry(
        &self,
        old: &Connection,
        next: &Connection,
        tokens: &TokenBundle,
    ) -> Result<CommitOutcome> {
        let old_gen = old.secret_generation;
        let new_gen = old_gen + 1;
        let mut conn = next.clone();
        conn.secret_generation = new_gen;
        conn.token_set = None;
        let id = conn.id.clone();
        let marked = self
            .db(move |db| {
                let stored = db.secret_generation(&id)?;
                if stored == Some(old_gen) {
                    db.set_pending_generation(&id, Some(new_gen))?;
                }
                Ok(stored)
            })
            .await;
        match marked {
            Ok(Some(stored)) if stored == old_gen => {}
            // Moved on (or gone) already: writing g+1 would overwrite the tokens of the
            // generation it moved to.
            Ok(_) => return Ok(CommitOutcome::Superseded),
            Err(e) => {
                // The tokens must reach the keyring all the same (the provider may have
                // rotated already); a refresh of this one connection looks for an orphan
                // generation even without the mark.
                tracing::warn!(connection = %conn.id, code = %e.code, "token write not marked");
            }
        }
        // Should this write fail or time out, the mark stays: a write that lands late is
        // found and adopted by the next refresh.
        self.vault.put_tokens(&conn.id, new_gen, tokens).await?;
        crash_point("after_new_tokens_written");
        let stored = conn.clone();
        let switched = self
            .db(move |db| db.update_connection(&stored, old_gen))
            .await?;
        if !switched {
            // Only possible if a writer bypassed the connection lock. Leave the keyring
            // alone: deleting generation g+1 could delete the tokens SQLite points at.
            return Ok(CommitOutcome::Superseded);
        }
        crash_point("after_generation_switched");
        self.release_superseded(vec![(old.clone(), None)], SharedSet::Rewrite)
            .await;
        crash_point("after_old_tokens_deleted");
        Ok(CommitOutcome::Committed(conn))
    }

    /// A process killed after step 1 of [`Self::commit_own_entry`] and before step 2
    /// leaves generation g+1 in the keyring while SQLite still says g; one killed in the
    /// middle of a batch leaves it in a token set (see `token_sets`). Those are the
    /// provider's newest tokens (the refresh token of g may already be spent, and reusing
    /// it could revoke the whole grant), so they are adopted before anything uses g.
    /// Called with the connection's lock held. `probe`: whether to look for an orphan own
    /// entry even when no write is marked.
    pub(super) async fn finish_interrupted_switch(
        &self,
        id: &str,
        probe: OrphanProbe,
    ) -> Result<Settled> {
        let key = id.to_owned();
        let (conn, ahead) = self.db(move |db| db.connection_for_update(&key)).await?;
        let as_stored = |connection: Connection| Settled {
            connection,
            completed: false,
        };
        let next = conn.secret_generation + 1;
        // A batch looks in the keyring only for a generation marked as being written (most
        // find no mark and cost no keyring call here); `probe` always looks.
        let own = match (conn.pending_generation, probe) {
            (None, OrphanProbe::MarkedOnly) => None,
            (pending, _) => {
                let found = match pending.is_none_or(|p| p == next) {
                    true => self.vault.tokens(&conn.id, next).await?,
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
                    return Ok(as_stored(conn));
                };
                let found = self
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
                        return Ok(as_stored(conn));
                    }
                }
            }
        };
        let now = self.now();
        let mut adopted = conn.clone();
        adopted.secret_generation = next;
        adopted.token_set = token_set.clone();
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
            let id = conn.id.clone();
            return Ok(as_stored(self.db(move |db| db.connection(&id)).await?));
        }
        self.release_superseded(vec![(conn.clone(), token_set)], SharedSet::Rewrite)
            .await;
        tracing::warn!(connection = %conn.id, "finished an interrupted token update");
        Ok(Settled {
            connection: adopted,
            completed: true,
        })
    }

    /// The connection's tokens, child secret and row, in that order (its history stays).
    pub(super) async fn remove_with_secrets(&self, conn: &Connection) -> Result<()> {
        // Keyring first: if it is unavailable nothing is removed and the user can retry.
        match &conn.token_set {
            None => {
                self.vault
                    .delete_tokens(&conn.id, conn.secret_generation)
                    .await?
            }
            Some(set) => {
                // Rewrite the set without this connection's tokens (or delete it).
                self.try_sweep_token_set(set, Some(&conn.id), SharedSet::Rewrite)
                    .await?;
            }
        }
        self.vault.delete_child_secret(&conn.id).await?;
        let id = conn.id.clone();
        self.db(move |db| db.delete_connection(&id)).await
    }
}
