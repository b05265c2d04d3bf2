//! The built-in sandbox (`authdeckctl sandbox`, the app's "Try the sandbox"): its demo
//! clients, which point at a running emulator, and what a sandbox client says when that
//! emulator is not running. The credentials are the emulator's published demo values,
//! not secrets of anyone's.
//!
//! The demo clients are marked ([`Client::sandbox`], and their connections
//! [`crate::model::Connection::sandbox`]): the sandbox owns them. Starting a sandbox
//! points them at its port (a random one unless asked for), so clients stored with an
//! earlier run's port keep working; "Leave the sandbox"
//! ([`crate::manager::Manager::leave_sandbox`]) removes them and their connections. A
//! client of the user's that happens to bear a demo name is never touched.

use std::time::Duration;

use serde::Serialize;
use url::Url;

use crate::error::{Error, ErrorCode, Result};
use crate::manager::NewClient;
use crate::model::{Client, Provider};
use crate::secret::ClientSecret;

/// Where a running emulator serves each provider.
#[derive(Debug, Clone)]
pub struct SandboxEndpoints {
    pub flowaccount_authorize_url: String,
    pub flowaccount_token_url: String,
    pub fedex_token_url: String,
    pub iot_auth_url: String,
    /// The IoT device API's base (`GET {it}/shadow/data`).
    pub iot_device_api_url: String,
}

/// Run the emulator as the built-in sandbox on `addr` (port 0: a free one). `port_hint`
/// says how the user picks another port (the app and the CLI take it differently).
#[cfg(feature = "emulator")]
pub async fn start(
    config: authdeck_emulator::EmulatorConfig,
    addr: std::net::SocketAddr,
    port_hint: &str,
) -> Result<authdeck_emulator::RunningEmulator> {
    authdeck_emulator::start(config, addr).await.map_err(|e| {
        Error::new(
            ErrorCode::InvalidInput,
            format!("The sandbox could not start on {addr}: {port_hint}"),
        )
        .with_detail(e.to_string())
    })
}

#[cfg(feature = "emulator")]
impl SandboxEndpoints {
    /// Where `emulator` serves each provider.
    pub fn of(emulator: &authdeck_emulator::RunningEmulator) -> Self {
        Self {
            flowaccount_authorize_url: emulator.flowaccount_authorize_url(),
            flowaccount_token_url: emulator.flowaccount_token_url(),
            fedex_token_url: emulator.fedex_token_url(),
            iot_auth_url: emulator.iot_auth_url(),
            iot_device_api_url: emulator.iot_device_api_url(),
        }
    }
}

/// The loopback redirect the emulator's demo FlowAccount client also accepts.
pub const DEMO_LOOPBACK_REDIRECT: &str = "http://127.0.0.1:53682/callback";

/// What to tell a user whose sandbox client finds nothing listening.
pub const NOT_RUNNING_MESSAGE: &str = "The sandbox is not running — start it from the window (Try the sandbox) or with `authdeckctl sandbox`, then try again.";

/// Demo app registrations: a FlowAccount client redirecting to the app's scheme, one
/// redirecting to a loopback port (for the CLI alone), a FedEx project, an IoT client.
/// Each is marked as a sandbox client.
pub fn demo_clients(e: &SandboxEndpoints) -> Vec<NewClient> {
    let mut fa = NewClient::new(
        "sandbox-flowaccount",
        Provider::FlowAccount,
        "demo-flowaccount",
    );
    fa.sandbox = true;
    fa.client_secret = Some(ClientSecret::new("demo-flowaccount-secret"));
    fa.authorize_url = Some(e.flowaccount_authorize_url.clone());
    fa.token_url = Some(e.flowaccount_token_url.clone());
    let mut fa_loopback = fa.clone();
    fa_loopback.name = "sandbox-flowaccount-loopback".into();
    fa_loopback.redirect_uri = Some(DEMO_LOOPBACK_REDIRECT.into());
    let mut fedex = NewClient::new("sandbox-fedex", Provider::Fedex, "demo-fedex-key");
    fedex.sandbox = true;
    fedex.client_secret = Some(ClientSecret::new("demo-fedex-secret"));
    fedex.token_url = Some(e.fedex_token_url.clone());
    let mut iot = NewClient::new("sandbox-iot", Provider::Iot, "demo-iot-client");
    iot.sandbox = true;
    iot.auth_url = Some(e.iot_auth_url.clone());
    iot.device_api_url = Some(e.iot_device_api_url.clone());
    vec![fa, fa_loopback, fedex, iot]
}

/// What starting a sandbox did to the store's sandbox clients.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SandboxInstall {
    /// Demo clients added now.
    pub added: Vec<String>,
    /// Sandbox clients already stored, now pointing at this sandbox.
    pub updated: Vec<String>,
    /// Demo names taken by a client that is not the sandbox's: left alone.
    pub skipped: Vec<String>,
}

impl SandboxInstall {
    /// Every sandbox client that now points at this sandbox.
    pub fn clients(&self) -> Vec<String> {
        self.added.iter().chain(&self.updated).cloned().collect()
    }
}

/// What "Leave the sandbox" removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct LeaveReport {
    /// Labels of the sandbox connections removed (logged out at the sandbox when it was
    /// running, else only deleted here).
    pub connections: Vec<String>,
    /// Names of the devices kept under sandbox clients, removed with their keyring entries.
    #[serde(default)]
    pub devices: Vec<String>,
    /// Names of the sandbox clients removed.
    pub clients: Vec<String>,
}

/// The error a sandbox client gives when its emulator is not running.
pub fn not_running(client: &Client) -> Error {
    let detail = client
        .endpoints
        .token_url
        .socket_addrs(|| None)
        .ok()
        .and_then(|addrs| addrs.first().copied())
        .map(|addr| format!("nothing listens on {addr}"))
        .unwrap_or_else(|| "nothing listens on the sandbox's port".into());
    Error::new(ErrorCode::SandboxNotRunning, NOT_RUNNING_MESSAGE).with_detail(detail)
}

/// How long a probe of the sandbox's loopback port may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Whether something accepts connections where `url` points. Only loopback addresses
/// are probed (sandbox endpoints are loopback); anything else counts as listening.
pub async fn listening(url: &Url) -> bool {
    let Ok(addrs) = url.socket_addrs(|| None) else {
        return true;
    };
    let Some(addr) = addrs.first().copied() else {
        return true;
    };
    if !addr.ip().is_loopback() {
        return true;
    }
    matches!(
        tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(addr)).await,
        Ok(Ok(_))
    )
}

/// A sandbox client's call that could not reach its provider: if nothing listens on
/// the sandbox's port, say that the sandbox is not running (instead of "network error").
pub async fn explain_failure<T>(client: &Client, result: Result<T>) -> Result<T> {
    match result {
        Err(e)
            if client.sandbox
                && e.code == ErrorCode::ProviderUnavailable
                && !listening(&client.endpoints.token_url).await =>
        {
            Err(not_running(client))
        }
        other => other,
    }
}

/// Before sending the user's browser to a sandbox client's authorize page: fails with
/// [`ErrorCode::SandboxNotRunning`] when nothing listens there.
pub async fn ensure_running(client: &Client) -> Result<()> {
    if !client.sandbox {
        return Ok(());
    }
    let url = client
        .endpoints
        .authorize_url
        .as_ref()
        .unwrap_or(&client.endpoints.token_url);
    if listening(url).await {
        Ok(())
    } else {
        Err(not_running(client))
    }
}
