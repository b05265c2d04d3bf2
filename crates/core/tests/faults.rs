//! Each provider fault, one test each, through the manager: a clear error code, the
//! tokens untouched, the connection still active (every one of these is temporary),
//! and the next attempt succeeding once the provider recovers.

mod common;

use std::time::Duration;

use authdeck_core::manager::ManagerOptions;
use authdeck_core::model::ConnectionState;
use authdeck_core::providers::http::HttpSettings;
use authdeck_core::ErrorCode;
use authdeck_emulator::{Fault, FaultKind, FaultScope};
use common::Fixture;

async fn fault_case(
    arm: impl FnOnce(&authdeck_emulator::Control),
    disarm: impl FnOnce(&authdeck_emulator::Control),
    expected: ErrorCode,
) -> authdeck_core::Error {
    let http = HttpSettings {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(1),
    };
    let f = Fixture::with_options(ManagerOptions {
        http,
        ..ManagerOptions::default()
    })
    .await;
    f.add_demo_clients().await;
    let conn = f
        .manager
        .complete_callback(&f.authorize_flowaccount("fa", "FA-100001").await)
        .await
        .unwrap();
    let tokens_before = f.current_tokens(&conn.id).await.unwrap();
    let control = f.emulator.control();

    arm(&control);
    let err = f.manager.refresh(&conn.id).await.unwrap_err();
    disarm(&control);
    assert_eq!(err.code, expected, "{err:?}");
    assert!(err.is_temporary(), "{err:?}");
    let after = f.manager.connection(&conn.id).await.unwrap();
    assert_eq!(
        after.secret_generation, conn.secret_generation,
        "tokens unchanged"
    );
    assert_eq!(f.current_tokens(&conn.id).await.unwrap(), tokens_before);
    assert_eq!(after.state, ConnectionState::Active);
    assert_eq!(after.last_error.as_ref().map(|e| e.code), Some(expected));
    assert_eq!(control.stats().reuse_detected, 0);

    // Retried later: the provider is back, the same refresh token still works.
    let ok = f.manager.refresh(&conn.id).await.unwrap();
    assert_eq!(ok.secret_generation, conn.secret_generation + 1);
    assert!(ok.last_error.is_none());
    err
}

fn once(kind: FaultKind) -> impl FnOnce(&authdeck_emulator::Control) {
    move |c| c.push_fault(Fault::next(FaultScope::FlowAccount, kind, 1))
}

fn nothing(_: &authdeck_emulator::Control) {}

#[tokio::test]
async fn timeout() {
    let e = fault_case(
        |c| c.set_latency(Duration::from_secs(3)),
        |c| c.set_latency(Duration::ZERO),
        ErrorCode::ProviderUnavailable,
    )
    .await;
    assert!(e.message.to_lowercase().contains("time"), "{}", e.message);
}

#[tokio::test]
async fn hang() {
    fault_case(
        once(FaultKind::Hang),
        nothing,
        ErrorCode::ProviderUnavailable,
    )
    .await;
}

#[tokio::test]
async fn internal_server_error_500() {
    fault_case(
        once(FaultKind::ServerError { status: 500 }),
        nothing,
        ErrorCode::ProviderUnavailable,
    )
    .await;
}

#[tokio::test]
async fn service_unavailable_503() {
    fault_case(
        once(FaultKind::ServerError { status: 503 }),
        nothing,
        ErrorCode::ProviderUnavailable,
    )
    .await;
}

#[tokio::test]
async fn rate_limited_429_with_retry_after() {
    let e = fault_case(
        once(FaultKind::RateLimited {
            retry_after_secs: 7,
        }),
        nothing,
        ErrorCode::RateLimited,
    )
    .await;
    assert_eq!(e.retry_after, Some(Duration::from_secs(7)));
}

#[tokio::test]
async fn malformed_json() {
    fault_case(
        once(FaultKind::MalformedJson),
        nothing,
        ErrorCode::InvalidResponse,
    )
    .await;
}

#[tokio::test]
async fn html_error_page() {
    let e = fault_case(
        once(FaultKind::HtmlBody { status: 502 }),
        nothing,
        ErrorCode::ProviderUnavailable,
    )
    .await;
    assert!(e.detail.unwrap_or_default().contains("502"));
}

#[tokio::test]
async fn connection_reset() {
    fault_case(
        once(FaultKind::Reset),
        nothing,
        ErrorCode::ProviderUnavailable,
    )
    .await;
}

#[tokio::test]
async fn ok_without_access_token() {
    fault_case(
        once(FaultKind::MissingAccessToken),
        nothing,
        ErrorCode::InvalidResponse,
    )
    .await;
}
