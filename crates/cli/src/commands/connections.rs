//! `connect`, `callback`, `list`, `status`, `check`, `label`, `refresh`, `logout`: the
//! connections themselves.

use std::process::ExitCode;

use authdeck_core::loopback;
use authdeck_core::manager::{LogoutOutcome, Manager};
use authdeck_core::model::{FedexGrant, Provider};
use authdeck_core::{Error, ErrorCode, Result};
use clap::Subcommand;

use super::{keep_answers, print_json};
use crate::input::SecretInput;
use crate::output::{self, ConnectionView};
use crate::EXIT_REAUTHORIZE;

#[derive(Subcommand)]
pub enum ConnectCommand {
    /// Authorize a FlowAccount business in the system browser.
    Flowaccount {
        #[arg(long)]
        client: String,
        /// Print the authorize URL without opening a browser.
        #[arg(long)]
        no_browser: bool,
    },
    /// Request a FedEx token for a project.
    Fedex {
        #[arg(long)]
        client: String,
        #[arg(long, value_enum, default_value = "client_credentials")]
        grant: FedexGrant,
        /// csp_credentials / client_pc_credentials: the child key.
        #[arg(long)]
        child_key: Option<String>,
        /// Read the child secret from stdin (else $AUTHDECK_CHILD_SECRET).
        #[arg(long)]
        child_secret_stdin: bool,
        /// Let the desktop app re-request the token before it expires.
        #[arg(long)]
        keep_fresh: bool,
    },
    /// Log in to the IoT platform (the password is used once, never stored).
    Iot {
        #[arg(long)]
        client: String,
        #[arg(long)]
        username: String,
        /// Read the password from stdin (else $AUTHDECK_PASSWORD).
        #[arg(long)]
        password_stdin: bool,
    },
}

pub async fn connect(
    manager: &Manager,
    command: ConnectCommand,
    secrets: &mut SecretInput,
    json: bool,
) -> Result<ExitCode> {
    let now = || manager.now();
    match command {
        ConnectCommand::Flowaccount { client, no_browser } => {
            return connect_flowaccount(manager, &client, no_browser, json).await;
        }
        ConnectCommand::Fedex {
            client,
            grant,
            child_key,
            child_secret_stdin,
            keep_fresh,
        } => {
            let child = match child_key {
                Some(key) => Some((
                    key,
                    secrets.require(
                        "child secret",
                        "--child-secret-stdin",
                        child_secret_stdin,
                        "AUTHDECK_CHILD_SECRET",
                    )?,
                )),
                None if child_secret_stdin => {
                    return Err(Error::invalid_input(
                        "--child-secret-stdin needs --child-key.",
                    ))
                }
                None => None,
            };
            let mut conn = manager.connect_fedex(&client, grant, child).await?;
            if keep_fresh {
                conn = manager.set_keep_fresh(&conn.id, true).await?;
            }
            connected(&conn, now(), json)?;
        }
        ConnectCommand::Iot {
            client,
            username,
            password_stdin,
        } => {
            let password = secrets.require(
                "password",
                "--password-stdin",
                password_stdin,
                "AUTHDECK_PASSWORD",
            )?;
            let conn = manager.connect_iot(&client, &username, password).await?;
            connected(&conn, now(), json)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn callback(manager: &Manager, url: String, json: bool) -> Result<ExitCode> {
    let now = || manager.now();
    let url = if url == "-" {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .map_err(|_| Error::invalid_input("Could not read the URL from stdin."))?;
        line.trim().to_owned()
    } else {
        url
    };
    let conn = manager.complete_callback(&url).await?;
    connected(&conn, now(), json)?;
    Ok(ExitCode::SUCCESS)
}

pub async fn list(manager: &Manager, csv: bool, json: bool) -> Result<ExitCode> {
    let now = || manager.now();
    if csv && json {
        return Err(Error::invalid_input("Choose --csv or --json, not both."));
    }
    let connections = manager.list().await?;
    if csv {
        let text = authdeck_core::export::render(
            &connections,
            now(),
            authdeck_core::export::ExportFormat::Csv,
        )?;
        outln!("{}", text.trim_end_matches('\n'));
    } else if json {
        let at = now();
        print_json(
            &connections
                .iter()
                .map(|c| ConnectionView::new(c, at))
                .collect::<Vec<_>>(),
        )?;
    } else {
        output::connections_table(&connections, now());
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn status(manager: &Manager, connection: String, json: bool) -> Result<ExitCode> {
    let now = || manager.now();
    let conn = manager.connection(&connection).await?;
    if json {
        print_json(&ConnectionView::new(&conn, now()))?;
    } else {
        output::status(&conn, now());
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn check(manager: &Manager, connection: String, json: bool) -> Result<ExitCode> {
    let now = || manager.now();
    let conn = manager.connection(&connection).await?;
    if conn.provider == Provider::Fedex && !json {
        errln!("{}", output::FEDEX_CHECK_NOTE);
    }
    let checked = manager.check(&conn.id).await?;
    if json {
        print_json(&ConnectionView::new(&checked, now()))?;
    } else {
        output::checked(&checked);
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn label(
    manager: &Manager,
    connection: String,
    name: Option<String>,
    clear: bool,
    json: bool,
) -> Result<ExitCode> {
    let now = || manager.now();
    let name = if clear { None } else { name };
    let conn = manager.set_label(&connection, name.as_deref()).await?;
    if json {
        print_json(&ConnectionView::new(&conn, now()))?;
    } else if conn.user_label.is_some() {
        outln!("{} is now called {:?}.", conn.label, conn.title());
    } else {
        outln!(
            "{} has no name of its own now: it shows as {:?}.",
            conn.label,
            conn.title()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `refresh CONNECTION`.
pub async fn refresh(manager: &Manager, connection: String, json: bool) -> Result<ExitCode> {
    let now = || manager.now();
    let conn = match manager.refresh(&connection).await {
        Err(e) if e.code == ErrorCode::KeyringUnavailable => {
            // The provider may have answered: its tokens must not be dropped.
            keep_answers(manager).await?;
            match manager.unsaved_connections().is_empty() {
                true => manager.connection(&connection).await?,
                false => return Err(e),
            }
        }
        other => other?,
    };
    if json {
        print_json(&ConnectionView::new(&conn, now()))?;
    } else {
        let left = conn
            .access_expires
            .map(|e| output::duration_text(e.seconds_left(now())))
            .unwrap_or_else(|| "unknown".into());
        outln!("Refreshed {}: access token expires in {left}.", conn.label);
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn logout(manager: &Manager, connection: String, json: bool) -> Result<ExitCode> {
    let outcome = manager.logout(&connection).await?;
    if json {
        print_json(&serde_json::json!({ "outcome": outcome }))?;
    } else {
        outln!(
                    "{}",
                    match outcome {
                        LogoutOutcome::Revoked => "Logged out: the server revoked the session and the local tokens are deleted.",
                        LogoutOutcome::AlreadyRevoked => "Logged out: the server had already ended the session; the local tokens are deleted.",
                        LogoutOutcome::TokensMissing => "Logged out here only: the session's tokens were missing from the keyring, so the server could not be asked to end it and it may still be active. The local record is deleted. To end the session at the server, log in again (`authdeckctl connect iot …`), then log out.",
                        LogoutOutcome::Disconnected => "Disconnected: the local tokens are deleted (history is kept).",
                    }
                );
    }
    Ok(ExitCode::SUCCESS)
}

fn connected(
    conn: &authdeck_core::model::Connection,
    now: chrono::DateTime<chrono::Utc>,
    json: bool,
) -> Result<()> {
    if json {
        return print_json(&ConnectionView::new(conn, now));
    }
    let left = conn
        .access_expires
        .map(|e| output::duration_text(e.seconds_left(now)))
        .unwrap_or_else(|| "unknown".into());
    outln!(
        "Connected {} {} (id {}): access token expires in {left}.",
        conn.provider.display_name(),
        output::title_with_code(conn),
        conn.id
    );
    if let Some(error) = conn.last_check.as_ref().and_then(|c| c.error.as_ref()) {
        errln!(
            "Could not learn who the business is ({}): {} Run `authdeckctl check {}` to ask again.",
            error.code,
            error.message,
            conn.id
        );
    }
    Ok(())
}

async fn connect_flowaccount(
    manager: &Manager,
    client: &str,
    no_browser: bool,
    json: bool,
) -> Result<ExitCode> {
    let client = manager.client(client).await?;
    let redirect = client.options.redirect_uri.clone().unwrap_or_default();
    // Bind before the browser can possibly be redirected.
    let listener = if loopback::is_loopback_redirect(&redirect) {
        Some(loopback::LoopbackListener::bind(&redirect).await?)
    } else {
        None
    };
    let pending = manager.begin_flowaccount(&client.id).await?;
    // stdout stays machine-readable under --json: the pending authorization (which
    // carries the URL) and, for a loopback redirect, the connection after it.
    if json {
        print_json(&pending)?;
    } else {
        errln!("Open this address in your browser, log in to FlowAccount and pick the business:");
        outln!("{}", pending.authorize_url);
    }
    if !no_browser {
        open_in_browser(&pending.authorize_url);
    }
    let Some(listener) = listener else {
        if !json {
            errln!(
                "FlowAccount will redirect to {redirect}. The Authdeck app completes the connection; \
                 without it, copy the address the browser shows and run `authdeckctl callback 'URL'` (within 10 minutes)."
            );
        }
        return Ok(ExitCode::SUCCESS);
    };
    errln!("Waiting for the redirect on {redirect} (up to 10 minutes)…");
    // Other requests to the port are answered 400 and ignored; only the redirect that
    // carries this authorization's state ends the wait.
    let conn = listener.complete(manager, &pending).await?;
    connected(&conn, manager.now(), json)?;
    Ok(ExitCode::SUCCESS)
}

/// Best effort: the URL is printed anyway. (Debian's xdg-open cannot always run the
/// handlers Tauri registers; `gio open` can.)
fn open_in_browser(url: &str) {
    use std::process::{Command, Stdio};
    let openers: [(&str, &[&str]); 2] = [("xdg-open", &[]), ("gio", &["open"])];
    for (program, args) in openers {
        let status = Command::new(program)
            .args(args)
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if matches!(status, Ok(s) if s.success()) {
            return;
        }
    }
    errln!("(Could not start a browser: open the address above yourself.)");
}

/// A connection removed (logged out, disconnected) after `refresh --all` listed it: not
/// refreshed, and not a failure either.
fn removed_meanwhile(result: &Result<authdeck_core::model::Connection>) -> bool {
    matches!(result, Err(e) if e.code == ErrorCode::NotFound)
}

pub async fn refresh_all(manager: &Manager, json: bool) -> Result<ExitCode> {
    let mut reports = manager.refresh_all().await?;
    if !manager.unsaved_connections().is_empty() {
        let unsaved = manager.unsaved_connections();
        keep_answers(manager).await?;
        // Saved once the keyring was unlocked: those rows are refreshed after all.
        for r in reports.iter_mut().filter(|r| unsaved.contains(&r.id)) {
            if let Ok(conn) = manager.connection(&r.id).await {
                r.result = Ok(conn);
            }
        }
    }
    let now = manager.now();
    let skipped = reports
        .iter()
        .filter(|r| removed_meanwhile(&r.result))
        .count();
    let failed = reports.iter().filter(|r| r.result.is_err()).count() - skipped;
    let reauth = reports
        .iter()
        .any(|r| matches!(&r.result, Err(e) if e.code == ErrorCode::ReauthorizationRequired));
    if json {
        let rows: Vec<_> = reports
            .iter()
            .map(|r| match &r.result {
                Ok(c) => serde_json::json!({"id": r.id, "label": r.label, "ok": true, "access_expires_in": c.access_expires.map(|e| e.seconds_left(now))}),
                Err(_) if removed_meanwhile(&r.result) => serde_json::json!({"id": r.id, "label": r.label, "ok": false, "skipped": "removed"}),
                Err(e) => serde_json::json!({"id": r.id, "label": r.label, "ok": false, "error": e}),
            })
            .collect();
        print_json(&rows)?;
    } else {
        for r in &reports {
            match &r.result {
                Ok(_) => outln!("ok      {}", r.label),
                Err(_) if removed_meanwhile(&r.result) => {
                    outln!("skipped {}: logged out or disconnected meanwhile", r.label)
                }
                Err(e) => outln!("failed  {}: {} [{}]", r.label, e.message, e.code),
            }
        }
        let refreshed = reports.len() - failed - skipped;
        match skipped {
            0 => outln!("{refreshed} refreshed, {failed} failed."),
            _ => outln!(
                "{refreshed} refreshed, {failed} failed, {skipped} skipped (removed meanwhile)."
            ),
        }
    }
    Ok(match (failed, reauth) {
        (0, _) => ExitCode::SUCCESS,
        (_, true) => ExitCode::from(EXIT_REAUTHORIZE),
        _ => ExitCode::from(1),
    })
}
