//! The history of connections (and of rejected redirects), and the activity view.

use rusqlite::{params, Connection as Sqlite};

use super::{from_ms, ms, Db};
use crate::error::Result;
use crate::model::HistoryEntry;

/// History rows of one kind coalesce within one clock minute (UTC), in milliseconds.
pub const HISTORY_COALESCE_MS: i64 = 60_000;

/// The longest history detail stored, in characters (the rest is cut, marked with `…`).
pub const MAX_HISTORY_DETAIL: usize = 2000;

/// A history detail cut to [`MAX_HISTORY_DETAIL`] characters.
pub(super) fn capped_detail(detail: Option<&str>) -> Option<std::borrow::Cow<'_, str>> {
    detail.map(|d| match d.char_indices().nth(MAX_HISTORY_DETAIL) {
        None => std::borrow::Cow::Borrowed(d),
        Some((cut, _)) => std::borrow::Cow::Owned(format!("{}…", &d[..cut])),
    })
}

/// A row of `SELECT at, event, outcome, detail, count FROM history …` as an entry (a
/// connection's history and a device's alike).
pub(super) fn history_entry(r: &rusqlite::Row<'_>) -> rusqlite::Result<HistoryEntry> {
    Ok(HistoryEntry {
        at: from_ms(r.get(0)?),
        event: r.get(1)?,
        outcome: r.get(2)?,
        detail: r.get(3)?,
        count: u32::try_from(r.get::<_, i64>(4)?.max(1)).unwrap_or(u32::MAX),
    })
}

pub(super) fn add_history(
    c: &Sqlite,
    connection_id: Option<&str>,
    client_key: Option<&str>,
    entry: &HistoryEntry,
) -> rusqlite::Result<usize> {
    c.prepare_cached(
        "INSERT INTO history (connection_id, client_id, at, event, outcome, detail, count) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![connection_id, client_key, ms(entry.at), entry.event, entry.outcome, capped_detail(entry.detail.as_deref()), i64::from(entry.count.max(1))])
}

impl Db {
    pub fn add_history(
        &self,
        connection_id: Option<&str>,
        client_key: Option<&str>,
        entry: &HistoryEntry,
    ) -> Result<()> {
        self.write(|c| add_history(c, connection_id, client_key, entry))?;
        Ok(())
    }

    /// Add `entry`, or count it into the row of the same `kind` (same connection and
    /// client) added in the same clock minute ([`HISTORY_COALESCE_MS`]): one row per
    /// kind and minute, whatever the rate. In one write transaction, so processes sharing
    /// the database coalesce into the same row too.
    pub fn add_history_coalesced(
        &self,
        connection_id: Option<&str>,
        client_key: Option<&str>,
        entry: &HistoryEntry,
        kind: &str,
    ) -> Result<()> {
        let minute = ms(entry.at).div_euclid(HISTORY_COALESCE_MS) * HISTORY_COALESCE_MS;
        let count = i64::from(entry.count.max(1));
        self.write(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let counted = tx
                .prepare_cached(
                    "UPDATE history SET count = count + ?6 WHERE id = (
                         SELECT id FROM history
                         WHERE kind = ?1 AND connection_id IS ?2 AND client_id IS ?3 AND at >= ?4 AND at < ?5
                         ORDER BY id DESC LIMIT 1)",
                )?
                .execute(params![kind, connection_id, client_key, minute, minute + HISTORY_COALESCE_MS, count])?;
            if counted == 0 {
                tx.prepare_cached(
                    "INSERT INTO history (connection_id, client_id, at, event, outcome, detail, count, kind)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )?
                .execute(params![
                    connection_id,
                    client_key,
                    ms(entry.at),
                    entry.event,
                    entry.outcome,
                    capped_detail(entry.detail.as_deref()),
                    count,
                    kind
                ])?;
            }
            tx.commit()
        })
    }

    /// Newest first. `connection_id = None` lists everything, including rejected callbacks.
    pub fn history(&self, connection_id: Option<&str>, limit: usize) -> Result<Vec<HistoryEntry>> {
        self.with(|c| {
            let limit = limit as i64;
            match connection_id {
                Some(id) => {
                    let mut stmt = c.prepare_cached(
                        "SELECT at, event, outcome, detail, count FROM history WHERE connection_id = ?1 ORDER BY id DESC LIMIT ?2",
                    )?;
                    let rows = stmt.query_map(params![id, limit], history_entry)?;
                    rows.collect()
                }
                None => {
                    let mut stmt = c.prepare_cached(
                        "SELECT at, event, outcome, detail, count FROM history ORDER BY id DESC LIMIT ?1",
                    )?;
                    let rows = stmt.query_map(params![limit], history_entry)?;
                    rows.collect()
                }
            }
        })
    }

    /// Newest first: every history row with the name and provider of its connection
    /// (kept after the connection is removed) and whether that connection still exists.
    pub fn activity(&self, limit: usize) -> Result<Vec<crate::activity::ActivityEntry>> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT h.at, h.event, h.outcome, h.detail, h.count, h.connection_id, n.label, n.provider,
                        EXISTS (SELECT 1 FROM connections c WHERE c.id = h.connection_id)
                   FROM history h LEFT JOIN connection_names n ON n.connection_id = h.connection_id
                  ORDER BY h.id DESC LIMIT ?1",
            )?;
            let rows = stmt.query_map(params![limit as i64], |r| {
                let provider: Option<String> = r.get(7)?;
                Ok(crate::activity::ActivityEntry {
                    at: from_ms(r.get(0)?),
                    event: r.get(1)?,
                    outcome: r.get(2)?,
                    detail: r.get(3)?,
                    count: u32::try_from(r.get::<_, i64>(4)?.max(1)).unwrap_or(u32::MAX),
                    connection_id: r.get(5)?,
                    connection_label: r.get(6)?,
                    provider: provider.and_then(|p| serde_json::from_value(serde_json::Value::String(p)).ok()),
                    removed: r.get::<_, Option<String>>(5)?.is_some() && !r.get::<_, bool>(8)?,
                })
            })?;
            rows.collect()
        })
    }
}
