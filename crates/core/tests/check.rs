//! "Who is this connection": the FlowAccount probe after connect, the check of every
//! provider on demand, and the user's own name, against the emulator over HTTP with the
//! real keyring.

mod common;

use authdeck_core::model::{CheckMethod, ConnectionState, Provider};
use authdeck_core::ErrorCode;
use authdeck_emulator::Fault;
use common::Fixture;

fn fault(spec: &str) -> Fault {
    spec.parse().expect("fault")
}

#[tokio::test]
async fn a_flowaccount_connect_learns_the_company_and_titles_the_row_by_it() {
    let f = Fixture::new().await;
    f.add_demo_clients().await;
    let redirect = f.authorize_flowaccount("fa", "FA-100002").await;
    let conn = f.manager.complete_callback(&redirect).await.unwrap();
    let company = conn.company.clone().expect("probed after connect");
    assert_eq!(company.name.as_deref(), Some("Chiang Mai Crafts"));
    assert_eq!(company.tax_id.as_deref(), Some("0505561001234"));
    assert_eq!(company.branch.as_deref(), Some("สาขา 00001 นิมมานเหมินท์"));
    assert_eq!(company.id.as_deref(), Some("100002"));
    assert_eq!(conn.title(), "Chiang Mai Crafts");
    // supportCode stays what it was.
    assert_eq!(conn.label, "FA-100002");
    assert_eq!(conn.support_code.as_deref(), Some("FA-100002"));
    let check = conn.last_check.clone().expect("recorded");
    assert!(check.ok());
    assert_eq!(check.method, CheckMethod::CompanyInfo);
    // Kept in the store, and found by the company's name.
    let stored = f.manager.connection("Chiang Mai Crafts").await.unwrap();
    assert_eq!(stored.id, conn.id);
    assert_eq!(stored.company, conn.company);
    let history = f.manager.history(Some(&conn.id), 10).await.unwrap();
    assert_eq!(history[0].event, "probe");
    assert_eq!(history[0].outcome, "ok");
    assert!(
        history[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("Chiang Mai Crafts"),
        "{:?}",
        history[0]
    );
    assert_eq!(f.emulator.control().stats().flowaccount.company_info_ok, 1);
}

#[tokio::test]
async fn a_failed_probe_never_breaks_the_connect_and_is_recorded_with_its_error() {
    let f = Fixture::new().await;
    f.add_demo_clients().await;
    f.emulator
        .control()
        .push_fault(fault("flowaccount-api:500"));
    let redirect = f.authorize_flowaccount("fa", "FA-100001").await;
    let conn = f.manager.complete_callback(&redirect).await.unwrap();
    assert_eq!(conn.state, ConnectionState::Active);
    assert_eq!(
        conn.last_error, None,
        "a probe failure is not a connection error"
    );
    assert_eq!(conn.company, None);
    assert_eq!(conn.title(), "FA-100001");
    let check = conn.last_check.clone().expect("failure recorded");
    let error = check.error.expect("with its error");
    assert_eq!(error.code, ErrorCode::ProviderUnavailable);
    assert!(error.message.contains("FlowAccount"), "{}", error.message);
    assert!(check.at <= f.manager.now());
    // The tokens work: refresh and token are untouched by it.
    f.manager.refresh(&conn.id).await.unwrap();

    // A non-JSON answer is a readable error too, and the check says so.
    f.emulator.control().clear_faults();
    f.emulator
        .control()
        .push_fault(fault("flowaccount-api:html:502"));
    let e = f.manager.check(&conn.id).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::ProviderUnavailable);
    f.emulator.control().clear_faults();
    f.emulator
        .control()
        .push_fault(fault("flowaccount-api:malformed-json"));
    let e = f.manager.check(&conn.id).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidResponse);
    let stored = f.manager.connection(&conn.id).await.unwrap();
    assert_eq!(
        stored.last_check.unwrap().error.unwrap().code,
        ErrorCode::InvalidResponse
    );
    assert_eq!(stored.state, ConnectionState::Active);

    // Once it answers, Check fills in the company.
    f.emulator.control().clear_faults();
    let checked = f.manager.check(&conn.id).await.unwrap();
    assert!(checked.last_check.unwrap().ok());
    assert_eq!(
        checked.company.unwrap().name.as_deref(),
        Some("บริษัท สยามเทรดดิ้ง จำกัด")
    );
    let history = f.manager.history(Some(&conn.id), 20).await.unwrap();
    let events: Vec<(&str, &str)> = history
        .iter()
        .map(|h| (h.event.as_str(), h.outcome.as_str()))
        .collect();
    assert_eq!(
        &events[..4],
        &[
            ("check", "ok"),
            ("check", "invalid_response"),
            ("check", "provider_unavailable"),
            ("refresh", "ok"),
        ]
    );
    assert!(
        events.contains(&("probe", "provider_unavailable")),
        "{events:?}"
    );
}

#[tokio::test]
async fn a_check_whose_token_the_provider_refuses_fails_and_keeps_the_company() {
    let f = Fixture::new().await;
    f.add_demo_clients().await;
    let redirect = f.authorize_flowaccount("fa", "FA-100002").await;
    let conn = f.manager.complete_callback(&redirect).await.unwrap();
    // Only the provider's clock moves past the access token's hour: Authdeck still
    // trusts the token, which the provider refuses now.
    f.emulator
        .control()
        .advance_clock(chrono::Duration::minutes(61));
    let again = f.manager.check(&conn.id).await;
    // The check says so; the connection stays usable.
    let e = again.unwrap_err();
    assert_eq!(e.code, ErrorCode::ProviderError);
    assert!(
        e.message.contains("did not accept the access token"),
        "{}",
        e.message
    );
    assert!(e.detail.as_deref().unwrap().contains("HTTP 401"));
    let stored = f.manager.connection(&conn.id).await.unwrap();
    assert_eq!(stored.state, ConnectionState::Active);
    assert_eq!(
        stored.company.unwrap().name.as_deref(),
        Some("Chiang Mai Crafts"),
        "a failed check keeps what the last one learned"
    );
    // After a refresh the provider accepts it again.
    f.manager.refresh(&conn.id).await.unwrap();
    f.manager.check(&conn.id).await.unwrap();
}

#[tokio::test]
async fn fedex_checks_by_a_token_request_and_iot_by_renewing_the_session() {
    let f = Fixture::new().await;
    f.add_demo_clients().await;
    let fedex = f
        .manager
        .connect_fedex(
            "fedex",
            authdeck_core::model::FedexGrant::ClientCredentials,
            None,
        )
        .await
        .unwrap();
    let before = f.emulator.control().stats().fedex.token_requests;
    let checked = f.manager.check(&fedex.id).await.unwrap();
    assert_eq!(
        f.emulator.control().stats().fedex.token_requests,
        before + 1,
        "the check is one token request"
    );
    let record = checked.last_check.unwrap();
    assert_eq!(record.method, CheckMethod::TokenRequest);
    assert!(record.ok());
    assert!(
        checked.secret_generation > fedex.secret_generation,
        "the new token is kept"
    );
    assert_eq!(checked.company, None);

    f.emulator.control().push_fault(fault("fedex:503"));
    let e = f.manager.check(&fedex.id).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::ProviderUnavailable);
    let stored = f.manager.connection(&fedex.id).await.unwrap();
    assert_eq!(
        stored.last_check.unwrap().error.unwrap().code,
        ErrorCode::ProviderUnavailable
    );
    f.emulator.control().clear_faults();
    let history = f.manager.history(Some(&fedex.id), 5).await.unwrap();
    assert_eq!(history[0].event, "check");
    assert!(
        history[0].detail.as_deref().unwrap().contains("quota"),
        "{:?}",
        history[0]
    );

    let iot = f
        .manager
        .connect_iot(
            "iot",
            "operator",
            authdeck_core::Password::new("operator-pass"),
        )
        .await
        .unwrap();
    assert_eq!(iot.company, None, "only FlowAccount is probed");
    assert_eq!(iot.last_check, None);
    let checked = f.manager.check(&iot.id).await.unwrap();
    assert_eq!(checked.last_check.unwrap().method, CheckMethod::Refresh);
    assert_eq!(checked.provider, Provider::Iot);
    assert_eq!(
        f.emulator.control().stats().iot.refresh_ok,
        1,
        "the IoT check renews the session"
    );
}

#[tokio::test]
async fn the_users_label_titles_the_row_until_it_is_removed() {
    let f = Fixture::new().await;
    f.add_demo_clients().await;
    let redirect = f.authorize_flowaccount("fa", "FA-100002").await;
    let conn = f.manager.complete_callback(&redirect).await.unwrap();
    let named = f
        .manager
        .set_label(&conn.id, Some("  Crafts payroll "))
        .await
        .unwrap();
    assert_eq!(named.user_label.as_deref(), Some("Crafts payroll"));
    assert_eq!(named.title(), "Crafts payroll");
    assert_eq!(named.label, "FA-100002");
    assert_eq!(
        f.manager.connection("Crafts payroll").await.unwrap().id,
        conn.id
    );
    // A reconnect of the same business keeps it.
    let redirect = f.authorize_flowaccount("fa", "FA-100002").await;
    let again = f.manager.complete_callback(&redirect).await.unwrap();
    assert_eq!(again.id, conn.id);
    assert_eq!(again.title(), "Crafts payroll");

    for bad in ["x".repeat(65), "tab\there".into(), "rtl\u{202e}name".into()] {
        let e = f.manager.set_label(&conn.id, Some(&bad)).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidInput, "{bad:?}");
    }
    assert_eq!(
        f.manager.connection(&conn.id).await.unwrap().title(),
        "Crafts payroll",
        "a refused name changes nothing"
    );
    let cleared = f.manager.set_label(&conn.id, Some("  ")).await.unwrap();
    assert_eq!(cleared.user_label, None);
    assert_eq!(cleared.title(), "Chiang Mai Crafts");
    let history = f.manager.history(Some(&conn.id), 3).await.unwrap();
    assert_eq!(history[0].event, "rename");
    assert_eq!(
        f.manager
            .set_label("nope", Some("x"))
            .await
            .unwrap_err()
            .code,
        ErrorCode::NotFound
    );
}
