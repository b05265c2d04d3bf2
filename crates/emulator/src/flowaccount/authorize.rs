//! `/flowaccount/connect/authorize`: login, business picker, approve / deny.
//!
//! Plain HTML forms. Every POST carries the original authorize parameters as hidden
//! fields, so the handler is stateless but for the login ticket; a client that cannot
//! render pages (the `approve()` helper) may post the parameters, credentials,
//! `support_code` and `decision` in one go.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};

use super::{chrono_duration, pages, Code, Pkce, PkceMethod, Store, Ticket};
use crate::config::FaUser;
use crate::form::{self, Fields};
use crate::state::{random_token, AppState};

/// The authorize request's own parameters, as received.
#[derive(Debug, Clone, Default)]
pub(super) struct AuthorizeParams {
    pub(super) response_type: Option<String>,
    pub(super) client_id: Option<String>,
    pub(super) redirect_uri: Option<String>,
    pub(super) scope: Option<String>,
    pub(super) state: Option<String>,
    pub(super) code_challenge: Option<String>,
    pub(super) code_challenge_method: Option<String>,
}

impl AuthorizeParams {
    const NAMES: [&'static str; 7] = [
        "response_type",
        "client_id",
        "redirect_uri",
        "scope",
        "state",
        "code_challenge",
        "code_challenge_method",
    ];

    fn from_fields(fields: &Fields) -> Self {
        let get = |name: &str| form::field(fields, name).map(str::to_string);
        AuthorizeParams {
            response_type: get("response_type"),
            client_id: get("client_id"),
            redirect_uri: get("redirect_uri"),
            scope: get("scope"),
            state: get("state"),
            code_challenge: get("code_challenge"),
            code_challenge_method: get("code_challenge_method"),
        }
    }

    /// (name, value) of every parameter present, for the forms' hidden fields.
    pub(super) fn pairs(&self) -> Vec<(&'static str, &str)> {
        let values = [
            &self.response_type,
            &self.client_id,
            &self.redirect_uri,
            &self.scope,
            &self.state,
            &self.code_challenge,
            &self.code_challenge_method,
        ];
        Self::NAMES
            .iter()
            .zip(values)
            .filter_map(|(name, value)| value.as_deref().map(|v| (*name, v)))
            .collect()
    }
}

/// A request that passed validation: where to send the user back, and what to bind.
struct Valid {
    client_id: String,
    redirect_uri: String,
    scope: String,
    state: Option<String>,
    pkce: Option<Pkce>,
}

enum Invalid {
    /// The redirect URI cannot be trusted: tell the user, never redirect (§4.1.2.1).
    Page(String),
    /// Tell the client, through its redirect URI: the `Location`.
    Redirect(String),
}

fn validate(store: &Store, params: &AuthorizeParams) -> Result<Valid, Invalid> {
    let Some(client_id) = params.client_id.as_deref() else {
        return Err(Invalid::Page("The request has no client_id.".into()));
    };
    let Some(client) = store.clients.get(client_id) else {
        return Err(Invalid::Page(format!("Unknown client {client_id:?}.")));
    };
    let Some(redirect_uri) = params.redirect_uri.as_deref() else {
        return Err(Invalid::Page("The request has no redirect_uri.".into()));
    };
    if !client.redirect_uris.iter().any(|r| r == redirect_uri) {
        return Err(Invalid::Page(
            "The redirect_uri is not registered for this client (it must match exactly).".into(),
        ));
    }
    let state = params.state.clone();
    let fail = |error: &str, description: &str| {
        Invalid::Redirect(location(
            redirect_uri,
            &[
                ("error", Some(error)),
                ("error_description", Some(description)),
                ("state", state.as_deref()),
            ],
        ))
    };
    match params.response_type.as_deref() {
        None => return Err(fail("invalid_request", "response_type is missing.")),
        Some("code") => {}
        Some(_) => {
            return Err(fail(
                "unsupported_response_type",
                "Only response_type=code is supported.",
            ))
        }
    }
    let Some(scope) = params.scope.as_deref() else {
        return Err(fail("invalid_request", "scope is missing."));
    };
    if scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .any(|s| !store.config.allowed_scopes.iter().any(|a| a == s))
    {
        return Err(fail("invalid_scope", "A requested scope is not allowed."));
    }
    let pkce = match (
        params.code_challenge.as_deref(),
        params.code_challenge_method.as_deref(),
    ) {
        (None, None) => None,
        (None, Some(_)) => return Err(fail("invalid_request", "code_challenge is missing.")),
        (Some(challenge), method) => {
            let method = match method {
                None | Some("plain") => PkceMethod::Plain,
                Some("S256") => PkceMethod::S256,
                Some(_) => {
                    return Err(fail(
                        "invalid_request",
                        "Transform algorithm not supported.",
                    ))
                }
            };
            if !(43..=128).contains(&challenge.len()) {
                return Err(fail("invalid_request", "Invalid code_challenge."));
            }
            Some(Pkce {
                challenge: challenge.to_string(),
                method,
            })
        }
    };
    Ok(Valid {
        client_id: client_id.to_string(),
        redirect_uri: redirect_uri.to_string(),
        scope: scope.to_string(),
        state,
        pkce,
    })
}

/// `redirect_uri` + parameters, appended with `?` or `&` as the URI already needs.
fn location(redirect_uri: &str, params: &[(&str, Option<&str>)]) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        if let Some(value) = value {
            query.append_pair(name, value);
        }
    }
    let separator = if redirect_uri.contains('?') { '&' } else { '?' };
    format!("{redirect_uri}{separator}{}", query.finish())
}

fn redirect(redirect_uri: &str, params: &[(&str, Option<&str>)]) -> Response {
    see_other(location(redirect_uri, params))
}

fn see_other(location: String) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
}

fn error_page(message: &str) -> Response {
    (StatusCode::BAD_REQUEST, Html(pages::error(message))).into_response()
}

fn parse_query(query: Option<&str>) -> Result<Fields, String> {
    form::parse_urlencoded(query.unwrap_or_default().as_bytes()).map_err(|e| match e {
        form::BodyError::Repeated(name) => format!("Parameter {name} is repeated."),
        _ => "Unreadable request.".to_string(),
    })
}

/// `GET …/connect/authorize?…`: the login page, or an error.
pub(super) async fn show(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let mut inner = state.lock();
    inner.stats.flowaccount.authorize_requests += 1;
    let fields = match parse_query(query.as_deref()) {
        Ok(fields) => fields,
        Err(message) => {
            inner.stats.flowaccount.authorize_errors += 1;
            return error_page(&message);
        }
    };
    let params = AuthorizeParams::from_fields(&fields);
    match validate(&inner.flowaccount, &params) {
        Ok(_) => Html(pages::login(&params, None)).into_response(),
        Err(invalid) => {
            inner.stats.flowaccount.authorize_errors += 1;
            match invalid {
                Invalid::Page(message) => error_page(&message),
                Invalid::Redirect(location) => see_other(location),
            }
        }
    }
}

/// `POST …/connect/authorize`: the login form, then the picker's approve / deny.
pub(super) async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut inner = state.lock();
    let now = inner.now();
    if !form::is_form(&headers) {
        return error_page("The form must be posted as application/x-www-form-urlencoded.");
    }
    let fields = match form::parse_urlencoded(&body) {
        Ok(fields) => fields,
        Err(_) => return error_page("Unreadable form."),
    };
    let params = AuthorizeParams::from_fields(&fields);
    let valid = match validate(&inner.flowaccount, &params) {
        Ok(valid) => valid,
        Err(Invalid::Page(message)) => return error_page(&message),
        Err(Invalid::Redirect(location)) => return see_other(location),
    };
    let decision = form::field(&fields, "decision");
    if decision == Some("deny") {
        // The user refused (or cancelled the login): RFC 6749 §4.1.2.1.
        inner.stats.flowaccount.denials += 1;
        return redirect(
            &valid.redirect_uri,
            &[
                ("error", Some("access_denied")),
                (
                    "error_description",
                    Some("The user denied the authorization request."),
                ),
                ("state", valid.state.as_deref()),
            ],
        );
    }
    let store = &mut inner.flowaccount;
    store.tickets.retain(|_, t| t.expires_at > now);
    let user = match logged_in_user(store, &fields) {
        Login::User(user) => user,
        Login::Nobody => return Html(pages::login(&params, None)).into_response(),
        Login::Failed => {
            inner.stats.flowaccount.logins_failed += 1;
            return Html(pages::login(&params, Some("Invalid username or password.")))
                .into_response();
        }
    };
    let ticket = match form::field(&fields, "ticket") {
        Some(ticket) if store.tickets.contains_key(ticket) => ticket.to_string(),
        _ => {
            let ticket = random_token(24);
            store.tickets.insert(
                ticket.clone(),
                Ticket {
                    username: user.username.clone(),
                    expires_at: now + chrono::Duration::minutes(15),
                },
            );
            ticket
        }
    };
    if decision != Some("approve") {
        return Html(pages::picker(&params, &ticket, &user, None)).into_response();
    }
    let chosen = form::field(&fields, "support_code")
        .and_then(|code| user.businesses.iter().find(|b| b.support_code == code));
    let Some(business) = chosen else {
        return Html(pages::picker(
            &params,
            &ticket,
            &user,
            Some("Choose one of your businesses."),
        ))
        .into_response();
    };
    let code = issue_code(store, &valid, &business.support_code, now);
    inner.stats.flowaccount.approvals += 1;
    redirect(
        &valid.redirect_uri,
        &[
            ("code", Some(code.as_str())),
            ("scope", Some(valid.scope.as_str())),
            ("state", valid.state.as_deref()),
        ],
    )
}

enum Login {
    User(FaUser),
    Nobody,
    Failed,
}

fn logged_in_user(store: &Store, fields: &Fields) -> Login {
    if let Some(ticket) = form::field(fields, "ticket").and_then(|t| store.tickets.get(t)) {
        if let Some(user) = store
            .config
            .users
            .iter()
            .find(|u| u.username == ticket.username)
        {
            return Login::User(user.clone());
        }
    }
    match (
        form::field(fields, "username"),
        form::field(fields, "password"),
    ) {
        (None, None) => Login::Nobody,
        (username, password) => store
            .config
            .users
            .iter()
            .find(|u| {
                Some(u.username.as_str()) == username && Some(u.password.as_str()) == password
            })
            .map(|u| Login::User(u.clone()))
            .unwrap_or(Login::Failed),
    }
}

fn issue_code(store: &mut Store, valid: &Valid, support_code: &str, now: DateTime<Utc>) -> String {
    let code = random_token(32);
    store.codes.insert(
        code.clone(),
        Code {
            client_id: valid.client_id.clone(),
            redirect_uri: valid.redirect_uri.clone(),
            scope: valid.scope.clone(),
            support_code: support_code.to_string(),
            pkce: valid.pkce.clone(),
            expires_at: now + chrono_duration(store.config.code_lifetime),
            used: false,
            grant: None,
        },
    );
    code
}
