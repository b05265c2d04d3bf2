//! Refresh locks, leadership, the change feed and failover on a real PostgreSQL.

use std::time::{Duration, Instant};

use authdeck_core::ErrorCode;
use authdeck_team::testing::PgCluster;
use authdeck_team::{
    ChangeFeed, ChangeKind, CommitOutcome, CommitRequest, DbConfig, FeedEvent, JoinKey, Leadership,
    TeamStore, Via,
};
use serde_json::json;

async fn init(cluster: &PgCluster, machine: &str) -> (TeamStore, JoinKey) {
    let db = DbConfig::parse(&cluster.tcp_config("postgres")).unwrap();
    TeamStore::init(&db, "Firm", machine, Via::Desktop)
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

fn terminate(cluster: &PgCluster, pid: i32) {
    assert_eq!(
        cluster
            .psql("postgres", &format!("SELECT pg_terminate_backend({pid})"))
            .trim(),
        "t"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_lock_is_exclusive_bounded_and_re_reads_after_taking_it() {
    let cluster = PgCluster::start();
    let (a, key) = init(&cluster, "desk-a").await;
    let b = join_as(&cluster.tcp_config("postgres"), &key, "desk-b").await;
    with_connection(&a, "c1").await;
    with_connection(&a, "c2").await;

    let held = a.lock_refresh("c1", Duration::from_secs(1)).await.unwrap();
    assert_eq!(held.generation(), 1);
    let left = held.ensure(Duration::from_secs(1)).await.unwrap();
    assert!(left > Duration::from_secs(1), "{left:?}");
    let too_long = held.ensure(Duration::from_secs(60)).await.unwrap_err();
    assert_eq!(
        too_long.code,
        ErrorCode::Busy,
        "the lock is not promised for a minute"
    );

    // Another machine waits at most the bound, then gets `busy`.
    let started = Instant::now();
    let e = b
        .lock_refresh("c1", Duration::from_millis(300))
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::Busy, "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // Other connections are not blocked.
    b.lock_refresh("c2", Duration::ZERO)
        .await
        .unwrap()
        .release()
        .await;
    assert_eq!(
        b.lock_refresh("nope", Duration::ZERO)
            .await
            .unwrap_err()
            .code,
        ErrorCode::NotFound
    );

    // The holder commits and lets go while the other waits: the waiter gets the lock
    // and sees the committed generation.
    let waiter = {
        let b = b.clone();
        tokio::spawn(async move { b.lock_refresh("c1", Duration::from_secs(10)).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let won = a
        .commit(&CommitRequest {
            connection_id: "c1",
            expected_generation: held.generation(),
            token_set: b"gen-2",
            record: &json!({}),
            refreshed: true,
            history: None,
        })
        .await
        .unwrap();
    assert!(matches!(won, CommitOutcome::Won { generation: 2, .. }));
    held.release().await;
    let second = waiter.await.unwrap().unwrap();
    assert_eq!(second.generation(), 2, "re-read after taking the lock");
    second.release().await;

    // A released lock's session is reused, and the lock can be taken again at once.
    a.lock_refresh("c1", Duration::ZERO)
        .await
        .unwrap()
        .release()
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_won_after_a_long_wait_starts_with_its_whole_floor() {
    // The floor runs from the last statement the server answered, not from when the
    // wait for the lock began: a waiter that got the lock after longer than the floor
    // must not think it lost it at once (nor a standby that waited to lead).
    let cluster = PgCluster::start();
    let (a, key) = init(&cluster, "desk-a").await;
    let b = join_as(&cluster.tcp_config("postgres"), &key, "desk-b").await;
    with_connection(&a, "c1").await;
    let held = a.lock_refresh("c1", Duration::ZERO).await.unwrap();
    let leader = Leadership::acquire(&a, Duration::ZERO)
        .await
        .unwrap()
        .unwrap();
    let waiter = {
        let b = b.clone();
        tokio::spawn(async move { b.lock_refresh("c1", Duration::from_secs(30)).await })
    };
    let standby = {
        let b = b.clone();
        tokio::spawn(async move { Leadership::acquire(&b, Duration::from_secs(30)).await })
    };
    // Longer than both floors (5 s and 3 s).
    tokio::time::sleep(Duration::from_secs(6)).await;
    held.release().await;
    leader.release().await;
    let taken = waiter.await.unwrap().unwrap();
    assert!(
        taken.time_left() > Duration::from_secs(2),
        "{:?}",
        taken.time_left()
    );
    let leads = standby.await.unwrap().unwrap().expect("the standby leads");
    assert!(leads.is_leader(), "a standby that waited long still leads");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_holders_lock_is_released_by_the_server() {
    let cluster = PgCluster::start();
    let (a, key) = init(&cluster, "desk-a").await;
    let b = join_as(&cluster.tcp_config("postgres"), &key, "desk-b").await;
    with_connection(&a, "c1").await;

    // The holder's backend is killed (as when its machine's session is cut).
    let held = a.lock_refresh("c1", Duration::ZERO).await.unwrap();
    assert_eq!(
        b.lock_refresh("c1", Duration::ZERO).await.unwrap_err().code,
        ErrorCode::Busy
    );
    terminate(&cluster, held.backend_pid());
    let started = Instant::now();
    let taken = b.lock_refresh("c1", Duration::from_secs(5)).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    // The old holder finds out before it calls the provider.
    let e = held.ensure(Duration::from_millis(1)).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::TeamUnavailable, "{e:?}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !held.time_left().is_zero() {
        assert!(
            Instant::now() < deadline,
            "time_left stays positive on a dead session"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(held);

    // The holder goes away without releasing (its process died: the session closes).
    let pid = taken.backend_pid();
    drop(taken);
    let started = Instant::now();
    let again = a.lock_refresh("c1", Duration::from_secs(5)).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_ne!(again.backend_pid(), pid);
    again.release().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_scheduler_leads_within_10_s_when_the_leader_dies() {
    let cluster = PgCluster::start();
    let (a, key) = init(&cluster, "agent-a").await;
    let b = join_as(&cluster.tcp_config("postgres"), &key, "agent-b").await;
    let c = join_as(&cluster.socket_config("postgres"), &key, "agent-c").await;

    let leader = Leadership::acquire(&a, Duration::ZERO)
        .await
        .unwrap()
        .expect("first one leads");
    assert!(leader.is_leader());
    leader.confirm().await.unwrap();
    assert!(Leadership::acquire(&b, Duration::ZERO)
        .await
        .unwrap()
        .is_none());
    let recorded = authdeck_team::lock::current_leader(&a)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (recorded.1.as_str(), recorded.2),
        ("agent-a", leader.backend_pid())
    );

    // Two standbys wait; the leader's backend dies.
    let standby = |s: TeamStore| {
        tokio::spawn(async move { Leadership::acquire(&s, Duration::from_secs(15)).await })
    };
    let (sb, sc) = (standby(b.clone()), standby(c.clone()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let killed = Instant::now();
    terminate(&cluster, leader.backend_pid());
    let first = tokio::select! {
        r = sb => ("agent-b", r.unwrap().unwrap()),
        r = sc => ("agent-c", r.unwrap().unwrap()),
    };
    let took = killed.elapsed();
    let new_leader = first.1.expect("a standby leads");
    assert!(took < Duration::from_secs(10), "took over after {took:?}");
    println!("leadership moved to {} in {took:?}", first.0);
    assert!(new_leader.is_leader());
    // The old leader knows it no longer leads.
    assert!(leader.confirm().await.is_err());
    let deadline = Instant::now() + Duration::from_secs(5);
    while leader.is_leader() {
        assert!(
            Instant::now() < deadline,
            "the dead leader still believes it leads"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let recorded = authdeck_team::lock::current_leader(&a)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(recorded.1, first.0);
    // Exactly one leads: the other standby is still waiting or gave up, never both.
    assert!(Leadership::acquire(&a, Duration::ZERO)
        .await
        .unwrap()
        .is_none());
    new_leader.release().await;
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
async fn the_feed_shows_changes_live_and_resyncs_what_it_missed_while_away() {
    let cluster = PgCluster::start();
    let (writer, key) = init(&cluster, "desk-a").await;
    // The watching desktop logs in with its own role, so the test can lock it out.
    cluster.psql(
        "postgres",
        "CREATE ROLE watcher LOGIN; GRANT USAGE ON SCHEMA authdeck TO watcher;
         GRANT SELECT ON ALL TABLES IN SCHEMA authdeck TO watcher;",
    );
    let watcher_address = format!(
        "host=127.0.0.1 port={} user=watcher dbname=postgres",
        cluster.port()
    );
    let watcher = join_as(&watcher_address, &key, "desk-b").await;
    let from = watcher.current_version().await.unwrap();
    let mut feed = watcher.feed(from);
    assert!(matches!(
        feed.recv().await,
        Some(FeedEvent::Connected { .. })
    ));

    let started = Instant::now();
    with_connection(&writer, "c1").await;
    let events = next_change(&mut feed, "c1", Duration::from_secs(5)).await;
    println!("live change seen in {:?}", started.elapsed());
    let FeedEvent::Change(c1) = events.last().unwrap() else {
        unreachable!()
    };
    assert_eq!(c1.kind, ChangeKind::Connection);
    assert!(c1.version > from);

    // Cut the feed's session and keep it out while c2 is connected and c1 removed.
    cluster.psql(
        "postgres",
        "ALTER ROLE watcher NOLOGIN;
         SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'watcher';",
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let e = tokio::time::timeout_at(deadline, feed.recv())
            .await
            .expect("no Disconnected")
            .unwrap();
        if matches!(e, FeedEvent::Disconnected { .. }) {
            break;
        }
    }
    with_connection(&writer, "c2").await;
    writer.remove_connection("c1", None).await.unwrap();
    let last = writer.current_version().await.unwrap();
    cluster.psql("postgres", "ALTER ROLE watcher LOGIN");

    let events = next_change(&mut feed, "c2", Duration::from_secs(15)).await;
    let Some(FeedEvent::Change(c2)) = events.last() else {
        unreachable!()
    };
    assert_eq!(
        c2.deleted,
        Some(false),
        "c2 came from the resync, not a notification"
    );
    let mut versions: Vec<i64> = events
        .iter()
        .filter_map(|e| match e {
            FeedEvent::Change(c) => Some(c.version),
            _ => None,
        })
        .collect();
    // c1's tombstone follows c2 in version order.
    let rest = next_change(&mut feed, "c1", Duration::from_secs(5)).await;
    let Some(FeedEvent::Change(tomb)) = rest.last() else {
        unreachable!()
    };
    assert_eq!(tomb.deleted, Some(true), "the resync says c1 was removed");
    versions.push(tomb.version);
    assert!(
        versions.windows(2).all(|w| w[0] < w[1]),
        "in order, no repeats: {versions:?}"
    );
    assert_eq!(tomb.version, last);
    assert!(
        matches!(feed.recv().await, Some(FeedEvent::Connected { version }) if version == last),
        "caught up to the last version"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_host_address_follows_the_primary_through_a_promotion() {
    let mut primary = PgCluster::start();
    let standby = primary.standby();
    standby.wait_recovery(true, Duration::from_secs(30));
    // The standby first: read-write sends every session to the primary.
    let address = format!(
        "host=127.0.0.1,127.0.0.1 port={},{} user=postgres dbname=postgres target_session_attrs=read-write connect_timeout=3",
        standby.port(),
        primary.port()
    );
    let db = DbConfig::parse(&address).unwrap();
    let (store, _) = TeamStore::init(&db, "Firm", "desk-a", Via::Desktop)
        .await
        .unwrap();
    with_connection(&store, "c1").await;
    let won = store
        .commit(&CommitRequest {
            connection_id: "c1",
            expected_generation: 1,
            token_set: b"gen-2",
            record: &json!({}),
            refreshed: true,
            history: None,
        })
        .await
        .unwrap();
    assert!(matches!(won, CommitOutcome::Won { .. }));
    // Wait until the standby has replayed everything committed, then lose the primary.
    let lsn = primary.psql("postgres", "SELECT pg_current_wal_lsn()");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let caught_up = standby.psql(
            "postgres",
            &format!(
                "SELECT pg_last_wal_replay_lsn() >= '{}'::pg_lsn",
                lsn.trim()
            ),
        );
        if caught_up.trim() == "t" {
            break;
        }
        assert!(Instant::now() < deadline, "the standby did not catch up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    primary.kill();
    standby.promote();
    standby.wait_recovery(false, Duration::from_secs(30));

    let deadline = Instant::now() + Duration::from_secs(30);
    let (generation, ts) = loop {
        match store.token_set("c1").await {
            Ok(found) => break found.unwrap(),
            Err(e) => {
                assert_eq!(e.code, ErrorCode::TeamUnavailable, "{e:?}");
                assert!(
                    Instant::now() < deadline,
                    "no session to the promoted standby: {e:?}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    assert_eq!(
        (generation, ts.as_slice()),
        (2, &b"gen-2"[..]),
        "nothing committed was lost"
    );
    // And it takes writes.
    let won = store
        .commit(&CommitRequest {
            connection_id: "c1",
            expected_generation: 2,
            token_set: b"gen-3",
            record: &json!({}),
            refreshed: true,
            history: None,
        })
        .await
        .unwrap();
    assert!(matches!(won, CommitOutcome::Won { generation: 3, .. }));
}

/// A leader in a process of its own (src/bin/authdeck-team-test-leader.rs).
struct LeaderProcess {
    child: std::process::Child,
    backend_pid: i32,
}

impl LeaderProcess {
    fn start(address: &str, join: &JoinKey) -> Self {
        use std::io::{BufRead, Write};
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
        Self { child, backend_pid }
    }

    fn signal(&self, signal: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).unwrap();
        rustix::process::kill_process(pid, signal).unwrap();
    }
}

impl Drop for LeaderProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn standby_takes_over_when(signal: rustix::process::Signal) -> Duration {
    let cluster = PgCluster::start();
    let (store, key) = init(&cluster, "agent-b").await;
    let leader = LeaderProcess::start(&cluster.tcp_config("postgres"), &key);
    assert!(Leadership::acquire(&store, Duration::ZERO)
        .await
        .unwrap()
        .is_none());
    let recorded = authdeck_team::lock::current_leader(&store)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (recorded.1.as_str(), recorded.2),
        ("leader-process", leader.backend_pid)
    );

    let waiting = {
        let store = store.clone();
        tokio::spawn(async move { Leadership::acquire(&store, Duration::from_secs(20)).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let cut = Instant::now();
    leader.signal(signal);
    let new_leader = waiting.await.unwrap().unwrap().expect("the standby leads");
    let took = cut.elapsed();
    assert!(new_leader.is_leader());
    let recorded = authdeck_team::lock::current_leader(&store)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(recorded.2, new_leader.backend_pid());
    // The old leader's session is gone from the server.
    let alive = cluster.psql(
        "postgres",
        &format!(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = {}",
            leader.backend_pid
        ),
    );
    assert_eq!(alive.trim(), "0");
    took
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_leads_within_10_s_when_the_leader_process_is_killed_9() {
    let took = standby_takes_over_when(rustix::process::Signal::KILL).await;
    println!("kill -9: a standby led after {took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_leads_within_10_s_when_the_leader_process_freezes() {
    // SIGSTOP: the process says nothing more, but its kernel still holds the socket and
    // answers keepalives — as a hung or cut-off leader. The server's idle timeout ends it.
    let took = standby_takes_over_when(rustix::process::Signal::STOP).await;
    println!("frozen leader: a standby led after {took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert!(
        took >= Duration::from_secs(2),
        "not before the floor the leader relies on: {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_holder_that_stops_talking_loses_the_lock_no_sooner_than_its_floor() {
    let cluster = PgCluster::start();
    let (a, key) = init(&cluster, "desk-a").await;
    let b = join_as(&cluster.tcp_config("postgres"), &key, "desk-b").await;
    with_connection(&a, "c1").await;
    let held = a.lock_refresh("c1", Duration::ZERO).await.unwrap();
    // Freeze the holder's session as a hung process would: no statement, no heartbeat.
    // (A held lock whose heartbeat keeps running is never taken away: see above.)
    let pid = held.backend_pid();
    let started = Instant::now();
    let frozen = held.freeze_for_test();
    let taken = b.lock_refresh("c1", Duration::from_secs(15)).await.unwrap();
    let took = started.elapsed();
    println!("a silent holder lost the lock after {took:?}");
    assert!(
        took >= Duration::from_secs(4),
        "taken away before the floor: {took:?}"
    );
    assert!(took < Duration::from_secs(10), "{took:?}");
    let alive = cluster.psql(
        "postgres",
        &format!("SELECT count(*) FROM pg_stat_activity WHERE pid = {pid}"),
    );
    assert_eq!(alive.trim(), "0");
    assert!(frozen.ensure(Duration::from_millis(1)).await.is_err());
    taken.release().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refreshers_on_three_machines_never_refresh_one_connection_at_once() {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    let cluster = PgCluster::start();
    let (a, key) = init(&cluster, "m1").await;
    let b = join_as(&cluster.tcp_config("postgres"), &key, "m2").await;
    let c = join_as(&cluster.socket_config("postgres"), &key, "m3").await;
    const CONNECTIONS: usize = 8;
    const ROUNDS: usize = 4;
    for i in 0..CONNECTIONS {
        with_connection(&a, &format!("c{i}")).await;
    }
    // Per connection: how many refreshers are between "lock taken" and "released".
    let in_flight: Arc<HashMap<String, AtomicUsize>> = Arc::new(
        (0..CONNECTIONS)
            .map(|i| (format!("c{i}"), AtomicUsize::new(0)))
            .collect(),
    );
    let overlaps = Arc::new(AtomicUsize::new(0));
    let wins = Arc::new(Mutex::new(HashMap::<String, usize>::new()));
    let mut tasks = Vec::new();
    for store in [a.clone(), b.clone(), c.clone()] {
        for worker in 0..2 {
            let (store, in_flight, overlaps, wins) = (
                store.clone(),
                in_flight.clone(),
                overlaps.clone(),
                wins.clone(),
            );
            tasks.push(tokio::spawn(async move {
                for round in 0..ROUNDS {
                    for i in 0..CONNECTIONS {
                        // Each worker walks the connections from its own offset.
                        let id = format!("c{}", (i + worker * 3 + round) % CONNECTIONS);
                        let lock = store
                            .lock_refresh(&id, Duration::from_secs(30))
                            .await
                            .unwrap();
                        if in_flight[&id].fetch_add(1, Ordering::SeqCst) != 0 {
                            overlaps.fetch_add(1, Ordering::SeqCst);
                        }
                        lock.ensure(Duration::from_secs(1)).await.unwrap();
                        let (generation, _) = store.token_set(&id).await.unwrap().unwrap();
                        assert_eq!(
                            generation,
                            lock.generation(),
                            "the re-read generation is current"
                        );
                        tokio::time::sleep(Duration::from_millis(2)).await; // the provider call
                        let next = format!("gen-{}", generation + 1);
                        let outcome = store
                            .commit(&CommitRequest {
                                connection_id: &id,
                                expected_generation: lock.generation(),
                                token_set: next.as_bytes(),
                                record: &json!({}),
                                refreshed: true,
                                history: None,
                            })
                            .await
                            .unwrap();
                        assert!(
                            matches!(outcome, CommitOutcome::Won { .. }),
                            "{id}: {outcome:?}"
                        );
                        in_flight[&id].fetch_sub(1, Ordering::SeqCst);
                        *wins.lock().unwrap().entry(id).or_default() += 1;
                        lock.release().await;
                    }
                }
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        overlaps.load(Ordering::SeqCst),
        0,
        "two refreshers held one connection at once"
    );
    let wins = wins.lock().unwrap().clone();
    let mut total = 0;
    for i in 0..CONNECTIONS {
        let id = format!("c{i}");
        let (generation, ts) = a.token_set(&id).await.unwrap().unwrap();
        let won = wins.get(&id).copied().unwrap_or(0);
        assert_eq!(
            generation as usize,
            1 + won,
            "{id}: every win is one generation, none lost"
        );
        assert_eq!(
            ts.as_slice(),
            format!("gen-{generation}").as_bytes(),
            "{id}: the newest token set"
        );
        total += won;
    }
    assert_eq!(total, 3 * 2 * ROUNDS * CONNECTIONS);
}
