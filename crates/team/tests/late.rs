//! A desktop that starts while its team's database is down (`open_manager_or_later`):
//! the manager opens on a `LateBackend` whose every call is `team_unavailable` and
//! writes nothing anywhere (no local stand-in), the store says unreachable, and once the
//! database is back the store opens by itself, says `Resynced` on its change feed, and
//! serves the team's connections; another member's commit then comes through the feed.
//! Needs the keyring (scripts/with-keyring.sh): the data directory's own parts use it.

use std::time::{Duration, Instant};

use authdeck_core::model::{Client, ClientOptions, Connection, Endpoints, Environment, Provider};
use authdeck_core::store::backend::{Backend as _, SchedulerRole};
use authdeck_core::store::keyring::KeyringStore;
use authdeck_core::store::paths::Paths;
use authdeck_core::store::vault::TokenBundle;
use authdeck_core::store::{BackendKind, StoreChangeKind};
use authdeck_core::{AccessToken, ErrorCode, RefreshToken};
use authdeck_team::membership::{self, JoinRequest, JoinSecrets, KeySource};
use authdeck_team::open::{open_manager, open_manager_or_later, Opened};
use authdeck_team::testing::PgCluster;
use authdeck_team::{DbConfig, TeamBackend, TeamStore, Via};
use chrono::Utc;
use zeroize::Zeroizing;

struct Key(Option<String>);

impl JoinSecrets for Key {
    fn join_key(&mut self) -> authdeck_core::Result<Zeroizing<String>> {
        Ok(Zeroizing::new(self.0.take().unwrap_or_default()))
    }
    fn password(&mut self) -> authdeck_core::Result<Option<Zeroizing<String>>> {
        Ok(None)
    }
}

fn reachable(kind: BackendKind) -> bool {
    match kind {
        BackendKind::Team { reachable, .. } => reachable,
        BackendKind::Local => panic!("the team store, not the local one"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_desktop_started_while_the_database_is_down_opens_the_team_store_once_it_is_back() {
    assert!(
        std::env::var_os("AUTHDECK_TEST_KEYRING").is_some(),
        "run under scripts/with-keyring.sh"
    );
    let mut pg = PgCluster::start();
    pg.create_database("team");
    let address = pg.tcp_config("team");
    let db = DbConfig::parse(&address).unwrap();
    let (other, join) = TeamStore::init(&db, "Firm", "desk-a", Via::Cli)
        .await
        .unwrap();
    let other = TeamBackend::open(other, Duration::from_secs(5))
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let paths = Paths {
        data_dir: dir.path().join("data"),
        keyring_service: format!("authdeck-team-late-{}", std::process::id()),
    };
    let secrets = KeyringStore::new(paths.keyring_service.clone());
    membership::join(
        &paths,
        &secrets,
        JoinRequest {
            address: &address,
            machine: Some("desk-b".into()),
            key: KeySource::Keyring,
            via: Via::Desktop,
            app_version: "test",
        },
        &mut Key(Some(join.expose().to_owned())),
    )
    .await
    .unwrap();

    // Down: a front that needs the store at once is refused; the desktop starts.
    tokio::task::block_in_place(|| pg.stop());
    let refused = open_manager(paths.clone(), Default::default(), Via::Cli)
        .await
        .err()
        .expect("no store without the database");
    assert_eq!(refused.code, ErrorCode::TeamUnavailable);
    let (manager, opened) = open_manager_or_later(paths.clone(), Default::default(), Via::Desktop)
        .await
        .expect("the desktop starts without the database");
    assert!(matches!(opened, Opened::Team { ref team_name, .. } if team_name == "Firm"));
    assert!(!reachable(manager.store().kind()));
    // Its scheduler stands by until the store is open: it must not refresh beside the
    // team's leader as a lone (local) scheduler would.
    assert_eq!(
        manager.store().scheduler_role().await,
        SchedulerRole::Standby { leader: None }
    );
    let mut feed = manager.store_changes().expect("a change feed");
    let e = manager.list().await.unwrap_err();
    assert_eq!(e.code, ErrorCode::TeamUnavailable);
    assert!(e.message.contains("nothing was changed"), "{e:?}");
    let e = manager
        .add_client(authdeck_core::manager::NewClient {
            environment: Some(Environment::Production),
            client_secret: Some(authdeck_core::ClientSecret::new("secret-canary-late")),
            ..authdeck_core::manager::NewClient::new("fedex", Provider::Fedex, "id-1")
        })
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::TeamUnavailable);
    // Nothing written in this desktop's own store instead.
    let local = authdeck_core::store::db::Db::open(&paths.database()).unwrap();
    assert!(local.clients().unwrap().is_empty());
    assert!(local.connections().unwrap().is_empty());

    // Back: the store opens by itself and says so on its feed.
    tokio::task::block_in_place(|| pg.start_again());
    let back = Instant::now();
    let change = tokio::time::timeout(Duration::from_secs(15), feed.recv())
        .await
        .expect("the store opens within 15 s")
        .unwrap();
    assert_eq!(change.kind, StoreChangeKind::Resynced);
    eprintln!(
        "late: the store opened {:.1} s after the database came back",
        back.elapsed().as_secs_f64()
    );
    assert!(reachable(manager.store().kind()));
    assert!(manager.list().await.unwrap().is_empty());
    // Open: the team's leadership (nobody else competes here, so it leads).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match manager.store().scheduler_role().await {
            SchedulerRole::Leader => break,
            SchedulerRole::Alone => panic!("a team store's scheduler is never alone"),
            SchedulerRole::Standby { .. } if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            role => panic!("no leadership within 10 s: {role:?}"),
        }
    }

    // Live from there: another member's new connection comes through the feed.
    let client = Client {
        id: "cl-1".into(),
        name: "fa".into(),
        provider: Provider::FlowAccount,
        environment: Environment::Custom,
        client_id: "cl-1-app".into(),
        endpoints: Endpoints {
            authorize_url: Some("http://127.0.0.1:9/authorize".parse().unwrap()),
            token_url: "http://127.0.0.1:9/token".parse().unwrap(),
            logout_url: None,
            api_base_url: None,
        },
        options: ClientOptions::default(),
        has_secret: false,
        created_at: Utc::now(),
        sandbox: false,
    };
    other.insert_client(&client, None).await.unwrap();
    let conn = Connection::new(
        "conn-1",
        "cl-1",
        "fa",
        Provider::FlowAccount,
        Environment::Custom,
        "SHOP1",
        Utc::now(),
    );
    let tokens = TokenBundle::new(
        AccessToken::new("at-canary-late"),
        Some(RefreshToken::new("rt-canary-late")),
        None,
        None,
    );
    other
        .insert_connection(&conn, "SHOP1", &tokens, None)
        .await
        .unwrap();
    let seen = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let change = feed.recv().await.unwrap();
            if change.kind == StoreChangeKind::ConnectionChanged {
                return change.id;
            }
        }
    })
    .await
    .expect("the other member's connection comes through the feed");
    assert_eq!(seen.as_deref(), Some("conn-1"));
    let listed = manager.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    let by = listed[0].connected_by.as_ref().expect("who connected it");
    assert_eq!(by.machine, "desk-a");
    let _ = secrets; // the keyring service is the test's own; left to its session
}
