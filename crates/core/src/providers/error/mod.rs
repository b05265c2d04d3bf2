//! Every way a provider call can fail, turned into one [`crate::Error`].
//!
//! Providers answer errors in four shapes (PROVIDERS.md, "Common rules"):
//! RFC 6749 §5.2 `{error, error_description, error_uri}` (FlowAccount's IdentityServer),
//! FedEx's `{transactionId, errors:[{code, message, parameterList}]}`, the IoT platform's
//! `{status, error|message}`, and non-JSON bodies (a gateway's HTML page, nothing at all).
//! [`from_response`] reads all four, then maps status + provider code to an
//! [`ErrorCode`] and a sentence a person can act on.
//!
//! What goes into `detail`: the HTTP status, the provider's error code and description,
//! and at most [`EXCERPT_CHARS`] of an unexpected body, with every secret sent in the
//! request replaced by `[redacted]`, token-bearing JSON fields blanked, and FedEx
//! `parameterList` values dropped (keys only).
//!
//! Every provider-supplied string, wherever it goes (`message`, `detail`, and the
//! fields of a token answer that are stored and shown: scope, `supportCode`,
//! `userinfo`…), passes the same [`Redactor`]: the request's secrets become
//! `[redacted]`, and terminal escape sequences, control characters and bidi overrides
//! are removed ([`clean_text`]), so a provider's text can neither leak a secret nor
//! repaint a terminal.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::error::{Error, ErrorCode};
use crate::model::Provider;
use crate::secret::AnySecret;

/// What we were doing when the provider said no; it changes what an error means
/// (a 401 on IoT login is a wrong password, on IoT refresh a dead session).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    AuthorizationCode,
    Refresh,
    ClientCredentials,
    PasswordLogin,
    Logout,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::Refresh => "refresh",
            Self::ClientCredentials => "client_credentials",
            Self::PasswordLogin => "password_login",
            Self::Logout => "logout",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The longest body excerpt (in characters) kept in an error's `detail`.
pub const EXCERPT_CHARS: usize = 200;

const REDACTED: &str = "[redacted]";

/// JSON fields that may carry a live or revoked token, blanked before any excerpt.
/// (`result` is the revoked user token of an IoT logout answer.)
/// (An echoed authorization `code` is caught by the [`Redactor`]: a bare `code` key is
/// too often an error code to blank.)
const TOKEN_FIELDS: [&str; 8] = [
    "access_token",
    "refresh_token",
    "id_token",
    "result",
    "password",
    "client_secret",
    "child_secret",
    "code_verifier",
];

/// Turns a non-success HTTP answer into an [`Error`].
///
/// `sent_secrets` are the secrets the request carried (client secret, code, refresh
/// token, password…): any echo of them in the body is redacted from `detail`.
pub fn from_response(
    provider: Provider,
    op: Operation,
    status: u16,
    retry_after: Option<&str>,
    body: &[u8],
    sent_secrets: &[&dyn AnySecret],
) -> Error {
    let parsed = ParsedBody::parse(body);
    let redactor = Redactor::new(sent_secrets, parsed.parameter_values());
    let code = classify(provider, op, status, &parsed);
    let who = subject(provider);

    let mut detail = format!("HTTP {status}");
    parsed.describe(&redactor, &mut detail);

    let mut retry = None;
    let message = match code {
        ErrorCode::RateLimited => {
            retry = retry_after.and_then(|v| parse_retry_after(v, Utc::now()));
            match retry {
                Some(d) => format!(
                    "{who} is limiting requests: wait {} seconds and try again.",
                    d.as_secs().max(1)
                ),
                None => format!("{who} is limiting requests: wait a minute and try again."),
            }
        }
        ErrorCode::InvalidResponse => format!(
            "{who}'s endpoint redirected instead of answering (HTTP {status}): check the URL in the client settings."
        ),
        ErrorCode::ProviderUnavailable => {
            format!("{who} is not available right now (HTTP {status}): try again later.")
        }
        other => message_for(
            provider,
            op,
            other,
            status,
            parsed.primary_code().map(|c| redactor.excerpt(&c)),
        ),
    };

    let mut err = Error::new(code, message).with_detail(detail);
    if let Some(d) = retry {
        err = err.with_retry_after(d);
    }
    err
}

/// Turns a transport failure (no usable HTTP answer) into an [`Error`].
///
/// The detail is built from the error's kind and its source chain, never from its
/// top-level `Display`, which may carry the request URL.
pub fn from_transport(provider: Provider, err: &reqwest::Error) -> Error {
    let who = subject(provider);
    let chain = source_chain(err);
    let (code, what) = if err.is_timeout() {
        (
            ErrorCode::ProviderUnavailable,
            "did not answer in time (timeout)",
        )
    } else if err.is_connect() {
        (
            ErrorCode::ProviderUnavailable,
            "could not be reached (connection failed)",
        )
    } else if err.is_decode() {
        (
            ErrorCode::InvalidResponse,
            "sent an answer that could not be decoded",
        )
    } else if looks_like_reset(err, &chain) {
        (
            ErrorCode::ProviderUnavailable,
            "closed the connection before answering (connection reset)",
        )
    } else if err.is_body() {
        (
            ErrorCode::ProviderUnavailable,
            "broke off while sending its answer (incomplete body)",
        )
    } else if err.is_redirect() {
        (
            ErrorCode::InvalidResponse,
            "redirected instead of answering: check the URL in the client settings",
        )
    } else if err.is_builder() {
        (
            ErrorCode::Internal,
            "could not be asked (bad request setup)",
        )
    } else {
        (ErrorCode::ProviderUnavailable, "could not be reached")
    };
    let message = if code == ErrorCode::ProviderUnavailable {
        format!("{who} {what}: check the network and try again.")
    } else {
        format!("{who} {what}.")
    };
    let kind = transport_kind(err);
    let detail = if chain.is_empty() {
        kind.to_string()
    } else {
        let chain = clean_text(&chain.join(": "));
        format!("{kind}: {}", truncate(&chain, 2 * EXCERPT_CHARS))
    };
    Error::new(code, message).with_detail(detail)
}

/// A 2xx answer we cannot use: not JSON, or JSON without an `access_token`.
pub fn invalid_token_response(
    provider: Provider,
    status: u16,
    body: &[u8],
    sent_secrets: &[&dyn AnySecret],
) -> Error {
    let parsed = ParsedBody::parse(body);
    let redactor = Redactor::new(sent_secrets, parsed.parameter_values());
    let who = subject(provider);
    let detail = match &parsed {
        ParsedBody::Empty => format!("HTTP {status}; empty body"),
        ParsedBody::Json(Value::Object(map)) => {
            let keys: Vec<&str> = map.keys().map(String::as_str).collect();
            format!(
                "HTTP {status}; no usable access_token; fields: [{}]",
                redactor.excerpt(&keys.join(", "))
            )
        }
        ParsedBody::Json(v) => format!(
            "HTTP {status}; JSON but not an object: {}",
            redactor.excerpt(&json_excerpt(v))
        ),
        ParsedBody::Text(t) => format!("HTTP {status}; not JSON: {}", redactor.excerpt(t)),
    };
    Error::new(
        ErrorCode::InvalidResponse,
        format!("{who} answered without a usable token: try again later, and check the token URL if it keeps happening."),
    )
    .with_detail(detail)
}

/// Parses `Retry-After`: delay-seconds or an HTTP-date (RFC 9110 §10.2.3).
/// A date in the past means "now" (zero).
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    // IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") is a valid RFC 2822 date.
    let at = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

/// What the body of an error answer turned out to be.
#[derive(Debug)]
enum ParsedBody {
    Empty,
    Json(Value),
    Text(String),
}

impl ParsedBody {
    fn parse(body: &[u8]) -> Self {
        let text = String::from_utf8_lossy(body);
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Self::Empty;
        }
        match serde_json::from_str::<Value>(trimmed) {
            Ok(v) => Self::Json(v),
            Err(_) => Self::Text(trimmed.to_string()),
        }
    }

    fn object(&self) -> Option<&Map<String, Value>> {
        match self {
            Self::Json(Value::Object(m)) => Some(m),
            _ => None,
        }
    }

    /// RFC 6749 `error`, or an `error` object's `code`.
    fn oauth_error(&self) -> Option<String> {
        let m = self.object()?;
        match m.get("error")? {
            Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
            Value::Object(inner) => string_of(inner.get("code")?),
            _ => None,
        }
    }

    /// FedEx `errors[].code`, in order.
    fn fedex_codes(&self) -> Vec<String> {
        self.fedex_errors()
            .filter_map(|e| e.get("code").and_then(string_of))
            .collect()
    }

    fn fedex_errors(&self) -> impl Iterator<Item = &Map<String, Value>> {
        self.object()
            .and_then(|m| m.get("errors"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_object)
    }

    /// The provider's own error code, whichever shape carried it.
    fn primary_code(&self) -> Option<String> {
        self.oauth_error()
            .or_else(|| self.fedex_codes().into_iter().next())
    }

    /// The human text the provider sent (`error_description`, IoT `message`, or an
    /// IoT `error` sentence).
    fn description(&self) -> Option<String> {
        let m = self.object()?;
        for key in ["error_description", "message", "error_message", "detail"] {
            if let Some(s) = m.get(key).and_then(string_of) {
                return Some(s);
            }
        }
        if let Some(Value::Object(inner)) = m.get("error") {
            return inner.get("message").and_then(string_of);
        }
        None
    }

    /// FedEx `parameterList[].value`s: never shown, and redacted if echoed elsewhere.
    fn parameter_values(&self) -> Vec<String> {
        self.fedex_errors()
            .filter_map(|e| e.get("parameterList").and_then(Value::as_array))
            .flatten()
            .filter_map(|p| p.get("value").and_then(string_of))
            .collect()
    }

    fn body_status(&self) -> Option<u16> {
        self.object()
            .and_then(|m| m.get("status"))
            .and_then(number_of)
            .and_then(|n| u16::try_from(n as i64).ok())
    }

    /// Appends `; …` parts describing the body to `out`.
    fn describe(&self, r: &Redactor, out: &mut String) {
        match self {
            Self::Empty => out.push_str("; empty body"),
            Self::Text(t) => {
                out.push_str("; not JSON: ");
                out.push_str(&r.excerpt(&strip_markup(t)));
            }
            Self::Json(v) => {
                let Some(m) = v.as_object() else {
                    out.push_str("; JSON: ");
                    out.push_str(&r.excerpt(&json_excerpt(v)));
                    return;
                };
                let mut known = false;
                if let Some(e) = self.oauth_error() {
                    out.push_str(&format!("; error={}", r.excerpt(&e)));
                    known = true;
                }
                for item in self.fedex_errors() {
                    known = true;
                    let code = item.get("code").and_then(string_of).unwrap_or_default();
                    out.push_str(&format!("; FedEx {}", r.excerpt(&code)));
                    if let Some(msg) = item.get("message").and_then(string_of) {
                        out.push_str(&format!(": {}", r.excerpt(&msg)));
                    }
                    let keys: Vec<String> = item
                        .get("parameterList")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(|p| p.get("key").and_then(string_of))
                        .collect();
                    if !keys.is_empty() {
                        out.push_str(&format!(" (parameters: {})", r.excerpt(&keys.join(", "))));
                    }
                }
                if let Some(s) = self.body_status() {
                    out.push_str(&format!("; status={s}"));
                    known = true;
                }
                if let Some(d) = self.description() {
                    out.push_str(&format!("; {}", r.excerpt(&d)));
                    known = true;
                }
                if let Some(uri) = m.get("error_uri").and_then(string_of) {
                    out.push_str(&format!("; see {}", r.excerpt(&uri)));
                }
                if let Some(t) = m.get("transactionId").and_then(string_of) {
                    out.push_str(&format!("; transactionId={}", r.excerpt(&t)));
                }
                if !known {
                    out.push_str("; JSON: ");
                    out.push_str(&r.excerpt(&json_excerpt(v)));
                }
            }
        }
    }
}

fn classify(provider: Provider, op: Operation, status: u16, body: &ParsedBody) -> ErrorCode {
    let oauth = body.oauth_error().map(|e| e.to_ascii_lowercase());
    let fedex = body.fedex_codes();
    let fedex_has = |c: &str| fedex.iter().any(|f| f.eq_ignore_ascii_case(c));

    if (300..400).contains(&status) {
        return ErrorCode::InvalidResponse;
    }
    if status == 429 {
        return ErrorCode::RateLimited;
    }
    if status >= 500 || fedex_has("INTERNAL.SERVER.ERROR") || fedex_has("SERVICE.UNAVAILABLE.ERROR")
    {
        return ErrorCode::ProviderUnavailable;
    }
    match oauth.as_deref() {
        // RFC 6749 §4.3: a password grant answers a wrong password with invalid_grant.
        Some("invalid_grant") if op == Operation::PasswordLogin => {
            return ErrorCode::InvalidCredentials
        }
        Some("invalid_grant") => return ErrorCode::ReauthorizationRequired,
        Some("invalid_client" | "unauthorized_client") => return ErrorCode::InvalidClient,
        Some("access_denied") => return ErrorCode::AccessDenied,
        _ => {}
    }
    if fedex_has("NOT.AUTHORIZED.ERROR") {
        return ErrorCode::InvalidClient;
    }
    match (provider, op, status) {
        (Provider::Iot, Operation::Refresh, 400 | 401) => ErrorCode::ReauthorizationRequired,
        (Provider::Iot, Operation::PasswordLogin, 401) if mentions_client(body) => {
            ErrorCode::InvalidClient
        }
        (Provider::Iot, Operation::PasswordLogin, 401) => ErrorCode::InvalidCredentials,
        // The token is already dead (revoked, expired, logged out elsewhere).
        (_, Operation::Logout, 400 | 401) => ErrorCode::ReauthorizationRequired,
        _ => ErrorCode::ProviderError,
    }
}

/// Whether an IoT 401 is about the application client rather than the user.
fn mentions_client(body: &ParsedBody) -> bool {
    let text = [body.oauth_error(), body.description()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_lowercase();
    text.contains("client") || text.contains("application") || text.contains("basic")
}

/// The provider as the subject of a sentence.
fn subject(provider: Provider) -> &'static str {
    match provider {
        Provider::FlowAccount => "FlowAccount",
        Provider::Fedex => "FedEx",
        Provider::Iot => "The IoT platform",
    }
}

fn message_for(
    provider: Provider,
    op: Operation,
    code: ErrorCode,
    status: u16,
    provider_code: Option<String>,
) -> String {
    let who = subject(provider);
    match (code, provider, op) {
        (ErrorCode::ReauthorizationRequired, _, Operation::AuthorizationCode) => format!(
            "{who} rejected the authorization code (it expired or was already used): connect again."
        ),
        (ErrorCode::ReauthorizationRequired, Provider::FlowAccount, _) => format!(
            "{who} no longer accepts this connection's refresh token: connect the business again."
        ),
        (ErrorCode::ReauthorizationRequired, _, Operation::Logout) => format!(
            "{who} says this session has already ended (logged out or expired): log in again to use it."
        ),
        (ErrorCode::ReauthorizationRequired, Provider::Iot, _) => format!(
            "{who} no longer accepts this connection's refresh token: log in again."
        ),
        (ErrorCode::ReauthorizationRequired, _, _) => {
            format!("{who} no longer accepts this connection's grant: connect again.")
        }
        (ErrorCode::InvalidClient, Provider::Fedex, _) => format!(
            "{who} rejected the project's API key or secret key (or the child credentials): check them in the client settings."
        ),
        (ErrorCode::InvalidClient, Provider::Iot, _) => format!(
            "{who} rejected the application client id: check it in the client settings."
        ),
        (ErrorCode::InvalidClient, _, _) => format!(
            "{who} rejected the app's client id or client secret: check them in the client settings."
        ),
        (ErrorCode::InvalidCredentials, _, _) => format!(
            "{who} rejected the username or password: check them and log in again."
        ),
        (ErrorCode::AccessDenied, _, _) => format!(
            "{who} denied access: approve the connection in the browser, then connect again."
        ),
        _ => {
            let what = match provider_code {
                Some(c) => format!("HTTP {status}, {}", truncate(&c, 60)),
                None => format!("HTTP {status}"),
            };
            format!("{who} refused the request ({what}): check the client settings and try again.")
        }
    }
}

/// Replaces every sent secret (and every FedEx parameter value) in text shown to people,
/// and cleans that text of terminal escapes and control characters.
pub(crate) struct Redactor {
    needles: Vec<String>,
}

impl Redactor {
    pub(crate) fn new(secrets: &[&dyn AnySecret], extra: Vec<String>) -> Self {
        let mut needles: Vec<String> = Vec::new();
        for s in secrets.iter().map(|s| s.expose().to_string()).chain(extra) {
            if s.is_empty() {
                continue;
            }
            // A body may echo the form-encoded request, a JSON-escaped copy, or (after
            // cleaning) the secret without its control characters.
            let encoded: String = url::form_urlencoded::byte_serialize(s.as_bytes()).collect();
            let json = serde_json::to_string(&s).unwrap_or_default();
            let json = json.trim_matches('"').to_string();
            let cleaned = clean_text(&s);
            for variant in [encoded, json, cleaned] {
                if !variant.is_empty() && variant != s && !needles.contains(&variant) {
                    needles.push(variant);
                }
            }
            needles.push(s);
        }
        // Longest first, so a secret containing another is replaced whole.
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        Self { needles }
    }

    fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for n in &self.needles {
            if out.contains(n.as_str()) {
                out = out.replace(n.as_str(), REDACTED);
            }
        }
        out
    }

    /// Redacted and cleaned, in full: for provider text that is kept as a value
    /// (scope, `userinfo`). Redacted before cleaning (a secret with a control character
    /// in it is still found) and after (an escape sequence inside an echoed secret does
    /// not hide it).
    pub(crate) fn clean(&self, text: &str) -> String {
        self.redact(&clean_text(&self.redact(text)))
    }

    /// Redacted first, then cut: a cut can never leave half a secret behind.
    fn excerpt(&self, text: &str) -> String {
        let text = scrub_token_text(&self.clean(text));
        truncate(&collapse_whitespace(&text), EXCERPT_CHARS)
    }

    /// A JSON value with every string (and object key) cleaned, and token-bearing
    /// fields blanked at any depth.
    pub(crate) fn clean_json(&self, v: &Value) -> Value {
        match v {
            Value::String(s) => Value::String(self.clean(s)),
            Value::Array(a) => Value::Array(a.iter().map(|v| self.clean_json(v)).collect()),
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, v)| {
                        let hidden = TOKEN_FIELDS.iter().any(|t| k.eq_ignore_ascii_case(t));
                        let v = if hidden {
                            Value::String(REDACTED.into())
                        } else {
                            self.clean_json(v)
                        };
                        (self.clean(k), v)
                    })
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

/// Provider text made safe to store and show: terminal escape sequences removed as a
/// VT parser reads them (CSI `ESC [ … m`, OSC `ESC ] … BEL`, DCS, …), then every
/// remaining control character (C0, DEL, C1) and the Unicode bidi controls dropped;
/// tabs and line breaks become spaces.
pub fn clean_text(text: &str) -> String {
    let stripped = anstream::adapter::strip_str(text).to_string();
    stripped
        .chars()
        .filter_map(|c| match c {
            '\t' | '\n' | '\r' | '\u{0b}' | '\u{0c}' | '\u{2028}' | '\u{2029}' => Some(' '),
            c if c.is_control() || is_bidi_control(c) => None,
            c => Some(c),
        })
        .collect()
}

/// The invisible characters that reorder text (Trojan Source, CVE-2021-42574).
fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
    )
}

/// Blanks what looks like an issued token in text we could not parse: the value after a
/// token field name (`"access_token": "…"`, `refresh_token=…`), and anything JWT-shaped
/// (`eyJ…`). A truncated or malformed success body may still carry a live token.
fn scrub_token_text(text: &str) -> String {
    let mut out = text.to_string();
    for key in TOKEN_FIELDS {
        let mut from = 0;
        while let Some(pos) = out[from..].find(key).map(|p| p + from) {
            let after_key = pos + key.len();
            let rest = &out[after_key..];
            // `"key" : "value"` (JSON-ish) or `key=value` (form-ish).
            let skip = rest.len() - rest.trim_start_matches(['"', ' ', '\t']).len();
            let rest2 = &rest[skip..];
            let Some(sep) = rest2.chars().next().filter(|c| *c == ':' || *c == '=') else {
                from = after_key;
                continue;
            };
            let value_start = after_key + skip + sep.len_utf8();
            let value_rest = &out[value_start..];
            let lead = value_rest.len() - value_rest.trim_start_matches([' ', '\t', '"']).len();
            let v0 = value_start + lead;
            let end = out[v0..]
                .find(['"', '&', ',', '}', ' ', '\n', '\r', '\t'])
                .map_or(out.len(), |e| v0 + e);
            // Continue after the replacement, or at the (empty) value: both are char
            // boundaries (jumping ahead by REDACTED's length without replacing was not:
            // found by the fuzz target).
            from = if end > v0 {
                out.replace_range(v0..end, REDACTED);
                v0 + REDACTED.len()
            } else {
                v0
            };
        }
    }
    redact_jwt_shapes(&out)
}

fn redact_jwt_shapes(text: &str) -> String {
    let is_b64 = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '=');
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("eyJ") {
        let run_len = rest[pos..]
            .find(|c: char| !is_b64(c))
            .unwrap_or(rest.len() - pos);
        out.push_str(&rest[..pos]);
        if run_len >= 16 {
            out.push_str(REDACTED);
        } else {
            out.push_str(&rest[pos..pos + run_len]);
        }
        rest = &rest[pos + run_len..];
    }
    out.push_str(rest);
    out
}

/// A JSON body as compact text with token-bearing fields and FedEx parameter values blanked.
fn json_excerpt(v: &Value) -> String {
    fn scrub(v: &Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, v)| {
                        let hidden = TOKEN_FIELDS.iter().any(|t| k.eq_ignore_ascii_case(t));
                        let v = if hidden {
                            Value::String(REDACTED.into())
                        } else if k == "parameterList" {
                            scrub_parameters(v)
                        } else {
                            scrub(v)
                        };
                        (k.clone(), v)
                    })
                    .collect(),
            ),
            Value::Array(a) => Value::Array(a.iter().map(scrub).collect()),
            other => other.clone(),
        }
    }
    fn scrub_parameters(v: &Value) -> Value {
        match v {
            Value::Array(a) => Value::Array(
                a.iter()
                    .map(|p| match p.get("key") {
                        Some(k) => serde_json::json!({ "key": k }),
                        None => Value::Null,
                    })
                    .collect(),
            ),
            _ => Value::Null,
        }
    }
    scrub(v).to_string()
}

/// HTML error pages say what they are in their text; drop the tags around it.
fn strip_markup(text: &str) -> String {
    if !text.starts_with('<') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut in_tag = false;
    for ch in text.chars() {
        match ch {
            '<' => {
                in_tag = true;
                out.push(' ');
            }
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    format!("(HTML) {}", out.trim())
}

fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

fn string_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A number, or a string holding one (providers are not consistent).
pub(crate) fn number_of(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|n| n.is_finite())
}

/// If a 2xx body is really an error in disguise (`{status: 401, error: "…"}`, as the
/// IoT platform may send), the status it claims; `None` when it looks like success.
pub(crate) fn embedded_error_status(body: &Value) -> Option<u16> {
    let m = body.as_object()?;
    let status = m.get("status").and_then(number_of).map(|n| n as i64);
    let has_error = match m.get("error") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::String(s)) => !s.trim().is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(_) => true,
    } || m
        .get("errors")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    match status {
        Some(s) if !(200..300).contains(&s) => Some(u16::try_from(s).unwrap_or(400).max(400)),
        _ if has_error => Some(400),
        _ => None,
    }
}

fn source_chain(err: &reqwest::Error) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = std::error::Error::source(err);
    while let Some(e) = cur {
        let text = e.to_string();
        if !text.is_empty() && out.last() != Some(&text) {
            out.push(text);
        }
        cur = e.source();
    }
    out
}

fn looks_like_reset(err: &reqwest::Error, chain: &[String]) -> bool {
    let mut cur = std::error::Error::source(err);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            if matches!(
                io.kind(),
                ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof
            ) {
                return true;
            }
        }
        cur = e.source();
    }
    chain.iter().any(|t| {
        let t = t.to_ascii_lowercase();
        t.contains("connection reset")
            || t.contains("connection closed")
            || t.contains("incomplete message")
            || t.contains("broken pipe")
    })
}

fn transport_kind(err: &reqwest::Error) -> &'static str {
    if err.is_timeout() {
        "timeout"
    } else if err.is_connect() {
        "connect error"
    } else if err.is_decode() {
        "decode error"
    } else if err.is_body() {
        "body error"
    } else if err.is_request() {
        "request error"
    } else if err.is_redirect() {
        "redirect error"
    } else {
        "transport error"
    }
}

#[cfg(test)]
mod regression_tests {
    use super::*;

    #[test]
    fn an_empty_token_value_before_multibyte_text_does_not_panic() {
        // The old cursor jumped 10 bytes past the empty value: into the 4-byte emoji.
        let text = r#"{"refresh_token":"}/]xxxx🕴%>"} {"error":"invalid_grant"}"#;
        let scrubbed = scrub_token_text(text);
        assert!(scrubbed.contains("invalid_grant"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::{
        AuthorizationCode, ChildSecret, ClientSecret, Password, PkceVerifier, RefreshToken,
    };
    use chrono::TimeZone;

    fn fa(op: Operation, status: u16, body: &str) -> Error {
        from_response(
            Provider::FlowAccount,
            op,
            status,
            None,
            body.as_bytes(),
            &[],
        )
    }

    #[test]
    fn rfc6749_invalid_grant_on_refresh_needs_reauthorization() {
        let e = fa(
            Operation::Refresh,
            400,
            r#"{"error":"invalid_grant","error_description":"refresh token expired"}"#,
        );
        assert_eq!(e.code, ErrorCode::ReauthorizationRequired);
        assert_eq!(
            e.message,
            "FlowAccount no longer accepts this connection's refresh token: connect the business again."
        );
        let d = e.detail.unwrap();
        assert!(d.contains("HTTP 400"), "{d}");
        assert!(d.contains("error=invalid_grant"), "{d}");
        assert!(d.contains("refresh token expired"), "{d}");
    }

    #[test]
    fn invalid_grant_on_code_exchange_says_connect_again() {
        let e = fa(
            Operation::AuthorizationCode,
            400,
            r#"{"error":"invalid_grant"}"#,
        );
        assert_eq!(e.code, ErrorCode::ReauthorizationRequired);
        assert!(e.message.contains("authorization code"), "{}", e.message);
    }

    #[test]
    fn client_errors_map_to_invalid_client() {
        for err in ["invalid_client", "unauthorized_client"] {
            let e = fa(
                Operation::Refresh,
                401,
                &format!(r#"{{"error":"{err}","error_uri":"https://x.test/e"}}"#),
            );
            assert_eq!(e.code, ErrorCode::InvalidClient, "{err}");
            assert!(e.detail.unwrap().contains("see https://x.test/e"));
        }
    }

    #[test]
    fn access_denied_and_other_oauth_errors() {
        assert_eq!(
            fa(
                Operation::AuthorizationCode,
                400,
                r#"{"error":"access_denied"}"#
            )
            .code,
            ErrorCode::AccessDenied
        );
        let e = fa(
            Operation::AuthorizationCode,
            400,
            r#"{"error":"invalid_scope"}"#,
        );
        assert_eq!(e.code, ErrorCode::ProviderError);
        assert!(e.message.contains("invalid_scope"), "{}", e.message);
        assert!(e.message.starts_with("FlowAccount"), "{}", e.message);
    }

    #[test]
    fn server_errors_are_temporary() {
        for status in [500, 502, 503, 504] {
            let e = fa(Operation::Refresh, status, "");
            assert_eq!(e.code, ErrorCode::ProviderUnavailable);
            assert!(e.is_temporary());
            assert!(e.detail.unwrap().contains("empty body"));
        }
    }

    #[test]
    fn html_body_is_excerpted_without_tags() {
        let html = format!(
            "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1>{}</body></html>",
            "x".repeat(1000)
        );
        let e = fa(Operation::Refresh, 502, &html);
        assert_eq!(e.code, ErrorCode::ProviderUnavailable);
        let d = e.detail.unwrap();
        assert!(d.contains("not JSON: (HTML) 502 Bad Gateway"), "{d}");
        assert!(d.chars().count() < 260, "{}", d.chars().count());
        let e = fa(Operation::Refresh, 404, "<html>Not Found</html>");
        assert_eq!(e.code, ErrorCode::ProviderError);
    }

    #[test]
    fn empty_4xx_body_is_a_provider_error() {
        let e = fa(Operation::AuthorizationCode, 400, "  ");
        assert_eq!(e.code, ErrorCode::ProviderError);
        assert_eq!(e.detail.as_deref(), Some("HTTP 400; empty body"));
    }

    #[test]
    fn rate_limited_with_seconds() {
        let e = from_response(
            Provider::Fedex,
            Operation::ClientCredentials,
            429,
            Some("17"),
            b"",
            &[],
        );
        assert_eq!(e.code, ErrorCode::RateLimited);
        assert_eq!(e.retry_after, Some(Duration::from_secs(17)));
        assert!(e.message.contains("wait 17 seconds"), "{}", e.message);
    }

    #[test]
    fn rate_limited_with_http_date() {
        let now = Utc.with_ymd_and_hms(2015, 10, 21, 7, 28, 0).unwrap();
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        // Through from_response, against the real clock: a date 2 minutes ahead.
        let at = (Utc::now() + chrono::Duration::seconds(120))
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string();
        let e = from_response(
            Provider::Iot,
            Operation::Refresh,
            429,
            Some(&at),
            b"{}",
            &[],
        );
        assert_eq!(e.code, ErrorCode::RateLimited);
        let secs = e.retry_after.unwrap().as_secs();
        assert!((100..=120).contains(&secs), "{secs}");
        // No header: still rate limited, no retry_after.
        let e = from_response(Provider::Iot, Operation::Refresh, 429, None, b"", &[]);
        assert_eq!(e.retry_after, None);
        assert!(e.message.contains("wait a minute"));
    }

    #[test]
    fn redirects_say_check_the_url() {
        let e = fa(Operation::Refresh, 302, "");
        assert_eq!(e.code, ErrorCode::InvalidResponse);
        assert!(e.message.contains("check the URL"), "{}", e.message);
    }

    #[test]
    fn fedex_not_authorized_is_invalid_client_with_code_in_detail() {
        let body = r#"{"transactionId":"624deea6-b709-470c-8c39-4b5511281492",
            "errors":[{"code":"NOT.AUTHORIZED.ERROR","message":"The given client credentials were not valid. Please modify your request and try again."}]}"#;
        let e = from_response(
            Provider::Fedex,
            Operation::ClientCredentials,
            401,
            None,
            body.as_bytes(),
            &[],
        );
        assert_eq!(e.code, ErrorCode::InvalidClient);
        assert!(e.message.starts_with("FedEx rejected"), "{}", e.message);
        let d = e.detail.unwrap();
        assert!(d.contains("FedEx NOT.AUTHORIZED.ERROR"), "{d}");
        assert!(d.contains("transactionId=624deea6"), "{d}");
    }

    #[test]
    fn fedex_server_codes_are_unavailable_even_on_4xx() {
        for code in ["INTERNAL.SERVER.ERROR", "SERVICE.UNAVAILABLE.ERROR"] {
            let body = format!(r#"{{"errors":[{{"code":"{code}","message":"try later"}}]}}"#);
            let e = from_response(
                Provider::Fedex,
                Operation::ClientCredentials,
                400,
                None,
                body.as_bytes(),
                &[],
            );
            assert_eq!(e.code, ErrorCode::ProviderUnavailable, "{code}");
        }
    }

    #[test]
    fn fedex_parameter_list_values_never_appear() {
        let body = r#"{"transactionId":"t-1","errors":[{"code":"BAD.REQUEST.ERROR",
            "message":"Invalid field value PARAM-VALUE-CANARY in request",
            "parameterList":[{"key":"child_Key","value":"PARAM-VALUE-CANARY"}]}]}"#;
        let e = from_response(
            Provider::Fedex,
            Operation::ClientCredentials,
            400,
            None,
            body.as_bytes(),
            &[],
        );
        assert_eq!(e.code, ErrorCode::ProviderError);
        let all = format!("{} {}", e.message, e.detail.clone().unwrap());
        assert!(!all.contains("PARAM-VALUE-CANARY"), "{all}");
        assert!(all.contains("parameters: child_Key"), "{all}");
        assert!(all.contains("BAD.REQUEST.ERROR"), "{all}");
    }

    #[test]
    fn echoed_secrets_are_redacted_everywhere() {
        let canary = ClientSecret::new("canary+secret/7f3a");
        let refresh = RefreshToken::new("rt-canary-1234");
        let sent: [&dyn AnySecret; 2] = [&canary, &refresh];
        let bodies = [
            format!(
                r#"{{"error":"invalid_request","error_description":"bad secret {}"}}"#,
                canary.expose()
            ),
            format!(
                "<html>client_secret={}&refresh_token={}</html>",
                "canary%2Bsecret%2F7f3a",
                refresh.expose()
            ),
            format!(
                r#"{{"unexpected":"{}","nested":{{"x":"{}"}}}}"#,
                canary.expose(),
                refresh.expose()
            ),
            format!("plain text {} {}", canary.expose(), refresh.expose()),
        ];
        for (i, body) in bodies.iter().enumerate() {
            let e = from_response(
                Provider::FlowAccount,
                Operation::Refresh,
                400,
                None,
                body.as_bytes(),
                &sent,
            );
            let all = format!("{} {:?}", e.message, e.detail);
            assert!(!all.contains("canary"), "body {i}: {all}");
            assert!(all.contains("[redacted]"), "body {i}: {all}");
        }
    }

    /// No control character (ESC, BEL, C1…) and no bidi control in `text`.
    fn assert_clean(text: &str) {
        let bad: Vec<char> = text
            .chars()
            .filter(|c| c.is_control() || is_bidi_control(*c))
            .collect();
        assert!(bad.is_empty(), "{bad:?} in {text:?}");
    }

    /// message and detail of an error, for assertions.
    fn shown(e: &Error) -> String {
        format!("{} | {}", e.message, e.detail.as_deref().unwrap_or(""))
    }

    #[test]
    fn an_iot_error_echoing_the_password_or_refresh_token_is_redacted_in_the_message() {
        let password = Password::new("CANARY-pass-e604");
        let refresh = RefreshToken::new("CANARY-rt-91aa");
        for (op, secret) in [
            (Operation::PasswordLogin, &password as &dyn AnySecret),
            (Operation::Refresh, &refresh),
        ] {
            let body = serde_json::json!({
                "status": 403,
                "error": format!("\u{1b}]2;x\u{7} got {}", secret.expose()),
            })
            .to_string();
            let e = from_response(Provider::Iot, op, 403, None, body.as_bytes(), &[secret]);
            assert_eq!(e.code, ErrorCode::ProviderError, "{op}");
            let all = shown(&e);
            assert!(!all.contains("CANARY"), "{op}: {all}");
            assert_clean(&all);
            // The provider's text is still there, redacted, and the OSC sequence is
            // gone whole (not just its ESC).
            assert!(e.message.contains("got [redacted]"), "{op}: {}", e.message);
            assert!(!all.contains("]2;x"), "{op}: {all}");
        }
    }

    #[test]
    fn flowaccount_errors_echoing_the_secret_code_or_verifier_are_redacted() {
        let client_secret = ClientSecret::new("CANARY-fa-secret+/=2b9d");
        let code = AuthorizationCode::new("CANARY-code-77e1");
        let verifier = PkceVerifier::new("CANARY-verifier-0c3f-0123456789abcdef");
        let sent: [&dyn AnySecret; 3] = [&client_secret, &code, &verifier];
        for s in sent {
            let v = s.expose();
            let bodies = [
                // The provider's error code itself (it reaches `message`).
                serde_json::json!({"error": format!("bad_{v}")}).to_string(),
                serde_json::json!({"error": "invalid_request",
                    "error_description": format!("\u{1b}[31m{v}\u{1b}[0m is wrong"),
                    "error_uri": format!("https://x.test/e?c={v}")})
                .to_string(),
                // Form-encoded echo in a non-JSON page, and an escape inside the secret.
                format!(
                    "<html>code={}&x={}</html>",
                    url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>(),
                    v.replacen('-', "-\u{1b}[0m", 1)
                ),
            ];
            for op in [Operation::AuthorizationCode, Operation::Refresh] {
                for status in [400, 401, 403] {
                    for body in &bodies {
                        let e = from_response(
                            Provider::FlowAccount,
                            op,
                            status,
                            None,
                            body.as_bytes(),
                            &sent,
                        );
                        let all = shown(&e);
                        assert!(!all.contains("CANARY"), "{op} {status}: {all}");
                        assert_clean(&all);
                    }
                }
            }
        }
        // The message names the (redacted) provider code.
        let body = format!(r#"{{"error":"bad_{}"}}"#, code.expose());
        let e = from_response(
            Provider::FlowAccount,
            Operation::AuthorizationCode,
            400,
            None,
            body.as_bytes(),
            &sent,
        );
        assert!(e.message.contains("bad_[redacted]"), "{}", e.message);
    }

    #[test]
    fn fedex_errors_echoing_the_secret_or_child_secret_are_redacted() {
        let client_secret = ClientSecret::new("CANARY-fedex-secret-7f3a");
        let child_secret = ChildSecret::new("CANARY-child-secret-51c8");
        let sent: [&dyn AnySecret; 2] = [&client_secret, &child_secret];
        for s in sent {
            let v = s.expose();
            let body = serde_json::json!({
                "transactionId": format!("\u{9b}31m{v}"),
                "errors": [{
                    "code": format!("BAD.{v}.ERROR"),
                    "message": format!("\u{202e}child_secret {v} rejected\u{7}"),
                    "parameterList": [{"key": format!("k\u{1b}]0;{v}\u{7}"), "value": "x"}],
                }],
            })
            .to_string();
            for status in [400, 401, 403] {
                let e = from_response(
                    Provider::Fedex,
                    Operation::ClientCredentials,
                    status,
                    None,
                    body.as_bytes(),
                    &sent,
                );
                let all = shown(&e);
                assert!(!all.contains("CANARY"), "{status}: {all}");
                assert_clean(&all);
                assert!(all.contains("BAD.[redacted].ERROR"), "{status}: {all}");
            }
        }
    }

    #[test]
    fn unusable_token_answers_clean_their_field_names() {
        let secret = ClientSecret::new("CANARY-secret-abcd");
        let body = format!(
            r#"{{"\u001b]2;owned\u0007{}":1,"token_type":"bearer"}}"#,
            secret.expose()
        );
        let e = invalid_token_response(Provider::FlowAccount, 200, body.as_bytes(), &[&secret]);
        let all = shown(&e);
        assert!(!all.contains("CANARY") && !all.contains("owned"), "{all}");
        assert_clean(&all);
        assert!(all.contains("token_type"), "{all}");
    }

    #[test]
    fn clean_text_removes_escapes_controls_and_bidi_overrides() {
        assert_eq!(clean_text("\u{1b}]2;title\u{7}ok"), "ok");
        assert_eq!(clean_text("\u{1b}]8;;https://x\u{1b}\\link"), "link");
        assert_eq!(clean_text("\u{1b}[1;31mred\u{1b}[0m"), "red");
        assert_eq!(clean_text("a\u{0}b\u{7f}c\u{85}d\u{9b}e"), "abcde");
        assert_eq!(clean_text("tab\there\r\nnext"), "tab here  next");
        assert_eq!(
            clean_text("abc\u{202e}fed\u{202c}\u{2066}x\u{2069}"),
            "abcfedx"
        );
        assert_eq!(clean_text("สวัสดี ok"), "สวัสดี ok");
        // A secret with a control character in it is redacted before cleaning.
        let tabbed = Password::new("CANARY\tsecret");
        let r = Redactor::new(&[&tabbed], Vec::new());
        assert_eq!(r.clean("x CANARY\tsecret y"), "x [redacted] y");
        assert_eq!(r.clean("x CANARY secret y"), "x [redacted] y");
    }

    #[test]
    fn a_secret_straddling_the_cut_is_redacted_not_truncated() {
        let s = RefreshToken::new("SECRETSECRETSECRET");
        let body = format!("{}{}", "a".repeat(195), s.expose());
        let e = from_response(
            Provider::FlowAccount,
            Operation::Refresh,
            400,
            None,
            body.as_bytes(),
            &[&s],
        );
        let d = e.detail.unwrap();
        assert!(!d.contains("SECRET"), "{d}");
    }

    #[test]
    fn unknown_json_shapes_blank_token_fields() {
        let body = r#"{"weird":true,"result":"eyJ.revoked.token","refresh_token":"rt-x"}"#;
        let e = from_response(
            Provider::Iot,
            Operation::Logout,
            418,
            None,
            body.as_bytes(),
            &[],
        );
        let d = e.detail.unwrap();
        assert!(!d.contains("eyJ.revoked"), "{d}");
        assert!(!d.contains("rt-x"), "{d}");
        assert!(d.contains("weird"), "{d}");
    }

    #[test]
    fn iot_shapes() {
        let iot = |op, status, body: &str| {
            from_response(Provider::Iot, op, status, None, body.as_bytes(), &[])
        };
        // Refresh: 400/401 mean the session is gone.
        for status in [400, 401] {
            let e = iot(
                Operation::Refresh,
                status,
                r#"{"status":401,"message":"invalid token"}"#,
            );
            assert_eq!(e.code, ErrorCode::ReauthorizationRequired);
            assert_eq!(
                e.message,
                "The IoT platform no longer accepts this connection's refresh token: log in again."
            );
            assert!(e.detail.unwrap().contains("invalid token"));
        }
        // Login: 401 is a wrong password, unless it is about the client.
        let e = iot(
            Operation::PasswordLogin,
            401,
            r#"{"status":401,"error":"Incorrect username or password"}"#,
        );
        assert_eq!(e.code, ErrorCode::InvalidCredentials);
        assert!(e.detail.unwrap().contains("Incorrect username"));
        let e = iot(
            Operation::PasswordLogin,
            401,
            r#"{"status":401,"message":"Invalid client id"}"#,
        );
        assert_eq!(e.code, ErrorCode::InvalidClient);
        let e = iot(
            Operation::PasswordLogin,
            400,
            r#"{"error":"invalid_grant"}"#,
        );
        assert_eq!(e.code, ErrorCode::InvalidCredentials);
        let e = iot(
            Operation::PasswordLogin,
            400,
            r#"{"status":400,"message":"username required"}"#,
        );
        assert_eq!(e.code, ErrorCode::ProviderError);
        // Logout: the token is already dead.
        for status in [400, 401] {
            let e = iot(
                Operation::Logout,
                status,
                r#"{"status":401,"error":"token revoked","result":null}"#,
            );
            assert_eq!(e.code, ErrorCode::ReauthorizationRequired);
        }
        assert_eq!(
            iot(Operation::Logout, 403, "{}").code,
            ErrorCode::ProviderError
        );
    }

    #[test]
    fn embedded_errors_in_2xx_bodies() {
        use serde_json::json;
        assert_eq!(
            embedded_error_status(&json!({"status":401,"error":"x"})),
            Some(401)
        );
        assert_eq!(embedded_error_status(&json!({"status":"500"})), Some(500));
        assert_eq!(embedded_error_status(&json!({"error":"bad"})), Some(400));
        assert_eq!(
            embedded_error_status(&json!({"status":200,"error":null})),
            None
        );
        assert_eq!(
            embedded_error_status(&json!({"status":200,"error":""})),
            None
        );
        assert_eq!(embedded_error_status(&json!({"access_token":"a"})), None);
    }

    #[test]
    fn invalid_token_responses() {
        let e = invalid_token_response(Provider::FlowAccount, 200, b"<html>hi</html>", &[]);
        assert_eq!(e.code, ErrorCode::InvalidResponse);
        assert!(e.detail.unwrap().contains("not JSON"));
        let e = invalid_token_response(
            Provider::FlowAccount,
            200,
            br#"{"token_type":"bearer","refresh_token":"rt-leak"}"#,
            &[],
        );
        let d = e.detail.unwrap();
        assert!(
            d.contains("fields: [refresh_token, token_type]")
                || d.contains("fields: [token_type, refresh_token]"),
            "{d}"
        );
        assert!(!d.contains("rt-leak"));
        let e = invalid_token_response(Provider::Fedex, 200, b"", &[]);
        assert!(e.detail.unwrap().contains("empty body"));
    }

    #[test]
    fn token_shaped_text_is_blanked_in_excerpts() {
        let e = invalid_token_response(
            Provider::FlowAccount,
            200,
            br#"{"access_token": "live-token-abc", "refresh_token":"rt-live","#,
            &[],
        );
        let d = e.detail.unwrap();
        assert!(
            !d.contains("live-token-abc") && !d.contains("rt-live"),
            "{d}"
        );
        assert!(d.contains("access_token"), "{d}");
        let body = "<html>token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln here; access_token=opaque123&x=1</html>";
        let e = fa(Operation::Refresh, 500, body);
        let d = e.detail.unwrap();
        assert!(!d.contains("eyJhbGci") && !d.contains("opaque123"), "{d}");
        assert!(d.contains("x=1"), "{d}");
    }

    #[test]
    fn numbers_may_be_strings() {
        use serde_json::json;
        assert_eq!(number_of(&json!("3600")), Some(3600.0));
        assert_eq!(number_of(&json!(" 12 ")), Some(12.0));
        assert_eq!(number_of(&json!(1.5)), Some(1.5));
        assert_eq!(number_of(&json!("soon")), None);
        assert_eq!(number_of(&json!(null)), None);
    }

    #[test]
    fn truncate_counts_chars_not_bytes() {
        assert_eq!(truncate("สวัสดี", 3), "สวั…");
        assert_eq!(truncate("abc", 3), "abc");
    }
}
