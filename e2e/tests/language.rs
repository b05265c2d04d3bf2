//! The window in Thai: the app started under `LANG=th_TH.UTF-8` shows Thai text, dates
//! with Buddhist-era years and no untranslated key; the language switch in Clients &
//! settings re-renders the window at once and its choice survives a restart. Takes the
//! README's screenshots of the window in both languages. Run through `scripts/e2e.sh`
//! (it generates no locale: `scripts/install-deps.sh` does, `locale-gen`).

use anyhow::{ensure, Context as _, Result};
use authdeck_e2e::{locale_launcher, row_of, run_in_locale, testid, wait_for, Ui, WAIT};
use serde_json::json;

/// The catalog's keys (ui/src/i18n/en.ts): none may show up in the window as text.
fn catalog_keys() -> Vec<&'static str> {
    include_str!("../../ui/src/i18n/en.ts")
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix('\''))
        .filter_map(|l| l.split_once("':").map(|(k, _)| k))
        .filter(|k| k.contains('.'))
        .collect()
}

/// English the Thai window must not show (words of the English catalog in the views shown).
const ENGLISH: &[&str] = &[
    "Add connection",
    "Connections",
    "Disconnect",
    "Refresh",
    "Copy token",
    "Customer code",
    "Access",
    "Select a connection",
    "FlowAccount businesses",
    "Provider",
];

async fn page(ui: &Ui) -> Result<String> {
    Ok(ui
        .js("return document.body.innerText", vec![])
        .await?
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

/// No catalog key and none of `english` in the window's text.
async fn fully_thai(ui: &Ui) -> Result<()> {
    let text = page(ui).await?;
    let keys: Vec<_> = catalog_keys()
        .into_iter()
        .filter(|k| text.contains(k))
        .collect();
    ensure!(
        keys.is_empty(),
        "untranslated keys on screen: {keys:?}\n{text}"
    );
    let english: Vec<_> = ENGLISH.iter().filter(|w| text.contains(*w)).collect();
    ensure!(
        english.is_empty(),
        "English on the Thai window: {english:?}\n{text}"
    );
    Ok(())
}

async fn choose(ui: &Ui, id: &str, value: &str) -> Result<()> {
    ui.click("nav-clients").await?;
    ui.id(id).await?.select_by_value(value).await?;
    // The window re-renders (a new clients view); back to the list.
    wait_for("the window to re-render", WAIT, || async {
        let v = ui
            .js(
                "const s = document.querySelector(arguments[0]); return s ? s.value : null",
                vec![json!(testid(id))],
            )
            .await?;
        Ok((v.as_str() == Some(value)).then_some(()))
    })
    .await?;
    ui.click("nav-connections").await
}

async fn select_flowaccount(ui: &Ui) -> Result<String> {
    ui.find(&format!("{} .cell-name", row_of("flowaccount")))
        .await?
        .click()
        .await?;
    wait_for(
        "the connection's date in the details panel",
        WAIT,
        || async {
            let t = ui.content(&testid("details-panel")).await?;
            Ok((!t.contains('…')).then_some(t))
        },
    )
    .await
}

#[test]
fn thai_window_under_th_locale_with_buddhist_years_and_a_kept_switch() {
    run_in_locale("thai", "th_TH.UTF-8", |ui: Ui| async move {
        // WebKitGTK's navigator.language follows LANG; the window goes by it.
        let nav = ui.js("return navigator.language", vec![]).await?;
        let lang = ui
            .js("return document.documentElement.lang", vec![])
            .await?;
        eprintln!("[e2e] under LANG=th_TH.UTF-8: navigator.language = {nav}, <html lang> = {lang}");
        ensure!(
            lang == json!("th"),
            "the window is not in Thai: lang={lang}, navigator.language={nav}"
        );
        let empty = ui.content(&testid("empty-state")).await?;
        ensure!(
            empty.contains("ยังไม่มีการเชื่อมต่อ"),
            "the empty state says {empty:?}"
        );

        ui.start_sandbox().await?;
        ui.connect_flowaccount(None).await?;
        ui.wait_gone(&testid("add-connection-dialog")).await?;
        ui.connect_fedex_csp().await?;
        ui.connect_iot().await?;
        let details = select_flowaccount(&ui).await?;
        ensure!(
            details.contains("2569") && details.contains("ธ.ค."),
            "no Buddhist-era date (2569, ธ.ค.) in the details: {details:?}"
        );
        let access = ui.countdown("flowaccount", "access-countdown").await?;
        ensure!(
            access.contains("นาที") || access.contains("ชม."),
            "the countdown is not in Thai units: {access:?}"
        );
        ui.wait_gone(&testid("toast")).await?;
        fully_thai(&ui).await?;
        ui.screenshot("window-th").await?;

        // Gregorian years on request, Buddhist era again after.
        choose(&ui, "settings-calendar", "gregory").await?;
        let details = select_flowaccount(&ui).await?;
        ensure!(
            details.contains("2026") && !details.contains("2569"),
            "Gregorian years not shown: {details:?}"
        );
        choose(&ui, "settings-calendar", "buddhist").await?;

        // English from the switch, without a restart …
        choose(&ui, "settings-language", "en").await?;
        ui.wait_text(&testid("add-connection"), "Add connection")
            .await?;
        let details = select_flowaccount(&ui).await?;
        ensure!(
            details.contains("2026"),
            "the English window shows no Gregorian date: {details:?}"
        );
        ui.wait_gone(&testid("toast")).await?;
        ui.screenshot("window-en").await?;

        // … and still English after a restart (under the same Thai LANG).
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await; // localStorage reaches the disk
        ui.close().await;
        let launcher = locale_launcher(&ui.env, "th_TH.UTF-8")?;
        let again = Ui::launch(ui.env.clone(), &launcher, false)
            .await
            .context("restarting the app")?;
        let result = async {
            again
                .wait_text(&testid("add-connection"), "Add connection")
                .await?;
            // Back to the system's language: Thai again, at once.
            choose(&again, "settings-language", "system").await?;
            again
                .wait_text(&testid("add-connection"), "เพิ่มการเชื่อมต่อ")
                .await?;
            fully_thai(&again).await
        }
        .await;
        again.close().await;
        result
    });
}
