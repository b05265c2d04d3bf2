fn main() {
    // tauri.conf.json lives at the repository root (README, "How it works": the tree).
    let attributes = tauri_build::Attributes::new()
        .config_path("../tauri.conf.json")
        .app_manifest(tauri_build::AppManifest::new().commands(authdeck_commands()));
    if let Err(error) = tauri_build::try_build(attributes) {
        panic!("tauri-build failed: {error:#}");
    }
}

/// Every IPC command of the app; each gets an `allow-…` permission, and the main
/// window's capability grants exactly these.
fn authdeck_commands() -> &'static [&'static str] {
    &[
        "app_info",
        "snapshot",
        "changes",
        "connection_details",
        "list_clients",
        "add_client",
        "remove_client",
        "connect_flowaccount",
        "cancel_flowaccount",
        "open_authorize_url",
        "complete_callback",
        "connect_fedex",
        "connect_iot",
        "refresh",
        "logout",
        "copy_access_token",
        "history",
        "start_sandbox",
        "stop_sandbox",
        "leave_sandbox",
        "mark_ready",
        "list_devices",
        "add_device",
        "check_device",
        "remove_device",
        "copy_device_rest_header",
        "copy_device_mqtt_settings",
    ]
}
