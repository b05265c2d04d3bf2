//! Shared set-up for the manager tests: a real emulator over HTTP, a real SQLite file in
//! a temporary directory, and the real Secret Service under a unique service name.
//!
//! # The backend matrix
//! The [`Manager`] is built through [`TestBackend`], chosen by `AUTHDECK_TEST_BACKEND`
//! (`local`, the default, or `team`; anything else panics), so the same test files run
//! against every storage backend (`store::backend`'s contract) without being copied.
//! `scripts/core-test-matrix.sh` runs them per backend.
//!
//! Every file that builds a `Manager` runs on every backend. Where a test checks the
//! local backend's internals besides behaviour (keyring entries per generation,
//! `connection/<id>/child_secret`, token sets), the behaviour part reads through the
//! seam ([`Fixture::current_tokens`], [`Fixture::store`]) and only those internals sit
//! behind [`is_local`], with a comment naming where the team store's rows are checked
//! (`crates/team/tests`). `common/matrix.txt` lists, for `scripts/core-test-matrix.sh`:
//! - `local-only FILE TEST`: a test entirely about local internals, skipped on other
//!   backends (none today);
//! - `no-backend FILE`: files that build no `Manager` (providers, parsers, the keyring
//!   adapter), so another backend changes nothing for them.
//!
//! The crash-safety tests of the keyring commit sequence (`AUTHDECK_CRASH_AT`) are the
//! CLI's (`crates/cli/tests/e2e`), which uses the local store only.
#![allow(dead_code)]

pub mod wrap;

use std::sync::Arc;

use authdeck_core::clock::SharedClock;
use authdeck_core::manager::{LocalParts, Manager, ManagerOptions, NewClient};
use authdeck_core::model::Provider;
use authdeck_core::store::backend::Backend;
use authdeck_core::store::db::Db;
use authdeck_core::store::keyring::KeyringStore;
use authdeck_core::store::SecretStore;
use authdeck_core::ClientSecret;
use authdeck_core::ErrorCode;
use authdeck_emulator::{EmulatorConfig, RunningEmulator};
use authdeck_team::testing::PgCluster;
use authdeck_team::{DbConfig, TeamBackend, TeamStore, Via};

pub fn require_keyring() {
    assert!(
        std::env::var_os("AUTHDECK_TEST_KEYRING").is_some(),
        "these tests use the real Secret Service: run them under scripts/with-keyring.sh (make test)"
    );
}

/// The storage backend the manager tests run on (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestBackend {
    /// SQLite + the keyring + file locks (`store::local`).
    Local,
    /// The shared team store (`authdeck-team`, issue 13).
    Team,
}

/// The file (next to this one) that says which test files run under which backend.
pub const MATRIX: &str = include_str!("matrix.txt");

impl TestBackend {
    /// `AUTHDECK_TEST_BACKEND`: unset or `local` is [`Self::Local`], `team` is
    /// [`Self::Team`]; any other value panics (a typo must not run the wrong matrix).
    pub fn from_env() -> Self {
        match std::env::var("AUTHDECK_TEST_BACKEND") {
            Err(std::env::VarError::NotPresent) => Self::Local,
            Ok(v) if v == "local" => Self::Local,
            Ok(v) if v == "team" => Self::Team,
            Ok(other) => panic!(
                "AUTHDECK_TEST_BACKEND={other:?} is no backend these tests know: use `local` (the default) or `team`"
            ),
            Err(std::env::VarError::NotUnicode(_)) => {
                panic!("AUTHDECK_TEST_BACKEND is not UTF-8: use `local` or `team`")
            }
        }
    }

    /// A manager on this backend, with `dir` as the machine's data directory and
    /// `secrets` as its keyring (what stays per machine: `manager::LocalParts`).
    ///
    /// `team`: a new team (`TeamStore::init`, a unique name) in the test binary's one
    /// PostgreSQL cluster ([`PgCluster::shared`], started on first use, stopped by its
    /// reaper when the binary exits), opened as a `TeamBackend`; the SQLite file and the
    /// keyring stay per machine as for `local`.
    pub async fn manager(
        self,
        dir: &std::path::Path,
        secrets: Arc<KeyringStore>,
        options: ManagerOptions,
    ) -> (Manager, Arc<dyn Backend>) {
        let db = Db::open(&dir.join("authdeck.sqlite3")).unwrap();
        let local = LocalParts::new(db, secrets, &options);
        let store: Arc<dyn Backend> = match self {
            Self::Local => Arc::new(local.backend(options.clock.clone())),
            Self::Team => {
                let cluster = PgCluster::shared();
                let config = DbConfig::parse(&cluster.tcp_config("postgres")).unwrap();
                let name = format!("test-team-{}", uuid::Uuid::new_v4());
                let (store, _join) = TeamStore::init(&config, &name, "test-desk", Via::Desktop)
                    .await
                    .unwrap();
                Arc::new(TeamBackend::open(store, options.lock_wait).await.unwrap())
            }
        };
        let manager = Manager::with_backend(store.clone(), local, options).unwrap();
        (manager, store)
    }

    pub fn is_local(self) -> bool {
        self == Self::Local
    }
}

/// Whether this run is on the local backend (`AUTHDECK_TEST_BACKEND`). The one gate of
/// the assertions on the local backend's internals (keyring entries per generation,
/// SQLite rows): the behaviour around them runs on every backend. The team store's own
/// rows are checked by `crates/team/tests` (backend.rs, store.rs, parity.rs).
pub fn is_local() -> bool {
    TestBackend::from_env().is_local()
}

pub struct Fixture {
    pub emulator: RunningEmulator,
    pub manager: Manager,
    /// The manager's storage backend (the same `Arc`), for reading what it holds
    /// through the seam on any backend.
    pub store: Arc<dyn Backend>,
    pub secrets: Arc<KeyringStore>,
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub async fn new() -> Self {
        Self::with_options(ManagerOptions::default()).await
    }

    pub async fn with_clock(clock: SharedClock) -> Self {
        Self::with_options(ManagerOptions {
            clock,
            ..ManagerOptions::default()
        })
        .await
    }

    pub async fn with_options(options: ManagerOptions) -> Self {
        Self::with_emulator_and_options(EmulatorConfig::demo(), options).await
    }

    /// An emulator with other users, businesses or clients than the demo ones.
    pub async fn with_emulator(config: EmulatorConfig) -> Self {
        Self::with_emulator_and_options(config, ManagerOptions::default()).await
    }

    pub async fn with_emulator_and_options(
        config: EmulatorConfig,
        mut options: ManagerOptions,
    ) -> Self {
        require_keyring();
        let emulator = authdeck_emulator::start(config, "127.0.0.1:0".parse().unwrap())
            .await
            .expect("emulator starts");
        let dir = tempfile::tempdir().unwrap();
        options.lock_dir = Some(dir.path().join("locks"));
        let service = format!("authdeck-test-{}", uuid::Uuid::new_v4());
        let secrets = Arc::new(KeyringStore::new(service));
        let (manager, store) = TestBackend::from_env()
            .manager(dir.path(), secrets.clone(), options)
            .await;
        Self {
            emulator,
            manager,
            store,
            secrets,
            dir,
        }
    }

    pub async fn add_demo_clients(&self) {
        let e = &self.emulator;
        let mut fa = NewClient::new("fa", Provider::FlowAccount, "demo-flowaccount");
        fa.client_secret = Some(ClientSecret::new("demo-flowaccount-secret"));
        fa.authorize_url = Some(e.flowaccount_authorize_url());
        fa.token_url = Some(e.flowaccount_token_url());
        self.manager.add_client(fa).await.unwrap();
        let mut fedex = NewClient::new("fedex", Provider::Fedex, "demo-fedex-key");
        fedex.client_secret = Some(ClientSecret::new("demo-fedex-secret"));
        fedex.token_url = Some(e.fedex_token_url());
        self.manager.add_client(fedex).await.unwrap();
        let mut iot = NewClient::new("iot", Provider::Iot, "demo-iot-client");
        iot.auth_url = Some(e.iot_auth_url());
        self.manager.add_client(iot).await.unwrap();
    }

    /// Start a FlowAccount authorization and approve it at the emulator like a user
    /// would; returns the redirect URL the browser would be sent to.
    pub async fn authorize_flowaccount(&self, client: &str, business: &str) -> String {
        let pending = self.manager.begin_flowaccount(client).await.unwrap();
        authdeck_emulator::approve(&pending.authorize_url, "demo@example.com", "demo", business)
            .await
            .expect("the emulator approves")
    }

    /// The tokens the backend holds for a connection now, read through the seam
    /// (`Backend::tokens`), on any backend: `None` when the connection or its tokens
    /// are gone. `{"generation", "access_token", "refresh_token"}`.
    pub async fn current_tokens(&self, connection_id: &str) -> Option<serde_json::Value> {
        let conn = match self.store.connection(connection_id).await {
            Ok(conn) => conn,
            Err(e) if e.code == ErrorCode::NotFound => return None,
            Err(e) => panic!("connection {connection_id}: {e:?}"),
        };
        let bundle = self.store.tokens(&conn).await.unwrap()?;
        Some(serde_json::json!({
            "generation": conn.secret_generation,
            "access_token": bundle.access_token.expose(),
            "refresh_token": bundle.refresh_token.as_ref().map(|r| r.expose().to_string()),
        }))
    }

    /// The tokens stored for a connection's given generation, read straight from the
    /// local backend's keyring (`connection/<id>/tokens/<g>`): local internals, so call
    /// it under [`is_local`] only (it panics on another backend, whose rows the team
    /// crate's own tests check).
    pub fn stored_tokens(&self, connection_id: &str, generation: i64) -> Option<serde_json::Value> {
        assert!(
            is_local(),
            "stored_tokens reads the local backend's keyring: gate it with common::is_local()"
        );
        let key = format!("connection/{connection_id}/tokens/{generation}");
        self.secrets
            .get(&key)
            .unwrap()
            .map(|s| serde_json::from_str(s.expose()).unwrap())
    }

    /// Whether the local backend's keyring holds `key` (local internals: under
    /// [`is_local`] only).
    pub fn keyring_has(&self, key: &str) -> bool {
        assert!(is_local(), "keyring_has({key:?}) reads the local backend's keyring: gate it with common::is_local()");
        self.secrets.get(key).unwrap().is_some()
    }
}
