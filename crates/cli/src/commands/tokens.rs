//! `token` and `exec`: a valid access token, printed or handed to a child process.

use std::process::ExitCode;
use std::time::Duration;

use authdeck_core::manager::{Manager, ManagerOptions};
use authdeck_core::shutdown::Shutdown;
use authdeck_core::{Error, ErrorCode, Result};
use clap::Args;

use super::devices::{device_vars, DeviceCommand};
use super::{keep_answers, open_manager, print_json};
use crate::{child, signals, Cli, Command};

pub async fn token(
    manager: &Manager,
    connection: String,
    min_validity: u64,
    json: bool,
) -> Result<ExitCode> {
    let now = || manager.now();
    let result = manager
        .access_token(&connection, Duration::from_secs(min_validity))
        .await;
    let result = match result {
        Err(e) if e.code == ErrorCode::KeyringUnavailable => {
            keep_answers(manager).await?;
            manager
                .access_token(&connection, Duration::from_secs(min_validity))
                .await
        }
        other => other,
    };
    let (token, conn) = result?;
    // The one place a token is printed: the user asked for it, on stdout only.
    if json {
        print_json(&serde_json::json!({
            "access_token": token.expose(),
            "token_type": conn.token_type,
            "expires_at": conn.access_expires.map(|e| e.at),
            "expires_in": conn.access_expires.map(|e| e.seconds_left(now())),
            "expires_source": conn.access_expires.map(|e| e.source),
        }))?;
    } else {
        outln!("{}", token.expose());
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args)]
pub struct ExecArgs {
    /// The connection whose token goes into --env (omit it when every one is given with --conn).
    connection: Option<String>,
    /// The variable that gets the token (its expiry goes into NAME_EXPIRES_AT).
    #[arg(long = "env", value_name = "NAME", default_value = "AUTHDECK_TOKEN")]
    env: String,
    /// Another connection and its variable, as CONN=NAME (repeatable).
    #[arg(long = "conn", value_name = "CONN=NAME")]
    conns: Vec<String>,
    /// Refresh first unless each token stays valid this many seconds.
    #[arg(long, default_value_t = 60)]
    min_validity: u64,
    /// The command and its arguments, after --.
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<std::ffi::OsString>,
}

/// `exec` and `device env`: gather the credentials (a stop signal meanwhile ends it as
/// any other command: what is in flight is saved first), then run the child with them,
/// forwarding signals to it.
pub async fn run_child(cli: Cli) -> Result<ExitCode> {
    let mut signals = signals::Signals::new()?;
    let shutdown = Shutdown::new();
    let grace =
        Shutdown::grace(authdeck_core::providers::http::HttpSettings::default().request_timeout);
    let data_dir = cli.data_dir.clone();
    let gather = async {
        let manager = open_manager(
            data_dir,
            ManagerOptions::default().refresh_concurrency,
            shutdown.clone(),
        )
        .await?;
        match &cli.command {
            Command::Exec(args) => exec_vars(&manager, args).await,
            Command::Device(DeviceCommand::Env { device, .. }) => {
                device_vars(&manager, device).await
            }
            _ => unreachable!("only exec and device env run a child"),
        }
    };
    let vars = tokio::select! {
        vars = gather => vars?,
        signal = signals.next() => {
            shutdown.begin();
            let _ = tokio::time::timeout(grace, shutdown.idle()).await;
            return Ok(ExitCode::from(signal.exit_code()));
        }
    };
    let command = match cli.command {
        Command::Exec(args) => args.command,
        Command::Device(DeviceCommand::Env { command, .. }) => command,
        _ => unreachable!("only exec and device env run a child"),
    };
    child::run(&command, vars, signals).await
}

/// A valid access token of `reference` (refreshed first if it expires within
/// `min_validity`), saving the answers of a keyring that was locked meanwhile.
pub async fn fresh_token(
    manager: &Manager,
    reference: &str,
    min_validity: Duration,
) -> Result<(authdeck_core::AccessToken, authdeck_core::model::Connection)> {
    match manager.access_token(reference, min_validity).await {
        Err(e) if e.code == ErrorCode::KeyringUnavailable => {
            keep_answers(manager).await?;
            manager.access_token(reference, min_validity).await
        }
        other => other,
    }
}

pub async fn exec_vars(manager: &Manager, args: &ExecArgs) -> Result<Vec<child::Var>> {
    let mut wanted: Vec<(String, String)> = Vec::new();
    if let Some(conn) = &args.connection {
        wanted.push((conn.clone(), args.env.clone()));
    }
    for pair in &args.conns {
        let Some((conn, name)) = pair.rsplit_once('=') else {
            return Err(Error::invalid_input(format!(
                "--conn {pair:?}: write CONN=NAME, e.g. --conn acme=ACME_TOKEN."
            )));
        };
        wanted.push((conn.to_owned(), name.to_owned()));
    }
    if wanted.is_empty() {
        return Err(Error::invalid_input(
            "Name the connection: `authdeckctl exec CONN -- CMD…`, or --conn CONN=NAME.",
        ));
    }
    let mut names = std::collections::HashSet::new();
    for (_, name) in &wanted {
        child::check_name(name)?;
        if !names.insert(name.clone()) {
            return Err(Error::invalid_input(format!(
                "The variable {name} is given twice: one connection per variable."
            )));
        }
    }
    let min_validity = Duration::from_secs(args.min_validity);
    let mut vars = Vec::new();
    for (conn, name) in wanted {
        let (token, conn) = fresh_token(manager, &conn, min_validity).await?;
        let expires = format!("{name}_EXPIRES_AT");
        vars.push(child::Var::set(name, token.expose()));
        vars.push(match conn.access_expires {
            Some(e) => child::Var::set(
                expires,
                e.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ),
            None => child::Var::unset(expires),
        });
    }
    Ok(vars)
}
