//! The IPC commands for clients (app registrations). A client secret arrives from the
//! window once (the user typed it) and is never returned.

use authdeck_core::manager::NewClient;
use authdeck_core::model::Client;
use authdeck_core::AnySecret;
use serde::Deserialize;
use tauri::State;
use ts_rs::TS;

use crate::commands::{non_empty, CmdResult};
use crate::state::AppState;

/// A new client as the window sends it: a [`NewClient`]'s JSON (its secret an
/// `authdeck_core::ClientSecret` from the moment it is read; `sandbox` is never read),
/// cleaned by `NewClient::from` before it reaches the manager.
#[derive(Debug, Deserialize, TS)]
pub struct NewClientInput(pub NewClient);

impl std::ops::Deref for NewClientInput {
    type Target = NewClient;

    fn deref(&self) -> &NewClient {
        &self.0
    }
}

impl From<NewClientInput> for NewClient {
    /// Blank text counts as not given; the window never makes a sandbox client.
    fn from(NewClientInput(new): NewClientInput) -> Self {
        NewClient {
            client_secret: non_empty_secret(new.client_secret),
            authorize_url: non_empty(new.authorize_url),
            token_url: non_empty(new.token_url),
            auth_url: non_empty(new.auth_url),
            api_url: non_empty(new.api_url),
            device_api_url: non_empty(new.device_api_url),
            redirect_uri: non_empty(new.redirect_uri),
            sandbox: false,
            ..new
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
    use authdeck_core::model::{Environment, Provider};

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

    /// `sandbox` is not part of the IPC shape: a window that sends it anyway does not
    /// make a demo client (which "Leave the sandbox" would delete).
    #[test]
    fn a_new_client_from_the_window_cannot_claim_to_be_a_sandbox_client() {
        let input: NewClientInput = serde_json::from_value(serde_json::json!({
            "name": "Books", "provider": "fedex", "environment": null, "client_id": "id-1",
            "client_secret": null, "authorize_url": null, "token_url": null,
            "auth_url": null, "redirect_uri": null, "pkce": false,
            "iot_basic_auth": "raw", "iot_body": "form", "sandbox": true
        }))
        .unwrap();
        assert!(!input.sandbox);
        assert!(!NewClient::from(input).sandbox);
    }
}
