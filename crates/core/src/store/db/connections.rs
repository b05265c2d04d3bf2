//! Connections: their metadata and which keyring entries hold their tokens.

use rusqlite::{params, Connection as Sqlite, OptionalExtension};

use super::history::add_history;
use super::{json, ms, unjson, Db};
use crate::error::{Error, Result};
use crate::model::{Connection, HistoryEntry};

/// The columns a [`Connection`] is read from: its JSON and where its tokens are.
pub(super) const CONNECTION_COLUMNS: &str = "data, token_set, pending_generation";

pub(super) type ConnectionRow = (String, Option<String>, Option<i64>);

pub(super) fn connection_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ConnectionRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
}

pub(super) fn connection_of((data, token_set, pending): &ConnectionRow) -> Result<Connection> {
    let mut conn: Connection = unjson(data)?;
    conn.token_set = token_set.clone();
    conn.pending_generation = *pending;
    Ok(conn)
}

fn update_connection(
    c: &Sqlite,
    conn: &Connection,
    data: &str,
    expected_generation: i64,
) -> rusqlite::Result<usize> {
    c.prepare_cached(
        "UPDATE connections SET label = ?2, data = ?3, secret_generation = ?4, token_set = ?5, updated_at = ?6,
             pending_generation = CASE WHEN ?4 = ?7 THEN pending_generation END
         WHERE id = ?1 AND secret_generation = ?7",
    )?
    .execute(params![
        conn.id,
        conn.label,
        data,
        conn.secret_generation,
        conn.token_set,
        ms(conn.updated_at),
        expected_generation
    ])
}

impl Db {
    pub fn insert_connection(&self, conn: &Connection, natural_key: &str) -> Result<()> {
        let data = json(conn)?;
        self.write(|c| {
            c.execute(
                "INSERT INTO connections (id, client_id, natural_key, label, data, secret_generation, token_set, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    conn.id,
                    conn.client_key,
                    natural_key,
                    conn.label,
                    data,
                    conn.secret_generation,
                    conn.token_set,
                    ms(conn.created_at),
                    ms(conn.updated_at)
                ],
            )
        })?;
        Ok(())
    }

    pub fn connections(&self) -> Result<Vec<Connection>> {
        let rows: Vec<ConnectionRow> = self.with(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {CONNECTION_COLUMNS} FROM connections ORDER BY label, id"
            ))?;
            let rows = stmt.query_map([], connection_row)?;
            rows.collect()
        })?;
        rows.iter().map(connection_of).collect()
    }

    /// A connection by id, by label (or the user's label, or its company's name), or by
    /// an unambiguous id prefix (≥ 4 characters).
    pub fn connection(&self, reference: &str) -> Result<Connection> {
        let rows: Vec<ConnectionRow> = self.with(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {CONNECTION_COLUMNS} FROM connections WHERE id = ?1"
            ))?;
            let exact: Vec<ConnectionRow> = stmt
                .query_map([reference], connection_row)?
                .collect::<rusqlite::Result<_>>()?;
            if !exact.is_empty() {
                return Ok(exact);
            }
            // The label, or the name a person knows it by: their own label, the company's.
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {CONNECTION_COLUMNS} FROM connections WHERE label = ?1
                    OR json_extract(data, '$.user_label') = ?1
                    OR json_extract(data, '$.company.name') = ?1"
            ))?;
            let by_label: Vec<ConnectionRow> = stmt
                .query_map([reference], connection_row)?
                .collect::<rusqlite::Result<_>>()?;
            if !by_label.is_empty() || reference.len() < 4 {
                return Ok(by_label);
            }
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {CONNECTION_COLUMNS} FROM connections WHERE substr(id, 1, length(?1)) = ?1"
            ))?;
            let rows = stmt.query_map([reference], connection_row)?;
            rows.collect()
        })?;
        match rows.len() {
            1 => connection_of(&rows[0]),
            0 => Err(Error::not_found(format!(
                "No connection {reference:?}: see `authdeckctl list`."
            ))),
            n => Err(Error::invalid_input(format!(
                "{n} connections match {reference:?}: use the connection id instead."
            ))),
        }
    }

    pub fn connection_by_natural_key(
        &self,
        client_key: &str,
        natural_key: &str,
    ) -> Result<Option<Connection>> {
        let row: Option<ConnectionRow> = self.with(|c| {
            c.query_row(
                &format!("SELECT {CONNECTION_COLUMNS} FROM connections WHERE client_id = ?1 AND natural_key = ?2"),
                [client_key, natural_key],
                connection_row,
            )
            .optional()
        })?;
        row.as_ref().map(connection_of).transpose()
    }

    /// The natural key a connection was stored under (its business, project or account
    /// of the client), `None` if it is gone.
    pub fn natural_key(&self, id: &str) -> Result<Option<String>> {
        self.with(|c| {
            c.query_row(
                "SELECT natural_key FROM connections WHERE id = ?1",
                [id],
                |r| r.get(0),
            )
            .optional()
        })
    }

    /// Current generation of a connection's keyring entries, `None` if it is gone.
    pub fn secret_generation(&self, id: &str) -> Result<Option<i64>> {
        self.with(|c| {
            c.query_row(
                "SELECT secret_generation FROM connections WHERE id = ?1",
                [id],
                |r| r.get(0),
            )
            .optional()
        })
    }

    /// Save a connection's metadata. When `conn.secret_generation` differs from
    /// `expected_generation`, this is the commit point that switches the connection to
    /// new keyring entries (its own, or `conn.token_set`); it only happens if nobody
    /// else switched it first.
    /// Returns `false` (and writes nothing) when the stored generation was not the expected one.
    pub fn update_connection(&self, conn: &Connection, expected_generation: i64) -> Result<bool> {
        let data = json(conn)?;
        let n = self.write(|c| update_connection(c, conn, &data, expected_generation))?;
        Ok(n == 1)
    }

    /// The commit point of a batch: switch every connection to its new generation in one
    /// transaction, each only if it is still at its expected generation, and write
    /// `history` for each one that switched. Returns, per connection, whether it switched.
    pub fn switch_connections(
        &self,
        switches: &[(Connection, i64)],
        history: &HistoryEntry,
    ) -> Result<Vec<bool>> {
        let data = switches
            .iter()
            .map(|(conn, _)| json(conn))
            .collect::<Result<Vec<_>>>()?;
        self.write(|c| {
            let tx = c.transaction()?;
            let mut switched = Vec::with_capacity(switches.len());
            for ((conn, expected), data) in switches.iter().zip(&data) {
                let ok = update_connection(&tx, conn, data, *expected)? == 1;
                if ok {
                    add_history(&tx, Some(&conn.id), Some(&conn.client_key), history)?;
                }
                switched.push(ok);
            }
            tx.commit()?;
            Ok(switched)
        })
    }

    pub fn delete_connection(&self, id: &str) -> Result<()> {
        self.write(|c| c.execute("DELETE FROM connections WHERE id = ?1", [id]))?;
        Ok(())
    }
}
