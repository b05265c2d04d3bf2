//! Typed access to the secrets of clients, connections and pending authorizations, over
//! any [`SecretStore`]. Knows the keyring key layout and runs every (blocking) keyring
//! call on the blocking thread pool.
//!
//! Key layout (one keyring *service* per data directory, see `paths`):
//! - `client/<client id>/secret` — the app registration's client secret
//! - `connection/<connection id>/child_secret` — FedEx child secret
//! - `connection/<connection id>/tokens/<generation>` — access + refresh token, one entry
//!   so both change together
//! - `tokenset/<set id>` — the tokens of many connections, each at one generation, written
//!   by a batch refresh in one keyring call (gnome-keyring rewrites its whole file on every
//!   write and delete, so a thousand per-connection entries cost a thousand rewrites)
//! - `pending/<state hash>/pkce_verifier` — PKCE verifier of a started authorization
//! - `journal/key` — the key that seals the answer journal's entries (see `journal`)
//!
//! Tokens are written under a *new* generation (a new entry or a new set) and the
//! connection is switched to it in SQLite afterwards, so an interrupted refresh never
//! overwrites the tokens the connection still points at. A token set is never added to;
//! it only loses members (rewritten without them) and is deleted once none is left.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::SecretStore;
use crate::error::{Error, ErrorCode, Result};
use crate::model::{Connection, Expiry};
use crate::secret::Secret;

/// The tokens of one connection generation.
#[derive(Debug, Clone)]
pub struct TokenBundle {
    pub access_token: Secret,
    pub refresh_token: Option<Secret>,
    /// Metadata needed to finish a half-done switch after a crash.
    pub access_expires: Option<Expiry>,
    pub refresh_expires: Option<Expiry>,
}

#[derive(Serialize, Deserialize)]
struct TokenBundleWire {
    v: u32,
    access_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    access_expires: Option<Expiry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refresh_expires: Option<Expiry>,
}

impl TokenBundle {
    pub(crate) fn encode(&self) -> Result<Secret> {
        let wire = self.to_wire();
        let text = serde_json::to_string(&wire);
        wire.zero();
        let text = text.map_err(|_| Error::internal("Could not encode a token bundle."))?;
        Ok(Secret::new(text))
    }

    pub(crate) fn decode(secret: &Secret) -> Result<Self> {
        let wire: TokenBundleWire = serde_json::from_str(secret.expose()).map_err(|_| damaged())?;
        Ok(Self::from_wire(wire))
    }
}

/// The decoded contents of a token set: connection id → (generation, tokens).
pub type TokenSetContents = HashMap<String, (i64, TokenBundle)>;

#[derive(Serialize, Deserialize)]
struct TokenSetWire {
    v: u32,
    members: HashMap<String, TokenSetMemberWire>,
}

#[derive(Serialize, Deserialize)]
struct TokenSetMemberWire {
    generation: i64,
    tokens: TokenBundleWire,
}

impl TokenBundle {
    fn to_wire(&self) -> TokenBundleWire {
        TokenBundleWire {
            v: 1,
            access_token: self.access_token.expose().to_owned(),
            refresh_token: self.refresh_token.as_ref().map(|s| s.expose().to_owned()),
            access_expires: self.access_expires,
            refresh_expires: self.refresh_expires,
        }
    }

    fn from_wire(wire: TokenBundleWire) -> Self {
        Self {
            access_token: Secret::new(wire.access_token),
            refresh_token: wire.refresh_token.map(Secret::new),
            access_expires: wire.access_expires,
            refresh_expires: wire.refresh_expires,
        }
    }
}

impl TokenBundleWire {
    /// Move the plain token copies into `Secret`s that zero them on drop.
    fn zero(self) {
        drop(Secret::new(self.access_token));
        if let Some(r) = self.refresh_token {
            drop(Secret::new(r));
        }
    }
}

fn damaged() -> Error {
    Error::new(
        ErrorCode::KeyringUnavailable,
        "A keyring entry of Authdeck is damaged: reconnect this connection.",
    )
}

fn encode_token_set<'a>(
    members: impl IntoIterator<Item = (&'a str, i64, &'a TokenBundle)>,
) -> Result<Secret> {
    let wire = TokenSetWire {
        v: 1,
        members: members
            .into_iter()
            .map(|(id, generation, tokens)| {
                (
                    id.to_owned(),
                    TokenSetMemberWire {
                        generation,
                        tokens: tokens.to_wire(),
                    },
                )
            })
            .collect(),
    };
    let text = serde_json::to_string(&wire);
    for (_, member) in wire.members {
        member.tokens.zero();
    }
    let text = text.map_err(|_| Error::internal("Could not encode a token set."))?;
    Ok(Secret::new(text))
}

fn decode_token_set(secret: &Secret) -> Result<TokenSetContents> {
    let wire: TokenSetWire = serde_json::from_str(secret.expose()).map_err(|_| damaged())?;
    Ok(wire
        .members
        .into_iter()
        .map(|(id, m)| (id, (m.generation, TokenBundle::from_wire(m.tokens))))
        .collect())
}

#[derive(Clone)]
pub struct Vault {
    store: Arc<dyn SecretStore>,
    /// Client secrets read or written by this process, by client id. A client's secret
    /// never changes under the same id (a client is removed and added again under a new
    /// id), so this saves two keyring round trips per refresh without going stale.
    client_secrets: Arc<Mutex<HashMap<String, Secret>>>,
}

fn client_secret_key(client_id: &str) -> String {
    format!("client/{client_id}/secret")
}

fn child_secret_key(connection_id: &str) -> String {
    format!("connection/{connection_id}/child_secret")
}

fn tokens_key(connection_id: &str, generation: i64) -> String {
    format!("connection/{connection_id}/tokens/{generation}")
}

fn token_set_key(set_id: &str) -> String {
    format!("tokenset/{set_id}")
}

/// The one key that seals the answer journal's entries (see `journal`).
pub const JOURNAL_KEY: &str = "journal/key";

fn pkce_key(state_hash: &str) -> String {
    format!("pending/{state_hash}/pkce_verifier")
}

impl Vault {
    pub fn new(store: Arc<dyn SecretStore>) -> Self {
        Self {
            store,
            client_secrets: Arc::default(),
        }
    }

    fn cached_client_secrets(&self) -> std::sync::MutexGuard<'_, HashMap<String, Secret>> {
        self.client_secrets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn SecretStore) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(store.as_ref()))
            .await
            .map_err(|_| Error::internal("A keyring call panicked."))?
    }

    pub async fn check(&self) -> Result<()> {
        self.run(|s| s.check()).await
    }

    async fn set(&self, key: String, value: Secret) -> Result<()> {
        self.run(move |s| s.set(&key, &value)).await
    }

    async fn get(&self, key: String) -> Result<Option<Secret>> {
        self.run(move |s| s.get(&key)).await
    }

    async fn delete(&self, key: String) -> Result<()> {
        self.run(move |s| s.delete(&key)).await
    }

    pub async fn set_client_secret(&self, client_id: &str, secret: &Secret) -> Result<()> {
        self.cached_client_secrets().remove(client_id);
        self.set(client_secret_key(client_id), secret.clone())
            .await?;
        self.cached_client_secrets()
            .insert(client_id.to_owned(), secret.clone());
        Ok(())
    }

    /// The client secret, or a clear error when the keyring lost it. Read from the
    /// keyring once per process and client.
    pub async fn client_secret(&self, client_id: &str, client_name: &str) -> Result<Secret> {
        if let Some(secret) = self.cached_client_secrets().get(client_id) {
            return Ok(secret.clone());
        }
        let secret = self.get(client_secret_key(client_id)).await?.ok_or_else(|| {
            Error::new(
                ErrorCode::InvalidClient,
                format!("The client secret of {client_name:?} is missing from the keyring: remove and add the client again."),
            )
        })?;
        self.cached_client_secrets()
            .insert(client_id.to_owned(), secret.clone());
        Ok(secret)
    }

    pub async fn delete_client_secret(&self, client_id: &str) -> Result<()> {
        self.cached_client_secrets().remove(client_id);
        self.delete(client_secret_key(client_id)).await
    }

    pub async fn set_child_secret(&self, connection_id: &str, secret: &Secret) -> Result<()> {
        self.set(child_secret_key(connection_id), secret.clone())
            .await
    }

    pub async fn child_secret(&self, connection_id: &str) -> Result<Option<Secret>> {
        self.get(child_secret_key(connection_id)).await
    }

    pub async fn delete_child_secret(&self, connection_id: &str) -> Result<()> {
        self.delete(child_secret_key(connection_id)).await
    }

    pub async fn put_tokens(
        &self,
        connection_id: &str,
        generation: i64,
        tokens: &TokenBundle,
    ) -> Result<()> {
        self.set(tokens_key(connection_id, generation), tokens.encode()?)
            .await
    }

    pub async fn tokens(
        &self,
        connection_id: &str,
        generation: i64,
    ) -> Result<Option<TokenBundle>> {
        match self.get(tokens_key(connection_id, generation)).await? {
            Some(secret) => Ok(Some(TokenBundle::decode(&secret)?)),
            None => Ok(None),
        }
    }

    pub async fn delete_tokens(&self, connection_id: &str, generation: i64) -> Result<()> {
        self.delete(tokens_key(connection_id, generation)).await
    }

    /// The current tokens of a connection, wherever they are (its own entry or its token
    /// set). `None` when they are not there (any more): the connection was switched to
    /// another generation meanwhile, or the keyring lost them.
    pub async fn current_tokens(&self, conn: &Connection) -> Result<Option<TokenBundle>> {
        match &conn.token_set {
            None => self.tokens(&conn.id, conn.secret_generation).await,
            Some(set) => Ok(self
                .token_set(set)
                .await?
                .and_then(|mut members| members.remove(&conn.id))
                .and_then(|(generation, tokens)| {
                    (generation == conn.secret_generation).then_some(tokens)
                })),
        }
    }

    /// Write a token set (create or overwrite) in one keyring call.
    pub async fn put_token_set(
        &self,
        set_id: &str,
        members: &[(String, i64, TokenBundle)],
    ) -> Result<()> {
        let value = encode_token_set(members.iter().map(|(id, g, t)| (id.as_str(), *g, t)))?;
        self.set(token_set_key(set_id), value).await
    }

    /// Rewrite a token set with only the given members of `contents`.
    pub async fn rewrite_token_set(
        &self,
        set_id: &str,
        contents: &TokenSetContents,
        keep: &[String],
    ) -> Result<()> {
        let value = encode_token_set(
            keep.iter()
                .filter_map(|id| contents.get(id).map(|(g, t)| (id.as_str(), *g, t))),
        )?;
        self.set(token_set_key(set_id), value).await
    }

    pub async fn token_set(&self, set_id: &str) -> Result<Option<TokenSetContents>> {
        match self.get(token_set_key(set_id)).await? {
            Some(secret) => Ok(Some(decode_token_set(&secret)?)),
            None => Ok(None),
        }
    }

    pub async fn delete_token_set(&self, set_id: &str) -> Result<()> {
        self.delete(token_set_key(set_id)).await
    }

    /// The key of the answer journal (see `journal`); `None` before the first refresh.
    pub async fn journal_key(&self) -> Result<Option<Secret>> {
        self.get(JOURNAL_KEY.to_owned()).await
    }

    pub async fn set_journal_key(&self, key: &Secret) -> Result<()> {
        self.set(JOURNAL_KEY.to_owned(), key.clone()).await
    }

    pub async fn set_pkce_verifier(&self, state_hash: &str, verifier: &Secret) -> Result<()> {
        self.set(pkce_key(state_hash), verifier.clone()).await
    }

    /// Read and delete: a verifier is used once.
    pub async fn take_pkce_verifier(&self, state_hash: &str) -> Result<Option<Secret>> {
        let key = pkce_key(state_hash);
        self.run(move |s| {
            let v = s.get(&key)?;
            s.delete(&key)?;
            Ok(v)
        })
        .await
    }
}
