//! The IoT platform's device API (PROVIDERS.md §3 item 5; NETPIE `device-api.rst`): a
//! device authenticates with `Authorization: Device <ClientID>:<Token>`; REST base
//! (NETPIE) `https://api.netpie.io/v2/device`. Authdeck only ever *reads*: `GET
//! {api}/shadow/data` without `alias` reads the device's own shadow, answered as
//! `{status, data}` — the check that the device's credentials work.

use std::time::Instant;

use serde_json::Value;
use url::Url;

use crate::error::{Error, ErrorCode, Result};
use crate::model::Provider;
use crate::providers::http::read_capped;
use crate::providers::redact::Redactor;
use crate::providers::{error, presets, HttpClient, Operation};
use crate::secret::{AnySecret, DeviceToken};

/// The REST header value of a device: `Device <ClientID>:<Token>`. Holds the token: it
/// goes only into the request, or to the user who asked for it (`device env`, copy).
pub fn authorization(device_id: &str, token: &DeviceToken) -> DeviceToken {
    DeviceToken::new(format!("Device {device_id}:{}", token.expose()))
}

/// The MQTT broker of the deployment whose device API is `api`: NETPIE's
/// (`mqtt.netpie.io`, 1883; 1884 with TLS) for `api.netpie.io`; `None` when unknown (a
/// private deployment, the sandbox, which has no broker).
pub fn mqtt_broker(api: Option<&Url>) -> Option<(&'static str, u16)> {
    let host = api?.host_str()?;
    host.eq_ignore_ascii_case("api.netpie.io").then_some((
        crate::model::NETPIE_MQTT_HOST,
        crate::model::NETPIE_MQTT_PORT,
    ))
}

/// `{api}/shadow/data`, a path prefix on `api` kept.
pub fn shadow_url(api: &Url) -> Url {
    let mut url = api.clone();
    let path = format!("{}/shadow/data", api.path().trim_end_matches('/'));
    url.set_path(&path);
    url.set_query(None);
    url.set_fragment(None);
    url
}

/// Reads the device's own shadow: its `data`, every string of it cleaned (the token
/// redacted wherever it is echoed, control characters and escapes removed). A non-2xx
/// answer, or a 2xx whose body carries an error `status`, is the [`Error`] it means (a
/// 401 is `invalid_credentials`); a 2xx without a `data` object is `invalid_response`.
pub async fn read_shadow(
    http: &HttpClient,
    api: &Url,
    device_id: &str,
    token: &DeviceToken,
) -> Result<Value> {
    let url = shadow_url(api);
    presets::check_plain_http(&url)?;
    let header = authorization(device_id, token);
    let secrets: [&dyn AnySecret; 2] = [token, &header];
    let started = Instant::now();
    let outcome = async {
        let resp = http
            .reqwest_for(&url)
            .map_err(Err)?
            .get(url.clone())
            .header(reqwest::header::AUTHORIZATION, header.expose())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(Ok)?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = read_capped(resp).await.map_err(Ok)?;
        Ok::<_, std::result::Result<reqwest::Error, Error>>((status, retry_after, body))
    }
    .await;
    let elapsed_ms = started.elapsed().as_millis() as u64;
    let (status, retry_after, body) = match outcome {
        Ok(parts) => parts,
        Err(Err(e)) => return Err(e),
        Err(Ok(e)) => {
            let e = e.without_url();
            tracing::debug!(
                op = "device_shadow",
                elapsed_ms,
                kind = "transport",
                "provider call failed"
            );
            return Err(error::from_transport(Provider::Iot, &e));
        }
    };
    tracing::debug!(op = "device_shadow", status, elapsed_ms, "provider call");
    parse_shadow(status, retry_after.as_deref(), &body, &secrets)
}

/// The answer of `GET /shadow/data` → its cleaned `data`, or the error it carries. Pure.
pub(crate) fn parse_shadow(
    status: u16,
    retry_after: Option<&str>,
    body: &[u8],
    secrets: &[&dyn AnySecret],
) -> Result<Value> {
    let fail = |status: u16| {
        error::from_response(
            Provider::Iot,
            Operation::DeviceShadow,
            status,
            retry_after,
            body,
            secrets,
        )
    };
    if !(200..300).contains(&status) {
        return Err(fail(status));
    }
    let json: Option<Value> = serde_json::from_slice(body).ok();
    if let Some(embedded) = json.as_ref().and_then(error::embedded_error_status) {
        return Err(fail(embedded));
    }
    match json.as_ref().and_then(|j| j.get("data")) {
        Some(data @ Value::Object(_)) => Ok(Redactor::new(secrets, Vec::new()).clean_json(data)),
        _ => Err(Error::new(
            ErrorCode::InvalidResponse,
            "The IoT platform's device API answered without the device's shadow data: check the client's device API URL.",
        )
        .with_detail(format!("HTTP {status}; no `data` object in the answer"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_and_the_url_follow_the_device_api() {
        let token = DeviceToken::new("tok");
        assert_eq!(authorization("abc-1", &token).expose(), "Device abc-1:tok");
        let api = Url::parse("https://api.netpie.io/v2/device").unwrap();
        assert_eq!(
            shadow_url(&api).as_str(),
            "https://api.netpie.io/v2/device/shadow/data"
        );
        let api = Url::parse("http://127.0.0.1:9/iot/v2/device/?x=1").unwrap();
        assert_eq!(
            shadow_url(&api).as_str(),
            "http://127.0.0.1:9/iot/v2/device/shadow/data"
        );
    }

    #[test]
    fn netpie_devices_get_netpies_broker_others_none() {
        let netpie = Url::parse("https://api.netpie.io/v2/device").unwrap();
        assert_eq!(mqtt_broker(Some(&netpie)), Some(("mqtt.netpie.io", 1883)));
        let other = Url::parse("http://127.0.0.1:9/iot/v2/device").unwrap();
        assert_eq!(mqtt_broker(Some(&other)), None);
        assert_eq!(mqtt_broker(None), None);
    }

    #[test]
    fn answers_become_data_or_a_clear_error_without_the_token() {
        let token = DeviceToken::new("canary-device-token");
        let header = authorization("dev", &token);
        let secrets: [&dyn AnySecret; 2] = [&token, &header];
        let data = parse_shadow(
            200,
            None,
            br#"{"status":200,"data":{"t":1,"echo":"canary-device-token","\u001b[31mred":"x"}}"#,
            &secrets,
        )
        .unwrap();
        assert_eq!(data["t"], 1);
        assert_eq!(data["echo"], "[redacted]");
        assert!(!data.to_string().contains('\u{1b}'));

        let e = parse_shadow(
            401,
            None,
            br#"{"status":401,"message":"bad token canary-device-token"}"#,
            &secrets,
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidCredentials);
        assert!(e.message.contains("Client ID or Token"), "{e:?}");
        let shown = format!("{} {:?}", e.message, e.detail);
        assert!(!shown.contains("canary-device-token"), "{shown}");

        let e = parse_shadow(200, None, br#"{"status":401,"message":"no"}"#, &secrets).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidCredentials);
        let e = parse_shadow(200, None, b"<html>portal</html>", &secrets).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidResponse);
        let e = parse_shadow(503, None, b"", &secrets).unwrap_err();
        assert_eq!(e.code, ErrorCode::ProviderUnavailable);
    }
}
