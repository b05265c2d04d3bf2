//! The activity view's data: every history event across connections, named by its
//! connection, also after the connection was removed.

mod common;

use authdeck_core::model::{FedexGrant, Provider};
use authdeck_core::{ChildSecret, ErrorCode};
use common::Fixture;

#[tokio::test]
async fn activity_names_every_event_also_of_removed_connections() {
    let f = Fixture::new().await;
    f.add_demo_clients().await;
    let kept = f
        .manager
        .connect_fedex("fedex", FedexGrant::ClientCredentials, None)
        .await
        .unwrap();
    let gone = f
        .manager
        .connect_fedex(
            "fedex",
            FedexGrant::CspCredentials,
            Some((
                "demo-child-key".into(),
                ChildSecret::new("demo-child-secret"),
            )),
        )
        .await
        .unwrap();
    f.manager.refresh(&kept.id).await.unwrap();
    let forged = f
        .manager
        .complete_callback("com.authdeck.desktop:/oauth/callback?code=x&state=forged-state")
        .await
        .unwrap_err();
    assert_eq!(forged.code, ErrorCode::InvalidCallback);
    f.manager.logout(&gone.id).await.unwrap();
    assert!(f.manager.connection(&gone.id).await.is_err(), "removed");

    let all = f.manager.activity(100).await.unwrap();
    let of = |id: &str| {
        all.iter()
            .filter(|e| e.connection_id.as_deref() == Some(id))
            .collect::<Vec<_>>()
    };
    // The removed connection: its connect and its disconnect, by its name, marked removed.
    let removed = of(&gone.id);
    let events: Vec<&str> = removed.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(events, ["disconnect", "connect"], "{all:#?}");
    for e in &removed {
        assert_eq!(e.connection_label.as_deref(), Some(gone.label.as_str()));
        assert_eq!(e.provider, Some(Provider::Fedex));
        assert!(e.removed, "{e:?}");
    }
    // The kept one: connect and refresh, not removed.
    let kept_events = of(&kept.id);
    let events: Vec<&str> = kept_events.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(events, ["refresh", "connect"]);
    assert!(kept_events
        .iter()
        .all(|e| !e.removed && e.connection_label.as_deref() == Some(kept.label.as_str())));
    // The rejected redirect: no connection, with its error code.
    let rejected: Vec<_> = all
        .iter()
        .filter(|e| e.event == "callback_rejected")
        .collect();
    assert_eq!(rejected.len(), 1, "{all:#?}");
    assert!(rejected[0].connection_id.is_none() && !rejected[0].removed);
    assert_eq!(rejected[0].outcome, "invalid_callback");
    // Newest first.
    assert!(all.windows(2).all(|w| w[0].at >= w[1].at));
    assert_eq!(all.len(), 5, "{all:#?}");
}
