//! A misbehaving provider echoes the secret it was sent, wrapped in a terminal escape,
//! in its error text: neither reaches stderr, a `--json` error, SQLite or the history.
//!
//! The server is a stub (an in-test axum server on 127.0.0.1), not the emulator: the
//! emulator follows PROVIDERS.md, and no real provider is known to do this.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::common::*;

const PASSWORD: &str = "CANARY-stub-password-3c9a";
const ACCESS_TOKEN: &str = "CANARY-stub-access-token-5d1e";
const REFRESH_TOKEN: &str = "CANARY-stub-refresh-token-8b2f";
/// The escape the stub puts in front of the echo: an OSC "set window title".
const OSC: &str = "\u{1b}]2;x\u{7}";

/// Whether the stub lets a password login through (else every request is refused).
#[derive(Clone, Default)]
struct Stub {
    accept_login: Arc<Mutex<bool>>,
}

/// `POST /oauth/token`: a login answer when allowed, else 403 echoing the password or
/// refresh token it was sent, after an escape sequence.
async fn token(
    State(stub): State<Stub>,
    Form(form): Form<HashMap<String, String>>,
) -> impl IntoResponse {
    let grant = form.get("grant_type").map(String::as_str);
    if grant == Some("password") && *stub.accept_login.lock().unwrap() {
        let answer = json!({
            "access_token": ACCESS_TOKEN, "token_type": "Bearer", "expires_in": 3600,
            "refresh_token": REFRESH_TOKEN, "userinfo": {"id": "U1", "username": "operator"},
        });
        return (StatusCode::OK, Json(answer));
    }
    let echo = match grant {
        Some("password") => form.get("password"),
        _ => form.get("refresh_token"),
    };
    let body = json!({
        "status": 403,
        "error": format!("{OSC} got {}", echo.map(String::as_str).unwrap_or("")),
    });
    (StatusCode::FORBIDDEN, Json(body))
}

/// What must not appear in any output or file.
fn assert_no_echo(what: &str, bytes: &[u8]) {
    for canary in [PASSWORD, ACCESS_TOKEN, REFRESH_TOKEN] {
        let needle = &canary.as_bytes()[..16];
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "{} in {what}",
            &canary[..20]
        );
    }
    // The OSC's text: what is left of it whether it was kept whole or only its ESC and
    // BEL were dropped (ESC and BEL alone may occur in binary files; text output is
    // checked for every control character).
    assert!(
        !bytes.windows(4).any(|w| w == b"]2;x"),
        "the stub's escape sequence in {what}"
    );
}

/// Text output: no canary, and no control character but line breaks.
fn assert_clean_output(run: &Run) {
    for (name, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
        assert_no_echo(&format!("{name} of {}", run.describe()), text.as_bytes());
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "a control character in {name}: {}",
            run.describe()
        );
    }
}

#[test]
fn a_provider_echoing_the_password_or_refresh_token_leaks_nothing() {
    let fx = Fixture::new();
    let stub = Stub::default();
    let listener = fx
        .rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let auth_url = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new()
        .route("/oauth/token", post(token))
        .with_state(stub.clone());
    fx.rt.spawn(async move { axum::serve(listener, app).await });
    fx.ok(&[
        "client",
        "add",
        "iot",
        "--name",
        "stub",
        "--client-id",
        "app",
        "--auth-url",
        &auth_url,
    ]);
    let connect = |json: bool| {
        let mut args = vec![
            "connect",
            "iot",
            "--client",
            "stub",
            "--username",
            "operator",
            "--password-stdin",
        ];
        if json {
            args.insert(0, "--json");
        }
        fx.run_stdin(&args, &format!("{PASSWORD}\n"))
    };

    // 1. Login: the stub echoes the password.
    let text = connect(false);
    text.assert_one_line_error(1, "provider_error");
    assert!(
        text.stderr.contains("got [redacted]"),
        "the provider's text is shown, redacted: {}",
        text.describe()
    );
    let json = connect(true);
    json.assert_code(1);
    let err = json.json_error();
    assert_eq!(err["code"], "provider_error", "{err}");
    assert!(
        err["message"].as_str().unwrap().contains("got [redacted]"),
        "{err}"
    );

    // 2. A connection, then a refresh the stub answers by echoing the refresh token.
    *stub.accept_login.lock().unwrap() = true;
    let conn = connect(true);
    conn.assert_code(0);
    let id = id_of(&conn.json());
    *stub.accept_login.lock().unwrap() = false;
    let text = fx.run(&["refresh", &id]);
    text.assert_one_line_error(1, "provider_error");
    assert!(
        text.stderr.contains("got [redacted]"),
        "{}",
        text.describe()
    );
    let json = fx.run(&["--json", "refresh", &id]);
    json.assert_code(1);
    let err = json.json_error();
    assert!(
        err["message"].as_str().unwrap().contains("got [redacted]"),
        "{err}"
    );
    fx.run(&["--json", "refresh", "--all"]);

    // 3. Where the error is kept: the connection's last error and the history.
    let status = fx.json(&["status", &id]);
    let last = status["last_error"]["message"].as_str().unwrap_or_default();
    assert!(last.contains("got [redacted]"), "{status}");
    fx.ok(&["status", &id]);
    let history: Value = fx.json(&["history"]);
    assert!(
        history.to_string().contains("got [redacted]"),
        "the failures are in the history: {history}"
    );
    fx.ok(&["history"]);
    fx.ok(&["list"]);

    for run in fx.all_runs() {
        assert_clean_output(&run);
    }
    let files = fx.data_files();
    assert!(
        files.iter().any(|(p, _)| p.ends_with("authdeck.sqlite3")),
        "{:?}",
        files.iter().map(|(p, _)| p).collect::<Vec<_>>()
    );
    for (path, bytes) in &files {
        assert_no_echo(&path.display().to_string(), bytes);
    }
}
