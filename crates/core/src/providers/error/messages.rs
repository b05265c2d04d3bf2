//! The sentences a person reads when a provider call fails: who refused, why, and what
//! to do next.

use crate::error::ErrorCode;
use crate::model::Provider;
use crate::providers::redact::truncate;
use crate::providers::Operation;

/// The provider as the subject of a sentence.
pub(super) fn subject(provider: Provider) -> &'static str {
    match provider {
        Provider::FlowAccount => "FlowAccount",
        Provider::Fedex => "FedEx",
        Provider::Iot => "The IoT platform",
    }
}

pub(super) fn message_for(
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
