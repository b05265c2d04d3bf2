//! The IPC surface: thin wrappers over [`Manager`]. Every command returns
//! `Result<T, authdeck_core::Error>`, so one error shape `{code, message, detail?}`
//! crosses IPC. Secrets arrive as plain strings from the window (the user typed them)
//! and are deserialised straight into their role types ([`ClientSecret`], …), whose
//! `Debug` is redacted; no command ever returns a secret.

use authdeck_core::activity::ActivityEntry;
use authdeck_core::export::ExportFormat;
use authdeck_core::manager::{LogoutOutcome, PendingAuthorization};
use authdeck_core::model::{Client, Connection};
use authdeck_core::sandbox::LeaveReport;
use authdeck_core::{Error, ErrorCode};
use serde::Serialize;
use tauri::{AppHandle, Runtime, State};
use ts_rs::TS;

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
    /// Which store the list is of, and whether it answers.
    pub store: StoreInfo,
}

/// Which store the window shows: this desktop's own, or its team's (in a team).
#[derive(Debug, Clone, Serialize, TS)]
pub struct StoreInfo {
    /// The team's name; `None`: this desktop's own store.
    pub team: Option<String>,
    /// This machine's name in the team.
    pub machine: Option<String>,
    /// Whether the store answered last time (this desktop's own: always). While the
    /// team's does not, every action is `team_unavailable` and nothing is written.
    pub reachable: bool,
    /// While the team's store does not answer: the list shown is the last known one,
    /// the team's as of this instant (`None`: reachable, or no list known here).
    pub last_known_at: Option<chrono::DateTime<chrono::Utc>>,
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

pub(crate) fn non_empty(value: Option<String>) -> Option<String> {
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

// The commands of each area live in their own file (clients.rs, connect.rs,
// connections.rs, export.rs, devices.rs); the globs bring their `#[tauri::command]`
// macros into this scope too, which `generate_handler!` needs.
#[allow(unused_imports)]
use crate::clients::*;
#[allow(unused_imports)]
use crate::connect::*;
#[allow(unused_imports)]
use crate::connections::*;
#[allow(unused_imports)]
use crate::devices::*;
#[allow(unused_imports)]
use crate::export::*;
#[allow(unused_imports)]
use crate::team::*;

pub use crate::clients::NewClientInput;
pub use crate::connect::{
    remember_started, FedexConnectInput, FlowAccountStart, IotConnectInput, OpenUrl,
    StartedAuthorizations, UrlOpener,
};
pub use crate::connections::{ConnectionDetails, ACTIVITY_LIMIT};
pub use crate::export::{export_text, PickSavePath, SavePathPicker};

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
        for area in [
            include_str!("clients.rs"),
            include_str!("connect.rs"),
            include_str!("connections.rs"),
            include_str!("devices.rs"),
            include_str!("export.rs"),
            include_str!("team.rs"),
        ] {
            written.extend(tauri_commands_in(area));
        }
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
            "the #[tauri::command] fns of commands.rs (and its areas' files) and src/command_list.rs differ"
        );
    }

    #[test]
    fn the_command_scan_finds_generic_and_sync_commands() {
        let source = "#[tauri::command]\npub fn a<R: Runtime>(app: AppHandle<R>) {}\n\
                      fn helper() {}\n#[tauri::command(rename_all = \"snake_case\")]\n\
                      /// doc\npub async fn b(\n";
        assert_eq!(tauri_commands_in(source), ["a", "b"]);
    }
}
