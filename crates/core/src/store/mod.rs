//! Persistence. [`backend`]: the storage seam the manager speaks to (trait [`Backend`]
//! and its contract); [`local`]: its implementation on this machine — metadata and
//! history in SQLite ([`db`]), every secret in the OS keyring behind [`SecretStore`]
//! ([`vault`], [`keyring`]). No secret ever lands in SQLite.

pub mod backend;
pub mod db;
pub mod keyring;
pub mod local;
pub mod native;
pub mod paths;
pub mod vault;

pub use backend::{
    Backend, BackendKind, CommitOutcome, Lease, OrphanProbe, Settled, StoreChange, StoreChangeKind,
    TokenCommit, TokenPrefetch,
};
pub use local::LocalBackend;
pub use vault::TokenBundle;

use crate::error::Result;
use crate::secret::KeyringValue;

/// Where secrets live. Keys are opaque strings chosen by the store's callers
/// (`client/<id>/secret`, `connection/<id>/tokens/<generation>`, `tokenset/<id>`, …; see
/// `vault.rs`), unique within one
/// keyring *service* name.
///
/// All methods block (D-Bus round trips): call them from `spawn_blocking` or a
/// dedicated thread, never directly on the async runtime.
pub trait SecretStore: Send + Sync + 'static {
    /// Store (create or overwrite) a secret.
    fn set(&self, key: &str, value: &KeyringValue) -> Result<()>;
    /// Read a secret; `Ok(None)` when there is no entry for the key.
    fn get(&self, key: &str) -> Result<Option<KeyringValue>>;
    /// Delete a secret; deleting a missing entry is not an error.
    fn delete(&self, key: &str) -> Result<()>;
    /// Cheap availability probe: `Err(keyring_unavailable)` when the store cannot be used.
    fn check(&self) -> Result<()>;
    /// Every key of this store (only to clean up after a lost data directory).
    fn list_keys(&self) -> Result<Vec<String>> {
        Err(crate::error::Error::internal(
            "This secret store cannot list its entries.",
        ))
    }
}
