//! Known endpoints of each provider (PROVIDERS.md tables), and the rules a hand-entered
//! endpoint must follow.

use std::net::IpAddr;

use url::{Host, Url};

use crate::error::{Error, Result};
use crate::model::{Endpoints, Environment, Provider};

const FLOWACCOUNT_SANDBOX_AUTHORIZE: &str =
    "https://sandbox-auth.flowaccount.com/connect/authorize";
const FLOWACCOUNT_SANDBOX_TOKEN: &str = "https://openapi.flowaccount.com/test/token";
const FLOWACCOUNT_PRODUCTION_AUTHORIZE: &str = "https://auth.flowaccount.com/connect/authorize";
const FLOWACCOUNT_PRODUCTION_TOKEN: &str = "https://openapi.flowaccount.com/v1/token";
/// FlowAccount's API bases [src: the SDK's openapi.yaml `servers`].
const FLOWACCOUNT_SANDBOX_API: &str = "https://openapi.flowaccount.com/test";
const FLOWACCOUNT_PRODUCTION_API: &str = "https://openapi.flowaccount.com/v1";
const FEDEX_SANDBOX_TOKEN: &str = "https://apis-sandbox.fedex.com/oauth/token";
const FEDEX_PRODUCTION_TOKEN: &str = "https://apis.fedex.com/oauth/token";
/// The NETPIE deployment; other deployments are `Environment::Custom`.
const IOT_PRODUCTION_AUTH: &str = "https://authx.netpie.io";
/// NETPIE's device API (PROVIDERS.md §3 item 5).
const IOT_PRODUCTION_DEVICE_API: &str = "https://api.netpie.io/v2/device";

/// The preset device API base of the IoT platform in `env` (NETPIE in production).
pub fn device_api_url(provider: Provider, env: Environment) -> Option<Url> {
    match (provider, env) {
        (Provider::Iot, Environment::Production) => Some(preset(IOT_PRODUCTION_DEVICE_API)),
        _ => None,
    }
}

/// The preset endpoints of `provider` in `env`; `None` for `Custom` and for the IoT
/// platform's sandbox (there is no public one).
pub fn endpoints(provider: Provider, env: Environment) -> Option<Endpoints> {
    let (authorize, token) = match (provider, env) {
        (_, Environment::Custom) | (Provider::Iot, Environment::Sandbox) => return None,
        (Provider::Iot, Environment::Production) => {
            return Some(iot_endpoints(&preset(IOT_PRODUCTION_AUTH)))
        }
        (Provider::FlowAccount, Environment::Sandbox) => (
            Some(FLOWACCOUNT_SANDBOX_AUTHORIZE),
            FLOWACCOUNT_SANDBOX_TOKEN,
        ),
        (Provider::FlowAccount, Environment::Production) => (
            Some(FLOWACCOUNT_PRODUCTION_AUTHORIZE),
            FLOWACCOUNT_PRODUCTION_TOKEN,
        ),
        (Provider::Fedex, Environment::Sandbox) => (None, FEDEX_SANDBOX_TOKEN),
        (Provider::Fedex, Environment::Production) => (None, FEDEX_PRODUCTION_TOKEN),
    };
    Some(Endpoints {
        authorize_url: authorize.map(preset),
        token_url: preset(token),
        logout_url: None,
        api_base_url: match provider {
            Provider::FlowAccount => flowaccount_api_base(env, &preset(token)),
            _ => None,
        },
    })
}

/// FlowAccount's API base: the environment's preset (`/test` for the sandbox, `/v1` for
/// production); for custom endpoints the token URL without its last `/token` segment
/// (FlowAccount's token URL is `{api base}/token`), so the access token only ever goes
/// to the host that issued it. `None` when the token URL does not end in `/token`.
pub fn flowaccount_api_base(env: Environment, token_url: &Url) -> Option<Url> {
    match env {
        Environment::Sandbox => Some(preset(FLOWACCOUNT_SANDBOX_API)),
        Environment::Production => Some(preset(FLOWACCOUNT_PRODUCTION_API)),
        Environment::Custom => {
            let path = token_url.path().trim_end_matches('/');
            let base = path.strip_suffix("/token")?;
            let mut url = token_url.clone();
            url.set_path(base);
            url.set_query(None);
            url.set_fragment(None);
            Some(url)
        }
    }
}

/// `{api base}/{path}`, keeping the base's own path (`…/test` + `company/info`).
pub fn api_url(base: &Url, path: &str) -> Url {
    under(base, path)
}

/// The IoT platform's endpoints under one `auth_url` (PROVIDERS.md §3):
/// `{auth_url}/oauth/token` and `{auth_url}/user/logout`. A path prefix on `auth_url` is kept.
pub fn iot_endpoints(auth_url: &Url) -> Endpoints {
    Endpoints {
        authorize_url: None,
        token_url: under(auth_url, "oauth/token"),
        logout_url: Some(under(auth_url, "user/logout")),
        api_base_url: None,
    }
}

/// Checks a hand-entered endpoint: `https`, or `http` to an IP-literal loopback host only
/// (127.0.0.0/8 or `[::1]`: the local emulator; not `localhost`, a name that resolves
/// wherever the resolver says); no `user:password@` (credentials never go in URLs) and
/// no `#fragment`.
pub fn validate_endpoint(url: &str) -> Result<Url> {
    let text = url.trim();
    let parsed = Url::parse(text).map_err(|e| {
        Error::invalid_input(format!(
            "The endpoint is not a valid URL ({e}): enter a full address such as https://example.com/oauth/token."
        ))
    })?;
    let host = match parsed.host() {
        Some(h) => h,
        None => {
            return Err(Error::invalid_input(
                "The endpoint has no host: enter a full address such as https://example.com/oauth/token.",
            ))
        }
    };
    match parsed.scheme() {
        "https" => {}
        "http" => check_plain_http(&parsed)?,
        other => {
            return Err(Error::invalid_input(format!(
                "The endpoint uses {other}: provider endpoints must use https."
            )))
        }
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        // Do not echo the URL back: it holds credentials.
        return Err(Error::invalid_input(
            "The endpoint URL contains a user name or password: remove the part before '@'.",
        ));
    }
    if parsed.fragment().is_some() {
        return Err(Error::invalid_input(format!(
            "The endpoint on {host} has a #fragment: remove it."
        )));
    }
    Ok(parsed)
}

/// Plain `http` only to an IP-literal loopback host: the rule above, also checked before
/// every request (a client stored before the rule may still name `http://localhost`).
pub(crate) fn check_plain_http(url: &Url) -> Result<()> {
    if url.scheme() != "http" || url.host().is_some_and(|h| is_loopback_ip(&h)) {
        return Ok(());
    }
    let host = url.host_str().unwrap_or_default();
    let hint = if host.eq_ignore_ascii_case("localhost") {
        " (for a local server write 127.0.0.1 or [::1] instead of localhost)"
    } else {
        ""
    };
    Err(Error::invalid_input(format!(
        "The endpoint on {host} uses http: use https (plain http is allowed only for 127.0.0.0/8 and [::1]){hint}."
    )))
}

/// 127.0.0.0/8, `::1`, or `::ffff:127.x.y.z`; never a name.
pub(crate) fn is_loopback_ip(host: &Host<&str>) -> bool {
    match host {
        Host::Ipv4(ip) => IpAddr::V4(*ip).is_loopback(),
        Host::Ipv6(ip) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Host::Domain(_) => false,
    }
}

fn under(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    let joined = format!("{}/{path}", base.path().trim_end_matches('/'));
    url.set_path(&joined);
    url.set_query(None);
    url.set_fragment(None);
    url
}

fn preset(s: &str) -> Url {
    // The presets above are constants covered by a test; a parse failure is a typo there.
    Url::parse(s).unwrap_or_else(|e| panic!("preset URL {s} does not parse: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn presets_match_providers_md() {
        let fa = endpoints(Provider::FlowAccount, Environment::Sandbox).unwrap();
        assert_eq!(
            fa.authorize_url.unwrap().as_str(),
            "https://sandbox-auth.flowaccount.com/connect/authorize"
        );
        assert_eq!(
            fa.token_url.as_str(),
            "https://openapi.flowaccount.com/test/token"
        );
        let fa = endpoints(Provider::FlowAccount, Environment::Production).unwrap();
        assert_eq!(
            fa.authorize_url.unwrap().as_str(),
            "https://auth.flowaccount.com/connect/authorize"
        );
        assert_eq!(
            fa.token_url.as_str(),
            "https://openapi.flowaccount.com/v1/token"
        );
        let fx = endpoints(Provider::Fedex, Environment::Sandbox).unwrap();
        assert_eq!(
            fx.token_url.as_str(),
            "https://apis-sandbox.fedex.com/oauth/token"
        );
        assert_eq!(fx.authorize_url, None);
        let fx = endpoints(Provider::Fedex, Environment::Production).unwrap();
        assert_eq!(fx.token_url.as_str(), "https://apis.fedex.com/oauth/token");
        let iot = endpoints(Provider::Iot, Environment::Production).unwrap();
        assert_eq!(
            iot.token_url.as_str(),
            "https://authx.netpie.io/oauth/token"
        );
        assert_eq!(
            iot.logout_url.unwrap().as_str(),
            "https://authx.netpie.io/user/logout"
        );
        assert!(endpoints(Provider::Iot, Environment::Sandbox).is_none());
        assert_eq!(
            device_api_url(Provider::Iot, Environment::Production)
                .unwrap()
                .as_str(),
            "https://api.netpie.io/v2/device"
        );
        assert!(device_api_url(Provider::Iot, Environment::Custom).is_none());
        assert!(device_api_url(Provider::Fedex, Environment::Production).is_none());
        for p in Provider::ALL {
            assert!(endpoints(p, Environment::Custom).is_none());
        }
    }

    #[test]
    fn flowaccount_api_bases_per_environment_and_from_a_custom_token_url() {
        let token = Url::parse("http://127.0.0.1:9/flowaccount/test/token").unwrap();
        assert_eq!(
            flowaccount_api_base(Environment::Sandbox, &token)
                .unwrap()
                .as_str(),
            "https://openapi.flowaccount.com/test"
        );
        assert_eq!(
            flowaccount_api_base(Environment::Production, &token)
                .unwrap()
                .as_str(),
            "https://openapi.flowaccount.com/v1"
        );
        let custom = flowaccount_api_base(Environment::Custom, &token).unwrap();
        assert_eq!(custom.as_str(), "http://127.0.0.1:9/flowaccount/test");
        assert_eq!(
            api_url(&custom, "company/info").as_str(),
            "http://127.0.0.1:9/flowaccount/test/company/info"
        );
        let odd = Url::parse("https://fa.example/oauth2/issue?x=1").unwrap();
        assert_eq!(flowaccount_api_base(Environment::Custom, &odd), None);
        let fa = endpoints(Provider::FlowAccount, Environment::Production).unwrap();
        assert_eq!(
            fa.api_base_url.unwrap().as_str(),
            "https://openapi.flowaccount.com/v1"
        );
        let fx = endpoints(Provider::Fedex, Environment::Production).unwrap();
        assert_eq!(fx.api_base_url, None);
    }

    #[test]
    fn iot_endpoints_keep_a_path_prefix() {
        let e = iot_endpoints(&Url::parse("http://127.0.0.1:8080/iot/").unwrap());
        assert_eq!(
            e.token_url.as_str(),
            "http://127.0.0.1:8080/iot/oauth/token"
        );
        assert_eq!(
            e.logout_url.unwrap().as_str(),
            "http://127.0.0.1:8080/iot/user/logout"
        );
        let e = iot_endpoints(&Url::parse("https://auth.example.com").unwrap());
        assert_eq!(e.token_url.as_str(), "https://auth.example.com/oauth/token");
    }

    #[test]
    fn endpoint_validation() {
        for ok in [
            "https://apis.fedex.com/oauth/token",
            " https://example.com/t?x=1 ",
            "http://127.0.0.1:8080/token",
            "http://127.8.9.10/token",
            "http://[::1]:9000/token",
            "http://[::ffff:127.0.0.1]:9000/token",
            "https://localhost:3000/token",
        ] {
            assert!(validate_endpoint(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://example.com/token",
            "http://10.0.0.1/token",
            "http://localhost:3000/token",
            "http://LOCALHOST/token",
            "http://foo.localhost/token",
            "http://127.0.0.1.nip.io/token",
            "http://[::ffff:10.0.0.1]/token",
            "http://0.0.0.0/token",
            "http://localhost.evil.com/token",
            "ftp://example.com/token",
            "https://user:pw@example.com/token",
            "https://user@example.com/token",
            "https://example.com/token#frag",
            "example.com/token",
            "",
            "file:///etc/passwd",
        ] {
            let e = validate_endpoint(bad).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidInput, "{bad}");
            assert!(!e.message.is_empty());
        }
        let e = validate_endpoint("https://user:hunter2@example.com/").unwrap_err();
        assert!(!e.message.contains("hunter2"), "{}", e.message);
        // Messages name the host at most: a pasted URL may carry a secret in its query.
        let e = validate_endpoint("http://example.com/t?client_secret=hunter2").unwrap_err();
        assert!(!e.message.contains("hunter2"), "{}", e.message);
        assert!(e.message.contains("example.com"), "{}", e.message);
    }
}
