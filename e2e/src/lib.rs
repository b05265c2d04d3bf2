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

/// The default bound of every wait.
pub const WAIT: Duration = Duration::from_secs(20);
/// How often a wait polls.
const POLL: Duration = Duration::from_millis(100);
/// The in-app sandbox: scripts/e2e.sh asks for this port (`AUTHDECK_SANDBOX_PORT`;
/// without it the app takes a free one).
pub const SANDBOX_BASE: &str = "http://127.0.0.1:47801";

/// What scripts/e2e.sh tells the tests.
#[derive(Debug, Clone)]
pub struct E2eEnv {
    /// The `authdeck` binary under test (debug build, UI embedded).
    pub app: PathBuf,
    /// tauri-driver, e.g. `http://127.0.0.1:4444`.
    pub webdriver: String,
    /// `AUTHDECK_DATA_DIR` of the app under test (throwaway).
    pub data_dir: PathBuf,
    /// `AUTHDECK_KEYRING_SERVICE` of the app under test (unique per run).
    pub keyring_service: String,
    /// The file the fake system browser (`$BROWSER`) appends each opened URL to.
    pub browser_log: PathBuf,
    /// Where the README screenshots go (docs/screenshots).
    pub screenshots: PathBuf,
    /// Where failure screenshots and page dumps go.
    pub artifacts: PathBuf,
}

const NOT_UNDER_E2E_SH: &str =
    "the desktop E2E tests drive the real app through tauri-driver under Xvfb, \
     in a private D-Bus session with a throwaway keyring: run them with `scripts/e2e.sh` \
     (or `make e2e`), not with a plain `cargo test`";

impl E2eEnv {
    /// Read the environment scripts/e2e.sh sets; panics with instructions when it is
    /// missing (no silent skip).
    pub fn from_env() -> E2eEnv {
        fn var(name: &str) -> String {
            match std::env::var(name) {
                Ok(v) if !v.is_empty() => v,
                _ => panic!("{NOT_UNDER_E2E_SH} (${name} is not set)"),
            }
        }
        for name in [
            "AUTHDECK_TEST_KEYRING",
            "DISPLAY",
            "DBUS_SESSION_BUS_ADDRESS",
        ] {
            var(name);
        }
        let env = E2eEnv {
            app: PathBuf::from(var("AUTHDECK_E2E_APP")),
            webdriver: var("AUTHDECK_E2E_WEBDRIVER"),
            data_dir: PathBuf::from(var("AUTHDECK_DATA_DIR")),
            keyring_service: var("AUTHDECK_KEYRING_SERVICE"),
            browser_log: PathBuf::from(var("AUTHDECK_E2E_BROWSER_LOG")),
            screenshots: PathBuf::from(var("AUTHDECK_E2E_SCREENSHOTS")),
            artifacts: PathBuf::from(var("AUTHDECK_E2E_ARTIFACTS")),
        };
        assert!(
            env.app.is_file(),
            "the app binary {} does not exist: scripts/e2e.sh builds it",
            env.app.display()
        );
        env
    }
}

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
        "#!/bin/sh\nexec env -u LC_ALL -u LC_MESSAGES -u LANGUAGE LANG='{lang}' '{}' \"$@\"\n",
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

/// The window of the app under test.
#[derive(Clone)]
pub struct Ui {
    pub c: Client,
    pub env: Arc<E2eEnv>,
}

impl Ui {
    /// Start `application` (the app, or a launcher that runs it) in a new session and
    /// wait for its first list; `fresh`: with an empty data directory and keyring first
    /// (else a restart: what the last run left is kept).
    pub async fn launch(env: Arc<E2eEnv>, application: &Path, fresh: bool) -> Result<Ui> {
        wait_for_no_instance(&env).await?;
        if fresh {
            reset_state(&env)?;
        }
        let mut caps = serde_json::Map::new();
        caps.insert(
            "tauri:options".into(),
            json!({ "application": application.display().to_string() }),
        );
        let mut builder =
            ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
        builder.capabilities(caps);
        let c = tokio::time::timeout(Duration::from_secs(30), builder.connect(&env.webdriver))
            .await
            .map_err(|_| anyhow!("no WebDriver session from {} within 30 s (did the app exit at start? see target/e2e-artifacts/tauri-driver.log)", env.webdriver))?
            .with_context(|| format!("opening a WebDriver session at {}", env.webdriver))?;
        let ui = Ui { c, env };
        if let Err(e) = ui.wait_list_ready().await {
            ui.save_failure("launch").await;
            ui.close().await;
            return Err(e);
        }
        Ok(ui)
    }

    /// The first list is on screen: `<html data-list-ready="true">`.
    pub async fn wait_list_ready(&self) -> Result<()> {
        wait_for(
            "the first list (html[data-list-ready=true])",
            WAIT,
            || async {
                let ready = self
                    .js(
                        "return document.documentElement.dataset.listReady === 'true'",
                        vec![],
                    )
                    .await?;
                Ok(ready.as_bool().unwrap_or(false).then_some(()))
            },
        )
        .await
    }

    /// End the session (WebKitWebDriver then closes the app).
    pub async fn close(&self) {
        let _ = tokio::time::timeout(Duration::from_secs(15), self.c.clone().close()).await;
    }

    pub async fn js(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        self.c
            .execute(script, args)
            .await
            .with_context(|| format!("executing `{script}`"))
    }

    /// Wait for the first displayed element matching `css`.
    pub async fn find(&self, css: &str) -> Result<Element> {
        self.find_within(css, WAIT).await
    }

    pub async fn find_within(&self, css: &str, timeout: Duration) -> Result<Element> {
        wait_for(&format!("a visible {css}"), timeout, || async {
            for el in self.c.find_all(Locator::Css(css)).await? {
                if el.is_displayed().await.unwrap_or(false) {
                    return Ok(Some(el));
                }
            }
            Ok(None)
        })
        .await
    }

    /// Wait for a `data-testid` to be visible.
    pub async fn id(&self, id: &str) -> Result<Element> {
        self.find(&testid(id)).await
    }

    /// How many elements match `css` right now (visible or not).
    pub async fn count(&self, css: &str) -> Result<usize> {
        Ok(self.c.find_all(Locator::Css(css)).await?.len())
    }

    pub async fn click(&self, id: &str) -> Result<()> {
        self.id(id)
            .await?
            .click()
            .await
            .with_context(|| format!("clicking {id}"))
    }

    /// Clear a field and type into it.
    pub async fn fill(&self, id: &str, text: &str) -> Result<()> {
        let el = self.id(id).await?;
        el.clear().await.with_context(|| format!("clearing {id}"))?;
        el.send_keys(text)
            .await
            .with_context(|| format!("typing into {id}"))
    }

    /// Pick, in the `<select>` `id`, the option whose label starts with `label_prefix`
    /// (waits for the options to load).
    pub async fn pick(&self, id: &str, label_prefix: &str) -> Result<()> {
        let select = self.id(id).await?;
        let arg = serde_json::to_value(&select)?;
        let value = wait_for(
            &format!("an option starting with {label_prefix:?} in {id}"),
            WAIT,
            || async {
                let v = self
                    .js(
                        "const o = Array.from(arguments[0].options).find(o => o.text.startsWith(arguments[1]));\
                         return o ? o.value : null;",
                        vec![arg.clone(), json!(label_prefix)],
                    )
                    .await?;
                Ok(v.as_str().map(str::to_owned))
            },
        )
        .await?;
        select
            .select_by_value(&value)
            .await
            .with_context(|| format!("selecting {label_prefix:?} in {id}"))
    }

    /// The visible text of an element (empty when hidden).
    pub async fn text(&self, css: &str) -> Result<String> {
        Ok(self.find(css).await?.text().await?)
    }

    /// The `textContent` of the first element matching `css` (waits for it). WebDriver's
    /// element text leaves out parts WebKitWebDriver deems invisible (the row's name cell,
    /// while it flashes), so content checks use this.
    pub async fn content(&self, css: &str) -> Result<String> {
        self.find(css).await?;
        let v = self
            .js(
                "const e = document.querySelector(arguments[0]); return e ? e.textContent : null;",
                vec![json!(css)],
            )
            .await?;
        v.as_str()
            .map(str::to_owned)
            .with_context(|| format!("no {css}"))
    }

    /// Wait until `css` is visible and its text contains `needle`; returns the text.
    pub async fn wait_text(&self, css: &str, needle: &str) -> Result<String> {
        wait_for(&format!("{css} to show {needle:?}"), WAIT, || async {
            for el in self.c.find_all(Locator::Css(css)).await? {
                let t = el.text().await?;
                if t.contains(needle) {
                    return Ok(Some(t));
                }
            }
            Ok(None)
        })
        .await
    }

    /// Wait until nothing matches `css`.
    pub async fn wait_gone(&self, css: &str) -> Result<()> {
        wait_for(&format!("{css} to disappear"), WAIT, || async {
            Ok((self.count(css).await? == 0).then_some(()))
        })
        .await
    }

    /// The whole page's visible text (for failure messages).
    pub async fn page_text(&self) -> String {
        match self
            .js(
                "return document.body ? document.body.innerText : ''",
                vec![],
            )
            .await
        {
            Ok(v) => v.as_str().unwrap_or_default().to_owned(),
            Err(e) => format!("(page text unavailable: {e:#})"),
        }
    }

    /// A PNG of the window, to `docs/screenshots/<name>.png` (overwritten each run).
    pub async fn screenshot(&self, name: &str) -> Result<PathBuf> {
        // Let CSS transitions and the countdown tick settle.
        tokio::time::sleep(Duration::from_millis(400)).await;
        let png = self.window_png().await.context("taking a screenshot")?;
        std::fs::create_dir_all(&self.env.screenshots)?;
        let path = self.env.screenshots.join(format!("{name}.png"));
        std::fs::write(&path, png).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    /// The window as the X server shows it (PNG). Not WebDriver's screenshot command:
    /// WebKitGTK 2.50 never answers it when the page is rendered without compositing,
    /// which is how Authdeck renders (src-tauri/src/lib.rs). The X server holds the
    /// pixels the user sees.
    pub async fn window_png(&self) -> Result<Vec<u8>> {
        let (x, y, w, h) = self
            .c
            .get_window_rect()
            .await
            .context("the window's position")?;
        let rect = [x, y, w, h].map(|v| i32::try_from(v).unwrap_or(i32::MAX));
        tokio::task::spawn_blocking(move || xshot::capture(rect))
            .await
            .context("the screenshot thread")?
    }

    async fn save_failure(&self, name: &str) {
        let _ = std::fs::create_dir_all(&self.env.artifacts);
        if let Ok(png) = self.window_png().await {
            let _ = std::fs::write(self.env.artifacts.join(format!("{name}.png")), png);
        }
        let text = self.page_text().await;
        let _ = std::fs::write(self.env.artifacts.join(format!("{name}.txt")), &text);
        eprintln!("[e2e] {name}: the window showed:\n{text}\n[e2e] ---");
    }

    // ---- app-level steps -----------------------------------------------------------------

    /// "Try the sandbox" in the empty state: the in-app emulator on 127.0.0.1:47801 and
    /// its demo clients. Closes the sandbox dialog again.
    pub async fn start_sandbox(&self) -> Result<()> {
        self.click("sandbox-start").await?;
        let dialog = self.id("sandbox-dialog").await?;
        let text = dialog.text().await?;
        if !text.contains("127.0.0.1:47801") {
            bail!("the sandbox dialog does not name 127.0.0.1:47801: {text:?}");
        }
        self.find(&format!("{} .dialog-close", testid("sandbox-dialog")))
            .await?
            .click()
            .await?;
        self.wait_gone(&testid("sandbox-dialog")).await
    }

    /// Open "Add connection" on a provider's tab.
    pub async fn open_add(&self, tab: &str) -> Result<()> {
        self.click("add-connection").await?;
        self.id("add-connection-dialog").await?;
        self.click(&format!("tab-{tab}")).await
    }

    /// The one row of `provider`; fails if there are several.
    pub async fn row(&self, provider: &str) -> Result<Element> {
        let css = row_of(provider);
        let el = self.find(&css).await?;
        let n = self.count(&css).await?;
        if n != 1 {
            bail!("expected one {provider} row, found {n}");
        }
        Ok(el)
    }

    /// Read a countdown of a row (`access-countdown` / `refresh-countdown`).
    pub async fn countdown(&self, provider: &str, which: &str) -> Result<String> {
        self.text(&format!("{} {}", row_of(provider), testid(which)))
            .await
    }

    /// The instant (seconds since the test's `epoch`) an access token of `provider`'s row
    /// expires, read from its second-precision countdown ("59m 12s"); waits while it
    /// shows a coarser form ("1h 0m") or none.
    pub async fn access_expiry(&self, provider: &str, epoch: Instant) -> Result<f64> {
        wait_for(
            &format!("a second-precision access countdown on the {provider} row"),
            WAIT,
            || async {
                let text = self.countdown(provider, "access-countdown").await?;
                let at = epoch.elapsed().as_secs_f64();
                Ok(parse_seconds_countdown(&text).map(|left| at + left as f64))
            },
        )
        .await
    }

    /// Click a row's button (`row-refresh`, `row-logout`) of `provider`'s row.
    pub async fn row_action(&self, provider: &str, action: &str) -> Result<()> {
        self.find(&format!("{} {}", row_of(provider), testid(action)))
            .await?
            .click()
            .await
            .with_context(|| format!("clicking {action} on the {provider} row"))
    }

    /// Wait for a row action to finish (the button is no longer busy) and check the row
    /// shows no error.
    pub async fn wait_row_idle(&self, provider: &str) -> Result<()> {
        let css = row_of(provider);
        wait_for(
            &format!("the {provider} row to finish its action"),
            WAIT,
            || async {
                let busy = self
                    .count(&format!("{css}.busy, {css} [aria-busy=\"true\"]"))
                    .await?;
                Ok((busy == 0).then_some(()))
            },
        )
        .await?;
        let errors = self
            .js(
                "return Array.from(document.querySelectorAll(arguments[0]))\
                   .filter(e => !e.hidden && e.textContent.trim() !== '')\
                   .map(e => e.textContent)",
                vec![json!(format!("{css} {}", testid("row-error")))],
            )
            .await?;
        match errors.as_array() {
            Some(list) if !list.is_empty() => bail!("the {provider} row shows an error: {errors}"),
            _ => Ok(()),
        }
    }

    /// Logout / Disconnect a row and confirm; waits until the row is gone.
    pub async fn logout(&self, provider: &str) -> Result<()> {
        self.row_action(provider, "row-logout").await?;
        self.click("confirm-ok").await?;
        self.wait_gone(&row_of(provider)).await
    }

    /// Connect the sandbox FlowAccount business FA-100001 the way a user does: start in
    /// the dialog, "the browser" (our $BROWSER script) gets the authorize URL, the user
    /// approves at the emulator, and the OS launches a second `authdeck` with the
    /// redirect, which hands it to this instance and exits.
    /// With `screenshot`, the dialog is photographed once the client is picked.
    pub async fn connect_flowaccount(&self, screenshot: Option<&str>) -> Result<()> {
        self.open_add("flowaccount").await?;
        self.pick("fa-client", "sandbox-flowaccount (").await?;
        if let Some(name) = screenshot {
            self.screenshot(name).await?;
        }
        let opened_before = browser_urls(&self.env).len();
        self.click("fa-start").await?;
        self.id("fa-waiting").await?;
        let authorize_url = wait_for(
            "the app to open the authorize URL in the browser ($BROWSER)",
            WAIT,
            || async { Ok(browser_urls(&self.env).into_iter().nth(opened_before)) },
        )
        .await?;
        if !authorize_url.starts_with(&format!("{SANDBOX_BASE}/flowaccount/connect/authorize?")) {
            bail!("the browser was sent to an unexpected address: {authorize_url}");
        }
        let redirect =
            authdeck_emulator::approve(&authorize_url, "demo@example.com", "demo", "FA-100001")
                .await
                .map_err(|e| anyhow!("approving at the emulator: {e}"))?;
        if !redirect.starts_with("com.authdeck.desktop:/oauth/callback?") {
            bail!("the emulator redirected to an unexpected address: {redirect}");
        }
        let second = launch_second_instance(&self.env, &redirect).await?;
        eprintln!(
            "[e2e] the second instance handed the redirect over and exited in {:.2} s ({})",
            second.took.as_secs_f64(),
            second.status
        );
        if !second.status.success() {
            bail!(
                "the second instance exited with {}: {}",
                second.status,
                second.output
            );
        }
        self.find(&row_of("flowaccount")).await?;
        Ok(())
    }

    pub async fn connect_fedex_csp(&self) -> Result<()> {
        self.open_add("fedex").await?;
        self.pick("fedex-client", "sandbox-fedex (").await?;
        let grant = self.id("fedex-grant").await?;
        grant.select_by_value("csp_credentials").await?;
        self.fill("fedex-child-key", "demo-child-key").await?;
        self.fill("fedex-child-secret", "demo-child-secret").await?;
        let typed = self
            .js(
                "return document.querySelector(arguments[0]).value.length",
                vec![json!(testid("fedex-child-secret"))],
            )
            .await?;
        if typed != json!("demo-child-secret".len()) {
            bail!("the child secret field holds {typed} characters after typing 17");
        }
        self.click("fedex-submit").await?;
        self.wait_gone(&testid("add-connection-dialog")).await?;
        self.find(&row_of("fedex")).await?;
        Ok(())
    }

    pub async fn connect_iot(&self) -> Result<()> {
        self.open_add("iot").await?;
        self.pick("iot-client", "sandbox-iot (").await?;
        self.fill("iot-username", "operator").await?;
        self.fill("iot-password", "operator-pass").await?;
        self.click("iot-submit").await?;
        self.wait_gone(&testid("add-connection-dialog")).await?;
        self.find(&row_of("iot")).await?;
        Ok(())
    }
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

/// The URLs the fake browser was asked to open, in order.
pub fn browser_urls(env: &E2eEnv) -> Vec<String> {
    std::fs::read_to_string(&env.browser_log)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// What a finished second instance did.
pub struct SecondInstance {
    pub status: std::process::ExitStatus,
    pub output: String,
    pub took: Duration,
}

/// Launch the app binary a second time with `url` as its argument, in this (the
/// app's) D-Bus session and environment, as the OS does for a `com.authdeck.desktop:`
/// link; it must hand the URL over and exit by itself within 15 s.
pub async fn launch_second_instance(env: &E2eEnv, url: &str) -> Result<SecondInstance> {
    let started = Instant::now();
    let mut child = tokio::process::Command::new(&env.app)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", env.app.display()))?;
    let pid = child.id();
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let read = async {
        use tokio::io::AsyncReadExt as _;
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let _ = tokio::join!(stdout.read_to_end(&mut out), stderr.read_to_end(&mut err));
        let mut text = String::from_utf8_lossy(&out).into_owned();
        text.push_str(&String::from_utf8_lossy(&err));
        text
    };
    let waited = tokio::time::timeout(Duration::from_secs(15), async {
        let (status, output) = tokio::join!(child.wait(), read);
        (status, output)
    })
    .await;
    match waited {
        Ok((status, output)) => Ok(SecondInstance {
            status: status?,
            output,
            took: started.elapsed(),
        }),
        Err(_) => {
            let _ = child.kill().await;
            bail!(
                "the second instance (pid {pid:?}) launched with the redirect did not exit within 15 s: \
                 single-instance did not take over (is the app on the same D-Bus session?)"
            )
        }
    }
}

/// The keyring items of the app under test: `user` → the lines secret-tool prints about
/// them, secrets left out.
pub fn keyring_keys(env: &E2eEnv) -> Result<Vec<String>> {
    let out = Command::new("secret-tool")
        .args([
            "search",
            "--all",
            "--unlock",
            "service",
            &env.keyring_service,
        ])
        .stdin(Stdio::null())
        .output()
        .context("running secret-tool (package libsecret-tools)")?;
    // secret-tool exits 1 when nothing matches.
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    Ok(text
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            l.strip_prefix("attribute.username = ")
                .or_else(|| l.strip_prefix("attribute.user = "))
                .or_else(|| l.strip_prefix("attribute.account = "))
                .map(str::to_owned)
        })
        .collect())
}

/// GET a JSON document of the in-app emulator's admin API.
pub async fn emulator_admin(path: &str) -> Result<Value> {
    let url = format!("{SANDBOX_BASE}{path}");
    // The sandbox's /admin token, which scripts/e2e.sh gave the app (debug builds honour it).
    let token = std::env::var("AUTHDECK_EMULATOR_ADMIN_TOKEN")
        .context("AUTHDECK_EMULATOR_ADMIN_TOKEN is not set: run the tests with scripts/e2e.sh")?;
    let resp = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?
        .get(&url)
        .bearer_auth(token)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    let status = resp.status();
    if !status.is_success() {
        bail!("GET {url} answered {status}");
    }
    resp.json()
        .await
        .with_context(|| format!("GET {url}: not JSON"))
}

/// Pids of running `authdeck` processes of this run (the binary under test, with our
/// keyring service in their environment).
fn instances(env: &E2eEnv) -> Vec<u32> {
    let want = std::fs::canonicalize(&env.app).unwrap_or_else(|_| env.app.clone());
    let marker = format!("AUTHDECK_KEYRING_SERVICE={}", env.keyring_service);
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let proc = Path::new("/proc").join(pid.to_string());
            let exe = std::fs::read_link(proc.join("exe")).ok();
            exe.as_deref() == Some(want.as_path())
                && std::fs::read(proc.join("environ"))
                    .map(|env| env.split(|b| *b == 0).any(|kv| kv == marker.as_bytes()))
                    .unwrap_or(false)
        })
        .collect()
}

/// The D-Bus name tauri-plugin-single-instance holds for the running app
/// (`<identifier>.SingleInstance`).
pub const SINGLE_INSTANCE_NAME: &str = "com.authdeck.desktop.SingleInstance";

/// Whether some process (a running app) owns [`SINGLE_INSTANCE_NAME`] on our bus.
fn single_instance_name_owned() -> bool {
    Command::new("dbus-send")
        .args([
            "--session",
            "--print-reply",
            "--dest=org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus.NameHasOwner",
            &format!("string:{SINGLE_INSTANCE_NAME}"),
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("boolean true"))
        .unwrap_or(false)
}

fn sandbox_port_open() -> bool {
    std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], 47801)),
        Duration::from_millis(200),
    )
    .is_ok()
}

/// Why the previous app is not gone yet, or `None` when it is.
fn previous_app_still_there(env: &E2eEnv) -> Option<String> {
    let pids = instances(env);
    if !pids.is_empty() {
        return Some(format!("app processes {pids:?} are running"));
    }
    // A process that is exiting loses /proc/PID/exe before it closes its sockets: a new
    // app started then finds the single-instance name still taken, forwards its
    // arguments to the dying one and fails ("NoReply"). So wait for the name and the
    // sandbox port to be released too.
    if single_instance_name_owned() {
        return Some(format!("{SINGLE_INSTANCE_NAME} is still owned on the bus"));
    }
    if sandbox_port_open() {
        return Some("127.0.0.1:47801 (the sandbox) still accepts connections".into());
    }
    None
}

/// The previous test's app must be gone (it holds the single-instance name and the
/// sandbox port). Waits up to 10 s, then ends its processes by pid.
async fn wait_for_no_instance(env: &E2eEnv) -> Result<()> {
    let gone = wait_for(
        "the previous app instance to exit",
        Duration::from_secs(10),
        || async { Ok(previous_app_still_there(env).is_none().then_some(())) },
    )
    .await;
    if gone.is_ok() {
        return Ok(());
    }
    let pids = instances(env);
    eprintln!(
        "[e2e] the previous app instance is still there ({}): ending pids {pids:?}",
        previous_app_still_there(env).unwrap_or_default()
    );
    for pid in &pids {
        let _ = Command::new("kill").arg(pid.to_string()).status();
    }
    wait_for(
        "the previous app instance to end after SIGTERM",
        Duration::from_secs(5),
        || async { Ok(previous_app_still_there(env).is_none().then_some(())) },
    )
    .await
    .map_err(|e| {
        anyhow!(
            "{e:#}: {}",
            previous_app_still_there(env).unwrap_or_default()
        )
    })
}

/// A first start: no database, no secrets, no opened URLs.
fn reset_state(env: &E2eEnv) -> Result<()> {
    if env.data_dir.exists() {
        std::fs::remove_dir_all(&env.data_dir)
            .with_context(|| format!("emptying {}", env.data_dir.display()))?;
    }
    let status = Command::new("secret-tool")
        .args(["clear", "service", &env.keyring_service])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("running secret-tool clear")?;
    let _ = status; // exits 1 when there was nothing to clear
    let left = keyring_keys(env)?;
    if !left.is_empty() {
        bail!(
            "could not empty the keyring service {}: {left:?}",
            env.keyring_service
        );
    }
    let _ = std::fs::remove_file(&env.browser_log);
    Ok(())
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

/// Screenshots from the X server: one thread owns GDK (it may be used from one thread
/// only) and reads rectangles of the root window.
mod xshot {
    use std::sync::mpsc::{channel, Sender};
    use std::sync::OnceLock;
    use std::time::Duration;

    use anyhow::{anyhow, Context as _, Result};
    use gdk::prelude::*;

    type Reply = Sender<Result<Vec<u8>, String>>;
    /// A rectangle of the root window (x, y, width, height) and where to answer.
    type Request = ([i32; 4], Reply);

    static WORKER: OnceLock<Sender<Request>> = OnceLock::new();

    pub fn capture(rect: [i32; 4]) -> Result<Vec<u8>> {
        let worker = WORKER.get_or_init(|| {
            let (tx, rx) = channel::<Request>();
            std::thread::spawn(move || {
                let ready = init();
                for (rect, reply) in rx {
                    let _ = reply.send(match &ready {
                        Ok(()) => grab(rect),
                        Err(e) => Err(e.clone()),
                    });
                }
            });
            tx
        });
        let (reply, answer) = channel();
        worker
            .send((rect, reply))
            .context("the screenshot thread is gone")?;
        answer
            .recv_timeout(Duration::from_secs(15))
            .context("no screenshot within 15 s")?
            .map_err(|e| anyhow!(e))
    }

    /// `gdk::init` would end the process without a display: check instead.
    fn init() -> Result<(), String> {
        // SAFETY: called once, on the thread that uses GDK from then on; null argv is
        // allowed.
        let ok = unsafe { gdk::ffi::gdk_init_check(std::ptr::null_mut(), std::ptr::null_mut()) };
        if ok == 0 {
            return Err("no X display for screenshots (is DISPLAY set?)".into());
        }
        // SAFETY: GDK was initialised on this thread just above.
        unsafe { gdk::set_initialized() };
        Ok(())
    }

    fn grab([x, y, w, h]: [i32; 4]) -> Result<Vec<u8>, String> {
        let root = gdk::Window::default_root_window();
        let pixbuf = root
            .pixbuf(x, y, w, h)
            .ok_or_else(|| format!("could not read {w}x{h}+{x}+{y} from the X server"))?;
        pixbuf
            .save_to_bufferv("png", &[])
            .map_err(|e| format!("encoding the screenshot: {e}"))
    }
}
