//! The IoT platform (NEXPIE / NETPIE family): password grant, JWT, logout
//! (PROVIDERS.md §3).
//!
//! `Authorization: Basic <client id>`, form or multipart bodies, `expires_in` as an
//! expiry timestamp, renew with `userid`, logout that revokes both tokens, and errors
//! as `{status, error}`.

use std::collections::HashMap;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::config::{ExpiresInFormat, IotBasicMode, IotConfig, IotUser};
use crate::fault::Provider;
use crate::flowaccount::chrono_duration;
use crate::form::{self, bearer, BodyError, Fields};
use crate::jwt;
use crate::state::{gate, random_token, AppState, Inner};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/iot/oauth/token", post(token))
        .route("/iot/user/logout", post(logout))
        .route("/iot/user/me", get(me))
}

/// One login: the refresh and access tokens it was issued, revoked together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IotSession {
    pub user_id: String,
    pub username: String,
    pub revoked: bool,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

pub(crate) struct Store {
    pub(crate) config: IotConfig,
    sessions: Vec<IotSession>,
    refresh_tokens: HashMap<String, RefreshToken>,
    /// Access tokens by JWT `jti`, to their session.
    access_tokens: HashMap<String, usize>,
}

struct RefreshToken {
    session: usize,
    expires_at: DateTime<Utc>,
    /// Replaced by a renewal [guess: the old one stops working].
    used: bool,
}

impl Store {
    pub(crate) fn new(config: IotConfig) -> Self {
        Store {
            config,
            sessions: Vec::new(),
            refresh_tokens: HashMap::new(),
            access_tokens: HashMap::new(),
        }
    }

    pub(crate) fn sessions(&self) -> Vec<IotSession> {
        self.sessions.clone()
    }

    /// The session a refresh token may still be used for.
    fn live_refresh(&self, token: &str, now: DateTime<Utc>) -> Option<usize> {
        let record = self.refresh_tokens.get(token)?;
        let session = self.sessions.get(record.session)?;
        (!record.used && !session.revoked && record.expires_at > now).then_some(record.session)
    }
}

/// The platform's error body.
pub(crate) fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({"status": status.as_u16(), "error": message})),
    )
        .into_response()
}

/// Logout answers carry `result` too.
fn logout_answer(status: StatusCode, message: Option<&str>, result: Value) -> Response {
    (
        status,
        Json(json!({"status": status.as_u16(), "error": message, "result": result})),
    )
        .into_response()
}

fn body_error(e: BodyError) -> (StatusCode, String) {
    match e {
        BodyError::ContentType => (
            StatusCode::BAD_REQUEST,
            "Content-Type must be application/x-www-form-urlencoded or multipart/form-data".into(),
        ),
        BodyError::Repeated(name) => (
            StatusCode::BAD_REQUEST,
            format!("Parameter {name} is repeated"),
        ),
        BodyError::Unreadable => (StatusCode::BAD_REQUEST, "Unreadable request body".into()),
    }
}

fn client_allowed(config: &IotConfig, headers: &HeaderMap) -> bool {
    let Some((scheme, value)) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
    else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return false;
    }
    let value = value.trim();
    let raw = value == config.client_id;
    let encoded = || {
        STANDARD
            .decode(value)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .is_some_and(|decoded| {
                decoded == config.client_id || decoded == format!("{}:", config.client_id)
            })
    };
    match config.basic_mode {
        IotBasicMode::Raw => raw,
        IotBasicMode::Base64 => encoded(),
        IotBasicMode::Either => raw || encoded(),
    }
}

// ------------------------------------------------------------------ token

async fn token(State(state): State<AppState>, request: Request) -> Response {
    if let Some(response) = gate(&state, Provider::Iot).await {
        return response;
    }
    {
        let mut inner = state.lock();
        inner.stats.iot.token_requests += 1;
        if !client_allowed(&inner.iot.config, request.headers()) {
            inner.stats.iot.invalid_client += 1;
            return error(
                StatusCode::UNAUTHORIZED,
                "Invalid client: Authorization must be Basic <application client id>",
            );
        }
    }
    let fields = form::read_form_or_multipart(request).await;
    let mut inner = state.lock();
    let fields = match fields {
        Ok(fields) => fields,
        Err(e) => {
            inner.stats.iot.bad_request += 1;
            let (status, message) = body_error(e);
            return error(status, &message);
        }
    };
    match form::field(&fields, "grant_type") {
        Some("password") => login(&mut inner, &state.jwt_key, &fields),
        Some("refresh_token") => renew(&mut inner, &state.jwt_key, &fields),
        Some(_) => {
            inner.stats.iot.bad_request += 1;
            error(StatusCode::BAD_REQUEST, "Unsupported grant_type")
        }
        None => {
            inner.stats.iot.bad_request += 1;
            error(StatusCode::BAD_REQUEST, "grant_type is required")
        }
    }
}

fn missing(fields: &Fields, names: &[&str]) -> Option<String> {
    let absent: Vec<&str> = names
        .iter()
        .copied()
        .filter(|name| form::field(fields, name).is_none())
        .collect();
    (!absent.is_empty()).then(|| format!("Missing parameter: {}", absent.join(", ")))
}

fn login(inner: &mut Inner, key: &[u8], fields: &Fields) -> Response {
    if let Some(message) = missing(fields, &["username", "password"]) {
        inner.stats.iot.bad_request += 1;
        return error(StatusCode::BAD_REQUEST, &message);
    }
    let (username, password) = (
        form::field(fields, "username"),
        form::field(fields, "password"),
    );
    let user = inner
        .iot
        .config
        .users
        .iter()
        .find(|u| {
            (Some(u.username.as_str()) == username || Some(u.email.as_str()) == username)
                && Some(u.password.as_str()) == password
        })
        .cloned();
    let Some(user) = user else {
        inner.stats.iot.logins_failed += 1;
        return error(StatusCode::UNAUTHORIZED, "Invalid username or password");
    };
    let now = inner.now();
    let store = &mut inner.iot;
    store.sessions.push(IotSession {
        user_id: user.user_id.clone(),
        username: user.username.clone(),
        revoked: false,
        created_at: now,
        revoked_at: None,
    });
    let session = store.sessions.len() - 1;
    let mut body = issue(store, key, session, &user.user_id, now);
    body["scope"] = json!(store.config.scope);
    body["userinfo"] = userinfo(&user);
    inner.stats.iot.logins_ok += 1;
    (StatusCode::OK, Json(body)).into_response()
}

fn userinfo(user: &IotUser) -> Value {
    json!({"id": user.user_id, "username": user.username, "email": user.email})
}

fn renew(inner: &mut Inner, key: &[u8], fields: &Fields) -> Response {
    if let Some(message) = missing(fields, &["refresh_token", "userid"]) {
        inner.stats.iot.bad_request += 1;
        return error(StatusCode::BAD_REQUEST, &message);
    }
    let now = inner.now();
    let token = form::field(fields, "refresh_token").unwrap_or_default();
    let userid = form::field(fields, "userid").unwrap_or_default();
    let store = &mut inner.iot;
    let Some(session) = store.live_refresh(token, now) else {
        inner.stats.iot.refresh_failed += 1;
        return error(StatusCode::UNAUTHORIZED, "Invalid refresh token");
    };
    let owner = store.sessions[session].user_id.clone();
    if owner != userid {
        inner.stats.iot.refresh_failed += 1;
        return error(
            StatusCode::UNAUTHORIZED,
            "The refresh token does not belong to this user",
        );
    }
    if let Some(record) = store.refresh_tokens.get_mut(token) {
        record.used = true;
    }
    let body = issue(store, key, session, &owner, now);
    inner.stats.iot.refresh_ok += 1;
    (StatusCode::OK, Json(body)).into_response()
}

/// A new access JWT and refresh token for a session: the fields both grants return.
fn issue(
    store: &mut Store,
    key: &[u8],
    session: usize,
    user_id: &str,
    now: DateTime<Utc>,
) -> Value {
    let lifetime = i64::try_from(store.config.access_token_lifetime.as_secs()).unwrap_or(86_400);
    let iat = now.timestamp();
    let exp = iat.saturating_add(lifetime);
    let jti = uuid::Uuid::new_v4().to_string();
    let claims = json!({
        "ctx": {"owner": user_id},
        "iat": iat,
        "exp": exp,
        "expireIn": lifetime,
        "iss": "cer:usertoken",
        "jti": jti,
    });
    store.access_tokens.insert(jti, session);
    let refresh_token = random_token(32);
    store.refresh_tokens.insert(
        refresh_token.clone(),
        RefreshToken {
            session,
            expires_at: now + chrono_duration(store.config.refresh_token_lifetime),
            used: false,
        },
    );
    let expires_in = match store.config.expires_in_format {
        ExpiresInFormat::EpochMs => exp.saturating_mul(1000),
        ExpiresInFormat::EpochS => exp,
        ExpiresInFormat::Relative => lifetime,
    };
    json!({
        "access_token": jwt::sign(key, &claims),
        "token_type": "Bearer",
        "expires_in": expires_in,
        "refresh_token": refresh_token,
    })
}

// ------------------------------------------------------------------ logout

async fn logout(State(state): State<AppState>, request: Request) -> Response {
    if let Some(response) = gate(&state, Provider::Iot).await {
        return response;
    }
    let fields = form::read_form_or_multipart(request).await;
    let mut inner = state.lock();
    let fields = match fields {
        Ok(fields) => fields,
        Err(e) => {
            inner.stats.iot.logouts_failed += 1;
            let (status, message) = body_error(e);
            return logout_answer(status, Some(&message), Value::Null);
        }
    };
    let Some(token) = form::field(&fields, "refresh_token") else {
        inner.stats.iot.logouts_failed += 1;
        return logout_answer(
            StatusCode::BAD_REQUEST,
            Some("Missing parameter: refresh_token"),
            Value::Null,
        );
    };
    let now = inner.now();
    let store = &mut inner.iot;
    let Some(index) = store.live_refresh(token, now) else {
        inner.stats.iot.logouts_failed += 1;
        return logout_answer(
            StatusCode::UNAUTHORIZED,
            Some("Invalid refresh token"),
            Value::Null,
        );
    };
    let session = &mut store.sessions[index];
    session.revoked = true;
    session.revoked_at = Some(now);
    let result = json!({
        "userid": session.user_id,
        "username": session.username,
        "token_type": "Bearer",
        "scope": store.config.scope,
        "created_at": session.created_at.timestamp_millis(),
        "revoked_at": now.timestamp_millis(),
        "revoked": true,
    });
    inner.stats.iot.logouts += 1;
    logout_answer(StatusCode::OK, None, result)
}

// ------------------------------------------------------------------ me

/// Not in the seed: lets tests and the demo see whether an access token still works.
async fn me(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(response) = gate(&state, Provider::Iot).await {
        return response;
    }
    let mut inner = state.lock();
    let now = inner.now().timestamp();
    let claims = bearer(&headers).and_then(|token| jwt::verify(&state.jwt_key, token));
    let user = claims.and_then(|claims| {
        let exp = claims["exp"].as_i64()?;
        let session = *inner.iot.access_tokens.get(claims["jti"].as_str()?)?;
        let session = inner.iot.sessions.get(session)?;
        if exp <= now || session.revoked {
            return None;
        }
        inner
            .iot
            .config
            .users
            .iter()
            .find(|u| u.user_id == session.user_id)
            .map(userinfo)
    });
    match user {
        Some(user) => {
            inner.stats.iot.me_ok += 1;
            Json(json!({"status": 200, "error": null, "result": user})).into_response()
        }
        None => {
            inner.stats.iot.me_unauthorized += 1;
            error(StatusCode::UNAUTHORIZED, "Invalid or expired access token")
        }
    }
}
