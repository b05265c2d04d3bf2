//! FedEx and the IoT platform through the manager, against the emulator over HTTP.

mod common;

use authdeck_core::manager::LogoutOutcome;
use authdeck_core::model::{ConnectionState, ExpirySource, FedexGrant, Provider};
use authdeck_core::{ChildSecret, ClientSecret, ErrorCode, Password};
use authdeck_emulator::{Fault, FaultKind, FaultScope};
use common::Fixture;

#[tokio::test]
async fn fedex_each_grant_connects_and_refreshes() {
    let f = Fixture::new().await;
    f.add_demo_clients().await;
    for grant in [
        FedexGrant::ClientCredentials,
        FedexGrant::CspCredentials,
        FedexGrant::ClientPcCredentials,
    ] {
        let child = grant.needs_child_credentials().then(|| {
            (
                "demo-child-key".to_string(),
                ChildSecret::new("demo-child-secret"),
            )
        });
        let conn = f
            .manager
            .connect_fedex("fedex", grant, child)
            .await
            .unwrap();
        assert_eq!(conn.provider, Provider::Fedex);
        assert_eq!(conn.grant, Some(grant));
        assert_eq!(conn.scope.as_deref(), Some("CXS"));
        assert!(conn.refresh_expires.is_none(), "FedEx has no refresh token");
        let left = conn.access_expires.unwrap().seconds_left(f.manager.now());
        assert!((3590..=3600).contains(&left), "one-hour token, got {left}s");
        assert!(conn.jwt.is_some(), "FedEx tokens are JWTs");
        let first = f.current_tokens(&conn.id).await.unwrap();
        let again = f.manager.refresh(&conn.id).await.unwrap();
        let second = f.current_tokens(&again.id).await.unwrap();
        assert_eq!(second["generation"], again.secret_generation);
        assert_ne!(first["access_token"], second["access_token"]);
        if grant.needs_child_credentials() {
            assert!(f.store.child_secret(&conn.id).await.unwrap().is_some());
            if common::is_local() {
                // Where the local backend keeps it (the team store: its connection row,
                // crates/team/tests/backend.rs).
                assert!(f.keyring_has(&format!("connection/{}/child_secret", conn.id)));
            }
        }
    }
    assert_eq!(f.manager.list().await.unwrap().len(), 3);
}

#[tokio::test]
async fn fedex_rejected_credentials_are_invalid_client() {
    let f = Fixture::new().await;
    let mut bad = authdeck_core::manager::NewClient::new("bad", Provider::Fedex, "demo-fedex-key");
    bad.client_secret = Some(ClientSecret::new("wrong-secret"));
    bad.token_url = Some(f.emulator.fedex_token_url());
    f.manager.add_client(bad).await.unwrap();
    let err = f
        .manager
        .connect_fedex("bad", FedexGrant::ClientCredentials, None)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidClient);
    assert!(err
        .detail
        .unwrap_or_default()
        .contains("NOT.AUTHORIZED.ERROR"));
    assert!(f.manager.list().await.unwrap().is_empty());
    // Wrong child secret, too.
    f.add_demo_clients().await;
    let err = f
        .manager
        .connect_fedex(
            "fedex",
            FedexGrant::CspCredentials,
            Some(("demo-child-key".into(), ChildSecret::new("nope"))),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidClient);
}

#[tokio::test]
async fn iot_login_refresh_logout_revokes_the_session() {
    let f = Fixture::new().await;
    f.add_demo_clients().await;
    let conn = f
        .manager
        .connect_iot("iot", "operator", Password::new("operator-pass"))
        .await
        .unwrap();
    assert_eq!(conn.provider, Provider::Iot);
    assert_eq!(conn.label, "operator");
    assert_eq!(conn.user_id.as_deref(), Some("U974814773204"));
    assert!(conn.userinfo.is_some());
    let jwt = conn.jwt.clone().expect("JWT decoded");
    assert_eq!(jwt.claims["ctx"]["owner"], "U974814773204");
    assert_eq!(
        conn.access_expires.unwrap().source,
        ExpirySource::EpochMillis
    );
    let exp = jwt.claims["exp"].as_i64().unwrap();
    assert!((conn.access_expires.unwrap().at.timestamp() - exp).abs() <= 1);

    let refreshed = f.manager.refresh("operator").await.unwrap();
    assert_eq!(refreshed.secret_generation, conn.secret_generation + 1);

    assert_eq!(
        f.manager.logout("operator").await.unwrap(),
        LogoutOutcome::Revoked
    );
    let sessions = f.emulator.control().iot_sessions();
    assert!(
        !sessions.is_empty() && sessions.iter().all(|s| s.revoked),
        "{sessions:?}"
    );
    assert!(f.manager.list().await.unwrap().is_empty());
    assert!(f.current_tokens(&conn.id).await.is_none());
    if common::is_local() {
        // The keyring entry went with the row (the team store deletes its row, tokens
        // and all: crates/team/tests/backend.rs).
        assert!(f
            .stored_tokens(&conn.id, refreshed.secret_generation)
            .is_none());
    }
}

#[tokio::test]
async fn iot_logout_failure_keeps_secrets_and_shows_logout_pending() {
    let f = Fixture::new().await;
    f.add_demo_clients().await;
    let conn = f
        .manager
        .connect_iot("iot", "operator", Password::new("operator-pass"))
        .await
        .unwrap();
    f.emulator.control().push_fault(Fault::next(
        FaultScope::Iot,
        FaultKind::ServerError { status: 503 },
        1,
    ));
    let err = f.manager.logout(&conn.id).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::ProviderUnavailable);
    let pending = f.manager.connection(&conn.id).await.unwrap();
    assert_eq!(pending.state, ConnectionState::LogoutPending);
    assert!(
        f.current_tokens(&conn.id).await.is_some(),
        "secrets kept until the server confirms"
    );
    // Retry succeeds once the server answers.
    assert_eq!(
        f.manager.logout(&conn.id).await.unwrap(),
        LogoutOutcome::Revoked
    );
    assert!(f.current_tokens(&conn.id).await.is_none());
    if common::is_local() {
        // The keyring entry itself (the team store's row: crates/team/tests/backend.rs).
        assert!(f.stored_tokens(&conn.id, conn.secret_generation).is_none());
    }
}

#[tokio::test]
async fn iot_wrong_password_is_invalid_credentials_and_stores_nothing() {
    let f = Fixture::new().await;
    f.add_demo_clients().await;
    let err = f
        .manager
        .connect_iot("iot", "operator", Password::new("wrong"))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidCredentials);
    assert!(f.manager.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn failed_refresh_leaves_tokens_unchanged() {
    let f = Fixture::new().await;
    f.add_demo_clients().await;
    let conn = f
        .manager
        .complete_callback(&f.authorize_flowaccount("fa", "FA-100001").await)
        .await
        .unwrap();
    let before = f.current_tokens(&conn.id).await.unwrap();
    f.emulator.control().push_fault(Fault::next(
        FaultScope::FlowAccount,
        FaultKind::ServerError { status: 500 },
        1,
    ));
    let err = f.manager.refresh(&conn.id).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::ProviderUnavailable);
    let after = f.manager.connection(&conn.id).await.unwrap();
    assert_eq!(after.secret_generation, conn.secret_generation);
    assert_eq!(
        after.state,
        ConnectionState::Active,
        "a temporary failure does not demand re-authorization"
    );
    assert_eq!(
        after.last_error.unwrap().code,
        ErrorCode::ProviderUnavailable
    );
    assert_eq!(f.current_tokens(&conn.id).await.unwrap(), before);
    // And the next refresh works (the emulator did not rotate on the 500).
    let ok = f.manager.refresh(&conn.id).await.unwrap();
    assert!(ok.last_error.is_none());
}
