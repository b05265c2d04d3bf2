//! TEMPORARY stand-ins for the token half of the core's storage seam (`/work/wt/SEAM.md`).
//!
//! The core at this crate's base does not have these types yet; another branch adds
//! them to `authdeck_core::store::backend`. When that lands, these go and the inherent
//! methods of [`super::TeamBackend`] that use them move into its `impl Backend`,
//! unchanged in meaning. Shapes follow SEAM.md, and the `seam` branch where it went
//! further (`TokenCommit::history`).

use authdeck_core::model::{Connection, HistoryEntry};
use authdeck_core::store::vault::TokenBundle;

/// What a commit did.
// SEAM.md's shape (not boxed): the core's type replaces this one.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum CommitOutcome {
    /// The new generation and tokens are stored: the connection as stored.
    Committed(Connection),
    /// The stored generation was no longer the expected one: nothing was written.
    Superseded,
}

/// One commit of a batch.
#[derive(Debug, Clone)]
pub struct TokenCommit {
    pub old: Connection,
    pub next: Connection,
    pub tokens: TokenBundle,
    /// Recorded together with the commit, only if it is committed (the `seam` branch
    /// added this to SEAM.md's shape).
    pub history: Option<HistoryEntry>,
}

/// What `settle` found.
#[derive(Debug, Clone, PartialEq)]
pub struct Settled {
    pub connection: Connection,
    /// Whether an interrupted commit was completed (never, for a transactional store).
    pub completed: bool,
}

/// Whether `settle` looks for an orphan generation when no write is marked (the local
/// store's keyring; meaningless for a transactional store).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrphanProbe {
    Always,
    MarkedOnly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreChangeKind {
    ConnectionChanged,
    ConnectionRemoved,
    ClientChanged,
    /// Caught up again (after start or a lost session): re-read the list.
    Resynced,
    /// The store is unreachable: the list may be stale.
    Unreachable,
}

/// A change made by another process or machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreChange {
    pub kind: StoreChangeKind,
    pub id: Option<String>,
}

/// Which store, for the header and status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendKind {
    Local,
    Team { name: String, reachable: bool },
}
