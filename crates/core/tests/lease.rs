//! A refresher never starts a provider call unless it still holds the connection's lock
//! with enough time left to commit (issue 13 §1): the manager asks the lock
//! (`Lease::ensure_held`) right before every provider call made under it — a refresh, each
//! member of a batch refresh, an IoT logout — and when the lock says no, nothing is sent
//! and nothing is changed. Here the lock is a fake on top of the backend under test (every
//! backend of the matrix); the team store's real lock (a frozen holder, a cut link) is in
//! `crates/team/tests/partition_refresh.rs`.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use authdeck_core::manager::{LocalParts, LogoutOutcome, Manager, ManagerOptions, NewClient};
use authdeck_core::model::{Connection, ConnectionState, Provider};
use authdeck_core::store::backend::{lease_lost, Backend, Lease, LeaseCheck};
use authdeck_core::store::db::Db;
use authdeck_core::store::keyring::KeyringStore;
use authdeck_core::{ClientSecret, ErrorCode, Password, Result};
use common::wrap::{Hooks, Wrapped};
use common::TestBackend;

/// What the fake locks say, and what they were asked.
#[derive(Default)]
struct Locks {
    /// Every lock handed out says it is lost.
    lost: AtomicBool,
    /// The `need` of every check.
    asked: Mutex<Vec<Duration>>,
}

/// A lease on the real lock of the backend under test, whose check says what `Locks` say.
struct FakeLease {
    _real: Lease,
    locks: Arc<Locks>,
}

#[async_trait]
impl LeaseCheck for FakeLease {
    async fn ensure_held(&self, need: Duration) -> Result<()> {
        self.locks.asked.lock().unwrap().push(need);
        match self.locks.lost.load(Ordering::SeqCst) {
            true => Err(lease_lost().with_detail("the fake lock says lost")),
            false => Ok(()),
        }
    }
}

/// The backend under test's locks, wrapped in [`FakeLease`].
#[async_trait]
impl Hooks for Arc<Locks> {
    async fn lock(&self, inner: &dyn Backend, connection_id: &str) -> Result<Lease> {
        let real = inner.lock(connection_id).await?;
        Ok(Lease::checked(FakeLease {
            _real: real,
            locks: self.clone(),
        }))
    }
}

struct Setup {
    emulator: authdeck_emulator::RunningEmulator,
    manager: Manager,
    store: Arc<dyn Backend>,
    locks: Arc<Locks>,
    _dir: tempfile::TempDir,
}

/// The backend of the matrix with fake-checked locks, the demo clients, and one
/// FlowAccount business and one IoT account connected.
async fn setup() -> (Setup, Connection, Connection) {
    common::require_keyring();
    let emulator = authdeck_emulator::start(
        authdeck_emulator::EmulatorConfig::demo(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let options = ManagerOptions {
        lock_dir: Some(dir.path().join("locks")),
        ..ManagerOptions::default()
    };
    let secrets = Arc::new(KeyringStore::new(format!(
        "authdeck-test-{}",
        uuid::Uuid::new_v4()
    )));
    // The backend under test (its own manager is not used).
    let (_, inner) = TestBackend::from_env()
        .manager(dir.path(), secrets.clone(), options.clone())
        .await;
    let locks = Arc::new(Locks::default());
    let store: Arc<dyn Backend> = Arc::new(Wrapped {
        inner,
        hooks: locks.clone(),
    });
    let db = Db::open(&dir.path().join("machine.sqlite3")).unwrap();
    let local = LocalParts::new(db, secrets, &options);
    let manager = Manager::with_backend(store.clone(), local, options).unwrap();

    let mut fa = NewClient::new("fa", Provider::FlowAccount, "demo-flowaccount");
    fa.client_secret = Some(ClientSecret::new("demo-flowaccount-secret"));
    fa.authorize_url = Some(emulator.flowaccount_authorize_url());
    fa.token_url = Some(emulator.flowaccount_token_url());
    manager.add_client(fa).await.unwrap();
    let mut iot = NewClient::new("iot", Provider::Iot, "demo-iot-client");
    iot.auth_url = Some(emulator.iot_auth_url());
    manager.add_client(iot).await.unwrap();

    let pending = manager.begin_flowaccount("fa").await.unwrap();
    let redirect = authdeck_emulator::approve(
        &pending.authorize_url,
        "demo@example.com",
        "demo",
        "FA-100001",
    )
    .await
    .unwrap();
    let fa = manager.complete_callback(&redirect).await.unwrap();
    let iot = manager
        .connect_iot("iot", "operator", Password::new("operator-pass"))
        .await
        .unwrap();
    let setup = Setup {
        emulator,
        manager,
        store,
        locks,
        _dir: dir,
    };
    (setup, fa, iot)
}

impl Setup {
    fn provider_requests(&self) -> u64 {
        self.emulator.control().stats().requests
    }

    /// The connection as stored, its tokens and its history (what "nothing changed"
    /// compares).
    async fn snapshot(&self, id: &str) -> (Connection, Option<String>, Vec<String>) {
        let conn = self.store.connection(id).await.unwrap();
        let refresh = self
            .store
            .tokens(&conn)
            .await
            .unwrap()
            .and_then(|t| t.refresh_token)
            .map(|r| r.expose().to_string());
        let history = self
            .store
            .history(Some(id), 100)
            .await
            .unwrap()
            .into_iter()
            .map(|h| format!("{} {} {:?}", h.event, h.outcome, h.detail))
            .collect();
        (conn, refresh, history)
    }

    fn lose_locks(&self, lost: bool) {
        self.locks.lost.store(lost, Ordering::SeqCst);
        self.locks.asked.lock().unwrap().clear();
    }

    fn asked(&self) -> Vec<Duration> {
        self.locks.asked.lock().unwrap().clone()
    }
}

fn assert_lost_lock_error(e: &authdeck_core::Error) {
    assert_eq!(e.code, ErrorCode::TeamUnavailable, "{e:?}");
    assert!(
        e.message
            .contains("nothing was sent to the provider and nothing was changed"),
        "{e:?}"
    );
}

#[tokio::test]
async fn a_refresh_whose_lock_is_lost_sends_nothing_and_changes_nothing() {
    let (s, fa, iot) = setup().await;
    for conn in [&fa, &iot] {
        let before = s.snapshot(&conn.id).await;
        let requests = s.provider_requests();
        s.lose_locks(true);
        let e = s.manager.refresh(&conn.id).await.unwrap_err();
        assert_lost_lock_error(&e);
        assert_eq!(
            s.provider_requests(),
            requests,
            "{:?}: a provider call went out under a lost lock",
            conn.provider
        );
        assert_eq!(
            s.asked(),
            [Duration::from_secs(2)],
            "asked once, right before the call, for the commit's worst case"
        );
        let after = s.snapshot(&conn.id).await;
        assert_eq!(after.0, before.0, "the connection changed");
        assert_eq!(after.1, before.1, "the tokens changed");
        assert_eq!(after.2, before.2, "the history changed");
        assert_eq!(after.0.state, ConnectionState::Active);

        // The lock held again: the same refresh goes through (the check is no
        // obstacle to a lock that holds).
        s.lose_locks(false);
        let refreshed = s.manager.refresh(&conn.id).await.unwrap();
        assert_eq!(refreshed.secret_generation, before.0.secret_generation + 1);
        assert_eq!(s.provider_requests(), requests + 1);
        assert_eq!(s.asked().len(), 1);
    }
}

#[tokio::test]
async fn every_member_of_a_batch_refresh_checks_its_lock_before_its_call() {
    let (s, fa, iot) = setup().await;
    let before = [s.snapshot(&fa.id).await, s.snapshot(&iot.id).await];
    let requests = s.provider_requests();
    s.lose_locks(true);
    let reports = s.manager.refresh_all().await.unwrap();
    assert_eq!(reports.len(), 2);
    for report in &reports {
        assert_lost_lock_error(report.result.as_ref().unwrap_err());
    }
    assert_eq!(s.provider_requests(), requests, "a batch member called");
    assert_eq!(s.asked().len(), 2, "one check per member");
    let after = [s.snapshot(&fa.id).await, s.snapshot(&iot.id).await];
    assert_eq!(after, before, "nothing changed");

    s.lose_locks(false);
    let reports = s
        .manager
        .refresh_many(&[fa.id.clone(), iot.id.clone()])
        .await;
    assert!(reports.iter().all(|r| r.is_ok()), "{reports:?}");
    assert_eq!(s.provider_requests(), requests + 2);
}

#[tokio::test]
async fn an_iot_logout_whose_lock_is_lost_asks_the_server_nothing_and_can_be_retried() {
    let (s, _fa, iot) = setup().await;
    let before = s.snapshot(&iot.id).await;
    let requests = s.provider_requests();
    s.lose_locks(true);
    let e = s.manager.logout(&iot.id).await.unwrap_err();
    assert_lost_lock_error(&e);
    assert_eq!(s.provider_requests(), requests, "the logout was sent");
    assert_eq!(s.asked(), [Duration::from_secs(2)]);
    let sessions = s.emulator.control().iot_sessions();
    assert!(sessions.iter().all(|x| !x.revoked), "{sessions:?}");
    let after = s.snapshot(&iot.id).await;
    assert_eq!(after, before, "not even marked logout pending");

    s.lose_locks(false);
    assert_eq!(
        s.manager.logout(&iot.id).await.unwrap(),
        LogoutOutcome::Revoked
    );
    assert!(s
        .emulator
        .control()
        .iot_sessions()
        .iter()
        .all(|x| x.revoked));
}

#[tokio::test]
async fn the_local_store_lock_always_says_it_holds() {
    // Its file lock is released only by its holder's death: nothing to check.
    let lease = Lease::new(());
    lease.ensure_held(Duration::from_secs(3600)).await.unwrap();
}
