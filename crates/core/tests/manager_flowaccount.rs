//! FlowAccount through the manager: authorize → callback → refresh (rotation) → token →
//! disconnect, against the emulator over HTTP, secrets in the real keyring.

mod common;

use std::time::Duration;

use authdeck_core::model::{ConnectionState, ConnectionStatus, ExpirySource, Provider};
use authdeck_core::providers::{flowaccount, HttpClient};
use authdeck_core::{ClientSecret, ErrorCode, RefreshToken};
use authdeck_emulator::TokenStatus;
use common::Fixture;

#[tokio::test]
async fn whole_life_cycle() {
    let f = Fixture::new().await;
    f.add_demo_clients().await;

    let redirect = f.authorize_flowaccount("fa", "FA-100001").await;
    assert!(
        redirect.starts_with("com.authdeck.desktop:/oauth/callback?"),
        "{redirect}"
    );
    let conn = f.manager.complete_callback(&redirect).await.unwrap();
    assert_eq!(conn.provider, Provider::FlowAccount);
    assert_eq!(conn.support_code.as_deref(), Some("FA-100001"));
    assert_eq!(conn.label, "FA-100001");
    assert_eq!(
        conn.scope.as_deref(),
        Some("flowaccount-api offline_access"),
        "granted scope from the redirect"
    );
    let access = conn.access_expires.expect("access expiry");
    assert_eq!(access.source, ExpirySource::RelativeSeconds);
    let refresh = conn.refresh_expires.expect("refresh expiry");
    assert_eq!(refresh.source, ExpirySource::Estimated);
    let day = (refresh.at - f.manager.now()).num_seconds();
    assert!(
        (86_390..=86_400).contains(&day),
        "refresh window ≈ 1 day, got {day}s"
    );
    assert_eq!(conn.status_at(f.manager.now()), ConnectionStatus::Active);
    assert_eq!(f.manager.list().await.unwrap().len(), 1);

    // Two refreshes in a row: each rotates, and the stored refresh token is the newest.
    let first = f.current_tokens(&conn.id).await.unwrap();
    let r1 = f.manager.refresh(&conn.id).await.unwrap();
    let r2 = f.manager.refresh(&conn.id).await.unwrap();
    assert_eq!(r2.secret_generation, conn.secret_generation + 2);
    let newest = f.current_tokens(&r2.id).await.unwrap();
    assert_eq!(newest["generation"], r2.secret_generation);
    let newest_refresh = newest["refresh_token"].as_str().unwrap();
    assert_ne!(newest_refresh, first["refresh_token"].as_str().unwrap());
    let control = f.emulator.control();
    assert_eq!(
        control.flowaccount_refresh_token_status(newest_refresh),
        TokenStatus::Current
    );
    assert_eq!(
        control.flowaccount_refresh_token_status(first["refresh_token"].as_str().unwrap()),
        TokenStatus::Used
    );
    if common::is_local() {
        // The local backend keeps a keyring entry per generation; the team store keeps
        // one token set per row, replaced in place (crates/team/tests/store.rs).
        assert!(
            f.stored_tokens(&conn.id, r1.secret_generation).is_none(),
            "old generations are deleted"
        );
    }
    assert!(r2.last_refresh_at.is_some());

    // token: the cached access token while it is valid for long enough …
    let (token, _) = f
        .manager
        .access_token("FA-100001", Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(token.expose(), newest["access_token"].as_str().unwrap());
    // … and a refreshed one when it would expire within the asked validity.
    let (token2, after) = f
        .manager
        .access_token("FA-100001", Duration::from_secs(7200))
        .await
        .unwrap();
    assert_ne!(token2.expose(), token.expose());
    assert_eq!(after.secret_generation, r2.secret_generation + 1);

    // Disconnect: the row goes, the keyring holds none of its secrets, history stays.
    let outcome = f.manager.logout(&conn.id).await.unwrap();
    assert_eq!(outcome, authdeck_core::manager::LogoutOutcome::Disconnected);
    assert!(f.manager.list().await.unwrap().is_empty());
    assert!(f.current_tokens(&conn.id).await.is_none());
    if common::is_local() {
        // No generation's keyring entry is left (the team store: the row and its token
        // set go together, crates/team/tests/backend.rs).
        for generation in 0..=after.secret_generation + 1 {
            assert!(f.stored_tokens(&conn.id, generation).is_none());
        }
    }
    let history = f.manager.history(Some(&conn.id), 50).await.unwrap();
    let events: Vec<_> = history.iter().map(|h| h.event.as_str()).collect();
    assert_eq!(
        events,
        // The probe after connect learned who the business is (see tests/check.rs).
        [
            "disconnect",
            "refresh",
            "refresh",
            "refresh",
            "probe",
            "connect"
        ]
    );
}

#[tokio::test]
async fn reused_old_refresh_token_revokes_the_chain_and_marks_the_connection() {
    let f = Fixture::new().await;
    f.add_demo_clients().await;
    let conn = f
        .manager
        .complete_callback(&f.authorize_flowaccount("fa", "FA-100002").await)
        .await
        .unwrap();
    let old = f.current_tokens(&conn.id).await.unwrap();
    f.manager.refresh(&conn.id).await.unwrap();

    // Somebody replays the old refresh token (e.g. a stale copy elsewhere).
    let http = HttpClient::new(Default::default()).unwrap();
    let replay = flowaccount::refresh(
        &http,
        &f.emulator.flowaccount_token_url().parse().unwrap(),
        "demo-flowaccount",
        &ClientSecret::new("demo-flowaccount-secret"),
        &RefreshToken::new(old["refresh_token"].as_str().unwrap()),
        f.manager.now(),
    )
    .await
    .unwrap_err();
    assert_eq!(replay.code, ErrorCode::ReauthorizationRequired);

    // The provider revoked the whole family: our newest token is dead too.
    let err = f.manager.refresh(&conn.id).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::ReauthorizationRequired);
    let now_conn = f.manager.connection(&conn.id).await.unwrap();
    assert_eq!(now_conn.state, ConnectionState::ReauthorizationRequired);
    assert_eq!(
        now_conn.status_at(f.manager.now()),
        ConnectionStatus::ReauthorizationRequired
    );
    assert_eq!(
        now_conn.last_error.as_ref().unwrap().code,
        ErrorCode::ReauthorizationRequired
    );
    // Tokens are unchanged by a failed refresh.
    assert_eq!(now_conn.secret_generation, conn.secret_generation + 1);

    // Reconnect in place: same connection id, history kept, active again.
    let again = f
        .manager
        .complete_callback(&f.authorize_flowaccount("fa", "FA-100002").await)
        .await
        .unwrap();
    assert_eq!(again.id, conn.id);
    assert_eq!(again.state, ConnectionState::Active);
    assert!(again.last_error.is_none());
    let events: Vec<_> = f
        .manager
        .history(Some(&conn.id), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.event)
        .collect();
    assert_eq!(
        events,
        [
            "probe",
            "reconnect",
            "refresh",
            "refresh",
            "probe",
            "connect"
        ]
    );
}

#[tokio::test]
async fn concurrent_refreshes_in_one_process_reach_the_provider_once() {
    let f = Fixture::new().await;
    f.add_demo_clients().await;
    let conn = f
        .manager
        .complete_callback(&f.authorize_flowaccount("fa", "FA-100001").await)
        .await
        .unwrap();
    let before = f.emulator.control().stats().flowaccount.refresh_ok;
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let m = f.manager.clone();
            let id = conn.id.clone();
            tokio::spawn(async move { m.refresh(&id).await })
        })
        .collect();
    let mut generations = Vec::new();
    for t in tasks {
        generations.push(t.await.unwrap().unwrap().secret_generation);
    }
    assert!(
        generations.iter().all(|g| *g == conn.secret_generation + 1),
        "{generations:?}"
    );
    assert_eq!(
        f.emulator.control().stats().flowaccount.refresh_ok,
        before + 1
    );
}

#[tokio::test]
async fn pkce_client_round_trip() {
    let f = Fixture::new().await;
    let mut fa = authdeck_core::manager::NewClient::new(
        "fa-pkce",
        Provider::FlowAccount,
        "demo-flowaccount",
    );
    fa.client_secret = Some(ClientSecret::new("demo-flowaccount-secret"));
    fa.authorize_url = Some(f.emulator.flowaccount_authorize_url());
    fa.token_url = Some(f.emulator.flowaccount_token_url());
    fa.pkce = true;
    f.manager.add_client(fa).await.unwrap();
    let pending = f.manager.begin_flowaccount("fa-pkce").await.unwrap();
    assert!(pending.authorize_url.contains("code_challenge_method=S256"));
    let redirect = authdeck_emulator::approve(
        &pending.authorize_url,
        "demo@example.com",
        "demo",
        "FA-100001",
    )
    .await
    .unwrap();
    let conn = f.manager.complete_callback(&redirect).await.unwrap();
    assert_eq!(conn.support_code.as_deref(), Some("FA-100001"));
}
