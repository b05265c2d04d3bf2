//! Authdeck's emulator: local stand-ins for the FlowAccount, FedEx and IoT-platform auth
//! servers on one loopback port, following `shared/PROVIDERS.md` to the letter.
//!
//! It is the demo sandbox (`authdeckctl sandbox`, the `authdeck-emulator` binary) and
//! the test double of every client test above unit level. It behaves like the
//! providers would, never like a client would like them to.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use authdeck_emulator::{start, EmulatorConfig};
//! let emulator = start(EmulatorConfig::demo(), "127.0.0.1:0".parse().unwrap()).await?;
//! println!("{}", emulator.describe());
//! emulator.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Layout: one module per provider (`flowaccount`, `fedex`, `iot`) reading like its
//! PROVIDERS.md section; `fault` and `fault_response` for misbehaviour; `control` and
//! `admin` for the test-side handle and its HTTP twin; `server` for the accept loop.

mod admin;
mod approve;
mod config;
mod control;
mod device;
mod fault;
mod fault_response;
mod fedex;
mod flowaccount;
mod form;
mod iot;
mod jwt;
mod server;
mod state;
mod stats;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::response::Html;
use axum::routing::get;
use axum::Router;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use approve::{approve, deny};
pub use config::{
    AdminToken, EmulatorConfig, ExpiresInFormat, FaBusiness, FaClient, FaCompany, FaUser,
    FedexChild, FedexConfig, FedexProject, FlowAccountConfig, IotBasicMode, IotConfig, IotDevice,
    IotUser,
};
pub use control::{Control, TokenStatus};
pub use fault::{Fault, FaultKind, FaultScope};
pub use iot::IotSession;
pub use stats::{FedexStats, FlowAccountStats, IotStats, Stats};

use state::{AppState, Shared};

/// Starts the emulator on `bind` (`127.0.0.1:0` for an ephemeral port).
pub async fn start(
    mut config: EmulatorConfig,
    bind: SocketAddr,
) -> std::io::Result<RunningEmulator> {
    let admin_token = match config.admin_token.take() {
        Some(token) => token,
        None => AdminToken::generate()?,
    };
    let admin_token = Arc::new(admin_token);
    let listener = tokio::net::TcpListener::bind(bind).await?;
    let addr = listener.local_addr()?;
    let state = Shared::new(config);
    let router = routes(state.clone(), admin_token.clone());
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(server::accept_loop(listener, router, stopped));
    Ok(RunningEmulator {
        addr,
        state,
        admin_token,
        stop,
        task,
    })
}

fn routes(state: AppState, admin_token: Arc<AdminToken>) -> Router {
    Router::new()
        .route("/", get(index))
        .merge(flowaccount::routes())
        .merge(fedex::routes())
        .merge(iot::routes())
        .merge(device::routes())
        .merge(admin::routes(admin_token))
        .with_state(state)
}

/// A running emulator. Dropping it stops the server too; `shutdown` also waits for it.
pub struct RunningEmulator {
    addr: SocketAddr,
    state: AppState,
    admin_token: Arc<AdminToken>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl RunningEmulator {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn flowaccount_authorize_url(&self) -> String {
        format!("{}/flowaccount/connect/authorize", self.base_url())
    }

    /// The sandbox token URL; `/flowaccount/v1/token` (production's path) works too.
    pub fn flowaccount_token_url(&self) -> String {
        format!("{}/flowaccount/test/token", self.base_url())
    }

    /// FlowAccount's API base of the sandbox environment (`{it}/company/info`, …);
    /// `/flowaccount/v1` (production's path) works too.
    pub fn flowaccount_api_base(&self) -> String {
        format!("{}/flowaccount/test", self.base_url())
    }

    pub fn fedex_token_url(&self) -> String {
        format!("{}/fedex/oauth/token", self.base_url())
    }

    /// The IoT `auth_url`: `POST {it}/oauth/token`, `POST {it}/user/logout`.
    pub fn iot_auth_url(&self) -> String {
        format!("{}/iot", self.base_url())
    }

    /// The IoT device API's base (NETPIE: `https://api.netpie.io/v2/device`):
    /// `GET {it}/shadow/data` with `Authorization: Device <ClientID>:<Token>`.
    pub fn iot_device_api_url(&self) -> String {
        format!("{}{}", self.base_url(), device::API_BASE)
    }

    /// The bearer token `/admin/*` wants (`Authorization: Bearer <it>`): the one given
    /// in [`EmulatorConfig::admin_token`], or this run's random one. Never log it.
    pub fn admin_token(&self) -> &str {
        self.admin_token.expose()
    }

    pub fn control(&self) -> Control {
        Control {
            state: self.state.clone(),
        }
    }

    /// Endpoints and demo credentials, for people (printed by `authdeckctl sandbox`).
    pub fn describe(&self) -> String {
        describe(self, &self.state)
    }

    /// Stops accepting, drops open connections (hung requests included), and waits.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

fn describe(emulator: &RunningEmulator, state: &AppState) -> String {
    use std::fmt::Write;
    let inner = state.lock();
    let mut out = String::new();
    let base = emulator.base_url();
    let _ = writeln!(out, "Authdeck emulator at {base}");
    let _ = writeln!(out);
    let _ = writeln!(out, "FlowAccount (authorization code)");
    let _ = writeln!(
        out,
        "  authorize     {}",
        emulator.flowaccount_authorize_url()
    );
    let _ = writeln!(
        out,
        "  token         {}  (also {base}/flowaccount/v1/token)",
        emulator.flowaccount_token_url()
    );
    let _ = writeln!(
        out,
        "  API           {}/company/info  (Authorization: Bearer <access token>)",
        emulator.flowaccount_api_base()
    );
    for client in &inner.flowaccount.config.clients {
        let _ = writeln!(
            out,
            "  client        {} / {}",
            client.client_id, client.client_secret
        );
        let _ = writeln!(out, "  redirect URIs {}", client.redirect_uris.join("  "));
    }
    for user in &inner.flowaccount.config.users {
        let _ = writeln!(out, "  user          {} / {}", user.username, user.password);
        for business in &user.businesses {
            let _ = writeln!(
                out,
                "    business    {}  {}",
                business.support_code, business.name
            );
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "FedEx API (client credentials)");
    let _ = writeln!(out, "  token         {}", emulator.fedex_token_url());
    for project in &inner.fedex.config.projects {
        let _ = writeln!(
            out,
            "  project       {} / {}",
            project.client_id, project.client_secret
        );
        for child in &project.children {
            let _ = writeln!(
                out,
                "  child         child_Key={} / child_secret={}",
                child.child_key, child.child_secret
            );
        }
    }
    let _ = writeln!(out);
    let iot = &inner.iot.config;
    let _ = writeln!(out, "IoT platform (password grant)");
    let _ = writeln!(
        out,
        "  auth_url      {}   (POST /oauth/token, POST /user/logout)",
        emulator.iot_auth_url()
    );
    let _ = writeln!(
        out,
        "  client id     {}   (Authorization: Basic {})",
        iot.client_id,
        match iot.basic_mode {
            IotBasicMode::Raw => "<client id>",
            IotBasicMode::Base64 => "base64(<client id>:)",
            IotBasicMode::Either => "<client id> or base64(<client id>:)",
        }
    );
    for user in &iot.users {
        let _ = writeln!(
            out,
            "  user          {} / {}   (id {}, {})",
            user.username, user.password, user.user_id, user.email
        );
    }
    let _ = writeln!(
        out,
        "  device API    {}   (GET /shadow/data, Authorization: Device <Client ID>:<Token>)",
        emulator.iot_device_api_url()
    );
    for device in &iot.devices {
        let _ = writeln!(
            out,
            "  device        Client ID {} / Token {}{}",
            device.client_id,
            device.token,
            device
                .secret
                .as_deref()
                .map(|s| format!(" / Secret {s}"))
                .unwrap_or_default()
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Admin: {base}/admin/stats, /admin/faults, /admin/latency, /admin/clock/advance, /admin/iot/sessions, /admin/iot/devices"
    );
    let _ = writeln!(
        out,
        "       (each needs Authorization: Bearer <this run's admin token>)"
    );
    out
}

async fn index() -> Html<&'static str> {
    Html(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Authdeck emulator</title>\
<style>body{font-family:system-ui,sans-serif;max-width:44rem;margin:3rem auto;line-height:1.5}\
code{background:#f1f3f8;padding:.1rem .3rem;border-radius:.2rem}</style></head><body>\
<h1>Authdeck emulator</h1><p>Local stand-ins for three auth servers. Nothing here is real.</p>\
<h2>FlowAccount</h2><p><code>GET /flowaccount/connect/authorize</code>, \
<code>POST /flowaccount/test/token</code> (or <code>/v1/token</code>), <code>GET /flowaccount/test/company/info</code>, <code>GET /flowaccount/test/me</code>.<br>\
Client <code>demo-flowaccount</code> / <code>demo-flowaccount-secret</code>; user <code>demo@example.com</code> / <code>demo</code>.</p>\
<h2>FedEx</h2><p><code>POST /fedex/oauth/token</code>. Project <code>demo-fedex-key</code> / <code>demo-fedex-secret</code>; \
child <code>demo-child-key</code> / <code>demo-child-secret</code>.</p>\
<h2>IoT platform</h2><p><code>POST /iot/oauth/token</code>, <code>POST /iot/user/logout</code>, <code>GET /iot/user/me</code>. \
<code>Authorization: Basic demo-iot-client</code>; user <code>operator</code> / <code>operator-pass</code>.</p>\
<h2>Admin</h2><p><code>/admin/stats</code>, <code>/admin/faults</code>, \
<code>/admin/iot/sessions</code>, <code>/admin/clock</code>, each with <code>Authorization: Bearer &lt;admin token&gt;</code> \
(the token is new on every start).</p>\
<p>(The credentials above are the demo configuration's; a custom configuration may differ.)</p></body></html>",
    )
}
