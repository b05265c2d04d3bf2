//! Metadata, history and pending authorizations in SQLite. Never a secret: tokens and
//! client secrets live in the keyring (see [`super::SecretStore`]); this file stores only
//! which keyring entry (*generation*, and *token set* if any) holds a connection's
//! current tokens, and which token sets exist and whom they were written for.
//!
//! Several processes (the app, any number of `authdeckctl`s) share one database file:
//! WAL mode and a busy timeout let them take turns.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection as Sqlite, OptionalExtension};
use rusqlite_migration::{Migrations, M};

use crate::error::{Error, ErrorCode, Result};
use crate::model::{Client, Connection, Device, HistoryEntry};

/// Versioned schema. Append new migrations; never edit a released one.
fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(
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
        ),
        // Token sets: one keyring entry for the tokens of many connections (a batch
        // refresh writes one per batch instead of one per connection). A `token_sets`
        // row and its members are written BEFORE the keyring entry: they are how an
        // interrupted batch is found and finished, and how unused sets are swept.
        M::up(
            r#"
        ALTER TABLE connections ADD COLUMN token_set TEXT;
        -- A generation being written to the connection's own keyring entry: set before
        -- the write, cleared by the switch. Rows from before this column might have an
        -- interrupted write behind them: look once.
        ALTER TABLE connections ADD COLUMN pending_generation INTEGER;
        UPDATE connections SET pending_generation = secret_generation + 1;
        CREATE INDEX connections_by_token_set ON connections(token_set) WHERE token_set IS NOT NULL;
        CREATE TABLE token_sets (
            id          TEXT PRIMARY KEY,
            created_at  INTEGER NOT NULL
        );
        -- The entry holds these connections' tokens at these generations (or will, once
        -- written). A member whose connection is still one generation behind is an
        -- interrupted switch to be finished.
        CREATE TABLE token_set_members (
            set_id         TEXT NOT NULL REFERENCES token_sets(id) ON DELETE CASCADE,
            connection_id  TEXT NOT NULL,
            generation     INTEGER NOT NULL,
            -- The generation of the connection's own entry it left for this set, until
            -- that entry is deleted.
            left_entry     INTEGER,
            PRIMARY KEY (set_id, connection_id)
        );
        CREATE INDEX token_set_members_by_connection ON token_set_members(connection_id, generation);
        "#,
        ),
        // Which store this database is (see `vault::check_store`): the same id is kept in
        // the keyring, so a database that was deleted and came back empty is noticed.
        // `registered` = the keyring has been told.
        M::up(
            r#"
        CREATE TABLE store_identity (
            id          TEXT PRIMARY KEY,
            registered  INTEGER NOT NULL DEFAULT 0
        );
        "#,
        ),
        // PKCE (S256) on by default for FlowAccount clients, existing ones included: it is
        // what stops an injected authorization code (RFC 9700 §4.5), and FlowAccount's
        // IdentityServer accepts it from any client. A pending authorization records how
        // it ended (`ok`, an error code, or `cancelled`) once its state was used.
        M::up(
            r#"
        UPDATE clients SET data = json_set(data, '$.options.pkce', json('true'))
            WHERE provider = 'flowaccount';
        ALTER TABLE pending_authorizations ADD COLUMN outcome TEXT;
        "#,
        ),
        // The built-in sandbox's demo clients and their connections carry
        // `"sandbox": true` in their records (model `Client::sandbox`,
        // `Connection::sandbox`). Those an earlier version's sandbox added (fixed port
        // 47801) are recognised by name, demo client id and endpoint, and marked too.
        M::up(
            r#"
        UPDATE clients SET data = json_set(data, '$.sandbox', json('true'))
         WHERE (name, json_extract(data, '$.client_id')) IN (VALUES
                 ('sandbox-flowaccount', 'demo-flowaccount'),
                 ('sandbox-flowaccount-loopback', 'demo-flowaccount'),
                 ('sandbox-fedex', 'demo-fedex-key'),
                 ('sandbox-iot', 'demo-iot-client'))
           AND json_extract(data, '$.endpoints.token_url') LIKE 'http://127.0.0.1:47801/%';
        UPDATE connections SET data = json_set(data, '$.sandbox', json('true'))
         WHERE client_id IN (SELECT id FROM clients WHERE json_extract(data, '$.sandbox') = 1);
        "#,
        ),
        // Coalesced history: events a burst can repeat (rejected redirects: any local
        // program can fire the URL scheme) count into one row per kind and minute.
        // `kind` is the coalescing key (NULL: never coalesced), `count` how many.
        M::up(
            r#"
        ALTER TABLE history ADD COLUMN count INTEGER NOT NULL DEFAULT 1;
        ALTER TABLE history ADD COLUMN kind TEXT;
        CREATE INDEX history_by_kind ON history(kind, at) WHERE kind IS NOT NULL;
        "#,
        ),
        // The activity view names the connection of every history row, also after the
        // connection is gone: its label and provider, kept by triggers (never deleted).
        M::up(
            r#"
        CREATE TABLE connection_names (
            connection_id  TEXT PRIMARY KEY,
            label          TEXT NOT NULL,
            provider       TEXT
        );
        INSERT OR REPLACE INTO connection_names
            SELECT id, label, json_extract(data, '$.provider') FROM connections;
        CREATE TRIGGER connection_names_on_insert AFTER INSERT ON connections BEGIN
            INSERT OR REPLACE INTO connection_names
                VALUES (NEW.id, NEW.label, json_extract(NEW.data, '$.provider'));
        END;
        CREATE TRIGGER connection_names_on_update AFTER UPDATE OF label ON connections BEGIN
            INSERT OR REPLACE INTO connection_names
                VALUES (NEW.id, NEW.label, json_extract(NEW.data, '$.provider'));
        END;
        "#,
        ),
        // IoT devices (PROVIDERS.md §3 item 5) under an IoT client, optionally owned by
        // an IoT connection (no foreign key: a logged-out account leaves its devices).
        // No secret here: the Token and Secret are in the keyring. History rows of a
        // device carry its id in `device_id` (and no connection id).
        M::up(
            r#"
        CREATE TABLE devices (
            id             TEXT PRIMARY KEY,
            client_id      TEXT NOT NULL REFERENCES clients(id),
            connection_id  TEXT,
            name           TEXT NOT NULL UNIQUE,
            data           TEXT NOT NULL,   -- JSON of model::Device (no secrets)
            created_at     INTEGER NOT NULL
        );
        ALTER TABLE history ADD COLUMN device_id TEXT;
        CREATE INDEX history_by_device ON history(device_id, id) WHERE device_id IS NOT NULL;
        "#,
        ),
    ])
}

/// History rows of one kind coalesce within one clock minute (UTC), in milliseconds.
pub const HISTORY_COALESCE_MS: i64 = 60_000;

/// Whether the keyring has been told a store's id (see `vault::check_store`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    /// Recorded here only: the keyring write is still to be done.
    Pending,
    /// The keyring holds the same id.
    Registered,
}

impl From<bool> for Registration {
    fn from(registered: bool) -> Self {
        if registered {
            Self::Registered
        } else {
            Self::Pending
        }
    }
}

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

pub struct Db {
    conn: Mutex<Sqlite>,
    /// The database file; `None` in memory.
    path: Option<PathBuf>,
    /// (device, inode) of the file when it was opened: a commit is only reported once
    /// the file at `path` is still this one (see [`Db::verify_file`]).
    file_id: Option<(u64, u64)>,
    /// Opened read-only because it could not be opened for writing (a full disk): why.
    /// Reads work; a write tries to reopen for writing, else fails with this error.
    read_only: Mutex<Option<Error>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A writable handle on the database at `path`, its schema up to date.
fn connect_writable(path: &Path) -> Result<Sqlite> {
    let shown = path.display().to_string();
    let conn = Sqlite::open(path).map_err(|e| sqlite_error(&shown, &e))?;
    prepare(conn, &shown, false)
}

/// Read-only, with the shared-memory file read-only too (`readonly_shm`): nothing is
/// written, not even the `-shm` file. Needs `-shm` and `-wal` to exist (a failed
/// writable open leaves them).
fn connect_read_only(path: &Path) -> Result<Sqlite> {
    use rusqlite::OpenFlags;
    let shown = path.display().to_string();
    let mut uri = url::Url::from_file_path(path)
        .map_err(|()| Error::internal("The database path is not absolute."))?;
    uri.set_query(Some("mode=ro&readonly_shm=1"));
    let conn = Sqlite::open_with_flags(
        uri.as_str(),
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| sqlite_error(&shown, &e))?;
    prepare(conn, &shown, true)
}

/// Settings and schema. Opening a store that is up to date writes nothing.
fn prepare(mut conn: Sqlite, shown: &str, read_only: bool) -> Result<Sqlite> {
    let fail = |e: rusqlite::Error| sqlite_error(shown, &e);
    conn.busy_timeout(Duration::from_secs(10)).map_err(fail)?;
    // Only written when it changes: a store opened before is in WAL mode already.
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .map_err(fail)?;
    if !mode.eq_ignore_ascii_case("wal") && !read_only {
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(fail)?;
    }
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(fail)?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(fail)?;
    // Up to date, this only reads `user_version`; on a read-only handle an update
    // fails, and the caller reports why the writable open failed.
    migrations()
        .to_latest(&mut conn)
        .map_err(|e| migration_error(shown, e))?;
    Ok(conn)
}

/// The longest history detail stored, in characters (the rest is cut, marked with `…`).
pub const MAX_HISTORY_DETAIL: usize = 2000;

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

/// What to do when the store is lost or damaged (in every such message).
pub const RECOVER: &str = "Restore the data directory from a backup, or start over with `authdeckctl reset` (this also deletes the secrets the old store left in the keyring).";

/// (device, inode) of a file.
fn identity_of(meta: &std::fs::Metadata) -> (u64, u64) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        (meta.dev(), meta.ino())
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        (0, 0)
    }
}

fn file_id(path: &Path) -> std::io::Result<(u64, u64)> {
    std::fs::metadata(path).map(|m| identity_of(&m))
}

fn file_error(shown: &str, e: &std::io::Error) -> Error {
    let cause = super::paths::io_cause(e);
    Error::new(
        ErrorCode::Storage,
        format!("The database {shown} could not be checked: {cause}."),
    )
    .with_detail(e.to_string())
}

/// Whether a failed writable open is worth retrying read-only: the disk is full (or
/// failed to grow a file, which is how a full disk looks to SQLite's shared memory).
fn falls_back_to_read_only(e: &Error) -> bool {
    e.code == ErrorCode::Storage && e.message.contains(DISK_FULL)
}

const DISK_FULL: &str = "The disk is full";

/// Whether the file system holding `path` has no space left for us.
fn disk_is_full(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let dir = path.parent().unwrap_or(path);
        let Ok(c_path) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
            return false;
        };
        // SAFETY: statvfs only writes the struct we pass; the path is NUL-terminated.
        let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) } != 0 {
            return false;
        }
        // Less than 64 KiB left: SQLite cannot grow its files by a page and the -shm.
        (stat.f_bavail as u64).saturating_mul(stat.f_frsize as u64) < 64 * 1024
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        false
    }
}

/// A SQLite failure in plain words, naming the file: what happened and what to do.
fn sqlite_error(shown: &str, e: &rusqlite::Error) -> Error {
    use rusqlite::ErrorCode as C;
    let code = e.sqlite_error_code();
    let path = Path::new(shown);
    let message = match code {
        Some(C::DiskFull) => format!("{DISK_FULL}: {shown} could not be written. Free some space on that disk and try again."),
        Some(C::SystemIoFailure) if disk_is_full(path) => format!("{DISK_FULL}: {shown} could not be written. Free some space on that disk and try again."),
        Some(C::SystemIoFailure) => format!("{shown} could not be read or written (an input/output error of the disk). Check the disk; if the file is damaged, {}", lower_first(RECOVER)),
        Some(C::ReadOnly) => format!("{shown} is read-only: Authdeck cannot save changes to it. Check the permissions of the file and its data directory."),
        Some(C::PermissionDenied) | Some(C::AuthorizationForStatementDenied) => format!("Permission denied: {shown}. Check the permissions of the file and its data directory."),
        Some(C::CannotOpen) => format!("{shown} cannot be opened: check that its data directory exists and belongs to you."),
        Some(C::DatabaseCorrupt) | Some(C::NotADatabase) => format!("{shown} is damaged or is not an Authdeck database. {RECOVER}"),
        Some(C::DatabaseBusy) | Some(C::DatabaseLocked) => {
            return Error::new(
                ErrorCode::Busy,
                format!("{shown} is in use by another Authdeck process that did not let go within 10 seconds: try again."),
            )
            .with_detail(e.to_string());
        }
        _ => format!("The database {shown} could not be read or written."),
    };
    Error::new(ErrorCode::Storage, message).with_detail(e.to_string())
}

fn lower_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn migration_error(shown: &str, e: rusqlite_migration::Error) -> Error {
    use rusqlite_migration::{Error as E, MigrationDefinitionError as D};
    match e {
        E::RusqliteError { err, .. } => sqlite_error(shown, &err),
        E::MigrationDefinition(D::DatabaseTooFarAhead) => Error::new(
            ErrorCode::Storage,
            format!(
                "{shown} was written by a newer version of Authdeck: update Authdeck to use it."
            ),
        ),
        other => Error::new(
            ErrorCode::Storage,
            format!("The database {shown} could not be brought up to date."),
        )
        .with_detail(other.to_string()),
    }
}

/// A history detail cut to [`MAX_HISTORY_DETAIL`] characters.
fn capped_detail(detail: Option<&str>) -> Option<std::borrow::Cow<'_, str>> {
    detail.map(|d| match d.char_indices().nth(MAX_HISTORY_DETAIL) {
        None => std::borrow::Cow::Borrowed(d),
        Some((cut, _)) => std::borrow::Cow::Owned(format!("{}…", &d[..cut])),
    })
}

/// The columns a [`Connection`] is read from: its JSON and where its tokens are.
const CONNECTION_COLUMNS: &str = "data, token_set, pending_generation";

type ConnectionRow = (String, Option<String>, Option<i64>);

fn connection_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ConnectionRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
}

fn connection_of((data, token_set, pending): &ConnectionRow) -> Result<Connection> {
    let mut conn: Connection = unjson(data)?;
    conn.token_set = token_set.clone();
    conn.pending_generation = *pending;
    Ok(conn)
}

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

fn add_history(
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
    /// Open (or create) the database at `path` and bring its schema up to date. If it
    /// cannot be opened for writing because the disk is full (SQLite needs room for its
    /// shared-memory file even to read), it is opened read-only instead: reading commands
    /// keep working, and a write first tries to reopen it for writing (space may have
    /// been freed meanwhile), else fails saying the disk is full.
    pub fn open(path: &Path) -> Result<Self> {
        let (conn, read_only) = match connect_writable(path) {
            Ok(conn) => (conn, None),
            Err(e) if falls_back_to_read_only(&e) => match connect_read_only(path) {
                Ok(conn) => {
                    tracing::warn!(code = %e.code, "database opened read-only");
                    (conn, Some(e))
                }
                Err(_) => return Err(e),
            },
            Err(e) => return Err(e),
        };
        let db = Self::with_connection(conn, Some(path))?;
        *lock(&db.read_only) = read_only;
        Ok(db)
    }

    /// A private in-memory database (unit tests).
    pub fn open_in_memory() -> Result<Self> {
        let conn = Sqlite::open_in_memory().map_err(|e| sqlite_error(":memory:", &e))?;
        Self::init(conn, None, false)
    }

    /// A handle on an open SQLite connection to the database at `path` (`None`: in
    /// memory), after settings and schema (see `prepare`).
    fn init(conn: Sqlite, path: Option<&Path>, read_only: bool) -> Result<Self> {
        let shown = path.map_or(":memory:".to_owned(), |p| p.display().to_string());
        Self::with_connection(prepare(conn, &shown, read_only)?, path)
    }

    fn with_connection(conn: Sqlite, path: Option<&Path>) -> Result<Self> {
        let file_id = match path {
            Some(p) => Some(file_id(p).map_err(|e| file_error(&p.display().to_string(), &e))?),
            None => None,
        };
        Ok(Self {
            conn: Mutex::new(conn),
            path: path.map(Path::to_path_buf),
            file_id,
            read_only: Mutex::new(None),
        })
    }

    /// Whether this handle is read-only (see [`Db::open`]), and why.
    pub fn read_only_reason(&self) -> Option<Error> {
        lock(&self.read_only).clone()
    }

    /// A read-only handle (see [`Db::open`]) becomes writable if the database can be
    /// opened for writing now; else the reason it cannot. A no-op for a writable one.
    pub fn ensure_writable(&self) -> Result<()> {
        let mut conn = self
            .conn
            .lock()
            .map_err(|_| Error::internal("The database handle was poisoned by a panic."))?;
        let mut read_only = lock(&self.read_only);
        let (Some(_), Some(path)) = (read_only.as_ref(), &self.path) else {
            return Ok(());
        };
        // The read-only handle goes first: SQLite shares one shared-memory mapping per
        // file and process, and it is the read-only one while that handle is open.
        let placeholder = Sqlite::open_in_memory().map_err(|e| sqlite_error(":memory:", &e))?;
        drop(std::mem::replace(&mut *conn, placeholder));
        match connect_writable(path) {
            Ok(writable) => {
                *conn = writable;
                *read_only = None;
                tracing::info!("database writable again");
                Ok(())
            }
            Err(e) => {
                *conn = connect_read_only(path)?;
                *read_only = Some(e.clone());
                Err(e)
            }
        }
    }

    /// The database file, for messages.
    fn shown(&self) -> String {
        self.path
            .as_ref()
            .map_or(":memory:".to_owned(), |p| p.display().to_string())
    }

    fn with<T>(&self, f: impl FnOnce(&mut Sqlite) -> rusqlite::Result<T>) -> Result<T> {
        let mut guard = self
            .conn
            .lock()
            .map_err(|_| Error::internal("The database handle was poisoned by a panic."))?;
        f(&mut guard).map_err(|e| {
            if e.sqlite_error_code() == Some(rusqlite::ErrorCode::ReadOnly) {
                if let Some(why) = lock(&self.read_only).clone() {
                    return why;
                }
            }
            sqlite_error(&self.shown(), &e)
        })
    }

    /// [`Self::with`] for a call that writes: once SQLite has committed, the file at the
    /// database's path must still be the one this handle writes to. If the data
    /// directory was deleted (or the file replaced or emptied) meanwhile, the commit went
    /// to a file nobody will read again: that is an error, never a success.
    fn write<T>(&self, f: impl FnOnce(&mut Sqlite) -> rusqlite::Result<T>) -> Result<T> {
        if lock(&self.read_only).is_some() {
            self.ensure_writable()?;
        }
        let value = self.with(f)?;
        self.verify_file()?;
        Ok(value)
    }

    /// Whether the file at the database's path is still the one opened, with contents.
    pub fn verify_file(&self) -> Result<()> {
        let (Some(path), Some(opened)) = (&self.path, self.file_id) else {
            return Ok(());
        };
        let shown = self.shown();
        let lost = |what: &str| {
            Error::new(
                ErrorCode::Storage,
                format!(
                    "The database {shown} {what} while Authdeck was using it: the last change was not saved. {RECOVER}"
                ),
            )
        };
        match std::fs::metadata(path) {
            Ok(meta) if identity_of(&meta) != opened => Err(lost("was replaced by another file")),
            Ok(meta) if meta.len() == 0 => Err(lost("was emptied")),
            Ok(_) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(lost("was deleted (with its data directory?)"))
            }
            Err(e) => Err(file_error(&shown, &e)),
        }
    }
    // ---- store identity ------------------------------------------------------------

    /// This store's id and whether the keyring has been told (see `vault::check_store`).
    pub fn store_identity(&self) -> Result<Option<(String, Registration)>> {
        self.with(|c| {
            c.query_row(
                "SELECT id, registered FROM store_identity LIMIT 1",
                [],
                |r| {
                    let registered: bool = r.get(1)?;
                    Ok((r.get(0)?, Registration::from(registered)))
                },
            )
            .optional()
        })
    }

    /// Record this store's id (the only one).
    pub fn set_store_identity(&self, id: &str, registration: Registration) -> Result<()> {
        let registered = registration == Registration::Registered;
        self.write(|c| {
            let tx = c.transaction()?;
            tx.execute("DELETE FROM store_identity", [])?;
            tx.execute(
                "INSERT INTO store_identity (id, registered) VALUES (?1, ?2)",
                params![id, registered],
            )?;
            tx.commit()
        })
    }

    /// No client and no connection: a new store, or one that lost its contents.
    pub fn is_empty_store(&self) -> Result<bool> {
        self.with(|c| {
            c.query_row(
                "SELECT NOT EXISTS (SELECT 1 FROM clients) AND NOT EXISTS (SELECT 1 FROM connections)",
                [],
                |r| r.get(0),
            )
        })
    }

    /// The database file (`None` in memory).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    // ---- clients -------------------------------------------------------------------

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

    // ---- connections ---------------------------------------------------------------

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

    // ---- token sets ----------------------------------------------------------------

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

    pub fn delete_connection(&self, id: &str) -> Result<()> {
        self.write(|c| c.execute("DELETE FROM connections WHERE id = ?1", [id]))?;
        Ok(())
    }

    // ---- devices -------------------------------------------------------------------

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
            let rows = stmt.query_map(params![device_id, limit as i64], |r| {
                Ok(HistoryEntry {
                    at: from_ms(r.get(0)?),
                    event: r.get(1)?,
                    outcome: r.get(2)?,
                    detail: r.get(3)?,
                    count: u32::try_from(r.get::<_, i64>(4)?.max(1)).unwrap_or(u32::MAX),
                })
            })?;
            rows.collect()
        })
    }

    // ---- history -------------------------------------------------------------------

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
            let map = |r: &rusqlite::Row<'_>| {
                Ok(HistoryEntry {
                    at: from_ms(r.get(0)?),
                    event: r.get(1)?,
                    outcome: r.get(2)?,
                    detail: r.get(3)?,
                    count: u32::try_from(r.get::<_, i64>(4)?.max(1)).unwrap_or(u32::MAX),
                })
            };
            let limit = limit as i64;
            match connection_id {
                Some(id) => {
                    let mut stmt = c.prepare_cached(
                        "SELECT at, event, outcome, detail, count FROM history WHERE connection_id = ?1 ORDER BY id DESC LIMIT ?2",
                    )?;
                    let rows = stmt.query_map(params![id, limit], map)?;
                    rows.collect()
                }
                None => {
                    let mut stmt = c.prepare_cached(
                        "SELECT at, event, outcome, detail, count FROM history ORDER BY id DESC LIMIT ?1",
                    )?;
                    let rows = stmt.query_map(params![limit], map)?;
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

    // ---- pending authorizations ----------------------------------------------------

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
                api_base_url: None,
            },
            options: ClientOptions::default(),
            has_secret: true,
            created_at: Utc::now(),
            sandbox: false,
        }
    }

    fn connection(id: &str, client_id: &str, label: &str) -> Connection {
        let now = Utc::now();
        Connection {
            grant: Some(FedexGrant::ClientCredentials),
            scope: Some("CXS".into()),
            token_type: Some("bearer".into()),
            access_expires: Some(Expiry::new(now, ExpirySource::RelativeSeconds)),
            ..Connection::new(
                id,
                client_id,
                "c",
                Provider::Fedex,
                Environment::Sandbox,
                label,
                now,
            )
        }
    }

    /// A store laid out by the version before the sandbox flag, with an earlier
    /// sandbox's demo client (port 47801), a connection of it, and look-alikes that are
    /// not the sandbox's: only the first two are marked.
    #[test]
    fn earlier_sandbox_clients_and_their_connections_are_marked_by_the_migration() {
        let mut conn = Sqlite::open_in_memory().unwrap();
        migrations().to_version(&mut conn, 2).unwrap();
        let legacy = |name: &str, client_id: &str, token_url: &str| {
            let mut c = client(name);
            c.id = format!("id-{name}");
            c.client_id = client_id.into();
            c.endpoints.token_url = token_url.parse().unwrap();
            let mut v = serde_json::to_value(&c).unwrap();
            v.as_object_mut().unwrap().remove("sandbox");
            (c, v.to_string())
        };
        let rows = [
            legacy(
                "sandbox-fedex",
                "demo-fedex-key",
                "http://127.0.0.1:47801/fedex/oauth/token",
            ),
            // Someone's own client that happens to have the name.
            legacy(
                "sandbox-iot",
                "real-app",
                "http://127.0.0.1:47801/iot/oauth/token",
            ),
            legacy(
                "ship",
                "demo-fedex-key",
                "http://127.0.0.1:47801/fedex/oauth/token",
            ),
            legacy(
                "sandbox-flowaccount",
                "demo-flowaccount",
                "https://openapi.flowaccount.com/test/token",
            ),
        ];
        for (c, data) in &rows {
            conn.execute(
                "INSERT INTO clients (id, name, provider, data, created_at) VALUES (?1, ?2, ?3, ?4, 0)",
                params![c.id, c.name, c.provider.as_str(), data],
            )
            .unwrap();
        }
        for (id, client_id) in [("k1", "id-sandbox-fedex"), ("k2", "id-ship")] {
            let mut v = serde_json::to_value(connection(id, client_id, id)).unwrap();
            v.as_object_mut().unwrap().remove("sandbox");
            conn.execute(
                "INSERT INTO connections (id, client_id, natural_key, label, data, secret_generation, created_at, updated_at)
                 VALUES (?1, ?2, ?1, ?1, ?3, 1, 0, 0)",
                params![id, client_id, v.to_string()],
            )
            .unwrap();
        }
        let db = Db::init(conn, None, false).unwrap();
        let marked: Vec<(String, bool)> = db
            .clients()
            .unwrap()
            .into_iter()
            .map(|c| (c.name, c.sandbox))
            .collect();
        assert_eq!(
            marked,
            [
                ("sandbox-fedex".to_string(), true),
                ("sandbox-flowaccount".to_string(), false),
                ("sandbox-iot".to_string(), false),
                ("ship".to_string(), false),
            ]
        );
        assert!(db.connection("k1").unwrap().sandbox);
        assert!(!db.connection("k2").unwrap().sandbox);
    }

    #[test]
    fn a_client_record_is_rewritten_in_place() {
        let db = Db::open_in_memory().unwrap();
        let mut c = client("a");
        db.insert_client(&c).unwrap();
        c.sandbox = true;
        c.endpoints.token_url = "http://127.0.0.1:5/fedex/oauth/token".parse().unwrap();
        db.update_client(&c).unwrap();
        assert_eq!(db.client("a").unwrap(), c);
        let missing = db.update_client(&client("b")).unwrap_err();
        assert_eq!(missing.code, ErrorCode::NotFound);
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
    fn connections_are_found_by_the_users_label_and_the_company_name() {
        let db = Db::open_in_memory().unwrap();
        db.insert_client(&client("a")).unwrap();
        let mut one = connection("c1", "id-a", "FA-1");
        one.user_label = Some("Payroll".into());
        db.insert_connection(&one, "k1").unwrap();
        let mut two = connection("c2", "id-a", "FA-2");
        two.company = Some(crate::model::CompanyInfo {
            id: None,
            name: Some("Chiang Mai Crafts".into()),
            tax_id: None,
            branch: None,
            at: two.created_at,
        });
        db.insert_connection(&two, "k2").unwrap();
        assert_eq!(db.connection("Payroll").unwrap().id, "c1");
        assert_eq!(db.connection("Chiang Mai Crafts").unwrap().id, "c2");
        assert_eq!(db.connection("FA-2").unwrap().id, "c2");
        // A name two connections answer to is ambiguous, not a guess.
        let mut three = connection("c3", "id-a", "FA-3");
        three.user_label = Some("Chiang Mai Crafts".into());
        db.insert_connection(&three, "k3").unwrap();
        assert_eq!(
            db.connection("Chiang Mai Crafts").unwrap_err().code,
            ErrorCode::InvalidInput
        );
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

    fn refreshed(at: DateTime<Utc>) -> HistoryEntry {
        HistoryEntry::new(at, "refresh", "ok", None)
    }

    #[test]
    fn token_set_members_are_live_adoptable_or_gone() {
        let db = Db::open_in_memory().unwrap();
        db.insert_client(&client("a")).unwrap();
        for (id, key) in [("c1", "k1"), ("c2", "k2"), ("c3", "k3")] {
            db.insert_connection(&connection(id, "id-a", id), key)
                .unwrap();
        }
        let at = from_ms(1_700_000_000_000);
        let members = [
            ("c1".to_string(), 2, Some(1)),
            ("c2".to_string(), 2, Some(1)),
            ("c3".to_string(), 2, None),
        ];
        db.insert_token_set("s", at, &members).unwrap();
        // Written, not switched yet: everyone is adoptable, no own entry is left yet.
        let r = db.token_set("s").unwrap().unwrap();
        assert_eq!(r.adoptable, ["c1", "c2", "c3"]);
        assert!(r.live.is_empty() && r.left_entries.is_empty());
        assert_eq!(
            db.token_set_ahead_of("c2", 1).unwrap().as_deref(),
            Some("s")
        );
        assert_eq!(db.token_set_ahead_of("c2", 2).unwrap(), None);

        // c1 switches (once: a stale expected generation loses), c3 is removed.
        let mut c1 = db.connection("c1").unwrap();
        c1.secret_generation = 2;
        c1.token_set = Some("s".into());
        let switched = db
            .switch_connections(&[(c1.clone(), 1), (c1.clone(), 1)], &refreshed(at))
            .unwrap();
        assert_eq!(switched, [true, false]);
        assert_eq!(db.connection("c1").unwrap().token_set.as_deref(), Some("s"));
        assert_eq!(
            db.history(Some("c1"), 10).unwrap().len(),
            1,
            "history of the switch"
        );
        db.delete_connection("c3").unwrap();
        let r = db.token_set("s").unwrap().unwrap();
        assert_eq!(r.live, ["c1"]);
        assert_eq!(r.adoptable, ["c2"]);
        assert_eq!(r.left_entries, [("c1".to_string(), 1)]);
        db.clear_left_entries("s", &["c1".into()]).unwrap();
        assert!(db.token_set("s").unwrap().unwrap().left_entries.is_empty());

        db.delete_token_set("s").unwrap();
        assert_eq!(db.token_set("s").unwrap(), None);
        assert_eq!(
            db.token_set_ahead_of("c2", 1).unwrap(),
            None,
            "members go with the set"
        );
    }

    #[test]
    fn a_generation_switch_clears_the_pending_mark() {
        let db = Db::open_in_memory().unwrap();
        db.insert_client(&client("a")).unwrap();
        let mut c = connection("c1", "id-a", "one");
        db.insert_connection(&c, "k").unwrap();
        db.set_pending_generation("c1", Some(2)).unwrap();
        c.keep_fresh = true; // a metadata-only save keeps the mark
        assert!(db.update_connection(&c, 1).unwrap());
        assert_eq!(db.connection("c1").unwrap().pending_generation, Some(2));
        c.secret_generation = 2;
        assert!(db.update_connection(&c, 1).unwrap());
        assert_eq!(db.connection("c1").unwrap().pending_generation, None);
    }

    #[test]
    fn pending_is_single_use() {
        let db = Db::open_in_memory().unwrap();
        let now = Utc::now();
        let p = PendingRecord {
            state_hash: "h".into(),
            client_key: "c".into(),
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
    fn coalesced_history_counts_per_kind_minute_and_across_handles() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite3");
        // Two handles on one file: the app and an `authdeckctl callback` at once.
        let (a, b) = (Db::open(&path).unwrap(), Db::open(&path).unwrap());
        let at = from_ms(1_700_000_000_000 - 1_700_000_000_000 % 60_000 + 1_000);
        let rejected = |at| HistoryEntry::new(at, "callback_rejected", "invalid_callback", None);
        for i in 0..10 {
            let db = if i % 2 == 0 { &a } else { &b };
            let later = at + chrono::Duration::seconds(i * 5);
            db.add_history_coalesced(None, None, &rejected(later), "k1")
                .unwrap();
        }
        a.add_history_coalesced(None, Some("client"), &rejected(at), "k1")
            .unwrap();
        a.add_history_coalesced(None, None, &rejected(at), "k2")
            .unwrap();
        let next_minute = at + chrono::Duration::seconds(59);
        b.add_history_coalesced(None, None, &rejected(next_minute), "k1")
            .unwrap();
        let rows = a.history(None, 100).unwrap();
        let counts: Vec<u32> = rows.iter().map(|r| r.count).collect();
        assert_eq!(counts, [1, 1, 1, 10], "{rows:?}");
        assert_eq!(rows[3].at, at, "dated by the first");
        assert_eq!(rows[0].at, next_minute);
        // Plain entries are never merged.
        a.add_history(None, None, &rejected(at)).unwrap();
        a.add_history(None, None, &rejected(at)).unwrap();
        assert_eq!(a.history(None, 100).unwrap().len(), 6);
    }

    #[test]
    fn migration_turns_pkce_on_for_existing_flowaccount_clients_only() {
        let mut conn = Sqlite::open_in_memory().unwrap();
        migrations().to_version(&mut conn, 2).unwrap();
        let mut fa = client("fa");
        fa.id = "id-fa".into();
        fa.provider = Provider::FlowAccount;
        fa.options.pkce = false;
        let fedex = client("ship");
        for c in [&fa, &fedex] {
            conn.execute(
                "INSERT INTO clients (id, name, provider, data, created_at) VALUES (?1, ?2, ?3, ?4, 0)",
                params![c.id, c.name, c.provider.as_str(), json(c).unwrap()],
            )
            .unwrap();
        }
        let db = Db::init(conn, None, false).unwrap();
        let migrated = db.client("fa").unwrap();
        assert!(
            migrated.options.pkce,
            "existing FlowAccount client: PKCE on"
        );
        assert_eq!(migrated.endpoints, fa.endpoints, "nothing else changed");
        assert!(!db.client("ship").unwrap().options.pkce, "FedEx untouched");
    }

    #[test]
    fn pending_outcome_is_recorded_once_used() {
        let db = Db::open_in_memory().unwrap();
        let now = Utc::now();
        db.insert_pending(&PendingRecord {
            state_hash: "h".into(),
            client_key: "c".into(),
            redirect_uri: "x:/y".into(),
            pkce: true,
            reconnect_connection_id: None,
            created_at: now,
            expires_at: now + chrono::Duration::minutes(10),
            consumed_at: None,
        })
        .unwrap();
        assert_eq!(db.pending_outcome("h").unwrap(), None);
        assert!(db.consume_pending("h", now).unwrap());
        assert_eq!(db.pending_outcome("h").unwrap().as_deref(), Some("used"));
        db.set_pending_outcome("h", "invalid_grant").unwrap();
        assert_eq!(
            db.pending_outcome("h").unwrap().as_deref(),
            Some("invalid_grant")
        );
        assert_eq!(db.pending_outcome("unknown").unwrap(), None);
    }

    #[test]
    fn history_survives_connection_delete() {
        let db = Db::open_in_memory().unwrap();
        db.insert_client(&client("a")).unwrap();
        db.insert_connection(&connection("c1", "id-a", "one"), "k")
            .unwrap();
        // History is stored with millisecond precision.
        let at = DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap();
        let e = HistoryEntry::new(at, "connect", "ok", None);
        db.add_history(Some("c1"), Some("id-a"), &e).unwrap();
        db.delete_connection("c1").unwrap();
        assert_eq!(db.history(Some("c1"), 10).unwrap(), vec![e]);
    }
}

#[cfg(test)]
mod file_tests {
    //! The database file on disk: a commit into a file that is no longer there is an
    //! error, and SQLite's errors name the file.
    use super::*;

    fn entry() -> HistoryEntry {
        HistoryEntry::new(Utc::now(), "refresh", "ok", None)
    }

    #[test]
    fn a_commit_after_the_data_dir_was_deleted_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        std::fs::create_dir(&dir).unwrap();
        let path = dir.join("authdeck.sqlite3");
        let db = Db::open(&path).unwrap();
        db.add_history(None, None, &entry()).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let err = db.add_history(None, None, &entry()).unwrap_err();
        assert_eq!(err.code, ErrorCode::Storage);
        assert!(
            err.message.contains("was deleted")
                && err.message.contains(&path.display().to_string()),
            "{err:?}"
        );
        assert!(
            err.message.contains("backup"),
            "says how to recover: {err:?}"
        );
    }

    #[test]
    fn a_commit_into_a_replaced_or_emptied_file_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("authdeck.sqlite3");
        let db = Db::open(&path).unwrap();
        db.verify_file().unwrap();
        // Emptied in place (same inode).
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();
        let err = db.verify_file().unwrap_err();
        assert!(err.message.contains("was emptied"), "{err:?}");
        drop(db);

        let db = Db::open(&tmp.path().join("other.sqlite3")).unwrap();
        std::fs::rename(tmp.path().join("other.sqlite3"), tmp.path().join("moved")).unwrap();
        std::fs::write(tmp.path().join("other.sqlite3"), b"not this one").unwrap();
        let err = db.add_history(None, None, &entry()).unwrap_err();
        assert!(err.message.contains("was replaced"), "{err:?}");
    }

    #[test]
    fn a_file_that_is_not_a_database_is_named_in_the_error() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("authdeck.sqlite3");
        std::fs::write(&path, vec![b'x'; 8192]).unwrap();
        let err = Db::open(&path).err().unwrap();
        assert_eq!(err.code, ErrorCode::Storage);
        assert!(
            err.message.contains(&path.display().to_string()) && err.message.contains("damaged"),
            "{err:?}"
        );
    }

    #[test]
    fn history_details_are_capped() {
        let db = Db::open_in_memory().unwrap();
        let mut e = entry();
        e.detail = Some("é".repeat(70_000));
        db.add_history(None, None, &e).unwrap();
        let stored = db.history(None, 1).unwrap().remove(0).detail.unwrap();
        assert_eq!(stored.chars().count(), MAX_HISTORY_DETAIL + 1);
        assert!(stored.ends_with('…'));
    }

    #[test]
    fn opening_a_store_again_writes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("authdeck.sqlite3");
        drop(Db::open(&path).unwrap());
        let before = std::fs::read(&path).unwrap();
        let db = Db::open(&path).unwrap();
        db.connections().unwrap();
        drop(db);
        assert_eq!(std::fs::read(&path).unwrap(), before);
        assert!(
            !tmp.path().join("authdeck.sqlite3-wal").exists()
                || std::fs::metadata(tmp.path().join("authdeck.sqlite3-wal"))
                    .unwrap()
                    .len()
                    == 0,
            "nothing was written to the WAL either"
        );
    }
}

#[cfg(all(test, target_os = "linux"))]
mod full_disk_tests {
    //! On a small tmpfs, filled up: reads work, writes say the disk is full, and the same
    //! handle writes again once space is freed (the app runs for days).
    use super::*;
    use std::process::Command;

    struct SmallDisk(PathBuf);

    impl Drop for SmallDisk {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }

    fn fill(dir: &Path) -> PathBuf {
        use std::io::Write;
        let file = dir.join("filler");
        let mut f = std::fs::File::create(&file).unwrap();
        let block = vec![0u8; 4096];
        while f.write_all(&block).is_ok() {}
        file
    }

    #[test]
    fn a_full_disk_reads_refuses_writes_in_plain_words_and_recovers() {
        let tmp = tempfile::tempdir().unwrap();
        let mnt = tmp.path().join("disk");
        std::fs::create_dir(&mnt).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs"])
            .arg(&mnt)
            .output()
            .expect("mount runs");
        assert!(
            out.status.success(),
            "this test fills a small tmpfs and needs to mount one (root, or a container allowed to mount): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let _disk = SmallDisk(mnt.clone());
        let path = mnt.join("authdeck.sqlite3");
        let entry = HistoryEntry::new(Utc::now(), "connect", "ok", None);
        {
            let db = Db::open(&path).unwrap();
            db.add_history(None, None, &entry).unwrap();
        }
        let filler = fill(&mnt);

        let db = Db::open(&path).unwrap();
        assert!(db.read_only_reason().is_some(), "opened read-only");
        assert_eq!(db.history(None, 10).unwrap().len(), 1, "reads work");
        let err = db.add_history(None, None, &entry).unwrap_err();
        assert_eq!(err.code, ErrorCode::Storage);
        assert!(
            err.message.starts_with("The disk is full: ")
                && err.message.contains(&path.display().to_string()),
            "{err:?}"
        );

        std::fs::remove_file(filler).unwrap();
        db.add_history(None, None, &entry).unwrap();
        assert!(db.read_only_reason().is_none(), "writable again");
        assert_eq!(db.history(None, 10).unwrap().len(), 2);
    }
}
