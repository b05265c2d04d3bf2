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
//! `parameterList` values dropped (keys only). Every provider-supplied string in
//! `message` and `detail` passes the [`Redactor`] (see [`crate::providers::redact`]).
//!
//! Here: the three entry points and the classification (status + provider code, or
//! the transport failure, to an [`ErrorCode`]); [`body`] reads the answer's shape,
//! [`messages`] holds the sentences.

mod body;
mod messages;
#[cfg(test)]
mod tests;

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::error::{Error, ErrorCode};
use crate::model::Provider;
use crate::providers::redact::{clean_text, json_excerpt, truncate, Redactor, EXCERPT_CHARS};
use crate::providers::Operation;
use crate::secret::AnySecret;
pub(crate) use body::embedded_error_status;
use body::ParsedBody;

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

    let mut detail = format!("HTTP {status}");
    parsed.describe(&redactor, &mut detail);

    let retry = match code {
        ErrorCode::RateLimited => retry_after.and_then(|v| parse_retry_after(v, Utc::now())),
        _ => None,
    };
    let message = messages::for_response(provider, op, code, status, retry, || {
        parsed.primary_code().map(|c| redactor.excerpt(&c))
    });

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
    let chain = source_chain(err);
    let (failure, kind) = classify_transport(err, &chain);
    let code = failure.code();
    let message = messages::for_transport(provider, failure, code);
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
        messages::unusable_token(provider),
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
    // An API call carries the access token only: whatever its 4xx, no grant or client
    // credential was judged.
    if op == Operation::CompanyInfo {
        return ErrorCode::ProviderError;
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
        // The device's Client ID or Token is not (or no longer) known to the platform.
        (Provider::Iot, Operation::DeviceShadow, 401 | 403) => ErrorCode::InvalidCredentials,
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

/// What went wrong below HTTP, as far as the user is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TransportFailure {
    Timeout,
    Connect,
    Decode,
    Reset,
    Body,
    Redirect,
    Builder,
    Unreachable,
}

impl TransportFailure {
    fn code(self) -> ErrorCode {
        match self {
            Self::Decode | Self::Redirect => ErrorCode::InvalidResponse,
            Self::Builder => ErrorCode::Internal,
            Self::Timeout | Self::Connect | Self::Reset | Self::Body | Self::Unreachable => {
                ErrorCode::ProviderUnavailable
            }
        }
    }
}

/// The one reading of a reqwest error: the failure to report, and the kind named in
/// `detail`. Timeout and connect are found in the source chain and win over the rest;
/// reqwest's other kinds (decode, body, request, redirect, builder) are exclusive. A
/// reset (an I/O reset or a closed connection in the chain) is reported as such unless
/// the error is a timeout, a connect failure or a decode error.
fn classify_transport(err: &reqwest::Error, chain: &[String]) -> (TransportFailure, &'static str) {
    use TransportFailure::*;
    let (failure, kind) = if err.is_timeout() {
        (Timeout, "timeout")
    } else if err.is_connect() {
        (Connect, "connect error")
    } else if err.is_decode() {
        (Decode, "decode error")
    } else if err.is_body() {
        (Body, "body error")
    } else if err.is_request() {
        (Unreachable, "request error")
    } else if err.is_redirect() {
        (Redirect, "redirect error")
    } else if err.is_builder() {
        (Builder, "transport error")
    } else {
        (Unreachable, "transport error")
    };
    let failure = match failure {
        Timeout | Connect | Decode => failure,
        _ if looks_like_reset(err, chain) => Reset,
        _ => failure,
    };
    (failure, kind)
}
