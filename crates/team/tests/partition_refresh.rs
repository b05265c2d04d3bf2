//! A refresher's link to PostgreSQL cut (issue 13 §1, §6 "Partition"): whole managers
//! (`authdeck_core::manager::Manager` on a `TeamBackend`) refreshing FlowAccount
//! connections at the emulator (reuse detection on), the refresher ("A") reaching the
//! database over a veth pair the test cuts (`testing::netns`), another machine ("B") over
//! the server's Unix socket, which is never cut. The emulator's latency holds the
//! provider call open, so the cut falls between the call and its answer by construction
//! (the test cuts once the emulator has the request), never by luck.
//!
//! Before every provider call under a lock the manager asks the lock whether it still
//! holds for `LOCK_NEED` (2 s, the commit's worst case: `manager/refresh.rs`) —
//! the heartbeat's reckoning, then a round trip on the lock's own session, which also
//! writes the call's in-flight mark (`authdeck.calls_in_flight`) — and sends nothing
//! when it does not.
//!
//! # Per case: what happens, what is lost (figures from three runs on a 2-core machine)
//! - **Frozen holder** (§1; no heartbeat, as if hung): a batch member that waited 6 s
//!   for its call slot with a frozen lock is refused at once (`team_unavailable`,
//!   "0 ms of the lock left by its heartbeat, 2000 ms needed"); the provider never sees
//!   it; its token stays the provider's current one. Nothing lost.
//! - **(a) Cut before the provider call** (a batch member holding its lock and waiting
//!   for its slot when the link goes): the first store access after the cut fails (the
//!   token read on the pool; else the lock check) — `team_unavailable`, nothing sent,
//!   nothing changed, the token still current. The member returned 13.7–33.5 s after
//!   the cut (TCP user timeout 10 s per statement stuck on the cut link). Nothing lost.
//! - **(b) Cut after the provider answered, before the commit** (the cut falls inside
//!   a 3 s provider call): the provider answered 3.0 s after the cut; A's commit gave
//!   up 10.5 s after the answer (13.5 s after the cut) with `team_unavailable`; B could
//!   take the lock 5.0 s after the cut (the 5 s floor after A's last heartbeat). The
//!   answer is **surfaced**: the refresh's error (saying the provider's new tokens are
//!   kept on this machine until its next refresh), the manager's unsaved list
//!   (`unsaved_connections`; the window shows them as `unsaved_tokens`) and the
//!   encrypted answer journal on A's disk; the store still shows the old generation
//!   (nothing can be written there from A). After the heal, A's next refresh adopts the
//!   journalled answer without a provider call, under the connection's lock taken
//!   again (the kept one died with the link; while B holds it A waits, and adopts
//!   0.08 s after B lets go), recorded as "recovered" in the history: nothing lost.
//!   Another machine that takes the lock meanwhile (5.0 s after the cut) would spend
//!   the token A already spent; A's in-flight mark (written with its lock check right
//!   before the call) refuses B's refresh instead (tested): `busy`, "A refresh on desk-a
//!   may have got new tokens that are not saved yet … Nothing was sent.", 5.0 s after the
//!   cut; nothing sent, nothing changed; after the heal A saves its answer, the commit
//!   takes the mark away, the grant is alive with one token set (the newest) and B
//!   refreshes on. Only a mark that expired (5 minutes; aged by hand in the test) lets B
//!   refresh with the spent token: the emulator's reuse detection revokes the grant,
//!   B's refresh fails `reauthorization_required` and marks the connection; A's
//!   adoption after the heal keeps that mark (history: "another refresher marked the
//!   connection meanwhile, and the mark stays") and A's refresh says
//!   `reauthorization_required`: the grant is lost, loudly, never shown as active. If
//!   A's process dies meanwhile, its journal is adopted by the next process on A
//!   (`adopt_journals`), and that commit takes the mark away.
//! - **(c) Cut after the commit**: nothing lost, exactly one token set (the newest,
//!   current at the provider); B gets the lock at once when A's release landed
//!   before the cut (0.00–0.05 s), else after the floor (5.01 s), and refreshes
//!   normally. **(c') The COMMIT landed but its answer was cut off**: A cannot know and
//!   returns `team_unavailable` 15.1–15.2 s after the cut, keeping the answer; after the
//!   heal it finds that generation committed already (obsolete: not adopted again) and
//!   refreshes once normally. Nothing lost, one token set, no reuse.

mod partition_support;

use std::time::{Duration, Instant};

use authdeck_core::model::{Connection, ConnectionState};
use authdeck_core::store::backend::Backend;
use authdeck_core::ErrorCode;
use authdeck_emulator::TokenStatus;
use authdeck_team::DbConfig;
use partition_support::*;

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
    assert!(
        e.message.contains("they are kept on this machine"),
        "the error does not say the answer is kept: {e:?}"
    );
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

    // Healed: A's next refresh adopts the journalled answer (no provider call), under
    // the connection's lock taken again (the one it kept died with the link): while B
    // holds it, A waits.
    w.ns.heal();
    let healed = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(60);
    while w.a.backend.connections().await.is_err() {
        assert!(Instant::now() < deadline, "A's store never came back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "(b) A's store answered again {} after the heal",
        secs(healed.elapsed())
    );
    let held =
        w.b.backend
            .store()
            .lock_refresh(&c.id, Duration::ZERO)
            .await
            .unwrap();
    let adopting = {
        let m = w.a.manager.clone();
        let id = c.id.clone();
        tokio::spawn(async move { refresh_after_heal(&m, &id).await })
    };
    let watch_until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < watch_until {
        let seen = w.b.backend.connection(&c.id).await.unwrap();
        assert_eq!(
            seen.secret_generation, c.secret_generation,
            "A adopted its answer while B held the lock"
        );
        assert!(!adopting.is_finished());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let released = Instant::now();
    held.release().await;
    let adopted = adopting.await.unwrap().unwrap();
    println!(
        "(b) A adopted its answer {} after B let go of the lock",
        secs(released.elapsed())
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
async fn b_a_cut_between_answer_and_commit_then_another_machine_is_refused_while_the_mark_lives() {
    // The window that was: B takes the lock once A's is gone, and would refresh with the
    // token A already spent (the emulator would revoke the grant). A's in-flight mark,
    // written with its lock check right before the call, refuses B's call instead:
    // nothing sent, nothing changed; after the heal A saves its answer and the mark goes.
    let w = world(&["FA-100001"], 4).await;
    let c = &w.connections[0];
    let control = w.emulator.control();
    let requests = control.stats().requests;
    let b_refresh = || {
        let m = w.b.manager.clone();
        let id = c.id.clone();
        tokio::spawn(async move { (m.refresh(&id).await, Instant::now()) })
    };
    let (call, b_refresh) = refresh_cut_during_the_call(&w, &c.id, b_refresh).await;
    let (b_result, b_done) = b_refresh.await.unwrap();
    control.set_latency(Duration::ZERO);
    assert_eq!(call.result.unwrap_err().code, ErrorCode::TeamUnavailable);
    let e = b_result.expect_err("B refreshed while A's answer was unsaved");
    assert_eq!(e.code, ErrorCode::Busy, "{e:?}");
    assert!(
        e.message.starts_with("A refresh on desk-a ")
            && e.message.contains("UTC at the latest")
            && e.message.ends_with("Nothing was sent."),
        "{e:?}"
    );
    println!(
        "(b, B refreshes meanwhile) B was refused {} after the cut: {}",
        secs(b_done - call.cut),
        e.message
    );
    // Nothing sent (A's one call only), nothing changed, the grant alive.
    assert_eq!(control.stats().requests, requests + 1);
    assert_eq!(control.stats().flowaccount.reuse_detected, 0);
    let (seen, _) = w.b.stored_refresh_token(&c.id).await;
    assert_eq!(seen.secret_generation, c.secret_generation);
    assert_eq!(seen.state, ConnectionState::Active);
    assert!(seen.last_error.is_none(), "{seen:?}");
    assert_eq!(marks(&w.cluster, &c.id), "1|desk-a");

    w.ns.heal();
    let saved = refresh_after_heal(&w.a.manager, &c.id).await.unwrap();
    assert_eq!(saved.secret_generation, c.secret_generation + 1);
    assert!(w.a.manager.unsaved_connections().is_empty());
    assert_eq!(
        control.stats().requests,
        requests + 1,
        "the save called the provider"
    );
    assert_eq!(marks(&w.cluster, &c.id), "0|", "the commit left the mark");
    let (seen, stored) = w.b.stored_refresh_token(&c.id).await;
    assert_eq!(seen.state, ConnectionState::Active);
    assert_eq!(
        control.flowaccount_refresh_token_status(&stored),
        TokenStatus::Current
    );
    assert_eq!(
        token_sets(&w.cluster, &c.id),
        format!("1|{}", c.secret_generation + 1)
    );
    // B goes on refreshing, with the newest token.
    w.b.manager.refresh(&c.id).await.unwrap();
    assert_eq!(control.stats().flowaccount.reuse_detected, 0);
    assert_eq!(marks(&w.cluster, &c.id), "0|");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b_a_mark_whose_owner_does_not_come_back_expires_then_b_refreshes_and_reauthorization_shows(
) {
    // A's mark ends at its time (`CALL_MARK`, server clock; aged here by hand): B then
    // refreshes as before the marks, with the token A already spent. The emulator sees
    // it reused and revokes the grant: the connection must show reauthorization
    // required, on B at once and on A after the heal, never "active" with dead tokens.
    let w = world(&["FA-100001"], 4).await;
    let c = &w.connections[0];
    let control = w.emulator.control();
    let (call, _) = refresh_cut_during_the_call(&w, &c.id, || tokio::spawn(async {})).await;
    control.set_latency(Duration::ZERO);
    assert_eq!(call.result.unwrap_err().code, ErrorCode::TeamUnavailable);
    assert_eq!(marks(&w.cluster, &c.id), "1|desk-a");
    let e = w.b.manager.refresh(&c.id).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::Busy, "{e:?}");
    w.cluster.psql(
        "postgres",
        "UPDATE authdeck.calls_in_flight SET until = now() - interval '1 second'",
    );
    let e =
        w.b.manager
            .refresh(&c.id)
            .await
            .expect_err("B refreshed with a spent token and it worked?");
    assert_eq!(e.code, ErrorCode::ReauthorizationRequired, "{e:?}");
    assert_eq!(control.stats().flowaccount.reuse_detected, 1);
    let seen = w.b.backend.connection(&c.id).await.unwrap();
    assert_eq!(seen.state, ConnectionState::ReauthorizationRequired);

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
    println!("(b, A's mark expired, B refreshes) history: {history:?}");
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
    for r in &reports {
        let message = &r.result.as_ref().unwrap_err().message;
        assert_eq!(
            message.contains("they are kept on this machine"),
            r.id == unsaved[0],
            "{}: {message}",
            r.id
        );
    }
    let waited = tokens.iter().find(|(c, _)| c.id != unsaved[0]).unwrap();
    assert_eq!(
        control.flowaccount_refresh_token_status(&waited.1),
        TokenStatus::Current,
        "the waiting member's token was sent"
    );
    // The answered member's in-flight mark stays until its answer is saved; the waiting
    // member's lock check never reached the server: no mark.
    assert_eq!(marks(&w.cluster, &unsaved[0]), "1|desk-a");
    assert_eq!(marks(&w.cluster, &waited.0.id), "0|");
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
        // Saved (the adoption's commit, the batch's commit_many): no mark left.
        assert_eq!(marks(&w.cluster, &c.id), "0|", "{}", c.id);
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
