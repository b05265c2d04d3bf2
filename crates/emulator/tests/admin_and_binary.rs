//! The admin HTTP twin of `Control`, and the `authdeck-emulator` binary.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::test]
async fn admin_http_mirrors_control() {
    let emu = emulator().await;
    let base = emu.base_url();
    assert!(!base.ends_with('/'));

    let before = emu.control().now();
    let answer: Value = client()
        .post(format!("{base}/admin/clock/advance"))
        .json(&json!({"seconds": 3600}))
        .send()
        .await
        .expect("admin")
        .json()
        .await
        .expect("json");
    assert!(answer["now"].is_string());
    let moved = emu.control().now() - before;
    assert!(moved >= chrono::Duration::seconds(3600) && moved < chrono::Duration::seconds(3660));

    let response = client()
        .post(format!("{base}/admin/flowaccount/clients"))
        .json(&json!({"client_id": "web", "client_secret": "web-secret", "redirect_uris": ["http://127.0.0.1:8080/cb"]}))
        .send()
        .await
        .expect("admin");
    assert_eq!(response.status(), 201);
    let url = authorize_url(
        &emu,
        &[
            ("response_type", Some("code")),
            ("scope", Some(FULL_SCOPE)),
            ("client_id", Some("web")),
            ("redirect_uri", Some("http://127.0.0.1:8080/cb")),
        ],
    );
    let location = authdeck_emulator::approve(&url, FA_USER, FA_PASSWORD, "FA-100001")
        .await
        .expect("ok");
    let code = query_param(&location, "code").expect("code");
    let (status, tokens) = post_form(
        &emu.flowaccount_token_url(),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:8080/cb"),
            ("client_id", "web"),
            ("client_secret", "web-secret"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");

    let token_status = |token: String| {
        let base = base.clone();
        async move {
            let body: Value = client()
                .post(format!("{base}/admin/flowaccount/token-status"))
                .json(&json!({"refresh_token": token}))
                .send()
                .await
                .expect("admin")
                .json()
                .await
                .expect("json");
            body["status"].as_str().unwrap_or_default().to_string()
        }
    };
    let rt = str_of(&tokens, "refresh_token").to_string();
    assert_eq!(token_status(rt.clone()).await, "current");
    assert_eq!(token_status("nope".into()).await, "unknown");

    let response = client()
        .put(format!("{base}/admin/reuse-detection"))
        .json(&json!({"enabled": false}))
        .send()
        .await
        .expect("admin");
    assert_eq!(response.status(), 200);

    let stats: Value = client()
        .get(format!("{base}/admin/stats"))
        .send()
        .await
        .expect("admin")
        .json()
        .await
        .expect("json");
    assert_eq!(stats["token_requests"], 1);
    assert_eq!(stats["flowaccount"]["approvals"], 1);

    let bad = client()
        .post(format!("{base}/admin/latency"))
        .json(&json!({"milliseconds": 1}))
        .send()
        .await
        .expect("admin");
    assert_eq!(bad.status().as_u16() / 100, 4);

    let describe = emu.describe();
    assert!(
        describe.contains(&base)
            && describe.contains("demo-fedex-key")
            && describe.contains("operator-pass")
    );
}

#[tokio::test]
async fn the_binary_prints_its_address_first_and_serves_faults_from_the_command_line() {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_authdeck-emulator"))
        .args([
            "--port",
            "0",
            "--fault",
            "fedex:503:times=1",
            "--iot-expires-in",
            "epoch-s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("prints in time")
        .expect("reads")
        .expect("a line");
    let base = first
        .strip_prefix("listening on ")
        .expect("first line")
        .to_string();
    assert!(base.starts_with("http://127.0.0.1:"), "{first}");

    let fedex = format!("{base}/fedex/oauth/token");
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", "demo-fedex-key"),
        ("client_secret", "demo-fedex-secret"),
    ];
    assert_eq!(post_form(&fedex, &form).await.0, 503);
    assert_eq!(post_form(&fedex, &form).await.0, 200);

    let response = client()
        .post(format!("{base}/iot/oauth/token"))
        .header("Authorization", "Basic demo-iot-client")
        .form(&[
            ("grant_type", "password"),
            ("username", "operator"),
            ("password", "operator-pass"),
        ])
        .send()
        .await
        .expect("answer");
    let body: Value = response.json().await.expect("json");
    let exp = jwt_claims(str_of(&body, "access_token"))["exp"].as_i64();
    assert_eq!(
        body["expires_in"].as_i64(),
        exp,
        "epoch seconds from --iot-expires-in"
    );

    child.start_kill().expect("kill");
    let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
}
