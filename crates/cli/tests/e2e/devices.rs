//! `authdeckctl device add|list|show|check|remove|env` against the emulator's device
//! API, with canary credentials that must never show up in argv, SQLite, logs, `--json`
//! output or error text.

use authdeck_core::store::SecretStore;
use authdeck_emulator::IotDevice;
use serde_json::Value;

use crate::common::*;

const DEVICE_ID: &str = "dev-7f3a-0001";
const TOKEN: &str = "canary-device-token-5b1e9c";
const SECRET: &str = "canary-device-secret-77c2ad";
const WRONG: &str = "canary-wrong-token-0d4f11";

fn fixture() -> Fixture {
    let mut f = Fixture::new();
    f.log = Some("trace".into());
    f.control().add_iot_device(IotDevice {
        client_id: DEVICE_ID.into(),
        token: TOKEN.into(),
        secret: Some(SECRET.into()),
        alias: None,
        shadow: serde_json::json!({"temperature": 31.5, "pump": "on"}),
    });
    let auth = f.emulator.iot_auth_url();
    let api = f.emulator.iot_device_api_url();
    let client_id = f.config.iot.client_id.clone();
    f.ok(&[
        "client",
        "add",
        "iot",
        "--name",
        "iot",
        "--client-id",
        &client_id,
        "--auth-url",
        &auth,
        "--device-api-url",
        &api,
    ]);
    f
}

fn add_device(f: &Fixture, name: &str, token: &str, secret: Option<&str>) -> Run {
    let mut args = vec![
        "--json",
        "device",
        "add",
        name,
        "--client",
        "iot",
        "--device-id",
        DEVICE_ID,
        "--token-stdin",
    ];
    let mut stdin = format!("{token}\n");
    if let Some(secret) = secret {
        args.push("--secret-stdin");
        stdin.push_str(&format!("{secret}\n"));
    }
    f.run_stdin(&args, &stdin)
}

/// The exit code, and the error as the last stderr line (the logs are on, at trace).
fn assert_error(run: &Run, code: i32, error_code: &str) {
    run.assert_code(code);
    let last = run.stderr.trim_end().lines().last().unwrap_or_default();
    assert!(last.contains(error_code), "{}", run.describe());
}

/// No canary anywhere but where the user asked for it (nowhere, in these commands).
fn assert_no_canary(f: &Fixture, canaries: &[&str]) {
    for run in f.all_runs() {
        for canary in canaries {
            assert!(
                !run.args.iter().any(|a| a.contains(canary)),
                "a credential on argv: {}",
                run.describe()
            );
            // `token` prints the access token: the user asked for it.
            let stdout_ok = run.command_words().first() == Some(&"token");
            assert!(
                (stdout_ok || !run.stdout.contains(canary)) && !run.stderr.contains(canary),
                "a credential in the output or the logs: {}",
                run.describe()
            );
        }
    }
    for (path, bytes) in f.data_files() {
        let text = String::from_utf8_lossy(&bytes);
        for canary in canaries {
            assert!(!text.contains(canary), "a credential in {}", path.display());
        }
    }
}

#[test]
fn devices_are_added_listed_shown_checked_and_removed_with_their_secrets_in_the_keyring_only() {
    let f = fixture();
    let conn = f.connect_iot("iot");
    let access_token = f.ok(&["token", &id_of(&conn)]).stdout.trim().to_owned();
    let run = f.run_stdin(
        &[
            "--json",
            "device",
            "add",
            "pump-1",
            "--client",
            "iot",
            "--connection",
            &f.iot_user(),
            "--device-id",
            DEVICE_ID,
            "--token-stdin",
            "--secret-stdin",
        ],
        &format!("{TOKEN}\n{SECRET}\n"),
    );
    run.assert_code(0);
    let device = run.json();
    assert_eq!(device["device_id"], DEVICE_ID);
    assert_eq!(device["connection_id"], conn["id"]);
    assert_eq!(device["has_secret"], true);
    let id = device["id"].as_str().unwrap().to_owned();
    let keyring = f.keyring();
    assert_eq!(
        keyring
            .get(&format!("device/{id}/token"))
            .unwrap()
            .unwrap()
            .expose(),
        TOKEN
    );
    assert_eq!(
        keyring
            .get(&format!("device/{id}/secret"))
            .unwrap()
            .unwrap()
            .expose(),
        SECRET
    );

    let list = f.json(&["device", "list"]);
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list[0]["name"], "pump-1");
    let table = f.ok(&["device", "list"]).stdout;
    assert!(
        table.contains("pump-1") && table.contains(DEVICE_ID),
        "{table}"
    );

    let check = f.ok(&["device", "check", "pump-1"]);
    assert!(check.stdout.contains("works"), "{}", check.describe());
    assert!(check.stdout.contains("temperature"), "{}", check.describe());
    let shown = f.json(&["device", "show", "pump-1"]);
    assert_eq!(shown["last_check"]["outcome"], "ok");
    assert!(shown["last_check"]["at"].is_string());
    assert_eq!(shown["account"], f.iot_user());
    let events: Vec<&str> = shown["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["device_check", "device_added"]);
    let human = f.ok(&["device", "show", &id[..8]]).stdout;
    assert!(human.contains("Last check  ok"), "{human}");
    // The whole history lists device events too.
    let all: Value = f.json(&["history"]);
    assert!(all
        .as_array()
        .unwrap()
        .iter()
        .any(|h| h["event"] == "device_check"));

    // A client with devices stays; removing the device deletes its keyring entries.
    f.run(&["client", "remove", "iot"]).assert_code(2);
    f.ok(&["device", "remove", "pump-1"]);
    assert!(keyring
        .get(&format!("device/{id}/token"))
        .unwrap()
        .is_none());
    assert!(keyring
        .get(&format!("device/{id}/secret"))
        .unwrap()
        .is_none());
    assert_error(&f.run(&["device", "show", "pump-1"]), 1, "not_found");
    assert_eq!(f.json(&["device", "list"]), serde_json::json!([]));

    assert_no_canary(&f, &[TOKEN, SECRET, &access_token]);
}

#[test]
fn a_wrong_token_is_a_401_shown_as_a_clear_error_and_recorded() {
    let f = fixture();
    add_device(&f, "pump-2", WRONG, None).assert_code(0);
    let run = f.run(&["device", "check", "pump-2"]);
    assert_error(&run, 1, "invalid_credentials");
    assert!(
        run.stderr
            .contains("rejected the device's Client ID or Token"),
        "{}",
        run.describe()
    );
    assert!(run.stderr.contains("HTTP 401"), "{}", run.describe());
    let json = f.run(&["--json", "device", "check", "pump-2"]);
    let last: serde_json::Value =
        serde_json::from_str(json.stderr.trim_end().lines().last().unwrap()).unwrap();
    assert_eq!(last["code"], "invalid_credentials");
    let shown = f.json(&["device", "show", "pump-2"]);
    assert_eq!(shown["last_check"]["outcome"], "invalid_credentials");
    assert_eq!(shown["has_secret"], false);
    assert_eq!(f.control().stats().iot.device_unauthorized, 2);
    assert_no_canary(&f, &[WRONG]);
}

#[test]
fn device_add_takes_credentials_from_stdin_only_and_refuses_bad_input() {
    let f = fixture();
    // No --token-stdin: a usage error, nothing stored.
    f.run(&[
        "device",
        "add",
        "x",
        "--client",
        "iot",
        "--device-id",
        DEVICE_ID,
    ])
    .assert_code(2);
    // An empty stdin line.
    add_device(&f, "x", "", None).assert_code(2);
    // A device under a client that is not an IoT one.
    f.add_fedex_client("fedex");
    let run = f.run_stdin(
        &[
            "device",
            "add",
            "x",
            "--client",
            "fedex",
            "--device-id",
            DEVICE_ID,
            "--token-stdin",
        ],
        &format!("{TOKEN}\n"),
    );
    assert_error(&run, 2, "invalid_input");
    assert_eq!(f.json(&["device", "list"]), serde_json::json!([]));
    assert!(
        !f.keyring_keys().iter().any(|k| k.starts_with("device/")),
        "nothing reached the keyring"
    );
    assert_no_canary(&f, &[TOKEN]);
}

#[test]
fn device_env_runs_a_command_with_the_credentials_in_its_environment_only() {
    let f = fixture();
    add_device(&f, "pump-3", TOKEN, Some(SECRET)).assert_code(0);
    let out = f.dir.path().join("env.txt");
    let cmdline = f.dir.path().join("cmdline.txt");
    let out_s = out.to_str().unwrap();
    let cmdline_s = cmdline.to_str().unwrap();
    let run = f.run(&[
        "device",
        "env",
        "pump-3",
        "--",
        "sh",
        "-c",
        r#"printf '%s\n%s\n%s\n%s\n%s\n' "$AUTHDECK_DEVICE_ID" "$AUTHDECK_DEVICE_TOKEN" "$AUTHDECK_DEVICE_SECRET" "$AUTHDECK_DEVICE_AUTHORIZATION" "$AUTHDECK_DEVICE_API_URL" > "$1"; tr '\0' ' ' < /proc/self/cmdline > "$2"; exit 3"#,
        "sh",
        out_s,
        cmdline_s,
    ]);
    run.assert_code(3);
    let lines: Vec<String> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        lines,
        [
            DEVICE_ID.to_string(),
            TOKEN.to_string(),
            SECRET.to_string(),
            format!("Device {DEVICE_ID}:{TOKEN}"),
            f.emulator.iot_device_api_url(),
        ]
    );
    let argv = std::fs::read_to_string(&cmdline).unwrap();
    assert!(!argv.contains(TOKEN) && !argv.contains(SECRET), "{argv}");
    // The header works as the platform wants it.
    let status = f.rt.block_on(async {
        reqwest::Client::new()
            .get(format!("{}/shadow/data", f.emulator.iot_device_api_url()))
            .header("Authorization", &lines[3])
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    assert_eq!(status, 200);
    std::fs::remove_file(&out).unwrap();
    assert_no_canary(&f, &[TOKEN, SECRET]);
}
