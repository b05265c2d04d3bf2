//! Pending FlowAccount authorizations (by the hash of their state).

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};

use super::{from_ms, ms, Db};
use crate::error::Result;

/// A pending FlowAccount authorization, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRecord {
    pub state_hash: String,
    pub client_key: String,
    pub redirect_uri: String,
    pub pkce: bool,
    pub reconnect_connection_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub consumed_at: Option<DateTime<Utc>>,
}

impl Db {
    pub fn insert_pending(&self, p: &PendingRecord) -> Result<()> {
        self.write(|c| {
            c.execute(
                "INSERT INTO pending_authorizations (state_hash, client_id, redirect_uri, pkce, reconnect_connection_id, created_at, expires_at, consumed_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL)",
                params![p.state_hash, p.client_key, p.redirect_uri, p.pkce, p.reconnect_connection_id, ms(p.created_at), ms(p.expires_at)],
            )
        })?;
        Ok(())
    }

    pub fn pending(&self, state_hash: &str) -> Result<Option<PendingRecord>> {
        self.with(|c| {
            c.query_row(
                "SELECT state_hash, client_id, redirect_uri, pkce, reconnect_connection_id, created_at, expires_at, consumed_at
                 FROM pending_authorizations WHERE state_hash = ?1",
                [state_hash],
                |r| {
                    Ok(PendingRecord {
                        state_hash: r.get(0)?,
                        client_key: r.get(1)?,
                        redirect_uri: r.get(2)?,
                        pkce: r.get(3)?,
                        reconnect_connection_id: r.get(4)?,
                        created_at: from_ms(r.get(5)?),
                        expires_at: from_ms(r.get(6)?),
                        consumed_at: r.get::<_, Option<i64>>(7)?.map(from_ms),
                    })
                },
            )
            .optional()
        })
    }

    /// Mark a pending authorization used. `false` if another process consumed it first:
    /// the state is single-use even across processes.
    pub fn consume_pending(&self, state_hash: &str, now: DateTime<Utc>) -> Result<bool> {
        let n = self.write(|c| {
            c.execute(
                "UPDATE pending_authorizations SET consumed_at = ?2 WHERE state_hash = ?1 AND consumed_at IS NULL",
                params![state_hash, ms(now)],
            )
        })?;
        Ok(n == 1)
    }

    /// How a used pending authorization ended: `ok`, an error code, or `cancelled`.
    pub fn set_pending_outcome(&self, state_hash: &str, outcome: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE pending_authorizations SET outcome = ?2 WHERE state_hash = ?1",
                params![state_hash, outcome],
            )
        })?;
        Ok(())
    }

    /// `None` while unused (or unknown), else how it ended (`used` if not yet recorded).
    pub fn pending_outcome(&self, state_hash: &str) -> Result<Option<String>> {
        let row: Option<(Option<i64>, Option<String>)> = self.with(|c| {
            c.query_row(
                "SELECT consumed_at, outcome FROM pending_authorizations WHERE state_hash = ?1",
                [state_hash],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
        })?;
        Ok(match row {
            Some((Some(_), outcome)) => Some(outcome.unwrap_or_else(|| "used".into())),
            _ => None,
        })
    }

    /// Forget pending authorizations that ended more than a day ago (replays of those are
    /// still rejected: an unknown state is rejected too).
    pub fn purge_pending(&self, older_than: DateTime<Utc>) -> Result<()> {
        self.write(|c| {
            c.execute(
                "DELETE FROM pending_authorizations WHERE expires_at < ?1",
                [ms(older_than)],
            )
        })?;
        Ok(())
    }
}
