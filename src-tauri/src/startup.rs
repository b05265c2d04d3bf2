//! Start-up, in the order that puts the list on screen soonest:
//!
//! 1. While GTK and the plugins start, another thread opens the store and reads the
//!    first [`Snapshot`] ([`preload`]).
//! 2. The main window is built with that snapshot as an initialization script
//!    ([`first_snapshot_script`]): the page renders the list in its first frame, with
//!    no IPC round trip before it. The window then follows the `changes` after the
//!    snapshot's version, so nothing that changed meanwhile is lost.
//! 3. The window is shown once its page has loaded ([`show_main_window`]).
//! 4. The UI calls `mark_ready` right after that first frame ([`mark_ready`]): the
//!    start-up time is recorded, and what could wait starts ([`finish`]): the URL-scheme
//!    registration, notifications and the background scheduler. If the window never
//!    reports (a broken page), they start after [`FINISH_AT_LATEST`] anyway.
//!
//! The time is logged. `AUTHDECK_EXIT_WHEN_READY=1` also prints `ready_ms=<n>` on stdout
//! and quits (the launch benchmark, `make bench`); `AUTHDECK_PRINT_READY=1` prints it and
//! keeps running (the memory and CPU benchmarks).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;
use std::time::Duration;

use authdeck_core::store::paths::Paths;

use crate::commands::Snapshot;
use crate::state::AppState;

/// The label of the app's window (tauri.conf.json, built in `setup`).
pub const MAIN_WINDOW: &str = "main";

/// The global the first snapshot is assigned to before the page's scripts run.
pub const SNAPSHOT_GLOBAL: &str = "__AUTHDECK_SNAPSHOT__";

/// When the deferred start-up work runs if the window has not reported by then.
pub const FINISH_AT_LATEST: Duration = Duration::from_secs(5);

static MARKED: AtomicBool = AtomicBool::new(false);
static FINISHED: Once = Once::new();
static CLIPBOARD: Once = Once::new();
static SHOWN: Once = Once::new();

pub type Preloaded = Result<(AppState, Snapshot), Box<dyn std::error::Error + Send + Sync>>;

/// Open the store and read the first snapshot (runs on its own thread at start).
pub fn preload(single_instance: bool) -> Preloaded {
    let state = AppState::open(Paths::resolve(None)?, single_instance)?;
    let snapshot = tauri::async_runtime::block_on(state.snapshot())?;
    Ok((state, snapshot))
}

/// `window.__AUTHDECK_SNAPSHOT__ = {…}`, run before the page's own scripts.
pub fn first_snapshot_script(snapshot: &Snapshot) -> Result<String, serde_json::Error> {
    // JSON.parse of a string literal parses faster than the same object as JS source;
    // a JSON string is a valid JS string literal (ES2019), so no further escaping.
    let json = serde_json::to_string(snapshot)?;
    Ok(format!(
        "window.{SNAPSHOT_GLOBAL} = JSON.parse({});",
        serde_json::to_string(&json)?
    ))
}

/// Build the main window from tauri.conf.json (`"create": false` there) with the first
/// snapshot in it.
pub fn build_main_window(app: &tauri::App, snapshot: &Snapshot) -> tauri::Result<()> {
    let config = app
        .config()
        .app
        .windows
        .iter()
        .find(|w| w.label == MAIN_WINDOW)
        .cloned()
        .ok_or_else(|| tauri::Error::WindowNotFound)?;
    let script = first_snapshot_script(snapshot)?;
    tauri::WebviewWindowBuilder::from_config(app.handle(), &config)?
        .initialization_script(script)
        // Shown once its page has loaded (see [`show_main_window`]).
        .visible(false)
        .build()?;
    Ok(())
}

/// Show the main window: once its page has loaded, when it reports its first list, or
/// at [`FINISH_AT_LATEST`] — whichever comes first.
///
/// Shown before its page had painted, WebKitGTK (without compositing) would sometimes
/// block the window's first draw waiting for the page's first frame, up to its 500 ms
/// limit: one launch in four took ~0.8 s instead of ~0.35 s (measured, 2026-11-22).
/// Built hidden and shown when the page is there, none did.
pub fn show_main_window<R: tauri::Runtime>(app: &tauri::AppHandle<R>) {
    use tauri::Manager as _;
    SHOWN.call_once(|| match app.get_webview_window(MAIN_WINDOW) {
        Some(window) => {
            if let Err(e) = window.show() {
                tracing::warn!(error = %e, "could not show the window");
            }
        }
        None => tracing::warn!("no main window to show"),
    });
}

/// Milliseconds since this process started (Linux: from its start time in /proc, ±10 ms).
pub fn since_process_start_ms() -> Option<f64> {
    #[cfg(target_os = "linux")]
    {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Field 22 (starttime, clock ticks after boot); fields counted after "(comm)".
        let after = &stat[stat.rfind(')')? + 2..];
        let start_ticks: f64 = after.split_whitespace().nth(19)?.parse().ok()?;
        // SAFETY: sysconf and clock_gettime only write the out-parameter we own.
        let ticks_per_s = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        if ticks_per_s <= 0.0 || unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut now) } != 0
        {
            return None;
        }
        let now_ms = now.tv_sec as f64 * 1000.0 + now.tv_nsec as f64 / 1e6;
        Some(now_ms - start_ticks * 1000.0 / ticks_per_s)
    }
    #[cfg(not(target_os = "linux"))]
    None
}

/// The first list is rendered. Only the first call counts.
pub fn mark_ready<R: tauri::Runtime>(app: &tauri::AppHandle<R>) {
    if MARKED.swap(true, Ordering::SeqCst) {
        return;
    }
    // Normally shown already, when the page finished loading.
    show_main_window(app);
    let ms = since_process_start_ms();
    match ms {
        Some(ms) => tracing::info!(ready_ms = ms.round(), "list on screen"),
        None => tracing::info!("list on screen"),
    }
    let flag = |name: &str| std::env::var_os(name).is_some_and(|v| v == "1");
    let exit = flag("AUTHDECK_EXIT_WHEN_READY");
    if exit || flag("AUTHDECK_PRINT_READY") {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "ready_ms={}", ms.map_or(-1.0, f64::round));
        let _ = out.flush();
    }
    if exit {
        app.exit(0);
        return;
    }
    finish(app);
}

/// Run [`finish`] after [`FINISH_AT_LATEST`] if the window has not asked for it.
pub fn finish_at_latest<R: tauri::Runtime>(app: &tauri::AppHandle<R>) {
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        tokio::time::sleep(FINISH_AT_LATEST).await;
        show_main_window(&app);
        if !FINISHED.is_completed() {
            tracing::warn!("the window did not report its first list: starting the rest");
            finish(&app);
        }
    });
}

/// What waits for the first list: the URL-scheme registration (it runs two helper
/// programs), notifications, and the scheduler's first pass over every connection.
/// Runs once.
pub fn finish<R: tauri::Runtime>(app: &tauri::AppHandle<R>) {
    FINISHED.call_once(|| {
        crate::deep_link::register_scheme(app);
        if let Err(e) = app.plugin(tauri_plugin_notification::init()) {
            tracing::warn!(error = %e, "notifications are not available");
        }
        crate::start_scheduler(app);
        release_startup_memory();
    });
}

/// How long after [`finish`] the memory of start-up is handed back.
const RELEASE_AFTER: Duration = Duration::from_secs(3);

/// Start-up reads every connection more than once (the first snapshot, the scheduler's
/// first pass) on threads whose malloc arenas keep what was freed: about 2 MiB at 1,000
/// connections. Give it back to the system once that burst is over (glibc).
fn release_startup_memory() {
    tauri::async_runtime::spawn(async {
        tokio::time::sleep(RELEASE_AFTER).await;
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: malloc_trim only returns free pages of the allocator's own arenas.
        let _ = tauri::async_runtime::spawn_blocking(|| unsafe { libc::malloc_trim(0) }).await;
    });
}

/// The clipboard plugin opens its own X11 connection and thread: only when first used.
pub fn ensure_clipboard<R: tauri::Runtime>(app: &tauri::AppHandle<R>) {
    CLIPBOARD.call_once(|| {
        if let Err(e) = app.plugin(tauri_plugin_clipboard_manager::init()) {
            tracing::warn!(error = %e, "the clipboard is not available");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_snapshot_script_assigns_parsable_json() {
        let snapshot = Snapshot {
            version: 0,
            app_info: crate::commands::AppInfo {
                version: "1".into(),
                redirect_uri: "x:/cb".into(),
                scheme: "x".into(),
                data_dir: "/d".into(),
                single_instance: true,
                deep_link_problem: Some("quote \" backslash \\ </script> \u{2028}".into()),
                sandbox: None,
                unsaved_tokens: Vec::new(),
                store: crate::commands::StoreInfo {
                    team: None,
                    machine: None,
                    reachable: true,
                    last_known_at: None,
                },
            },
            connections: Vec::new(),
        };
        let script = first_snapshot_script(&snapshot).unwrap();
        let literal = script
            .strip_prefix("window.__AUTHDECK_SNAPSHOT__ = JSON.parse(")
            .and_then(|s| s.strip_suffix(");"))
            .unwrap();
        // The literal is one JSON string whose content is the snapshot's JSON.
        let inner: String = serde_json::from_str(literal).unwrap();
        let value: serde_json::Value = serde_json::from_str(&inner).unwrap();
        assert_eq!(
            value["app_info"]["deep_link_problem"],
            "quote \" backslash \\ </script> \u{2028}"
        );
        assert_eq!(value["connections"], serde_json::json!([]));
    }
}
