//! What the emulated providers know at start: clients, users, lifetimes, switches.
//!
//! Values marked [guess] in PROVIDERS.md are fields here, so a test can move them.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::fault::Fault;

/// Everything [`crate::start`] needs. [`EmulatorConfig::demo`] is the sandbox users try.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    pub flowaccount: FlowAccountConfig,
    pub fedex: FedexConfig,
    pub iot: IotConfig,
    /// Added before every provider response (token, logout, me); never to /admin or HTML.
    pub latency: Duration,
    /// Faults armed from the start, in order.
    pub faults: Vec<Fault>,
    /// The bearer token `/admin/*` requires. `None` (the default): a fresh 256-bit
    /// random token per start, read back with [`crate::RunningEmulator::admin_token`].
    pub admin_token: Option<AdminToken>,
}

impl EmulatorConfig {
    /// The demo sandbox: one client, project and user per provider (see `describe()`).
    pub fn demo() -> Self {
        EmulatorConfig {
            flowaccount: FlowAccountConfig::demo(),
            fedex: FedexConfig::demo(),
            iot: IotConfig::demo(),
            latency: Duration::ZERO,
            faults: Vec::new(),
            admin_token: None,
        }
    }
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self::demo()
    }
}

/// The bearer token of `/admin/*` (`Authorization: Bearer <token>`). Whoever holds it
/// can move the emulator's clock, arm faults and read its sessions, so it is never
/// printed by `Debug` and never put in a URL.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminToken(String);

impl AdminToken {
    /// Shortest token accepted from outside (an environment variable).
    pub const MIN_LEN: usize = 32;

    /// 256 bits from the OS CSPRNG, base64url (43 characters).
    pub fn generate() -> std::io::Result<Self> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(std::io::Error::other)?;
        Ok(Self(URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// A token chosen by the caller: at least [`Self::MIN_LEN`] visible ASCII characters
    /// (it travels in a header).
    pub fn new(token: impl Into<String>) -> Result<Self, String> {
        let token = token.into();
        if token.len() < Self::MIN_LEN || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!(
                "an admin token is at least {} visible ASCII characters",
                Self::MIN_LEN
            ));
        }
        Ok(Self(token))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `presented` is this token. Both sides are hashed first, so the time the
    /// comparison takes says nothing about the token.
    pub(crate) fn matches(&self, presented: &str) -> bool {
        Sha256::digest(self.0.as_bytes()) == Sha256::digest(presented.as_bytes())
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken([redacted])")
    }
}

// ---------------------------------------------------------------- FlowAccount

#[derive(Debug, Clone)]
pub struct FlowAccountConfig {
    pub clients: Vec<FaClient>,
    pub users: Vec<FaUser>,
    /// Scopes a client may ask for; anything else is `invalid_scope`.
    pub allowed_scopes: Vec<String>,
    /// Access-token lifetime, sent as `expires_in` [guess: 3600 s].
    pub access_token_lifetime: Duration,
    /// Each refresh token lives this long from its issue (the seed's sliding 1 day).
    pub refresh_token_lifetime: Duration,
    /// Authorization codes live 150 minutes [doc].
    pub code_lifetime: Duration,
    /// RFC 9700 §4.14.2: presenting a rotated-out refresh token revokes its family.
    pub reuse_detection: bool,
    /// What `GET {api base}/company/info` says about each business, by supportCode
    /// (PROVIDERS.md §1 item 9). A business without an entry answers with its
    /// `companyId` and name only (every field is optional).
    pub companies: Vec<FaCompany>,
}

impl FlowAccountConfig {
    pub fn demo() -> Self {
        FlowAccountConfig {
            clients: vec![FaClient {
                client_id: "demo-flowaccount".into(),
                client_secret: "demo-flowaccount-secret".into(),
                redirect_uris: vec![
                    "com.authdeck.desktop:/oauth/callback".into(),
                    "http://127.0.0.1:53682/callback".into(),
                ],
            }],
            users: vec![FaUser {
                username: "demo@example.com".into(),
                password: "demo".into(),
                businesses: vec![
                    FaBusiness {
                        support_code: "FA-100001".into(),
                        name: "Siam Trading Co., Ltd.".into(),
                    },
                    FaBusiness {
                        support_code: "FA-100002".into(),
                        name: "Chiang Mai Crafts".into(),
                    },
                ],
            }],
            allowed_scopes: vec![
                "flowaccount-api".into(),
                "offline_access".into(),
                "openid".into(),
                "profile".into(),
            ],
            access_token_lifetime: Duration::from_secs(3600),
            refresh_token_lifetime: Duration::from_secs(24 * 3600),
            code_lifetime: Duration::from_secs(150 * 60),
            reuse_detection: true,
            companies: vec![
                FaCompany {
                    support_code: "FA-100001".into(),
                    company_id: 100_001,
                    name: "บริษัท สยามเทรดดิ้ง จำกัด".into(),
                    tax_id: "0105558096348".into(),
                    branch: "สำนักงานใหญ่".into(),
                },
                FaCompany {
                    support_code: "FA-100002".into(),
                    company_id: 100_002,
                    name: "Chiang Mai Crafts".into(),
                    tax_id: "0505561001234".into(),
                    branch: "สาขา 00001 นิมมานเหมินท์".into(),
                },
            ],
        }
    }
}

/// A registered FlowAccount application (confidential client).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaClient {
    pub client_id: String,
    pub client_secret: String,
    /// Compared byte for byte with the request's `redirect_uri` [doc].
    pub redirect_uris: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaUser {
    pub username: String,
    pub password: String,
    pub businesses: Vec<FaBusiness>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaBusiness {
    /// The business's customer code, returned as `supportCode`.
    pub support_code: String,
    pub name: String,
}

/// The business details FlowAccount's API returns from `/company/info` (the SDK's
/// `CompanyInfoResponse_data`): `companyId`, `compnayName` (the spec's spelling),
/// `companyTaxId`, `companyBranch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaCompany {
    /// Which business (its `supportCode`) this is.
    pub support_code: String,
    pub company_id: u64,
    pub name: String,
    pub tax_id: String,
    pub branch: String,
}

// ---------------------------------------------------------------- FedEx

#[derive(Debug, Clone)]
pub struct FedexConfig {
    pub projects: Vec<FedexProject>,
    /// How long the JWT is valid (its `exp`).
    pub token_lifetime: Duration,
    /// The `expires_in` value sent; real responses say 3599 for a one-hour token.
    pub expires_in: u64,
    pub scope: String,
}

impl FedexConfig {
    pub fn demo() -> Self {
        FedexConfig {
            projects: vec![FedexProject {
                client_id: "demo-fedex-key".into(),
                client_secret: "demo-fedex-secret".into(),
                children: vec![FedexChild {
                    child_key: "demo-child-key".into(),
                    child_secret: "demo-child-secret".into(),
                }],
            }],
            token_lifetime: Duration::from_secs(3600),
            expires_in: 3599,
            scope: "CXS".into(),
        }
    }
}

/// A FedEx Developer Portal project: API key + secret key, and its child credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FedexProject {
    pub client_id: String,
    pub client_secret: String,
    pub children: Vec<FedexChild>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FedexChild {
    pub child_key: String,
    pub child_secret: String,
}

// ---------------------------------------------------------------- IoT platform

#[derive(Debug, Clone)]
pub struct IotConfig {
    /// The application client id expected in `Authorization: Basic …`.
    pub client_id: String,
    pub basic_mode: IotBasicMode,
    pub users: Vec<IotUser>,
    /// Access JWT lifetime (`expireIn` claim): one day [src].
    pub access_token_lifetime: Duration,
    /// Refresh-token lifetime [guess: 30 days].
    pub refresh_token_lifetime: Duration,
    /// How `expires_in` is written: the seed says "Timestamp" [doc]; the unit is a guess.
    pub expires_in_format: ExpiresInFormat,
    pub scope: String,
    /// Devices created "in the portal": the device API (`Authorization: Device
    /// <ClientID>:<Token>`) knows these (PROVIDERS.md §3 item 5).
    pub devices: Vec<IotDevice>,
}

impl IotConfig {
    pub fn demo() -> Self {
        IotConfig {
            client_id: "demo-iot-client".into(),
            basic_mode: IotBasicMode::Raw,
            users: vec![IotUser {
                user_id: "U974814773204".into(),
                username: "operator".into(),
                email: "operator@example.com".into(),
                password: "operator-pass".into(),
            }],
            access_token_lifetime: Duration::from_secs(86_400),
            refresh_token_lifetime: Duration::from_secs(30 * 86_400),
            expires_in_format: ExpiresInFormat::EpochMs,
            scope: "user".into(),
            devices: vec![IotDevice {
                client_id: "demo-device-0001".into(),
                token: "demo-device-token".into(),
                secret: Some("demo-device-secret".into()),
                alias: Some("demo-sensor".into()),
                shadow: serde_json::json!({"temperature": 28.5, "humidity": 61}),
            }],
        }
    }
}

/// A device of the IoT platform: Client ID (the device id), Token, optional Secret
/// (MQTT password), and its shadow (the JSON `GET /shadow/data` returns).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IotDevice {
    pub client_id: String,
    pub token: String,
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default)]
    pub alias: Option<String>,
    #[serde(default = "empty_shadow")]
    pub shadow: serde_json::Value,
}

fn empty_shadow() -> serde_json::Value {
    serde_json::json!({})
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IotUser {
    pub user_id: String,
    pub username: String,
    pub email: String,
    pub password: String,
}

/// How the IoT platform reads `Authorization: Basic <value>` (undocumented [guess]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IotBasicMode {
    /// `<value>` is the client id itself, as the seed reads.
    Raw,
    /// `<value>` is base64(`client_id:`), as RFC 7617 would have it.
    Base64,
    /// Either of the two.
    Either,
}

/// The unit of the IoT platform's `expires_in`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpiresInFormat {
    /// Expiry instant in epoch milliseconds (JWT `exp` × 1000).
    EpochMs,
    /// Expiry instant in epoch seconds (JWT `exp`).
    EpochS,
    /// Seconds from now, as RFC 6749 would have it.
    Relative,
}

impl std::str::FromStr for ExpiresInFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "epoch_ms" | "ms" => Ok(ExpiresInFormat::EpochMs),
            "epoch_s" | "s" => Ok(ExpiresInFormat::EpochS),
            "relative" => Ok(ExpiresInFormat::Relative),
            other => Err(format!(
                "unknown expires_in format {other:?} (expected epoch-ms, epoch-s or relative)"
            )),
        }
    }
}
