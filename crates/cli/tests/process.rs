//! `authdeckctl` keeps its memory out of core files and debuggers (issue #10 §5): it
//! marks itself non-dumpable (`prctl(PR_SET_DUMPABLE, 0)`) and sets a soft core-size
//! limit of 0 before it does anything else.
//!
//! How the dumpable flag is seen from outside the process: the kernel gives the files
//! under `/proc/<pid>/` (`status`, `environ`, `mem`, …; not the directory itself) of a
//! non-dumpable process to root (`task_dump_owner()` in fs/proc/base.c), while a
//! dumpable process's belong to its own user. Seen by
//! root, both cases look alike, so when the test runs as root it starts the process as
//! `nobody` (a dumpable process of `nobody` has entries owned by `nobody`). A control
//! process (`cat`), started the same way, shows the check tells the two apart.
//!
//! Linux only, like the hardening itself.
#![cfg(target_os = "linux")]

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const NOBODY: u32 = 65534;

/// The user the processes under test run as: ourselves, or `nobody` when we are root.
fn runner_uid() -> u32 {
    // /proc/self of this (dumpable) test process belongs to our effective uid.
    std::fs::metadata("/proc/self").unwrap().uid()
}

fn spawn(program: &Path, args: &[&str], home: &Path) -> Child {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_clear()
        .current_dir(home)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if runner_uid() == 0 {
        cmd.uid(NOBODY).gid(NOBODY);
    }
    cmd.spawn().unwrap()
}

/// The owner of /proc/<pid>/status.
fn proc_owner(child: &Child) -> u32 {
    std::fs::metadata(format!("/proc/{}/status", child.id()))
        .unwrap()
        .uid()
}

/// The soft limit in the "Max core file size" line of /proc/<pid>/limits.
fn soft_core_limit(child: &Child) -> String {
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.id())).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap_or_else(|| panic!("no core line in {limits}"));
    line["Max core file size".len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

fn stop(mut child: Child) -> String {
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn authdeckctl_is_not_dumpable_and_writes_no_core_file() {
    let runner = runner_uid();
    let runs_as = if runner == 0 { NOBODY } else { runner };
    // A directory the runner can enter, with a copy of the binary: the build tree may
    // be in a place `nobody` cannot reach.
    let home = tempfile::tempdir().unwrap();
    std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(home.path(), Some(runs_as), Some(runs_as)).unwrap();
    let binary = home.path().join("authdeckctl");
    std::fs::copy(env!("CARGO_BIN_EXE_authdeckctl"), &binary).unwrap();
    std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755)).unwrap();
    let data_dir = home.path().join("data");

    // The control: a plain process of the same user is dumpable, its entries are its own.
    let control = spawn(Path::new("/bin/cat"), &[], home.path());
    let deadline = Instant::now() + Duration::from_secs(10);
    // Until `cat` has exec'd: between fork and exec the child is still root's.
    while proc_owner(&control) != runs_as && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        proc_owner(&control),
        runs_as,
        "a dumpable process's /proc entries belong to its user"
    );
    stop(control);

    // `callback -` opens the data dir, then waits for the URL on stdin.
    let data = data_dir.to_str().unwrap();
    let mut child = spawn(&binary, &["--data-dir", data, "callback", "-"], home.path());
    let deadline = Instant::now() + Duration::from_secs(30);
    // The database is created after the hardening (the first thing `main` does).
    while std::fs::read_dir(&data_dir).map_or(true, |mut d| d.next().is_none()) {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("authdeckctl exited early ({status}): {}", stop(child));
        }
        assert!(
            Instant::now() < deadline,
            "authdeckctl did not open its data dir"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "still waiting on stdin"
    );
    let owner = proc_owner(&child);
    let core = soft_core_limit(&child);
    // Answer it and let it finish on its own: the URL is refused, nothing else happens.
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"not a url\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());

    assert_eq!(
        owner, 0,
        "authdeckctl (running as uid {runs_as}) must be non-dumpable: its /proc entries belong to root"
    );
    assert_eq!(core, "0", "soft RLIMIT_CORE");
}
