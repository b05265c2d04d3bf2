//! `KeyringStore` against a real Secret Service.
//!
//! These tests need the private, throwaway keyring of `scripts/with-keyring.sh`
//! (`make test` runs them so). Without it they fail on purpose rather than skip: a
//! skipped keyring test looks like a passing one.
//!
//! The keyring crate connects to D-Bus once per process, so the "no bus" and "locked
//! keyring" cases run in a child process: this test binary again, with `--exact <test>`
//! and [`CHILD_ENV`] telling the test to do the probe and print what it saw.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use authdeck_core::store::keyring::{KeyringStore, PROBE_KEY};
use authdeck_core::store::SecretStore;
use authdeck_core::{ErrorCode, KeyringValue};

const CHILD_ENV: &str = "AUTHDECK_KEYRING_TEST_CHILD";

fn require_real_keyring() {
    if std::env::var_os("AUTHDECK_TEST_KEYRING").is_none() {
        panic!(
            "the keyring tests need a real, throwaway Secret Service: \
             run under scripts/with-keyring.sh (make test)"
        );
    }
}

/// A store under a service name no other run uses; deletes its keys when dropped.
struct TestStore {
    store: KeyringStore,
    keys: Vec<&'static str>,
}

impl TestStore {
    fn new(keys: &[&'static str]) -> Self {
        require_real_keyring();
        let service = format!("authdeck-test-{}", uuid::Uuid::new_v4());
        Self {
            store: KeyringStore::new(service),
            keys: keys.to_vec(),
        }
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        for key in &self.keys {
            let _ = self.store.delete(key);
        }
    }
}

#[test]
fn set_get_overwrite_delete_and_missing() {
    let t = TestStore::new(&["client/c1/secret"]);
    let s = &t.store;
    let key = "client/c1/secret";

    assert_eq!(s.get(key).unwrap(), None);
    s.set(key, &KeyringValue::new("first")).unwrap();
    assert_eq!(s.get(key).unwrap().unwrap().expose(), "first");
    s.set(key, &KeyringValue::new("second")).unwrap();
    assert_eq!(s.get(key).unwrap().unwrap().expose(), "second");
    s.delete(key).unwrap();
    assert_eq!(s.get(key).unwrap(), None);
    s.delete(key).unwrap(); // deleting a missing entry is fine
}

#[test]
fn values_round_trip_exactly() {
    let t = TestStore::new(&["connection/1/0/access", "connection/1/0/refresh"]);
    // A JWT-sized token and one with non-ASCII and whitespace.
    let long = "eyJ".to_owned() + &"x".repeat(8 * 1024);
    let odd = "  ünïcødé\ttoken with spaces\n";
    t.store
        .set("connection/1/0/access", &KeyringValue::new(long.clone()))
        .unwrap();
    t.store
        .set("connection/1/0/refresh", &KeyringValue::new(odd))
        .unwrap();
    let got = t.store.get("connection/1/0/access").unwrap().unwrap();
    assert_eq!(got.expose(), long);
    let got = t.store.get("connection/1/0/refresh").unwrap().unwrap();
    assert_eq!(got.expose(), odd);
}

#[test]
fn services_do_not_see_each_other() {
    let a = TestStore::new(&["k"]);
    let b = TestStore::new(&["k"]);
    a.store.set("k", &KeyringValue::new("from-a")).unwrap();
    assert_eq!(b.store.get("k").unwrap(), None);
    b.store.set("k", &KeyringValue::new("from-b")).unwrap();
    assert_eq!(a.store.get("k").unwrap().unwrap().expose(), "from-a");
    b.store.delete("k").unwrap();
    assert_eq!(a.store.get("k").unwrap().unwrap().expose(), "from-a");
}

#[test]
fn check_passes_and_leaves_nothing_behind() {
    let t = TestStore::new(&[]);
    t.store.check().unwrap();
    assert_eq!(t.store.get(PROBE_KEY).unwrap(), None);
}

#[test]
fn concurrent_calls_from_many_threads() {
    let keys: Vec<&'static str> = vec!["t/0", "t/1", "t/2", "t/3", "t/4", "t/5"];
    let t = TestStore::new(&keys);
    std::thread::scope(|scope| {
        for key in &keys {
            let store = &t.store;
            scope.spawn(move || {
                store
                    .set(key, &KeyringValue::new(format!("v-{key}")))
                    .unwrap();
                assert_eq!(
                    store.get(key).unwrap().unwrap().expose(),
                    format!("v-{key}")
                );
            });
        }
    });
}

// ---------------------------------------------------------------------------------------
// Child-process cases.

/// One line the child prints per operation: `RESULT <op> <code or ok> <millis>`.
fn report(op: &str, result: authdeck_core::Result<()>, started: Instant) {
    let outcome = match &result {
        Ok(()) => "ok".to_owned(),
        Err(e) => e.code.as_str().to_owned(),
    };
    println!("RESULT {op} {outcome} {}", started.elapsed().as_millis());
    if let Err(e) = result {
        println!(
            "DETAIL {op} {}: {}",
            e.message,
            e.detail.unwrap_or_default()
        );
    }
}

fn parse_results(stdout: &str) -> Vec<(String, String, u128)> {
    stdout
        .lines()
        // The harness may print "test <name> ... " on the same line first.
        .filter_map(|line| line.find("RESULT ").map(|at| &line[at + "RESULT ".len()..]))
        .map(|rest| {
            let parts: Vec<&str> = rest.split(' ').collect();
            (
                parts[0].to_owned(),
                parts[1].to_owned(),
                parts[2].parse().unwrap(),
            )
        })
        .collect()
}

struct ChildOutput {
    success: bool,
    stdout: String,
    stderr: String,
}

/// Runs `program args…` and waits at most `limit`, killing it (by its pid) after that.
fn run_child(mut command: Command, limit: Duration) -> ChildOutput {
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = (dir.path().join("stdout"), dir.path().join("stderr"));
    command
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap());
    let mut child = command.spawn().expect("start the child process");
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = ChildOutput {
        success: status.is_some_and(|s| s.success()),
        stdout: std::fs::read_to_string(&out).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err).unwrap_or_default(),
    };
    assert!(
        status.is_some(),
        "child did not finish within {limit:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.stdout,
        output.stderr
    );
    output
}

fn this_test(name: &str, mode: &str) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, mode);
    command
}

fn with_keyring_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/with-keyring.sh")
}

fn in_child(mode: &str) -> bool {
    std::env::var(CHILD_ENV).as_deref() == Ok(mode)
}

#[test]
fn no_session_bus_is_keyring_unavailable_at_once() {
    const NAME: &str = "no_session_bus_is_keyring_unavailable_at_once";
    if in_child("no-bus") {
        let store = KeyringStore::new(format!("authdeck-test-{}", uuid::Uuid::new_v4()));
        let started = Instant::now();
        report("check", store.check(), started);
        let started = Instant::now();
        report("get", store.get("k").map(|_| ()), started);
        let started = Instant::now();
        report("set", store.set("k", &KeyringValue::new("v")), started);
        return;
    }
    require_real_keyring();
    // No bus address, and a runtime dir without a `bus` socket (zbus's fallback).
    let runtime = tempfile::tempdir().unwrap();
    let mut child = this_test(NAME, "no-bus");
    child
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env("XDG_RUNTIME_DIR", runtime.path());
    let out = run_child(child, Duration::from_secs(60));
    assert!(out.success, "child failed:\n{}\n{}", out.stdout, out.stderr);

    let results = parse_results(&out.stdout);
    eprintln!("child results (op, code, ms): {results:?}");
    assert_eq!(results.len(), 3, "{}", out.stdout);
    for (op, code, millis) in results {
        assert_eq!(
            code,
            ErrorCode::KeyringUnavailable.as_str(),
            "{op}: {}",
            out.stdout
        );
        assert!(millis < 2_000, "{op} took {millis} ms");
    }
    assert!(
        out.stdout.contains("not available or is locked"),
        "{}",
        out.stdout
    );
}

#[test]
fn locked_keyring_without_display_is_keyring_unavailable_at_once() {
    const NAME: &str = "locked_keyring_without_display_is_keyring_unavailable_at_once";
    if in_child("locked-no-display") {
        let store = KeyringStore::new("authdeck-test-locked").with_timeout(Duration::from_secs(5));
        let started = Instant::now();
        report("set", store.set("k", &KeyringValue::new("v")), started);
        let started = Instant::now();
        report("check", store.check(), started);
        return;
    }
    require_real_keyring();
    // The unlock prompt cannot open a window, gnome-keyring dismisses it at once.
    let mut child = Command::new(with_keyring_script());
    let inner = this_test(NAME, "locked-no-display");
    child
        .arg("--locked")
        .arg(inner.get_program())
        .args(inner.get_args())
        .env(CHILD_ENV, "locked-no-display")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY");
    let out = run_child(child, Duration::from_secs(60));
    assert!(out.success, "child failed:\n{}\n{}", out.stdout, out.stderr);

    let results = parse_results(&out.stdout);
    eprintln!("child results (op, code, ms): {results:?}");
    assert_eq!(results.len(), 2, "{}\n{}", out.stdout, out.stderr);
    for (op, code, millis) in results {
        assert_eq!(
            code,
            ErrorCode::KeyringUnavailable.as_str(),
            "{op}: {}",
            out.stdout
        );
        assert!(millis < 4_000, "{op} took {millis} ms");
    }
}

#[test]
fn locked_keyring_with_an_unanswered_prompt_fails_in_bounded_time() {
    const NAME: &str = "locked_keyring_with_an_unanswered_prompt_fails_in_bounded_time";
    const TIMEOUT: Duration = Duration::from_secs(2);
    if in_child("locked-prompt") {
        let store = KeyringStore::new("authdeck-test-locked").with_timeout(TIMEOUT);
        // Blocks on the unlock dialog that nobody answers, until our timeout.
        let started = Instant::now();
        report("set", store.set("k", &KeyringValue::new("v")), started);
        // The worker is still stuck in that call: these fail without waiting again.
        let started = Instant::now();
        report("get", store.get("k").map(|_| ()), started);
        let started = Instant::now();
        report("check", store.check(), started);
        return;
    }
    require_real_keyring();
    // A virtual display, so gnome-keyring's prompter does open its dialog and waits.
    let xvfb_run = which("xvfb-run").expect(
        "xvfb-run is missing: install the dependencies with scripts/install-deps.sh (make deps)",
    );
    let mut child = Command::new(xvfb_run);
    let inner = this_test(NAME, "locked-prompt");
    child
        .arg("-a")
        .arg(with_keyring_script())
        .arg("--locked")
        .arg(inner.get_program())
        .args(inner.get_args())
        .env(CHILD_ENV, "locked-prompt");
    let out = run_child(child, Duration::from_secs(90));
    assert!(out.success, "child failed:\n{}\n{}", out.stdout, out.stderr);

    let results = parse_results(&out.stdout);
    eprintln!("child results (op, code, ms): {results:?}");
    assert_eq!(results.len(), 3, "{}\n{}", out.stdout, out.stderr);
    let timeout_ms = TIMEOUT.as_millis();
    for (op, code, millis) in &results {
        assert_eq!(
            code,
            ErrorCode::KeyringUnavailable.as_str(),
            "{op}: {}",
            out.stdout
        );
        if op == "set" {
            assert!(
                *millis >= timeout_ms && *millis < timeout_ms + 2_000,
                "set took {millis} ms, timeout {timeout_ms} ms"
            );
        } else {
            assert!(*millis < 500, "{op} waited {millis} ms behind a stuck call");
        }
    }
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(program))
            .find(|candidate| candidate.is_file())
    })
}
