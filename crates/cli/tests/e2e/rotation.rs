//! Rotating refresh tokens must never be lost: a refresh killed at any point of the
//! token commit sequence, and many processes refreshing the same connections at once,
//! both leave every connection with the refresh token the provider still accepts —
//! against an emulator with reuse detection on (a reused token revokes the grant).

use authdeck_emulator::{EmulatorConfig, FaBusiness, TokenStatus};
use serde_json::Value;

use super::common::*;

/// The points `authdeck-core` can be killed at (`AUTHDECK_CRASH_AT`, debug builds):
/// after the new generation is in the keyring, after SQLite switched to it, after the
/// old generation is deleted.
const CRASH_POINTS: [&str; 3] = [
    "after_new_tokens_written",
    "after_generation_switched",
    "after_old_tokens_deleted",
];

fn assert_current(fx: &Fixture, id: &str) {
    let (_, generation) = fx
        .stored_connections()
        .into_iter()
        .find(|(c, _)| c == id)
        .expect("connection kept");
    let tokens = fx
        .stored_tokens(id, generation)
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
    }
}

const STORM_CONNECTIONS: usize = 50;
const STORM_PROCESSES: usize = 4;
const STORM_CONCURRENCY: &str = "5";
const STORM_ROUNDS: usize = 3;

#[test]
fn refresh_storm_across_processes_loses_no_connection() {
    let mut config = EmulatorConfig::demo();
    config.flowaccount.users[0].businesses = (0..STORM_CONNECTIONS)
        .map(|i| FaBusiness {
            support_code: format!("FA-9{i:05}"),
            name: format!("Storm {i}"),
        })
        .collect();
    let fx = Fixture::with_config(config);
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
