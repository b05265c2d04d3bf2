//! IoT devices kept in Authdeck.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// An IoT device kept in Authdeck (PROVIDERS.md §3 item 5), under an IoT client and
/// optionally the IoT connection (account) that owns it. Holds no secret: the Token and
/// the optional Secret are in the keyring (`device/<id>/token`, `device/<id>/secret`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Device {
    /// Authdeck's own id of this device record.
    pub id: String,
    pub name: String,
    /// The platform's Client ID of the device (its Device ID). Not a secret.
    pub device_id: String,
    /// `Client::id` of the IoT client the device is kept under.
    pub client_key: String,
    pub client_name: String,
    /// The IoT connection (account) that owns the device, if one was named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_id: Option<String>,
    /// Whether a Secret (MQTT password) is in the keyring (the value is never shown).
    pub has_secret: bool,
    pub created_at: DateTime<Utc>,
    /// The latest check (a read of the device's own shadow).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_check: Option<DeviceCheck>,
    /// Kept under a sandbox client: demo data.
    #[serde(default)]
    pub sandbox: bool,
}

/// The result of one device check (`GET {api}/shadow/data` with the device's
/// credentials) and when it ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct DeviceCheck {
    pub at: DateTime<Utc>,
    /// `ok` or an error code.
    pub outcome: String,
    /// The error's sentence (redacted), when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The shadow's top-level field names, when it succeeded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shadow_fields: Vec<String>,
}

/// The MQTT broker of the NETPIE deployment (PROVIDERS.md §3 item 5).
pub const NETPIE_MQTT_HOST: &str = "mqtt.netpie.io";
/// Plain MQTT; 1884 is MQTT over TLS.
pub const NETPIE_MQTT_PORT: u16 = 1883;
pub const NETPIE_MQTT_TLS_PORT: u16 = 1884;
