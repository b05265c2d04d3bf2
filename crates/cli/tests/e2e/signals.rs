//! Ctrl-C, SIGTERM or a hang-up while a refresh waits on the provider: the process
//! starts nothing new, lets the calls in flight finish and commit, and exits 130 / 143.
//! A sweep of the signal's moment across the whole request (1 s provider latency,
//! reuse detection on) must lose no rotated refresh token.

use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::common::*;
use super::rotation::{all_ok, assert_current, businesses};

const LATENCY: Duration = Duration::from_millis(1000);
const CONNECTIONS: usize = 3;

struct Trial {
    code: Option<i32>,
    signal: Option<i32>,
    stderr: String,
}

/// Start `authdeckctl ARGS`, send `signals` (name, ms after the start) with `kill`, wait.
fn interrupted(fx: &Fixture, args: &[&str], signals: &[(&str, u64)]) -> Trial {
    let mut cmd = fx.std_command();
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd.spawn().expect("authdeckctl starts");
    let pid = child.id().to_string();
    for (name, at) in signals {
        let at = started + Duration::from_millis(*at);
        std::thread::sleep(at.saturating_duration_since(Instant::now()));
        // The process may have ended already: then `kill` fails, which is fine.
        let _ = std::process::Command::new("kill")
            .args(["-s", name, &pid])
            .status();
    }
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "`authdeckctl {}` did not exit after the signal",
                args.join(" ")
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut stderr = String::new();
    use std::io::Read;
    let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
    Trial {
        code: status.code(),
        signal: status.signal(),
        stderr,
    }
}

fn expected_code(signal: &str) -> i32 {
    match signal {
        "INT" => 130,
        "TERM" => 143,
        _ => 129,
    }
}

/// The offsets: the whole request window in 100 ms steps, and 20 ms steps around the
/// provider's answer (where the old code lost tokens).
fn offsets() -> Vec<u64> {
    let mut all: Vec<u64> = (0..=2500).step_by(100).collect();
    all.extend((960..=1140).step_by(20).filter(|ms| ms % 100 != 0));
    all.sort();
    all
}

#[test]
fn a_signal_at_any_moment_of_a_refresh_loses_no_rotated_token() {
    let fx = Fixture::with_config(businesses(CONNECTIONS, "FA-5"));
    fx.add_flowaccount_client("fa", None);
    let ids: Vec<String> = (0..CONNECTIONS)
        .map(|i| id_of(&fx.connect_flowaccount("fa", &format!("FA-5{i:05}")).0))
        .collect();
    fx.control().set_latency(LATENCY);
    let (mut trials, mut interrupted_mid_call) = (0, 0);
    for (n, offset) in offsets().into_iter().enumerate() {
        // Both signals and both commands at every offset, crossed.
        let (all_signal, one_signal) = if n % 2 == 0 {
            ("INT", "TERM")
        } else {
            ("TERM", "INT")
        };
        let one = &ids[n % CONNECTIONS];
        for (args, signal) in [
            (vec!["--json", "refresh", "--all"], all_signal),
            (vec!["refresh", one.as_str()], one_signal),
        ] {
            let before = fx.control().stats();
            let trial = interrupted(&fx, &args, &[(signal, offset)]);
            let after = fx.control().stats();
            let what = format!("`{}` with SIG{signal} at {offset} ms", args.join(" "));
            match (trial.code, trial.signal) {
                (Some(0), _) => {} // finished before the signal
                (Some(code), _) => assert_eq!(
                    code,
                    expected_code(signal),
                    "{what}: exit code; stderr: {}",
                    trial.stderr
                ),
                (None, Some(_)) => assert_eq!(
                    after.token_requests, before.token_requests,
                    "{what}: killed by the default handler after a provider call"
                ),
                (None, None) => unreachable!(),
            }
            if trial.code == Some(expected_code(signal)) && after.refresh_ok > before.refresh_ok {
                interrupted_mid_call += 1;
            }
            trials += 1;
            assert_eq!(
                (after.invalid_grant, after.reuse_detected),
                (0, 0),
                "{what}: {after:?}; stderr: {}",
                trial.stderr
            );
            for id in &ids {
                assert_current(&fx, id);
            }
        }
    }
    assert!(
        interrupted_mid_call > 0,
        "some signals arrived while a call was in flight ({trials} trials)"
    );
    // Nothing is left half done: one more batch refreshes every connection.
    fx.control().set_latency(Duration::ZERO);
    all_ok(&fx.json(&["refresh", "--all"]));
    for id in &ids {
        assert_current(&fx, id);
    }
    let stats = fx.control().stats();
    assert_eq!(
        (stats.invalid_grant, stats.reuse_detected),
        (0, 0),
        "{stats:?}"
    );
    eprintln!(
        "signal sweep: {trials} trials, {interrupted_mid_call} stopped with a call in flight: \
         0 invalid_grant, 0 reuse, every stored refresh token current"
    );
}

#[test]
fn a_second_signal_says_what_is_waited_for_and_drops_nothing() {
    let fx = Fixture::with_config(businesses(CONNECTIONS, "FA-4"));
    fx.add_flowaccount_client("fa", None);
    let ids: Vec<String> = (0..CONNECTIONS)
        .map(|i| id_of(&fx.connect_flowaccount("fa", &format!("FA-4{i:05}")).0))
        .collect();
    fx.control().set_latency(LATENCY);
    let before = fx.control().stats();
    let trial = interrupted(
        &fx,
        &["refresh", "--all"],
        &[("INT", 400), ("INT", 600), ("HUP", 700)],
    );
    assert_eq!(trial.code, Some(130), "stderr: {}", trial.stderr);
    assert!(
        trial
            .stderr
            .contains("SIGINT received: starting nothing new; waiting for 3 refreshes in flight"),
        "{}",
        trial.stderr
    );
    assert!(
        trial
            .stderr
            .contains("SIGINT again: waiting for 3 refreshes to finish saving"),
        "{}",
        trial.stderr
    );
    assert!(trial.stderr.contains("SIGHUP again"), "{}", trial.stderr);
    let after = fx.control().stats();
    assert_eq!(after.refresh_ok - before.refresh_ok, CONNECTIONS as u64);
    assert_eq!((after.invalid_grant, after.reuse_detected), (0, 0));
    for id in &ids {
        assert_current(&fx, id);
    }
    // They were committed, not just kept: a further refresh of each goes through.
    fx.control().set_latency(Duration::ZERO);
    all_ok(&fx.json(&["refresh", "--all"]));
    assert_eq!(fx.control().stats().invalid_grant, 0);
}
