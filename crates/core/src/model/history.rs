//! The history of a connection.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One line of a connection's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct HistoryEntry {
    pub at: DateTime<Utc>,
    /// `connect`, `refresh`, `reconnect`, `logout`, `disconnect`, `callback_rejected`, …
    pub event: String,
    /// `ok` or an error code.
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// How many times it happened. Rejected redirects of one kind share one row per
    /// minute (a burst of forged links is one row with a count, not thousands); `at` is
    /// the first of them. Every other entry is 1.
    #[serde(default = "HistoryEntry::one")]
    pub count: u32,
}

impl HistoryEntry {
    /// One occurrence of `event` at `at`.
    pub fn new(
        at: DateTime<Utc>,
        event: impl Into<String>,
        outcome: impl Into<String>,
        detail: Option<String>,
    ) -> Self {
        Self {
            at,
            event: event.into(),
            outcome: outcome.into(),
            detail,
            count: 1,
        }
    }

    fn one() -> u32 {
        1
    }
}
