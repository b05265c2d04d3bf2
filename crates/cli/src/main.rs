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
mod input;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use authdeck_core::loopback;
use authdeck_core::manager::{LogoutOutcome, Manager, ManagerOptions, NewClient, NewDevice};
use authdeck_core::model::{Environment, FedexGrant, IotBasicAuth, IotBodyEncoding, Provider};
use authdeck_core::sandbox::SandboxEndpoints;
use authdeck_core::shutdown::Shutdown;
use authdeck_core::store::db::Db;
use authdeck_core::store::keyring::KeyringStore;
use authdeck_core::store::paths::Paths;
use authdeck_core::{DeviceSecret, DeviceToken, Error, ErrorCode, Result};
use clap::{Args, Parser, Subcommand};

use crate::input::SecretInput;
use crate::output::ConnectionView;

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
    Client(ClientCommand),
    /// Connect a FlowAccount business, a FedEx project or an IoT-platform account.
    #[command(subcommand)]
    Connect(ConnectCommand),
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
    Exec(ExecArgs),
    /// IoT devices: their Client ID here, their Token and Secret in the system keyring.
    #[command(subcommand)]
    Device(DeviceCommand),
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
    Sandbox(SandboxArgs),
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

#[derive(Subcommand)]
enum ClientCommand {
    /// Register an app with a provider.
    Add(ClientAdd),
    /// List registered clients (secrets are never shown).
    List,
    /// Remove a client that has no connections left.
    Remove { name: String },
}

#[derive(Args)]
struct ClientAdd {
    provider: Provider,
    #[arg(long)]
    name: String,
    #[arg(long = "env", value_enum)]
    environment: Option<Environment>,
    #[arg(long)]
    client_id: String,
    /// Read the client secret from the first line of stdin (else $AUTHDECK_CLIENT_SECRET).
    #[arg(long)]
    client_secret_stdin: bool,
    /// FlowAccount: authorize endpoint (overrides the environment's preset).
    #[arg(long)]
    authorize_url: Option<String>,
    /// FlowAccount / FedEx: token endpoint (overrides the environment's preset).
    #[arg(long)]
    token_url: Option<String>,
    /// IoT platform: the deployment's auth_url (token = {auth_url}/oauth/token).
    #[arg(long)]
    auth_url: Option<String>,
    /// FlowAccount: the API base ({api}/company/info; default: the environment's,
    /// or the token URL without its /token).
    #[arg(long)]
    api_url: Option<String>,
    /// IoT platform: the device API's base (default in production: NETPIE's
    /// https://api.netpie.io/v2/device), used to check devices.
    #[arg(long)]
    device_api_url: Option<String>,
    /// FlowAccount: the redirect URI registered with FlowAccount (default com.authdeck.desktop:/oauth/callback).
    #[arg(long)]
    redirect_uri: Option<String>,
    /// FlowAccount: do not send a PKCE S256 challenge (PKCE is on by default; it stops an
    /// injected authorization code from connecting someone else's business).
    #[arg(long)]
    no_pkce: bool,
    /// FlowAccount: send a PKCE S256 challenge (the default; kept for old scripts).
    #[arg(long, hide = true, conflicts_with = "no_pkce")]
    pkce: bool,
    /// IoT platform: how the Basic header carries the client id.
    #[arg(long, value_enum, default_value = "raw")]
    iot_basic: IotBasicAuth,
    /// IoT platform: token request body encoding.
    #[arg(long, value_enum, default_value = "form")]
    iot_body: IotBodyEncoding,
}

#[derive(Subcommand)]
enum ConnectCommand {
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

#[derive(Args)]
struct ExecArgs {
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

#[derive(Subcommand)]
enum DeviceCommand {
    /// Keep a device: its Client ID, and its Token (first stdin line) and optional
    /// Secret (second line) in the keyring.
    Add {
        name: String,
        /// The IoT client the device belongs to.
        #[arg(long)]
        client: String,
        /// The IoT connection (account) that owns the device.
        #[arg(long = "connection", value_name = "CONN")]
        connection: Option<String>,
        /// The device's Client ID (its Device ID in the portal).
        #[arg(long)]
        device_id: String,
        /// Read the device token from the first line of stdin.
        #[arg(long, required = true)]
        token_stdin: bool,
        /// Read the device secret (the MQTT password) from the next line of stdin.
        #[arg(long)]
        secret_stdin: bool,
    },
    /// List the devices (never their token or secret).
    List,
    /// Show a device, its last check and its history (never its token or secret).
    Show { device: String },
    /// Check a device now: read its own shadow with its credentials (read-only).
    Check { device: String },
    /// Remove a device and its keyring entries.
    Remove { device: String },
    /// Run a command with the device's credentials in its environment:
    /// AUTHDECK_DEVICE_ID, AUTHDECK_DEVICE_TOKEN, AUTHDECK_DEVICE_SECRET,
    /// AUTHDECK_DEVICE_AUTHORIZATION (the REST header value), AUTHDECK_DEVICE_API_URL.
    Env {
        device: String,
        /// The command and its arguments, after --.
        #[arg(last = true, required = true, value_name = "CMD")]
        command: Vec<std::ffi::OsString>,
    },
}

/// Without a subcommand: run the sandbox until Ctrl-C. The sandbox clients already
/// stored are pointed at it (whatever port it got).
#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
struct SandboxArgs {
    #[command(subcommand)]
    action: Option<SandboxAction>,
    /// Port on 127.0.0.1 (default 0: a free port, new on every start).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Also register the demo clients (sandbox-flowaccount, sandbox-fedex, sandbox-iot) that are not there yet.
    #[arg(long)]
    add_clients: bool,
    /// Latency added to every provider response, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
}

#[derive(Subcommand)]
enum SandboxAction {
    /// Leave the sandbox: log out and remove every sandbox connection and client, with
    /// their keyring entries. Other clients and connections are not touched.
    Leave,
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
    if matches!(
        cli.command,
        Command::Exec(_) | Command::Device(DeviceCommand::Env { .. })
    ) {
        // Signals go to the child once it runs.
        return run_child(cli).await;
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

mod signals {
    //! The three signals that ask a process to stop, as one stream.
    use authdeck_core::{Error, Result};
    use tokio::signal::unix::{signal, Signal, SignalKind};

    #[derive(Clone, Copy)]
    pub enum Stop {
        Interrupt,
        Terminate,
        Hangup,
    }

    impl Stop {
        pub fn name(self) -> &'static str {
            match self {
                Stop::Interrupt => "SIGINT",
                Stop::Terminate => "SIGTERM",
                Stop::Hangup => "SIGHUP",
            }
        }

        pub fn number(self) -> i32 {
            match self {
                Stop::Interrupt => libc::SIGINT,
                Stop::Terminate => libc::SIGTERM,
                Stop::Hangup => libc::SIGHUP,
            }
        }

        /// 128 + the signal number, as a shell reports a process killed by it.
        pub fn exit_code(self) -> u8 {
            match self {
                Stop::Interrupt => 130,
                Stop::Terminate => 143,
                Stop::Hangup => 129,
            }
        }
    }

    pub struct Signals {
        interrupt: Signal,
        terminate: Signal,
        hangup: Signal,
    }

    impl Signals {
        /// Installed before any work starts, so no signal finds the default handler.
        pub fn new() -> Result<Self> {
            let install = |kind: SignalKind| {
                signal(kind).map_err(|e| {
                    Error::internal("Could not install a signal handler.")
                        .with_detail(e.to_string())
                })
            };
            Ok(Self {
                interrupt: install(SignalKind::interrupt())?,
                terminate: install(SignalKind::terminate())?,
                hangup: install(SignalKind::hangup())?,
            })
        }

        pub async fn next(&mut self) -> Stop {
            tokio::select! {
                _ = self.interrupt.recv() => Stop::Interrupt,
                _ = self.terminate.recv() => Stop::Terminate,
                _ = self.hangup.recv() => Stop::Hangup,
            }
        }
    }
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

fn print_json<T: serde::Serialize>(value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Error::internal("Could not encode JSON output.").with_detail(e.to_string()))?;
    outln!("{text}");
    Ok(())
}

/// Open the store: the data directory, the database (checked to be the store the keyring
/// belongs to, see `vault::check_store`) and the keyring.
async fn open_manager(
    data_dir: Option<PathBuf>,
    refresh_concurrency: usize,
    shutdown: Shutdown,
) -> Result<Manager> {
    let options = ManagerOptions {
        refresh_concurrency,
        shutdown,
        ..ManagerOptions::default()
    };
    Manager::open_async(Paths::resolve(data_dir)?, options).await
}

async fn run(cli: Cli, shutdown: Shutdown) -> Result<ExitCode> {
    let json = cli.json;
    if let Command::Sandbox(args @ SandboxArgs { action: None, .. }) = cli.command {
        return sandbox(args, cli.data_dir).await;
    }
    if let Command::Reset { yes } = cli.command {
        return reset(cli.data_dir, yes).await;
    }
    let concurrency = match &cli.command {
        Command::Refresh { concurrency, .. } => usize::from(*concurrency),
        _ => ManagerOptions::default().refresh_concurrency,
    };
    let manager = open_manager(cli.data_dir, concurrency, shutdown).await?;
    let now = || manager.now();
    let mut secrets = SecretInput::new();
    match cli.command {
        Command::Client(ClientCommand::Add(a)) => {
            let provider = a.provider;
            let mut new = NewClient::new(a.name, provider, a.client_id);
            new.environment = a.environment;
            new.client_secret = secrets.read(
                "client secret",
                a.client_secret_stdin,
                "AUTHDECK_CLIENT_SECRET",
            )?;
            new.authorize_url = a.authorize_url;
            new.token_url = a.token_url;
            new.auth_url = a.auth_url;
            new.api_url = a.api_url;
            new.device_api_url = a.device_api_url;
            new.redirect_uri = a.redirect_uri;
            if a.no_pkce {
                if provider != Provider::FlowAccount {
                    return Err(Error::invalid_input(
                        "--no-pkce applies to FlowAccount clients only.",
                    ));
                }
                new.pkce = false;
            }
            new.iot_basic_auth = a.iot_basic;
            new.iot_body = a.iot_body;
            let client = manager.add_client(new).await?;
            if json {
                print_json(&client)?;
            } else {
                outln!(
                    "Added {} client {:?} ({}).",
                    client.provider.display_name(),
                    client.name,
                    client.environment
                );
                if let Some(uri) = &client.options.redirect_uri {
                    outln!("Register this redirect URI with FlowAccount: {uri}");
                }
            }
        }
        Command::Client(ClientCommand::List) => {
            let clients = manager.clients().await?;
            if json {
                print_json(&clients)?;
            } else {
                output::clients_table(&clients);
            }
        }
        Command::Client(ClientCommand::Remove { name }) => {
            manager.remove_client(&name).await?;
            if !json {
                outln!("Removed client {name:?} and its secret.");
            }
        }
        Command::Connect(ConnectCommand::Flowaccount { client, no_browser }) => {
            return connect_flowaccount(&manager, &client, no_browser, json).await;
        }
        Command::Connect(ConnectCommand::Fedex {
            client,
            grant,
            child_key,
            child_secret_stdin,
            keep_fresh,
        }) => {
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
        Command::Connect(ConnectCommand::Iot {
            client,
            username,
            password_stdin,
        }) => {
            let password = secrets.require(
                "password",
                "--password-stdin",
                password_stdin,
                "AUTHDECK_PASSWORD",
            )?;
            let conn = manager.connect_iot(&client, &username, password).await?;
            connected(&conn, now(), json)?;
        }
        Command::Callback { url } => {
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
        }
        Command::List { csv } => {
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
        }
        Command::Status { connection } => {
            let conn = manager.connection(&connection).await?;
            if json {
                print_json(&ConnectionView::new(&conn, now()))?;
            } else {
                output::status(&conn, now());
            }
        }
        Command::Check { connection } => {
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
        }
        Command::Label {
            connection,
            name,
            clear,
        } => {
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
        }
        Command::Token {
            connection,
            min_validity,
        } => {
            let result = manager
                .access_token(&connection, Duration::from_secs(min_validity))
                .await;
            let result = match result {
                Err(e) if e.code == ErrorCode::KeyringUnavailable => {
                    keep_answers(&manager).await?;
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
        }
        Command::Device(command) => return device(&manager, command, &mut secrets, json).await,
        Command::Exec(_) => unreachable!("handled by run_child"),
        Command::Refresh {
            connection: Some(connection),
            ..
        } => {
            let conn = match manager.refresh(&connection).await {
                Err(e) if e.code == ErrorCode::KeyringUnavailable => {
                    // The provider may have answered: its tokens must not be dropped.
                    keep_answers(&manager).await?;
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
        }
        Command::Refresh {
            connection: None, ..
        } => return refresh_all(&manager, json).await,
        Command::Logout { connection } => {
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
        }
        Command::History { connection, limit } => {
            let entries = manager.history(connection.as_deref(), limit).await?;
            if json {
                print_json(&entries)?;
            } else {
                output::history(&entries);
            }
        }
        Command::Sandbox(SandboxArgs {
            action: Some(SandboxAction::Leave),
            ..
        }) => {
            let report = manager.leave_sandbox().await?;
            if json {
                print_json(&report)?;
            } else if report.connections.is_empty() && report.clients.is_empty() {
                outln!("There is nothing of the sandbox here.");
            } else {
                for label in &report.connections {
                    outln!("Removed sandbox connection {label}.");
                }
                for name in &report.clients {
                    outln!("Removed sandbox client {name}.");
                }
                outln!("Left the sandbox: its connections, clients and their keyring entries are gone; nothing else was touched.");
            }
        }
        Command::Sandbox(SandboxArgs { action: None, .. })
        | Command::Reset { .. }
        | Command::Agent(_) => {
            unreachable!("handled above")
        }
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

/// How long the CLI waits for a locked keyring to be unlocked before it gives up on
/// saving the tokens a provider already sent.
const KEYRING_WAIT: Duration = Duration::from_secs(120);

/// Save the answers a locked keyring refused, waiting for it to be unlocked (at most
/// [`KEYRING_WAIT`]); fails naming the connections whose new tokens are not saved.
async fn keep_answers(manager: &Manager) -> Result<()> {
    let mut wait = KEYRING_WAIT;
    // Debug builds only: the tests of a keyring that stays locked wait less.
    #[cfg(debug_assertions)]
    if let Some(s) = std::env::var("AUTHDECK_TEST_KEYRING_WAIT_S")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        wait = Duration::from_secs(s);
    }
    let at_risk = manager
        .save_unsaved(wait, |n| {
            errln!(
                "authdeckctl: Unlock your keyring to keep the refreshed tokens of {n} connection{}; waiting up to {} s…",
                if n == 1 { "" } else { "s" },
                wait.as_secs()
            )
        })
        .await;
    if at_risk.is_empty() {
        return Ok(());
    }
    let labels: Vec<&str> = at_risk.iter().map(|c| c.label.as_str()).collect();
    Err(Error::new(
        ErrorCode::KeyringUnavailable,
        format!(
            "The refreshed tokens of {} are not saved: the keyring stayed locked. They are kept (encrypted) in the journal: unlock the keyring and run `authdeckctl refresh --all` to save them before anything else uses these connections.",
            labels.join(", ")
        ),
    ))
}

async fn refresh_all(manager: &Manager, json: bool) -> Result<ExitCode> {
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

/// `reset`: the one command that opens a lost store (see `vault::reset_lost_store`).
async fn reset(data_dir: Option<PathBuf>, yes: bool) -> Result<ExitCode> {
    let paths = Paths::resolve(data_dir)?;
    paths.ensure()?;
    let secrets = KeyringStore::new(paths.keyring_service.clone());
    let path = paths.database();
    let report = tokio::task::spawn_blocking(move || {
        let db = Db::open(&path)?;
        authdeck_core::store::vault::reset_lost_store(&db, &secrets, !yes)
    })
    .await
    .map_err(|_| Error::internal("Resetting the store panicked."))??;
    let dir = paths.data_dir.display();
    if !yes {
        return Err(Error::invalid_input(format!(
            "This deletes the {} keyring entries the lost store of {dir} left behind; restoring a backup of the data directory later needs them. Run `authdeckctl reset --yes` to go ahead.",
            report.deleted
        )));
    }
    outln!(
        "Started over in {dir}: a new, empty store; {} keyring entries of the lost store deleted.",
        report.deleted
    );
    if report.kept > 0 {
        outln!(
            "{} other entries were kept: other data directories share the keyring service {}.",
            report.kept,
            paths.keyring_service
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn sandbox(args: SandboxArgs, data_dir: Option<PathBuf>) -> Result<ExitCode> {
    // Before the sandbox listens: a stop request always finds our handler.
    let mut stop = signals::Signals::new()?;
    let mut config = authdeck_emulator::EmulatorConfig::demo();
    config.latency = Duration::from_millis(args.latency_ms);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], args.port));
    let emulator = authdeck_core::sandbox::start(
        config,
        addr,
        "pick another --port (or leave it out for a free one).",
    )
    .await?;
    // The admin API's token is not printed: nothing a user does needs it.
    outln!("Authdeck sandbox listening on {}", emulator.base_url());
    outln!("{}", emulator.describe());
    let installed = match open_manager(
        data_dir,
        ManagerOptions::default().refresh_concurrency,
        Shutdown::new(),
    )
    .await
    {
        Ok(manager) => {
            manager
                .install_sandbox(&SandboxEndpoints::of(&emulator), args.add_clients)
                .await
        }
        Err(e) => Err(e),
    };
    match installed {
        Ok(report) => {
            for name in &report.added {
                outln!("Added client {name}.");
            }
            for name in &report.updated {
                outln!("Client {name} points at this sandbox.");
            }
            for name in &report.skipped {
                outln!("Client {name} is not the sandbox's (kept as it is).");
            }
        }
        // Without --add-clients the sandbox serves anyway: re-pointing is a courtesy.
        Err(e) if !args.add_clients => errln!(
            "authdeckctl: the sandbox clients could not be pointed here: {} [{}]",
            e.message,
            e.code
        ),
        Err(e) => {
            emulator.shutdown().await;
            return Err(e);
        }
    }
    outln!("Press Ctrl-C to stop.");
    use std::io::Write;
    let _ = std::io::stdout().flush();
    stop.next().await;
    emulator.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// `device add|list|show|check|remove`.
async fn device(
    manager: &Manager,
    command: DeviceCommand,
    secrets: &mut SecretInput,
    json: bool,
) -> Result<ExitCode> {
    match command {
        DeviceCommand::Add {
            name,
            client,
            connection,
            device_id,
            token_stdin,
            secret_stdin,
        } => {
            // stdin only: these long-lived credentials never come from argv or the
            // environment (`device env` puts them there for its child).
            let token: DeviceToken = secrets.require(
                "device token",
                "--token-stdin",
                token_stdin,
                "AUTHDECK_NO_DEVICE_TOKEN_FROM_ENV",
            )?;
            let secret: Option<DeviceSecret> = match secret_stdin {
                true => {
                    secrets.read("device secret", true, "AUTHDECK_NO_DEVICE_SECRET_FROM_ENV")?
                }
                false => None,
            };
            let device = manager
                .add_device(NewDevice {
                    name,
                    client,
                    connection,
                    device_id,
                    token,
                    secret,
                })
                .await?;
            if json {
                print_json(&device)?;
            } else {
                outln!(
                    "Added device {:?} (Client ID {}) under {}: its token{} in the system keyring. Check it with `authdeckctl device check {}`.",
                    device.name,
                    device.device_id,
                    device.client_name,
                    if device.has_secret { " and secret are" } else { " is" },
                    device.name
                );
            }
        }
        DeviceCommand::List => {
            let devices = manager.devices().await?;
            if json {
                print_json(&devices)?;
            } else {
                output::devices_table(&devices);
            }
        }
        DeviceCommand::Show { device } => {
            let device = manager.device(&device).await?;
            let history = manager.device_history(&device.id, 20).await?;
            let owner = match &device.connection_id {
                Some(id) => manager.connection(id).await.ok().map(|c| c.label),
                None => None,
            };
            if json {
                let mut value = serde_json::to_value(&device).map_err(|e| {
                    Error::internal("Could not encode JSON output.").with_detail(e.to_string())
                })?;
                value["account"] = serde_json::json!(owner);
                value["history"] = serde_json::to_value(&history).unwrap_or_default();
                print_json(&value)?;
            } else {
                output::device(&device, owner.as_deref(), &history);
            }
        }
        DeviceCommand::Check { device } => {
            let report = manager.check_device(&device).await?;
            if json {
                print_json(&report)?;
            } else {
                let fields = report
                    .device
                    .last_check
                    .as_ref()
                    .map(|c| c.shadow_fields.join(", "))
                    .unwrap_or_default();
                outln!(
                    "Device {} works: the platform accepted its Client ID and Token and returned its shadow{}.",
                    report.device.name,
                    if fields.is_empty() {
                        String::new()
                    } else {
                        format!(" ({fields})")
                    }
                );
            }
        }
        DeviceCommand::Remove { device } => {
            let device = manager.remove_device(&device).await?;
            if json {
                print_json(&serde_json::json!({"removed": device.id}))?;
            } else {
                outln!(
                    "Removed device {:?} and its keyring entries (its history is kept).",
                    device.name
                );
            }
        }
        DeviceCommand::Env { .. } => unreachable!("handled by run_child"),
    }
    Ok(ExitCode::SUCCESS)
}

/// `exec` and `device env`: gather the credentials (a stop signal meanwhile ends it as
/// any other command: what is in flight is saved first), then run the child with them,
/// forwarding signals to it.
async fn run_child(cli: Cli) -> Result<ExitCode> {
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
async fn fresh_token(
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

async fn exec_vars(manager: &Manager, args: &ExecArgs) -> Result<Vec<child::Var>> {
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

async fn device_vars(manager: &Manager, device: &str) -> Result<Vec<child::Var>> {
    let creds = manager.device_credentials(device).await?;
    let mut vars = vec![
        child::Var::set("AUTHDECK_DEVICE_ID", creds.device.device_id.clone()),
        child::Var::set("AUTHDECK_DEVICE_TOKEN", creds.token.expose()),
        child::Var::set(
            "AUTHDECK_DEVICE_AUTHORIZATION",
            creds.rest_authorization().expose(),
        ),
    ];
    vars.push(match &creds.secret {
        Some(secret) => child::Var::set("AUTHDECK_DEVICE_SECRET", secret.expose()),
        None => child::Var::unset("AUTHDECK_DEVICE_SECRET"),
    });
    vars.push(match &creds.api_url {
        Some(url) => child::Var::set("AUTHDECK_DEVICE_API_URL", url.as_str()),
        None => child::Var::unset("AUTHDECK_DEVICE_API_URL"),
    });
    Ok(vars)
}
