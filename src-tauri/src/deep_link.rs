//! FlowAccount redirects into the app: `com.authdeck.desktop:/oauth/callback?code=…&state=…`.
//!
//! The OS starts a second `authdeck` with the URL as its argument; single-instance
//! forwards it to this process (`on_open_url`), which completes the authorization and
//! tells the window (a `redirect_finished` change). The URL carries the code and state:
//! it is never logged.

use authdeck_core::authorize::APP_SCHEME;
use tauri::{AppHandle, Manager as _};
use tauri_plugin_deep_link::DeepLinkExt;

use crate::changes::{self, ChangeEvent};
use crate::commands::CallbackResult;
use crate::state::AppState;
use crate::summary::ConnectionSummary;

/// Is there a D-Bus session bus? Without one, single-instance cannot forward a second
/// launch and silently starts a second app instead: detect it and say so.
pub fn session_bus_available() -> bool {
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some_and(|v| !v.is_empty()) {
        return true;
    }
    // systemd user sessions provide the bus at a well-known path without the variable.
    std::env::var_os("XDG_RUNTIME_DIR")
        .is_some_and(|dir| std::path::Path::new(&dir).join("bus").exists())
}

/// The .deb's desktop entry already declares the scheme with an `Exec=` Debian's
/// xdg-open can run; the plugin's runtime registration would replace it with a quoted
/// one it cannot. So only unpackaged builds (development, a copied binary) register.
fn installed_by_package() -> bool {
    !cfg!(debug_assertions) && std::env::current_exe().is_ok_and(|exe| exe.starts_with("/usr/"))
}

/// Listen for redirects: forwarded by a second launch, or the one that started the app.
pub fn install(app: &tauri::App) {
    let handle = app.handle().clone();
    let forward = handle.clone();
    app.deep_link().on_open_url(move |event| {
        for url in event.urls() {
            complete(forward.clone(), url.to_string());
        }
    });
    // A redirect that started the app (no instance was running).
    if let Ok(Some(urls)) = app.deep_link().get_current() {
        for url in urls {
            complete(handle.clone(), url.to_string());
        }
    }
}

/// Register as the handler of `com.authdeck.desktop:` links (unpackaged builds). It runs
/// `update-desktop-database` and `xdg-mime`, so it waits until the list is on screen
/// (`startup::finish`) and runs off the main thread; a failure is shown in the window.
pub fn register_scheme(app: &AppHandle) {
    #[cfg(target_os = "linux")]
    if std::env::var_os("AUTHDECK_NO_SCHEME_REGISTRATION").is_none() && !installed_by_package() {
        let app = app.clone();
        std::thread::spawn(move || {
            if let Err(e) = app.deep_link().register_all() {
                tracing::warn!(error = %e, "could not register the URL scheme handler");
                app.state::<AppState>().report_deep_link_problem(format!(
                    "Authdeck could not register itself for {APP_SCHEME}: links"
                ));
                changes::push(&app, ChangeEvent::AppInfoChanged);
            }
        });
    }
    #[cfg(not(target_os = "linux"))]
    let _ = app;
}

fn complete(app: AppHandle, url: String) {
    tauri::async_runtime::spawn(async move {
        let state = app.state::<AppState>();
        let result = match state.manager().complete_callback(&url).await {
            Ok(connection) => CallbackResult {
                ok: true,
                connection: Some(ConnectionSummary::from(&connection)),
                error: None,
            },
            Err(error) => CallbackResult {
                ok: false,
                connection: None,
                error: Some(error),
            },
        };
        state.changes().push(ChangeEvent::RedirectFinished {
            result: Box::new(result),
        });
        if let Some(window) = app.get_webview_window("main") {
            let _ = window.unminimize();
            let _ = window.set_focus();
        }
    });
}
