//! Authdeck's desktop app end to end: the real binary in a real (Xvfb) window, driven
//! over WebDriver, against the provider emulator the app starts itself ("Try the
//! sandbox"). Run through `scripts/e2e.sh` (`make e2e`), which provides the display,
//! tauri-driver, a private D-Bus session and a throwaway keyring; see e2e/src/lib.rs.
//!
//! The tests run one at a time (`--test-threads 1`: one app, one sandbox port), each
//! on a fresh app with an empty data directory and keyring.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _, Result};
use authdeck_e2e::{
    emulator_admin, keyring_keys, launch_second_instance, row_of, run, testid, wait_for, Ui, WAIT,
};

/// The window loads the bundled UI, the first list arrives, and it is empty.
#[test]
fn smoke_window_shows_the_empty_state() {
    run("smoke", |ui: Ui| async move {
        let href = ui.js("return location.href", vec![]).await?;
        let href = href.as_str().unwrap_or_default();
        ensure!(
            href.starts_with("tauri://localhost"),
            "the window shows {href}, not the bundled UI (tauri://localhost)"
        );
        let empty = ui.id("empty-state").await?;
        let text = empty.text().await?;
        ensure!(
            text.contains("No connections yet"),
            "empty state says {text:?}"
        );
        ui.id("sandbox-start").await?;
        ensure!(
            ui.count(&testid("connection-row")).await? == 0,
            "rows on a fresh start"
        );
        ui.screenshot("empty-state").await?;

        // At start the app registered itself for com.authdeck.desktop: links, in the
        // throwaway XDG_DATA_HOME scripts/e2e.sh gave it (never in the user's).
        let apps = std::path::PathBuf::from(
            std::env::var("XDG_DATA_HOME").context("XDG_DATA_HOME is not set")?,
        )
        .join("applications");
        let handler = wait_for("the URL-scheme handler (.desktop)", WAIT, || async {
            for entry in std::fs::read_dir(&apps)?.flatten() {
                let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                if text.contains("x-scheme-handler/com.authdeck.desktop") {
                    return Ok(Some(entry.path()));
                }
            }
            Ok(None)
        })
        .await?;
        let text = std::fs::read_to_string(&handler)?;
        ensure!(
            text.contains(&ui.env.app.display().to_string()),
            "{} does not start the app under test:\n{text}",
            handler.display()
        );
        Ok(())
    });
}

/// FlowAccount: authorization code in "the system browser", redirect back through the
/// custom-scheme deep link handed over by a second launch of the app, then Refresh and
/// Disconnect (which leaves no secret of the connection in the keyring).
#[test]
fn flowaccount_deep_link_refresh_and_disconnect() {
    run("flowaccount", |ui: Ui| async move {
        ui.start_sandbox().await?;
        let connected = Instant::now();
        ui.connect_flowaccount(Some("add-connection")).await?;
        eprintln!(
            "[e2e] flowaccount: row on screen {:.1} s after Start",
            connected.elapsed().as_secs_f64()
        );
        ui.wait_gone(&testid("add-connection-dialog")).await?;

        let row = ui.row("flowaccount").await?;
        let text = ui.content(&row_of("flowaccount")).await?;
        ensure!(
            text.contains("FA-100001"),
            "the row does not show the supportCode: {text:?}"
        );
        let id = row
            .attr("data-connection-id")
            .await?
            .context("the row has no data-connection-id")?;
        for which in ["access-countdown", "refresh-countdown"] {
            let t = ui.countdown("flowaccount", which).await?;
            ensure!(
                !t.is_empty() && !t.contains("unknown") && !t.contains("expired"),
                "{which} shows {t:?}"
            );
        }
        let mine = |keys: &[String]| {
            keys.iter()
                .filter(|k| k.starts_with(&format!("connection/{id}/")))
                .cloned()
                .collect::<Vec<_>>()
        };
        let stored = mine(&keyring_keys(&ui.env)?);
        ensure!(
            !stored.is_empty(),
            "no keyring entries connection/{id}/… under {} after connecting",
            ui.env.keyring_service
        );

        // Refresh: the access token's expiry moves later.
        let epoch = Instant::now();
        let before = ui.access_expiry("flowaccount", epoch).await?;
        tokio::time::sleep(Duration::from_millis(2500)).await;
        ui.row_action("flowaccount", "row-refresh").await?;
        wait_for(
            "the access expiry to move later after Refresh",
            WAIT,
            || async {
                let after = ui.access_expiry("flowaccount", epoch).await?;
                Ok((after > before + 1.5).then_some(()))
            },
        )
        .await?;
        ui.wait_row_idle("flowaccount").await?;

        // Disconnect: row gone, secrets gone.
        ui.logout("flowaccount").await?;
        ui.id("empty-state").await?;
        let left = mine(&keyring_keys(&ui.env)?);
        ensure!(
            left.is_empty(),
            "the keyring still holds {left:?} after Disconnect"
        );
        Ok(())
    });
}

/// FedEx with csp_credentials (child key + secret): a one-hour token, and Refresh.
#[test]
fn fedex_csp_credentials_connect_and_refresh() {
    run("fedex", |ui: Ui| async move {
        ui.start_sandbox().await?;
        ui.connect_fedex_csp().await?;
        let access = ui.countdown("fedex", "access-countdown").await?;
        ensure!(
            access.starts_with("59m"),
            "a one-hour token should show 59m …, not {access:?}"
        );
        let epoch = Instant::now();
        let before = ui.access_expiry("fedex", epoch).await?;
        tokio::time::sleep(Duration::from_millis(2500)).await;
        ui.row_action("fedex", "row-refresh").await?;
        wait_for(
            "the access expiry to move later after Refresh",
            WAIT,
            || async {
                let after = ui.access_expiry("fedex", epoch).await?;
                Ok((after > before + 1.5).then_some(()))
            },
        )
        .await?;
        ui.wait_row_idle("fedex").await?;
        Ok(())
    });
}

/// The sandbox's rows carry a "Sandbox" badge; the bar says where it runs; stopped, a
/// sandbox row says the sandbox is not running; "Leave the sandbox" removes its rows,
/// clients and keyring entries.
#[test]
fn sandbox_is_marked_stops_and_is_left_in_one_action() {
    run("sandbox", |ui: Ui| async move {
        ui.start_sandbox().await?;
        ui.wait_text(&testid("sandbox-state"), "running at 127.0.0.1:47801")
            .await?;
        ui.connect_fedex_csp().await?;
        let badge = format!("{} {}", row_of("fedex"), testid("sandbox-badge"));
        ensure!(
            ui.find(&badge).await?.is_displayed().await?,
            "the sandbox row shows no Sandbox badge"
        );
        let stored = keyring_keys(&ui.env)?;
        ensure!(
            stored.iter().any(|k| k.starts_with("connection/"))
                && stored.iter().any(|k| k.starts_with("client/")),
            "no client secret or connection tokens in the keyring after connecting: {stored:?}"
        );

        ui.click("sandbox-stop").await?;
        ui.wait_text(&testid("sandbox-state"), "not running")
            .await?;
        ui.row_action("fedex", "row-refresh").await?;
        // The row's error line (its text, whether or not the narrow row shows all of it).
        let error_css = format!("{} {}", row_of("fedex"), testid("row-error"));
        wait_for("the sandbox row to say the sandbox is not running", WAIT, || async {
            let text = ui
                .js(
                    "const e = document.querySelector(arguments[0]); return e ? e.textContent : '';",
                    vec![serde_json::json!(error_css)],
                )
                .await?;
            Ok(text
                .as_str()
                .is_some_and(|t| t.starts_with("The sandbox is not running"))
                .then_some(()))
        })
        .await?;

        ui.click("sandbox-leave").await?;
        ui.click("confirm-ok").await?;
        ui.wait_gone(&row_of("fedex")).await?;
        ui.id("empty-state").await?;
        // Only the store's own id is left (no client secret, token or child secret).
        let left: Vec<String> = keyring_keys(&ui.env)?
            .into_iter()
            .filter(|k| {
                k.starts_with("client/")
                    || k.starts_with("connection/")
                    || k.starts_with("tokenset/")
            })
            .collect();
        ensure!(
            left.is_empty(),
            "the keyring still holds {left:?} after leaving the sandbox"
        );
        Ok(())
    });
}

/// The text of a `<dd>` of the details panel, by its `<dt>`.
async fn detail(ui: &Ui, key: &str) -> Result<String> {
    let v = ui
        .js(
            "const p = document.querySelector('[data-testid=\"details-panel\"]');\
             const dt = p && Array.from(p.querySelectorAll('dt')).find(d => d.textContent === arguments[0]);\
             return dt && dt.nextElementSibling ? dt.nextElementSibling.textContent : null;",
            vec![serde_json::json!(key)],
        )
        .await?;
    v.as_str()
        .map(str::to_owned)
        .with_context(|| format!("no {key:?} in the details panel"))
}

/// Select a row (its name cell) so the details panel shows it.
async fn select_row(ui: &Ui, provider: &str) -> Result<()> {
    ui.find(&format!("{} .cell-name", row_of(provider)))
        .await?
        .click()
        .await?;
    wait_for(
        "the details panel to show the selected connection",
        WAIT,
        || async { Ok(detail(ui, "Provider").await.ok()) },
    )
    .await?;
    Ok(())
}

/// IoT platform: password login, Refresh, Logout → the platform revoked the session.
#[test]
fn iot_login_refresh_and_logout_revokes_the_session() {
    run("iot", |ui: Ui| async move {
        ui.start_sandbox().await?;
        ui.connect_iot().await?;
        ui.row("iot").await?;
        let text = ui.content(&row_of("iot")).await?;
        ensure!(
            text.contains("operator"),
            "the IoT row does not show the username: {text:?}"
        );

        select_row(&ui, "iot").await?;
        // "<countdown> — <local date-time>, from …": the absolute part moves on refresh.
        let absolute = |s: String| s.split_once(" — ").map(|(_, t)| t.to_owned()).unwrap_or(s);
        let expiry_before = absolute(detail(&ui, "Access token expires").await?);
        let refreshed_before = detail(&ui, "Last refresh").await?;
        tokio::time::sleep(Duration::from_millis(1100)).await; // a new second on the clock
        ui.row_action("iot", "row-refresh").await?;
        wait_for("the details panel to show the refresh", WAIT, || async {
            let expiry = absolute(detail(&ui, "Access token expires").await?);
            let refreshed = detail(&ui, "Last refresh").await?;
            Ok(
                (expiry != expiry_before && refreshed != refreshed_before && refreshed != "—")
                    .then_some(()),
            )
        })
        .await?;
        ui.wait_row_idle("iot").await?;

        let sessions = emulator_admin("/admin/iot/sessions").await?;
        let live = sessions.as_array().map(Vec::len).unwrap_or(0);
        ensure!(
            live > 0,
            "the emulator knows no IoT session after login: {sessions}"
        );

        ui.logout("iot").await?;
        ui.wait_text(&testid("toast"), "revoked").await?;
        let sessions = emulator_admin("/admin/iot/sessions").await?;
        let all = sessions.as_array().context("sessions is not a list")?;
        ensure!(
            !all.is_empty() && all.iter().all(|s| s["revoked"] == true),
            "every IoT session should be revoked after Logout: {sessions}"
        );
        ensure!(
            ui.count(&row_of("iot")).await? == 0,
            "the IoT row is still there"
        );
        Ok(())
    });
}

/// A forged redirect (no pending authorization has its state) handed over by the OS:
/// the window says so, and nothing is connected.
#[test]
fn forged_callback_is_rejected() {
    run("forged-callback", |ui: Ui| async move {
        let second = launch_second_instance(
            &ui.env,
            "com.authdeck.desktop:/oauth/callback?code=forged&state=forged-state",
        )
        .await?;
        ensure!(
            second.status.success(),
            "the second instance exited with {}: {}",
            second.status,
            second.output
        );
        eprintln!(
            "[e2e] forged-callback: second instance exited after {:.2} s",
            second.took.as_secs_f64()
        );
        let shown = wait_for(
            "an error in the window (error-banner or toast)",
            WAIT,
            || async {
                for id in ["error-banner", "toast"] {
                    for el in ui.c.find_all(fantoccini::Locator::Css(&testid(id))).await? {
                        let t = el.text().await?;
                        if t.to_lowercase().contains("redirect") {
                            return Ok(Some(t));
                        }
                    }
                }
                Ok(None)
            },
        )
        .await?;
        eprintln!("[e2e] forged-callback: the window says {shown:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
        if ui.count(&testid("connection-row")).await? != 0 {
            bail!("a forged redirect added a connection");
        }
        ui.id("empty-state").await?;
        ui.screenshot("forged-callback").await?;
        Ok(())
    });
}

/// One connection of each provider in the list, and the IoT connection's details: the
/// README's screenshots.
#[test]
fn overview_one_connection_of_each_provider() {
    run("overview", |ui: Ui| async move {
        ui.start_sandbox().await?;
        ui.connect_flowaccount(None).await?;
        ui.wait_gone(&testid("add-connection-dialog")).await?;
        ui.connect_fedex_csp().await?;
        ui.connect_iot().await?;
        for p in ["flowaccount", "fedex", "iot"] {
            ui.row(p).await?;
        }
        ensure!(
            ui.count(&testid("connection-row")).await? == 3,
            "expected 3 rows"
        );
        // A refresh, so the IoT history shows more than the login.
        ui.row_action("iot", "row-refresh").await?;
        ui.wait_row_idle("iot").await?;
        // The list with the FlowAccount business selected; the "Connected …" toasts fade
        // after 5 s.
        select_row(&ui, "flowaccount").await?;
        ui.wait_gone(&testid("toast")).await?;
        ui.screenshot("connections").await?;
        // The IoT connection's details, scrolled to its decoded JWT and history.
        select_row(&ui, "iot").await?;
        wait_for("the IoT history in the details panel", WAIT, || async {
            let t = ui.content(&testid("details-panel")).await?;
            Ok(
                (t.contains("History") && !t.contains("Loading…") && t.contains("refresh"))
                    .then_some(()),
            )
        })
        .await?;
        ui.js(
            "const p = document.querySelector('[data-testid=\"details-panel\"]');\
             const d = p.querySelector('[data-testid=\"technical-details\"]'); if (d) d.open = true;\
             const h = Array.from(p.querySelectorAll('h3')).find(e => e.textContent === 'JWT claims');\
             if (h) h.scrollIntoView({block: 'start'});",
            vec![],
        )
        .await?;
        ui.screenshot("iot-details").await?;
        Ok(())
    });
}
