//! Connecting: the FlowAccount authorization round trip (begin, the redirect, its
//! outcome, cancel), and the FedEx and IoT logins.

use super::*;

impl Manager {
    /// Start a FlowAccount authorization. The returned URL is for the system browser.
    pub async fn begin_flowaccount(&self, client_ref: &str) -> Result<PendingAuthorization> {
        let client = self.client(client_ref).await?;
        if client.provider != Provider::FlowAccount {
            return Err(Error::invalid_input(format!(
                "{:?} is not a FlowAccount client.",
                client.name
            )));
        }
        // The browser would only say "unable to connect".
        sandbox::ensure_running(&client).await?;
        let authorize_url = client
            .endpoints
            .authorize_url
            .clone()
            .ok_or_else(|| Error::internal("FlowAccount client without authorize URL."))?;
        let redirect_uri = client
            .options
            .redirect_uri
            .clone()
            .unwrap_or_else(|| APP_REDIRECT_URI.to_string());
        let state: OAuthState = authorize::random_token();
        let state_hash = authorize::state_hash(state.expose());
        let verifier: Option<PkceVerifier> = client.options.pkce.then(authorize::random_token);
        let challenge = verifier.as_ref().map(authorize::pkce_challenge);
        let now = self.now();
        let id = state_hash.clone();
        let record = PendingRecord {
            state_hash,
            client_key: client.id.clone(),
            redirect_uri: redirect_uri.clone(),
            pkce: challenge.is_some(),
            reconnect_connection_id: None,
            created_at: now,
            expires_at: now + PENDING_LIFETIME,
            consumed_at: None,
        };
        let expires_at = record.expires_at;
        self.inner
            .store
            .insert_pending(&record, verifier.as_ref(), now - chrono::Duration::days(1))
            .await?;
        let url = flowaccount::authorize_url(
            &authorize_url,
            &client.client_id,
            &redirect_uri,
            state.expose(),
            challenge.as_deref(),
        );
        tracing::info!(client = %client.id, "authorization started");
        Ok(PendingAuthorization {
            id,
            authorize_url: url.to_string(),
            redirect_uri,
            expires_at,
        })
    }

    /// Whether `authorize_url` carries the `state` of an authorization that is still
    /// pending: started, not used, not expired. Only that is worth opening again.
    pub async fn authorization_is_pending(&self, authorize_url: &str) -> Result<bool> {
        let url = url::Url::parse(authorize_url)
            .map_err(|_| Error::invalid_input("Not an authorize URL."))?;
        let mut states = url.query_pairs().filter(|(k, _)| k == "state");
        let (Some((_, state)), None) = (states.next(), states.next()) else {
            return Ok(false);
        };
        let hash = authorize::state_hash(&state);
        let now = self.now();
        let pending = self.inner.store.pending(&hash).await?;
        Ok(pending.is_some_and(|p| p.consumed_at.is_none() && p.expires_at > now))
    }

    /// Finish an authorization from the redirect URL the browser was sent to (custom
    /// scheme deep link or loopback). Untrusted input: anything wrong is rejected,
    /// recorded in the history, and changes nothing else.
    pub async fn complete_callback(&self, raw_url: &str) -> Result<Connection> {
        let mut used = None;
        let result = self.complete_callback_inner(raw_url, &mut used).await;
        // Once its state was used, the pending authorization records how it ended.
        if let Some(hash) = used {
            let outcome = match &result {
                Ok(_) => "ok",
                Err((e, _)) => e.code.as_str(),
            };
            if let Err(e) = self.inner.store.set_pending_outcome(&hash, outcome).await {
                tracing::warn!(code = %e.code, "could not record how an authorization ended");
            }
        }
        match result {
            // Who the business is: never fails the connect (see `check`).
            Ok(c) => Ok(self.probe_after_connect(c).await),
            Err((e, client_key)) => {
                if e.code == ErrorCode::InvalidCallback {
                    self.record_rejection(client_key.as_deref(), &e).await;
                } else {
                    self.record(
                        None,
                        client_key.as_deref(),
                        "connect",
                        Err(&e),
                        Some(format!(
                            "{}{}",
                            e.message,
                            e.detail
                                .as_deref()
                                .map(|d| format!(" ({d})"))
                                .unwrap_or_default()
                        )),
                    )
                    .await;
                }
                tracing::warn!(code = %e.code, "authorization callback failed");
                Err(e)
            }
        }
    }

    async fn complete_callback_inner(
        &self,
        raw_url: &str,
        used: &mut Option<String>,
    ) -> std::result::Result<Connection, (Error, Option<String>)> {
        let callback = authorize::parse_callback(raw_url).map_err(|e| (e, None))?;
        let hash = authorize::state_hash(callback.state.expose());
        let pending = self
            .inner
            .store
            .pending(&hash)
            .await
            .map_err(|e| (e, None))?
            .ok_or_else(|| (Error::invalid_callback("This redirect does not belong to an authorization started by Authdeck (unknown state): ignored."), None))?;
        let client_key = Some(pending.client_key.clone());
        let fail = |e: Error| (e, client_key.clone());
        if pending.consumed_at.is_some() {
            return Err(fail(Error::invalid_callback(
                "This redirect was already used (replayed state): ignored.",
            )));
        }
        let now = self.now();
        if pending.expires_at <= now {
            return Err(fail(Error::invalid_callback(
                "This authorization expired (10 minutes): start connecting again.",
            )));
        }
        if !authorize::matches_redirect(&callback, &pending.redirect_uri) {
            return Err(fail(Error::invalid_callback("The redirect arrived at a different address than the authorization was started with: ignored.")));
        }
        if !self
            .inner
            .store
            .consume_pending(&hash, now)
            .await
            .map_err(fail)?
        {
            return Err(fail(Error::invalid_callback(
                "This redirect was already used (replayed state): ignored.",
            )));
        }
        *used = Some(hash.clone());
        let verifier = if pending.pkce {
            self.inner
                .store
                .take_pkce_verifier(&hash)
                .await
                .map_err(fail)?
        } else {
            None
        };
        let code = match callback.outcome {
            CallbackOutcome::Denied { error, description } => {
                return Err(fail(authorize::denied_error(
                    &error,
                    description.as_deref(),
                )))
            }
            CallbackOutcome::Code(code) => code,
        };
        let client = self.client(&pending.client_key).await.map_err(fail)?;
        // Held until the connection is saved: a stop waits for it.
        let _in_flight = self.inner.shutdown.begin_call().map_err(fail)?;
        let secret = self
            .inner
            .store
            .client_secret(&client)
            .await
            .map_err(fail)?;
        let tokens = flowaccount::exchange_code(
            &self.inner.http,
            &client.endpoints.token_url,
            &client.client_id,
            &secret,
            &code,
            &pending.redirect_uri,
            verifier.as_ref(),
            self.now(),
        )
        .await
        .map_err(fail)?;
        let mut tokens = tokens;
        if tokens.scope.is_none() {
            tokens.scope = callback.scope.clone();
        }
        let natural_key = tokens
            .support_code
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let label = tokens
            .support_code
            .clone()
            .unwrap_or_else(|| format!("{} business", client.name));
        self.save_connection(&client, natural_key, label, tokens, None, |c| c)
            .await
            .map_err(fail)
    }

    /// How a started authorization ended: `None` while it still waits for its redirect,
    /// else `ok`, an error code (e.g. `invalid_grant` for a refused code), `cancelled`,
    /// or `expired`. `id` is [`PendingAuthorization::id`].
    pub async fn authorization_outcome(&self, id: &str) -> Result<Option<String>> {
        let now = self.now();
        let Some(pending) = self.inner.store.pending(id).await? else {
            return Err(Error::not_found(
                "No such authorization (it may have been purged).",
            ));
        };
        match self.inner.store.pending_outcome(id).await? {
            Some(outcome) => Ok(Some(outcome)),
            None if pending.expires_at <= now => Ok(Some("expired".into())),
            None => Ok(None),
        }
    }

    /// Give up a started authorization: its redirect, should it still arrive, is
    /// rejected as already used. `false` if it had ended already.
    pub async fn cancel_authorization(&self, id: &str) -> Result<bool> {
        let now = self.now();
        if self.inner.store.pending(id).await?.is_none() {
            return Err(Error::not_found("No such authorization."));
        }
        let cancelled = self.inner.store.consume_pending(id, now).await?;
        if cancelled {
            self.inner
                .store
                .set_pending_outcome(id, "cancelled")
                .await?;
        }
        if cancelled {
            // The verifier is of no use any more.
            let _ = self.inner.store.take_pkce_verifier(id).await;
            tracing::info!("authorization cancelled");
        }
        Ok(cancelled)
    }

    /// Request a FedEx token and keep the project as a connection.
    pub async fn connect_fedex(
        &self,
        client_ref: &str,
        grant: FedexGrant,
        child: Option<(String, ChildSecret)>,
    ) -> Result<Connection> {
        let client = self.client(client_ref).await?;
        if client.provider != Provider::Fedex {
            return Err(Error::invalid_input(format!(
                "{:?} is not a FedEx client.",
                client.name
            )));
        }
        if grant.needs_child_credentials() != child.is_some() {
            return Err(Error::invalid_input(if child.is_some() {
                "client_credentials takes no child key: use csp_credentials or client_pc_credentials."
            } else {
                "This grant needs the child key and child secret (--child-key, --child-secret-stdin)."
            }));
        }
        if let Some((key, secret)) = &child {
            check_length("The child key", key, limits::USERNAME)?;
            check_secret_length("The child secret", secret)?;
            if key.trim().is_empty() || key.chars().any(char::is_control) {
                return Err(Error::invalid_input(
                    "The child key is empty or not printable.",
                ));
            }
        }
        let secret = self.inner.store.client_secret(&client).await?;
        let _in_flight = self.inner.shutdown.begin_call()?;
        let result = fedex::request_token(
            &self.inner.http,
            &client.endpoints.token_url,
            grant,
            &client.client_id,
            &secret,
            child.as_ref().map(|(k, s)| (k.as_str(), s)),
            self.now(),
        )
        .await;
        let result = sandbox::explain_failure(&client, result).await;
        let tokens = match result {
            Ok(t) => t,
            Err(e) => {
                self.record(None, Some(&client.id), "connect", Err(&e), None)
                    .await;
                return Err(e);
            }
        };
        let child_key = child.as_ref().map(|(k, _)| k.clone());
        let natural_key = format!("{}:{}", grant.as_str(), child_key.as_deref().unwrap_or(""));
        let label = match &child_key {
            Some(k) => format!("{} / {k}", client.name),
            None => client.name.clone(),
        };
        let child_secret = child.map(|(_, s)| s);
        self.save_connection(
            &client,
            natural_key,
            label,
            tokens,
            child_secret,
            move |mut c| {
                c.grant = Some(grant);
                c.child_key = child_key;
                c
            },
        )
        .await
    }

    /// Log in to the IoT platform. The password is used for this one request and dropped.
    pub async fn connect_iot(
        &self,
        client_ref: &str,
        username: &str,
        password: Password,
    ) -> Result<Connection> {
        let client = self.client(client_ref).await?;
        if client.provider != Provider::Iot {
            return Err(Error::invalid_input(format!(
                "{:?} is not an IoT-platform client.",
                client.name
            )));
        }
        let username = username.trim();
        check_length("The username", username, limits::USERNAME)?;
        check_secret_length("The password", &password)?;
        if username.is_empty() || username.chars().any(char::is_control) {
            return Err(Error::invalid_input(
                "The username is empty or not printable.",
            ));
        }
        let _in_flight = self.inner.shutdown.begin_call()?;
        let result = iot::login(
            &self.inner.http,
            &iot_client(&client)?,
            username,
            &password,
            self.now(),
        )
        .await;
        drop(password);
        let result = sandbox::explain_failure(&client, result).await;
        let tokens = match result {
            Ok(t) => t,
            Err(e) => {
                self.record(
                    None,
                    Some(&client.id),
                    "connect",
                    Err(&e),
                    Some(format!("login as {username}: {}", e.message)),
                )
                .await;
                return Err(e);
            }
        };
        let natural_key = tokens
            .user_id
            .clone()
            .unwrap_or_else(|| username.to_owned());
        let username = username.to_owned();
        self.save_connection(
            &client,
            natural_key,
            username.clone(),
            tokens,
            None,
            move |mut c| {
                c.username = Some(username);
                c
            },
        )
        .await
    }
}
