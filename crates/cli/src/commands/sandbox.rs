//! `sandbox` (run the built-in provider emulator) and `sandbox leave`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use authdeck_core::manager::{Manager, ManagerOptions};
use authdeck_core::sandbox::SandboxEndpoints;
use authdeck_core::shutdown::Shutdown;
use authdeck_core::Result;
use clap::{Args, Subcommand};

use super::{open_manager, print_json};
use crate::signals;

/// Without a subcommand: run the sandbox until Ctrl-C. The sandbox clients already
/// stored are pointed at it (whatever port it got).
#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SandboxArgs {
    #[command(subcommand)]
    pub action: Option<SandboxAction>,
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
pub enum SandboxAction {
    /// Leave the sandbox: log out and remove every sandbox connection and client, with
    /// their keyring entries. Other clients and connections are not touched.
    Leave,
}

pub async fn sandbox(args: SandboxArgs, data_dir: Option<PathBuf>) -> Result<ExitCode> {
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

/// `sandbox leave`.
pub async fn leave(manager: &Manager, json: bool) -> Result<ExitCode> {
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
    Ok(ExitCode::SUCCESS)
}
