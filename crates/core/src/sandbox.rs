//! The demo clients that point at the built-in emulator (`authdeckctl sandbox`, the
//! app's "Try the sandbox"). The credentials are the emulator's published demo values,
//! not secrets of anyone's.

use crate::manager::NewClient;
use crate::model::Provider;
use crate::secret::ClientSecret;

/// Where a running emulator serves each provider.
#[derive(Debug, Clone)]
pub struct SandboxEndpoints {
    pub flowaccount_authorize_url: String,
    pub flowaccount_token_url: String,
    pub fedex_token_url: String,
    pub iot_auth_url: String,
}

/// The loopback redirect the emulator's demo FlowAccount client also accepts.
pub const DEMO_LOOPBACK_REDIRECT: &str = "http://127.0.0.1:53682/callback";

/// Demo app registrations: a FlowAccount client redirecting to the app's scheme, one
/// redirecting to a loopback port (for the CLI alone), a FedEx project, an IoT client.
pub fn demo_clients(e: &SandboxEndpoints) -> Vec<NewClient> {
    let mut fa = NewClient::new(
        "sandbox-flowaccount",
        Provider::FlowAccount,
        "demo-flowaccount",
    );
    fa.client_secret = Some(ClientSecret::new("demo-flowaccount-secret"));
    fa.authorize_url = Some(e.flowaccount_authorize_url.clone());
    fa.token_url = Some(e.flowaccount_token_url.clone());
    let mut fa_loopback = fa.clone();
    fa_loopback.name = "sandbox-flowaccount-loopback".into();
    fa_loopback.redirect_uri = Some(DEMO_LOOPBACK_REDIRECT.into());
    let mut fedex = NewClient::new("sandbox-fedex", Provider::Fedex, "demo-fedex-key");
    fedex.client_secret = Some(ClientSecret::new("demo-fedex-secret"));
    fedex.token_url = Some(e.fedex_token_url.clone());
    let mut iot = NewClient::new("sandbox-iot", Provider::Iot, "demo-iot-client");
    iot.auth_url = Some(e.iot_auth_url.clone());
    vec![fa, fa_loopback, fedex, iot]
}
