//! The sentences a person reads when a provider call fails: who refused, why, and what
//! to do next.

use super::TransportFailure;
use crate::error::ErrorCode;
use crate::model::Provider;
use crate::providers::redact::truncate;

use crate::providers::Operation;
use std::time::Duration;

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
        // FedEx answers NOT.AUTHORIZED alike for the project's keys and the child's: the
        // child credentials (typed for this connection) first, then the client's.
        (ErrorCode::InvalidClient, Provider::Fedex, Operation::ChildCredentials) => format!(
            "{who} rejected the credentials: connect again with the right child key and child secret, or check the project's API key and secret key in the client settings."
        ),
        (ErrorCode::InvalidClient, Provider::Fedex, _) => format!(
            "{who} rejected the project's API key or secret key: check them in the client settings."
        ),
        (ErrorCode::InvalidClient, Provider::Iot, _) => format!(
            "{who} rejected the application client id: check it in the client settings."
        ),
        (ErrorCode::InvalidClient, _, _) => format!(
            "{who} rejected the app's client id or client secret: check them in the client settings."
        ),
        (ErrorCode::InvalidCredentials, _, Operation::DeviceShadow) => format!(
            "{who} rejected the device's Client ID or Token (HTTP {status}): check them in the platform's portal, then remove the device and add it again."
        ),
        (ErrorCode::InvalidCredentials, _, _) => format!(
            "{who} rejected the username or password: check them and log in again."
        ),
        // An API call's 401/403: the access token was refused, not the grant.
        (_, _, Operation::CompanyInfo) if matches!(status, 401 | 403) => format!(
            "{who} did not accept the access token (HTTP {status}): refresh the connection, and connect the business again if it keeps happening."
        ),
        (_, _, Operation::CompanyInfo) => format!(
            "{who} could not tell who this business is (HTTP {status}): check the client's API address and try again."
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

/// The sentence for a failure below HTTP (no usable answer).
pub(super) fn for_transport(
    provider: Provider,
    failure: TransportFailure,
    code: ErrorCode,
) -> String {
    let who = subject(provider);
    let what = match failure {
        TransportFailure::Timeout => "did not answer in time (timeout)",
        TransportFailure::Connect => "could not be reached (connection failed)",
        TransportFailure::Decode => "sent an answer that could not be decoded",
        TransportFailure::Reset => "closed the connection before answering (connection reset)",
        TransportFailure::Body => "broke off while sending its answer (incomplete body)",
        TransportFailure::Redirect => {
            "redirected instead of answering: check the URL in the client settings"
        }
        TransportFailure::Builder => "could not be asked (bad request setup)",
        TransportFailure::Unreachable => "could not be reached",
    };
    if code == ErrorCode::ProviderUnavailable {
        format!("{who} {what}: check the network and try again.")
    } else {
        format!("{who} {what}.")
    }
}

/// The sentence for a non-success HTTP answer classified as `code`. `retry` is the
/// parsed `Retry-After` of a rate-limited answer; `provider_code` the provider's own
/// (redacted) error code, asked for only when the sentence names it.
pub(super) fn for_response(
    provider: Provider,
    op: Operation,
    code: ErrorCode,
    status: u16,
    retry: Option<Duration>,
    provider_code: impl FnOnce() -> Option<String>,
) -> String {
    let who = subject(provider);
    match code {
        ErrorCode::RateLimited => match retry {
            Some(d) => format!(
                "{who} is limiting requests: wait {} seconds and try again.",
                d.as_secs().max(1)
            ),
            None => format!("{who} is limiting requests: wait a minute and try again."),
        },
        ErrorCode::InvalidResponse => format!(
            "{who}'s endpoint redirected instead of answering (HTTP {status}): check the URL in the client settings."
        ),
        ErrorCode::ProviderUnavailable => {
            format!("{who} is not available right now (HTTP {status}): try again later.")
        }
        other => message_for(provider, op, other, status, provider_code()),
    }
}

/// The sentence for a 2xx answer without a usable token.
pub(super) fn unusable_token(provider: Provider) -> String {
    let who = subject(provider);
    format!("{who} answered without a usable token: try again later, and check the token URL if it keeps happening.")
}
