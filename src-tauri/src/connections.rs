//! The IPC commands on one connection (details, refresh, logout, check, label, keep
//! fresh, its access token to the clipboard) and on the history of all of them.

use authdeck_core::activity::ActivityEntry;
use authdeck_core::manager::LogoutOutcome;
use authdeck_core::model::{Connection, HistoryEntry, Provider};
use authdeck_core::{Error, ErrorCode};
use serde::Serialize;
use tauri::{AppHandle, Runtime, State};
use ts_rs::TS;

use crate::commands::CmdResult;
use crate::state::AppState;

#[derive(Debug, Clone, Serialize, TS)]
pub struct ConnectionDetails {
    pub connection: Connection,
    pub history: Vec<HistoryEntry>,
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
