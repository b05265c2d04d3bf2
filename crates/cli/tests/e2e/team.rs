//! `authdeckctl team …` against a real PostgreSQL cluster (`authdeck_team::testing`) and
//! the real keyring: two data directories (two desktops, each its own keyring service)
//! join one team; the join key never leaks (argv, files, server log, stderr); a damaged
//! or old key is refused and writes nothing; an unreachable database is
//! `team_unavailable` and writes nothing.

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use authdeck_core::store::SecretStore;
use authdeck_team::testing::{PgCluster, PgOptions};
use authdeck_team::{JoinKey, TeamKey};
use serde_json::Value;

use crate::common::{Fixture, Run, COMMAND_TIMEOUT};
use crate::team_harness::key_forms;

fn cluster() -> PgCluster {
    let cluster = PgCluster::start_with(PgOptions {
        log_statement_all: true,
        ..PgOptions::default()
    });
    cluster.create_database("team");
    cluster
}

fn address(cluster: &PgCluster) -> String {
    cluster.tcp_config("team")
}

/// `team join` with the join key written to stdin only after the child's command line
/// was read from /proc: the key is never in argv.
fn join_checked(f: &Fixture, args: &[&str], stdin: &str) -> (Run, String) {
    let mut cmd = f.std_command();
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("authdeckctl starts");
    // Read while the child waits for its stdin (empty for a moment right after exec).
    let mut cmdline = String::new();
    for _ in 0..100 {
        cmdline = std::fs::read(format!("/proc/{}/cmdline", child.id()))
            .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
            .expect("/proc/PID/cmdline readable while the child waits for stdin");
        if !cmdline.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    {
        let mut input = child.stdin.take().expect("stdin");
        input.write_all(stdin.as_bytes()).expect("write stdin");
    }
    let deadline = std::time::Instant::now() + COMMAND_TIMEOUT;
    while child.try_wait().expect("wait").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("authdeckctl {args:?} hung");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    let run = Run {
        args: args.iter().map(|s| s.to_string()).collect(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    f.record(run.clone());
    (run, cmdline)
}

fn init(f: &Fixture, db: &str, machine: &str) -> String {
    let run = f.run(&[
        "team",
        "init",
        "--database",
        db,
        "--name",
        "Firm",
        "--machine",
        machine,
    ]);
    run.assert_code(0);
    let key = run.stdout.trim().to_owned();
    assert_eq!(
        key.lines().count(),
        1,
        "stdout is the join key alone: {}",
        run.describe()
    );
    assert!(key.starts_with("adtk1_"), "{}", run.describe());
    assert!(
        run.stderr.contains("shown this once") && run.stderr.contains("team join"),
        "stderr says how to pass the key on: {}",
        run.describe()
    );
    key
}

fn status(f: &Fixture) -> Value {
    f.json(&["team", "status"])
}

fn machines(status: &Value) -> Vec<String> {
    let mut m: Vec<String> = status["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| m["machine"].as_str().unwrap().to_owned())
        .collect();
    m.sort();
    m
}

fn assert_nowhere(what: &str, join: &str, haystacks: &[(String, Vec<u8>)]) {
    for form in key_forms(join) {
        for (name, bytes) in haystacks {
            let text = String::from_utf8_lossy(bytes);
            assert!(
                !text.contains(&form),
                "{what} leaked into {name} (as {}…)",
                &form[..8]
            );
        }
    }
}

fn data_files(f: &Fixture) -> Vec<(String, Vec<u8>)> {
    f.data_files()
        .into_iter()
        .map(|(p, b)| (p.display().to_string(), b))
        .collect()
}

fn stderrs(f: &Fixture) -> Vec<(String, Vec<u8>)> {
    f.all_runs()
        .into_iter()
        .map(|r| (format!("stderr of {:?}", r.args), r.stderr.into_bytes()))
        .collect()
}

fn team_json(f: &Fixture) -> Option<Value> {
    std::fs::read_to_string(f.data_dir().join("team.json"))
        .ok()
        .map(|t| serde_json::from_str(&t).expect("team.json is JSON"))
}

fn team_key_entry(f: &Fixture) -> Option<String> {
    f.keyring()
        .get("team/key")
        .expect("keyring readable")
        .map(|v| v.expose().to_owned())
}

/// Nothing of a team was written for this desktop: no membership, no status, no key.
fn assert_nothing_written(f: &Fixture) {
    assert!(team_json(f).is_none(), "no team.json");
    assert!(
        !f.data_dir().join("team-status.json").exists(),
        "no cached status"
    );
    assert_eq!(team_key_entry(f), None, "no team key in the keyring");
    assert_eq!(
        f.keyring_keys(),
        Vec::<String>::new(),
        "nothing in the keyring"
    );
}

#[test]
fn two_desktops_join_a_team_the_key_never_leaks_and_rotation_leaves_the_old_key_useless() {
    let pg = cluster();
    let db = address(&pg);
    let a = Fixture::new();
    let b = Fixture::new();

    // Desktop A creates the team.
    let key = init(&a, &db, "desk-a");
    let s = status(&a);
    assert_eq!(s["in_team"], true);
    assert_eq!(s["reachable"], true);
    assert_eq!(s["team_name"], "Firm");
    assert_eq!(machines(&s), ["desk-a"]);
    assert!(s["leader"].is_null(), "no scheduler runs: {s}");
    let team_id = s["team_id"].as_str().unwrap().to_owned();
    assert!(s["database"].as_str().unwrap().contains("127.0.0.1"), "{s}");
    // The key is in A's keyring, not in its files.
    assert_eq!(team_key_entry(&a).as_deref(), Some(key.as_str()));
    let m = team_json(&a).expect("team.json");
    assert_eq!(m["team_id"], team_id.as_str());
    assert_eq!(m["machine"], "desk-a");
    assert_eq!(m["key"]["kind"], "keyring");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(a.data_dir().join("team.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "team.json is private");

    // Desktop B joins with the printed key, on stdin.
    let (run, cmdline) = join_checked(
        &b,
        &["team", "join", "--database", &db, "--machine", "desk-b"],
        &format!("{key}\n"),
    );
    run.assert_code(0);
    assert!(
        run.stdout.contains("Joined team \"Firm\""),
        "{}",
        run.describe()
    );
    assert!(cmdline.contains("team join"), "{cmdline}");
    assert_nowhere(
        "the join key",
        &key,
        &[("the child's /proc cmdline".into(), cmdline.into_bytes())],
    );
    assert_eq!(team_key_entry(&b).as_deref(), Some(key.as_str()));
    // Both desktops are seen, from either side.
    assert_eq!(machines(&status(&a)), ["desk-a", "desk-b"]);
    let text = b.ok(&["team", "status"]).stdout;
    assert!(
        text.contains("reachable") && text.contains("desk-a") && text.contains("desk-b"),
        "{text}"
    );

    // A damaged paste is refused without echo, and writes nothing.
    let c = Fixture::new();
    for damaged in [
        key[..key.len() - 3].to_owned(),
        // One character changed (the checksum catches it).
        format!(
            "{}{}{}",
            &key[..20],
            if &key[20..21] == "A" { "B" } else { "A" },
            &key[21..]
        ),
        "hello".to_owned(),
    ] {
        let (run, _) = join_checked(
            &c,
            &["team", "join", "--database", &db, "--machine", "desk-c"],
            &format!("{damaged}\n"),
        );
        run.assert_one_line_error(2, "invalid_input");
        assert!(
            run.stderr.contains("not a complete Authdeck join key"),
            "{}",
            run.describe()
        );
        assert!(
            !run.stderr.contains(damaged.get(6..).unwrap_or(&damaged)),
            "no echo: {}",
            run.describe()
        );
        assert_nothing_written(&c);
    }
    // A well-formed key of a team that is not in this database: refused, nothing written.
    let stranger = JoinKey::encode(
        &authdeck_team::crypto::new_team_id().unwrap(),
        &TeamKey::generate(1).unwrap(),
    )
    .unwrap();
    let (run, _) = join_checked(
        &c,
        &["team", "join", "--database", &db],
        &format!("{}\n", stranger.expose()),
    );
    run.assert_one_line_error(1, "not_found");
    assert_nothing_written(&c);
    // Already in a team: init is refused.
    let run = a.run(&["team", "init", "--database", &db]);
    run.assert_one_line_error(1, "already_exists");

    // Rotation: a new key, printed once; the old key is useless.
    let run = a.ok(&["team", "rotate-key"]);
    let new_key = run.stdout.trim().to_owned();
    assert!(
        new_key.starts_with("adtk1_") && new_key != key,
        "{}",
        run.describe()
    );
    assert!(
        run.stderr.contains("old key opens nothing"),
        "{}",
        run.describe()
    );
    assert_eq!(team_key_entry(&a).as_deref(), Some(new_key.as_str()));
    assert_eq!(status(&a)["reachable"], true);
    let (run, _) = join_checked(
        &c,
        &["team", "join", "--database", &db],
        &format!("{key}\n"),
    );
    run.assert_one_line_error(2, "invalid_input");
    assert!(
        run.stderr.contains("rotated"),
        "a clear error: {}",
        run.describe()
    );
    assert_nothing_written(&c);
    // B, still on the old key, is told to join again; with the new key it works.
    let run = b.run(&["team", "status"]);
    assert_ne!(run.code, Some(0), "{}", run.describe());
    assert!(run.stderr.contains("rotated"), "{}", run.describe());
    let (run, _) = join_checked(
        &b,
        &["team", "join", "--database", &db],
        &format!("{new_key}\n"),
    );
    run.assert_code(0);
    assert!(run.stdout.contains("Joined again"), "{}", run.describe());
    assert_eq!(
        team_json(&b).unwrap()["machine"],
        "desk-b",
        "the machine name is kept"
    );
    assert_eq!(status(&b)["reachable"], true);

    // Nowhere: neither key in any file of either data dir, any stderr, the server log
    // (log_statement=all) or a dump of the database.
    for k in [&key, &new_key] {
        let mut places = data_files(&a);
        places.extend(data_files(&b));
        places.extend(data_files(&c));
        places.extend(stderrs(&a));
        places.extend(stderrs(&b));
        places.extend(stderrs(&c));
        places.push(("the server log".into(), pg.server_log().into_bytes()));
        places.push(("pg_dump".into(), pg.pg_dump("team").into_bytes()));
        assert_nowhere("a join key", k, &places);
    }
    assert!(
        pg.server_log().contains("members_seen"),
        "the server log does record statements"
    );

    // Leave: A forgets the membership and the key; the team and B go on.
    let run = a.ok(&["team", "leave"]);
    assert!(
        run.stdout.contains("What stays in the team"),
        "{}",
        run.describe()
    );
    assert!(run.stdout.contains("team sql revoke"), "{}", run.describe());
    let run = a.ok(&["team", "status"]);
    assert!(run.stdout.contains("not in a team"), "{}", run.describe());
    assert_eq!(status(&a)["in_team"], false);
    assert!(team_json(&a).is_none());
    assert_eq!(team_key_entry(&a), None);
    assert!(!a.keyring_keys().iter().any(|k| k.starts_with("team/")));
    let s = status(&b);
    assert_eq!(s["reachable"], true);
    assert!(
        machines(&s).contains(&"desk-a".to_owned()),
        "A stays in the members seen: {s}"
    );
    // Out of the team, A may create or join one again.
    let (run, _) = join_checked(
        &a,
        &["team", "join", "--database", &db, "--machine", "desk-a"],
        &format!("{new_key}\n"),
    );
    run.assert_code(0);
}

#[test]
fn an_unreachable_database_is_team_unavailable_and_writes_nothing() {
    let a = Fixture::new();
    // Nothing listens there.
    let nowhere = format!(
        "host=127.0.0.1 port={} user=postgres dbname=team connect_timeout=5",
        crate::common::free_port()
    );
    let run = a.run(&["team", "init", "--database", &nowhere]);
    run.assert_one_line_error(1, "team_unavailable");
    assert_nothing_written(&a);
    let key = JoinKey::encode(
        &authdeck_team::crypto::new_team_id().unwrap(),
        &TeamKey::generate(1).unwrap(),
    )
    .unwrap();
    let run = a.run_stdin(
        &["team", "join", "--database", &nowhere],
        &format!("{}\n", key.expose()),
    );
    run.assert_one_line_error(1, "team_unavailable");
    assert!(!run.stderr.contains(key.expose()));
    assert_nothing_written(&a);

    // In a team whose database then goes away: status says so, shows the last known
    // status, exits non-zero, and changes no file.
    let mut pg = cluster();
    let db = address(&pg);
    init(&a, &db, "desk-a");
    let before = status(&a);
    assert_eq!(before["reachable"], true);
    pg.stop();
    let files = a.data_files();
    let run = a.run(&["team", "status"]);
    run.assert_one_line_error(1, "team_unavailable");
    assert!(run.stdout.contains("NOT reachable"), "{}", run.describe());
    assert!(run.stdout.contains("Last known"), "{}", run.describe());
    assert!(run.stdout.contains("desk-a"), "{}", run.describe());
    let run = a.run(&["--json", "team", "status"]);
    assert_eq!(run.code, Some(1), "{}", run.describe());
    assert_eq!(run.json_error()["code"], "team_unavailable");
    let last = run.json();
    assert_eq!(last["reachable"], false);
    assert_eq!(last["last_known"], true);
    assert_eq!(last["team_id"], before["team_id"]);
    assert_eq!(last["checked_at"], before["checked_at"]);
    let run = a.run(&["team", "rotate-key"]);
    run.assert_one_line_error(1, "team_unavailable");
    assert_eq!(a.data_files(), files, "nothing written while unreachable");
}

#[test]
fn an_address_with_a_password_is_refused_without_echo() {
    let a = Fixture::new();
    for db in [
        "postgres://postgres:Sup3rSecretPw@127.0.0.1:5432/team",
        "host=127.0.0.1 user=postgres password=Sup3rSecretPw dbname=team",
    ] {
        for args in [
            vec!["team", "init", "--database", db],
            vec!["team", "join", "--database", db],
        ] {
            let run = a.run_stdin(&args, "adtk1_whatever\n");
            run.assert_one_line_error(2, "invalid_input");
            assert!(
                run.stderr.contains("contains a password"),
                "{}",
                run.describe()
            );
            assert!(!run.stderr.contains("Sup3rSecretPw"), "{}", run.describe());
            assert!(!run.stdout.contains("Sup3rSecretPw"), "{}", run.describe());
        }
    }
    assert_nothing_written(&a);
}

#[test]
fn a_password_role_joins_with_the_password_on_stdin_kept_in_the_keyring() {
    let pg = cluster();
    // alice must give a password over TCP (the cluster trusts everyone else).
    let hba = pg.data_dir().join("pg_hba.conf");
    let rules = std::fs::read_to_string(&hba).expect("pg_hba.conf");
    std::fs::write(
        &hba,
        format!("host all alice 127.0.0.1/32 scram-sha-256\n{rules}"),
    )
    .expect("pg_hba.conf writable (the tests run as root or as the cluster's owner)");
    pg.psql("postgres", "SELECT pg_reload_conf()");
    pg.psql("team", "CREATE ROLE alice LOGIN PASSWORD 'alice-Pw-42'");
    let admin = Fixture::new();
    let key = init(&admin, &address(&pg), "admin-pc");
    let grant = admin.ok(&["team", "sql", "member", "alice"]).stdout;
    pg.psql("team", &grant);

    let db = format!("host=127.0.0.1 port={} user=alice dbname=team", pg.port());
    let alice = Fixture::new();
    // A wrong password: refused by the server, nothing written.
    let (run, _) = join_checked(
        &alice,
        &["team", "join", "--database", &db, "--password-stdin"],
        &format!("{key}\nwrong-password\n"),
    );
    run.assert_one_line_error(1, "team_unavailable");
    assert!(
        run.stderr.contains("refused the login"),
        "{}",
        run.describe()
    );
    assert_nothing_written(&alice);
    // The right one: joined, the password in the keyring only.
    let (run, _) = join_checked(
        &alice,
        &[
            "team",
            "join",
            "--database",
            &db,
            "--password-stdin",
            "--machine",
            "alice-pc",
        ],
        &format!("{key}\nalice-Pw-42\n"),
    );
    run.assert_code(0);
    assert_eq!(
        alice
            .keyring()
            .get("team/db-password")
            .unwrap()
            .map(|v| v.expose().to_owned())
            .as_deref(),
        Some("alice-Pw-42")
    );
    assert_eq!(team_json(&alice).unwrap()["password"], true);
    let s = status(&alice);
    assert_eq!(s["reachable"], true);
    assert!(s["members"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["member"] == "alice" && m["machine"] == "alice-pc"));
    for (name, bytes) in data_files(&alice).into_iter().chain(stderrs(&alice)) {
        assert!(
            !String::from_utf8_lossy(&bytes).contains("alice-Pw-42"),
            "the password leaked into {name}"
        );
    }
    // Leaving forgets the password too.
    alice.ok(&["team", "leave"]);
    assert_nothing_written(&alice);
}

#[test]
fn a_headless_agent_keeps_the_key_in_a_private_file() {
    let pg = cluster();
    let db = address(&pg);
    let admin = Fixture::new();
    let key = init(&admin, &db, "admin-pc");
    let agent = Fixture::new();
    let key_file = agent.dir.path().join("team-key");
    let path = key_file.to_str().unwrap();
    let (run, _) = join_checked(
        &agent,
        &[
            "team",
            "join",
            "--database",
            &db,
            "--machine",
            "office-pc",
            "--key-file",
            path,
        ],
        &format!("{key}\n"),
    );
    run.assert_code(0);
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(&key_file).expect("the key file");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::read_to_string(&key_file).unwrap().trim(), key);
    assert_eq!(
        agent.keyring_keys(),
        Vec::<String>::new(),
        "not in the keyring"
    );
    assert_eq!(status(&agent)["reachable"], true);
    // A key file others may read is refused.
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let run = agent.run(&["team", "status"]);
    assert!(
        run.stderr.contains("others may read it"),
        "{}",
        run.describe()
    );
    assert!(!run.stderr.contains(&key[6..]), "{}", run.describe());
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();

    // The systemd credential: nothing kept here, the key read from the credential.
    let unit = Fixture::new();
    let (run, _) = join_checked(
        &unit,
        &[
            "team",
            "join",
            "--database",
            &db,
            "--machine",
            "server",
            "--key-credential",
        ],
        &format!("{key}\n"),
    );
    run.assert_code(0);
    assert_eq!(unit.keyring_keys(), Vec::<String>::new());
    let creds = tempfile::tempdir().unwrap();
    std::fs::write(creds.path().join("team-key"), format!("{key}\n")).unwrap();
    std::fs::set_permissions(
        creds.path().join("team-key"),
        std::fs::Permissions::from_mode(0o400),
    )
    .unwrap();
    let run = unit.run(&["team", "status"]);
    assert!(
        run.stderr.contains("CREDENTIALS_DIRECTORY"),
        "{}",
        run.describe()
    );
    let run = unit.run_env(
        &["--json", "team", "status"],
        &[("CREDENTIALS_DIRECTORY", creds.path().to_str().unwrap())],
    );
    run.assert_code(0);
    assert_eq!(run.json()["reachable"], true);
    // Leaving removes the key file it wrote.
    agent.ok(&["team", "leave"]);
    assert!(!key_file.exists());
}

#[test]
fn team_sql_prints_the_administrators_sql() {
    let a = Fixture::new();
    let member = a.ok(&["team", "sql", "member", "alice"]).stdout;
    assert!(
        member.contains("GRANT USAGE ON SCHEMA authdeck TO \"alice\""),
        "{member}"
    );
    assert!(member.contains("authdeck.token_sets"), "{member}");
    let reader = a.ok(&["team", "sql", "reader", "support"]).stdout;
    assert!(reader.contains("TO \"support\""), "{reader}");
    assert!(
        !reader.contains("token_sets"),
        "a reader gets no token: {reader}"
    );
    let revoke = a.ok(&["team", "sql", "revoke", "alice"]).stdout;
    assert!(
        revoke.contains("REVOKE ALL ON ALL TABLES IN SCHEMA authdeck FROM \"alice\""),
        "{revoke}"
    );
    a.run(&["team", "sql", "member", "x\"; DROP TABLE y; --"])
        .assert_one_line_error(2, "invalid_input");
}

#[test]
fn status_shows_the_leader_the_last_refresh_and_the_lag() {
    let pg = cluster();
    let db = address(&pg);
    let a = Fixture::new();
    let key = init(&a, &db, "desk-a");
    // Another member (an agent here, straight through the store) leads the scheduler and
    // refreshes a connection.
    let (store, leader) = a.rt.block_on(async {
        let config = authdeck_team::DbConfig::parse(&db).unwrap();
        let (team, team_key) = JoinKey::decode(&key).unwrap();
        let store = authdeck_team::TeamStore::open(
            &config,
            &team,
            team_key,
            "office-pc",
            authdeck_team::Via::Agent,
        )
        .await
        .unwrap();
        store
            .put_client("fa", &serde_json::json!({}), None)
            .await
            .unwrap();
        store
            .insert_connection("c1", "fa", &serde_json::json!({}), b"ts-1", None)
            .await
            .unwrap();
        let won = store
            .commit(&authdeck_team::CommitRequest {
                connection_id: "c1",
                expected_generation: 1,
                token_set: b"ts-2",
                record: &serde_json::json!({}),
                refreshed: true,
                history: None,
            })
            .await
            .unwrap();
        assert!(matches!(won, authdeck_team::CommitOutcome::Won { .. }));
        let leader = authdeck_team::Leadership::acquire(&store, Duration::from_secs(5))
            .await
            .unwrap()
            .expect("leads");
        (store, leader)
    });
    let s = status(&a);
    assert_eq!(s["leader"]["machine"], "office-pc", "{s}");
    assert_eq!(s["connections"], 1);
    assert_eq!(s["last_refresh"]["connection_id"], "c1", "{s}");
    assert_eq!(s["last_refresh"]["on"], "office-pc", "{s}");
    assert!(s["refresh_lag_seconds"].as_i64().unwrap() >= 0, "{s}");
    let text = a.ok(&["team", "status"]).stdout;
    assert!(
        text.contains("Leader         postgres on office-pc"),
        "{text}"
    );
    assert!(text.contains("by postgres on office-pc"), "{text}");
    // The leader gone: none leads.
    a.rt.block_on(async move {
        leader.release().await;
        drop(store);
    });
    assert!(status(&a)["leader"].is_null());
}

#[test]
fn a_signal_during_rotate_key_does_not_lose_the_new_key() {
    let pg = cluster();
    let db = address(&pg);
    let a = Fixture::new();
    init(&a, &db, "desk-a");
    // Hold the team row so the rotation waits inside its transaction.
    let holder = a.rt.block_on(async {
        let c = authdeck_team::DbConfig::parse(&db)
            .unwrap()
            .connect()
            .await
            .unwrap();
        c.batch_execute("BEGIN; SELECT 1 FROM authdeck.teams FOR UPDATE")
            .await
            .unwrap();
        c
    });
    let mut cmd = a.std_command();
    cmd.args(["team", "rotate-key"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().expect("authdeckctl starts");
    let waiting = || {
        pg.psql(
            "team",
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'",
        )
        .trim()
            == "1"
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !waiting() {
        assert!(
            std::time::Instant::now() < deadline,
            "rotate-key never waited on the lock"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    for sig in ["-INT", "-TERM", "-HUP"] {
        let sent = std::process::Command::new("kill")
            .args([sig, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
    }
    std::thread::sleep(Duration::from_millis(200));
    a.rt.block_on(async { holder.batch_execute("COMMIT").await.unwrap() });
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "rotate-key finished despite the signals: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let new_key = stdout.trim();
    assert!(new_key.starts_with("adtk1_"), "{stdout}");
    assert_eq!(team_key_entry(&a).as_deref(), Some(new_key));
    assert_eq!(status(&a)["reachable"], true);
}
