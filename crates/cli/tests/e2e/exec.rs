//! `authdeckctl exec` (a fresh access token in a command's environment, never its argv;
//! the exit status passed through; signals forwarded) and `token --json`.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::*;

/// Runs `sh -c SCRIPT sh FILES…` under `authdeckctl exec PRE…`.
fn exec_sh(f: &Fixture, pre: &[&str], script: &str, files: &[&str]) -> Run {
    let mut args: Vec<&str> = vec!["exec"];
    args.extend_from_slice(pre);
    args.extend_from_slice(&["--", "sh", "-c", script, "sh"]);
    args.extend_from_slice(files);
    f.run(&args)
}

fn path(f: &Fixture, name: &str) -> String {
    f.dir.path().join(name).to_str().unwrap().to_owned()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn exec_puts_a_fresh_token_in_the_environment_not_on_argv_and_passes_the_exit_code() {
    let f = Fixture::new();
    f.add_iot_client("iot");
    let conn = f.connect_iot("iot");
    let id = id_of(&conn);
    let token = f.ok(&["token", &id]).stdout.trim().to_owned();
    let (env, exp, argv) = (path(&f, "env"), path(&f, "exp"), path(&f, "argv"));
    let run = exec_sh(
        &f,
        &[&id],
        r#"printf %s "$AUTHDECK_TOKEN" > "$1"; printf %s "$AUTHDECK_TOKEN_EXPIRES_AT" > "$2"; tr '\0' ' ' < /proc/self/cmdline > "$3"; exit 7"#,
        &[&env, &exp, &argv],
    );
    run.assert_code(7);
    assert_eq!(read(&env), token);
    let expires = chrono::DateTime::parse_from_rfc3339(&read(&exp)).expect("RFC 3339 expiry");
    let status = f.json(&["status", &id]);
    assert_eq!(
        expires.timestamp(),
        chrono::DateTime::parse_from_rfc3339(status["access_expires"]["at"].as_str().unwrap())
            .unwrap()
            .timestamp()
    );
    let cmdline = read(&argv);
    assert!(cmdline.starts_with("sh -c"), "{cmdline}");
    assert!(
        !cmdline.contains(&token),
        "the token is not on the child's argv"
    );
    // A custom name; exit 0 passes through too.
    let named = path(&f, "named");
    exec_sh(
        &f,
        &[&id, "--env", "IOT_TOKEN"],
        r#"printf %s "$IOT_TOKEN" > "$1"; test -z "$AUTHDECK_TOKEN""#,
        &[&named],
    )
    .assert_code(0);
    assert_eq!(read(&named), token);
    // Nothing of it on the output, and never on authdeckctl's own argv.
    for run in f.all_runs() {
        assert!(
            !run.args.iter().any(|a| a.contains(&token)),
            "{}",
            run.describe()
        );
        if run.command_words().first() != Some(&"token") {
            assert!(
                !run.stdout.contains(&token) && !run.stderr.contains(&token),
                "{}",
                run.describe()
            );
        }
    }
}

#[test]
fn exec_gives_several_connections_and_refuses_bad_names() {
    let f = Fixture::new();
    f.add_iot_client("iot");
    f.add_fedex_client("fedex");
    let iot = id_of(&f.connect_iot("iot"));
    let fedex = id_of(&f.connect_fedex_plain("fedex"));
    let (a, b) = (path(&f, "a"), path(&f, "b"));
    let iot_pair = format!("{iot}=IOT_T");
    let fedex_pair = format!("{fedex}=FEDEX_T");
    exec_sh(
        &f,
        &["--conn", &iot_pair, "--conn", &fedex_pair],
        r#"printf %s "$IOT_T" > "$1"; printf %s "$FEDEX_T" > "$2"; test -n "$FEDEX_T_EXPIRES_AT""#,
        &[&a, &b],
    )
    .assert_code(0);
    assert_eq!(read(&a), f.ok(&["token", &iot]).stdout.trim());
    assert_eq!(read(&b), f.ok(&["token", &fedex]).stdout.trim());
    exec_sh(&f, &[&iot, "--env", "BAD-NAME"], "exit 0", &[])
        .assert_one_line_error(2, "invalid_input");
    let twice = format!("{fedex}=AUTHDECK_TOKEN");
    exec_sh(&f, &[&iot, "--conn", &twice], "exit 0", &[]).assert_one_line_error(2, "invalid_input");
    exec_sh(&f, &["nobody"], "exit 0", &[]).assert_one_line_error(1, "not_found");
    f.run(&["exec", &iot]).assert_code(2);
}

#[test]
fn exec_with_min_validity_refreshes_first() {
    let f = Fixture::new();
    f.add_iot_client("iot");
    let id = id_of(&f.connect_iot("iot"));
    let before = f.ok(&["token", &id]).stdout.trim().to_owned();
    let refreshes = f.control().stats().iot.refresh_ok;
    let out = path(&f, "tok");
    // The token has a day left: 60 s of validity needs no refresh…
    exec_sh(
        &f,
        &[&id, "--min-validity", "60"],
        r#"printf %s "$AUTHDECK_TOKEN" > "$1""#,
        &[&out],
    )
    .assert_code(0);
    assert_eq!(read(&out), before);
    assert_eq!(f.control().stats().iot.refresh_ok, refreshes);
    // …two days of it does.
    exec_sh(
        &f,
        &[&id, "--min-validity", "172800"],
        r#"printf %s "$AUTHDECK_TOKEN" > "$1""#,
        &[&out],
    )
    .assert_code(0);
    assert_eq!(f.control().stats().iot.refresh_ok, refreshes + 1);
    let after = read(&out);
    assert_ne!(after, before, "a new token after the refresh");
    assert_eq!(after, f.ok(&["token", &id]).stdout.trim());
}

#[test]
fn a_child_killed_by_a_signal_exits_128_plus_it_and_sigterm_is_forwarded() {
    let f = Fixture::new();
    f.add_iot_client("iot");
    let id = id_of(&f.connect_iot("iot"));
    exec_sh(&f, &[&id], "kill -TERM $$", &[]).assert_code(143);

    let (marker, ready) = (path(&f, "marker"), path(&f, "ready"));
    let mut cmd = f.std_command();
    cmd.args([
        "exec",
        &id,
        "--",
        "sh",
        "-c",
        r#"trap 'echo got-term > "$1"; exit 5' TERM; echo ready > "$2"; while :; do sleep 0.05; done"#,
        "sh",
        &marker,
        &ready,
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("authdeckctl starts");
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    while read(&ready).trim() != "ready" {
        assert!(Instant::now() < deadline, "the command never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = std::process::Command::new("kill")
        .args(["-s", "TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("authdeckctl exec did not exit after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(
        read(&marker).trim(),
        "got-term",
        "the child got the SIGTERM"
    );
    assert_eq!(status.code(), Some(5), "the child's own exit status");
}

#[test]
fn token_json_has_the_expiry_and_its_source_and_plain_token_is_unchanged() {
    let f = Fixture::new();
    f.add_iot_client("iot");
    let id = id_of(&f.connect_iot("iot"));
    let plain = f.ok(&["token", &id]);
    assert_eq!(plain.stdout.lines().count(), 1, "{}", plain.describe());
    let token = plain.stdout.trim();
    let json = f.json(&["token", &id]);
    assert_eq!(json["access_token"], token);
    assert_eq!(json["token_type"], "Bearer");
    assert_eq!(json["expires_source"], "epoch_millis");
    assert!(json["expires_in"].as_i64().unwrap() > 86_000, "{json}");
    assert!(chrono::DateTime::parse_from_rfc3339(json["expires_at"].as_str().unwrap()).is_ok());
}
