//! The storage seam: what the [`crate::manager::Manager`] needs from wherever clients,
//! connections, their tokens and locks, the history and pending authorizations are kept.
//!
//! [`super::local::LocalBackend`] (SQLite for metadata and history, the OS keyring for
//! secrets, file locks in the data directory) is the first implementation;
//! `authdeck_team::TeamBackend` (PostgreSQL, secrets sealed on the client) the second. What stays per machine whatever the
//! backend (devices, the answer journal and its key) is not behind this seam: see
//! `manager::LocalParts`.
//!
//! # Contract
//! Written so that a second backend can be checked against it; the core's test suite
//! runs through this trait (`crates/core/tests/common`, `AUTHDECK_TEST_BACKEND`).
//!
//! - **Reads** ([`Backend::clients`], [`Backend::connections`], [`Backend::tokens`], …)
//!   see every write that returned `Ok`, from this process or any other sharing the
//!   store. Only the methods named for a secret ([`Backend::tokens`],
//!   [`Backend::client_secret`], [`Backend::child_secret`], …) return one.
//! - **Writes are atomic.** Each method either changes everything it names or nothing:
//!   a crash (`kill -9`, power loss) in the middle leaves the old state or, for the
//!   methods that say so, a state [`Backend::settle`] completes. A write that returns
//!   `Err` has changed nothing the caller must undo (it may have left something
//!   `settle` or [`Backend::maintain`] tidies). [`Backend::insert_client`] stores the
//!   client and its secret together; [`Backend::insert_connection`] the connection, its
//!   first tokens and its child secret together.
//! - **Locks** ([`Backend::lock`]): at most one holder per connection, across every
//!   process and machine sharing the store. Waiting is bounded: after the store's wait
//!   the caller gets `busy`. A holder that dies (crash, kill -9, lost session) releases
//!   the lock without anyone's help. A holder must re-read the connection after taking
//!   the lock ([`Backend::settle`] is that re-read), because another holder may have
//!   changed it meanwhile. Dropping the [`Lease`] releases the lock. A lock that can be
//!   lost while held (a broken session) says so through [`Lease::ensure_held`], which
//!   the manager asks right before each provider call under the lock; before a refresh
//!   it asks [`Lease::begin_call`], which also marks the call in flight where the lock
//!   can be lost, and refuses while another holder's marked answer may be unsaved. The token methods
//!   are called with the connection's lock held unless they say otherwise; the lock is
//!   what keeps two refreshers from spending one refresh token.
//! - **Generations and compare-and-swap.** Every connection carries a
//!   `secret_generation`, 1 for its first tokens, one more for each commit of new
//!   tokens. [`Backend::commit`] stores new tokens only if the stored generation is still
//!   the one the caller read (`old.secret_generation`), and then stores `old + 1`; else
//!   it returns [`CommitOutcome::Superseded`] and writes nothing. The new tokens are
//!   durable before the commit returns `Committed`: after a crash the store holds either
//!   the old generation with its tokens or the new one with its tokens, never a
//!   generation without its tokens, never tokens of one generation under another. The
//!   tokens a connection used before are gone (or unreachable, and removed by
//!   `maintain`) once it committed. [`Backend::save_metadata`] uses the same
//!   compare-and-swap without touching the tokens.
//! - **Settling** ([`Backend::settle`]): whatever an interrupted commit left for a
//!   connection (its tokens written but the switch to them not recorded) is completed
//!   or discarded before the connection is used again: settle returns the connection as
//!   stored afterwards. The provider's newest tokens must win, because the refresh token
//!   they replaced may already be spent (reusing it can revoke the whole grant): if the
//!   new generation's tokens survived the crash, `settle` adopts them (generation + 1,
//!   `completed = true`); if not, it leaves the old generation. A store whose commit is
//!   one transaction has nothing to settle and just re-reads.
//! - **History** is append-only; [`Backend::record`] with a coalescing `kind` may fold
//!   the entry into an earlier one of that kind from the same minute, adding to its
//!   count. History outlives the connection it is about ([`Backend::activity`] still
//!   names it).
//! - **Pending authorizations** are single-use: [`Backend::consume_pending`] succeeds
//!   for exactly one caller per state. Its outcome, once set, is kept until purged.
//! - **Secrets** never leave through errors, logs or the change feed.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// Where it was before it moved to `store::local` (still named from here).
pub use super::local::LocalBackend;

use super::db::PendingRecord;
use super::vault::TokenBundle;
use crate::activity::ActivityEntry;
use crate::error::Result;
use crate::model::{Client, Connection, HistoryEntry};
use crate::secret::{ChildSecret, ClientSecret, PkceVerifier};

/// A held connection lock (see [`Backend::lock`]); dropping it releases the lock.
///
/// A lock that can be lost while it is held (the team store's: its session may break,
/// or the server may end it when the holder falls silent) says whether it still holds
/// ([`Lease::ensure_held`]); the manager asks right before every provider call made under
/// the lock, and sends nothing when it does not (see [`LeaseCheck`]). Before a call that
/// spends a refresh token it asks [`Lease::begin_call`] instead, which also marks the
/// call in flight in a store whose lock can be lost.
pub struct Lease {
    held: Box<dyn LeaseCheck>,
}

/// What a [`Lease`] holds. The default [`LeaseCheck::ensure_held`] always says yes: right
/// for a lock that cannot be lost while its holder lives (the local store's file lock,
/// which only the holder's death releases, and then no provider call of it is left).
#[async_trait]
pub trait LeaseCheck: Send + Sync {
    /// `Ok` iff the lock is still held and stays held for at least `need` from now,
    /// whatever the holder does meanwhile (the store will not hand it to anyone else
    /// sooner). Otherwise an error ([`lease_lost`]'s, with what was found in `detail`):
    /// the caller sends nothing to the provider and changes nothing.
    async fn ensure_held(&self, need: std::time::Duration) -> Result<()> {
        let _ = need;
        Ok(())
    }

    /// [`Self::ensure_held`] right before a provider call whose answer replaces the
    /// refresh token, and, for a store whose lock can be lost, the durable mark that such
    /// a call is in flight, so that no other holder presents that refresh token while the
    /// answer may be unsaved (the team store: `authdeck.calls_in_flight`). `Err`: send
    /// nothing (the mark not acknowledged, or another holder's answer may be unsaved).
    /// The default: [`Self::ensure_held`].
    async fn begin_call(&self, need: std::time::Duration) -> Result<()> {
        self.ensure_held(need).await
    }

    /// The answer of the call [`Self::begin_call`] marked could not be committed and is
    /// kept to be saved later: dropping the lease must leave the mark (the commit that
    /// saves the answer removes it). The default: nothing to keep.
    fn keep_mark(&self) {}
}

/// Any value held for its `Drop` (a file lock): [`LeaseCheck`]'s default, always held.
struct Opaque<T>(#[allow(dead_code)] T);

impl<T: Send + Sync> LeaseCheck for Opaque<T> {}

impl Lease {
    /// A lock that cannot be lost while held: [`Self::ensure_held`] always says yes.
    pub fn new(held: impl Send + Sync + 'static) -> Self {
        Self {
            held: Box::new(Opaque(held)),
        }
    }

    /// A lock that can say whether it still holds (see [`LeaseCheck`]).
    pub fn checked(held: impl LeaseCheck + 'static) -> Self {
        Self {
            held: Box::new(held),
        }
    }

    /// See [`LeaseCheck::ensure_held`].
    pub async fn ensure_held(&self, need: std::time::Duration) -> Result<()> {
        self.held.ensure_held(need).await
    }

    /// See [`LeaseCheck::begin_call`].
    pub async fn begin_call(&self, need: std::time::Duration) -> Result<()> {
        self.held.begin_call(need).await
    }

    /// See [`LeaseCheck::keep_mark`].
    pub fn keep_mark(&self) {
        self.held.keep_mark()
    }
}

/// The error of a [`Lease`] found no longer held (or not for long enough): nothing was
/// sent to the provider, nothing changed.
pub fn lease_lost() -> crate::error::Error {
    crate::error::Error::new(
        crate::error::ErrorCode::TeamUnavailable,
        "Lost the connection's lock on the team store: nothing was sent to the provider and nothing was changed; try again.",
    )
}

/// What [`Backend::commit`] did.
// Unboxed on purpose (the shape both backends build to): one is moved per commit.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum CommitOutcome {
    /// The new tokens are the connection's: it is stored as given (generation + 1).
    Committed(Connection),
    /// The stored generation was no longer the one the caller read: nothing written.
    Superseded,
}

/// One commit of [`Backend::commit_many`].
#[derive(Debug, Clone)]
pub struct TokenCommit {
    /// The connection as read under its lock.
    pub old: Connection,
    /// Its new metadata (stored with generation `old.secret_generation + 1`).
    pub next: Connection,
    pub tokens: TokenBundle,
    /// A history entry recorded together with the commit, only if it is committed (in
    /// the same transaction where the store has them).
    pub history: Option<HistoryEntry>,
}

/// What [`Backend::settle`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct Settled {
    /// The connection as stored afterwards.
    pub connection: Connection,
    /// An interrupted commit was completed (its tokens adopted).
    pub completed: bool,
}

/// Whether [`Backend::settle`] looks for the tokens of an interrupted commit that left
/// no mark (local: one keyring read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrphanProbe {
    /// Always look.
    Always,
    /// Only when a write is marked (batch refreshes rely on the marks).
    MarkedOnly,
}

/// One change another process or machine made (see [`Backend::changes`]). Never carries
/// a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreChange {
    pub kind: StoreChangeKind,
    /// The connection or client it is about, when it is about one.
    pub id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreChangeKind {
    ConnectionChanged,
    ConnectionRemoved,
    ClientChanged,
    /// Changes may have been missed (the feed reconnected): read everything again.
    Resynced,
    /// The store cannot be reached right now.
    Unreachable,
}

/// Which kind of store a [`Backend`] is (for the window's header and status).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendKind {
    /// This machine's SQLite + keyring.
    Local,
    /// A shared team store.
    Team { name: String, reachable: bool },
}

/// Tokens a batch refresh reads, fetched ahead (see [`Backend::prefetch`]).
#[async_trait]
pub trait TokenPrefetch: Send + Sync {
    /// `conn`'s current tokens, if they were fetched ahead; `Ok(None)`: not fetched (read
    /// them with [`Backend::tokens`]).
    async fn tokens(&self, conn: &Connection) -> Result<Option<TokenBundle>>;
}

/// See the module's contract.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    // ---- identity --------------------------------------------------------------------

    /// `local` or `team`, and for the team store its name and reachability.
    fn kind(&self) -> BackendKind;

    // ---- clients ---------------------------------------------------------------------

    async fn clients(&self) -> Result<Vec<Client>>;
    /// By id or name; `not_found` when neither matches.
    async fn client(&self, reference: &str) -> Result<Client>;
    /// A new client and (for confidential clients) its secret, together.
    async fn insert_client(&self, client: &Client, secret: Option<&ClientSecret>) -> Result<()>;
    /// New settings of an existing client (its secret unchanged).
    async fn update_client(&self, client: &Client) -> Result<()>;
    /// A client and its secret. The caller has checked no connection uses it.
    async fn remove_client(&self, client: &Client) -> Result<()>;
    /// The client's secret; `invalid_client` (saying to add the client again) when the
    /// store has none for it. A client's secret never changes under the same id, so an
    /// implementation may cache it.
    async fn client_secret(&self, client: &Client) -> Result<ClientSecret>;

    // ---- connections -----------------------------------------------------------------

    async fn connections(&self) -> Result<Vec<Connection>>;
    /// By id or label; `not_found` when neither matches.
    async fn connection(&self, reference: &str) -> Result<Connection>;
    /// The connection of one business / project / account of a client, if connected.
    async fn connection_by_natural_key(
        &self,
        client_key: &str,
        natural_key: &str,
    ) -> Result<Option<Connection>>;
    async fn connection_count_for_client(&self, client_key: &str) -> Result<usize>;
    /// Whether new tokens could be stored now: `Err` (e.g. `storage`, a full disk) when
    /// a write would fail, so no provider is asked for tokens that would be lost. The
    /// default: always.
    async fn ensure_writable(&self) -> Result<()> {
        Ok(())
    }

    // ---- tokens (every method: the caller holds the connection's lock unless said) ----

    /// The connection's current tokens (those of its stored generation); `None` when
    /// none are stored (lost, or the connection moved to another generation since `conn`
    /// was read — read it again to tell). No lock needed.
    async fn tokens(&self, conn: &Connection) -> Result<Option<TokenBundle>>;
    /// A batch refresh is about to read the tokens of `connections`, in this order: a
    /// reader that may fetch them ahead, more cheaply than one [`Self::tokens`] each.
    /// Dropping it stops the fetching. `None` (the default): read each with `tokens`.
    fn prefetch(&self, connections: &[Connection]) -> Option<Arc<dyn TokenPrefetch>> {
        let _ = connections;
        None
    }
    /// A new connection (`conn.secret_generation` 1) with its first tokens and (FedEx
    /// child credentials) child secret, all or nothing. No lock needed (the id is new).
    async fn insert_connection(
        &self,
        conn: &Connection,
        natural_key: &str,
        tokens: &TokenBundle,
        child: Option<&ChildSecret>,
    ) -> Result<()>;
    /// Commit new tokens: store `next` (metadata, its `updated_at` as given) with
    /// generation `old.secret_generation + 1` and `tokens`, iff the stored generation is
    /// still `old.secret_generation` (compare-and-swap). `Committed(conn as stored)` or
    /// `Superseded` (nothing written). Atomic: after a crash the store holds the old
    /// generation and tokens, or the new ones (possibly only once [`Self::settle`] ran).
    async fn commit(
        &self,
        old: &Connection,
        next: &Connection,
        tokens: &TokenBundle,
    ) -> Result<CommitOutcome>;
    /// Many commits at once (a batch refresh; each connection's lock held); one outcome
    /// per item, in order, each with the promise of [`Self::commit`] and its `history`
    /// recorded iff it committed. The default calls `commit` (and `record`) for each;
    /// the local backend writes one keyring entry per batch.
    async fn commit_many(&self, items: Vec<TokenCommit>) -> Vec<Result<CommitOutcome>> {
        let mut outcomes = Vec::with_capacity(items.len());
        for item in items {
            let outcome = self.commit(&item.old, &item.next, &item.tokens).await;
            if let (Ok(CommitOutcome::Committed(conn)), Some(entry)) = (&outcome, &item.history) {
                if let Err(e) = self
                    .record(Some(&conn.id), Some(&conn.client_key), entry, None)
                    .await
                {
                    tracing::warn!(code = %e.code, "history not recorded");
                }
            }
            outcomes.push(outcome);
        }
        outcomes
    }
    /// Whatever an interrupted commit left for this connection, settled (see the
    /// contract): the connection as stored afterwards, and whether an interrupted commit
    /// was completed. `not_found` when it is gone. Local: adopt an orphan generation or
    /// token-set member; a transactional store: just re-read.
    async fn settle(&self, id: &str, probe: OrphanProbe) -> Result<Settled>;
    /// Save metadata only (state, last error, label, keep-fresh, last check, … and
    /// `updated_at` as given), tokens untouched; compare-and-swap on
    /// `conn.secret_generation` (`false`: superseded, nothing written).
    async fn save_metadata(&self, conn: &Connection) -> Result<bool>;
    /// Remove the connection with its tokens and child secret (its history stays).
    /// Secrets first: while they cannot be removed the connection stays listed, and a
    /// retry finishes what an earlier attempt left.
    async fn remove_connection(&self, conn: &Connection) -> Result<()>;
    /// Store (or replace) a connection's child secret (FedEx child credentials).
    async fn set_child_secret(&self, connection_id: &str, secret: &ChildSecret) -> Result<()>;
    async fn child_secret(&self, connection_id: &str) -> Result<Option<ChildSecret>>;
    /// Housekeeping: remove what earlier commits left behind that no connection uses
    /// (local: sweep token sets). Called after a batch refresh; best effort, and safe
    /// to run at any time. The default does nothing.
    async fn maintain(&self) -> Result<()> {
        Ok(())
    }

    // ---- locks -----------------------------------------------------------------------

    /// Take the connection's lock, waiting at most the store's bound.
    async fn lock(&self, connection_id: &str) -> Result<Lease>;
    /// The connection is gone: its lock's resources may go too (best effort).
    fn forget_lock(&self, connection_id: &str);

    // ---- history ---------------------------------------------------------------------

    /// Append `entry`; with `coalesce`, fold it into the same minute's entry of that
    /// kind (same connection and client) if there is one.
    async fn record(
        &self,
        connection_id: Option<&str>,
        client_key: Option<&str>,
        entry: &HistoryEntry,
        coalesce: Option<&str>,
    ) -> Result<()>;
    /// Newest first; `None`: every entry, including those of no connection.
    async fn history(&self, connection_id: Option<&str>, limit: usize)
        -> Result<Vec<HistoryEntry>>;
    /// Newest first, at most `limit`: every entry with the name and provider of its
    /// connection (kept after the connection is removed) and whether it still exists.
    async fn activity(&self, limit: usize) -> Result<Vec<ActivityEntry>>;

    // ---- pending authorizations --------------------------------------------------------

    /// A started authorization, with its PKCE verifier when it uses one. Pending
    /// authorizations created before `purge_before` may be dropped at the same time.
    async fn insert_pending(
        &self,
        record: &PendingRecord,
        verifier: Option<&PkceVerifier>,
        purge_before: DateTime<Utc>,
    ) -> Result<()>;
    async fn pending(&self, state_hash: &str) -> Result<Option<PendingRecord>>;
    /// Mark it used at `now`; `true` for exactly one caller per state.
    async fn consume_pending(&self, state_hash: &str, now: DateTime<Utc>) -> Result<bool>;
    async fn set_pending_outcome(&self, state_hash: &str, outcome: &str) -> Result<()>;
    async fn pending_outcome(&self, state_hash: &str) -> Result<Option<String>>;
    /// The verifier, removed (a verifier is used once).
    async fn take_pkce_verifier(&self, state_hash: &str) -> Result<Option<PkceVerifier>>;

    // ---- change feed -----------------------------------------------------------------

    /// Changes made by other processes or machines, for the window's list. `None`: the
    /// store has no feed (local: the window relies on the manager's own events and its
    /// watch of the data directory).
    fn changes(&self) -> Option<tokio::sync::broadcast::Receiver<StoreChange>> {
        None
    }

    // ---- the scheduler's leadership ------------------------------------------------------

    /// Whether this process's scheduler may start scheduled refreshes now: the
    /// [`crate::scheduler::Scheduler`] asks before each pass, and a leader again before
    /// each part of a long batch. Manual refreshes (the button, the CLI) never ask.
    ///
    /// A store shared by many machines lets one scheduler of all of them lead (the team
    /// store: a session advisory lock in PostgreSQL); the first call enters this process
    /// in that competition, so a store that never runs a scheduler never competes. A
    /// leader is [`SchedulerRole::Leader`] only while its leadership is confirmed; the
    /// others get [`SchedulerRole::Standby`] and ask again soon (`standby_poll`), taking
    /// over when the leader dies or is cut off. The default (one machine's store, where
    /// the connection locks keep the app and an agent apart): always
    /// [`SchedulerRole::Alone`].
    async fn scheduler_role(&self) -> SchedulerRole {
        SchedulerRole::Alone
    }
}

/// What [`Backend::scheduler_role`] says about this process's scheduler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchedulerRole {
    /// The store has no leadership: this scheduler refreshes what falls due.
    Alone,
    /// This scheduler leads those sharing the store: it refreshes for all of them.
    Leader,
    /// Another scheduler leads: this one starts no scheduled refresh. `leader`: who leads
    /// (as the store records it, e.g. `alice on office-pc`), when known.
    Standby { leader: Option<String> },
}

impl SchedulerRole {
    /// Whether a scheduler in this role refreshes.
    pub fn refreshes(&self) -> bool {
        !matches!(self, SchedulerRole::Standby { .. })
    }
}
