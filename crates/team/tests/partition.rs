//! Real network partitions between a desktop/agent and the team database (issue 13 §3,
//! §6): the PostgreSQL server runs in a network namespace of its own
//! (`testing::netns::Netns`), the side under test reaches it over a veth pair that the
//! test cuts (silence both ways: no reset), heals or slows down, and the other side over
//! the server's Unix socket, which is never cut. Root only (CI runs as root); without
//! `ip` or the capabilities the harness panics with what is missing.

use std::io::{BufRead, Write};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use authdeck_core::ErrorCode;
use authdeck_team::testing::netns::Netns;
use authdeck_team::testing::{PgCluster, PgOptions};
use authdeck_team::{
    ChangeFeed, CommitRequest, DbConfig, FeedEvent, JoinKey, Leadership, TeamStore, Via,
};
use serde_json::json;

/// The refresh lock's floor (lock.rs: `idle_session_timeout` of its session).
const REFRESH_FLOOR: Duration = Duration::from_secs(5);
/// Leadership's floor.
const LEADER_FLOOR: Duration = Duration::from_secs(3);

/// A namespace and a cluster inside it.
fn cluster_in_namespace() -> (Netns, PgCluster) {
    let ns = Netns::new();
    let cluster = PgCluster::start_with(PgOptions {
        netns: Some(ns.clone()),
        ..PgOptions::default()
    });
    (ns, cluster)
}

/// A team made over the socket (the path that is never cut).
async fn init(cluster: &PgCluster) -> (TeamStore, JoinKey) {
    let db = DbConfig::parse(&cluster.socket_config("postgres")).unwrap();
    TeamStore::init(&db, "Firm", "desk-socket", Via::Desktop)
        .await
        .unwrap()
}

async fn join_as(address: &str, join: &JoinKey, machine: &str) -> TeamStore {
    let db = DbConfig::parse(address).unwrap();
    let (team, key) = JoinKey::decode(join.expose()).unwrap();
    TeamStore::open(&db, &team, key, machine, Via::Agent)
        .await
        .unwrap()
}

async fn with_connection(store: &TeamStore, id: &str) {
    if store.client_row("fa").await.unwrap().is_none() {
        store.put_client("fa", &json!({}), None).await.unwrap();
    }
    store
        .insert_connection(id, "fa", &json!({"label": id}), b"gen-1", None)
        .await
        .unwrap();
}

fn micros_now() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros()
}

fn backend_alive(cluster: &PgCluster, pid: i32) -> bool {
    cluster
        .psql(
            "postgres",
            &format!("SELECT count(*) FROM pg_stat_activity WHERE pid = {pid}"),
        )
        .trim()
        == "1"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_refresh_lock_holder_stops_within_its_floor_and_another_takes_the_lock() {
    let (ns, cluster) = cluster_in_namespace();
    let (admin, key) = init(&cluster).await;
    with_connection(&admin, "c1").await;
    let cut_side = join_as(&cluster.netns_config("postgres"), &key, "desk-cut").await;
    let other = join_as(&cluster.socket_config("postgres"), &key, "desk-other").await;

    let held = Arc::new(cut_side.lock_refresh("c1", Duration::ZERO).await.unwrap());
    held.ensure(Duration::from_secs(1)).await.unwrap();
    let pid = held.backend_pid();

    // The other desktop waits for the lock over the socket.
    let waiter = {
        let other = other.clone();
        tokio::spawn(async move {
            let lock = other.lock_refresh("c1", Duration::from_secs(20)).await;
            (lock, Instant::now())
        })
    };
    // The holder's belief, watched: the last instant `time_left()` was positive (each
    // instant taken before its check).
    let believed_until = {
        let held = held.clone();
        tokio::spawn(async move {
            let mut last = Instant::now();
            loop {
                let t = Instant::now();
                if held.time_left().is_zero() {
                    return last;
                }
                last = t;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiter.is_finished(), "the lock is held");

    let cut = Instant::now();
    ns.cut();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Before the provider call: the holder cannot confirm the lock, and says so within
    // the floor (no false "still held").
    let asked = Instant::now();
    let refused = held.ensure(Duration::from_secs(1)).await;
    let answered = asked.elapsed();
    let e = refused.expect_err("ensure() said the lock is held across a cut link");
    assert!(
        matches!(e.code, ErrorCode::TeamUnavailable | ErrorCode::Busy),
        "{e:?}"
    );
    assert!(
        answered <= REFRESH_FLOOR + Duration::from_secs(1),
        "ensure() answered after {answered:?}"
    );
    println!("cut-off holder: ensure() refused after {answered:?}");

    let (taken, taken_at) = waiter.await.unwrap();
    let taken = taken.expect("the other desktop gets the lock once the server drops the holder");
    let took = taken_at - cut;
    println!("cut-off holder: the other desktop got the lock {took:?} after the cut");
    assert!(
        took < Duration::from_secs(10),
        "the lock came back after {took:?}"
    );
    // The server gave the holder at least its floor after its last heartbeat (≤ 0.5 s
    // before the cut).
    assert!(
        took >= REFRESH_FLOOR - Duration::from_millis(600),
        "the lock was given away before the holder's floor: {took:?}"
    );
    let until = believed_until.await.unwrap();
    assert!(
        until < taken_at,
        "the cut-off holder still believed it held the lock {:?} after the other got it",
        until - taken_at
    );
    println!(
        "cut-off holder: stopped believing {:?} after the cut, {:?} before the other got the lock",
        until - cut,
        taken_at - until
    );
    assert!(held.time_left().is_zero());
    assert!(
        !backend_alive(&cluster, pid),
        "the holder's session is gone"
    );
    assert!(
        cluster.server_log().contains("idle-session timeout"),
        "the server ended the silent session by its idle_session_timeout"
    );

    // Healed: the old holder still knows it lost the lock, and nothing is doubled.
    ns.heal();
    assert!(held.ensure(Duration::from_millis(1)).await.is_err());
    assert_eq!(
        cut_side
            .lock_refresh("c1", Duration::ZERO)
            .await
            .unwrap_err()
            .code,
        ErrorCode::Busy,
        "the other desktop still holds it"
    );
    taken.release().await;
}

/// A leader in a process of its own (src/bin/authdeck-team-test-leader.rs), its stdout
/// lines after the first on a channel.
struct LeaderProcess {
    child: std::process::Child,
    backend_pid: i32,
    lines: mpsc::Receiver<String>,
}

impl LeaderProcess {
    fn start(address: &str, join: &JoinKey) -> Self {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_authdeck-team-test-leader"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "{address}\n{}", join.expose()).unwrap();
        drop(stdin);
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let backend_pid = line
            .strip_prefix("leading ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("the leader process did not lead: {line:?}"));
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in out.lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Self {
            child,
            backend_pid,
            lines,
        }
    }

    /// `stepped-down <last yes> <first no>` (µs since the epoch), within `within`.
    fn stepped_down(&self, within: Duration) -> (u128, u128) {
        let line = self
            .lines
            .recv_timeout(within)
            .unwrap_or_else(|e| panic!("the leader did not step down within {within:?}: {e}"));
        let mut words = line.split_whitespace();
        assert_eq!(words.next(), Some("stepped-down"), "{line}");
        let mut num = || words.next().and_then(|w| w.parse().ok()).unwrap();
        (num(), num())
    }
}

impl Drop for LeaderProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_leader_steps_down_before_a_standby_leads_within_10_s() {
    let (ns, cluster) = cluster_in_namespace();
    let (standby, key) = init(&cluster).await;
    let leader = LeaderProcess::start(&cluster.netns_config("postgres"), &key);
    assert!(Leadership::acquire(&standby, Duration::ZERO)
        .await
        .unwrap()
        .is_none());

    let waiting = {
        let standby = standby.clone();
        tokio::spawn(async move {
            let led = Leadership::acquire(&standby, Duration::from_secs(20)).await;
            (led, micros_now())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "the leader still leads");
    let cut = micros_now();
    ns.cut();
    let (led, led_at) = waiting.await.unwrap();
    let new_leader = led.unwrap().expect("the standby leads");
    assert!(new_leader.is_leader());
    let (last_yes, first_no) =
        tokio::task::block_in_place(|| leader.stepped_down(Duration::from_secs(5)));
    assert!(!backend_alive(&cluster, leader.backend_pid));
    let ms = |us: u128| us as f64 / 1000.0;
    println!(
        "cut-off leader: stepped down {:.1} ms after the cut; the standby led {:.1} ms after the \
         cut, {:.1} ms after the old leader's last \"yes\"",
        ms(first_no - cut),
        ms(led_at - cut),
        ms(led_at.saturating_sub(last_yes))
    );
    // Never two leaders: the old leader's last check that it leads came before the
    // standby led.
    assert!(
        last_yes < led_at,
        "two leaders at once: the cut-off leader still led {:.1} ms after the standby took over",
        ms(last_yes - led_at)
    );
    assert!(
        first_no - cut <= (LEADER_FLOOR + Duration::from_millis(500)).as_micros(),
        "the cut-off leader went on for {:.1} ms",
        ms(first_no - cut)
    );
    assert!(
        led_at - cut < Duration::from_secs(10).as_micros(),
        "the standby led only {:.1} ms after the cut",
        ms(led_at - cut)
    );
    ns.heal();
    new_leader.release().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_300_ms_delay_loses_neither_the_lock_nor_leadership() {
    let (ns, cluster) = cluster_in_namespace();
    let (admin, key) = init(&cluster).await;
    with_connection(&admin, "c1").await;
    let relay = ns.forward(cluster.port());
    let address = format!(
        "host=127.0.0.1 port={} user=postgres dbname=postgres",
        relay.port()
    );
    let slow = join_as(&address, &key, "desk-slow").await;
    let leader = LeaderProcess::start(&address, &key);
    let held = slow.lock_refresh("c1", Duration::ZERO).await.unwrap();

    ns.delay(Duration::from_millis(300));
    // The delay is there: a round trip takes at least twice 300 ms.
    let t = Instant::now();
    slow.current_version().await.unwrap();
    let rtt = t.elapsed();
    assert!(rtt >= Duration::from_millis(600), "round trip {rtt:?}");
    println!("through the relay at 300 ms each way: a round trip took {rtt:?}");

    // For longer than both floors: the holder keeps its lock, the leader leads, nobody
    // else gets either.
    let until = Instant::now() + Duration::from_secs(8);
    let mut min_left = REFRESH_FLOOR;
    let mut next_try = Instant::now();
    while Instant::now() < until {
        let left = held.time_left();
        assert!(
            !left.is_zero(),
            "the lock was given up under a 300 ms delay"
        );
        min_left = min_left.min(left);
        if Instant::now() >= next_try {
            assert!(
                Leadership::acquire(&admin, Duration::ZERO)
                    .await
                    .unwrap()
                    .is_none(),
                "a standby led while the slow leader still leads"
            );
            assert_eq!(
                admin
                    .lock_refresh("c1", Duration::ZERO)
                    .await
                    .unwrap_err()
                    .code,
                ErrorCode::Busy
            );
            next_try = Instant::now() + Duration::from_millis(500);
        }
        if let Ok(line) = leader.lines.try_recv() {
            panic!("the leader stepped down under a 300 ms delay: {line}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("under a 300 ms delay the lock's time_left never fell below {min_left:?}");
    let left = held.ensure(Duration::from_secs(1)).await.unwrap();
    assert!(left >= Duration::from_secs(1));
    assert!(backend_alive(&cluster, leader.backend_pid));
    ns.delay(Duration::ZERO);
    held.release().await;
}

async fn next_change(feed: &mut ChangeFeed, id: &str, within: Duration) -> Vec<FeedEvent> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let event = tokio::time::timeout_at(deadline, feed.recv())
            .await
            .unwrap_or_else(|_| panic!("no change of {id} within {within:?}; saw {seen:?}"))
            .expect("feed ended");
        let done = matches!(&event, FeedEvent::Change(c) if c.id == id);
        seen.push(event);
        if done {
            return seen;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_feed_reports_disconnected_and_resyncs_in_order_after_the_heal() {
    let (ns, cluster) = cluster_in_namespace();
    let (writer, key) = init(&cluster).await;
    let watcher = join_as(&cluster.netns_config("postgres"), &key, "desk-watch").await;
    let from = watcher.current_version().await.unwrap();
    let mut feed = watcher.feed(from);
    assert!(matches!(
        feed.recv().await,
        Some(FeedEvent::Connected { .. })
    ));
    with_connection(&writer, "c1").await;
    next_change(&mut feed, "c1", Duration::from_secs(5)).await;

    let cut = Instant::now();
    ns.cut();
    // A change while the feed does not know yet, then wait for it to find out.
    with_connection(&writer, "c2").await;
    // The next event: nothing can come through the cut link before the feed finds out.
    let e = tokio::time::timeout(Duration::from_secs(60), feed.recv())
        .await
        .expect("no Disconnected within 60 s of the cut")
        .unwrap();
    match e {
        FeedEvent::Disconnected { error } => {
            assert_eq!(error.code, ErrorCode::TeamUnavailable, "{error:?}")
        }
        FeedEvent::Change(c) => panic!("a change came through a cut link: {c:?}"),
        FeedEvent::Connected { .. } => panic!("connected through a cut link"),
    }
    println!(
        "the cut-off feed reported Disconnected {:?} after the cut",
        cut.elapsed()
    );
    // More while it is away: a removal and another connection.
    writer.remove_connection("c1", None).await.unwrap();
    with_connection(&writer, "c3").await;
    let last = writer.current_version().await.unwrap();

    let healed = Instant::now();
    ns.heal();
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let caught_up = loop {
        let e = tokio::time::timeout_at(deadline, feed.recv())
            .await
            .unwrap_or_else(|_| panic!("not caught up 30 s after the heal; saw {events:?}"))
            .unwrap();
        match e {
            FeedEvent::Connected { version } => break version,
            FeedEvent::Disconnected { .. } => {} // a retry still under way at the heal
            FeedEvent::Change(c) => events.push(c),
        }
    };
    println!(
        "after the heal the feed caught up in {:?}",
        healed.elapsed()
    );
    assert_eq!(caught_up, last);
    let seen: Vec<(&str, Option<bool>)> =
        events.iter().map(|c| (c.id.as_str(), c.deleted)).collect();
    assert_eq!(
        seen,
        [("c2", Some(false)), ("c1", Some(true)), ("c3", Some(false))],
        "every change made while cut off, from the resync, in version order"
    );
    assert!(
        events.windows(2).all(|w| w[0].version < w[1].version),
        "{events:?}"
    );
    // And live again.
    with_connection(&writer, "c4").await;
    next_change(&mut feed, "c4", Duration::from_secs(5)).await;
}

/// A commit from the cut side whose COMMIT reached the server and is held there (a
/// deferred constraint trigger waits on an advisory lock the test holds) when the link
/// is cut. Then the server either completes it (`lands`) or the session is terminated.
async fn commit_cut_in_flight(lands: bool) {
    let (ns, cluster) = cluster_in_namespace();
    let (admin, key) = init(&cluster).await;
    with_connection(&admin, "c1").await;
    let cut_side = join_as(&cluster.netns_config("postgres"), &key, "desk-cut").await;
    cluster.psql(
        "postgres",
        "CREATE FUNCTION public.hold_commit() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN PERFORM pg_advisory_xact_lock(777); RETURN NULL; END $$;
         CREATE CONSTRAINT TRIGGER hold_commit AFTER INSERT ON authdeck.token_sets
           DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION public.hold_commit();",
    );
    let blocker = DbConfig::parse(&cluster.socket_config("postgres"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    blocker
        .batch_execute("SELECT pg_advisory_lock(777)")
        .await
        .unwrap();

    let committing = {
        let cut_side = cut_side.clone();
        tokio::spawn(async move {
            let r = cut_side
                .commit(&CommitRequest {
                    connection_id: "c1",
                    expected_generation: 1,
                    token_set: b"gen-2",
                    record: &json!({}),
                    refreshed: true,
                    history: None,
                })
                .await;
            (r, Instant::now())
        })
    };
    // Wait until the server holds the COMMIT.
    let sql = format!(
        "SELECT pid FROM pg_stat_activity WHERE client_addr = '{}' AND query = 'COMMIT'
           AND wait_event_type = 'Lock'",
        ns.host_addr()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let pid: i32 = loop {
        if let Ok(pid) = cluster.psql("postgres", &sql).trim().parse() {
            break pid;
        }
        assert!(
            Instant::now() < deadline,
            "the COMMIT never reached the server"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let cut = Instant::now();
    ns.cut();
    if lands {
        // The server completes the COMMIT; its answer is lost on the cut link.
        blocker
            .batch_execute("SELECT pg_advisory_unlock(777)")
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while backend_alive(&cluster, pid)
            && cluster
                .psql(
                    "postgres",
                    &format!("SELECT wait_event_type FROM pg_stat_activity WHERE pid = {pid}"),
                )
                .trim()
                == "Lock"
        {
            assert!(Instant::now() < deadline, "the COMMIT did not complete");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Seen from the socket: the new generation landed, whole.
        let (generation, ts) = admin.token_set("c1").await.unwrap().unwrap();
        assert_eq!((generation, ts.as_slice()), (2, &b"gen-2"[..]));
    } else {
        // The session is lost with the COMMIT held: the transaction rolls back.
        assert_eq!(
            cluster
                .psql("postgres", &format!("SELECT pg_terminate_backend({pid})"))
                .trim(),
            "t"
        );
    }
    // The client, cut off, cannot know the outcome: `team_unavailable`, never a success
    // or a "lost" it did not see. (With the link kept cut when the COMMIT landed, it
    // waits for TCP keepalive to give up on the silent session; after a rollback the
    // heal lets the server's goodbye through.)
    if !lands {
        ns.heal();
    }
    let (result, answered_at) = tokio::time::timeout(Duration::from_secs(90), committing)
        .await
        .expect("the cut-off commit never returned")
        .unwrap();
    let e = result.expect_err("a commit whose answer was lost cannot report an outcome");
    assert_eq!(e.code, ErrorCode::TeamUnavailable, "{e:?}");
    println!(
        "commit cut in flight ({}): the client got team_unavailable {:?} after the cut",
        if lands { "landed" } else { "rolled back" },
        answered_at - cut
    );
    ns.heal();
    blocker
        .batch_execute("SELECT pg_advisory_unlock_all()")
        .await
        .unwrap();

    // Re-read after the heal (over the healed link): the old or the new generation,
    // each with its own token set, never a mix.
    let (generation, ts) = cut_side.token_set("c1").await.unwrap().unwrap();
    let want: (i64, &[u8]) = if lands { (2, b"gen-2") } else { (1, b"gen-1") };
    assert_eq!((generation, ts.as_slice()), want);
    let row = cut_side.connection("c1").await.unwrap().unwrap();
    assert_eq!(row.generation, generation);
    let rows = cluster.psql(
        "postgres",
        "SELECT count(*), min(generation) FROM authdeck.token_sets WHERE connection_id = 'c1'",
    );
    assert_eq!(
        rows.trim(),
        format!("1|{generation}"),
        "one token set, the current one"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_cut_in_flight_that_landed_reads_back_whole_after_the_heal() {
    commit_cut_in_flight(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_cut_in_flight_that_rolled_back_reads_back_whole_after_the_heal() {
    commit_cut_in_flight(false).await;
}

#[test]
fn namespaces_are_removed_on_drop_even_when_the_test_panics() {
    let name = std::panic::catch_unwind(|| {
        let ns = Netns::new();
        let name = ns.name().to_string();
        // Unwind as a failing test would (resume_unwind: without the panic message).
        std::panic::resume_unwind(Box::new(name));
    })
    .unwrap_err()
    .downcast::<String>()
    .map(|b| *b)
    .unwrap();
    assert!(name.starts_with(&format!("adt-{}-", std::process::id())));
    let list = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(
        !list
            .lines()
            .any(|l| l.split_whitespace().next() == Some(&name)),
        "{name} is still there: {list}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_sent_into_a_cut_link_fails_within_seconds_not_minutes() {
    // Unacknowledged data is not covered by TCP keepalive: without a TCP user timeout
    // the kernel retransmits for ~15 minutes before the caller hears anything.
    let (ns, cluster) = cluster_in_namespace();
    let (_admin, key) = init(&cluster).await;
    let cut_side = join_as(&cluster.netns_config("postgres"), &key, "desk-cut").await;
    cut_side.current_version().await.unwrap();
    ns.cut();
    let asked = Instant::now();
    let answer = tokio::time::timeout(Duration::from_secs(30), cut_side.current_version())
        .await
        .unwrap_or_else(|_| panic!("a request sent into a cut link was still waiting after 30 s"));
    let e = answer.expect_err("an answer came through a cut link");
    assert_eq!(e.code, ErrorCode::TeamUnavailable, "{e:?}");
    println!(
        "a request sent into a cut link failed after {:?}",
        asked.elapsed()
    );
    ns.heal();
    // The pool recovers on the healed link.
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Err(e) = cut_side.current_version().await {
        assert!(
            Instant::now() < deadline,
            "no session after the heal: {e:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_cut_off_mid_transaction_does_not_keep_the_team_locked() {
    // Every write locks the team row first. A writer cut off between two statements of
    // its transaction leaves the server's session "idle in transaction" with that lock;
    // the server must end it soon, or every desktop's writes wait for the server's own
    // TCP keepalive (two hours by default).
    let (ns, cluster) = cluster_in_namespace();
    let (admin, key) = init(&cluster).await;
    with_connection(&admin, "c1").await;
    let cut_side = join_as(&cluster.netns_config("postgres"), &key, "desk-cut").await;
    // Hold the cut side's UPDATE (after it locked the team row) until the link is cut.
    cluster.psql(
        "postgres",
        "CREATE FUNCTION public.hold_update() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN PERFORM pg_advisory_xact_lock(778); RETURN NEW; END $$;
         CREATE TRIGGER hold_update BEFORE UPDATE ON authdeck.connections
           FOR EACH ROW EXECUTE FUNCTION public.hold_update();",
    );
    let blocker = DbConfig::parse(&cluster.socket_config("postgres"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    blocker
        .batch_execute("SELECT pg_advisory_lock(778)")
        .await
        .unwrap();
    let committing = {
        let cut_side = cut_side.clone();
        tokio::spawn(async move {
            cut_side
                .commit(&CommitRequest {
                    connection_id: "c1",
                    expected_generation: 1,
                    token_set: b"gen-2",
                    record: &json!({}),
                    refreshed: true,
                    history: None,
                })
                .await
        })
    };
    let sql = format!(
        "SELECT pid FROM pg_stat_activity WHERE client_addr = '{}' AND query LIKE 'UPDATE authdeck.connections%'
           AND wait_event_type = 'Lock'",
        ns.host_addr()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let pid: i32 = loop {
        if let Ok(pid) = cluster.psql("postgres", &sql).trim().parse() {
            break pid;
        }
        assert!(
            Instant::now() < deadline,
            "the UPDATE never reached the server"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let cut = Instant::now();
    ns.cut();
    // The UPDATE completes; its answer is lost; the session waits for a COMMIT that
    // cannot come, holding the team row.
    blocker
        .batch_execute("SELECT pg_advisory_unlock(778)")
        .await
        .unwrap();
    // A writer on the socket (it does not touch connections, so the trigger is moot).
    let written = tokio::time::timeout(
        Duration::from_secs(60),
        admin.put_client("fb", &json!({}), None),
    )
    .await
    .unwrap_or_else(|_| panic!("the team stayed locked by a cut-off writer for 60 s"));
    written.unwrap();
    let took = cut.elapsed();
    println!("a writer cut off mid-transaction held the team for {took:?}");
    assert!(
        !backend_alive(&cluster, pid),
        "the server ended the cut-off session"
    );
    let e = tokio::time::timeout(Duration::from_secs(60), committing)
        .await
        .expect("the cut-off commit never returned")
        .unwrap()
        .expect_err("a commit whose session was lost cannot report an outcome");
    assert_eq!(e.code, ErrorCode::TeamUnavailable, "{e:?}");
    ns.heal();
    let (generation, ts) = admin.token_set("c1").await.unwrap().unwrap();
    assert_eq!(
        (generation, ts.as_slice()),
        (1, &b"gen-1"[..]),
        "rolled back whole"
    );
}

#[test]
fn what_a_dead_test_process_left_behind_is_swept() {
    let ip = |args: &[&str]| {
        let out = std::process::Command::new("ip")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // A process that is gone: its namespace, a veth pair it had not moved yet, its slot.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    assert!(!std::path::Path::new(&format!("/proc/{dead}")).exists());
    let name = format!("adt-{dead}-0");
    ip(&["netns", "add", &name]);
    let (host_if, ns_if) = (format!("adt{dead}h0"), format!("adt{dead}n0"));
    ip(&[
        "link", "add", &host_if, "type", "veth", "peer", "name", &ns_if,
    ]);
    std::fs::create_dir_all(authdeck_team::testing::netns::SLOT_DIR).unwrap();
    let slot =
        std::path::Path::new(authdeck_team::testing::netns::SLOT_DIR).join(format!("slot-t{dead}"));
    std::fs::write(&slot, &name).unwrap();
    // And one of a live process (this one), which stays.
    let live = Netns::new();

    authdeck_team::testing::netns::sweep_stale();
    let namespaces = ip(&["netns", "list"]);
    let names: Vec<&str> = namespaces
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(!names.contains(&name.as_str()), "{namespaces}");
    assert!(names.contains(&live.name()), "{namespaces}");
    assert!(!std::path::Path::new(&format!("/sys/class/net/{host_if}")).exists());
    assert!(!std::path::Path::new(&format!("/sys/class/net/{ns_if}")).exists());
    assert!(!slot.exists());
}
