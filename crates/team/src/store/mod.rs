//! [`TeamStore`]: one team's rows in PostgreSQL, secrets sealed with its [`TeamKey`].
//!
//! Contract (what the core's storage trait can rely on):
//! - Every write is one transaction. Writers lock the team row first, which orders the
//!   change versions by commit and rules out deadlocks between writers.
//! - [`TeamStore::commit`] switches a connection to a new token set and generation in one
//!   transaction, only if the generation is still the expected one (compare and swap):
//!   of two committers of the same generation exactly one wins; the loser changes
//!   nothing. After a crash or a lost session the database holds either the old
//!   generation and token set or the new ones, never a mix.
//! - Records (`record`) are the core's non-secret JSON; secrets are bytes the caller
//!   serialises, sealed here and opened here, never in the database in clear.

use std::sync::Arc;
use std::time::Duration;

use authdeck_core::{Error, ErrorCode, Result};
use chrono::{DateTime, Utc};
use deadpool_postgres::{ManagerConfig, Pool, RecyclingMethod};
use serde_json::Value;
use tokio_postgres::Row;
use zeroize::Zeroizing;

use crate::crypto::{new_team_id, JoinKey, Scope, TeamKey};
use crate::tls::DbConfig;
use crate::{db_error, pool_error, schema};

mod clients;
mod connections;
mod history;
mod keys;
mod members;
mod pending;
mod seam;

/// What a member used for a change (history's `via`, members seen's `kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Desktop,
    Agent,
    Cli,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Desktop => "desktop",
            Via::Agent => "agent",
            Via::Cli => "cli",
        }
    }
}

/// A client row (its secret stays sealed until [`TeamStore::client_secret`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ClientRow {
    pub id: String,
    pub record: Value,
    pub has_secret: bool,
    pub version: i64,
    pub deleted: bool,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
}

/// A connection row (its token set stays sealed until [`TeamStore::token_set`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionRow {
    pub id: String,
    pub client_id: String,
    pub record: Value,
    pub generation: i64,
    pub version: i64,
    pub deleted: bool,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub created_on: String,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
    pub updated_on: String,
    pub last_refresh_at: Option<DateTime<Utc>>,
    pub last_refresh_by: Option<String>,
    pub last_refresh_on: Option<String>,
}

/// One history line to record. `member` is the session's PostgreSQL role (set by the
/// server); `machine` and `via` come from the store.
#[derive(Debug, Clone, Copy)]
pub struct HistoryEvent<'a> {
    pub connection_id: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub event: &'a str,
    pub outcome: &'a str,
    pub detail: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRow {
    pub id: i64,
    pub connection_id: Option<String>,
    pub client_id: Option<String>,
    pub at: DateTime<Utc>,
    pub event: String,
    pub outcome: String,
    pub detail: Option<String>,
    pub member: String,
    pub machine: String,
    pub via: String,
    /// How many times it happened (coalesced lines count several; see
    /// [`TeamStore::add_history`]).
    pub count: i32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PendingRow {
    pub id: String,
    pub client_id: String,
    pub record: Value,
    pub expires_at: DateTime<Utc>,
    pub created_by: String,
    pub machine: String,
    /// When it was used ([`TeamStore::consume_pending`]); `None` while unused.
    pub consumed_at: Option<DateTime<Utc>>,
    /// How it ended, once recorded.
    pub outcome: Option<String>,
}

const PENDING_COLUMNS: &str =
    "id, client_id, record, expires_at, created_by, machine, consumed_at, outcome";

fn pending_row(r: &Row) -> PendingRow {
    PendingRow {
        id: r.get(0),
        client_id: r.get(1),
        record: r.get(2),
        expires_at: r.get(3),
        created_by: r.get(4),
        machine: r.get(5),
        consumed_at: r.get(6),
        outcome: r.get(7),
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct MemberRow {
    pub member: String,
    pub machine: String,
    pub kind: String,
    pub app_version: String,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
}

/// A new connection (see [`TeamStore::insert_new_connection`]): plaintext secrets,
/// sealed there.
#[derive(Debug, Clone, Copy)]
pub struct NewConnection<'a> {
    pub id: &'a str,
    pub client_id: &'a str,
    /// The core's natural key (the business, project or account of the client).
    pub natural_key: Option<&'a str>,
    pub record: &'a Value,
    /// The first token set's generation (the core starts at 1).
    pub generation: i64,
    pub token_set: &'a [u8],
    pub child_secret: Option<&'a [u8]>,
    pub history: Option<HistoryEvent<'a>>,
}

/// A history line with what it is about ([`TeamStore::activity`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityRow {
    pub at: DateTime<Utc>,
    pub event: String,
    pub outcome: String,
    pub detail: Option<String>,
    pub count: i32,
    pub connection_id: Option<String>,
    /// The connection's `record.label` (also after it was removed).
    pub connection_label: Option<String>,
    /// The connection's `record.provider`.
    pub provider: Option<String>,
    /// The connection is still there (not removed).
    pub live: bool,
    pub member: String,
    pub machine: String,
    pub via: String,
}

/// One history line as the core's seam records it (its own time and count).
#[derive(Debug, Clone, Copy)]
pub struct HistoryLine<'a> {
    pub connection_id: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub at: DateTime<Utc>,
    pub event: &'a str,
    pub outcome: &'a str,
    pub detail: Option<&'a str>,
    pub count: i32,
}

/// A commit: the connection switches from `expected_generation` to
/// `expected_generation + 1` with `token_set` (plaintext bytes, sealed here) and
/// `record`.
#[derive(Debug, Clone, Copy)]
pub struct CommitRequest<'a> {
    pub connection_id: &'a str,
    pub expected_generation: i64,
    pub token_set: &'a [u8],
    pub record: &'a Value,
    /// A refresh (stamps `last_refresh_*`), rather than e.g. a re-authorization.
    pub refreshed: bool,
    pub history: Option<HistoryEvent<'a>>,
}

/// What [`TeamStore::commit`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitOutcome {
    /// This commit switched the generation; the row's new change version.
    Won { generation: i64, version: i64 },
    /// The generation was no longer the expected one (another committer won, or the
    /// connection was removed): nothing was written. `current` is the generation now
    /// (`None`: removed).
    Lost { current: Option<i64> },
}

pub(crate) struct Inner {
    pub(crate) db: DbConfig,
    pub(crate) pool: Pool,
    pub(crate) team: String,
    pub(crate) key: TeamKey,
    pub(crate) machine: String,
    /// This store's own name for itself in `authdeck.calls_in_flight` (its pid and a
    /// random part): marks of any other owner are foreign, even from this machine.
    pub(crate) owner: String,
    pub(crate) via: Via,
    pub(crate) lock_sessions: tokio::sync::Mutex<Vec<Arc<tokio_postgres::Client>>>,
    /// Permits for the refresh-lock sessions this process may have open
    /// ([`crate::lock::MAX_LOCK_SESSIONS`]); shared by every clone of the store.
    pub(crate) lock_permits: Arc<tokio::sync::Semaphore>,
}

/// A store's owner id for its in-flight marks: `<pid>-<16 hex>`.
fn owner_id() -> String {
    let mut b = [0u8; 8];
    // Without randomness the pid and the time still tell stores apart in practice.
    if getrandom::fill(&mut b).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        b = t.to_le_bytes();
    }
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{hex}", std::process::id())
}

/// One team's store. Cheap to clone (shared pool).
#[derive(Clone)]
pub struct TeamStore {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for TeamStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TeamStore")
            .field("team", &self.inner.team)
            .field("machine", &self.inner.machine)
            .finish_non_exhaustive()
    }
}

/// Pooled sessions per process (reads and writes; a refresh lock has its own session,
/// see [`crate::lock::MAX_LOCK_SESSIONS`]).
pub(crate) const POOL_SIZE: usize = 8;

fn pool(db: &DbConfig) -> Result<Pool> {
    let manager = db.manager(ManagerConfig {
        recycling_method: RecyclingMethod::Fast,
    });
    Pool::builder(manager)
        .max_size(POOL_SIZE)
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .wait_timeout(Some(Duration::from_secs(10)))
        .create_timeout(Some(Duration::from_secs(10)))
        .recycle_timeout(Some(Duration::from_secs(5)))
        .build()
        .map_err(|e| Error::internal("team store pool set-up failed").with_detail(e.to_string()))
}

const CONNECTION_COLUMNS: &str = "id, client_id, record, generation, version, deleted, created_at, created_by, \
     created_on, updated_at, updated_by, updated_on, last_refresh_at, last_refresh_by, last_refresh_on";

fn connection_row(r: &Row) -> ConnectionRow {
    ConnectionRow {
        id: r.get(0),
        client_id: r.get(1),
        record: r.get(2),
        generation: r.get(3),
        version: r.get(4),
        deleted: r.get(5),
        created_at: r.get(6),
        created_by: r.get(7),
        created_on: r.get(8),
        updated_at: r.get(9),
        updated_by: r.get(10),
        updated_on: r.get(11),
        last_refresh_at: r.get(12),
        last_refresh_by: r.get(13),
        last_refresh_on: r.get(14),
    }
}

const CLIENT_COLUMNS: &str = "id, record, has_secret, version, deleted, updated_at, updated_by";

fn client_row(r: &Row) -> ClientRow {
    ClientRow {
        id: r.get(0),
        record: r.get(1),
        has_secret: r.get(2),
        version: r.get(3),
        deleted: r.get(4),
        updated_at: r.get(5),
        updated_by: r.get(6),
    }
}

fn is_unique_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
}

/// Lock the team row for the rest of the transaction: every writer does this first (the
/// version counter lives there, and one lock order means no deadlocks). Refuses a
/// writer whose key is no longer the team's (rotated meanwhile), so nothing sealed
/// under an old key is ever written after a rotation.
async fn lock_team(tx: &tokio_postgres::Transaction<'_>, team: &str, key: &TeamKey) -> Result<()> {
    let found = tx
        .query_opt(
            "SELECT key_epoch FROM authdeck.teams WHERE id = $1::text::uuid FOR UPDATE",
            &[&team],
        )
        .await
        .map_err(db_error)?;
    match found {
        Some(row) if row.get::<_, i32>(0) as u32 == key.epoch() => Ok(()),
        Some(_) => Err(rotated()),
        None => Err(Error::not_found(
            "This team no longer exists in the team database.",
        )),
    }
}

fn rotated() -> Error {
    Error::new(
        ErrorCode::Storage,
        "The team key was rotated: join the team again with the new join key. Nothing was changed.",
    )
}

impl TeamStore {
    /// `team init`: apply the migrations, create a team with a new key, and return the
    /// store and the join key (to show once). Needs a role that may create the schema.
    pub async fn init(
        db: &DbConfig,
        name: &str,
        machine: &str,
        via: Via,
    ) -> Result<(TeamStore, JoinKey)> {
        let mut client = db.connect().await?;
        schema::migrate(&mut client).await?;
        let team = new_team_id()?;
        let key = TeamKey::generate(1)?;
        let check = key.check_value(&team)?;
        let epoch = key.epoch() as i32;
        client
            .execute(
                "INSERT INTO authdeck.teams (id, name, key_epoch, key_check) VALUES ($1::text::uuid, $2, $3, $4)",
                &[&team, &name, &epoch, &check],
            )
            .await
            .map_err(db_error)?;
        let join = JoinKey::encode(&team, &key)?;
        let store = Self::open(db, &team, key, machine, via).await?;
        Ok((store, join))
    }

    /// Open a team with its key: refuses a database whose schema this build does not
    /// know, a team that does not exist, and a key that is not the team's current one.
    pub async fn open(
        db: &DbConfig,
        team: &str,
        key: TeamKey,
        machine: &str,
        via: Via,
    ) -> Result<TeamStore> {
        let pool = pool(db)?;
        {
            let client = pool.get().await.map_err(pool_error)?;
            schema::check(&client).await?;
            let row = client
                .query_opt(
                    "SELECT key_epoch, key_check FROM authdeck.teams WHERE id = $1::text::uuid",
                    &[&team],
                )
                .await
                .map_err(db_error)?
                .ok_or_else(|| {
                    Error::not_found(
                        "No such team in this database: check the join key and the address.",
                    )
                })?;
            let epoch: i32 = row.get(0);
            let check: Vec<u8> = row.get(1);
            if epoch as u32 != key.epoch() {
                return Err(Error::invalid_input(
                    "This team key is not the team's current key (it was rotated): ask for a new join key.",
                ));
            }
            key.verify_check_value(team, &check)?;
        }
        Ok(TeamStore {
            inner: Arc::new(Inner {
                db: db.clone(),
                pool,
                team: team.to_string(),
                key,
                machine: machine.to_string(),
                owner: owner_id(),
                via,
                lock_sessions: tokio::sync::Mutex::new(Vec::new()),
                lock_permits: Arc::new(tokio::sync::Semaphore::new(crate::lock::MAX_LOCK_SESSIONS)),
            }),
        })
    }

    pub fn team_id(&self) -> &str {
        &self.inner.team
    }

    pub fn machine(&self) -> &str {
        &self.inner.machine
    }

    /// Who this store is in `authdeck.calls_in_flight` (no secret: a pid and a random part).
    pub fn owner(&self) -> &str {
        &self.inner.owner
    }

    pub fn db(&self) -> &DbConfig {
        &self.inner.db
    }

    /// The LISTEN channel of this team.
    pub fn channel(&self) -> String {
        format!("authdeck_{}", self.inner.team.replace('-', ""))
    }

    async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.inner.pool.get().await.map_err(pool_error)
    }

    async fn history_in(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        h: &HistoryEvent<'_>,
    ) -> Result<()> {
        tx.execute(
            "INSERT INTO authdeck.history (team_id, connection_id, client_id, event, outcome, detail, machine, via)
             VALUES ($1::text::uuid, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &self.inner.team,
                &h.connection_id,
                &h.client_id,
                &h.event,
                &h.outcome,
                &h.detail,
                &self.inner.machine,
                &self.inner.via.as_str(),
            ],
        )
        .await
        .map_err(db_error)?;
        Ok(())
    }
}

pub(crate) async fn changes_since(
    client: &tokio_postgres::Client,
    team: &str,
    version: i64,
) -> Result<Vec<crate::Change>> {
    let rows = client
        .query(
        "SELECT 'connection', id, version, deleted FROM authdeck.connections WHERE team_id = $1::text::uuid AND version > $2
         UNION ALL
         SELECT 'client', id, version, deleted FROM authdeck.clients WHERE team_id = $1::text::uuid AND version > $2
         ORDER BY 3",
        &[&team, &version],
    )
    .await
    .map_err(db_error)?;
    Ok(rows
        .iter()
        .map(|r| crate::Change {
            kind: if r.get::<_, &str>(0) == "client" {
                crate::ChangeKind::Client
            } else {
                crate::ChangeKind::Connection
            },
            id: r.get(1),
            version: r.get(2),
            deleted: Some(r.get(3)),
        })
        .collect())
}

// ---- small reads for `team status` (membership.rs) -----------------------------------
