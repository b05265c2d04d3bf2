//! FlowAccount wire protocol (PROVIDERS.md §1) against the emulator over HTTP.

use std::time::Duration;

use authdeck_core::model::ExpirySource;
use authdeck_core::providers::http::HttpSettings;
use authdeck_core::providers::{flowaccount, HttpClient, IssuedTokens};
use authdeck_core::{
    AuthorizationCode, ClientSecret, Error, ErrorCode, PkceVerifier, RefreshToken,
};
use authdeck_emulator::{
    start, Control, EmulatorConfig, Fault, FaultKind, FaultScope, RunningEmulator, TokenStatus,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use url::Url;

const CLIENT_ID: &str = "demo-flowaccount";
const REDIRECT_URI: &str = "com.authdeck.desktop:/oauth/callback";
const BUSINESS: &str = "FA-100001";

struct Fixture {
    emu: RunningEmulator,
    http: HttpClient,
    authorize_url: Url,
    token_url: Url,
    secret: ClientSecret,
}

impl Fixture {
    async fn new() -> Self {
        let emu = start(EmulatorConfig::demo(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        Self {
            http: HttpClient::new(HttpSettings::default()).unwrap(),
            authorize_url: Url::parse(&emu.flowaccount_authorize_url()).unwrap(),
            token_url: Url::parse(&emu.flowaccount_token_url()).unwrap(),
            secret: ClientSecret::new("demo-flowaccount-secret"),
            emu,
        }
    }

    fn control(&self) -> Control {
        self.emu.control()
    }

    /// Runs the browser part: authorize URL → login → pick the business → redirect.
    async fn code(&self, code_challenge: Option<&str>) -> AuthorizationCode {
        let state = "state-4f1d9c0a8b7e6d5c";
        let url = flowaccount::authorize_url(
            &self.authorize_url,
            CLIENT_ID,
            REDIRECT_URI,
            state,
            code_challenge,
        );
        let location =
            authdeck_emulator::approve(url.as_str(), "demo@example.com", "demo", BUSINESS)
                .await
                .unwrap();
        let redirect = Url::parse(&location).unwrap();
        assert!(location.starts_with(REDIRECT_URI), "{location}");
        let get = |k: &str| {
            redirect
                .query_pairs()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.into_owned())
        };
        assert_eq!(get("state").as_deref(), Some(state));
        AuthorizationCode::new(get("code").expect("redirect carries a code"))
    }

    async fn exchange(
        &self,
        code: &AuthorizationCode,
        verifier: Option<&PkceVerifier>,
    ) -> Result<IssuedTokens, Error> {
        flowaccount::exchange_code(
            &self.http,
            &self.token_url,
            CLIENT_ID,
            &self.secret,
            code,
            REDIRECT_URI,
            verifier,
            self.control().now(),
        )
        .await
    }

    async fn refresh(&self, refresh_token: &RefreshToken) -> Result<IssuedTokens, Error> {
        flowaccount::refresh(
            &self.http,
            &self.token_url,
            CLIENT_ID,
            &self.secret,
            refresh_token,
            self.control().now(),
        )
        .await
    }
}

fn refresh_token(t: &IssuedTokens) -> RefreshToken {
    t.refresh_token
        .clone()
        .expect("offline_access gives a refresh token")
}

#[tokio::test]
async fn exchange_then_two_refreshes_rotate_the_refresh_token() {
    let f = Fixture::new().await;
    let code = f.code(None).await;
    let now = f.control().now();
    let first = f.exchange(&code, None).await.unwrap();
    assert!(!first.access_token.is_empty());
    assert_eq!(first.support_code.as_deref(), Some(BUSINESS));
    assert_eq!(first.token_type.as_deref(), Some("bearer"));
    let access = first.access_expires.unwrap();
    assert_eq!(access.source, ExpirySource::RelativeSeconds);
    assert!((access.seconds_left(now) - 3600).abs() <= 5, "{access:?}");
    let refresh_expires = first.refresh_expires.unwrap();
    assert_eq!(refresh_expires.source, ExpirySource::Estimated);
    assert!((refresh_expires.seconds_left(now) - 86_400).abs() <= 5);
    let rt1 = refresh_token(&first);

    let second = f.refresh(&rt1).await.unwrap();
    let rt2 = refresh_token(&second);
    assert_ne!(rt1, rt2, "the refresh token is rotated");
    assert_ne!(first.access_token, second.access_token);
    assert_eq!(second.support_code.as_deref(), Some(BUSINESS));
    assert_eq!(
        second.refresh_expires.unwrap().source,
        ExpirySource::Estimated
    );

    // The second refresh must use the newest token.
    let third = f.refresh(&rt2).await.unwrap();
    let rt3 = refresh_token(&third);
    let c = f.control();
    assert_eq!(
        c.flowaccount_refresh_token_status(rt1.expose()),
        TokenStatus::Used
    );
    assert_eq!(
        c.flowaccount_refresh_token_status(rt2.expose()),
        TokenStatus::Used
    );
    assert_eq!(
        c.flowaccount_refresh_token_status(rt3.expose()),
        TokenStatus::Current
    );
    assert_eq!(c.stats().flowaccount.refresh_ok, 2);
}

#[tokio::test]
async fn reusing_an_old_refresh_token_needs_reauthorization() {
    let f = Fixture::new().await;
    let first = f.exchange(&f.code(None).await, None).await.unwrap();
    let rt1 = refresh_token(&first);
    let rt2 = refresh_token(&f.refresh(&rt1).await.unwrap());

    let err = f.refresh(&rt1).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::ReauthorizationRequired);
    assert_eq!(
        err.message,
        "FlowAccount no longer accepts this connection's refresh token: connect the business again."
    );
    let detail = err.detail.unwrap();
    assert!(detail.contains("invalid_grant"), "{detail}");
    assert!(!detail.contains(rt1.expose()) && !detail.contains(rt2.expose()));
    // Reuse revoked the whole family: the newest one is dead too.
    assert_eq!(
        f.refresh(&rt2).await.unwrap_err().code,
        ErrorCode::ReauthorizationRequired
    );
}

#[tokio::test]
async fn a_code_older_than_150_minutes_is_refused() {
    let f = Fixture::new().await;
    let code = f.code(None).await;
    f.control().advance_clock(chrono::Duration::minutes(151));
    let err = f.exchange(&code, None).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::ReauthorizationRequired);
    assert!(
        err.message.contains("authorization code"),
        "{}",
        err.message
    );
    assert!(!err.detail.unwrap().contains(code.expose()));
}

#[tokio::test]
async fn a_replayed_code_is_refused() {
    let f = Fixture::new().await;
    let code = f.code(None).await;
    f.exchange(&code, None).await.unwrap();
    let err = f.exchange(&code, None).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::ReauthorizationRequired);
}

#[tokio::test]
async fn pkce_s256_round_trip_and_wrong_verifier() {
    let f = Fixture::new().await;
    let verifier = PkceVerifier::new(URL_SAFE_NO_PAD.encode([42u8; 32]));
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.expose().as_bytes()));

    let code = f.code(Some(&challenge)).await;
    let tokens = f.exchange(&code, Some(&verifier)).await.unwrap();
    assert!(tokens.refresh_token.is_some());

    let code = f.code(Some(&challenge)).await;
    let wrong = PkceVerifier::new(URL_SAFE_NO_PAD.encode([7u8; 32]));
    let err = f.exchange(&code, Some(&wrong)).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::ReauthorizationRequired);
    assert!(!err.detail.unwrap().contains(wrong.expose()));
}

#[tokio::test]
async fn a_wrong_client_secret_is_invalid_client() {
    let mut f = Fixture::new().await;
    let code = f.code(None).await;
    f.secret = ClientSecret::new("not-the-secret-canary");
    let err = f.exchange(&code, None).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidClient);
    let all = format!("{} {:?}", err.message, err.detail);
    assert!(!all.contains("not-the-secret-canary"), "{all}");
}

#[tokio::test]
async fn faults_map_to_the_right_codes() {
    let f = Fixture::new().await;
    let any = RefreshToken::new("some-refresh-token");
    let cases = [
        (
            FaultKind::ServerError { status: 500 },
            ErrorCode::ProviderUnavailable,
        ),
        (
            FaultKind::ServerError { status: 503 },
            ErrorCode::ProviderUnavailable,
        ),
        (
            FaultKind::RateLimited {
                retry_after_secs: 7,
            },
            ErrorCode::RateLimited,
        ),
        (
            FaultKind::HtmlBody { status: 502 },
            ErrorCode::ProviderUnavailable,
        ),
        (FaultKind::MalformedJson, ErrorCode::InvalidResponse),
        (FaultKind::MissingAccessToken, ErrorCode::InvalidResponse),
        (FaultKind::Reset, ErrorCode::ProviderUnavailable),
    ];
    for (kind, code) in cases {
        f.control()
            .push_fault(Fault::next(FaultScope::FlowAccount, kind.clone(), 1));
        let err = f.refresh(&any).await.unwrap_err();
        assert_eq!(err.code, code, "{kind:?}: {err:?}");
        if let FaultKind::RateLimited { .. } = kind {
            assert_eq!(err.retry_after, Some(Duration::from_secs(7)));
        }
        if let FaultKind::MalformedJson = kind {
            // The truncated body held an access token: it must not be echoed.
            assert!(!err.detail.unwrap().contains("abc"));
        }
    }
}
