//! The team store against a real PostgreSQL (a throwaway cluster per test).

use std::time::{Duration, Instant};

use authdeck_core::ErrorCode;
use authdeck_team::testing::{PgCluster, PgOptions};
use authdeck_team::{
    CommitOutcome, CommitRequest, DbConfig, HistoryEvent, JoinKey, TeamStore, Via,
};
use serde_json::json;

async fn init(cluster: &PgCluster, machine: &str) -> (TeamStore, JoinKey) {
    let db = DbConfig::parse(&cluster.tcp_config("postgres")).unwrap();
    TeamStore::init(&db, "Firm", machine, Via::Desktop)
        .await
        .unwrap()
}

async fn join(cluster: &PgCluster, join: &JoinKey, machine: &str) -> TeamStore {
    let db = DbConfig::parse(&cluster.socket_config("postgres")).unwrap();
    let (team, key) = JoinKey::decode(join.expose()).unwrap();
    TeamStore::open(&db, &team, key, machine, Via::Agent)
        .await
        .unwrap()
}

async fn with_connection(store: &TeamStore, id: &str, token_set: &[u8]) {
    if store.client_row("fa").await.unwrap().is_none() {
        store
            .put_client(
                "fa",
                &json!({"provider": "flowaccount"}),
                Some(b"client-secret"),
            )
            .await
            .unwrap();
    }
    store
        .insert_connection(id, "fa", &json!({"label": id}), token_set, None)
        .await
        .unwrap();
}

#[test]
fn the_test_cluster_starts_restarts_and_is_removed_on_drop() {
    let mut cluster = PgCluster::start();
    assert_eq!(cluster.psql("postgres", "SELECT 1").trim(), "1");
    cluster.psql(
        "postgres",
        "CREATE TABLE kept (x int); INSERT INTO kept VALUES (7)",
    );
    cluster.restart();
    assert_eq!(cluster.psql("postgres", "SELECT x FROM kept").trim(), "7");
    cluster.kill();
    cluster.start_again();
    assert_eq!(cluster.psql("postgres", "SELECT x FROM kept").trim(), "7");
    let data = cluster.data_dir();
    let pid = cluster.postmaster_pid().unwrap();
    assert!(data.exists());
    drop(cluster);
    assert!(!data.exists(), "the data directory is removed on drop");
    // Gone, or a zombie nobody reaps (a container's init may not): either way not serving.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let running = state
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z'));
        if !running {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the server is still running after drop: {state}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_apply_once_even_when_two_run_at_once() {
    let cluster = PgCluster::start();
    let db = DbConfig::parse(&cluster.tcp_config("postgres")).unwrap();
    let mut a = db.connect().await.unwrap();
    let mut b = db.connect().await.unwrap();
    assert_eq!(authdeck_team::schema::current(&a).await.unwrap(), 0);
    assert!(
        authdeck_team::schema::check(&a).await.is_err(),
        "an empty database is refused"
    );
    let (ra, rb) = tokio::join!(
        authdeck_team::schema::migrate(&mut a),
        authdeck_team::schema::migrate(&mut b)
    );
    assert_eq!(ra.unwrap(), authdeck_team::schema::latest());
    assert_eq!(rb.unwrap(), authdeck_team::schema::latest());
    assert_eq!(
        cluster
            .psql("postgres", "SELECT count(*) FROM authdeck.migrations")
            .trim(),
        authdeck_team::schema::latest().to_string(),
        "each migration recorded once"
    );
    authdeck_team::schema::check(&a).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_connections_token_sets_history_and_pending_round_trip() {
    let cluster = PgCluster::start();
    let (store, key) = init(&cluster, "desk-1").await;
    store
        .put_client(
            "fa",
            &json!({"provider": "flowaccount"}),
            Some(b"client-secret"),
        )
        .await
        .unwrap();
    assert!(store.client_row("fa").await.unwrap().unwrap().has_secret);
    assert_eq!(
        store.client_secret("fa").await.unwrap().unwrap().as_slice(),
        b"client-secret"
    );
    let row = store
        .insert_connection(
            "c1",
            "fa",
            &json!({"label": "Shop"}),
            b"token-set-1",
            Some(HistoryEvent {
                connection_id: Some("c1"),
                client_id: Some("fa"),
                event: "connect",
                outcome: "ok",
                detail: None,
            }),
        )
        .await
        .unwrap();
    assert_eq!(row.generation, 1);
    assert_eq!(row.created_by, "postgres");
    assert_eq!(row.created_on, "desk-1");
    let dup = store
        .insert_connection("c1", "fa", &json!({}), b"x", None)
        .await
        .unwrap_err();
    assert_eq!(dup.code, ErrorCode::AlreadyExists);
    let no_client = store
        .insert_connection("c2", "nope", &json!({}), b"x", None)
        .await
        .unwrap_err();
    assert_eq!(no_client.code, ErrorCode::NotFound);

    // Another machine joins with the join key and sees it all.
    let other = join(&cluster, &key, "agent-1").await;
    let (generation, ts) = other.token_set("c1").await.unwrap().unwrap();
    assert_eq!((generation, ts.as_slice()), (1, &b"token-set-1"[..]));
    let won = other
        .commit(&CommitRequest {
            connection_id: "c1",
            expected_generation: 1,
            token_set: b"token-set-2",
            record: &json!({"label": "Shop"}),
            refreshed: true,
            history: Some(HistoryEvent {
                connection_id: Some("c1"),
                client_id: Some("fa"),
                event: "refresh",
                outcome: "ok",
                detail: None,
            }),
        })
        .await
        .unwrap();
    assert!(
        matches!(won, CommitOutcome::Won { generation: 2, .. }),
        "{won:?}"
    );
    let (generation, ts) = store.token_set("c1").await.unwrap().unwrap();
    assert_eq!((generation, ts.as_slice()), (2, &b"token-set-2"[..]));
    let c1 = store.connection("c1").await.unwrap().unwrap();
    assert_eq!(c1.last_refresh_on.as_deref(), Some("agent-1"));
    assert_eq!(c1.last_refresh_by.as_deref(), Some("postgres"));
    assert_eq!(
        cluster
            .psql("postgres", "SELECT count(*) FROM authdeck.token_sets")
            .trim(),
        "1"
    );

    let history = store.history(Some("c1"), 10).await.unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(
        (
            history[0].event.as_str(),
            history[0].machine.as_str(),
            history[0].via.as_str()
        ),
        ("refresh", "agent-1", "agent")
    );
    assert_eq!(
        (history[1].event.as_str(), history[1].machine.as_str()),
        ("connect", "desk-1")
    );
    assert_eq!(history[0].member, "postgres");

    // Pending authorizations are taken exactly once; expired ones not at all.
    let soon = chrono::Utc::now() + chrono::Duration::minutes(10);
    store
        .put_pending("p1", "fa", &json!({"state": "s"}), b"pkce-verifier", soon)
        .await
        .unwrap();
    assert_eq!(store.pending().await.unwrap().len(), 1);
    let (p, secret) = other.take_pending("p1").await.unwrap().unwrap();
    assert_eq!(
        (p.machine.as_str(), secret.as_slice()),
        ("desk-1", &b"pkce-verifier"[..])
    );
    assert!(store.take_pending("p1").await.unwrap().is_none());
    let past = chrono::Utc::now() - chrono::Duration::minutes(1);
    store
        .put_pending("p2", "fa", &json!({}), b"v", past)
        .await
        .unwrap();
    assert!(store.take_pending("p2").await.unwrap().is_none());

    // Logout leaves a tombstone with a new version, and removes the token set.
    let before = store.current_version().await.unwrap();
    let v = store.remove_connection("c1", None).await.unwrap();
    assert!(v > before);
    assert!(store.connection("c1").await.unwrap().is_none());
    assert!(store.token_set("c1").await.unwrap().is_none());
    let changes = store.changes_since(before).await.unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(
        (changes[0].id.as_str(), changes[0].deleted),
        ("c1", Some(true))
    );
    assert_eq!(
        cluster
            .psql("postgres", "SELECT count(*) FROM authdeck.token_sets")
            .trim(),
        "0"
    );

    store.seen("0.1.0").await.unwrap();
    other.seen("0.1.0").await.unwrap();
    store.seen("0.1.1").await.unwrap();
    let members = store.members().await.unwrap();
    assert_eq!(members.len(), 2);
    assert!(members
        .iter()
        .any(|m| m.machine == "desk-1" && m.kind == "desktop" && m.app_version == "0.1.1"));
    assert!(members
        .iter()
        .any(|m| m.machine == "agent-1" && m.kind == "agent"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_bumps_the_team_version_in_commit_order() {
    let cluster = PgCluster::start();
    let (store, _) = init(&cluster, "desk-1").await;
    let v0 = store.current_version().await.unwrap();
    with_connection(&store, "c1", b"t").await;
    with_connection(&store, "c2", b"t").await;
    store
        .update_record("c1", &json!({"label": "renamed"}))
        .await
        .unwrap();
    let changes = store.changes_since(v0).await.unwrap();
    let seen: Vec<(&str, i64)> = changes.iter().map(|c| (c.id.as_str(), c.version)).collect();
    assert_eq!(seen, vec![("fa", v0 + 1), ("c2", v0 + 3), ("c1", v0 + 4)]);
    assert_eq!(store.current_version().await.unwrap(), v0 + 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ciphertext_moved_to_another_row_or_generation_fails_to_open() {
    let cluster = PgCluster::start();
    let (store, _) = init(&cluster, "desk-1").await;
    with_connection(&store, "c1", b"secret-of-c1").await;
    with_connection(&store, "c2", b"secret-of-c2").await;
    // An attacker with write access copies c1's ciphertext over c2's.
    cluster.psql(
        "postgres",
        "UPDATE authdeck.token_sets SET sealed = (SELECT sealed FROM authdeck.token_sets WHERE connection_id = 'c1')
          WHERE connection_id = 'c2'",
    );
    let e = store.token_set("c2").await.unwrap_err();
    assert_eq!(e.code, ErrorCode::Storage, "{e:?}");
    assert_eq!(
        store.token_set("c1").await.unwrap().unwrap().1.as_slice(),
        b"secret-of-c1"
    );
    // …or moves c1's to another generation.
    cluster.psql(
        "postgres",
        "UPDATE authdeck.token_sets SET generation = 5 WHERE connection_id = 'c1';
         UPDATE authdeck.connections SET generation = 5 WHERE id = 'c1'",
    );
    assert_eq!(
        store.token_set("c1").await.unwrap_err().code,
        ErrorCode::Storage
    );
    // A client secret copied into another client's row fails too.
    store
        .put_client("fb", &json!({}), Some(b"other-secret"))
        .await
        .unwrap();
    cluster.psql(
        "postgres",
        "UPDATE authdeck.clients SET secret = (SELECT secret FROM authdeck.clients WHERE id = 'fa') WHERE id = 'fb'",
    );
    assert!(store.client_secret("fb").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wrong_key_or_an_old_key_is_refused_at_open() {
    let cluster = PgCluster::start();
    let (store, _) = init(&cluster, "desk-1").await;
    let db = DbConfig::parse(&cluster.tcp_config("postgres")).unwrap();
    let wrong = authdeck_team::TeamKey::generate(1).unwrap();
    let e = TeamStore::open(&db, store.team_id(), wrong, "x", Via::Cli)
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidInput, "{e:?}");
    let newer_epoch = authdeck_team::TeamKey::generate(2).unwrap();
    assert!(
        TeamStore::open(&db, store.team_id(), newer_epoch, "x", Via::Cli)
            .await
            .is_err()
    );
    let e = TeamStore::open(
        &db,
        "00000000-0000-4000-8000-000000000000",
        authdeck_team::TeamKey::generate(1).unwrap(),
        "x",
        Via::Cli,
    )
    .await
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_canary_secret_in_pg_dump_or_the_statement_log() {
    let cluster = PgCluster::start_with(PgOptions {
        log_statement_all: true,
        ..PgOptions::default()
    });
    let (store, _) = init(&cluster, "desk-1").await;
    let canary = "CANARY-7f3a9c1e-refresh-token";
    store
        .put_client(
            "fa",
            &json!({"provider": "flowaccount"}),
            Some(format!("{canary}-client").as_bytes()),
        )
        .await
        .unwrap();
    store
        .insert_connection(
            "c1",
            "fa",
            &json!({"label": "Shop"}),
            format!("{canary}-ts1").as_bytes(),
            None,
        )
        .await
        .unwrap();
    store
        .commit(&CommitRequest {
            connection_id: "c1",
            expected_generation: 1,
            token_set: format!("{canary}-ts2").as_bytes(),
            record: &json!({"label": "Shop"}),
            refreshed: true,
            history: None,
        })
        .await
        .unwrap();
    let soon = chrono::Utc::now() + chrono::Duration::minutes(5);
    store
        .put_pending(
            "p1",
            "fa",
            &json!({}),
            format!("{canary}-pkce").as_bytes(),
            soon,
        )
        .await
        .unwrap();
    assert_eq!(
        store.token_set("c1").await.unwrap().unwrap().1.as_slice(),
        format!("{canary}-ts2").as_bytes()
    );

    let dump = cluster.pg_dump("postgres");
    let log = cluster.server_log();
    assert!(
        dump.contains("authdeck.token_sets"),
        "the dump has the tables"
    );
    assert!(
        log.contains("INSERT INTO authdeck.token_sets"),
        "the log has the statements"
    );
    let hex: String = canary.bytes().map(|b| format!("{b:02x}")).collect();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(canary);
    for (what, text) in [("pg_dump", &dump), ("server log", &log)] {
        for needle in ["CANARY-7f3a9c1e", hex.as_str(), &b64[..16]] {
            assert!(!text.contains(needle), "{what} holds the canary ({needle})");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_concurrent_committers_of_one_generation_exactly_one_wins() {
    let cluster = PgCluster::start();
    let (a, key) = init(&cluster, "desk-a").await;
    let b = join(&cluster, &key, "desk-b").await;
    for i in 0..20 {
        let id = format!("c{i}");
        with_connection(&a, &id, b"gen-1").await;
        let record = json!({});
        let req = |ts: &'static [u8]| CommitRequest {
            connection_id: "",
            expected_generation: 1,
            token_set: ts,
            record: &record,
            refreshed: true,
            history: None,
        };
        let req_a = CommitRequest {
            connection_id: &id,
            ..req(b"from-a")
        };
        let req_b = CommitRequest {
            connection_id: &id,
            ..req(b"from-b")
        };
        let (ra, rb) = tokio::join!(a.commit(&req_a), b.commit(&req_b));
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        let winners = [ra, rb]
            .iter()
            .filter(|o| matches!(o, CommitOutcome::Won { .. }))
            .count();
        assert_eq!(winners, 1, "{ra:?} {rb:?}");
        let loser = if matches!(ra, CommitOutcome::Won { .. }) {
            rb
        } else {
            ra
        };
        assert_eq!(loser, CommitOutcome::Lost { current: Some(2) });
        let (generation, ts) = a.token_set(&id).await.unwrap().unwrap();
        assert_eq!(generation, 2);
        let expected: &[u8] = if matches!(ra, CommitOutcome::Won { .. }) {
            b"from-a"
        } else {
            b"from-b"
        };
        assert_eq!(ts.as_slice(), expected, "the winner's token set is stored");
    }
    // A stale commit (generation already moved on) loses and changes nothing.
    let stale = a
        .commit(&CommitRequest {
            connection_id: "c0",
            expected_generation: 1,
            token_set: b"stale",
            record: &json!({}),
            refreshed: true,
            history: None,
        })
        .await
        .unwrap();
    assert_eq!(stale, CommitOutcome::Lost { current: Some(2) });
    a.remove_connection("c1", None).await.unwrap();
    let gone = a
        .commit(&CommitRequest {
            connection_id: "c1",
            expected_generation: 2,
            token_set: b"late",
            record: &json!({}),
            refreshed: true,
            history: None,
        })
        .await
        .unwrap();
    assert_eq!(gone, CommitOutcome::Lost { current: None });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_comes_back_after_a_server_restart() {
    let mut cluster = PgCluster::start();
    let (store, _) = init(&cluster, "desk-1").await;
    with_connection(&store, "c1", b"t1").await;
    let mut feed = store.feed(store.current_version().await.unwrap());
    assert!(matches!(
        feed.recv().await,
        Some(authdeck_team::FeedEvent::Connected { .. })
    ));
    cluster.kill();
    let e = store.connections().await.unwrap_err();
    assert_eq!(e.code, ErrorCode::TeamUnavailable, "{e:?}");
    cluster.start_again();
    // Pooled sessions of the old server fail once each, then new ones are made.
    let deadline = Instant::now() + Duration::from_secs(20);
    let list = loop {
        match store.connections().await {
            Ok(list) => break list,
            Err(e) => {
                assert_eq!(e.code, ErrorCode::TeamUnavailable, "{e:?}");
                assert!(
                    Instant::now() < deadline,
                    "the store did not come back: {e:?}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert_eq!(list.len(), 1);
    assert_eq!(
        store.token_set("c1").await.unwrap().unwrap().1.as_slice(),
        b"t1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_checks_the_certificate_chain_and_the_host_name() {
    let cluster = PgCluster::start_with(PgOptions {
        tls: true,
        ..PgOptions::default()
    });
    let ca = cluster.ca_path();
    let address = |host: &str, ca: &std::path::Path| {
        format!(
            "host={host} port={} user=postgres dbname=postgres sslmode=verify-full sslrootcert={}",
            cluster.port(),
            ca.display()
        )
    };
    // The right CA and the certificate's name: TLS, verified.
    let db = DbConfig::parse(&address("localhost", &ca)).unwrap();
    assert_eq!(db.policy(), authdeck_team::TlsPolicy::VerifyFull);
    let client = db.connect().await.unwrap();
    let ssl: bool = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(ssl, "the session is encrypted");
    // A name the certificate does not carry (the server's own address) is refused.
    let e = DbConfig::parse(&address("127.0.0.1", &ca))
        .unwrap()
        .connect()
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::TeamUnavailable, "{e:?}");
    // So is a certificate from another CA.
    let other = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ])
        .args([
            "-keyout",
            "other.key",
            "-out",
            "other.pem",
            "-days",
            "2",
            "-subj",
            "/CN=other CA",
        ])
        .current_dir(other.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let e = DbConfig::parse(&address("localhost", &other.path().join("other.pem")))
        .unwrap()
        .connect()
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::TeamUnavailable, "{e:?}");
    assert!(
        e.detail.as_deref().unwrap_or("").contains("UnknownIssuer"),
        "{e:?}"
    );
    // Without sslrootcert, the public roots do not trust a private CA either.
    let public = format!(
        "host=localhost port={} user=postgres dbname=postgres sslmode=verify-full",
        cluster.port()
    );
    assert!(DbConfig::parse(&public).unwrap().connect().await.is_err());
    // The pool behind the store speaks TLS too.
    let (store, _) = TeamStore::init(&db, "Firm", "desk-1", Via::Desktop)
        .await
        .unwrap();
    store.put_client("fa", &json!({}), None).await.unwrap();
    assert_eq!(store.clients().await.unwrap().len(), 1);
}
