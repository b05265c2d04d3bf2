//! Bad callbacks are rejected, change nothing, and leave a line in the history.

mod common;

use std::sync::Arc;

use authdeck_core::clock::ManualClock;
use authdeck_core::ErrorCode;
use common::Fixture;

async fn assert_nothing_connected(f: &Fixture) {
    assert!(f.manager.list().await.unwrap().is_empty());
}

async fn last_history(f: &Fixture) -> (String, String) {
    let h = f.manager.history(None, 1).await.unwrap();
    let e = h.first().expect("a history entry");
    (e.event.clone(), e.outcome.clone())
}

#[tokio::test]
async fn forged_state_is_rejected() {
    let f = Fixture::new().await;
    f.add_demo_clients().await;
    let err = f
        .manager
        .complete_callback(
            "com.authdeck.desktop:/oauth/callback?code=forged-code&state=forged-state",
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidCallback);
    assert!(err.message.contains("unknown state"), "{}", err.message);
    assert_nothing_connected(&f).await;
    assert_eq!(
        last_history(&f).await,
        ("callback_rejected".into(), "invalid_callback".into())
    );
}

#[tokio::test]
async fn replayed_callback_is_rejected() {
    let f = Fixture::new().await;
    f.add_demo_clients().await;
    let redirect = f.authorize_flowaccount("fa", "FA-100001").await;
    let conn = f.manager.complete_callback(&redirect).await.unwrap();
    let err = f.manager.complete_callback(&redirect).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidCallback);
    assert!(err.message.contains("already used"), "{}", err.message);
    assert_eq!(
        last_history(&f).await,
        ("callback_rejected".into(), "invalid_callback".into())
    );
    let after = f.manager.connection(&conn.id).await.unwrap();
    assert_eq!(
        after.secret_generation, conn.secret_generation,
        "a replay changes nothing"
    );
}

#[tokio::test]
async fn expired_pending_authorization_is_rejected() {
    let clock = ManualClock::new(chrono::Utc::now());
    let f = Fixture::with_clock(Arc::new(clock.clone())).await;
    f.add_demo_clients().await;
    let redirect = f.authorize_flowaccount("fa", "FA-100001").await;
    clock.advance(chrono::Duration::minutes(11));
    let err = f.manager.complete_callback(&redirect).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidCallback);
    assert!(err.message.contains("expired"), "{}", err.message);
    assert_nothing_connected(&f).await;
    assert_eq!(
        last_history(&f).await,
        ("callback_rejected".into(), "invalid_callback".into())
    );
}

#[tokio::test]
async fn callback_at_another_redirect_uri_is_rejected_and_stays_usable() {
    let f = Fixture::new().await;
    f.add_demo_clients().await;
    let redirect = f.authorize_flowaccount("fa", "FA-100001").await;
    let moved = redirect.replacen("/oauth/callback", "/elsewhere", 1);
    let err = f.manager.complete_callback(&moved).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidCallback);
    assert_nothing_connected(&f).await;
    assert_eq!(
        last_history(&f).await,
        ("callback_rejected".into(), "invalid_callback".into())
    );
    // The genuine redirect still completes: the mismatch consumed nothing.
    f.manager.complete_callback(&redirect).await.unwrap();
}

#[tokio::test]
async fn foreign_scheme_and_oversized_urls_are_rejected() {
    let f = Fixture::new().await;
    f.add_demo_clients().await;
    let redirect = f.authorize_flowaccount("fa", "FA-100001").await;
    let foreign = redirect.replacen("com.authdeck.desktop:", "https://evil.example", 1);
    assert_eq!(
        f.manager
            .complete_callback(&foreign)
            .await
            .unwrap_err()
            .code,
        ErrorCode::InvalidCallback
    );
    let huge = format!("{redirect}&pad={}", "a".repeat(5000));
    assert_eq!(
        f.manager.complete_callback(&huge).await.unwrap_err().code,
        ErrorCode::InvalidCallback
    );
    assert_nothing_connected(&f).await;
    assert_eq!(f.manager.history(None, 10).await.unwrap().len(), 2);
}

#[tokio::test]
async fn denied_authorization_is_a_clear_error() {
    let f = Fixture::new().await;
    f.add_demo_clients().await;
    let pending = f.manager.begin_flowaccount("fa").await.unwrap();
    let redirect = authdeck_emulator::deny(&pending.authorize_url, "demo@example.com", "demo")
        .await
        .unwrap();
    let err = f.manager.complete_callback(&redirect).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::AccessDenied);
    assert_nothing_connected(&f).await;
    // The state was used by that answer: it cannot be replayed.
    assert_eq!(
        f.manager
            .complete_callback(&redirect)
            .await
            .unwrap_err()
            .code,
        ErrorCode::InvalidCallback
    );
}

#[tokio::test]
async fn expired_authorization_code_needs_a_new_authorization() {
    let f = Fixture::new().await;
    f.add_demo_clients().await;
    let redirect = f.authorize_flowaccount("fa", "FA-100001").await;
    f.emulator
        .control()
        .advance_clock(chrono::Duration::minutes(151));
    let err = f.manager.complete_callback(&redirect).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::ReauthorizationRequired);
    assert_nothing_connected(&f).await;
    assert_eq!(
        last_history(&f).await,
        ("connect".into(), "reauthorization_required".into())
    );
}
