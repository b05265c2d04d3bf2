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
    let answer: Value = admin_client(&emu)
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

    let response = admin_client(&emu)
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

    let admin = admin_client(&emu);
    let token_status = |token: String| {
        let base = base.clone();
        let admin = admin.clone();
        async move {
            let body: Value = admin
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

    let response = admin_client(&emu)
        .put(format!("{base}/admin/reuse-detection"))
        .json(&json!({"enabled": false}))
        .send()
        .await
        .expect("admin");
    assert_eq!(response.status(), 200);

    let stats: Value = admin_client(&emu)
        .get(format!("{base}/admin/stats"))
        .send()
        .await
        .expect("admin")
        .json()
        .await
        .expect("json");
    assert_eq!(stats["token_requests"], 1);
    assert_eq!(stats["flowaccount"]["approvals"], 1);

    let bad = admin_client(&emu)
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
async fn admin_needs_this_runs_bearer_token() {
    let emu = emulator().await;
    let other = emulator().await;
    let token = emu.admin_token().to_string();
    // 256 bits, base64url; new on every start.
    assert_eq!(token.len(), 43, "{}", token.len());
    assert_ne!(token, other.admin_token());
    let stats = format!("{}/admin/stats", emu.base_url());
    let faults = format!("{}/admin/faults", emu.base_url());

    let status = |request: reqwest::RequestBuilder| async move {
        request.send().await.expect("answer").status().as_u16()
    };
    assert_eq!(status(client().get(&stats)).await, 401, "no token");
    assert_eq!(
        status(client().get(&stats).bearer_auth(other.admin_token())).await,
        401,
        "another run's token"
    );
    assert_eq!(
        status(client().get(&stats).bearer_auth(&token[..42])).await,
        401,
        "a prefix"
    );
    assert_eq!(
        status(client().get(&stats).basic_auth(&token, None::<&str>)).await,
        401,
        "not as Basic"
    );
    // A write without the token changes nothing.
    assert_eq!(
        status(client().post(&faults).json(&json!("fedex:500"))).await,
        401
    );
    assert!(emu.control().faults().is_empty());
    let unauthorized = client().get(&stats).send().await.expect("answer");
    assert!(unauthorized
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Bearer")));
    assert!(!unauthorized.text().await.expect("body").contains(&token));

    assert_eq!(
        status(client().get(&stats).bearer_auth(&token)).await,
        200,
        "the token"
    );
    // The pages and provider endpoints need none, and never show the token.
    let index = client()
        .get(format!("{}/", emu.base_url()))
        .send()
        .await
        .expect("index");
    assert_eq!(index.status(), 200);
    assert!(!index.text().await.expect("body").contains(&token));
    assert!(!emu.describe().contains(&token));

    // A token given in the configuration is the one wanted.
    let mut config = authdeck_emulator::EmulatorConfig::demo();
    let chosen = "x".repeat(40);
    config.admin_token = Some(authdeck_emulator::AdminToken::new(chosen.clone()).expect("token"));
    assert!(!format!("{config:?}").contains(&chosen), "Debug redacts it");
    let given = emulator_with(config).await;
    assert_eq!(given.admin_token(), chosen);
    let stats = format!("{}/admin/stats", given.base_url());
    assert_eq!(status(client().get(&stats).bearer_auth(&chosen)).await, 200);
    assert!(authdeck_emulator::AdminToken::new("short").is_err());
}

#[tokio::test]
async fn the_binary_takes_its_admin_token_from_the_environment() {
    let token = "e".repeat(48);
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_authdeck-emulator"))
        .args(["--port", "0"])
        .env("AUTHDECK_EMULATOR_ADMIN_TOKEN", &token)
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
    let base = first.strip_prefix("listening on ").expect("first line");
    let stats = format!("{base}/admin/stats");
    let with = client().get(&stats).bearer_auth(&token).send().await;
    assert_eq!(with.expect("answer").status(), 200);
    let without = client().get(&stats).send().await.expect("answer");
    assert_eq!(without.status(), 401);
    child.start_kill().expect("kill");
    let mut rest = String::new();
    while let Ok(Ok(Some(line))) =
        tokio::time::timeout(Duration::from_secs(5), lines.next_line()).await
    {
        rest.push_str(&line);
        rest.push('\n');
    }
    assert!(
        !rest.contains(&token),
        "a token from the environment is not echoed"
    );
    let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;

    // Too short: refused, with nothing served.
    let refused = tokio::process::Command::new(env!("CARGO_BIN_EXE_authdeck-emulator"))
        .args(["--port", "0"])
        .env("AUTHDECK_EMULATOR_ADMIN_TOKEN", "short")
        .output()
        .await
        .expect("runs");
    assert_eq!(refused.status.code(), Some(2));
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
        .env_remove("AUTHDECK_EMULATOR_ADMIN_TOKEN")
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
    // Then this run's admin token (none was given in the environment).
    let second = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("prints in time")
        .expect("reads")
        .expect("a line");
    let token = second.strip_prefix("admin token ").expect("second line");
    assert_eq!(token.len(), 43, "{second}");
    let stats = format!("{base}/admin/stats");
    let answer = client().get(&stats).bearer_auth(token).send().await;
    assert_eq!(answer.expect("answer").status(), 200);
    let answer = client().get(&stats).send().await.expect("answer");
    assert_eq!(answer.status(), 401);

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
