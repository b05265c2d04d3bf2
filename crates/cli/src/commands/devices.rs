//! `device add|list|show|check|remove|env`: IoT devices.

use std::process::ExitCode;

use authdeck_core::manager::{Manager, NewDevice};
use authdeck_core::{DeviceSecret, DeviceToken, Error, Result};
use clap::Subcommand;

use super::print_json;
use crate::child;
use crate::input::SecretInput;
use crate::output;

#[derive(Subcommand)]
pub enum DeviceCommand {
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

/// `device add|list|show|check|remove`.
pub async fn device(
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

pub async fn device_vars(manager: &Manager, device: &str) -> Result<Vec<child::Var>> {
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
