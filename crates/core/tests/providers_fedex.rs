//! FedEx wire protocol (PROVIDERS.md §2) against the emulator over HTTP.

use std::time::Duration;

use authdeck_core::model::{ExpirySource, FedexGrant};
use authdeck_core::providers::http::HttpSettings;
use authdeck_core::providers::{fedex, jwt, HttpClient, IssuedTokens};
use authdeck_core::{ChildSecret, ClientSecret, Error, ErrorCode};
use authdeck_emulator::{start, EmulatorConfig, Fault, FaultKind, FaultScope, RunningEmulator};
use url::Url;

const KEY: &str = "demo-fedex-key";
const CHILD_KEY: &str = "demo-child-key";

async fn emulator() -> (RunningEmulator, Url) {
    let emu = start(EmulatorConfig::demo(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let url = Url::parse(&emu.fedex_token_url()).unwrap();
    (emu, url)
}

async fn request(
    http: &HttpClient,
    url: &Url,
    grant: FedexGrant,
    secret: &str,
    child: Option<(&str, &str)>,
) -> Result<IssuedTokens, Error> {
    let secret = ClientSecret::new(secret);
    let child_secret = child.map(|(_, s)| ChildSecret::new(s));
    let child = child.zip(child_secret.as_ref()).map(|((k, _), s)| (k, s));
    fedex::request_token(http, url, grant, KEY, &secret, child, chrono::Utc::now()).await
}

fn http() -> HttpClient {
    HttpClient::new(HttpSettings::default()).unwrap()
}

#[tokio::test]
async fn each_grant_gets_an_hour_long_jwt() {
    let (emu, url) = emulator().await;
    let http = http();
    let cases = [
        (FedexGrant::ClientCredentials, None),
        (
            FedexGrant::CspCredentials,
            Some((CHILD_KEY, "demo-child-secret")),
        ),
        (
            FedexGrant::ClientPcCredentials,
            Some((CHILD_KEY, "demo-child-secret")),
        ),
    ];
    for (grant, child) in cases {
        let now = chrono::Utc::now();
        let t = request(&http, &url, grant, "demo-fedex-secret", child)
            .await
            .unwrap();
        assert!(
            t.refresh_token.is_none(),
            "{grant}: FedEx has no refresh token"
        );
        assert_eq!(t.token_type.as_deref(), Some("bearer"));
        assert_eq!(t.scope.as_deref(), Some("CXS"));
        let e = t.access_expires.unwrap();
        assert_eq!(e.source, ExpirySource::RelativeSeconds);
        // 3599 seconds, not milliseconds (PROVIDERS.md §2).
        assert!((e.seconds_left(now) - 3599).abs() <= 5, "{grant}: {e:?}");
        let claims = &t.jwt.as_ref().expect("FedEx tokens are JWTs").claims;
        assert_eq!(claims["Payload"]["clientIdentity"]["clientKey"], KEY);
        if child.is_some() {
            assert_eq!(claims["Payload"]["clientIdentity"]["childKey"], CHILD_KEY);
        }
        let exp = jwt::exp(t.jwt.as_ref().unwrap()).unwrap();
        assert!(((exp - e.at).num_seconds()).abs() <= 5);
    }
    let s = emu.control().stats().fedex;
    assert_eq!(
        (
            s.client_credentials,
            s.csp_credentials,
            s.client_pc_credentials
        ),
        (1, 1, 1)
    );
}

#[tokio::test]
async fn wrong_secret_is_invalid_client_with_the_fedex_code() {
    let (_emu, url) = emulator().await;
    let err = request(
        &http(),
        &url,
        FedexGrant::ClientCredentials,
        "wrong-secret-canary",
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidClient);
    let detail = err.detail.clone().unwrap();
    assert!(detail.contains("NOT.AUTHORIZED.ERROR"), "{detail}");
    assert!(detail.contains("HTTP 401"), "{detail}");
    assert!(!format!("{err:?}").contains("wrong-secret-canary"));
}

#[tokio::test]
async fn wrong_child_secret_is_invalid_client() {
    let (_emu, url) = emulator().await;
    let err = request(
        &http(),
        &url,
        FedexGrant::CspCredentials,
        "demo-fedex-secret",
        Some((CHILD_KEY, "wrong-child-canary")),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidClient);
    assert!(!format!("{err:?}").contains("wrong-child-canary"));
    // The advice names the child credentials (the connection's), not only the client's.
    assert!(
        err.message.contains("child key and child secret"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn missing_child_credentials_are_refused_before_any_request() {
    let (emu, url) = emulator().await;
    let err = request(
        &http(),
        &url,
        FedexGrant::ClientPcCredentials,
        "demo-fedex-secret",
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidInput);
    assert_eq!(emu.control().stats().requests, 0);
}

#[tokio::test]
async fn faults_map_to_the_right_codes() {
    let (emu, url) = emulator().await;
    let http = http();
    let cases = [
        (
            FaultKind::ServerError { status: 500 },
            ErrorCode::ProviderUnavailable,
            "INTERNAL.SERVER.ERROR",
        ),
        (
            FaultKind::ServerError { status: 503 },
            ErrorCode::ProviderUnavailable,
            "SERVICE.UNAVAILABLE.ERROR",
        ),
        (
            FaultKind::RateLimited {
                retry_after_secs: 3,
            },
            ErrorCode::RateLimited,
            "HTTP 429",
        ),
        (
            FaultKind::HtmlBody { status: 502 },
            ErrorCode::ProviderUnavailable,
            "502 Bad Gateway",
        ),
        (
            FaultKind::MalformedJson,
            ErrorCode::InvalidResponse,
            "not JSON",
        ),
        (
            FaultKind::MissingAccessToken,
            ErrorCode::InvalidResponse,
            "expires_in",
        ),
        (FaultKind::Reset, ErrorCode::ProviderUnavailable, ""),
    ];
    for (kind, code, in_detail) in cases {
        emu.control()
            .push_fault(Fault::next(FaultScope::Fedex, kind.clone(), 1));
        let err = request(
            &http,
            &url,
            FedexGrant::ClientCredentials,
            "demo-fedex-secret",
            None,
        )
        .await
        .unwrap_err();
        assert_eq!(err.code, code, "{kind:?}: {err:?}");
        let detail = err.detail.clone().unwrap_or_default();
        assert!(detail.contains(in_detail), "{kind:?}: {detail}");
        assert!(!detail.contains("demo-fedex-secret"));
        if code == ErrorCode::RateLimited {
            assert_eq!(err.retry_after, Some(Duration::from_secs(3)));
        }
    }
}

#[tokio::test]
async fn a_hanging_server_times_out() {
    let (emu, url) = emulator().await;
    let http = HttpClient::new(HttpSettings {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_millis(300),
    })
    .unwrap();
    emu.control()
        .push_fault(Fault::next(FaultScope::Fedex, FaultKind::Hang, 1));
    let err = request(
        &http,
        &url,
        FedexGrant::ClientCredentials,
        "demo-fedex-secret",
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::ProviderUnavailable);
    assert!(err.message.contains("timeout"), "{}", err.message);
    assert!(
        !err.detail.unwrap().contains("127.0.0.1"),
        "no URL in the detail"
    );
}

#[tokio::test]
async fn nothing_listening_is_provider_unavailable() {
    // Bind and drop to get a port with (very likely) nothing on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = Url::parse(&format!("http://127.0.0.1:{port}/fedex/oauth/token")).unwrap();
    let err = request(&http(), &url, FedexGrant::ClientCredentials, "s", None)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::ProviderUnavailable);
    assert!(err.message.contains("connection failed"), "{}", err.message);
}
