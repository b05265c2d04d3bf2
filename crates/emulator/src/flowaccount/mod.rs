//! FlowAccount: an IdentityServer-like authorization-code server (PROVIDERS.md §1).
//!
//! Reads top to bottom like the protocol: the store of codes, grants and tokens, the
//! token endpoint (code exchange, refresh with rotation and reuse detection), the API's
//! `/company/info` (`company`), and a small `me` endpoint that tells whether an access
//! token still works.

mod authorize;
mod company;
mod pages;

pub(crate) use company::api_error;

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::config::{FaClient, FlowAccountConfig};
use crate::control::TokenStatus;
use crate::fault::Provider;
use crate::form::{self, bearer, BodyError, Fields};
use crate::state::{gate, random_token, AppState, Inner};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/flowaccount/connect/authorize",
            get(authorize::show).post(authorize::submit),
        )
        .route("/flowaccount/test/token", post(token))
        .route("/flowaccount/v1/token", post(token))
        .route("/flowaccount/test/me", get(me))
        .route("/flowaccount/v1/me", get(me))
        .route("/flowaccount/test/company/info", get(company::info))
        .route("/flowaccount/v1/company/info", get(company::info))
}

// ------------------------------------------------------------------ the store

pub(crate) struct Store {
    pub(crate) config: FlowAccountConfig,
    clients: HashMap<String, FaClient>,
    /// Logged-in authorize sessions (the business-picker step), by ticket.
    tickets: HashMap<String, Ticket>,
    codes: HashMap<String, Code>,
    /// One grant per exchanged code: the "family" its tokens belong to.
    grants: Vec<Grant>,
    access_tokens: HashMap<String, AccessToken>,
    refresh_tokens: HashMap<String, RefreshToken>,
}

struct Ticket {
    username: String,
    expires_at: DateTime<Utc>,
}

struct Code {
    client_id: String,
    redirect_uri: String,
    scope: String,
    support_code: String,
    pkce: Option<Pkce>,
    expires_at: DateTime<Utc>,
    used: bool,
    /// The grant its exchange created, revoked if the code comes back (RFC 6749 §4.1.2).
    grant: Option<usize>,
}

#[derive(Clone)]
struct Pkce {
    challenge: String,
    method: PkceMethod,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum PkceMethod {
    Plain,
    S256,
}

struct Grant {
    client_id: String,
    support_code: String,
    scope: String,
    revoked: bool,
}

struct AccessToken {
    grant: usize,
    expires_at: DateTime<Utc>,
}

struct RefreshToken {
    grant: usize,
    expires_at: DateTime<Utc>,
    /// Rotated out: a newer refresh token replaced it.
    used: bool,
}

impl Store {
    pub(crate) fn new(config: FlowAccountConfig) -> Self {
        let clients = config
            .clients
            .iter()
            .map(|c| (c.client_id.clone(), c.clone()))
            .collect();
        Store {
            config,
            clients,
            tickets: HashMap::new(),
            codes: HashMap::new(),
            grants: Vec::new(),
            access_tokens: HashMap::new(),
            refresh_tokens: HashMap::new(),
        }
    }

    pub(crate) fn register_client(&mut self, client: FaClient) {
        self.clients.insert(client.client_id.clone(), client);
    }

    pub(crate) fn refresh_token_status(&self, token: &str, now: DateTime<Utc>) -> TokenStatus {
        let Some(record) = self.refresh_tokens.get(token) else {
            return TokenStatus::Unknown;
        };
        if self.grants.get(record.grant).is_none_or(|g| g.revoked) {
            TokenStatus::Revoked
        } else if record.used {
            TokenStatus::Used
        } else if record.expires_at <= now {
            TokenStatus::Expired
        } else {
            TokenStatus::Current
        }
    }

    /// Revokes a grant and so every token in its family; true if it was live.
    fn revoke_grant(&mut self, grant: usize) -> bool {
        match self.grants.get_mut(grant) {
            Some(g) if !g.revoked => {
                g.revoked = true;
                true
            }
            _ => false,
        }
    }

    fn issue_tokens(&mut self, grant: usize, now: DateTime<Utc>) -> serde_json::Value {
        let access_token = random_token(32);
        let lifetime = chrono_duration(self.config.access_token_lifetime);
        self.access_tokens.insert(
            access_token.clone(),
            AccessToken {
                grant,
                expires_at: now + lifetime,
            },
        );
        let (support_code, offline) = match self.grants.get(grant) {
            Some(g) => (
                g.support_code.clone(),
                g.scope.split(' ').any(|s| s == "offline_access"),
            ),
            None => (String::new(), false),
        };
        let mut body = json!({
            "access_token": access_token,
            "expires_in": lifetime.num_seconds(),
            "token_type": "bearer",
            "supportCode": support_code,
        });
        // Without offline_access no refresh token is issued [doc].
        if offline {
            let refresh_token = random_token(32);
            self.refresh_tokens.insert(
                refresh_token.clone(),
                RefreshToken {
                    grant,
                    expires_at: now + chrono_duration(self.config.refresh_token_lifetime),
                    used: false,
                },
            );
            body["refresh_token"] = json!(refresh_token);
        }
        body
    }
}

pub(crate) fn chrono_duration(d: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

// ------------------------------------------------------------------ errors

/// An RFC 6749 §5.2 error response.
pub(crate) fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut response = (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response();
    no_store(&mut response);
    response
}

fn no_store(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

struct TokenError {
    status: StatusCode,
    error: &'static str,
    description: String,
}

impl TokenError {
    fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        TokenError {
            status,
            error,
            description: description.into(),
        }
    }
    fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }
    fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", description)
    }
    fn invalid_client() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed.",
        )
    }
}

// ------------------------------------------------------------------ token endpoint

async fn token(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(response) = gate(&state, Provider::FlowAccount).await {
        return response;
    }
    let mut inner = state.lock();
    inner.stats.flowaccount.token_requests += 1;
    match token_grant(&mut inner, &headers, &body) {
        Ok(body) => {
            let mut response = (StatusCode::OK, Json(body)).into_response();
            no_store(&mut response);
            response
        }
        Err(e) => {
            let stats = &mut inner.stats.flowaccount;
            match e.error {
                "invalid_grant" => stats.invalid_grant += 1,
                "invalid_client" => stats.invalid_client += 1,
                "unsupported_grant_type" => stats.unsupported_grant_type += 1,
                _ => stats.invalid_request += 1,
            }
            let mut response = oauth_error(e.status, e.error, &e.description);
            if e.status == StatusCode::UNAUTHORIZED && headers.contains_key(header::AUTHORIZATION) {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"flowaccount\""),
                );
            }
            response
        }
    }
}

fn token_grant(
    inner: &mut Inner,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<serde_json::Value, TokenError> {
    if !form::is_form(headers) {
        return Err(TokenError::invalid_request(
            "The token request must be application/x-www-form-urlencoded.",
        ));
    }
    let fields = form::parse_urlencoded(body).map_err(|e| match e {
        BodyError::Repeated(name) => {
            TokenError::invalid_request(format!("Parameter {name} is repeated."))
        }
        _ => TokenError::invalid_request("Unreadable request body."),
    })?;
    let grant_type = form::field(&fields, "grant_type")
        .ok_or_else(|| TokenError::invalid_request("grant_type is missing."))?;
    if grant_type != "authorization_code" && grant_type != "refresh_token" {
        return Err(TokenError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "The grant type is not supported.",
        ));
    }
    let client_id = authenticate_client(&inner.flowaccount, headers, &fields)?;
    let now = inner.now();
    if grant_type == "authorization_code" {
        let body = exchange_code(inner, &client_id, &fields, now)?;
        inner.stats.flowaccount.codes_exchanged += 1;
        Ok(body)
    } else {
        let body = refresh(inner, &client_id, &fields, now)?;
        inner.stats.flowaccount.refresh_ok += 1;
        Ok(body)
    }
}

/// client_secret_post (the seed's way) or client_secret_basic (IdentityServer takes both).
fn authenticate_client(
    store: &Store,
    headers: &HeaderMap,
    fields: &Fields,
) -> Result<String, TokenError> {
    let (id, secret) = match basic_credentials(headers) {
        Some(pair) => pair,
        None => match (
            form::field(fields, "client_id"),
            form::field(fields, "client_secret"),
        ) {
            (Some(id), Some(secret)) => (id.to_string(), secret.to_string()),
            (Some(_), None) => return Err(TokenError::invalid_client()),
            _ => return Err(TokenError::invalid_request("client_id is missing.")),
        },
    };
    match store.clients.get(&id) {
        Some(client) if client.client_secret == secret => Ok(id),
        _ => Err(TokenError::invalid_client()),
    }
}

/// RFC 6749 §2.3.1: base64(urlencode(id) ":" urlencode(secret)).
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unescape = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    Some((unescape(id)?, unescape(secret)?))
}

fn exchange_code(
    inner: &mut Inner,
    client_id: &str,
    fields: &Fields,
    now: DateTime<Utc>,
) -> Result<serde_json::Value, TokenError> {
    let code_value = form::field(fields, "code")
        .ok_or_else(|| TokenError::invalid_request("code is missing."))?;
    let redirect_uri = form::field(fields, "redirect_uri")
        .ok_or_else(|| TokenError::invalid_request("redirect_uri is missing."))?;
    let store = &mut inner.flowaccount;
    let Some(code) = store.codes.get_mut(code_value) else {
        return Err(TokenError::invalid_grant("Invalid authorization code."));
    };
    if code.used {
        // RFC 6749 §4.1.2: a code used twice revokes what it granted.
        let grant = code.grant;
        inner.stats.flowaccount.code_reuse_detected += 1;
        if let Some(grant) = grant {
            if store.revoke_grant(grant) {
                inner.stats.flowaccount.families_revoked += 1;
            }
        }
        return Err(TokenError::invalid_grant(
            "The authorization code has already been used.",
        ));
    }
    // Any attempt consumes the code, as IdentityServer removes it on lookup.
    code.used = true;
    if code.expires_at <= now {
        return Err(TokenError::invalid_grant(
            "The authorization code has expired.",
        ));
    }
    if code.client_id != client_id {
        return Err(TokenError::invalid_grant(
            "The authorization code was issued to another client.",
        ));
    }
    if code.redirect_uri != redirect_uri {
        return Err(TokenError::invalid_grant("redirect_uri does not match."));
    }
    check_pkce(code.pkce.as_ref(), form::field(fields, "code_verifier"))?;
    let grant = store.grants.len();
    store.grants.push(Grant {
        client_id: code.client_id.clone(),
        support_code: code.support_code.clone(),
        scope: code.scope.clone(),
        revoked: false,
    });
    code.grant = Some(grant);
    Ok(store.issue_tokens(grant, now))
}

/// RFC 7636 §4.6, and RFC 9700 §2.1.1: a verifier without a challenge is refused too.
fn check_pkce(pkce: Option<&Pkce>, verifier: Option<&str>) -> Result<(), TokenError> {
    match (pkce, verifier) {
        (None, None) => Ok(()),
        (None, Some(_)) => Err(TokenError::invalid_grant(
            "code_verifier sent but no code_challenge was.",
        )),
        (Some(_), None) => Err(TokenError::invalid_grant("code_verifier is missing.")),
        (Some(pkce), Some(verifier)) => {
            let well_formed = (43..=128).contains(&verifier.len())
                && verifier
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
            let computed = match pkce.method {
                PkceMethod::Plain => verifier.to_string(),
                PkceMethod::S256 => URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())),
            };
            if well_formed && computed == pkce.challenge {
                Ok(())
            } else {
                Err(TokenError::invalid_grant("Invalid code_verifier."))
            }
        }
    }
}

fn refresh(
    inner: &mut Inner,
    client_id: &str,
    fields: &Fields,
    now: DateTime<Utc>,
) -> Result<serde_json::Value, TokenError> {
    let token = form::field(fields, "refresh_token")
        .ok_or_else(|| TokenError::invalid_request("refresh_token is missing."))?;
    let store = &mut inner.flowaccount;
    let invalid = || TokenError::invalid_grant("Invalid refresh token.");
    let Some(record) = store.refresh_tokens.get(token) else {
        return Err(invalid());
    };
    let grant_index = record.grant;
    let Some(grant) = store.grants.get(grant_index) else {
        return Err(invalid());
    };
    if grant.client_id != client_id || grant.revoked {
        return Err(invalid());
    }
    if record.used {
        // RFC 9700 §4.14.2: an old refresh token came back; someone holds a copy.
        if store.config.reuse_detection {
            inner.stats.flowaccount.reuse_detected += 1;
            if store.revoke_grant(grant_index) {
                inner.stats.flowaccount.families_revoked += 1;
            }
        }
        return Err(invalid());
    }
    if record.expires_at <= now {
        return Err(TokenError::invalid_grant("The refresh token has expired."));
    }
    if let Some(record) = store.refresh_tokens.get_mut(token) {
        record.used = true;
    }
    Ok(store.issue_tokens(grant_index, now))
}

// ------------------------------------------------------------------ me

/// Not in the seed: lets tests and the demo see whether an access token still works.
async fn me(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(response) = gate(&state, Provider::FlowAccount).await {
        return response;
    }
    let mut inner = state.lock();
    let now = inner.now();
    let store = &inner.flowaccount;
    let business = bearer(&headers)
        .and_then(|token| store.access_tokens.get(token))
        .filter(|t| t.expires_at > now)
        .and_then(|t| store.grants.get(t.grant))
        .filter(|g| !g.revoked)
        .map(|g| {
            let name = store
                .config
                .users
                .iter()
                .flat_map(|u| u.businesses.iter())
                .find(|b| b.support_code == g.support_code)
                .map(|b| b.name.clone())
                .unwrap_or_default();
            (g.support_code.clone(), name)
        });
    match business {
        Some((support_code, name)) => {
            inner.stats.flowaccount.me_ok += 1;
            Json(json!({"supportCode": support_code, "businessName": name})).into_response()
        }
        None => {
            inner.stats.flowaccount.me_unauthorized += 1;
            let mut response = oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "The access token is invalid, expired or revoked.",
            );
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
            response
        }
    }
}
