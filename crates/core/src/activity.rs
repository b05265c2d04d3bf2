//! The activity view: every history event across connections, named by its connection
//! (also after the connection was removed), newest first. See [`crate::manager::Manager::activity`].

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::model::Provider;

/// One history row with the connection it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ActivityEntry {
    pub at: DateTime<Utc>,
    /// `connect`, `refresh`, `reconnect`, `logout`, `disconnect`, `callback_rejected`, …
    pub event: String,
    /// `ok` or an error code.
    pub outcome: String,
    pub detail: Option<String>,
    /// How many times it happened (rejected redirects coalesce per minute).
    pub count: u32,
    /// `None` for events of no connection (a rejected redirect).
    pub connection_id: Option<String>,
    /// The connection's label when the event was recorded or last renamed; kept after
    /// the connection is removed. `None` for events of no connection.
    pub connection_label: Option<String>,
    pub provider: Option<Provider>,
    /// The connection no longer exists (logged out, disconnected or removed).
    pub removed: bool,
}
