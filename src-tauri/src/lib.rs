//! Authdeck's desktop shell. It wires windows, deep links, single-instance, the system
//! browser, notifications and the clipboard to `authdeck-core`; the logic lives there.

pub mod changes;
pub mod clients;
pub mod clipboard;
pub mod commands;
pub mod connect;
pub mod connections;
pub mod deep_link;
pub mod devices;
pub mod export;
pub mod logging;
pub mod quit;
pub mod startup;
pub mod state;
pub mod summary;
pub mod team;
pub mod team_list;

use tauri::Manager as _;

use crate::state::AppState;

/// Build the app with every plugin and command; `run()` adds the real context.
pub fn builder(single_instance: bool) -> tauri::Builder<tauri::Wry> {
    let mut builder = tauri::Builder::default();
    if single_instance {
        // Registered first, so a second launch is caught before anything else starts.
        builder = builder.plugin(tauri_plugin_single_instance::init(|app, argv, _cwd| {
            deep_link::on_second_launch(app, &argv);
        }));
    }
    builder
        .plugin(tauri_plugin_deep_link::init())
        // The window has no links to open: no click hook in the page.
        .plugin(
            tauri_plugin_opener::Builder::new()
                .open_js_links_on_click(false)
                .build(),
        )
        // The window's size and position, restored when it is built and saved at exit;
        // never its visibility (it is shown once its page has loaded: startup.rs).
        .plugin(
            tauri_plugin_window_state::Builder::new()
                .with_state_flags(
                    tauri_plugin_window_state::StateFlags::all()
                        - tauri_plugin_window_state::StateFlags::VISIBLE,
                )
                .build(),
        )
        // The export's save dialog (opened from Rust: the web view never names a path).
        .plugin(tauri_plugin_dialog::init())
        // Notifications and the clipboard are registered later (startup::finish,
        // startup::ensure_clipboard): nothing needs them before the list is on screen.
        .invoke_handler(commands::handler())
}

/// Keep tokens fresh in the background; tell the user about what needs them.
pub(crate) fn start_scheduler<R: tauri::Runtime>(app: &tauri::AppHandle<R>) {
    use authdeck_core::scheduler::{Notice, Scheduler, SchedulerConfig};
    use tauri_plugin_notification::NotificationExt;

    let manager = app.state::<AppState>().manager().clone();
    let app = app.clone();
    let scheduler = Scheduler::new(manager, SchedulerConfig::default());
    tauri::async_runtime::spawn(scheduler.run(move |notice| {
        let (title, body) = match &notice {
            Notice::RefreshFailed { connection, error } => (
                format!("{} needs attention", connection.label),
                error.message.clone(),
            ),
            Notice::Lapsing { connection, at } => (
                format!("{} lapses soon", connection.label),
                format!(
                    "It cannot be refreshed and lapses at {} UTC: reconnect it before then.",
                    at.format("%H:%M")
                ),
            ),
        };
        if let Err(e) = app.notification().builder().title(title).body(body).show() {
            tracing::warn!(error = %e, "could not show a notification");
        }
    }));
}

/// The app's configuration, assets and capabilities, compiled in from tauri.conf.json.
pub fn context<R: tauri::Runtime>() -> tauri::Context<R> {
    tauri::generate_context!("../tauri.conf.json")
}

/// WebKitGTK composites pages with OpenGL by default. For a window of text in which a
/// few countdowns change once a second that costs more than it gives: measured with
/// 1,000 connections (Xvfb, Mesa), the web process used 4.1 % of a core and 207 MiB
/// with it, 0.8 % and 112 MiB without. So Authdeck renders without it, unless the user
/// sets `AUTHDECK_GPU_COMPOSITING=1` or WebKit's own `WEBKIT_DISABLE_COMPOSITING_MODE`.
/// WebKit reads the variable when the web view starts and passes it on to its processes:
/// call this before any thread is started.
fn prefer_composited_rendering_off() {
    #[cfg(target_os = "linux")]
    if turn_compositing_off(
        std::env::var_os("AUTHDECK_GPU_COMPOSITING").as_deref(),
        std::env::var_os("WEBKIT_DISABLE_COMPOSITING_MODE").as_deref(),
    ) {
        std::env::set_var("WEBKIT_DISABLE_COMPOSITING_MODE", "1");
    }
}

/// Whether to set `WEBKIT_DISABLE_COMPOSITING_MODE`, given `AUTHDECK_GPU_COMPOSITING`
/// and the user's own `WEBKIT_DISABLE_COMPOSITING_MODE`: never over the user's choice.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn turn_compositing_off(
    gpu: Option<&std::ffi::OsStr>,
    webkit_setting: Option<&std::ffi::OsStr>,
) -> bool {
    gpu.is_none_or(|v| v != "1") && webkit_setting.is_none()
}

pub fn run() {
    prefer_composited_rendering_off();
    let single_instance = deep_link::single_instance_available()
        && std::env::var_os("AUTHDECK_SINGLE_INSTANCE_OFF").is_none();
    // The store opens and the first list is read while GTK and the plugins start.
    let preload = std::thread::spawn(move || startup::preload(single_instance));
    let result = builder(single_instance)
        .on_page_load(|webview, payload| {
            if webview.label() == startup::MAIN_WINDOW
                && matches!(payload.event(), tauri::webview::PageLoadEvent::Finished)
            {
                startup::show_main_window(webview.app_handle());
            }
        })
        .setup(move |app| {
            let log_dir = app.path().app_log_dir()?;
            match logging::init(&log_dir) {
                Ok(guard) => {
                    app.manage(guard);
                }
                Err(e) => eprintln!("authdeck: logging disabled: {e}"),
            }
            if !single_instance {
                tracing::warn!(
                    "no D-Bus session bus: redirects from the browser cannot reach this window"
                );
            }
            let (state, snapshot) = preload
                .join()
                .map_err(|_| "opening the store panicked")?
                .map_err(|e| e as Box<dyn std::error::Error>)?;
            app.manage(state);
            // Debug builds only: the E2E tests save exports into this directory instead
            // of asking through the save dialog (which WebDriver cannot drive).
            #[cfg(debug_assertions)]
            if let Some(dir) = std::env::var_os("AUTHDECK_E2E_EXPORT_DIR") {
                let dir = std::path::PathBuf::from(dir);
                app.manage(commands::SavePathPicker(Box::new(move |name| {
                    Some(dir.join(name))
                })));
            }
            changes::forward(app.handle());
            changes::forward_store(app.handle());
            startup::build_main_window(app, &snapshot)?;
            deep_link::install(app);
            quit::exit_on_signals(app.handle());
            quit::save_refused_answers(app.handle());
            startup::finish_at_latest(app.handle());
            tracing::info!(version = env!("CARGO_PKG_VERSION"), "Authdeck started");
            Ok(())
        })
        .build(context());
    match result {
        Ok(app) => app.run(|app, event| quit::on_event(app, &event)),
        Err(e) => {
            eprintln!("authdeck: {e}");
            std::process::exit(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use super::turn_compositing_off;

    #[test]
    fn compositing_is_off_unless_the_user_chose() {
        assert!(turn_compositing_off(None, None));
        assert!(turn_compositing_off(Some(OsStr::new("0")), None));
        assert!(!turn_compositing_off(Some(OsStr::new("1")), None));
        // The user's own WebKit setting, either way, is left as it is.
        assert!(!turn_compositing_off(None, Some(OsStr::new("0"))));
        assert!(!turn_compositing_off(None, Some(OsStr::new("1"))));
    }
}
