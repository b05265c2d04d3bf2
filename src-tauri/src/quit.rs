//! Quitting without dropping an answer: when the app is asked to exit (last window
//! closed, SIGTERM, SIGINT, SIGHUP), the core starts no new provider call, and the exit
//! waits — at most the manager's grace — for the refreshes in flight to be committed.

use std::sync::atomic::{AtomicBool, Ordering};

use tauri::{AppHandle, Manager as _, RunEvent};

use crate::state::AppState;

/// Set once the wait is over: the next exit request goes through.
static RELEASED: AtomicBool = AtomicBool::new(false);

/// The run loop's hook: holds an exit back while refreshes are in flight.
pub fn on_event(app: &AppHandle, event: &RunEvent) {
    let RunEvent::ExitRequested { code, api, .. } = event else {
        return;
    };
    if RELEASED.load(Ordering::Acquire) {
        return;
    }
    let Some(state) = app.try_state::<AppState>() else {
        return;
    };
    let manager = state.manager().clone();
    let shutdown = manager.shutdown();
    let first = !shutdown.is_stopping();
    shutdown.begin();
    let waiting = shutdown.in_flight();
    if waiting == 0 {
        RELEASED.store(true, Ordering::Release);
        return;
    }
    api.prevent_exit();
    if !first {
        tracing::info!(waiting, "quit: still waiting for refreshes to be saved");
        return;
    }
    tracing::info!(waiting, "quit: waiting for refreshes in flight to be saved");
    let (app, code) = (app.clone(), code.unwrap_or(0));
    tauri::async_runtime::spawn(async move {
        let grace = manager.shutdown_grace();
        if tokio::time::timeout(grace, manager.shutdown().idle())
            .await
            .is_err()
        {
            tracing::warn!(
                left = manager.shutdown().in_flight(),
                "quit: gave up waiting for refreshes in flight"
            );
        }
        RELEASED.store(true, Ordering::Release);
        app.exit(code);
    });
}

/// Answers a locked keyring refused are retried every few seconds until it is
/// unlocked; the window's banner follows (`AppInfo::unsaved_tokens`).
pub fn save_refused_answers(app: &AppHandle) {
    let Some(state) = app.try_state::<AppState>() else {
        return;
    };
    let manager = state.manager().clone();
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let mut shown: Vec<String> = Vec::new();
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(3)).await;
            if !manager.unsaved_connections().is_empty() {
                manager
                    .save_unsaved(std::time::Duration::ZERO, |_| {})
                    .await;
            }
            let now = manager.unsaved_labels();
            if now != shown {
                shown = now;
                crate::changes::push(&app, crate::changes::ChangeEvent::AppInfoChanged);
            }
        }
    });
}

/// SIGTERM, SIGINT and SIGHUP ask the app to exit like closing its window does.
#[cfg(unix)]
pub fn exit_on_signals(app: &AppHandle) {
    use tokio::signal::unix::{signal, SignalKind};
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let kinds = [
            (SignalKind::interrupt(), 130),
            (SignalKind::terminate(), 143),
            (SignalKind::hangup(), 129),
        ];
        let mut streams = Vec::new();
        for (kind, code) in kinds {
            match signal(kind) {
                Ok(s) => streams.push((s, code)),
                Err(e) => tracing::warn!(error = %e, "signal handler not installed"),
            }
        }
        loop {
            let Some(code) = next(&mut streams).await else {
                return;
            };
            tracing::info!(code, "stop signal received");
            app.exit(code);
        }
    });
}

#[cfg(unix)]
async fn next(streams: &mut [(tokio::signal::unix::Signal, i32)]) -> Option<i32> {
    if streams.is_empty() {
        return None;
    }
    std::future::poll_fn(|cx| {
        for (stream, code) in streams.iter_mut() {
            if let std::task::Poll::Ready(Some(())) = stream.poll_recv(cx) {
                return std::task::Poll::Ready(Some(*code));
            }
        }
        std::task::Poll::Pending
    })
    .await
}

#[cfg(not(unix))]
pub fn exit_on_signals(_app: &AppHandle) {}
