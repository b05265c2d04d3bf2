//! Committing tokens: a new connection's first tokens, a refresh's answer, and the
//! recovery of a switch a crash interrupted. Token bundles go to the keyring first,
//! then one SQLite transaction switches the connection to them (see `token_sets`).

use super::*;

impl Manager {
    /// Store the tokens of a fresh connect. If the same business / project / account is
    /// connected already, it is updated in place (history kept): that is "reconnect".
    pub(super) async fn save_connection(
        &self,
        client: &Client,
        natural_key: String,
        label: String,
        tokens: IssuedTokens,
        child_secret: Option<ChildSecret>,
        customize: impl FnOnce(Connection) -> Connection,
    ) -> Result<Connection> {
        let existing = self
            .inner
            .store
            .connection_by_natural_key(&client.id, &natural_key)
            .await?;
        let now = self.now();
        match existing {
            Some(old) => {
                let _lease = self.inner.store.lock(&old.id).await?;
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
    pub(super) async fn commit_bundle(
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
    pub(super) async fn bundle_for(
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
    pub(super) async fn finish_interrupted_switch(
        &self,
        id: &str,
        probe: OrphanProbe,
    ) -> Result<Connection> {
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
            Some(&conn.client_key),
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
    pub(super) async fn save_metadata(&self, conn: &Connection) -> Result<()> {
        let mut stored = conn.clone();
        stored.updated_at = self.now();
        let generation = stored.secret_generation;
        self.db(move |db| db.update_connection(&stored, generation))
            .await?;
        Ok(())
    }
}
