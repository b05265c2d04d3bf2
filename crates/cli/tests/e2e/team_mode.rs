//! Team mode end to end: two data directories (two desktops, each with its own keyring
//! service) in one team on a real PostgreSQL cluster share their clients and
//! connections. A rotating FlowAccount grant refreshed on one desktop is refreshed on
//! the other with the rotated token (the emulator revokes a grant whose spent refresh
//! token comes back); no token is in either desktop's files or in the database in clear.

use authdeck_team::testing::{PgCluster, PgOptions};
use serde_json::Value;

use crate::common::{id_of, Fixture, FA_BUSINESS};

fn cluster() -> PgCluster {
    let cluster = PgCluster::start_with(PgOptions {
        log_statement_all: true,
        ..PgOptions::default()
    });
    cluster.create_database("team");
    cluster
}

/// Desktop `a` creates the team, `b` joins it with the printed key (on stdin).
fn two_desktops(db: &str) -> (Fixture, Fixture) {
    let a = Fixture::new();
    let b = Fixture::new();
    let init = a.run(&[
        "team",
        "init",
        "--database",
        db,
        "--name",
        "Firm",
        "--machine",
        "desk-a",
    ]);
    init.assert_code(0);
    let key = init.stdout.trim().to_owned();
    b.run_stdin(
        &["team", "join", "--database", db, "--machine", "desk-b"],
        &format!("{key}\n"),
    )
    .assert_code(0);
    (a, b)
}

fn ids(list: &Value) -> Vec<String> {
    let mut ids: Vec<String> = list.as_array().expect("a list").iter().map(id_of).collect();
    ids.sort();
    ids
}

fn generation(f: &Fixture, id: &str) -> i64 {
    let list = f.json(&["list"]);
    list.as_array()
        .unwrap()
        .iter()
        .find(|c| id_of(c) == id)
        .unwrap_or_else(|| panic!("{id} listed: {list}"))["secret_generation"]
        .as_i64()
        .expect("a generation")
}

#[test]
fn two_desktops_share_connections_and_a_rotating_grant_survives_refreshes_on_both() {
    let pg = cluster();
    let db = pg.tcp_config("team");
    let (a, b) = two_desktops(&db);

    // A adds the clients and connects; B sees all of it.
    a.add_demo_clients();
    let (fa, _) = a.connect_flowaccount("fa", FA_BUSINESS);
    let iot = a.connect_iot("iot");
    let fedex = a.connect_fedex_plain("fedex");
    let fa_id = id_of(&fa);
    assert_eq!(ids(&b.json(&["list"])), ids(&a.json(&["list"])));
    assert_eq!(ids(&b.json(&["list"])).len(), 3);
    let clients = b.ok(&["client", "list"]);
    for name in ["fa", "fedex", "iot"] {
        assert!(clients.stdout.contains(name), "{}", clients.describe());
    }

    // B refreshes the rotating grant; A's next refresh uses the rotated token (a reuse
    // of the spent one would revoke the grant: invalid_grant).
    let before = a.ok(&["token", &fa_id]).stdout;
    b.ok(&["refresh", &fa_id]);
    assert_eq!(generation(&a, &fa_id), 2, "A sees B's refresh");
    let after_b = a.ok(&["token", &fa_id]).stdout;
    assert_ne!(after_b, before, "A reads the token B's refresh stored");
    assert_eq!(after_b, b.ok(&["token", &fa_id]).stdout);
    a.ok(&["refresh", &fa_id]);
    b.ok(&["refresh", &fa_id]);
    assert_eq!(generation(&b, &fa_id), 4);

    // Both refresh everything at once, twice: every refresh succeeds (the team's
    // per-connection lock and the generation compare-and-swap keep them apart).
    for _ in 0..2 {
        let (ra, rb) = std::thread::scope(|s| {
            let ta = s.spawn(|| a.run(&["--json", "refresh", "--all"]));
            let tb = s.spawn(|| b.run(&["--json", "refresh", "--all"]));
            (ta.join().unwrap(), tb.join().unwrap())
        });
        for run in [&ra, &rb] {
            run.assert_code(0);
            for row in run.json().as_array().unwrap() {
                assert_eq!(row["ok"], true, "{row}");
            }
        }
    }
    // Each round moved the rotating grants on at least once and at most twice (a
    // refresher that gets the lock right after the other's refresh may find the token
    // fresh and leave it).
    let fa_gen = generation(&a, &fa_id);
    assert!(
        (6..=8).contains(&fa_gen),
        "FlowAccount at generation {fa_gen}"
    );
    let iot_gen = generation(&a, &id_of(&iot));
    assert!((3..=5).contains(&iot_gen), "IoT at generation {iot_gen}");
    assert_eq!(
        generation(&b, &fa_id),
        fa_gen,
        "both desktops see one state"
    );
    let fa_now = a.ok(&["refresh", &fa_id]);
    assert!(
        fa_now.stdout.starts_with("Refreshed"),
        "{}",
        fa_now.describe()
    );

    // No token in either desktop's files, nor in the database or its statement log.
    let tokens: Vec<String> = [&fa_id, &id_of(&iot), &id_of(&fedex)]
        .iter()
        .map(|id| a.ok(&["token", id]).stdout.trim().to_owned())
        .collect();
    let dump = pg.pg_dump("team");
    let log = pg.server_log();
    for token in &tokens {
        assert!(token.len() > 16, "a real token: {token:?}");
        for f in [&a, &b] {
            for (path, bytes) in f.data_files() {
                assert!(
                    !String::from_utf8_lossy(&bytes).contains(token.as_str()),
                    "a token in {}",
                    path.display()
                );
            }
        }
        assert!(!dump.contains(token.as_str()), "a token in pg_dump");
        assert!(!log.contains(token.as_str()), "a token in the server log");
    }

    // B logs out; the connection is gone for A too.
    b.ok(&["logout", &id_of(&iot)]);
    assert_eq!(ids(&a.json(&["list"])).len(), 2);
}
