//! The IPC commands for clients (app registrations). A client secret arrives from the
//! window once (the user typed it) and is never returned.

use authdeck_core::manager::NewClient;
use authdeck_core::model::{Client, Environment, IotBasicAuth, IotBodyEncoding, Provider};
use authdeck_core::{AnySecret, ClientSecret};
use serde::Deserialize;
use tauri::State;
use ts_rs::TS;

use crate::commands::{non_empty, CmdResult};
use crate::state::AppState;

#[derive(Debug, Deserialize, TS)]
pub struct NewClientInput {
    pub name: String,
    pub provider: Provider,
    pub environment: Option<Environment>,
    pub client_id: String,
    #[ts(type = "string | null")]
    pub client_secret: Option<ClientSecret>,
    pub authorize_url: Option<String>,
    pub token_url: Option<String>,
    pub auth_url: Option<String>,
    /// FlowAccount: the API base (`{it}/company/info`); absent: the environment's.
    #[serde(default)]
    #[ts(optional)]
    pub api_url: Option<String>,
    /// IoT platform: the device API's base (default: the environment's preset).
    #[serde(default)]
    #[ts(optional)]
    pub device_api_url: Option<String>,
    pub redirect_uri: Option<String>,
    pub pkce: bool,
    pub iot_basic_auth: IotBasicAuth,
    pub iot_body: IotBodyEncoding,
}

impl From<NewClientInput> for NewClient {
    /// Field for field, every one named on both sides (no `..`): a field added to
    /// either type does not compile here until it is handled. Blank text counts as not
    /// given; the window never makes a sandbox client.
    fn from(input: NewClientInput) -> Self {
        let NewClientInput {
            name,
            provider,
            environment,
            client_id,
            client_secret,
            authorize_url,
            token_url,
            auth_url,
            api_url,
            device_api_url,
            redirect_uri,
            pkce,
            iot_basic_auth,
            iot_body,
        } = input;
        NewClient {
            name,
            provider,
            environment,
            client_id,
            client_secret: non_empty_secret(client_secret),
            authorize_url: non_empty(authorize_url),
            token_url: non_empty(token_url),
            auth_url: non_empty(auth_url),
            api_url: non_empty(api_url),
            device_api_url: non_empty(device_api_url),
            redirect_uri: non_empty(redirect_uri),
            pkce,
            iot_basic_auth,
            iot_body,
            sandbox: false,
        }
    }
}

/// [`non_empty`] for a secret (a pasted client secret may carry a stray space).
fn non_empty_secret<T: AnySecret>(value: Option<T>) -> Option<T> {
    value
        .map(|v| T::new(v.expose().trim()))
        .filter(|v| !v.is_empty())
}

#[tauri::command]
pub async fn list_clients(state: State<'_, AppState>) -> CmdResult<Vec<Client>> {
    state.manager().clients().await
}

#[tauri::command]
pub async fn add_client(state: State<'_, AppState>, input: NewClientInput) -> CmdResult<Client> {
    state.manager().add_client(NewClient::from(input)).await
}

#[tauri::command]
pub async fn remove_client(state: State<'_, AppState>, name: String) -> CmdResult {
    state.manager().remove_client(&name).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_client_from_the_window_drops_blank_text_and_is_never_a_sandbox_client() {
        let input: NewClientInput = serde_json::from_value(serde_json::json!({
            "name": "Books", "provider": "flowaccount", "environment": "production",
            "client_id": "id-1", "client_secret": "  s3cret \t", "authorize_url": "  ",
            "token_url": " https://t.example/token ", "auth_url": null, "redirect_uri": "",
            "pkce": false, "iot_basic_auth": "raw", "iot_body": "form"
        }))
        .unwrap();
        let new = NewClient::from(input);
        assert_eq!(
            (new.name.as_str(), new.client_id.as_str()),
            ("Books", "id-1")
        );
        assert_eq!(new.provider, Provider::FlowAccount);
        assert_eq!(new.environment, Some(Environment::Production));
        assert_eq!(
            new.client_secret.as_ref().map(|s| s.expose()),
            Some("s3cret")
        );
        assert_eq!(new.token_url.as_deref(), Some("https://t.example/token"));
        assert_eq!(
            (new.authorize_url, new.auth_url, new.redirect_uri),
            (None, None, None)
        );
        assert!(!new.pkce, "the window's explicit opt-out is kept");
        assert!(!new.sandbox);
    }
}
