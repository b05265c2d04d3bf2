//! The window for the people who use it every day: axe-core on every view in both
//! languages, a keyboard-only walk-through, the activity view, the export, and the
//! window's size (minimum and remembered). Run through `scripts/e2e.sh` like desktop.rs.

use std::time::Duration;

use anyhow::{bail, ensure, Context as _, Result};
use authdeck_e2e::a11y::{ARROW_RIGHT, ENTER, ESCAPE, SPACE};
use authdeck_e2e::{launch_second_instance, row_of, run, testid, wait_for, Ui, WAIT};
use serde_json::json;

/// Switch the window's language (the Settings choice the i18n catalog keeps in
/// localStorage) and reload it; waits for the list.
async fn set_language(ui: &Ui, lang: &str) -> Result<()> {
    ui.js(
        "localStorage.setItem('authdeck.language', arguments[0]); location.reload();",
        vec![json!(lang)],
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    wait_for(&format!("the window in {lang}"), WAIT, || async {
        let v = ui
            .js(
                "return document.documentElement.lang === arguments[0] && document.documentElement.dataset.listReady === 'true'",
                vec![json!(lang)],
            )
            .await?;
        Ok((v == json!(true)).then_some(()))
    })
    .await
}

async fn close_dialog(ui: &Ui, id: &str) -> Result<()> {
    ui.press(&[ESCAPE]).await?;
    ui.wait_gone(&testid(id)).await
}

/// Select a row (its name cell) so the details panel shows it.
async fn select_row(ui: &Ui, provider: &str) -> Result<()> {
    ui.find(&format!("{} .cell-name", row_of(provider)))
        .await?
        .click()
        .await?;
    wait_for("the details panel to show the connection", WAIT, || async {
        let t = ui.content(&testid("details-panel")).await?;
        Ok((t.contains("FedEx") || t.contains("IoT") || t.contains("FlowAccount")).then_some(()))
    })
    .await
}

/// axe-core on every view — empty window, sandbox dialog, the list with the sandbox
/// bar, details, the add-connection dialog of each provider, activity, Clients &
/// settings — in English and in Thai: no serious or critical violation.
#[test]
fn accessibility_every_view_in_both_languages() {
    run("a11y", |ui: Ui| async move {
        let mut total = 0;
        for lang in ["en", "th"] {
            set_language(&ui, lang).await?;
            ui.id("empty-state").await?;
            total += ui
                .axe(&format!("empty window ({lang})"))
                .await?
                .violations
                .len();
        }
        set_language(&ui, "en").await?;
        ui.click("sandbox-start").await?;
        ui.id("sandbox-dialog").await?;
        total += ui.axe("sandbox dialog (en)").await?.violations.len();
        close_dialog(&ui, "sandbox-dialog").await?;
        ui.connect_flowaccount(None).await?;
        ui.wait_gone(&testid("add-connection-dialog")).await?;
        ui.connect_fedex_csp().await?;
        ui.connect_iot().await?;
        for lang in ["en", "th"] {
            set_language(&ui, lang).await?;
            for p in ["flowaccount", "fedex", "iot"] {
                ui.row(p).await?;
            }
            ui.id("sandbox-state").await?;
            total += ui
                .axe(&format!("list and sandbox bar ({lang})"))
                .await?
                .violations
                .len();
            for p in ["fedex", "iot", "flowaccount"] {
                select_row(&ui, p).await?;
                total += ui
                    .axe(&format!("{p} details ({lang})"))
                    .await?
                    .violations
                    .len();
            }
            for tab in ["flowaccount", "fedex", "iot"] {
                ui.open_add(tab).await?;
                total += ui
                    .axe(&format!("add connection: {tab} ({lang})"))
                    .await?
                    .violations
                    .len();
                close_dialog(&ui, "add-connection-dialog").await?;
            }
            ui.click("nav-activity").await?;
            ui.find(&testid("activity-entry")).await?;
            total += ui
                .axe(&format!("activity ({lang})"))
                .await?
                .violations
                .len();
            ui.click("nav-clients").await?;
            tokio::time::sleep(Duration::from_millis(500)).await;
            total += ui
                .axe(&format!("clients & settings ({lang})"))
                .await?
                .violations
                .len();
            ui.click("nav-connections").await?;
        }
        eprintln!("[e2e] a11y: {total} minor or moderate violations in all (see axe.txt)");
        Ok(())
    });
}

/// Connect through the sandbox, refresh, open the details, log out: key presses only
/// (Tab, Shift+Tab, Enter, Space, Escape, and the tab list's arrow key), with a visible
/// focus at every stop.
#[test]
fn keyboard_only_connect_refresh_details_logout() {
    run("keyboard", |ui: Ui| async move {
        let mut stops = Vec::new();
        // Start the sandbox; its dialog closes with Escape.
        stops.extend(ui.tab_to(&testid("sandbox-start"), 30, false).await?);
        ui.press(&[ENTER]).await?;
        ui.id("sandbox-dialog").await?;
        close_dialog(&ui, "sandbox-dialog").await?;
        // Add connection → the FedEx tab (arrow key) → Connect (client credentials).
        stops.extend(ui.tab_to(&testid("add-connection"), 40, false).await?);
        ui.press(&[ENTER]).await?;
        ui.id("add-connection-dialog").await?;
        stops.extend(ui.tab_to(&testid("tab-flowaccount"), 20, false).await?);
        ui.press(&[ARROW_RIGHT]).await?;
        ui.expect_focus(&testid("tab-fedex")).await?;
        ui.id("fedex-submit").await?;
        stops.extend(ui.tab_to(&testid("fedex-submit"), 20, false).await?);
        ui.press(&[ENTER]).await?;
        ui.wait_gone(&testid("add-connection-dialog")).await?;
        ui.row("fedex").await?;
        // Refresh from the row's button.
        let refresh = format!("{} {}", row_of("fedex"), testid("row-refresh"));
        stops.extend(ui.tab_to(&refresh, 40, false).await?);
        ui.press(&[ENTER]).await?;
        ui.wait_row_idle("fedex").await?;
        ui.expect_focus(&refresh).await?;
        // The details: the row itself, Enter selects it; Space flips keep fresh.
        stops.extend(ui.tab_to(&row_of("fedex"), 10, true).await?);
        ui.press(&[ENTER]).await?;
        ui.find(&testid("keep-fresh")).await?;
        stops.extend(ui.tab_to(&testid("keep-fresh"), 40, false).await?);
        ui.press(&[SPACE]).await?;
        wait_for("keep fresh to be on", WAIT, || async {
            let on = ui
                .js("const b = document.querySelector(arguments[0]); return !!b && b.checked && !b.disabled", vec![json!(testid("keep-fresh"))])
                .await?;
            Ok((on == json!(true)).then_some(()))
        })
        .await?;
        let refreshed = ui.content(&testid("details-panel")).await?;
        ensure!(
            !refreshed.contains("Last refresh—"),
            "the details show no refresh: {refreshed:?}"
        );
        // Disconnect from the row, confirm with the keyboard.
        let logout = format!("{} {}", row_of("fedex"), testid("row-logout"));
        stops.extend(ui.tab_to(&logout, 60, true).await?);
        ui.press(&[ENTER]).await?;
        ui.id("confirm-ok").await?;
        stops.extend(ui.tab_to(&testid("confirm-ok"), 10, false).await?);
        ui.press(&[ENTER]).await?;
        ui.wait_gone(&row_of("fedex")).await?;
        ui.id("empty-state").await?;
        eprintln!(
            "[e2e] keyboard: {} stops, each with a visible focus: {stops:#?}",
            stops.len()
        );
        Ok(())
    });
}

/// A forged redirect and a logged-out connection both show in the activity view (by
/// name, marked removed), filterable; Export CSV writes the list without a secret.
#[test]
fn activity_view_and_export() {
    run("activity", |ui: Ui| async move {
        ui.start_sandbox().await?;
        ui.connect_fedex_csp().await?;
        ui.connect_iot().await?;
        let forged = launch_second_instance(
            &ui.env,
            "com.authdeck.desktop:/oauth/callback?code=forged&state=forged-state",
        )
        .await?;
        ensure!(
            forged.status.success(),
            "second instance: {}",
            forged.output
        );
        ui.id("error-banner").await.ok();

        // Export before the IoT logout: both rows.
        let dir = std::path::PathBuf::from(
            std::env::var("AUTHDECK_E2E_EXPORT_DIR")
                .context("AUTHDECK_E2E_EXPORT_DIR is not set")?,
        );
        let csv_path = dir.join("authdeck-connections.csv");
        let _ = std::fs::remove_file(&csv_path);
        ui.click("export-csv").await?;
        let csv = wait_for("the exported CSV", WAIT, || async {
            Ok(std::fs::read_to_string(&csv_path)
                .ok()
                .filter(|t| !t.is_empty()))
        })
        .await?;
        ensure!(
            csv.starts_with("name,company,provider,status,access_token_expires_at,refresh_token_expires_at,last_refresh_at,last_error\n"),
            "{csv}"
        );
        ensure!(csv.lines().count() == 3, "two connections: {csv}");
        for secret in ["demo-child-secret", "operator-pass", "demo-fedex-secret"] {
            ensure!(!csv.contains(secret), "{secret} in the export:\n{csv}");
        }
        ui.wait_text(&testid("toast"), "authdeck-connections.csv")
            .await?;

        ui.logout("iot").await?;
        ui.click("nav-activity").await?;
        let entries = wait_for("the activity entries", WAIT, || async {
            let v = ui
                .js(
                    "return Array.from(document.querySelectorAll(arguments[0])).map(e => [e.dataset.event, e.textContent])",
                    vec![json!(testid("activity-entry"))],
                )
                .await?;
            let list: Vec<(String, String)> = serde_json::from_value(v)?;
            Ok((list.iter().any(|(e, _)| e == "logout")).then_some(list))
        })
        .await?;
        let text = |event: &str| {
            entries
                .iter()
                .filter(|(e, _)| e == event)
                .map(|(_, t)| t.clone())
                .collect::<Vec<_>>()
        };
        ensure!(
            text("callback_rejected")
                .iter()
                .any(|t| t.contains("redirect was rejected")),
            "no rejected redirect in {entries:#?}"
        );
        let logout = text("logout");
        ensure!(
            logout.len() == 1 && logout[0].contains("operator") && logout[0].contains("Removed"),
            "the removed IoT connection: {entries:#?}"
        );
        ensure!(
            text("connect")
                .iter()
                .any(|t| t.contains("operator was connected")),
            "the removed connection's connect is kept: {entries:#?}"
        );
        // Filter: rejected redirects only.
        ui.id("activity-filter-kind")
            .await?
            .select_by_value("rejected")
            .await?;
        let shown = ui.count(&testid("activity-entry")).await?;
        ensure!(shown == 1, "{shown} entries under 'Rejected redirects'");
        // The README's screenshot: everything, once the toasts have faded.
        ui.id("activity-filter-kind")
            .await?
            .select_by_value("all")
            .await?;
        ui.wait_gone(&testid("toast")).await?;
        ui.screenshot("activity").await?;
        Ok(())
    });
}

/// At the minimum window size the rows' badges are not clipped; the size set by the
/// user is there again after a restart (tauri-plugin-window-state).
#[test]
fn minimum_size_keeps_badges_and_the_size_is_remembered() {
    run("window-size", |ui: Ui| async move {
        ui.start_sandbox().await?;
        ui.connect_flowaccount(None).await?;
        ui.wait_gone(&testid("add-connection-dialog")).await?;
        ui.connect_fedex_csp().await?;
        ui.connect_iot().await?;
        // Asked for less than the minimum, the window stays at it.
        ui.c.set_window_size(400, 300)
            .await
            .context("resizing the window")?;
        tokio::time::sleep(Duration::from_millis(600)).await;
        let (_, _, w, h) = ui.c.get_window_rect().await?;
        eprintln!("[e2e] window-size: the minimum is {w}×{h}");
        ensure!(
            w >= 720 && h >= 480 && w < 800 && h < 560,
            "asked for 400×300, got {w}×{h}"
        );
        let clipped = ui
            .js(
                r#"
const out = [];
const badges = document.querySelectorAll('[data-testid="connection-row"] .badge');
let seen = 0;
for (const b of badges) {
  if (b.hidden || getComputedStyle(b).display === 'none') continue;
  seen++;
  const r = b.getBoundingClientRect();
  if (b.scrollWidth > b.clientWidth + 1) out.push(['text cut', b.textContent, b.scrollWidth, b.clientWidth]);
  for (let a = b.parentElement; a; a = a.parentElement) {
    const s = getComputedStyle(a);
    if (s.overflowX === 'visible' && s.overflowY === 'visible' && s.contain.indexOf('paint') < 0 && s.contain !== 'strict') continue;
    const p = a.getBoundingClientRect();
    if (r.left < p.left - 0.5 || r.right > p.right + 0.5 || r.top < p.top - 0.5 || r.bottom > p.bottom + 0.5) {
      out.push(['clipped by ' + a.className, b.textContent, [r.left, r.right, r.top, r.bottom], [p.left, p.right, p.top, p.bottom]]);
      break;
    }
    if (a.matches('[data-testid="connection-row"]')) break;
  }
}
return { seen, out };
"#,
                vec![],
            )
            .await?;
        ensure!(
            clipped["seen"].as_u64().unwrap_or(0) >= 3,
            "too few badges checked: {clipped}"
        );
        ensure!(
            clipped["out"].as_array().is_some_and(Vec::is_empty),
            "badges clipped at the minimum size: {clipped:#}"
        );

        ui.c.set_window_size(1000, 640).await?;
        tokio::time::sleep(Duration::from_millis(600)).await;
        let before = ui.c.get_window_rect().await?;
        ensure!((before.2, before.3) == (1000, 640), "resized to {before:?}");
        let again = ui.restart().await?;
        let after = again.c.get_window_rect().await;
        again.close().await;
        let after = after?;
        eprintln!("[e2e] window-size: before the restart {before:?}, after {after:?}");
        if (after.2, after.3) != (before.2, before.3) {
            bail!("the window's size was not remembered: {before:?} before the restart, {after:?} after");
        }
        Ok(())
    });
}
