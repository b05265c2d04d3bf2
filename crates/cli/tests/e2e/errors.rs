//! Exit codes (2 usage, 3 re-authorization, 1 other), `--json` errors, and an
//! unavailable keyring.

use authdeck_emulator::{Fault, FaultKind, FaultScope};

use crate::common::*;

#[test]
fn usage_errors_exit_2() {
    let fx = Fixture::new();
    let unknown = fx.run(&["frobnicate"]);
    unknown.assert_code(2);
    assert!(unknown.stdout.is_empty(), "{}", unknown.describe());
    assert!(
        unknown.stderr.contains("frobnicate"),
        "{}",
        unknown.describe()
    );
    fx.run(&["connect", "fedex"]).assert_code(2); // --client missing
    fx.run(&["token"]).assert_code(2); // CONNECTION missing
    fx.run(&["connect", "fedex", "--client", "x", "--grant", "password"])
        .assert_code(2);
    fx.run(&["token", "x", "--min-validity", "soon"])
        .assert_code(2);
    // --help / --version are not errors.
    let help = fx.ok(&["--help"]);
    assert!(help.stdout.contains("Usage"), "{}", help.describe());
    fx.ok(&["--version"]);
}

#[test]
fn a_revoked_flowaccount_family_exits_3_and_shows_in_status() {
    let fx = Fixture::new();
    fx.add_flowaccount_client("fa", None);
    let (conn, _) = fx.connect_flowaccount("fa", FA_BUSINESS);
    let id = id_of(&conn);
    let old_refresh = fx.stored_tokens(&id, 1).unwrap()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    fx.ok(&["refresh", &id]);

    // Someone replays the rotated-out refresh token: the emulator revokes the family.
    let client_id = fx.config.flowaccount.clients[0].client_id.clone();
    let secret = fx.fa_secret();
    let (status, body) = fx.post_form(
        &fx.emulator.flowaccount_token_url(),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &old_refresh),
            ("client_id", &client_id),
            ("client_secret", &secret),
        ],
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("invalid_grant"), "{body}");
    assert_eq!(fx.control_stats()["families_revoked"], 1);

    let refresh = fx.run(&["refresh", &id]);
    refresh.assert_one_line_error(3, "reauthorization_required");
    assert!(refresh.stdout.is_empty(), "{}", refresh.describe());

    let status = fx.json(&["status", &id]);
    assert_eq!(status["status"], "reauthorization_required", "{status}");
    assert_eq!(status["state"], "reauthorization_required", "{status}");
    assert_eq!(
        status["last_error"]["code"], "reauthorization_required",
        "{status}"
    );
    let text = fx.ok(&["status", &id]);
    assert!(
        text.stdout.contains("re-authorization needed"),
        "{}",
        text.describe()
    );

    // token and refresh --all say so too, without asking the provider again.
    let requests = fx.control_stats()["flowaccount"]["token_requests"].clone();
    fx.run(&["token", &id])
        .assert_one_line_error(3, "reauthorization_required");
    let json_err = fx.run(&["--json", "token", &id]);
    json_err.assert_code(3);
    assert_eq!(json_err.json_error()["code"], "reauthorization_required");
    assert_eq!(
        fx.control_stats()["flowaccount"]["token_requests"],
        requests
    );

    // refresh --all skips connections that are not active: nothing to refresh, exit 0.
    // With a healthy FedEx connection next to it, only that one is refreshed.
    fx.add_fedex_client("fedex");
    fx.connect_fedex_plain("fedex");
    let all = fx.json(&["refresh", "--all"]);
    assert_eq!(all.as_array().unwrap().len(), 1, "{all}");

    // Connecting the business again brings it back.
    fx.connect_flowaccount("fa", FA_BUSINESS);
    assert_eq!(fx.json(&["status", &id])["status"], "active");
    fx.ok(&["refresh", &id]);
}

#[test]
fn refresh_all_exits_3_when_a_grant_died_during_it() {
    let fx = Fixture::new();
    fx.add_flowaccount_client("fa", None);
    let (conn, _) = fx.connect_flowaccount("fa", FA_BUSINESS);
    let id = id_of(&conn);
    let old_refresh = fx.stored_tokens(&id, 1).unwrap()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // Use the refresh token behind Authdeck's back: Authdeck's copy is now rotated out,
    // and presenting it is reuse.
    let client_id = fx.config.flowaccount.clients[0].client_id.clone();
    let secret = fx.fa_secret();
    let (status, body) = fx.post_form(
        &fx.emulator.flowaccount_token_url(),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &old_refresh),
            ("client_id", &client_id),
            ("client_secret", &secret),
        ],
    );
    assert_eq!(status, 200, "{body}");
    let run = fx.run(&["--json", "refresh", "--all"]);
    run.assert_code(3);
    let rows = run.json();
    assert_eq!(rows[0]["ok"], false, "{rows}");
    assert_eq!(
        rows[0]["error"]["code"], "reauthorization_required",
        "{rows}"
    );
    assert!(rows[0]["error"]["message"].is_string(), "{rows}");
}

#[test]
fn other_errors_exit_1_with_one_line_or_one_json_object() {
    let fx = Fixture::new();
    fx.add_fedex_client("fedex");
    let conn = fx.connect_fedex_plain("fedex");
    let id = id_of(&conn);

    fx.run(&["status", "nope"])
        .assert_one_line_error(1, "not_found");
    let err = fx.run(&["--json", "status", "nope"]);
    err.assert_code(1);
    let obj = err.json_error();
    assert_eq!(obj["code"], "not_found");
    assert!(obj["message"].as_str().unwrap().contains("nope"), "{obj}");
    assert!(err.stdout.is_empty(), "{}", err.describe());

    // The provider is down: provider_unavailable, exit 1, one line.
    fx.control()
        .push_fault(Fault::always(FaultKind::ServerError { status: 503 }));
    let down = fx.run(&["refresh", &id]);
    down.assert_one_line_error(1, "provider_unavailable");
    let down = fx.run(&["--json", "refresh", &id]);
    down.assert_code(1);
    let obj = down.json_error();
    assert_eq!(obj["code"], "provider_unavailable");
    assert!(obj["message"].is_string());
    let keys: Vec<&String> = obj.as_object().unwrap().keys().collect();
    assert!(
        keys.iter()
            .all(|k| ["code", "message", "detail"].contains(&k.as_str())),
        "only code, message, detail: {obj}"
    );
    // A failed refresh is remembered, but the connection stays usable.
    let status = fx.json(&["status", &id]);
    assert_eq!(
        status["last_error"]["code"], "provider_unavailable",
        "{status}"
    );
    assert_eq!(status["state"], "active");

    // refresh --all with a temporary failure: exit 1 (not 3), the row says why.
    let all = fx.run(&["--json", "refresh", "--all"]);
    all.assert_code(1);
    let rows = all.json();
    assert_eq!(rows[0]["ok"], false, "{rows}");
    assert_eq!(rows[0]["error"]["code"], "provider_unavailable", "{rows}");
    let text = fx.run(&["refresh", "--all"]);
    text.assert_code(1);
    assert!(
        text.stdout.contains("0 refreshed, 1 failed."),
        "{}",
        text.describe()
    );
    fx.control().clear_faults();

    // A garbage answer (HTML from a gateway).
    fx.control().push_fault(Fault::next(
        FaultScope::Fedex,
        FaultKind::HtmlBody { status: 502 },
        1,
    ));
    fx.run(&["refresh", &id]).assert_code(1);
    // A fault that has run out: the next refresh works again.
    fx.ok(&["refresh", &id]);

    // --json usage-ish errors from the core keep exit 2 and the JSON shape.
    let bad = fx.run_env(
        &[
            "--json",
            "client",
            "add",
            "fedex",
            "--name",
            "x",
            "--client-id",
            "k",
            "--token-url",
            "http://example.com/token",
        ],
        &[("AUTHDECK_CLIENT_SECRET", "abc")],
    );
    bad.assert_code(2);
    assert_eq!(bad.json_error()["code"], "invalid_input");

    // A provider that refuses the project secret: invalid_client.
    fx.run_env(
        &[
            "client",
            "add",
            "fedex",
            "--name",
            "wrong",
            "--client-id",
            &fx.fedex_key(),
            "--token-url",
            &fx.emulator.fedex_token_url(),
        ],
        &[("AUTHDECK_CLIENT_SECRET", "not-the-secret")],
    )
    .assert_code(0);
    let refused = fx.run(&["--json", "connect", "fedex", "--client", "wrong"]);
    refused.assert_code(1);
    assert_eq!(refused.json_error()["code"], "invalid_client");
}

#[test]
fn keyring_unavailable_fails_and_leaves_no_secret_on_disk() {
    let fx = Fixture::new();
    let secret = "KEYRING-DOWN-secret-9c41e7";
    // No session bus: and no fallback to a real one ($XDG_RUNTIME_DIR/bus).
    let empty_runtime = fx.dir.path().join("runtime");
    std::fs::create_dir_all(&empty_runtime).unwrap();
    let runtime = empty_runtime.to_string_lossy().into_owned();
    let run = fx.run_full(
        &[
            "client",
            "add",
            "fedex",
            "--name",
            "fedex",
            "--client-id",
            "k",
            "--client-secret-stdin",
            "--token-url",
            &fx.emulator.fedex_token_url(),
        ],
        Some(&format!("{secret}\n")),
        &[("XDG_RUNTIME_DIR", &runtime)],
        &["DBUS_SESSION_BUS_ADDRESS"],
    );
    assert_ne!(run.code, Some(0), "{}", run.describe());
    assert!(
        run.stderr.contains("keyring_unavailable"),
        "{}",
        run.describe()
    );
    assert_eq!(
        run.stderr.trim_end().lines().count(),
        1,
        "{}",
        run.describe()
    );
    assert!(!run.stderr.contains(secret), "the error shows the secret");

    let json = fx.run_full(
        &[
            "--json",
            "client",
            "add",
            "fedex",
            "--name",
            "fedex",
            "--client-id",
            "k",
            "--token-url",
            &fx.emulator.fedex_token_url(),
        ],
        None,
        &[
            ("XDG_RUNTIME_DIR", &runtime),
            ("AUTHDECK_CLIENT_SECRET", secret),
        ],
        &["DBUS_SESSION_BUS_ADDRESS"],
    );
    assert_ne!(json.code, Some(0));
    assert_eq!(json.json_error()["code"], "keyring_unavailable");

    let files = fx.data_files();
    assert!(!files.is_empty(), "the database exists");
    for (path, bytes) in &files {
        assert!(
            !contains(bytes, secret.as_bytes()),
            "the secret is on disk in {}",
            path.display()
        );
    }
    // Nothing was half-added either.
    assert_eq!(fx.json(&["client", "list"]), serde_json::json!([]));
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}
