//! The three wire protocols (PROVIDERS.md), one module each, over one shared HTTP client.
//!
//! Each module is a handful of async functions that build a request, send it, and parse
//! the answer into [`IssuedTokens`] or an [`Error`](crate::Error). No storage, no state.

pub mod device;
pub mod error;
pub mod fedex;
pub mod flowaccount;
pub mod http;
pub mod iot;
pub(crate) mod json;
pub mod jwt;
pub mod presets;
pub mod redact;

use std::fmt;

use serde_json::Value;

use crate::model::{Expiry, JwtSummary};
use crate::secret::{AccessToken, RefreshToken};

pub use http::HttpClient;

/// What we were doing when the provider said no; it changes what an error means
/// (a 401 on IoT login is a wrong password, on IoT refresh a dead session).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    AuthorizationCode,
    Refresh,
    ClientCredentials,
    /// FedEx's csp / parent-child grants: the project's credentials plus the child key
    /// and secret of the connection (a rejection may be either's).
    ChildCredentials,
    PasswordLogin,
    Logout,
    /// FlowAccount `GET {api base}/company/info` with the access token.
    CompanyInfo,
    /// IoT device API: a device reads its own shadow (`GET {api}/shadow/data`).
    DeviceShadow,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::Refresh => "refresh",
            Self::ClientCredentials => "client_credentials",
            Self::ChildCredentials => "child_credentials",
            Self::PasswordLogin => "password_login",
            Self::Logout => "logout",
            Self::CompanyInfo => "company_info",
            Self::DeviceShadow => "device_shadow",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A successful token response, normalised across providers.
#[derive(Debug, Clone)]
pub struct IssuedTokens {
    pub access_token: AccessToken,
    /// `None` when the provider sent none (FedEx always; a refresh that keeps the old
    /// refresh token, RFC 6749 §6).
    pub refresh_token: Option<RefreshToken>,
    pub token_type: Option<String>,
    pub scope: Option<String>,
    /// `None` when `expires_in` was missing: expiry unknown, never "never".
    pub access_expires: Option<Expiry>,
    /// FlowAccount: estimated (1 day after this request). IoT: unknown (`None`).
    pub refresh_expires: Option<Expiry>,
    /// FlowAccount `supportCode`.
    pub support_code: Option<String>,
    /// IoT `userinfo`.
    pub userinfo: Option<Value>,
    /// IoT user id (from `userinfo` or the JWT's `ctx.owner`), sent as `userid` on refresh.
    pub user_id: Option<String>,
    /// Decoded access-token JWT, when the access token is one.
    pub jwt: Option<JwtSummary>,
    /// Non-fatal oddities worth showing support staff (e.g. `expires_in` and JWT `exp` disagree).
    pub warnings: Vec<String>,
}

/// Parse a token endpoint's 2xx answer the way each provider module does after a
/// request: the normalised tokens, or the error the body describes. Pure (no I/O), so
/// it is what the fuzz targets and parser benchmarks exercise.
pub fn parse_token_response(
    provider: crate::model::Provider,
    status: u16,
    body: &[u8],
    now: chrono::DateTime<chrono::Utc>,
) -> crate::Result<IssuedTokens> {
    use crate::model::Provider;
    let op = match provider {
        Provider::FlowAccount => Operation::Refresh,
        Provider::Fedex => Operation::ClientCredentials,
        Provider::Iot => Operation::PasswordLogin,
    };
    let json = http::parse_token(provider, op, status, body, &[])?;
    Ok(match provider {
        Provider::FlowAccount => flowaccount::issued(&json, now),
        Provider::Fedex => fedex::issued(&json, now),
        Provider::Iot => iot::issued(&json, now, None),
    })
}
