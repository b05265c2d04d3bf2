//! Connections (one business / project / user account each), their summary for the
//! window's list, their token expiries, states and checks.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[cfg(doc)]
use super::Client;
use super::{Environment, FedexGrant, Provider};

/// Where an expiry instant came from, so the UI can say how sure it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum ExpirySource {
    /// `expires_in` as seconds from the response time.
    RelativeSeconds,
    /// `expires_in` as an absolute timestamp in epoch seconds (IoT).
    EpochSeconds,
    /// `expires_in` as an absolute timestamp in epoch milliseconds (IoT).
    EpochMillis,
    /// The JWT access token's `exp` claim.
    JwtExp,
    /// Not sent by the provider; estimated from its documentation (FlowAccount refresh
    /// tokens: 1 day after the latest token request).
    Estimated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Expiry {
    pub at: DateTime<Utc>,
    pub source: ExpirySource,
}

impl Expiry {
    pub fn new(at: DateTime<Utc>, source: ExpirySource) -> Self {
        Self { at, source }
    }

    /// `seconds` from `now`, as sent by a provider. Negative, non-finite or absurd
    /// values (over 100 years) are not an expiry we can use: `None` ("unknown").
    pub fn in_seconds(now: DateTime<Utc>, seconds: f64, source: ExpirySource) -> Option<Self> {
        const HUNDRED_YEARS: f64 = 100.0 * 365.25 * 86_400.0;
        if !seconds.is_finite() || !(0.0..=HUNDRED_YEARS).contains(&seconds) {
            return None;
        }
        let delta = chrono::Duration::try_milliseconds((seconds * 1000.0).round() as i64)?;
        Some(Self::new(now.checked_add_signed(delta)?, source))
    }

    /// Whole seconds from `now` until expiry (negative once expired).
    pub fn seconds_left(&self, now: DateTime<Utc>) -> i64 {
        (self.at - now).num_seconds()
    }
}

/// The decoded (unverified, display-only) parts of a JWT access token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct JwtSummary {
    pub header: serde_json::Value,
    pub claims: serde_json::Value,
}

/// Lifecycle state of a connection as stored. Time-derived states (expiring soon,
/// expired) are computed by [`Connection::status_at`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum ConnectionState {
    Active,
    /// The grant is dead (refresh token expired, revoked or reused): authorize again.
    ReauthorizationRequired,
    /// IoT logout was asked for but the server has not confirmed it: retry logout.
    LogoutPending,
}

/// What a person should see on a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum ConnectionStatus {
    Active,
    ExpiringSoon,
    Expired,
    ReauthorizationRequired,
    LogoutPending,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct LastError {
    pub code: crate::error::ErrorCode,
    pub message: String,
    pub at: DateTime<Utc>,
}

impl LastError {
    pub fn of(error: &crate::error::Error, at: DateTime<Utc>) -> Self {
        Self {
            code: error.code,
            message: error.message.clone(),
            at,
        }
    }
}

/// Who a FlowAccount connection's business is, as `GET {api base}/company/info` said
/// (PROVIDERS.md §1 item 9). Every field is optional: the provider may leave any out.
/// Provider text, cleaned (see `providers::redact`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct CompanyInfo {
    /// `companyId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `compnayName` (the spec's spelling) or `companyName`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `companyTaxId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_id: Option<String>,
    /// `companyBranch`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// When the provider said so.
    pub at: DateTime<Utc>,
}

/// Team mode: who did something to a connection and where — the member (their
/// PostgreSQL role, set by the server), the machine (its name in the team) and when.
/// The team store's columns are the truth for it; it is never part of a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct TeamStamp {
    pub member: String,
    pub machine: String,
    pub at: DateTime<Utc>,
}

/// How a check proves the provider accepts a connection now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum CheckMethod {
    /// FlowAccount: `GET {api base}/company/info` with the access token (read-only).
    CompanyInfo,
    /// FedEx: a new token request with the stored credentials. FedEx has no identity
    /// endpoint, and every call counts against the project's quota.
    TokenRequest,
    /// IoT platform: the session is renewed (refresh grant). The platform documents no
    /// read-only call that takes the user's token.
    Refresh,
}

impl CheckMethod {
    pub fn for_provider(provider: Provider) -> Self {
        match provider {
            Provider::FlowAccount => Self::CompanyInfo,
            Provider::Fedex => Self::TokenRequest,
            Provider::Iot => Self::Refresh,
        }
    }

    /// What the check did, for people.
    pub fn describe(self) -> &'static str {
        match self {
            Self::CompanyInfo => "read the business's details (GET /company/info)",
            Self::TokenRequest => "requested a new token (FedEx has no identity endpoint; this counts against the project's quota)",
            Self::Refresh => "renewed the session (the IoT platform has no read-only identity call)",
        }
    }
}

/// The last check (or probe) of a connection: when, how, and what came of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct CheckRecord {
    pub at: DateTime<Utc>,
    pub method: CheckMethod,
    /// `None`: the provider accepted the connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<LastError>,
}

impl CheckRecord {
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
}

/// Declares [`Connection`] and [`ConnectionSummary`] from one list of fields, and
/// `From<&Connection> for ConnectionSummary`. A field marked `#[summary]` (first, before
/// its doc comment) is the summary's too, with the same name, type and attributes: the
/// summary's JSON is a subset of the connection's, and a field is written once.
macro_rules! connection_and_summary {
    (
        $(#[$meta:meta])*
        pub struct $name:ident { $($fields:tt)* }
        $(#[$summary_meta:meta])*
        pub struct $summary:ident;
    ) => {
        connection_and_summary!(@sort $name $summary
            [$(#[$meta])* pub struct $name] [$(#[$summary_meta])* pub struct $summary]
            [] [] [] $($fields)*);
    };
    // A field of both.
    (@sort $name:ident $summary:ident $head:tt $summary_head:tt
        [$($all:tt)*] [$($some:tt)*] [$($copied:ident)*]
        #[summary] $(#[$field_meta:meta])* pub $field:ident: $ty:ty, $($rest:tt)*) => {
        connection_and_summary!(@sort $name $summary $head $summary_head
            [$($all)* $(#[$field_meta])* pub $field: $ty,]
            [$($some)* $(#[$field_meta])* pub $field: $ty,]
            [$($copied)* $field]
            $($rest)*);
    };
    // A field of the connection only.
    (@sort $name:ident $summary:ident $head:tt $summary_head:tt
        [$($all:tt)*] [$($some:tt)*] [$($copied:ident)*]
        $(#[$field_meta:meta])* pub $field:ident: $ty:ty, $($rest:tt)*) => {
        connection_and_summary!(@sort $name $summary $head $summary_head
            [$($all)* $(#[$field_meta])* pub $field: $ty,]
            [$($some)*]
            [$($copied)*]
            $($rest)*);
    };
    // Every field sorted.
    (@sort $name:ident $summary:ident [$($head:tt)*] [$($summary_head:tt)*]
        [$($all:tt)*] [$($some:tt)*] [$($copied:ident)*]) => {
        $($head)* { $($all)* }

        $($summary_head)* { $($some)* }

        impl From<&$name> for $summary {
            #[allow(clippy::clone_on_copy)]
            fn from(c: &$name) -> Self {
                Self { $($copied: c.$copied.clone(),)* }
            }
        }
    };
}

connection_and_summary! {
    /// One connected business / project / user account. Holds no secret: tokens live in
    /// the keyring under this connection's id and `secret_generation`, or in a token set
    /// (see `store::vault`).
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[cfg_attr(feature = "ts", derive(ts_rs::TS))]
    pub struct Connection {
        #[summary]
        pub id: String,
        #[summary]
        /// `Client::id`: Authdeck's own key of the client this connection was made with (not
        /// the provider's OAuth `Client::client_id`). Serialised as `client_id`, the name
        /// scripts reading `--json` and the window already use.
        #[serde(rename = "client_id")]
        pub client_key: String,
        #[summary]
        pub client_name: String,
        #[summary]
        pub provider: Provider,
        #[summary]
        pub environment: Environment,
        #[summary]
        /// Human label: the business's supportCode, the FedEx project / child key, the IoT username.
        pub label: String,
        #[summary]
        /// FlowAccount: the business's customer code, the connection's natural id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub support_code: Option<String>,
        #[summary]
        /// FedEx: the grant the token is requested with.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub grant: Option<FedexGrant>,
        #[summary]
        /// FedEx: the child key (`child_Key`) for csp / client_pc grants. Not a secret.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub child_key: Option<String>,
        #[summary]
        /// IoT: the username the user logged in with.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub username: Option<String>,
        /// IoT: the user id sent as `userid` on refresh.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub user_id: Option<String>,
        /// IoT: the `userinfo` object of the login response.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub userinfo: Option<serde_json::Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub scope: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub token_type: Option<String>,
        #[summary]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub access_expires: Option<Expiry>,
        #[summary]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub refresh_expires: Option<Expiry>,
        /// Decoded JWT header and claims of the current access token (display only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub jwt: Option<JwtSummary>,
        #[summary]
        pub state: ConnectionState,
        /// FedEx: re-request the token in the background before it expires.
        pub keep_fresh: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub last_refresh_at: Option<DateTime<Utc>>,
        #[summary]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub last_error: Option<LastError>,
        pub created_at: DateTime<Utc>,
        #[summary]
        pub updated_at: DateTime<Utc>,
        #[summary]
        /// Made with a sandbox client (see [`Client::sandbox`]): demo data.
        #[serde(default)]
        pub sandbox: bool,
        #[summary]
        /// The name the user gave this connection (`Manager::set_label`); wins over
        /// everything else as the row's title (see [`Connection::title`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub user_label: Option<String>,
        #[summary]
        /// FlowAccount: the business's details from the last successful probe.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub company: Option<CompanyInfo>,
        #[summary]
        /// The last check or probe, successful or not (a failed one never changes `state`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub last_check: Option<CheckRecord>,
        #[summary]
        /// Team mode: who connected it, on which machine (the team store's columns);
        /// `None` on this desktop's own store.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub connected_by: Option<TeamStamp>,
        #[summary]
        /// Team mode: who last refreshed it, on which machine; `None` on this desktop's
        /// own store, or never refreshed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub refreshed_by: Option<TeamStamp>,
        /// Which keyring entries hold the current tokens (see `store`).
        pub secret_generation: i64,
        /// The token set holding the current tokens (one keyring entry for the tokens of
        /// many connections, written by a batch refresh); `None`: the connection's own
        /// entry. Kept in its own SQLite column; internal, never serialised.
        #[serde(skip)]
        #[cfg_attr(feature = "ts", ts(skip))]
        pub token_set: Option<String>,
        /// A generation being written to the connection's own entry and not yet switched
        /// to: if it stays set, a refresh was interrupted and its tokens may be adoptable.
        /// Kept in its own SQLite column; internal, never serialised.
        #[serde(skip)]
        #[cfg_attr(feature = "ts", ts(skip))]
        pub pending_generation: Option<i64>,
    }

    /// What a list row shows of a connection: the lean shape the window's list, its
    /// start-up snapshot and its change events carry. Its fields are the connection's
    /// marked `#[summary]`, with the same names and types, so a full connection can
    /// stand in for one. The details panel fetches the full [`Connection`].
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[cfg_attr(feature = "ts", derive(ts_rs::TS))]
    pub struct ConnectionSummary;
}

/// Access tokens expiring within this window show as "expiring soon".
pub const EXPIRING_SOON: chrono::Duration = chrono::Duration::minutes(5);

impl Connection {
    /// A new connection of a client, active, at generation 1, with nothing learned from
    /// the provider yet; callers set what differs (`Connection { grant, ..Connection::new(..) }`).
    pub fn new(
        id: impl Into<String>,
        client_key: impl Into<String>,
        client_name: impl Into<String>,
        provider: Provider,
        environment: Environment,
        label: impl Into<String>,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id: id.into(),
            client_key: client_key.into(),
            client_name: client_name.into(),
            provider,
            environment,
            label: label.into(),
            support_code: None,
            grant: None,
            child_key: None,
            username: None,
            user_id: None,
            userinfo: None,
            scope: None,
            token_type: None,
            access_expires: None,
            refresh_expires: None,
            jwt: None,
            state: ConnectionState::Active,
            keep_fresh: false,
            last_refresh_at: None,
            last_error: None,
            created_at: now,
            updated_at: now,
            sandbox: false,
            user_label: None,
            company: None,
            last_check: None,
            connected_by: None,
            refreshed_by: None,
            secret_generation: 1,
            token_set: None,
            pending_generation: None,
        }
    }

    /// What a person calls this connection: their own label, else the company's name,
    /// else `label` (the supportCode, FedEx project, IoT username).
    pub fn title(&self) -> &str {
        [
            self.user_label.as_deref(),
            self.company.as_ref().and_then(|c| c.name.as_deref()),
        ]
        .into_iter()
        .flatten()
        .find(|t| !t.trim().is_empty())
        .unwrap_or(&self.label)
    }

    pub fn status_at(&self, now: DateTime<Utc>) -> ConnectionStatus {
        match self.state {
            ConnectionState::ReauthorizationRequired => {
                return ConnectionStatus::ReauthorizationRequired
            }
            ConnectionState::LogoutPending => return ConnectionStatus::LogoutPending,
            ConnectionState::Active => {}
        }
        if let Some(refresh) = &self.refresh_expires {
            if refresh.at <= now {
                return ConnectionStatus::ReauthorizationRequired;
            }
        }
        if self.last_error.is_some() {
            return ConnectionStatus::Error;
        }
        match &self.access_expires {
            Some(e) if e.at <= now => ConnectionStatus::Expired,
            Some(e) if e.at - now <= EXPIRING_SOON => ConnectionStatus::ExpiringSoon,
            _ => ConnectionStatus::Active,
        }
    }
}
