//! Real network partitions for the team store's tests: a network namespace joined to
//! this one by a veth pair, so a PostgreSQL server started inside it
//! ([`PgOptions::netns`](super::PgOptions::netns)) is reached by the test process over a
//! link the test can cut, heal and slow down.
//!
//! - **Names**: the namespace is `adt-<pid>-<n>`, the host end of the veth
//!   `adt<pid>h<n>`, the namespace's end `adt<pid>n<n>`.
//! - **Addresses**: a /30 inside `169.254.64.0/18` (link-local, never routed), one per
//!   namespace: slot `k` is `169.254.64.0 + 4k`, the host end `.1`, the namespace's end
//!   `.2`. A slot is claimed by creating `/run/authdeck-netns/slot-<k>` (atomic
//!   `create_new`), so parallel tests and parallel test processes never share one.
//!   Neighbours are set permanent on both ends (no ARP, which would otherwise fail fast
//!   during a cut and turn a new connection attempt's silence into "no route to host").
//!   IPv6 is not configured on either end (`addrgenmode none`).
//! - **Nothing leaves the machine**: one host route `unreachable 169.254.64.0/18`
//!   (metric 4000, proto 173) catches every packet for these addresses that has no veth
//!   to go to — a socket that outlives its namespace — instead of the default route.
//!   The route is kept (it is harmless and idempotent); the namespace's own side has no
//!   route but its /30.
//! - **[`Netns::cut`]**: the namespace's end of the veth goes down. The host end stays
//!   up (its route stays, so nothing is rerouted) but has no carrier: every packet either
//!   way is dropped. Neither peer gets a reset or an ICMP error: a TCP peer sees
//!   **silence** — retransmissions unanswered, a new connection's SYN unanswered — as
//!   with a dead router between two machines. [`Netns::heal`] brings it up again;
//!   established connections that neither side gave up on carry on.
//! - **[`Netns::delay`]**: this machine's kernel has no `netem` (`CONFIG_NET_SCH_NETEM`
//!   is not set: `tc qdisc add … netem` answers "Specified qdisc kind is unknown"), so a
//!   delay is applied by a relay: [`Netns::forward`] listens on 127.0.0.1 and forwards
//!   every connection over the veth to the namespace's address, holding every chunk of
//!   bytes for the namespace's current delay in each direction (a round trip gains twice
//!   the delay), in order.
//! - **Clean-up**: dropping the last handle kills whatever still runs in the namespace
//!   (processes this test started there), deletes it (which removes the veth pair) and
//!   frees the slot — also when the test panics (unwinding). A run killed outright
//!   leaves them behind; the first [`Netns::new`] of every process first removes every
//!   `adt-<pid>-*` namespace, `adt<pid>…` link and slot whose process is gone.
//! - **Requirements**: `ip` (Debian's `iproute2`) and root (CAP_NET_ADMIN and
//!   CAP_SYS_ADMIN: `ip netns add` mounts). Missing either is a panic that says so —
//!   never a skip.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, Once};
use std::time::{Duration, Instant};

/// Where the address slots are claimed (one file per slot, holding the namespace's name).
pub const SLOT_DIR: &str = "/run/authdeck-netns";
const SLOTS: u32 = 4096;
/// The block every namespace's /30 comes from, and its catch-all host route.
const BLOCK: &str = "169.254.64.0/18";
const GUARD_ROUTE: [&str; 8] = [
    "route",
    "replace",
    "unreachable",
    BLOCK,
    "metric",
    "4000",
    "proto",
    "173",
];

static NEXT: AtomicU32 = AtomicU32::new(0);
static SWEEP: Once = Once::new();

/// A network namespace joined to this one by a veth pair. Cheap to clone; the namespace
/// goes when the last clone is dropped.
#[derive(Clone)]
pub struct Netns {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    host_if: String,
    ns_if: String,
    slot: Option<PathBuf>,
    host_addr: Ipv4Addr,
    ns_addr: Ipv4Addr,
    host_mac: String,
    ns_mac: String,
    delay_us: Arc<AtomicU64>,
}

impl std::fmt::Debug for Netns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Netns")
            .field("name", &self.inner.name)
            .field("host", &self.inner.host_addr)
            .field("ns", &self.inner.ns_addr)
            .finish()
    }
}

fn ip_binary() -> &'static str {
    for p in ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"] {
        if Path::new(p).exists() {
            return p;
        }
    }
    panic!(
        "the partition tests need `ip` (Debian package `iproute2`: scripts/install-deps.sh) \
         to create network namespaces and veth pairs"
    )
}

/// Panic unless this process may create namespaces and links.
fn check_capabilities() {
    let status = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_else(|e| panic!("cannot read /proc/self/status: {e}"));
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    const CAP_NET_ADMIN: u64 = 1 << 12;
    const CAP_SYS_ADMIN: u64 = 1 << 21;
    if eff & CAP_NET_ADMIN == 0 || eff & CAP_SYS_ADMIN == 0 {
        panic!(
            "the partition tests need CAP_NET_ADMIN and CAP_SYS_ADMIN (run them as root, as CI \
             does) to create network namespaces (`ip netns add`) and veth pairs; this process \
             has CapEff {eff:#x}"
        );
    }
}

/// Run `ip ARGS`; panic with its stderr when it fails.
fn ip(args: &[&str]) -> String {
    let out = Command::new(ip_binary())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run ip {args:?}: {e}"));
    if !out.status.success() {
        panic!(
            "ip {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Run `ip ARGS`, whatever the outcome (clean-up).
fn ip_quiet(args: &[&str]) -> bool {
    Command::new(ip_binary())
        .args(args)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// The pid in `adt-<pid>-<n>`.
fn owner_of_namespace(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("adt-")?;
    let (pid, n) = rest.split_once('-')?;
    n.parse::<u32>().ok()?;
    pid.parse().ok()
}

/// The pid in `adt<pid>h<n>` / `adt<pid>n<n>`.
fn owner_of_link(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("adt")?;
    let split = rest.find(['h', 'n'])?;
    let (pid, n) = (&rest[..split], &rest[split + 1..]);
    n.parse::<u32>().ok()?;
    pid.parse().ok()
}

/// Kill every process still inside namespace `name` (only ever ones a test started
/// there) and delete it.
fn remove_namespace(name: &str) {
    if let Ok(out) = Command::new(ip_binary())
        .args(["netns", "pids", name])
        .output()
    {
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            if pid.parse::<u32>().is_ok() {
                let _ = Command::new("kill").args(["-KILL", pid]).output();
            }
        }
    }
    ip_quiet(&["netns", "del", name]);
}

/// Remove what dead test processes left behind: their namespaces, host links and slots
/// (done once per process by the first [`Netns::new`]; public for its test).
pub fn sweep_stale() {
    for line in ip(&["netns", "list"]).lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        if let Some(pid) = owner_of_namespace(name) {
            if !pid_alive(pid) {
                remove_namespace(name);
            }
        }
    }
    for line in ip(&["-o", "link", "show"]).lines() {
        // "8: adt123h0@if7: <…"
        let Some(name) = line.split(':').nth(1) else {
            continue;
        };
        let name = name.trim().split('@').next().unwrap_or_default();
        if let Some(pid) = owner_of_link(name) {
            if !pid_alive(pid) {
                ip_quiet(&["link", "del", name]);
            }
        }
    }
    if let Ok(dir) = std::fs::read_dir(SLOT_DIR) {
        for entry in dir.flatten() {
            let owner = std::fs::read_to_string(entry.path())
                .ok()
                .and_then(|name| owner_of_namespace(name.trim()));
            // A slot file being written right now by a live process is still empty:
            // only remove it once its owner is known dead.
            if let Some(pid) = owner {
                if !pid_alive(pid) {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
    }
}

/// Claim a free /30 for namespace `name`: the slot's file and its number.
fn claim_slot(name: &str) -> (PathBuf, u32) {
    std::fs::create_dir_all(SLOT_DIR).unwrap_or_else(|e| panic!("create {SLOT_DIR}: {e}"));
    let start = (std::process::id().wrapping_mul(31) + NEXT.load(Ordering::SeqCst) * 7) % SLOTS;
    for i in 0..SLOTS {
        let k = (start + i) % SLOTS;
        let path = Path::new(SLOT_DIR).join(format!("slot-{k}"));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut f) => {
                f.write_all(name.as_bytes())
                    .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
                return (path, k);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => panic!("claim {}: {e}", path.display()),
        }
    }
    panic!("all {SLOTS} address slots in {SLOT_DIR} are taken");
}

fn slot_addresses(k: u32) -> (Ipv4Addr, Ipv4Addr) {
    let base = u32::from(Ipv4Addr::new(169, 254, 64, 0)) + 4 * k;
    (Ipv4Addr::from(base + 1), Ipv4Addr::from(base + 2))
}

impl Netns {
    /// A new namespace with its veth pair up, its addresses set and lo up. Panics (with
    /// what to install or what is needed) when that is not possible here.
    // No `Default`: this changes the machine (a namespace, links), which `default()`
    // should not hide.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        ip_binary();
        check_capabilities();
        SWEEP.call_once(sweep_stale);
        // The catch-all first: from now on a packet for the block either goes to a veth
        // or nowhere.
        ip(&GUARD_ROUTE);

        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let name = format!("adt-{pid}-{n}");
        let (slot, k) = claim_slot(&name);
        let (host_addr, ns_addr) = slot_addresses(k);
        let mut inner = Inner {
            name: name.clone(),
            host_if: format!("adt{pid}h{n}"),
            ns_if: format!("adt{pid}n{n}"),
            slot: Some(slot),
            host_addr,
            ns_addr,
            host_mac: String::new(),
            ns_mac: String::new(),
            delay_us: Arc::new(AtomicU64::new(0)),
        };
        // From here on a panic drops `inner`, which removes whatever was made.
        ip(&["netns", "add", &name]);
        ip(&[
            "link",
            "add",
            &inner.host_if,
            "type",
            "veth",
            "peer",
            "name",
            &inner.ns_if,
            "netns",
            &name,
        ]);
        ip(&["link", "set", &inner.host_if, "addrgenmode", "none"]);
        ip(&[
            "-n",
            &name,
            "link",
            "set",
            &inner.ns_if,
            "addrgenmode",
            "none",
        ]);
        ip(&[
            "addr",
            "add",
            &format!("{host_addr}/30"),
            "dev",
            &inner.host_if,
        ]);
        ip(&[
            "-n",
            &name,
            "addr",
            "add",
            &format!("{ns_addr}/30"),
            "dev",
            &inner.ns_if,
        ]);
        ip(&["-n", &name, "link", "set", "lo", "up"]);
        ip(&["link", "set", &inner.host_if, "up"]);
        ip(&["-n", &name, "link", "set", &inner.ns_if, "up"]);
        inner.host_mac = read_mac(None, &inner.host_if);
        inner.ns_mac = read_mac(Some(&name), &inner.ns_if);
        let ns = Netns {
            inner: Arc::new(inner),
        };
        ns.set_neighbours();
        ns
    }

    /// Permanent neighbour entries both ways (ARP would fail during a cut and answer a
    /// new connection with "no route to host" instead of silence).
    fn set_neighbours(&self) {
        let i = &self.inner;
        ip(&[
            "neigh",
            "replace",
            &i.ns_addr.to_string(),
            "lladdr",
            &i.ns_mac,
            "dev",
            &i.host_if,
            "nud",
            "permanent",
        ]);
        ip(&[
            "-n",
            &i.name,
            "neigh",
            "replace",
            &i.host_addr.to_string(),
            "lladdr",
            &i.host_mac,
            "dev",
            &i.ns_if,
            "nud",
            "permanent",
        ]);
    }

    /// The namespace's name (`adt-<pid>-<n>`).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The address inside the namespace (a server there listens on it).
    pub fn addr(&self) -> Ipv4Addr {
        self.inner.ns_addr
    }

    /// The host end's address (what a server inside sees as the test process).
    pub fn host_addr(&self) -> Ipv4Addr {
        self.inner.host_addr
    }

    /// `ip netns exec NAME PROGRAM`: a command to run inside the namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(ip_binary());
        c.args(["netns", "exec", &self.inner.name]).arg(program);
        c
    }

    /// Cut the link: every packet either way is dropped, silently (see the module docs).
    pub fn cut(&self) {
        ip(&[
            "-n",
            &self.inner.name,
            "link",
            "set",
            &self.inner.ns_if,
            "down",
        ]);
    }

    /// Bring the link back (and its permanent neighbours, which going down flushed).
    pub fn heal(&self) {
        ip(&[
            "-n",
            &self.inner.name,
            "link",
            "set",
            &self.inner.ns_if,
            "up",
        ]);
        self.set_neighbours();
    }

    /// Hold every chunk of bytes through this namespace's [`forward`](Self::forward)
    /// relays for `delay` in each direction (zero: none).
    pub fn delay(&self, delay: Duration) {
        self.inner
            .delay_us
            .store(delay.as_micros() as u64, Ordering::SeqCst);
    }

    /// A relay on 127.0.0.1 (a free port) to `port` on the namespace's address, over
    /// the veth (so [`cut`](Self::cut) cuts it too), with the namespace's
    /// [`delay`](Self::delay).
    pub fn forward(&self, port: u16) -> Forward {
        Forward::start(
            SocketAddr::from((self.inner.ns_addr, port)),
            self.inner.delay_us.clone(),
            self.clone(),
        )
    }
}

fn read_mac(ns: Option<&str>, dev: &str) -> String {
    let out = match ns {
        Some(ns) => ip(&["-n", ns, "-o", "link", "show", dev]),
        None => ip(&["-o", "link", "show", dev]),
    };
    out.split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no MAC address for {dev} in {out:?}"))
}

impl Drop for Inner {
    fn drop(&mut self) {
        remove_namespace(&self.name);
        // Gone with the namespace (its peer was inside); this is for a pair whose
        // peer never got there.
        if Path::new(&format!("/sys/class/net/{}", self.host_if)).exists() {
            ip_quiet(&["link", "del", &self.host_if]);
        }
        if let Some(slot) = self.slot.take() {
            let _ = std::fs::remove_file(slot);
        }
    }
}

/// A TCP relay from 127.0.0.1 to an address in a namespace, holding each chunk for the
/// namespace's delay (see [`Netns::forward`]). Stops, closing its connections, on drop.
pub struct Forward {
    local: SocketAddr,
    stop: Arc<AtomicBool>,
    streams: Arc<Mutex<Vec<TcpStream>>>,
    accept: Option<std::thread::JoinHandle<()>>,
    // Keeps the namespace while the relay runs.
    _ns: Netns,
}

impl Forward {
    fn start(target: SocketAddr, delay_us: Arc<AtomicU64>, ns: Netns) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .unwrap_or_else(|e| panic!("relay: bind 127.0.0.1:0: {e}"));
        let local = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("relay: local_addr: {e}"));
        let stop = Arc::new(AtomicBool::new(false));
        let streams: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let accept = {
            let (stop, streams) = (stop.clone(), streams.clone());
            std::thread::spawn(move || {
                for client in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(client) = client else { continue };
                    let Ok(upstream) = TcpStream::connect_timeout(&target, Duration::from_secs(10))
                    else {
                        let _ = client.shutdown(Shutdown::Both);
                        continue;
                    };
                    let _ = client.set_nodelay(true);
                    let _ = upstream.set_nodelay(true);
                    let (Ok(c2), Ok(u2), Ok(c3), Ok(u3)) = (
                        client.try_clone(),
                        upstream.try_clone(),
                        client.try_clone(),
                        upstream.try_clone(),
                    ) else {
                        continue;
                    };
                    if let Ok(mut s) = streams.lock() {
                        s.push(c3);
                        s.push(u3);
                    }
                    pump(client, u2, delay_us.clone());
                    pump(upstream, c2, delay_us.clone());
                }
            })
        };
        Self {
            local,
            stop,
            streams,
            accept: Some(accept),
            _ns: ns,
        }
    }

    /// Where to connect (127.0.0.1 and a port).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    pub fn port(&self) -> u16 {
        self.local.port()
    }
}

/// Copy `from` → `to`, each chunk written `delay` after it was read, in order.
fn pump(mut from: TcpStream, mut to: TcpStream, delay_us: Arc<AtomicU64>) {
    let (tx, rx) = mpsc::channel::<Option<(Instant, Vec<u8>)>>();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => {
                    let _ = tx.send(None);
                    return;
                }
                Ok(n) => {
                    let due =
                        Instant::now() + Duration::from_micros(delay_us.load(Ordering::SeqCst));
                    if tx.send(Some((due, buf[..n].to_vec()))).is_err() {
                        return;
                    }
                }
            }
        }
    });
    std::thread::spawn(move || {
        while let Ok(Some((due, bytes))) = rx.recv() {
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            if to.write_all(&bytes).is_err() {
                let _ = to.shutdown(Shutdown::Both);
                return;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}

impl Drop for Forward {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Ok(streams) = self.streams.lock() {
            for s in streams.iter() {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
        // Wake the accept loop so it sees `stop`.
        let _ = TcpStream::connect_timeout(&self.local, Duration::from_secs(1));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_to_their_process() {
        assert_eq!(owner_of_namespace("adt-1234-7"), Some(1234));
        assert_eq!(owner_of_namespace("adt-1234"), None);
        assert_eq!(owner_of_namespace("other-1234-7"), None);
        assert_eq!(owner_of_link("adt1234h7"), Some(1234));
        assert_eq!(owner_of_link("adt1234n0"), Some(1234));
        assert_eq!(owner_of_link("adtx"), None);
        assert_eq!(owner_of_link("eth0"), None);
    }

    #[test]
    fn slots_are_disjoint_30s_inside_the_block() {
        assert_eq!(
            slot_addresses(0),
            (
                Ipv4Addr::new(169, 254, 64, 1),
                Ipv4Addr::new(169, 254, 64, 2)
            )
        );
        assert_eq!(
            slot_addresses(SLOTS - 1),
            (
                Ipv4Addr::new(169, 254, 127, 253),
                Ipv4Addr::new(169, 254, 127, 254)
            )
        );
    }
}
