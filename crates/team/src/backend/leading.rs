//! The team scheduler's leadership behind the core's seam
//! (`Backend::scheduler_role`): every scheduler of the team (the desktop apps' and the
//! agents') competes for one [`Leadership`]; the one holding it refreshes, the others
//! stand by.
//!
//! - **Only schedulers compete.** A backend enters the competition on its first
//!   `scheduler_role` call (which only the core's scheduler makes), trying once at once,
//!   so a lone scheduler leads from its first pass; a CLI command never competes.
//! - **A standby waits in the lock** (`pg_advisory_lock` with a lock timeout of
//!   [`STANDBY_WAIT`], again and again): the server hands it over the moment the leader's
//!   session ends — at once when the leader's process dies (its socket closes), within
//!   ~3 s when it is frozen or cut off (the leadership session's
//!   `idle_session_timeout`). Before each wait it reads who leads (the `leadership` row),
//!   waiting only [`STANDBY_WAIT_UNKNOWN`] at a time while that is not known.
//! - **A leader is one while its leadership is confirmed**: [`Leadership::is_leader`]
//!   (a heartbeat answered within the floor, so the server cannot have ended the session
//!   yet). Once it is not, the leadership is dropped (its session closed) and the
//!   backend competes again as a standby.
//! - While it competes, the backend marks this member and machine seen
//!   (`members_seen`, kind `agent` for an agent) every [`SEEN_EVERY`], so `team status`
//!   shows a running scheduler as seen now.
//! - Dropping the backend stops competing: its leadership session closes, and a standby
//!   leads at once.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use authdeck_core::store::backend::SchedulerRole;
use tokio::sync::OnceCell;
use tokio::task::AbortHandle;

use crate::lock::{current_leader, Leadership};
use crate::store::TeamStore;

/// A standby waits this long in the lock at a time, then reads who leads and waits again.
const STANDBY_WAIT: Duration = Duration::from_secs(20);
/// … this long while it does not know who leads (the leader changed a moment ago).
const STANDBY_WAIT_UNKNOWN: Duration = Duration::from_secs(2);
/// How much longer than its wait a standby waits for the server's answer (a link cut
/// while waiting) before it starts over; also the bound on reading who leads.
const ANSWER_MARGIN: Duration = Duration::from_secs(5);
/// A leader checks this often that its leadership is still confirmed.
const WATCH: Duration = Duration::from_millis(200);
/// After a failed attempt (the database unreachable, a role that may not lead).
const RETRY: Duration = Duration::from_secs(2);
/// How often a competing scheduler marks this member and machine seen.
const SEEN_EVERY: Duration = Duration::from_secs(60);

#[derive(Default)]
struct Standing {
    leadership: Option<Arc<Leadership>>,
    /// Who leads, as last read (while this one stands by).
    leader: Option<String>,
}

fn standing(s: &Mutex<Standing>) -> MutexGuard<'_, Standing> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

/// One backend's part in the competition (see the module docs).
pub(super) struct Competition {
    store: TeamStore,
    standing: Arc<Mutex<Standing>>,
    task: OnceCell<AbortHandle>,
}

impl Competition {
    pub(super) fn new(store: TeamStore) -> Self {
        Self {
            store,
            standing: Arc::default(),
            task: OnceCell::new(),
        }
    }

    /// This process's role now; the first call enters the competition.
    pub(super) async fn role(&self) -> SchedulerRole {
        self.task
            .get_or_init(|| async {
                // Try once at once: a lone scheduler leads from its first pass.
                match Leadership::acquire(&self.store, Duration::ZERO).await {
                    Ok(Some(leadership)) => {
                        tracing::info!(machine = %self.store.machine(), "team scheduler: this process leads");
                        standing(&self.standing).leadership = Some(Arc::new(leadership));
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(code = %e.code, "team scheduler: could not compete for leadership")
                    }
                }
                tokio::spawn(compete(self.store.clone(), self.standing.clone())).abort_handle()
            })
            .await;
        let s = standing(&self.standing);
        match &s.leadership {
            Some(l) if l.is_leader() => SchedulerRole::Leader,
            _ => SchedulerRole::Standby {
                leader: s.leader.clone(),
            },
        }
    }
}

impl Drop for Competition {
    fn drop(&mut self) {
        // The task's copy of the leadership goes with it; ours with `standing`.
        if let Some(task) = self.task.get() {
            task.abort();
        }
    }
}

async fn compete(store: TeamStore, shared: Arc<Mutex<Standing>>) {
    let mut seen_at: Option<Instant> = None;
    loop {
        mark_seen(&store, &mut seen_at);
        let held = standing(&shared).leadership.clone();
        if let Some(leadership) = held {
            while leadership.is_leader() {
                tokio::time::sleep(WATCH).await;
                mark_seen(&store, &mut seen_at);
            }
            tracing::warn!(
                "team scheduler: this process no longer leads (its session with the team database was lost); standing by"
            );
            standing(&shared).leadership = None;
            continue;
        }
        let leader = match tokio::time::timeout(ANSWER_MARGIN, current_leader(&store)).await {
            // This machine itself, as a lost session's row may still say for a moment:
            // not known yet.
            Ok(Ok(Some((member, machine, _)))) if machine != store.machine() => {
                Some(format!("{member} on {machine}"))
            }
            _ => None,
        };
        let wait = if leader.is_some() {
            STANDBY_WAIT
        } else {
            STANDBY_WAIT_UNKNOWN
        };
        standing(&shared).leader = leader;
        let acquire = Leadership::acquire(&store, wait);
        match tokio::time::timeout(wait + ANSWER_MARGIN, acquire).await {
            Ok(Ok(Some(leadership))) => {
                tracing::info!(machine = %store.machine(), "team scheduler: this process leads now");
                let mut s = standing(&shared);
                s.leadership = Some(Arc::new(leadership));
                s.leader = None;
            }
            Ok(Ok(None)) => {}
            Ok(Err(e)) => {
                tracing::debug!(code = %e.code, "team scheduler: could not compete for leadership");
                tokio::time::sleep(RETRY).await;
            }
            // No answer: the link is likely cut; the abandoned session ends on the server.
            Err(_) => tokio::time::sleep(RETRY).await,
        }
    }
}

/// Mark this member and machine seen, every [`SEEN_EVERY`], without waiting for it.
fn mark_seen(store: &TeamStore, at: &mut Option<Instant>) {
    if at.is_some_and(|t| t.elapsed() < SEEN_EVERY) {
        return;
    }
    *at = Some(Instant::now());
    let store = store.clone();
    tokio::spawn(async move {
        let seen = tokio::time::timeout(ANSWER_MARGIN, store.seen(env!("CARGO_PKG_VERSION")));
        if let Ok(Err(e)) = seen.await {
            tracing::debug!(code = %e.code, "team scheduler: not marked seen");
        }
    });
}
