//! Metadata, history and pending authorizations in SQLite. Never a secret: tokens and
//! client secrets live in the keyring (see [`super::SecretStore`]); this file stores only
//! which keyring *generation* holds a connection's current tokens.
//!
//! Several processes (the app, any number of `authdeckctl`s) share one database file:
//! WAL mode and a busy timeout let them take turns.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection as Sqlite, OptionalExtension};
use rusqlite_migration::{Migrations, M};

use crate::error::{Error, ErrorCode, Result};
use crate::model::{Client, Connection, HistoryEntry};

/// Versioned schema. Append new migrations; never edit a released one.
fn migrations() -> Migrations<'static> {
    Migrations::new(vec![M::up(
        r#"
        CREATE TABLE clients (
            id          TEXT PRIMARY KEY,
            name        TEXT NOT NULL UNIQUE,
            provider    TEXT NOT NULL,
            data        TEXT NOT NULL,          -- JSON of model::Client
            created_at  INTEGER NOT NULL
        );
        CREATE TABLE connections (
            id                 TEXT PRIMARY KEY,
            client_id          TEXT NOT NULL REFERENCES clients(id),
            natural_key        TEXT NOT NULL,   -- supportCode / grant+child key / user id
            label              TEXT NOT NULL,
            data               TEXT NOT NULL,   -- JSON of model::Connection (no secrets)
            secret_generation  INTEGER NOT NULL,
            created_at         INTEGER NOT NULL,
            updated_at         INTEGER NOT NULL,
            UNIQUE (client_id, natural_key)
        );
        CREATE INDEX connections_by_label ON connections(label);
        -- History outlives its connection (a disconnect keeps it), hence no foreign key.
        CREATE TABLE history (
            id             INTEGER PRIMARY KEY AUTOINCREMENT,
            connection_id  TEXT,
            client_id      TEXT,
            at             INTEGER NOT NULL,
            event          TEXT NOT NULL,
            outcome        TEXT NOT NULL,
            detail         TEXT
        );
        CREATE INDEX history_by_connection ON history(connection_id, id);
        -- state_hash = SHA-256 of the OAuth state: the state itself is a bearer value.
        CREATE TABLE pending_authorizations (
            state_hash               TEXT PRIMARY KEY,
            client_id                TEXT NOT NULL,
            redirect_uri             TEXT NOT NULL,
            pkce                     INTEGER NOT NULL,
            reconnect_connection_id  TEXT,
            created_at               INTEGER NOT NULL,
            expires_at               INTEGER NOT NULL,
            consumed_at              INTEGER
        );
        "#,
    )])
}

/// A pending FlowAccount authorization, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRecord {
    pub state_hash: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub pkce: bool,
    pub reconnect_connection_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub consumed_at: Option<DateTime<Utc>>,
}

pub struct Db {
    conn: Mutex<Sqlite>,
}

fn ms(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

fn from_ms(v: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(v).unwrap_or_default()
}

fn json<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value)
        .map_err(|e| Error::internal("Could not encode a record.").with_detail(e.to_string()))
}

fn unjson<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(Error::storage)
}

impl Db {
    pub fn open(path: &Path) -> Result<Self> {
        let conn = Sqlite::open(path).map_err(Error::storage)?;
        Self::init(conn)
    }

    /// A private in-memory database (unit tests).
    pub fn open_in_memory() -> Result<Self> {
        Self::init(Sqlite::open_in_memory().map_err(Error::storage)?)
    }

    fn init(mut conn: Sqlite) -> Result<Self> {
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(Error::storage)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(Error::storage)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(Error::storage)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(Error::storage)?;
        migrations().to_latest(&mut conn).map_err(Error::storage)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut Sqlite) -> rusqlite::Result<T>) -> Result<T> {
        let mut guard = self
            .conn
            .lock()
            .map_err(|_| Error::internal("The database handle was poisoned by a panic."))?;
        f(&mut guard).map_err(Error::storage)
    }

    // ---- clients -------------------------------------------------------------------

    pub fn insert_client(&self, client: &Client) -> Result<()> {
        let data = json(client)?;
        let inserted = self.with(|c| {
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

    pub fn delete_client(&self, id: &str) -> Result<()> {
        self.with(|c| c.execute("DELETE FROM clients WHERE id = ?1", [id]))?;
        Ok(())
    }

    pub fn connection_count_for_client(&self, client_id: &str) -> Result<usize> {
        self.with(|c| {
            c.query_row(
                "SELECT COUNT(*) FROM connections WHERE client_id = ?1",
                [client_id],
                |r| r.get::<_, i64>(0),
            )
        })
        .map(|n| n as usize)
    }

    // ---- connections ---------------------------------------------------------------

    pub fn insert_connection(&self, conn: &Connection, natural_key: &str) -> Result<()> {
        let data = json(conn)?;
        self.with(|c| {
            c.execute(
                "INSERT INTO connections (id, client_id, natural_key, label, data, secret_generation, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    conn.id,
                    conn.client_id,
                    natural_key,
                    conn.label,
                    data,
                    conn.secret_generation,
                    ms(conn.created_at),
                    ms(conn.updated_at)
                ],
            )
        })?;
        Ok(())
    }

    pub fn connections(&self) -> Result<Vec<Connection>> {
        let rows: Vec<String> = self.with(|c| {
            let mut stmt = c.prepare_cached("SELECT data FROM connections ORDER BY label, id")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            rows.collect()
        })?;
        rows.iter().map(|t| unjson(t)).collect()
    }

    /// A connection by id, by label, or by an unambiguous id prefix (≥ 4 characters).
    pub fn connection(&self, reference: &str) -> Result<Connection> {
        let rows: Vec<String> = self.with(|c| {
            let mut stmt = c.prepare_cached("SELECT data FROM connections WHERE id = ?1")?;
            let exact: Vec<String> = stmt
                .query_map([reference], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            if !exact.is_empty() {
                return Ok(exact);
            }
            let mut stmt = c.prepare_cached("SELECT data FROM connections WHERE label = ?1")?;
            let by_label: Vec<String> = stmt
                .query_map([reference], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            if !by_label.is_empty() || reference.len() < 4 {
                return Ok(by_label);
            }
            let mut stmt = c.prepare_cached(
                "SELECT data FROM connections WHERE substr(id, 1, length(?1)) = ?1",
            )?;
            let rows = stmt.query_map([reference], |r| r.get(0))?;
            rows.collect()
        })?;
        match rows.len() {
            1 => unjson(&rows[0]),
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
        client_id: &str,
        natural_key: &str,
    ) -> Result<Option<Connection>> {
        let row: Option<String> = self.with(|c| {
            c.query_row(
                "SELECT data FROM connections WHERE client_id = ?1 AND natural_key = ?2",
                [client_id, natural_key],
                |r| r.get(0),
            )
            .optional()
        })?;
        row.map(|t| unjson(&t)).transpose()
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
    /// new keyring entries; it only happens if nobody else switched it first.
    /// Returns `false` (and writes nothing) when the stored generation was not the expected one.
    pub fn update_connection(&self, conn: &Connection, expected_generation: i64) -> Result<bool> {
        let data = json(conn)?;
        let n = self.with(|c| {
            c.execute(
                "UPDATE connections SET label = ?2, data = ?3, secret_generation = ?4, updated_at = ?5
                 WHERE id = ?1 AND secret_generation = ?6",
                params![conn.id, conn.label, data, conn.secret_generation, ms(conn.updated_at), expected_generation],
            )
        })?;
        Ok(n == 1)
    }

    pub fn delete_connection(&self, id: &str) -> Result<()> {
        self.with(|c| c.execute("DELETE FROM connections WHERE id = ?1", [id]))?;
        Ok(())
    }

    // ---- history -------------------------------------------------------------------

    pub fn add_history(
        &self,
        connection_id: Option<&str>,
        client_id: Option<&str>,
        entry: &HistoryEntry,
    ) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO history (connection_id, client_id, at, event, outcome, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![connection_id, client_id, ms(entry.at), entry.event, entry.outcome, entry.detail],
            )
        })?;
        Ok(())
    }

    /// Newest first. `connection_id = None` lists everything, including rejected callbacks.
    pub fn history(&self, connection_id: Option<&str>, limit: usize) -> Result<Vec<HistoryEntry>> {
        self.with(|c| {
            let map = |r: &rusqlite::Row<'_>| {
                Ok(HistoryEntry {
                    at: from_ms(r.get(0)?),
                    event: r.get(1)?,
                    outcome: r.get(2)?,
                    detail: r.get(3)?,
                })
            };
            let limit = limit as i64;
            match connection_id {
                Some(id) => {
                    let mut stmt = c.prepare_cached(
                        "SELECT at, event, outcome, detail FROM history WHERE connection_id = ?1 ORDER BY id DESC LIMIT ?2",
                    )?;
                    let rows = stmt.query_map(params![id, limit], map)?;
                    rows.collect()
                }
                None => {
                    let mut stmt = c.prepare_cached(
                        "SELECT at, event, outcome, detail FROM history ORDER BY id DESC LIMIT ?1",
                    )?;
                    let rows = stmt.query_map(params![limit], map)?;
                    rows.collect()
                }
            }
        })
    }

    // ---- pending authorizations ----------------------------------------------------

    pub fn insert_pending(&self, p: &PendingRecord) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO pending_authorizations (state_hash, client_id, redirect_uri, pkce, reconnect_connection_id, created_at, expires_at, consumed_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL)",
                params![p.state_hash, p.client_id, p.redirect_uri, p.pkce, p.reconnect_connection_id, ms(p.created_at), ms(p.expires_at)],
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
                        client_id: r.get(1)?,
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
        let n = self.with(|c| {
            c.execute(
                "UPDATE pending_authorizations SET consumed_at = ?2 WHERE state_hash = ?1 AND consumed_at IS NULL",
                params![state_hash, ms(now)],
            )
        })?;
        Ok(n == 1)
    }

    /// Forget pending authorizations that ended more than a day ago (replays of those are
    /// still rejected: an unknown state is rejected too).
    pub fn purge_pending(&self, older_than: DateTime<Utc>) -> Result<()> {
        self.with(|c| {
            c.execute(
                "DELETE FROM pending_authorizations WHERE expires_at < ?1",
                [ms(older_than)],
            )
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;

    fn client(name: &str) -> Client {
        Client {
            id: format!("id-{name}"),
            name: name.into(),
            provider: Provider::Fedex,
            environment: Environment::Sandbox,
            client_id: "key".into(),
            endpoints: Endpoints {
                authorize_url: None,
                token_url: "https://apis-sandbox.fedex.com/oauth/token"
                    .parse()
                    .unwrap(),
                logout_url: None,
            },
            options: ClientOptions::default(),
            has_secret: true,
            created_at: Utc::now(),
        }
    }

    fn connection(id: &str, client_id: &str, label: &str) -> Connection {
        let now = Utc::now();
        Connection {
            id: id.into(),
            client_id: client_id.into(),
            client_name: "c".into(),
            provider: Provider::Fedex,
            environment: Environment::Sandbox,
            label: label.into(),
            support_code: None,
            grant: Some(FedexGrant::ClientCredentials),
            child_key: None,
            username: None,
            user_id: None,
            userinfo: None,
            scope: Some("CXS".into()),
            token_type: Some("bearer".into()),
            access_expires: Some(Expiry::new(now, ExpirySource::RelativeSeconds)),
            refresh_expires: None,
            jwt: None,
            state: ConnectionState::Active,
            keep_fresh: false,
            last_refresh_at: None,
            last_error: None,
            created_at: now,
            updated_at: now,
            secret_generation: 1,
        }
    }

    #[test]
    fn client_names_are_unique() {
        let db = Db::open_in_memory().unwrap();
        db.insert_client(&client("a")).unwrap();
        let err = db
            .insert_client(&Client {
                id: "other".into(),
                ..client("a")
            })
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::AlreadyExists);
        assert_eq!(db.client("a").unwrap().id, "id-a");
        assert_eq!(db.client("id-a").unwrap().name, "a");
        assert_eq!(db.client("zzz").unwrap_err().code, ErrorCode::NotFound);
    }

    #[test]
    fn connection_lookup_by_id_label_and_prefix() {
        let db = Db::open_in_memory().unwrap();
        db.insert_client(&client("a")).unwrap();
        db.insert_connection(&connection("abcd1234", "id-a", "one"), "k1")
            .unwrap();
        db.insert_connection(&connection("abce9999", "id-a", "two"), "k2")
            .unwrap();
        assert_eq!(db.connection("abcd1234").unwrap().label, "one");
        assert_eq!(db.connection("two").unwrap().id, "abce9999");
        assert_eq!(db.connection("abcd").unwrap().id, "abcd1234");
        assert_eq!(db.connection("abc").unwrap_err().code, ErrorCode::NotFound);
        assert_eq!(db.connection("abc%").unwrap_err().code, ErrorCode::NotFound);
        db.insert_connection(&connection("abcf0000", "id-a", "three"), "k3")
            .unwrap();
        assert_eq!(db.connection("abcf").unwrap().id, "abcf0000");
        assert_eq!(db.connection_count_for_client("id-a").unwrap(), 3);
    }

    #[test]
    fn generation_switch_is_conditional() {
        let db = Db::open_in_memory().unwrap();
        db.insert_client(&client("a")).unwrap();
        let mut c = connection("c1", "id-a", "one");
        db.insert_connection(&c, "k").unwrap();
        c.secret_generation = 2;
        assert!(db.update_connection(&c, 1).unwrap());
        c.secret_generation = 3;
        assert!(
            !db.update_connection(&c, 1).unwrap(),
            "stale expected generation must not win"
        );
        assert_eq!(db.secret_generation("c1").unwrap(), Some(2));
    }

    #[test]
    fn pending_is_single_use() {
        let db = Db::open_in_memory().unwrap();
        let now = Utc::now();
        let p = PendingRecord {
            state_hash: "h".into(),
            client_id: "c".into(),
            redirect_uri: "x:/y".into(),
            pkce: true,
            reconnect_connection_id: None,
            created_at: now,
            expires_at: now + chrono::Duration::minutes(10),
            consumed_at: None,
        };
        db.insert_pending(&p).unwrap();
        assert_eq!(db.pending("h").unwrap().unwrap().redirect_uri, "x:/y");
        assert!(db.consume_pending("h", now).unwrap());
        assert!(!db.consume_pending("h", now).unwrap());
        assert!(db.pending("h").unwrap().unwrap().consumed_at.is_some());
    }

    #[test]
    fn history_survives_connection_delete() {
        let db = Db::open_in_memory().unwrap();
        db.insert_client(&client("a")).unwrap();
        db.insert_connection(&connection("c1", "id-a", "one"), "k")
            .unwrap();
        // History is stored with millisecond precision.
        let at = DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap();
        let e = HistoryEntry {
            at,
            event: "connect".into(),
            outcome: "ok".into(),
            detail: None,
        };
        db.add_history(Some("c1"), Some("id-a"), &e).unwrap();
        db.delete_connection("c1").unwrap();
        assert_eq!(db.history(Some("c1"), 10).unwrap(), vec![e]);
    }
}
