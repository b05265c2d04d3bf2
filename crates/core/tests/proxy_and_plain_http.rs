//! Proxies and plain HTTP (README, "Security"): a loopback endpoint is never sent
//! through the system proxy (its plain-http body carries a client secret or a
//! password), a remote one is; plain `http` goes to IP-literal loopback hosts only.
//!
//! One test binary of its own, with one test: it sets the proxy environment variables
//! (which every client built in this process then reads) before anything else runs.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use authdeck_core::model::FedexGrant;
use authdeck_core::providers::{fedex, iot, HttpClient};
use authdeck_core::{ClientSecret, ErrorCode, Password};
use authdeck_emulator::{start, EmulatorConfig};
use url::Url;

/// A listening "proxy" on 127.0.0.1 that records the request head of every connection
/// it gets and answers 403 (it never forwards anything anywhere).
struct FakeProxy {
    url: String,
    seen: Arc<Mutex<Vec<String>>>,
}

impl FakeProxy {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { break };
                let head = read_head(stream);
                record.lock().unwrap().push(head);
            }
        });
        Self { url, seen }
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

fn read_head(mut stream: TcpStream) -> String {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let _ = stream
        .write_all(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    String::from_utf8_lossy(&head).into_owned()
}

#[tokio::test]
async fn proxies_and_plain_http() {
    let proxy = FakeProxy::start();
    for name in [
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ] {
        std::env::set_var(name, &proxy.url);
    }
    for name in ["no_proxy", "NO_PROXY", "REQUEST_METHOD"] {
        std::env::remove_var(name);
    }
    loopback_endpoints_bypass_the_proxy_and_remote_ones_use_it(&proxy).await;
    plain_http_goes_to_ip_literal_loopback_only(&proxy).await;
}

async fn loopback_endpoints_bypass_the_proxy_and_remote_ones_use_it(proxy: &FakeProxy) {
    let emu = start(EmulatorConfig::demo(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let http = HttpClient::new(Default::default()).unwrap();
    let now = chrono::Utc::now();

    // FedEx over plain http to 127.0.0.1: the client secret must not reach the proxy.
    let secret = ClientSecret::new("demo-fedex-secret");
    let token_url = Url::parse(&emu.fedex_token_url()).unwrap();
    let issued = fedex::request_token(
        &http,
        &token_url,
        FedexGrant::ClientCredentials,
        "demo-fedex-key",
        &secret,
        None,
        now,
    )
    .await
    .expect("the emulator answers directly");
    assert!(!issued.access_token.is_empty());
    // IoT password login: the password must not reach it either.
    let auth = Url::parse(&emu.iot_auth_url()).unwrap();
    let endpoints = authdeck_core::providers::presets::iot_endpoints(&auth);
    let client = iot::IotClient {
        token_url: &endpoints.token_url,
        logout_url: endpoints.logout_url.as_ref().unwrap(),
        client_id: "demo-iot-client",
        basic: Default::default(),
        body: Default::default(),
    };
    let password = Password::new("operator-pass");
    iot::login(&http, &client, "operator", &password, now)
        .await
        .expect("the emulator answers directly");
    assert_eq!(
        proxy.seen(),
        Vec::<String>::new(),
        "the proxy saw requests to a loopback endpoint"
    );

    // A remote host does go through the proxy (and only to it: the fake proxy answers
    // the CONNECT with 403, nothing is resolved or sent anywhere else).
    let remote = Url::parse("https://remote.authdeck-test.example/oauth/token").unwrap();
    let err = fedex::request_token(
        &http,
        &remote,
        FedexGrant::ClientCredentials,
        "demo-fedex-key",
        &secret,
        None,
        now,
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::ProviderUnavailable, "{err:?}");
    let seen = proxy.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(
        seen[0].starts_with("CONNECT remote.authdeck-test.example:443 "),
        "{seen:?}"
    );
    assert!(!seen[0].contains("demo-fedex-secret"));
}

async fn plain_http_goes_to_ip_literal_loopback_only(proxy: &FakeProxy) {
    let proxied_before = proxy.seen().len();
    use authdeck_core::providers::presets::validate_endpoint;
    for bad in [
        "http://localhost:8080/oauth/token",
        "http://10.0.0.1/oauth/token",
    ] {
        let e = validate_endpoint(bad).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidInput, "{bad}");
    }
    for ok in [
        "http://127.0.0.1:8080/oauth/token",
        "http://127.0.0.2/oauth/token",
        "http://[::1]:8080/oauth/token",
    ] {
        assert!(validate_endpoint(ok).is_ok(), "{ok}");
    }

    // A client stored before the rule (its endpoint never validated by it) is refused
    // before anything is sent: a server on 127.0.0.1 behind `localhost` gets nothing.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let http = HttpClient::new(Default::default()).unwrap();
    let secret = ClientSecret::new("demo-fedex-secret");
    for url in [
        format!("http://localhost:{port}/oauth/token"),
        format!("http://LOCALHOST.:{port}/oauth/token"),
        "http://10.0.0.1/oauth/token".to_string(),
    ] {
        let e = fedex::request_token(
            &http,
            &Url::parse(&url).unwrap(),
            FedexGrant::ClientCredentials,
            "demo-fedex-key",
            &secret,
            None,
            chrono::Utc::now(),
        )
        .await
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidInput, "{url}: {e:?}");
        assert!(e.message.contains("http"), "{}", e.message);
    }
    assert!(
        listener.accept().is_err(),
        "a plain-http request to localhost was sent"
    );
    assert_eq!(
        proxy.seen().len(),
        proxied_before,
        "a plain-http request was sent to the proxy"
    );
}
