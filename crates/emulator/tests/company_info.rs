//! `GET {api base}/company/info` (PROVIDERS.md §1 item 9): per business, with the
//! access token of that business; anything else is a 401; a fault can break it alone.

mod common;

use authdeck_emulator::{approve, EmulatorConfig, FaBusiness, FaUser, RunningEmulator};
use common::*;
use serde_json::Value;

/// Signs in, picks `business`, exchanges the code: the access token.
async fn token_for(emulator: &RunningEmulator, business: &str) -> String {
    let url = standard_authorize_url(emulator, FULL_SCOPE, "st-1");
    let location = approve(&url, FA_USER, FA_PASSWORD, business)
        .await
        .expect("approved");
    let code = query_param(&location, "code").expect("code");
    let (status, body) = exchange(emulator, &code).await;
    assert_eq!(status, 200, "{body}");
    str_of(&body, "access_token").to_string()
}

async fn company_info(
    emulator: &RunningEmulator,
    base: &str,
    token: Option<&str>,
) -> (u16, String, Value) {
    let mut request = client().get(format!("{}{base}/company/info", emulator.base_url()));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("answer");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    (status, text, json)
}

#[tokio::test]
async fn each_business_token_reads_its_own_company_in_the_sdk_shape() {
    let emulator = emulator().await;
    let siam = token_for(&emulator, "FA-100001").await;
    let crafts = token_for(&emulator, "FA-100002").await;
    for base in ["/flowaccount/test", "/flowaccount/v1"] {
        let (status, _, body) = company_info(&emulator, base, Some(&crafts)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["status"], true);
        let data = &body["data"];
        // The spec's spelling, not `companyName`.
        assert_eq!(data["compnayName"], "Chiang Mai Crafts");
        assert!(data.get("companyName").is_none(), "{data}");
        assert_eq!(data["companyId"], 100_002);
        assert_eq!(data["companyTaxId"], "0505561001234");
        assert_eq!(data["companyBranch"], "สาขา 00001 นิมมานเหมินท์");
    }
    let (_, _, body) = company_info(&emulator, "/flowaccount/test", Some(&siam)).await;
    assert_eq!(body["data"]["companyId"], 100_001);
    assert_eq!(body["data"]["companyTaxId"], "0105558096348");
    assert_eq!(emulator.control().stats().flowaccount.company_info_ok, 3);
}

#[tokio::test]
async fn unknown_missing_and_expired_tokens_get_a_401() {
    let emulator = emulator().await;
    let token = token_for(&emulator, "FA-100001").await;
    for presented in [None, Some("not-a-token"), Some("")] {
        let (status, _, body) = company_info(&emulator, "/flowaccount/test", presented).await;
        assert_eq!(status, 401, "{presented:?}");
        assert_eq!(body["message"], "Unauthorized");
        assert!(body.get("data").is_none());
    }
    // The emulator issues one-hour access tokens.
    emulator
        .control()
        .advance_clock(chrono::Duration::minutes(61));
    let (status, _, _) = company_info(&emulator, "/flowaccount/test", Some(&token)).await;
    assert_eq!(status, 401);
    assert_eq!(
        emulator
            .control()
            .stats()
            .flowaccount
            .company_info_unauthorized,
        4
    );
}

#[tokio::test]
async fn a_business_without_details_answers_with_its_id_and_name_only() {
    let mut config = EmulatorConfig::demo();
    config.flowaccount.users = vec![FaUser {
        username: FA_USER.into(),
        password: FA_PASSWORD.into(),
        businesses: vec![FaBusiness {
            support_code: "FA-200001".into(),
            name: "Plain Shop".into(),
        }],
    }];
    let emulator = emulator_with(config).await;
    let token = token_for(&emulator, "FA-200001").await;
    let (status, _, body) = company_info(&emulator, "/flowaccount/test", Some(&token)).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["compnayName"], "Plain Shop");
    assert_eq!(body["data"]["companyId"], 1);
    assert!(body["data"].get("companyTaxId").is_none(), "{body}");
}

#[tokio::test]
async fn an_api_fault_breaks_company_info_and_leaves_the_token_endpoint_alone() {
    let emulator = emulator().await;
    let token = token_for(&emulator, "FA-100001").await;
    let admin = admin_client(&emulator);
    let armed = admin
        .post(format!("{}/admin/faults", emulator.base_url()))
        .json(&"flowaccount-api:500:times=1")
        .send()
        .await
        .expect("answer");
    assert_eq!(armed.status().as_u16(), 201);
    // The token endpoint is not hit by an API fault.
    let code = authorize_code(&emulator, FULL_SCOPE).await;
    let (status, _) = exchange(&emulator, &code).await;
    assert_eq!(status, 200);
    let (status, _, body) = company_info(&emulator, "/flowaccount/test", Some(&token)).await;
    assert_eq!(status, 500);
    assert_eq!(body["status"], false);
    // Spent: the next one answers.
    let (status, _, _) = company_info(&emulator, "/flowaccount/test", Some(&token)).await;
    assert_eq!(status, 200);

    emulator
        .control()
        .push_fault("fa-api:html:502:times=1".parse().expect("fault"));
    let (status, text, body) = company_info(&emulator, "/flowaccount/test", Some(&token)).await;
    assert_eq!(status, 502);
    assert_eq!(body, Value::Null, "not JSON: {text}");
    assert!(text.contains("<html>"), "{text}");

    emulator.control().push_fault(
        "flowaccount-api:malformed-json:times=1"
            .parse()
            .expect("fault"),
    );
    let (status, text, body) = company_info(&emulator, "/flowaccount/test", Some(&token)).await;
    assert_eq!(status, 200);
    assert_eq!(body, Value::Null, "not JSON: {text}");
}
