//! The one error type of Authdeck. It crosses every boundary (CLI, IPC) as
//! `{code, message, detail?}`; `code` is stable, `message` says what happened and what
//! the user can do next, and neither ever contains a secret.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Stable, machine-readable error codes. The wire form is the snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The grant (code or refresh token) is dead: the user must authorize or log in again.
    ReauthorizationRequired,
    /// The provider rejected the app registration (client id / secret / child credentials).
    InvalidClient,
    /// The provider rejected a username and password.
    InvalidCredentials,
    /// The user (or the provider) declined the authorization in the browser.
    AccessDenied,
    /// A redirect back into Authdeck was malformed, forged, replayed or expired.
    InvalidCallback,
    /// Network failure, timeout, or a 5xx answer: try again later.
    ProviderUnavailable,
    /// The provider asked us to slow down (HTTP 429).
    RateLimited,
    /// The provider answered with something we cannot use (malformed JSON, no access token).
    InvalidResponse,
    /// Any other error the provider reported (e.g. `invalid_request`, `invalid_scope`).
    ProviderError,
    /// The OS keyring (Secret Service) is missing, locked, or refused access.
    KeyringUnavailable,
    /// The local database could not be read or written.
    Storage,
    /// No client or connection by that name or id.
    NotFound,
    /// An argument was rejected before anything was changed.
    InvalidInput,
    /// Something by that name exists already.
    AlreadyExists,
    /// Another process holds the lock for too long, or the operation was cancelled.
    Busy,
    /// A bug: an invariant did not hold.
    Internal,
    /// A sandbox client's emulator is not running (nothing listens on its port): start
    /// the sandbox, then try again.
    SandboxNotRunning,
    /// The team store (the firm's shared PostgreSQL) cannot be reached or refused the
    /// session: nothing was changed, here or elsewhere; try again when it is back.
    TeamUnavailable,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReauthorizationRequired => "reauthorization_required",
            Self::InvalidClient => "invalid_client",
            Self::InvalidCredentials => "invalid_credentials",
            Self::AccessDenied => "access_denied",
            Self::InvalidCallback => "invalid_callback",
            Self::ProviderUnavailable => "provider_unavailable",
            Self::RateLimited => "rate_limited",
            Self::InvalidResponse => "invalid_response",
            Self::ProviderError => "provider_error",
            Self::KeyringUnavailable => "keyring_unavailable",
            Self::Storage => "storage",
            Self::NotFound => "not_found",
            Self::InvalidInput => "invalid_input",
            Self::AlreadyExists => "already_exists",
            Self::Busy => "busy",
            Self::Internal => "internal",
            Self::SandboxNotRunning => "sandbox_not_running",
            Self::TeamUnavailable => "team_unavailable",
        }
    }

    /// Temporary errors may succeed if retried later without the user doing anything;
    /// permanent ones need the user (re-authorize, fix a secret, pick another name).
    pub fn is_temporary(self) -> bool {
        matches!(
            self,
            Self::ProviderUnavailable
                | Self::RateLimited
                | Self::InvalidResponse
                | Self::KeyringUnavailable
                | Self::Busy
                | Self::SandboxNotRunning
                | Self::TeamUnavailable
        )
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "CommandError"))]
#[error("{message}")]
pub struct Error {
    pub code: ErrorCode,
    /// One sentence for a person: what happened and what to do next.
    pub message: String,
    /// Diagnostics for support staff: HTTP status, provider error code, a short excerpt of
    /// an unexpected body. Never a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// From a 429's `Retry-After`, when the provider sent one.
    #[serde(skip)]
    pub retry_after: Option<Duration>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            detail: None,
            retry_after: None,
        }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn with_retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    pub fn is_temporary(&self) -> bool {
        self.code.is_temporary()
    }

    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidInput, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    pub fn invalid_callback(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidCallback, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, message)
    }

    pub fn storage(err: impl fmt::Display) -> Self {
        Self::new(
            ErrorCode::Storage,
            "The local database could not be read or written.",
        )
        .with_detail(err.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_shape_is_code_message_detail() {
        let e = Error::new(ErrorCode::KeyringUnavailable, "No keyring.").with_detail("dbus");
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            serde_json::json!({"code":"keyring_unavailable","message":"No keyring.","detail":"dbus"})
        );
        let e = Error::new(ErrorCode::ReauthorizationRequired, "Log in again.");
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"code":"reauthorization_required","message":"Log in again."}"#
        );
    }

    #[test]
    fn as_str_matches_serde_name_for_every_code() {
        use ErrorCode::*;
        for code in [
            ReauthorizationRequired,
            InvalidClient,
            InvalidCredentials,
            AccessDenied,
            InvalidCallback,
            ProviderUnavailable,
            RateLimited,
            InvalidResponse,
            ProviderError,
            KeyringUnavailable,
            Storage,
            NotFound,
            InvalidInput,
            AlreadyExists,
            Busy,
            Internal,
            SandboxNotRunning,
            TeamUnavailable,
        ] {
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
        }
    }

    #[test]
    fn temporary_vs_permanent() {
        assert!(ErrorCode::RateLimited.is_temporary());
        assert!(ErrorCode::ProviderUnavailable.is_temporary());
        assert!(!ErrorCode::ReauthorizationRequired.is_temporary());
        assert!(!ErrorCode::InvalidClient.is_temporary());
    }
}
