//! Clients (app registrations).

use rusqlite::{params, OptionalExtension};

use super::{json, ms, unjson, Db};
use crate::error::{Error, ErrorCode, Result};
use crate::model::Client;

impl Db {
    pub fn insert_client(&self, client: &Client) -> Result<()> {
        let data = json(client)?;
        let inserted = self.write(|c| {
            c.execute(
                "INSERT INTO clients (id, name, provider, data, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (name) DO NOTHING",
                params![client.id, client.name, client.provider.as_str(), data, ms(client.created_at)],
            )
        })?;
        if inserted == 0 {
            return Err(Error::new(
                ErrorCode::AlreadyExists,
                format!(
                    "A client named {:?} exists already: pick another name.",
                    client.name
                ),
            ));
        }
        Ok(())
    }

    pub fn clients(&self) -> Result<Vec<Client>> {
        let rows: Vec<String> = self.with(|c| {
            let mut stmt = c.prepare_cached("SELECT data FROM clients ORDER BY name")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            rows.collect()
        })?;
        rows.iter().map(|t| unjson(t)).collect()
    }

    /// A client by id or by name.
    pub fn client(&self, reference: &str) -> Result<Client> {
        let row: Option<String> = self.with(|c| {
            c.query_row(
                "SELECT data FROM clients WHERE id = ?1 OR name = ?1",
                [reference],
                |r| r.get(0),
            )
            .optional()
        })?;
        match row {
            Some(t) => unjson(&t),
            None => Err(Error::not_found(format!(
                "No client named {reference:?}: see `authdeckctl client list`."
            ))),
        }
    }

    /// Rewrite a client's record (same id and name).
    pub fn update_client(&self, client: &Client) -> Result<()> {
        let data = json(client)?;
        let updated = self.write(|c| {
            c.execute(
                "UPDATE clients SET data = ?2 WHERE id = ?1 AND name = ?3",
                params![client.id, data, client.name],
            )
        })?;
        if updated == 0 {
            return Err(Error::not_found(format!(
                "No client named {:?}: see `authdeckctl client list`.",
                client.name
            )));
        }
        Ok(())
    }

    pub fn delete_client(&self, id: &str) -> Result<()> {
        self.write(|c| c.execute("DELETE FROM clients WHERE id = ?1", [id]))?;
        Ok(())
    }

    pub fn connection_count_for_client(&self, client_key: &str) -> Result<usize> {
        self.with(|c| {
            c.query_row(
                "SELECT COUNT(*) FROM connections WHERE client_id = ?1",
                [client_key],
                |r| r.get::<_, i64>(0),
            )
        })
        .map(|n| n as usize)
    }
}
