//! FedEx API: the client-credentials family (PROVIDERS.md §2).
//!
//! One endpoint, three grant types, a JWT that lasts an hour, no refresh token, and
//! errors in FedEx's own `{transactionId, errors[]}` shape, never RFC 6749's.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::config::{FedexConfig, FedexProject};
use crate::fault::Provider;
use crate::form::{self, BodyError};
use crate::jwt;
use crate::state::{gate, AppState};

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/fedex/oauth/token", post(token))
}

pub(crate) struct Store {
    pub(crate) config: FedexConfig,
}

impl Store {
    pub(crate) fn new(config: FedexConfig) -> Self {
        Store { config }
    }
}

const NOT_AUTHORIZED: &str =
    "The given client credentials were not valid. Please modify your request and try again.";
const BAD_REQUEST: &str =
    "Missing or invalid parameters. Please modify your request and try again.";

/// FedEx's error body; `parameters` name the offending fields (values never secrets).
pub(crate) fn error(
    status: StatusCode,
    code: &str,
    message: &str,
    parameters: Option<Vec<(&str, Value)>>,
) -> Response {
    let mut item = json!({"code": code, "message": message});
    if let Some(parameters) = parameters {
        item["parameterList"] = parameters
            .into_iter()
            .map(|(key, value)| json!({"key": key, "value": value}))
            .collect();
    }
    (
        status,
        Json(json!({
            "transactionId": uuid::Uuid::new_v4().to_string(),
            "errors": [item],
        })),
    )
        .into_response()
}

fn bad_request(parameters: Vec<(&str, Value)>) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "BAD.REQUEST.ERROR",
        BAD_REQUEST,
        Some(parameters),
    )
}

fn not_authorized() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "NOT.AUTHORIZED.ERROR",
        NOT_AUTHORIZED,
        None,
    )
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Grant {
    /// `client_credentials`: a plain project.
    Plain,
    /// `csp_credentials`: internal / compatible customers, with child credentials.
    Csp,
    /// `client_pc_credentials`: parent/child customers, with child credentials.
    ParentChild,
}

async fn token(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(response) = gate(&state, Provider::Fedex).await {
        return response;
    }
    let mut inner = state.lock();
    inner.stats.fedex.token_requests += 1;
    let now = inner.now();
    let outcome = issue(&inner.fedex.config, &state.jwt_key, &headers, &body, now);
    let stats = &mut inner.stats.fedex;
    match outcome {
        Ok((grant, body)) => {
            stats.tokens_issued += 1;
            match grant {
                Grant::Plain => stats.client_credentials += 1,
                Grant::Csp => stats.csp_credentials += 1,
                Grant::ParentChild => stats.client_pc_credentials += 1,
            }
            (StatusCode::OK, Json(body)).into_response()
        }
        Err(response) => {
            if response.status() == StatusCode::UNAUTHORIZED {
                stats.not_authorized += 1;
            } else {
                stats.bad_request += 1;
            }
            *response
        }
    }
}

fn issue(
    config: &FedexConfig,
    key: &[u8],
    headers: &HeaderMap,
    body: &[u8],
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(Grant, Value), Box<Response>> {
    if !form::is_form(headers) {
        return Err(Box::new(bad_request(vec![(
            "Content-Type",
            json!(form::content_type(headers)),
        )])));
    }
    let fields = form::parse_urlencoded(body).map_err(|e| match e {
        BodyError::Repeated(name) => Box::new(bad_request(vec![(name.as_str(), Value::Null)])),
        _ => Box::new(bad_request(Vec::new())),
    })?;
    let get = |name: &str| form::field(&fields, name);

    let grant = match get("grant_type") {
        None => return Err(Box::new(bad_request(vec![("grant_type", Value::Null)]))),
        Some("client_credentials") => Grant::Plain,
        Some("csp_credentials") => Grant::Csp,
        Some("client_pc_credentials") => Grant::ParentChild,
        // Not a secret: echoing it helps the caller see the typo.
        Some(other) => return Err(Box::new(bad_request(vec![("grant_type", json!(other))]))),
    };
    // `child_Key` exactly as FedEx's spec spells it; `child_key` is another field.
    let mut required = vec!["client_id", "client_secret"];
    if grant != Grant::Plain {
        required.extend(["child_Key", "child_secret"]);
    }
    let missing: Vec<(&str, Value)> = required
        .iter()
        .filter(|name| get(name).is_none())
        .map(|name| (*name, Value::Null))
        .collect();
    if !missing.is_empty() {
        return Err(Box::new(bad_request(missing)));
    }

    let (client_id, client_secret) = (get("client_id"), get("client_secret"));
    let project: &FedexProject = config
        .projects
        .iter()
        .find(|p| {
            Some(p.client_id.as_str()) == client_id
                && Some(p.client_secret.as_str()) == client_secret
        })
        .ok_or_else(|| Box::new(not_authorized()))?;
    let child_key = match grant {
        Grant::Plain => None,
        _ => {
            let child = project
                .children
                .iter()
                .find(|c| {
                    Some(c.child_key.as_str()) == get("child_Key")
                        && Some(c.child_secret.as_str()) == get("child_secret")
                })
                .ok_or_else(|| Box::new(not_authorized()))?;
            Some(child.child_key.clone())
        }
    };

    let iat = now.timestamp();
    let lifetime = i64::try_from(config.token_lifetime.as_secs()).unwrap_or(i64::MAX / 2);
    let mut identity = json!({"clientKey": project.client_id});
    if let Some(child_key) = child_key {
        identity["childKey"] = json!(child_key);
    }
    let claims = json!({
        "scope": config.scope.split(' ').collect::<Vec<_>>(),
        "Payload": {
            "clientIdentity": identity,
            "authenticationRealm": "CMAC",
            "additionalIdentity": {
                "timeStamp": now.format("%d-%b-%Y %H:%M:%S UTC").to_string(),
                "apimode": "Sandbox",
                "grantType": get("grant_type"),
            },
        },
        "iat": iat,
        "exp": iat.saturating_add(lifetime),
        "jti": uuid::Uuid::new_v4().to_string(),
    });
    let body = json!({
        "access_token": jwt::sign(key, &claims),
        "token_type": "bearer",
        "expires_in": config.expires_in,
        "scope": config.scope,
    });
    Ok((grant, body))
}
