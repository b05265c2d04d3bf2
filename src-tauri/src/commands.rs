//! The IPC surface: thin wrappers over [`Manager`]. Every command returns
//! `Result<T, authdeck_core::Error>`, so one error shape `{code, message, detail?}`
//! crosses IPC. Secrets arrive as plain strings from the window (the user typed them)
//! and are deserialised straight into their role types ([`ClientSecret`], …), whose
//! `Debug` is redacted; no command ever returns a secret.

use authdeck_core::activity::ActivityEntry;
use authdeck_core::export::{self, ExportFormat};
use authdeck_core::manager::{LogoutOutcome, NewClient, PendingAuthorization};
use authdeck_core::model::{
    Client, Connection, Environment, FedexGrant, HistoryEntry, IotBasicAuth, IotBodyEncoding,
    Provider,
};
use authdeck_core::sandbox::LeaveReport;
use authdeck_core::{AnySecret, ChildSecret, ClientSecret, Error, ErrorCode, Password};
use serde::{Deserialize, Serialize};
use tauri::{AppHandle, Manager as _, Runtime, State};
use ts_rs::TS;
use zeroize::Zeroizing;

use crate::changes::Changes;
use crate::state::AppState;
use crate::summary::ConnectionSummary;

/// `Result` of every command.
pub type CmdResult<T = ()> = Result<T, Error>;

/// The running sandbox (`AppInfo::sandbox` is `None` while it is stopped).
#[derive(Debug, Clone, Serialize, TS)]
pub struct SandboxInfo {
    pub base_url: String,
    /// Names of the sandbox clients that point at it.
    pub clients: Vec<String>,
    /// Demo names taken by clients of the user's, left alone.
    pub skipped: Vec<String>,
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
    /// The sandbox while it runs; `None` when it is stopped.
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

impl From<authdeck_core::Result<Connection>> for CallbackResult {
    /// What the window is told of a redirect that was handled (deep link or loopback).
    fn from(result: authdeck_core::Result<Connection>) -> Self {
        match result {
            Ok(connection) => Self {
                ok: true,
                connection: Some(ConnectionSummary::from(&connection)),
                error: None,
            },
            Err(error) => Self {
                ok: false,
                connection: None,
                error: Some(error),
            },
        }
    }
}

#[derive(Debug, Deserialize, TS)]
pub struct NewClientInput {
    pub name: String,
    pub provider: Provider,
    pub environment: Option<Environment>,
    pub client_id: String,
    #[ts(type = "string | null")]
    pub client_secret: Option<ClientSecret>,
    pub authorize_url: Option<String>,
    pub token_url: Option<String>,
    pub auth_url: Option<String>,
    /// FlowAccount: the API base (`{it}/company/info`); absent: the environment's.
    #[serde(default)]
    #[ts(optional)]
    pub api_url: Option<String>,
    /// IoT platform: the device API's base (default: the environment's preset).
    #[serde(default)]
    #[ts(optional)]
    pub device_api_url: Option<String>,
    pub redirect_uri: Option<String>,
    pub pkce: bool,
    pub iot_basic_auth: IotBasicAuth,
    pub iot_body: IotBodyEncoding,
}

impl From<NewClientInput> for NewClient {
    /// Field for field, every one named on both sides (no `..`): a field added to
    /// either type does not compile here until it is handled. Blank text counts as not
    /// given; the window never makes a sandbox client.
    fn from(input: NewClientInput) -> Self {
        let NewClientInput {
            name,
            provider,
            environment,
            client_id,
            client_secret,
            authorize_url,
            token_url,
            auth_url,
            api_url,
            device_api_url,
            redirect_uri,
            pkce,
            iot_basic_auth,
            iot_body,
        } = input;
        NewClient {
            name,
            provider,
            environment,
            client_id,
            client_secret: non_empty_secret(client_secret),
            authorize_url: non_empty(authorize_url),
            token_url: non_empty(token_url),
            auth_url: non_empty(auth_url),
            api_url: non_empty(api_url),
            device_api_url: non_empty(device_api_url),
            redirect_uri: non_empty(redirect_uri),
            pkce,
            iot_basic_auth,
            iot_body,
            sandbox: false,
        }
    }
}

#[derive(Debug, Deserialize, TS)]
pub struct FedexConnectInput {
    pub client: String,
    pub grant: FedexGrant,
    pub child_key: Option<String>,
    #[ts(type = "string | null")]
    pub child_secret: Option<ChildSecret>,
}

#[derive(Debug, Deserialize, TS)]
pub struct IotConnectInput {
    pub client: String,
    pub username: String,
    #[ts(type = "string")]
    pub password: Password,
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// [`non_empty`] for a secret (a pasted client secret may carry a stray space).
fn non_empty_secret<T: AnySecret>(value: Option<T>) -> Option<T> {
    value
        .map(|v| T::new(v.expose().trim()))
        .filter(|v| !v.is_empty())
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
    state.manager().add_client(NewClient::from(input)).await
}

#[tauri::command]
pub async fn remove_client(state: State<'_, AppState>, name: String) -> CmdResult {
    state.manager().remove_client(&name).await
}

/// A started FlowAccount authorization, and whether the system browser took its page
/// (when not, the window says so and shows the address to open by hand).
#[derive(Debug, Clone, Serialize, TS)]
pub struct FlowAccountStart {
    #[serde(flatten)]
    pub pending: PendingAuthorization,
    pub browser_opened: bool,
}

/// Start a FlowAccount authorization and open it in the system browser (never an
/// embedded web view: RFC 8252 §8.12). A client with a loopback redirect URI gets its
/// listener first (see `authdeck_core::loopback`); the redirect that reaches it is
/// reported like a deep link (a `redirect_finished` change).
#[tauri::command]
pub async fn connect_flowaccount<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    client: String,
) -> CmdResult<FlowAccountStart> {
    let notify = app.clone();
    let pending = state
        .loopback()
        .begin(state.manager(), &client, move |result| {
            loopback_finished(&notify, result)
        })
        .await?;
    remember_started(&app, &pending);
    // No browser is not fatal: the window shows the address to open by hand.
    let browser_opened = match open_in_browser(&app, &pending.authorize_url) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(code = %e.code, "the system browser could not be opened");
            false
        }
    };
    Ok(FlowAccountStart {
        pending,
        browser_opened,
    })
}

/// Give up a started authorization (the window's Cancel): its loopback listener stops
/// and its redirect, should it still come, is rejected. `false` if it had ended already.
#[tauri::command]
pub async fn cancel_flowaccount(state: State<'_, AppState>, id: String) -> CmdResult<bool> {
    state.loopback().cancel(state.manager(), &id).await
}

/// A loopback redirect completed (or failed) an authorization: tell the window, as for
/// a deep link, and bring it forward when a connection was made.
fn loopback_finished<R: Runtime>(app: &AppHandle<R>, result: authdeck_core::Result<Connection>) {
    let connected = result.is_ok();
    let result = CallbackResult::from(result);
    app.state::<AppState>()
        .changes()
        .push(crate::changes::ChangeEvent::RedirectFinished {
            result: Box::new(result),
        });
    if connected {
        if let Some(window) = app.get_webview_window("main") {
            let _ = window.unminimize();
            let _ = window.set_focus();
        }
    }
}

/// Open the authorize page of a pending authorization again (the user closed the tab).
/// The argument is the authorization's `id` (from `connect_flowaccount`); only the URL
/// of an authorization this window started and that is still pending is opened:
/// anything else is `invalid_input` and nothing is opened.
#[tauri::command]
pub async fn open_authorize_url<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    id: String,
) -> CmdResult {
    let refused = || {
        Error::invalid_input(
            "This is not an authorization this window started and that is still pending: start connecting again.",
        )
    };
    let url = started_authorizations(&app)
        .url_of(&id, state.manager().now())
        .ok_or_else(refused)?;
    if !state.manager().authorization_is_pending(&url).await? {
        return Err(refused());
    }
    open_in_browser(&app, &url)
}

/// One started authorization: its id, its URL (it carries the state), when it expires.
type Started = (String, Zeroizing<String>, chrono::DateTime<chrono::Utc>);

/// The authorize URLs `connect_flowaccount` started in this window, by authorization
/// id, until they expire.
#[derive(Default)]
pub struct StartedAuthorizations(std::sync::Mutex<Vec<Started>>);

impl StartedAuthorizations {
    pub fn add(&self, id: &str, url: &str, expires_at: chrono::DateTime<chrono::Utc>) {
        if let Ok(mut list) = self.0.lock() {
            list.push((id.to_owned(), Zeroizing::new(url.to_owned()), expires_at));
        }
    }

    /// The URL of authorization `id` (it carries the state: zeroized when dropped), if
    /// this window started it and it has not expired at `now`. Forgets expired ones.
    pub fn url_of(
        &self,
        id: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Option<Zeroizing<String>> {
        let mut list = self.0.lock().ok()?;
        list.retain(|(_, _, expires_at)| *expires_at > now);
        list.iter()
            .find(|(known, _, _)| known == id)
            .map(|(_, url, _)| url.clone())
    }
}

fn started_authorizations<R: Runtime>(app: &AppHandle<R>) -> State<'_, StartedAuthorizations> {
    app.manage(StartedAuthorizations::default()); // no-op once managed
    app.state::<StartedAuthorizations>()
}

/// Remember an authorization this window started, so `open_authorize_url` may open it.
pub fn remember_started<R: Runtime>(app: &AppHandle<R>, pending: &PendingAuthorization) {
    started_authorizations(app).add(&pending.id, &pending.authorize_url, pending.expires_at);
}

/// Opens one URL (or says why not).
pub type OpenUrl = dyn Fn(&str) -> Result<(), String> + Send + Sync;

/// Where URLs are opened, if managed (tests record them); else the system browser.
pub struct UrlOpener(pub Box<OpenUrl>);

fn open_in_browser<R: Runtime>(app: &AppHandle<R>, url: &str) -> CmdResult {
    let parsed = url::Url::parse(url).map_err(|_| Error::invalid_input("Not a URL."))?;
    if !matches!(parsed.scheme(), "https" | "http") {
        return Err(Error::invalid_input(
            "Only http(s) addresses are opened in the browser.",
        ));
    }
    // A managed opener (tests record URLs); else the opener plugin. Without either
    // (the IPC tests' mock app) nothing is opened.
    let opened = match app.try_state::<UrlOpener>() {
        Some(opener) => (opener.0)(url),
        None => match app.try_state::<tauri_plugin_opener::Opener<R>>() {
            Some(opener) => opener
                .open_url(url, None::<&str>)
                .map_err(|e| e.to_string()),
            None => Err("no system browser opener in this app".to_owned()),
        },
    };
    opened.map_err(|e| {
        Error::new(
            ErrorCode::Internal,
            "The system browser could not be opened: copy the address instead.",
        )
        .with_detail(e)
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
        (Some(key), Some(secret)) => Some((key, secret)),
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
    let password = input.password;
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

/// Ask the provider whether it accepts the connection now (FlowAccount: its
/// `/company/info`; FedEx: a token request, which counts against the project's quota;
/// IoT: a renewal). The outcome is kept on the connection either way.
#[tauri::command]
pub async fn check(state: State<'_, AppState>, id: String) -> CmdResult<Connection> {
    state.manager().check(&id).await
}

/// The user's own name for a connection; `null` or blank removes it.
#[tauri::command]
pub async fn set_label(
    state: State<'_, AppState>,
    id: String,
    name: Option<String>,
) -> CmdResult<Connection> {
    state.manager().set_label(&id, name.as_deref()).await
}

/// Copy a valid access token to the clipboard from Rust: the token never enters the web
/// view. The clipboard is cleared after [`crate::clipboard::CLEAR_AFTER`] if it still
/// holds the token; returns those seconds (for the window to say so).
#[tauri::command]
pub async fn copy_access_token<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    id: String,
) -> CmdResult<u32> {
    let (token, _) = state
        .manager()
        .access_token(&id, std::time::Duration::from_secs(60))
        .await?;
    crate::startup::ensure_clipboard(&app);
    let system = std::sync::Arc::new(crate::clipboard::SystemClipboard(app.clone()));
    let clear_later = crate::clipboard::copy(system, token, tokio::time::sleep).map_err(|e| {
        Error::new(ErrorCode::Internal, "The clipboard could not be written.").with_detail(e)
    })?;
    tauri::async_runtime::spawn(clear_later);
    Ok(crate::clipboard::CLEAR_AFTER.as_secs() as u32)
}

#[tauri::command]
pub async fn history(
    state: State<'_, AppState>,
    id: Option<String>,
) -> CmdResult<Vec<HistoryEntry>> {
    state.manager().history(id.as_deref(), 200).await
}

/// The activity view: every history event across connections, newest first, named by
/// its connection (also after the connection was removed). At most [`ACTIVITY_LIMIT`].
#[tauri::command]
pub async fn activity(state: State<'_, AppState>) -> CmdResult<Vec<ActivityEntry>> {
    state.manager().activity(ACTIVITY_LIMIT).await
}

/// How many events the activity view shows (the newest).
pub const ACTIVITY_LIMIT: usize = 1000;

/// FedEx "keep fresh": whether the background scheduler re-requests this connection's
/// token before it expires. Only FedEx connections have the switch (the others are
/// always kept fresh): anything else is `invalid_input` and nothing changes.
#[tauri::command]
pub async fn set_keep_fresh(
    state: State<'_, AppState>,
    id: String,
    keep_fresh: bool,
) -> CmdResult<Connection> {
    let manager = state.manager();
    let conn = manager.connection(&id).await?;
    if conn.provider != Provider::Fedex {
        return Err(Error::invalid_input(
            "Only FedEx connections can be switched: the others are always kept fresh.",
        ));
    }
    manager.set_keep_fresh(&conn.id, keep_fresh).await
}

/// Picks where an export is saved: given the suggested file name, the path, or `None`
/// when the user cancelled. Managed by tests (a fixed path); else the system's save
/// dialog.
pub struct SavePathPicker(pub Box<PickSavePath>);

/// Given the suggested file name, where to save (`None`: cancelled).
pub type PickSavePath = dyn Fn(&str) -> Option<std::path::PathBuf> + Send + Sync;

/// The connection list as text (see `authdeck_core::export`): no secret.
pub async fn export_text(state: &AppState, format: ExportFormat) -> CmdResult<String> {
    let manager = state.manager();
    let connections = manager.list().await?;
    export::render(&connections, manager.now(), format)
}

/// Export the connection list (CSV or JSON) to a file the user picks in the system's
/// save dialog; the web view never names a path. The path saved to, or `None` when the
/// user cancelled.
#[tauri::command]
pub async fn export_connections<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    format: ExportFormat,
) -> CmdResult<Option<String>> {
    let text = export_text(&state, format).await?;
    let suggested = format!("authdeck-connections.{}", format.extension());
    let Some(path) = pick_save_path(&app, &suggested, format).await else {
        return Ok(None);
    };
    let written = path.clone();
    tokio::task::spawn_blocking(move || std::fs::write(&written, text))
        .await
        .map_err(|_| Error::internal("Writing the export panicked."))?
        .map_err(|e| {
            Error::new(
                ErrorCode::Storage,
                format!("The export could not be saved to {}.", path.display()),
            )
            .with_detail(e.to_string())
        })?;
    Ok(Some(path.display().to_string()))
}

async fn pick_save_path<R: Runtime>(
    app: &AppHandle<R>,
    suggested: &str,
    format: ExportFormat,
) -> Option<std::path::PathBuf> {
    if let Some(picker) = app.try_state::<SavePathPicker>() {
        return (picker.0)(suggested);
    }
    use tauri_plugin_dialog::DialogExt as _;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (filter, ext) = match format {
        ExportFormat::Csv => ("CSV", "csv"),
        ExportFormat::Json => ("JSON", "json"),
    };
    let mut dialog = app
        .dialog()
        .file()
        .set_file_name(suggested)
        .add_filter(filter, &[ext]);
    if let Some(window) = app.get_webview_window("main") {
        dialog = dialog.set_parent(&window);
    }
    dialog.save_file(move |picked| {
        let _ = tx.send(picked.and_then(|p| p.into_path().ok()));
    });
    rx.await.ok().flatten()
}

#[tauri::command]
pub async fn start_sandbox(state: State<'_, AppState>) -> CmdResult<SandboxInfo> {
    state.start_sandbox().await
}

/// Stop the sandbox; its clients and connections stay.
#[tauri::command]
pub async fn stop_sandbox(state: State<'_, AppState>) -> CmdResult {
    state.stop_sandbox().await;
    Ok(())
}

/// "Leave the sandbox": its connections and clients are logged out and removed (with
/// their keyring entries), then it stops. Nothing else is touched.
#[tauri::command]
pub async fn leave_sandbox(state: State<'_, AppState>) -> CmdResult<LeaveReport> {
    state.leave_sandbox().await
}

/// The window's first connection list is on screen: records the start-up time and
/// starts what waited for it (see [`crate::startup`]). Only the first call counts.
#[tauri::command]
pub fn mark_ready<R: Runtime>(app: AppHandle<R>) {
    crate::startup::mark_ready(&app);
}

// The device commands live in devices.rs; the glob brings their `#[tauri::command]`
// macros into this scope too, which `generate_handler!` needs.
#[allow(unused_imports)]
use crate::devices::*;
#[allow(unused_imports)]
use crate::team::*;

/// `handler()` and `COMMANDS` from the one list of commands (src/command_list.rs).
macro_rules! authdeck_commands {
    ($($name:ident),* $(,)?) => {
        /// The name of every IPC command, as the window invokes it.
        pub const COMMANDS: &[&str] = &[$(stringify!($name)),*];

        /// The invoke handler of every IPC command: the app's (`crate::builder`) and
        /// the IPC tests' mock app's.
        pub fn handler<R: Runtime>() -> impl Fn(tauri::ipc::Invoke<R>) -> bool + Send + Sync + 'static {
            tauri::generate_handler![$($name),*]
        }
    };
}
include!("command_list.rs");

/// The TypeScript side of this file is generated: `make bindings` (the bindings test with
/// `UPDATE_BINDINGS=1`) writes `ui/src/bindings/`; without it the test only compares,
/// and fails when the committed files differ.
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
    FlowAccountStart::export_all(&cfg)?;
    LogoutOutcome::export_all(&cfg)?;
    LeaveReport::export_all(&cfg)?;
    authdeck_core::model::ConnectionStatus::export_all(&cfg)?;
    ErrorCode::export_all(&cfg)?;
    ActivityEntry::export_all(&cfg)?;
    ExportFormat::export_all(&cfg)?;
    crate::team::export_bindings(dir)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `#[tauri::command]` fns of this file, by name, in the order they appear.
    fn tauri_commands_in(source: &str) -> Vec<String> {
        let mut names = Vec::new();
        let mut lines = source.lines().map(str::trim);
        while let Some(line) = lines.next() {
            if !line.starts_with("#[tauri::command") {
                continue;
            }
            let signature = lines
                .find(|l| !l.starts_with("#[") && !l.starts_with("//"))
                .unwrap_or_default();
            let name = signature
                .split("fn ")
                .nth(1)
                .and_then(|rest| rest.split(['(', '<']).next())
                .unwrap_or_else(|| panic!("no fn after #[tauri::command]: {signature:?}"));
            names.push(name.to_owned());
        }
        names
    }

    /// A command written here but left out of src/command_list.rs would be unreachable
    /// (and ungranted); one listed twice would be registered twice.
    #[test]
    fn every_tauri_command_is_listed_once() {
        let mut written = tauri_commands_in(include_str!("commands.rs"));
        written.extend(tauri_commands_in(include_str!("devices.rs")));
        written.extend(tauri_commands_in(include_str!("team.rs")));
        assert!(
            written.len() > 10,
            "the scan found the commands: {written:?}"
        );
        written.sort();
        let mut listed: Vec<String> = COMMANDS.iter().map(|c| c.to_string()).collect();
        listed.sort();
        let mut unique = listed.clone();
        unique.dedup();
        assert_eq!(unique, listed, "a command is listed twice");
        assert_eq!(
            written, listed,
            "the #[tauri::command] fns of commands.rs and src/command_list.rs differ"
        );
    }

    #[test]
    fn the_command_scan_finds_generic_and_sync_commands() {
        let source = "#[tauri::command]\npub fn a<R: Runtime>(app: AppHandle<R>) {}\n\
                      fn helper() {}\n#[tauri::command(rename_all = \"snake_case\")]\n\
                      /// doc\npub async fn b(\n";
        assert_eq!(tauri_commands_in(source), ["a", "b"]);
    }

    #[test]
    fn a_new_client_from_the_window_drops_blank_text_and_is_never_a_sandbox_client() {
        let input: NewClientInput = serde_json::from_value(serde_json::json!({
            "name": "Books", "provider": "flowaccount", "environment": "production",
            "client_id": "id-1", "client_secret": "  s3cret \t", "authorize_url": "  ",
            "token_url": " https://t.example/token ", "auth_url": null, "redirect_uri": "",
            "pkce": false, "iot_basic_auth": "raw", "iot_body": "form"
        }))
        .unwrap();
        let new = NewClient::from(input);
        assert_eq!(
            (new.name.as_str(), new.client_id.as_str()),
            ("Books", "id-1")
        );
        assert_eq!(new.provider, Provider::FlowAccount);
        assert_eq!(new.environment, Some(Environment::Production));
        assert_eq!(
            new.client_secret.as_ref().map(|s| s.expose()),
            Some("s3cret")
        );
        assert_eq!(new.token_url.as_deref(), Some("https://t.example/token"));
        assert_eq!(
            (new.authorize_url, new.auth_url, new.redirect_uri),
            (None, None, None)
        );
        assert!(!new.pkce, "the window's explicit opt-out is kept");
        assert!(!new.sandbox);
    }

    #[test]
    fn started_authorizations_are_found_by_id_until_they_expire() {
        let now = chrono::Utc::now();
        let started = StartedAuthorizations::default();
        let url = "https://auth.example/connect/authorize?client_id=a&state=s1";
        started.add("id-1", url, now + chrono::Duration::minutes(10));
        assert_eq!(started.url_of("id-1", now).unwrap().as_str(), url);
        for other in ["id-", "id-12", "", url] {
            assert!(started.url_of(other, now).is_none(), "{other}");
        }
        let later = now + chrono::Duration::minutes(10);
        assert!(started.url_of("id-1", later).is_none(), "expired");
        assert!(started.url_of("id-1", now).is_none(), "and forgotten");
    }
}
