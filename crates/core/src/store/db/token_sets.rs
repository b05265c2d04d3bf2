//! Token sets: one keyring entry holding the tokens of many connections (a batch
//! refresh), and which connections use them.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection as Sqlite, OptionalExtension};

use super::connections::{connection_of, connection_row, ConnectionRow, CONNECTION_COLUMNS};
use super::{from_ms, ms, Db};
use crate::error::{Error, Result};
use crate::model::Connection;

/// What the store knows about one token set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSetRecord {
    pub id: String,
    pub created_at: DateTime<Utc>,
    /// `(connection id, generation)` the entry was written with.
    pub members: Vec<(String, i64)>,
    /// `(connection id, generation)` of own entries that switched members left and that
    /// may still exist.
    pub left_entries: Vec<(String, i64)>,
    /// Members whose connection currently uses this set.
    pub live: Vec<String>,
    /// Members whose connection is exactly one generation behind and not on this set:
    /// an interrupted (or still running) switch to this set.
    pub adoptable: Vec<String>,
}

fn token_set_ahead_of(
    c: &Sqlite,
    connection_id: &str,
    generation: i64,
) -> rusqlite::Result<Option<String>> {
    c.prepare_cached(
        "SELECT set_id FROM token_set_members WHERE connection_id = ?1 AND generation = ?2",
    )?
    .query_row(params![connection_id, generation + 1], |r| r.get(0))
    .optional()
}

impl Db {
    /// Mark (or, `None`, unmark) a generation as being written to a connection's own
    /// keyring entry.
    pub fn set_pending_generation(&self, id: &str, generation: Option<i64>) -> Result<()> {
        self.write(|c| {
            c.execute(
                "UPDATE connections SET pending_generation = ?2 WHERE id = ?1",
                params![id, generation],
            )
        })?;
        Ok(())
    }

    /// Record a token set and its members before its keyring entry is written: per
    /// member `(connection id, new generation, generation of the own entry it leaves)`.
    pub fn insert_token_set(
        &self,
        id: &str,
        created_at: DateTime<Utc>,
        members: &[(String, i64, Option<i64>)],
    ) -> Result<()> {
        self.write(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT INTO token_sets (id, created_at) VALUES (?1, ?2)",
                params![id, ms(created_at)],
            )?;
            {
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO token_set_members (set_id, connection_id, generation, left_entry) VALUES (?1, ?2, ?3, ?4)",
                )?;
                for (connection_id, generation, left_entry) in members {
                    stmt.execute(params![id, connection_id, generation, left_entry])?;
                }
            }
            tx.commit()
        })
    }

    /// A connection by id and, like [`Self::token_set_ahead_of`], a token set holding its
    /// next generation: what a refresh re-reads under the connection's lock, in one call.
    pub fn connection_for_update(&self, id: &str) -> Result<(Connection, Option<String>)> {
        let found: Option<(ConnectionRow, Option<String>)> = self.with(|c| {
            let Some((row, generation)) = c
                .prepare_cached(&format!(
                    "SELECT {CONNECTION_COLUMNS}, secret_generation FROM connections WHERE id = ?1"
                ))?
                .query_row([id], |r| Ok((connection_row(r)?, r.get::<_, i64>(3)?)))
                .optional()?
            else {
                return Ok(None);
            };
            let ahead = token_set_ahead_of(c, id, generation)?;
            Ok(Some((row, ahead)))
        })?;
        let (row, ahead) = found.ok_or_else(|| {
            Error::not_found(format!("No connection {id:?}: see `authdeckctl list`."))
        })?;
        Ok((connection_of(&row)?, ahead))
    }

    /// The token set a connection at `generation` was (or is being) switched away to:
    /// one that holds its tokens at `generation + 1`.
    pub fn token_set_ahead_of(
        &self,
        connection_id: &str,
        generation: i64,
    ) -> Result<Option<String>> {
        self.with(|c| token_set_ahead_of(c, connection_id, generation))
    }

    /// A token set's record; `None` if there is none.
    pub fn token_set(&self, id: &str) -> Result<Option<TokenSetRecord>> {
        self.with(|c| {
            let Some(created_at) = c
                .query_row(
                    "SELECT created_at FROM token_sets WHERE id = ?1",
                    [id],
                    |r| r.get::<_, i64>(0),
                )
                .optional()?
            else {
                return Ok(None);
            };
            let mut stmt = c.prepare_cached(
                "SELECT m.connection_id, m.generation, m.left_entry, c.secret_generation, c.token_set
                 FROM token_set_members m LEFT JOIN connections c ON c.id = m.connection_id
                 WHERE m.set_id = ?1 ORDER BY m.connection_id",
            )?;
            let rows = stmt.query_map([id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Option<i64>>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                    r.get::<_, Option<String>>(4)?,
                ))
            })?;
            let mut record = TokenSetRecord {
                id: id.to_owned(),
                created_at: from_ms(created_at),
                members: Vec::new(),
                left_entries: Vec::new(),
                live: Vec::new(),
                adoptable: Vec::new(),
            };
            for row in rows {
                let (member, generation, left_entry, current, on_set) = row?;
                let on_this_set = on_set.as_deref() == Some(id);
                let adoptable = !on_this_set && current == Some(generation - 1);
                if on_this_set && current == Some(generation) {
                    record.live.push(member.clone());
                } else if adoptable {
                    record.adoptable.push(member.clone());
                }
                if let (Some(left), false) = (left_entry, adoptable) {
                    record.left_entries.push((member.clone(), left));
                }
                record.members.push((member, generation));
            }
            Ok(Some(record))
        })
    }

    /// Every token set's id, oldest first.
    pub fn token_set_ids(&self) -> Result<Vec<String>> {
        self.with(|c| {
            let mut stmt = c.prepare_cached("SELECT id FROM token_sets ORDER BY created_at, id")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            rows.collect()
        })
    }

    /// Forget members of a token set (after its entry was rewritten without them).
    pub fn remove_token_set_members(&self, id: &str, members: &[String]) -> Result<()> {
        self.for_each_member(
            "DELETE FROM token_set_members WHERE set_id = ?1 AND connection_id = ?2",
            id,
            members,
        )
    }

    /// Forget that members left own entries (after those were deleted).
    pub fn clear_left_entries(&self, id: &str, members: &[String]) -> Result<()> {
        self.for_each_member(
            "UPDATE token_set_members SET left_entry = NULL WHERE set_id = ?1 AND connection_id = ?2",
            id,
            members,
        )
    }

    /// Run `sql` (parameters: set id, connection id) for each member, in one transaction.
    fn for_each_member(&self, sql: &str, id: &str, members: &[String]) -> Result<()> {
        self.write(|c| {
            let tx = c.transaction()?;
            {
                let mut stmt = tx.prepare_cached(sql)?;
                for member in members {
                    stmt.execute(params![id, member])?;
                }
            }
            tx.commit()
        })
    }

    /// Forget a token set (after its keyring entry was deleted).
    pub fn delete_token_set(&self, id: &str) -> Result<()> {
        self.write(|c| c.execute("DELETE FROM token_sets WHERE id = ?1", [id]))?;
        Ok(())
    }
}
