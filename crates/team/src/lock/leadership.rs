//! The team scheduler's leadership (see the parent module): one session of the team
//! holds its advisory lock; `authdeck.leadership` says who.

use std::sync::Arc;
use std::time::{Duration, Instant};

use authdeck_core::{Error, Result};

use super::{take, Held, LEADER_FLOOR, LEADER_NS, LEADER_SETTINGS};
use crate::db_error;
use crate::store::TeamStore;

/// The team scheduler's leadership. Exactly one session of the team holds it; the
/// others wait in [`Leadership::acquire`] and the server hands it to one of them as soon
/// as the leader's session ends (dies, is cut off and found dead within ~4 s, or lets go).
pub struct Leadership {
    store: TeamStore,
    held: Held,
}

impl std::fmt::Debug for Leadership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leadership")
            .field("team", &self.store.team_id())
            .field("backend_pid", &self.held.backend_pid)
            .finish_non_exhaustive()
    }
}

impl Leadership {
    /// Wait up to `wait` to lead (`None` when another still leads then; `wait` zero: try
    /// once). The leader is recorded in `authdeck.leadership` for `team status`.
    pub async fn acquire(store: &TeamStore, wait: Duration) -> Result<Option<Leadership>> {
        let client = Arc::new(store.db().connect().await?);
        client
            .batch_execute(LEADER_SETTINGS)
            .await
            .map_err(db_error)?;
        let row = client
            .query_one(
                "SELECT pg_backend_pid(), (SELECT (hashtext(id::text) & 2147483647) FROM authdeck.teams WHERE id = $1::text::uuid)",
                &[&store.team_id()],
            )
            .await
            .map_err(db_error)?;
        let pid: i32 = row.get(0);
        let team_key: Option<i32> = row.get(1);
        let team_key = team_key.ok_or_else(|| Error::not_found("This team no longer exists."))?;
        let keys = (LEADER_NS, team_key);
        if !take(&client, keys, wait).await? {
            return Ok(None);
        }
        // The floor runs from this statement, not from the start of the wait.
        let recorded = Instant::now();
        client
            .execute(
                "INSERT INTO authdeck.leadership (team_id, machine, backend_pid) VALUES ($1::text::uuid, $2, $3)
                 ON CONFLICT (team_id) DO UPDATE SET member = current_user, machine = EXCLUDED.machine,
                     backend_pid = EXCLUDED.backend_pid, since = now(), heartbeat = now()",
                &[&store.team_id(), &store.machine(), &pid],
            )
            .await
            .map_err(db_error)?;
        Ok(Some(Leadership {
            store: store.clone(),
            held: Held::start(client, keys, LEADER_FLOOR, recorded, pid, None),
        }))
    }

    /// Whether this process may still act as leader (from the last heartbeat). A leader
    /// stops scheduling as soon as this is false.
    pub fn is_leader(&self) -> bool {
        !self.held.time_left().is_zero()
    }

    /// Check with the server (a round trip) that this session still leads.
    pub async fn confirm(&self) -> Result<Duration> {
        self.held.confirm().await
    }

    pub fn backend_pid(&self) -> i32 {
        self.held.backend_pid
    }

    /// Step down.
    pub async fn release(self) {
        let _ = self.held.release().await;
    }
}

/// Who leads a team now, as recorded (and still true: the recorded session is alive).
pub async fn current_leader(store: &TeamStore) -> Result<Option<(String, String, i32)>> {
    let c = store.db().connect().await?;
    let row = c
        .query_opt(
            "SELECT l.member, l.machine, l.backend_pid FROM authdeck.leadership l
              WHERE l.team_id = $1::text::uuid
                AND EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = l.backend_pid)",
            &[&store.team_id()],
        )
        .await
        .map_err(db_error)?;
    Ok(row.map(|r| (r.get(0), r.get(1), r.get(2))))
}
