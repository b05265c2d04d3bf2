//! Shared by the integration tests: an emulator on an ephemeral port, a client with
//! short timeouts that never follows redirects, and small readers of the answers.
#![allow(dead_code)]

use std::time::Duration;

use authdeck_emulator::{start, EmulatorConfig, RunningEmulator};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;
use sha2::{Digest, Sha256};

pub const FA_CLIENT: &str = "demo-flowaccount";
pub const FA_SECRET: &str = "demo-flowaccount-secret";
pub const FA_REDIRECT: &str = "com.authdeck.desktop:/oauth/callback";
pub const FA_LOOPBACK_REDIRECT: &str = "http://127.0.0.1:53682/callback";
pub const FA_USER: &str = "demo@example.com";
pub const FA_PASSWORD: &str = "demo";
pub const FULL_SCOPE: &str = "flowaccount-api offline_access";

pub async fn emulator() -> RunningEmulator {
    emulator_with(EmulatorConfig::demo()).await
}

pub async fn emulator_with(config: EmulatorConfig) -> RunningEmulator {
    start(config, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("emulator starts")
}

pub fn client() -> reqwest::Client {
    client_with_timeout(Duration::from_secs(5))
}

pub fn client_with_timeout(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .build()
        .expect("client")
}

/// A client that sends this emulator's admin token (`Authorization: Bearer …`), for
/// `/admin/*`.
pub fn admin_client(emulator: &RunningEmulator) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    let mut value =
        reqwest::header::HeaderValue::from_str(&format!("Bearer {}", emulator.admin_token()))
            .expect("header");
    value.set_sensitive(true);
    headers.insert(reqwest::header::AUTHORIZATION, value);
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(5))
        .default_headers(headers)
        .build()
        .expect("client")
}

/// An authorize URL with the given parameters (each `Some` one is sent).
pub fn authorize_url(emulator: &RunningEmulator, params: &[(&str, Option<&str>)]) -> String {
    let mut url = url::Url::parse(&emulator.flowaccount_authorize_url()).expect("url");
    {
        let mut query = url.query_pairs_mut();
        for (name, value) in params {
            if let Some(value) = value {
                query.append_pair(name, value);
            }
        }
    }
    url.to_string()
}

/// The usual request: code, demo client, custom-scheme redirect, the given scope/state.
pub fn standard_authorize_url(emulator: &RunningEmulator, scope: &str, state: &str) -> String {
    authorize_url(
        emulator,
        &[
            ("response_type", Some("code")),
            ("scope", Some(scope)),
            ("client_id", Some(FA_CLIENT)),
            ("redirect_uri", Some(FA_REDIRECT)),
            ("state", Some(state)),
        ],
    )
}

pub fn query_param(location: &str, name: &str) -> Option<String> {
    let url = url::Url::parse(location).expect("location is a URL");
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Signs in, picks FA-100001, approves, and returns the code.
pub async fn authorize_code(emulator: &RunningEmulator, scope: &str) -> String {
    let url = standard_authorize_url(emulator, scope, "st-1");
    let location = authdeck_emulator::approve(&url, FA_USER, FA_PASSWORD, "FA-100001")
        .await
        .expect("approved");
    query_param(&location, "code").expect("code in redirect")
}

/// POSTs a form; returns status and JSON body (Null when the body is not JSON).
pub async fn post_form(url: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let response = client().post(url).form(form).send().await.expect("answer");
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

pub async fn exchange(emulator: &RunningEmulator, code: &str) -> (u16, Value) {
    post_form(
        &emulator.flowaccount_token_url(),
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", FA_REDIRECT),
            ("client_id", FA_CLIENT),
            ("client_secret", FA_SECRET),
        ],
    )
    .await
}

pub async fn refresh(emulator: &RunningEmulator, refresh_token: &str) -> (u16, Value) {
    post_form(
        &emulator.flowaccount_token_url(),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", FA_CLIENT),
            ("client_secret", FA_SECRET),
        ],
    )
    .await
}

/// Status of `GET /flowaccount/test/me` with this access token.
pub async fn fa_me(emulator: &RunningEmulator, access_token: &str) -> u16 {
    client()
        .get(format!("{}/flowaccount/test/me", emulator.base_url()))
        .bearer_auth(access_token)
        .send()
        .await
        .expect("answer")
        .status()
        .as_u16()
}

pub fn str_of<'a>(body: &'a Value, field: &str) -> &'a str {
    body[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} missing in {body}"))
}

/// The claims of a JWT (no signature check: the client side's view).
pub fn jwt_claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("three parts");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("json")
}
