//! The team scheduler's leadership through the core's seam (`Backend::scheduler_role`
//! of `TeamBackend`) on a real PostgreSQL: one scheduler of the team leads, the others
//! stand by naming it, a standby leads within 10 s of the leader going away or losing
//! its session, and a backend whose scheduler never asked never competes.

use std::time::{Duration, Instant};

use authdeck_core::store::backend::{Backend, SchedulerRole};
use authdeck_team::lock::current_leader;
use authdeck_team::testing::PgCluster;
use authdeck_team::{DbConfig, JoinKey, TeamBackend, TeamStore, Via};

async fn team(cluster: &PgCluster) -> (TeamStore, JoinKey) {
    let db = DbConfig::parse(&cluster.tcp_config("postgres")).unwrap();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let name = format!("Firm {nanos}");
    TeamStore::init(&db, &name, "desk-a", Via::Desktop)
        .await
        .unwrap()
}

async fn member(cluster: &PgCluster, join: &JoinKey, machine: &str, via: Via) -> TeamStore {
    let db = DbConfig::parse(&cluster.tcp_config("postgres")).unwrap();
    let (team, key) = JoinKey::decode(join.expose()).unwrap();
    TeamStore::open(&db, &team, key, machine, via)
        .await
        .unwrap()
}

async fn backend(store: TeamStore) -> TeamBackend {
    TeamBackend::open(store, Duration::from_secs(5))
        .await
        .unwrap()
}

/// Ask `b` until `done` holds (bounded); how long it took.
async fn until(
    b: &TeamBackend,
    within: Duration,
    done: impl Fn(&SchedulerRole) -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        let role = b.scheduler_role().await;
        if done(&role) {
            return start.elapsed();
        }
        assert!(start.elapsed() < within, "still {role:?} after {within:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn led_by(role: &SchedulerRole, machine: &str) -> bool {
    matches!(role, SchedulerRole::Standby { leader: Some(l) } if l.ends_with(&format!(" on {machine}")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_scheduler_leads_and_a_standby_takes_over_within_10_s_when_it_goes() {
    let cluster = PgCluster::shared();
    let (admin, key) = team(cluster).await;
    let a = backend(member(cluster, &key, "desk-a", Via::Desktop).await).await;
    let b = backend(member(cluster, &key, "agent-b", Via::Agent).await).await;
    // Opened, but its scheduler never asks: it must never lead.
    let c = backend(member(cluster, &key, "cli-c", Via::Cli).await).await;

    assert_eq!(
        a.scheduler_role().await,
        SchedulerRole::Leader,
        "the first to ask leads"
    );
    assert!(
        !b.scheduler_role().await.refreshes(),
        "a second one stands by"
    );
    until(&b, Duration::from_secs(10), |r| led_by(r, "desk-a")).await;
    // For a while: exactly one leads.
    let watch = Instant::now();
    while watch.elapsed() < Duration::from_secs(2) {
        assert_eq!(a.scheduler_role().await, SchedulerRole::Leader);
        assert!(led_by(&b.scheduler_role().await, "desk-a"));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let recorded = current_leader(&admin)
        .await
        .unwrap()
        .expect("a leader recorded");
    assert_eq!(recorded.1, "desk-a");

    // The leader goes (its app quits, the backend is dropped): the standby leads.
    drop(a);
    let took = until(&b, Duration::from_secs(10), |r| *r == SchedulerRole::Leader).await;
    println!("scheduler leadership: the standby led {took:?} after the leader's backend went");
    let recorded = current_leader(&admin)
        .await
        .unwrap()
        .expect("a leader recorded");
    assert_eq!(recorded.1, "agent-b");

    // Competing schedulers were marked seen, the agent as an agent.
    let start = Instant::now();
    loop {
        let members = admin.members().await.unwrap();
        let kind = |m: &str| {
            members
                .iter()
                .find(|r| r.machine == m)
                .map(|r| r.kind.clone())
        };
        if kind("agent-b").is_some() && kind("desk-a").is_some() {
            assert_eq!(kind("agent-b").as_deref(), Some("agent"));
            assert_eq!(kind("desk-a").as_deref(), Some("desktop"));
            assert_eq!(
                kind("cli-c"),
                None,
                "a backend that never scheduled is not seen"
            );
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{members:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The last scheduler goes: nobody leads (the backend that never asked does not).
    drop(b);
    let start = Instant::now();
    let after = loop {
        match current_leader(&admin).await.unwrap() {
            Some((_, machine, _)) if machine == "agent-b" => {}
            other => break other,
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "agent-b still leads"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(after, None, "only a scheduler competes");
    drop(c);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_loses_its_session_stands_by_and_another_leads() {
    let cluster = PgCluster::shared();
    let (admin, key) = team(cluster).await;
    let a = backend(member(cluster, &key, "agent-a", Via::Agent).await).await;
    let b = backend(member(cluster, &key, "agent-b", Via::Agent).await).await;
    assert_eq!(a.scheduler_role().await, SchedulerRole::Leader);
    until(&b, Duration::from_secs(10), |r| led_by(r, "agent-a")).await;

    // The leader's session ends under it (as after a server restart or an
    // administrator's pg_terminate_backend).
    let (_, _, pid) = current_leader(&admin).await.unwrap().unwrap();
    let out = cluster.psql("postgres", &format!("SELECT pg_terminate_backend({pid})"));
    assert_eq!(out.trim(), "t");
    let lost = until(&a, Duration::from_secs(5), |r| !r.refreshes()).await;
    let took = until(&b, Duration::from_secs(10), |r| *r == SchedulerRole::Leader).await;
    println!("scheduler leadership: the old leader stood by {lost:?} after its session ended; the standby led after {took:?} more");
    // The old leader competes again, as a standby naming the new one.
    until(&a, Duration::from_secs(10), |r| led_by(r, "agent-b")).await;
    assert_eq!(b.scheduler_role().await, SchedulerRole::Leader);
}
