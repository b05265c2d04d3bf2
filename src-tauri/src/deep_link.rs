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

/// Can a second launch reach this process (the single-instance plugin)? Without that,
/// a redirect the OS hands to a new `authdeck` starts a second app instead: detect it
/// and say so ([`os`]).
pub fn single_instance_available() -> bool {
    os::single_instance_available()
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

/// Register as the handler of `com.authdeck.desktop:` links where the OS lets a program
/// do so at run time and no package did it already ([`os`]). It runs helper programs
/// on Linux (`update-desktop-database`, `xdg-mime`), so it waits until the list is on
/// screen (`startup::finish`) and runs off the main thread; a failure is shown in the
/// window. `AUTHDECK_NO_SCHEME_REGISTRATION` turns it off (the tests, a managed desktop).
pub fn register_scheme<R: tauri::Runtime>(app: &AppHandle<R>) {
    if !os::registers_at_runtime() || std::env::var_os("AUTHDECK_NO_SCHEME_REGISTRATION").is_some()
    {
        return;
    }
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

/// What differs by OS: whether a second launch can reach this process, and how the OS
/// learns that Authdeck handles its URL scheme (docs/PLATFORMS.md).
#[cfg(target_os = "linux")]
mod os {
    /// The plugin forwards a second launch over the D-Bus session bus: is there one?
    pub fn single_instance_available() -> bool {
        if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some_and(|v| !v.is_empty()) {
            return true;
        }
        // systemd user sessions provide the bus at a well-known path without the variable.
        std::env::var_os("XDG_RUNTIME_DIR")
            .is_some_and(|dir| std::path::Path::new(&dir).join("bus").exists())
    }

    /// The deep-link plugin writes a `…-handler.desktop` file with the scheme's MIME
    /// type and makes it the default (`xdg-mime`). But the .deb's desktop entry already
    /// declares the scheme with an `Exec=` Debian's xdg-open can run, and the plugin's
    /// would replace it with a quoted one it cannot. So only unpackaged builds
    /// (development, a copied binary) register.
    pub fn registers_at_runtime() -> bool {
        let installed_by_package = !cfg!(debug_assertions)
            && std::env::current_exe().is_ok_and(|exe| exe.starts_with("/usr/"));
        !installed_by_package
    }
}

/// What differs by OS: whether a second launch can reach this process, and how the OS
/// learns that Authdeck handles its URL scheme (docs/PLATFORMS.md).
#[cfg(windows)]
mod os {
    /// The plugin uses a named mutex and a window message: nothing to detect.
    pub fn single_instance_available() -> bool {
        true
    }

    /// The deep-link plugin writes `HKCU\Software\Classes\com.authdeck.desktop` (the
    /// current user's, no administrator rights) with this executable as its command.
    /// An installer (the Tauri bundler's NSIS/MSI `deep-link` config) may register the
    /// scheme too; registering again names the same program and keeps a moved or
    /// portable copy reachable, so every start registers. Untested: no Windows here.
    pub fn registers_at_runtime() -> bool {
        true
    }
}

/// What differs by OS: whether a second launch can reach this process, and how the OS
/// learns that Authdeck handles its URL scheme (docs/PLATFORMS.md).
#[cfg(not(any(target_os = "linux", windows)))]
mod os {
    /// macOS: the plugin needs nothing the session lacks (untested).
    pub fn single_instance_available() -> bool {
        true
    }

    /// macOS: the scheme is declared in the app bundle's `Info.plist` (the Tauri
    /// bundler writes it from tauri.conf.json); a program cannot register at run time
    /// (the plugin answers `UnsupportedPlatform`).
    pub fn registers_at_runtime() -> bool {
        false
    }
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
