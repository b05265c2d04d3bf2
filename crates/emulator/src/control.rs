//! The in-process handle to the admin operations (the same as `/admin/*` over HTTP).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::{ExpiresInFormat, FaClient, IotDevice};
use crate::fault::Fault;
use crate::iot::IotSession;
use crate::state::AppState;
use crate::stats::Stats;

/// Where a FlowAccount refresh token stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenStatus {
    /// The newest of its family: the only one that refreshes.
    Current,
    /// Rotated out by a refresh; presenting it again is reuse.
    Used,
    /// Its family was revoked (reuse detected, or its code was replayed).
    Revoked,
    /// Past its one-day window.
    Expired,
    /// Never issued here.
    Unknown,
}

/// Clone-able handle on a running emulator's state. Cheap to clone; works after
/// the server stopped (it then just reads the state as it was).
#[derive(Clone)]
pub struct Control {
    pub(crate) state: AppState,
}

impl Control {
    /// Added before every provider response from now on.
    pub fn set_latency(&self, latency: Duration) {
        self.state.lock().latency = latency;
    }

    /// Arms a fault behind those already armed (the first match wins).
    pub fn push_fault(&self, fault: Fault) {
        self.state.lock().faults.push(fault);
    }

    pub fn clear_faults(&self) {
        self.state.lock().faults.clear();
    }

    /// The faults still armed.
    pub fn faults(&self) -> Vec<Fault> {
        self.state.lock().faults.list()
    }

    /// Moves the emulator's clock (every lifetime, expiry and JWT `iat`/`exp`).
    pub fn advance_clock(&self, by: chrono::Duration) {
        let mut inner = self.state.lock();
        inner.clock_offset += by;
    }

    /// The emulator's time: real time plus every `advance_clock` so far.
    pub fn now(&self) -> DateTime<Utc> {
        self.state.lock().now()
    }

    /// Adds (or replaces, by client id) a FlowAccount application.
    pub fn register_flowaccount_client(&self, client: FaClient) {
        self.state.lock().flowaccount.register_client(client);
    }

    pub fn set_iot_expires_in_format(&self, format: ExpiresInFormat) {
        self.state.lock().iot.config.expires_in_format = format;
    }

    /// FlowAccount refresh-token reuse detection (RFC 9700 §4.14.2); on by default.
    pub fn set_reuse_detection(&self, enabled: bool) {
        self.state.lock().flowaccount.config.reuse_detection = enabled;
    }

    pub fn stats(&self) -> Stats {
        self.state.lock().stats.snapshot()
    }

    pub fn flowaccount_refresh_token_status(&self, refresh_token: &str) -> TokenStatus {
        let inner = self.state.lock();
        let now = inner.now();
        inner.flowaccount.refresh_token_status(refresh_token, now)
    }

    /// Every IoT login so far, oldest first.
    pub fn iot_sessions(&self) -> Vec<IotSession> {
        self.state.lock().iot.sessions()
    }

    /// Creates a device (as in the platform's portal), or replaces the one with its
    /// Client ID.
    pub fn add_iot_device(&self, device: IotDevice) {
        let devices = &mut self.state.lock().iot.config.devices;
        devices.retain(|d| d.client_id != device.client_id);
        devices.push(device);
    }

    /// Deletes a device; whether it was there.
    pub fn remove_iot_device(&self, client_id: &str) -> bool {
        let devices = &mut self.state.lock().iot.config.devices;
        let before = devices.len();
        devices.retain(|d| d.client_id != client_id);
        devices.len() != before
    }

    /// The device registry's Client IDs (tokens and secrets are not listed).
    pub fn iot_device_ids(&self) -> Vec<String> {
        let inner = self.state.lock();
        inner
            .iot
            .config
            .devices
            .iter()
            .map(|d| d.client_id.clone())
            .collect()
    }
}
