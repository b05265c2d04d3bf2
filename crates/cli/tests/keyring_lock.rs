//! A keyring that locks while a refresh waits on the provider: the answer is kept (in
//! memory and in the journal), the CLI says "Unlock your keyring …" and waits; once
//! unlocked the tokens are saved, nothing is refreshed twice, the grant lives on.
//!
//! Its own test binary: locking the (shared, throwaway) login collection would fail
//! the other end-to-end tests running at the same time; these run one at a time.

use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use zbus::zvariant::{ObjectPath, OwnedObjectPath, OwnedValue};

#[allow(dead_code)]
#[path = "e2e/common.rs"]
mod common;

use authdeck_emulator::{EmulatorConfig, FaBusiness, TokenStatus};
use common::*;
use serde_json::Value;

/// One test at a time: they lock the one login collection.
static KEYRING: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn businesses(n: usize, prefix: &str) -> EmulatorConfig {
    let mut config = EmulatorConfig::demo();
    config.flowaccount.users[0].businesses = (0..n)
        .map(|i| FaBusiness {
            support_code: format!("{prefix}{i:05}"),
            name: format!("Business {i}"),
        })
        .collect();
    config
}

fn assert_current(fx: &Fixture, id: &str) {
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

fn all_ok(report: &Value) {
    for row in report.as_array().expect("a JSON report") {
        assert_eq!(row["ok"], true, "{row}");
    }
}

const SECRETS: &str = "org.freedesktop.secrets";
const LOGIN: &str = "/org/freedesktop/secrets/collection/login";

/// Lock the test keyring's login collection (the Secret Service's `Lock`).
fn lock_keyring() {
    let bus = zbus::blocking::Connection::session().expect("session bus");
    let login = ObjectPath::try_from(LOGIN).unwrap();
    bus.call_method(
        Some(SECRETS),
        "/org/freedesktop/secrets",
        Some("org.freedesktop.Secret.Service"),
        "Lock",
        &(vec![login],),
    )
    .expect("Lock");
}

/// Unlock it with its password, as gnome-keyring's own unlock dialog does (no prompt).
fn unlock_keyring() {
    let bus = zbus::blocking::Connection::session().expect("session bus");
    let reply = bus
        .call_method(
            Some(SECRETS),
            "/org/freedesktop/secrets",
            Some("org.freedesktop.Secret.Service"),
            "OpenSession",
            &("plain", zbus::zvariant::Value::from("")),
        )
        .expect("OpenSession");
    let (_, session): (OwnedValue, OwnedObjectPath) = reply.body().deserialize().unwrap();
    let secret = (
        session,
        Vec::<u8>::new(),
        b"authdeck-throwaway".to_vec(),
        "text/plain",
    );
    bus.call_method(
        Some(SECRETS),
        "/org/freedesktop/secrets",
        Some("org.gnome.keyring.InternalUnsupportedGuiltRiddenInterface"),
        "UnlockWithMasterPassword",
        &(ObjectPath::try_from(LOGIN).unwrap(), secret),
    )
    .expect("UnlockWithMasterPassword");
}

/// Unlocked again even when the test fails halfway (the other tests share the keyring).
struct UnlockOnDrop;

impl Drop for UnlockOnDrop {
    fn drop(&mut self) {
        unlock_keyring();
    }
}

#[test]
fn a_keyring_locked_during_a_refresh_keeps_the_answer_until_it_is_unlocked() {
    const N: usize = 3;
    let _one = KEYRING.lock().unwrap_or_else(|p| p.into_inner());
    let fx = Fixture::with_config(businesses(N, "FA-3"));
    fx.add_flowaccount_client("fa", None);
    let ids: Vec<String> = (0..N)
        .map(|i| id_of(&fx.connect_flowaccount("fa", &format!("FA-3{i:05}")).0))
        .collect();
    fx.control().set_latency(Duration::from_millis(1000));
    let before = fx.control().stats();

    let started = Instant::now();
    let mut child = fx
        .std_command()
        .args(["refresh", "--all"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("authdeckctl starts");
    // Locked while the provider calls are out (the keyring was proven unlocked before).
    std::thread::sleep(Duration::from_millis(400));
    let unlock = UnlockOnDrop;
    lock_keyring();
    // Unlocked 2 s after the provider answered.
    std::thread::sleep(
        (started + Duration::from_millis(3100)).saturating_duration_since(Instant::now()),
    );
    drop(unlock);
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "refresh --all did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (mut stdout, mut stderr) = (String::new(), String::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(
        stderr.contains("Unlock your keyring to keep the refreshed tokens of 3 connections"),
        "stderr: {stderr}"
    );
    assert_eq!(status.code(), Some(0), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains("3 refreshed, 0 failed."), "{stdout}");

    let after = fx.control().stats();
    assert_eq!(
        after.refresh_ok - before.refresh_ok,
        N as u64,
        "one provider call each"
    );
    for id in &ids {
        assert_current(&fx, id);
    }
    // The connections refresh again, without invalid_grant or reuse.
    fx.control().set_latency(Duration::ZERO);
    all_ok(&fx.json(&["refresh", "--all"]));
    let stats = fx.control().stats();
    assert_eq!(
        (stats.invalid_grant, stats.reuse_detected),
        (0, 0),
        "{stats:?}"
    );
    for id in &ids {
        assert_current(&fx, id);
    }
}

#[test]
fn a_keyring_that_stays_locked_is_named_and_the_next_refresh_saves_the_answer() {
    let _one = KEYRING.lock().unwrap_or_else(|p| p.into_inner());
    let fx = Fixture::with_config(businesses(1, "FA-2"));
    fx.add_flowaccount_client("fa", None);
    let id = id_of(&fx.connect_flowaccount("fa", "FA-200000").0);
    fx.control().set_latency(Duration::from_millis(800));
    let mut child = fx
        .std_command()
        .args(["refresh", &id])
        .env("AUTHDECK_TEST_KEYRING_WAIT_S", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("authdeckctl starts");
    std::thread::sleep(Duration::from_millis(300));
    let unlock = UnlockOnDrop;
    lock_keyring();
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "refresh did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(unlock);
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("The refreshed tokens of FA-200000 are not saved"),
        "{stderr}"
    );
    // The answer waited in the journal: the next refresh adopts it, then refreshes.
    fx.control().set_latency(Duration::ZERO);
    fx.ok(&["refresh", &id]);
    fx.ok(&["refresh", &id]);
    let stats = fx.control().stats();
    assert_eq!(
        (stats.invalid_grant, stats.reuse_detected),
        (0, 0),
        "{stats:?}"
    );
    assert_current(&fx, &id);
}

/// `authdeckctl agent` started while the keyring is locked (a machine that booted with
/// lingering, nobody logged in yet): it waits, says so in its log and its status
/// (which reads no keyring), and starts its work once the keyring is unlocked.
#[test]
fn the_agent_waits_for_a_locked_keyring_and_starts_once_it_is_unlocked() {
    let _one = KEYRING.lock().unwrap_or_else(|p| p.into_inner());
    let fx = Fixture::new();
    fx.add_flowaccount_client("fa", None);
    fx.connect_flowaccount("fa", FA_BUSINESS);

    let unlock = UnlockOnDrop;
    lock_keyring();
    let mut child = fx
        .std_command()
        .arg("agent")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("authdeckctl agent starts");
    let stdout = child.stdout.take().unwrap();
    let (tx, lines) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(|l| l.ok())
        {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let mut wait_for = |text: &str| {
        let deadline = Instant::now() + Duration::from_secs(40);
        while !seen.iter().any(|l: &String| l.contains(text)) {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(l) => seen.push(l),
                Err(_) => panic!("no agent line with {text:?}; so far: {seen:?}"),
            }
        }
    };
    wait_for("waiting for the keyring");
    let status = fx.json(&["agent", "status"]);
    assert_eq!(status["running"], true, "{status}");
    assert_eq!(status["state"], "waiting_for_keyring", "{status}");

    drop(unlock);
    wait_for("the keyring is unlocked");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = fx.json(&["agent", "status"]);
        if s["state"] == "running" && s["next_due"].is_object() {
            break;
        }
        assert!(Instant::now() < deadline, "never running: {s}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let ok = std::process::Command::new("kill")
        .args(["-s", "TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "the agent did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    reader.join().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(exit.code(), Some(0), "{seen:?}\n{stderr}");
    assert_eq!(fx.control().stats().refresh_ok, 0, "nothing was due");
    assert!(
        seen.iter().all(|l| !l.contains("refresh failed")),
        "a locked keyring fails no refresh: {seen:?}"
    );
}
