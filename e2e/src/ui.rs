//! [`Ui`]: the window of the app under test, driven through its WebDriver session.

use super::*;

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
        Ui::connect(env, application).await
    }

    /// A WebDriver session (which starts `application`) and its first list.
    async fn connect(env: Arc<E2eEnv>, application: &Path) -> Result<Ui> {
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

    /// Stop the app the way a desktop session does (SIGTERM: it exits cleanly, saving
    /// its window state), then start it again on the same data, keyring and settings:
    /// the new window. This session is over; close the returned one.
    pub async fn restart(&self) -> Result<Ui> {
        let pids = instances(&self.env);
        if pids.is_empty() {
            bail!("no running app to restart");
        }
        for pid in &pids {
            let status = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .context("running kill")?;
            if !status.success() {
                bail!("kill -TERM {pid} failed: {status}");
            }
        }
        wait_for_no_instance(&self.env).await?;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.c.clone().close()).await;
        let app = self.env.app.clone();
        Ui::connect(self.env.clone(), &app).await
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

    pub(crate) async fn save_failure(&self, name: &str) {
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
