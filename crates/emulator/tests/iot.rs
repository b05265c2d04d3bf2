//! IoT platform: password login (form and multipart), expires_in formats, renew with
//! userid, logout that revokes both tokens.

mod common;

use authdeck_emulator::{EmulatorConfig, ExpiresInFormat, IotBasicMode, RunningEmulator};
use base64::Engine;
use common::*;
use serde_json::Value;

const CLIENT_ID: &str = "demo-iot-client";
const USER_ID: &str = "U974814773204";

async fn login(emu: &RunningEmulator) -> (u16, Value) {
    let response = client()
        .post(format!("{}/oauth/token", emu.iot_auth_url()))
        .header("Authorization", format!("Basic {CLIENT_ID}"))
        .form(&[
            ("grant_type", "password"),
            ("username", "operator"),
            ("password", "operator-pass"),
        ])
        .send()
        .await
        .expect("answer");
    (
        response.status().as_u16(),
        response.json().await.unwrap_or(Value::Null),
    )
}

async fn renew(emu: &RunningEmulator, form: &[(&str, &str)]) -> (u16, Value) {
    let response = client()
        .post(format!("{}/oauth/token", emu.iot_auth_url()))
        .header("Authorization", format!("Basic {CLIENT_ID}"))
        .form(form)
        .send()
        .await
        .expect("answer");
    (
        response.status().as_u16(),
        response.json().await.unwrap_or(Value::Null),
    )
}

async fn me(emu: &RunningEmulator, access_token: &str) -> u16 {
    client()
        .get(format!("{}/user/me", emu.iot_auth_url()))
        .bearer_auth(access_token)
        .send()
        .await
        .expect("answer")
        .status()
        .as_u16()
}

#[tokio::test]
async fn password_login_with_a_form_returns_a_user_token() {
    let emu = emulator().await;
    let (status, body) = login(&emu).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(str_of(&body, "token_type"), "Bearer");
    assert_eq!(str_of(&body, "scope"), "user");
    assert!(!str_of(&body, "refresh_token").is_empty());
    assert_eq!(body["userinfo"]["id"], USER_ID);
    assert_eq!(body["userinfo"]["username"], "operator");
    assert_eq!(body["userinfo"]["email"], "operator@example.com");
    let claims = jwt_claims(str_of(&body, "access_token"));
    assert_eq!(claims["ctx"]["owner"], USER_ID);
    assert_eq!(claims["iss"], "cer:usertoken");
    assert_eq!(claims["expireIn"], 86_400);
    let exp = claims["exp"].as_i64().expect("exp");
    assert_eq!(exp - claims["iat"].as_i64().expect("iat"), 86_400);
    // Default format: the expiry instant in epoch milliseconds [guess].
    assert_eq!(body["expires_in"].as_i64(), Some(exp * 1000));
    assert_eq!(me(&emu, str_of(&body, "access_token")).await, 200);
}

#[tokio::test]
async fn password_login_with_multipart_and_by_email() {
    let emu = emulator().await;
    let form = reqwest::multipart::Form::new()
        .text("grant_type", "password")
        .text("username", "operator@example.com")
        .text("password", "operator-pass");
    let response = client()
        .post(format!("{}/oauth/token", emu.iot_auth_url()))
        .header("Authorization", format!("Basic {CLIENT_ID}"))
        .multipart(form)
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["userinfo"]["id"], USER_ID);
}

#[tokio::test]
async fn expires_in_follows_the_configured_format_and_matches_the_jwt() {
    let emu = emulator().await;
    for (format, admin_name) in [
        (ExpiresInFormat::EpochMs, "epoch_ms"),
        (ExpiresInFormat::EpochS, "epoch_s"),
        (ExpiresInFormat::Relative, "relative"),
    ] {
        // Half of them through the admin API, to cover it too.
        if format == ExpiresInFormat::EpochS {
            let response = admin_client(&emu)
                .put(format!("{}/admin/iot/expires-in-format", emu.base_url()))
                .json(&serde_json::json!({"format": admin_name}))
                .send()
                .await
                .expect("admin");
            assert_eq!(response.status(), 200);
        } else {
            emu.control().set_iot_expires_in_format(format);
        }
        let (_, body) = login(&emu).await;
        let claims = jwt_claims(str_of(&body, "access_token"));
        let exp = claims["exp"].as_i64().expect("exp");
        let iat = claims["iat"].as_i64().expect("iat");
        let expected = match format {
            ExpiresInFormat::EpochMs => exp * 1000,
            ExpiresInFormat::EpochS => exp,
            ExpiresInFormat::Relative => exp - iat,
        };
        assert_eq!(body["expires_in"].as_i64(), Some(expected), "{admin_name}");
    }
}

#[tokio::test]
async fn renew_needs_userid_and_rotates_the_refresh_token() {
    let emu = emulator().await;
    let (_, body) = login(&emu).await;
    let rt = str_of(&body, "refresh_token").to_string();

    let (status, err) = renew(
        &emu,
        &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(err["status"], 400);
    assert!(str_of(&err, "error").contains("userid"));

    let (status, err) = renew(
        &emu,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt),
            ("userid", "U000"),
        ],
    )
    .await;
    assert_eq!((status, err["status"].as_i64()), (401, Some(401)));

    let (status, renewed) = renew(
        &emu,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt),
            ("userid", USER_ID),
        ],
    )
    .await;
    assert_eq!(status, 200, "{renewed}");
    let rt2 = str_of(&renewed, "refresh_token");
    assert_ne!(rt2, rt);
    assert_eq!(str_of(&renewed, "token_type"), "Bearer");
    assert_eq!(
        jwt_claims(str_of(&renewed, "access_token"))["ctx"]["owner"],
        USER_ID
    );

    let (status, _) = renew(
        &emu,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt),
            ("userid", USER_ID),
        ],
    )
    .await;
    assert_eq!(status, 401, "the replaced refresh token no longer works");
    assert_eq!(emu.control().stats().iot.refresh_ok, 1);
}

#[tokio::test]
async fn logout_revokes_both_tokens() {
    let emu = emulator().await;
    let (_, body) = login(&emu).await;
    let rt = str_of(&body, "refresh_token").to_string();
    let access = str_of(&body, "access_token").to_string();

    // No Basic header needed for logout.
    let (status, out) = post_form(
        &format!("{}/user/logout", emu.iot_auth_url()),
        &[("refresh_token", &rt)],
    )
    .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["status"], 200);
    assert!(out["error"].is_null());
    assert_eq!(out["result"]["userid"], USER_ID);

    let (status, _) = renew(
        &emu,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt),
            ("userid", USER_ID),
        ],
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(me(&emu, &access).await, 401);

    let sessions = emu.control().iot_sessions();
    assert_eq!(sessions.len(), 1);
    assert!(sessions[0].revoked);
    assert!(sessions[0].revoked_at.is_some());
    assert_eq!(sessions[0].user_id, USER_ID);

    let (status, again) = post_form(
        &format!("{}/user/logout", emu.iot_auth_url()),
        &[("refresh_token", &rt)],
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(again["status"], 401);
    assert!(again["result"].is_null());
    assert!(again["error"].as_str().is_some());

    let over_http: Value = admin_client(&emu)
        .get(format!("{}/admin/iot/sessions", emu.base_url()))
        .send()
        .await
        .expect("admin")
        .json()
        .await
        .expect("json");
    assert_eq!(over_http[0]["revoked"], true);
}

#[tokio::test]
async fn wrong_client_or_password_is_401_with_a_message() {
    let emu = emulator().await;
    let base64_id = base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:"));
    for header in [
        None,
        Some("Basic someone-else".to_string()),
        Some(format!("Basic {base64_id}")),
    ] {
        let mut request = client().post(format!("{}/oauth/token", emu.iot_auth_url()));
        if let Some(header) = header {
            request = request.header("Authorization", header);
        }
        let response = request
            .form(&[
                ("grant_type", "password"),
                ("username", "operator"),
                ("password", "operator-pass"),
            ])
            .send()
            .await
            .expect("answer");
        assert_eq!(response.status(), 401);
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["status"], 401);
        assert!(str_of(&body, "error").to_lowercase().contains("client"));
    }
    let (status, body) = renew(
        &emu,
        &[
            ("grant_type", "password"),
            ("username", "operator"),
            ("password", "nope"),
        ],
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(str_of(&body, "error"), "Invalid username or password");
}

#[tokio::test]
async fn base64_basic_mode_is_a_switch() {
    let mut config = EmulatorConfig::demo();
    config.iot.basic_mode = IotBasicMode::Either;
    let emu = emulator_with(config).await;
    let base64_id = base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:"));
    for value in [CLIENT_ID.to_string(), base64_id] {
        let response = client()
            .post(format!("{}/oauth/token", emu.iot_auth_url()))
            .header("Authorization", format!("Basic {value}"))
            .form(&[
                ("grant_type", "password"),
                ("username", "operator"),
                ("password", "operator-pass"),
            ])
            .send()
            .await
            .expect("answer");
        assert_eq!(response.status(), 200, "{value}");
    }
}

#[tokio::test]
async fn access_tokens_expire_on_the_emulator_clock() {
    let emu = emulator().await;
    let (_, body) = login(&emu).await;
    let access = str_of(&body, "access_token").to_string();
    assert_eq!(me(&emu, &access).await, 200);
    emu.control()
        .advance_clock(chrono::Duration::seconds(86_401));
    assert_eq!(me(&emu, &access).await, 401);
}
