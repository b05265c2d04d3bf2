//! The data directory (issue 11 §4): deleted or emptied under the keyring's feet,
//! deleted while a refresh runs, and a full disk.

use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Stdio};
use std::time::Duration;

use crate::common::*;

fn assert_lost(run: &Run) {
    run.assert_one_line_error(1, "storage");
    for words in ["has lost its database", "backup", "authdeckctl reset"] {
        assert!(run.stderr.contains(words), "{words:?}: {}", run.describe());
    }
}

#[test]
fn a_deleted_data_dir_stops_every_command_until_it_is_restored_or_reset() {
    let fx = Fixture::new();
    fx.add_fedex_client("fedex");
    let conn = fx.connect_fedex_plain("fedex");
    let id = id_of(&conn);
    let store_keys = |fx: &Fixture| -> Vec<String> {
        fx.keyring_keys()
            .into_iter()
            .filter(|k| k.starts_with("store/"))
            .collect()
    };
    assert_eq!(store_keys(&fx).len(), 1, "the store is registered");
    let backup = fx.dir.path().join("backup");
    copy_dir(&fx.data_dir(), &backup);

    std::fs::remove_dir_all(fx.data_dir()).unwrap();
    for args in [vec!["list"], vec!["client", "list"], vec!["token", &id]] {
        assert_lost(&fx.run(&args));
    }
    // Still stopped: the empty database created meanwhile is not taken for the store.
    assert_lost(&fx.run(&["list"]));
    assert!(
        fx.keyring_keys().len() >= 3,
        "nothing was deleted from the keyring"
    );

    // Restoring the backup brings it all back.
    std::fs::remove_dir_all(fx.data_dir()).unwrap();
    copy_dir(&backup, &fx.data_dir());
    let token = fx.ok(&["token", &id]);
    assert!(!token.stdout.trim().is_empty());

    // Or start over: reset (refused for the working store, and without --yes).
    fx.run(&["reset", "--yes"])
        .assert_one_line_error(2, "invalid_input");
    std::fs::remove_dir_all(fx.data_dir()).unwrap();
    let ask = fx.run(&["reset"]);
    ask.assert_one_line_error(2, "invalid_input");
    assert!(ask.stderr.contains("--yes"), "{}", ask.describe());
    let before = fx.keyring_keys();
    assert_eq!(fx.keyring_keys(), before, "asking deletes nothing");
    let done = fx.ok(&["reset", "--yes"]);
    assert!(done.stdout.contains("Started over"), "{}", done.describe());
    let left = fx.keyring_keys();
    assert_eq!(left.len(), 1, "only the new store's id is left: {left:?}");
    assert!(left[0].starts_with("store/"));
    let list = fx.ok(&["list"]);
    assert!(
        list.stdout.contains("No connections yet"),
        "{}",
        list.describe()
    );
}

#[test]
fn a_database_emptied_to_zero_bytes_is_noticed() {
    let fx = Fixture::new();
    fx.add_fedex_client("fedex");
    fx.connect_fedex_plain("fedex");
    std::fs::write(fx.data_dir().join("authdeck.sqlite3"), b"").unwrap();
    assert_lost(&fx.run(&["list"]));
}

#[test]
fn a_refresh_whose_data_dir_is_deleted_meanwhile_does_not_report_success() {
    let fx = Fixture::new();
    fx.add_fedex_client("fedex");
    let id = id_of(&fx.connect_fedex_plain("fedex"));
    fx.control().set_latency(Duration::from_millis(1500));
    let mut cmd = fx.std_command();
    cmd.args(["refresh", &id])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().expect("refresh starts");
    wait_for_a_lock(&fx);
    std::fs::remove_dir_all(fx.data_dir()).unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(!stdout.contains("Refreshed"), "{stdout}");
    assert!(
        stderr.contains("was deleted")
            && stderr.contains("not saved")
            && stderr.contains("[storage"),
        "{stderr}"
    );
    assert_eq!(
        fx.control_stats()["fedex"]["tokens_issued"],
        2,
        "the call was made"
    );
}

/// A small tmpfs, unmounted (by its path) when dropped.
struct SmallDisk {
    path: PathBuf,
}

impl SmallDisk {
    fn mount(path: PathBuf, size: &str) -> SmallDisk {
        std::fs::create_dir_all(&path).unwrap();
        let out = StdCommand::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(&path)
            .output()
            .expect("mount runs");
        assert!(
            out.status.success(),
            "this test fills a small tmpfs and needs to mount one (run as root, or in a container allowed to mount): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        SmallDisk { path }
    }

    /// Write a file until the disk is full.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let file = self.path.join("filler");
        let mut f = std::fs::File::create(&file).unwrap();
        let block = vec![0u8; 4096];
        loop {
            match f.write_all(&block) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
                Err(e) => panic!("filling the disk: {e}"),
            }
        }
        let _ = f.sync_all();
        file
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = StdCommand::new("umount").arg(&self.path).status();
    }
}

#[test]
fn on_a_full_disk_reading_commands_work_and_writes_say_the_disk_is_full() {
    let fx = Fixture::new();
    let disk = SmallDisk::mount(fx.dir.path().join("disk"), "2m");
    let data = disk.path.join("data");
    let env = [("AUTHDECK_DATA_DIR", data.to_str().unwrap())];
    let run = |args: &[&str]| fx.run_full(args, None, &env, &[]);
    let fedex_url = fx.emulator.fedex_token_url();
    let secret = fx.fedex_secret();
    let key = fx.fedex_key();
    fx.run_full(
        &[
            "client",
            "add",
            "fedex",
            "--name",
            "fedex",
            "--client-id",
            &key,
            "--token-url",
            &fedex_url,
        ],
        None,
        &[env[0], ("AUTHDECK_CLIENT_SECRET", &secret)],
        &[],
    )
    .assert_code(0);
    let conn = run(&["--json", "connect", "fedex", "--client", "fedex"]);
    conn.assert_code(0);
    let id = id_of(&conn.json());

    let filler = disk.fill();
    for args in [
        vec!["list"],
        vec!["--json", "list"],
        vec!["status", &id],
        vec!["history"],
        vec!["client", "list"],
    ] {
        let r = run(&args);
        r.assert_code(0);
        assert!(r.stderr.is_empty(), "{}", r.describe());
    }
    let token = run(&["token", &id]);
    token.assert_code(0);
    assert_eq!(
        token.stdout.trim(),
        fx.stored_tokens(&id, 1).unwrap()["access_token"],
        "the stored token"
    );

    let db_path = data.join("authdeck.sqlite3").display().to_string();
    let requests = fx.control_stats()["fedex"]["token_requests"].clone();
    for r in [
        run(&["refresh", &id]),
        fx.run_full(
            &[
                "client",
                "add",
                "iot",
                "--name",
                "iot",
                "--client-id",
                "x",
                "--auth-url",
                &fx.emulator.iot_auth_url(),
            ],
            None,
            &env,
            &[],
        ),
    ] {
        r.assert_one_line_error(1, "storage");
        assert!(
            r.stderr.contains("The disk is full") && r.stderr.contains(&db_path),
            "{}",
            r.describe()
        );
    }
    assert_eq!(
        fx.control_stats()["fedex"]["token_requests"],
        requests,
        "no token is asked for that could not be kept"
    );

    std::fs::remove_file(filler).unwrap();
    run(&["refresh", &id]).assert_code(0);
    drop(disk);
}

/// Until a connection lock file exists: the refresh took the lock, its provider call is
/// next.
pub(crate) fn wait_for_a_lock(fx: &Fixture) {
    let deadline = std::time::Instant::now() + COMMAND_TIMEOUT;
    while std::fs::read_dir(fx.data_dir().join("locks"))
        .map(|d| d.count() == 0)
        .unwrap_or(true)
    {
        assert!(std::time::Instant::now() < deadline, "no lock was taken");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(100));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
