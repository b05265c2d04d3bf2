//! IoT-platform wire protocol (PROVIDERS.md §3) against the emulator over HTTP.

use std::time::Duration;

use authdeck_core::model::{ExpirySource, IotBasicAuth, IotBodyEncoding};
use authdeck_core::providers::http::HttpSettings;
use authdeck_core::providers::iot::{self, IotClient};
use authdeck_core::providers::{jwt, presets, HttpClient, IssuedTokens};
use authdeck_core::{Error, ErrorCode, Password};
use authdeck_emulator::{
    start, EmulatorConfig, ExpiresInFormat, Fault, FaultKind, FaultScope, IotBasicMode,
    RunningEmulator,
};
use url::Url;

const CLIENT_ID: &str = "demo-iot-client";
const USER_ID: &str = "U974814773204";

struct Fixture {
    emu: RunningEmulator,
    http: HttpClient,
    token_url: Url,
    logout_url: Url,
}

impl Fixture {
    async fn new() -> Self {
        Self::with(EmulatorConfig::demo()).await
    }

    async fn with(config: EmulatorConfig) -> Self {
        let emu = start(config, "127.0.0.1:0".parse().unwrap()).await.unwrap();
        let endpoints = presets::iot_endpoints(&Url::parse(&emu.iot_auth_url()).unwrap());
        Self {
            http: HttpClient::new(HttpSettings::default()).unwrap(),
            token_url: endpoints.token_url,
            logout_url: endpoints.logout_url.unwrap(),
            emu,
        }
    }

    fn client(&self, basic: IotBasicAuth, body: IotBodyEncoding) -> IotClient<'_> {
        IotClient {
            token_url: &self.token_url,
            logout_url: &self.logout_url,
            client_id: CLIENT_ID,
            basic,
            body,
        }
    }

    fn default_client(&self) -> IotClient<'_> {
        self.client(IotBasicAuth::Raw, IotBodyEncoding::Form)
    }

    async fn login(&self, c: &IotClient<'_>, password: &str) -> Result<IssuedTokens, Error> {
        let password = Password::new(password);
        iot::login(
            &self.http,
            c,
            "operator",
            &password,
            self.emu.control().now(),
        )
        .await
    }
}

fn assert_agrees_with_jwt(t: &IssuedTokens, source: ExpirySource) {
    let e = t.access_expires.expect("an access expiry");
    assert_eq!(e.source, source, "{e:?}");
    let exp = jwt::exp(t.jwt.as_ref().expect("IoT tokens are JWTs")).unwrap();
    assert!((e.at - exp).num_seconds().abs() <= 5, "{e:?} vs {exp}");
    assert!(t.warnings.is_empty(), "{:?}", t.warnings);
}

#[tokio::test]
async fn login_form_and_multipart_with_raw_basic() {
    let f = Fixture::new().await;
    for body in [IotBodyEncoding::Form, IotBodyEncoding::Multipart] {
        let t = f
            .login(&f.client(IotBasicAuth::Raw, body), "operator-pass")
            .await
            .unwrap();
        assert_eq!(t.user_id.as_deref(), Some(USER_ID), "{body:?}");
        assert_eq!(t.userinfo.as_ref().unwrap()["username"], "operator");
        assert_eq!(t.token_type.as_deref(), Some("Bearer"));
        assert!(t.refresh_token.is_some());
        assert_eq!(t.refresh_expires, None);
        assert_eq!(t.jwt.as_ref().unwrap().claims["ctx"]["owner"], USER_ID);
        // The demo writes expires_in in epoch milliseconds.
        assert_agrees_with_jwt(&t, ExpirySource::EpochMillis);
    }
    assert_eq!(f.emu.control().stats().iot.logins_ok, 2);
}

#[tokio::test]
async fn base64_basic_when_the_server_wants_the_rfc_form() {
    let mut config = EmulatorConfig::demo();
    config.iot.basic_mode = IotBasicMode::Base64;
    let f = Fixture::with(config).await;
    let t = f
        .login(
            &f.client(IotBasicAuth::Base64, IotBodyEncoding::Form),
            "operator-pass",
        )
        .await
        .unwrap();
    assert_eq!(t.user_id.as_deref(), Some(USER_ID));
    // The raw form is now refused, as a client problem.
    let err = f
        .login(&f.default_client(), "operator-pass")
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidClient);
}

#[tokio::test]
async fn a_wrong_password_is_invalid_credentials_and_never_echoed() {
    let f = Fixture::new().await;
    let err = f
        .login(&f.default_client(), "wrong-pass-canary")
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidCredentials);
    assert!(!format!("{err:?}").contains("wrong-pass-canary"));
}

#[tokio::test]
async fn expires_in_formats_agree_with_the_jwt_exp() {
    let f = Fixture::new().await;
    let c = f.default_client();
    for (format, source) in [
        (ExpiresInFormat::EpochMs, ExpirySource::EpochMillis),
        (ExpiresInFormat::EpochS, ExpirySource::EpochSeconds),
        (ExpiresInFormat::Relative, ExpirySource::RelativeSeconds),
    ] {
        f.emu.control().set_iot_expires_in_format(format);
        let t = f.login(&c, "operator-pass").await.unwrap();
        assert_agrees_with_jwt(&t, source);
        let left = t
            .access_expires
            .unwrap()
            .seconds_left(f.emu.control().now());
        assert!((left - 86_400).abs() <= 5, "{format:?}: {left}");
    }
}

#[tokio::test]
async fn refresh_with_userid_then_logout_then_refresh_fails() {
    let f = Fixture::new().await;
    let c = f.default_client();
    let first = f.login(&c, "operator-pass").await.unwrap();
    let user_id = first.user_id.clone().unwrap();
    let rt1 = first.refresh_token.clone().unwrap();

    let now = f.emu.control().now();
    let second = iot::refresh(&f.http, &c, &rt1, &user_id, now)
        .await
        .unwrap();
    assert_eq!(second.user_id.as_deref(), Some(USER_ID));
    assert_agrees_with_jwt(&second, ExpirySource::EpochMillis);
    let rt2 = second.refresh_token.clone().expect("a new refresh token");
    assert_ne!(rt1, rt2);

    // A wrong userid is a dead grant for this connection.
    let err = iot::refresh(&f.http, &c, &rt2, "U000", now)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::ReauthorizationRequired);

    iot::logout(&f.http, &c, &rt2).await.unwrap();
    let sessions = f.emu.control().iot_sessions();
    assert_eq!(sessions.len(), 1);
    assert!(sessions[0].revoked);

    let err = iot::refresh(&f.http, &c, &rt2, &user_id, now)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::ReauthorizationRequired);
    assert_eq!(
        err.message,
        "The IoT platform no longer accepts this connection's refresh token: log in again."
    );
    assert!(!format!("{err:?}").contains(rt2.expose()));

    // Logging out again: the token is already dead.
    let err = iot::logout(&f.http, &c, &rt2).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::ReauthorizationRequired);
}

#[tokio::test]
async fn logout_over_multipart() {
    let f = Fixture::new().await;
    let c = f.client(IotBasicAuth::Raw, IotBodyEncoding::Multipart);
    let t = f.login(&c, "operator-pass").await.unwrap();
    iot::logout(&f.http, &c, t.refresh_token.as_ref().unwrap())
        .await
        .unwrap();
    assert_eq!(f.emu.control().stats().iot.logouts, 1);
}

#[tokio::test]
async fn a_failed_logout_is_not_a_success() {
    let f = Fixture::new().await;
    let c = f.default_client();
    let t = f.login(&c, "operator-pass").await.unwrap();
    let rt = t.refresh_token.unwrap();
    for kind in [
        FaultKind::ServerError { status: 503 },
        FaultKind::HtmlBody { status: 502 },
        FaultKind::Reset,
    ] {
        f.emu
            .control()
            .push_fault(Fault::next(FaultScope::Iot, kind.clone(), 1));
        let err = iot::logout(&f.http, &c, &rt).await.unwrap_err();
        assert!(err.is_temporary(), "{kind:?}: {err:?}");
    }
    assert!(!f.emu.control().iot_sessions()[0].revoked);
    // The retry goes through.
    iot::logout(&f.http, &c, &rt).await.unwrap();
}

#[tokio::test]
async fn faults_map_to_the_right_codes() {
    let f = Fixture::new().await;
    let c = f.default_client();
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
                retry_after_secs: 2,
            },
            ErrorCode::RateLimited,
        ),
        (
            FaultKind::HtmlBody { status: 504 },
            ErrorCode::ProviderUnavailable,
        ),
        (FaultKind::MalformedJson, ErrorCode::InvalidResponse),
        (FaultKind::MissingAccessToken, ErrorCode::InvalidResponse),
        (FaultKind::Reset, ErrorCode::ProviderUnavailable),
    ];
    for (kind, code) in cases {
        f.emu
            .control()
            .push_fault(Fault::next(FaultScope::Iot, kind.clone(), 1));
        let err = f.login(&c, "operator-pass").await.unwrap_err();
        assert_eq!(err.code, code, "{kind:?}: {err:?}");
        assert!(!format!("{err:?}").contains("operator-pass"));
        if code == ErrorCode::RateLimited {
            assert_eq!(err.retry_after, Some(Duration::from_secs(2)));
        }
    }
    let http = HttpClient::new(HttpSettings {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_millis(300),
    })
    .unwrap();
    f.emu
        .control()
        .push_fault(Fault::next(FaultScope::Iot, FaultKind::Hang, 1));
    let password = Password::new("operator-pass");
    let err = iot::login(&http, &c, "operator", &password, chrono::Utc::now())
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::ProviderUnavailable);
}
