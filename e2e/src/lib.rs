//! The harness of Authdeck's desktop end-to-end tests.
//!
//! The app under test is the real `authdeck` binary, started by `tauri-driver` (which
//! drives WebKitWebDriver) in a WebDriver session; the providers are the emulator the
//! app itself starts ("Try the sandbox", 127.0.0.1:47801). `scripts/e2e.sh` sets the
//! stage: one private D-Bus session with an unlocked throwaway gnome-keyring, Xvfb,
//! throwaway XDG dirs, tauri-driver, and the environment read by [`E2eEnv::from_env`].
//! Run outside of it, every test fails at once and says so.
//!
//! Every test gets a fresh app: [`run`] waits until the previous instance is gone,
//! empties the data directory and the keyring service, opens a session (which starts
//! the app), waits for the first list, runs the body, saves a screenshot and the page
//! text on failure, and ends the session whatever happened. Every wait is bounded.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _, Result};
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use futures_util::FutureExt as _;
use serde_json::{json, Value};

pub mod a11y;
mod app;
mod env;
mod ui;
mod xshot;

pub use app::*;
pub use env::*;
pub use ui::*;

/// The default bound of every wait.
pub const WAIT: Duration = Duration::from_secs(20);
/// How often a wait polls.
const POLL: Duration = Duration::from_millis(100);
/// The in-app sandbox: scripts/e2e.sh asks for this port (`AUTHDECK_SANDBOX_PORT`;
/// without it the app takes a free one).
pub const SANDBOX_BASE: &str = "http://127.0.0.1:47801";

/// Run one E2E test: a fresh app in its own WebDriver session, `body`, and clean-up.
/// Prints the test's duration; on failure saves `<artifacts>/<name>.png` and `.txt`.
pub fn run<F, Fut>(name: &str, body: F)
where
    F: FnOnce(Ui) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    run_with(name, None, body)
}

/// [`run`] with the app started under the locale `lang` (`LANG=th_TH.UTF-8`, and no
/// `LC_ALL` / `LANGUAGE` over it): through a wrapper script that sets it and runs the
/// app under test (see [`locale_launcher`]).
pub fn run_in_locale<F, Fut>(name: &str, lang: &str, body: F)
where
    F: FnOnce(Ui) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let env = E2eEnv::from_env();
    let launcher = locale_launcher(&env, lang)
        .unwrap_or_else(|e| panic!("{name}: writing the {lang} launcher: {e:#}"));
    run_with(name, Some(launcher), body)
}

/// A script next to the app under test that starts it under the locale `lang`.
pub fn locale_launcher(env: &E2eEnv, lang: &str) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = env.app.parent().context("the app has no directory")?;
    let name: String = lang.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    let path = dir.join(format!("authdeck-{name}"));
    let script = format!(
        "#!/bin/sh\nexec env -u LC_ALL -u LC_MESSAGES -u LANGUAGE LANG='{lang}' GTK_IM_MODULE=gtk-im-context-simple '{}' \"$@\"\n",
        env.app.display()
    );
    std::fs::write(&path, script).with_context(|| format!("writing {}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    Ok(path)
}

fn run_with<F, Fut>(name: &str, launcher: Option<PathBuf>, body: F)
where
    F: FnOnce(Ui) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let env = Arc::new(E2eEnv::from_env());
    let started = Instant::now();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let outcome = rt.block_on(async {
        let application = launcher.unwrap_or_else(|| env.app.clone());
        let ui = match Ui::launch(env.clone(), &application, true).await {
            Ok(ui) => ui,
            Err(e) => return Ok(Err(e.context("the app under test did not start"))),
        };
        let result = AssertUnwindSafe(body(ui.clone())).catch_unwind().await;
        if !matches!(result, Ok(Ok(()))) {
            ui.save_failure(name).await;
        }
        ui.close().await;
        result
    });
    let verdict = if matches!(outcome, Ok(Ok(()))) {
        "ok"
    } else {
        "FAILED"
    };
    let line = format!(
        "{name}: {verdict} in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    eprintln!("[e2e] {line}");
    // scripts/e2e.sh prints these lines as the run's summary.
    let _ = std::fs::create_dir_all(&env.artifacts);
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(env.artifacts.join("durations.txt"))
    {
        use std::io::Write as _;
        let _ = writeln!(f, "{line}");
    }
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!(
            "{name} failed: {e:#}\n(screenshot and page text in {})",
            env.artifacts.display()
        ),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Poll `probe` every 100 ms until it yields `Some`, for at most `timeout`. Errors of
/// the probe count as "not yet" (elements go stale while the UI re-renders); the last
/// one is part of the failure message.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    let mut last_error = None;
    loop {
        match probe().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(e) => last_error = Some(e),
        }
        if Instant::now() >= deadline {
            return Err(match last_error {
                Some(e) => {
                    anyhow!("timed out after {timeout:?} waiting for {what} (last error: {e:#})")
                }
                None => anyhow!("timed out after {timeout:?} waiting for {what}"),
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The CSS selector of a `data-testid`.
pub fn testid(id: &str) -> String {
    format!(r#"[data-testid="{id}"]"#)
}

/// A connection row of one provider.
pub fn row_of(provider: &str) -> String {
    format!(r#"[data-testid="connection-row"][data-provider="{provider}"]"#)
}

/// "59m 12s" → 3552, "42s" → 42; `None` for coarser or other texts ("1h 0m", "unknown").
pub fn parse_seconds_countdown(text: &str) -> Option<u64> {
    let text = text.trim();
    let mut parts = text.split_whitespace();
    let (a, b) = (parts.next()?, parts.next());
    if parts.next().is_some() {
        return None;
    }
    match b {
        None => a.strip_suffix('s')?.parse().ok(),
        Some(b) => {
            let m: u64 = a.strip_suffix('m')?.parse().ok()?;
            let s: u64 = b.strip_suffix('s')?.parse().ok()?;
            Some(m * 60 + s)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_seconds_countdown as p;

    #[test]
    fn countdowns() {
        assert_eq!(p("59m 12s"), Some(3552));
        assert_eq!(p("42s"), Some(42));
        assert_eq!(p("1h 0m"), None);
        assert_eq!(p("23h 59m"), None);
        assert_eq!(p("unknown"), None);
    }
}
