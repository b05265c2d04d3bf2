//! Each fault produces what it says, on provider endpoints only.

mod common;

use std::time::{Duration, Instant};

use authdeck_emulator::{EmulatorConfig, Fault, FaultKind, FaultScope};
use common::*;
use serde_json::Value;

fn fedex_form() -> [(&'static str, &'static str); 3] {
    [
        ("grant_type", "client_credentials"),
        ("client_id", "demo-fedex-key"),
        ("client_secret", "demo-fedex-secret"),
    ]
}

fn push(emu: &authdeck_emulator::RunningEmulator, spec: &str) {
    emu.control().push_fault(spec.parse().expect("fault spec"));
}

#[tokio::test]
async fn server_errors_come_in_each_providers_shape() {
    let emu = emulator().await;
    push(&emu, "fedex:503:times=1");
    let (status, body) = post_form(&emu.fedex_token_url(), &fedex_form()).await;
    assert_eq!(status, 503);
    assert_eq!(body["errors"][0]["code"], "SERVICE.UNAVAILABLE.ERROR");
    assert!(body["transactionId"].is_string());

    push(&emu, "fedex:500:times=1");
    let (status, body) = post_form(&emu.fedex_token_url(), &fedex_form()).await;
    assert_eq!(
        (status, body["errors"][0]["code"].as_str()),
        (500, Some("INTERNAL.SERVER.ERROR"))
    );

    push(&emu, "flowaccount:500:times=1");
    let (status, body) = refresh(&emu, "whatever").await;
    assert_eq!((status, str_of(&body, "error")), (500, "server_error"));

    push(&emu, "iot:502:times=1");
    let (status, body) = post_form(
        &format!("{}/user/logout", emu.iot_auth_url()),
        &[("refresh_token", "x")],
    )
    .await;
    assert_eq!((status, body["status"].as_i64()), (502, Some(502)));

    // Spent: the next request reaches the provider again.
    let (status, _) = post_form(&emu.fedex_token_url(), &fedex_form()).await;
    assert_eq!(status, 200);
    let stats = emu.control().stats();
    assert_eq!(stats.faults_injected, 4);
    assert_eq!(stats.fedex.tokens_issued, 1);
}

#[tokio::test]
async fn rate_limit_sends_retry_after() {
    let emu = emulator().await;
    push(&emu, "flowaccount:429:retry=5");
    let response = client()
        .post(emu.flowaccount_token_url())
        .form(&[("grant_type", "refresh_token")])
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "5");
    // Scoped: FedEx is untouched.
    let (status, _) = post_form(&emu.fedex_token_url(), &fedex_form()).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn reset_closes_the_connection_without_a_response() {
    let emu = emulator().await;
    push(&emu, "iot:reset:times=1");
    let error = client()
        .post(format!("{}/oauth/token", emu.iot_auth_url()))
        .header("Authorization", "Basic demo-iot-client")
        .form(&[
            ("grant_type", "password"),
            ("username", "operator"),
            ("password", "operator-pass"),
        ])
        .send()
        .await
        .expect_err("no HTTP response at all");
    assert!(error.status().is_none(), "{error:?}");
    assert!(error.is_request() || error.is_connect(), "{error:?}");
    assert!(!error.is_timeout(), "{error:?}");
    // The server itself is fine.
    let (status, _) = post_form(&emu.fedex_token_url(), &fedex_form()).await;
    assert_eq!(status, 200);
    assert!(
        emu.control().iot_sessions().is_empty(),
        "the request never reached the provider"
    );
}

#[tokio::test]
async fn hang_never_answers_and_shutdown_still_completes() {
    let emu = emulator().await;
    push(&emu, "hang");
    let started = Instant::now();
    let error = client_with_timeout(Duration::from_millis(400))
        .post(emu.fedex_token_url())
        .form(&fedex_form())
        .send()
        .await
        .expect_err("timed out");
    assert!(error.is_timeout(), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
    // Not for /admin: the hang only holds provider endpoints.
    let stats = admin_client(&emu)
        .get(format!("{}/admin/stats", emu.base_url()))
        .send()
        .await
        .expect("admin");
    assert_eq!(stats.status(), 200);
    tokio::time::timeout(Duration::from_secs(3), emu.shutdown())
        .await
        .expect("shutdown does not wait for hung requests");
}

#[tokio::test]
async fn malformed_json_html_and_missing_access_token() {
    let emu = emulator().await;
    push(&emu, "malformed-json:times=1");
    let response = client()
        .post(emu.fedex_token_url())
        .form(&fedex_form())
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .contains("json"));
    let text = response.text().await.expect("text");
    assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");

    push(&emu, "html:502:times=1");
    let response = client()
        .post(emu.fedex_token_url())
        .form(&fedex_form())
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 502);
    assert!(response.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .starts_with("text/html"));
    assert!(response.text().await.expect("text").contains("<html>"));

    push(&emu, "no-access-token:times=1");
    let (status, body) = refresh(&emu, "x").await;
    assert_eq!(status, 200);
    assert!(body.get("access_token").is_none());
    assert!(body.get("token_type").is_some() && body.get("expires_in").is_some());
}

#[tokio::test]
async fn latency_is_added_to_provider_responses() {
    let emu = emulator().await;
    emu.control().set_latency(Duration::from_millis(300));
    let started = Instant::now();
    let (status, _) = post_form(&emu.fedex_token_url(), &fedex_form()).await;
    assert_eq!(status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    // Over HTTP too, and back to zero.
    let response = admin_client(&emu)
        .post(format!("{}/admin/latency", emu.base_url()))
        .json(&serde_json::json!({"ms": 0}))
        .send()
        .await
        .expect("admin");
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn faults_never_touch_admin_or_the_authorize_pages() {
    let emu = emulator().await;
    emu.control()
        .push_fault(Fault::always(FaultKind::ServerError { status: 503 }));
    let url = standard_authorize_url(&emu, FULL_SCOPE, "s");
    let location = authdeck_emulator::approve(&url, FA_USER, FA_PASSWORD, "FA-100001")
        .await
        .expect("the pages work during an outage");
    let code = query_param(&location, "code").expect("code");
    assert_eq!(exchange(&emu, &code).await.0, 503);
    emu.control().clear_faults();
    // The failed exchange never reached the provider: the code is still good.
    assert_eq!(exchange(&emu, &code).await.0, 200);
}

#[tokio::test]
async fn faults_over_admin_http_as_json_or_string_and_at_start() {
    let mut config = EmulatorConfig::demo();
    config.faults = vec![Fault::next(
        FaultScope::Iot,
        FaultKind::ServerError { status: 500 },
        1,
    )];
    let emu = emulator_with(config).await;
    let admin = format!("{}/admin/faults", emu.base_url());
    let response = admin_client(&emu)
        .post(&admin)
        .json(&Value::from("fedex:429:retry=7:times=1"))
        .send()
        .await
        .expect("admin");
    assert_eq!(response.status(), 201);
    let response = admin_client(&emu)
        .post(&admin)
        .json(&serde_json::json!({"scope": "flowaccount", "kind": {"type": "html_body", "status": 504}}))
        .send()
        .await
        .expect("admin");
    assert_eq!(response.status(), 201);
    let bad = admin_client(&emu)
        .post(&admin)
        .json(&Value::from("teapot"))
        .send()
        .await
        .expect("admin");
    assert_eq!(bad.status(), 400);
    let listed: Vec<Value> = admin_client(&emu)
        .get(&admin)
        .send()
        .await
        .expect("admin")
        .json()
        .await
        .expect("json");
    assert_eq!(listed.len(), 3);

    let response = client()
        .post(emu.fedex_token_url())
        .form(&fedex_form())
        .send()
        .await
        .expect("answer");
    assert_eq!(
        (
            response.status().as_u16(),
            response.headers()["retry-after"].to_str().ok()
        ),
        (429, Some("7"))
    );
    assert_eq!(refresh(&emu, "x").await.0, 504);
    let (status, _) = post_form(
        &format!("{}/user/logout", emu.iot_auth_url()),
        &[("refresh_token", "x")],
    )
    .await;
    assert_eq!(status, 500);

    let cleared = admin_client(&emu)
        .delete(&admin)
        .send()
        .await
        .expect("admin");
    assert_eq!(cleared.status(), 200);
    assert!(emu.control().faults().is_empty());
    let stats: Value = admin_client(&emu)
        .get(format!("{}/admin/stats", emu.base_url()))
        .send()
        .await
        .expect("admin")
        .json()
        .await
        .expect("json");
    assert_eq!(stats["faults_injected"], 3);
}
