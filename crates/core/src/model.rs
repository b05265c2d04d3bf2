//! The nouns: providers, environments, clients (app registrations), connections (one
//! business / project / user account each), and token expiries.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    #[cfg_attr(feature = "clap", value(name = "flowaccount"))]
    FlowAccount,
    Fedex,
    Iot,
}

impl Provider {
    pub const ALL: [Provider; 3] = [Provider::FlowAccount, Provider::Fedex, Provider::Iot];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::FlowAccount => "flowaccount",
            Self::Fedex => "fedex",
            Self::Iot => "iot",
        }
    }

    pub fn display_name(self) -> &'static str {
        match self {
            Self::FlowAccount => "FlowAccount",
            Self::Fedex => "FedEx API",
            Self::Iot => "IoT platform",
        }
    }

    /// Whether connections of this provider hold a refresh token.
    pub fn has_refresh_token(self) -> bool {
        !matches!(self, Self::Fedex)
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Provider {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "flowaccount" => Ok(Self::FlowAccount),
            "fedex" => Ok(Self::Fedex),
            "iot" => Ok(Self::Iot),
            _ => Err(Error::invalid_input(format!(
                "Unknown provider {s:?}: use flowaccount, fedex or iot."
            ))),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Sandbox,
    Production,
    /// Endpoints given by hand (a private deployment, or the local emulator).
    // The CLI lists the values without help (this doc comment would be it).
    #[cfg_attr(feature = "clap", value(help = None::<&str>))]
    Custom,
}

impl Environment {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sandbox => "sandbox",
            Self::Production => "production",
            Self::Custom => "custom",
        }
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Environment {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "sandbox" => Ok(Self::Sandbox),
            "production" => Ok(Self::Production),
            "custom" => Ok(Self::Custom),
            _ => Err(Error::invalid_input(format!(
                "Unknown environment {s:?}: use sandbox, production or custom."
            ))),
        }
    }
}

/// The URLs of one provider deployment. Which ones are required depends on the provider:
/// FlowAccount needs `authorize_url` + `token_url`; FedEx `token_url`; the IoT platform
/// `token_url` + `logout_url` (both derived from its `auth_url`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Endpoints {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorize_url: Option<Url>,
    pub token_url: Url,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logout_url: Option<Url>,
    /// FlowAccount: the API base (`{it}/company/info`). Clients stored before it existed
    /// have none: [`Client::api_base`] then derives it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_base_url: Option<Url>,
}

/// The FedEx `grant_type`s (PROVIDERS.md §2). Always written in FedEx's own spelling
/// (`csp_credentials`); read in that spelling or the kebab-case one (`csp-credentials`),
/// from the CLI, IPC and the store alike: users copy FedEx's documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum FedexGrant {
    #[cfg_attr(
        feature = "clap",
        value(name = "client_credentials", alias = "client-credentials")
    )]
    ClientCredentials,
    #[cfg_attr(
        feature = "clap",
        value(name = "csp_credentials", alias = "csp-credentials")
    )]
    CspCredentials,
    #[cfg_attr(
        feature = "clap",
        value(name = "client_pc_credentials", alias = "client-pc-credentials")
    )]
    ClientPcCredentials,
}

/// Through [`FromStr`]: either spelling.
impl<'de> Deserialize<'de> for FedexGrant {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        text.parse()
            .map_err(|e: Error| serde::de::Error::custom(e.message))
    }
}

impl FedexGrant {
    pub const ALL: [FedexGrant; 3] = [
        FedexGrant::ClientCredentials,
        FedexGrant::CspCredentials,
        FedexGrant::ClientPcCredentials,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientCredentials => "client_credentials",
            Self::CspCredentials => "csp_credentials",
            Self::ClientPcCredentials => "client_pc_credentials",
        }
    }

    /// `csp_credentials` and `client_pc_credentials` carry `child_Key` + `child_secret`.
    pub fn needs_child_credentials(self) -> bool {
        !matches!(self, Self::ClientCredentials)
    }
}

impl fmt::Display for FedexGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FedexGrant {
    type Err = Error;
    /// FedEx's spelling (`csp_credentials`) or the kebab-case one (`csp-credentials`).
    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|g| g.as_str() == s || g.as_str().replace('_', "-") == s)
            .ok_or_else(|| {
                Error::invalid_input(format!(
                    "Unknown FedEx grant {s:?}: use client_credentials, csp_credentials or client_pc_credentials."
                ))
            })
    }
}

/// How the IoT platform's `Authorization: Basic …` header carries the client id.
/// The seed reads "Basic <Application Client ID>" (raw); base64 of `id:` is the RFC form.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum IotBasicAuth {
    #[default]
    Raw,
    Base64,
}

/// The IoT platform's token request body encoding (the seed's "application/form-data"
/// is not a real type: urlencoded by default, multipart as a setting).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum IotBodyEncoding {
    #[default]
    Form,
    Multipart,
}

/// Provider-specific switches of an app registration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ClientOptions {
    /// FlowAccount: the redirect URI registered with the provider (exact match).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
    /// FlowAccount: send a PKCE S256 challenge (on by default; see README "Security").
    #[serde(default)]
    pub pkce: bool,
    #[serde(default)]
    pub iot_basic_auth: IotBasicAuth,
    #[serde(default)]
    pub iot_body: IotBodyEncoding,
    /// IoT platform: the device API's base (`GET {it}/shadow/data`; NETPIE
    /// `https://api.netpie.io/v2/device`), for the devices kept under this client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(type = "string | null"))]
    pub device_api_url: Option<Url>,
}

/// An app registration with a provider: client id (+ secret in the keyring), endpoints
/// and options. One FlowAccount client serves many businesses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Client {
    pub id: String,
    pub name: String,
    pub provider: Provider,
    pub environment: Environment,
    pub client_id: String,
    pub endpoints: Endpoints,
    pub options: ClientOptions,
    /// Whether a client secret is stored in the keyring (the value is never shown).
    pub has_secret: bool,
    pub created_at: DateTime<Utc>,
    /// A demo client of the built-in sandbox (see `crate::sandbox`): starting the sandbox
    /// points it at the sandbox's port, "Leave the sandbox" removes it.
    #[serde(default)]
    pub sandbox: bool,
}

impl Client {
    /// FlowAccount: where its API lives. The stored `api_base_url`, else the
    /// environment's preset, else the token URL without its last `/token` (FlowAccount's
    /// token URL is `{api base}/token`). `None` for other providers, or when nothing fits.
    pub fn api_base(&self) -> Option<Url> {
        if self.provider != Provider::FlowAccount {
            return None;
        }
        self.endpoints.api_base_url.clone().or_else(|| {
            crate::providers::presets::flowaccount_api_base(
                self.environment,
                &self.endpoints.token_url,
            )
        })
    }
}

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

/// One connected business / project / user account. Holds no secret: tokens live in
/// the keyring under this connection's id and `secret_generation`, or in a token set
/// (see `store::vault`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Connection {
    pub id: String,
    /// `Client::id`: Authdeck's own key of the client this connection was made with (not
    /// the provider's OAuth `Client::client_id`). Serialised as `client_id`, the name
    /// scripts reading `--json` and the window already use.
    #[serde(rename = "client_id")]
    pub client_key: String,
    pub client_name: String,
    pub provider: Provider,
    pub environment: Environment,
    /// Human label: the business's supportCode, the FedEx project / child key, the IoT username.
    pub label: String,
    /// FlowAccount: the business's customer code, the connection's natural id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub support_code: Option<String>,
    /// FedEx: the grant the token is requested with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<FedexGrant>,
    /// FedEx: the child key (`child_Key`) for csp / client_pc grants. Not a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub child_key: Option<String>,
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_expires: Option<Expiry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_expires: Option<Expiry>,
    /// Decoded JWT header and claims of the current access token (display only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt: Option<JwtSummary>,
    pub state: ConnectionState,
    /// FedEx: re-request the token in the background before it expires.
    pub keep_fresh: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_refresh_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<LastError>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Made with a sandbox client (see [`Client::sandbox`]): demo data.
    #[serde(default)]
    pub sandbox: bool,
    /// The name the user gave this connection (`Manager::set_label`); wins over
    /// everything else as the row's title (see [`Connection::title`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_label: Option<String>,
    /// FlowAccount: the business's details from the last successful probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<CompanyInfo>,
    /// The last check or probe, successful or not (a failed one never changes `state`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_check: Option<CheckRecord>,
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

/// An IoT device kept in Authdeck (PROVIDERS.md §3 item 5), under an IoT client and
/// optionally the IoT connection (account) that owns it. Holds no secret: the Token and
/// the optional Secret are in the keyring (`device/<id>/token`, `device/<id>/secret`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Device {
    /// Authdeck's own id of this device record.
    pub id: String,
    pub name: String,
    /// The platform's Client ID of the device (its Device ID). Not a secret.
    pub device_id: String,
    /// `Client::id` of the IoT client the device is kept under.
    pub client_key: String,
    pub client_name: String,
    /// The IoT connection (account) that owns the device, if one was named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_id: Option<String>,
    /// Whether a Secret (MQTT password) is in the keyring (the value is never shown).
    pub has_secret: bool,
    pub created_at: DateTime<Utc>,
    /// The latest check (a read of the device's own shadow).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_check: Option<DeviceCheck>,
    /// Kept under a sandbox client: demo data.
    #[serde(default)]
    pub sandbox: bool,
}

/// The result of one device check (`GET {api}/shadow/data` with the device's
/// credentials) and when it ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct DeviceCheck {
    pub at: DateTime<Utc>,
    /// `ok` or an error code.
    pub outcome: String,
    /// The error's sentence (redacted), when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The shadow's top-level field names, when it succeeded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shadow_fields: Vec<String>,
}

/// The MQTT broker of the NETPIE deployment (PROVIDERS.md §3 item 5).
pub const NETPIE_MQTT_HOST: &str = "mqtt.netpie.io";
/// Plain MQTT; 1884 is MQTT over TLS.
pub const NETPIE_MQTT_PORT: u16 = 1883;
pub const NETPIE_MQTT_TLS_PORT: u16 = 1884;

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

/// One line of a connection's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct HistoryEntry {
    pub at: DateTime<Utc>,
    /// `connect`, `refresh`, `reconnect`, `logout`, `disconnect`, `callback_rejected`, …
    pub event: String,
    /// `ok` or an error code.
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// How many times it happened. Rejected redirects of one kind share one row per
    /// minute (a burst of forged links is one row with a count, not thousands); `at` is
    /// the first of them. Every other entry is 1.
    #[serde(default = "HistoryEntry::one")]
    pub count: u32,
}

impl HistoryEntry {
    /// One occurrence of `event` at `at`.
    pub fn new(
        at: DateTime<Utc>,
        event: impl Into<String>,
        outcome: impl Into<String>,
        detail: Option<String>,
    ) -> Self {
        Self {
            at,
            event: event.into(),
            outcome: outcome.into(),
            detail,
            count: 1,
        }
    }

    fn one() -> u32 {
        1
    }
}

/// The longest text accepted from a user (CLI argument, IPC field) for each kind of
/// field, in characters (secrets: bytes). Beyond these an input is a mistake or an
/// attack: it is refused with `invalid_input` before anything is stored or sent.
pub mod limits {
    /// Client names (also a connection's label).
    pub const NAME: usize = 64;
    /// Usernames, FedEx child keys.
    pub const USERNAME: usize = 256;
    /// Client ids (FedEx API keys, OAuth client ids).
    pub const CLIENT_ID: usize = 512;
    /// Endpoint and redirect URLs.
    pub const URL: usize = 2048;
    /// Client secrets, child secrets, passwords.
    pub const SECRET_BYTES: usize = 4096;
}

/// Refuse `value` (described as `what`, e.g. "The username") when it is longer than `max`
/// characters, with a message that says how long it may be.
pub fn check_length(what: &str, value: &str, max: usize) -> Result<()> {
    let chars = value.chars().count();
    if chars > max {
        return Err(Error::invalid_input(format!(
            "{what} is too long ({chars} characters; at most {max})."
        )));
    }
    Ok(())
}

/// [`check_length`] for a secret, in bytes; the message never shows the value.
pub fn check_secret_length(what: &str, value: &dyn crate::secret::AnySecret) -> Result<()> {
    let bytes = value.expose().len();
    if bytes > limits::SECRET_BYTES {
        return Err(Error::invalid_input(format!(
            "{what} is too long ({bytes} bytes; at most {}).",
            limits::SECRET_BYTES
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fedex_grants_read_both_spellings_and_write_fedexs() {
        for (grant, fedex, kebab) in [
            (
                FedexGrant::ClientCredentials,
                "client_credentials",
                "client-credentials",
            ),
            (
                FedexGrant::CspCredentials,
                "csp_credentials",
                "csp-credentials",
            ),
            (
                FedexGrant::ClientPcCredentials,
                "client_pc_credentials",
                "client-pc-credentials",
            ),
        ] {
            assert_eq!(fedex.parse::<FedexGrant>().unwrap(), grant);
            assert_eq!(kebab.parse::<FedexGrant>().unwrap(), grant);
            for spelling in [fedex, kebab] {
                let read: FedexGrant = serde_json::from_value(serde_json::json!(spelling)).unwrap();
                assert_eq!(read, grant);
            }
            assert_eq!(serde_json::to_value(grant).unwrap(), fedex);
            assert_eq!(grant.to_string(), fedex);
        }
        for wrong in [
            "csp",
            "CSP_CREDENTIALS",
            "csp credentials",
            "",
            "csp_credentials ",
        ] {
            let err = wrong.parse::<FedexGrant>().unwrap_err();
            assert_eq!(err.code, crate::error::ErrorCode::InvalidInput);
            assert!(serde_json::from_value::<FedexGrant>(serde_json::json!(wrong)).is_err());
        }
    }
}
