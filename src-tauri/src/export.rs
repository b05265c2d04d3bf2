//! The IPC command that exports the connection list to a file the user picks.

use authdeck_core::export::{self, ExportFormat};
use authdeck_core::{Error, ErrorCode};
use tauri::{AppHandle, Manager as _, Runtime, State};

use crate::commands::CmdResult;
use crate::state::AppState;

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
