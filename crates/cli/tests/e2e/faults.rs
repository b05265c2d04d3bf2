//! Faults a tester found (issue 11 §5): a history entry too wide for the table, inputs
//! too long to be sensible, a closed stdout, tokens gone from the keyring, and a
//! connection removed while `refresh --all` runs.

use std::process::Stdio;
use std::time::{Duration, Instant};

use authdeck_core::store::db::Db;
use authdeck_core::store::SecretStore;

use crate::common::*;

fn database(fx: &Fixture) -> Db {
    Db::open(&fx.data_dir().join("authdeck.sqlite3")).expect("database opens")
}

#[test]
fn history_prints_an_entry_over_64_kib() {
    let fx = Fixture::new();
    fx.add_fedex_client("fedex");
    // An entry as an older version wrote it (before inputs and details were capped).
    let detail = format!("login as {}: rejected", "u".repeat(70_000));
    drop(database(&fx));
    rusqlite::Connection::open(fx.data_dir().join("authdeck.sqlite3"))
        .unwrap()
        .execute(
            "INSERT INTO history (at, event, outcome, detail) VALUES (?1, 'connect', 'invalid_credentials', ?2)",
            rusqlite::params![chrono::Utc::now().timestamp_millis(), detail],
        )
        .unwrap();
    for _ in 0..2 {
        let run = fx.ok(&["history"]);
        assert!(run.stderr.is_empty(), "{}", run.describe());
        assert!(run.stdout.contains(&detail), "{}", run.describe());
    }
    let json = fx.json(&["history"]);
    assert_eq!(json[0]["detail"], detail.as_str());
}

#[test]
fn over_long_inputs_are_refused_before_anything_is_sent_or_stored() {
    let fx = Fixture::new();
    fx.add_iot_client("iot");
    fx.add_fedex_client("fedex");
    let long = "u".repeat(70_000);

    let run = fx.run_stdin(
        &[
            "connect",
            "iot",
            "--client",
            "iot",
            "--username",
            &long,
            "--password-stdin",
        ],
        "operator-pass\n",
    );
    run.assert_one_line_error(2, "invalid_input");
    assert!(
        run.stderr.contains("username is too long"),
        "{}",
        run.describe()
    );
    assert_eq!(
        fx.control_stats()["iot"]["token_requests"],
        0,
        "nothing was sent"
    );

    let token = fx.emulator.fedex_token_url();
    for (flag, value) in [("--name", long.as_str()), ("--client-id", &long)] {
        let mut args = vec!["client", "add", "fedex", "--token-url", &token];
        if flag != "--name" {
            args.extend_from_slice(&["--name", "other"]);
        } else {
            args.extend_from_slice(&["--client-id", "key"]);
        }
        args.extend_from_slice(&[flag, value]);
        fx.run_env(&args, &[("AUTHDECK_CLIENT_SECRET", "s")])
            .assert_one_line_error(2, "invalid_input");
    }
    let long_url = format!("{token}?{}", "x".repeat(5000));
    fx.run_env(
        &[
            "client",
            "add",
            "fedex",
            "--name",
            "other",
            "--client-id",
            "key",
            "--token-url",
            &long_url,
        ],
        &[("AUTHDECK_CLIENT_SECRET", "s")],
    )
    .assert_one_line_error(2, "invalid_input");
    let run = fx.run_env(
        &[
            "connect",
            "fedex",
            "--client",
            "fedex",
            "--grant",
            "csp-credentials",
            "--child-key",
            &long,
        ],
        &[("AUTHDECK_CHILD_SECRET", "s")],
    );
    run.assert_one_line_error(2, "invalid_input");
    assert!(
        run.stderr.contains("child key is too long"),
        "{}",
        run.describe()
    );

    let names: Vec<String> = fx
        .json(&["client", "list"])
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["fedex", "iot"], "no client was added");
    let history = fx.ok(&["history"]);
    assert!(
        history.stdout.len() < 10_000,
        "nothing long reached the history: {}",
        history.describe()
    );
}

/// Run `args` with stdout already closed (the reader went away, like `| head` after its
/// lines): the command ends quietly with 141, never a panic.
fn run_with_closed_stdout(fx: &Fixture, args: &[&str]) -> Run {
    let mut cmd = fx.std_command();
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("authdeckctl starts");
    drop(child.stdout.take()); // the read end is closed before anything is written
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "authdeckctl {args:?} hung");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let run = Run {
        args: args.iter().map(|s| s.to_string()).collect(),
        code: status.code(),
        stdout: String::new(),
        stderr,
    };
    fx.record(run.clone());
    run
}

#[test]
fn a_closed_stdout_ends_every_command_quietly() {
    let fx = Fixture::new();
    fx.add_fedex_client("fedex");
    let conn = fx.connect_fedex_plain("fedex");
    let id = id_of(&conn);
    for args in [
        vec!["history"],
        vec!["--json", "history"],
        vec!["list"],
        vec!["--json", "list"],
        vec!["client", "list"],
        vec!["status", &id],
        vec!["token", &id],
        vec!["refresh", &id],
        vec!["refresh", "--all"],
    ] {
        let run = run_with_closed_stdout(&fx, &args);
        assert_eq!(run.code, Some(141), "{}", run.describe());
        assert!(run.stderr.is_empty(), "quietly: {}", run.describe());
    }
    // The refreshes happened all the same (printing comes after the work).
    assert_eq!(fx.stored_connections(), [(id, 3)]);
}

#[test]
fn iot_logout_without_tokens_says_the_server_session_may_still_be_active() {
    let fx = Fixture::new();
    fx.add_iot_client("iot");
    let conn = fx.connect_iot("iot");
    let id = id_of(&conn);
    fx.keyring()
        .delete(&format!("connection/{id}/tokens/1"))
        .unwrap();

    let run = fx.ok(&["logout", &id]);
    assert!(
        !run.stdout.contains("already ended"),
        "the server was never asked: {}",
        run.describe()
    );
    for words in ["may still be active", "log in again", "then log out"] {
        assert!(run.stdout.contains(words), "{words:?}: {}", run.describe());
    }
    assert_eq!(fx.control_stats()["iot"]["logouts"], 0, "nothing was sent");
    let sessions = fx.control().iot_sessions();
    assert!(
        sessions.iter().all(|s| !s.revoked),
        "the server session is still live"
    );
    let history = fx.json(&["history", &id]);
    assert_eq!(history[0]["event"], "logout");
    assert!(
        history[0]["detail"]
            .as_str()
            .unwrap()
            .contains("may still be active"),
        "{history}"
    );

    // The same through --json.
    let conn = fx.connect_iot("iot");
    let id = id_of(&conn);
    fx.keyring()
        .delete(&format!("connection/{id}/tokens/1"))
        .unwrap();
    assert_eq!(
        fx.json(&["logout", &id])["outcome"],
        "tokens_missing",
        "JSON names the outcome"
    );
}

#[test]
fn a_flowaccount_connection_without_tokens_asks_to_reconnect() {
    let fx = Fixture::new();
    fx.add_flowaccount_client("fa", None);
    let (conn, _) = fx.connect_flowaccount("fa", FA_BUSINESS);
    let id = id_of(&conn);
    fx.keyring()
        .delete(&format!("connection/{id}/tokens/1"))
        .unwrap();

    let run = fx.run(&["token", &id]);
    run.assert_one_line_error(3, "reauthorization_required");
    assert!(
        run.stderr.contains("missing from the system keyring") && run.stderr.contains("Reconnect"),
        "{}",
        run.describe()
    );
    assert!(!run.stderr.contains("kept changing"), "{}", run.describe());
    let view = fx.json(&["status", &id]);
    assert_eq!(view["status"], "reauthorization_required", "{view}");

    // A refresh says the same, and sends nothing.
    let before = fx.control_stats()["flowaccount"]["token_requests"].clone();
    fx.run(&["refresh", &id])
        .assert_one_line_error(3, "reauthorization_required");
    assert_eq!(fx.control_stats()["flowaccount"]["token_requests"], before);
}

#[test]
fn refresh_all_reports_a_connection_logged_out_meanwhile_as_skipped() {
    let fx = Fixture::new();
    let names = ["fx-a", "fx-b", "fx-c", "fx-d", "fx-e"];
    let mut ids = Vec::new();
    for name in names {
        fx.add_fedex_client(name);
        ids.push(id_of(&fx.connect_fedex_plain(name)));
    }
    fx.control().set_latency(Duration::from_millis(800));
    // One provider call at a time, two connections prepared ahead: the last one is
    // untouched for seconds.
    let mut cmd = fx.std_command();
    cmd.args(["refresh", "--all", "--concurrency", "1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().expect("refresh --all starts");
    crate::datadir::wait_for_a_lock(&fx);
    // A FedEx disconnect asks no provider: it is done at once.
    fx.ok(&["logout", &ids[4]]);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("skipped fx-e: logged out or disconnected meanwhile"),
        "{stdout}"
    );
    assert!(
        stdout.contains("4 refreshed, 0 failed, 1 skipped"),
        "{stdout}"
    );
    assert!(!stdout.contains("failed  "), "{stdout}");
}
