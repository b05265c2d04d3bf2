//! Clients: app registrations with a provider.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use url::Url;

use super::{Environment, IotBasicAuth, IotBodyEncoding, Provider};

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
