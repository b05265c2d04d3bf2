//! Refreshing: one connection, many, or all of them, through the one refresh code
//! path every trigger uses; the keep-fresh switch; handing out a valid access token.

use super::*;

/// How long a connection's lock must still be held, whatever happens next, when a
/// provider call under it starts ([`crate::store::backend::Lease::begin_call`]): the
/// worst case of committing the answer. On the team store a commit is one transaction of
/// six statements, each a round trip (BEGIN, the team row's lock, the compare-and-swap
/// UPDATE, the token set's DELETE and INSERT, COMMIT), after a pool checkout; a batch's
/// answer first waits up to `batch::MAX_BATCH_WAIT` (40 ms) for company, then its batch
/// is one pipelined transaction. At a 250 ms round trip (a database on another
/// continent) that is about 1.6 s: 2 s. It is well under the team lock's 5 s floor, so a
/// healthy lock (heartbeat every 0.5 s, 4.5–5 s left) always passes, while a holder whose
/// heartbeat went unanswered for 3 s (a stalled or cut link, a hung process) sends
/// nothing. The local store's lock cannot be lost while held: its check always passes.
pub(super) const LOCK_NEED: Duration = Duration::from_secs(2);

/// What one token request of a refresh sends (see `Manager::token_request`).
enum TokenRequest<'a> {
    FlowAccount {
        refresh: RefreshToken,
        secret: ClientSecret,
    },
    Fedex {
        grant: FedexGrant,
        secret: ClientSecret,
        child: Option<(&'a str, ChildSecret)>,
    },
    Iot {
        client: IotClient<'a>,
        refresh: RefreshToken,
        user_id: &'a str,
    },
}

impl Manager {
    /// Refresh a connection now (FedEx: request a new token). If another caller
    /// refreshed it while this one waited for the lock, that result is returned instead
    /// of refreshing twice.
    pub async fn refresh(&self, reference: &str) -> Result<Connection> {
        let conn = self.connection(reference).await?;
        self.refresh_connection(&conn.id, Some(conn.secret_generation), None)
            .await
    }

    /// Refresh every active connection, `refresh_concurrency` provider calls at a time,
    /// committing the new tokens in batches (see `batch`).
    pub async fn refresh_all(&self) -> Result<Vec<RefreshReport>> {
        let connections: Vec<Connection> = self
            .list()
            .await?
            .into_iter()
            .filter(|c| c.state == ConnectionState::Active)
            .collect();
        let mut reports: Vec<RefreshReport> = self
            .refresh_batch(connections)
            .await
            .into_iter()
            .map(|(conn, result)| RefreshReport {
                id: conn.id,
                label: conn.label,
                result,
            })
            .collect();
        reports.sort_by(|a, b| a.label.cmp(&b.label).then(a.id.cmp(&b.id)));
        Ok(reports)
    }

    /// Refresh the given connections (by id) as one batch, like [`Self::refresh_all`].
    /// One result per id, in order.
    pub async fn refresh_many(&self, ids: &[String]) -> Vec<Result<Connection>> {
        let mut connections = Vec::new();
        let mut results: Vec<Option<Result<Connection>>> = Vec::new();
        for id in ids {
            match self.connection(id).await {
                Ok(conn) => {
                    connections.push(conn);
                    results.push(None);
                }
                Err(e) => results.push(Some(Err(e))),
            }
        }
        let mut refreshed = self.refresh_batch(connections).await.into_iter();
        results
            .into_iter()
            .map(|r| match r {
                Some(r) => r,
                None => refreshed
                    .next()
                    .map(|(_, r)| r)
                    .unwrap_or_else(|| Err(Error::internal("A refresh result went missing."))),
            })
            .collect()
    }

    /// Refresh one connection under its lock. `batch`: part of a batch refresh, whose
    /// committer writes the new tokens (see `batch`); else they are committed here.
    pub(super) async fn refresh_connection(
        &self,
        id: &str,
        seen_generation: Option<i64>,
        batch: Option<BatchSlot<'_>>,
    ) -> Result<Connection> {
        // New tokens that cannot be stored must not be asked for (a full disk).
        self.inner.store.ensure_writable().await?;
        if self.inner.shutdown.is_stopping() {
            return Err(stopping());
        }
        // Answers a dead process journalled come first (a batch adopted them at its start).
        let held_back = match &batch {
            Some(slot) => slot.batch.held_back(id),
            None => self.adopt_journals().await.contains(id),
        };
        if held_back {
            return Err(answers::held_back());
        }
        // An answer this process kept (the keyring refused it) is saved first.
        self.settle_unsaved(id).await?;
        let guard = tokio::select! {
            lease = self.inner.store.lock(id) => lease?,
            _ = self.inner.shutdown.stopping() => return Err(stopping()),
        };
        // Re-read under the lock: another caller (or process) may have refreshed it.
        let probe = match batch {
            None => OrphanProbe::Always,
            Some(_) => OrphanProbe::MarkedOnly,
        };
        let conn = self.finish_interrupted_switch(id, probe).await?;
        if seen_generation.is_some_and(|g| g != conn.secret_generation) {
            // Refreshed by someone else meanwhile: single flight. Unless the grant was
            // found dead since (an answer adopted over another refresher's mark).
            if conn.state == ConnectionState::ReauthorizationRequired {
                return Err(reauthorization_required(&conn));
            }
            return Ok(conn);
        }
        match conn.state {
            ConnectionState::LogoutPending => {
                return Err(Error::invalid_input(
                    "A logout of this connection is pending: retry the logout.",
                ));
            }
            ConnectionState::ReauthorizationRequired => {
                return Err(reauthorization_required(&conn));
            }
            ConnectionState::Active => {}
        }
        let (batch, settled) = match batch {
            Some(slot) => {
                let BatchSlot {
                    batch,
                    preparing,
                    settled,
                } = slot;
                (Some((batch, preparing)), Some(settled))
            }
            None => (None, None),
        };
        let (current, client) = match batch {
            Some((batch, _)) => (
                batch.cached_tokens(&conn).await?,
                batch.client(self, &conn.client_key).await,
            ),
            None => (None, self.client(&conn.client_key).await),
        };
        // Set right before the provider call, held until its answer is committed: a stop
        // starts no new call and waits for this one.
        let _in_flight;
        let mut journal = None;
        let result = match client {
            // The journal's key is read before the call: no answer it could not keep.
            Ok(client) => match self.journal_ready().await {
                Ok(ready) => {
                    journal = ready;
                    // A batch bounds its provider calls on their own, so the next
                    // connections get ready (lock, re-read) while these are in flight.
                    let _call = match batch {
                        Some((batch, _)) => Some(tokio::select! {
                            call = batch.provider_call() => call?,
                            _ = self.inner.shutdown.stopping() => return Err(stopping()),
                        }),
                        None => None,
                    };
                    match self.token_request(&conn, &client, current).await {
                        Ok(request) => {
                            // Right before the call: the lock still held, for long enough
                            // to commit the answer, and the call marked in flight (no other
                            // holder spends this refresh token while its answer may be
                            // unsaved). If not, nothing is sent or changed.
                            // (FedEx spends no refresh token: nothing to mark.)
                            let checked = match &request {
                                TokenRequest::Fedex { .. } => guard.ensure_held(LOCK_NEED).await,
                                _ => guard.begin_call(LOCK_NEED).await,
                            };
                            if let Err(e) = checked {
                                tracing::warn!(connection = %conn.id, code = %e.code, "no provider call: the lock is lost, or another refresher's answer may be unsaved");
                                return Err(e);
                            }
                            _in_flight = self.inner.shutdown.begin_call()?;
                            let result = self.send_token_request(&client, request).await;
                            sandbox::explain_failure(&client, result).await
                        }
                        Err(e) => sandbox::explain_failure(&client, Err(e)).await,
                    }
                }
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        let answered = std::time::Instant::now();
        let batch = batch.map(|(batch, preparing)| {
            drop(preparing); // the provider answered: let the next refresh start
            batch
        });
        match result {
            Ok(tokens) => {
                let mut next = conn.clone();
                let refresh = tokens.refresh_token.clone();
                // Only an answer with a new refresh token spends the old one.
                let rotated = refresh.is_some();
                apply_tokens(&mut next, &tokens, self.now());
                next.last_refresh_at = Some(self.now());
                next.last_error = None;
                let bundle = self
                    .bundle_for(&conn, &next, tokens.access_token, refresh)
                    .await?;
                let in_batch = batch.is_some();
                let entry = match rotated {
                    true => {
                        self.journal_answer(journal, &conn, &next, &bundle, answered, in_batch)
                            .await
                    }
                    false => None,
                };
                let committed = match (batch, settled) {
                    // The committer writes the history with the batch.
                    (Some(batch), Some(settled)) => {
                        batch
                            .commit(conn.clone(), next.clone(), bundle.clone(), settled)
                            .await
                    }
                    _ => {
                        self.commit_bundle(&conn, next.clone(), bundle.clone())
                            .await
                    }
                };
                let next = match committed {
                    Ok(committed) => {
                        if let Some(entry) = entry {
                            entry.committed();
                        }
                        committed
                    }
                    Err(e) => {
                        if rotated {
                            let answer = answers::staged(&conn, &next, bundle);
                            self.keep_unsaved(answer, entry, guard);
                            return Err(answers::kept(e));
                        }
                        return Err(e);
                    }
                };
                if !in_batch {
                    self.record(
                        Some(&next.id),
                        Some(&next.client_key),
                        "refresh",
                        Ok(()),
                        None,
                    )
                    .await;
                }
                tracing::info!(connection = %next.id, "refreshed");
                self.emit(Event::ConnectionChanged {
                    connection: Box::new(next.clone()),
                });
                Ok(next)
            }
            Err(e) => {
                let state = (e.code == ErrorCode::ReauthorizationRequired)
                    .then_some(ConnectionState::ReauthorizationRequired);
                tracing::warn!(connection = %conn.id, code = %e.code, "refresh failed");
                if let Err(save) = self
                    .record_failure(&conn, state, "refresh", &e, IfUnsaved::Announce)
                    .await
                {
                    tracing::warn!(code = %save.code, "could not record a refresh failure");
                }
                Err(e)
            }
        }
    }

    /// What a refresh of `conn` sends, read from the store (`current`: the connection's
    /// current tokens when the caller already has them), so that the lock can be checked
    /// right before the request goes out.
    async fn token_request<'a>(
        &self,
        conn: &'a Connection,
        client: &'a Client,
        current: Option<TokenBundle>,
    ) -> Result<TokenRequest<'a>> {
        match conn.provider {
            Provider::FlowAccount => {
                let refresh = self.current_refresh_token(conn, current).await?;
                let secret = self.inner.store.client_secret(client).await?;
                Ok(TokenRequest::FlowAccount { refresh, secret })
            }
            Provider::Fedex => {
                let grant = conn.grant.unwrap_or(FedexGrant::ClientCredentials);
                let secret = self.inner.store.client_secret(client).await?;
                let child = match &conn.child_key {
                    Some(key) => Some((key.as_str(), self.inner.store.child_secret(&conn.id).await?.ok_or_else(|| {
                        Error::new(ErrorCode::InvalidClient, "The child secret is missing from the keyring: connect this project again.")
                    })?)),
                    None => None,
                };
                Ok(TokenRequest::Fedex {
                    grant,
                    secret,
                    child,
                })
            }
            Provider::Iot => {
                let refresh = self.current_refresh_token(conn, current).await?;
                let user_id = conn.user_id.as_deref().ok_or_else(|| {
                    Error::new(ErrorCode::ReauthorizationRequired, "The IoT platform did not say who this account is, so it cannot be renewed: log in again.")
                })?;
                Ok(TokenRequest::Iot {
                    client: iot_client(client)?,
                    refresh,
                    user_id,
                })
            }
        }
    }

    /// Send a [`TokenRequest`] of `client`'s provider.
    async fn send_token_request(
        &self,
        client: &Client,
        request: TokenRequest<'_>,
    ) -> Result<IssuedTokens> {
        let now = self.now();
        let http = &self.inner.http;
        let url = &client.endpoints.token_url;
        match request {
            TokenRequest::FlowAccount { refresh, secret } => {
                flowaccount::refresh(http, url, &client.client_id, &secret, &refresh, now).await
            }
            TokenRequest::Fedex {
                grant,
                secret,
                child,
            } => {
                let child = child.as_ref().map(|(key, secret)| (*key, secret));
                fedex::request_token(http, url, grant, &client.client_id, &secret, child, now).await
            }
            TokenRequest::Iot {
                client,
                refresh,
                user_id,
            } => iot::refresh(http, &client, &refresh, user_id, now).await,
        }
    }

    async fn current_refresh_token(
        &self,
        conn: &Connection,
        current: Option<TokenBundle>,
    ) -> Result<RefreshToken> {
        let current = match current {
            Some(tokens) => Some(tokens),
            None => self.inner.store.tokens(conn).await?,
        };
        match current {
            Some(bundle) => bundle
                .refresh_token
                .ok_or_else(|| reauthorization_required(conn)),
            None => Err(tokens_missing_error(conn)),
        }
    }

    /// A failed `event` on `conn`: its `last_error` (and `state`, if given) saved, the
    /// failure in the history, the change announced. Returns a failed save's error;
    /// `if_unsaved` says whether the history and the window still hear of the failure.
    pub(super) async fn record_failure(
        &self,
        conn: &Connection,
        state: Option<ConnectionState>,
        event: &str,
        e: &Error,
        if_unsaved: IfUnsaved,
    ) -> Result<()> {
        let mut failed = conn.clone();
        if let Some(state) = state {
            failed.state = state;
        }
        failed.last_error = Some(LastError::of(e, self.now()));
        let saved = self.save_metadata(&failed).await;
        if saved.is_err() && if_unsaved == IfUnsaved::Stop {
            return saved;
        }
        self.record(Some(&conn.id), Some(&conn.client_key), event, Err(e), None)
            .await;
        self.emit(Event::ConnectionChanged {
            connection: Box::new(failed),
        });
        saved
    }

    /// The keyring has no tokens where SQLite says this connection's are (deleted behind
    /// Authdeck's back, or a keyring reset): the grant cannot be used any more. The
    /// connection is marked for re-authorization, so the window offers Reconnect.
    async fn tokens_missing(&self, mut conn: Connection) -> Error {
        let e = tokens_missing_error(&conn);
        conn.state = ConnectionState::ReauthorizationRequired;
        conn.last_error = Some(LastError::of(&e, self.now()));
        match self.save_metadata(&conn).await {
            Ok(()) => self.emit(Event::ConnectionChanged {
                connection: Box::new(conn.clone()),
            }),
            Err(save) => {
                tracing::warn!(code = %save.code, "could not record missing tokens")
            }
        }
        tracing::warn!(connection = %conn.id, "tokens missing from the keyring");
        e
    }

    /// FedEx: whether the scheduler re-requests this connection's token before it
    /// expires (other providers are always kept fresh).
    pub async fn set_keep_fresh(&self, reference: &str, keep_fresh: bool) -> Result<Connection> {
        let conn = self.connection(reference).await?;
        let _lease = self.inner.store.lock(&conn.id).await?;
        let mut conn = self.connection(&conn.id).await?;
        conn.keep_fresh = keep_fresh;
        self.save_metadata(&conn).await?;
        let conn = self.connection(&conn.id).await?;
        self.emit(Event::ConnectionChanged {
            connection: Box::new(conn.clone()),
        });
        Ok(conn)
    }

    /// A valid access token: the cached one, or a refreshed one when it expires within
    /// `min_validity` (or has already expired).
    pub async fn access_token(
        &self,
        reference: &str,
        min_validity: Duration,
    ) -> Result<(AccessToken, Connection)> {
        let mut conn = self.connection(reference).await?;
        let min_validity =
            chrono::Duration::from_std(min_validity).unwrap_or(chrono::Duration::zero());
        for _ in 0..3 {
            if conn.state == ConnectionState::ReauthorizationRequired {
                return Err(reauthorization_required(&conn));
            }
            let fresh_enough = match &conn.access_expires {
                Some(e) => e.at - self.now() > min_validity,
                None => true, // unknown expiry: the cached token is all we can offer
            };
            if !fresh_enough {
                conn = self
                    .refresh_connection(&conn.id, Some(conn.secret_generation), None)
                    .await?;
            }
            if let Some(bundle) = self.inner.store.tokens(&conn).await? {
                return Ok((bundle.access_token, conn));
            }
            // Either switched to a new generation between our two reads (read again), or
            // the keyring lost the tokens SQLite still points at.
            let again = self.connection(&conn.id).await?;
            if again.secret_generation == conn.secret_generation
                && again.token_set == conn.token_set
            {
                return Err(self.tokens_missing(again).await);
            }
            conn = again;
        }
        Err(Error::new(
            ErrorCode::Busy,
            "The connection kept changing while its token was read: try again.",
        ))
    }
}
