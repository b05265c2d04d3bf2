//! Session advisory locks: a connection's refresh lock ([`RefreshLock`]) and the team
//! scheduler's leadership ([`Leadership`]).
//!
//! Each is held by a session of its own (not a pooled one), so the server releases it
//! the moment that session ends: the holder's process dies (its socket closes), the
//! session is terminated, the holder stops talking (`idle_session_timeout`: a frozen or
//! cut-off holder, whose kernel may still answer TCP keepalives), or the peer is found
//! dead by TCP keepalive. That timeout is also a floor: the server does not end the
//! session sooner than that after the last statement the holder sent (short of an
//! administrator's `pg_terminate_backend` or a server restart, after which the
//! generation compare-and-swap still refuses a stale commit). A heartbeat runs a
//! statement every 0.5 s; [`RefreshLock::time_left`] is the floor minus the time since
//! the last answered heartbeat was sent, so a refresher knows it still holds the lock
//! with enough time left to commit before it calls the provider, and a leader knows when
//! to stop ([`Leadership::is_leader`]).
//!
//! A process has at most [`MAX_LOCK_SESSIONS`] refresh-lock sessions open (held or idle
//! for reuse): a permit is taken before a lock's session is opened or reused, within the
//! caller's lock wait, and kept until the lock is released (or its session is found
//! dead). Leadership sessions are not counted.
//!
//! A refresher's lock cannot cover an answer that arrives after the lock is lost (the
//! session broke during the provider call): [`RefreshLock::begin_call`] leaves a durable
//! in-flight mark for that, which keeps other refreshers from presenting the refresh
//! token such an answer replaced until it is saved (or [`CALL_MARK`] has passed).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use authdeck_core::{Error, ErrorCode, Result};
use serde_json::Value;
use tokio::sync::OwnedSemaphorePermit;

use crate::store::TeamStore;

mod leadership;
use crate::{db_error, ConnectionRow};
pub use leadership::*;

/// Advisory-lock namespaces (first key of the two-key form): "AD" + kind.
const REFRESH_NS: i32 = 0x4144_0001;
const LEADER_NS: i32 = 0x4144_0002;

/// A refresh lock's session: the server ends it after `REFRESH_FLOOR` without a
/// statement from the holder (`idle_session_timeout`, so a frozen or cut-off holder
/// loses the lock, even if its kernel still answers TCP keepalives), and no sooner. The
/// heartbeat keeps a live holder's session busy well within that.
const REFRESH_FLOOR: Duration = Duration::from_secs(5);
const REFRESH_SETTINGS: &str = "SET idle_session_timeout = 5000; SET tcp_keepalives_idle = 5; \
     SET tcp_keepalives_interval = 2; SET tcp_keepalives_count = 3; SET tcp_user_timeout = 10000; \
     SET idle_in_transaction_session_timeout = 0; SET statement_timeout = 0; \
     SET application_name = 'authdeck-refresh-lock'";
/// Leadership: a dead, frozen or cut-off leader's session ends within ~3 s, so a standby
/// leads within 10 s.
const LEADER_FLOOR: Duration = Duration::from_secs(3);
const LEADER_SETTINGS: &str = "SET idle_session_timeout = 3000; SET tcp_keepalives_idle = 3; \
     SET tcp_keepalives_interval = 1; SET tcp_keepalives_count = 2; SET tcp_user_timeout = 5000; \
     SET idle_in_transaction_session_timeout = 0; SET statement_timeout = 0; \
     SET application_name = 'authdeck-leader'";
/// What a lock session goes back to the reuse list with: idle is fine there.
const IDLE_SETTINGS: &str = "SET idle_session_timeout = 0";
const HEARTBEAT: Duration = Duration::from_millis(500);

/// At most this many refresh-lock sessions one process (one [`TeamStore`] and its
/// clones) has open at once, held or idle in the reuse list. Each held lock is a
/// PostgreSQL session of its own, and a batch refresh holds many at once (2 ×
/// `refresh_concurrency` getting ready, plus every answered one until its batch is
/// committed), which used to exhaust the server's slots ("too many clients already").
/// A process's sessions are then the pool ([`crate::store::POOL_SIZE`], 8), these 20,
/// leadership (1) and the change feed (1): 30, so three agents or CLI processes (90) fit
/// in PostgreSQL's default `max_connections` of 100 less its 3 reserved slots. A
/// refresher waits for a permit within its lock wait (`busy` when that runs out). A
/// batch cannot deadlock on it: a lock whose provider call is answered waits only for
/// its batch's commit, which goes through the pool (no permit) at the latest 40 ms after
/// the batch's first answer (`authdeck_core::manager::batch`), and then lets go.
pub const MAX_LOCK_SESSIONS: usize = 20;

/// A refresh lock's permit, shared with its heartbeat: the heartbeat lets go of it once
/// the session is found dead (the server has ended it or ends it within the floor), so a
/// lock kept by a manager after its session broke does not keep a slot.
type PermitSlot = Arc<Mutex<Option<OwnedSemaphorePermit>>>;
/// How long an in-flight mark ([`RefreshLock::begin_call`]) keeps other refreshers from
/// presenting the refresh token its call may have replaced, when its owner never comes
/// back to save the answer (or to say there is none). Minutes, not seconds: the outages
/// that leave an answer unsaved (a cut link, a server restart, a failover to a standby)
/// measured 1–25 s, and a machine may need a while longer to reach the store again; a
/// FlowAccount refresh token lives a day after the last token request, so waiting costs
/// nothing there. Not much longer either: access tokens live an hour (FlowAccount, FedEx)
/// and the scheduler refreshes 5 minutes (± 1) before they expire, so a mark whose owner
/// is gone for good ends about when the old access token does, and the next refresh
/// elsewhere gets a new one. The mark's end is the server's clock (`now()`), not a
/// machine's.
pub const CALL_MARK: Duration = Duration::from_secs(5 * 60);

/// A session that holds one advisory lock, with a heartbeat.
struct Held {
    client: Arc<tokio_postgres::Client>,
    keys: (i32, i32),
    floor: Duration,
    confirmed: Arc<Mutex<Instant>>,
    dead: Arc<AtomicBool>,
    heartbeat: tokio::task::JoinHandle<()>,
    backend_pid: i32,
    permit: PermitSlot,
}

impl Held {
    fn start(
        client: Arc<tokio_postgres::Client>,
        keys: (i32, i32),
        floor: Duration,
        sent: Instant,
        pid: i32,
        permit: Option<OwnedSemaphorePermit>,
    ) -> Self {
        let confirmed = Arc::new(Mutex::new(sent));
        let dead = Arc::new(AtomicBool::new(false));
        let permit: PermitSlot = Arc::new(Mutex::new(permit));
        let heartbeat = {
            let client = client.clone();
            let confirmed = confirmed.clone();
            let dead = dead.clone();
            let permit = permit.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(HEARTBEAT).await;
                    let sent = Instant::now();
                    match tokio::time::timeout(floor, client.simple_query("SELECT 1")).await {
                        Ok(Ok(_)) => {
                            if let Ok(mut c) = confirmed.lock() {
                                *c = sent;
                            }
                        }
                        _ => {
                            dead.store(true, Ordering::SeqCst);
                            if let Ok(mut p) = permit.lock() {
                                p.take();
                            }
                            return;
                        }
                    }
                }
            })
        };
        Self {
            client,
            keys,
            floor,
            confirmed,
            dead,
            heartbeat,
            backend_pid: pid,
            permit,
        }
    }

    /// A statement sent at `sent` was answered: the server's idle clock restarted no
    /// sooner than that. (After a long wait for the lock, the lock statement's own send
    /// time would leave almost no floor.)
    fn answered(&self, sent: Instant) {
        if let Ok(mut c) = self.confirmed.lock() {
            if sent > *c {
                *c = sent;
            }
        }
    }

    fn time_left(&self) -> Duration {
        if self.dead.load(Ordering::SeqCst) || self.client.is_closed() {
            return Duration::ZERO;
        }
        let since = self
            .confirmed
            .lock()
            .map(|c| c.elapsed())
            .unwrap_or(self.floor);
        self.floor.saturating_sub(since)
    }

    /// A round trip that checks the server still shows this session holding the lock.
    async fn confirm(&self) -> Result<Duration> {
        let sent = Instant::now();
        let row = tokio::time::timeout(
            self.floor,
            self.client.query_one(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()
                   AND classid = $1::int4::oid AND objid = $2::int4::oid AND objsubid = 2 AND granted",
                &[&self.keys.0, &self.keys.1],
            ),
        )
        .await
        .map_err(|_| lost_lock())?
        .map_err(|_| lost_lock())?;
        if row.get::<_, i64>(0) != 1 {
            self.dead.store(true, Ordering::SeqCst);
            return Err(lost_lock());
        }
        if let Ok(mut c) = self.confirmed.lock() {
            *c = sent;
        }
        Ok(self.time_left())
    }

    /// Let go of the lock: the session if it can be reused, and the permit (to drop once
    /// the session is back in the reuse list, so the count never overshoots).
    async fn release(
        self,
    ) -> (
        Option<Arc<tokio_postgres::Client>>,
        Option<OwnedSemaphorePermit>,
    ) {
        self.heartbeat.abort();
        let permit = self.permit.lock().ok().and_then(|mut p| p.take());
        let unlocked = self
            .client
            .query_one(
                "SELECT pg_advisory_unlock($1, $2)",
                &[&self.keys.0, &self.keys.1],
            )
            .await
            .map(|r| r.get::<_, bool>(0))
            .unwrap_or(false);
        let reset = self.client.batch_execute(IDLE_SETTINGS).await.is_ok();
        let client = (unlocked && reset && !self.client.is_closed()).then(|| self.client.clone());
        (client, permit)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        // Dropped without release: the heartbeat stops and the session closes with the
        // last Arc, which releases the lock on the server.
        self.heartbeat.abort();
    }
}

fn lost_lock() -> Error {
    Error::new(
        ErrorCode::TeamUnavailable,
        "The lock on the team database was lost (the session broke): nothing was changed; try again.",
    )
}

/// Another store's in-flight mark on the generation a refresh would spend.
fn in_flight_elsewhere(machine: &str, until: chrono::DateTime<chrono::Utc>) -> Error {
    let machine: String = machine
        .chars()
        .filter(|c| !c.is_control())
        .take(64)
        .collect();
    Error::new(
        ErrorCode::Busy,
        format!(
            "A refresh on {machine} may have got new tokens that are not saved yet (it lost the team store during the provider call); they are saved when that machine reaches the team store again. Until {} UTC at the latest this connection is not refreshed elsewhere, so that the refresh token they replaced is not presented twice. Nothing was sent.",
            until.format("%H:%M")
        ),
    )
    .with_detail(format!("{IN_FLIGHT_DETAIL}{machine} until {}", until.to_rfc3339()))
}

/// Whether `e` is [`RefreshLock::begin_call`]'s refusal for another store's mark (not a
/// lost lock).
pub fn is_in_flight_elsewhere(e: &Error) -> bool {
    e.code == ErrorCode::Busy
        && e.detail
            .as_deref()
            .is_some_and(|d| d.starts_with(IN_FLIGHT_DETAIL))
}

const IN_FLIGHT_DETAIL: &str = "in-flight mark of ";

async fn lock_session(
    store: &TeamStore,
    settings: &str,
) -> Result<(Arc<tokio_postgres::Client>, i32)> {
    let reuse = {
        let mut idle = store.inner.lock_sessions.lock().await;
        let mut found = None;
        while let Some(c) = idle.pop() {
            if !c.is_closed() {
                found = Some(c);
                break;
            }
        }
        found
    };
    let client = match reuse {
        Some(c) if c.batch_execute(settings).await.is_ok() => c,
        _ => {
            let c = Arc::new(store.db().connect().await?);
            c.batch_execute(settings).await.map_err(db_error)?;
            c
        }
    };
    let pid: i32 = client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .map_err(db_error)?
        .get(0);
    Ok((client, pid))
}

/// Take `keys` on `client`, waiting at most `wait` (the server wakes the waiter as soon
/// as the holder lets go). `Ok(false)` when the wait ran out.
async fn take(client: &tokio_postgres::Client, keys: (i32, i32), wait: Duration) -> Result<bool> {
    if wait.is_zero() {
        let row = client
            .query_one("SELECT pg_try_advisory_lock($1, $2)", &[&keys.0, &keys.1])
            .await
            .map_err(db_error)?;
        return Ok(row.get(0));
    }
    let ms = wait.as_millis().clamp(1, i32::MAX as u128).to_string();
    client
        .query_one("SELECT set_config('lock_timeout', $1, false)", &[&ms])
        .await
        .map_err(db_error)?;
    let got = client
        .query_one("SELECT pg_advisory_lock($1, $2)", &[&keys.0, &keys.1])
        .await;
    let reset = client.batch_execute("SET lock_timeout = 0").await;
    match got {
        Ok(_) => {
            reset.map_err(db_error)?;
            Ok(true)
        }
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE) => {
            reset.map_err(db_error)?;
            Ok(false)
        }
        Err(e) => Err(db_error(e)),
    }
}

/// A connection's refresh lock, held. The connection row was re-read after the lock was
/// taken ([`RefreshLock::connection`]), so its generation is the one to refresh.
pub struct RefreshLock {
    store: TeamStore,
    held: Option<Held>,
    connection: ConnectionRow,
    /// [`RefreshLock::begin_call`] wrote this store's in-flight mark.
    marked: AtomicBool,
    /// An answer of that call is kept unsaved: the release leaves the mark.
    keep_mark: AtomicBool,
}

fn no_lock_session() -> Error {
    Error::new(
        ErrorCode::Busy,
        "This machine is already refreshing as many connections as it may at once: try again in a moment.",
    )
    .with_detail(format!(
        "all {MAX_LOCK_SESSIONS} refresh-lock sessions of this process stayed in use for the whole lock wait"
    ))
}

impl std::fmt::Debug for RefreshLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshLock")
            .field("connection", &self.connection.id)
            .field("generation", &self.connection.generation)
            .finish_non_exhaustive()
    }
}

impl TeamStore {
    /// A permit for one more refresh-lock session ([`MAX_LOCK_SESSIONS`]), waiting at
    /// most `wait` (zero: try once); `busy` when none freed up by then.
    async fn lock_permit(&self, wait: Duration) -> Result<OwnedSemaphorePermit> {
        let permits = self.inner.lock_permits.clone();
        let got = if wait.is_zero() {
            permits.try_acquire_owned().ok()
        } else {
            match tokio::time::timeout(wait, permits.acquire_owned()).await {
                Ok(Ok(p)) => Some(p),
                _ => None,
            }
        };
        got.ok_or_else(no_lock_session)
    }

    /// Take `connection_id`'s refresh lock, waiting at most `wait` (for one of this
    /// process's lock sessions, then for the lock); `busy` when another desktop or agent
    /// still holds it then, `not_found` for no such connection.
    pub async fn lock_refresh(&self, connection_id: &str, wait: Duration) -> Result<RefreshLock> {
        let started = Instant::now();
        let permit = self.lock_permit(wait).await?;
        let wait = wait.saturating_sub(started.elapsed());
        let (client, pid) = lock_session(self, REFRESH_SETTINGS).await?;
        let key: i32 = client
            .query_opt(
                "SELECT lock_key FROM authdeck.connections WHERE team_id = $1::text::uuid AND id = $2 AND NOT deleted",
                &[&self.team_id(), &connection_id],
            )
            .await
            .map_err(db_error)?
            .ok_or_else(|| Error::not_found("No such connection."))?
            .get(0);
        let keys = (REFRESH_NS, key);
        let sent = Instant::now();
        if !take(&client, keys, wait).await? {
            if client.batch_execute(IDLE_SETTINGS).await.is_ok() {
                self.inner.lock_sessions.lock().await.push(client);
            }
            drop(permit);
            return Err(Error::new(
                ErrorCode::Busy,
                "Another desktop or agent is refreshing this connection: try again in a moment.",
            ));
        }
        let held = Held::start(client.clone(), keys, REFRESH_FLOOR, sent, pid, Some(permit));
        // Re-read after taking the lock: whatever the previous holder committed is seen.
        let reread = Instant::now();
        let sql = "SELECT id, client_id, record, generation, version, deleted, created_at, created_by, \
             created_on, updated_at, updated_by, updated_on, last_refresh_at, last_refresh_by, last_refresh_on \
             FROM authdeck.connections WHERE team_id = $1::text::uuid AND id = $2";
        let row = client
            .query_opt(sql, &[&self.team_id(), &connection_id])
            .await
            .map_err(db_error)?;
        held.answered(reread);
        let connection = match row {
            Some(r) if !r.get::<_, bool>(5) => ConnectionRow {
                id: r.get(0),
                client_id: r.get(1),
                record: r.get::<_, Value>(2),
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
            },
            _ => {
                let (session, permit) = held.release().await;
                if let (Some(c), Some(_)) = (session, &permit) {
                    self.inner.lock_sessions.lock().await.push(c);
                }
                drop(permit);
                return Err(Error::not_found("This connection was removed meanwhile."));
            }
        };
        Ok(RefreshLock {
            store: self.clone(),
            held: Some(held),
            connection,
            marked: AtomicBool::new(false),
            keep_mark: AtomicBool::new(false),
        })
    }
}

impl RefreshLock {
    /// The connection as re-read after the lock was taken.
    pub fn connection(&self) -> &ConnectionRow {
        &self.connection
    }

    /// The generation to refresh (the one a commit must expect).
    pub fn generation(&self) -> i64 {
        self.connection.generation
    }

    /// The backend pid of the session holding the lock (for tests and `team status`).
    pub fn backend_pid(&self) -> i32 {
        self.held.as_ref().map(|h| h.backend_pid).unwrap_or(0)
    }

    /// How long the lock is still guaranteed, from the last heartbeat (no round trip);
    /// zero once the session is known lost.
    pub fn time_left(&self) -> Duration {
        self.held
            .as_ref()
            .map(Held::time_left)
            .unwrap_or(Duration::ZERO)
    }

    /// Check with the server that the lock is still held and at least `need` is left
    /// (the provider call plus the commit). `busy`/`team_unavailable` otherwise: do not
    /// start the provider call.
    pub async fn ensure(&self, need: Duration) -> Result<Duration> {
        let held = self.held.as_ref().ok_or_else(lost_lock)?;
        let left = held.confirm().await?;
        if left < need {
            return Err(Error::new(
                ErrorCode::Busy,
                "The lock on the team database is not held with enough time left: nothing was sent to the provider; try again.",
            )
            .with_detail(format!("{} ms left, {} ms needed", left.as_millis(), need.as_millis())));
        }
        Ok(left)
    }

    /// [`Self::ensure`] and, in the same round trip on the lock's own session
    /// (autocommitted), the in-flight mark of a provider call about to start: this store
    /// may hold the answer to a refresh of generation [`Self::generation`] until it is
    /// committed (the commit deletes the mark) or [`CALL_MARK`] has passed. Refused
    /// (`busy`, the mark not written) when another store's mark on this generation has
    /// not expired: its answer, not saved yet, may have replaced the refresh token this
    /// call would present, and presenting it again can revoke the whole grant. `Err`
    /// whenever the write was not acknowledged: do not start the provider call.
    pub async fn begin_call(&self, need: Duration) -> Result<Duration> {
        let held = self.held.as_ref().ok_or_else(lost_lock)?;
        let sent = Instant::now();
        let secs = CALL_MARK.as_secs_f64();
        let row = tokio::time::timeout(
            held.floor,
            held.client.query_one(
                "WITH held AS (
                     SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()
                        AND classid = $1::int4::oid AND objid = $2::int4::oid AND objsubid = 2 AND granted),
                 other AS (
                     SELECT machine, until FROM authdeck.calls_in_flight
                      WHERE team_id = $3::text::uuid AND connection_id = $4 AND generation = $5
                        AND owner <> $6 AND until > now()),
                 mark AS (
                     INSERT INTO authdeck.calls_in_flight (team_id, connection_id, generation, owner, machine, until)
                     SELECT $3::text::uuid, $4, $5, $6, $7, now() + make_interval(secs => $8)
                      WHERE (SELECT n FROM held) = 1 AND NOT EXISTS (SELECT 1 FROM other)
                     ON CONFLICT (team_id, connection_id) DO UPDATE
                        SET generation = EXCLUDED.generation, owner = EXCLUDED.owner, machine = EXCLUDED.machine,
                            member = current_user, since = now(), until = EXCLUDED.until
                     RETURNING 1)
                 SELECT (SELECT n FROM held), (SELECT machine FROM other LIMIT 1),
                        (SELECT until FROM other LIMIT 1), (SELECT count(*) FROM mark)",
                &[
                    &held.keys.0,
                    &held.keys.1,
                    &self.store.team_id(),
                    &self.connection.id,
                    &self.connection.generation,
                    &self.store.owner(),
                    &self.store.machine(),
                    &secs,
                ],
            ),
        )
        .await
        .map_err(|_| lost_lock())?
        .map_err(|e| {
            // A refusal of the server (e.g. a role without the grant) is not a lost lock.
            if e.as_db_error().is_some() {
                db_error(e)
            } else {
                lost_lock()
            }
        })?;
        let locked: i64 = row.get(0);
        if locked != 1 {
            held.dead.store(true, Ordering::SeqCst);
            return Err(lost_lock());
        }
        let other: Option<String> = row.get(1);
        let until: Option<chrono::DateTime<chrono::Utc>> = row.get(2);
        held.answered(sent);
        if let (Some(machine), Some(until)) = (other, until) {
            return Err(in_flight_elsewhere(&machine, until));
        }
        if row.get::<_, i64>(3) != 1 {
            return Err(lost_lock());
        }
        self.marked.store(true, Ordering::SeqCst);
        let left = held.time_left();
        if left < need {
            return Err(Error::new(
                ErrorCode::Busy,
                "The lock on the team database is not held with enough time left: nothing was sent to the provider; try again.",
            )
            .with_detail(format!("{} ms left, {} ms needed", left.as_millis(), need.as_millis())));
        }
        Ok(left)
    }

    /// Take back this store's mark after a [`Self::begin_call`] that did not say yes
    /// (no provider call follows): its write may have landed although its answer did not
    /// come (a slow server, a timeout). On the lock's own session, so it runs after that
    /// write; waits at most `wait`. Best effort: a mark left behind ends at its time.
    pub async fn unmark(&self, wait: Duration) {
        let Some(held) = self.held.as_ref() else {
            return;
        };
        let gone = tokio::time::timeout(
            wait,
            held.client.execute(
                "DELETE FROM authdeck.calls_in_flight
                  WHERE team_id = $1::text::uuid AND connection_id = $2 AND owner = $3",
                &[
                    &self.store.team_id(),
                    &self.connection.id,
                    &self.store.owner(),
                ],
            ),
        )
        .await;
        if matches!(gone, Ok(Ok(_))) {
            self.marked.store(false, Ordering::SeqCst);
        }
    }

    /// An answer of the call [`Self::begin_call`] marked is kept unsaved (its commit
    /// failed): the release leaves the mark, which the commit that saves the answer
    /// deletes (or [`CALL_MARK`] ends).
    pub fn keep_mark(&self) {
        self.keep_mark.store(true, Ordering::SeqCst);
    }

    /// Tests only: stop the heartbeat, as if this process hung, keeping the session.
    #[cfg(feature = "testing")]
    pub fn freeze_for_test(self) -> Self {
        if let Some(held) = &self.held {
            held.heartbeat.abort();
        }
        self
    }

    /// Let go of the lock (the session goes back for reuse). The in-flight mark goes
    /// first, unless an answer is kept ([`Self::keep_mark`]); best effort: a mark left
    /// behind (the session broke) ends at its time.
    pub async fn release(mut self) {
        if let Some(held) = self.held.take() {
            if self.marked.load(Ordering::SeqCst) && !self.keep_mark.load(Ordering::SeqCst) {
                let gone = held
                    .client
                    .execute(
                        "DELETE FROM authdeck.calls_in_flight
                          WHERE team_id = $1::text::uuid AND connection_id = $2 AND owner = $3",
                        &[
                            &self.store.team_id(),
                            &self.connection.id,
                            &self.store.owner(),
                        ],
                    )
                    .await;
                if let Err(e) = gone {
                    tracing::debug!(error = %e, "team store: in-flight mark not deleted at release");
                }
            }
            let (session, permit) = held.release().await;
            // Without its permit (its heartbeat gave it up), the session is not kept:
            // the count of open sessions stays within the bound.
            if let (Some(c), Some(_)) = (session, &permit) {
                let mut idle = self.store.inner.lock_sessions.lock().await;
                if idle.len() < MAX_LOCK_SESSIONS {
                    idle.push(c);
                }
            }
            drop(permit);
        }
    }
}
