//! One lock per connection, held while its tokens are refreshed, replaced or revoked:
//! an in-process async mutex (tasks of this process queue cheaply) plus, when a lock
//! directory is configured, an OS file lock that the app and every `authdeckctl`
//! process share: std's `File::try_lock` (Rust 1.89), `flock` on Linux and macOS,
//! `LockFileEx` on Windows, so this module has nothing OS-specific of its own.
//!
//! File locks belong to the open file: a process that crashes or is killed releases
//! them, so a lock can never stay stuck. Waiting is bounded.

use std::collections::HashMap;
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorCode, Result};

/// How long a caller waits for another process to finish with a connection.
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(60);

pub struct ConnectionLocks {
    in_process: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    dir: Option<PathBuf>,
    wait: Duration,
}

/// Held while a connection's tokens change; dropping it releases both locks.
pub struct ConnectionGuard {
    _file: Option<File>,
    _local: tokio::sync::OwnedMutexGuard<()>,
}

impl ConnectionLocks {
    /// `dir`: where the lock files live (`None`: this process only, for unit tests).
    pub fn new(dir: Option<PathBuf>, wait: Duration) -> Self {
        Self {
            in_process: Mutex::new(HashMap::new()),
            dir,
            wait,
        }
    }

    pub async fn acquire(&self, connection_id: &str) -> Result<ConnectionGuard> {
        let local = {
            let mut map = match self.in_process.lock() {
                Ok(m) => m,
                Err(poisoned) => poisoned.into_inner(),
            };
            map.entry(connection_id.to_owned()).or_default().clone()
        };
        let local = tokio::time::timeout(self.wait, local.lock_owned())
            .await
            .map_err(|_| busy())?;
        let file = match &self.dir {
            None => None,
            Some(dir) => {
                let path = lock_path(dir, connection_id)?;
                // Uncontended (the usual case): two quick system calls, taken right here.
                // Contended: wait on the blocking pool.
                match try_lock_file(&path)? {
                    Some(file) => Some(file),
                    None => {
                        let wait = self.wait;
                        let file = tokio::task::spawn_blocking(move || lock_file(&path, wait))
                            .await
                            .map_err(|_| Error::internal("Taking a connection lock panicked."))??;
                        Some(file)
                    }
                }
            }
        };
        Ok(ConnectionGuard {
            _file: file,
            _local: local,
        })
    }

    /// Forget a removed connection's lock file (best effort).
    pub fn remove(&self, connection_id: &str) {
        if let Some(dir) = &self.dir {
            if let Ok(path) = lock_path(dir, connection_id) {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

fn busy() -> Error {
    Error::new(
        ErrorCode::Busy,
        "Another Authdeck process has been working on this connection for too long: try again in a minute.",
    )
}

fn lock_path(dir: &Path, connection_id: &str) -> Result<PathBuf> {
    // Connection ids are UUIDs; refuse anything that could leave the directory.
    if connection_id.is_empty()
        || !connection_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(Error::invalid_input("Not a connection id."));
    }
    Ok(dir.join(format!("{connection_id}.lock")))
}

fn open_lock_file(path: &Path) -> Result<File> {
    let open = || {
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
    };
    match open() {
        Ok(file) => Ok(file),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(Error::storage)?;
            }
            open().map_err(Error::storage)
        }
        Err(e) => Err(Error::storage(e)),
    }
}

/// The lock if nobody holds it, `None` if somebody does; never waits.
fn try_lock_file(path: &Path) -> Result<Option<File>> {
    let file = open_lock_file(path)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => Err(Error::storage(e)),
    }
}

fn lock_file(path: &Path, wait: Duration) -> Result<File> {
    let file = open_lock_file(path)?;
    let deadline = Instant::now() + wait;
    let mut pause = Duration::from_millis(2);
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Err(TryLockError::WouldBlock) => return Err(busy()),
            Err(TryLockError::Error(e)) => return Err(Error::storage(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_holder_at_a_time_and_bounded_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let a = ConnectionLocks::new(Some(dir.path().to_path_buf()), Duration::from_millis(200));
        // A second, independent set of locks stands in for another process.
        let b = ConnectionLocks::new(Some(dir.path().to_path_buf()), Duration::from_millis(200));
        let held = a.acquire("c1").await.unwrap();
        let started = Instant::now();
        let err = b.acquire("c1").await.err().expect("busy while held");
        assert_eq!(err.code, ErrorCode::Busy);
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert!(
            b.acquire("c2").await.is_ok(),
            "other connections are independent"
        );
        drop(held);
        assert!(b.acquire("c1").await.is_ok(), "released on drop");
    }

    #[tokio::test]
    async fn ids_cannot_escape_the_lock_directory() {
        let dir = tempfile::tempdir().unwrap();
        let locks = ConnectionLocks::new(Some(dir.path().to_path_buf()), Duration::from_millis(50));
        for bad in ["../x", "a/b", "", "x.lock"] {
            assert_eq!(
                locks.acquire(bad).await.err().unwrap().code,
                ErrorCode::InvalidInput,
                "{bad}"
            );
        }
    }
}
