//! The IoT platform's device API (PROVIDERS.md §3 item 5; NETPIE `device-api.rst`):
//! a device authenticates with `Authorization: Device <ClientID>:<Token>`, and
//! `GET {api}/shadow/data` (no `alias`) reads its own shadow, answered as
//! `{status, data}`. An unknown device, a wrong token or no such header is a 401 in the
//! platform's error shape `{status, message}` (the device API's response object has
//! `message`, not `error` [doc]).
//!
//! The registry stands in for the portal where devices are created: the demo
//! configuration has one device, tests add more through `/admin/iot/devices` or
//! [`crate::Control::add_iot_device`].

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::config::IotDevice;
use crate::fault::Provider;
use crate::state::{gate, AppState};

/// The device API's base under the emulator (NETPIE: `https://api.netpie.io/v2/device`).
pub(crate) const API_BASE: &str = "/iot/v2/device";

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route(&format!("{API_BASE}/shadow/data"), get(shadow))
}

/// The device API's error body.
fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({"status": status.as_u16(), "message": message})),
    )
        .into_response()
}

/// `Device <ClientID>:<Token>` → (client id, token).
fn credentials(headers: &HeaderMap) -> Option<(&str, &str)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("device") {
        return None;
    }
    rest.trim().split_once(':')
}

/// The device these credentials belong to (the token compared whole).
fn authenticate<'a>(devices: &'a [IotDevice], headers: &HeaderMap) -> Option<&'a IotDevice> {
    let (client_id, token) = credentials(headers)?;
    devices
        .iter()
        .find(|d| d.client_id == client_id && d.token == token)
}

#[derive(Deserialize)]
struct ShadowQuery {
    alias: Option<String>,
}

async fn shadow(
    State(state): State<AppState>,
    Query(query): Query<ShadowQuery>,
    headers: HeaderMap,
) -> Response {
    if let Some(response) = gate(&state, Provider::Iot).await {
        return response;
    }
    let mut inner = state.lock();
    let devices = &inner.iot.config.devices;
    let Some(device) = authenticate(devices, &headers) else {
        inner.stats.iot.device_unauthorized += 1;
        return error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized: unknown device or wrong token (Authorization: Device <ClientID>:<Token>)",
        );
    };
    // `alias` reads another device of the same group; a device's own alias (or none)
    // reads its own shadow. Only the own shadow is emulated.
    let data = match query.alias.as_deref() {
        None => Some(device.shadow.clone()),
        Some(alias) if device.alias.as_deref() == Some(alias) => Some(device.shadow.clone()),
        Some(_) => None,
    };
    match data {
        Some(data) => {
            inner.stats.iot.shadow_reads += 1;
            Json(json!({"status": 200, "data": data})).into_response()
        }
        None => error(
            StatusCode::NOT_FOUND,
            "No device with this alias in the device's group",
        ),
    }
}
