//! [`PgCluster::shared`]: one cluster for a whole test process, reaped when it ends.

use super::*;

/// The process-wide cluster of [`PgCluster::shared`] and the pipe its reaper waits on.
struct Shared {
    cluster: PgCluster,
    // Never written to and never closed by us: the kernel closes it when this process
    // ends, however it ends (normal exit, panic, a signal, `kill -9`).
    _reaper_stdin: std::process::ChildStdin,
}

static SHARED: std::sync::OnceLock<Shared> = std::sync::OnceLock::new();

impl PgCluster {
    /// One cluster for the whole test process, started on first use (for test binaries
    /// whose every test wants a database, e.g. the core's suite on the team backend:
    /// give each test its own team or database in it).
    ///
    /// A static is never dropped, so [`Drop`] cannot stop this one. Instead, a reaper
    /// process (`sh`) is started with a pipe from this process on its stdin: it blocks
    /// reading it, and when this process ends (however it ends, `kill -9` too) the
    /// kernel closes the pipe, the read returns, and the reaper stops the cluster
    /// (`pg_ctl stop -m immediate`) and removes its directory. No postmaster outlives
    /// the test binary by more than that stop (only a SIGKILL of the reaper itself
    /// would leave one; the reaper ignores HUP, INT and TERM and has its own process
    /// group, so `timeout` or a Ctrl-C of the test binary does not reach it).
    pub fn shared() -> &'static PgCluster {
        use std::os::unix::process::CommandExt;
        &SHARED
            .get_or_init(|| {
                let mut cluster = PgCluster::start();
                // The reaper owns the cleanup from here: the TempDir must not remove the
                // directory under it, and nothing drops a static anyway.
                let root = cluster.keep();
                let data = cluster.data_dir();
                let stop = cluster.command("pg_ctl");
                let mut argv: Vec<std::ffi::OsString> =
                    vec![stop.get_program().to_os_string()];
                argv.extend(stop.get_args().map(|a| a.to_os_string()));
                let mut reaper = Command::new("sh");
                reaper
                    .arg("-c")
                    .arg(r#"trap '' HUP INT TERM; cat >/dev/null; "$@" stop -w -m immediate -D "$PGDATA_DIR"; rm -rf -- "$PG_ROOT""#)
                    .arg("reaper")
                    .args(argv)
                    .env("PGDATA_DIR", &data)
                    .env("PG_ROOT", &root)
                    .env("LC_ALL", "C")
                    .current_dir("/")
                    // Its own process group, and deaf to HUP/INT/TERM: `timeout`, a
                    // Ctrl-C or a closed terminal signal the test's whole group, and
                    // the reaper must outlive the test to clean up after it.
                    .process_group(0)
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null());
                let mut child = reaper
                    .spawn()
                    .unwrap_or_else(|e| panic!("cannot start the cluster's reaper (sh): {e}"));
                let stdin = child
                    .stdin
                    .take()
                    .unwrap_or_else(|| panic!("the reaper has no stdin pipe"));
                // Not waited for: it outlives this process on purpose (init reaps it).
                drop(child);
                Shared {
                    cluster,
                    _reaper_stdin: stdin,
                }
            })
            .cluster
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::CommandExt;
    use std::process::Stdio;

    const CHILD: &str = "AUTHDECK_PG_SHARED_CHILD";
    const NAME: &str = "testing::shared::tests::the_shared_cluster_goes_when_its_process_is_killed";

    /// [`PgCluster::shared`] in a child process (this test binary again, this test
    /// only), its process group sent SIGTERM and the child SIGKILL: no destructor
    /// runs, yet its reaper stops the postmaster and removes the cluster's directory.
    #[test]
    fn the_shared_cluster_goes_when_its_process_is_killed() {
        if std::env::var_os(CHILD).is_some() {
            let cluster = PgCluster::shared();
            let pid = cluster.postmaster_pid().expect("the postmaster runs");
            println!("cluster {pid} {}", cluster.root.display());
            std::thread::sleep(Duration::from_secs(120));
            return;
        }
        let exe = std::env::current_exe().unwrap();
        let mut child = Command::new(exe)
            .args(["--exact", NAME, "--nocapture", "--test-threads=1"])
            .env(CHILD, "1")
            .process_group(0)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut found = None;
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            // After libtest's "test NAME ... " on the same line.
            if let Some((_, rest)) = line.split_once("cluster ") {
                let (pid, root) = rest.split_once(' ').unwrap();
                found = Some((pid.parse::<u32>().unwrap(), PathBuf::from(root)));
                break;
            }
        }
        let (pid, root) = found.expect("the child printed its cluster");
        let proc_dir = PathBuf::from(format!("/proc/{pid}"));
        assert!(proc_dir.exists() && root.exists(), "the cluster runs");
        // What `timeout` or a Ctrl-C does: SIGTERM to the child's whole process group
        // (its own, see process_group below; the reaper has another), then SIGKILL.
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", child.id())])
            .status();
        child.kill().unwrap();
        child.wait().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while (proc_dir.exists() || root.exists()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(
            !proc_dir.exists(),
            "postmaster {pid} outlived its test process"
        );
        assert!(!root.exists(), "{} was left behind", root.display());
    }
}
