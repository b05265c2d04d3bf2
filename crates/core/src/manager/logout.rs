//! Logging out (revoking at the provider where it can) and removing a connection
//! locally.

use super::refresh::LOCK_NEED;
use super::*;

impl Manager {
    /// IoT: revoke the session at the server, then delete the local secrets (only after
    /// the server confirmed). FlowAccount / FedEx: disconnect, deleting local secrets.
    /// History is kept either way.
    pub async fn logout(&self, reference: &str) -> Result<LogoutOutcome> {
        let conn = self.connection(reference).await?;
        if self.adopt_journals().await.contains(&conn.id) {
            return Err(answers::held_back());
        }
        self.settle_unsaved(&conn.id).await?;
        let lease = self.inner.store.lock(&conn.id).await?;
        let conn = self
            .finish_interrupted_switch(&conn.id, OrphanProbe::Always)
            .await?;
        // Set once the server is asked; held until the local secrets are gone.
        let mut in_flight = None;
        let outcome = match conn.provider {
            Provider::Iot => {
                // Without a refresh token there is nothing to send: the server is not
                // asked, and must not be said to have ended the session.
                let revoked = match self.inner.store.tokens(&conn).await? {
                    Some(TokenBundle {
                        refresh_token: Some(refresh),
                        ..
                    }) => {
                        let client = self.client(&conn.client_key).await?;
                        // The lock still held right before the call, or nothing is sent
                        // (nor changed: the logout can simply be retried).
                        lease.ensure_held(LOCK_NEED).await?;
                        in_flight = Some(self.inner.shutdown.begin_call()?);
                        let result =
                            iot::logout(&self.inner.http, &iot_client(&client)?, &refresh).await;
                        Some(sandbox::explain_failure(&client, result).await)
                    }
                    _ => None,
                };
                match revoked {
                    None => LogoutOutcome::TokensMissing,
                    Some(Ok(())) => LogoutOutcome::Revoked,
                    Some(Err(e)) if e.code == ErrorCode::ReauthorizationRequired => {
                        LogoutOutcome::AlreadyRevoked
                    }
                    Some(Err(e)) => {
                        let pending = Some(ConnectionState::LogoutPending);
                        self.record_failure(&conn, pending, "logout", &e, IfUnsaved::Stop)
                            .await?;
                        return Err(Error {
                            message: format!("{} The logout is pending: retry it.", e.message),
                            ..e
                        });
                    }
                }
            }
            Provider::FlowAccount | Provider::Fedex => LogoutOutcome::Disconnected,
        };
        let event = if conn.provider == Provider::Iot {
            "logout"
        } else {
            "disconnect"
        };
        let detail = match outcome {
            LogoutOutcome::AlreadyRevoked => {
                Some("the server no longer knew this session".to_string())
            }
            LogoutOutcome::TokensMissing => Some(
                "the tokens were missing from the keyring, so the server was not asked to end the session: it may still be active"
                    .to_string(),
            ),
            _ => None,
        };
        self.remove_connection_locally(&conn, event, detail).await?;
        drop(in_flight);
        Ok(outcome)
    }

    /// Delete a connection's secrets and row (its history stays), under its lock, and
    /// record `event`. What a logout does once the server side is settled.
    pub(super) async fn remove_connection_locally(
        &self,
        conn: &Connection,
        event: &str,
        detail: Option<String>,
    ) -> Result<()> {
        // Secrets first: if they cannot be removed nothing is and the user can retry.
        self.inner.store.remove_connection(conn).await?;
        self.inner.store.forget_lock(&conn.id);
        self.record(
            Some(&conn.id),
            Some(&conn.client_key),
            event,
            Ok(()),
            detail,
        )
        .await;
        tracing::info!(connection = %conn.id, "{event}");
        self.emit(Event::ConnectionRemoved {
            id: conn.id.clone(),
        });
        Ok(())
    }
}
