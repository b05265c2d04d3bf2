//! FedEx: the three grants, child_Key spelled as FedEx spells it, FedEx-shaped errors.

mod common;

use common::*;
use serde_json::Value;

const KEY: &str = "demo-fedex-key";
const SECRET: &str = "demo-fedex-secret";
const CHILD_KEY: &str = "demo-child-key";
const CHILD_SECRET: &str = "demo-child-secret";

#[tokio::test]
async fn client_credentials_returns_an_hour_long_jwt_and_no_refresh_token() {
    let emu = emulator().await;
    let (status, body) = post_form(
        &emu.fedex_token_url(),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", KEY),
            ("client_secret", SECRET),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(str_of(&body, "token_type"), "bearer");
    assert_eq!(body["expires_in"], 3599);
    assert_eq!(str_of(&body, "scope"), "CXS");
    assert!(body.get("refresh_token").is_none());
    let claims = jwt_claims(str_of(&body, "access_token"));
    let lifetime = claims["exp"].as_i64().expect("exp") - claims["iat"].as_i64().expect("iat");
    assert_eq!(lifetime, 3600);
    let now = emu.control().now().timestamp();
    assert!((claims["iat"].as_i64().expect("iat") - now).abs() <= 5);
}

#[tokio::test]
async fn csp_and_parent_child_grants_need_child_credentials() {
    let emu = emulator().await;
    for grant in ["csp_credentials", "client_pc_credentials"] {
        let (status, body) = post_form(
            &emu.fedex_token_url(),
            &[
                ("grant_type", grant),
                ("client_id", KEY),
                ("client_secret", SECRET),
                ("child_Key", CHILD_KEY),
                ("child_secret", CHILD_SECRET),
            ],
        )
        .await;
        assert_eq!(status, 200, "{grant}: {body}");
        let claims = jwt_claims(str_of(&body, "access_token"));
        assert_eq!(claims["Payload"]["clientIdentity"]["childKey"], CHILD_KEY);

        let (status, body) = post_form(
            &emu.fedex_token_url(),
            &[
                ("grant_type", grant),
                ("client_id", KEY),
                ("client_secret", SECRET),
                ("child_Key", CHILD_KEY),
                ("child_secret", "wrong-child-secret"),
            ],
        )
        .await;
        assert_eq!(status, 401, "{grant}");
        assert_eq!(body["errors"][0]["code"], "NOT.AUTHORIZED.ERROR");
    }
    let stats = emu.control().stats().fedex;
    assert_eq!((stats.csp_credentials, stats.client_pc_credentials), (1, 1));
}

#[tokio::test]
async fn lowercase_child_key_is_not_child_key() {
    let emu = emulator().await;
    let (status, body) = post_form(
        &emu.fedex_token_url(),
        &[
            ("grant_type", "csp_credentials"),
            ("client_id", KEY),
            ("client_secret", SECRET),
            ("child_key", CHILD_KEY),
            ("child_secret", CHILD_SECRET),
        ],
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let error = &body["errors"][0];
    assert_eq!(error["code"], "BAD.REQUEST.ERROR");
    let keys: Vec<&str> = error["parameterList"]
        .as_array()
        .expect("parameterList")
        .iter()
        .filter_map(|p| p["key"].as_str())
        .collect();
    assert_eq!(keys, ["child_Key"]);
    assert!(
        !body.to_string().contains(CHILD_SECRET),
        "never echo a secret"
    );
    assert!(body.get("error").is_none(), "not RFC 6749 shaped");
}

#[tokio::test]
async fn wrong_secret_is_not_authorized_in_fedex_shape() {
    let emu = emulator().await;
    let (status, body) = post_form(
        &emu.fedex_token_url(),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", KEY),
            ("client_secret", "not-the-secret"),
        ],
    )
    .await;
    assert_eq!(status, 401);
    assert!(body["transactionId"]
        .as_str()
        .is_some_and(|t| t.len() == 36));
    let errors = body["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["code"], "NOT.AUTHORIZED.ERROR");
    assert_eq!(
        errors[0]["message"],
        "The given client credentials were not valid. Please modify your request and try again."
    );
    assert!(body.get("error").is_none());
    assert!(!body.to_string().contains("not-the-secret"));
    assert_eq!(emu.control().stats().fedex.not_authorized, 1);
}

#[tokio::test]
async fn missing_and_unknown_parameters_are_bad_requests() {
    let emu = emulator().await;
    let (status, body) = post_form(
        &emu.fedex_token_url(),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(status, 400);
    let keys: Vec<Value> = body["errors"][0]["parameterList"]
        .as_array()
        .expect("list")
        .iter()
        .map(|p| p["key"].clone())
        .collect();
    assert_eq!(
        keys,
        [Value::from("client_id"), Value::from("client_secret")]
    );
    let (status, body) = post_form(
        &emu.fedex_token_url(),
        &[
            ("grant_type", "password"),
            ("client_id", KEY),
            ("client_secret", SECRET),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["errors"][0]["parameterList"][0]["value"], "password");
}

#[tokio::test]
async fn earlier_tokens_are_not_affected_by_new_ones() {
    let emu = emulator().await;
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", KEY),
        ("client_secret", SECRET),
    ];
    let (_, first) = post_form(&emu.fedex_token_url(), &form).await;
    let (_, second) = post_form(&emu.fedex_token_url(), &form).await;
    assert_ne!(first["access_token"], second["access_token"]);
    assert_eq!(emu.control().stats().fedex.tokens_issued, 2);
}
