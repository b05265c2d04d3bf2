//! The IPC contract, exercised through Tauri's mock runtime (no display needed): the
//! commands are the real ones, over a real SQLite file and the real Secret Service,
//! talking to the emulator over HTTP.

use std::path::{Path, PathBuf};

use authdeck_app::commands;
use authdeck_app::state::AppState;
use authdeck_core::store::paths::Paths;
use serde_json::{json, Value};
use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{get_ipc_response, mock_builder, INVOKE_KEY};
use tauri::webview::InvokeRequest;
use tauri::{Manager, WebviewWindow, WebviewWindowBuilder};

fn require_keyring() {
    assert!(
        std::env::var_os("AUTHDECK_TEST_KEYRING").is_some(),
        "these tests use the real Secret Service: run them under scripts/with-keyring.sh (make test)"
    );
}

struct App {
    _app: tauri::App<tauri::test::MockRuntime>,
    window: WebviewWindow<tauri::test::MockRuntime>,
    _dir: tempfile::TempDir,
}

fn app() -> App {
    require_keyring();
    let dir = tempfile::tempdir().unwrap();
    let paths = Paths {
        data_dir: dir.path().to_path_buf(),
        keyring_service: format!(
            "authdeck-test-{}",
            std::process::id() as u64 * 1000 + rand_suffix()
        ),
    };
    let app = mock_builder()
        .invoke_handler(commands::handler())
        .build(authdeck_app::context())
        .unwrap();
    app.manage(AppState::open(paths, false).unwrap());
    let window = WebviewWindowBuilder::new(&app, "main", Default::default())
        .build()
        .unwrap();
    App {
        _app: app,
        window,
        _dir: dir,
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}

fn invoke(app: &App, cmd: &str, args: Value) -> Result<Value, Value> {
    invoke_from(app, "tauri://localhost", cmd, args)
}

fn invoke_from(app: &App, origin: &str, cmd: &str, args: Value) -> Result<Value, Value> {
    get_ipc_response(
        &app.window,
        InvokeRequest {
            cmd: cmd.into(),
            callback: CallbackFn(0),
            error: CallbackFn(1),
            url: origin.parse().unwrap(),
            body: InvokeBody::Json(args),
            headers: Default::default(),
            invoke_key: INVOKE_KEY.to_string(),
        },
    )
    .map(|body| body.deserialize::<Value>().unwrap())
}

/// The shape the UI's error handling depends on.
#[test]
fn command_failure_matches_the_frontend_wire_contract() {
    let app = app();
    let err = invoke(
        &app,
        "connection_details",
        json!({"id": "no-such-connection"}),
    )
    .unwrap_err();
    assert_eq!(err["code"], "not_found");
    assert!(err["message"]
        .as_str()
        .unwrap()
        .contains("no-such-connection"));
    let keys: Vec<_> = err.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["code", "message"], "no detail when there is none");

    let err = invoke(&app, "add_client", json!({"input": {
        "name": "x", "provider": "fedex", "environment": null, "client_id": "id",
        "client_secret": "s", "authorize_url": null, "token_url": "http://example.com/token",
        "auth_url": null, "redirect_uri": null, "pkce": false, "iot_basic_auth": "raw", "iot_body": "form"
    }}))
    .unwrap_err();
    assert_eq!(err["code"], "invalid_input");
    // Malformed IPC arguments are rejected by deserialisation before any command runs.
    assert!(invoke(&app, "refresh", json!({"id": 42})).is_err());
}

/// The app's real capabilities (tauri.conf.json, capabilities/, permissions/default.toml)
/// grant the main window every command of src/command_list.rs: a command added to the
/// list but not to permissions/default.toml fails here. The handler only says it was
/// reached, so no command runs.
#[test]
fn every_listed_command_is_granted_to_the_main_window() {
    let app = mock_builder()
        .invoke_handler(|invoke: tauri::ipc::Invoke<tauri::test::MockRuntime>| {
            let name = invoke.message.command().to_owned();
            invoke.resolver.resolve(format!("reached {name}"));
            true
        })
        .build(authdeck_app::context())
        .unwrap();
    let window = WebviewWindowBuilder::new(&app, "main", Default::default())
        .build()
        .unwrap();
    let app = App {
        _app: app,
        window,
        _dir: tempfile::tempdir().unwrap(),
    };
    for &name in commands::COMMANDS {
        assert_eq!(
            invoke(&app, name, json!({})),
            Ok(json!(format!("reached {name}"))),
            "{name}: add allow-{} to src-tauri/permissions/default.toml",
            name.replace('_', "-")
        );
    }
    // Not a command of the app: the same window is refused (the check can fail).
    let refused = invoke(&app, "not_a_command", json!({})).unwrap_err();
    assert!(refused.to_string().contains("not allowed"), "{refused}");
}

/// Only the app's own pages may call its commands; remote content may not.
#[test]
fn remote_origins_are_denied() {
    let app = app();
    let denied = invoke_from(&app, "https://evil.example", "snapshot", json!({})).unwrap_err();
    assert!(denied.to_string().contains("not allowed"), "{denied}");
    assert!(invoke(&app, "snapshot", json!({})).is_ok());
}

#[test]
fn app_info_reports_the_redirect_uri_and_missing_single_instance() {
    let app = app();
    let info = invoke(&app, "app_info", json!({})).unwrap();
    assert_eq!(info["redirect_uri"], "com.authdeck.desktop:/oauth/callback");
    assert_eq!(info["single_instance"], false);
    assert!(info["deep_link_problem"]
        .as_str()
        .unwrap()
        .contains("D-Bus"));
}

/// A provider that echoes the password or refresh token it was sent, behind a terminal
/// escape, in its error text (an in-test stub, not the emulator): the IPC error and the
/// history carry neither.
#[test]
fn a_provider_echoing_a_secret_leaks_nothing_over_ipc() {
    use axum::extract::{Form, State};
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    const PASSWORD: &str = "CANARY-ipc-password-3c9a";
    const REFRESH: &str = "CANARY-ipc-refresh-8b2f";
    async fn token(
        State(accept): State<Arc<AtomicBool>>,
        Form(form): Form<HashMap<String, String>>,
    ) -> (axum::http::StatusCode, axum::Json<Value>) {
        let login = form.get("grant_type").is_some_and(|g| g == "password");
        if login && accept.load(Ordering::SeqCst) {
            let ok = json!({"access_token": "at-1", "expires_in": 3600,
                "refresh_token": REFRESH, "userinfo": {"id": "U1"}});
            return (axum::http::StatusCode::OK, axum::Json(ok));
        }
        let echo = form.get(if login { "password" } else { "refresh_token" });
        let error = format!("\u{1b}]2;x\u{7} got {}", echo.cloned().unwrap_or_default());
        (
            axum::http::StatusCode::FORBIDDEN,
            axum::Json(json!({"status": 403, "error": error})),
        )
    }
    let assert_clean = |what: &str, v: &Value| {
        let text = v.to_string();
        assert!(
            !text.contains("CANARY") && !text.contains("]2;x"),
            "{what}: {text}"
        );
        assert!(
            !text.contains("\\u001b") && !text.contains("\\u0007"),
            "{what}: {text}"
        );
    };

    let app = app();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let accept = Arc::new(AtomicBool::new(false));
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let auth_url = format!("http://{}", listener.local_addr().unwrap());
    let router = axum::Router::new()
        .route("/oauth/token", axum::routing::post(token))
        .with_state(accept.clone());
    rt.spawn(async move { axum::serve(listener, router).await });
    invoke(
        &app,
        "add_client",
        json!({"input": {
            "name": "stub", "provider": "iot", "environment": null, "client_id": "app",
            "client_secret": null, "authorize_url": null, "token_url": null, "auth_url": auth_url,
            "redirect_uri": null, "pkce": false, "iot_basic_auth": "raw", "iot_body": "form"
        }}),
    )
    .unwrap();
    let login = json!({"input": {"client": "stub", "username": "operator", "password": PASSWORD}});

    let err = invoke(&app, "connect_iot", login.clone()).unwrap_err();
    assert_eq!(err["code"], "provider_error", "{err}");
    assert!(
        err["message"].as_str().unwrap().contains("got [redacted]"),
        "{err}"
    );
    assert_clean("the login error", &err);

    accept.store(true, Ordering::SeqCst);
    let conn = invoke(&app, "connect_iot", login).unwrap();
    accept.store(false, Ordering::SeqCst);
    let err = invoke(&app, "refresh", json!({"id": conn["id"]})).unwrap_err();
    assert!(
        err["message"].as_str().unwrap().contains("got [redacted]"),
        "{err}"
    );
    assert_clean("the refresh error", &err);
    let details = invoke(&app, "connection_details", json!({"id": conn["id"]})).unwrap();
    assert!(details.to_string().contains("got [redacted]"), "{details}");
    assert_clean("the connection's details", &details);
    assert_clean(
        "the history",
        &invoke(&app, "history", json!({"id": null})).unwrap(),
    );
}

#[test]
fn connect_refresh_and_logout_through_ipc() {
    let app = app();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let emulator = rt
        .block_on(authdeck_emulator::start(
            authdeck_emulator::EmulatorConfig::demo(),
            "127.0.0.1:0".parse().unwrap(),
        ))
        .unwrap();
    let add = |name: &str, provider: &str, secret: Value, token_url: Value, auth_url: Value| {
        invoke(
            &app,
            "add_client",
            json!({"input": {
                "name": name, "provider": provider, "environment": null, "client_id": match provider { "fedex" => "demo-fedex-key", _ => "demo-iot-client" },
                "client_secret": secret, "authorize_url": null, "token_url": token_url, "auth_url": auth_url,
                "redirect_uri": null, "pkce": false, "iot_basic_auth": "raw", "iot_body": "form"
            }}),
        )
    };
    add(
        "fedex",
        "fedex",
        json!("demo-fedex-secret"),
        json!(emulator.fedex_token_url()),
        Value::Null,
    )
    .unwrap();
    add(
        "iot",
        "iot",
        Value::Null,
        Value::Null,
        json!(emulator.iot_auth_url()),
    )
    .unwrap();
    let clients = invoke(&app, "list_clients", json!({})).unwrap();
    assert_eq!(clients.as_array().unwrap().len(), 2);
    assert!(
        !clients.to_string().contains("demo-fedex-secret"),
        "secrets never cross IPC"
    );

    let fedex = invoke(&app, "connect_fedex", json!({"input": {"client": "fedex", "grant": "csp_credentials", "child_key": "demo-child-key", "child_secret": "demo-child-secret"}})).unwrap();
    assert_eq!(fedex["grant"], "csp_credentials");
    let iot = invoke(
        &app,
        "connect_iot",
        json!({"input": {"client": "iot", "username": "operator", "password": "operator-pass"}}),
    )
    .unwrap();
    assert_eq!(iot["user_id"], "U974814773204");
    let snapshot = invoke(&app, "snapshot", json!({})).unwrap();
    let rows = snapshot["connections"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    // Rows are lean: no decoded JWT, userinfo or token generation for a list of 1,000.
    for row in rows {
        for heavy in ["jwt", "userinfo", "secret_generation", "scope"] {
            assert!(row.get(heavy).is_none(), "{heavy} in a list row: {row}");
        }
    }
    assert!(rows.iter().any(|r| r["username"] == "operator"));

    let before = iot["secret_generation"].as_i64().unwrap();
    let refreshed = invoke(&app, "refresh", json!({"id": iot["id"]})).unwrap();
    assert_eq!(refreshed["secret_generation"].as_i64().unwrap(), before + 1);
    let details = invoke(&app, "connection_details", json!({"id": iot["id"]})).unwrap();
    assert_eq!(details["history"][0]["event"], "refresh");
    assert_eq!(
        details["connection"]["jwt"]["claims"]["ctx"]["owner"],
        "U974814773204"
    );

    assert_eq!(
        invoke(&app, "logout", json!({"id": iot["id"]})).unwrap(),
        json!("revoked")
    );
    assert!(emulator.control().iot_sessions().iter().all(|s| s.revoked));
    let forged = invoke(
        &app,
        "complete_callback",
        json!({"url": "com.authdeck.desktop:/oauth/callback?code=x&state=forged"}),
    )
    .unwrap_err();
    assert_eq!(forged["code"], "invalid_callback");
    let history = invoke(&app, "history", json!({"id": null})).unwrap();
    assert_eq!(history[0]["event"], "callback_rejected");
    rt.block_on(emulator.shutdown());
}

/// The activity view over IPC: a rejected redirect and a removed connection's events
/// are in it, each by its connection's name; FedEx "keep fresh" switches (FedEx only);
/// the export writes the list to the picked file, without a secret.
#[test]
fn activity_keep_fresh_and_export_through_ipc() {
    const CHILD_SECRET: &str = "demo-child-secret";
    let app = app();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let emulator = rt
        .block_on(authdeck_emulator::start(
            authdeck_emulator::EmulatorConfig::demo(),
            "127.0.0.1:0".parse().unwrap(),
        ))
        .unwrap();
    for (name, provider, secret, token_url, auth_url) in [
        (
            "fedex",
            "fedex",
            json!("demo-fedex-secret"),
            json!(emulator.fedex_token_url()),
            Value::Null,
        ),
        (
            "iot",
            "iot",
            Value::Null,
            Value::Null,
            json!(emulator.iot_auth_url()),
        ),
    ] {
        invoke(&app, "add_client", json!({"input": {
            "name": name, "provider": provider, "environment": null,
            "client_id": if provider == "fedex" { "demo-fedex-key" } else { "demo-iot-client" },
            "client_secret": secret, "authorize_url": null, "token_url": token_url, "auth_url": auth_url,
            "redirect_uri": null, "pkce": false, "iot_basic_auth": "raw", "iot_body": "form"
        }}))
        .unwrap();
    }
    let fedex = invoke(&app, "connect_fedex", json!({"input": {"client": "fedex", "grant": "csp_credentials", "child_key": "demo-child-key", "child_secret": CHILD_SECRET}})).unwrap();
    let iot = invoke(
        &app,
        "connect_iot",
        json!({"input": {"client": "iot", "username": "operator", "password": "operator-pass"}}),
    )
    .unwrap();

    // Keep fresh: FedEx switches both ways; the IoT connection is refused, unchanged.
    assert_eq!(fedex["keep_fresh"], false);
    let on = invoke(
        &app,
        "set_keep_fresh",
        json!({"id": fedex["id"], "keepFresh": true}),
    )
    .unwrap();
    assert_eq!(on["keep_fresh"], true);
    let details = invoke(&app, "connection_details", json!({"id": fedex["id"]})).unwrap();
    assert_eq!(details["connection"]["keep_fresh"], true, "stored");
    let off = invoke(
        &app,
        "set_keep_fresh",
        json!({"id": fedex["id"], "keepFresh": false}),
    )
    .unwrap();
    assert_eq!(off["keep_fresh"], false);
    let refused = invoke(
        &app,
        "set_keep_fresh",
        json!({"id": iot["id"], "keepFresh": false}),
    )
    .unwrap_err();
    assert_eq!(refused["code"], "invalid_input", "{refused}");
    let iot_now = invoke(&app, "connection_details", json!({"id": iot["id"]})).unwrap();
    assert_eq!(iot_now["connection"]["keep_fresh"], iot["keep_fresh"]);

    // Export: the picked file gets the CSV (and the JSON), with no secret in it.
    let out = tempfile::tempdir().unwrap();
    let target = out.path().to_path_buf();
    app._app
        .manage(commands::SavePathPicker(Box::new(move |name| {
            Some(target.join(name))
        })));
    let saved = invoke(&app, "export_connections", json!({"format": "csv"})).unwrap();
    let csv_path = out.path().join("authdeck-connections.csv");
    assert_eq!(saved, json!(csv_path.display().to_string()));
    let csv = std::fs::read_to_string(&csv_path).unwrap();
    assert!(
        csv.starts_with("name,company,provider,status,access_token_expires_at,"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 3, "{csv}");
    invoke(&app, "export_connections", json!({"format": "json"})).unwrap();
    let json_text = std::fs::read_to_string(out.path().join("authdeck-connections.json")).unwrap();
    let rows: Value = serde_json::from_str(&json_text).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 2);
    assert!(rows
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["name"] == iot["label"]));
    for text in [&csv, &json_text] {
        for secret in [CHILD_SECRET, "demo-fedex-secret", "operator-pass"] {
            assert!(!text.contains(secret), "{secret} in the export: {text}");
        }
    }
    assert!(invoke(&app, "export_connections", json!({"format": "xml"})).is_err());

    // A forged redirect and a removed connection: both in the activity view.
    let forged = invoke(
        &app,
        "complete_callback",
        json!({"url": "com.authdeck.desktop:/oauth/callback?code=x&state=forged"}),
    )
    .unwrap_err();
    assert_eq!(forged["code"], "invalid_callback");
    assert_eq!(
        invoke(&app, "logout", json!({"id": iot["id"]})).unwrap(),
        json!("revoked")
    );
    let activity = invoke(&app, "activity", json!({})).unwrap();
    let entries = activity.as_array().unwrap();
    let rejected: Vec<_> = entries
        .iter()
        .filter(|e| e["event"] == "callback_rejected")
        .collect();
    assert_eq!(rejected.len(), 1, "{activity:#}");
    assert_eq!(rejected[0]["outcome"], "invalid_callback");
    assert!(rejected[0]["connection_id"].is_null());
    let removed: Vec<_> = entries
        .iter()
        .filter(|e| e["connection_id"] == iot["id"])
        .collect();
    let events: Vec<_> = removed
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["logout", "connect"], "{activity:#}");
    for e in &removed {
        assert_eq!(e["connection_label"], iot["label"]);
        assert_eq!(e["provider"], "iot");
        assert_eq!(e["removed"], true);
    }
    let kept: Vec<_> = entries
        .iter()
        .filter(|e| e["connection_id"] == fedex["id"])
        .collect();
    assert!(
        !kept.is_empty() && kept.iter().all(|e| e["removed"] == false),
        "{activity:#}"
    );
    rt.block_on(emulator.shutdown());
}

/// FedEx's spelling of a grant and the kebab-case one are the same grant over IPC too;
/// what comes back is FedEx's spelling. An unknown grant is refused before the command.
#[test]
fn fedex_grants_take_either_spelling_over_ipc() {
    let app = app();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let emulator = rt
        .block_on(authdeck_emulator::start(
            authdeck_emulator::EmulatorConfig::demo(),
            "127.0.0.1:0".parse().unwrap(),
        ))
        .unwrap();
    invoke(&app, "add_client", json!({"input": {
        "name": "fedex", "provider": "fedex", "environment": null, "client_id": "demo-fedex-key",
        "client_secret": "demo-fedex-secret", "authorize_url": null,
        "token_url": emulator.fedex_token_url(), "auth_url": null, "redirect_uri": null,
        "pkce": false, "iot_basic_auth": "raw", "iot_body": "form"
    }}))
    .unwrap();
    for (grant, fedex) in [
        ("csp-credentials", "csp_credentials"),
        ("client_pc_credentials", "client_pc_credentials"),
        ("client-credentials", "client_credentials"),
    ] {
        let child = if fedex == "client_credentials" {
            json!({"child_key": null, "child_secret": null})
        } else {
            json!({"child_key": "demo-child-key", "child_secret": "demo-child-secret"})
        };
        let conn = invoke(
            &app,
            "connect_fedex",
            json!({"input": {
                "client": "fedex", "grant": grant,
                "child_key": child["child_key"], "child_secret": child["child_secret"]
            }}),
        )
        .unwrap();
        assert_eq!(conn["grant"], fedex);
    }
    let stats = emulator.control().stats();
    assert_eq!(
        (
            stats.fedex.csp_credentials,
            stats.fedex.client_pc_credentials,
            stats.fedex.client_credentials
        ),
        (1, 1, 1)
    );
    assert!(invoke(
        &app,
        "connect_fedex",
        json!({"input": {
            "client": "fedex", "grant": "csp", "child_key": null, "child_secret": null
        }})
    )
    .is_err());
    assert_eq!(emulator.control().stats().fedex.token_requests, 3);
    rt.block_on(emulator.shutdown());
}

fn port_of(url: &Value) -> u16 {
    url::Url::parse(url.as_str().unwrap())
        .unwrap()
        .port()
        .unwrap()
}

/// The sandbox from the window: a free port (its clients follow it), badged rows, the
/// running state in `app_info` with a stop, "not running" when stopped, and one leave
/// that removes the sandbox's clients and connections only.
#[test]
fn the_sandbox_starts_stops_says_when_it_is_not_running_and_is_left_through_ipc() {
    let app = app();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let emulator = rt
        .block_on(authdeck_emulator::start(
            authdeck_emulator::EmulatorConfig::demo(),
            "127.0.0.1:0".parse().unwrap(),
        ))
        .unwrap();
    invoke(
        &app,
        "add_client",
        json!({"input": {
            "name": "ship", "provider": "fedex", "environment": null, "client_id": "demo-fedex-key",
            "client_secret": "demo-fedex-secret", "authorize_url": null, "token_url": emulator.fedex_token_url(),
            "auth_url": null, "redirect_uri": null, "pkce": false, "iot_basic_auth": "raw", "iot_body": "form"
        }}),
    )
    .unwrap();
    let fedex_input = |client: &str| json!({"input": {"client": client, "grant": "client_credentials", "child_key": null, "child_secret": null}});
    let real = invoke(&app, "connect_fedex", fedex_input("ship")).unwrap();
    assert_eq!(real["sandbox"], false);
    assert!(invoke(&app, "app_info", json!({})).unwrap()["sandbox"].is_null());

    let info = invoke(&app, "start_sandbox", json!({})).unwrap();
    let port = port_of(&info["base_url"]);
    assert_ne!(port, 47801, "a free port, not a fixed one");
    assert_eq!(info["clients"].as_array().unwrap().len(), 4, "{info}");
    assert_eq!(
        invoke(&app, "app_info", json!({})).unwrap()["sandbox"]["base_url"],
        info["base_url"]
    );
    let clients = invoke(&app, "list_clients", json!({})).unwrap();
    for c in clients.as_array().unwrap() {
        let demo = c["name"] != "ship";
        assert_eq!(c["sandbox"], demo, "{c}");
        if demo {
            assert_eq!(port_of(&c["endpoints"]["token_url"]), port);
        }
    }
    let demo = invoke(&app, "connect_fedex", fedex_input("sandbox-fedex")).unwrap();
    assert_eq!(demo["sandbox"], true);
    let snapshot = invoke(&app, "snapshot", json!({})).unwrap();
    for row in snapshot["connections"].as_array().unwrap() {
        assert_eq!(row["sandbox"], row["id"] == demo["id"], "{row}");
    }

    // Stopped: app_info says so, and the demo row's refresh says why it fails.
    invoke(&app, "stop_sandbox", json!({})).unwrap();
    assert!(invoke(&app, "app_info", json!({})).unwrap()["sandbox"].is_null());
    let err = invoke(&app, "refresh", json!({"id": demo["id"]})).unwrap_err();
    assert_eq!(err["code"], "sandbox_not_running", "{err}");
    assert!(err["message"]
        .as_str()
        .unwrap()
        .starts_with("The sandbox is not running"));
    invoke(&app, "refresh", json!({"id": real["id"]})).unwrap();

    // Started again: the demo client follows the new run.
    let again = invoke(&app, "start_sandbox", json!({})).unwrap();
    let clients = invoke(&app, "list_clients", json!({})).unwrap();
    let demo_client = clients
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "sandbox-fedex")
        .unwrap()
        .clone();
    assert_eq!(
        port_of(&demo_client["endpoints"]["token_url"]),
        port_of(&again["base_url"])
    );
    invoke(&app, "refresh", json!({"id": demo["id"]})).unwrap();

    let report = invoke(&app, "leave_sandbox", json!({})).unwrap();
    assert_eq!(
        report["connections"].as_array().unwrap().len(),
        1,
        "{report}"
    );
    assert_eq!(report["clients"].as_array().unwrap().len(), 4, "{report}");
    assert!(invoke(&app, "app_info", json!({})).unwrap()["sandbox"].is_null());
    let rows = invoke(&app, "snapshot", json!({})).unwrap()["connections"].clone();
    assert_eq!(rows.as_array().unwrap().len(), 1);
    assert_eq!(rows[0]["id"], real["id"]);
    let clients = invoke(&app, "list_clients", json!({})).unwrap();
    assert_eq!(clients.as_array().unwrap().len(), 1);
    assert_eq!(clients[0]["name"], "ship");
    // Stopped for real: nothing listens on its port any more.
    assert!(std::net::TcpStream::connect(("127.0.0.1", port_of(&again["base_url"]))).is_err());
    rt.block_on(emulator.shutdown());
}

/// `open_authorize_url` takes a pending authorization's id and opens exactly the URL of
/// one this window started and that is still pending; anything else is
/// `invalid_input` and nothing is opened.
#[test]
fn open_authorize_url_opens_only_a_pending_authorization_this_window_started() {
    use std::sync::{Arc, Mutex};
    let app = app();
    let handle = app.window.app_handle().clone();
    let opened = Arc::new(Mutex::new(Vec::<String>::new()));
    let record = opened.clone();
    handle.manage(commands::UrlOpener(Box::new(move |url| {
        record.lock().unwrap().push(url.to_owned());
        Ok(())
    })));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let emulator = rt
        .block_on(authdeck_emulator::start(
            authdeck_emulator::EmulatorConfig::demo(),
            "127.0.0.1:0".parse().unwrap(),
        ))
        .unwrap();
    invoke(
        &app,
        "add_client",
        json!({"input": {
            "name": "fa", "provider": "flowaccount", "environment": null,
            "client_id": "demo-flowaccount", "client_secret": "demo-flowaccount-secret",
            "authorize_url": emulator.flowaccount_authorize_url(),
            "token_url": emulator.flowaccount_token_url(), "auth_url": null,
            "redirect_uri": null, "pkce": false, "iot_basic_auth": "raw", "iot_body": "form"
        }}),
    )
    .unwrap();
    let manager = app.window.state::<AppState>().manager().clone();
    // What `connect_flowaccount` does (minus opening the browser).
    let pending = rt.block_on(manager.begin_flowaccount("fa")).unwrap();
    commands::remember_started(&handle, &pending);
    // Started elsewhere (the CLI, another window): pending, but not this window's.
    let elsewhere = rt.block_on(manager.begin_flowaccount("fa")).unwrap();

    let open = |id: &str| invoke(&app, "open_authorize_url", json!({ "id": id }));
    let refused = |id: &str| {
        let err = open(id).unwrap_err();
        assert_eq!(err["code"], "invalid_input", "{err}");
    };
    refused("no-such-authorization");
    refused("");
    refused(&pending.authorize_url); // a URL is not an id
    refused(&elsewhere.id);
    assert!(
        invoke(
            &app,
            "open_authorize_url",
            json!({ "url": pending.authorize_url })
        )
        .is_err(),
        "a URL argument is not accepted"
    );
    assert!(opened.lock().unwrap().is_empty(), "nothing was opened");

    open(&pending.id).unwrap();
    assert_eq!(
        *opened.lock().unwrap(),
        std::slice::from_ref(&pending.authorize_url)
    );

    // Once used, it is no longer pending: not opened again.
    let redirect = rt
        .block_on(authdeck_emulator::approve(
            &pending.authorize_url,
            "demo@example.com",
            "demo",
            "FA-100001",
        ))
        .unwrap();
    invoke(&app, "complete_callback", json!({ "url": redirect })).unwrap();
    refused(&pending.id);
    assert_eq!(opened.lock().unwrap().len(), 1);
    rt.block_on(emulator.shutdown());
}

/// "Who is this connection" over IPC: the probe's company in the list row and the
/// details, `check` (its failure is an error with the record kept), `set_label`.
#[test]
fn company_check_and_label_through_ipc() {
    let app = app();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let emulator = rt
        .block_on(authdeck_emulator::start(
            authdeck_emulator::EmulatorConfig::demo(),
            "127.0.0.1:0".parse().unwrap(),
        ))
        .unwrap();
    invoke(
        &app,
        "add_client",
        json!({"input": {
            "name": "fa", "provider": "flowaccount", "environment": null,
            "client_id": "demo-flowaccount", "client_secret": "demo-flowaccount-secret",
            "authorize_url": emulator.flowaccount_authorize_url(),
            "token_url": emulator.flowaccount_token_url(), "auth_url": null,
            "api_url": emulator.flowaccount_api_base(),
            "redirect_uri": null, "pkce": true, "iot_basic_auth": "raw", "iot_body": "form"
        }}),
    )
    .unwrap();
    let clients = invoke(&app, "list_clients", json!({})).unwrap();
    assert_eq!(
        clients[0]["endpoints"]["api_base_url"],
        emulator.flowaccount_api_base()
    );
    let manager = app.window.state::<AppState>().manager().clone();
    let pending = rt.block_on(manager.begin_flowaccount("fa")).unwrap();
    let redirect = rt
        .block_on(authdeck_emulator::approve(
            &pending.authorize_url,
            "demo@example.com",
            "demo",
            "FA-100002",
        ))
        .unwrap();
    let conn = invoke(&app, "complete_callback", json!({ "url": redirect })).unwrap();
    let id = conn["id"].as_str().unwrap().to_string();

    let row = &invoke(&app, "snapshot", json!({})).unwrap()["connections"][0];
    assert_eq!(row["label"], "FA-100002");
    assert_eq!(row["company"]["name"], "Chiang Mai Crafts");
    assert_eq!(row["company"]["tax_id"], "0505561001234");
    assert_eq!(row["last_check"]["method"], "company_info");
    assert!(row["last_check"].get("error").is_none(), "{row}");

    emulator
        .control()
        .push_fault("flowaccount-api:500:times=1".parse().unwrap());
    let err = invoke(&app, "check", json!({ "id": id })).unwrap_err();
    assert_eq!(err["code"], "provider_unavailable");
    let details = invoke(&app, "connection_details", json!({ "id": id })).unwrap();
    assert_eq!(
        details["connection"]["last_check"]["error"]["code"],
        "provider_unavailable"
    );
    assert_eq!(details["connection"]["state"], "active");
    assert_eq!(details["history"][0]["event"], "check");
    let checked = invoke(&app, "check", json!({ "id": id })).unwrap();
    assert!(checked["last_check"].get("error").is_none(), "{checked}");
    assert_eq!(checked["company"]["branch"], "สาขา 00001 นิมมานเหมินท์");

    let named = invoke(&app, "set_label", json!({ "id": id, "name": " Crafts " })).unwrap();
    assert_eq!(named["user_label"], "Crafts");
    let row = &invoke(&app, "snapshot", json!({})).unwrap()["connections"][0];
    assert_eq!(row["user_label"], "Crafts");
    let err = invoke(&app, "set_label", json!({ "id": id, "name": "a\u{7}b" })).unwrap_err();
    assert_eq!(err["code"], "invalid_input");
    assert!(invoke(&app, "set_label", json!({ "id": id, "name": 5 })).is_err());
    let cleared = invoke(&app, "set_label", json!({ "id": id, "name": null })).unwrap();
    assert!(cleared.get("user_label").is_none(), "{cleared}");
    assert_eq!(
        invoke(&app, "check", json!({ "id": "nope" })).unwrap_err()["code"],
        "not_found"
    );
    rt.block_on(emulator.shutdown());
}

/// The window's first list comes with the page; then it follows the `changes` after
/// that snapshot's version: a redirect that finished before it asked is there, as is
/// a change from the manager, in order.
#[test]
fn the_window_follows_the_changes_after_its_snapshot() {
    let app = app();
    authdeck_app::changes::forward(app.window.app_handle());
    let state = app.window.state::<AppState>();
    let first = tauri::async_runtime::block_on(state.snapshot()).unwrap();
    assert!(first.connections.is_empty());

    state
        .changes()
        .push(authdeck_app::changes::ChangeEvent::RedirectFinished {
            result: Box::new(commands::CallbackResult {
                ok: false,
                connection: None,
                error: Some(authdeck_core::Error::invalid_input("A forged redirect.")),
            }),
        });
    let changes = invoke(&app, "changes", json!({"after": first.version})).unwrap();
    assert_eq!(changes["version"], first.version + 1);
    assert_eq!(changes["resync"], false);
    assert_eq!(changes["events"][0]["kind"], "redirect_finished");
    assert_eq!(
        changes["events"][0]["result"]["error"]["message"],
        "A forged redirect."
    );

    // A change in the core reaches the feed, in order, after what the window has seen.
    let seen = changes["version"].as_u64().unwrap();
    invoke(
        &app,
        "add_client",
        json!({"input": {
            "name": "iot", "provider": "iot", "environment": null, "client_id": "c",
            "client_secret": null, "authorize_url": null, "token_url": null,
            "auth_url": "http://127.0.0.1:9/auth", "redirect_uri": null, "pkce": false,
            "iot_basic_auth": "raw", "iot_body": "form"
        }}),
    )
    .unwrap();
    let changes = invoke(&app, "changes", json!({"after": seen})).unwrap();
    assert_eq!(changes["events"][0]["kind"], "clients_changed", "{changes}");
    let fresh = invoke(&app, "snapshot", json!({})).unwrap();
    assert_eq!(fresh["version"], changes["version"]);
}

/// The app completes a loopback redirect by itself: `connect_flowaccount` starts a
/// listener (no browser in the mock app), the redirect that reaches it connects the
/// business and is reported like a deep link; Cancel stops the listener.
#[test]
fn the_app_completes_a_loopback_redirect_and_cancel_stops_its_listener() {
    let app = app();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let emulator = rt
        .block_on(authdeck_emulator::start(
            authdeck_emulator::EmulatorConfig::demo(),
            "127.0.0.1:0".parse().unwrap(),
        ))
        .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let redirect_uri = format!("http://127.0.0.1:{port}/callback");
    emulator
        .control()
        .register_flowaccount_client(authdeck_emulator::FaClient {
            client_id: "demo-flowaccount".into(),
            client_secret: "demo-flowaccount-secret".into(),
            redirect_uris: vec![redirect_uri.clone()],
        });
    let client = invoke(
        &app,
        "add_client",
        json!({"input": {
            "name": "fa-loop", "provider": "flowaccount", "environment": null,
            "client_id": "demo-flowaccount", "client_secret": "demo-flowaccount-secret",
            "authorize_url": emulator.flowaccount_authorize_url(),
            "token_url": emulator.flowaccount_token_url(), "auth_url": null,
            "redirect_uri": redirect_uri, "pkce": true, "iot_basic_auth": "raw", "iot_body": "form"
        }}),
    )
    .unwrap();
    assert_eq!(client["options"]["pkce"], true);
    let seen = invoke(&app, "snapshot", json!({})).unwrap()["version"]
        .as_u64()
        .unwrap();

    let pending = invoke(&app, "connect_flowaccount", json!({"client": "fa-loop"})).unwrap();
    assert_eq!(pending["redirect_uri"], redirect_uri.as_str());
    // The mock app has no browser opener: the window is told, to show the address.
    assert_eq!(pending["browser_opened"], false);
    let authorize_url = pending["authorize_url"].as_str().unwrap().to_owned();
    // What the browser does with a redirect: one GET, status and body.
    let get = |url: String| {
        use std::io::{Read, Write};
        let url = url::Url::parse(&url).unwrap();
        let host = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
        let mut s = std::net::TcpStream::connect(&host).expect("the app's listener answers");
        s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .unwrap();
        let target = format!("{}?{}", url.path(), url.query().unwrap_or(""));
        write!(
            s,
            "GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        let status: u16 = answer[9..12].parse().unwrap();
        (status, answer)
    };
    // A forged redirect first: answered 400, ignored.
    let (status, _) = get(format!("{redirect_uri}?code=x&state=forged"));
    assert_eq!(status, 400);
    let redirect = rt
        .block_on(authdeck_emulator::approve(
            &authorize_url,
            "demo@example.com",
            "demo",
            "FA-100001",
        ))
        .unwrap();
    let (status, page) = get(redirect);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("FA-100001"), "{page}");

    // The window hears of it as a finished redirect.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let finished = loop {
        let changes = invoke(&app, "changes", json!({"after": seen})).unwrap();
        let found = changes["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["kind"] == "redirect_finished")
            .cloned();
        if let Some(event) = found {
            break event;
        }
        assert!(std::time::Instant::now() < deadline, "no redirect_finished");
    };
    assert_eq!(finished["result"]["ok"], true, "{finished}");
    assert_eq!(
        finished["result"]["connection"]["support_code"],
        "FA-100001"
    );
    let rows = invoke(&app, "snapshot", json!({})).unwrap()["connections"].clone();
    assert_eq!(rows.as_array().unwrap().len(), 1);

    // Connect again, then Cancel: the port closes, the redirect is refused.
    let pending = invoke(&app, "connect_flowaccount", json!({"client": "fa-loop"})).unwrap();
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    assert_eq!(
        invoke(&app, "cancel_flowaccount", json!({"id": pending["id"]})).unwrap(),
        json!(true)
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the listener stopped"
    );
    let redirect = rt
        .block_on(authdeck_emulator::approve(
            pending["authorize_url"].as_str().unwrap(),
            "demo@example.com",
            "demo",
            "FA-100002",
        ))
        .unwrap();
    let err = invoke(&app, "complete_callback", json!({"url": redirect})).unwrap_err();
    assert_eq!(err["code"], "invalid_callback");
    rt.block_on(emulator.shutdown());
}

fn bindings_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../ui/src/bindings")
}

/// Every `.ts` file below `dir`, as (relative path, contents), sorted.
fn read_dir_sorted(dir: &Path) -> Vec<(String, String)> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.filter_map(|e| e.ok()) {
            let path = entry.path();
            if path.is_dir() {
                walk(base, &path, out);
            } else if path.extension().is_some_and(|x| x == "ts") {
                let name = path
                    .strip_prefix(base)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.push((name, std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    let mut files = Vec::new();
    walk(dir, dir, &mut files);
    files.sort();
    files
}

/// `ui/src/bindings/` is generated from the Rust types. With `UPDATE_BINDINGS=1` this
/// test rewrites it (`make bindings`); otherwise it fails when the committed files are stale.
#[test]
fn typescript_bindings_are_current() {
    let fresh = tempfile::tempdir().unwrap();
    commands::export_bindings(fresh.path()).unwrap();
    authdeck_app::devices::export_bindings(fresh.path()).unwrap();
    let generated = read_dir_sorted(fresh.path());
    assert!(generated.iter().any(|(n, _)| n == "Connection.ts"));
    if std::env::var_os("UPDATE_BINDINGS").is_some() {
        let dir = bindings_dir();
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text) in &generated {
            let path = dir.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        return;
    }
    let committed = read_dir_sorted(&bindings_dir());
    assert!(
        committed == generated,
        "ui/src/bindings is stale: run `make bindings` and commit the result"
    );
}

/// Devices over IPC: added with their token and secret (which never come back), listed,
/// checked against the emulator's device API (a wrong token is `invalid_credentials`),
/// removed.
#[test]
fn devices_are_added_checked_and_removed_through_ipc_and_their_secrets_never_come_back() {
    let app = app();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let emulator = rt
        .block_on(authdeck_emulator::start(
            authdeck_emulator::EmulatorConfig::demo(),
            "127.0.0.1:0".parse().unwrap(),
        ))
        .unwrap();
    invoke(
        &app,
        "add_client",
        json!({"input": {
            "name": "iot", "provider": "iot", "environment": null, "client_id": "demo-iot-client",
            "client_secret": null, "authorize_url": null, "token_url": null, "auth_url": emulator.iot_auth_url(),
            "device_api_url": emulator.iot_device_api_url(),
            "redirect_uri": null, "pkce": false, "iot_basic_auth": "raw", "iot_body": "form"
        }}),
    )
    .unwrap();
    let add = |name: &str, token: &str| {
        invoke(
            &app,
            "add_device",
            json!({"input": {"name": name, "client": "iot", "connection": null,
                "device_id": "demo-device-0001", "token": token, "secret": "demo-device-secret"}}),
        )
    };
    let device = add("sensor", " demo-device-token ").unwrap();
    assert_eq!(device["device_id"], "demo-device-0001");
    assert_eq!(device["has_secret"], true);
    let listed = invoke(&app, "list_devices", json!({})).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let report = invoke(&app, "check_device", json!({"id": "sensor"})).unwrap();
    assert_eq!(report["device"]["last_check"]["outcome"], "ok");
    assert_eq!(report["shadow"]["temperature"], 28.5);

    add("wrong", "not-the-token").unwrap();
    let err = invoke(&app, "check_device", json!({"id": "wrong"})).unwrap_err();
    assert_eq!(err["code"], "invalid_credentials", "{err}");
    let err = add("sensor", "demo-device-token").unwrap_err();
    assert_eq!(err["code"], "already_exists");
    // Malformed input changes nothing.
    assert!(invoke(&app, "add_device", json!({"input": {"name": "x"}})).is_err());

    let everything = format!(
        "{listed} {report} {}",
        invoke(&app, "list_devices", json!({})).unwrap()
    );
    for secret in ["demo-device-token", "demo-device-secret"] {
        assert!(
            !everything.contains(secret),
            "{secret} crossed IPC: {everything}"
        );
    }
    invoke(&app, "remove_device", json!({"id": "sensor"})).unwrap();
    invoke(&app, "remove_device", json!({"id": "wrong"})).unwrap();
    assert_eq!(invoke(&app, "list_devices", json!({})).unwrap(), json!([]));
    rt.block_on(emulator.shutdown());
}

/// Everything traced while the team test runs, at every level (the trace log): the
/// join key and the password must not be in it.
fn trace_log() -> std::sync::Arc<std::sync::Mutex<Vec<u8>>> {
    use std::sync::{Arc, Mutex, OnceLock};
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || LogWriter(writer.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the test's subscriber");
        buf
    })
    .clone()
}

struct LogWriter(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Settings → Team over IPC against a real PostgreSQL cluster and the real keyring: a
/// team created elsewhere (as `team init` does) is joined with the form's key and
/// password, its status lists both machines, it stays readable as "last known" when the
/// database stops, and it is left. The join key and the password (canaries) are in no
/// response, no error and no trace line; the key is kept in the keyring until leave.
#[test]
fn a_team_is_joined_watched_and_left_through_ipc_and_its_join_key_never_comes_back() {
    use authdeck_core::store::keyring::KeyringStore;
    use authdeck_core::store::SecretStore;
    use authdeck_team::testing::PgCluster;
    use authdeck_team::{DbConfig, TeamStore, Via};
    const PASSWORD: &str = "CANARY-team-password-6d1e";

    let log = trace_log();
    let app = app();
    let state = app._app.state::<AppState>();
    let keyring = KeyringStore::new(state.paths().keyring_service.clone());
    let mut responses: Vec<String> = Vec::new();
    let mut call = |cmd: &str, args: Value| {
        let r = invoke(&app, cmd, args);
        responses.push(match &r {
            Ok(v) | Err(v) => v.to_string(),
        });
        r
    };

    let none = call("team_status", json!({})).unwrap();
    assert_eq!(none["in_team"], false, "{none}");
    let err = call("team_leave", json!({})).unwrap_err();
    assert_eq!(err["code"], "not_found", "{err}");

    let mut pg = PgCluster::start();
    pg.create_database("team");
    let address = pg.tcp_config("team");
    let rt = tokio::runtime::Runtime::new().unwrap();
    // Another desktop creates the team (what `authdeckctl team init` does).
    let (other, join) = rt
        .block_on(TeamStore::init(
            &DbConfig::parse(&address).unwrap(),
            "Firm",
            "desk-cli",
            Via::Cli,
        ))
        .unwrap();
    rt.block_on(other.seen("0.1.0")).unwrap();
    drop(other);
    let join = join.expose().to_owned();
    let body = join.trim_start_matches("adtk1_").to_owned();
    assert!(body.len() > 20, "a join key has a body: {join}");

    // A damaged key and an address with a password: refused, without echo, nothing kept.
    let damaged = format!("{}Q", &join[..join.len() - 1]);
    let err = call(
        "team_join",
        json!({"input": {"address": address, "join_key": damaged, "password": PASSWORD, "machine": null}}),
    )
    .unwrap_err();
    assert_eq!(err["code"], "invalid_input", "{err}");
    let err = call(
        "team_join",
        json!({"input": {"address": format!("{address} password={PASSWORD}"), "join_key": join, "password": null, "machine": null}}),
    )
    .unwrap_err();
    assert_eq!(err["code"], "invalid_input", "{err}");
    assert!(keyring.get("team/key").unwrap().is_none());
    assert!(!app._dir.path().join("team.json").exists());

    let joined = call(
        "team_join",
        json!({"input": {"address": address, "join_key": format!("  {join}\n"), "password": PASSWORD, "machine": "desk-app"}}),
    )
    .unwrap();
    assert_eq!(joined["in_team"], true, "{joined}");
    assert_eq!(joined["team_name"], "Firm");
    assert_eq!(joined["reachable"], true);
    assert_eq!(joined["last_known"], false);
    assert_eq!(joined["machine"], "desk-app");
    let machines = |s: &Value| {
        let mut m: Vec<String> = s["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["machine"].as_str().unwrap().to_owned())
            .collect();
        m.sort();
        m
    };
    assert_eq!(machines(&joined), ["desk-app", "desk-cli"], "{joined}");
    let mine: Vec<&Value> = joined["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["this_machine"] == true)
        .collect();
    assert_eq!(mine.len(), 1, "{joined}");
    assert_eq!(mine[0]["machine"], "desk-app");
    assert_eq!(
        keyring
            .get("team/key")
            .unwrap()
            .map(|v| v.expose().to_owned()),
        Some(join.clone()),
        "the key is kept in this data directory's keyring"
    );
    assert_eq!(
        keyring
            .get("team/db-password")
            .unwrap()
            .map(|v| v.expose().to_owned()),
        Some(PASSWORD.to_owned())
    );
    let team_json = std::fs::read_to_string(app._dir.path().join("team.json")).unwrap();
    assert!(!team_json.contains(&body) && !team_json.contains(PASSWORD));

    let live = call("team_status", json!({})).unwrap();
    assert_eq!(live["reachable"], true, "{live}");
    assert!(live["checked_at"].is_string());
    // Joined again in a team already: the same team only.
    let err = call(
        "team_join",
        json!({"input": {"address": address, "join_key": "adtk1_not-this", "password": null, "machine": null}}),
    )
    .unwrap_err();
    assert_eq!(err["code"], "invalid_input", "{err}");

    // The database stops: the last known status, marked as such, and no error.
    pg.stop();
    let down = call("team_status", json!({})).unwrap();
    assert_eq!(down["in_team"], true, "{down}");
    assert_eq!(down["reachable"], false, "{down}");
    assert_eq!(down["last_known"], true, "{down}");
    assert_eq!(down["checked_at"], live["checked_at"], "{down}");
    assert_eq!(machines(&down), ["desk-app", "desk-cli"], "{down}");
    assert!(down["unreachable"]
        .as_str()
        .unwrap()
        .contains("cannot be reached"));
    // A join while unreachable: team_unavailable, the secrets not in the error.
    let err = call(
        "team_join",
        json!({"input": {"address": address, "join_key": join, "password": PASSWORD, "machine": null}}),
    )
    .unwrap_err();
    assert_eq!(err["code"], "team_unavailable", "{err}");

    // Leave works offline: the membership and the key are forgotten here.
    let left = call("team_leave", json!({})).unwrap();
    assert_eq!(left["in_team"], false, "{left}");
    assert_eq!(call("team_status", json!({})).unwrap()["in_team"], false);
    assert!(keyring.get("team/key").unwrap().is_none());
    assert!(keyring.get("team/db-password").unwrap().is_none());
    assert!(!app._dir.path().join("team.json").exists());

    let traced = String::from_utf8_lossy(&log.lock().unwrap()).into_owned();
    assert!(
        traced.contains("joined a team"),
        "the trace log was captured: {traced}"
    );
    for (what, text) in responses
        .iter()
        .map(|r| ("a response", r.as_str()))
        .chain([("the trace log", traced.as_str())])
    {
        for secret in [join.as_str(), body.as_str(), &body[..16], PASSWORD] {
            assert!(!text.contains(secret), "{what} holds a secret: {text}");
        }
        assert!(!text.contains("CANARY"), "{what}: {text}");
    }
}
