//! A refresher's link to PostgreSQL cut (issue 13 §1, §6 "Partition"): whole managers
//! (`authdeck_core::manager::Manager` on a `TeamBackend`) refreshing FlowAccount
//! connections at the emulator (reuse detection on), the refresher ("A") reaching the
//! database over a veth pair the test cuts (`testing::netns`), another machine ("B") over
//! the server's Unix socket, which is never cut. The emulator's latency holds the
//! provider call open, so the cut falls between the call and its answer by construction
//! (the test cuts once the emulator has the request), never by luck.
//!
//! FIGURES

use std::sync::Arc;
use std::time::{Duration, Instant};

use authdeck_core::journal::JournalConfig;
use authdeck_core::manager::{LocalParts, Manager, ManagerOptions, NewClient};
use authdeck_core::model::{Connection, ConnectionState, Provider};
use authdeck_core::store::backend::Backend;
use authdeck_core::store::db::Db;
use authdeck_core::store::keyring::MemoryStore;
use authdeck_core::{ClientSecret, ErrorCode};
use authdeck_emulator::{Control, EmulatorConfig, RunningEmulator, TokenStatus};
use authdeck_team::testing::netns::Netns;
use authdeck_team::testing::{PgCluster, PgOptions};
use authdeck_team::{DbConfig, JoinKey, TeamBackend, TeamStore, Via};

/// The refresh lock's floor (lock.rs: `idle_session_timeout` of its session).
const REFRESH_FLOOR: Duration = Duration::from_secs(5);
/// How long the emulator holds each provider call: the cut falls inside it.
const CALL: Duration = Duration::from_secs(3);

/// One desktop or agent: a manager on the team store, this machine's own parts (the
/// answer journal, its key in an in-memory keyring) in a directory of its own.
struct Machine {
    manager: Manager,
    backend: Arc<TeamBackend>,
    dir: tempfile::TempDir,
}

async fn machine(address: &str, join: &JoinKey, name: &str, concurrency: usize) -> Machine {
    let db = DbConfig::parse(address).unwrap();
    let (team, key) = JoinKey::decode(join.expose()).unwrap();
    let store = TeamStore::open(&db, &team, key, name, Via::Agent)
        .await
        .unwrap();
    let backend = Arc::new(
        TeamBackend::open(store, Duration::from_secs(30))
            .await
            .unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let options = ManagerOptions {
        refresh_concurrency: concurrency,
        lock_wait: Duration::from_secs(30),
        journal: Some(JournalConfig {
            dir: dir.path().join("journal"),
            store: format!("partition-{name}"),
        }),
        ..ManagerOptions::default()
    };
    let db = Db::open(&dir.path().join("authdeck.sqlite3")).unwrap();
    let local = LocalParts::new(db, Arc::new(MemoryStore::new()), &options);
    let manager = Manager::with_backend(backend.clone(), local, options).unwrap();
    Machine {
        manager,
        backend,
        dir,
    }
}

impl Machine {
    /// Whether this machine's answer journal holds an entry (a file in it).
    fn journal_entries(&self) -> usize {
        match std::fs::read_dir(self.dir.path().join("journal")) {
            Ok(dir) => dir
                .filter_map(|e| e.ok())
                .filter(|e| e.path().is_file())
                .count(),
            Err(_) => 0,
        }
    }

    async fn stored_refresh_token(&self, id: &str) -> (Connection, String) {
        let conn = self.backend.connection(id).await.unwrap();
        let tokens = self.backend.tokens(&conn).await.unwrap().unwrap();
        let refresh = tokens.refresh_token.unwrap().expose().to_string();
        (conn, refresh)
    }

    async fn history(&self, id: &str) -> Vec<String> {
        self.backend
            .history(Some(id), 100)
            .await
            .unwrap()
            .into_iter()
            .map(|h| format!("{} {} {}", h.event, h.outcome, h.detail.unwrap_or_default()))
            .collect()
    }
}

/// A team in a cluster in its own namespace; A over the cuttable link, B over the
/// socket; the FlowAccount client, and `businesses` connected (through B).
struct World {
    ns: Netns,
    cluster: PgCluster,
    emulator: RunningEmulator,
    a: Machine,
    b: Machine,
    connections: Vec<Connection>,
}

async fn world(businesses: &[&str], a_concurrency: usize) -> World {
    let ns = Netns::new();
    let cluster = PgCluster::start_with(PgOptions {
        netns: Some(ns.clone()),
        ..PgOptions::default()
    });
    let admin = DbConfig::parse(&cluster.socket_config("postgres")).unwrap();
    let (_, join) = TeamStore::init(&admin, "Firm", "admin", Via::Desktop)
        .await
        .unwrap();
    let emulator = authdeck_emulator::start(EmulatorConfig::demo(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let a = machine(
        &cluster.netns_config("postgres"),
        &join,
        "desk-a",
        a_concurrency,
    )
    .await;
    let b = machine(&cluster.socket_config("postgres"), &join, "desk-b", 4).await;
    let mut fa = NewClient::new("fa", Provider::FlowAccount, "demo-flowaccount");
    fa.client_secret = Some(ClientSecret::new("demo-flowaccount-secret"));
    fa.authorize_url = Some(emulator.flowaccount_authorize_url());
    fa.token_url = Some(emulator.flowaccount_token_url());
    b.manager.add_client(fa).await.unwrap();
    let mut connections = Vec::new();
    for business in businesses {
        let pending = b.manager.begin_flowaccount("fa").await.unwrap();
        let redirect = authdeck_emulator::approve(
            &pending.authorize_url,
            "demo@example.com",
            "demo",
            business,
        )
        .await
        .unwrap();
        connections.push(b.manager.complete_callback(&redirect).await.unwrap());
    }
    World {
        ns,
        cluster,
        emulator,
        a,
        b,
        connections,
    }
}

/// Waits (with a deadline) until the emulator has received `n` more provider requests
/// than `from`; returns when.
async fn requests_reach(control: &Control, from: u64, n: u64) -> Instant {
    let deadline = Instant::now() + Duration::from_secs(30);
    while control.stats().requests < from + n {
        assert!(
            Instant::now() < deadline,
            "the provider call never reached the emulator"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Instant::now()
}

/// When the emulator answered its `n`-th successful refresh after `from` (polled).
fn watch_answers(control: Control, from: u64, n: u64) -> tokio::task::JoinHandle<Instant> {
    tokio::spawn(async move {
        loop {
            if control.stats().refresh_ok >= from + n {
                return Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
}

/// B takes the connection's lock as soon as the server lets it (a 30 s wait), and lets
/// go at once; returns when it got it.
fn b_takes_the_lock(b: &Machine, id: &str) -> tokio::task::JoinHandle<Instant> {
    let store = b.backend.store().clone();
    let id = id.to_owned();
    tokio::spawn(async move {
        let lock = store
            .lock_refresh(&id, Duration::from_secs(30))
            .await
            .unwrap();
        let at = Instant::now();
        lock.release().await;
        at
    })
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn token_sets(cluster: &PgCluster, id: &str) -> String {
    cluster
        .psql(
            "postgres",
            &format!(
                "SELECT count(*), min(generation) FROM authdeck.token_sets WHERE connection_id = '{id}'"
            ),
        )
        .trim()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_holder_sends_nothing_once_its_lock_is_too_old() {
    // §1: a lock handed out frozen (no heartbeat, as if the process hung with it) is
    // refused right before the call once it no longer holds long enough to commit.
    // A batch of two, one provider call at a time, each call held 6 s (past the 5 s
    // floor): whichever member calls first is answered; the other waited for its turn
    // with its frozen lock ageing, and must not call.
    let w = world(&["FA-100001", "FA-100002"], 1).await;
    for c in &w.connections {
        w.a.backend.freeze_locks_for_test(&c.id);
    }
    let control = w.emulator.control();
    let before = control.stats().requests;
    let tokens_before = [
        w.a.stored_refresh_token(&w.connections[0].id).await,
        w.a.stored_refresh_token(&w.connections[1].id).await,
    ];
    control.set_latency(Duration::from_secs(6));
    let started = Instant::now();
    let ids: Vec<String> = w.connections.iter().map(|c| c.id.clone()).collect();
    let results = w.a.manager.refresh_many(&ids).await;
    let took = started.elapsed();
    control.set_latency(Duration::ZERO);
    assert_eq!(
        control.stats().requests,
        before + 1,
        "the member whose frozen lock aged past the floor called the provider: {results:?}"
    );
    let (called, refused): (Vec<_>, Vec<_>) =
        results.iter().enumerate().partition(|(_, r)| r.is_ok());
    assert_eq!((called.len(), refused.len()), (1, 1), "{results:?}");
    let (i, refused) = refused[0];
    let e = refused.as_ref().unwrap_err();
    assert_eq!(e.code, ErrorCode::TeamUnavailable, "{e:?}");
    assert!(
        e.message.contains("nothing was sent to the provider"),
        "{e:?}"
    );
    println!(
        "frozen holder: refused after {} in the batch: {e:?}",
        secs(took)
    );
    // The refused one is as it was, its refresh token still the provider's current one.
    let (conn, refresh) = w.a.stored_refresh_token(&ids[i]).await;
    assert_eq!(conn.secret_generation, tokens_before[i].0.secret_generation);
    assert_eq!(refresh, tokens_before[i].1);
    assert_eq!(conn.state, ConnectionState::Active);
    assert_eq!(
        control.flowaccount_refresh_token_status(&refresh),
        TokenStatus::Current
    );
    // And the other one committed once, its token the newest.
    let (j, _) = called[0];
    let (conn, refresh) = w.a.stored_refresh_token(&ids[j]).await;
    assert_eq!(
        conn.secret_generation,
        tokens_before[j].0.secret_generation + 1
    );
    assert_eq!(
        control.flowaccount_refresh_token_status(&refresh),
        TokenStatus::Current
    );
    drop(w.ns);
}

/// A's refresh of `id`, retried while the healed link's pool reconnects.
async fn refresh_after_heal(m: &Manager, id: &str) -> authdeck_core::Result<Connection> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match m.refresh(id).await {
            Err(e) if e.code == ErrorCode::TeamUnavailable && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            other => return other,
        }
    }
}

/// What happened around a cut in the middle of A's refresh.
struct CutCall {
    result: authdeck_core::Result<Connection>,
    cut: Instant,
    /// When the emulator answered the call.
    answered: Instant,
    /// When A's refresh returned.
    returned: Instant,
}

/// Cut in the middle of a refresh: the emulator holds the call [`CALL`] long; the link
/// goes down once it has the request; then `after_cut` runs (B's part), concurrently
/// with the rest of A's refresh.
async fn refresh_cut_during_the_call<T: Send + 'static>(
    w: &World,
    id: &str,
    after_cut: impl FnOnce() -> tokio::task::JoinHandle<T>,
) -> (CutCall, tokio::task::JoinHandle<T>) {
    let control = w.emulator.control();
    control.set_latency(CALL);
    let before = control.stats();
    let answers = watch_answers(control.clone(), before.refresh_ok, 1);
    let refreshing = {
        let m = w.a.manager.clone();
        let id = id.to_owned();
        tokio::spawn(async move {
            let r = m.refresh(&id).await;
            (r, Instant::now())
        })
    };
    requests_reach(&control, before.requests, 1).await;
    let cut = Instant::now();
    w.ns.cut();
    let b = after_cut();
    let answered = answers.await.unwrap();
    let (result, returned) = refreshing.await.unwrap();
    (
        CutCall {
            result,
            cut,
            answered,
            returned,
        },
        b,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b_a_cut_between_answer_and_commit_is_bounded_surfaced_and_adopted_after_the_heal() {
    let w = world(&["FA-100001"], 4).await;
    let c = &w.connections[0];
    let control = w.emulator.control();
    let (_, r0) = w.a.stored_refresh_token(&c.id).await;
    let requests = control.stats().requests;
    let (call, b_lock) =
        refresh_cut_during_the_call(&w, &c.id, || b_takes_the_lock(&w.b, &c.id)).await;
    control.set_latency(Duration::ZERO);
    let b_locked = b_lock.await.unwrap();

    // A gave up, and says so: the error, and the answer kept (in memory, and in the
    // journal on disk) for this connection.
    let e = call
        .result
        .expect_err("a commit over a cut link cannot succeed");
    assert_eq!(e.code, ErrorCode::TeamUnavailable, "{e:?}");
    assert_eq!(w.a.manager.unsaved_connections(), vec![c.id.clone()]);
    assert!(
        w.a.journal_entries() >= 1,
        "the answer is not in A's journal"
    );
    // Nothing was committed: B sees the old generation and token, which the provider
    // has rotated out; the provider's current token exists only in A's journal.
    let (seen, stored) = w.b.stored_refresh_token(&c.id).await;
    assert_eq!(seen.secret_generation, c.secret_generation);
    assert_eq!(stored, r0);
    assert_eq!(seen.state, ConnectionState::Active);
    assert_eq!(
        control.flowaccount_refresh_token_status(&r0),
        TokenStatus::Used
    );
    // Bounded: the lock went to B once the server's floor ran out after A's last
    // heartbeat (≤ 0.5 s before the cut), and A gave up within its TCP user timeout.
    let lock_free = b_locked - call.cut;
    let window = call.returned - call.answered;
    println!(
        "(b) cut during the call: the provider answered {} after the cut; A gave up {} after \
         the answer ({} after the cut): {e:?}; B could take the lock {} after the cut",
        secs(call.answered - call.cut),
        secs(window),
        secs(call.returned - call.cut),
        secs(lock_free)
    );
    assert!(
        lock_free >= REFRESH_FLOOR - Duration::from_millis(600)
            && lock_free < Duration::from_secs(10),
        "B got the lock {lock_free:?} after the cut"
    );
    assert!(
        window < Duration::from_secs(30),
        "A held the answer for {window:?}"
    );

    // Healed: A's next refresh adopts the journalled answer (no provider call).
    w.ns.heal();
    let healed = Instant::now();
    let adopted = refresh_after_heal(&w.a.manager, &c.id).await.unwrap();
    println!(
        "(b) after the heal A adopted its answer in {}",
        secs(healed.elapsed())
    );
    assert_eq!(adopted.secret_generation, c.secret_generation + 1);
    assert_eq!(
        control.stats().requests,
        requests + 1,
        "the adoption called the provider"
    );
    assert!(w.a.manager.unsaved_connections().is_empty());
    let (seen, stored) = w.b.stored_refresh_token(&c.id).await;
    assert_eq!(seen.secret_generation, c.secret_generation + 1);
    assert_eq!(
        control.flowaccount_refresh_token_status(&stored),
        TokenStatus::Current
    );
    assert_eq!(
        token_sets(&w.cluster, &c.id),
        format!("1|{}", c.secret_generation + 1)
    );
    let history = w.b.history(&c.id).await;
    assert!(
        history
            .iter()
            .any(|h| h.starts_with("recovered ok saved refreshed tokens")),
        "{history:?}"
    );
    // And the connection goes on refreshing.
    w.a.manager.refresh(&c.id).await.unwrap();
    assert_eq!(control.stats().flowaccount.reuse_detected, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b_a_cut_between_answer_and_commit_then_another_machine_refreshes_shows_reauthorization() {
    // The window's risk: B takes the lock once A's is gone and refreshes with the token
    // A already spent. The emulator sees it reused and revokes the grant: the
    // connection must show reauthorization required, on B at once and on A after the
    // heal, never "active" with dead tokens.
    let w = world(&["FA-100001"], 4).await;
    let c = &w.connections[0];
    let control = w.emulator.control();
    let b_refresh = || {
        let m = w.b.manager.clone();
        let id = c.id.clone();
        tokio::spawn(async move { (m.refresh(&id).await, Instant::now()) })
    };
    let (call, b_refresh) = refresh_cut_during_the_call(&w, &c.id, b_refresh).await;
    let (b_result, b_done) = b_refresh.await.unwrap();
    control.set_latency(Duration::ZERO);
    assert_eq!(call.result.unwrap_err().code, ErrorCode::TeamUnavailable);
    let e = b_result.expect_err("B refreshed with a spent token and it worked?");
    assert_eq!(e.code, ErrorCode::ReauthorizationRequired, "{e:?}");
    assert_eq!(control.stats().flowaccount.reuse_detected, 1);
    let seen = w.b.backend.connection(&c.id).await.unwrap();
    assert_eq!(seen.state, ConnectionState::ReauthorizationRequired);
    println!(
        "(b, B refreshes meanwhile) B's refresh failed {} after the cut: {e:?}",
        secs(b_done - call.cut)
    );

    w.ns.heal();
    let e = refresh_after_heal(&w.a.manager, &c.id)
        .await
        .expect_err("A's refresh after the heal hid the revoked grant");
    assert_eq!(e.code, ErrorCode::ReauthorizationRequired, "{e:?}");
    assert!(w.a.manager.unsaved_connections().is_empty());
    let (seen, stored) = w.b.stored_refresh_token(&c.id).await;
    assert_eq!(seen.state, ConnectionState::ReauthorizationRequired);
    assert!(seen.last_error.is_some());
    assert_eq!(
        control.flowaccount_refresh_token_status(&stored),
        TokenStatus::Revoked
    );
    let history = w.b.history(&c.id).await;
    assert!(
        history.iter().any(|h| h.contains("the mark stays")),
        "{history:?}"
    );
    println!("(b, B refreshes meanwhile) history: {history:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_and_b_a_cut_during_a_batch_sends_nothing_for_the_members_still_waiting() {
    // One call at a time: the member in flight is case (b); the other holds its lock
    // and waits for its turn (case (a): cut before its call) and must send nothing.
    let w = world(&["FA-100001", "FA-100002"], 1).await;
    let control = w.emulator.control();
    let before = control.stats();
    let tokens: Vec<(Connection, String)> = {
        let mut t = Vec::new();
        for c in &w.connections {
            t.push(w.a.stored_refresh_token(&c.id).await);
        }
        t
    };
    control.set_latency(CALL);
    let refreshing = {
        let m = w.a.manager.clone();
        tokio::spawn(async move { (m.refresh_all().await, Instant::now()) })
    };
    requests_reach(&control, before.requests, 1).await;
    let cut = Instant::now();
    w.ns.cut();
    let (reports, done) = refreshing.await.unwrap();
    control.set_latency(Duration::ZERO);
    let reports = reports.unwrap();
    assert_eq!(
        control.stats().requests,
        before.requests + 1,
        "a member called the provider after the cut: {reports:?}"
    );
    for r in &reports {
        let e = r.result.as_ref().unwrap_err();
        assert_eq!(e.code, ErrorCode::TeamUnavailable, "{e:?}");
    }
    let unsaved = w.a.manager.unsaved_connections();
    assert_eq!(unsaved.len(), 1, "the answered member is kept: {unsaved:?}");
    let waited = tokens.iter().find(|(c, _)| c.id != unsaved[0]).unwrap();
    assert_eq!(
        control.flowaccount_refresh_token_status(&waited.1),
        TokenStatus::Current,
        "the waiting member's token was sent"
    );
    println!(
        "(a)+(b) batch: both members returned team_unavailable {} after the cut: {:?}",
        secs(done - cut),
        reports
            .iter()
            .map(|r| r.result.as_ref().unwrap_err().message.clone())
            .collect::<Vec<_>>()
    );

    w.ns.heal();
    let deadline = Instant::now() + Duration::from_secs(60);
    let reports = loop {
        let reports = w.a.manager.refresh_all().await.unwrap();
        if reports.iter().all(|r| r.result.is_ok()) || Instant::now() > deadline {
            break reports;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(reports.iter().all(|r| r.result.is_ok()), "{reports:?}");
    for (c, _) in &tokens {
        let (seen, stored) = w.b.stored_refresh_token(&c.id).await;
        assert_eq!(seen.secret_generation, c.secret_generation + 1, "{}", c.id);
        assert_eq!(
            control.flowaccount_refresh_token_status(&stored),
            TokenStatus::Current
        );
        assert_eq!(
            token_sets(&w.cluster, &c.id),
            format!("1|{}", c.secret_generation + 1)
        );
    }
    // One call for the adopted member (before the cut), one for the other (after).
    assert_eq!(control.stats().requests, before.requests + 2);
    assert_eq!(control.stats().flowaccount.reuse_detected, 0);
    assert!(w.a.manager.unsaved_connections().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_a_cut_after_the_commit_loses_nothing() {
    let w = world(&["FA-100001"], 4).await;
    let c = &w.connections[0];
    let control = w.emulator.control();
    let refreshed = w.a.manager.refresh(&c.id).await.unwrap();
    let cut = Instant::now();
    w.ns.cut();
    let b_locked = b_takes_the_lock(&w.b, &c.id).await.unwrap();
    let (seen, stored) = w.b.stored_refresh_token(&c.id).await;
    assert_eq!(seen.secret_generation, refreshed.secret_generation);
    assert_eq!(
        control.flowaccount_refresh_token_status(&stored),
        TokenStatus::Current
    );
    assert_eq!(
        token_sets(&w.cluster, &c.id),
        format!("1|{}", refreshed.secret_generation)
    );
    assert!(w.a.manager.unsaved_connections().is_empty());
    assert!(w
        .b
        .history(&c.id)
        .await
        .iter()
        .any(|h| h.starts_with("refresh ok")));
    println!(
        "(c) cut after the commit: B could take the lock {} after the cut",
        secs(b_locked - cut)
    );
    // B refreshes meanwhile: fine, the newest token is in the store.
    w.b.manager.refresh(&c.id).await.unwrap();
    w.ns.heal();
    let again = refresh_after_heal(&w.a.manager, &c.id).await.unwrap();
    assert_eq!(again.secret_generation, refreshed.secret_generation + 2);
    assert_eq!(control.stats().flowaccount.reuse_detected, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_a_commit_that_landed_but_whose_answer_was_cut_off_is_not_adopted_twice() {
    // The commit's COMMIT reached the server and is held there (a deferred trigger
    // waits on an advisory lock the test holds) when the link is cut; then it lands.
    // A cannot know: it keeps the answer; after the heal it finds it committed already.
    let w = world(&["FA-100001"], 4).await;
    let c = &w.connections[0];
    let control = w.emulator.control();
    w.cluster.psql(
        "postgres",
        "CREATE FUNCTION public.hold_commit() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN PERFORM pg_advisory_xact_lock(777); RETURN NULL; END $$;
         CREATE CONSTRAINT TRIGGER hold_commit AFTER INSERT ON authdeck.token_sets
           DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION public.hold_commit();",
    );
    let blocker = DbConfig::parse(&w.cluster.socket_config("postgres"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    blocker
        .batch_execute("SELECT pg_advisory_lock(777)")
        .await
        .unwrap();
    let requests = control.stats().requests;
    let refreshing = {
        let m = w.a.manager.clone();
        let id = c.id.clone();
        tokio::spawn(async move { (m.refresh(&id).await, Instant::now()) })
    };
    let sql = format!(
        "SELECT pid FROM pg_stat_activity WHERE client_addr = '{}' AND query = 'COMMIT'
           AND wait_event_type = 'Lock'",
        w.ns.host_addr()
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let pid: i32 = loop {
        if let Ok(pid) = w.cluster.psql("postgres", &sql).trim().parse() {
            break pid;
        }
        assert!(
            Instant::now() < deadline,
            "the COMMIT never reached the server"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let cut = Instant::now();
    w.ns.cut();
    blocker
        .batch_execute("SELECT pg_advisory_unlock(777)")
        .await
        .unwrap();
    // Landed: seen from the socket, the new generation whole.
    let landed = format!("1|{}", c.secret_generation + 1);
    let deadline = Instant::now() + Duration::from_secs(10);
    while token_sets(&w.cluster, &c.id) != landed {
        assert!(Instant::now() < deadline, "the COMMIT did not complete");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = pid;
    let (seen, stored) = w.b.stored_refresh_token(&c.id).await;
    assert_eq!(
        seen.secret_generation,
        c.secret_generation + 1,
        "the COMMIT landed"
    );
    assert_eq!(
        control.flowaccount_refresh_token_status(&stored),
        TokenStatus::Current
    );

    let (result, returned) = refreshing.await.unwrap();
    let e = result.expect_err("A cannot have seen the COMMIT's answer");
    assert_eq!(e.code, ErrorCode::TeamUnavailable, "{e:?}");
    assert_eq!(w.a.manager.unsaved_connections(), vec![c.id.clone()]);
    println!(
        "(c, COMMIT landed, its answer cut off) A returned team_unavailable {} after the cut",
        secs(returned - cut)
    );
    w.ns.heal();
    // The refresh asked for after the heal: the kept answer is found committed already
    // (obsolete: nothing adopted), then the connection is refreshed once, normally.
    let after = refresh_after_heal(&w.a.manager, &c.id).await.unwrap();
    assert_eq!(after.secret_generation, c.secret_generation + 2);
    assert!(w.a.manager.unsaved_connections().is_empty());
    assert_eq!(control.stats().requests, requests + 2);
    assert_eq!(control.stats().flowaccount.reuse_detected, 0);
    assert_eq!(
        control.flowaccount_refresh_token_status(&stored),
        TokenStatus::Used
    );
    let (_, newest) = w.b.stored_refresh_token(&c.id).await;
    assert_eq!(
        control.flowaccount_refresh_token_status(&newest),
        TokenStatus::Current
    );
    assert_eq!(
        token_sets(&w.cluster, &c.id),
        format!("1|{}", c.secret_generation + 2)
    );
    let history = w.b.history(&c.id).await;
    assert!(
        !history.iter().any(|h| h.starts_with("recovered")),
        "an obsolete answer was adopted: {history:?}"
    );
    blocker
        .batch_execute("SELECT pg_advisory_unlock_all()")
        .await
        .unwrap();
}
