//! FlowAccount: authorize → approve → exchange → refresh, rotation, reuse, expiry.

mod common;

use authdeck_emulator::{approve, deny, FaClient, TokenStatus};
use chrono::Duration;
use common::*;

#[tokio::test]
async fn code_flow_rotates_refresh_tokens_and_reuse_revokes_the_family() {
    let emu = emulator().await;
    let control = emu.control();
    let url = standard_authorize_url(&emu, FULL_SCOPE, "state-123");
    let location = approve(&url, FA_USER, FA_PASSWORD, "FA-100002")
        .await
        .expect("approved");
    assert!(
        location.starts_with("com.authdeck.desktop:/oauth/callback?"),
        "{location}"
    );
    assert_eq!(
        query_param(&location, "state").as_deref(),
        Some("state-123")
    );
    assert_eq!(query_param(&location, "scope").as_deref(), Some(FULL_SCOPE));
    let code = query_param(&location, "code").expect("code");

    let (status, first) = exchange(&emu, &code).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(str_of(&first, "token_type"), "bearer");
    assert_eq!(first["expires_in"], 3600);
    assert_eq!(str_of(&first, "supportCode"), "FA-100002");
    let rt1 = str_of(&first, "refresh_token").to_string();
    assert_eq!(fa_me(&emu, str_of(&first, "access_token")).await, 200);

    let (status, second) = refresh(&emu, &rt1).await;
    assert_eq!(status, 200, "{second}");
    let rt2 = str_of(&second, "refresh_token").to_string();
    assert_ne!(rt1, rt2, "refresh token rotates");
    assert_eq!(str_of(&second, "supportCode"), "FA-100002");
    assert_eq!(
        control.flowaccount_refresh_token_status(&rt1),
        TokenStatus::Used
    );
    assert_eq!(
        control.flowaccount_refresh_token_status(&rt2),
        TokenStatus::Current
    );

    let (status, third) = refresh(&emu, &rt2).await;
    assert_eq!(status, 200, "{third}");
    let rt3 = str_of(&third, "refresh_token").to_string();
    let latest_access = str_of(&third, "access_token").to_string();
    assert_eq!(fa_me(&emu, &latest_access).await, 200);

    // The oldest token comes back: someone else holds a copy (RFC 9700 §4.14.2).
    let (status, reuse) = refresh(&emu, &rt1).await;
    assert_eq!(status, 400);
    assert_eq!(str_of(&reuse, "error"), "invalid_grant");
    assert_eq!(
        control.flowaccount_refresh_token_status(&rt3),
        TokenStatus::Revoked
    );
    let (status, after) = refresh(&emu, &rt3).await;
    assert_eq!((status, str_of(&after, "error")), (400, "invalid_grant"));
    assert_eq!(
        fa_me(&emu, &latest_access).await,
        401,
        "family's access tokens revoked"
    );

    let stats = control.stats();
    assert_eq!(stats.refresh_ok, 2);
    assert_eq!(stats.reuse_detected, 1);
    assert_eq!(stats.families_revoked, 1);
    assert_eq!(stats.invalid_grant, 2);
    assert_eq!(stats.flowaccount.codes_exchanged, 1);
    emu.shutdown().await;
}

#[tokio::test]
async fn without_reuse_detection_an_old_token_is_only_refused() {
    let emu = emulator().await;
    emu.control().set_reuse_detection(false);
    let (_, tokens) = exchange(&emu, &authorize_code(&emu, FULL_SCOPE).await).await;
    let rt1 = str_of(&tokens, "refresh_token").to_string();
    let (_, next) = refresh(&emu, &rt1).await;
    let rt2 = str_of(&next, "refresh_token").to_string();
    let (status, body) = refresh(&emu, &rt1).await;
    assert_eq!((status, str_of(&body, "error")), (400, "invalid_grant"));
    let (status, body) = refresh(&emu, &rt2).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(emu.control().stats().families_revoked, 0);
}

#[tokio::test]
async fn a_code_works_once_and_its_replay_revokes_what_it_granted() {
    let emu = emulator().await;
    let code = authorize_code(&emu, FULL_SCOPE).await;
    let (status, tokens) = exchange(&emu, &code).await;
    assert_eq!(status, 200);
    let (status, again) = exchange(&emu, &code).await;
    assert_eq!((status, str_of(&again, "error")), (400, "invalid_grant"));
    assert_eq!(fa_me(&emu, str_of(&tokens, "access_token")).await, 401);
    let (status, body) = refresh(&emu, str_of(&tokens, "refresh_token")).await;
    assert_eq!((status, str_of(&body, "error")), (400, "invalid_grant"));
    let stats = emu.control().stats();
    assert_eq!(stats.flowaccount.code_reuse_detected, 1);
    assert_eq!(stats.families_revoked, 1);
}

#[tokio::test]
async fn a_code_expires_after_150_minutes() {
    let emu = emulator().await;
    let fresh = authorize_code(&emu, FULL_SCOPE).await;
    let stale = authorize_code(&emu, FULL_SCOPE).await;
    emu.control().advance_clock(Duration::minutes(149));
    assert_eq!(exchange(&emu, &fresh).await.0, 200);
    emu.control().advance_clock(Duration::minutes(2));
    let (status, body) = exchange(&emu, &stale).await;
    assert_eq!((status, str_of(&body, "error")), (400, "invalid_grant"));
}

#[tokio::test]
async fn unregistered_redirect_uri_gets_an_error_page_never_a_redirect() {
    let emu = emulator().await;
    for redirect in [
        "com.authdeck.desktop:/oauth/callback/",
        "http://127.0.0.1:53683/callback",
        "https://evil.example/callback",
    ] {
        let url = authorize_url(
            &emu,
            &[
                ("response_type", Some("code")),
                ("scope", Some(FULL_SCOPE)),
                ("client_id", Some(FA_CLIENT)),
                ("redirect_uri", Some(redirect)),
                ("state", Some("s")),
            ],
        );
        let response = client().get(&url).send().await.expect("answer");
        assert_eq!(response.status(), 400, "{redirect}");
        assert!(response.headers().get("location").is_none());
        assert!(response
            .text()
            .await
            .expect("html")
            .contains("not registered"));
        assert!(approve(&url, FA_USER, FA_PASSWORD, "FA-100001")
            .await
            .is_err());
    }
    // Unknown client: an error page too.
    let url = authorize_url(
        &emu,
        &[
            ("response_type", Some("code")),
            ("scope", Some(FULL_SCOPE)),
            ("client_id", Some("nobody")),
            ("redirect_uri", Some(FA_REDIRECT)),
        ],
    );
    let response = client().get(&url).send().await.expect("answer");
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn the_exchange_must_name_the_same_redirect_uri() {
    let emu = emulator().await;
    let code = authorize_code(&emu, FULL_SCOPE).await;
    let (status, body) = post_form(
        &emu.flowaccount_token_url(),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", FA_LOOPBACK_REDIRECT),
            ("client_id", FA_CLIENT),
            ("client_secret", FA_SECRET),
        ],
    )
    .await;
    assert_eq!((status, str_of(&body, "error")), (400, "invalid_grant"));
}

#[tokio::test]
async fn pkce_s256_is_checked() {
    let emu = emulator().await;
    let verifier = "a".repeat(20) + &"b".repeat(30);
    let challenge = s256(&verifier);
    let url_with_pkce = || {
        authorize_url(
            &emu,
            &[
                ("response_type", Some("code")),
                ("scope", Some(FULL_SCOPE)),
                ("client_id", Some(FA_CLIENT)),
                ("redirect_uri", Some(FA_REDIRECT)),
                ("state", Some("s")),
                ("code_challenge", Some(&challenge)),
                ("code_challenge_method", Some("S256")),
            ],
        )
    };
    let exchange_with = |code: String, verifier: Option<String>| {
        let url = emu.flowaccount_token_url();
        async move {
            let mut form = vec![
                ("grant_type", "authorization_code".to_string()),
                ("code", code),
                ("redirect_uri", FA_REDIRECT.to_string()),
                ("client_id", FA_CLIENT.to_string()),
                ("client_secret", FA_SECRET.to_string()),
            ];
            if let Some(v) = verifier {
                form.push(("code_verifier", v));
            }
            let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            post_form(&url, &pairs).await
        }
    };
    let code_for = |url: String| async move {
        let location = approve(&url, FA_USER, FA_PASSWORD, "FA-100001")
            .await
            .expect("approved");
        query_param(&location, "code").expect("code")
    };

    let wrong = "c".repeat(50);
    let (status, body) = exchange_with(code_for(url_with_pkce()).await, Some(wrong)).await;
    assert_eq!((status, str_of(&body, "error")), (400, "invalid_grant"));
    let (status, body) = exchange_with(code_for(url_with_pkce()).await, None).await;
    assert_eq!((status, str_of(&body, "error")), (400, "invalid_grant"));
    let (status, body) =
        exchange_with(code_for(url_with_pkce()).await, Some(verifier.clone())).await;
    assert_eq!(status, 200, "{body}");
    // A verifier for a code that had no challenge is refused too (RFC 9700 §2.1.1).
    let plain = authorize_code(&emu, FULL_SCOPE).await;
    let (status, body) = exchange_with(plain, Some(verifier)).await;
    assert_eq!((status, str_of(&body, "error")), (400, "invalid_grant"));
}

#[tokio::test]
async fn without_offline_access_there_is_no_refresh_token() {
    let emu = emulator().await;
    let (status, body) = exchange(&emu, &authorize_code(&emu, "flowaccount-api").await).await;
    assert_eq!(status, 200);
    assert!(body.get("access_token").is_some());
    assert!(body.get("refresh_token").is_none(), "{body}");
}

#[tokio::test]
async fn deny_redirects_with_access_denied_and_state() {
    let emu = emulator().await;
    let url = standard_authorize_url(&emu, FULL_SCOPE, "xyz");
    let location = deny(&url, FA_USER, FA_PASSWORD).await.expect("denied");
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("access_denied")
    );
    assert_eq!(query_param(&location, "state").as_deref(), Some("xyz"));
    assert!(query_param(&location, "code").is_none());
    assert_eq!(emu.control().stats().flowaccount.denials, 1);
}

#[tokio::test]
async fn a_wrong_password_shows_the_login_page_again() {
    let emu = emulator().await;
    let url = standard_authorize_url(&emu, FULL_SCOPE, "s");
    let error = approve(&url, FA_USER, "nope", "FA-100001")
        .await
        .expect_err("refused");
    assert!(error.contains("Invalid username or password"), "{error}");
    let error = approve(&url, FA_USER, FA_PASSWORD, "FA-999")
        .await
        .expect_err("no such business");
    assert!(error.contains("Choose one of your businesses"), "{error}");
}

#[tokio::test]
async fn the_html_forms_work_step_by_step() {
    let emu = emulator().await;
    let url = standard_authorize_url(&emu, FULL_SCOPE, "s1");
    let page = client().get(&url).send().await.expect("page");
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    assert!(html.contains("name=\"password\"") && html.contains("value=\"s1\""));

    let mut form: Vec<(String, String)> = url::Url::parse(&url)
        .expect("url")
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let action = emu.flowaccount_authorize_url();
    let mut login = form.clone();
    login.push(("username".into(), FA_USER.into()));
    login.push(("password".into(), FA_PASSWORD.into()));
    let picker = client()
        .post(&action)
        .form(&login)
        .send()
        .await
        .expect("picker");
    let html = picker.text().await.expect("html");
    assert!(html.contains("Siam Trading Co., Ltd.") && html.contains("Chiang Mai Crafts"));
    let ticket = html
        .split("name=\"ticket\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("ticket")
        .to_string();
    form.push(("ticket".into(), ticket));
    form.push(("support_code".into(), "FA-100001".into()));
    form.push(("decision".into(), "approve".into()));
    let done = client()
        .post(&action)
        .form(&form)
        .send()
        .await
        .expect("redirect");
    assert_eq!(done.status(), 303);
    let location = done.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(query_param(&location, "code").is_some());
}

#[tokio::test]
async fn unsupported_response_type_redirects_with_the_error() {
    let emu = emulator().await;
    let url = authorize_url(
        &emu,
        &[
            ("response_type", Some("token")),
            ("scope", Some(FULL_SCOPE)),
            ("client_id", Some(FA_CLIENT)),
            ("redirect_uri", Some(FA_REDIRECT)),
            ("state", Some("s9")),
        ],
    );
    let response = client().get(&url).send().await.expect("answer");
    assert!(response.status().is_redirection());
    let location = response.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("unsupported_response_type")
    );
    assert_eq!(query_param(&location, "state").as_deref(), Some("s9"));
}

#[tokio::test]
async fn a_redirect_uri_with_a_query_gets_parameters_appended_with_ampersand() {
    let emu = emulator().await;
    emu.control().register_flowaccount_client(FaClient {
        client_id: "other".into(),
        client_secret: "other-secret".into(),
        redirect_uris: vec!["http://127.0.0.1:9/cb?tenant=a b".into()],
    });
    let url = authorize_url(
        &emu,
        &[
            ("response_type", Some("code")),
            ("scope", Some("flowaccount-api")),
            ("client_id", Some("other")),
            ("redirect_uri", Some("http://127.0.0.1:9/cb?tenant=a b")),
        ],
    );
    let location = approve(&url, FA_USER, FA_PASSWORD, "FA-100001")
        .await
        .expect("ok");
    assert!(
        location.starts_with("http://127.0.0.1:9/cb?tenant=a b&code="),
        "{location}"
    );
    assert!(!location.contains("state="), "state only echoed when sent");
}

#[tokio::test]
async fn a_refresh_token_lives_one_day_from_its_issue() {
    let emu = emulator().await;
    let control = emu.control();
    let (_, tokens) = exchange(&emu, &authorize_code(&emu, FULL_SCOPE).await).await;
    let mut rt = str_of(&tokens, "refresh_token").to_string();
    // Refreshing daily keeps the connection alive indefinitely.
    for _ in 0..3 {
        control.advance_clock(Duration::hours(23));
        let (status, body) = refresh(&emu, &rt).await;
        assert_eq!(status, 200, "{body}");
        rt = str_of(&body, "refresh_token").to_string();
    }
    control.advance_clock(Duration::hours(24) + Duration::seconds(1));
    assert_eq!(
        control.flowaccount_refresh_token_status(&rt),
        TokenStatus::Expired
    );
    let (status, body) = refresh(&emu, &rt).await;
    assert_eq!((status, str_of(&body, "error")), (400, "invalid_grant"));
}

#[tokio::test]
async fn token_endpoint_errors_follow_rfc_6749() {
    let emu = emulator().await;
    let url = emu.flowaccount_token_url();
    let code = authorize_code(&emu, FULL_SCOPE).await;
    let (status, body) = post_form(
        &url,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", FA_REDIRECT),
            ("client_id", FA_CLIENT),
            ("client_secret", "wrong"),
        ],
    )
    .await;
    assert_eq!((status, str_of(&body, "error")), (401, "invalid_client"));
    let (status, body) = post_form(
        &url,
        &[("grant_type", "password"), ("client_id", FA_CLIENT)],
    )
    .await;
    assert_eq!(
        (status, str_of(&body, "error")),
        (400, "unsupported_grant_type")
    );
    let (status, body) = post_form(
        &url,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", FA_CLIENT),
            ("client_secret", FA_SECRET),
        ],
    )
    .await;
    assert_eq!((status, str_of(&body, "error")), (400, "invalid_request"));
    let (status, body) = post_form(&url, &[("client_id", FA_CLIENT)]).await;
    assert_eq!((status, str_of(&body, "error")), (400, "invalid_request"));
    let (status, body) = refresh(&emu, "never-issued").await;
    assert_eq!((status, str_of(&body, "error")), (400, "invalid_grant"));
    // JSON is not how a token request is made.
    let response = client()
        .post(&url)
        .json(&serde_json::json!({"grant_type": "refresh_token"}))
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 400);
    // The production path answers the same way; Basic client auth works too.
    let response = client()
        .post(format!("{}/flowaccount/v1/token", emu.base_url()))
        .basic_auth(FA_CLIENT, Some(FA_SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", FA_REDIRECT),
        ])
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 200);
}
