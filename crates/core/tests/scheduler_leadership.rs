//! The scheduler asks its store whether it may refresh (`Backend::scheduler_role`)
//! before each pass, and a leader again before each part of a long batch: a standby
//! starts no scheduled refresh, a leader that steps down mid-pass starts no further
//! one, manual refreshes are never gated. The gate here is a fake one wrapped around the
//! test backend (the team store's real leadership is tested in
//! `crates/team/tests/leadership.rs`).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use authdeck_core::clock::ManualClock;
use authdeck_core::manager::{LocalParts, Manager, ManagerOptions};
use authdeck_core::scheduler::{Scheduler, SchedulerConfig, SchedulerRole};
use authdeck_core::store::backend::Backend;
use authdeck_core::store::db::Db;
use authdeck_emulator::{EmulatorConfig, FaBusiness};
use chrono::Utc;
use common::wrap::{Hooks, Wrapped};
use common::Fixture;

/// What the fake store answers, call after call: the first `lead_for` calls (counted
/// from when it was set) `Leader`, then `then`.
struct Gate {
    lead_for: usize,
    then: SchedulerRole,
}

/// The fake leadership in front of the test backend (everything else passes through).
struct Gated {
    gate: Mutex<Gate>,
    asked: AtomicUsize,
}

impl Gated {
    fn set(&self, lead_for: usize, then: SchedulerRole) {
        *self.gate.lock().unwrap() = Gate { lead_for, then };
    }
}

#[async_trait]
impl Hooks for Gated {
    async fn scheduler_role(&self, _inner: &dyn Backend) -> SchedulerRole {
        self.asked.fetch_add(1, Ordering::SeqCst);
        let mut gate = self.gate.lock().unwrap();
        if gate.lead_for > 0 {
            gate.lead_for -= 1;
            return SchedulerRole::Leader;
        }
        gate.then.clone()
    }
}

const BUSINESSES: usize = 5;

/// `BUSINESSES` FlowAccount connections (one-hour tokens) made through the test backend,
/// and a second manager on the same store behind the fake gate, with a manual clock.
struct World {
    f: Fixture,
    clock: ManualClock,
    gated: Arc<Wrapped<Gated>>,
    manager: Manager,
    ids: Vec<String>,
}

async fn world() -> World {
    let clock = ManualClock::new(Utc::now());
    let mut config = EmulatorConfig::demo();
    config.flowaccount.users[0].businesses = (0..BUSINESSES)
        .map(|i| FaBusiness {
            support_code: format!("FA-9{i:05}"),
            name: format!("Business {i}"),
        })
        .collect();
    let options = ManagerOptions {
        clock: Arc::new(clock.clone()),
        ..ManagerOptions::default()
    };
    let f = Fixture::with_emulator_and_options(config, options.clone()).await;
    f.add_demo_clients().await;
    let mut ids = Vec::new();
    for i in 0..BUSINESSES {
        let callback = f.authorize_flowaccount("fa", &format!("FA-9{i:05}")).await;
        ids.push(f.manager.complete_callback(&callback).await.unwrap().id);
    }
    let gated = Arc::new(Wrapped {
        inner: f.store.clone(),
        hooks: Gated {
            gate: Mutex::new(Gate {
                lead_for: 0,
                then: SchedulerRole::Leader,
            }),
            asked: AtomicUsize::new(0),
        },
    });
    let options = ManagerOptions {
        lock_dir: Some(f.dir.path().join("locks")),
        ..options
    };
    let local = LocalParts::new(
        Db::open(&f.dir.path().join("authdeck.sqlite3")).unwrap(),
        f.secrets.clone(),
        &options,
    );
    let manager = Manager::with_backend(gated.clone(), local, options).unwrap();
    World {
        f,
        clock,
        gated,
        manager,
        ids,
    }
}

fn refreshes(f: &Fixture) -> u64 {
    f.emulator.control().stats().refresh_ok
}

fn standby() -> SchedulerRole {
    SchedulerRole::Standby {
        leader: Some("alice on office-pc".into()),
    }
}

#[tokio::test]
async fn a_standby_starts_no_scheduled_refresh_and_takes_over_when_it_leads() {
    let w = world().await;
    let config = SchedulerConfig::default();
    let mut s = Scheduler::new(w.manager.clone(), config.clone());
    w.gated.hooks.set(0, standby());
    // All of them due (inside the 5-minute margin), and more: past their expiry.
    w.clock.advance(chrono::Duration::minutes(70));
    for _ in 0..3 {
        let pass = s.pass().await;
        assert_eq!(pass.role, standby());
        assert!(pass.refreshes.is_empty(), "{:?}", pass.refreshes);
        assert!(pass.notices.is_empty());
        assert!(pass.next_due.is_none());
        assert_eq!(
            pass.next,
            w.manager.now() + chrono::Duration::from_std(config.standby_poll).unwrap(),
            "a standby asks again soon"
        );
    }
    assert_eq!(refreshes(&w.f), 0, "a standby called no provider");
    assert_eq!(
        w.gated.hooks.asked.load(Ordering::SeqCst),
        3,
        "asked before each pass"
    );

    // A manual refresh is not gated.
    w.manager.refresh(&w.ids[0]).await.unwrap();
    assert_eq!(refreshes(&w.f), 1);

    // It leads now: the next pass refreshes the rest.
    w.gated.hooks.set(usize::MAX, SchedulerRole::Leader);
    let pass = s.pass().await;
    assert_eq!(pass.role, SchedulerRole::Leader);
    assert_eq!(pass.refreshes.len(), BUSINESSES - 1, "{:?}", pass.refreshes);
    assert!(pass.refreshes.iter().all(|r| r.result.is_ok()));
    assert_eq!(refreshes(&w.f), BUSINESSES as u64);
    assert!(pass.next_due.is_some());
}

#[tokio::test]
async fn a_leader_that_steps_down_mid_pass_starts_no_further_refresh() {
    let w = world().await;
    let config = SchedulerConfig {
        leader_chunk: 2,
        ..SchedulerConfig::default()
    };
    let mut s = Scheduler::new(w.manager.clone(), config.clone());
    w.clock.advance(chrono::Duration::minutes(70));
    // Leader at the pass's start and for its first part of 2; then another leads.
    w.gated.hooks.set(2, standby());
    let pass = s.pass().await;
    assert_eq!(pass.refreshes.len(), 2, "{:?}", pass.refreshes);
    assert!(pass.refreshes.iter().all(|r| r.result.is_ok()));
    assert_eq!(refreshes(&w.f), 2, "nothing started after it stepped down");
    assert_eq!(pass.role, standby(), "the pass says it stands by now");
    assert!(pass.next_due.is_none());
    assert_eq!(
        pass.next,
        w.manager.now() + chrono::Duration::from_std(config.standby_poll).unwrap()
    );
    assert_eq!(w.gated.hooks.asked.load(Ordering::SeqCst), 3);

    // Leading again: the three left are refreshed (in parts of 2, asking before each).
    w.gated.hooks.set(usize::MAX, SchedulerRole::Leader);
    let pass = s.pass().await;
    assert_eq!(pass.refreshes.len(), BUSINESSES - 2);
    assert_eq!(refreshes(&w.f), BUSINESSES as u64);
    assert_eq!(w.gated.hooks.asked.load(Ordering::SeqCst), 3 + 1 + 2);
}

/// The stores' own answers: the local store has no leadership (`Alone`, never asked
/// again mid-pass); the team store's first ask leads at once when no other scheduler
/// of the team runs.
#[tokio::test]
async fn the_test_backend_lets_a_lone_scheduler_refresh() {
    let w = world().await;
    let mut s = Scheduler::new(w.f.manager.clone(), SchedulerConfig::default());
    w.clock.advance(chrono::Duration::minutes(70));
    let pass = s.pass().await;
    let expected = if common::is_local() {
        SchedulerRole::Alone
    } else {
        SchedulerRole::Leader
    };
    assert_eq!(pass.role, expected);
    assert_eq!(pass.refreshes.len(), BUSINESSES);
    assert_eq!(refreshes(&w.f), BUSINESSES as u64);
    // Asked again a while later: still the same answer.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(w.f.store.scheduler_role().await, expected);
}
