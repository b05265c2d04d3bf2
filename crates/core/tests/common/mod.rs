//! Shared set-up for the manager tests: a real emulator over HTTP, a real SQLite file in
//! a temporary directory, and the real Secret Service under a unique service name.
//!
//! # The backend matrix
//! The [`Manager`] is built through [`TestBackend`], chosen by `AUTHDECK_TEST_BACKEND`
//! (`local`, the default, or `team`; anything else panics), so the same test files run
//! against every storage backend (`store::backend`'s contract) without being copied.
//! `scripts/core-test-matrix.sh` runs them per backend.
//!
//! Not every file is about the contract. `common/matrix.txt` lists, by test-file name,
//! the files the runner runs under the local backend only:
//! - `local-only`: they look at the local backend's internals — keyring entries per
//!   generation (`connection/<id>/tokens/<g>`, child secrets, PKCE verifiers), token
//!   sets, SQLite files — besides behaviour;
//! - `no-backend`: they build no `Manager` (providers, parsers, the keyring adapter), so
//!   another backend changes nothing for them.
//!
//! The crash-safety tests of the keyring commit sequence (`AUTHDECK_CRASH_AT`) are the
//! CLI's (`crates/cli/tests/e2e`), which uses the local store only.
#![allow(dead_code)]

use std::sync::Arc;

use authdeck_core::clock::SharedClock;
use authdeck_core::manager::{LocalParts, Manager, ManagerOptions, NewClient};
use authdeck_core::model::Provider;
use authdeck_core::store::db::Db;
use authdeck_core::store::keyring::KeyringStore;
use authdeck_core::store::SecretStore;
use authdeck_core::ClientSecret;
use authdeck_emulator::{EmulatorConfig, RunningEmulator};

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
    pub fn manager(
        self,
        dir: &std::path::Path,
        secrets: Arc<KeyringStore>,
        options: ManagerOptions,
    ) -> Manager {
        let db = Db::open(&dir.join("authdeck.sqlite3")).unwrap();
        let local = LocalParts::new(db, secrets, &options);
        match self {
            Self::Local => {
                let store = Arc::new(local.backend(options.clock.clone()));
                Manager::with_backend(store, local, options).unwrap()
            }
            // The factory of issue 13 goes here: `Manager::with_backend(team backend,
            // local, options)`, on a PostgreSQL cluster of authdeck-team's test kit.
            Self::Team => panic!(
                "AUTHDECK_TEST_BACKEND=team: the team backend is not plugged into the core's test fixture yet (crates/core/tests/common/mod.rs, TestBackend::manager)"
            ),
        }
    }
}

pub struct Fixture {
    pub emulator: RunningEmulator,
    pub manager: Manager,
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
        let manager = TestBackend::from_env().manager(dir.path(), secrets.clone(), options);
        Self {
            emulator,
            manager,
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

    /// The tokens stored for a connection's current generation, read straight from the keyring.
    pub fn stored_tokens(&self, connection_id: &str, generation: i64) -> Option<serde_json::Value> {
        let key = format!("connection/{connection_id}/tokens/{generation}");
        self.secrets
            .get(&key)
            .unwrap()
            .map(|s| serde_json::from_str(s.expose()).unwrap())
    }

    pub fn keyring_has(&self, key: &str) -> bool {
        self.secrets.get(key).unwrap().is_some()
    }
}
