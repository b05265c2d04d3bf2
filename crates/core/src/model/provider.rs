//! Providers, environments and the provider-specific enums (FedEx grants, the IoT
//! platform's Basic header and body encoding).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

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
