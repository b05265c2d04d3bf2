//! Secrets in the OS keyring: [`KeyringStore`] (Secret Service on Linux, Keychain on
//! macOS, Credential Manager on Windows: the OS's store is picked in [`native`]), and
//! [`MemoryStore`] for unit tests.
//!
//! Every entry is `service` = the store's service name (see
//! [`Paths`](super::paths::Paths)), `user` = the key. Keys name a secret
//! (`client/<id>/secret`); they are never secret themselves, and neither is anything in
//! an error this module returns.
//!
//! # Bounded time
//!
//! A Secret Service call can block for ever. When the collection is locked (e.g.
//! gnome-keyring started without `--unlock`, or locked by the user) and a display is
//! available, reading an existing secret or writing any secret asks gnome-keyring for an
//! unlock prompt and then waits for the prompt's `Completed` signal with no timeout: if
//! nobody answers the dialog, the call never returns (measured: still blocked after 30 s
//! with gnome-keyring 42.1 under Xvfb). Without a display the prompter fails to start
//! and the same call fails in ~0.1 s (`NoStorageAccess(Prompt)`). Worse, the `keyring`
//! crate serialises all calls of a process behind one mutex, so one stuck call blocks
//! every later one.
//!
//! So [`KeyringStore`] runs its calls, one at a time, on a dedicated worker thread and
//! waits at most [`KeyringStore::timeout`] (default [`DEFAULT_TIMEOUT`]) for each. On a
//! timeout the caller gets `keyring_unavailable`; while the worker is still stuck, later
//! calls fail at once instead of queueing behind it. A call that timed out *while
//! running* may still complete once the prompt is answered (a `set` may land late), so a
//! timed-out write has an unknown outcome; a call that never started is dropped.

use std::collections::HashMap;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::{native, SecretStore};
use crate::error::{Error, ErrorCode, Result};
use crate::secret::KeyringValue;

/// How long a [`KeyringStore`] call may take before it fails with `keyring_unavailable`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// What the user reads when the keyring cannot be used.
pub const UNAVAILABLE_MESSAGE: &str = "The system keyring (Secret Service) is not available or is locked. Start or unlock GNOME Keyring / KWallet and try again.";

/// The key [`KeyringStore::check`] writes and deletes again. Its value is not a secret.
pub const PROBE_KEY: &str = "authdeck/availability-probe";

/// The OS keyring, under one service name.
pub struct KeyringStore {
    service: String,
    timeout: Duration,
    /// Started on first use, ends when the store is dropped (or, if it is stuck in a
    /// prompt at that moment, when the prompt finishes).
    worker: OnceLock<Worker>,
}

impl KeyringStore {
    /// A store for the entries of `service` (e.g. `"authdeck"`), with [`DEFAULT_TIMEOUT`].
    /// Nothing is contacted until the first call.
    pub fn new(service: impl Into<String>) -> Self {
        Self {
            service: service.into(),
            timeout: DEFAULT_TIMEOUT,
            worker: OnceLock::new(),
        }
    }

    /// Fail each call with `keyring_unavailable` after `timeout` instead of
    /// [`DEFAULT_TIMEOUT`]. Keep it long enough for a person to type a keyring password
    /// when a desktop unlock prompt appears.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn service(&self) -> &str {
        &self.service
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    fn entry(op: &str, service: &str, key: &str) -> Result<native::Entry> {
        native::entry(service, key).map_err(|e| map_error(op, key, e))
    }

    fn call<T: Send + 'static>(
        &self,
        op: &'static str,
        key: &str,
        f: impl FnOnce(&str, &str) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        if key.is_empty() {
            return Err(Error::invalid_input("A keyring key cannot be empty."));
        }
        let worker = self.worker()?;
        let (service, key_owned) = (self.service.clone(), key.to_owned());
        worker
            .run(self.timeout, move || f(&service, &key_owned))
            .unwrap_or_else(|failure| Err(failure.into_error(op, key, self.timeout)))
    }

    fn worker(&self) -> Result<&Worker> {
        if let Some(worker) = self.worker.get() {
            return Ok(worker);
        }
        let worker = Worker::spawn().map_err(|e| {
            Error::internal("Could not start the keyring worker thread.").with_detail(e.to_string())
        })?;
        // A concurrent first call may have won; its worker is as good as ours.
        Ok(self.worker.get_or_init(|| worker))
    }
}

impl fmt::Debug for KeyringStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyringStore")
            .field("service", &self.service)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl SecretStore for KeyringStore {
    fn set(&self, key: &str, value: &KeyringValue) -> Result<()> {
        let value = value.clone();
        self.call("set", key, move |service, key| {
            Self::entry("set", service, key)?
                .set_password(value.expose())
                .map_err(|e| map_error("set", key, e))
        })
    }

    fn get(&self, key: &str) -> Result<Option<KeyringValue>> {
        self.call("get", key, |service, key| {
            match Self::entry("get", service, key)?.get_password() {
                Ok(value) => Ok(Some(KeyringValue::new(value))),
                Err(native::Error::NoEntry) => Ok(None),
                Err(e) => Err(map_error("get", key, e)),
            }
        })
    }

    fn delete(&self, key: &str) -> Result<()> {
        self.call("delete", key, |service, key| {
            match Self::entry("delete", service, key)?.delete_credential() {
                Ok(()) | Err(native::Error::NoEntry) => Ok(()),
                Err(e) => Err(map_error("delete", key, e)),
            }
        })
    }

    /// Writes and deletes [`PROBE_KEY`]. A read is not enough: reading a *missing* entry
    /// of a locked collection answers "no entry" without unlocking (measured with
    /// gnome-keyring 42.1), so only a write tells "usable" from "locked". On a desktop
    /// this is also what makes the unlock prompt appear.
    fn list_keys(&self) -> Result<Vec<String>> {
        self.search_keys()
    }

    fn check(&self) -> Result<()> {
        self.call("check", PROBE_KEY, |service, key| {
            let entry = Self::entry("check", service, key)?;
            entry
                .set_password("probe")
                .map_err(|e| map_error("check", key, e))?;
            match entry.delete_credential() {
                Ok(()) | Err(native::Error::NoEntry) => Ok(()),
                Err(e) => Err(map_error("check", key, e)),
            }
        })
    }
}

impl KeyringStore {
    /// Every key (the `username` attribute) of this store's service, through the Secret
    /// Service's search.
    fn search_keys(&self) -> Result<Vec<String>> {
        self.call("list", "*", |service, _| {
            if let Err(e) = native::status() {
                return Err(map_error("list", "*", clone_store_error(e)));
            }
            let entries = native::search(service).map_err(|e| map_error("list", "*", e))?;
            let mut keys: Vec<String> = entries
                .iter()
                .filter_map(|entry| match entry.get_specifiers() {
                    Some((found, user)) if found == service => Some(user),
                    _ => None,
                })
                .collect();
            keys.sort();
            keys.dedup();
            Ok(keys)
        })
    }
}

/// `native::Error` is not `Clone`; the store's creation error is kept as a static.
fn clone_store_error(e: &native::Error) -> native::Error {
    native::Error::PlatformFailure(e.to_string().into())
}

/// Turns a `keyring` error (not `NoEntry`, which callers handle) into ours. The detail
/// names the operation and key, never a value: `BadEncoding` / `BadDataFormat` carry
/// the stored bytes and are reported without them.
fn map_error(op: &str, key: &str, err: native::Error) -> Error {
    use native::Error as K;
    let unavailable = |detail: String| {
        Error::new(ErrorCode::KeyringUnavailable, UNAVAILABLE_MESSAGE)
            .with_detail(format!("keyring {op} {key}: {detail}"))
    };
    let internal = |message: &str, detail: String| {
        Error::internal(message).with_detail(format!("keyring {op} {key}: {detail}"))
    };
    match err {
        K::NoDefaultStore => {
            // The store is created once per process; its creation error says why
            // (typically: no D-Bus session bus, or no Secret Service on it).
            let why = match native::status() {
                Err(e) => e.to_string(),
                Ok(()) => "no default credential store".to_owned(),
            };
            unavailable(format!("no credential store: {why}"))
        }
        K::NoStorageAccess(e) => unavailable(format!("access refused (locked?): {e}")),
        K::PlatformFailure(e) => unavailable(format!("platform failure: {e}")),
        K::NoEntry => internal(
            "A keyring entry vanished unexpectedly.",
            "no entry".to_owned(),
        ),
        K::BadEncoding(_) => internal(
            "A keyring entry holds a value Authdeck did not write (not UTF-8).",
            "stored value is not UTF-8 (value withheld)".to_owned(),
        ),
        K::BadDataFormat(_, _) => internal(
            "A keyring entry holds a value in an unexpected format.",
            "stored value is malformed (value withheld)".to_owned(),
        ),
        K::Ambiguous(entries) => internal(
            "More than one keyring entry matches one Authdeck key.",
            format!("{} matching entries", entries.len()),
        ),
        K::TooLong(attr, limit) => internal(
            "A keyring key is too long for this platform.",
            format!("{attr} longer than {limit}"),
        ),
        K::Invalid(attr, reason) => internal(
            "The keyring rejected an entry name.",
            format!("invalid {attr}: {reason}"),
        ),
        K::BadStoreFormat(_) => unavailable("the keyring's data is malformed".to_owned()),
        K::NotSupportedByStore(what) => internal(
            "The keyring does not support an operation Authdeck needs.",
            format!("unsupported: {what}"),
        ),
        // `native::Error` is non-exhaustive; these Display impls carry no values.
        other => unavailable(other.to_string()),
    }
}

// ---------------------------------------------------------------------------------------
// The worker thread.

type Job = Box<dyn FnOnce() + Send>;

const PENDING: u8 = 0;
const RUNNING: u8 = 1;
const ABANDONED: u8 = 2;
/// Running, and its caller gave up waiting: the worker is stuck (e.g. on a prompt).
const TIMED_OUT: u8 = 3;

struct Ticket {
    state: Arc<AtomicU8>,
    job: Job,
}

/// One thread that runs keyring calls in order; callers wait with a timeout.
struct Worker {
    jobs: mpsc::Sender<Ticket>,
    /// The job now running; `None` while idle.
    running: Arc<Mutex<Option<Running>>>,
}

struct Running {
    since: Instant,
    state: Arc<AtomicU8>,
}

/// Why [`Worker::run`] produced no result.
#[derive(Debug, PartialEq, Eq)]
enum Failure {
    /// A previous call timed out and is still running.
    Stuck(Duration),
    /// This call did not finish in time; `started` says whether it was running.
    TimedOut { started: bool },
    /// The worker thread is gone or the call panicked.
    WorkerLost,
}

impl Failure {
    fn into_error(self, op: &str, key: &str, timeout: Duration) -> Error {
        let unavailable = |detail: String| {
            Error::new(ErrorCode::KeyringUnavailable, UNAVAILABLE_MESSAGE)
                .with_detail(format!("keyring {op} {key}: {detail}"))
        };
        match self {
            Failure::Stuck(for_) => unavailable(format!(
                "not attempted: an earlier keyring call has been waiting for {} s \
                 (probably on an unlock prompt)",
                for_.as_secs()
            )),
            Failure::TimedOut { started: true } => unavailable(format!(
                "no answer within {} s (probably waiting on an unlock prompt); \
                 the call may still complete later",
                timeout.as_secs_f32()
            )),
            Failure::TimedOut { started: false } => unavailable(format!(
                "not attempted within {} s: queued behind an earlier keyring call",
                timeout.as_secs_f32()
            )),
            Failure::WorkerLost => Error::internal("The keyring call failed unexpectedly.")
                .with_detail(format!(
                    "keyring {op} {key}: worker thread lost or call panicked"
                )),
        }
    }
}

impl Worker {
    fn spawn() -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::channel::<Ticket>();
        let running = Arc::new(Mutex::new(None));
        let current = Arc::clone(&running);
        std::thread::Builder::new()
            .name("authdeck-keyring".into())
            .spawn(move || {
                for ticket in queue {
                    let claimed = ticket
                        .state
                        .compare_exchange(PENDING, RUNNING, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok();
                    if !claimed {
                        continue; // The caller gave up before we got to it.
                    }
                    *lock(&current) = Some(Running {
                        since: Instant::now(),
                        state: ticket.state,
                    });
                    // A panic drops the reply sender: the caller sees WorkerLost.
                    let _ = catch_unwind(AssertUnwindSafe(ticket.job));
                    *lock(&current) = None;
                }
            })?;
        Ok(Self { jobs, running })
    }

    fn run<T: Send + 'static>(
        &self,
        timeout: Duration,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> std::result::Result<T, Failure> {
        if let Some(running) = &*lock(&self.running) {
            if running.state.load(Ordering::Acquire) == TIMED_OUT {
                return Err(Failure::Stuck(running.since.elapsed()));
            }
        }
        let (reply, answer) = mpsc::sync_channel(1);
        let state = Arc::new(AtomicU8::new(PENDING));
        let ticket = Ticket {
            state: Arc::clone(&state),
            job: Box::new(move || {
                let _ = reply.send(f());
            }),
        };
        self.jobs.send(ticket).map_err(|_| Failure::WorkerLost)?;
        match answer.recv_timeout(timeout) {
            Ok(value) => Ok(value),
            Err(RecvTimeoutError::Disconnected) => Err(Failure::WorkerLost),
            Err(RecvTimeoutError::Timeout) => {
                let abandoned = state
                    .compare_exchange(PENDING, ABANDONED, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok();
                if !abandoned {
                    // It is running: mark the worker stuck, so that later calls fail at
                    // once. It may have finished in the meantime, though.
                    let _ = state.compare_exchange(
                        RUNNING,
                        TIMED_OUT,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    );
                    if let Ok(value) = answer.try_recv() {
                        return Ok(value);
                    }
                }
                Err(Failure::TimedOut {
                    started: !abandoned,
                })
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

// ---------------------------------------------------------------------------------------

/// An in-process [`SecretStore`] **for unit tests only**. Authdeck never falls back to
/// it: without a usable OS keyring, operations that need a secret fail with
/// `keyring_unavailable`.
#[derive(Default)]
pub struct MemoryStore {
    entries: Mutex<HashMap<String, KeyringValue>>,
    unavailable: AtomicBool,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// While `true`, every call fails with `keyring_unavailable`, like a locked keyring.
    pub fn set_unavailable(&self, unavailable: bool) {
        self.unavailable.store(unavailable, Ordering::SeqCst);
    }

    /// The keys present, sorted (to assert that nothing was left behind).
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = lock(&self.entries).keys().cloned().collect();
        keys.sort();
        keys
    }

    fn available(&self) -> Result<()> {
        if self.unavailable.load(Ordering::SeqCst) {
            Err(
                Error::new(ErrorCode::KeyringUnavailable, UNAVAILABLE_MESSAGE)
                    .with_detail("memory store switched to unavailable (test)"),
            )
        } else {
            Ok(())
        }
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("keys", &self.keys())
            .field("unavailable", &self.unavailable.load(Ordering::SeqCst))
            .finish()
    }
}

impl SecretStore for MemoryStore {
    fn set(&self, key: &str, value: &KeyringValue) -> Result<()> {
        self.available()?;
        if key.is_empty() {
            return Err(Error::invalid_input("A keyring key cannot be empty."));
        }
        lock(&self.entries).insert(key.to_owned(), value.clone());
        Ok(())
    }

    fn get(&self, key: &str) -> Result<Option<KeyringValue>> {
        self.available()?;
        Ok(lock(&self.entries).get(key).cloned())
    }

    fn delete(&self, key: &str) -> Result<()> {
        self.available()?;
        lock(&self.entries).remove(key);
        Ok(())
    }

    fn list_keys(&self) -> Result<Vec<String>> {
        self.available()?;
        Ok(self.keys())
    }

    fn check(&self) -> Result<()> {
        self.available()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_store_set_get_overwrite_delete() {
        let store = MemoryStore::new();
        assert_eq!(store.get("a").unwrap(), None);
        store.set("a", &KeyringValue::new("one")).unwrap();
        assert_eq!(store.get("a").unwrap().unwrap().expose(), "one");
        store.set("a", &KeyringValue::new("two")).unwrap();
        assert_eq!(store.get("a").unwrap().unwrap().expose(), "two");
        store.delete("a").unwrap();
        assert_eq!(store.get("a").unwrap(), None);
        store.delete("a").unwrap(); // missing: not an error
        assert!(store.keys().is_empty());
        store.check().unwrap();
    }

    #[test]
    fn memory_store_can_play_an_unavailable_keyring() {
        let store = MemoryStore::new();
        store.set("a", &KeyringValue::new("one")).unwrap();
        store.set_unavailable(true);
        for result in [
            store.get("a").map(|_| ()),
            store.set("b", &KeyringValue::new("x")),
            store.delete("a"),
            store.check(),
        ] {
            assert_eq!(result.unwrap_err().code, ErrorCode::KeyringUnavailable);
        }
        store.set_unavailable(false);
        assert_eq!(store.keys(), ["a"]);
    }

    #[test]
    fn memory_store_debug_shows_keys_not_values() {
        let store = MemoryStore::new();
        store
            .set("client/1/secret", &KeyringValue::new("canary-91c2"))
            .unwrap();
        let debug = format!("{store:?}");
        assert!(debug.contains("client/1/secret"));
        assert!(!debug.contains("canary-91c2"));
    }

    #[test]
    fn empty_keys_are_rejected_before_touching_the_keyring() {
        let store = KeyringStore::new("authdeck-unit-test");
        let err = store.get("").unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidInput);
        assert!(store.worker.get().is_none());
    }

    #[test]
    fn worker_returns_results_in_order() {
        let worker = Worker::spawn().unwrap();
        for i in 0..5 {
            assert_eq!(worker.run(Duration::from_secs(5), move || i * 2), Ok(i * 2));
        }
    }

    #[test]
    fn a_stuck_call_times_out_and_later_calls_fail_fast_until_it_ends() {
        let worker = Worker::spawn().unwrap();
        let timeout = Duration::from_millis(200);
        let (release, wait) = mpsc::channel::<()>();

        let start = Instant::now();
        let first = worker.run(timeout, move || wait.recv().is_ok());
        assert_eq!(first, Err(Failure::TimedOut { started: true }));
        assert!(start.elapsed() < Duration::from_secs(2));

        // Queued behind the stuck call: does not wait another full timeout.
        let start = Instant::now();
        let ran = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&ran);
        let second = worker.run(timeout, move || flag.store(true, Ordering::SeqCst));
        assert!(matches!(second, Err(Failure::Stuck(_))), "{second:?}");
        assert!(start.elapsed() < Duration::from_millis(100));

        // The "prompt" is answered: the worker recovers, and the call that was
        // abandoned before it started is never run.
        release.send(()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match worker.run(timeout, || 42) {
                Ok(v) => break assert_eq!(v, 42),
                Err(_) if Instant::now() < deadline => std::thread::sleep(timeout),
                Err(e) => panic!("worker did not recover: {e:?}"),
            }
        }
        assert!(!ran.load(Ordering::SeqCst));
    }

    #[test]
    fn a_call_queued_behind_a_slow_one_is_dropped_when_abandoned() {
        let worker = Worker::spawn().unwrap();
        let (release, wait) = mpsc::channel::<()>();
        // A slow call nobody waits for (so it is not yet "stuck" for the next caller).
        worker
            .jobs
            .send(Ticket {
                state: Arc::new(AtomicU8::new(PENDING)),
                job: Box::new(move || {
                    let _ = wait.recv();
                }),
            })
            .unwrap();
        std::thread::sleep(Duration::from_millis(50));

        let ran = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&ran);
        let queued = worker.run(Duration::from_millis(300), move || {
            flag.store(true, Ordering::SeqCst)
        });
        assert_eq!(queued, Err(Failure::TimedOut { started: false }));

        release.send(()).unwrap();
        assert_eq!(worker.run(Duration::from_secs(5), || 1), Ok(1));
        assert!(
            !ran.load(Ordering::SeqCst),
            "an abandoned call must not run later"
        );
    }

    #[test]
    fn a_panicking_call_is_an_internal_error_and_the_worker_survives() {
        let worker = Worker::spawn().unwrap();
        let result = worker.run(Duration::from_secs(5), || -> u8 { panic!("boom") });
        assert_eq!(result, Err(Failure::WorkerLost));
        assert_eq!(worker.run(Duration::from_secs(5), || 7), Ok(7));
        let err = Failure::WorkerLost.into_error("get", "k", DEFAULT_TIMEOUT);
        assert_eq!(err.code, ErrorCode::Internal);
    }

    #[test]
    fn keyring_errors_map_to_stable_codes_without_values() {
        let boxed = |s: &str| -> Box<dyn std::error::Error + Send + Sync> {
            Box::new(std::io::Error::other(s.to_owned()))
        };
        let e = map_error(
            "get",
            "client/1/secret",
            native::Error::NoStorageAccess(boxed("locked")),
        );
        assert_eq!(e.code, ErrorCode::KeyringUnavailable);
        assert_eq!(e.message, UNAVAILABLE_MESSAGE);
        assert!(e.detail.as_deref().unwrap().contains("client/1/secret"));
        let e = map_error(
            "get",
            "k",
            native::Error::PlatformFailure(boxed("D-Bus error")),
        );
        assert_eq!(e.code, ErrorCode::KeyringUnavailable);
        let e = map_error("get", "k", native::Error::NoDefaultStore);
        assert_eq!(e.code, ErrorCode::KeyringUnavailable);

        let e = map_error(
            "get",
            "k",
            native::Error::BadEncoding(b"canary-\xff".to_vec()),
        );
        assert_eq!(e.code, ErrorCode::Internal);
        let json = serde_json::to_string(&e).unwrap();
        assert!(!json.contains("canary"), "{json}");
    }
}
