//! The IoT device API: `GET {api}/shadow/data` with `Authorization: Device
//! <ClientID>:<Token>`, its registry (admin API), and 401s in the platform's shape.

mod common;

use authdeck_emulator::IotDevice;
use common::*;
use serde_json::{json, Value};

async fn shadow(url: &str, authorization: Option<&str>) -> (u16, Value) {
    let mut request = client().get(url);
    if let Some(value) = authorization {
        request = request.header("Authorization", value);
    }
    let response = request.send().await.expect("answer");
    (
        response.status().as_u16(),
        response.json().await.unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn a_device_reads_its_own_shadow_with_its_client_id_and_token() {
    let emu = emulator().await;
    let url = format!("{}/shadow/data", emu.iot_device_api_url());
    assert!(url.ends_with("/iot/v2/device/shadow/data"), "{url}");
    let (status, body) = shadow(&url, Some("Device demo-device-0001:demo-device-token")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], 200);
    assert_eq!(body["data"]["temperature"], 28.5);
    // Its own alias reads the same shadow; another alias is not its own.
    let (status, _) = shadow(
        &format!("{url}?alias=demo-sensor"),
        Some("Device demo-device-0001:demo-device-token"),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = shadow(
        &format!("{url}?alias=elsewhere"),
        Some("Device demo-device-0001:demo-device-token"),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(emu.control().stats().iot.shadow_reads, 2);
}

#[tokio::test]
async fn unknown_devices_wrong_tokens_and_other_schemes_are_401_in_the_platforms_shape() {
    let emu = emulator().await;
    let url = format!("{}/shadow/data", emu.iot_device_api_url());
    for authorization in [
        Some("Device demo-device-0001:wrong-token"),
        Some("Device nobody:demo-device-token"),
        Some("Device demo-device-0001"),
        Some("Bearer demo-device-token"),
        Some("Basic demo-device-0001:demo-device-token"),
        None,
    ] {
        let (status, body) = shadow(&url, authorization).await;
        assert_eq!(status, 401, "{authorization:?}: {body}");
        assert_eq!(body["status"], 401, "{body}");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{body}"
        );
        assert!(body.get("data").is_none(), "{body}");
    }
    assert_eq!(emu.control().stats().iot.device_unauthorized, 6);
}

#[tokio::test]
async fn the_admin_api_creates_and_deletes_devices() {
    let emu = emulator().await;
    let base = emu.base_url();
    let url = format!("{}/shadow/data", emu.iot_device_api_url());
    let admin = admin_client(&emu);
    let created = admin
        .post(format!("{base}/admin/iot/devices"))
        .json(&json!({"client_id": "dev-7", "token": "tok-7", "shadow": {"on": true}}))
        .send()
        .await
        .expect("admin");
    assert_eq!(created.status().as_u16(), 201);
    let (status, body) = shadow(&url, Some("Device dev-7:tok-7")).await;
    assert_eq!((status, &body["data"]), (200, &json!({"on": true})));
    let listed: Value = admin
        .get(format!("{base}/admin/iot/devices"))
        .send()
        .await
        .expect("admin")
        .json()
        .await
        .expect("json");
    assert_eq!(listed["devices"], json!(["demo-device-0001", "dev-7"]));
    assert!(!listed.to_string().contains("tok-7"), "no token listed");
    // Without the admin token, nothing is created.
    let refused = client()
        .post(format!("{base}/admin/iot/devices"))
        .json(&json!({"client_id": "dev-8", "token": "tok-8"}))
        .send()
        .await
        .expect("answer");
    assert_eq!(refused.status().as_u16(), 401);
    let deleted = admin
        .delete(format!("{base}/admin/iot/devices/dev-7"))
        .send()
        .await
        .expect("admin");
    assert_eq!(deleted.status().as_u16(), 200);
    assert_eq!(shadow(&url, Some("Device dev-7:tok-7")).await.0, 401);
    let again = admin
        .delete(format!("{base}/admin/iot/devices/dev-7"))
        .send()
        .await
        .expect("admin");
    assert_eq!(again.status().as_u16(), 404);
    // The in-process handle does the same.
    emu.control().add_iot_device(IotDevice {
        client_id: "dev-9".into(),
        token: "tok-9".into(),
        secret: None,
        alias: None,
        shadow: json!({}),
    });
    assert_eq!(shadow(&url, Some("device dev-9:tok-9")).await.0, 200);
}

#[tokio::test]
async fn iot_faults_apply_to_the_device_api_too() {
    let emu = emulator().await;
    emu.control().push_fault("iot:503".parse().expect("fault"));
    let url = format!("{}/shadow/data", emu.iot_device_api_url());
    let (status, _) = shadow(&url, Some("Device demo-device-0001:demo-device-token")).await;
    assert_eq!(status, 503);
}
