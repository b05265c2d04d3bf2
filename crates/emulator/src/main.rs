//! `authdeck-emulator`: the three stand-in auth servers as a standalone process.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use authdeck_emulator::{start, AdminToken, EmulatorConfig, ExpiresInFormat, Fault};
use clap::Parser;

/// Where the admin token may come from (never from argv: any local user can read it).
const ADMIN_TOKEN_ENV: &str = "AUTHDECK_EMULATOR_ADMIN_TOKEN";

/// Local FlowAccount, FedEx and IoT-platform auth servers on one loopback port.
///
/// The admin API (/admin/*) needs `Authorization: Bearer <token>`: the token is read
/// from $AUTHDECK_EMULATOR_ADMIN_TOKEN (at least 32 visible ASCII characters), or made
/// up at start and printed on the second line of stdout (`admin token <token>`).
#[derive(Parser)]
#[command(name = "authdeck-emulator", version, about, long_about)]
struct Args {
    /// Port on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Delay added before every provider response, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// A fault to arm, e.g. 503, fedex:500, flowaccount:429:retry=5, iot:reset, hang,
    /// malformed-json:times=1, html:502, no-access-token. Repeatable.
    #[arg(long = "fault", value_name = "SPEC")]
    faults: Vec<Fault>,
    /// The unit of the IoT platform's expires_in: epoch-ms, epoch-s or relative.
    #[arg(long, value_name = "FORMAT")]
    iot_expires_in: Option<ExpiresInFormat>,
    /// Don't revoke a FlowAccount grant when an old refresh token is presented again.
    #[arg(long)]
    no_reuse_detection: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let mut config = EmulatorConfig::demo();
    config.latency = Duration::from_millis(args.latency_ms);
    config.faults = args.faults;
    if let Some(format) = args.iot_expires_in {
        config.iot.expires_in_format = format;
    }
    config.flowaccount.reuse_detection = !args.no_reuse_detection;
    let token_from_env = match std::env::var(ADMIN_TOKEN_ENV) {
        Ok(value) => match AdminToken::new(value) {
            Ok(token) => Some(token),
            Err(message) => {
                eprintln!("authdeck-emulator: ${ADMIN_TOKEN_ENV}: {message}");
                return ExitCode::from(2);
            }
        },
        Err(std::env::VarError::NotPresent) => None,
        Err(std::env::VarError::NotUnicode(_)) => {
            eprintln!("authdeck-emulator: ${ADMIN_TOKEN_ENV} is not valid UTF-8");
            return ExitCode::from(2);
        }
    };
    let print_token = token_from_env.is_none();
    config.admin_token = token_from_env;

    let bind = SocketAddr::from((Ipv4Addr::LOCALHOST, args.port));
    let emulator = match start(config, bind).await {
        Ok(emulator) => emulator,
        Err(error) => {
            eprintln!("authdeck-emulator: cannot listen on {bind}: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!("listening on {}", emulator.base_url());
    // On stdout for whoever started us; never in a log. Not repeated when it came from
    // the environment: the caller has it already.
    if print_token {
        println!("admin token {}", emulator.admin_token());
    }
    println!("{}", emulator.describe());
    use std::io::Write;
    let _ = std::io::stdout().flush();

    wait_for_stop().await;
    emulator.shutdown().await;
    ExitCode::SUCCESS
}

async fn wait_for_stop() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
