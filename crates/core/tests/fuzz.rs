//! Property-based fuzzing of everything that parses untrusted input: callback URLs
//! (deep links, loopback requests) and every provider's token and error responses.
//! No input may panic; errors must be clear codes; a secret sent with a request never
//! comes back in an error.
//!
//! `make test` runs a bounded number of cases; `make fuzz` runs many more
//! (`PROPTEST_CASES`).

use authdeck_core::authorize::parse_callback;
use authdeck_core::model::{Expiry, ExpirySource, Provider};
use authdeck_core::providers::error::{from_response, parse_retry_after};
use authdeck_core::providers::Operation;
use authdeck_core::providers::{iot, jwt, parse_token_response};
use authdeck_core::{ErrorCode, RefreshToken};
use chrono::Utc;
use proptest::prelude::*;

const PROVIDERS: [Provider; 3] = [Provider::FlowAccount, Provider::Fedex, Provider::Iot];
const OPS: [Operation; 5] = [
    Operation::AuthorizationCode,
    Operation::Refresh,
    Operation::ClientCredentials,
    Operation::PasswordLogin,
    Operation::Logout,
];

fn config() -> ProptestConfig {
    // PROPTEST_CASES (the environment) overrides this default.
    ProptestConfig {
        cases: 2_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Callback-like strings: the right scheme with arbitrary queries, and arbitrary text.
fn callback_like() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("code".to_string()),
        Just("state".to_string()),
        Just("error".to_string()),
        Just("error_description".to_string()),
        Just("scope".to_string()),
        "[a-z_%]{0,8}",
    ];
    let value = prop_oneof!["[A-Za-z0-9_%+=.~-]{0,40}", ".{0,20}"];
    let pairs = prop::collection::vec((key, value), 0..6).prop_map(|p| {
        p.into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    });
    let base = prop_oneof![
        Just("com.authdeck.desktop:/oauth/callback".to_string()),
        Just("http://127.0.0.1:53682/callback".to_string()),
        Just("https://evil.example/cb".to_string()),
        "[a-z.]{1,20}:/?[a-z/]{0,10}",
    ];
    prop_oneof![
        (base, pairs, prop::option::of("#.{0,5}"))
            .prop_map(|(b, q, frag)| format!("{b}?{q}{}", frag.unwrap_or_default())),
        ".{0,200}",
    ]
}

/// JSON-ish token bodies: objects with the fields providers send, in the wrong types too.
fn token_body() -> impl Strategy<Value = Vec<u8>> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
            .map_or(serde_json::Value::Null, serde_json::Value::Number)),
        ".{0,30}".prop_map(serde_json::Value::from),
    ];
    let field = prop_oneof![
        Just("access_token"),
        Just("refresh_token"),
        Just("expires_in"),
        Just("token_type"),
        Just("scope"),
        Just("supportCode"),
        Just("userinfo"),
        Just("status"),
        Just("error"),
        Just("message"),
        Just("errors"),
    ];
    let object = prop::collection::vec((field, leaf), 0..8).prop_map(|fields| {
        let map: serde_json::Map<_, _> = fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        serde_json::to_vec(&map).unwrap()
    });
    prop_oneof![
        object,
        prop::collection::vec(any::<u8>(), 0..200),
        ".{0,100}".prop_map(String::into_bytes)
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn callback_parsing_never_panics(url in callback_like()) {
        match parse_callback(&url) {
            Ok(cb) => prop_assert!(!cb.state.expose().is_empty()),
            Err(e) => prop_assert_eq!(e.code, ErrorCode::InvalidCallback),
        }
    }

    /// Regression: a huge `expires_in` once overflowed `DateTime + TimeDelta` (found by
    /// this target in CI).
    #[test]
    fn absurd_expires_in_is_unknown_expiry(p in 0usize..3, secs in prop_oneof![Just(1e300), Just(f64::MAX), 1e13f64..1e300]) {
        let body = serde_json::to_vec(&serde_json::json!({"access_token": "a", "expires_in": secs})).unwrap();
        let tokens = parse_token_response(PROVIDERS[p], 200, &body, Utc::now()).unwrap();
        if PROVIDERS[p] != Provider::Iot {
            prop_assert!(tokens.access_expires.is_none());
        }
    }

    #[test]
    fn token_responses_never_panic(p in 0usize..3, status in 200u16..300, body in token_body()) {
        match parse_token_response(PROVIDERS[p], status, &body, Utc::now()) {
            Ok(tokens) => prop_assert!(!tokens.access_token.expose().trim().is_empty()),
            Err(e) => prop_assert!(!e.message.is_empty()),
        }
    }

    #[test]
    fn error_responses_never_panic_or_echo_secrets(
        p in 0usize..3,
        op in 0usize..5,
        status in 100u16..600,
        retry_after in prop::option::of(".{0,30}"),
        body in token_body(),
        planted in prop::bool::ANY,
    ) {
        let secret = RefreshToken::new("CANARY-s3cr3t-value-1234567890");
        let mut body = body;
        if planted {
            body.extend_from_slice(br#" {"error":"invalid_grant","error_description":"CANARY-s3cr3t-value-1234567890"}"#);
        }
        let e = from_response(PROVIDERS[p], OPS[op], status, retry_after.as_deref(), &body, &[&secret]);
        let text = serde_json::to_string(&e).unwrap();
        prop_assert!(!text.contains("CANARY-s3cr3t"), "secret echoed: {}", text);
        prop_assert!(!e.message.is_empty());
        if status == 429 {
            prop_assert_eq!(e.code, ErrorCode::RateLimited);
        }
        if status >= 500 {
            prop_assert_eq!(e.code, ErrorCode::ProviderUnavailable);
        }
    }

    #[test]
    fn expiry_and_jwt_and_retry_after_never_panic(n in any::<f64>(), s in ".{0,40}", token in "[A-Za-z0-9_=.-]{0,80}") {
        let now = Utc::now();
        let _ = iot::normalise_expires_in(&serde_json::json!(n), now);
        let _ = Expiry::in_seconds(now, n, ExpirySource::RelativeSeconds);
        let _ = iot::normalise_expires_in(&serde_json::Value::String(s.clone()), now);
        let _ = jwt::decode(&token);
        let _ = parse_retry_after(&s, now);
    }
}
