//! IoT devices through the manager: real emulator (its device API), real SQLite file,
//! real Secret Service (run under scripts/with-keyring.sh).

mod common;

use authdeck_core::manager::{NewClient, NewDevice};
use authdeck_core::model::Provider;
use authdeck_core::store::SecretStore;
use authdeck_core::{DeviceSecret, DeviceToken, ErrorCode, Password};
use authdeck_emulator::IotDevice;
use common::Fixture;

const TOKEN: &str = "canary-devtok-5b1e";
const SECRET: &str = "canary-devsec-77c2";

async fn fixture() -> Fixture {
    let f = Fixture::new().await;
    f.emulator.control().add_iot_device(IotDevice {
        client_id: "dev-0001".into(),
        token: TOKEN.into(),
        secret: Some(SECRET.into()),
        alias: None,
        shadow: serde_json::json!({"temperature": 30, "note": format!("echo {TOKEN}")}),
    });
    let mut iot = NewClient::new("iot", Provider::Iot, "demo-iot-client");
    iot.auth_url = Some(f.emulator.iot_auth_url());
    iot.device_api_url = Some(f.emulator.iot_device_api_url());
    f.manager.add_client(iot).await.unwrap();
    f
}

fn new_device(name: &str, token: &str, connection: Option<String>) -> NewDevice {
    NewDevice {
        name: name.into(),
        client: "iot".into(),
        connection,
        device_id: "dev-0001".into(),
        token: DeviceToken::new(token),
        secret: Some(DeviceSecret::new(SECRET)),
    }
}

fn sqlite_text(f: &Fixture) -> String {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(f.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            all.extend(std::fs::read(&path).unwrap());
        }
    }
    String::from_utf8_lossy(&all).into_owned()
}

#[tokio::test]
async fn a_device_is_added_checked_and_removed_with_its_secrets_in_the_keyring_only() {
    let f = fixture().await;
    let conn = f
        .manager
        .connect_iot("iot", "operator", Password::new("operator-pass"))
        .await
        .unwrap();
    let device = f
        .manager
        .add_device(new_device("pump-1", TOKEN, Some("operator".into())))
        .await
        .unwrap();
    assert_eq!(device.connection_id.as_deref(), Some(conn.id.as_str()));
    assert!(device.has_secret);
    let token_key = format!("device/{}/token", device.id);
    let secret_key = format!("device/{}/secret", device.id);
    assert_eq!(f.secrets.get(&token_key).unwrap().unwrap().expose(), TOKEN);
    assert_eq!(
        f.secrets.get(&secret_key).unwrap().unwrap().expose(),
        SECRET
    );

    let report = f.manager.check_device("pump-1").await.unwrap();
    assert_eq!(report.shadow["temperature"], 30);
    assert_eq!(
        report.shadow["note"], "echo [redacted]",
        "provider text is redacted"
    );
    let check = report.device.last_check.clone().unwrap();
    assert_eq!(check.outcome, "ok");
    assert!(check.shadow_fields.contains(&"temperature".to_string()));
    assert_eq!(
        f.manager.device(&device.id[..8]).await.unwrap().last_check,
        Some(check)
    );
    let history = f.manager.history(Some("pump-1"), 10).await.unwrap();
    assert_eq!(
        history.iter().map(|h| h.event.as_str()).collect::<Vec<_>>(),
        ["device_check", "device_added"]
    );
    let creds = f.manager.device_credentials("pump-1").await.unwrap();
    assert_eq!(
        creds.rest_authorization().expose(),
        format!("Device dev-0001:{TOKEN}")
    );
    assert_eq!(creds.secret.unwrap().expose(), SECRET);

    // A client with devices cannot go; the device can, with its keyring entries.
    let err = f.manager.remove_client("iot").await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidInput);
    f.manager.logout(&conn.id).await.unwrap();
    f.manager.remove_device("pump-1").await.unwrap();
    assert!(f.secrets.get(&token_key).unwrap().is_none());
    assert!(f.secrets.get(&secret_key).unwrap().is_none());
    assert_eq!(
        f.manager.device("pump-1").await.unwrap_err().code,
        ErrorCode::NotFound
    );
    f.manager.remove_client("iot").await.unwrap();
    let text = sqlite_text(&f);
    assert!(
        !text.contains(TOKEN) && !text.contains(SECRET),
        "no device secret in SQLite"
    );
}

#[tokio::test]
async fn a_wrong_token_fails_the_check_clearly_and_is_recorded() {
    let f = fixture().await;
    f.manager
        .add_device(new_device("pump-2", "canary-wrong-token-9d", None))
        .await
        .unwrap();
    let err = f.manager.check_device("pump-2").await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidCredentials, "{err:?}");
    assert!(err.message.contains("Client ID or Token"), "{err:?}");
    let shown = format!("{err:?}");
    assert!(!shown.contains("canary-wrong-token-9d"), "{shown}");
    let device = f.manager.device("pump-2").await.unwrap();
    let check = device.last_check.unwrap();
    assert_eq!(check.outcome, "invalid_credentials");
    assert!(check.message.unwrap().contains("Client ID or Token"));
    let history = f.manager.history(Some("pump-2"), 10).await.unwrap();
    assert_eq!(history[0].event, "device_check");
    assert_eq!(history[0].outcome, "invalid_credentials");
    assert!(!sqlite_text(&f).contains("canary-wrong-token-9d"));
}

#[tokio::test]
async fn invalid_devices_are_refused_and_nothing_is_stored() {
    let f = fixture().await;
    let mut fedex = NewClient::new("fedex", Provider::Fedex, "demo-fedex-key");
    fedex.client_secret = Some(authdeck_core::ClientSecret::new("demo-fedex-secret"));
    fedex.token_url = Some(f.emulator.fedex_token_url());
    f.manager.add_client(fedex).await.unwrap();
    let keys = f.secrets.list_keys().unwrap();
    let mut colon = new_device("a", TOKEN, None);
    colon.device_id = "dev:1".into();
    let mut not_iot = new_device("b", TOKEN, None);
    not_iot.client = "fedex".into();
    let mut control = new_device("c", "tok\nen", None);
    control.secret = None;
    for (bad, code) in [
        (new_device("", TOKEN, None), ErrorCode::InvalidInput),
        (new_device("d", "", None), ErrorCode::InvalidInput),
        (colon, ErrorCode::InvalidInput),
        (not_iot, ErrorCode::InvalidInput),
        (control, ErrorCode::InvalidInput),
        (
            new_device("e", TOKEN, Some("nobody".into())),
            ErrorCode::NotFound,
        ),
    ] {
        let err = f.manager.add_device(bad).await.unwrap_err();
        assert_eq!(err.code, code, "{err:?}");
    }
    assert!(f.manager.devices().await.unwrap().is_empty());
    assert_eq!(
        f.secrets.list_keys().unwrap(),
        keys,
        "nothing reached the keyring"
    );
    f.manager
        .add_device(new_device("f", TOKEN, None))
        .await
        .unwrap();
    let err = f
        .manager
        .add_device(new_device("f", TOKEN, None))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::AlreadyExists);
}
