//! A throwaway PostgreSQL cluster for tests (feature `testing`): `initdb` + `pg_ctl` in a
//! temporary directory, a private Unix socket directory and a free loopback port. It is
//! stopped and removed on drop.
//!
//! PostgreSQL refuses to run as root, so as root every server command runs as the
//! `postgres` user (`runuser -u postgres --`) on directories owned by that user; as any
//! other user they run as that user. A missing binary or user is a panic with a message
//! that says what to install: the tests never skip quietly.
//!
//! Also: [`PgCluster::restart`], [`PgCluster::kill`] (an immediate stop, the server's
//! equivalent of a crash), a hot standby ([`PgCluster::standby`], `pg_basebackup -R`) and
//! its [`PgCluster::promote`], `pg_dump` and the server log for canary checks.
//!
//! [`netns`]: a network namespace joined by a veth pair. A cluster started with
//! [`PgOptions::netns`] runs inside it (`ip netns exec NAME runuser -u postgres -- …`) and
//! listens on the namespace's address only (TLS, a certificate for that address), plus
//! its Unix socket, which is not cut: the test reaches it over the veth, which
//! [`netns::Netns::cut`] partitions, and over the socket, which stays.

pub mod netns;
mod shared;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// How to start a cluster.
#[derive(Debug, Clone, Default)]
pub struct PgOptions {
    /// `log_statement=all`: every statement the server receives goes to its log, for the
    /// canary tests that grep it.
    pub log_statement_all: bool,
    /// `ssl=on` with a server certificate for `localhost` only (not `127.0.0.1`),
    /// signed by a throwaway CA ([`PgCluster::ca_path`]); made with the `openssl` CLI.
    pub tls: bool,
    /// Run inside this network namespace, listening on [`netns::Netns::addr`] (not on
    /// 127.0.0.1), TLS on (the certificate also names that address), trust for the
    /// host end of the veth ([`netns::Netns::host_addr`]). See [`PgCluster::netns_config`].
    pub netns: Option<netns::Netns>,
    /// `fsync=on`: every COMMIT waits for its WAL to reach the disk, as on a real server
    /// (the benchmarks). Off by default: the tests do not measure the disk.
    pub fsync: bool,
    /// The server's `max_connections` (200 when `None`): a low one for the tests of what
    /// happens when its slots run out.
    pub max_connections: Option<u32>,
}

/// A running throwaway cluster. Superuser `postgres`, trust authentication on the socket
/// and on 127.0.0.1 only.
pub struct PgCluster {
    // Kept for its Drop (removes the directory); `None` for nothing.
    dir: Option<tempfile::TempDir>,
    root: PathBuf,
    bin: PathBuf,
    port: u16,
    options: PgOptions,
    running: bool,
}

/// The directory of the server binaries: `$AUTHDECK_PG_BIN`, else
/// `/usr/lib/postgresql/15/bin`, else the newest `/usr/lib/postgresql/<N>/bin` with N ≥ 15.
pub fn pg_bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("AUTHDECK_PG_BIN") {
        return PathBuf::from(dir);
    }
    let preferred = PathBuf::from("/usr/lib/postgresql/15/bin");
    if preferred.join("initdb").exists() {
        return preferred;
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            (v >= 15 && bin.join("initdb").exists()).then_some((v, bin))
        })
        .collect();
    found.sort();
    match found.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL 15+ server binaries not found (no /usr/lib/postgresql/15/bin/initdb): \
             run scripts/install-deps.sh (Debian package `postgresql`) or set AUTHDECK_PG_BIN"
        ),
    }
}

fn is_root() -> bool {
    // /proc/self belongs to the process's effective uid.
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

fn postgres_ids() -> (u32, u32) {
    let out = Command::new("id")
        .args(["-u", "postgres"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run `id`: {e}"));
    let uid = String::from_utf8_lossy(&out.stdout).trim().parse().ok();
    let out = Command::new("id")
        .args(["-g", "postgres"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run `id`: {e}"));
    let gid = String::from_utf8_lossy(&out.stdout).trim().parse().ok();
    match (uid, gid) {
        (Some(u), Some(g)) => (u, g),
        _ => panic!(
            "running as root but there is no `postgres` user to run the server as \
             (PostgreSQL refuses root): install the `postgresql` package (scripts/install-deps.sh)"
        ),
    }
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind 127.0.0.1:0: {e}"));
    l.local_addr()
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("local_addr: {e}"))
}

fn new_dir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("authdeck-pg-")
        .tempdir()
        .unwrap_or_else(|e| panic!("temp dir: {e}"));
    if is_root() {
        let (uid, gid) = postgres_ids();
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
            .unwrap_or_else(|e| panic!("chown {} to postgres: {e}", dir.path().display()));
    }
    dir
}

impl PgCluster {
    /// `initdb` and start a cluster with default options.
    pub fn start() -> Self {
        Self::start_with(PgOptions::default())
    }

    pub fn start_with(options: PgOptions) -> Self {
        let bin = pg_bin_dir();
        for tool in [
            "initdb",
            "pg_ctl",
            "postgres",
            "pg_basebackup",
            "pg_dump",
            "psql",
        ] {
            if !bin.join(tool).exists() {
                panic!(
                    "{}/{tool} is missing: install the Debian package `postgresql` \
                     (scripts/install-deps.sh)",
                    bin.display()
                );
            }
        }
        if is_root()
            && !Path::new("/usr/sbin/runuser").exists()
            && !Path::new("/sbin/runuser").exists()
        {
            panic!(
                "running as root needs `runuser` (util-linux) to start PostgreSQL as `postgres`"
            );
        }
        let mut options = options;
        if options.netns.is_some() {
            options.tls = true;
        }
        let dir = new_dir();
        let root = dir.path().to_path_buf();
        let cluster = Self {
            dir: Some(dir),
            root,
            bin,
            port: free_port(),
            options,
            running: false,
        };
        std::fs::create_dir_all(cluster.socket_dir()).unwrap_or_else(|e| panic!("socket dir: {e}"));
        cluster.chown_to_postgres(&cluster.socket_dir());
        let data = cluster.data_dir();
        cluster.run_checked(
            "initdb",
            &[
                "-D",
                path_str(&data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        );
        if cluster.options.tls {
            cluster.make_certificates();
        }
        if let Some(ns) = &cluster.options.netns {
            // initdb trusts 127.0.0.1 and the socket; the test process comes from the
            // host end of the veth.
            let hba = data.join("pg_hba.conf");
            let mut text = std::fs::read_to_string(&hba)
                .unwrap_or_else(|e| panic!("read {}: {e}", hba.display()));
            text.push_str(&format!("host all all {}/32 trust\n", ns.host_addr()));
            std::fs::write(&hba, text).unwrap_or_else(|e| panic!("write {}: {e}", hba.display()));
        }
        let mut cluster = cluster;
        cluster.first_start();
        cluster
    }

    /// The throwaway CA that signed the server certificate (with [`PgOptions::tls`]).
    pub fn ca_path(&self) -> PathBuf {
        self.root.join("ca.pem")
    }

    fn make_certificates(&self) {
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(&self.root)
                .output()
                .unwrap_or_else(|e| {
                    panic!("cannot run openssl (package `openssl`) for the TLS test cluster: {e}")
                });
            assert!(
                out.status.success(),
                "openssl {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let mut ca = vec!["req", "-x509"];
        ca.extend(ec);
        ca.extend([
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=authdeck test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        openssl(&ca);
        let mut csr = vec!["req"];
        csr.extend(ec);
        csr.extend([
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ]);
        openssl(&csr);
        let names = match &self.options.netns {
            Some(ns) => format!("DNS:localhost,IP:{}", ns.addr()),
            None => "DNS:localhost".to_string(),
        };
        std::fs::write(
            self.root.join("server.ext"),
            format!("subjectAltName={names}\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"),
        )
        .unwrap_or_else(|e| panic!("server.ext: {e}"));
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ]);
        use std::os::unix::fs::PermissionsExt;
        for f in ["server.key", "server.crt"] {
            let path = self.root.join(f);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .unwrap_or_else(|e| panic!("chmod {f}: {e}"));
            self.chown_to_postgres(&path);
        }
    }

    fn chown_to_postgres(&self, path: &Path) {
        if is_root() {
            let (uid, gid) = postgres_ids();
            std::os::unix::fs::chown(path, Some(uid), Some(gid))
                .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    /// The Unix socket directory (`host=<this>` in a connection string).
    pub fn socket_dir(&self) -> PathBuf {
        self.root.join("sock")
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn log_path(&self) -> PathBuf {
        self.root.join("server.log")
    }

    /// The whole server log so far.
    pub fn server_log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// A key=value connection string over TCP to 127.0.0.1 (not for a cluster in a
    /// namespace: see [`netns_config`](Self::netns_config)).
    pub fn tcp_config(&self, dbname: &str) -> String {
        assert!(
            self.options.netns.is_none(),
            "a cluster in a network namespace does not listen on 127.0.0.1: use netns_config"
        );
        format!(
            "host=127.0.0.1 port={} user=postgres dbname={dbname}",
            self.port
        )
    }

    /// A key=value connection string over the veth to a cluster in a namespace: its
    /// address, verify-full TLS against [`ca_path`](Self::ca_path).
    pub fn netns_config(&self, dbname: &str) -> String {
        let ns = self
            .options
            .netns
            .as_ref()
            .unwrap_or_else(|| panic!("netns_config: this cluster is not in a namespace"));
        format!(
            "host={} port={} user=postgres dbname={dbname} sslmode=verify-full sslrootcert={}",
            ns.addr(),
            self.port,
            self.ca_path().display()
        )
    }

    /// The namespace the cluster runs in, if any.
    pub fn netns(&self) -> Option<&netns::Netns> {
        self.options.netns.as_ref()
    }

    /// A key=value connection string over the Unix socket.
    pub fn socket_config(&self, dbname: &str) -> String {
        format!(
            "host={} port={} user=postgres dbname={dbname}",
            self.socket_dir().display(),
            self.port
        )
    }

    /// The server's pid (from postmaster.pid), while it runs.
    pub fn postmaster_pid(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.data_dir().join("postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok()
    }

    fn command(&self, tool: &str) -> Command {
        let path = self.bin.join(tool);
        let mut cmd = match (&self.options.netns, is_root()) {
            (Some(ns), _) => {
                // Namespaces need root (netns::Netns::new checked), so runuser too.
                let mut c = ns.command("runuser");
                c.args(["-u", "postgres", "--"]).arg(path);
                c
            }
            (None, true) => {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(path);
                c
            }
            (None, false) => Command::new(path),
        };
        cmd.current_dir(&self.root);
        cmd.env("LC_ALL", "C");
        cmd
    }

    fn run(&self, tool: &str, args: &[&str]) -> Output {
        self.command(tool)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {tool}: {e}"))
    }

    fn run_checked(&self, tool: &str, args: &[&str]) -> String {
        let out = self.run(tool, args);
        self.checked(tool, args, out)
    }

    /// `out`'s stdout; a panic with the server log's tail when `tool` failed.
    fn checked(&self, tool: &str, args: &[&str], out: Output) -> String {
        if !out.status.success() {
            panic!(
                "{tool} {args:?} failed ({}):\n{}\n{}\nserver log tail:\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                tail(&self.server_log(), 30)
            );
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn server_options(&self) -> String {
        let listen = match &self.options.netns {
            Some(ns) => ns.addr().to_string(),
            None => "127.0.0.1".to_string(),
        };
        let mut o = format!(
            "-p {} -k {} -c listen_addresses={listen} -c fsync={} -c max_connections={} \
             -c unix_socket_permissions=0777 -c logging_collector=off",
            self.port,
            self.socket_dir().display(),
            if self.options.fsync { "on" } else { "off" },
            self.options.max_connections.unwrap_or(200)
        );
        if self.options.log_statement_all {
            o.push_str(" -c log_statement=all");
        }
        if self.options.tls {
            o.push_str(&format!(
                " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
                self.root.join("server.crt").display(),
                self.root.join("server.key").display()
            ));
        }
        o
    }

    /// `pg_ctl start` on this cluster's data directory, log and options (unchecked).
    fn try_pg_ctl_start(&self) -> Output {
        let (data, log, opts) = (self.data_dir(), self.log_path(), self.server_options());
        self.run(
            "pg_ctl",
            &[
                "start",
                "-w",
                "-t",
                "60",
                "-D",
                path_str(&data),
                "-l",
                path_str(&log),
                "-o",
                &opts,
            ],
        )
    }

    fn pg_ctl_start(&mut self) {
        let out = self.try_pg_ctl_start();
        self.checked("pg_ctl", &["start"], out);
        self.running = true;
    }

    /// The first start: on a port someone took between `free_port` and the bind (tests
    /// run in parallel), pick another, up to 5 times.
    fn first_start(&mut self) {
        for _ in 0..4 {
            if self.try_pg_ctl_start().status.success() {
                self.running = true;
                return;
            }
            if !self.server_log().contains("could not bind") {
                break;
            }
            self.port = free_port();
        }
        self.pg_ctl_start();
    }

    /// Stop: `fast` (clean shutdown, sessions disconnected).
    pub fn stop(&mut self) {
        self.pg_ctl_stop("fast");
    }

    /// An immediate stop: no checkpoint, like a crash of the server (crash recovery on
    /// the next start).
    pub fn kill(&mut self) {
        self.pg_ctl_stop("immediate");
    }

    /// `pg_ctl stop -m <mode>`, once (a stopped cluster is left as it is).
    fn pg_ctl_stop(&mut self, mode: &str) {
        if self.running {
            let data = self.data_dir();
            self.run_checked("pg_ctl", &["stop", "-w", "-m", mode, "-D", path_str(&data)]);
            self.running = false;
        }
    }

    /// Start again after [`stop`](Self::stop) or [`kill`](Self::kill), on the same port.
    pub fn start_again(&mut self) {
        if !self.running {
            self.pg_ctl_start();
        }
    }

    /// Stop (fast) and start again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        self.start_again();
    }

    pub fn is_running(&self) -> bool {
        self.running
    }

    /// `createdb NAME` through psql.
    pub fn create_database(&self, name: &str) {
        self.psql("postgres", &format!("CREATE DATABASE \"{name}\""));
    }

    /// Run SQL as the superuser through `psql` on the socket; its stdout (unaligned, no
    /// headers). Panics on an error.
    pub fn psql(&self, dbname: &str, sql: &str) -> String {
        let sock = self.socket_dir();
        let port = self.port.to_string();
        self.run_checked(
            "psql",
            &[
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                path_str(&sock),
                "-p",
                &port,
                "-U",
                "postgres",
                "-d",
                dbname,
                "-c",
                sql,
            ],
        )
    }

    /// `pg_dump` of one database (plain SQL, data included), as text.
    pub fn pg_dump(&self, dbname: &str) -> String {
        let sock = self.socket_dir();
        let port = self.port.to_string();
        self.run_checked(
            "pg_dump",
            &[
                "-h",
                path_str(&sock),
                "-p",
                &port,
                "-U",
                "postgres",
                "-d",
                dbname,
            ],
        )
    }

    /// A hot standby of this cluster: `pg_basebackup -R` (streaming replication, a
    /// `standby.signal`) into a new directory, started on its own port and socket.
    pub fn standby(&self) -> PgCluster {
        assert!(self.running, "the primary must run to take a base backup");
        let dir = new_dir();
        let root = dir.path().to_path_buf();
        let mut standby = PgCluster {
            dir: Some(dir),
            root,
            bin: self.bin.clone(),
            port: free_port(),
            options: self.options.clone(),
            running: false,
        };
        std::fs::create_dir_all(standby.socket_dir()).unwrap_or_else(|e| panic!("socket dir: {e}"));
        standby.chown_to_postgres(&standby.socket_dir());
        let data = standby.data_dir();
        let sock = self.socket_dir();
        let port = self.port.to_string();
        standby.run_checked(
            "pg_basebackup",
            &[
                "-D",
                path_str(&data),
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
                "-h",
                path_str(&sock),
                "-p",
                &port,
                "-U",
                "postgres",
            ],
        );
        standby.first_start();
        standby
    }

    /// Promote a standby to primary (`pg_ctl promote`, waits until it accepts writes).
    pub fn promote(&self) {
        let data = self.data_dir();
        self.run_checked(
            "pg_ctl",
            &["promote", "-w", "-t", "60", "-D", path_str(&data)],
        );
    }

    /// Wait until `psql` answers `SELECT pg_is_in_recovery()` with `want`.
    pub fn wait_recovery(&self, want: bool, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let out = self.psql("postgres", "SELECT pg_is_in_recovery()");
            if out.trim() == if want { "t" } else { "f" } {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "pg_is_in_recovery() did not become {want}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Keep the files on disk after drop (for looking at a failure).
    pub fn keep(&mut self) -> PathBuf {
        if let Some(dir) = self.dir.take() {
            let _ = dir.keep();
        }
        self.root.clone()
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if self.running {
            let data = self.data_dir();
            let _ = self
                .command("pg_ctl")
                .args(["stop", "-w", "-m", "immediate", "-D", path_str(&data)])
                .output();
            self.running = false;
        }
        // The TempDir's own drop removes the directory.
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str()
        .unwrap_or_else(|| panic!("non-UTF-8 temp path {}", p.display()))
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
