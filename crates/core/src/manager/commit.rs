//! Committing tokens through the store: a new connection's first tokens, a refresh's
//! answer, and the recovery of a commit a crash interrupted (how a store makes them
//! atomic: `store::backend`'s contract; the local one: `store::local`).

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
                    self.inner.store.set_child_secret(&old.id, secret).await?;
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
                self.inner
                    .store
                    .insert_connection(&conn, &natural_key, &bundle, child_secret.as_ref())
                    .await?;
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

    /// Commit new tokens of an existing connection (read under its lock as `old`):
    /// `conn` with generation g+1 and the tokens, if the store still holds g.
    async fn commit_tokens(
        &self,
        old: &Connection,
        conn: Connection,
        access: AccessToken,
        refresh: Option<RefreshToken>,
    ) -> Result<Connection> {
        let bundle = self.bundle_for(old, &conn, access, refresh).await?;
        self.commit_bundle(old, conn, bundle).await
    }

    /// [`Self::commit_tokens`] with the token bundle made already. A commit the store
    /// reports superseded is `busy` (only possible if a writer bypassed the lock).
    pub(super) async fn commit_bundle(
        &self,
        old: &Connection,
        mut conn: Connection,
        bundle: TokenBundle,
    ) -> Result<Connection> {
        conn.updated_at = self.now();
        match self.inner.store.commit(old, &conn, &bundle).await? {
            CommitOutcome::Committed(conn) => Ok(conn),
            CommitOutcome::Superseded => Err(superseded()),
        }
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
                .store
                .tokens(old)
                .await?
                .and_then(|b| b.refresh_token),
        };
        Ok(bundle_of(conn, access, refresh))
    }

    /// The connection re-read under its lock, with whatever an interrupted commit left
    /// settled first (see [`Backend::settle`]): a completed one is recorded in the
    /// history and announced. `probe`: whether the store looks for an interrupted commit
    /// even when none is marked.
    pub(super) async fn finish_interrupted_switch(
        &self,
        id: &str,
        probe: OrphanProbe,
    ) -> Result<Connection> {
        let settled = self.inner.store.settle(id, probe).await?;
        let conn = settled.connection;
        if settled.completed {
            self.announce_recovered(&conn, "finished a token update that was interrupted")
                .await;
        }
        Ok(conn)
    }

    /// Tokens an interruption left were saved for `conn` (as stored now): say so in its
    /// history (`detail`: what was saved) and to the window.
    pub(super) async fn announce_recovered(&self, conn: &Connection, detail: &str) {
        self.record(
            Some(&conn.id),
            Some(&conn.client_key),
            "recovered",
            Ok(()),
            Some(detail.into()),
        )
        .await;
        self.emit(Event::ConnectionChanged {
            connection: Box::new(conn.clone()),
        });
    }

    /// Save metadata (state, last error) without touching the tokens.
    pub(super) async fn save_metadata(&self, conn: &Connection) -> Result<()> {
        let mut stored = conn.clone();
        stored.updated_at = self.now();
        self.inner.store.save_metadata(&stored).await?;
        Ok(())
    }
}

/// Another writer changed the connection between its read under the lock and the commit.
pub(super) fn superseded() -> Error {
    Error::new(
        ErrorCode::Busy,
        "Another Authdeck process updated this connection at the same time: try again.",
    )
}
