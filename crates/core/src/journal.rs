//! The answer journal: a provider's answer made durable in a few milliseconds, before
//! the (slow) keyring write.
//!
//! A rotating refresh token is spent once the provider answered; until the new one is
//! committed it exists only in memory. A signal can wait for the commit (see
//! `shutdown`); `kill -9` and power loss cannot. The keyring write takes ~40 ms
//! (gnome-keyring rewrites its file), a batch gathers for up to 40 ms more: so each
//! answer carrying a new refresh token is first appended here and fsync-ed, then
//! committed as before, then forgotten.
//!
//! - One file per process, `<data dir>/journal/<uuid>.journal`, held under an
//!   exclusive `flock` for the life of the process: a file nobody holds belongs to a
//!   process that died, and its entries are *orphans*, adopted by the next refresh
//!   (like the orphan generations of `manager::token_sets`). The owner truncates its
//!   file whenever nothing in it is left uncommitted, and removes it when it ends.
//! - Entries are sealed with XChaCha20-Poly1305 under one key per store, kept in the
//!   keyring (`journal/key`) and read before the provider call; a random 192-bit nonce
//!   each; the associated data binds the entry to the store (keyring service), the
//!   connection and the generation it will be. Nothing readable lands on disk.
//! - Record: `ADJ1`, u32 length of the rest, u16 length + connection id, i64
//!   generation, 24-byte nonce, ciphertext (little-endian). A record cut short by a
//!   crash is ignored: its answer had not been used yet.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use crate::error::{Error, Result};
use crate::model::Connection;
use crate::secret::KeyringValue;
use crate::store::vault::TokenBundle;

const MAGIC: &[u8; 4] = b"ADJ1";
const SUFFIX: &str = "journal";
const NONCE_LEN: usize = 24;
const KEY_LEN: usize = 32;

/// Where the journal lives and which store it belongs to.
#[derive(Debug, Clone)]
pub struct JournalConfig {
    /// `<data dir>/journal`.
    pub dir: PathBuf,
    /// The store's identity, bound into every entry: its keyring service name.
    pub store: String,
}

/// The journal key, as read from the keyring.
#[derive(Clone)]
pub struct JournalKey(Arc<XChaCha20Poly1305>);

impl JournalKey {
    /// A fresh random key, and its keyring form (base64).
    pub fn generate() -> Result<(Self, KeyringValue)> {
        let mut raw = [0u8; KEY_LEN];
        getrandom::fill(&mut raw)
            .map_err(|_| Error::internal("The system's random number generator failed."))?;
        let text = KeyringValue::new(base64_encode(&raw));
        let key = Self::from_raw(&raw);
        raw.zeroize();
        Ok((key, text))
    }

    /// From its keyring form; `None` if it is not one of ours.
    pub fn from_secret(secret: &KeyringValue) -> Option<Self> {
        use base64::Engine;
        let mut raw = base64::engine::general_purpose::STANDARD
            .decode(secret.expose())
            .ok()?;
        let key = (raw.len() == KEY_LEN).then(|| Self::from_raw(&raw));
        raw.zeroize();
        key
    }

    fn from_raw(raw: &[u8]) -> Self {
        Self(Arc::new(XChaCha20Poly1305::new(Key::from_slice(raw))))
    }
}

fn base64_encode(raw: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(raw)
}

/// What an entry holds: the connection as it is to be stored, and its new tokens.
pub struct Answer {
    /// With `secret_generation` = the generation being committed.
    pub connection: Connection,
    pub tokens: TokenBundle,
}

#[derive(Serialize, Deserialize)]
struct AnswerWire {
    v: u32,
    connection: Connection,
    /// The vault's encoding of the token bundle.
    tokens: String,
}

/// This process's journal file, opened (and locked) on first use.
struct Own {
    file: Arc<File>,
    path: PathBuf,
    /// Entries appended and not yet committed (or given up on).
    live: usize,
}

pub struct Journal {
    config: JournalConfig,
    own: Mutex<Option<Own>>,
    /// Group commit: one fsync covers every record written before it started, so
    /// answers that arrive together (a batch) wait for one or two fsyncs, not a queue.
    sync: Mutex<SyncState>,
    synced: std::sync::Condvar,
}

#[derive(Default)]
struct SyncState {
    /// Records written so far (their sequence numbers are 1..=written).
    written: u64,
    /// Records known durable.
    synced: u64,
    syncing: bool,
}

/// An appended entry; call [`Self::committed`] once its answer is in the store.
/// Dropped without that, the entry stays in the file for the next start to adopt.
pub struct Entry {
    journal: Arc<Journal>,
    path: PathBuf,
    /// How long from the provider's answer to the fsync's end.
    pub window: std::time::Duration,
}

impl Entry {
    pub fn committed(self) {
        self.journal.release(&self.path);
    }
}

/// An orphan file of a dead process, locked by us while we adopt its entries.
pub struct Orphan {
    path: PathBuf,
    _lock: File,
    pub answers: Vec<(String, i64, Result<Answer>)>,
}

impl Orphan {
    /// Every entry adopted or obsolete: remove the file (it is still locked by us).
    pub fn remove(self) {
        if let Err(e) = std::fs::remove_file(&self.path) {
            tracing::warn!(error = %e, "journal: an adopted file was not removed");
        }
    }
}

impl Journal {
    pub fn new(config: JournalConfig) -> Self {
        Self {
            config,
            own: Mutex::new(None),
            sync: Mutex::new(SyncState::default()),
            synced: std::sync::Condvar::new(),
        }
    }

    fn own(&self) -> std::sync::MutexGuard<'_, Option<Own>> {
        self.own.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Create (and lock) this process's file if not yet done: call before the provider
    /// call, so the window after its answer holds only the append and the fsync.
    pub fn prepare(&self) -> Result<()> {
        if self.own().is_some() {
            return Ok(());
        }
        let dir = &self.config.dir;
        create_private_dir(dir)?;
        let name = uuid::Uuid::new_v4().simple().to_string();
        // Locked before it gets the name scanners look for: never mistaken for an orphan.
        let temp = dir.join(format!("{name}.new"));
        let path = dir.join(format!("{name}.{SUFFIX}"));
        let file = open_private(&temp, Open::CreateNew)?;
        file.try_lock()
            .map_err(|e| storage(&temp, "could not lock the journal file", e))?;
        std::fs::rename(&temp, &path)
            .map_err(|e| storage(&path, "could not create the journal file", e))?;
        sync_dir(dir)?;
        let mut own = self.own();
        if own.is_none() {
            *own = Some(Own {
                file: Arc::new(file),
                path,
                live: 0,
            });
        } else {
            // A concurrent first call won; ours goes.
            let _ = std::fs::remove_file(&path);
        }
        Ok(())
    }

    /// Append an answer and fsync it. `answered`: when the provider's answer arrived.
    pub fn append(
        self: &Arc<Self>,
        key: &JournalKey,
        answer: &Answer,
        answered: Instant,
    ) -> Result<Entry> {
        self.prepare()?;
        let conn = &answer.connection;
        let record = seal(&self.config.store, key, answer)?;
        let (file, path) = {
            let mut own = self.own();
            let own = own
                .as_mut()
                .ok_or_else(|| Error::internal("The journal is not open."))?;
            own.live += 1;
            (own.file.clone(), own.path.clone())
        };
        let written = (&*file).write_all(&record).and_then(|()| {
            let seq = {
                let mut state = self.sync.lock().unwrap_or_else(|p| p.into_inner());
                state.written += 1;
                state.written
            };
            self.sync_through(&file, seq)
        });
        if let Err(e) = written {
            self.release(&path);
            return Err(storage(&path, "could not write the journal", e));
        }
        let window = answered.elapsed();
        tracing::debug!(
            connection = %conn.id,
            window_us = window.as_micros() as u64,
            "journal: answer durable"
        );
        Ok(Entry {
            journal: self.clone(),
            path,
            window,
        })
    }

    /// Return once record `seq` is durable: run an fsync if none is running, else wait
    /// for the running one (and run the next if it started before `seq` was written).
    fn sync_through(&self, file: &File, seq: u64) -> std::io::Result<()> {
        let mut state = self.sync.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if state.synced >= seq {
                return Ok(());
            }
            if state.syncing {
                state = self.synced.wait(state).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            state.syncing = true;
            let target = state.written;
            drop(state);
            let result = file.sync_data();
            state = self.sync.lock().unwrap_or_else(|p| p.into_inner());
            state.syncing = false;
            if result.is_ok() {
                state.synced = state.synced.max(target);
            }
            self.synced.notify_all();
            result?;
        }
    }

    fn release(&self, path: &Path) {
        let mut own = self.own();
        let Some(own) = own.as_mut().filter(|o| o.path == path) else {
            return;
        };
        own.live = own.live.saturating_sub(1);
        if own.live == 0 {
            // Everything in it is committed: forget it (O_APPEND writes go on at 0).
            if let Err(e) = own.file.set_len(0) {
                tracing::warn!(error = %e, "journal: not truncated");
            }
        }
    }

    /// The files of processes that died, each locked by us now, with their entries.
    /// Files of live processes (and our own) are left alone.
    pub fn orphans(&self, key: Option<&JournalKey>) -> Result<Vec<Orphan>> {
        let dir = &self.config.dir;
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(storage(dir, "could not read the journal directory", e)),
        };
        let own = self.own().as_ref().map(|o| o.path.clone());
        let mut found = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "new") {
                // A process died between creating its file and naming it: nothing in it.
                // (A minute old at least: one being named right now is left alone.)
                let stale = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t.elapsed().is_ok_and(|age| age.as_secs() > 60));
                if !stale {
                    continue;
                }
                if let Ok(file) = open_private(&path, Open::Existing) {
                    if file.try_lock().is_ok() {
                        let _ = std::fs::remove_file(&path);
                    }
                }
                continue;
            }
            if Some(&path) == own.as_ref()
                || path.extension().is_none_or(|e| e != SUFFIX)
                || !entry.file_type().is_ok_and(|t| t.is_file())
            {
                continue;
            }
            let Ok(file) = open_private(&path, Open::Existing) else {
                continue;
            };
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => continue, // a live process's
                Err(TryLockError::Error(e)) => {
                    tracing::warn!(error = %e, "journal: could not lock a file");
                    continue;
                }
            }
            // Removed by whoever held it before us: nothing left to adopt.
            if !path.exists() {
                continue;
            }
            let mut bytes = Vec::new();
            (&file)
                .read_to_end(&mut bytes)
                .map_err(|e| storage(&path, "could not read the journal", e))?;
            let answers = parse(&bytes)
                .into_iter()
                .map(|(conn, generation, nonce, sealed)| {
                    let answer = match key {
                        Some(key) => {
                            open(&self.config.store, key, &conn, generation, nonce, sealed)
                        }
                        None => Err(Error::internal("The journal key is missing.")),
                    };
                    (conn, generation, answer)
                })
                .collect();
            bytes.zeroize();
            found.push(Orphan {
                path,
                _lock: file,
                answers,
            });
        }
        Ok(found)
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        if let Some(own) = self.own().take() {
            if own.live == 0 {
                let _ = std::fs::remove_file(&own.path);
            }
        }
    }
}

fn associated_data(store: &str, connection: &str, generation: i64) -> Vec<u8> {
    let mut ad = b"authdeck-journal-v1\0".to_vec();
    ad.extend_from_slice(store.as_bytes());
    ad.push(0);
    ad.extend_from_slice(connection.as_bytes());
    ad.push(0);
    ad.extend_from_slice(generation.to_string().as_bytes());
    ad
}

fn seal(store: &str, key: &JournalKey, answer: &Answer) -> Result<Vec<u8>> {
    let conn = &answer.connection;
    let tokens = answer.tokens.encode()?;
    let plain = KeyringValue::new(
        serde_json::to_string(&AnswerWire {
            v: 1,
            connection: conn.clone(),
            tokens: tokens.expose().to_owned(),
        })
        .map_err(|_| Error::internal("Could not encode a journal entry."))?,
    );
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce)
        .map_err(|_| Error::internal("The system's random number generator failed."))?;
    let ad = associated_data(store, &conn.id, conn.secret_generation);
    let sealed = key
        .0
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plain.expose().as_bytes(),
                aad: &ad,
            },
        )
        .map_err(|_| Error::internal("Could not seal a journal entry."))?;
    let id = conn.id.as_bytes();
    let id_len = u16::try_from(id.len()).map_err(|_| Error::internal("Connection id too long."))?;
    let rest = 2 + id.len() + 8 + NONCE_LEN + sealed.len();
    let mut record = Vec::with_capacity(8 + rest);
    record.extend_from_slice(MAGIC);
    record.extend_from_slice(&(rest as u32).to_le_bytes());
    record.extend_from_slice(&id_len.to_le_bytes());
    record.extend_from_slice(id);
    record.extend_from_slice(&conn.secret_generation.to_le_bytes());
    record.extend_from_slice(&nonce);
    record.extend_from_slice(&sealed);
    Ok(record)
}

/// The well-formed records of a file: (connection id, generation, nonce, ciphertext).
/// Stops at the first damaged or incomplete one (a crash mid-append).
fn parse(bytes: &[u8]) -> Vec<(String, i64, &[u8], &[u8])> {
    let mut out = Vec::new();
    let mut at = 0;
    while bytes.len() >= at + 8 && &bytes[at..at + 4] == MAGIC {
        let rest = u32::from_le_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]])
            as usize;
        let body = match bytes.get(at + 8..at + 8 + rest) {
            Some(body) => body,
            None => break,
        };
        at += 8 + rest;
        if body.len() < 2 {
            break;
        }
        let id_len = u16::from_le_bytes([body[0], body[1]]) as usize;
        let Some(id) = body.get(2..2 + id_len) else {
            break;
        };
        let Some(generation) = body.get(2 + id_len..10 + id_len) else {
            break;
        };
        let Some(nonce) = body.get(10 + id_len..10 + id_len + NONCE_LEN) else {
            break;
        };
        let sealed = &body[10 + id_len + NONCE_LEN..];
        let Ok(id) = std::str::from_utf8(id) else {
            break;
        };
        let mut g = [0u8; 8];
        g.copy_from_slice(generation);
        out.push((id.to_owned(), i64::from_le_bytes(g), nonce, sealed));
    }
    out
}

fn open(
    store: &str,
    key: &JournalKey,
    connection: &str,
    generation: i64,
    nonce: &[u8],
    sealed: &[u8],
) -> Result<Answer> {
    let ad = associated_data(store, connection, generation);
    let damaged = || Error::internal("A journal entry does not open with this store's key.");
    let plain = key
        .0
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: sealed,
                aad: &ad,
            },
        )
        .map_err(|_| damaged())?;
    let plain = KeyringValue::new(String::from_utf8(plain).map_err(|_| damaged())?);
    let wire: AnswerWire = serde_json::from_str(plain.expose()).map_err(|_| damaged())?;
    let tokens = TokenBundle::decode(&KeyringValue::new(wire.tokens))?;
    if wire.connection.id != connection || wire.connection.secret_generation != generation {
        return Err(damaged());
    }
    Ok(Answer {
        connection: wire.connection,
        tokens,
    })
}

fn storage(path: &Path, what: &str, e: impl std::fmt::Display) -> Error {
    Error::storage(format!("{what}: {}: {e}", path.display()))
}

fn create_private_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|e| storage(dir, "could not create the journal directory", e))
}

/// Which journal file [`open_private`] opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    /// A new one (fails if the path exists).
    CreateNew,
    /// One already there.
    Existing,
}

fn open_private(path: &Path, open: Open) -> Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).append(true);
    if open == Open::CreateNew {
        options.create_new(true);
    }
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .map_err(|e| storage(path, "could not open the journal", e))
}

fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| storage(dir, "could not sync the journal directory", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Environment, Provider};

    fn answer(id: &str, generation: i64) -> Answer {
        let now = chrono::Utc::now();
        Answer {
            connection: Connection {
                secret_generation: generation,
                ..Connection::new(
                    id,
                    "c",
                    "c",
                    Provider::FlowAccount,
                    Environment::Sandbox,
                    "l",
                    now,
                )
            },
            tokens: TokenBundle {
                access_token: crate::secret::AccessToken::new("CANARY-access-token-journal"),
                refresh_token: Some(crate::secret::RefreshToken::new(
                    "CANARY-refresh-token-journal",
                )),
                access_expires: None,
                refresh_expires: None,
            },
        }
    }

    fn config(dir: &Path, store: &str) -> JournalConfig {
        JournalConfig {
            dir: dir.join("journal"),
            store: store.into(),
        }
    }

    #[test]
    fn entries_are_sealed_and_adopted_only_by_the_same_store_connection_and_generation() {
        let dir = tempfile::tempdir().unwrap();
        let (key, _) = JournalKey::generate().unwrap();
        let journal = Arc::new(Journal::new(config(dir.path(), "store-a")));
        let entry = journal
            .append(&key, &answer("conn-1", 7), Instant::now())
            .unwrap();
        let own = journal.own().as_ref().unwrap().path.clone();
        let bytes = std::fs::read(&own).unwrap();
        assert!(!bytes.is_empty());
        assert!(
            !bytes.windows(6).any(|w| w == b"CANARY"),
            "no token in the file in the clear"
        );
        // Our own file is not an orphan while we live.
        let other = Journal::new(config(dir.path(), "store-a"));
        assert!(other.orphans(Some(&key)).unwrap().is_empty());

        // Records tampered with (other generation in the header) do not open.
        let parsed = parse(&bytes);
        assert_eq!(parsed.len(), 1);
        let (id, generation, nonce, sealed) = parsed[0].clone();
        assert!(open("store-a", &key, &id, generation, nonce, sealed).is_ok());
        assert!(open("store-a", &key, &id, generation + 1, nonce, sealed).is_err());
        assert!(open("store-a", &key, "conn-2", generation, nonce, sealed).is_err());
        assert!(open("store-b", &key, &id, generation, nonce, sealed).is_err());
        let (other_key, _) = JournalKey::generate().unwrap();
        assert!(open("store-a", &other_key, &id, generation, nonce, sealed).is_err());

        // Committed: the file is emptied.
        entry.committed();
        assert_eq!(std::fs::metadata(&own).unwrap().len(), 0);
        drop(journal);
        assert!(
            !own.exists(),
            "removed when the process ends with nothing live"
        );
    }

    #[test]
    fn a_dead_process_file_is_an_orphan_and_a_torn_record_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let (key, _) = JournalKey::generate().unwrap();
        let journal = Arc::new(Journal::new(config(dir.path(), "s")));
        let first = journal
            .append(&key, &answer("conn-1", 2), Instant::now())
            .unwrap();
        let second = journal
            .append(&key, &answer("conn-2", 5), Instant::now())
            .unwrap();
        let path = journal.own().as_ref().unwrap().path.clone();
        // A process that dies drops nothing: simulate by leaking the handles and
        // releasing the lock (the kernel does that for a dead process).
        std::mem::forget(first);
        std::mem::forget(second);
        let own = journal.own().take().unwrap();
        let mut torn = std::fs::read(&own.path).unwrap();
        drop(own);
        let head = torn[..20].to_vec();
        torn.extend_from_slice(&head);
        std::fs::write(&path, &torn).unwrap();

        let next = Journal::new(config(dir.path(), "s"));
        let mut orphans = next.orphans(Some(&key)).unwrap();
        assert_eq!(orphans.len(), 1);
        let orphan = orphans.pop().unwrap();
        let found: Vec<(String, i64, bool)> = orphan
            .answers
            .iter()
            .map(|(c, g, a)| (c.clone(), *g, a.is_ok()))
            .collect();
        assert_eq!(
            found,
            vec![("conn-1".into(), 2, true), ("conn-2".into(), 5, true)]
        );
        let tokens = &orphan.answers[1].2.as_ref().unwrap().tokens;
        assert_eq!(
            tokens.refresh_token.as_ref().unwrap().expose(),
            "CANARY-refresh-token-journal"
        );
        orphan.remove();
        assert!(!path.exists());
    }
}
