//! Key rotation and the database roles (member, read-only) on a real PostgreSQL.

use authdeck_core::ErrorCode;
use authdeck_team::schema::{grant_member_sql, grant_reader_sql, revoke_sql};
use authdeck_team::testing::PgCluster;
use authdeck_team::{CommitOutcome, CommitRequest, DbConfig, JoinKey, TeamStore, Via};
use serde_json::json;

async fn open_as(
    cluster: &PgCluster,
    role: &str,
    join: &JoinKey,
) -> authdeck_core::Result<TeamStore> {
    let db = DbConfig::parse(&format!(
        "host=127.0.0.1 port={} user={role} dbname=postgres",
        cluster.port()
    ))
    .unwrap();
    let (team, key) = JoinKey::decode(join.expose()).unwrap();
    TeamStore::open(&db, &team, key, &format!("{role}-pc"), Via::Desktop).await
}

fn commit<'a>(
    id: &'a str,
    expected: i64,
    ts: &'a [u8],
    record: &'a serde_json::Value,
) -> CommitRequest<'a> {
    CommitRequest {
        connection_id: id,
        expected_generation: expected,
        token_set: ts,
        record,
        refreshed: true,
        history: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_the_key_re_seals_everything_and_leaves_the_old_key_useless() {
    let cluster = PgCluster::start();
    let db = DbConfig::parse(&cluster.tcp_config("postgres")).unwrap();
    let (admin, old_join) = TeamStore::init(&db, "Firm", "admin-pc", Via::Cli)
        .await
        .unwrap();
    admin
        .put_client("fa", &json!({}), Some(b"client-secret"))
        .await
        .unwrap();
    admin
        .insert_connection("c1", "fa", &json!({}), b"ts-1", None)
        .await
        .unwrap();
    let soon = chrono::Utc::now() + chrono::Duration::minutes(5);
    admin
        .put_pending("p1", "fa", &json!({}), b"verifier", soon)
        .await
        .unwrap();
    // A member who is about to be removed still has a store on the old key.
    let leaver = {
        let (team, key) = JoinKey::decode(old_join.expose()).unwrap();
        TeamStore::open(&db, &team, key, "leaver-pc", Via::Desktop)
            .await
            .unwrap()
    };
    let before = cluster.psql(
        "postgres",
        "SELECT encode(sealed, 'hex') FROM authdeck.token_sets",
    );

    let (rotated, new_join) = admin.rotate_key().await.unwrap();
    assert_ne!(new_join.expose(), old_join.expose());
    let after = cluster.psql(
        "postgres",
        "SELECT encode(sealed, 'hex') FROM authdeck.token_sets",
    );
    assert_ne!(before, after, "the token set was sealed again");
    assert_eq!(
        rotated.token_set("c1").await.unwrap().unwrap().1.as_slice(),
        b"ts-1"
    );
    assert_eq!(
        rotated
            .client_secret("fa")
            .await
            .unwrap()
            .unwrap()
            .as_slice(),
        b"client-secret"
    );
    assert_eq!(
        rotated
            .take_pending("p1")
            .await
            .unwrap()
            .unwrap()
            .1
            .as_slice(),
        b"verifier"
    );

    // The old key opens nothing, writes nothing, and cannot open the store again.
    let e = leaver.token_set("c1").await.unwrap_err();
    assert_eq!(e.code, ErrorCode::Storage);
    assert!(e.message.contains("another team key"), "{e:?}");
    let record = json!({});
    let e = leaver
        .commit(&commit("c1", 1, b"stale-key", &record))
        .await
        .unwrap_err();
    assert!(e.message.contains("rotated"), "{e:?}");
    assert_eq!(
        rotated.token_set("c1").await.unwrap().unwrap().0,
        1,
        "nothing was written"
    );
    let (team, key) = JoinKey::decode(old_join.expose()).unwrap();
    assert!(TeamStore::open(&db, &team, key, "leaver-pc", Via::Desktop)
        .await
        .is_err());
    let (team, key) = JoinKey::decode(new_join.expose()).unwrap();
    TeamStore::open(&db, &team, key, "member-pc", Via::Desktop)
        .await
        .unwrap();
    let history = rotated.history(None, 5).await.unwrap();
    assert_eq!(history[0].event, "rotate_key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_role_is_refused_every_write_and_every_secret_by_postgresql() {
    let cluster = PgCluster::start();
    let db = DbConfig::parse(&cluster.tcp_config("postgres")).unwrap();
    let (admin, join) = TeamStore::init(&db, "Firm", "admin-pc", Via::Cli)
        .await
        .unwrap();
    admin
        .put_client(
            "fa",
            &json!({"provider": "flowaccount"}),
            Some(b"client-secret"),
        )
        .await
        .unwrap();
    admin
        .insert_connection("c1", "fa", &json!({"label": "Shop"}), b"ts-1", None)
        .await
        .unwrap();
    let soon = chrono::Utc::now() + chrono::Duration::minutes(5);
    admin
        .put_pending("p1", "fa", &json!({}), b"verifier", soon)
        .await
        .unwrap();
    cluster.psql(
        "postgres",
        &format!(
            "CREATE ROLE alice LOGIN; CREATE ROLE support LOGIN; {} {}",
            grant_member_sql("alice").unwrap(),
            grant_reader_sql("support").unwrap()
        ),
    );

    // A member does everything a desktop does, and history names the member.
    let alice = open_as(&cluster, "alice", &join).await.unwrap();
    let record = json!({"label": "Shop"});
    let won = alice
        .commit(&commit("c1", 1, b"ts-2", &record))
        .await
        .unwrap();
    assert!(matches!(won, CommitOutcome::Won { generation: 2, .. }));
    alice
        .insert_connection("c2", "fa", &json!({}), b"ts", None)
        .await
        .unwrap();
    alice
        .record_history(&authdeck_team::HistoryEvent {
            connection_id: Some("c2"),
            client_id: None,
            event: "note",
            outcome: "ok",
            detail: None,
        })
        .await
        .unwrap();
    assert_eq!(
        alice.history(Some("c2"), 1).await.unwrap()[0].member,
        "alice"
    );
    assert_eq!(
        alice
            .connection("c1")
            .await
            .unwrap()
            .unwrap()
            .last_refresh_by
            .as_deref(),
        Some("alice")
    );
    alice.seen("0.1.0").await.unwrap();
    let lock = alice
        .lock_refresh("c1", std::time::Duration::ZERO)
        .await
        .unwrap();
    // A member marks a provider call in flight, and its release takes the mark away.
    lock.begin_call(std::time::Duration::ZERO).await.unwrap();
    let marks = "SELECT count(*), min(member) FROM authdeck.calls_in_flight";
    assert_eq!(cluster.psql("postgres", marks).trim(), "1|alice");
    lock.release().await;
    assert_eq!(cluster.psql("postgres", marks).trim(), "0|");
    // Migration 3 on a database whose members were granted before it: it grants them the
    // marks too (run again here on a table dropped as if it never existed).
    cluster.psql("postgres", "DROP TABLE authdeck.calls_in_flight");
    cluster.psql("postgres", authdeck_team::schema::MIGRATIONS[2]);
    let lock = alice
        .lock_refresh("c1", std::time::Duration::ZERO)
        .await
        .unwrap();
    lock.begin_call(std::time::Duration::ZERO).await.unwrap();
    assert_eq!(cluster.psql("postgres", marks).trim(), "1|alice");
    lock.release().await;
    assert!(alice.take_pending("p1").await.unwrap().is_some());
    // …but cannot change the team row or the schema.
    let team = admin.team_id().to_string();
    let alice_db = DbConfig::parse(&format!(
        "host=127.0.0.1 port={} user=alice dbname=postgres",
        cluster.port()
    ))
    .unwrap();
    let raw = alice_db.connect().await.unwrap();
    for sql in [
        format!("UPDATE authdeck.teams SET key_check = '\\x00' WHERE id = '{team}'"),
        "DROP TABLE authdeck.history".to_string(),
        "DELETE FROM authdeck.history".to_string(),
    ] {
        let e = raw.batch_execute(&sql).await.unwrap_err();
        assert!(e.as_db_error().is_some(), "{sql}: {e}");
    }

    // Support staff see connections, status, clients and history.
    let support = open_as(&cluster, "support", &join).await.unwrap();
    let list = support.connections().await.unwrap();
    assert_eq!(list.len(), 2);
    assert!(support.clients().await.unwrap()[0].has_secret);
    assert!(!support.history(None, 10).await.unwrap().is_empty());
    support.members().await.unwrap();
    // Every token read and every write is refused by PostgreSQL itself.
    let refused = |e: authdeck_core::Error| {
        assert_eq!(e.code, ErrorCode::Storage, "{e:?}");
        assert!(e.detail.as_deref().unwrap_or("").contains("42501"), "{e:?}");
    };
    refused(support.token_set("c1").await.unwrap_err());
    refused(support.client_secret("fa").await.unwrap_err());
    refused(support.take_pending("x").await.unwrap_err());
    refused(
        support
            .commit(&commit("c1", 2, b"x", &record))
            .await
            .unwrap_err(),
    );
    refused(support.update_record("c1", &json!({})).await.unwrap_err());
    refused(support.remove_connection("c1", None).await.unwrap_err());
    refused(
        support
            .put_client("fb", &json!({}), None)
            .await
            .unwrap_err(),
    );
    refused(
        support
            .insert_connection("c3", "fa", &json!({}), b"x", None)
            .await
            .unwrap_err(),
    );
    refused(support.seen("0.1.0").await.unwrap_err());
    refused(
        support
            .put_pending("p2", "fa", &json!({}), b"v", soon)
            .await
            .unwrap_err(),
    );
    let support_db = DbConfig::parse(&format!(
        "host=127.0.0.1 port={} user=support dbname=postgres",
        cluster.port()
    ))
    .unwrap();
    let raw = support_db.connect().await.unwrap();
    for sql in [
        "SELECT sealed FROM authdeck.token_sets",
        "SELECT secret FROM authdeck.clients",
        "SELECT * FROM authdeck.clients",
        "SELECT sealed FROM authdeck.pending_authorizations",
        "SELECT sealed FROM authdeck.child_secrets",
        "SELECT * FROM authdeck.calls_in_flight",
        "INSERT INTO authdeck.history (team_id, event, outcome) SELECT id, 'x', 'y' FROM authdeck.teams",
    ] {
        let e = raw.batch_execute(sql).await.unwrap_err();
        assert_eq!(
            e.code(),
            Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE),
            "{sql}: {e}"
        );
    }
    // The connections are untouched.
    assert_eq!(
        admin.token_set("c1").await.unwrap().unwrap().1.as_slice(),
        b"ts-2"
    );

    // Removing a member: revoke, then the role is refused at once.
    cluster.psql("postgres", &revoke_sql("alice").unwrap());
    assert!(alice.connections().await.is_err());
    assert!(grant_member_sql("x\"; DROP TABLE y; --").is_err());
}
