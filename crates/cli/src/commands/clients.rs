//! `client add|list|remove`: app registrations.

use std::process::ExitCode;

use authdeck_core::manager::{Manager, NewClient};
use authdeck_core::model::{Environment, IotBasicAuth, IotBodyEncoding, Provider};
use authdeck_core::{Error, Result};
use clap::{Args, Subcommand};

use super::print_json;
use crate::input::SecretInput;
use crate::output;

#[derive(Subcommand)]
pub enum ClientCommand {
    /// Register an app with a provider.
    Add(ClientAdd),
    /// List registered clients (secrets are never shown).
    List,
    /// Remove a client that has no connections left.
    Remove { name: String },
}

#[derive(Args)]
pub struct ClientAdd {
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

pub async fn run(
    manager: &Manager,
    command: ClientCommand,
    secrets: &mut SecretInput,
    json: bool,
) -> Result<ExitCode> {
    match command {
        ClientCommand::Add(a) => {
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
        ClientCommand::List => {
            let clients = manager.clients().await?;
            if json {
                print_json(&clients)?;
            } else {
                output::clients_table(&clients);
            }
        }
        ClientCommand::Remove { name } => {
            manager.remove_client(&name).await?;
            if !json {
                outln!("Removed client {name:?} and its secret.");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
