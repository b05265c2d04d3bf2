//! Rotating refresh tokens must never be lost: a refresh killed at any point of the
//! token commit sequence, and many processes refreshing the same connections at once,
//! both leave every connection with the refresh token the provider still accepts —
//! against an emulator with reuse detection on (a reused token revokes the grant).

use authdeck_emulator::{EmulatorConfig, FaBusiness, TokenStatus};
use serde_json::Value;

use super::common::*;

/// The points `authdeck-core` can be killed at (`AUTHDECK_CRASH_AT`, debug builds):
/// after the answer is in the journal (before any keyring write), after the new
/// generation is in the keyring, after SQLite switched to it, after the old generation
/// is deleted.
const CRASH_POINTS: [&str; 4] = [
    "after_answer_journalled",
    "after_new_tokens_written",
    "after_generation_switched",
    "after_old_tokens_deleted",
];

pub(crate) fn assert_current(fx: &Fixture, id: &str) {
    let tokens = fx
        .current_tokens(id)
        .expect("the stored generation holds tokens");
    let refresh = tokens["refresh_token"].as_str().expect("a refresh token");
    assert_eq!(
        fx.control().flowaccount_refresh_token_status(refresh),
        TokenStatus::Current,
        "the stored refresh token of {id} is the provider's newest"
    );
}

#[test]
fn a_refresh_killed_at_any_crash_point_loses_nothing() {
    for point in CRASH_POINTS {
        let fx = Fixture::new();
        fx.add_flowaccount_client("fa", None);
        let (conn, _) = fx.connect_flowaccount("fa", FA_BUSINESS);
        let id = conn["id"].as_str().unwrap().to_owned();

        let killed = fx.run_env(&["refresh", &id], &[("AUTHDECK_CRASH_AT", point)]);
        assert_eq!(
            killed.code,
            None,
            "killed at {point}: {}",
            killed.describe()
        );
        assert_eq!(
            fx.control().stats().refresh_ok,
            1,
            "the provider rotated before the kill at {point}"
        );

        // The next refresh finishes (or adopts) the interrupted update, then a further
        // one proves the provider accepts what was kept.
        fx.json(&["refresh", &id]);
        assert_current(&fx, &id);
        let after = fx.json(&["refresh", &id]);
        assert_eq!(after["status"], "active", "{point}: {after}");
        assert_current(&fx, &id);
        let stats = fx.control().stats();
        assert_eq!(
            (stats.invalid_grant, stats.reuse_detected),
            (0, 0),
            "{point}: {stats:?}"
        );
        fx.ok(&["token", &id]);
        // No stale generation is left behind in the keyring.
        let (_, generation) = fx
            .stored_connections()
            .into_iter()
            .find(|(c, _)| *c == id)
            .unwrap();
        for stale in (1..generation).chain([generation + 1]) {
            assert!(
                fx.stored_tokens(&id, stale).is_none(),
                "{point}: generation {stale} left over"
            );
        }
        assert_journal_empty(&fx);
    }
}

/// Every journalled answer was adopted and forgotten: no journal file is left (each
/// process removes its own when it ends; the adopter removes a dead one's).
pub(crate) fn assert_journal_empty(fx: &Fixture) {
    // Files only, also in a team's own journal (`journal/team-<team id>/`).
    let mut left: Vec<String> = Vec::new();
    let mut dirs = vec![fx.data_dir().join("journal")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            match entry.file_type() {
                Ok(t) if t.is_dir() => dirs.push(entry.path()),
                _ => left.push(entry.path().display().to_string()),
            }
        }
    }
    assert!(left.is_empty(), "journal files left: {left:?}");
}

/// Where a batch refresh (`refresh --all`) can be killed: with its answers only in the
/// journal, after its token set is in the keyring, after SQLite switched the batch to it.
const BATCH_CRASH_POINTS: [&str; 3] = [
    "before_token_set_written",
    "after_token_set_written",
    "after_token_set_switched",
];

/// The keyring holds exactly the token entries SQLite points at: each connection's own
/// entry or its token set, nothing stale (checked through the Secret Service's search).
pub(crate) fn assert_no_leftovers(fx: &Fixture) {
    let mut expected: Vec<String> = Vec::new();
    let conns = fx.stored_connections();
    for (id, generation) in &conns {
        match fx.token_set_of(id) {
            Some(set) => expected.push(format!("tokenset/{set}")),
            None => expected.push(format!("connection/{id}/tokens/{generation}")),
        }
    }
    expected.sort();
    expected.dedup();
    let present: Vec<String> = fx
        .keyring_keys()
        .into_iter()
        .filter(|k| k.starts_with("tokenset/") || k.contains("/tokens/"))
        .collect();
    assert_eq!(present, expected, "token entries in the keyring");
    let mut sets: Vec<String> = fx
        .stored_token_sets()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    sets.sort();
    let used: Vec<String> = expected
        .iter()
        .filter_map(|k| k.strip_prefix("tokenset/").map(str::to_owned))
        .collect();
    assert_eq!(
        sets,
        used,
        "token sets recorded in SQLite: {:#?}",
        fx.token_set_records()
    );
    // Lock files of deleted sets are removed with them.
    let mut set_locks: Vec<String> = std::fs::read_dir(fx.data_dir().join("locks"))
        .map(|dir| {
            dir.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter_map(|n| Some(n.strip_prefix("set-")?.strip_suffix(".lock")?.to_owned()))
                .collect()
        })
        .unwrap_or_default();
    set_locks.retain(|s| !used.contains(s));
    assert!(
        set_locks.is_empty(),
        "lock files of deleted sets: {set_locks:?}"
    );
}

pub(crate) fn businesses(n: usize, prefix: &str) -> EmulatorConfig {
    let mut config = EmulatorConfig::demo();
    config.flowaccount.users[0].businesses = (0..n)
        .map(|i| FaBusiness {
            support_code: format!("{prefix}{i:05}"),
            name: format!("Business {i}"),
        })
        .collect();
    config
}

pub(crate) fn all_ok(report: &Value) {
    for row in report.as_array().expect("a JSON report") {
        assert_eq!(row["ok"], true, "{row}");
    }
}

#[test]
fn a_batch_refresh_killed_at_any_crash_point_loses_nothing() {
    for point in BATCH_CRASH_POINTS {
        let fx = Fixture::with_config(businesses(4, "FA-7"));
        fx.add_flowaccount_client("fa", None);
        let ids: Vec<String> = (0..4)
            .map(|i| id_of(&fx.connect_flowaccount("fa", &format!("FA-7{i:05}")).0))
            .collect();

        let killed = fx.run_env(
            &["--json", "refresh", "--all"],
            &[("AUTHDECK_CRASH_AT", point)],
        );
        assert_eq!(
            killed.code,
            None,
            "killed at {point}: {}",
            killed.describe()
        );
        assert!(
            fx.control().stats().refresh_ok >= 1,
            "the provider rotated before the kill at {point}"
        );

        // The next batch finishes (or adopts) the interrupted one; a further one proves
        // the provider accepts what was kept.
        all_ok(&fx.json(&["refresh", "--all"]));
        for id in &ids {
            assert_current(&fx, id);
        }
        all_ok(&fx.json(&["refresh", "--all"]));
        for id in &ids {
            assert_current(&fx, id);
            fx.ok(&["token", id]);
        }
        let stats = fx.control().stats();
        assert_eq!(
            (stats.invalid_grant, stats.reuse_detected),
            (0, 0),
            "{point}: {stats:?}"
        );
        assert_no_leftovers(&fx);
        assert_journal_empty(&fx);
    }
}

const STORM_CONNECTIONS: usize = 50;
const STORM_PROCESSES: usize = 4;
const STORM_CONCURRENCY: &str = "5";
const STORM_ROUNDS: usize = 3;

#[test]
fn refresh_storm_across_processes_loses_no_connection() {
    let fx = Fixture::with_config(businesses(STORM_CONNECTIONS, "FA-9"));
    fx.add_flowaccount_client("fa", None);
    for i in 0..STORM_CONNECTIONS {
        fx.connect_flowaccount("fa", &format!("FA-9{i:05}"));
    }
    let before = fx.control().stats();

    // 4 processes at once, each refreshing every connection 5 at a time, 3 rounds each.
    let handles: Vec<_> = (0..STORM_PROCESSES)
        .map(|_| {
            let mut cmd = fx.std_command();
            cmd.args([
                "--json",
                "refresh",
                "--all",
                "--concurrency",
                STORM_CONCURRENCY,
            ]);
            std::thread::spawn(move || {
                (0..STORM_ROUNDS)
                    .map(|_| cmd.output().expect("refresh --all runs"))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut failures = Vec::new();
    for handle in handles {
        for out in handle.join().expect("storm thread") {
            if !out.status.success() {
                failures.push(String::from_utf8_lossy(&out.stderr).into_owned());
            }
            let rows: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
            for row in rows.as_array().unwrap() {
                if row["ok"] != true {
                    failures.push(row.to_string());
                }
            }
        }
    }
    assert!(failures.is_empty(), "failed refreshes: {failures:#?}");

    let stats = fx.control().stats();
    assert_eq!(stats.invalid_grant - before.invalid_grant, 0, "{stats:?}");
    assert_eq!(stats.reuse_detected, 0, "{stats:?}");
    let kept = fx.stored_connections();
    assert_eq!(kept.len(), STORM_CONNECTIONS, "no connection lost");
    for (id, _) in &kept {
        assert_current(&fx, id);
    }
    // Batches from four processes interleaved; what is left is exactly what is used.
    assert_no_leftovers(&fx);
    let list: Value = fx.json(&["list"]);
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|c| c["status"] == "active"),
        "{list}"
    );
    eprintln!(
        "storm: {} connections, {STORM_PROCESSES} processes x {STORM_CONCURRENCY} refreshers x {STORM_ROUNDS} rounds: \
         {} provider refreshes, 0 invalid_grant, 0 reuse, 0 lost",
        STORM_CONNECTIONS,
        stats.refresh_ok - before.refresh_ok
    );
}

/// Token sets over a connection's life: a batch puts connections in one set; a single
/// refresh moves one out (the set is rewritten without its tokens); a logout removes one
/// (likewise); the last one out deletes the set.
#[test]
fn token_sets_lose_members_cleanly() {
    let fx = Fixture::with_config(businesses(3, "FA-6"));
    fx.add_flowaccount_client("fa", None);
    let ids: Vec<String> = (0..3)
        .map(|i| id_of(&fx.connect_flowaccount("fa", &format!("FA-6{i:05}")).0))
        .collect();
    assert_no_leftovers(&fx);

    all_ok(&fx.json(&["refresh", "--all"]));
    let sets: Vec<Option<String>> = ids.iter().map(|id| fx.token_set_of(id)).collect();
    assert!(sets.iter().all(Option::is_some), "{sets:?}");
    assert_no_leftovers(&fx);
    let members = |set: &str| -> Vec<String> {
        let mut m: Vec<String> = fx
            .stored_token_set(set)
            .map(|e| e["members"].as_object().unwrap().keys().cloned().collect())
            .unwrap_or_default();
        m.sort();
        m
    };
    let set = sets[0].clone().unwrap();
    if sets.iter().all(|s| s.as_deref() == Some(set.as_str())) {
        let mut all = ids.clone();
        all.sort();
        assert_eq!(members(&set), all, "one batch, one set");
    }

    // A single refresh moves the connection to its own entry; its old set keeps only
    // the others' tokens.
    let moved = &ids[0];
    let before = fx.current_tokens(moved).unwrap();
    fx.ok(&["refresh", moved]);
    assert_eq!(fx.token_set_of(moved), None);
    assert_current(&fx, moved);
    assert!(!members(sets[0].as_ref().unwrap()).contains(moved));
    assert_no_leftovers(&fx);
    let entry = fx
        .stored_token_set(sets[1].as_ref().unwrap())
        .unwrap()
        .to_string();
    assert!(
        !entry.contains(before["refresh_token"].as_str().unwrap()),
        "the moved connection's old tokens are gone from the set"
    );

    // A logout removes the connection's tokens from its set …
    let out = fx.ok(&["logout", &ids[1]]);
    assert!(out.stdout.starts_with("Disconnected"), "{}", out.describe());
    assert_no_leftovers(&fx);
    // … and the last member out deletes the set.
    fx.ok(&["logout", &ids[2]]);
    assert_no_leftovers(&fx);
    assert!(fx.stored_token_sets().is_empty());
    for set in sets.iter().flatten() {
        assert!(fx.stored_token_set(set).is_none(), "set {set} deleted");
    }
    assert_current(&fx, moved);
}
