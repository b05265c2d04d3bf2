//! The one HTTP client every provider call goes through: rustls, timeouts, and never a
//! redirect (a token endpoint that redirects is misconfigured or hostile; following it
//! could post secrets elsewhere).
//!
//! Proxies: a remote endpoint goes through the system proxy (`HTTPS_PROXY`,
//! `http_proxy`, `ALL_PROXY`, with `NO_PROXY` respected, exactly as reqwest reads them);
//! a loopback endpoint (127.0.0.0/8, `[::1]`, `localhost`) never does. Its plain-http
//! body (a client secret, a password) would otherwise travel in clear to the proxy.
//! Plain `http` goes only to IP-literal loopback hosts ([`presets::validate_endpoint`]
//! refuses the rest when a client is added; [`FormPost::send`] checks again, for
//! clients stored before that rule).

use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use url::Url;

use crate::error::{Error, ErrorCode, Result};
use crate::model::Provider;
use crate::providers::error;
use crate::providers::json::{number_of, string_of};
use crate::providers::presets;
use crate::providers::redact::Redactor;
use crate::providers::Operation;
use crate::secret::{AccessToken, AnySecret, RefreshToken};

/// Error answers larger than this are cut before parsing (a gateway's HTML page, a
/// misconfigured URL pointing at a download): only an excerpt is ever kept anyway.
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Timeouts for provider calls.
#[derive(Debug, Clone, Copy)]
pub struct HttpSettings {
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// A cheap-to-clone handle on two connection pools (kept-alive connections are reused
/// across requests and clones): one for remote hosts, through the system proxy if one
/// is set, and one for loopback hosts, never proxied.
#[derive(Debug, Clone)]
pub struct HttpClient {
    settings: HttpSettings,
    /// Built on first use by [`HttpClient::lazy`]: setting up TLS (the root store, the
    /// crypto provider) costs ~6 ms, which `authdeckctl token` / `list` never need.
    remote: std::sync::Arc<std::sync::OnceLock<reqwest::Client>>,
    loopback: std::sync::Arc<std::sync::OnceLock<reqwest::Client>>,
}

impl HttpClient {
    /// Builds the clients now: set-up errors surface here.
    pub fn new(settings: HttpSettings) -> Result<Self> {
        let client = Self::lazy(settings);
        client.get(&client.remote, Route::Remote)?;
        client.get(&client.loopback, Route::Loopback)?;
        Ok(client)
    }

    /// Builds each client on its first request.
    pub fn lazy(settings: HttpSettings) -> Self {
        Self {
            settings,
            remote: Default::default(),
            loopback: Default::default(),
        }
    }

    /// The client for a request to `url`: never proxied when `url`'s host is loopback.
    pub fn reqwest_for(&self, url: &Url) -> Result<&reqwest::Client> {
        if is_loopback_destination(url) {
            self.get(&self.loopback, Route::Loopback)
        } else {
            self.get(&self.remote, Route::Remote)
        }
    }

    fn get<'a>(
        &self,
        cell: &'a std::sync::OnceLock<reqwest::Client>,
        route: Route,
    ) -> Result<&'a reqwest::Client> {
        if let Some(client) = cell.get() {
            return Ok(client);
        }
        let built = Self::build(self.settings, route)?;
        // A concurrent first use may have won; its client is as good as ours.
        Ok(cell.get_or_init(|| built))
    }

    fn build(settings: HttpSettings, route: Route) -> Result<reqwest::Client> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.request_timeout)
            .user_agent(concat!("Authdeck/", env!("CARGO_PKG_VERSION")));
        if route == Route::Loopback {
            // Without this, reqwest applies http_proxy / ALL_PROXY to 127.0.0.1 too.
            builder = builder.no_proxy();
        }
        builder.build().map_err(|e| {
            Error::new(ErrorCode::Internal, "The HTTP client could not be set up.")
                .with_detail(e.to_string())
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// The system proxy applies (reqwest's default: its proxy environment variables).
    Remote,
    /// Never proxied.
    Loopback,
}

/// Whether a request to `url` stays on this machine: an IP-literal loopback host, or
/// `localhost` / `*.localhost` (RFC 6761 §6.3: always the loopback interface).
pub fn is_loopback_destination(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
        Some(host) => presets::is_loopback_ip(&host),
        None => false,
    }
}

/// How a token request body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyEncoding {
    /// `application/x-www-form-urlencoded` (RFC 6749 §4).
    Form,
    /// `multipart/form-data` (an IoT platform setting).
    Multipart,
}

/// One POST to a provider endpoint: the fields of its form, and which of them are
/// secrets (redacted from any error detail built from the answer).
pub(crate) struct FormPost<'a> {
    pub provider: Provider,
    pub op: Operation,
    pub url: &'a Url,
    pub authorization: Option<String>,
    pub encoding: BodyEncoding,
    pub fields: Vec<(&'static str, &'a str)>,
    pub secrets: Vec<&'a dyn AnySecret>,
}

/// A 2xx answer: status and (capped) body.
pub(crate) struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl FormPost<'_> {
    /// Sends the form. Non-2xx answers and transport failures come back as [`Error`]s
    /// (see [`error`]); a 2xx comes back as is.
    pub(crate) async fn send(&self, http: &HttpClient) -> Result<Answer> {
        presets::check_plain_http(self.url)?;
        let started = Instant::now();
        let mut req = http.reqwest_for(self.url)?.post(self.url.clone());
        if let Some(auth) = &self.authorization {
            req = req.header(reqwest::header::AUTHORIZATION, auth);
        }
        req = match self.encoding {
            BodyEncoding::Form => req.form(&self.fields),
            BodyEncoding::Multipart => {
                let form = self
                    .fields
                    .iter()
                    .fold(reqwest::multipart::Form::new(), |f, (k, v)| {
                        f.text(*k, v.to_string())
                    });
                req.multipart(form)
            }
        };
        answer(self.provider, self.op, req, &self.secrets, started).await
    }

    /// Sends the form and parses a token answer: a JSON object with a non-empty
    /// `access_token`. A 2xx carrying an error (`{status: 401, error: …}`) is mapped as
    /// that error; any other unusable 2xx is `invalid_response`.
    pub(crate) async fn token(&self, http: &HttpClient) -> Result<TokenJson> {
        let answer = self.send(http).await?;
        parse_token(
            self.provider,
            self.op,
            answer.status,
            &answer.body,
            &self.secrets,
        )
    }
}

/// A 2xx token answer's body → its JSON object with a non-empty `access_token`. A 2xx
/// carrying an error (`{status: 401, error: …}`) is mapped as that error; any other
/// unusable body is `invalid_response`. Pure: the fuzz targets call it directly.
///
/// Every field but the two tokens is cleaned (see [`TokenJson::cleaned`]): what the
/// provider sent alongside them (scope, `supportCode`, `userinfo`) is stored and shown.
pub(crate) fn parse_token(
    provider: Provider,
    op: Operation,
    status: u16,
    body: &[u8],
    secrets: &[&dyn AnySecret],
) -> Result<TokenJson> {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let Some(Value::Object(map)) = parsed else {
        return Err(error::invalid_token_response(
            provider, status, body, secrets,
        ));
    };
    match map.get("access_token") {
        Some(Value::String(t)) if !t.trim().is_empty() => Ok(TokenJson::cleaned(map, secrets)),
        _ => {
            let value = Value::Object(map);
            match error::embedded_error_status(&value) {
                Some(embedded) => Err(error::from_response(
                    provider, op, embedded, None, body, secrets,
                )),
                None => Err(error::invalid_token_response(
                    provider, status, body, secrets,
                )),
            }
        }
    }
}

/// Sends `req` and reads its answer: a 2xx comes back as is; any other status and
/// transport failures come back as [`Error`]s (see [`error`]), with `secrets` redacted.
async fn answer(
    provider: Provider,
    op: Operation,
    req: reqwest::RequestBuilder,
    secrets: &[&dyn AnySecret],
    started: Instant,
) -> Result<Answer> {
    let outcome = async {
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = read_capped(resp).await?;
        Ok::<_, reqwest::Error>((status, retry_after, body))
    }
    .await;
    let elapsed_ms = started.elapsed().as_millis() as u64;
    let (status, retry_after, body) = match outcome {
        Ok(parts) => parts,
        Err(e) => {
            let e = e.without_url();
            tracing::debug!(provider = %provider, op = %op, elapsed_ms, kind = "transport", "provider call failed");
            return Err(error::from_transport(provider, &e));
        }
    };
    tracing::debug!(provider = %provider, op = %op, status, elapsed_ms, "provider call");
    if !(200..300).contains(&status) {
        return Err(error::from_response(
            provider,
            op,
            status,
            retry_after.as_deref(),
            &body,
            secrets,
        ));
    }
    Ok(Answer { status, body })
}

/// A `GET` of a provider's API with `Authorization: Bearer <access token>`: a 2xx
/// answer as is, anything else as an [`Error`] (the token redacted from it).
pub(crate) async fn get_with_bearer(
    http: &HttpClient,
    provider: Provider,
    op: Operation,
    url: &Url,
    token: &AccessToken,
) -> Result<Answer> {
    presets::check_plain_http(url)?;
    let started = Instant::now();
    let mut auth = reqwest::header::HeaderValue::from_str(&format!("Bearer {}", token.expose()))
        .map_err(|_| {
            Error::new(
                ErrorCode::InvalidResponse,
                "The stored access token cannot be sent in a header: refresh the connection.",
            )
        })?;
    auth.set_sensitive(true);
    let req = http
        .reqwest_for(url)?
        .get(url.clone())
        .header(reqwest::header::AUTHORIZATION, auth)
        .header(reqwest::header::ACCEPT, "application/json");
    answer(provider, op, req, &[token], started).await
}

pub(crate) async fn read_capped(mut resp: reqwest::Response) -> reqwest::Result<Vec<u8>> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        let room = MAX_BODY_BYTES.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= MAX_BODY_BYTES {
            break;
        }
    }
    Ok(body)
}

/// A token answer's JSON object, with lenient accessors (numbers may be strings,
/// unknown fields are ignored). Holds secrets: never log or format it.
pub(crate) struct TokenJson(Map<String, Value>);

/// The fields of a token answer kept as they came: the tokens themselves.
const RAW_FIELDS: [&str; 2] = ["access_token", "refresh_token"];

impl TokenJson {
    /// Every other field cleaned: the request's secrets and the issued tokens redacted
    /// wherever they are echoed, token-bearing fields blanked at any depth, terminal
    /// escapes and control characters removed.
    fn cleaned(map: Map<String, Value>, sent: &[&dyn AnySecret]) -> Self {
        let issued: Vec<String> = RAW_FIELDS
            .iter()
            .filter_map(|k| map.get(*k).and_then(Value::as_str))
            .map(str::to_owned)
            .collect();
        let redactor = Redactor::new(sent, issued);
        let map = map
            .into_iter()
            .map(|(k, v)| {
                if RAW_FIELDS.contains(&k.as_str()) {
                    (k, v)
                } else {
                    (redactor.clean(&k), redactor.clean_json(&v))
                }
            })
            .collect();
        Self(map)
    }

    #[cfg(test)]
    pub(crate) fn for_tests(map: Map<String, Value>) -> Self {
        Self(map)
    }

    pub(crate) fn access_token(&self) -> AccessToken {
        AccessToken::new(self.string("access_token").unwrap_or_default())
    }

    /// A non-empty `refresh_token`, if any.
    pub(crate) fn refresh_token(&self) -> Option<RefreshToken> {
        self.string("refresh_token").map(RefreshToken::new)
    }

    /// A non-empty string, or a number as text.
    pub(crate) fn string(&self, key: &str) -> Option<String> {
        string_of(self.0.get(key)?)
    }

    pub(crate) fn value(&self, key: &str) -> Option<&Value> {
        self.0.get(key).filter(|v| !v.is_null())
    }

    /// `expires_in` as relative seconds (FlowAccount, FedEx): a number or numeric string.
    pub(crate) fn relative_expiry(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Option<crate::model::Expiry> {
        let secs = number_of(self.value("expires_in")?)?;
        crate::model::Expiry::in_seconds(now, secs, crate::model::ExpirySource::RelativeSeconds)
    }
}

impl std::fmt::Debug for TokenJson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: Vec<&String> = self.0.keys().collect();
        f.debug_struct("TokenJson").field("keys", &keys).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Password;

    #[test]
    fn token_answers_are_cleaned_of_echoed_secrets_and_escapes() {
        let password = Password::new("CANARY-pass-e604");
        let body = serde_json::json!({
            "access_token": "at-CANARY-access-1",
            "refresh_token": "rt-CANARY-refresh-1",
            "token_type": "Bearer\u{1b}[2J",
            "scope": "read \u{1b}]2;pwned\u{7}write",
            "supportCode": "FA-1 rt-CANARY-refresh-1",
            "userinfo": {
                "username": "operator\u{202e}",
                "note": "your password is CANARY-pass-e604",
                "password": "CANARY-pass-e604",
                "nested": [{"access_token": "at-CANARY-access-1"}],
                "k\u{1b}[31m": 1,
            },
        })
        .to_string();
        let json = parse_token(
            Provider::Iot,
            Operation::PasswordLogin,
            200,
            body.as_bytes(),
            &[&password],
        )
        .unwrap();
        // The tokens themselves are untouched.
        assert_eq!(json.access_token().expose(), "at-CANARY-access-1");
        assert_eq!(
            json.refresh_token().unwrap().expose(),
            "rt-CANARY-refresh-1"
        );
        assert_eq!(json.string("token_type").as_deref(), Some("Bearer"));
        assert_eq!(json.string("scope").as_deref(), Some("read write"));
        assert_eq!(
            json.string("supportCode").as_deref(),
            Some("FA-1 [redacted]")
        );
        let userinfo = json.value("userinfo").unwrap().to_string();
        assert!(!userinfo.contains("CANARY"), "{userinfo}");
        assert!(!userinfo.contains('\u{1b}') && !userinfo.contains('\u{202e}'));
        assert_eq!(json.value("userinfo").unwrap()["username"], "operator");
        assert_eq!(json.value("userinfo").unwrap()["k"], 1);
    }

    #[test]
    fn jwt_claims_are_cleaned() {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine as _;
        let claims = URL_SAFE_NO_PAD.encode(r#"{"iss":"\u001b]2;x\u0007issuer","sub":"a\u009bb"}"#);
        let s = crate::providers::jwt::decode(&format!("e30.{claims}.sig")).unwrap();
        assert_eq!(s.claims["iss"], "issuer");
        assert_eq!(s.claims["sub"], "ab");
    }

    #[test]
    fn loopback_destinations() {
        for url in [
            "http://127.0.0.1:8080/t",
            "http://127.9.8.7/t",
            "http://[::1]:1/t",
            "http://[::ffff:127.0.0.1]/t",
            "https://localhost/t",
            "https://LOCALHOST./t",
            "https://a.localhost:9/t",
        ] {
            assert!(is_loopback_destination(&Url::parse(url).unwrap()), "{url}");
        }
        for url in [
            "https://example.com/t",
            "http://10.0.0.1/t",
            "https://localhost.example.com/t",
            "https://[2001:db8::1]/t",
            "http://0.0.0.0/t",
        ] {
            assert!(!is_loopback_destination(&Url::parse(url).unwrap()), "{url}");
        }
    }
}
