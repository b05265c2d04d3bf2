//! One script of seam calls (`Backend`, the half the core has today) on the local store
//! (SQLite + the real keyring + file locks) and on the team store (`TeamBackend` on a
//! real PostgreSQL): every answer the same. The local side needs the test keyring: run
//! inside `scripts/with-keyring.sh` (as `make test` does).
//!
//! The few places where the two differ on purpose are left out of the script and
//! tested in `backend.rs`: a lock of a connection that does not exist (`not_found` in
//! the team store, whose lock key is the row's), and a verifier taken after its pending
//! authorization was purged (the team store purges both at once).

use std::sync::Arc;
use std::time::Duration;

use authdeck_core::locks::ConnectionLocks;
use authdeck_core::model::{
    Client, ClientOptions, Connection, Endpoints, Environment, Expiry, ExpirySource, HistoryEntry,
    Provider,
};
use authdeck_core::store::backend::{Backend, LocalBackend};
use authdeck_core::store::db::{Db, PendingRecord};
use authdeck_core::store::keyring::KeyringStore;
use authdeck_core::store::vault::{TokenBundle, Vault};
use authdeck_core::{AccessToken, ClientSecret, PkceVerifier, RefreshToken};
use authdeck_team::testing::PgCluster;
use authdeck_team::{DbConfig, TeamBackend, TeamStore, Via};
use chrono::{DateTime, TimeZone, Utc};

const WAIT: Duration = Duration::from_millis(300);

fn require_keyring() {
    assert!(
        std::env::var_os("AUTHDECK_TEST_KEYRING").is_some(),
        "this test uses the real keyring for the local store: run it inside scripts/with-keyring.sh"
    );
}

fn at(minute: u32, second: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 2, 10, minute, second)
        .unwrap()
}

fn client(id: &str, name: &str, has_secret: bool) -> Client {
    Client {
        id: id.into(),
        name: name.into(),
        provider: Provider::FlowAccount,
        environment: Environment::Custom,
        client_id: format!("{id}-app"),
        endpoints: Endpoints {
            authorize_url: Some("http://127.0.0.1:9/authorize".parse().unwrap()),
            token_url: "http://127.0.0.1:9/token".parse().unwrap(),
            logout_url: None,
            api_base_url: None,
        },
        options: ClientOptions {
            pkce: true,
            ..ClientOptions::default()
        },
        has_secret,
        created_at: at(0, 0),
        sandbox: false,
    }
}

fn connection(id: &str, client: &Client, label: &str) -> Connection {
    Connection {
        support_code: Some(label.into()),
        access_expires: Some(Expiry::new(at(30, 0), ExpirySource::RelativeSeconds)),
        ..Connection::new(
            id,
            &client.id,
            &client.name,
            client.provider,
            client.environment,
            label,
            at(1, 0),
        )
    }
}

fn pending(state: &str, client: &Client, created: DateTime<Utc>) -> PendingRecord {
    PendingRecord {
        state_hash: state.into(),
        client_key: client.id.clone(),
        redirect_uri: "http://127.0.0.1:9/callback".into(),
        pkce: true,
        reconnect_connection_id: None,
        created_at: created,
        expires_at: created + chrono::Duration::minutes(10),
        consumed_at: None,
    }
}

/// Where the script's connections come from: the trait (today's half) has no insert of
/// a connection, so each side seeds them its own way.
enum Seed<'a> {
    Local(&'a Db),
    Team(&'a TeamBackend),
}

impl Seed<'_> {
    async fn connection(&self, conn: &Connection, natural_key: &str) {
        match self {
            Seed::Local(db) => db.insert_connection(conn, natural_key).unwrap(),
            Seed::Team(team) => {
                let tokens = TokenBundle {
                    access_token: AccessToken::new("at"),
                    refresh_token: Some(RefreshToken::new("rt")),
                    access_expires: None,
                    refresh_expires: None,
                };
                team.insert_connection(conn, natural_key, &tokens, None)
                    .await
                    .unwrap()
            }
        }
    }

    /// The activity list (not in the trait at this crate's base).
    async fn activity(&self, limit: usize) -> String {
        match self {
            Seed::Local(db) => shown(db.activity(limit)),
            Seed::Team(team) => shown(team.activity(limit).await),
        }
    }

    /// Remove a connection (not in the trait at this crate's base).
    async fn remove(&self, id: &str) {
        match self {
            Seed::Local(db) => db.delete_connection(id).unwrap(),
            Seed::Team(team) => {
                let conn = team.connection(id).await.unwrap();
                team.remove_connection(&conn).await.unwrap()
            }
        }
    }
}

/// `text` with every `connected_by` / `refreshed_by` stamp shown as `None`.
fn unstamped(text: &str) -> String {
    let mut out = text.to_owned();
    for field in ["connected_by: ", "refreshed_by: "] {
        let start = format!("{field}Some(TeamStamp {{");
        while let Some(at) = out.find(&start) {
            let end = at + out[at..].find("})").expect("a stamp ends") + 2;
            out.replace_range(at..end, &format!("{field}None"));
        }
    }
    out
}

/// What a caller can see of an answer: the value, or the error's code.
fn shown<T: std::fmt::Debug>(r: authdeck_core::Result<T>) -> String {
    match r {
        Ok(v) => format!("ok {v:?}"),
        Err(e) => format!("err {}", e.code.as_str()),
    }
}

async fn script(b: &dyn Backend, seed: Seed<'_>) -> Vec<String> {
    let mut out = Vec::new();
    let mut note = |what: &str, answer: String| out.push(format!("{what}: {answer}"));

    // ---- clients
    let fa = client("cl-1", "Acme", true);
    let public = client("cl-2", "Public", false);
    note(
        "insert fa",
        shown(b.insert_client(&fa, Some(&ClientSecret::new("s1"))).await),
    );
    note("insert public", shown(b.insert_client(&public, None).await));
    note(
        "insert same name",
        shown(b.insert_client(&client("cl-3", "Acme", false), None).await),
    );
    note("clients", shown(b.clients().await));
    note("client by id", shown(b.client("cl-2").await));
    note("client by name", shown(b.client("Acme").await));
    note("client missing", shown(b.client("nobody").await));
    let mut changed = fa.clone();
    changed.client_id = "other-app".into();
    note("update", shown(b.update_client(&changed).await));
    note("after update", shown(b.client("cl-1").await));
    note(
        "update missing",
        shown(b.update_client(&client("cl-9", "Ghost", false)).await),
    );

    // ---- connections
    let c1 = connection("conn-aaaa-1", &fa, "SHOP1");
    let c2 = Connection {
        user_label: Some("Corner".into()),
        ..connection("conn-bbbb-2", &fa, "SHOP2")
    };
    seed.connection(&c2, "SHOP2").await;
    seed.connection(&c1, "SHOP1").await;
    note("connections", shown(b.connections().await));
    for reference in [
        "conn-aaaa-1",
        "SHOP2",
        "Corner",
        "conn-b",
        "conn",
        "con",
        "nothing",
    ] {
        note(
            &format!("connection {reference}"),
            shown(b.connection(reference).await),
        );
    }
    note(
        "by natural key",
        shown(b.connection_by_natural_key("cl-1", "SHOP1").await),
    );
    note(
        "by natural key of another client",
        shown(b.connection_by_natural_key("cl-2", "SHOP1").await),
    );
    note(
        "count fa",
        shown(b.connection_count_for_client("cl-1").await),
    );
    note(
        "count public",
        shown(b.connection_count_for_client("cl-2").await),
    );

    // ---- locks
    let lease = b.lock("conn-aaaa-1").await;
    note(
        "lock",
        shown(lease.as_ref().map(|_| ()).map_err(Clone::clone)),
    );
    note("lock again", shown(b.lock("conn-aaaa-1").await.map(|_| ())));
    note(
        "lock another",
        shown(b.lock("conn-bbbb-2").await.map(|_| ())),
    );
    drop(lease);
    b.forget_lock("conn-aaaa-1");

    // ---- history
    let refresh = HistoryEntry::new(at(5, 0), "refresh", "ok", Some("rotated".into()));
    note(
        "record",
        shown(
            b.record(Some("conn-aaaa-1"), Some("cl-1"), &refresh, None)
                .await,
        ),
    );
    for (minute, second) in [(7, 10), (7, 30), (7, 59), (8, 0)] {
        let e = HistoryEntry::new(
            at(minute, second),
            "callback_rejected",
            "invalid_state",
            None,
        );
        note(
            "record coalesced",
            shown(
                b.record(None, Some("cl-1"), &e, Some("callback_rejected"))
                    .await,
            ),
        );
    }
    let other_client = HistoryEntry::new(at(8, 5), "callback_rejected", "invalid_state", None);
    note(
        "record coalesced, another client",
        shown(
            b.record(None, Some("cl-2"), &other_client, Some("callback_rejected"))
                .await,
        ),
    );
    let long = HistoryEntry::new(at(9, 0), "note", "ok", Some("é".repeat(2500)));
    note(
        "record long",
        shown(b.record(None, None, &long, None).await),
    );
    note("history all", shown(b.history(None, 100).await));
    note("history limited", shown(b.history(None, 2).await));
    note(
        "history of c1",
        shown(b.history(Some("conn-aaaa-1"), 100).await),
    );
    note(
        "history of c2",
        shown(b.history(Some("conn-bbbb-2"), 100).await),
    );
    note("activity", seed.activity(100).await);
    seed.remove("conn-aaaa-1").await;
    note("activity after a removal", seed.activity(3).await);
    note(
        "history kept",
        shown(b.history(Some("conn-aaaa-1"), 100).await),
    );

    // ---- pending authorizations
    let p1 = pending("state-1", &fa, at(10, 0));
    note(
        "insert pending",
        shown(
            b.insert_pending(&p1, Some(&PkceVerifier::new("verifier-1")), at(0, 0))
                .await,
        ),
    );
    note("pending", shown(b.pending("state-1").await));
    note("pending missing", shown(b.pending("state-x").await));
    note("outcome unused", shown(b.pending_outcome("state-1").await));
    note(
        "consume",
        shown(b.consume_pending("state-1", at(11, 0)).await),
    );
    note(
        "consume again",
        shown(b.consume_pending("state-1", at(11, 5)).await),
    );
    note(
        "consume missing",
        shown(b.consume_pending("state-x", at(11, 5)).await),
    );
    note("pending used", shown(b.pending("state-1").await));
    note("outcome used", shown(b.pending_outcome("state-1").await));
    note(
        "set outcome",
        shown(b.set_pending_outcome("state-1", "ok").await),
    );
    note("outcome", shown(b.pending_outcome("state-1").await));
    note(
        "verifier",
        shown(
            b.take_pkce_verifier("state-1")
                .await
                .map(|v| v.map(|v| v.expose().to_owned())),
        ),
    );
    note(
        "verifier again",
        shown(b.take_pkce_verifier("state-1").await.map(|v| v.is_some())),
    );
    let p2 = PendingRecord {
        pkce: false,
        reconnect_connection_id: Some("conn-aaaa-1".into()),
        ..pending("state-2", &fa, at(20, 0))
    };
    note(
        "insert pending without verifier",
        shown(b.insert_pending(&p2, None, at(5, 0)).await),
    );
    note("pending 2", shown(b.pending("state-2").await));
    note(
        "no verifier",
        shown(b.take_pkce_verifier("state-2").await.map(|v| v.is_some())),
    );
    note(
        "state-1 kept",
        shown(b.pending("state-1").await.map(|p| p.is_some())),
    );
    note(
        "insert pending, purging",
        shown(
            b.insert_pending(&pending("state-3", &fa, at(40, 0)), None, at(35, 0))
                .await,
        ),
    );
    note("state-1 purged", shown(b.pending("state-1").await));
    note("outcome purged", shown(b.pending_outcome("state-1").await));
    note("state-3", shown(b.pending("state-3").await));

    // ---- removing a client
    note("remove public", shown(b.remove_client(&public).await));
    note("remove public again", shown(b.remove_client(&public).await));
    note("public gone", shown(b.client("cl-2").await));
    note("clients at the end", shown(b.clients().await));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_team_store_answers_the_seam_like_the_local_store() {
    require_keyring();
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(&dir.path().join("authdeck.sqlite3")).unwrap());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let service = format!("authdeck-team-parity-{}-{nanos}", std::process::id());
    let vault = Vault::new(Arc::new(KeyringStore::new(service)));
    let locks = Arc::new(ConnectionLocks::new(Some(dir.path().join("locks")), WAIT));
    let local = LocalBackend::new(db.clone(), vault, locks);
    let local_answers = script(&local, Seed::Local(&db)).await;

    let cluster = PgCluster::start();
    let config = DbConfig::parse(&cluster.tcp_config("postgres")).unwrap();
    let (store, _join) = TeamStore::init(&config, "Firm", "desk-1", Via::Desktop)
        .await
        .unwrap();
    let team = TeamBackend::open(store, WAIT).await.unwrap();
    let team_answers = script(&team, Seed::Team(&team)).await;
    // The one intended difference: the team store says who connected and refreshed a
    // connection (its columns); the local store has no one to name.
    assert!(team_answers
        .iter()
        .any(|a| a.contains("connected_by: Some(")));
    let team_answers: Vec<String> = team_answers.iter().map(|a| unstamped(a)).collect();

    assert_eq!(local_answers.len(), team_answers.len());
    let differ: Vec<String> = local_answers
        .iter()
        .zip(&team_answers)
        .filter(|(l, t)| l != t)
        .map(|(l, t)| format!("local: {l}\n team: {t}"))
        .collect();
    assert!(
        differ.is_empty(),
        "{} answers differ:\n{}",
        differ.len(),
        differ.join("\n")
    );
    // The script saw something: errors where expected, values elsewhere.
    assert!(local_answers
        .iter()
        .any(|a| a == "insert same name: err already_exists"));
    assert!(local_answers.iter().any(|a| a == "lock again: err busy"));
    assert!(local_answers
        .iter()
        .any(|a| a.starts_with("history all: ok [HistoryEntry")));
}
