//! `authdeckctl`: Authdeck for scripts and support staff. Same core, same store, same
//! keyring as the desktop app.
//!
//! Exit codes: 0 ok, 2 usage / invalid argument, 3 re-authorization required, 1 any
//! other error (one line on stderr; `--json` makes it a JSON object).

// First: its `outln!` / `errln!` are used everywhere below.
#[macro_use]
mod output;
mod agent;
mod child;
mod commands;
mod input;
mod signals;
mod team;
mod team_import;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use authdeck_core::manager::ManagerOptions;
use authdeck_core::shutdown::Shutdown;
use authdeck_core::{Error, ErrorCode, Result};
use clap::{Parser, Subcommand};

use crate::commands::devices::DeviceCommand;
// team.rs prints through `crate::print_json`.
use crate::commands::print_json;
use crate::commands::sandbox::{SandboxAction, SandboxArgs};
use crate::commands::{clients, connections, devices, history, reset, sandbox, tokens};
use crate::input::SecretInput;

const EXIT_USAGE: u8 = 2;
const EXIT_REAUTHORIZE: u8 = 3;

#[derive(Parser)]
#[command(name = "authdeckctl", version, about = "Authdeck on the command line: FlowAccount, FedEx and IoT-platform connections.", long_about = None)]
struct Cli {
    /// Data directory (default: $AUTHDECK_DATA_DIR, else $XDG_DATA_HOME/authdeck).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Machine-readable output (and errors as JSON on stderr).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Manage app registrations (client id + secret + endpoints) per provider.
    #[command(subcommand)]
    Client(clients::ClientCommand),
    /// Connect a FlowAccount business, a FedEx project or an IoT-platform account.
    #[command(subcommand)]
    Connect(connections::ConnectCommand),
    /// Finish a FlowAccount authorization with the redirect URL the browser reached.
    Callback {
        /// The full redirect URL (com.authdeck.desktop:/oauth/callback?code=…&state=…), or - to read it from stdin.
        url: String,
    },
    /// List every connection with its status and expiries.
    List {
        /// CSV for support staff: name, company, provider, status, both expiries, last
        /// refresh, last error (no secrets; see the README).
        #[arg(long)]
        csv: bool,
    },
    /// Show one connection in detail: expiries, scope, supportCode / userinfo, JWT claims, last error.
    Status { connection: String },
    /// Ask the provider whether it accepts the connection now (FlowAccount: reads the
    /// business's details; FedEx: requests a new token, which counts against the
    /// project's quota; IoT: renews the session).
    Check { connection: String },
    /// Give a connection your own name (shown as its title; `--clear` removes it).
    #[command(alias = "rename")]
    Label {
        connection: String,
        #[arg(required_unless_present = "clear", conflicts_with = "clear")]
        name: Option<String>,
        /// Remove the name: the company's name (or the supportCode) shows again.
        #[arg(long)]
        clear: bool,
    },
    /// Print a valid access token (refreshed first if it expires within --min-validity);
    /// with --json, an object with the token, its expiry and where the expiry came from.
    Token {
        connection: String,
        /// Seconds the printed token must stay valid.
        #[arg(long, default_value_t = 60)]
        min_validity: u64,
    },
    /// Run a command with a fresh access token in its environment (AUTHDECK_TOKEN and
    /// AUTHDECK_TOKEN_EXPIRES_AT by default), never on its command line. Exits with the
    /// command's status; SIGINT, SIGTERM and SIGHUP are passed on to it.
    Exec(tokens::ExecArgs),
    /// IoT devices: their Client ID here, their Token and Secret in the system keyring.
    #[command(subcommand)]
    Device(devices::DeviceCommand),
    /// Refresh a connection now (FedEx: request a new token), or all of them.
    Refresh {
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        connection: Option<String>,
        #[arg(long)]
        all: bool,
        /// With --all: how many connections are refreshed at once.
        #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
        concurrency: u16,
    },
    /// IoT: revoke the session at the server, then forget it. FlowAccount / FedEx: disconnect.
    Logout { connection: String },
    /// Show what happened to a connection (or everything, including rejected callbacks).
    History {
        connection: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Run the built-in provider emulator: FlowAccount, FedEx and IoT on one loopback port.
    Sandbox(sandbox::SandboxArgs),
    /// Team mode: this desktop's membership of a team on PostgreSQL (init, join, status, leave, rotate-key, import, sql).
    #[command(subcommand)]
    Team(team::TeamCommand),
    /// The always-on refresher: the scheduler without a window, until SIGTERM or Ctrl-C
    /// (`agent status`: whether one runs for this data directory).
    Agent(agent::AgentArgs),
    /// Start over after the data directory was lost (deleted, or its database emptied):
    /// delete the secrets the lost store left in the keyring. Refused for a working store.
    Reset {
        /// Really delete them (without it: say how many would go).
        #[arg(long)]
        yes: bool,
    },
}

fn main() -> ExitCode {
    if let Err(e) = authdeck_core::process::harden() {
        errln!("authdeckctl: could not keep secrets out of core dumps: {e}");
        return ExitCode::from(1);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    init_logging();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            errln!("authdeckctl: could not start: {e}");
            return ExitCode::from(1);
        }
    };
    let json = cli.json;
    let code = match runtime.block_on(run_until_signal(cli)) {
        Ok(code) => code,
        Err(e) => {
            report(&e, json);
            ExitCode::from(exit_code(&e))
        }
    };
    // Whatever is still running is safe to drop: every answer is committed (or the stop
    // gave up waiting and said so).
    runtime.shutdown_timeout(Duration::from_secs(1));
    code
}

/// Run the command; on SIGINT, SIGTERM or SIGHUP start no new provider call, let the
/// calls in flight finish and commit (at most the manager's grace), then exit 130, 143
/// or 129. Further signals say what is being waited for; none drops an answer.
async fn run_until_signal(cli: Cli) -> Result<ExitCode> {
    if let Command::Agent(args) = cli.command {
        return agent::run(args, cli.data_dir, cli.json).await;
    }
    if matches!(cli.command, Command::Sandbox(_)) {
        // The emulator stops on Ctrl-C by itself.
        return run(cli, Shutdown::new()).await;
    }
    if matches!(cli.command, Command::Team(_)) {
        // No provider call to wait for; team.rs holds signals off while a new key is shown.
        return run(cli, Shutdown::new()).await;
    }
    if matches!(
        cli.command,
        Command::Exec(_) | Command::Device(DeviceCommand::Env { .. })
    ) {
        // Signals go to the child once it runs.
        return tokens::run_child(cli).await;
    }
    let json = cli.json;
    let noun = match cli.command {
        Command::Refresh { .. } | Command::Token { .. } => ("refresh", "refreshes"),
        _ => ("request", "requests"),
    };
    let shutdown = Shutdown::new();
    let mut signals = signals::Signals::new()?;
    let grace =
        Shutdown::grace(authdeck_core::providers::http::HttpSettings::default().request_timeout);
    let work = run(cli, shutdown.clone());
    tokio::pin!(work);
    let signal = tokio::select! {
        result = &mut work => return result,
        signal = signals.next() => signal,
    };
    shutdown.begin();
    let count = |n: usize| format!("{n} {}", if n == 1 { noun.0 } else { noun.1 });
    let waiting = shutdown.in_flight();
    if waiting > 0 {
        errln!(
            "authdeckctl: {} received: starting nothing new; waiting for {} in flight to finish saving (at most {} s).",
            signal.name(),
            count(waiting),
            grace.as_secs()
        );
    }
    let deadline = tokio::time::Instant::now() + grace;
    let mut outcome = None;
    loop {
        tokio::select! {
            _ = shutdown.idle() => break,
            result = &mut work, if outcome.is_none() => outcome = Some(result),
            again = signals.next() => {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                errln!(
                    "authdeckctl: {} again: waiting for {} to finish saving (at most {} s more); stopping now would lose their new tokens.",
                    again.name(),
                    count(shutdown.in_flight()),
                    left.as_secs().max(1)
                );
            }
            _ = tokio::time::sleep_until(deadline) => {
                errln!(
                    "authdeckctl: gave up waiting after {} s for {}: their provider did not answer in time.",
                    grace.as_secs(),
                    count(shutdown.in_flight())
                );
                break;
            }
        }
    }
    if let Some(Err(e)) = &outcome {
        report(e, json);
    }
    Ok(ExitCode::from(signal.exit_code()))
}

/// Logs go to stderr, off unless `AUTHDECK_LOG` sets a filter (e.g. `info`, `authdeck_core=debug`).
fn init_logging() {
    let Ok(filter) = std::env::var("AUTHDECK_LOG") else {
        return;
    };
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}

fn exit_code(e: &Error) -> u8 {
    match e.code {
        ErrorCode::ReauthorizationRequired => EXIT_REAUTHORIZE,
        ErrorCode::InvalidInput => EXIT_USAGE,
        _ => 1,
    }
}

fn report(e: &Error, json: bool) {
    if json {
        errln!("{}", serde_json::to_string(e).unwrap_or_default());
    } else {
        match &e.detail {
            Some(d) => errln!("authdeckctl: {} [{}: {d}]", e.message, e.code),
            None => errln!("authdeckctl: {} [{}]", e.message, e.code),
        }
    }
}

async fn run(cli: Cli, shutdown: Shutdown) -> Result<ExitCode> {
    let json = cli.json;
    if let Command::Sandbox(args @ SandboxArgs { action: None, .. }) = cli.command {
        return sandbox::sandbox(args, cli.data_dir).await;
    }
    if let Command::Reset { yes } = cli.command {
        return reset::reset(cli.data_dir, yes).await;
    }
    if let Command::Team(command) = cli.command {
        return team::run(command, cli.data_dir, json).await;
    }
    let concurrency = match &cli.command {
        Command::Refresh { concurrency, .. } => usize::from(*concurrency),
        _ => ManagerOptions::default().refresh_concurrency,
    };
    let manager = commands::open_manager(cli.data_dir, concurrency, shutdown).await?;
    let mut secrets = SecretInput::new();
    match cli.command {
        Command::Client(command) => clients::run(&manager, command, &mut secrets, json).await,
        Command::Connect(command) => {
            connections::connect(&manager, command, &mut secrets, json).await
        }
        Command::Callback { url } => connections::callback(&manager, url, json).await,
        Command::List { csv } => connections::list(&manager, csv, json).await,
        Command::Status { connection } => connections::status(&manager, connection, json).await,
        Command::Check { connection } => connections::check(&manager, connection, json).await,
        Command::Label {
            connection,
            name,
            clear,
        } => connections::label(&manager, connection, name, clear, json).await,
        Command::Token {
            connection,
            min_validity,
        } => tokens::token(&manager, connection, min_validity, json).await,
        Command::Device(command) => devices::device(&manager, command, &mut secrets, json).await,
        Command::Exec(_) => unreachable!("handled by run_child"),
        Command::Refresh {
            connection: Some(connection),
            ..
        } => connections::refresh(&manager, connection, json).await,
        Command::Refresh {
            connection: None, ..
        } => connections::refresh_all(&manager, json).await,
        Command::Logout { connection } => connections::logout(&manager, connection, json).await,
        Command::History { connection, limit } => {
            history::history(&manager, connection, limit, json).await
        }
        Command::Sandbox(SandboxArgs {
            action: Some(SandboxAction::Leave),
            ..
        }) => sandbox::leave(&manager, json).await,
        Command::Sandbox(SandboxArgs { action: None, .. })
        | Command::Reset { .. }
        | Command::Team(_)
        | Command::Agent(_) => unreachable!("handled above"),
    }
}
