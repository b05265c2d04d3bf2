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
    pub(crate) via: Via,
    pub(crate) lock_sessions: tokio::sync::Mutex<Vec<Arc<tokio_postgres::Client>>>,
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

fn pool(db: &DbConfig) -> Result<Pool> {
    let manager = db.manager(ManagerConfig {
        recycling_method: RecyclingMethod::Fast,
    });
    Pool::builder(manager)
        .max_size(8)
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
                via,
                lock_sessions: tokio::sync::Mutex::new(Vec::new()),
            }),
        })
    }

    pub fn team_id(&self) -> &str {
        &self.inner.team
    }

    pub fn machine(&self) -> &str {
        &self.inner.machine
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

    // ---- clients -----------------------------------------------------------------

    /// Insert or replace a client (`secret`: `None` keeps no secret).
    pub async fn put_client(&self, id: &str, record: &Value, secret: Option<&[u8]>) -> Result<i64> {
        let sealed = match secret {
            Some(s) => Some(self.inner.key.seal(
                &Scope::ClientSecret {
                    team: &self.inner.team,
                    client: id,
                },
                s,
            )?),
            None => None,
        };
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        lock_team(&tx, &self.inner.team, &self.inner.key).await?;
        let row = tx
            .query_one(
                "INSERT INTO authdeck.clients (team_id, id, record, secret) VALUES ($1::text::uuid, $2, $3, $4)
                 ON CONFLICT (team_id, id) DO UPDATE SET record = EXCLUDED.record, secret = EXCLUDED.secret, deleted = false
                 RETURNING version",
                &[&self.inner.team, &id, record, &sealed],
            )
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(row.get(0))
    }

    pub async fn client_row(&self, id: &str) -> Result<Option<ClientRow>> {
        let c = self.client().await?;
        let sql = format!(
            "SELECT {CLIENT_COLUMNS} FROM authdeck.clients WHERE team_id = $1::text::uuid AND id = $2 AND NOT deleted"
        );
        let row = c
            .query_opt(&sql, &[&self.inner.team, &id])
            .await
            .map_err(db_error)?;
        Ok(row.as_ref().map(client_row))
    }

    pub async fn clients(&self) -> Result<Vec<ClientRow>> {
        let c = self.client().await?;
        let sql = format!(
            "SELECT {CLIENT_COLUMNS} FROM authdeck.clients WHERE team_id = $1::text::uuid AND NOT deleted ORDER BY id"
        );
        let rows = c.query(&sql, &[&self.inner.team]).await.map_err(db_error)?;
        Ok(rows.iter().map(client_row).collect())
    }

    /// A client's secret, opened.
    pub async fn client_secret(&self, id: &str) -> Result<Option<Zeroizing<Vec<u8>>>> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                "SELECT secret FROM authdeck.clients WHERE team_id = $1::text::uuid AND id = $2 AND NOT deleted",
                &[&self.inner.team, &id],
            )
            .await
            .map_err(db_error)?;
        let Some(sealed) = row.and_then(|r| r.get::<_, Option<Vec<u8>>>(0)) else {
            return Ok(None);
        };
        self.inner
            .key
            .open(
                &Scope::ClientSecret {
                    team: &self.inner.team,
                    client: id,
                },
                &sealed,
            )
            .map(Some)
    }

    /// Remove a client (soft: a tombstone with a new version). Refused while live
    /// connections use it.
    pub async fn remove_client(&self, id: &str) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        lock_team(&tx, &self.inner.team, &self.inner.key).await?;
        let used: i64 = tx
            .query_one(
                "SELECT count(*) FROM authdeck.connections WHERE team_id = $1::text::uuid AND client_id = $2 AND NOT deleted",
                &[&self.inner.team, &id],
            )
            .await
            .map_err(db_error)?
            .get(0);
        if used > 0 {
            return Err(Error::invalid_input(format!(
                "This client still has {used} connection(s): remove them first."
            )));
        }
        let n = tx
            .execute(
                "UPDATE authdeck.clients SET deleted = true, secret = NULL WHERE team_id = $1::text::uuid AND id = $2 AND NOT deleted",
                &[&self.inner.team, &id],
            )
            .await
            .map_err(db_error)?;
        if n == 0 {
            return Err(Error::not_found("No such client."));
        }
        tx.commit().await.map_err(db_error)?;
        Ok(())
    }

    // ---- connections --------------------------------------------------------------

    /// A new connection at generation 1 with its first token set, in one transaction.
    pub async fn insert_connection(
        &self,
        id: &str,
        client_id: &str,
        record: &Value,
        token_set: &[u8],
        history: Option<HistoryEvent<'_>>,
    ) -> Result<ConnectionRow> {
        self.insert_new_connection(&NewConnection {
            id,
            client_id,
            natural_key: None,
            record,
            generation: 1,
            token_set,
            child_secret: None,
            history,
        })
        .await
    }

    /// A new connection with its first token set and (FedEx) child secret, all in one
    /// transaction: all or nothing. `already_exists` for a live connection with the same
    /// id, or with the same client and natural key.
    pub async fn insert_new_connection(&self, new: &NewConnection<'_>) -> Result<ConnectionRow> {
        let team = self.inner.team.as_str();
        let sealed = self.inner.key.seal(
            &Scope::TokenSet {
                team,
                connection: new.id,
                generation: new.generation,
            },
            new.token_set,
        )?;
        let child = match new.child_secret {
            Some(secret) => Some(self.inner.key.seal(
                &Scope::ChildSecret {
                    team,
                    connection: new.id,
                },
                secret,
            )?),
            None => None,
        };
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        lock_team(&tx, team, &self.inner.key).await?;
        // The foreign key accepts a removed client's tombstone: refuse that here.
        let live_client = tx
            .query_opt(
                "SELECT 1 FROM authdeck.clients WHERE team_id = $1::text::uuid AND id = $2 AND NOT deleted",
                &[&team, &new.client_id],
            )
            .await
            .map_err(db_error)?;
        if live_client.is_none() {
            return Err(Error::not_found("No such client in this team."));
        }
        let sql = format!(
            "INSERT INTO authdeck.connections (team_id, id, client_id, record, generation, natural_key, created_on, updated_on)
             VALUES ($1::text::uuid, $2, $3, $4, $5, $6, $7, $7) RETURNING {CONNECTION_COLUMNS}"
        );
        let row = tx
            .query_one(
                &sql,
                &[
                    &team,
                    &new.id,
                    &new.client_id,
                    new.record,
                    &new.generation,
                    &new.natural_key,
                    &self.inner.machine,
                ],
            )
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    let by_key = e
                        .as_db_error()
                        .and_then(|d| d.constraint())
                        .is_some_and(|c| c == "connections_natural_key");
                    Error::new(
                        ErrorCode::AlreadyExists,
                        if by_key {
                            "This business / account is connected already (maybe from another desktop): reconnect it instead."
                        } else {
                            "A connection with this id exists already."
                        },
                    )
                } else if e.code() == Some(&tokio_postgres::error::SqlState::FOREIGN_KEY_VIOLATION)
                {
                    Error::not_found("No such client in this team.")
                } else {
                    db_error(e)
                }
            })?;
        tx.execute(
            "INSERT INTO authdeck.token_sets (team_id, connection_id, generation, sealed) VALUES ($1::text::uuid, $2, $3, $4)",
            &[&team, &new.id, &new.generation, &sealed],
        )
        .await
        .map_err(db_error)?;
        if let Some(child) = &child {
            tx.execute(
                "INSERT INTO authdeck.child_secrets (team_id, connection_id, sealed) VALUES ($1::text::uuid, $2, $3)",
                &[&team, &new.id, child],
            )
            .await
            .map_err(db_error)?;
        }
        if let Some(h) = &new.history {
            self.history_in(&tx, h).await?;
        }
        tx.commit().await.map_err(db_error)?;
        Ok(connection_row(&row))
    }

    pub async fn connection(&self, id: &str) -> Result<Option<ConnectionRow>> {
        let c = self.client().await?;
        let sql = format!(
            "SELECT {CONNECTION_COLUMNS} FROM authdeck.connections WHERE team_id = $1::text::uuid AND id = $2 AND NOT deleted"
        );
        let row = c
            .query_opt(&sql, &[&self.inner.team, &id])
            .await
            .map_err(db_error)?;
        Ok(row.as_ref().map(connection_row))
    }

    pub async fn connections(&self) -> Result<Vec<ConnectionRow>> {
        let c = self.client().await?;
        let sql = format!(
            "SELECT {CONNECTION_COLUMNS} FROM authdeck.connections WHERE team_id = $1::text::uuid AND NOT deleted ORDER BY id"
        );
        let rows = c.query(&sql, &[&self.inner.team]).await.map_err(db_error)?;
        Ok(rows.iter().map(connection_row).collect())
    }

    /// The current token set and its generation, opened.
    pub async fn token_set(&self, id: &str) -> Result<Option<(i64, Zeroizing<Vec<u8>>)>> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                "SELECT c.generation, t.sealed FROM authdeck.connections c
                   JOIN authdeck.token_sets t
                     ON t.team_id = c.team_id AND t.connection_id = c.id AND t.generation = c.generation
                  WHERE c.team_id = $1::text::uuid AND c.id = $2 AND NOT c.deleted",
                &[&self.inner.team, &id],
            )
            .await
            .map_err(db_error)?;
        let Some(row) = row else { return Ok(None) };
        let generation: i64 = row.get(0);
        let sealed: Vec<u8> = row.get(1);
        let plain = self.open_token_set(id, generation, &sealed)?;
        Ok(Some((generation, plain)))
    }

    pub(crate) fn open_token_set(
        &self,
        id: &str,
        generation: i64,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        self.inner.key.open(
            &Scope::TokenSet {
                team: &self.inner.team,
                connection: id,
                generation,
            },
            sealed,
        )
    }

    /// Change a connection's non-secret record (label, status, last error…) without
    /// touching its generation or token set.
    pub async fn update_record(&self, id: &str, record: &Value) -> Result<i64> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        lock_team(&tx, &self.inner.team, &self.inner.key).await?;
        let row = tx
            .query_opt(
                "UPDATE authdeck.connections SET record = $3, updated_on = $4
                  WHERE team_id = $1::text::uuid AND id = $2 AND NOT deleted RETURNING version",
                &[&self.inner.team, &id, record, &self.inner.machine],
            )
            .await
            .map_err(db_error)?
            .ok_or_else(|| Error::not_found("No such connection."))?;
        tx.commit().await.map_err(db_error)?;
        Ok(row.get(0))
    }

    /// Commit a new token set: one transaction, compare and swap on the generation.
    ///
    /// An `Err` with code `team_unavailable` from the COMMIT itself leaves the outcome
    /// unknown (the server may have committed before the session broke): re-read the
    /// connection; generation `expected + 1` means this commit landed (only the lock
    /// holder commits).
    pub async fn commit(&self, req: &CommitRequest<'_>) -> Result<CommitOutcome> {
        let next = req.expected_generation + 1;
        let sealed = self.inner.key.seal(
            &Scope::TokenSet {
                team: &self.inner.team,
                connection: req.connection_id,
                generation: next,
            },
            req.token_set,
        )?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        lock_team(&tx, &self.inner.team, &self.inner.key).await?;
        let won = tx
            .query_opt(
                "UPDATE authdeck.connections
                    SET generation = $4, record = $5, updated_on = $6,
                        last_refresh_at = CASE WHEN $7 THEN now() ELSE last_refresh_at END,
                        last_refresh_by = CASE WHEN $7 THEN current_user ELSE last_refresh_by END,
                        last_refresh_on = CASE WHEN $7 THEN $6 ELSE last_refresh_on END
                  WHERE team_id = $1::text::uuid AND id = $2 AND generation = $3 AND NOT deleted
                  RETURNING version",
                &[
                    &self.inner.team,
                    &req.connection_id,
                    &req.expected_generation,
                    &next,
                    req.record,
                    &self.inner.machine,
                    &req.refreshed,
                ],
            )
            .await
            .map_err(db_error)?;
        let Some(won) = won else {
            let current = tx
                .query_opt(
                    "SELECT generation FROM authdeck.connections WHERE team_id = $1::text::uuid AND id = $2 AND NOT deleted",
                    &[&self.inner.team, &req.connection_id],
                )
                .await
                .map_err(db_error)?
                .map(|r| r.get(0));
            tx.rollback().await.map_err(db_error)?;
            return Ok(CommitOutcome::Lost { current });
        };
        tx.execute(
            "DELETE FROM authdeck.token_sets WHERE team_id = $1::text::uuid AND connection_id = $2",
            &[&self.inner.team, &req.connection_id],
        )
        .await
        .map_err(db_error)?;
        tx.execute(
            "INSERT INTO authdeck.token_sets (team_id, connection_id, generation, sealed) VALUES ($1::text::uuid, $2, $3, $4)",
            &[&self.inner.team, &req.connection_id, &next, &sealed],
        )
        .await
        .map_err(db_error)?;
        if let Some(h) = &req.history {
            self.history_in(&tx, h).await?;
        }
        tx.commit().await.map_err(db_error)?;
        Ok(CommitOutcome::Won {
            generation: next,
            version: won.get(0),
        })
    }

    /// Many commits in one transaction (a batch refresh): one outcome per request, in
    /// order, each exactly what [`TeamStore::commit`] would have done on its own (a
    /// request for a connection an earlier one of the batch switched loses). One
    /// statement per request, pipelined: a batch costs about one round trip and one
    /// commit, not one per connection. Each request's `line` (if any) is recorded in the
    /// same transaction iff it won. An `Err` means nothing of the batch was written (or,
    /// `team_unavailable` from the COMMIT, that the outcome is unknown: re-read).
    pub async fn commit_many(
        &self,
        batch: &[(CommitRequest<'_>, Option<HistoryLine<'_>>)],
    ) -> Result<Vec<CommitOutcome>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let reqs: Vec<&CommitRequest<'_>> = batch.iter().map(|(req, _)| req).collect();
        let team = self.inner.team.as_str();
        let sealed = reqs
            .iter()
            .map(|req| {
                self.inner.key.seal(
                    &Scope::TokenSet {
                        team,
                        connection: req.connection_id,
                        generation: req.expected_generation + 1,
                    },
                    req.token_set,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        lock_team(&tx, team, &self.inner.key).await?;
        // The compare-and-swap, the old token set out and the new one in, as one
        // statement (the old and the new row differ in generation, so both fit).
        let statement = tx
            .prepare(
                "WITH won AS (
                     UPDATE authdeck.connections
                        SET generation = $4, record = $5, updated_on = $6,
                            last_refresh_at = CASE WHEN $7 THEN now() ELSE last_refresh_at END,
                            last_refresh_by = CASE WHEN $7 THEN current_user ELSE last_refresh_by END,
                            last_refresh_on = CASE WHEN $7 THEN $6 ELSE last_refresh_on END
                      WHERE team_id = $1::text::uuid AND id = $2 AND generation = $3 AND NOT deleted
                      RETURNING version),
                 gone AS (
                     DELETE FROM authdeck.token_sets
                      WHERE team_id = $1::text::uuid AND connection_id = $2 AND EXISTS (SELECT 1 FROM won)),
                 put AS (
                     INSERT INTO authdeck.token_sets (team_id, connection_id, generation, sealed)
                     SELECT $1::text::uuid, $2, $4, $8 FROM won)
                 SELECT version FROM won",
            )
            .await
            .map_err(db_error)?;
        let nexts: Vec<i64> = reqs.iter().map(|r| r.expected_generation + 1).collect();
        type Param<'p> = &'p (dyn tokio_postgres::types::ToSql + Sync);
        let params: Vec<[Param<'_>; 8]> = reqs
            .iter()
            .zip(&sealed)
            .zip(&nexts)
            .map(|((req, sealed), next)| {
                [
                    &team as Param<'_>,
                    &req.connection_id,
                    &req.expected_generation,
                    next,
                    req.record,
                    &self.inner.machine,
                    &req.refreshed,
                    sealed,
                ]
            })
            .collect();
        let pipelined = params.iter().map(|p| tx.query_opt(&statement, p));
        let rows = futures_util::future::try_join_all(pipelined)
            .await
            .map_err(db_error)?;
        let mut outcomes = Vec::with_capacity(reqs.len());
        for (((req, line), row), next) in batch.iter().zip(&rows).zip(&nexts) {
            outcomes.push(match row {
                Some(row) => {
                    if let Some(h) = &req.history {
                        self.history_in(&tx, h).await?;
                    }
                    if let Some(line) = line {
                        self.line_in(&tx, line, None).await?;
                    }
                    CommitOutcome::Won {
                        generation: *next,
                        version: row.get(0),
                    }
                }
                None => {
                    let current = tx
                        .query_opt(
                            "SELECT generation FROM authdeck.connections WHERE team_id = $1::text::uuid AND id = $2 AND NOT deleted",
                            &[&team, &req.connection_id],
                        )
                        .await
                        .map_err(db_error)?
                        .map(|r| r.get(0));
                    CommitOutcome::Lost { current }
                }
            });
        }
        tx.commit().await.map_err(db_error)?;
        Ok(outcomes)
    }

    /// Remove a connection (logout): its token set and child secret go, the row stays as a tombstone
    /// with a new version so every desktop's feed sees it.
    pub async fn remove_connection(
        &self,
        id: &str,
        history: Option<HistoryEvent<'_>>,
    ) -> Result<i64> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        lock_team(&tx, &self.inner.team, &self.inner.key).await?;
        let row = tx
            .query_opt(
                "UPDATE authdeck.connections SET deleted = true, updated_on = $3
                  WHERE team_id = $1::text::uuid AND id = $2 AND NOT deleted RETURNING version",
                &[&self.inner.team, &id, &self.inner.machine],
            )
            .await
            .map_err(db_error)?
            .ok_or_else(|| Error::not_found("No such connection."))?;
        tx.execute(
            "DELETE FROM authdeck.token_sets WHERE team_id = $1::text::uuid AND connection_id = $2",
            &[&self.inner.team, &id],
        )
        .await
        .map_err(db_error)?;
        tx.execute(
            "DELETE FROM authdeck.child_secrets WHERE team_id = $1::text::uuid AND connection_id = $2",
            &[&self.inner.team, &id],
        )
        .await
        .map_err(db_error)?;
        if let Some(h) = history {
            self.history_in(&tx, &h).await?;
        }
        tx.commit().await.map_err(db_error)?;
        Ok(row.get(0))
    }

    // ---- history ------------------------------------------------------------------

    pub async fn record_history(&self, h: &HistoryEvent<'_>) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        self.history_in(&tx, h).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(())
    }

    /// Newest first; one connection's, or the whole team's.
    pub async fn history(
        &self,
        connection_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<HistoryRow>> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT id, connection_id, client_id, at, event, outcome, detail, member, machine, via, count
                   FROM authdeck.history
                  WHERE team_id = $1::text::uuid AND ($2::text IS NULL OR connection_id = $2)
                  ORDER BY id DESC LIMIT $3",
                &[&self.inner.team, &connection_id, &limit],
            )
            .await
            .map_err(db_error)?;
        Ok(rows
            .iter()
            .map(|r| HistoryRow {
                id: r.get(0),
                connection_id: r.get(1),
                client_id: r.get(2),
                at: r.get(3),
                event: r.get(4),
                outcome: r.get(5),
                detail: r.get(6),
                member: r.get(7),
                machine: r.get(8),
                via: r.get(9),
                count: r.get(10),
            })
            .collect())
    }

    // ---- pending authorizations ----------------------------------------------------

    /// Store a pending authorization (`secret`: the PKCE verifier etc., sealed here).
    pub async fn put_pending(
        &self,
        id: &str,
        client_id: &str,
        record: &Value,
        secret: &[u8],
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        let sealed = self.inner.key.seal(
            &Scope::Pending {
                team: &self.inner.team,
                pending: id,
            },
            secret,
        )?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        lock_team(&tx, &self.inner.team, &self.inner.key).await?;
        tx.execute(
            "INSERT INTO authdeck.pending_authorizations (team_id, id, client_id, record, sealed, expires_at, machine)
             VALUES ($1::text::uuid, $2, $3, $4, $5, $6, $7)",
            &[&self.inner.team, &id, &client_id, record, &sealed, &expires_at, &self.inner.machine],
        )
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                Error::new(ErrorCode::AlreadyExists, "A pending authorization with this id exists already.")
            } else {
                db_error(e)
            }
        })?;
        tx.commit().await.map_err(db_error)?;
        Ok(())
    }

    /// Take a pending authorization: delete and return it in one statement, so one
    /// callback consumes it exactly once, whichever desktop it reaches. Expired ones are
    /// not returned.
    pub async fn take_pending(&self, id: &str) -> Result<Option<(PendingRow, Zeroizing<Vec<u8>>)>> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                "DELETE FROM authdeck.pending_authorizations
                  WHERE team_id = $1::text::uuid AND id = $2
                  RETURNING id, client_id, record, expires_at, created_by, machine, consumed_at, outcome, sealed, expires_at > now()",
                &[&self.inner.team, &id],
            )
            .await
            .map_err(db_error)?;
        let Some(r) = row else { return Ok(None) };
        if !r.get::<_, bool>(9) {
            return Ok(None);
        }
        // Since schema 2 the secret is optional (a pending authorization without PKCE).
        let secret = match r.get::<_, Option<Vec<u8>>>(8) {
            Some(sealed) => self.inner.key.open(
                &Scope::Pending {
                    team: &self.inner.team,
                    pending: id,
                },
                &sealed,
            )?,
            None => Zeroizing::new(Vec::new()),
        };
        Ok(Some((pending_row(&r), secret)))
    }

    /// The pending authorizations not yet expired (without their secrets).
    pub async fn pending(&self) -> Result<Vec<PendingRow>> {
        let c = self.client().await?;
        let rows = c
            .query(
                &format!(
                    "SELECT {PENDING_COLUMNS} FROM authdeck.pending_authorizations
                  WHERE team_id = $1::text::uuid AND expires_at > now() ORDER BY created_at"
                ),
                &[&self.inner.team],
            )
            .await
            .map_err(db_error)?;
        Ok(rows.iter().map(pending_row).collect())
    }

    /// Delete expired pending authorizations; how many.
    pub async fn purge_expired_pending(&self) -> Result<u64> {
        let c = self.client().await?;
        c.execute(
            "DELETE FROM authdeck.pending_authorizations WHERE team_id = $1::text::uuid AND expires_at <= now()",
            &[&self.inner.team],
        )
        .await
        .map_err(db_error)
    }

    // ---- key rotation ---------------------------------------------------------------

    /// `team rotate-key`: a new team key (next epoch); every sealed secret of the team
    /// (client secrets, token sets, child secrets, pending authorizations) is opened with the old key and
    /// sealed with the new one, and the key check value replaced, in one transaction.
    /// After the commit the old key opens nothing and writes nothing (writers check the
    /// epoch under the team row lock). Returns the store on the new key and its join key.
    pub async fn rotate_key(&self) -> Result<(TeamStore, JoinKey)> {
        let team = self.inner.team.as_str();
        let old = &self.inner.key;
        let new = TeamKey::generate(old.epoch() + 1)?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        lock_team(&tx, team, old).await?;
        let clients = tx
            .query(
                "SELECT id, secret FROM authdeck.clients WHERE team_id = $1::text::uuid AND secret IS NOT NULL",
                &[&team],
            )
            .await
            .map_err(db_error)?;
        for r in &clients {
            let id: String = r.get(0);
            let sealed: Vec<u8> = r.get(1);
            let scope = Scope::ClientSecret { team, client: &id };
            let resealed = new.seal(&scope, &old.open(&scope, &sealed)?)?;
            tx.execute(
                "UPDATE authdeck.clients SET secret = $3 WHERE team_id = $1::text::uuid AND id = $2",
                &[&team, &id, &resealed],
            )
            .await
            .map_err(db_error)?;
        }
        let sets = tx
            .query(
                "SELECT connection_id, generation, sealed FROM authdeck.token_sets WHERE team_id = $1::text::uuid",
                &[&team],
            )
            .await
            .map_err(db_error)?;
        for r in &sets {
            let id: String = r.get(0);
            let generation: i64 = r.get(1);
            let sealed: Vec<u8> = r.get(2);
            let scope = Scope::TokenSet {
                team,
                connection: &id,
                generation,
            };
            let resealed = new.seal(&scope, &old.open(&scope, &sealed)?)?;
            tx.execute(
                "UPDATE authdeck.token_sets SET sealed = $4
                  WHERE team_id = $1::text::uuid AND connection_id = $2 AND generation = $3",
                &[&team, &id, &generation, &resealed],
            )
            .await
            .map_err(db_error)?;
        }
        let pending = tx
            .query(
                "SELECT id, sealed FROM authdeck.pending_authorizations WHERE team_id = $1::text::uuid AND sealed IS NOT NULL",
                &[&team],
            )
            .await
            .map_err(db_error)?;
        for r in &pending {
            let id: String = r.get(0);
            let sealed: Vec<u8> = r.get(1);
            let scope = Scope::Pending { team, pending: &id };
            let resealed = new.seal(&scope, &old.open(&scope, &sealed)?)?;
            tx.execute(
                "UPDATE authdeck.pending_authorizations SET sealed = $3 WHERE team_id = $1::text::uuid AND id = $2",
                &[&team, &id, &resealed],
            )
            .await
            .map_err(db_error)?;
        }
        let children = tx
            .query(
                "SELECT connection_id, sealed FROM authdeck.child_secrets WHERE team_id = $1::text::uuid",
                &[&team],
            )
            .await
            .map_err(db_error)?;
        for r in &children {
            let id: String = r.get(0);
            let sealed: Vec<u8> = r.get(1);
            let scope = Scope::ChildSecret {
                team,
                connection: &id,
            };
            let resealed = new.seal(&scope, &old.open(&scope, &sealed)?)?;
            tx.execute(
                "UPDATE authdeck.child_secrets SET sealed = $3 WHERE team_id = $1::text::uuid AND connection_id = $2",
                &[&team, &id, &resealed],
            )
            .await
            .map_err(db_error)?;
        }
        let check = new.check_value(team)?;
        tx.execute(
            "UPDATE authdeck.teams SET key_epoch = $2, key_check = $3 WHERE id = $1::text::uuid",
            &[&team, &(new.epoch() as i32), &check],
        )
        .await
        .map_err(db_error)?;
        tx.execute(
            "INSERT INTO authdeck.history (team_id, event, outcome, detail, machine, via)
             VALUES ($1::text::uuid, 'rotate_key', 'ok', $2, $3, $4)",
            &[
                &team,
                &format!("key epoch {}", new.epoch()),
                &self.inner.machine,
                &self.inner.via.as_str(),
            ],
        )
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        let join = JoinKey::encode(team, &new)?;
        let store = TeamStore::open(
            &self.inner.db,
            team,
            new,
            &self.inner.machine,
            self.inner.via,
        )
        .await?;
        Ok((store, join))
    }

    // ---- members and changes ----------------------------------------------------------

    /// Note this member + machine as seen now (`team status`).
    pub async fn seen(&self, app_version: &str) -> Result<()> {
        let c = self.client().await?;
        let kind = match self.inner.via {
            Via::Agent => "agent",
            Via::Desktop | Via::Cli => "desktop",
        };
        c.execute(
            "INSERT INTO authdeck.members_seen (team_id, machine, kind, app_version) VALUES ($1::text::uuid, $2, $3, $4)
             ON CONFLICT (team_id, member, machine, kind) DO UPDATE SET last_seen = now(), app_version = EXCLUDED.app_version",
            &[&self.inner.team, &self.inner.machine, &kind, &app_version],
        )
        .await
        .map_err(db_error)?;
        Ok(())
    }

    pub async fn members(&self) -> Result<Vec<MemberRow>> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT member, machine, kind, app_version, first_seen, last_seen FROM authdeck.members_seen
                  WHERE team_id = $1::text::uuid ORDER BY last_seen DESC",
                &[&self.inner.team],
            )
            .await
            .map_err(db_error)?;
        Ok(rows
            .iter()
            .map(|r| MemberRow {
                member: r.get(0),
                machine: r.get(1),
                kind: r.get(2),
                app_version: r.get(3),
                first_seen: r.get(4),
                last_seen: r.get(5),
            })
            .collect())
    }

    /// The team's last change version.
    pub async fn current_version(&self) -> Result<i64> {
        let c = self.client().await?;
        let row = c
            .query_one(
                "SELECT version FROM authdeck.teams WHERE id = $1::text::uuid",
                &[&self.inner.team],
            )
            .await
            .map_err(db_error)?;
        Ok(row.get(0))
    }

    /// Every client and connection changed after `version` (tombstones included), in
    /// version order.
    pub async fn changes_since(&self, version: i64) -> Result<Vec<crate::Change>> {
        let c = self.client().await?;
        changes_since(&c, &self.inner.team, version).await
    }
}

/// Advisory-lock namespace of coalesced history lines (first key of the two-key form).
const HISTORY_NS: i32 = 0x4144_0003;

/// What the core's storage seam needs beyond the rows above (see `crate::backend`).
impl TeamStore {
    /// The team's name (the window's header).
    pub async fn team_name(&self) -> Result<String> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                "SELECT name FROM authdeck.teams WHERE id = $1::text::uuid",
                &[&self.inner.team],
            )
            .await
            .map_err(db_error)?
            .ok_or_else(|| Error::not_found("This team no longer exists in the team database."))?;
        Ok(row.get(0))
    }

    // ---- clients ------------------------------------------------------------------

    /// A new client with its secret (sealed here), together. `already_exists` when a live
    /// client has this id or this name (`record.name`); a tombstone of the id is revived.
    pub async fn insert_client(
        &self,
        id: &str,
        record: &Value,
        secret: Option<&[u8]>,
    ) -> Result<i64> {
        let sealed = match secret {
            Some(s) => Some(self.inner.key.seal(
                &Scope::ClientSecret {
                    team: &self.inner.team,
                    client: id,
                },
                s,
            )?),
            None => None,
        };
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        lock_team(&tx, &self.inner.team, &self.inner.key).await?;
        let taken = || {
            Error::new(
                ErrorCode::AlreadyExists,
                "A client with this name exists already in the team: pick another name.",
            )
        };
        let row = tx
            .query_opt(
                "INSERT INTO authdeck.clients (team_id, id, record, secret) VALUES ($1::text::uuid, $2, $3, $4)
                 ON CONFLICT (team_id, id) DO UPDATE SET record = EXCLUDED.record, secret = EXCLUDED.secret, deleted = false
                    WHERE authdeck.clients.deleted
                 RETURNING version",
                &[&self.inner.team, &id, record, &sealed],
            )
            .await
            .map_err(|e| if is_unique_violation(&e) { taken() } else { db_error(e) })?
            .ok_or_else(taken)?;
        tx.commit().await.map_err(db_error)?;
        Ok(row.get(0))
    }

    /// New settings of a live client with this id and name (`record.name`); its secret
    /// unchanged. `not_found` when there is none.
    pub async fn update_client_record(&self, id: &str, name: &str, record: &Value) -> Result<i64> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        lock_team(&tx, &self.inner.team, &self.inner.key).await?;
        let row = tx
            .query_opt(
                "UPDATE authdeck.clients SET record = $3
                  WHERE team_id = $1::text::uuid AND id = $2 AND NOT deleted AND record->>'name' = $4
                  RETURNING version",
                &[&self.inner.team, &id, record, &name],
            )
            .await
            .map_err(db_error)?
            .ok_or_else(|| Error::not_found(format!("No client named {name:?} in the team.")))?;
        tx.commit().await.map_err(db_error)?;
        Ok(row.get(0))
    }

    /// A live client by id, else by name (`record.name`).
    pub async fn find_client(&self, reference: &str) -> Result<Option<ClientRow>> {
        let c = self.client().await?;
        let sql = format!(
            "SELECT {CLIENT_COLUMNS} FROM authdeck.clients
              WHERE team_id = $1::text::uuid AND NOT deleted AND (id = $2 OR record->>'name' = $2)
              ORDER BY (id = $2) DESC LIMIT 1"
        );
        let row = c
            .query_opt(&sql, &[&self.inner.team, &reference])
            .await
            .map_err(db_error)?;
        Ok(row.as_ref().map(client_row))
    }

    // ---- connections --------------------------------------------------------------

    /// The live connections a person may mean by `reference`: the one with this id; else
    /// those with this label, user label or company name; else (4 characters or more)
    /// those whose id starts with it.
    pub async fn find_connections(&self, reference: &str) -> Result<Vec<ConnectionRow>> {
        let c = self.client().await?;
        let team = &self.inner.team;
        let base = format!(
            "SELECT {CONNECTION_COLUMNS} FROM authdeck.connections WHERE team_id = $1::text::uuid AND NOT deleted"
        );
        let exact = c
            .query(&format!("{base} AND id = $2"), &[team, &reference])
            .await
            .map_err(db_error)?;
        if !exact.is_empty() {
            return Ok(exact.iter().map(connection_row).collect());
        }
        let by_label = c
            .query(
                &format!(
                    "{base} AND (record->>'label' = $2 OR record->>'user_label' = $2
                              OR record #>> '{{company,name}}' = $2) ORDER BY id"
                ),
                &[team, &reference],
            )
            .await
            .map_err(db_error)?;
        if !by_label.is_empty() || reference.chars().count() < 4 {
            return Ok(by_label.iter().map(connection_row).collect());
        }
        let by_prefix = c
            .query(
                &format!("{base} AND left(id, length($2)) = $2 ORDER BY id"),
                &[team, &reference],
            )
            .await
            .map_err(db_error)?;
        Ok(by_prefix.iter().map(connection_row).collect())
    }

    /// The live connection of a client with this natural key.
    pub async fn connection_by_natural_key(
        &self,
        client_id: &str,
        natural_key: &str,
    ) -> Result<Option<ConnectionRow>> {
        let c = self.client().await?;
        let sql = format!(
            "SELECT {CONNECTION_COLUMNS} FROM authdeck.connections
              WHERE team_id = $1::text::uuid AND client_id = $2 AND natural_key = $3 AND NOT deleted"
        );
        let row = c
            .query_opt(&sql, &[&self.inner.team, &client_id, &natural_key])
            .await
            .map_err(db_error)?;
        Ok(row.as_ref().map(connection_row))
    }

    /// How many live connections use a client.
    pub async fn connection_count_for_client(&self, client_id: &str) -> Result<i64> {
        let c = self.client().await?;
        let row = c
            .query_one(
                "SELECT count(*) FROM authdeck.connections WHERE team_id = $1::text::uuid AND client_id = $2 AND NOT deleted",
                &[&self.inner.team, &client_id],
            )
            .await
            .map_err(db_error)?;
        Ok(row.get(0))
    }

    /// Change a connection's record only if its generation is still `generation`
    /// (compare and swap; the token set untouched). `false`: superseded or removed,
    /// nothing written.
    pub async fn update_record_if(
        &self,
        id: &str,
        generation: i64,
        record: &Value,
    ) -> Result<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        lock_team(&tx, &self.inner.team, &self.inner.key).await?;
        let n = tx
            .execute(
                "UPDATE authdeck.connections SET record = $4, updated_on = $5
                  WHERE team_id = $1::text::uuid AND id = $2 AND generation = $3 AND NOT deleted",
                &[
                    &self.inner.team,
                    &id,
                    &generation,
                    record,
                    &self.inner.machine,
                ],
            )
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(n == 1)
    }

    /// Store (or replace) a live connection's FedEx child secret, sealed.
    pub async fn set_child_secret(&self, connection_id: &str, secret: &[u8]) -> Result<()> {
        let sealed = self.inner.key.seal(
            &Scope::ChildSecret {
                team: &self.inner.team,
                connection: connection_id,
            },
            secret,
        )?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        lock_team(&tx, &self.inner.team, &self.inner.key).await?;
        let live = tx
            .query_opt(
                "SELECT 1 FROM authdeck.connections WHERE team_id = $1::text::uuid AND id = $2 AND NOT deleted",
                &[&self.inner.team, &connection_id],
            )
            .await
            .map_err(db_error)?;
        if live.is_none() {
            return Err(Error::not_found("No such connection."));
        }
        tx.execute(
            "INSERT INTO authdeck.child_secrets (team_id, connection_id, sealed) VALUES ($1::text::uuid, $2, $3)
             ON CONFLICT (team_id, connection_id) DO UPDATE SET sealed = EXCLUDED.sealed, updated_at = now()",
            &[&self.inner.team, &connection_id, &sealed],
        )
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(())
    }

    /// A live connection's child secret, opened.
    pub async fn child_secret(&self, connection_id: &str) -> Result<Option<Zeroizing<Vec<u8>>>> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                "SELECT s.sealed FROM authdeck.child_secrets s
                   JOIN authdeck.connections c ON c.team_id = s.team_id AND c.id = s.connection_id
                  WHERE s.team_id = $1::text::uuid AND s.connection_id = $2 AND NOT c.deleted",
                &[&self.inner.team, &connection_id],
            )
            .await
            .map_err(db_error)?;
        let Some(row) = row else { return Ok(None) };
        let sealed: Vec<u8> = row.get(0);
        self.inner
            .key
            .open(
                &Scope::ChildSecret {
                    team: &self.inner.team,
                    connection: connection_id,
                },
                &sealed,
            )
            .map(Some)
    }

    // ---- history ------------------------------------------------------------------

    /// Append a history line (member: the session's role; machine and via: this
    /// store's). With `coalesce`, count it into the line of that kind (same connection
    /// and client) whose time is in the same clock minute as `line.at`, if there is one:
    /// one transaction under a transaction advisory lock of that kind, so desktops
    /// coalescing at once count into one line.
    pub async fn add_history(&self, line: &HistoryLine<'_>, coalesce: Option<&str>) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        let count = line.count.max(1);
        if let Some(kind) = coalesce {
            let minute_ms = line.at.timestamp_millis().div_euclid(60_000) * 60_000;
            let from = DateTime::<Utc>::from_timestamp_millis(minute_ms).unwrap_or(line.at);
            let to = from + chrono::Duration::minutes(1);
            tx.execute(
                "SELECT pg_advisory_xact_lock($1, hashtext($2 || '/' || $3 || '/' || coalesce($4, '') || '/' || coalesce($5, '')))",
                &[&HISTORY_NS, &self.inner.team, &kind, &line.connection_id, &line.client_id],
            )
            .await
            .map_err(db_error)?;
            let counted = tx
                .execute(
                    "UPDATE authdeck.history SET count = least(count::bigint + $7, 2147483647)::integer WHERE id = (
                         SELECT id FROM authdeck.history
                          WHERE team_id = $1::text::uuid AND kind = $2
                            AND connection_id IS NOT DISTINCT FROM $3 AND client_id IS NOT DISTINCT FROM $4
                            AND at >= $5 AND at < $6
                          ORDER BY id DESC LIMIT 1)",
                    &[
                        &self.inner.team,
                        &kind,
                        &line.connection_id,
                        &line.client_id,
                        &from,
                        &to,
                        &i64::from(count),
                    ],
                )
                .await
                .map_err(db_error)?;
            if counted == 1 {
                tx.commit().await.map_err(db_error)?;
                return Ok(());
            }
        }
        self.line_in(&tx, line, coalesce).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(())
    }

    async fn line_in(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        line: &HistoryLine<'_>,
        coalesce: Option<&str>,
    ) -> Result<()> {
        tx.execute(
            "INSERT INTO authdeck.history (team_id, connection_id, client_id, at, event, outcome, detail, machine, via, count, kind)
             VALUES ($1::text::uuid, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            &[
                &self.inner.team,
                &line.connection_id,
                &line.client_id,
                &line.at,
                &line.event,
                &line.outcome,
                &line.detail,
                &self.inner.machine,
                &self.inner.via.as_str(),
                &line.count.max(1),
                &coalesce,
            ],
        )
        .await
        .map_err(db_error)?;
        Ok(())
    }

    /// Newest first, at most `limit`: every history line with its connection's label and
    /// provider (from its record, kept by the tombstone after a removal) and whether the
    /// connection is still there. A record without them gives `None`, not an error.
    pub async fn activity(&self, limit: i64) -> Result<Vec<ActivityRow>> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT h.at, h.event, h.outcome, h.detail, h.count, h.connection_id,
                        c.record->>'label', c.record->>'provider', coalesce(NOT c.deleted, false),
                        h.member, h.machine, h.via
                   FROM authdeck.history h
                   LEFT JOIN authdeck.connections c ON c.team_id = h.team_id AND c.id = h.connection_id
                  WHERE h.team_id = $1::text::uuid
                  ORDER BY h.id DESC LIMIT $2",
                &[&self.inner.team, &limit],
            )
            .await
            .map_err(db_error)?;
        Ok(rows
            .iter()
            .map(|r| ActivityRow {
                at: r.get(0),
                event: r.get(1),
                outcome: r.get(2),
                detail: r.get(3),
                count: r.get(4),
                connection_id: r.get(5),
                connection_label: r.get(6),
                provider: r.get(7),
                live: r.get(8),
                member: r.get(9),
                machine: r.get(10),
                via: r.get(11),
            })
            .collect())
    }

    // ---- pending authorizations ----------------------------------------------------

    /// A started authorization with its (optional) secret, sealed here; those that
    /// expired before `purge_before` go in the same transaction.
    pub async fn insert_pending(
        &self,
        id: &str,
        client_id: &str,
        record: &Value,
        secret: Option<&[u8]>,
        expires_at: DateTime<Utc>,
        purge_before: DateTime<Utc>,
    ) -> Result<()> {
        let sealed = match secret {
            Some(secret) => Some(self.inner.key.seal(
                &Scope::Pending {
                    team: &self.inner.team,
                    pending: id,
                },
                secret,
            )?),
            None => None,
        };
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        lock_team(&tx, &self.inner.team, &self.inner.key).await?;
        tx.execute(
            "DELETE FROM authdeck.pending_authorizations WHERE team_id = $1::text::uuid AND expires_at < $2",
            &[&self.inner.team, &purge_before],
        )
        .await
        .map_err(db_error)?;
        tx.execute(
            "INSERT INTO authdeck.pending_authorizations (team_id, id, client_id, record, sealed, expires_at, machine)
             VALUES ($1::text::uuid, $2, $3, $4, $5, $6, $7)",
            &[&self.inner.team, &id, &client_id, record, &sealed, &expires_at, &self.inner.machine],
        )
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                Error::new(ErrorCode::AlreadyExists, "A pending authorization with this id exists already.")
            } else {
                db_error(e)
            }
        })?;
        tx.commit().await.map_err(db_error)?;
        Ok(())
    }

    /// A pending authorization, used or not, expired or not (without its secret).
    pub async fn pending_by_id(&self, id: &str) -> Result<Option<PendingRow>> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                &format!(
                    "SELECT {PENDING_COLUMNS} FROM authdeck.pending_authorizations WHERE team_id = $1::text::uuid AND id = $2"
                ),
                &[&self.inner.team, &id],
            )
            .await
            .map_err(db_error)?;
        Ok(row.as_ref().map(pending_row))
    }

    /// Mark a pending authorization used at `now`: `true` for exactly one caller, on
    /// whichever desktop (one conditional UPDATE; a second waits for the first's row
    /// lock, then finds it used).
    pub async fn consume_pending(&self, id: &str, now: DateTime<Utc>) -> Result<bool> {
        let c = self.client().await?;
        let n = c
            .execute(
                "UPDATE authdeck.pending_authorizations SET consumed_at = $3
                  WHERE team_id = $1::text::uuid AND id = $2 AND consumed_at IS NULL",
                &[&self.inner.team, &id, &now],
            )
            .await
            .map_err(db_error)?;
        Ok(n == 1)
    }

    /// How a used pending authorization ended (`ok`, an error code, `cancelled`).
    pub async fn set_pending_outcome(&self, id: &str, outcome: &str) -> Result<()> {
        let c = self.client().await?;
        c.execute(
            "UPDATE authdeck.pending_authorizations SET outcome = $3 WHERE team_id = $1::text::uuid AND id = $2",
            &[&self.inner.team, &id, &outcome],
        )
        .await
        .map_err(db_error)?;
        Ok(())
    }

    /// A pending authorization's secret, opened and removed from the row (used once).
    /// Nothing is removed when it does not open.
    pub async fn take_pending_secret(&self, id: &str) -> Result<Option<Zeroizing<Vec<u8>>>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        let row = tx
            .query_opt(
                "SELECT sealed FROM authdeck.pending_authorizations
                  WHERE team_id = $1::text::uuid AND id = $2 AND sealed IS NOT NULL FOR UPDATE",
                &[&self.inner.team, &id],
            )
            .await
            .map_err(db_error)?;
        let Some(row) = row else { return Ok(None) };
        let sealed: Vec<u8> = row.get(0);
        let secret = self.inner.key.open(
            &Scope::Pending {
                team: &self.inner.team,
                pending: id,
            },
            &sealed,
        )?;
        tx.execute(
            "UPDATE authdeck.pending_authorizations SET sealed = NULL WHERE team_id = $1::text::uuid AND id = $2",
            &[&self.inner.team, &id],
        )
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(Some(secret))
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
