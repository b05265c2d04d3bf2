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

/// The provider emulator for the CLI's connection (its own runtime, kept for the test).
struct Provider {
    _rt: tokio::runtime::Runtime,
    emulator: authdeck_emulator::RunningEmulator,
    config: authdeck_emulator::EmulatorConfig,
}

fn provider() -> Provider {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime for the emulator");
    let config = authdeck_emulator::EmulatorConfig::demo();
    let emulator = rt
        .block_on(authdeck_emulator::start(
            config.clone(),
            "127.0.0.1:0".parse().unwrap(),
        ))
        .expect("the emulator starts");
    Provider {
        _rt: rt,
        emulator,
        config,
    }
}

/// `authdeckctl` on the CLI's own data directory and keyring service.
fn cli(data_dir: &std::path::Path, args: &[&str], envs: &[(&str, &str)]) -> String {
    let mut cmd = Command::new(authdeckctl());
    cmd.args(args)
        .env("AUTHDECK_DATA_DIR", data_dir)
        .env(
            "AUTHDECK_KEYRING_SERVICE",
            format!("authdeck-e2e-team-cli-{}", std::process::id()),
        )
        .env_remove("DISPLAY")
        .stdin(Stdio::null());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("authdeckctl runs");
    assert!(
        out.status.success(),
        "authdeckctl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The row of connection `id`: its team line, its error line, and the instant of its
/// last refresh (the line shows minutes), if it is listed.
async fn team_row(ui: &Ui, id: &str) -> Result<Option<(String, String, String)>> {
    let v = ui
        .js(
            "const r = document.querySelector(`[data-testid=\"connection-row\"][data-connection-id=\"${arguments[0]}\"]`);\
             if (!r) return null;\
             const t = r.querySelector('[data-testid=\"row-team\"]');\
             const e = r.querySelector('[data-testid=\"row-error\"]');\
             return [t && !t.hidden ? t.textContent : '', e && !e.hidden ? e.textContent : '', t ? t.dataset.refreshedAt || '' : ''];",
            vec![json!(id)],
        )
        .await?;
    if v.is_null() {
        return Ok(None);
    }
    let s = |i: usize| v[i].as_str().unwrap_or_default().to_owned();
    Ok(Some((s(0), s(1), s(2))))
}

/// The banner that says the team store does not answer, if it is on screen.
async fn team_down_banner(ui: &Ui) -> Result<Option<String>> {
    let v = ui
        .js(
            "const b = document.querySelector('[data-testid=\"team-down-banner\"]');\
             return b ? b.textContent : null;",
            vec![],
        )
        .await?;
    Ok(v.as_str().map(str::to_owned))
}

/// Run `authdeckctl refresh id` and time the window's row until it names the refresher;
/// (from the start of the command, from its exit) in seconds.
async fn refresh_shows(ui: &Ui, other: &std::path::Path, id: &str) -> Result<(f64, f64)> {
    let before = team_row(ui, id).await?.context("the row is listed")?.2;
    let started = Instant::now();
    let (dir, conn) = (other.to_path_buf(), id.to_owned());
    tokio::task::spawn_blocking(move || cli(&dir, &["refresh", &conn], &[])).await?;
    let exited = Instant::now();
    let deadline = exited + Duration::from_secs(10);
    loop {
        let (line, _, at) = team_row(ui, id).await?.unwrap_or_default();
        if at != before && line.starts_with("Refreshed by ") && line.contains(" on desk-cli at ") {
            let seen = Instant::now();
            return Ok((
                (seen - started).as_secs_f64(),
                (seen - exited).as_secs_f64(),
            ));
        }
        ensure!(
            Instant::now() < deadline,
            "the row never showed the CLI's refresh: {line:?} at {at:?} (before: {before:?})"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[test]
fn the_window_in_team_mode_shows_another_machines_refresh_within_a_second_and_survives_the_database_going_away(
) {
    let mut pg = PgCluster::start();
    pg.create_database("team");
    let address = pg.tcp_config("team");
    let other = tempfile::tempdir().expect("a data directory for the CLI");
    let join = team_init(other.path(), &address);
    // The CLI (another machine) connects a FedEx project in the team.
    let provider = provider();
    let project = &provider.config.fedex.projects[0];
    cli(
        other.path(),
        &[
            "client",
            "add",
            "fedex",
            "--name",
            "fedex",
            "--client-id",
            &project.client_id,
            "--token-url",
            &provider.emulator.fedex_token_url(),
        ],
        &[("AUTHDECK_CLIENT_SECRET", &project.client_secret)],
    );
    let connected: serde_json::Value = serde_json::from_str(&cli(
        other.path(),
        &["--json", "connect", "fedex", "--client", "fedex"],
        &[],
    ))
    .expect("connect prints JSON");
    let id = connected["id"]
        .as_str()
        .expect("a connection id")
        .to_owned();
    let token = cli(other.path(), &["token", &id], &[]).trim().to_owned();
    assert!(token.len() > 16, "a real token");

    run("team-mode", move |ui: Ui| async move {
        // Join through the window, then start it again: it opens the team's store.
        ui.click("nav-clients").await?;
        ui.fill("team-address", &address).await?;
        ui.fill("team-join-key", &join).await?;
        ui.click("team-join").await?;
        wait_for("the header to name the team", WAIT, || async {
            Ok(header_team(&ui).await?.0.then_some(()))
        })
        .await?;
        let ui = ui.restart().await?;
        let result = async {
            let (line, _, _) = wait_for("the team's connection in the list", WAIT, || async {
                team_row(&ui, &id).await
            })
            .await?;
            ensure!(
                line.starts_with("Connected by ") && line.ends_with(" on desk-cli"),
                "who connected it: {line:?}"
            );

            // Another machine refreshes: the row says so within a second.
            let mut worst = 0.0_f64;
            for round in 1..=3 {
                let (from_start, from_exit) = refresh_shows(&ui, other.path(), &id).await?;
                eprintln!(
                    "[e2e] team-mode: refresh {round} by the CLI shown in the row {:.0} ms after the command exited ({:.0} ms after it started)",
                    from_exit * 1000.0,
                    from_start * 1000.0
                );
                worst = worst.max(from_exit);
            }
            ensure!(worst <= 1.0, "the row showed a refresh {worst:.2} s after it");

            // The last known list: 0600, rows only (no token).
            let file = ui.env.data_dir.join("team-list.json");
            let text = wait_for("the last known list to be written", WAIT, || async {
                Ok(std::fs::read_to_string(&file)
                    .ok()
                    .filter(|t| t.contains(&id)))
            })
            .await?;
            let token = cli(other.path(), &["token", &id], &[]).trim().to_owned();
            ensure!(!text.contains(&token), "no token in team-list.json");
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&file)?.permissions().mode() & 0o777;
            ensure!(mode == 0o600, "team-list.json is {mode:o}");
            ui.click("nav-connections").await?;
            ui.screenshot("team-mode").await?;

            // The database goes away: the list stays, marked; an action says
            // team_unavailable.
            tokio::task::block_in_place(|| pg.stop());
            let stopped = Instant::now();
            let banner = wait_for(
                "the team-down banner",
                Duration::from_secs(10),
                || async { team_down_banner(&ui).await },
            )
            .await?;
            eprintln!(
                "[e2e] team-mode: the banner shown {:.1} s after the database stopped",
                stopped.elapsed().as_secs_f64()
            );
            ensure!(
                banner.contains("Team store unreachable — showing the list as of"),
                "{banner}"
            );
            ensure!(team_row(&ui, &id).await?.is_some(), "the last known row stays");
            ui.js(
                "document.querySelector(`[data-testid=\"connection-row\"][data-connection-id=\"${arguments[0]}\"] [data-testid=\"row-refresh\"]`).click();",
                vec![json!(id)],
            )
            .await?;
            let error = wait_for("the refresh to fail", WAIT, || async {
                Ok(team_row(&ui, &id)
                    .await?
                    .map(|r| r.1)
                    .filter(|e| !e.is_empty()))
            })
            .await?;
            ensure!(
                error.contains("team database"),
                "a team_unavailable error: {error}"
            );
            ui.screenshot("team-mode-unreachable").await?;

            // Started while the database is down: the last known list, marked.
            let down = ui.restart().await?;
            let offline = async {
                let banner = wait_for(
                    "the team-down banner after a start",
                    WAIT,
                    || async { team_down_banner(&down).await },
                )
                .await?;
                ensure!(banner.contains("showing the list as of"), "{banner}");
                ensure!(
                    team_row(&down, &id).await?.is_some(),
                    "the last known row at start"
                );
                // The database is back: the window is live again by itself.
                tokio::task::block_in_place(|| pg.start_again());
                let back = Instant::now();
                wait_for("the banner to go", Duration::from_secs(15), || async {
                    Ok(team_down_banner(&down).await?.is_none().then_some(()))
                })
                .await?;
                eprintln!(
                    "[e2e] team-mode: live again {:.1} s after the database started",
                    back.elapsed().as_secs_f64()
                );
                let (_, from_exit) = refresh_shows(&down, other.path(), &id).await?;
                eprintln!(
                    "[e2e] team-mode: after the outage, a refresh shown {:.0} ms after the command exited",
                    from_exit * 1000.0
                );
                ensure!(from_exit <= 1.0, "live again: {from_exit:.2} s");
                Ok(())
            }
            .await;
            down.close().await;
            offline
        }
        .await;
        ui.close().await;
        result
    });
    drop(provider);
}
