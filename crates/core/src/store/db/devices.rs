//! IoT devices (no secret: their Token and Secret are in the keyring) and their history.

use rusqlite::params;

use super::history::{capped_detail, history_entry};
use super::{json, ms, unjson, Db};
use crate::error::{Error, ErrorCode, Result};
use crate::model::{Device, HistoryEntry};

impl Db {
    pub fn insert_device(&self, device: &Device) -> Result<()> {
        let data = json(device)?;
        let inserted = self.write(|c| {
            c.execute(
                "INSERT INTO devices (id, client_id, connection_id, name, data, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (name) DO NOTHING",
                params![device.id, device.client_key, device.connection_id, device.name, data, ms(device.created_at)],
            )
        })?;
        if inserted == 0 {
            return Err(Error::new(
                ErrorCode::AlreadyExists,
                format!(
                    "A device named {:?} exists already: pick another name.",
                    device.name
                ),
            ));
        }
        Ok(())
    }

    pub fn devices(&self) -> Result<Vec<Device>> {
        let rows: Vec<String> = self.with(|c| {
            let mut stmt = c.prepare_cached("SELECT data FROM devices ORDER BY name")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            rows.collect()
        })?;
        rows.iter().map(|t| unjson(t)).collect()
    }

    /// A device by id, name, or a unique id prefix (at least 4 characters).
    pub fn device(&self, reference: &str) -> Result<Device> {
        let rows: Vec<String> = self.with(|c| {
            for sql in [
                "SELECT data FROM devices WHERE id = ?1",
                "SELECT data FROM devices WHERE name = ?1",
            ] {
                let mut stmt = c.prepare_cached(sql)?;
                let rows: Vec<String> = stmt
                    .query_map([reference], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
                if !rows.is_empty() {
                    return Ok(rows);
                }
            }
            if reference.chars().count() < 4 {
                return Ok(Vec::new());
            }
            let mut stmt =
                c.prepare_cached("SELECT data FROM devices WHERE substr(id, 1, length(?1)) = ?1")?;
            let rows = stmt.query_map([reference], |r| r.get(0))?;
            rows.collect()
        })?;
        match rows.as_slice() {
            [one] => unjson(one),
            [] => Err(Error::not_found(format!(
                "No device {reference:?}: see `authdeckctl device list`."
            ))),
            _ => Err(Error::invalid_input(format!(
                "{reference:?} matches several devices: give more of the id, or the name."
            ))),
        }
    }

    /// Rewrite a device's record (same id).
    pub fn update_device(&self, device: &Device) -> Result<()> {
        let data = json(device)?;
        let updated = self.write(|c| {
            c.execute(
                "UPDATE devices SET data = ?2 WHERE id = ?1",
                params![device.id, data],
            )
        })?;
        if updated == 0 {
            return Err(Error::not_found(format!(
                "No device {:?}: see `authdeckctl device list`.",
                device.name
            )));
        }
        Ok(())
    }

    pub fn delete_device(&self, id: &str) -> Result<()> {
        self.write(|c| c.execute("DELETE FROM devices WHERE id = ?1", [id]))?;
        Ok(())
    }

    pub fn device_count_for_client(&self, client_key: &str) -> Result<usize> {
        self.with(|c| {
            c.query_row(
                "SELECT COUNT(*) FROM devices WHERE client_id = ?1",
                [client_key],
                |r| r.get::<_, i64>(0),
            )
        })
        .map(|n| n as usize)
    }

    /// A history entry of a device (no connection id).
    pub fn add_device_history(
        &self,
        device_id: &str,
        client_key: &str,
        entry: &HistoryEntry,
    ) -> Result<()> {
        self.write(|c| {
            c.prepare_cached(
                "INSERT INTO history (connection_id, client_id, device_id, at, event, outcome, detail)
                 VALUES (NULL, ?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                client_key,
                device_id,
                ms(entry.at),
                entry.event,
                entry.outcome,
                capped_detail(entry.detail.as_deref())
            ])
        })?;
        Ok(())
    }

    /// A device's history, newest first.
    pub fn device_history(&self, device_id: &str, limit: usize) -> Result<Vec<HistoryEntry>> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT at, event, outcome, detail, count FROM history WHERE device_id = ?1 ORDER BY id DESC LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![device_id, limit as i64], history_entry)?;
            rows.collect()
        })
    }
}
