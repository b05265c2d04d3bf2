//! FlowAccount redirects into the app: `com.authdeck.desktop:/oauth/callback?code=…&state=…`.
//!
//! The OS starts a second `authdeck` with the URL as its argument; single-instance
//! forwards it to this process (`on_open_url`), which completes the authorization and
//! tells the window (a `redirect_finished` change). The URL carries the code and state:
//! it is never logged.

use authdeck_core::authorize::APP_SCHEME;
use authdeck_core::ErrorCode;
use tauri::{AppHandle, Manager as _};
use tauri_plugin_deep_link::DeepLinkExt;

use crate::changes::{self, ChangeEvent};
use crate::commands::CallbackResult;
use crate::state::AppState;

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
pub fn register_scheme<R: tauri::Runtime>(app: &AppHandle<R>) {
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
        let result = CallbackResult::from(state.manager().complete_callback(&url).await);
        let raise = raises_window(&result);
        state.changes().push(ChangeEvent::RedirectFinished {
            result: Box::new(result),
        });
        if raise {
            bring_forward(&app);
        }
    });
}

fn bring_forward(app: &AppHandle) {
    if let Some(window) = app.get_webview_window("main") {
        let _ = window.unminimize();
        let _ = window.set_focus();
    }
}

/// Whether a redirect brings the window forward: only one that completed a connection
/// or belonged to a pending authorization (the browser's answer to a flow the user
/// started: declined, provider error). A rejected one (`invalid_callback`: unknown,
/// replayed or expired state, wrong address, not a redirect at all) never does: any
/// local program can fire the URL scheme, and a burst of forged links must not steal
/// the focus. The window still lists what happened, without being raised.
pub fn raises_window(result: &CallbackResult) -> bool {
    match &result.error {
        None => result.ok,
        Some(error) => error.code != ErrorCode::InvalidCallback,
    }
}

/// Whether a second launch (the single-instance callback, which any local program can
/// also call over D-Bus) brings the window forward by itself: only a plain launch
/// (`authdeck`, from the menu). One that carries arguments carries a link, and the link
/// decides once it is completed ([`raises_window`]).
pub fn second_launch_raises_window(argv: &[String]) -> bool {
    argv.len() <= 1
}

/// The single-instance callback: URLs in `argv` reach `on_open_url` through the
/// plugin's deep-link feature; argv may carry an authorization code: never log it.
pub fn on_second_launch(app: &AppHandle, argv: &[String]) {
    if second_launch_raises_window(argv) {
        bring_forward(app);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use authdeck_core::Error;

    fn rejected(error: Error) -> CallbackResult {
        CallbackResult {
            ok: false,
            connection: None,
            error: Some(error),
        }
    }

    #[test]
    fn a_rejected_link_never_raises_the_window() {
        for message in [
            "This redirect does not belong to an authorization started by Authdeck (unknown state): ignored.",
            "This redirect was already used (replayed state): ignored.",
            "Not an Authdeck redirect (scheme \"https\", host \"evil.example\"): ignored.",
        ] {
            assert!(!raises_window(&rejected(Error::invalid_callback(message))));
        }
        let declined = Error::new(ErrorCode::AccessDenied, "The authorization was declined.");
        assert!(
            raises_window(&rejected(declined)),
            "the user's own flow ended"
        );
        let provider = Error::new(ErrorCode::ProviderUnavailable, "FlowAccount is down.");
        assert!(raises_window(&rejected(provider)));
        let completed = CallbackResult {
            ok: true,
            connection: None,
            error: None,
        };
        assert!(raises_window(&completed));
    }

    #[test]
    fn only_a_plain_second_launch_raises_the_window() {
        let argv = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(second_launch_raises_window(&argv(&["/usr/bin/authdeck"])));
        assert!(second_launch_raises_window(&[]));
        assert!(!second_launch_raises_window(&argv(&[
            "/usr/bin/authdeck",
            "com.authdeck.desktop:/oauth/callback?code=x&state=y"
        ])));
        assert!(!second_launch_raises_window(&argv(&[
            "authdeck", "anything"
        ])));
    }
}
