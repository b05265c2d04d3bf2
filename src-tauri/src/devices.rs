//! The IPC commands for IoT devices: thin wrappers over the manager's device methods.
//! A device's Token and Secret arrive from the window once (the user typed them into
//! the add form) and never go back: the copy commands write the REST header or the MQTT
//! settings to the clipboard from Rust (cleared again after
//! [`crate::clipboard::CLEAR_AFTER`]) and return only those seconds.

use authdeck_core::manager::{DeviceCheckReport, DeviceCredentials, NewDevice};
use authdeck_core::model::Device;
use authdeck_core::providers::device::mqtt_broker;
use authdeck_core::{DeviceSecret, DeviceToken, Error, ErrorCode, KeyringValue};
use serde::Deserialize;
use tauri::{AppHandle, Runtime, State};
use ts_rs::TS;

use crate::commands::CmdResult;
use crate::state::AppState;

#[derive(Debug, Deserialize, TS)]
pub struct NewDeviceInput {
    pub name: String,
    /// The IoT client (name or id).
    pub client: String,
    /// The IoT connection (account) that owns the device, if any.
    pub connection: Option<String>,
    /// The platform's Client ID of the device.
    pub device_id: String,
    #[ts(type = "string")]
    pub token: DeviceToken,
    #[ts(type = "string | null")]
    pub secret: Option<DeviceSecret>,
}

#[tauri::command]
pub async fn list_devices(state: State<'_, AppState>) -> CmdResult<Vec<Device>> {
    state.manager().devices().await
}

#[tauri::command]
pub async fn add_device(state: State<'_, AppState>, input: NewDeviceInput) -> CmdResult<Device> {
    let secret = input
        .secret
        .map(|s| DeviceSecret::new(s.expose().trim()))
        .filter(|s| !s.is_empty());
    state
        .manager()
        .add_device(NewDevice {
            name: input.name,
            client: input.client,
            connection: input
                .connection
                .map(|c| c.trim().to_owned())
                .filter(|c| !c.is_empty()),
            device_id: input.device_id,
            token: DeviceToken::new(input.token.expose().trim()),
            secret,
        })
        .await
}

/// The read-only check (the device reads its own shadow); the result is recorded.
#[tauri::command]
pub async fn check_device(state: State<'_, AppState>, id: String) -> CmdResult<DeviceCheckReport> {
    state.manager().check_device(&id).await
}

#[tauri::command]
pub async fn remove_device(state: State<'_, AppState>, id: String) -> CmdResult<Device> {
    state.manager().remove_device(&id).await
}

/// Copy `Authorization: Device <ClientID>:<Token>` (the header line) to the clipboard.
#[tauri::command]
pub async fn copy_device_rest_header<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    id: String,
) -> CmdResult<u32> {
    let creds = state.manager().device_credentials(&id).await?;
    copy(&app, rest_header(&creds))
}

/// Copy the MQTT settings (broker, client id = Client ID, username = Token, password =
/// Secret) to the clipboard.
#[tauri::command]
pub async fn copy_device_mqtt_settings<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    id: String,
) -> CmdResult<u32> {
    let creds = state.manager().device_credentials(&id).await?;
    copy(&app, mqtt_settings(&creds))
}

/// `Authorization: Device <ClientID>:<Token>`, as pasted into a REST client.
pub fn rest_header(creds: &DeviceCredentials) -> KeyringValue {
    KeyringValue::new(format!(
        "Authorization: {}",
        creds.rest_authorization().expose()
    ))
}

/// The MQTT settings of a device, one per line (PROVIDERS.md §3 item 5).
pub fn mqtt_settings(creds: &DeviceCredentials) -> KeyringValue {
    let broker = match mqtt_broker(creds.api_url.as_ref()) {
        Some((host, port)) => format!("host: {host}\nport: {port} (1884 with TLS)\n"),
        None => "host: (this deployment's MQTT broker)\n".to_owned(),
    };
    KeyringValue::new(format!(
        "{broker}client id: {}\nusername: {}\npassword: {}",
        creds.device.device_id,
        creds.token.expose(),
        creds.secret.as_ref().map(|s| s.expose()).unwrap_or("")
    ))
}

fn copy<R: Runtime>(app: &AppHandle<R>, text: KeyringValue) -> CmdResult<u32> {
    crate::startup::ensure_clipboard(app);
    let system = std::sync::Arc::new(crate::clipboard::SystemClipboard(app.clone()));
    let clear_later = crate::clipboard::copy(system, text, tokio::time::sleep).map_err(|e| {
        Error::new(ErrorCode::Internal, "The clipboard could not be written.").with_detail(e)
    })?;
    tauri::async_runtime::spawn(clear_later);
    Ok(crate::clipboard::CLEAR_AFTER.as_secs() as u32)
}

pub fn export_bindings(dir: &std::path::Path) -> Result<(), ts_rs::ExportError> {
    let cfg = ts_rs::Config::new()
        .with_out_dir(dir)
        .with_large_int("number");
    NewDeviceInput::export_all(&cfg)?;
    Device::export_all(&cfg)?;
    DeviceCheckReport::export_all(&cfg)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(api: &str, secret: Option<&str>) -> DeviceCredentials {
        DeviceCredentials {
            device: Device {
                id: "d1".into(),
                name: "pump".into(),
                device_id: "dev-1".into(),
                client_key: "c1".into(),
                client_name: "iot".into(),
                connection_id: None,
                has_secret: secret.is_some(),
                created_at: chrono::Utc::now(),
                last_check: None,
                sandbox: false,
            },
            token: DeviceToken::new("tok"),
            secret: secret.map(DeviceSecret::new),
            api_url: Some(url::Url::parse(api).unwrap()),
        }
    }

    #[test]
    fn the_copied_texts_are_the_rest_header_and_the_mqtt_settings() {
        let netpie = creds("https://api.netpie.io/v2/device", Some("sec"));
        assert_eq!(
            rest_header(&netpie).expose(),
            "Authorization: Device dev-1:tok"
        );
        assert_eq!(
            mqtt_settings(&netpie).expose(),
            "host: mqtt.netpie.io\nport: 1883 (1884 with TLS)\nclient id: dev-1\nusername: tok\npassword: sec"
        );
        let local = creds("http://127.0.0.1:9/iot/v2/device", None);
        assert!(mqtt_settings(&local)
            .expose()
            .starts_with("host: (this deployment's MQTT broker)\nclient id: dev-1"));
    }
}
