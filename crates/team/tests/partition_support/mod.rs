//! What the partition tests of whole managers share (`partition_refresh.rs`): a team in
//! a cluster in its own network namespace, the refresher "A" over the link the test
//! cuts, another machine "B" over the server's socket, the emulator, and the timing
//! helpers that put a cut inside a provider call by construction.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use authdeck_core::journal::JournalConfig;
use authdeck_core::manager::{LocalParts, Manager, ManagerOptions, NewClient};
use authdeck_core::model::{Connection, Provider};
use authdeck_core::store::backend::Backend;
use authdeck_core::store::db::Db;
use authdeck_core::store::keyring::MemoryStore;
use authdeck_core::{ClientSecret, ErrorCode};
use authdeck_emulator::{Control, EmulatorConfig, RunningEmulator};
use authdeck_team::testing::netns::Netns;
use authdeck_team::testing::{PgCluster, PgOptions};
use authdeck_team::{DbConfig, JoinKey, TeamBackend, TeamStore, Via};

/// The refresh lock's floor (lock.rs: `idle_session_timeout` of its session).
pub const REFRESH_FLOOR: Duration = Duration::from_secs(5);
/// How long the emulator holds each provider call: the cut falls inside it.
pub const CALL: Duration = Duration::from_secs(3);

/// One desktop or agent: a manager on the team store, this machine's own parts (the
/// answer journal, its key in an in-memory keyring) in a directory of its own.
pub struct Machine {
    pub manager: Manager,
    pub backend: Arc<TeamBackend>,
    pub dir: tempfile::TempDir,
}

pub async fn machine(address: &str, join: &JoinKey, name: &str, concurrency: usize) -> Machine {
    let db = DbConfig::parse(address).unwrap();
    let (team, key) = JoinKey::decode(join.expose()).unwrap();
    let store = TeamStore::open(&db, &team, key, name, Via::Agent)
        .await
        .unwrap();
    let backend = Arc::new(
        TeamBackend::open(store, Duration::from_secs(30))
            .await
            .unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let options = ManagerOptions {
        refresh_concurrency: concurrency,
        lock_wait: Duration::from_secs(30),
        journal: Some(JournalConfig {
            dir: dir.path().join("journal"),
            store: format!("partition-{name}"),
        }),
        ..ManagerOptions::default()
    };
    let db = Db::open(&dir.path().join("authdeck.sqlite3")).unwrap();
    let local = LocalParts::new(db, Arc::new(MemoryStore::new()), &options);
    let manager = Manager::with_backend(backend.clone(), local, options).unwrap();
    Machine {
        manager,
        backend,
        dir,
    }
}

impl Machine {
    /// Whether this machine's answer journal holds an entry (a file in it).
    pub fn journal_entries(&self) -> usize {
        match std::fs::read_dir(self.dir.path().join("journal")) {
            Ok(dir) => dir
                .filter_map(|e| e.ok())
                .filter(|e| e.path().is_file())
                .count(),
            Err(_) => 0,
        }
    }

    pub async fn stored_refresh_token(&self, id: &str) -> (Connection, String) {
        let conn = self.backend.connection(id).await.unwrap();
        let tokens = self.backend.tokens(&conn).await.unwrap().unwrap();
        let refresh = tokens.refresh_token.unwrap().expose().to_string();
        (conn, refresh)
    }

    pub async fn history(&self, id: &str) -> Vec<String> {
        self.backend
            .history(Some(id), 100)
            .await
            .unwrap()
            .into_iter()
            .map(|h| format!("{} {} {}", h.event, h.outcome, h.detail.unwrap_or_default()))
            .collect()
    }
}

/// A team in a cluster in its own namespace; A over the cuttable link, B over the
/// socket; the FlowAccount client, and `businesses` connected (through B).
pub struct World {
    pub ns: Netns,
    pub cluster: PgCluster,
    pub emulator: RunningEmulator,
    pub a: Machine,
    pub b: Machine,
    pub connections: Vec<Connection>,
}

pub async fn world(businesses: &[&str], a_concurrency: usize) -> World {
    let ns = Netns::new();
    let cluster = PgCluster::start_with(PgOptions {
        netns: Some(ns.clone()),
        ..PgOptions::default()
    });
    let admin = DbConfig::parse(&cluster.socket_config("postgres")).unwrap();
    let (_, join) = TeamStore::init(&admin, "Firm", "admin", Via::Desktop)
        .await
        .unwrap();
    let emulator = authdeck_emulator::start(EmulatorConfig::demo(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let a = machine(
        &cluster.netns_config("postgres"),
        &join,
        "desk-a",
        a_concurrency,
    )
    .await;
    let b = machine(&cluster.socket_config("postgres"), &join, "desk-b", 4).await;
    let mut fa = NewClient::new("fa", Provider::FlowAccount, "demo-flowaccount");
    fa.client_secret = Some(ClientSecret::new("demo-flowaccount-secret"));
    fa.authorize_url = Some(emulator.flowaccount_authorize_url());
    fa.token_url = Some(emulator.flowaccount_token_url());
    b.manager.add_client(fa).await.unwrap();
    let mut connections = Vec::new();
    for business in businesses {
        let pending = b.manager.begin_flowaccount("fa").await.unwrap();
        let redirect = authdeck_emulator::approve(
            &pending.authorize_url,
            "demo@example.com",
            "demo",
            business,
        )
        .await
        .unwrap();
        connections.push(b.manager.complete_callback(&redirect).await.unwrap());
    }
    World {
        ns,
        cluster,
        emulator,
        a,
        b,
        connections,
    }
}

/// Waits (with a deadline) until the emulator has received `n` more provider requests
/// than `from`; returns when.
pub async fn requests_reach(control: &Control, from: u64, n: u64) -> Instant {
    let deadline = Instant::now() + Duration::from_secs(30);
    while control.stats().requests < from + n {
        assert!(
            Instant::now() < deadline,
            "the provider call never reached the emulator"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Instant::now()
}

/// When the emulator answered its `n`-th successful refresh after `from` (polled).
pub fn watch_answers(control: Control, from: u64, n: u64) -> tokio::task::JoinHandle<Instant> {
    tokio::spawn(async move {
        loop {
            if control.stats().refresh_ok >= from + n {
                return Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
}

/// B takes the connection's lock as soon as the server lets it (a 30 s wait), and lets
/// go at once; returns when it got it.
pub fn b_takes_the_lock(b: &Machine, id: &str) -> tokio::task::JoinHandle<Instant> {
    let store = b.backend.store().clone();
    let id = id.to_owned();
    tokio::spawn(async move {
        let lock = store
            .lock_refresh(&id, Duration::from_secs(30))
            .await
            .unwrap();
        let at = Instant::now();
        lock.release().await;
        at
    })
}

pub fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

pub fn token_sets(cluster: &PgCluster, id: &str) -> String {
    cluster
        .psql(
            "postgres",
            &format!(
                "SELECT count(*), min(generation) FROM authdeck.token_sets WHERE connection_id = '{id}'"
            ),
        )
        .trim()
        .to_string()
}

/// The in-flight marks of `id`: `count|machine`.
pub fn marks(cluster: &PgCluster, id: &str) -> String {
    cluster
        .psql(
            "postgres",
            &format!(
                "SELECT count(*), coalesce(min(machine), '') FROM authdeck.calls_in_flight WHERE connection_id = '{id}'"
            ),
        )
        .trim()
        .to_string()
}

/// A's refresh of `id`, retried while the healed link's pool reconnects.
pub async fn refresh_after_heal(m: &Manager, id: &str) -> authdeck_core::Result<Connection> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match m.refresh(id).await {
            Err(e) if e.code == ErrorCode::TeamUnavailable && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            other => return other,
        }
    }
}

/// What happened around a cut in the middle of A's refresh.
pub struct CutCall {
    pub result: authdeck_core::Result<Connection>,
    pub cut: Instant,
    /// When the emulator answered the call.
    pub answered: Instant,
    /// When A's refresh returned.
    pub returned: Instant,
}

/// Cut in the middle of a refresh: the emulator holds the call [`CALL`] long; the link
/// goes down once it has the request; then `after_cut` runs (B's part), concurrently
/// with the rest of A's refresh.
pub async fn refresh_cut_during_the_call<T: Send + 'static>(
    w: &World,
    id: &str,
    after_cut: impl FnOnce() -> tokio::task::JoinHandle<T>,
) -> (CutCall, tokio::task::JoinHandle<T>) {
    let control = w.emulator.control();
    control.set_latency(CALL);
    let before = control.stats();
    let answers = watch_answers(control.clone(), before.refresh_ok, 1);
    let refreshing = {
        let m = w.a.manager.clone();
        let id = id.to_owned();
        tokio::spawn(async move {
            let r = m.refresh(&id).await;
            (r, Instant::now())
        })
    };
    requests_reach(&control, before.requests, 1).await;
    let cut = Instant::now();
    w.ns.cut();
    let b = after_cut();
    let answered = answers.await.unwrap();
    let (result, returned) = refreshing.await.unwrap();
    (
        CutCall {
            result,
            cut,
            answered,
            returned,
        },
        b,
    )
}
