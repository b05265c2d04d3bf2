//! The IPC surface: thin wrappers over [`Manager`]. Every command returns
//! `Result<T, authdeck_core::Error>`, so one error shape `{code, message, detail?}`
//! crosses IPC. Secrets arrive as plain strings from the window (the user typed them)
//! and become [`Secret`]s at once; no command ever returns a secret.

use authdeck_core::manager::{LogoutOutcome, NewClient, PendingAuthorization};
use authdeck_core::model::{
    Client, Connection, Environment, FedexGrant, HistoryEntry, IotBasicAuth, IotBodyEncoding,
    Provider,
};
use authdeck_core::{Error, ErrorCode, Secret};
use serde::{Deserialize, Serialize};
use tauri::{AppHandle, State};
use tauri_plugin_clipboard_manager::ClipboardExt;
use tauri_plugin_opener::OpenerExt;
use ts_rs::TS;

use crate::changes::Changes;
use crate::state::AppState;
use crate::summary::ConnectionSummary;

/// `Result` of every command.
pub type CmdResult<T = ()> = Result<T, Error>;

#[derive(Debug, Clone, Serialize, TS)]
pub struct SandboxInfo {
    pub base_url: String,
    /// Names of the demo clients that point at it.
    pub clients: Vec<String>,
}

#[derive(Debug, Clone, Serialize, TS)]
pub struct AppInfo {
    pub version: String,
    /// The redirect URI to register with FlowAccount for the custom-scheme flow.
    pub redirect_uri: String,
    pub scheme: String,
    pub data_dir: String,
    /// Whether a second launch (the OS handing us a redirect URL) reaches this window.
    pub single_instance: bool,
    /// Why redirects may not reach this window, in plain words.
    pub deep_link_problem: Option<String>,
    pub sandbox: Option<SandboxInfo>,
    /// Connections whose refreshed tokens the keyring refused (locked): kept, and saved
    /// as soon as it is unlocked. Their labels; empty when nothing waits.
    pub unsaved_tokens: Vec<String>,
}

/// Everything the window shows when it (re)loads. The first one is in the page before
/// its scripts run (see `startup`); then the window follows `changes` after `version`.
#[derive(Debug, Clone, Serialize, TS)]
pub struct Snapshot {
    /// The change feed's version this snapshot includes (see `changes`).
    pub version: u64,
    pub app_info: AppInfo,
    /// Lean rows: the details panel asks for the full connection it shows.
    pub connections: Vec<ConnectionSummary>,
}

#[derive(Debug, Clone, Serialize, TS)]
pub struct ConnectionDetails {
    pub connection: Connection,
    pub history: Vec<HistoryEntry>,
}

/// The result of a redirect that arrived through the OS (deep link), sent to the
/// window as a `redirect_finished` change.
#[derive(Debug, Clone, Serialize, TS)]
pub struct CallbackResult {
    pub ok: bool,
    pub connection: Option<ConnectionSummary>,
    pub error: Option<Error>,
}

#[derive(Debug, Clone, Deserialize, TS)]
pub struct NewClientInput {
    pub name: String,
    pub provider: Provider,
    pub environment: Option<Environment>,
    pub client_id: String,
    pub client_secret: Option<String>,
    pub authorize_url: Option<String>,
    pub token_url: Option<String>,
    pub auth_url: Option<String>,
    pub redirect_uri: Option<String>,
    pub pkce: bool,
    pub iot_basic_auth: IotBasicAuth,
    pub iot_body: IotBodyEncoding,
}

#[derive(Debug, Clone, Deserialize, TS)]
pub struct FedexConnectInput {
    pub client: String,
    pub grant: FedexGrant,
    pub child_key: Option<String>,
    pub child_secret: Option<String>,
}

#[derive(Deserialize, TS)]
pub struct IotConnectInput {
    pub client: String,
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for IotConnectInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IotConnectInput")
            .field("client", &self.client)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

#[tauri::command]
pub async fn app_info(state: State<'_, AppState>) -> CmdResult<AppInfo> {
    Ok(state.app_info().await)
}

/// What the window shows (see [`Snapshot`]).
#[tauri::command]
pub async fn snapshot(state: State<'_, AppState>) -> CmdResult<Snapshot> {
    state.snapshot().await
}

/// The changes after version `after`, as soon as there are some (a long poll; see
/// [`crate::changes`]).
#[tauri::command]
pub async fn changes(state: State<'_, AppState>, after: u64) -> CmdResult<Changes> {
    Ok(state.changes().changes_after(after).await)
}

#[tauri::command]
pub async fn connection_details(
    state: State<'_, AppState>,
    id: String,
) -> CmdResult<ConnectionDetails> {
    let manager = state.manager();
    let connection = manager.connection(&id).await?;
    let history = manager.history(Some(&connection.id), 200).await?;
    Ok(ConnectionDetails {
        connection,
        history,
    })
}

#[tauri::command]
pub async fn list_clients(state: State<'_, AppState>) -> CmdResult<Vec<Client>> {
    state.manager().clients().await
}

#[tauri::command]
pub async fn add_client(state: State<'_, AppState>, input: NewClientInput) -> CmdResult<Client> {
    let mut new = NewClient::new(input.name, input.provider, input.client_id);
    new.environment = input.environment;
    new.client_secret = non_empty(input.client_secret).map(Secret::new);
    new.authorize_url = non_empty(input.authorize_url);
    new.token_url = non_empty(input.token_url);
    new.auth_url = non_empty(input.auth_url);
    new.redirect_uri = non_empty(input.redirect_uri);
    new.pkce = input.pkce;
    new.iot_basic_auth = input.iot_basic_auth;
    new.iot_body = input.iot_body;
    state.manager().add_client(new).await
}

#[tauri::command]
pub async fn remove_client(state: State<'_, AppState>, name: String) -> CmdResult {
    state.manager().remove_client(&name).await
}

/// Start a FlowAccount authorization and open it in the system browser (never an
/// embedded web view: RFC 8252 §8.12).
#[tauri::command]
pub async fn connect_flowaccount(
    app: AppHandle,
    state: State<'_, AppState>,
    client: String,
) -> CmdResult<PendingAuthorization> {
    let pending = state.manager().begin_flowaccount(&client).await?;
    // No browser is not fatal: the window shows the address to open by hand.
    if let Err(e) = open_in_browser(&app, &pending.authorize_url) {
        tracing::warn!(code = %e.code, "the system browser could not be opened");
    }
    Ok(pending)
}

/// Open an authorize URL again (the user closed the tab). Only URLs the app started
/// (`http(s)`) are opened.
#[tauri::command]
pub async fn open_authorize_url(app: AppHandle, url: String) -> CmdResult {
    open_in_browser(&app, &url)
}

fn open_in_browser(app: &AppHandle, url: &str) -> CmdResult {
    let parsed = url::Url::parse(url).map_err(|_| Error::invalid_input("Not a URL."))?;
    if !matches!(parsed.scheme(), "https" | "http") {
        return Err(Error::invalid_input(
            "Only http(s) addresses are opened in the browser.",
        ));
    }
    app.opener().open_url(url, None::<&str>).map_err(|e| {
        Error::new(
            ErrorCode::Internal,
            "The system browser could not be opened: copy the address instead.",
        )
        .with_detail(e.to_string())
    })
}

/// Finish an authorization with a redirect URL pasted by the user.
#[tauri::command]
pub async fn complete_callback(state: State<'_, AppState>, url: String) -> CmdResult<Connection> {
    state.manager().complete_callback(&url).await
}

#[tauri::command]
pub async fn connect_fedex(
    state: State<'_, AppState>,
    input: FedexConnectInput,
) -> CmdResult<Connection> {
    let child = match (
        non_empty(input.child_key),
        input.child_secret.filter(|s| !s.is_empty()),
    ) {
        (Some(key), Some(secret)) => Some((key, Secret::new(secret))),
        (None, None) => None,
        _ => {
            return Err(Error::invalid_input(
                "Give both the child key and the child secret, or neither.",
            ))
        }
    };
    state
        .manager()
        .connect_fedex(&input.client, input.grant, child)
        .await
}

#[tauri::command]
pub async fn connect_iot(
    state: State<'_, AppState>,
    input: IotConnectInput,
) -> CmdResult<Connection> {
    let password = Secret::new(input.password);
    state
        .manager()
        .connect_iot(&input.client, &input.username, password)
        .await
}

#[tauri::command]
pub async fn refresh(state: State<'_, AppState>, id: String) -> CmdResult<Connection> {
    state.manager().refresh(&id).await
}

#[tauri::command]
pub async fn logout(state: State<'_, AppState>, id: String) -> CmdResult<LogoutOutcome> {
    state.manager().logout(&id).await
}

/// Copy a valid access token to the clipboard from Rust: the token never enters the web view.
#[tauri::command]
pub async fn copy_access_token(
    app: AppHandle,
    state: State<'_, AppState>,
    id: String,
) -> CmdResult {
    let (token, _) = state
        .manager()
        .access_token(&id, std::time::Duration::from_secs(60))
        .await?;
    crate::startup::ensure_clipboard(&app);
    app.clipboard().write_text(token.expose()).map_err(|e| {
        Error::new(ErrorCode::Internal, "The clipboard could not be written.")
            .with_detail(e.to_string())
    })
}

#[tauri::command]
pub async fn history(
    state: State<'_, AppState>,
    id: Option<String>,
) -> CmdResult<Vec<HistoryEntry>> {
    state.manager().history(id.as_deref(), 200).await
}

#[tauri::command]
pub async fn start_sandbox(state: State<'_, AppState>) -> CmdResult<SandboxInfo> {
    state.start_sandbox().await
}

/// The window's first connection list is on screen: records the start-up time and
/// starts what waited for it (see [`crate::startup`]). Only the first call counts.
#[tauri::command]
pub fn mark_ready(app: AppHandle) {
    crate::startup::mark_ready(&app);
}

/// The TypeScript side of this file is generated: `cargo test -p authdeck-app bindings`
/// writes `ui/src/bindings/`, and CI fails when the committed files differ.
pub fn export_bindings(dir: &std::path::Path) -> Result<(), ts_rs::ExportError> {
    let cfg = ts_rs::Config::new()
        .with_out_dir(dir)
        .with_large_int("number");
    AppInfo::export_all(&cfg)?;
    Snapshot::export_all(&cfg)?;
    ConnectionSummary::export_all(&cfg)?;
    Changes::export_all(&cfg)?;
    ConnectionDetails::export_all(&cfg)?;
    CallbackResult::export_all(&cfg)?;
    NewClientInput::export_all(&cfg)?;
    FedexConnectInput::export_all(&cfg)?;
    IotConnectInput::export_all(&cfg)?;
    Client::export_all(&cfg)?;
    PendingAuthorization::export_all(&cfg)?;
    LogoutOutcome::export_all(&cfg)?;
    authdeck_core::model::ConnectionStatus::export_all(&cfg)?;
    ErrorCode::export_all(&cfg)?;
    Ok(())
}
