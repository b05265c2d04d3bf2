//! `team import`: a desktop's local connections (FlowAccount with its rotating refresh
//! token, FedEx with a child secret, IoT) move into the team it joined; each local copy
//! goes only after the team commit, so a kill at any point loses nothing and a second
//! run finishes the move without a duplicate. Refreshes go through the team afterwards,
//! with the provider's newest refresh token (the emulator revokes a grant whose spent
//! token comes back).

use authdeck_emulator::TokenStatus;
use serde_json::Value;

use crate::common::{id_of, Fixture, FA_BUSINESS, FA_BUSINESS_2};
use crate::team_harness::{cluster, init, TeamView};

/// Two FlowAccount businesses, a FedEx child-credentials project and an IoT session,
/// connected while the data dir is local; the ids.
fn connect_locally(f: &Fixture) -> Vec<String> {
    f.add_demo_clients();
    let mut ids = vec![
        id_of(&f.connect_flowaccount("fa", FA_BUSINESS).0),
        id_of(&f.connect_flowaccount("fa", FA_BUSINESS_2).0),
    ];
    let child_key = f.child_key();
    let fedex = f.run_env(
        &[
            "--json",
            "connect",
            "fedex",
            "--client",
            "fedex",
            "--grant",
            "client-pc-credentials",
            "--child-key",
            &child_key,
        ],
        &[("AUTHDECK_CHILD_SECRET", &f.child_secret())],
    );
    fedex.assert_code(0);
    ids.push(id_of(&fedex.json()));
    ids.push(id_of(&f.connect_iot("iot")));
    // One local refresh each: the grants rotated once, the history has lines.
    for id in &ids {
        f.ok(&["refresh", id]);
    }
    ids.sort();
    ids
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn listed(f: &Fixture) -> Vec<String> {
    sorted(
        f.json(&["list"])
            .as_array()
            .unwrap()
            .iter()
            .map(id_of)
            .collect(),
    )
}

/// Nothing of the connections or their clients is left in the local store: no row,
/// no keyring entry of a token, token set, client or child secret.
fn assert_nothing_local(f: &Fixture) {
    assert_eq!(f.stored_connections(), Vec::new(), "local connection rows");
    let left: Vec<String> = f
        .keyring_keys()
        .into_iter()
        .filter(|k| {
            k.starts_with("connection/") || k.starts_with("tokenset/") || k.starts_with("client/")
        })
        .collect();
    assert!(left.is_empty(), "local keyring entries left: {left:?}");
}

/// Every FlowAccount connection's refresh token in the team is the emulator's newest;
/// a refresh of everything through the team works.
fn assert_team_works(f: &Fixture, team: &TeamView, ids: &[String]) {
    assert_eq!(
        team.connections(f)
            .into_iter()
            .map(|(id, _)| id)
            .collect::<Vec<_>>(),
        ids,
        "every connection exactly once in the team"
    );
    let check = |f: &Fixture| {
        for row in f.json(&["list"]).as_array().unwrap() {
            if row["provider"] == "flowaccount" {
                let tokens = team.tokens(f, &id_of(row)).expect("team tokens");
                let refresh = tokens["refresh_token"].as_str().expect("a refresh token");
                assert_eq!(
                    f.control().flowaccount_refresh_token_status(refresh),
                    TokenStatus::Current,
                    "the team's refresh token of {} is the provider's newest",
                    id_of(row)
                );
            }
        }
    };
    check(f);
    let report = f.json(&["refresh", "--all"]);
    for row in report.as_array().unwrap() {
        assert_eq!(row["ok"], true, "{row}");
    }
    check(f);
    for id in ids {
        f.ok(&["token", id]);
    }
    let stats = f.control().stats();
    assert_eq!(
        (stats.invalid_grant, stats.reuse_detected),
        (0, 0),
        "{stats:?}"
    );
}

#[test]
fn import_moves_local_connections_into_the_team_and_they_refresh_there() {
    let pg = cluster();
    let db = pg.tcp_config("team");
    let f = Fixture::new();
    let ids = connect_locally(&f);
    let join = init(&f, &db, "desk-a");
    let team = TeamView::open(&f, &db, &join);
    // In the team before the import: authdeckctl sees the team's (empty) list.
    assert_eq!(listed(&f), Vec::<String>::new());

    let run = f.run(&["team", "import"]);
    run.assert_code(0);
    assert_eq!(
        run.stdout
            .lines()
            .filter(|l| l.starts_with("Imported"))
            .count(),
        4,
        "{}",
        run.describe()
    );
    assert!(
        run.stdout.contains(
            "4 imported, 0 finished, 0 already in the team, 0 not moved; 3 clients copied"
        ),
        "{}",
        run.describe()
    );
    assert_eq!(listed(&f), ids, "the same connections, now the team's");
    assert_nothing_local(&f);
    // The history came along, with the move itself.
    let history = f.ok(&["history", &ids[0]]).stdout;
    for event in ["connect", "refresh", "import"] {
        assert!(history.contains(event), "{event} in {history}");
    }
    // The FedEx child secret came along: its refresh needs it.
    assert_team_works(&f, &team, &ids);
    // Moved sealed: no token, client or child secret or password in the database, its
    // statement log or the data dir.
    let mut secrets: Vec<String> = vec![
        f.fa_secret(),
        f.fedex_secret(),
        f.child_secret(),
        f.iot_password(),
    ];
    for id in &ids {
        let tokens = team.tokens(&f, id).expect("team tokens");
        secrets.push(tokens["access_token"].as_str().unwrap().to_owned());
        if let Some(r) = tokens["refresh_token"].as_str() {
            secrets.push(r.to_owned());
        }
    }
    let (dump, log) = (pg.pg_dump("team"), pg.server_log());
    for secret in &secrets {
        assert!(secret.len() >= 4, "a real secret");
        assert!(!dump.contains(secret.as_str()), "a secret in pg_dump");
        assert!(!log.contains(secret.as_str()), "a secret in the server log");
        for (path, bytes) in f.data_files() {
            assert!(
                !String::from_utf8_lossy(&bytes).contains(secret.as_str()),
                "a secret in {}",
                path.display()
            );
        }
    }

    // Again: nothing left to move.
    let again = f.json(&["team", "import"]);
    assert_eq!(again["imported"], 0, "{again}");
    assert_eq!(again["connections"], Value::Array(vec![]), "{again}");
    assert_eq!(listed(&f), ids);
}

#[test]
fn a_business_the_team_has_already_is_reported_and_kept_not_copied_twice() {
    let pg = cluster();
    let db = pg.tcp_config("team");
    let f = Fixture::new();
    f.add_flowaccount_client("fa", None);
    let local_one = id_of(&f.connect_flowaccount("fa", FA_BUSINESS).0);
    let local_two = id_of(&f.connect_flowaccount("fa", FA_BUSINESS_2).0);
    let join = init(&f, &db, "desk-a");
    let team = TeamView::open(&f, &db, &join);
    // The team gets the same app registration and connects FA_BUSINESS itself (as
    // another desktop would have).
    f.add_flowaccount_client("fa", None);
    let in_team = id_of(&f.connect_flowaccount("fa", FA_BUSINESS).0);

    let summary = f.json(&["team", "import"]);
    assert_eq!(summary["imported"], 1, "{summary}");
    assert_eq!(summary["already_in_team"], 1, "{summary}");
    assert_eq!(summary["clients_matched"], 1, "{summary}");
    assert_eq!(summary["clients_copied"], 0, "{summary}");
    let lines = summary["connections"].as_array().unwrap();
    let line = |id: &str| lines.iter().find(|l| l["id"] == id).unwrap().clone();
    assert_eq!(line(&local_one)["outcome"], "already_in_team");
    assert_eq!(line(&local_one)["team_connection"], in_team.as_str());
    assert_eq!(line(&local_two)["outcome"], "imported");
    // The team has each business once; the local duplicate stays local, untouched.
    assert_eq!(listed(&f), sorted(vec![in_team.clone(), local_two.clone()]));
    let local: Vec<String> = f
        .stored_connections()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(local, vec![local_one.clone()]);
    // Run again: reported again, still not copied.
    let again = f.json(&["team", "import"]);
    assert_eq!(again["already_in_team"], 1, "{again}");
    assert_eq!(again["imported"], 0, "{again}");
    assert_eq!(team.connections(&f).len(), 2);
}

/// Where `team import` can be killed (`AUTHDECK_CRASH_AT`, debug builds).
const IMPORT_CRASH_POINTS: [&str; 3] = [
    "import_before_team_insert",
    "import_after_team_commit",
    "import_between_connections",
];

#[test]
fn an_import_killed_at_any_crash_point_loses_nothing_and_a_rerun_finishes_it() {
    let pg = cluster();
    for point in IMPORT_CRASH_POINTS {
        let name = point.replace('_', "");
        pg.create_database(&name);
        let db = pg.tcp_config(&name);
        let f = Fixture::new();
        let ids = connect_locally(&f);
        let join = init(&f, &db, "desk-a");
        let team = TeamView::open(&f, &db, &join);

        let killed = f.run_env(&["team", "import"], &[("AUTHDECK_CRASH_AT", point)]);
        assert_eq!(
            killed.code,
            None,
            "killed at {point}: {}",
            killed.describe()
        );
        let in_team = team.connections(&f).len();
        let local = f.stored_connections().len();
        match point {
            "import_before_team_insert" => assert_eq!((in_team, local), (0, 4), "{point}"),
            // The first one is in the team and still here.
            "import_after_team_commit" => assert_eq!((in_team, local), (1, 4), "{point}"),
            // The first one is moved.
            _ => assert_eq!((in_team, local), (1, 3), "{point}"),
        }

        let rerun = f.json(&["team", "import"]);
        let finished = usize::from(point == "import_after_team_commit");
        assert_eq!(rerun["finished"], finished, "{point}: {rerun}");
        assert_eq!(rerun["imported"], 4 - in_team, "{point}: {rerun}");
        assert_eq!(rerun["failed"], 0, "{point}: {rerun}");
        assert_eq!(listed(&f), ids, "{point}: every connection once");
        assert_nothing_local(&f);
        assert_team_works(&f, &team, &ids);
    }
}

/// The desktop's own (local) store, as the window would use it, opened in the test.
fn local_manager(f: &Fixture) -> authdeck_core::manager::Manager {
    let paths = authdeck_core::store::paths::Paths {
        data_dir: f.data_dir(),
        keyring_service: f.service.clone(),
    };
    f.rt.block_on(authdeck_core::manager::Manager::open_async(
        paths,
        authdeck_core::manager::ManagerOptions::default(),
    ))
    .expect("the local store opens")
}

#[test]
fn a_local_refresh_between_a_killed_import_and_its_rerun_is_carried_into_the_team() {
    let pg = cluster();
    let db = pg.tcp_config("team");
    let f = Fixture::new();
    f.add_flowaccount_client("fa", None);
    let id = id_of(&f.connect_flowaccount("fa", FA_BUSINESS).0);
    let join = init(&f, &db, "desk-a");
    let team = TeamView::open(&f, &db, &join);
    let killed = f.run_env(
        &["team", "import"],
        &[("AUTHDECK_CRASH_AT", "import_after_team_commit")],
    );
    assert_eq!(killed.code, None, "{}", killed.describe());
    let copied = team.tokens(&f, &id).expect("copied into the team");

    // The local copy is refreshed before the import runs again (the window keeps the
    // desktop's own connections fresh): the team's copy now holds a spent token.
    let local = local_manager(&f);
    f.rt.block_on(local.refresh(&id)).expect("a local refresh");
    drop(local);
    let spent = copied["refresh_token"].as_str().unwrap();
    assert_eq!(
        f.control().flowaccount_refresh_token_status(spent),
        TokenStatus::Used
    );

    let rerun = f.json(&["team", "import"]);
    assert_eq!(rerun["finished"], 1, "{rerun}");
    assert_nothing_local(&f);
    assert_eq!(
        team.connections(&f),
        vec![(id.clone(), 2)],
        "the newer tokens, committed"
    );
    assert_team_works(&f, &team, &[id]);
}

#[test]
fn an_answer_a_killed_local_refresh_journalled_is_imported_not_its_spent_token() {
    let pg = cluster();
    let db = pg.tcp_config("team");
    let f = Fixture::new();
    f.add_flowaccount_client("fa", None);
    let id = id_of(&f.connect_flowaccount("fa", FA_BUSINESS).0);
    // Killed with the provider's answer only in the journal: the local store still
    // holds the refresh token that answer spent.
    let killed = f.run_env(
        &["refresh", &id],
        &[("AUTHDECK_CRASH_AT", "after_answer_journalled")],
    );
    assert_eq!(killed.code, None, "{}", killed.describe());
    assert_eq!(f.control().stats().refresh_ok, 1);
    let join = init(&f, &db, "desk-a");
    let team = TeamView::open(&f, &db, &join);
    // Team-mode commands before the import leave the local store's answer alone (the
    // team's manager does not know the connection: that is no logout).
    f.add_flowaccount_client("fa", None);
    let in_team = id_of(&f.connect_flowaccount("fa", FA_BUSINESS_2).0);
    f.json(&["refresh", "--all"]);

    let summary = f.json(&["team", "import"]);
    assert_eq!(summary["imported"], 1, "{summary}");
    assert_nothing_local(&f);
    assert_team_works(&f, &team, &sorted(vec![id, in_team]));
    crate::rotation::assert_journal_empty(&f);
}
