//! Metadata, history and pending authorizations in SQLite. Never a secret: tokens and
//! client secrets live in the keyring (see [`super::SecretStore`]); this module stores only
//! which keyring entry (*generation*, and *token set* if any) holds a connection's
//! current tokens, and which token sets exist and whom they were written for.
//!
//! Several processes (the app, any number of `authdeckctl`s) share one database file:
//! WAL mode and a busy timeout let them take turns.

mod clients;
mod connections;
mod devices;
mod history;
mod migrations;
mod pending;
mod token_sets;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection as Sqlite, OptionalExtension};

use crate::error::{Error, ErrorCode, Result};

use self::migrations::migrations;

pub use self::history::{HISTORY_COALESCE_MS, MAX_HISTORY_DETAIL};
pub use self::pending::PendingRecord;
pub use self::token_sets::TokenSetRecord;

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
///
/// Processes creating the same new store at the same moment (a desktop that just joined
/// a team, then several `authdeckctl` runs at once) can get `SQLITE_BUSY` at once,
/// without SQLite's busy handler: switching a new file to WAL, and a deferred
/// migration transaction upgrading its read lock while another process writes (SQLite
/// refuses that upgrade rather than deadlock). So the whole step is tried again, for
/// as long as the busy timeout; each attempt re-reads the schema version, which is the
/// latest once the other process committed.
fn prepare(mut conn: Sqlite, shown: &str, read_only: bool) -> Result<Sqlite> {
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| sqlite_error(shown, &e))?;
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    let mut pause = Duration::from_millis(5);
    loop {
        match settle_schema(&mut conn, shown, read_only) {
            Err(e) if e.code == ErrorCode::Busy && std::time::Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            Err(e) => return Err(e),
            Ok(()) => return Ok(conn),
        }
    }
}

/// How long a statement waits for another process's lock (SQLite's busy timeout).
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

fn settle_schema(conn: &mut Sqlite, shown: &str, read_only: bool) -> Result<()> {
    let fail = |e: rusqlite::Error| sqlite_error(shown, &e);
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
    // fails, and the caller reports why the writable open failed. Another process
    // migrating the same new store at the same moment makes ours fail (its tables
    // exist once it committed; ours waited for that on the busy timeout): read the
    // version again, which is then the latest.
    let mut migrated = migrations().to_latest(conn);
    for _ in 0..2 {
        if migrated.is_ok() || read_only {
            break;
        }
        migrated = migrations().to_latest(conn);
    }
    migrated.map_err(|e| migration_error(shown, e))
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
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod file_tests;

#[cfg(all(test, target_os = "linux"))]
mod full_disk_tests;
