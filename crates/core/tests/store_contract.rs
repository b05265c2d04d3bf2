//! The storage seam's contract (`store::backend`), through the manager's store: the
//! compare-and-swap of a commit and of a metadata save, a batch's outcomes, settling a
//! connection nothing interrupted, removal. Runs under every backend of the matrix
//! (`common`'s `AUTHDECK_TEST_BACKEND`).

mod common;

use std::sync::Arc;

use authdeck_core::model::{Connection, FedexGrant};
use authdeck_core::store::{Backend, CommitOutcome, Lease, OrphanProbe, TokenBundle, TokenCommit};
use authdeck_core::{AccessToken, ChildSecret, ErrorCode, RefreshToken};
use common::Fixture;

fn bundle(access: &str, refresh: Option<&str>) -> TokenBundle {
    TokenBundle::new(
        AccessToken::new(access),
        refresh.map(RefreshToken::new),
        None,
        None,
    )
}

/// The fixture's store and a FedEx connection in it, its lock held.
async fn connected(f: &Fixture) -> (Arc<dyn Backend>, Connection, Lease) {
    f.add_demo_clients().await;
    let conn = f
        .manager
        .connect_fedex("fedex", FedexGrant::ClientCredentials, None)
        .await
        .unwrap();
    let store = f.manager.store().clone();
    let lease = store.lock(&conn.id).await.unwrap();
    (store, conn, lease)
}

fn committed(outcome: CommitOutcome) -> Connection {
    match outcome {
        CommitOutcome::Committed(conn) => conn,
        CommitOutcome::Superseded => panic!("superseded, expected committed"),
    }
}

#[tokio::test]
async fn a_commit_swaps_the_generation_once_and_a_stale_one_changes_nothing() {
    let f = Fixture::new().await;
    let (store, old, _lease) = connected(&f).await;
    let mut next = old.clone();
    next.label = "renamed with the commit".into();
    let new = committed(
        store
            .commit(&old, &next, &bundle("second", Some("r2")))
            .await
            .unwrap(),
    );
    assert_eq!(new.secret_generation, old.secret_generation + 1);
    let stored = store.connection(&old.id).await.unwrap();
    assert_eq!(stored.secret_generation, new.secret_generation);
    assert_eq!(stored.label, "renamed with the commit");
    let tokens = store.tokens(&stored).await.unwrap().unwrap();
    assert_eq!(tokens.access_token.expose(), "second");
    assert_eq!(tokens.refresh_token.unwrap().expose(), "r2");

    // From the generation it left: superseded, and nothing changes.
    let stale = store
        .commit(&old, &old, &bundle("third", None))
        .await
        .unwrap();
    assert!(matches!(stale, CommitOutcome::Superseded), "{stale:?}");
    let again = store.connection(&old.id).await.unwrap();
    assert_eq!(again.secret_generation, new.secret_generation);
    let tokens = store.tokens(&again).await.unwrap().unwrap();
    assert_eq!(tokens.access_token.expose(), "second");

    // The old generation's tokens are no longer the connection's.
    assert!(store.tokens(&old).await.unwrap().is_none());
}

#[tokio::test]
async fn metadata_saves_compare_and_swap_on_the_generation_and_keep_the_tokens() {
    let f = Fixture::new().await;
    let (store, old, _lease) = connected(&f).await;
    let before = store.tokens(&old).await.unwrap().unwrap();
    let mut labelled = old.clone();
    labelled.user_label = Some("mine".into());
    assert!(store.save_metadata(&labelled).await.unwrap());
    let stored = store.connection(&old.id).await.unwrap();
    assert_eq!(stored.user_label.as_deref(), Some("mine"));
    assert_eq!(stored.secret_generation, old.secret_generation);
    let after = store.tokens(&stored).await.unwrap().unwrap();
    assert_eq!(after.access_token.expose(), before.access_token.expose());

    committed(
        store
            .commit(&old, &stored, &bundle("newer", None))
            .await
            .unwrap(),
    );
    let mut stale = old.clone();
    stale.user_label = Some("stale".into());
    assert!(!store.save_metadata(&stale).await.unwrap(), "superseded");
    let stored = store.connection(&old.id).await.unwrap();
    assert_eq!(stored.user_label.as_deref(), Some("mine"));
}

#[tokio::test]
async fn a_batch_answers_each_commit_in_order_and_records_only_the_committed() {
    let f = Fixture::new().await;
    let store = f.manager.store().clone();
    f.add_demo_clients().await;
    let mut conns = Vec::new();
    for grant in [FedexGrant::ClientCredentials, FedexGrant::CspCredentials] {
        let child = grant.needs_child_credentials().then(|| {
            (
                "demo-child-key".to_string(),
                ChildSecret::new("demo-child-secret"),
            )
        });
        conns.push(
            f.manager
                .connect_fedex("fedex", grant, child)
                .await
                .unwrap(),
        );
    }
    let (a, b) = (conns[0].clone(), conns[1].clone());
    let _leases = (
        store.lock(&a.id).await.unwrap(),
        store.lock(&b.id).await.unwrap(),
    );
    // `b` moves on first, so the batch's commit of `b` is stale.
    committed(
        store
            .commit(&b, &b, &bundle("b-elsewhere", None))
            .await
            .unwrap(),
    );
    let history = authdeck_core::model::HistoryEntry::new(f.manager.now(), "refresh", "ok", None);
    let item = |conn: &Connection, access: &str| TokenCommit {
        old: conn.clone(),
        next: conn.clone(),
        tokens: bundle(access, None),
        history: Some(history.clone()),
    };
    let outcomes = store
        .commit_many(vec![item(&a, "a-batch"), item(&b, "b-batch")])
        .await;
    assert_eq!(outcomes.len(), 2);
    let a2 = committed(outcomes[0].as_ref().unwrap().clone());
    assert_eq!(a2.secret_generation, a.secret_generation + 1);
    assert!(matches!(outcomes[1], Ok(CommitOutcome::Superseded)));
    store.maintain().await.unwrap();
    let a_now = store.connection(&a.id).await.unwrap();
    assert_eq!(
        store
            .tokens(&a_now)
            .await
            .unwrap()
            .unwrap()
            .access_token
            .expose(),
        "a-batch"
    );
    let b_now = store.connection(&b.id).await.unwrap();
    assert_eq!(
        store
            .tokens(&b_now)
            .await
            .unwrap()
            .unwrap()
            .access_token
            .expose(),
        "b-elsewhere"
    );
    let refreshes = |conn: &Connection| {
        let store = store.clone();
        let id = conn.id.clone();
        async move {
            store
                .history(Some(&id), 50)
                .await
                .unwrap()
                .into_iter()
                .filter(|h| h.event == "refresh")
                .count()
        }
    };
    assert_eq!(refreshes(&a).await, 1, "the committed one's history");
    assert_eq!(refreshes(&b).await, 0, "none for the superseded one");
}

#[tokio::test]
async fn settling_a_connection_nothing_interrupted_is_a_plain_read() {
    let f = Fixture::new().await;
    let (store, conn, _lease) = connected(&f).await;
    for probe in [OrphanProbe::Always, OrphanProbe::MarkedOnly] {
        let settled = store.settle(&conn.id, probe).await.unwrap();
        assert!(!settled.completed);
        assert_eq!(settled.connection.secret_generation, conn.secret_generation);
    }
    let err = store
        .settle("no-such-connection", OrphanProbe::Always)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound);
}

#[tokio::test]
async fn a_removed_connection_takes_its_tokens_and_child_secret() {
    let f = Fixture::new().await;
    let (store, conn, _lease) = connected(&f).await;
    store
        .set_child_secret(&conn.id, &ChildSecret::new("child"))
        .await
        .unwrap();
    assert_eq!(
        store
            .child_secret(&conn.id)
            .await
            .unwrap()
            .unwrap()
            .expose(),
        "child"
    );
    store.remove_connection(&conn).await.unwrap();
    let err = store.connection(&conn.id).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound);
    assert!(store.tokens(&conn).await.unwrap().is_none());
    assert!(store.child_secret(&conn.id).await.unwrap().is_none());
    assert!(
        !store.history(Some(&conn.id), 10).await.unwrap().is_empty(),
        "the history stays"
    );
}
