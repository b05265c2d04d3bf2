//! A burst of forged redirects (any local program can fire the URL scheme or call the
//! single-instance D-Bus method) makes one history row with a count per minute and
//! kind of rejection, not one row per link.

mod common;

use std::sync::Arc;

use authdeck_core::clock::ManualClock;
use authdeck_core::ErrorCode;
use chrono::{TimeZone, Utc};
use common::Fixture;

fn forged(i: usize) -> String {
    format!("com.authdeck.desktop:/oauth/callback?code=forged-{i}&state=forged-state-{i}")
}

#[tokio::test]
async fn a_burst_of_forged_redirects_is_one_row_per_minute_and_kind() {
    // 12:00:05: the burst and the next minute both start well inside a minute.
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 5).unwrap());
    let f = Fixture::with_clock(Arc::new(clock.clone())).await;
    f.add_demo_clients().await;

    for i in 0..100 {
        let err = f.manager.complete_callback(&forged(i)).await.unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidCallback);
        clock.advance(chrono::Duration::milliseconds(500)); // 50 s in all
    }
    let history = f.manager.history(None, 1000).await.unwrap();
    assert_eq!(history.len(), 1, "{history:?}");
    let row = &history[0];
    assert_eq!(
        (row.event.as_str(), row.outcome.as_str()),
        ("callback_rejected", "invalid_callback")
    );
    assert_eq!(row.count, 100);
    assert_eq!(
        row.at,
        Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 5).unwrap(),
        "the row is dated by the first of them"
    );
    assert!(row.detail.as_deref().unwrap().contains("unknown state"));

    // Another kind of rejection in the same minute: a row of its own.
    for url in [
        "https://evil.example/oauth/callback?code=x&state=y",
        "ftp://other.example/?code=x&state=y",
    ] {
        // Different schemes and hosts are the same kind (what the sender picks is masked).
        f.manager.complete_callback(url).await.unwrap_err();
    }
    let history = f.manager.history(None, 1000).await.unwrap();
    assert_eq!(history.len(), 2, "{history:?}");
    assert_eq!(history[0].count, 2);
    assert!(history[0]
        .detail
        .as_deref()
        .unwrap()
        .contains("Not an Authdeck redirect"));
    assert_eq!(history[1].count, 100);

    // The next minute: new rows.
    clock.set(Utc.with_ymd_and_hms(2026, 12, 1, 12, 1, 0).unwrap());
    for i in 0..3 {
        f.manager
            .complete_callback(&forged(1000 + i))
            .await
            .unwrap_err();
    }
    let history = f.manager.history(None, 1000).await.unwrap();
    assert_eq!(history.len(), 3, "{history:?}");
    assert_eq!(history[0].count, 3);
    assert_eq!(
        history[0].at,
        Utc.with_ymd_and_hms(2026, 12, 1, 12, 1, 0).unwrap()
    );
    assert_eq!(
        history.iter().map(|h| h.count).sum::<u32>(),
        105,
        "every rejection is counted"
    );

    // Other history is never coalesced: two failed connects are two rows.
    for _ in 0..2 {
        f.manager
            .connect_iot("iot", "operator", authdeck_core::Password::new("wrong"))
            .await
            .unwrap_err();
    }
    let history = f.manager.history(None, 1000).await.unwrap();
    assert_eq!(history.len(), 5, "{history:?}");
    assert!(history[..2]
        .iter()
        .all(|h| h.event == "connect" && h.count == 1));

    // Nothing was connected by any of it.
    assert!(f.manager.list().await.unwrap().is_empty());
}

/// A rejection that names a real pending authorization (replayed, wrong address) is
/// counted per client: it does not fold into the unknown-state row.
#[tokio::test]
async fn rejections_of_a_started_authorization_are_their_own_kind() {
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 5).unwrap());
    let f = Fixture::with_clock(Arc::new(clock.clone())).await;
    f.add_demo_clients().await;
    let redirect = f.authorize_flowaccount("fa", "FA-100001").await;
    f.manager.complete_callback(&redirect).await.unwrap();
    for _ in 0..5 {
        let err = f.manager.complete_callback(&redirect).await.unwrap_err();
        assert!(err.message.contains("already used"), "{}", err.message);
    }
    f.manager.complete_callback(&forged(1)).await.unwrap_err();
    let rejected: Vec<_> = f
        .manager
        .history(None, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|h| h.event == "callback_rejected")
        .collect();
    assert_eq!(rejected.len(), 2, "{rejected:?}");
    assert_eq!(rejected[0].count, 1);
    assert_eq!(rejected[1].count, 5);
    assert!(rejected[1]
        .detail
        .as_deref()
        .unwrap()
        .contains("already used"));
}
