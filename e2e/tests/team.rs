//! Clients & settings → Team in the real window (Xvfb, WebDriver, the real keyring)
//! against a real PostgreSQL cluster (`authdeck_team::testing::PgCluster`): a team made
//! by `authdeckctl team init` on another data directory is joined through the form; the
//! header names the team as reachable; the status lists both machines; with the cluster
//! stopped the header says unreachable within seconds and the section shows the last
//! known status; leave returns to "not in a team". Run through `scripts/e2e.sh`.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context as _, Result};
use authdeck_e2e::{keyring_keys, run, testid, wait_for, Ui, WAIT};
use authdeck_team::testing::PgCluster;
use serde_json::json;

/// `authdeckctl` of this build (scripts/e2e.sh builds it).
fn authdeckctl() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/debug/authdeckctl");
    assert!(
        path.is_file(),
        "{} is missing: scripts/e2e.sh builds it (cargo build -p authdeck-cli)",
        path.display()
    );
    path
}

/// `authdeckctl team init` on a data directory (and keyring service) of its own, as the
/// first desktop of the team: its stdout is the join key.
fn team_init(data_dir: &std::path::Path, address: &str) -> String {
    let out = Command::new(authdeckctl())
        .args([
            "team",
            "init",
            "--database",
            address,
            "--name",
            "Firm",
            "--machine",
            "desk-cli",
        ])
        .env("AUTHDECK_DATA_DIR", data_dir)
        .env(
            "AUTHDECK_KEYRING_SERVICE",
            format!("authdeck-e2e-team-cli-{}", std::process::id()),
        )
        .env_remove("DISPLAY")
        .stdin(Stdio::null())
        .output()
        .expect("authdeckctl runs");
    assert!(
        out.status.success(),
        "team init failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(key.starts_with("adtk1_"), "stdout is the join key");
    key
}

/// The header's team mark: (shown, reachable attribute, text).
async fn header_team(ui: &Ui) -> Result<(bool, String, String)> {
    let v = ui
        .js(
            "const e = document.querySelector('[data-testid=\"header-team\"]');\
             return e ? [!e.hidden, e.dataset.reachable || '', e.textContent] : [false, '', ''];",
            vec![],
        )
        .await?;
    let s = |i: usize| v[i].as_str().unwrap_or_default().to_owned();
    Ok((v[0] == json!(true), s(1), s(2)))
}

async fn machines(ui: &Ui) -> Result<Vec<String>> {
    let v = ui
        .js(
            "return Array.from(document.querySelectorAll('[data-testid=\"team-member\"]')).map(e => e.dataset.machine);",
            vec![],
        )
        .await?;
    let mut m: Vec<String> = serde_json::from_value(v)?;
    m.sort();
    Ok(m)
}

#[test]
fn the_window_joins_a_team_shows_it_unreachable_and_leaves() {
    let mut pg = PgCluster::start();
    pg.create_database("team");
    let address = pg.tcp_config("team");
    let other = tempfile::tempdir().expect("a data directory for the CLI");
    let join = team_init(other.path(), &address);

    run("team", move |ui: Ui| async move {
        ui.click("nav-clients").await?;
        ui.id("team-none").await?;
        ensure!(!header_team(&ui).await?.0, "no team mark before joining");
        ui.fill("team-address", &address).await?;
        ui.fill("team-join-key", &join).await?;
        ui.click("team-join").await?;

        let (_, reachable, text) = wait_for("the header to name the team", WAIT, || async {
            let h = header_team(&ui).await?;
            Ok(h.0.then_some(h))
        })
        .await?;
        ensure!(text.contains("Team Firm"), "header: {text}");
        ensure!(reachable == "true", "header: {text}");
        ensure!(
            text.contains("reachable") && !text.contains("unreachable"),
            "the mark says it in words: {text}"
        );
        // Both machines: the CLI's desk-cli and this window's (its host name).
        let seen = wait_for("both machines in the status", WAIT, || async {
            let m = machines(&ui).await?;
            Ok((m.len() == 2).then_some(m))
        })
        .await?;
        ensure!(seen.contains(&"desk-cli".to_owned()), "members: {seen:?}");
        let keys = keyring_keys(&ui.env)?;
        ensure!(
            keys.iter().any(|k| k == "team/key"),
            "the team key is in the app's keyring: {keys:?}"
        );
        ensure!(
            !ui.page_text()
                .await
                .contains(join.trim_start_matches("adtk1_")),
            "the join key is not shown"
        );
        ui.js(
            "document.querySelector('[data-testid=\"team-card\"]').scrollIntoView({block: 'start'});",
            vec![],
        )
        .await?;
        ui.screenshot("team").await?;

        // The database goes away: the header says so within a few seconds, the section
        // keeps the last known status.
        tokio::task::block_in_place(|| pg.stop());
        let stopped = Instant::now();
        wait_for(
            "the header to say unreachable",
            Duration::from_secs(10),
            || async {
                let h = header_team(&ui).await?;
                Ok((h.1 == "false" && h.2.contains("unreachable")).then_some(()))
            },
        )
        .await?;
        eprintln!(
            "[e2e] team: unreachable shown {:.1} s after the cluster stopped",
            stopped.elapsed().as_secs_f64()
        );
        let last = ui.content(&testid("team-last-known")).await?;
        ensure!(last.contains("Last known status"), "{last}");
        ensure!(machines(&ui).await?.len() == 2, "the last known members");

        ui.click("team-leave").await?;
        let confirm = ui.content(&testid("confirm-dialog")).await?;
        ensure!(confirm.contains("What stays in the team"), "{confirm}");
        ui.click("confirm-ok").await?;
        ui.id("team-none")
            .await
            .context("not in a team after leave")?;
        wait_for("the team mark to go", WAIT, || async {
            Ok((!header_team(&ui).await?.0).then_some(()))
        })
        .await?;
        let keys = keyring_keys(&ui.env)?;
        ensure!(
            !keys.iter().any(|k| k == "team/key"),
            "the key is forgotten: {keys:?}"
        );
        Ok(())
    });
}
