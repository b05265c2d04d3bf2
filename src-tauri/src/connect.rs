//! The IPC commands that make a connection: a FlowAccount authorization in the system
//! browser (and the authorize URLs this window started), a FedEx token request, an IoT
//! login.

use authdeck_core::manager::PendingAuthorization;
use authdeck_core::model::{Connection, FedexGrant};
use authdeck_core::{ChildSecret, Error, ErrorCode, Password};
use serde::{Deserialize, Serialize};
use tauri::{AppHandle, Manager as _, Runtime, State};
use ts_rs::TS;
use zeroize::Zeroizing;

use crate::commands::{non_empty, CallbackResult, CmdResult};
use crate::state::AppState;

#[derive(Debug, Deserialize, TS)]
pub struct FedexConnectInput {
    pub client: String,
    pub grant: FedexGrant,
    pub child_key: Option<String>,
    #[ts(type = "string | null")]
    pub child_secret: Option<ChildSecret>,
}

#[derive(Debug, Deserialize, TS)]
pub struct IotConnectInput {
    pub client: String,
    pub username: String,
    #[ts(type = "string")]
    pub password: Password,
}

/// A started FlowAccount authorization, and whether the system browser took its page
/// (when not, the window says so and shows the address to open by hand).
#[derive(Debug, Clone, Serialize, TS)]
pub struct FlowAccountStart {
    #[serde(flatten)]
    pub pending: PendingAuthorization,
    pub browser_opened: bool,
}

/// Start a FlowAccount authorization and open it in the system browser (never an
/// embedded web view: RFC 8252 §8.12). A client with a loopback redirect URI gets its
/// listener first (see `authdeck_core::loopback`); the redirect that reaches it is
/// reported like a deep link (a `redirect_finished` change).
#[tauri::command]
pub async fn connect_flowaccount<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    client: String,
) -> CmdResult<FlowAccountStart> {
    let notify = app.clone();
    let pending = state
        .loopback()
        .begin(state.manager(), &client, move |result| {
            loopback_finished(&notify, result)
        })
        .await?;
    remember_started(&app, &pending);
    // No browser is not fatal: the window shows the address to open by hand.
    let browser_opened = match open_in_browser(&app, &pending.authorize_url) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(code = %e.code, "the system browser could not be opened");
            false
        }
    };
    Ok(FlowAccountStart {
        pending,
        browser_opened,
    })
}

/// Give up a started authorization (the window's Cancel): its loopback listener stops
/// and its redirect, should it still come, is rejected. `false` if it had ended already.
#[tauri::command]
pub async fn cancel_flowaccount(state: State<'_, AppState>, id: String) -> CmdResult<bool> {
    state.loopback().cancel(state.manager(), &id).await
}

/// A loopback redirect completed (or failed) an authorization: tell the window, as for
/// a deep link, and bring it forward when a connection was made.
fn loopback_finished<R: Runtime>(app: &AppHandle<R>, result: authdeck_core::Result<Connection>) {
    let connected = result.is_ok();
    let result = CallbackResult::from(result);
    app.state::<AppState>()
        .changes()
        .push(crate::changes::ChangeEvent::RedirectFinished {
            result: Box::new(result),
        });
    if connected {
        if let Some(window) = app.get_webview_window("main") {
            let _ = window.unminimize();
            let _ = window.set_focus();
        }
    }
}

/// Open the authorize page of a pending authorization again (the user closed the tab).
/// The argument is the authorization's `id` (from `connect_flowaccount`); only the URL
/// of an authorization this window started and that is still pending is opened:
/// anything else is `invalid_input` and nothing is opened.
#[tauri::command]
pub async fn open_authorize_url<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    id: String,
) -> CmdResult {
    let refused = || {
        Error::invalid_input(
            "This is not an authorization this window started and that is still pending: start connecting again.",
        )
    };
    let url = started_authorizations(&app)
        .url_of(&id, state.manager().now())
        .ok_or_else(refused)?;
    if !state.manager().authorization_is_pending(&url).await? {
        return Err(refused());
    }
    open_in_browser(&app, &url)
}

/// One started authorization: its id, its URL (it carries the state), when it expires.
type Started = (String, Zeroizing<String>, chrono::DateTime<chrono::Utc>);

/// The authorize URLs `connect_flowaccount` started in this window, by authorization
/// id, until they expire.
#[derive(Default)]
pub struct StartedAuthorizations(std::sync::Mutex<Vec<Started>>);

impl StartedAuthorizations {
    pub fn add(&self, id: &str, url: &str, expires_at: chrono::DateTime<chrono::Utc>) {
        if let Ok(mut list) = self.0.lock() {
            list.push((id.to_owned(), Zeroizing::new(url.to_owned()), expires_at));
        }
    }

    /// The URL of authorization `id` (it carries the state: zeroized when dropped), if
    /// this window started it and it has not expired at `now`. Forgets expired ones.
    pub fn url_of(
        &self,
        id: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Option<Zeroizing<String>> {
        let mut list = self.0.lock().ok()?;
        list.retain(|(_, _, expires_at)| *expires_at > now);
        list.iter()
            .find(|(known, _, _)| known == id)
            .map(|(_, url, _)| url.clone())
    }
}

fn started_authorizations<R: Runtime>(app: &AppHandle<R>) -> State<'_, StartedAuthorizations> {
    app.manage(StartedAuthorizations::default()); // no-op once managed
    app.state::<StartedAuthorizations>()
}

/// Remember an authorization this window started, so `open_authorize_url` may open it.
pub fn remember_started<R: Runtime>(app: &AppHandle<R>, pending: &PendingAuthorization) {
    started_authorizations(app).add(&pending.id, &pending.authorize_url, pending.expires_at);
}

/// Opens one URL (or says why not).
pub type OpenUrl = dyn Fn(&str) -> Result<(), String> + Send + Sync;

/// Where URLs are opened, if managed (tests record them); else the system browser.
pub struct UrlOpener(pub Box<OpenUrl>);

fn open_in_browser<R: Runtime>(app: &AppHandle<R>, url: &str) -> CmdResult {
    let parsed = url::Url::parse(url).map_err(|_| Error::invalid_input("Not a URL."))?;
    if !matches!(parsed.scheme(), "https" | "http") {
        return Err(Error::invalid_input(
            "Only http(s) addresses are opened in the browser.",
        ));
    }
    // A managed opener (tests record URLs); else the opener plugin. Without either
    // (the IPC tests' mock app) nothing is opened.
    let opened = match app.try_state::<UrlOpener>() {
        Some(opener) => (opener.0)(url),
        None => match app.try_state::<tauri_plugin_opener::Opener<R>>() {
            Some(opener) => opener
                .open_url(url, None::<&str>)
                .map_err(|e| e.to_string()),
            None => Err("no system browser opener in this app".to_owned()),
        },
    };
    opened.map_err(|e| {
        Error::new(
            ErrorCode::Internal,
            "The system browser could not be opened: copy the address instead.",
        )
        .with_detail(e)
    })
}

/// Finish an authorization with a redirect URL pasted by the user.
#[tauri::command]
pub async fn complete_callback(state: State<'_, AppState>, url: String) -> CmdResult<Connection> {
    state.manager().complete_callback(&url).await
}

#[tauri::command]
pub async fn connect_fedex(
    state: State<'_, AppState>,
    input: FedexConnectInput,
) -> CmdResult<Connection> {
    let child = match (
        non_empty(input.child_key),
        input.child_secret.filter(|s| !s.is_empty()),
    ) {
        (Some(key), Some(secret)) => Some((key, secret)),
        (None, None) => None,
        _ => {
            return Err(Error::invalid_input(
                "Give both the child key and the child secret, or neither.",
            ))
        }
    };
    state
        .manager()
        .connect_fedex(&input.client, input.grant, child)
        .await
}

#[tauri::command]
pub async fn connect_iot(
    state: State<'_, AppState>,
    input: IotConnectInput,
) -> CmdResult<Connection> {
    let password = input.password;
    state
        .manager()
        .connect_iot(&input.client, &input.username, password)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn started_authorizations_are_found_by_id_until_they_expire() {
        let now = chrono::Utc::now();
        let started = StartedAuthorizations::default();
        let url = "https://auth.example/connect/authorize?client_id=a&state=s1";
        started.add("id-1", url, now + chrono::Duration::minutes(10));
        assert_eq!(started.url_of("id-1", now).unwrap().as_str(), url);
        for other in ["id-", "id-12", "", url] {
            assert!(started.url_of(other, now).is_none(), "{other}");
        }
        let later = now + chrono::Duration::minutes(10);
        assert!(started.url_of("id-1", later).is_none(), "expired");
        assert!(started.url_of("id-1", now).is_none(), "and forgotten");
    }
}
