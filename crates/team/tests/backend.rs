//! `TeamBackend` (the core's storage seam on the team store) against a real PostgreSQL:
//! a throwaway cluster per test, members connecting with their own roles.

use std::time::{Duration, Instant};

use authdeck_core::model::{
    Client, ClientOptions, Connection, ConnectionState, Endpoints, Environment, Expiry,
    ExpirySource, HistoryEntry, Provider,
};
use authdeck_core::store::backend::Backend;
use authdeck_core::store::db::PendingRecord;
use authdeck_core::store::vault::TokenBundle;
use authdeck_core::store::{
    BackendKind, CommitOutcome, OrphanProbe, StoreChange, StoreChangeKind, TokenCommit,
};
use authdeck_core::{
    AccessToken, ChildSecret, ClientSecret, ErrorCode, PkceVerifier, RefreshToken,
};
use authdeck_team::schema::grant_member_sql;
use authdeck_team::testing::{PgCluster, PgOptions};
use authdeck_team::{DbConfig, JoinKey, TeamBackend, TeamStore, Via};
use chrono::{DateTime, TimeZone, Utc};

const WAIT: Duration = Duration::from_millis(300);

/// A team (created by the administrator) and its join key; members `alice` and `bob`
/// exist as PostgreSQL roles with the member grants.
async fn team(cluster: &PgCluster) -> JoinKey {
    let db = DbConfig::parse(&cluster.tcp_config("postgres")).unwrap();
    let (_admin, join) = TeamStore::init(&db, "Firm", "admin-pc", Via::Cli)
        .await
        .unwrap();
    cluster.psql(
        "postgres",
        &format!(
            "CREATE ROLE alice LOGIN; CREATE ROLE bob LOGIN; {} {}",
            grant_member_sql("alice").unwrap(),
            grant_member_sql("bob").unwrap()
        ),
    );
    join
}

/// The backend of `role` on `machine`.
async fn member(
    cluster: &PgCluster,
    join: &JoinKey,
    role: &str,
    machine: &str,
    via: Via,
) -> TeamBackend {
    let db = DbConfig::parse(&format!(
        "host=127.0.0.1 port={} user={role} dbname=postgres",
        cluster.port()
    ))
    .unwrap();
    let (team, key) = JoinKey::decode(join.expose()).unwrap();
    let store = TeamStore::open(&db, &team, key, machine, via)
        .await
        .unwrap();
    TeamBackend::open(store, WAIT).await.unwrap()
}

/// A connection without who connected and refreshed it (the store's columns: checked on
/// their own, in `tests::records` and the desktop E2E).
fn unstamped(mut c: Connection) -> Connection {
    c.connected_by = None;
    c.refreshed_by = None;
    c
}

fn unstamped_all(list: Vec<Connection>) -> Vec<Connection> {
    list.into_iter().map(unstamped).collect()
}

fn at(minute: u32, second: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 2, 10, minute, second)
        .unwrap()
}

fn client(id: &str, name: &str) -> Client {
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
        has_secret: true,
        created_at: at(0, 0),
        sandbox: false,
    }
}

fn connection(id: &str, client: &Client, label: &str) -> Connection {
    Connection {
        support_code: Some(label.into()),
        scope: Some("openid".into()),
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

fn tokens(access: &str, refresh: &str) -> TokenBundle {
    TokenBundle {
        access_token: AccessToken::new(access),
        refresh_token: Some(RefreshToken::new(refresh)),
        access_expires: Some(Expiry::new(at(30, 0), ExpirySource::RelativeSeconds)),
        refresh_expires: Some(Expiry::new(at(59, 0), ExpirySource::Estimated)),
    }
}

async fn stored_tokens(b: &TeamBackend, conn: &Connection) -> (String, String) {
    let t = b.tokens(conn).await.unwrap().expect("tokens stored");
    (
        t.access_token.expose().to_owned(),
        t.refresh_token.unwrap().expose().to_owned(),
    )
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

/// A refresh of `old`: the next metadata a refresher would commit.
fn refreshed(old: &Connection, minute: u32) -> Connection {
    Connection {
        last_refresh_at: Some(at(minute, 0)),
        updated_at: at(minute, 0),
        access_expires: Some(Expiry::new(at(minute + 30, 0), ExpirySource::JwtExp)),
        ..old.clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_method_round_trips_for_a_member_role() {
    let cluster = PgCluster::start();
    let join = team(&cluster).await;
    let b = member(&cluster, &join, "alice", "alice-pc", Via::Desktop).await;
    assert_eq!(
        b.kind(),
        BackendKind::Team {
            name: "Firm".into(),
            reachable: true
        }
    );

    // ---- clients
    let fa = client("cl-1", "Acme FlowAccount");
    b.insert_client(&fa, Some(&ClientSecret::new("client-secret-1")))
        .await
        .unwrap();
    let public = Client {
        has_secret: false,
        ..client("cl-2", "Public app")
    };
    b.insert_client(&public, None).await.unwrap();
    assert_eq!(b.clients().await.unwrap(), vec![fa.clone(), public.clone()]);
    assert_eq!(b.client("cl-1").await.unwrap(), fa);
    assert_eq!(b.client("Acme FlowAccount").await.unwrap(), fa);
    assert_eq!(
        b.client("nobody").await.unwrap_err().code,
        ErrorCode::NotFound
    );
    assert_eq!(
        b.client_secret(&fa).await.unwrap().expose(),
        "client-secret-1"
    );
    assert_eq!(
        b.client_secret(&public).await.unwrap_err().code,
        ErrorCode::InvalidClient,
        "a public client has no secret"
    );
    let same_name = client("cl-3", "Acme FlowAccount");
    assert_eq!(
        b.insert_client(&same_name, None).await.unwrap_err().code,
        ErrorCode::AlreadyExists
    );
    assert_eq!(
        b.insert_client(&fa, None).await.unwrap_err().code,
        ErrorCode::AlreadyExists,
        "the same id twice"
    );
    let mut changed = fa.clone();
    changed.options.pkce = false;
    changed.client_id = "new-app-id".into();
    b.update_client(&changed).await.unwrap();
    assert_eq!(b.client("cl-1").await.unwrap(), changed);
    assert_eq!(
        b.client_secret(&changed).await.unwrap().expose(),
        "client-secret-1",
        "an update keeps the secret"
    );
    assert_eq!(
        b.update_client(&client("cl-9", "Ghost"))
            .await
            .unwrap_err()
            .code,
        ErrorCode::NotFound
    );
    let fa = changed;

    // ---- connections with their first tokens and child secret
    let c1 = connection("conn-aaaa-1", &fa, "SHOP1");
    let c2 = Connection {
        user_label: Some("Corner shop".into()),
        ..connection("conn-bbbb-2", &fa, "SHOP2")
    };
    b.insert_connection(&c1, "SHOP1", &tokens("at-1", "rt-1"), None)
        .await
        .unwrap();
    b.insert_connection(
        &c2,
        "SHOP2",
        &tokens("at-2", "rt-2"),
        Some(&ChildSecret::new("child-2")),
    )
    .await
    .unwrap();
    assert_eq!(
        unstamped_all(b.connections().await.unwrap()),
        vec![c1.clone(), c2.clone()]
    );
    assert_eq!(
        unstamped(b.connection("conn-aaaa-1").await.unwrap()),
        unstamped(c1.clone())
    );
    assert_eq!(
        unstamped(b.connection("SHOP2").await.unwrap()),
        unstamped(c2.clone()),
        "by label"
    );
    assert_eq!(
        unstamped(b.connection("Corner shop").await.unwrap()),
        c2,
        "by user label"
    );
    assert_eq!(
        unstamped(b.connection("conn-b").await.unwrap()),
        unstamped(c2.clone()),
        "by id prefix"
    );
    assert_eq!(
        b.connection("conn").await.unwrap_err().code,
        ErrorCode::InvalidInput,
        "an ambiguous prefix"
    );
    assert_eq!(
        b.connection("nothing").await.unwrap_err().code,
        ErrorCode::NotFound
    );
    assert_eq!(
        b.connection_by_natural_key("cl-1", "SHOP2")
            .await
            .unwrap()
            .map(unstamped),
        Some(c2.clone())
    );
    assert_eq!(
        b.connection_by_natural_key("cl-2", "SHOP2").await.unwrap(),
        None
    );
    assert_eq!(b.connection_count_for_client("cl-1").await.unwrap(), 2);
    assert_eq!(b.connection_count_for_client("cl-2").await.unwrap(), 0);
    let again = connection("conn-cccc-3", &fa, "SHOP1");
    assert_eq!(
        b.insert_connection(&again, "SHOP1", &tokens("x", "y"), None)
            .await
            .unwrap_err()
            .code,
        ErrorCode::AlreadyExists,
        "one live connection per client and natural key"
    );
    assert_eq!(
        b.connection("conn-cccc-3").await.unwrap_err().code,
        ErrorCode::NotFound,
        "nothing of a refused insert is left"
    );
    assert_eq!(stored_tokens(&b, &c1).await, ("at-1".into(), "rt-1".into()));
    let t = b.tokens(&c1).await.unwrap().unwrap();
    assert_eq!(
        t.refresh_expires,
        Some(Expiry::new(at(59, 0), ExpirySource::Estimated))
    );
    assert!(b.child_secret("conn-aaaa-1").await.unwrap().is_none());
    assert_eq!(
        b.child_secret("conn-bbbb-2")
            .await
            .unwrap()
            .unwrap()
            .expose(),
        "child-2"
    );
    b.set_child_secret("conn-aaaa-1", &ChildSecret::new("child-1"))
        .await
        .unwrap();
    b.set_child_secret("conn-bbbb-2", &ChildSecret::new("child-2b"))
        .await
        .unwrap();
    assert_eq!(
        b.child_secret("conn-aaaa-1")
            .await
            .unwrap()
            .unwrap()
            .expose(),
        "child-1"
    );
    assert_eq!(
        b.child_secret("conn-bbbb-2")
            .await
            .unwrap()
            .unwrap()
            .expose(),
        "child-2b"
    );

    // ---- the lock, a commit under it, metadata with its compare-and-swap
    let lease = b.lock("conn-aaaa-1").await.unwrap();
    let next = refreshed(&c1, 5);
    let CommitOutcome::Committed(stored) = b
        .commit(&c1, &next, &tokens("at-1b", "rt-1b"))
        .await
        .unwrap()
    else {
        panic!("the only committer wins");
    };
    assert_eq!(stored.secret_generation, 2);
    assert_eq!(
        stored,
        Connection {
            secret_generation: 2,
            ..next.clone()
        }
    );
    assert_eq!(
        unstamped(b.connection("conn-aaaa-1").await.unwrap()),
        unstamped(stored.clone())
    );
    assert_eq!(
        stored_tokens(&b, &stored).await,
        ("at-1b".into(), "rt-1b".into())
    );
    assert!(
        b.tokens(&c1).await.unwrap().is_none(),
        "the tokens of a generation no longer stored: none (read the connection again)"
    );
    assert_eq!(
        b.commit(&c1, &next, &tokens("late", "late")).await.unwrap(),
        CommitOutcome::Superseded,
        "a commit of a generation that moved on"
    );
    assert_eq!(
        stored_tokens(&b, &stored).await,
        ("at-1b".into(), "rt-1b".into())
    );
    let row = b.store().connection("conn-aaaa-1").await.unwrap().unwrap();
    assert_eq!(row.last_refresh_by.as_deref(), Some("alice"));
    assert_eq!(row.last_refresh_on.as_deref(), Some("alice-pc"));
    let mut labelled = stored.clone();
    labelled.user_label = Some("Main shop".into());
    labelled.state = ConnectionState::ReauthorizationRequired;
    assert!(b.save_metadata(&labelled).await.unwrap());
    assert_eq!(
        unstamped(b.connection("Main shop").await.unwrap()),
        unstamped(labelled.clone())
    );
    assert_eq!(
        stored_tokens(&b, &labelled).await,
        ("at-1b".into(), "rt-1b".into()),
        "metadata leaves the tokens alone"
    );
    let mut stale = c1.clone();
    stale.label = "STALE".into();
    assert!(!b.save_metadata(&stale).await.unwrap(), "superseded");
    assert_eq!(
        unstamped(b.connection("conn-aaaa-1").await.unwrap()),
        unstamped(labelled.clone())
    );
    let settled = b.settle("conn-aaaa-1", OrphanProbe::Always).await.unwrap();
    assert_eq!(unstamped(settled.connection), unstamped(labelled.clone()));
    assert!(!settled.completed);
    assert_eq!(
        b.settle("gone", OrphanProbe::MarkedOnly)
            .await
            .unwrap_err()
            .code,
        ErrorCode::NotFound
    );
    drop(lease);
    b.forget_lock("conn-aaaa-1");
    b.maintain().await.unwrap();

    // ---- a batch
    let c2_next = refreshed(&c2, 6);
    let outcomes = b
        .commit_many(vec![
            TokenCommit {
                old: c2.clone(),
                next: c2_next.clone(),
                tokens: tokens("at-2b", "rt-2b"),
                history: Some(HistoryEntry::new(at(6, 0), "refresh", "ok", None)),
            },
            TokenCommit {
                old: c1.clone(),
                next: refreshed(&c1, 6),
                tokens: tokens("stale", "stale"),
                history: Some(HistoryEntry::new(at(6, 0), "refresh", "stale", None)),
            },
        ])
        .await;
    assert_eq!(outcomes.len(), 2);
    assert!(matches!(&outcomes[0], Ok(CommitOutcome::Committed(c)) if c.secret_generation == 2));
    assert!(matches!(&outcomes[1], Ok(CommitOutcome::Superseded)));
    assert_eq!(
        b.history(Some("conn-bbbb-2"), 10).await.unwrap(),
        vec![HistoryEntry::new(at(6, 0), "refresh", "ok", None)],
        "a committed item's history, recorded with it"
    );
    assert!(
        b.history(Some("conn-aaaa-1"), 10).await.unwrap().is_empty(),
        "a superseded item's history is not recorded"
    );
    let c2_now = b.connection("conn-bbbb-2").await.unwrap();
    assert_eq!(
        stored_tokens(&b, &c2_now).await,
        ("at-2b".into(), "rt-2b".into())
    );

    // ---- history, coalescing like the local store
    let refresh = HistoryEntry::new(at(5, 0), "refresh", "ok", Some("rotated".into()));
    b.record(Some("conn-aaaa-1"), Some("cl-1"), &refresh, None)
        .await
        .unwrap();
    let rejected = HistoryEntry::new(at(7, 10), "callback_rejected", "invalid_state", None);
    for second in [10, 20, 59] {
        let e = HistoryEntry {
            at: at(7, second),
            ..rejected.clone()
        };
        b.record(None, Some("cl-1"), &e, Some("callback_rejected"))
            .await
            .unwrap();
    }
    let next_minute = HistoryEntry {
        at: at(8, 0),
        ..rejected.clone()
    };
    b.record(None, Some("cl-1"), &next_minute, Some("callback_rejected"))
        .await
        .unwrap();
    let long = HistoryEntry::new(at(9, 0), "note", "ok", Some("x".repeat(5000)));
    b.record(Some("conn-bbbb-2"), None, &long, None)
        .await
        .unwrap();
    assert_eq!(
        b.history(Some("conn-aaaa-1"), 10).await.unwrap(),
        vec![refresh.clone()]
    );
    let all = b.history(None, 10).await.unwrap();
    assert_eq!(all.len(), 5, "the batch's line and these four");
    assert_eq!(all[0].detail.as_ref().unwrap().chars().count(), 2001);
    assert_eq!(
        all[1],
        HistoryEntry {
            count: 1,
            ..next_minute
        }
    );
    assert_eq!(
        all[2],
        HistoryEntry {
            count: 3,
            ..rejected
        },
        "one line per kind and minute, with a count; its time the first"
    );
    assert_eq!(all[3], refresh);
    assert_eq!(all[4], HistoryEntry::new(at(6, 0), "refresh", "ok", None));
    assert_eq!(b.history(None, 2).await.unwrap().len(), 2);

    // ---- pending authorizations: single use, outcome kept, verifier taken once
    let p = pending("state-1", &fa, at(10, 0));
    b.insert_pending(&p, Some(&PkceVerifier::new("verifier-1")), at(0, 0))
        .await
        .unwrap();
    assert_eq!(b.pending("state-1").await.unwrap(), Some(p.clone()));
    assert_eq!(b.pending("state-x").await.unwrap(), None);
    assert_eq!(b.pending_outcome("state-1").await.unwrap(), None);
    assert!(b.consume_pending("state-1", at(11, 0)).await.unwrap());
    assert!(!b.consume_pending("state-1", at(11, 1)).await.unwrap());
    assert!(!b.consume_pending("state-x", at(11, 1)).await.unwrap());
    assert_eq!(
        b.pending("state-1").await.unwrap().unwrap().consumed_at,
        Some(at(11, 0))
    );
    assert_eq!(
        b.pending_outcome("state-1").await.unwrap().as_deref(),
        Some("used")
    );
    b.set_pending_outcome("state-1", "ok").await.unwrap();
    assert_eq!(
        b.pending_outcome("state-1").await.unwrap().as_deref(),
        Some("ok")
    );
    assert_eq!(
        b.take_pkce_verifier("state-1")
            .await
            .unwrap()
            .unwrap()
            .expose(),
        "verifier-1"
    );
    assert!(b.take_pkce_verifier("state-1").await.unwrap().is_none());
    let no_pkce = PendingRecord {
        pkce: false,
        reconnect_connection_id: Some("conn-aaaa-1".into()),
        ..pending("state-2", &fa, at(20, 0))
    };
    // Inserting it purges those that expired before 10:05 (state-1 expires at 10:10: kept).
    b.insert_pending(&no_pkce, None, at(5, 0)).await.unwrap();
    assert_eq!(b.pending("state-2").await.unwrap(), Some(no_pkce.clone()));
    assert!(b.take_pkce_verifier("state-2").await.unwrap().is_none());
    assert!(b.pending("state-1").await.unwrap().is_some());
    b.insert_pending(&pending("state-3", &fa, at(40, 0)), None, at(35, 0))
        .await
        .unwrap();
    assert!(
        b.pending("state-1").await.unwrap().is_none(),
        "purged: expired (10:10) before the bound (10:35)"
    );
    assert_eq!(
        b.pending_outcome("state-1").await.unwrap(),
        None,
        "purged, unknown"
    );

    // ---- removal: tokens and child secret go, history stays
    let c1_now = b.connection("conn-aaaa-1").await.unwrap();
    b.remove_connection(&c1_now).await.unwrap();
    b.remove_connection(&c1_now).await.unwrap();
    assert_eq!(
        b.connection("conn-aaaa-1").await.unwrap_err().code,
        ErrorCode::NotFound
    );
    assert!(b.tokens(&c1_now).await.unwrap().is_none());
    assert!(b.child_secret("conn-aaaa-1").await.unwrap().is_none());
    assert_eq!(
        cluster
            .psql(
                "postgres",
                "SELECT count(*) FROM authdeck.child_secrets WHERE connection_id = 'conn-aaaa-1'"
            )
            .trim(),
        "0"
    );
    assert_eq!(b.history(Some("conn-aaaa-1"), 10).await.unwrap().len(), 1);
    assert_eq!(b.connection_count_for_client("cl-1").await.unwrap(), 1);
    assert_eq!(
        b.connection_by_natural_key("cl-1", "SHOP1").await.unwrap(),
        None
    );
    // The natural key is free again once the connection is gone.
    b.insert_connection(&again, "SHOP1", &tokens("at-3", "rt-3"), None)
        .await
        .unwrap();
    assert_eq!(
        b.connection_by_natural_key("cl-1", "SHOP1")
            .await
            .unwrap()
            .map(unstamped),
        Some(again)
    );

    // ---- clients go with their secret
    b.remove_client(&public).await.unwrap();
    b.remove_client(&public).await.unwrap();
    assert_eq!(
        b.insert_connection(
            &connection("conn-dddd-4", &public, "LATE"),
            "LATE",
            &tokens("x", "y"),
            None
        )
        .await
        .unwrap_err()
        .code,
        ErrorCode::NotFound,
        "no connection of a removed client"
    );
    assert_eq!(
        b.client("cl-2").await.unwrap_err().code,
        ErrorCode::NotFound
    );
    assert_eq!(b.clients().await.unwrap(), vec![fa]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_two_commits_of_one_generation_exactly_one_wins() {
    let cluster = PgCluster::start();
    let join = team(&cluster).await;
    let a = member(&cluster, &join, "alice", "alice-pc", Via::Desktop).await;
    let b = member(&cluster, &join, "bob", "bob-agent", Via::Agent).await;
    let fa = client("cl-1", "Acme");
    a.insert_client(&fa, Some(&ClientSecret::new("s")))
        .await
        .unwrap();
    let mut current = connection("conn-1", &fa, "SHOP1");
    a.insert_connection(&current, "SHOP1", &tokens("at-0", "rt-0"), None)
        .await
        .unwrap();
    for round in 1..=5u32 {
        let next = refreshed(&current, round);
        let (ta, tb) = (
            tokens(&format!("at-a{round}"), &format!("rt-a{round}")),
            tokens(&format!("at-b{round}"), &format!("rt-b{round}")),
        );
        let (ra, rb) = tokio::join!(
            a.commit(&current, &next, &ta),
            b.commit(&current, &next, &tb)
        );
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        let (winner, stored) = match (&ra, &rb) {
            (CommitOutcome::Committed(s), CommitOutcome::Superseded) => ("a", s.clone()),
            (CommitOutcome::Superseded, CommitOutcome::Committed(s)) => ("b", s.clone()),
            other => panic!("round {round}: exactly one must win, got {other:?}"),
        };
        assert_eq!(stored.secret_generation, current.secret_generation + 1);
        let (at_, rt) = stored_tokens(&a, &stored).await;
        assert_eq!(at_, format!("at-{winner}{round}"), "round {round}");
        assert_eq!(rt, format!("rt-{winner}{round}"), "round {round}");
        assert_eq!(
            unstamped(b.connection("conn-1").await.unwrap()),
            unstamped(stored.clone())
        );
        current = stored;
    }
    // Two batches racing on one generation: the same, exactly one wins.
    let next = refreshed(&current, 9);
    let item = |who: &str| TokenCommit {
        old: current.clone(),
        next: next.clone(),
        tokens: tokens(&format!("at-{who}9"), &format!("rt-{who}9")),
        history: None,
    };
    let (ra, rb) = tokio::join!(
        a.commit_many(vec![item("a")]),
        b.commit_many(vec![item("b")])
    );
    let winner = match (&ra[0], &rb[0]) {
        (Ok(CommitOutcome::Committed(_)), Ok(CommitOutcome::Superseded)) => "a",
        (Ok(CommitOutcome::Superseded), Ok(CommitOutcome::Committed(_))) => "b",
        other => panic!("exactly one batch item must win, got {other:?}"),
    };
    let stored = a.connection("conn-1").await.unwrap();
    assert_eq!(
        stored_tokens(&a, &stored).await,
        (format!("at-{winner}9"), format!("rt-{winner}9"))
    );
    assert_eq!(
        cluster
            .psql("postgres", "SELECT count(*) FROM authdeck.token_sets")
            .trim(),
        "1",
        "one token set per connection"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ciphertext_moved_to_another_row_fails_to_open_with_a_clear_error() {
    let cluster = PgCluster::start();
    let join = team(&cluster).await;
    let b = member(&cluster, &join, "alice", "alice-pc", Via::Desktop).await;
    let fa = client("cl-1", "Acme");
    b.insert_client(&fa, Some(&ClientSecret::new("secret-1")))
        .await
        .unwrap();
    b.insert_client(
        &client("cl-2", "Other"),
        Some(&ClientSecret::new("secret-2")),
    )
    .await
    .unwrap();
    let c1 = connection("conn-1", &fa, "SHOP1");
    let c2 = connection("conn-2", &fa, "SHOP2");
    b.insert_connection(
        &c1,
        "SHOP1",
        &tokens("at-1", "rt-1"),
        Some(&ChildSecret::new("ch-1")),
    )
    .await
    .unwrap();
    b.insert_connection(
        &c2,
        "SHOP2",
        &tokens("at-2", "rt-2"),
        Some(&ChildSecret::new("ch-2")),
    )
    .await
    .unwrap();
    // Another machine (or an attacker with write access) copies conn-1's ciphertexts
    // onto conn-2, and client 1's secret onto client 2.
    cluster.psql(
        "postgres",
        "UPDATE authdeck.token_sets SET sealed = (SELECT sealed FROM authdeck.token_sets WHERE connection_id = 'conn-1')
          WHERE connection_id = 'conn-2';
         UPDATE authdeck.child_secrets SET sealed = (SELECT sealed FROM authdeck.child_secrets WHERE connection_id = 'conn-1')
          WHERE connection_id = 'conn-2';
         UPDATE authdeck.clients SET secret = (SELECT secret FROM authdeck.clients WHERE id = 'cl-1')
          WHERE id = 'cl-2';",
    );
    let moved = [
        b.tokens(&c2).await.unwrap_err(),
        b.child_secret("conn-2").await.unwrap_err(),
        b.client_secret(&client("cl-2", "Other")).await.unwrap_err(),
    ];
    for e in moved {
        assert_eq!(e.code, ErrorCode::Storage, "{e:?}");
        assert!(e.message.contains("moved to another row"), "{e:?}");
        let shown = format!("{e:?}");
        for secret in ["at-1", "rt-1", "ch-1", "secret-1"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }
    // The rows it was copied from still open.
    assert_eq!(stored_tokens(&b, &c1).await, ("at-1".into(), "rt-1".into()));
    // A ciphertext of another generation of the same row does not open either.
    cluster.psql(
        "postgres",
        "UPDATE authdeck.connections SET generation = 2 WHERE id = 'conn-1';
         UPDATE authdeck.token_sets SET generation = 2 WHERE connection_id = 'conn-1';",
    );
    let c1_moved = Connection {
        secret_generation: 2,
        ..c1.clone()
    };
    let e = b.tokens(&c1_moved).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::Storage);
}

/// The database's whole content (`pg_dump` without its per-run `\restrict` nonce).
fn snapshot(cluster: &PgCluster) -> String {
    cluster
        .pg_dump("postgres")
        .lines()
        .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_row_from_another_machine_is_a_storage_error_and_changes_nothing() {
    let cluster = PgCluster::start();
    let join = team(&cluster).await;
    let b = member(&cluster, &join, "alice", "alice-pc", Via::Desktop).await;
    let fa = client("cl-1", "Acme");
    b.insert_client(&fa, None).await.unwrap();
    let good = connection("conn-good", &fa, "GOOD");
    b.insert_connection(&good, "GOOD", &tokens("at-1", "rt-1"), None)
        .await
        .unwrap();
    // Rows as another (broken, or newer) machine might write them, with raw SQL.
    cluster.psql(
        "postgres",
        r#"INSERT INTO authdeck.connections (team_id, id, client_id, record, natural_key)
             SELECT id, 'conn-bad', 'cl-1', '{"v": 1, "label": 42, "note": "DO-NOT-ECHO"}', 'BAD' FROM authdeck.teams;
           INSERT INTO authdeck.connections (team_id, id, client_id, record, natural_key)
             SELECT id, 'conn-new', 'cl-1', '{"v": 2, "label": "from the future"}', 'NEW' FROM authdeck.teams;
           INSERT INTO authdeck.clients (team_id, id, record)
             SELECT id, 'cl-bad', '{"name": "no version", "provider": "nope"}' FROM authdeck.teams;
           INSERT INTO authdeck.pending_authorizations (team_id, id, client_id, record, expires_at)
             SELECT id, 'state-bad', 'cl-1', '{"v": 1}', now() + interval '5 minutes' FROM authdeck.teams;"#,
    );
    let before = snapshot(&cluster);
    let storage = |e: authdeck_core::Error| {
        assert_eq!(e.code, ErrorCode::Storage, "{e:?}");
        assert!(!format!("{e:?}").contains("DO-NOT-ECHO"), "{e:?}");
        e
    };
    let e = storage(b.connections().await.unwrap_err());
    assert!(
        e.detail.as_deref().unwrap_or("").contains("conn-"),
        "names the row: {e:?}"
    );
    storage(b.connection("conn-bad").await.unwrap_err());
    let e = storage(b.connection("conn-new").await.unwrap_err());
    assert!(e.message.contains("newer Authdeck"), "{e:?}");
    storage(
        b.connection_by_natural_key("cl-1", "BAD")
            .await
            .unwrap_err(),
    );
    storage(b.settle("conn-bad", OrphanProbe::Always).await.unwrap_err());
    storage(b.clients().await.unwrap_err());
    storage(b.client("cl-bad").await.unwrap_err());
    storage(b.pending("state-bad").await.unwrap_err());
    assert!(
        snapshot(&cluster) == before,
        "the failed reads changed nothing"
    );
    // The good rows still read, one by one.
    assert_eq!(
        unstamped(b.connection("conn-good").await.unwrap()),
        unstamped(good.clone())
    );
    assert_eq!(
        b.client("cl-1").await.unwrap(),
        Client {
            has_secret: false,
            ..fa
        },
        "stored without a secret: the column says so"
    );
    // A token set that opens but is no bundle of this format.
    let bad_tokens = b
        .store()
        .commit(&authdeck_team::CommitRequest {
            connection_id: "conn-good",
            expected_generation: 1,
            token_set: b"{\"v\": 9, \"access_token\": \"DO-NOT-ECHO\"}",
            record: &authdeck_team::backend::records::connection_record(&good).unwrap(),
            refreshed: false,
            history: None,
        })
        .await
        .unwrap();
    assert!(matches!(
        bad_tokens,
        authdeck_team::CommitOutcome::Won { generation: 2, .. }
    ));
    let good_now = b.connection("conn-good").await.unwrap();
    let before_tokens = snapshot(&cluster);
    assert!(before_tokens != before, "the snapshot sees a change");
    storage(b.tokens(&good_now).await.unwrap_err());
    assert!(snapshot(&cluster) == before_tokens, "nor did this one");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_canary_secret_in_pg_dump_or_the_statement_log_after_every_method() {
    let cluster = PgCluster::start_with(PgOptions {
        log_statement_all: true,
        ..PgOptions::default()
    });
    let join = team(&cluster).await;
    let b = member(&cluster, &join, "alice", "alice-pc", Via::Desktop).await;
    let canary = "CANARY-5d1e7b";
    let fa = client("cl-1", "Acme");
    b.insert_client(&fa, Some(&ClientSecret::new(format!("{canary}-client"))))
        .await
        .unwrap();
    b.update_client(&fa).await.unwrap();
    let c1 = connection("conn-1", &fa, "SHOP1");
    b.insert_connection(
        &c1,
        "SHOP1",
        &tokens(&format!("{canary}-at1"), &format!("{canary}-rt1")),
        Some(&ChildSecret::new(format!("{canary}-child1"))),
    )
    .await
    .unwrap();
    let lease = b.lock("conn-1").await.unwrap();
    let CommitOutcome::Committed(c1) = b
        .commit(
            &c1,
            &refreshed(&c1, 5),
            &tokens(&format!("{canary}-at2"), &format!("{canary}-rt2")),
        )
        .await
        .unwrap()
    else {
        panic!("committed")
    };
    drop(lease);
    let c1_next = refreshed(&c1, 6);
    let outcomes = b
        .commit_many(vec![TokenCommit {
            old: c1.clone(),
            next: c1_next,
            tokens: tokens(&format!("{canary}-at3"), &format!("{canary}-rt3")),
            history: None,
        }])
        .await;
    let Ok(CommitOutcome::Committed(c1)) = &outcomes[0] else {
        panic!("committed")
    };
    assert!(b.save_metadata(c1).await.unwrap());
    b.set_child_secret("conn-1", &ChildSecret::new(format!("{canary}-child2")))
        .await
        .unwrap();
    let p = pending("state-1", &fa, at(10, 0));
    b.insert_pending(
        &p,
        Some(&PkceVerifier::new(format!("{canary}-pkce"))),
        at(0, 0),
    )
    .await
    .unwrap();
    assert!(b.consume_pending("state-1", at(11, 0)).await.unwrap());
    b.set_pending_outcome("state-1", "ok").await.unwrap();
    let p2 = pending("state-2", &fa, at(12, 0));
    b.insert_pending(
        &p2,
        Some(&PkceVerifier::new(format!("{canary}-pkce2"))),
        at(0, 0),
    )
    .await
    .unwrap();
    b.take_pkce_verifier("state-1").await.unwrap();
    b.record(
        Some("conn-1"),
        Some("cl-1"),
        &HistoryEntry::new(at(5, 0), "refresh", "ok", None),
        None,
    )
    .await
    .unwrap();
    // Every secret reads back (they are stored), and none of them is in the dump.
    assert_eq!(
        stored_tokens(&b, c1).await,
        (format!("{canary}-at3"), format!("{canary}-rt3"))
    );
    assert!(b
        .child_secret("conn-1")
        .await
        .unwrap()
        .unwrap()
        .expose()
        .ends_with("child2"));
    assert!(b
        .client_secret(&fa)
        .await
        .unwrap()
        .expose()
        .ends_with("client"));
    let dump = cluster.pg_dump("postgres");
    assert!(dump.contains("SHOP1"), "the dump has the data");
    let log = cluster.server_log();
    assert!(
        log.contains("WITH won AS"),
        "the log has the batch's statements"
    );
    use base64::Engine;
    let hex: String = canary.bytes().map(|b| format!("{b:02x}")).collect();
    for needle in [
        canary.to_string(),
        hex,
        base64::engine::general_purpose::STANDARD.encode(canary),
        base64::engine::general_purpose::STANDARD.encode(format!("{canary}-at3")),
    ] {
        for (what, text) in [("pg_dump", &dump), ("the server log", &log)] {
            assert!(
                !text.contains(&needle),
                "{what} holds the canary ({needle})"
            );
        }
    }
    // Removal leaves no ciphertext of the connection behind.
    b.remove_connection(c1).await.unwrap();
    assert_eq!(
        cluster
            .psql(
                "postgres",
                "SELECT (SELECT count(*) FROM authdeck.token_sets) + (SELECT count(*) FROM authdeck.child_secrets)"
            )
            .trim(),
        "0"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lock_waits_a_bounded_time_then_says_busy_and_the_next_holder_sees_the_commit() {
    let cluster = PgCluster::start();
    let join = team(&cluster).await;
    let a = member(&cluster, &join, "alice", "alice-pc", Via::Desktop).await;
    let b = member(&cluster, &join, "bob", "bob-agent", Via::Agent).await;
    let fa = client("cl-1", "Acme");
    a.insert_client(&fa, None).await.unwrap();
    let c1 = connection("conn-1", &fa, "SHOP1");
    a.insert_connection(&c1, "SHOP1", &tokens("at-1", "rt-1"), None)
        .await
        .unwrap();
    let held = a.lock("conn-1").await.unwrap();
    let started = Instant::now();
    let e = b.lock("conn-1").await.err().expect("the lock is held");
    let waited = started.elapsed();
    assert_eq!(e.code, ErrorCode::Busy, "{e:?}");
    assert!(waited >= WAIT, "waited the bound first: {waited:?}");
    assert!(waited < Duration::from_secs(30), "bounded: {waited:?}");
    // A second lock of one process is refused too (one holder per connection).
    assert_eq!(a.lock("conn-1").await.err().unwrap().code, ErrorCode::Busy);
    assert_eq!(
        b.lock("no-such").await.err().unwrap().code,
        ErrorCode::NotFound
    );
    let CommitOutcome::Committed(stored) = a
        .commit(&c1, &refreshed(&c1, 5), &tokens("at-2", "rt-2"))
        .await
        .unwrap()
    else {
        panic!("committed")
    };
    drop(held);
    // The lease is let go in the background: the other member gets it within a bounded
    // wait, and (re-reading) sees what the previous holder committed.
    let deadline = Instant::now() + Duration::from_secs(10);
    let lease = loop {
        match b.lock("conn-1").await {
            Ok(lease) => break lease,
            Err(e) if e.code == ErrorCode::Busy && Instant::now() < deadline => continue,
            Err(e) => panic!("the lock was not released: {e:?}"),
        }
    };
    assert_eq!(
        unstamped(b.connection("conn-1").await.unwrap()),
        unstamped(stored.clone())
    );
    assert_eq!(
        stored_tokens(&b, &stored).await,
        ("at-2".into(), "rt-2".into())
    );
    drop(lease);
    // The lock itself, for a refresher that must know it has time left.
    let deadline = Instant::now() + Duration::from_secs(10);
    let lock = loop {
        match a.refresh_lock("conn-1").await {
            Ok(lock) => break lock,
            Err(e) if e.code == ErrorCode::Busy && Instant::now() < deadline => continue,
            Err(e) => panic!("the lock was not released: {e:?}"),
        }
    };
    assert_eq!(lock.generation(), 2, "re-read after taking it");
    lock.ensure(Duration::from_secs(1)).await.unwrap();
    assert_eq!(
        lock.ensure(Duration::from_secs(60)).await.unwrap_err().code,
        ErrorCode::Busy,
        "not with 60 s left"
    );
    assert_eq!(b.lock("conn-1").await.err().unwrap().code, ErrorCode::Busy);
    lock.release().await;
    b.lock("conn-1").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_records_the_member_and_the_machine() {
    let cluster = PgCluster::start();
    let join = team(&cluster).await;
    let a = member(&cluster, &join, "alice", "alice-pc", Via::Desktop).await;
    let b = member(&cluster, &join, "bob", "bob-agent", Via::Agent).await;
    a.record(
        None,
        None,
        &HistoryEntry::new(at(1, 0), "connect", "ok", None),
        None,
    )
    .await
    .unwrap();
    b.record(
        None,
        None,
        &HistoryEntry::new(at(2, 0), "refresh", "ok", None),
        None,
    )
    .await
    .unwrap();
    // Bob counts into the line Alice started (same kind and minute): one line.
    let rejected = HistoryEntry::new(at(3, 0), "callback_rejected", "invalid_state", None);
    a.record(None, None, &rejected, Some("callback_rejected"))
        .await
        .unwrap();
    b.record(None, None, &rejected, Some("callback_rejected"))
        .await
        .unwrap();
    let rows = a.store().history(None, 10).await.unwrap();
    let who: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r.event.as_str(),
                r.member.as_str(),
                r.machine.as_str(),
                r.via.as_str(),
                r.count,
            )
        })
        .collect();
    assert_eq!(
        who,
        vec![
            ("callback_rejected", "alice", "alice-pc", "desktop", 2),
            ("refresh", "bob", "bob-agent", "agent", 1),
            ("connect", "alice", "alice-pc", "desktop", 1),
        ]
    );
    // The member is the session's role: a machine cannot claim to be someone else.
    assert_eq!(rows[1].member, "bob");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_of_another_machine_arrive_on_the_feed() {
    let cluster = PgCluster::start();
    let join = team(&cluster).await;
    let a = member(&cluster, &join, "alice", "alice-pc", Via::Desktop).await;
    let b = member(&cluster, &join, "bob", "bob-agent", Via::Agent).await;
    let mut feed = b.changes().expect("the team store has a feed");
    async fn next(feed: &mut tokio::sync::broadcast::Receiver<StoreChange>) -> StoreChange {
        tokio::time::timeout(Duration::from_secs(10), feed.recv())
            .await
            .expect("a change within 10 s")
            .unwrap()
    }
    assert_eq!(next(&mut feed).await.kind, StoreChangeKind::Resynced);
    let fa = client("cl-1", "Acme");
    a.insert_client(&fa, None).await.unwrap();
    assert_eq!(
        next(&mut feed).await,
        StoreChange {
            kind: StoreChangeKind::ClientChanged,
            id: Some("cl-1".into())
        }
    );
    let c1 = connection("conn-1", &fa, "SHOP1");
    a.insert_connection(&c1, "SHOP1", &tokens("at", "rt"), None)
        .await
        .unwrap();
    let changed = StoreChange {
        kind: StoreChangeKind::ConnectionChanged,
        id: Some("conn-1".into()),
    };
    assert_eq!(next(&mut feed).await, changed);
    a.commit(&c1, &refreshed(&c1, 5), &tokens("at2", "rt2"))
        .await
        .unwrap();
    assert_eq!(next(&mut feed).await, changed);
    a.remove_connection(&c1).await.unwrap();
    assert_eq!(
        next(&mut feed).await,
        StoreChange {
            kind: StoreChangeKind::ConnectionRemoved,
            id: Some("conn-1".into())
        }
    );
    // Unreachable, then resynced, when the server restarts.
    drop(a);
    let mut cluster = cluster;
    cluster.restart();
    let mut seen = Vec::new();
    while !seen.contains(&StoreChangeKind::Resynced) {
        seen.push(next(&mut feed).await.kind);
    }
    assert!(seen.contains(&StoreChangeKind::Unreachable), "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_the_key_re_seals_child_secrets_and_pending_authorizations_without_one() {
    let cluster = PgCluster::start();
    let db = DbConfig::parse(&cluster.tcp_config("postgres")).unwrap();
    let (admin, _join) = TeamStore::init(&db, "Firm", "admin-pc", Via::Cli)
        .await
        .unwrap();
    let b = TeamBackend::open(admin.clone(), WAIT).await.unwrap();
    let fa = client("cl-1", "Acme");
    b.insert_client(&fa, Some(&ClientSecret::new("cs")))
        .await
        .unwrap();
    let c1 = connection("conn-1", &fa, "SHOP1");
    b.insert_connection(
        &c1,
        "SHOP1",
        &tokens("at", "rt"),
        Some(&ChildSecret::new("child")),
    )
    .await
    .unwrap();
    b.insert_pending(
        &pending("with", &fa, at(10, 0)),
        Some(&PkceVerifier::new("v1")),
        at(0, 0),
    )
    .await
    .unwrap();
    b.insert_pending(&pending("without", &fa, at(10, 0)), None, at(0, 0))
        .await
        .unwrap();
    let sealed_before = cluster.psql(
        "postgres",
        "SELECT encode(sealed, 'hex') FROM authdeck.child_secrets",
    );
    let (rotated, _new_join) = admin.rotate_key().await.unwrap();
    assert_ne!(
        cluster.psql(
            "postgres",
            "SELECT encode(sealed, 'hex') FROM authdeck.child_secrets"
        ),
        sealed_before,
        "sealed again"
    );
    let old = b;
    let e = old.child_secret("conn-1").await.unwrap_err();
    assert_eq!(
        e.code,
        ErrorCode::Storage,
        "the old key opens nothing: {e:?}"
    );
    let new = TeamBackend::open(rotated, WAIT).await.unwrap();
    assert_eq!(
        new.child_secret("conn-1").await.unwrap().unwrap().expose(),
        "child"
    );
    assert_eq!(stored_tokens(&new, &c1).await, ("at".into(), "rt".into()));
    assert_eq!(
        new.take_pkce_verifier("with")
            .await
            .unwrap()
            .unwrap()
            .expose(),
        "v1"
    );
    assert!(new.take_pkce_verifier("without").await.unwrap().is_none());
    assert!(new.pending("without").await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_store_is_team_unavailable_and_shows_in_kind() {
    let mut cluster = PgCluster::start();
    let join = team(&cluster).await;
    let b = member(&cluster, &join, "alice", "alice-pc", Via::Desktop).await;
    let fa = client("cl-1", "Acme");
    b.insert_client(&fa, None).await.unwrap();
    cluster.stop();
    let e = b.clients().await.unwrap_err();
    assert_eq!(e.code, ErrorCode::TeamUnavailable, "{e:?}");
    assert_eq!(
        b.kind(),
        BackendKind::Team {
            name: "Firm".into(),
            reachable: false
        }
    );
    let e = b
        .insert_connection(
            &connection("conn-1", &fa, "SHOP1"),
            "SHOP1",
            &tokens("a", "r"),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::TeamUnavailable, "{e:?}");
    cluster.start_again();
    // The pool reconnects: the next call answers, and nothing of the refused insert is there.
    let deadline = Instant::now() + Duration::from_secs(20);
    let conns = loop {
        match b.connections().await {
            Ok(conns) => break conns,
            Err(e) if Instant::now() < deadline => {
                assert_eq!(e.code, ErrorCode::TeamUnavailable, "{e:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("the store did not come back: {e:?}"),
        }
    };
    assert!(conns.is_empty());
    assert_eq!(
        b.kind(),
        BackendKind::Team {
            name: "Firm".into(),
            reachable: true
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_commits_each_item_once_and_one_bad_item_fails_alone() {
    let cluster = PgCluster::start();
    let join = team(&cluster).await;
    let a = member(&cluster, &join, "alice", "alice-pc", Via::Desktop).await;
    let b = member(&cluster, &join, "bob", "bob-agent", Via::Agent).await;
    let fa = client("cl-1", "Acme");
    a.insert_client(&fa, None).await.unwrap();
    let mut conns = Vec::new();
    for i in 0..100 {
        let c = connection(&format!("conn-{i:03}"), &fa, &format!("SHOP{i:03}"));
        a.insert_connection(&c, &c.label, &tokens(&format!("at-{i}"), "rt"), None)
            .await
            .unwrap();
        conns.push(c);
    }
    // 100 items (two transactions), one connection twice: the second of the pair loses.
    let mut items: Vec<TokenCommit> = conns
        .iter()
        .enumerate()
        .map(|(i, c)| TokenCommit {
            old: c.clone(),
            next: refreshed(c, 5),
            tokens: tokens(&format!("at-{i}-b"), &format!("rt-{i}-b")),
            history: None,
        })
        .collect();
    items.insert(
        11,
        TokenCommit {
            old: conns[10].clone(),
            next: refreshed(&conns[10], 6),
            tokens: tokens("twice", "twice"),
            history: None,
        },
    );
    let outcomes = a.commit_many(items).await;
    assert_eq!(outcomes.len(), 101);
    for (i, outcome) in outcomes.iter().enumerate() {
        match (i, outcome) {
            (11, Ok(CommitOutcome::Superseded)) => {}
            (11, other) => panic!("the second commit of one generation must lose: {other:?}"),
            (_, Ok(CommitOutcome::Committed(c))) => assert_eq!(c.secret_generation, 2),
            (_, other) => panic!("item {i}: {other:?}"),
        }
    }
    let stored = b.connection("conn-010").await.unwrap();
    assert_eq!(
        stored_tokens(&b, &stored).await,
        ("at-10-b".into(), "rt-10-b".into())
    );
    assert_eq!(stored.last_refresh_at, Some(at(5, 0)));
    let stored = b.connection("conn-099").await.unwrap();
    assert_eq!(stored.secret_generation, 2);

    // A batch the database refuses as a whole (a record PostgreSQL cannot store: a NUL
    // in a JSON string) is committed item by item: only the bad item fails.
    let now: Vec<Connection> = b.connections().await.unwrap();
    let mut bad = refreshed(&now[1], 7);
    bad.user_label = Some("nul\u{0}inside".into());
    let items = vec![
        TokenCommit {
            old: now[0].clone(),
            next: refreshed(&now[0], 7),
            tokens: tokens("good-0", "good-0"),
            history: Some(HistoryEntry::new(at(7, 0), "refresh", "ok", None)),
        },
        TokenCommit {
            old: now[1].clone(),
            next: bad,
            tokens: tokens("bad", "bad"),
            history: Some(HistoryEntry::new(at(7, 0), "refresh", "ok", None)),
        },
        TokenCommit {
            old: now[2].clone(),
            next: refreshed(&now[2], 7),
            tokens: tokens("good-2", "good-2"),
            history: Some(HistoryEntry::new(at(7, 0), "refresh", "ok", None)),
        },
    ];
    let outcomes = b.commit_many(items).await;
    assert!(matches!(&outcomes[0], Ok(CommitOutcome::Committed(c)) if c.secret_generation == 3));
    let e = outcomes[1].as_ref().unwrap_err();
    assert_eq!(e.code, ErrorCode::Storage, "{e:?}");
    assert!(matches!(&outcomes[2], Ok(CommitOutcome::Committed(c)) if c.secret_generation == 3));
    let untouched = a.connection(&now[1].id).await.unwrap();
    assert_eq!(untouched, now[1], "the bad item changed nothing");
    assert_eq!(
        stored_tokens(&a, &untouched).await,
        ("at-1-b".into(), "rt-1-b".into())
    );
    assert_eq!(
        stored_tokens(&a, &a.connection(&now[2].id).await.unwrap()).await,
        ("good-2".into(), "good-2".into())
    );
    for (conn, lines) in [(&now[0], 1), (&now[1], 0), (&now[2], 1)] {
        assert_eq!(
            a.history(Some(&conn.id), 10).await.unwrap().len(),
            lines,
            "{}: history iff committed",
            conn.id
        );
    }
    assert_eq!(a.commit_many(Vec::new()).await.len(), 0);
}
