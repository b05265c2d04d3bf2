//! What the team tests share: a throwaway PostgreSQL cluster, desktops (data dirs,
//! each its own keyring service) in one team, and a look into the team store behind
//! the CLI's back (its token sets, opened with the team key).

use authdeck_team::testing::{PgCluster, PgOptions};
use authdeck_team::{DbConfig, JoinKey, TeamStore, Via};
use serde_json::Value;

use crate::common::Fixture;

/// A cluster logging every statement (for the canaries), with database `team`.
pub fn cluster() -> PgCluster {
    let cluster = PgCluster::start_with(PgOptions {
        log_statement_all: true,
        ..PgOptions::default()
    });
    cluster.create_database("team");
    cluster
}

/// `f` creates the team in `db` as `machine`; the join key it printed.
pub fn init(f: &Fixture, db: &str, machine: &str) -> String {
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
    run.stdout.trim().to_owned()
}

/// `f` joins with the join key on stdin.
pub fn join(f: &Fixture, db: &str, machine: &str, key: &str) {
    f.run_stdin(
        &["team", "join", "--database", db, "--machine", machine],
        &format!("{key}\n"),
    )
    .assert_code(0);
}

/// The team store opened with the team key, as the test's own member.
pub struct TeamView {
    pub store: TeamStore,
}

impl TeamView {
    pub fn open(f: &Fixture, db: &str, join: &str) -> Self {
        let config = DbConfig::parse(db).expect("a database address");
        let (team, key) = JoinKey::decode(join).expect("a join key");
        let store =
            f.rt.block_on(TeamStore::open(&config, &team, key, "test", Via::Cli))
                .expect("the team store opens");
        TeamView { store }
    }

    /// Every live connection: `(id, generation)`, by id.
    pub fn connections(&self, f: &Fixture) -> Vec<(String, i64)> {
        let rows =
            f.rt.block_on(self.store.connections())
                .expect("connections readable");
        let mut out: Vec<(String, i64)> = rows
            .into_iter()
            .filter(|r| !r.deleted)
            .map(|r| (r.id, r.generation))
            .collect();
        out.sort();
        out
    }

    /// A connection's current token bundle (`{access_token, refresh_token, …}`).
    pub fn tokens(&self, f: &Fixture, id: &str) -> Option<Value> {
        let set =
            f.rt.block_on(self.store.token_set(id))
                .expect("token set readable")?;
        Some(serde_json::from_slice(&set.1).expect("a token bundle"))
    }
}

/// The forms a team key could leak in: the join key text, its body, and the raw key
/// bytes in hex and base64.
pub fn key_forms(join: &str) -> Vec<String> {
    use base64::Engine;
    let (_, key) = JoinKey::decode(join).expect("a join key");
    let raw = key.expose_bytes();
    vec![
        join.to_owned(),
        join["adtk1_".len()..][..24].to_owned(),
        raw.iter().map(|b| format!("{b:02x}")).collect(),
        base64::engine::general_purpose::STANDARD.encode(raw),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw),
    ]
}
