//! The IPC inputs that carry secrets hold them as their role types from the moment they
//! are deserialised: `Debug` (what `tracing` or a panic would print) never shows them.

use authdeck_app::commands::{FedexConnectInput, IotConnectInput, NewClientInput};

const CANARY: &str = "canary-ipc-7f3a";

#[test]
fn secret_carrying_ipc_inputs_never_debug_print_their_secrets() {
    let new_client: NewClientInput = serde_json::from_value(serde_json::json!({
        "name": "c", "provider": "fedex", "environment": null, "client_id": "id",
        "client_secret": CANARY, "authorize_url": null, "token_url": null, "auth_url": null,
        "redirect_uri": null, "pkce": false, "iot_basic_auth": "raw", "iot_body": "form",
    }))
    .unwrap();
    let fedex: FedexConnectInput = serde_json::from_value(serde_json::json!({
        "client": "c", "grant": "csp_credentials", "child_key": "k", "child_secret": CANARY,
    }))
    .unwrap();
    let iot: IotConnectInput = serde_json::from_value(serde_json::json!({
        "client": "c", "username": "u", "password": CANARY,
    }))
    .unwrap();

    assert_eq!(new_client.client_secret.as_ref().unwrap().expose(), CANARY);
    assert_eq!(fedex.child_secret.as_ref().unwrap().expose(), CANARY);
    assert_eq!(iot.password.expose(), CANARY);
    for debug in [
        format!("{new_client:?}"),
        format!("{fedex:?}"),
        format!("{iot:?}"),
    ] {
        assert!(!debug.contains(CANARY), "{debug}");
        assert!(debug.contains("([redacted])"), "{debug}");
    }
}
