//! Keeps tokens fresh while the app runs.
//!
//! - Refresh before the access token expires, by a margin (default 5 minutes) plus a
//!   per-connection jitter so a thousand connections do not refresh in the same second.
//!   FedEx tokens are re-requested only for connections marked "keep fresh".
//! - Keep FlowAccount grants alive: their refresh token lapses 1 day after the latest
//!   token request, so refresh at least every 20 hours.
//! - Temporary failures back off exponentially (honouring `Retry-After`); permanent ones
//!   stop retrying until the connection changes, and raise a [`Notice`].
//! - Warn once, an hour ahead, before a connection lapses with no way to refresh it.
//!
//! - Connections due within the same short window are refreshed together, as one batch
//!   (`Manager::refresh_many`): their new tokens share one keyring entry.
//!
//! A scheduled refresh takes the same code path, lock and single flight as the button
//! and the CLI.
//!
//! - **One scheduler for a shared store.** Before each pass the scheduler asks its store
//!   whether it may refresh ([`Backend::scheduler_role`]). The local store always says
//!   so; the team store lets one scheduler of the whole team lead (the desktop apps and
//!   the agents compete alike). A standby's pass refreshes nothing, lists nothing and
//!   warns about nothing (the leader does), and the next pass comes `standby_poll`
//!   later, so a standby takes over soon after the leader is gone. A leader asks again
//!   before each `leader_chunk` refreshes of a long batch: one whose leadership is no
//!   longer confirmed starts no further scheduled refresh. Manual refreshes are not
//!   gated: the per-connection lock keeps them apart from the leader's.
//!
//! [`Backend::scheduler_role`]: crate::store::backend::Backend::scheduler_role

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::error::Error;
use crate::manager::Manager;
use crate::model::{Connection, ConnectionState, Provider};

pub use crate::store::backend::SchedulerRole;

#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// Refresh this long before the access token expires.
    pub margin: Duration,
    /// Spread refreshes over up to this much extra lead time, per connection.
    pub jitter: Duration,
    /// FlowAccount: refresh at least this often, so the 1-day refresh window never lapses.
    pub keep_alive: Duration,
    /// First retry delay after a temporary failure; doubles up to `max_backoff`.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// Warn this long before a connection lapses with no way to refresh it.
    pub lapse_warning: Duration,
    /// Longest sleep between two passes (new connections are picked up by then).
    pub max_sleep: Duration,
    /// A pass also refreshes the connections due within this much time, so that
    /// refreshes falling due together go as one batch. Far below `margin`.
    pub batch_window: Duration,
    /// A standby's next pass (asking again whether it leads) comes this soon.
    pub standby_poll: Duration,
    /// A leader of a shared store asks again whether it still leads before each this
    /// many refreshes of one pass.
    pub leader_chunk: usize,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            margin: Duration::from_secs(5 * 60),
            jitter: Duration::from_secs(60),
            keep_alive: Duration::from_secs(20 * 3600),
            initial_backoff: Duration::from_secs(30),
            max_backoff: Duration::from_secs(30 * 60),
            lapse_warning: Duration::from_secs(3600),
            max_sleep: Duration::from_secs(60),
            batch_window: Duration::from_secs(20),
            standby_poll: Duration::from_secs(2),
            leader_chunk: 256,
        }
    }
}

/// Something the user should hear about (the app shows a desktop notification).
#[derive(Debug, Clone)]
pub enum Notice {
    /// A refresh failed permanently: the user must act (reconnect, fix the client).
    RefreshFailed {
        connection: Connection,
        error: Error,
    },
    /// The connection lapses at `at` and cannot currently be refreshed.
    Lapsing {
        connection: Connection,
        at: DateTime<Utc>,
    },
}

/// What one pass did ([`Scheduler::pass`]): for a front that reports each refresh (the
/// always-on agent's log and status file).
#[derive(Debug)]
pub struct Pass {
    /// What the store said of this scheduler (the last answer, when a leader stepped
    /// down during the pass). A standby's pass refreshed nothing.
    pub role: SchedulerRole,
    pub notices: Vec<Notice>,
    /// Every refresh this pass made, in order, with its outcome.
    pub refreshes: Vec<PassRefresh>,
    /// When the next pass is needed (at most `max_sleep` away).
    pub next: DateTime<Utc>,
    /// The next refresh due after this pass (a retry after a failure included), and of
    /// which connection; `None` when nothing is scheduled.
    pub next_due: Option<(Connection, DateTime<Utc>)>,
}

/// One scheduled refresh: the connection as it was before, and what the refresh gave.
#[derive(Debug)]
pub struct PassRefresh {
    pub connection: Connection,
    pub result: Result<Connection, Error>,
    /// After a failure: when it is retried (`None`: not until the connection changes).
    pub retry_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
struct Failure {
    attempts: u32,
    retry_at: Option<DateTime<Utc>>, // None: permanent, wait for the connection to change
    seen_update: DateTime<Utc>,
}

pub struct Scheduler {
    manager: Manager,
    config: SchedulerConfig,
    failures: HashMap<String, Failure>,
    /// Lapse instants already warned about, per connection.
    warned: HashMap<String, DateTime<Utc>>,
}

fn chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// A stable per-connection offset in `[0, jitter)`.
fn jitter_for(id: &str, jitter: Duration) -> chrono::Duration {
    let ms = jitter.as_millis() as u64;
    if ms == 0 {
        return chrono::Duration::zero();
    }
    let hash = id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    chrono::Duration::milliseconds((hash % ms) as i64)
}

impl Scheduler {
    pub fn new(manager: Manager, config: SchedulerConfig) -> Self {
        Self {
            manager,
            config,
            failures: HashMap::new(),
            warned: HashMap::new(),
        }
    }

    /// When this connection should next be refreshed, ignoring failures; `None`: never
    /// by the scheduler.
    pub fn due_at(&self, conn: &Connection) -> Option<DateTime<Utc>> {
        if conn.state != ConnectionState::Active {
            return None;
        }
        let lead = chrono(self.config.margin) + jitter_for(&conn.id, self.config.jitter);
        let before_expiry = conn.access_expires.map(|e| e.at - lead);
        match conn.provider {
            Provider::Fedex if !conn.keep_fresh => None,
            Provider::Fedex | Provider::Iot => before_expiry,
            Provider::FlowAccount => {
                let last_request = conn.last_refresh_at.unwrap_or(conn.created_at);
                let keep_alive = last_request + chrono(self.config.keep_alive)
                    - jitter_for(&conn.id, self.config.jitter);
                Some(before_expiry.map_or(keep_alive, |b| b.min(keep_alive)))
            }
        }
    }

    fn retry_at(&self, conn: &Connection) -> Option<Option<DateTime<Utc>>> {
        let f = self.failures.get(&conn.id)?;
        // A connection changed since the failure (reconnected, refreshed by hand) starts afresh.
        if conn.updated_at > f.seen_update {
            return None;
        }
        Some(f.retry_at)
    }

    /// One pass: refresh everything that is due, record failures, and return what the
    /// user should be told. Also returns when the next pass is needed.
    pub async fn run_once(&mut self) -> (Vec<Notice>, DateTime<Utc>) {
        let pass = self.pass().await;
        (pass.notices, pass.next)
    }

    /// [`Self::run_once`], also saying which refreshes it made and what comes next.
    pub async fn pass(&mut self) -> Pass {
        let now = self.manager.now();
        let mut role = self.manager.store().scheduler_role().await;
        let mut notices = Vec::new();
        let mut refreshes = Vec::new();
        let mut next_due: Option<(Connection, DateTime<Utc>)> = None;
        if !role.refreshes() {
            return Pass {
                role,
                notices,
                refreshes,
                next: now + chrono(self.config.standby_poll),
                next_due,
            };
        }
        let mut next = now + chrono(self.config.max_sleep);
        let mut consider = |conn: &Connection, at: DateTime<Utc>| {
            if next_due.as_ref().is_none_or(|(_, d)| at < *d) {
                next_due = Some((conn.clone(), at));
            }
        };
        let connections = match self.manager.list().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(code = %e.code, "scheduler could not list connections");
                return Pass {
                    role,
                    notices,
                    refreshes,
                    next,
                    next_due,
                };
            }
        };
        self.failures
            .retain(|id, _| connections.iter().any(|c| &c.id == id));
        let horizon = now + chrono(self.config.batch_window);
        let mut due_now = Vec::new();
        for conn in connections {
            let due = match self.retry_at(&conn) {
                Some(None) => None, // permanent failure: wait for a change
                Some(Some(retry)) => Some(retry),
                None => {
                    self.failures.remove(&conn.id);
                    self.due_at(&conn)
                }
            };
            if let Some(notice) = self.lapse_notice(&conn, now) {
                notices.push(notice);
            }
            let Some(due) = due else { continue };
            if due > horizon {
                next = next.min(due);
                consider(&conn, due);
                continue;
            }
            due_now.push((conn, due));
        }
        // When something is due now, what falls due within the batch window goes along;
        // else nothing goes yet.
        if !due_now.iter().any(|(_, due)| *due <= now) {
            for (conn, due) in &due_now {
                next = next.min(*due);
                consider(conn, *due);
            }
            due_now.clear();
        }
        let ids: Vec<String> = due_now.iter().map(|(c, _)| c.id.clone()).collect();
        let results = self.refresh_gated(&ids, &mut role).await;
        for ((conn, _), result) in due_now.into_iter().zip(results) {
            match result {
                Ok(fresh) => {
                    self.failures.remove(&conn.id);
                    if let Some(d) = self.due_at(&fresh) {
                        next = next.min(d);
                        consider(&fresh, d);
                    }
                    refreshes.push(PassRefresh {
                        connection: conn,
                        result: Ok(fresh),
                        retry_at: None,
                    });
                }
                Err(error) => {
                    let updated = self
                        .manager
                        .connection(&conn.id)
                        .await
                        .map(|c| c.updated_at)
                        .unwrap_or(now);
                    let attempts = self.failures.get(&conn.id).map_or(0, |f| f.attempts) + 1;
                    let retry_at = if error.is_temporary() {
                        let doubled = self
                            .config
                            .initial_backoff
                            .saturating_mul(1 << (attempts - 1).min(16));
                        let wait = doubled
                            .min(self.config.max_backoff)
                            .max(error.retry_after.unwrap_or_default());
                        let at = self.manager.now() + chrono(wait);
                        next = next.min(at);
                        consider(&conn, at);
                        Some(at)
                    } else {
                        let connection = self
                            .manager
                            .connection(&conn.id)
                            .await
                            .unwrap_or(conn.clone());
                        notices.push(Notice::RefreshFailed {
                            connection,
                            error: error.clone(),
                        });
                        None
                    };
                    tracing::info!(connection = %conn.id, code = %error.code, attempts, "scheduled refresh failed");
                    self.failures.insert(
                        conn.id.clone(),
                        Failure {
                            attempts,
                            retry_at,
                            seen_update: updated,
                        },
                    );
                    refreshes.push(PassRefresh {
                        connection: conn,
                        result: Err(error),
                        retry_at,
                    });
                }
            }
        }
        if !role.refreshes() {
            // Stepped down during the pass: what was not refreshed is the leader's now.
            next = now + chrono(self.config.standby_poll);
            next_due = None;
        }
        Pass {
            role,
            notices,
            refreshes,
            next: next.max(now),
            next_due,
        }
    }

    /// Refresh `ids` as one batch; a leader of a shared store in parts of
    /// `leader_chunk`, asking the store before each whether it still leads, and
    /// starting no part once it does not (`role` is then the store's last answer). The
    /// results of the parts refreshed, in order.
    async fn refresh_gated(
        &self,
        ids: &[String],
        role: &mut SchedulerRole,
    ) -> Vec<Result<Connection, Error>> {
        if ids.is_empty() {
            return Vec::new();
        }
        if *role != SchedulerRole::Leader {
            return self.manager.refresh_many(ids).await;
        }
        let mut results = Vec::with_capacity(ids.len());
        for part in ids.chunks(self.config.leader_chunk.max(1)) {
            // Listing took a while, and so did the part before: ask again.
            *role = self.manager.store().scheduler_role().await;
            if !role.refreshes() {
                tracing::info!(
                    left = ids.len() - results.len(),
                    "scheduler: no longer the leader; the rest of the pass is left to the new one"
                );
                break;
            }
            results.extend(self.manager.refresh_many(part).await);
        }
        results
    }

    fn lapse_notice(&mut self, conn: &Connection, now: DateTime<Utc>) -> Option<Notice> {
        let lapse = conn.refresh_expires?.at;
        if lapse <= now || lapse - now > chrono(self.config.lapse_warning) {
            return None;
        }
        let stuck = conn.state != ConnectionState::Active || self.failures.contains_key(&conn.id);
        if !stuck || self.warned.get(&conn.id) == Some(&lapse) {
            return None;
        }
        self.warned.insert(conn.id.clone(), lapse);
        Some(Notice::Lapsing {
            connection: conn.clone(),
            at: lapse,
        })
    }

    /// Run until the task is dropped, passing notices to `notify`.
    pub async fn run(mut self, notify: impl Fn(Notice) + Send + 'static) {
        loop {
            let (notices, next) = self.run_once().await;
            for n in notices {
                notify(n);
            }
            let wait = (next - self.manager.now()).to_std().unwrap_or_default();
            tokio::time::sleep(wait.clamp(Duration::from_millis(500), self.config.max_sleep)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_is_stable_and_bounded() {
        let j = Duration::from_secs(60);
        assert_eq!(jitter_for("a", j), jitter_for("a", j));
        for id in ["a", "b", "c", "0eb05799-ca2f-460f-b584-8e8223d562e7"] {
            let d = jitter_for(id, j);
            assert!(
                d >= chrono::Duration::zero() && d < chrono::Duration::seconds(60),
                "{id}: {d}"
            );
        }
        assert_ne!(jitter_for("a", j), jitter_for("b", j));
        assert_eq!(jitter_for("a", Duration::ZERO), chrono::Duration::zero());
    }
}
