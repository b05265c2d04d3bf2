//! Shared set-up for the manager tests: a real emulator over HTTP, a real SQLite file in
//! a temporary directory, and the real Secret Service under a unique service name.
#![allow(dead_code)]

use std::sync::Arc;

use authdeck_core::clock::SharedClock;
use authdeck_core::manager::{Manager, ManagerOptions, NewClient};
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
        let db = Db::open(&dir.path().join("authdeck.sqlite3")).unwrap();
        options.lock_dir = Some(dir.path().join("locks"));
        let service = format!("authdeck-test-{}", uuid::Uuid::new_v4());
        let secrets = Arc::new(KeyringStore::new(service));
        let manager = Manager::new(db, secrets.clone(), options).unwrap();
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
