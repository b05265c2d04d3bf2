//! What the window hears about changes: the manager's events, made lean (a row's
//! summary instead of the whole connection), forwarded as `authdeck://changed`.

use authdeck_core::manager::Event;
use serde::Serialize;
use tauri::{Emitter, Manager as _};
use ts_rs::TS;

use crate::state::AppState;
use crate::summary::ConnectionSummary;

/// Change events are sent to the window under this name.
pub const CHANGED_EVENT: &str = "authdeck://changed";

/// The payload of `authdeck://changed`.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChangeEvent {
    ConnectionChanged {
        connection: Box<ConnectionSummary>,
    },
    ConnectionRemoved {
        id: String,
    },
    ClientsChanged,
    /// Something was written to the history (e.g. a rejected callback).
    HistoryAdded {
        connection_id: Option<String>,
    },
    /// `app_info` says something new (e.g. the URL scheme could not be registered).
    AppInfoChanged,
    /// The window missed events: it loads the snapshot again.
    Resync,
}

impl From<&Event> for ChangeEvent {
    fn from(event: &Event) -> Self {
        match event {
            Event::ConnectionChanged { connection } => Self::ConnectionChanged {
                connection: Box::new(ConnectionSummary::from(connection.as_ref())),
            },
            Event::ConnectionRemoved { id } => Self::ConnectionRemoved { id: id.clone() },
            Event::ClientsChanged => Self::ClientsChanged,
            Event::HistoryAdded { connection_id } => Self::HistoryAdded {
                connection_id: connection_id.clone(),
            },
        }
    }
}

pub fn emit_change<R: tauri::Runtime>(app: &tauri::AppHandle<R>, event: &ChangeEvent) {
    app.state::<AppState>().note_change();
    if let Err(e) = app.emit(CHANGED_EVENT, event) {
        tracing::warn!(error = %e, "could not forward an event");
    }
}

/// Forward the manager's change events to the window.
pub fn forward<R: tauri::Runtime>(app: &tauri::AppHandle<R>) {
    let mut events = app.state::<AppState>().manager().subscribe();
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        loop {
            match events.recv().await {
                Ok(event) => emit_change(&app, &ChangeEvent::from(&event)),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "the window missed change events");
                    emit_change(&app, &ChangeEvent::Resync);
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
    });
}
