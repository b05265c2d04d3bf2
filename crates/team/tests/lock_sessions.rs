//! How many PostgreSQL sessions one process's refresh locks take (lock.rs:
//! `MAX_LOCK_SESSIONS`), and what a refresher is told when the server has no slot left.
//!
//! Each held refresh lock is a session of its own, and a batch refresh holds many at
//! once (2 × `refresh_concurrency` getting ready, and every answered one until its batch
//! is committed). Unbounded, `refresh --all` of a few hundred connections in one process
//! ran the server out of slots: most refreshes failed with "too many clients already".
//! Here a whole manager on a `TeamBackend` refreshes 300 connections at the emulator
//! (20 ms per call, 16 calls at a time) against a server with `max_connections = 40`:
//! every refresh must succeed, and the server must never show more refresh-lock
//! sessions than the bound. And the bound itself: one more lock waits for a permit
//! within its lock wait (`busy` after it), a lock whose session died frees its permit,
//! a released one hands it on.

mod partition_support;

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use authdeck_core::manager::NewClient;
use authdeck_core::model::Provider;
use authdeck_core::{ClientSecret, ErrorCode};
use authdeck_emulator::{EmulatorConfig, FaBusiness};
use authdeck_team::lock::MAX_LOCK_SESSIONS;
use authdeck_team::testing::{PgCluster, PgOptions};
use authdeck_team::{DbConfig, TeamStore, Via};
use partition_support::machine;

const CONNECTIONS: usize = 300;

fn support_code(i: usize) -> String {
    format!("FA-L{i:05}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_refresh_of_300_connections_fits_in_a_server_of_40_slots() {
    let cluster = PgCluster::start_with(PgOptions {
        max_connections: Some(40),
        ..PgOptions::default()
    });
    let admin = DbConfig::parse(&cluster.socket_config("postgres")).unwrap();
    let (_, join) = TeamStore::init(&admin, "Firm", "admin", Via::Desktop)
        .await
        .unwrap();
    let mut config = EmulatorConfig::demo();
    config.flowaccount.users[0].businesses = (0..CONNECTIONS)
        .map(|i| FaBusiness {
            support_code: support_code(i),
            name: format!("Business {i}"),
        })
        .collect();
    let emulator = authdeck_emulator::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let m = machine(&cluster.tcp_config("postgres"), &join, "desk-a", 16).await;
    let mut fa = NewClient::new("fa", Provider::FlowAccount, "demo-flowaccount");
    fa.client_secret = Some(ClientSecret::new("demo-flowaccount-secret"));
    fa.authorize_url = Some(emulator.flowaccount_authorize_url());
    fa.token_url = Some(emulator.flowaccount_token_url());
    m.manager.add_client(fa).await.unwrap();

    // The connections, through the real authorization round trip, 4 at a time.
    let permits = Arc::new(tokio::sync::Semaphore::new(4));
    let mut seeding = tokio::task::JoinSet::new();
    for i in 0..CONNECTIONS {
        let (manager, permits) = (m.manager.clone(), permits.clone());
        seeding.spawn(async move {
            let _permit = permits.acquire_owned().await.unwrap();
            let pending = manager.begin_flowaccount("fa").await.unwrap();
            let redirect = authdeck_emulator::approve(
                &pending.authorize_url,
                "demo@example.com",
                "demo",
                &support_code(i),
            )
            .await
            .unwrap();
            manager.complete_callback(&redirect).await.unwrap();
        });
    }
    while let Some(done) = seeding.join_next().await {
        done.unwrap();
    }
    let ids: Vec<String> = m
        .manager
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(ids.len(), CONNECTIONS);

    // The server's refresh-lock sessions, watched while the batch runs (one session of
    // the superuser's, over the socket).
    let watcher = admin.connect().await.unwrap();
    let most = Arc::new(AtomicI64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let watching = {
        let (most, stop) = (most.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let n: i64 = watcher
                    .query_one(
                        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'authdeck-refresh-lock'",
                        &[],
                    )
                    .await
                    .unwrap()
                    .get(0);
                most.fetch_max(n, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };

    let control = emulator.control();
    control.set_latency(Duration::from_millis(20));
    let before = control.stats();
    let results = m.manager.refresh_many(&ids).await;
    stop.store(true, Ordering::SeqCst);
    watching.await.unwrap();

    let mut failed = std::collections::BTreeMap::<String, usize>::new();
    let mut first = None;
    for r in &results {
        if let Err(e) = r {
            *failed.entry(e.code.to_string()).or_default() += 1;
            first.get_or_insert_with(|| format!("{}: {} ({:?})", e.code, e.message, e.detail));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {CONNECTIONS} refreshes failed: {failed:?}; first: {first:?}",
        failed.values().sum::<usize>()
    );
    assert_eq!(
        control.stats().refresh_ok - before.refresh_ok,
        CONNECTIONS as u64,
        "one provider refresh per connection"
    );
    let most = most.load(Ordering::SeqCst);
    assert!(
        most > 0 && most <= MAX_LOCK_SESSIONS as i64,
        "at most {MAX_LOCK_SESSIONS} refresh-lock sessions at once, the server showed {most}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_out_of_slots_is_said_to_be_full_not_unreachable() {
    let cluster = PgCluster::start_with(PgOptions {
        max_connections: Some(6),
        ..PgOptions::default()
    });
    // A role that is not a superuser (superusers may use the reserved slots).
    cluster.psql("postgres", "CREATE ROLE desk LOGIN");
    let db = DbConfig::parse(
        &cluster
            .socket_config("postgres")
            .replace("user=postgres", "user=desk"),
    )
    .unwrap();
    let mut open = Vec::new();
    let refused = loop {
        match db.connect().await {
            Ok(c) => open.push(c),
            Err(e) => break e,
        }
        assert!(open.len() <= 6, "the server never refused a session");
    };
    assert_eq!(refused.code, ErrorCode::TeamUnavailable);
    assert!(
        refused.message.contains("no free connections"),
        "{}",
        refused.message
    );
    assert!(
        !refused.message.contains("cannot be reached"),
        "{}",
        refused.message
    );
    assert!(
        refused
            .detail
            .as_deref()
            .unwrap_or("")
            .contains("SQLSTATE 53300"),
        "{:?}",
        refused.detail
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_holds_at_most_the_bound_and_waits_within_its_lock_wait() {
    let cluster = PgCluster::start();
    let db = DbConfig::parse(&cluster.tcp_config("postgres")).unwrap();
    let (store, _) = TeamStore::init(&db, "Firm", "desk-a", Via::Desktop)
        .await
        .unwrap();
    store
        .put_client("fa", &serde_json::json!({}), None)
        .await
        .unwrap();
    for i in 0..=MAX_LOCK_SESSIONS {
        store
            .insert_connection(
                &format!("c{i}"),
                "fa",
                &serde_json::json!({ "label": i }),
                b"gen-1",
                None,
            )
            .await
            .unwrap();
    }
    // Every permit held, by clones of the store (they share the bound).
    let mut held = Vec::new();
    for i in 0..MAX_LOCK_SESSIONS {
        let clone = store.clone();
        held.push(
            clone
                .lock_refresh(&format!("c{i}"), Duration::from_secs(1))
                .await
                .unwrap(),
        );
    }
    let last = format!("c{MAX_LOCK_SESSIONS}");
    // One more waits for a permit within its lock wait, then gets `busy`.
    let started = std::time::Instant::now();
    let e = store
        .lock_refresh(&last, Duration::from_millis(300))
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::Busy, "{e:?}");
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(started.elapsed() < Duration::from_secs(5));
    let e = store.lock_refresh(&last, Duration::ZERO).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::Busy, "{e:?}");

    // A lock whose session died gives its permit back once its heartbeat sees it, even
    // while the lock object is still kept.
    let pid = held[0].backend_pid();
    assert_eq!(
        cluster
            .psql("postgres", &format!("SELECT pg_terminate_backend({pid})"))
            .trim(),
        "t"
    );
    let got = store
        .lock_refresh(&last, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(held[0].time_left().is_zero(), "the dead lock is known dead");

    // A released lock gives its permit (and its session) to the next at once.
    let second = held.remove(1);
    second.release().await;
    store
        .lock_refresh("c1", Duration::ZERO)
        .await
        .unwrap()
        .release()
        .await;
    got.release().await;
    for lock in held {
        lock.release().await;
    }
    // Open on the server (held or idle for reuse): never more than the bound.
    let sessions: i64 = cluster
        .psql(
            "postgres",
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'authdeck-refresh-lock'",
        )
        .trim()
        .parse()
        .unwrap();
    assert!(
        (1..=MAX_LOCK_SESSIONS as i64).contains(&sessions),
        "{sessions} refresh-lock sessions open"
    );
}
