//! The team store's [`Lease`](authdeck_core::store::backend::Lease): a held refresh lock,
//! its checks before a provider call and its in-flight mark.

use std::time::Duration;

use async_trait::async_trait;
use authdeck_core::store::backend::{lease_lost, LeaseCheck};
use authdeck_core::Result;

use crate::lock::RefreshLock;

/// A held refresh lock; dropping it lets go (the session goes back for reuse when a
/// runtime is at hand, else it closes, which releases the lock on the server too).
pub(super) struct HeldLock(pub(super) Option<RefreshLock>);

#[async_trait]
impl LeaseCheck for HeldLock {
    /// From the last heartbeat first (no round trip: a holder whose heartbeat went
    /// unanswered too long fails at once), then a round trip on the lock's own session
    /// ([`RefreshLock::ensure`]), so a link cut since the last heartbeat is found before
    /// the provider call, not after. That round trip waits no longer than the lock has
    /// left beyond `need`: an answer after that could not say yes.
    async fn ensure_held(&self, need: Duration) -> Result<()> {
        self.check(need, false).await
    }

    /// [`Self::ensure_held`]'s checks and the in-flight mark, one round trip
    /// ([`RefreshLock::begin_call`]): another store's live mark refuses the call with its
    /// own error (`busy`, saying whose answer waits and until when).
    async fn begin_call(&self, need: Duration) -> Result<()> {
        self.check(need, true).await
    }

    fn keep_mark(&self) {
        if let Some(lock) = &self.0 {
            lock.keep_mark();
        }
    }
}

impl HeldLock {
    async fn check(&self, need: Duration, mark: bool) -> Result<()> {
        let Some(lock) = &self.0 else {
            return Err(lease_lost());
        };
        let left = lock.time_left();
        let ms = |d: Duration| d.as_millis();
        if left.is_zero() || left < need {
            return Err(lease_lost().with_detail(format!(
                "{} ms of the lock left by its heartbeat, {} ms needed",
                ms(left),
                ms(need)
            )));
        }
        let confirmed = async {
            match mark {
                true => lock.begin_call(need).await,
                false => lock.ensure(need).await,
            }
        };
        let refused = match tokio::time::timeout(left - need, confirmed).await {
            Ok(Ok(_)) => return Ok(()),
            // Another refresher's answer may be unsaved: its own error says so (and
            // that mark is not ours to touch).
            Ok(Err(e)) if crate::lock::is_in_flight_elsewhere(&e) => return Err(e),
            Ok(Err(e)) => lease_lost().with_detail(e.detail.unwrap_or(e.message)),
            Err(_) => lease_lost().with_detail(format!(
                "the team database did not confirm the lock within {} ms",
                ms(left - need)
            )),
        };
        if mark {
            // No call follows: a mark whose write landed unconfirmed must not hold the
            // connection for its whole time.
            lock.unmark(Duration::from_secs(1)).await;
        }
        Err(refused)
    }
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        if let Some(lock) = self.0.take() {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(lock.release());
            }
        }
    }
}
