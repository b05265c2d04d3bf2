//! Pending authorizations and the callback URLs that complete them (RFC 6749 §4.1,
//! RFC 8252 §7 and §8.9, RFC 7636).
//!
//! A callback URL is untrusted input: it arrives as a process argument from whatever
//! launched us. Parsing is strict and side-effect free; the manager changes nothing
//! until the state has matched a pending authorization.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};
use url::Url;

use crate::error::{Error, ErrorCode, Result};
use crate::secret::{AnySecret, AuthorizationCode, OAuthState, PkceVerifier};

/// The desktop app's private-use URI scheme (RFC 8252 §7.1: reverse domain name).
pub const APP_SCHEME: &str = "com.authdeck.desktop";
/// The redirect URI to register with FlowAccount for the custom-scheme flow.
pub const APP_REDIRECT_URI: &str = "com.authdeck.desktop:/oauth/callback";
/// How long a started authorization waits for its callback.
pub const PENDING_LIFETIME: chrono::Duration = chrono::Duration::minutes(10);
/// Longer callback URLs are rejected unread.
pub const MAX_CALLBACK_LEN: usize = 4096;

/// 256 random bits from the OS CSPRNG, base64url: for `state` and the PKCE verifier.
pub fn random_token<T: AnySecret>() -> T {
    let mut bytes = [0u8; 32];
    // The OS CSPRNG failing is not something we can recover from or work around.
    getrandom::fill(&mut bytes).expect("the OS random number generator failed");
    T::new(URL_SAFE_NO_PAD.encode(bytes))
}

/// SHA-256, hex: how a state is looked up without storing it.
pub fn state_hash(state: &str) -> String {
    let digest = Sha256::digest(state.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// RFC 7636 S256: BASE64URL(SHA256(verifier)).
pub fn pkce_challenge(verifier: &PkceVerifier) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.expose().as_bytes()))
}

/// Is this a redirect URI Authdeck can receive? The app's own scheme, or a loopback
/// `http://127.0.0.1:PORT/…` (RFC 8252 §7.3; `localhost` is not accepted, §8.3).
pub fn validate_redirect_uri(uri: &str) -> Result<Url> {
    let url = Url::parse(uri)
        .map_err(|_| Error::invalid_input(format!("{uri:?} is not a valid redirect URI.")))?;
    if url.fragment().is_some() || url.query().is_some() {
        return Err(Error::invalid_input(
            "A redirect URI may not carry a query or fragment.",
        ));
    }
    if url.scheme() == APP_SCHEME {
        return Ok(url);
    }
    if url.scheme() == "http" && is_loopback_ip(&url) && url.port().is_some() {
        return Ok(url);
    }
    Err(Error::invalid_input(format!(
        "Redirect URI {uri:?} is neither {APP_REDIRECT_URI} nor a loopback http://127.0.0.1:PORT/… address."
    )))
}

fn is_loopback_ip(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        _ => false,
    }
}

/// What the provider said in its redirect.
#[derive(Debug)]
pub enum CallbackOutcome {
    /// `code=…`: exchange it.
    Code(AuthorizationCode),
    /// `error=…` (RFC 6749 §4.1.2.1), e.g. `access_denied`.
    Denied {
        error: String,
        description: Option<String>,
    },
}

/// A syntactically valid callback, not yet matched to a pending authorization.
#[derive(Debug)]
pub struct Callback {
    pub url_without_query: String,
    pub state: OAuthState,
    pub outcome: CallbackOutcome,
    /// The granted scope, echoed in the redirect (FlowAccount's token answer has none).
    pub scope: Option<String>,
}

/// Parse a redirect URL. Rejects oversized URLs, foreign schemes and hosts, missing or
/// repeated parameters. Never echoes the code or state into an error.
pub fn parse_callback(raw: &str) -> Result<Callback> {
    if raw.len() > MAX_CALLBACK_LEN {
        return Err(Error::invalid_callback(format!(
            "The redirect URL is longer than {MAX_CALLBACK_LEN} characters and was ignored."
        )));
    }
    let url = Url::parse(raw.trim())
        .map_err(|_| Error::invalid_callback("The redirect URL could not be parsed."))?;
    let scheme_ok = url.scheme() == APP_SCHEME || (url.scheme() == "http" && is_loopback_ip(&url));
    if !scheme_ok {
        return Err(Error::invalid_callback(format!(
            "Not an Authdeck redirect (scheme {:?}, host {:?}): ignored.",
            url.scheme(),
            url.host_str().unwrap_or("")
        )));
    }
    if url.username() != "" || url.password().is_some() || url.fragment().is_some() {
        return Err(Error::invalid_callback(
            "The redirect URL carries unexpected parts (user info or fragment).",
        ));
    }
    let mut state = None;
    let mut code = None;
    let mut error = None;
    let mut description = None;
    let mut scope = None;
    for (key, value) in url.query_pairs() {
        let slot = match key.as_ref() {
            "scope" => &mut scope,
            "state" => &mut state,
            "code" => &mut code,
            "error" => &mut error,
            "error_description" => &mut description,
            _ => continue,
        };
        if slot.is_some() {
            return Err(Error::invalid_callback(format!(
                "The redirect URL repeats the {key:?} parameter."
            )));
        }
        *slot = Some(value.into_owned());
    }
    let state = state
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Error::invalid_callback("The redirect URL has no state parameter."))?;
    let outcome = match (error, code) {
        (Some(error), _) => CallbackOutcome::Denied {
            error: sanitize(&error, 64),
            description: description.map(|d| sanitize(&d, 200)),
        },
        (None, Some(code)) if !code.is_empty() => {
            CallbackOutcome::Code(AuthorizationCode::new(code))
        }
        (None, _) => {
            return Err(Error::invalid_callback(
                "The redirect URL has neither a code nor an error.",
            ))
        }
    };
    let mut base = url.clone();
    base.set_query(None);
    Ok(Callback {
        url_without_query: base.to_string(),
        state: OAuthState::new(state),
        outcome,
        scope: scope.map(|s| sanitize(&s, 200)).filter(|s| !s.is_empty()),
    })
}

/// Does the callback arrive at exactly the redirect URI the authorization was started with?
pub fn matches_redirect(callback: &Callback, redirect_uri: &str) -> bool {
    match Url::parse(redirect_uri) {
        Ok(expected) => expected.to_string() == callback.url_without_query,
        Err(_) => false,
    }
}

/// The error for a provider's `error=` redirect.
pub fn denied_error(error: &str, description: Option<&str>) -> Error {
    let code = match error {
        "access_denied" => ErrorCode::AccessDenied,
        "temporarily_unavailable" | "server_error" => ErrorCode::ProviderUnavailable,
        "unauthorized_client" | "invalid_client" => ErrorCode::InvalidClient,
        _ => ErrorCode::ProviderError,
    };
    let message = match code {
        ErrorCode::AccessDenied => {
            "The authorization was declined in the browser: nothing was connected.".to_string()
        }
        _ => format!("FlowAccount did not authorize the connection ({error})."),
    };
    let detail = match description {
        Some(d) => format!("error={error}; error_description={d}"),
        None => format!("error={error}"),
    };
    Error::new(code, message).with_detail(detail)
}

/// Printable, bounded text from an untrusted source: no terminal escapes, control
/// characters or bidi overrides (the provider's text, as in `providers::redact`).
fn sanitize(text: &str, max: usize) -> String {
    // Line breaks and tabs go (as they always did); other controls are read as part of
    // an escape sequence first.
    let unbroken: String = text
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r' | '\u{0b}' | '\u{0c}'))
        .collect();
    crate::providers::redact::clean_text(&unbroken)
        .chars()
        .take(max)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_tokens_are_long_and_distinct() {
        let a: OAuthState = random_token();
        let b: OAuthState = random_token();
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.expose().len(), 43); // 256 bits
    }

    #[test]
    fn pkce_s256_matches_rfc7636_appendix_b() {
        let verifier = PkceVerifier::new("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        assert_eq!(
            pkce_challenge(&verifier),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn parses_a_code_callback() {
        let cb = parse_callback("com.authdeck.desktop:/oauth/callback?code=abc&scope=x&state=s1")
            .unwrap();
        assert_eq!(cb.state.expose(), "s1");
        assert_eq!(cb.scope.as_deref(), Some("x"));
        assert!(matches!(cb.outcome, CallbackOutcome::Code(ref c) if c.expose() == "abc"));
        assert!(matches_redirect(&cb, APP_REDIRECT_URI));
        assert!(!matches_redirect(&cb, "com.authdeck.desktop:/other"));
    }

    #[test]
    fn parses_a_loopback_callback() {
        let cb = parse_callback("http://127.0.0.1:53682/callback?state=s&code=c").unwrap();
        assert!(matches_redirect(&cb, "http://127.0.0.1:53682/callback"));
        assert!(!matches_redirect(&cb, "http://127.0.0.1:53683/callback"));
    }

    #[test]
    fn parses_an_error_callback() {
        let cb = parse_callback("com.authdeck.desktop:/oauth/callback?error=access_denied&error_description=no%0Athanks&state=s").unwrap();
        match cb.outcome {
            CallbackOutcome::Denied { error, description } => {
                assert_eq!(error, "access_denied");
                assert_eq!(description.as_deref(), Some("nothanks"));
            }
            _ => panic!("expected a denial"),
        }
        assert_eq!(
            denied_error("access_denied", None).code,
            ErrorCode::AccessDenied
        );
    }

    #[test]
    fn rejects_bad_callbacks_without_echoing_secrets() {
        let long = format!(
            "com.authdeck.desktop:/oauth/callback?state=s&code={}",
            "x".repeat(5000)
        );
        for bad in [
            long.as_str(),
            "not a url",
            "https://evil.example/oauth/callback?state=s&code=canary-code",
            "http://localhost:53682/callback?state=s&code=canary-code",
            "http://10.0.0.1:53682/callback?state=s&code=canary-code",
            "com.authdeck.desktop:/oauth/callback?code=canary-code",
            "com.authdeck.desktop:/oauth/callback?state=&code=canary-code",
            "com.authdeck.desktop:/oauth/callback?state=canary-state",
            "com.authdeck.desktop:/oauth/callback?state=a&state=b&code=canary-code",
            "com.authdeck.desktop:/oauth/callback?state=a&code=canary-code&code=x",
            "http://user:pw@127.0.0.1:1/cb?state=a&code=canary-code",
        ] {
            let err = parse_callback(bad).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidCallback, "{bad}");
            let text = serde_json::to_string(&err).unwrap();
            assert!(!text.contains("canary"), "{text}");
        }
    }

    #[test]
    fn redirect_uri_validation() {
        assert!(validate_redirect_uri(APP_REDIRECT_URI).is_ok());
        assert!(validate_redirect_uri("http://127.0.0.1:53682/callback").is_ok());
        assert!(validate_redirect_uri("http://127.0.0.1/callback").is_err());
        assert!(validate_redirect_uri("http://localhost:53682/callback").is_err());
        assert!(validate_redirect_uri("https://example.com/cb").is_err());
        assert!(validate_redirect_uri("com.authdeck.desktop:/cb?x=1").is_err());
    }

    #[test]
    fn state_hash_is_hex_sha256() {
        assert_eq!(
            state_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
