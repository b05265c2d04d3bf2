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
//! - `device/<device id>/token`, `device/<device id>/secret` — an IoT device's Token and
//!   optional Secret (the device id is Authdeck's record id, not the platform's Client ID)
//!
//! Tokens are written under a *new* generation (a new entry or a new set) and the
//! connection is switched to it in SQLite afterwards, so an interrupted refresh never
//! overwrites the tokens the connection still points at. A token set is never added to;
//! it only loses members (rewritten without them) and is deleted once none is left.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use super::db::Registration;
use super::SecretStore;
use crate::error::{Error, ErrorCode, Result};
use crate::model::{Connection, Expiry};
use crate::secret::{
    AccessToken, ChildSecret, ClientSecret, DeviceSecret, DeviceToken, KeyringValue, PkceVerifier,
    RefreshToken,
};

/// The tokens of one connection generation.
#[derive(Debug, Clone)]
pub struct TokenBundle {
    pub access_token: AccessToken,
    pub refresh_token: Option<RefreshToken>,
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
    pub fn new(
        access_token: AccessToken,
        refresh_token: Option<RefreshToken>,
        access_expires: Option<Expiry>,
        refresh_expires: Option<Expiry>,
    ) -> Self {
        Self {
            access_token,
            refresh_token,
            access_expires,
            refresh_expires,
        }
    }

    /// The bundle as versioned JSON (the keyring entry's format, `{"v":1,…}`), for a
    /// backend that seals it itself. Zeroed on drop.
    pub fn to_bytes(&self) -> Result<Zeroizing<Vec<u8>>> {
        let wire = self.to_wire();
        let bytes = serde_json::to_vec(&wire).map(Zeroizing::new);
        wire.zero();
        bytes.map_err(|_| Error::internal("Could not encode a token bundle."))
    }

    /// The inverse of [`Self::to_bytes`]; a damaged bundle is `keyring_unavailable`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let wire: TokenBundleWire = serde_json::from_slice(bytes).map_err(|_| damaged())?;
        Ok(Self::from_wire(wire))
    }

    pub(crate) fn encode(&self) -> Result<KeyringValue> {
        let wire = self.to_wire();
        let text = serde_json::to_string(&wire);
        wire.zero();
        let text = text.map_err(|_| Error::internal("Could not encode a token bundle."))?;
        Ok(KeyringValue::new(text))
    }

    pub(crate) fn decode(secret: &KeyringValue) -> Result<Self> {
        Self::from_bytes(secret.expose().as_bytes())
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
            access_token: AccessToken::new(wire.access_token),
            refresh_token: wire.refresh_token.map(RefreshToken::new),
            access_expires: wire.access_expires,
            refresh_expires: wire.refresh_expires,
        }
    }
}

impl TokenBundleWire {
    /// Zero the plain token copies.
    fn zero(mut self) {
        self.access_token.zeroize();
        self.refresh_token.zeroize();
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
) -> Result<KeyringValue> {
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
    Ok(KeyringValue::new(text))
}

fn decode_token_set(secret: &KeyringValue) -> Result<TokenSetContents> {
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
    client_secrets: Arc<Mutex<HashMap<String, ClientSecret>>>,
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

fn device_token_key(device_id: &str) -> String {
    format!("device/{device_id}/token")
}

fn device_secret_key(device_id: &str) -> String {
    format!("device/{device_id}/secret")
}

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

    fn cached_client_secrets(&self) -> std::sync::MutexGuard<'_, HashMap<String, ClientSecret>> {
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

    async fn set(&self, key: String, value: KeyringValue) -> Result<()> {
        self.run(move |s| s.set(&key, &value)).await
    }

    async fn get(&self, key: String) -> Result<Option<KeyringValue>> {
        self.run(move |s| s.get(&key)).await
    }

    async fn delete(&self, key: String) -> Result<()> {
        self.run(move |s| s.delete(&key)).await
    }

    pub async fn set_client_secret(&self, client_id: &str, secret: &ClientSecret) -> Result<()> {
        self.cached_client_secrets().remove(client_id);
        self.set(client_secret_key(client_id), secret.into())
            .await?;
        self.cached_client_secrets()
            .insert(client_id.to_owned(), secret.clone());
        Ok(())
    }

    /// The client secret, or a clear error when the keyring lost it. Read from the
    /// keyring once per process and client.
    pub async fn client_secret(&self, client_id: &str, client_name: &str) -> Result<ClientSecret> {
        if let Some(secret) = self.cached_client_secrets().get(client_id) {
            return Ok(secret.clone());
        }
        let secret = self.get(client_secret_key(client_id)).await?.map(ClientSecret::from).ok_or_else(|| {
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

    pub async fn set_child_secret(&self, connection_id: &str, secret: &ChildSecret) -> Result<()> {
        self.set(child_secret_key(connection_id), secret.into())
            .await
    }

    pub async fn child_secret(&self, connection_id: &str) -> Result<Option<ChildSecret>> {
        Ok(self
            .get(child_secret_key(connection_id))
            .await?
            .map(ChildSecret::from))
    }

    pub async fn delete_child_secret(&self, connection_id: &str) -> Result<()> {
        self.delete(child_secret_key(connection_id)).await
    }

    pub async fn set_device_token(&self, device_id: &str, token: &DeviceToken) -> Result<()> {
        self.set(device_token_key(device_id), token.into()).await
    }

    pub async fn device_token(&self, device_id: &str) -> Result<Option<DeviceToken>> {
        Ok(self
            .get(device_token_key(device_id))
            .await?
            .map(DeviceToken::from))
    }

    pub async fn set_device_secret(&self, device_id: &str, secret: &DeviceSecret) -> Result<()> {
        self.set(device_secret_key(device_id), secret.into()).await
    }

    pub async fn device_secret(&self, device_id: &str) -> Result<Option<DeviceSecret>> {
        Ok(self
            .get(device_secret_key(device_id))
            .await?
            .map(DeviceSecret::from))
    }

    /// Both entries of a device (deleting an absent one is fine).
    pub async fn delete_device_secrets(&self, device_id: &str) -> Result<()> {
        self.delete(device_token_key(device_id)).await?;
        self.delete(device_secret_key(device_id)).await
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
    pub async fn journal_key(&self) -> Result<Option<KeyringValue>> {
        self.get(JOURNAL_KEY.to_owned()).await
    }

    pub async fn set_journal_key(&self, key: &KeyringValue) -> Result<()> {
        self.set(JOURNAL_KEY.to_owned(), key.clone()).await
    }

    pub async fn set_pkce_verifier(&self, state_hash: &str, verifier: &PkceVerifier) -> Result<()> {
        self.set(pkce_key(state_hash), verifier.into()).await
    }

    /// Read and delete: a verifier is used once.
    pub async fn take_pkce_verifier(&self, state_hash: &str) -> Result<Option<PkceVerifier>> {
        let key = pkce_key(state_hash);
        self.run(move |s| {
            let v = s.get(&key)?;
            s.delete(&key)?;
            Ok(v.map(PkceVerifier::from))
        })
        .await
    }
}

// ---- which store the keyring belongs to -------------------------------------------------
//
// The keyring outlives the data directory: delete the directory (or empty its database)
// and the next start would find an empty database, create a fresh store, and the
// connections whose tokens are still in the keyring would be silently gone. So each store
// has an id, kept in SQLite and in the keyring entry `store/<hash of the database
// path>/id`. A new or empty database while the keyring holds an id for this path means
// the store was lost: Authdeck stops and says how to recover, instead of starting over.
//
// The keyring is consulted only until the store is registered (once per store); after
// that, opening costs one SQLite read.

/// The keyring key holding the id of the store whose database is at `db_path`.
pub fn store_key(db_path: &std::path::Path) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(db_path.as_os_str().as_encoded_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("store/{hex}/id")
}

fn lost_store(path: &std::path::Path) -> Error {
    let dir = path
        .parent()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    Error::new(
        ErrorCode::Storage,
        format!(
            "The data directory {dir} has lost its database: {} is new or empty, but the system keyring still holds the secrets of the Authdeck store that was there (the directory was deleted, or the file emptied or replaced). Nothing was changed. {}",
            path.display(),
            super::db::RECOVER
        ),
    )
    .with_detail(format!("{LOST_MARK}: keyring entry {}", store_key(path)))
}

/// In the detail of the error of a lost store (how [`reset_lost_store`] knows it).
const LOST_MARK: &str = "store lost";

/// Stop if the database at `db`'s path is not the store the keyring belongs to (see
/// above); register the store with the keyring if that has not happened yet. Blocking
/// (keyring calls): call it where blocking is fine, right after [`super::db::Db::open`].
///
/// A keyring that cannot be reached, or a database that cannot be written (a full disk),
/// only postpones the registration: reading commands keep working.
pub fn check_store(db: &super::db::Db, secrets: &dyn SecretStore) -> Result<()> {
    let Some(path) = db.path() else {
        return Ok(());
    };
    let key = store_key(path);
    let postpone = |e: Error| {
        tracing::warn!(code = %e.code, "store not registered with the keyring yet");
        Ok(())
    };
    let recorded = db.store_identity()?;
    if let Some((_, Registration::Registered)) = recorded {
        return Ok(()); // registered: the one SQLite read of the fast path
    }
    let known = match secrets.get(&key) {
        Ok(known) => known,
        Err(e) => return postpone(e),
    };
    let id = match (recorded, known) {
        // Recorded, then interrupted before the keyring was told.
        (Some((id, Registration::Pending)), None) => id,
        // Another process registering the same new store at the same moment won (a
        // lost store has no id recorded: it never gets here).
        (Some((_, Registration::Pending)), Some(theirs)) => {
            return db
                .set_store_identity(theirs.expose(), Registration::Registered)
                .or_else(postpone);
        }
        (None, Some(theirs)) => {
            // Another process registering this new store at the same moment recorded
            // its id before it told the keyring: read again before calling it lost.
            if db.store_identity()?.is_none() && db.is_empty_store()? {
                return Err(lost_store(path));
            }
            // A store from before store ids (e.g. a backup restored): it is that store.
            return db
                .set_store_identity(theirs.expose(), Registration::Registered)
                .or_else(postpone);
        }
        (None, None) => {
            let id = uuid::Uuid::new_v4().to_string();
            if let Err(e) = db.set_store_identity(&id, Registration::Pending) {
                return postpone(e);
            }
            id
        }
        (Some((_, Registration::Registered)), _) => return Ok(()),
    };
    if let Err(e) = secrets.set(&key, &KeyringValue::new(id.clone())) {
        return postpone(e);
    }
    db.set_store_identity(&id, Registration::Registered)
        .or_else(postpone)
}

/// What [`reset_lost_store`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetReport {
    /// Keyring entries of the lost store that were deleted.
    pub deleted: usize,
    /// Entries left alone because other data directories share the keyring service.
    pub kept: usize,
}

/// Start over after a lost data directory (the error of [`check_store`]): delete the
/// secrets the lost store left in the keyring and register the new, empty store.
/// Refused (`invalid_input`) when the store is not lost: it never deletes a working
/// store's secrets. With `dry_run`, only counts what would be deleted.
///
/// If other data directories share this keyring service (their store ids are there too),
/// their entries cannot be told from the lost store's: only this path's id is deleted.
pub fn reset_lost_store(
    db: &super::db::Db,
    secrets: &dyn SecretStore,
    dry_run: bool,
) -> Result<ResetReport> {
    let not_lost = || {
        Error::invalid_input(format!(
            "Nothing to reset: {} is this data directory's working store (or a new one). To remove connections, log out or disconnect them; to remove clients, `authdeckctl client remove`.",
            db.path().map(|p| p.display().to_string()).unwrap_or_default()
        ))
    };
    let Some(path) = db.path() else {
        return Err(not_lost());
    };
    match check_store(db, secrets) {
        Err(e)
            if e.detail
                .as_deref()
                .is_some_and(|d| d.starts_with(LOST_MARK)) => {}
        Err(e) => return Err(e),
        Ok(()) => return Err(not_lost()),
    }
    let own = store_key(path);
    let keys = secrets.list_keys()?;
    let shared = keys
        .iter()
        .any(|k| k != &own && k.starts_with("store/") && k.ends_with("/id"));
    let doomed: Vec<&String> = if shared {
        keys.iter().filter(|k| **k == own).collect()
    } else {
        keys.iter().collect()
    };
    let report = ResetReport {
        deleted: doomed.len(),
        kept: keys.len() - doomed.len(),
    };
    if dry_run {
        return Ok(report);
    }
    // The store id last: interrupted, the reset can be run again.
    for key in doomed.iter().filter(|k| ***k != own) {
        secrets.delete(key)?;
    }
    secrets.delete(&own)?;
    db.set_store_identity(&uuid::Uuid::new_v4().to_string(), Registration::Pending)?;
    check_store(db, secrets)?;
    Ok(report)
}

#[cfg(test)]
#[path = "vault_tests.rs"]
mod store_tests;
