//! [`Manager::activity`]: the history of every connection in one list.

use super::Manager;
use crate::activity::ActivityEntry;
use crate::error::Result;

impl Manager {
    /// Newest first, at most `limit`: every history event (connects, refreshes,
    /// failures, rejected redirects, logouts, removals) with its connection's name,
    /// which is kept after the connection is removed.
    pub async fn activity(&self, limit: usize) -> Result<Vec<ActivityEntry>> {
        self.inner.store.activity(limit).await
    }
}
