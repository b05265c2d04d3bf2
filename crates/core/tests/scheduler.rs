//! The background scheduler against the emulator, with a manual clock: refresh before
//! expiry, back off after temporary failures, stop and notify after permanent ones.

mod common;

use std::sync::Arc;
use std::time::Duration;

use authdeck_core::clock::ManualClock;
use authdeck_core::model::{ConnectionState, Expiry, ExpirySource, FedexGrant};
use authdeck_core::providers::{flowaccount, HttpClient};
use authdeck_core::scheduler::{Notice, Scheduler, SchedulerConfig};
use authdeck_core::{ClientSecret, ErrorCode, RefreshToken};
use authdeck_emulator::{Fault, FaultKind, FaultScope};
use common::Fixture;

fn minutes(m: i64) -> chrono::Duration {
    chrono::Duration::minutes(m)
}

async fn setup() -> (Fixture, ManualClock, String) {
    let clock = ManualClock::new(chrono::Utc::now());
    let f = Fixture::with_clock(Arc::new(clock.clone())).await;
    f.add_demo_clients().await;
    let conn = f
        .manager
        .complete_callback(&f.authorize_flowaccount("fa", "FA-100001").await)
        .await
        .unwrap();
    (f, clock, conn.id)
}

fn refreshes(f: &Fixture) -> u64 {
    f.emulator.control().stats().refresh_ok
}

#[tokio::test]
async fn refreshes_before_expiry_and_not_earlier() {
    let (f, clock, id) = setup().await;
    let mut s = Scheduler::new(f.manager.clone(), SchedulerConfig::default());
    let (notices, next) = s.run_once().await;
    assert!(notices.is_empty());
    assert_eq!(refreshes(&f), 0, "a fresh one-hour token is left alone");
    assert!(next > f.manager.now());

    clock.advance(minutes(50));
    s.run_once().await;
    assert_eq!(refreshes(&f), 0, "still 10 minutes to go");

    clock.advance(minutes(6)); // 4 minutes before expiry: inside the 5-minute margin
    s.run_once().await;
    assert_eq!(refreshes(&f), 1);
    let conn = f.manager.connection(&id).await.unwrap();
    assert!(conn.access_expires.unwrap().at > f.manager.now() + minutes(55));
    s.run_once().await;
    assert_eq!(refreshes(&f), 1, "refreshed once, not again");
}

#[tokio::test]
async fn temporary_failures_back_off_and_retry() {
    let (f, clock, id) = setup().await;
    let config = SchedulerConfig::default();
    let mut s = Scheduler::new(f.manager.clone(), config.clone());
    let before = f.manager.connection(&id).await.unwrap();
    f.emulator.control().push_fault(Fault::next(
        FaultScope::FlowAccount,
        FaultKind::ServerError { status: 503 },
        1,
    ));
    clock.advance(minutes(57));
    let (notices, next) = s.run_once().await;
    assert!(notices.is_empty(), "temporary failures are not notified");
    let failed = f.manager.connection(&id).await.unwrap();
    assert_eq!(
        failed.last_error.as_ref().unwrap().code,
        ErrorCode::ProviderUnavailable
    );
    assert_eq!(
        failed.secret_generation, before.secret_generation,
        "tokens unchanged"
    );
    assert!(next <= f.manager.now() + chrono::Duration::seconds(30));

    let requests = f.emulator.control().stats().requests;
    clock.advance(chrono::Duration::seconds(10));
    s.run_once().await;
    assert_eq!(
        f.emulator.control().stats().requests,
        requests,
        "no retry before the backoff"
    );

    clock.advance(chrono::Duration::seconds(25));
    s.run_once().await;
    assert_eq!(refreshes(&f), 1, "retried after the backoff");
    assert!(f
        .manager
        .connection(&id)
        .await
        .unwrap()
        .last_error
        .is_none());
}

#[tokio::test]
async fn rate_limits_wait_for_retry_after() {
    let (f, clock, _id) = setup().await;
    let mut s = Scheduler::new(f.manager.clone(), SchedulerConfig::default());
    f.emulator.control().push_fault(Fault::next(
        FaultScope::FlowAccount,
        FaultKind::RateLimited {
            retry_after_secs: 120,
        },
        1,
    ));
    clock.advance(minutes(57));
    s.run_once().await;
    // Retry-After (120 s) wins over the 30 s backoff.
    clock.advance(chrono::Duration::seconds(60));
    s.run_once().await;
    assert_eq!(refreshes(&f), 0, "no retry before Retry-After");
    clock.advance(chrono::Duration::seconds(61));
    s.run_once().await;
    assert_eq!(refreshes(&f), 1);
}

#[tokio::test]
async fn permanent_failures_stop_retrying_and_notify_once() {
    let (f, clock, id) = setup().await;
    let mut s = Scheduler::new(f.manager.clone(), SchedulerConfig::default());
    // Someone replays a rotated-out token: the provider revokes the grant.
    let old = f.current_tokens(&id).await.unwrap();
    assert_eq!(old["generation"], 1);
    f.manager.refresh(&id).await.unwrap();
    let http = HttpClient::new(Default::default()).unwrap();
    let _ = flowaccount::refresh(
        &http,
        &f.emulator.flowaccount_token_url().parse().unwrap(),
        "demo-flowaccount",
        &ClientSecret::new("demo-flowaccount-secret"),
        &RefreshToken::new(old["refresh_token"].as_str().unwrap()),
        f.manager.now(),
    )
    .await;
    clock.advance(minutes(57));
    let (notices, _) = s.run_once().await;
    assert!(
        matches!(&notices[..], [Notice::RefreshFailed { error, .. }] if error.code == ErrorCode::ReauthorizationRequired),
        "{notices:?}"
    );
    assert_eq!(
        f.manager.connection(&id).await.unwrap().state,
        ConnectionState::ReauthorizationRequired
    );
    let requests = f.emulator.control().stats().requests;
    clock.advance(minutes(60));
    let (notices, _) = s.run_once().await;
    assert_eq!(
        f.emulator.control().stats().requests,
        requests,
        "no more attempts"
    );
    assert!(
        notices
            .iter()
            .all(|n| !matches!(n, Notice::RefreshFailed { .. })),
        "notified once"
    );
}

#[tokio::test]
async fn warns_an_hour_before_a_stuck_connection_lapses() {
    let (f, clock, id) = setup().await;
    let config = SchedulerConfig {
        keep_alive: Duration::from_secs(48 * 3600),
        ..SchedulerConfig::default()
    };
    let mut s = Scheduler::new(f.manager.clone(), config);
    // The provider is down for good; the refresh window (1 day) runs out.
    f.emulator
        .control()
        .push_fault(Fault::always(FaultKind::ServerError { status: 503 }));
    clock.advance(minutes(57));
    let (notices, _) = s.run_once().await;
    assert!(notices.is_empty());
    clock.advance(chrono::Duration::hours(22) + minutes(10)); // ~50 minutes before the estimated lapse
    let (notices, _) = s.run_once().await;
    assert!(
        notices
            .iter()
            .any(|n| matches!(n, Notice::Lapsing { connection, .. } if connection.id == id)),
        "{notices:?}"
    );
    let (notices, _) = s.run_once().await;
    assert!(
        !notices.iter().any(|n| matches!(n, Notice::Lapsing { .. })),
        "warned once"
    );
}

#[tokio::test]
async fn fedex_only_when_kept_fresh_and_flowaccount_kept_alive() {
    let (f, _clock, fa_id) = setup().await;
    let s = Scheduler::new(f.manager.clone(), SchedulerConfig::default());
    let fedex = f
        .manager
        .connect_fedex("fedex", FedexGrant::ClientCredentials, None)
        .await
        .unwrap();
    assert_eq!(
        s.due_at(&fedex),
        None,
        "FedEx tokens are re-requested only when asked to"
    );
    let kept = f.manager.set_keep_fresh(&fedex.id, true).await.unwrap();
    let due = s.due_at(&kept).unwrap();
    let expiry = kept.access_expires.unwrap().at;
    assert!(
        due <= expiry - minutes(5) && due > expiry - minutes(7),
        "{due} vs {expiry}"
    );

    // A FlowAccount token that would live for days is still refreshed within 20 hours.
    let mut fa = f.manager.connection(&fa_id).await.unwrap();
    fa.access_expires = Some(Expiry::new(
        f.manager.now() + chrono::Duration::days(3),
        ExpirySource::RelativeSeconds,
    ));
    let due = s.due_at(&fa).unwrap();
    assert!(due <= fa.created_at + chrono::Duration::hours(20), "{due}");
    assert!(due > fa.created_at + chrono::Duration::hours(19));
}

#[tokio::test]
async fn connections_falling_due_together_are_refreshed_as_one_batch() {
    let (f, clock, first) = setup().await; // due 55 minutes from now
    clock.advance(chrono::Duration::seconds(10));
    let second = f
        .manager
        .complete_callback(&f.authorize_flowaccount("fa", "FA-100002").await)
        .await
        .unwrap(); // due 10 s after the first
    let config = SchedulerConfig {
        jitter: Duration::ZERO,
        ..SchedulerConfig::default()
    };
    let mut s = Scheduler::new(f.manager.clone(), config);

    clock.advance(minutes(55) - chrono::Duration::seconds(11));
    s.run_once().await;
    assert_eq!(
        refreshes(&f),
        0,
        "within the window of each other, but neither is due"
    );

    clock.advance(chrono::Duration::seconds(1)); // the first is due; the second in 10 s
    s.run_once().await;
    assert_eq!(refreshes(&f), 2, "the second goes along with the first");
    let a = f.manager.connection(&first).await.unwrap();
    let b = f.manager.connection(&second.id).await.unwrap();
    assert_eq!(a.secret_generation, 2);
    assert_eq!(b.secret_generation, second.secret_generation + 1);
    // Both committed, each with its own new tokens (through the seam, any backend).
    let (ta, tb) = (
        f.current_tokens(&first).await.unwrap(),
        f.current_tokens(&second.id).await.unwrap(),
    );
    assert_eq!(ta["generation"], a.secret_generation);
    assert_eq!(tb["generation"], b.secret_generation);
    assert_ne!(ta["access_token"], tb["access_token"]);
    if common::is_local() {
        // The local backend's batch: one keyring entry (token set) for both. The team
        // store's is one transaction, whose rows crates/team/tests/backend.rs checks
        // (commit_many); `token_set` is the local backend's internal column.
        assert!(a.token_set.is_some(), "committed as a batch");
        assert_eq!(a.token_set, b.token_set, "one token set for both");
    }
    let (token, _) = f
        .manager
        .access_token(&second.id, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(!token.expose().is_empty());
}

#[tokio::test]
async fn a_pass_reports_its_refreshes_and_the_next_one_due() {
    let (f, clock, id) = setup().await;
    let mut s = Scheduler::new(f.manager.clone(), SchedulerConfig::default());
    let pass = s.pass().await;
    assert!(pass.refreshes.is_empty(), "{pass:?}");
    let (conn, due) = pass.next_due.clone().expect("the connection is scheduled");
    assert_eq!(conn.id, id);
    assert_eq!(Some(due), s.due_at(&conn));

    // Due, and the provider fails once: the failure and its retry are reported.
    clock.advance(minutes(57));
    f.emulator.control().push_fault(Fault::next(
        FaultScope::FlowAccount,
        FaultKind::ServerError { status: 503 },
        1,
    ));
    let pass = s.pass().await;
    let [failed] = &pass.refreshes[..] else {
        panic!("one refresh: {pass:?}")
    };
    assert_eq!(failed.connection.id, id);
    assert_eq!(
        failed.result.as_ref().unwrap_err().code,
        ErrorCode::ProviderUnavailable
    );
    let retry = failed.retry_at.expect("a temporary failure is retried");
    assert_eq!(
        pass.next_due.as_ref().map(|(c, at)| (c.id.as_str(), *at)),
        Some((id.as_str(), retry))
    );

    clock.advance(chrono::Duration::seconds(31));
    let pass = s.pass().await;
    let [ok] = &pass.refreshes[..] else {
        panic!("one refresh: {pass:?}")
    };
    let fresh = ok.result.as_ref().expect("refreshed");
    assert!(ok.retry_at.is_none());
    let (_, next) = pass.next_due.expect("scheduled again");
    assert_eq!(Some(next), s.due_at(fresh));
    assert!(
        next > f.manager.now() + minutes(50),
        "an hour's token: {next}"
    );
}
