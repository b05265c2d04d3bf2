//! The built-in sandbox's clients in a real store: marked, re-pointed when the sandbox
//! starts on another port, saying so when it is not running, and removed with one
//! "Leave the sandbox" that leaves everything else alone.

mod common;

use authdeck_core::manager::NewClient;
use authdeck_core::model::{FedexGrant, Provider};
use authdeck_core::sandbox::{SandboxEndpoints, NOT_RUNNING_MESSAGE};
use authdeck_core::{ChildSecret, ClientSecret, ErrorCode, Password};
use authdeck_emulator::{EmulatorConfig, RunningEmulator};
use common::Fixture;

async fn sandbox() -> RunningEmulator {
    authdeck_emulator::start(EmulatorConfig::demo(), "127.0.0.1:0".parse().unwrap())
        .await
        .expect("sandbox starts")
}

fn endpoints(e: &RunningEmulator) -> SandboxEndpoints {
    SandboxEndpoints {
        flowaccount_authorize_url: e.flowaccount_authorize_url(),
        flowaccount_token_url: e.flowaccount_token_url(),
        fedex_token_url: e.fedex_token_url(),
        iot_auth_url: e.iot_auth_url(),
        iot_device_api_url: e.iot_device_api_url(),
    }
}

fn demo_child() -> Option<(String, ChildSecret)> {
    Some((
        "demo-child-key".to_string(),
        ChildSecret::new("demo-child-secret"),
    ))
}

#[tokio::test]
async fn a_sandbox_on_a_new_port_re_points_its_clients_and_never_a_users_client() {
    let f = Fixture::new().await;
    // The user's own client that happens to bear a demo name, on the "real" emulator.
    let mut mine = NewClient::new("sandbox-iot", Provider::Iot, "demo-iot-client");
    mine.auth_url = Some(f.emulator.iot_auth_url());
    let mine = f.manager.add_client(mine).await.unwrap();
    assert!(!mine.sandbox);

    let first = sandbox().await;
    let install = f
        .manager
        .install_sandbox(&endpoints(&first), true)
        .await
        .unwrap();
    assert_eq!(
        install.added,
        [
            "sandbox-flowaccount",
            "sandbox-flowaccount-loopback",
            "sandbox-fedex"
        ]
    );
    assert_eq!(install.skipped, ["sandbox-iot"]);
    let fedex = f.manager.client("sandbox-fedex").await.unwrap();
    assert!(fedex.sandbox);
    let conn = f
        .manager
        .connect_fedex("sandbox-fedex", FedexGrant::CspCredentials, demo_child())
        .await
        .unwrap();
    assert!(conn.sandbox, "a sandbox client's connection is marked");

    // The sandbox stops: its clients say so, not "network error".
    first.shutdown().await;
    let e = f.manager.refresh(&conn.id).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::SandboxNotRunning, "{e:?}");
    assert_eq!(e.message, NOT_RUNNING_MESSAGE);
    assert!(e.is_temporary());
    let stored = f.manager.connection(&conn.id).await.unwrap();
    assert_eq!(
        stored.last_error.map(|l| l.code),
        Some(ErrorCode::SandboxNotRunning)
    );

    // A new run on another port: the stored sandbox clients follow it.
    let second = sandbox().await;
    assert_ne!(first_port(&fedex), second.local_addr().port());
    let install = f
        .manager
        .install_sandbox(&endpoints(&second), false)
        .await
        .unwrap();
    assert!(install.added.is_empty());
    assert_eq!(
        install.updated,
        [
            "sandbox-flowaccount",
            "sandbox-flowaccount-loopback",
            "sandbox-fedex"
        ]
    );
    for name in install.updated {
        let client = f.manager.client(&name).await.unwrap();
        assert_eq!(first_port(&client), second.local_addr().port(), "{name}");
        assert!(client.sandbox);
    }
    let refreshed = f.manager.refresh(&conn.id).await.unwrap();
    assert!(refreshed.last_error.is_none());
    assert_eq!(f.manager.client("sandbox-iot").await.unwrap(), mine);
}

fn first_port(client: &authdeck_core::model::Client) -> u16 {
    client.endpoints.token_url.port().expect("a port")
}

#[tokio::test]
async fn a_stopped_sandbox_says_so_for_every_flow_and_real_clients_keep_their_error() {
    let f = Fixture::new().await;
    let stopped = sandbox().await;
    let ends = endpoints(&stopped);
    stopped.shutdown().await;
    f.manager.install_sandbox(&ends, true).await.unwrap();

    let e = f
        .manager
        .begin_flowaccount("sandbox-flowaccount")
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::SandboxNotRunning, "{e:?}");
    let e = f
        .manager
        .connect_iot("sandbox-iot", "operator", Password::new("operator-pass"))
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::SandboxNotRunning, "{e:?}");
    assert!(e.message.starts_with("The sandbox is not running"), "{e:?}");
    let e = f
        .manager
        .connect_fedex("sandbox-fedex", FedexGrant::ClientCredentials, None)
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::SandboxNotRunning, "{e:?}");

    // The same dead port in a client of the user's is a plain network failure.
    let mut mine = NewClient::new("mine", Provider::Fedex, "demo-fedex-key");
    mine.client_secret = Some(ClientSecret::new("demo-fedex-secret"));
    mine.token_url = Some(ends.fedex_token_url.clone());
    f.manager.add_client(mine).await.unwrap();
    let e = f
        .manager
        .connect_fedex("mine", FedexGrant::ClientCredentials, None)
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::ProviderUnavailable, "{e:?}");
}

#[tokio::test]
async fn leaving_the_sandbox_removes_its_clients_connections_and_keyring_entries_only() {
    let f = Fixture::new().await;
    f.add_demo_clients().await;
    let real_fedex = f
        .manager
        .connect_fedex("fedex", FedexGrant::CspCredentials, demo_child())
        .await
        .unwrap();
    let real_iot = f
        .manager
        .connect_iot("iot", "operator", Password::new("operator-pass"))
        .await
        .unwrap();

    let running = sandbox().await;
    f.manager
        .install_sandbox(&endpoints(&running), true)
        .await
        .unwrap();
    let fedex = f
        .manager
        .connect_fedex("sandbox-fedex", FedexGrant::CspCredentials, demo_child())
        .await
        .unwrap();
    let iot = f
        .manager
        .connect_iot("sandbox-iot", "operator", Password::new("operator-pass"))
        .await
        .unwrap();
    let redirect = f
        .authorize_flowaccount("sandbox-flowaccount", "FA-100001")
        .await;
    let fa = f.manager.complete_callback(&redirect).await.unwrap();
    assert!(fedex.sandbox && iot.sandbox && fa.sandbox);
    let sandbox_clients: Vec<_> = f
        .manager
        .clients()
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.sandbox)
        .collect();
    assert_eq!(sandbox_clients.len(), 4);
    let mut keys = vec![
        format!("connection/{}/child_secret", fedex.id),
        format!("connection/{}/tokens/{}", fedex.id, fedex.secret_generation),
        format!("connection/{}/tokens/{}", iot.id, iot.secret_generation),
        format!("connection/{}/tokens/{}", fa.id, fa.secret_generation),
    ];
    for client in sandbox_clients.iter().filter(|c| c.has_secret) {
        keys.push(format!("client/{}/secret", client.id));
    }
    // Through the seam, on every backend: each connection's tokens, the child
    // secret, each client secret.
    for conn in [&fedex, &iot, &fa] {
        assert!(
            f.current_tokens(&conn.id).await.is_some(),
            "{} tokens",
            conn.label
        );
    }
    assert!(f.store.child_secret(&fedex.id).await.unwrap().is_some());
    for client in sandbox_clients.iter().filter(|c| c.has_secret) {
        f.store.client_secret(client).await.unwrap();
    }
    if common::is_local() {
        // Where the local backend keeps them (the team store's rows and their removal:
        // crates/team/tests/backend.rs).
        for key in &keys {
            assert!(f.keyring_has(key), "{key} before leaving");
        }
    }

    let report = f.manager.leave_sandbox().await.unwrap();
    let mut removed = report.connections.clone();
    removed.sort();
    let mut labels = vec![fedex.label.clone(), iot.label.clone(), fa.label.clone()];
    labels.sort();
    assert_eq!(removed, labels);
    assert_eq!(report.clients.len(), 4);
    // Logged out at the running sandbox: its IoT session is revoked.
    let sessions = running.control().iot_sessions();
    assert!(
        !sessions.is_empty() && sessions.iter().all(|s| s.revoked),
        "{sessions:?}"
    );
    for conn in [&fedex, &iot, &fa] {
        assert!(
            f.current_tokens(&conn.id).await.is_none(),
            "{} tokens",
            conn.label
        );
    }
    if common::is_local() {
        // No keyring entry is left behind (the team store: crates/team/tests/backend.rs).
        for key in &keys {
            assert!(!f.keyring_has(key), "{key} after leaving");
        }
    }
    assert!(f
        .manager
        .clients()
        .await
        .unwrap()
        .iter()
        .all(|c| !c.sandbox));
    let left: Vec<String> = f
        .manager
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    let mut want = vec![real_fedex.id.clone(), real_iot.id.clone()];
    want.sort();
    let mut left = left;
    left.sort();
    assert_eq!(left, want, "real connections stay");
    f.manager.refresh(&real_fedex.id).await.unwrap();
    f.manager.refresh(&real_iot.id).await.unwrap();
    assert!(f
        .store
        .child_secret(&real_fedex.id)
        .await
        .unwrap()
        .is_some());
    // Nothing left to leave.
    let again = f.manager.leave_sandbox().await.unwrap();
    assert!(again.connections.is_empty() && again.clients.is_empty());
}

#[tokio::test]
async fn leaving_a_stopped_sandbox_removes_everything_here() {
    let f = Fixture::new().await;
    let running = sandbox().await;
    f.manager
        .install_sandbox(&endpoints(&running), true)
        .await
        .unwrap();
    let iot = f
        .manager
        .connect_iot("sandbox-iot", "operator", Password::new("operator-pass"))
        .await
        .unwrap();
    running.shutdown().await;

    let report = f.manager.leave_sandbox().await.unwrap();
    assert_eq!(report.connections, std::slice::from_ref(&iot.label));
    assert!(f.current_tokens(&iot.id).await.is_none());
    if common::is_local() {
        // The keyring entry went too (the team store: crates/team/tests/backend.rs).
        assert!(!f.keyring_has(&format!(
            "connection/{}/tokens/{}",
            iot.id, iot.secret_generation
        )));
    }
    assert!(f.manager.list().await.unwrap().is_empty());
    assert!(f.manager.clients().await.unwrap().is_empty());
    let history = f.manager.history(Some(&iot.id), 10).await.unwrap();
    assert_eq!(
        history.first().map(|h| h.event.as_str()),
        Some("leave_sandbox")
    );
}
