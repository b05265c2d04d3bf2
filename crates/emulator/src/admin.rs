//! `/admin/*`: the [`Control`] operations as JSON over HTTP, behind a per-run bearer
//! token (`Authorization: Bearer <token>`, see [`AdminToken`]): the emulator runs inside
//! the shipped app and CLI, and any local process can reach a loopback port.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::config::{AdminToken, ExpiresInFormat, FaClient, IotDevice};
use crate::control::Control;
use crate::fault::Fault;
use crate::state::AppState;

pub(crate) fn routes(token: Arc<AdminToken>) -> Router<AppState> {
    Router::new()
        .route("/admin/stats", get(stats))
        .route(
            "/admin/faults",
            get(list_faults).post(push_fault).delete(clear_faults),
        )
        .route("/admin/latency", post(set_latency))
        .route("/admin/clock", get(clock))
        .route("/admin/clock/advance", post(advance_clock))
        .route("/admin/flowaccount/clients", post(register_client))
        .route("/admin/flowaccount/token-status", post(token_status))
        .route("/admin/iot/expires-in-format", put(set_expires_in_format))
        .route("/admin/iot/sessions", get(iot_sessions))
        .route("/admin/iot/devices", get(iot_devices).post(add_iot_device))
        .route("/admin/iot/devices/{client_id}", delete(remove_iot_device))
        .route("/admin/reuse-detection", put(set_reuse_detection))
        .route_layer(middleware::from_fn(move |request: Request, next: Next| {
            let token = token.clone();
            async move { authorize(&token, request, next).await }
        }))
}

/// Lets a request through only with `Authorization: Bearer <the token>`.
async fn authorize(token: &AdminToken, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            let (scheme, rest) = value.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        });
    match presented {
        Some(presented) if token.matches(presented) => next.run(request).await,
        _ => (
            StatusCode::UNAUTHORIZED,
            [(
                header::WWW_AUTHENTICATE,
                "Bearer realm=\"authdeck-emulator-admin\"",
            )],
            Json(json!({"error": "the admin API needs Authorization: Bearer <admin token>"})),
        )
            .into_response(),
    }
}

fn control(state: AppState) -> Control {
    Control { state }
}

fn bad_json(rejection: JsonRejection) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": rejection.body_text()})),
    )
        .into_response()
}

fn ok() -> Response {
    Json(json!({"ok": true})).into_response()
}

async fn stats(State(state): State<AppState>) -> Response {
    Json(control(state).stats()).into_response()
}

async fn list_faults(State(state): State<AppState>) -> Response {
    Json(control(state).faults()).into_response()
}

/// A fault as JSON, or its string form (`"fedex:500"`).
#[derive(Deserialize)]
#[serde(untagged)]
enum FaultInput {
    Spec(String),
    Fault(Fault),
}

async fn push_fault(
    State(state): State<AppState>,
    body: Result<Json<FaultInput>, JsonRejection>,
) -> Response {
    let fault = match body {
        Ok(Json(FaultInput::Fault(fault))) => fault,
        Ok(Json(FaultInput::Spec(spec))) => match spec.parse::<Fault>() {
            Ok(fault) => fault,
            Err(message) => {
                return (StatusCode::BAD_REQUEST, Json(json!({"error": message}))).into_response()
            }
        },
        Err(rejection) => return bad_json(rejection),
    };
    control(state).push_fault(fault.clone());
    (StatusCode::CREATED, Json(fault)).into_response()
}

async fn clear_faults(State(state): State<AppState>) -> Response {
    control(state).clear_faults();
    ok()
}

#[derive(Deserialize)]
struct Latency {
    ms: u64,
}

async fn set_latency(
    State(state): State<AppState>,
    body: Result<Json<Latency>, JsonRejection>,
) -> Response {
    match body {
        Ok(Json(Latency { ms })) => {
            control(state).set_latency(std::time::Duration::from_millis(ms));
            ok()
        }
        Err(rejection) => bad_json(rejection),
    }
}

async fn clock(State(state): State<AppState>) -> Response {
    let now = control(state).now();
    Json(json!({"now": now, "epoch_s": now.timestamp()})).into_response()
}

#[derive(Deserialize)]
struct Advance {
    seconds: i64,
}

async fn advance_clock(
    State(state): State<AppState>,
    body: Result<Json<Advance>, JsonRejection>,
) -> Response {
    let seconds = match body {
        Ok(Json(Advance { seconds })) => seconds,
        Err(rejection) => return bad_json(rejection),
    };
    let Some(by) = chrono::Duration::try_seconds(seconds) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "seconds out of range"})),
        )
            .into_response();
    };
    let control = control(state);
    control.advance_clock(by);
    Json(json!({"now": control.now()})).into_response()
}

async fn register_client(
    State(state): State<AppState>,
    body: Result<Json<FaClient>, JsonRejection>,
) -> Response {
    match body {
        Ok(Json(client)) => {
            control(state).register_flowaccount_client(client);
            (StatusCode::CREATED, Json(json!({"ok": true}))).into_response()
        }
        Err(rejection) => bad_json(rejection),
    }
}

#[derive(Deserialize)]
struct TokenStatusQuery {
    refresh_token: String,
}

async fn token_status(
    State(state): State<AppState>,
    body: Result<Json<TokenStatusQuery>, JsonRejection>,
) -> Response {
    match body {
        Ok(Json(query)) => {
            let status = control(state).flowaccount_refresh_token_status(&query.refresh_token);
            Json(json!({"status": status})).into_response()
        }
        Err(rejection) => bad_json(rejection),
    }
}

#[derive(Deserialize)]
struct Format {
    format: String,
}

async fn set_expires_in_format(
    State(state): State<AppState>,
    body: Result<Json<Format>, JsonRejection>,
) -> Response {
    let format = match body {
        Ok(Json(Format { format })) => format,
        Err(rejection) => return bad_json(rejection),
    };
    match format.parse::<ExpiresInFormat>() {
        Ok(format) => {
            control(state).set_iot_expires_in_format(format);
            ok()
        }
        Err(message) => (StatusCode::BAD_REQUEST, Json(json!({"error": message}))).into_response(),
    }
}

#[derive(Deserialize)]
struct Enabled {
    enabled: bool,
}

async fn set_reuse_detection(
    State(state): State<AppState>,
    body: Result<Json<Enabled>, JsonRejection>,
) -> Response {
    match body {
        Ok(Json(Enabled { enabled })) => {
            control(state).set_reuse_detection(enabled);
            ok()
        }
        Err(rejection) => bad_json(rejection),
    }
}

async fn iot_sessions(State(state): State<AppState>) -> Response {
    Json(control(state).iot_sessions()).into_response()
}

async fn iot_devices(State(state): State<AppState>) -> Response {
    Json(json!({"devices": control(state).iot_device_ids()})).into_response()
}

async fn add_iot_device(
    State(state): State<AppState>,
    body: Result<Json<IotDevice>, JsonRejection>,
) -> Response {
    match body {
        Ok(Json(device)) => {
            control(state).add_iot_device(device);
            (StatusCode::CREATED, Json(json!({"ok": true}))).into_response()
        }
        Err(rejection) => bad_json(rejection),
    }
}

async fn remove_iot_device(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
) -> Response {
    if control(state).remove_iot_device(&client_id) {
        ok()
    } else {
        (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "no such device"})),
        )
            .into_response()
    }
}
