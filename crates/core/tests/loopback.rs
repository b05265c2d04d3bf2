//! The loopback redirect listener against the emulator: forged, stray, slow and
//! rebinding requests are answered 400 and never end the flow; the genuine redirect
//! completes it, on 127.0.0.1 and on [::1]; the app's flows stop their listener when
//! the authorization ends.

mod common;

use std::sync::Arc;
use std::time::Duration;

use authdeck_core::loopback::{LoopbackFlows, LoopbackListener};
use authdeck_core::manager::{NewClient, PendingAuthorization};
use authdeck_core::model::{Connection, Provider};
use authdeck_core::{ClientSecret, ErrorCode, Result};
use authdeck_emulator::FaClient;
use common::Fixture;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A bounded wait for something that should happen (never a speed assertion).
const WAIT: Duration = Duration::from_secs(20);
/// Longer than the listener's look at how the authorization ended (every second).
const OUTCOME_POLL_SPAN: Duration = Duration::from_secs(2);

fn free_port(ip: &str) -> u16 {
    let l = std::net::TcpListener::bind((ip, 0)).unwrap();
    l.local_addr().unwrap().port()
}

/// A FlowAccount client redirecting to `http://{host}:{free port}/callback`,
/// registered at the emulator too; returns the redirect URI.
async fn loopback_client(f: &Fixture, name: &str, host: &str) -> String {
    let ip = host.trim_matches(['[', ']']);
    let redirect_uri = format!("http://{host}:{}/callback", free_port(ip));
    f.emulator.control().register_flowaccount_client(FaClient {
        client_id: "demo-flowaccount".into(),
        client_secret: "demo-flowaccount-secret".into(),
        redirect_uris: vec![redirect_uri.clone()],
    });
    let mut fa = NewClient::new(name, Provider::FlowAccount, "demo-flowaccount");
    fa.client_secret = Some(ClientSecret::new("demo-flowaccount-secret"));
    fa.authorize_url = Some(f.emulator.flowaccount_authorize_url());
    fa.token_url = Some(f.emulator.flowaccount_token_url());
    fa.redirect_uri = Some(redirect_uri.clone());
    f.manager.add_client(fa).await.unwrap();
    redirect_uri
}

fn query(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// What the browser does with the redirect: a GET, status and body.
async fn browser_get(url: &str) -> (u16, String) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(WAIT)
        .build()
        .unwrap();
    let resp = http.get(url).send().await.expect("the listener answers");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

/// One raw HTTP exchange: `request` as given, the whole answer back.
async fn raw(addr: std::net::SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = String::new();
    tokio::time::timeout(WAIT, s.read_to_string(&mut out))
        .await
        .expect("the listener answers and closes")
        .unwrap();
    out
}

/// Bind, begin, and complete in the background (as the CLI does).
async fn listen(
    f: &Fixture,
    client: &str,
    redirect_uri: &str,
) -> (
    PendingAuthorization,
    std::net::SocketAddr,
    tokio::task::JoinHandle<Result<Connection>>,
) {
    let listener = LoopbackListener::bind(redirect_uri).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let pending = f.manager.begin_flowaccount(client).await.unwrap();
    let (manager, p) = (f.manager.clone(), pending.clone());
    let task = tokio::spawn(async move { listener.complete(&manager, &p).await });
    (pending, addr, task)
}

async fn finished(task: tokio::task::JoinHandle<Result<Connection>>) -> Result<Connection> {
    tokio::time::timeout(WAIT, task)
        .await
        .expect("the listener finished")
        .unwrap()
}

#[tokio::test]
async fn a_forged_request_then_the_genuine_redirect_completes() {
    let f = Fixture::new().await;
    let redirect_uri = loopback_client(&f, "fa-loop", "127.0.0.1").await;
    let (pending, addr, task) = listen(&f, "fa-loop", &redirect_uri).await;
    let state = query(&pending.authorize_url, "state").unwrap();

    // A forged redirect (someone else's state), a stray request, and one without state:
    // each is answered 400, and the flow goes on.
    for url in [
        format!("{redirect_uri}?code=forged-code&state=forged-state"),
        format!("http://{addr}/favicon.ico"),
        format!("{redirect_uri}?code=forged-code"),
        // The right state at another path is not the redirect either.
        format!("http://{addr}/other?code=c&state={state}"),
    ] {
        let (status, body) = browser_get(&url).await;
        assert_eq!(status, 400, "{body}");
        assert!(body.starts_with("Authdeck:"), "a short plain page: {body}");
        assert!(!task.is_finished(), "a forged request ended the flow");
    }
    assert!(f.manager.list().await.unwrap().is_empty());

    let redirect = authdeck_emulator::approve(
        &pending.authorize_url,
        "demo@example.com",
        "demo",
        "FA-100001",
    )
    .await
    .unwrap();
    let (status, page) = browser_get(&redirect).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("Connected FlowAccount business FA-100001"),
        "{page}"
    );
    let conn = finished(task).await.unwrap();
    assert_eq!(conn.support_code.as_deref(), Some("FA-100001"));
    // The listener is gone with the flow.
    assert!(TcpStream::connect(addr).await.is_err(), "port closed");
}

#[tokio::test]
async fn a_slow_client_does_not_hold_up_the_genuine_redirect() {
    let f = Fixture::new().await;
    let redirect_uri = loopback_client(&f, "fa-loop", "127.0.0.1").await;
    let (pending, addr, task) = listen(&f, "fa-loop", &redirect_uri).await;

    // Connections that send half a request head, or nothing, and keep it open.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /callback?state=").await.unwrap();
    let _silent = TcpStream::connect(addr).await.unwrap();

    let redirect = authdeck_emulator::approve(
        &pending.authorize_url,
        "demo@example.com",
        "demo",
        "FA-100002",
    )
    .await
    .unwrap();
    let (status, page) = browser_get(&redirect).await;
    assert_eq!(status, 200, "{page}");
    let conn = finished(task).await.unwrap();
    assert_eq!(conn.support_code.as_deref(), Some("FA-100002"));
    // The slow client was still being waited for (its own 5 s limit had not run out,
    // or it would have had its 400): the genuine redirect did not queue behind it. The
    // end of the flow closed it unanswered.
    let mut answer = String::new();
    tokio::time::timeout(WAIT, slow.read_to_string(&mut answer))
        .await
        .expect("closed with the flow")
        .unwrap();
    assert_eq!(
        answer, "",
        "the slow client had been answered before the genuine one"
    );
}

#[tokio::test]
async fn a_slow_client_is_cut_off_with_a_400() {
    let f = Fixture::new().await;
    let redirect_uri = loopback_client(&f, "fa-loop", "127.0.0.1").await;
    let (_pending, addr, task) = listen(&f, "fa-loop", &redirect_uri).await;
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /callback HTTP/1.1\r\n").await.unwrap();
    let mut out = String::new();
    tokio::time::timeout(WAIT, slow.read_to_string(&mut out))
        .await
        .expect("the listener gives up on a head that never ends")
        .unwrap();
    assert!(out.starts_with("HTTP/1.1 400 "), "{out}");
    assert!(!task.is_finished());
    task.abort();
}

#[tokio::test]
async fn a_wrong_host_header_is_refused_and_the_flow_continues() {
    let f = Fixture::new().await;
    let redirect_uri = loopback_client(&f, "fa-loop", "127.0.0.1").await;
    let (pending, addr, task) = listen(&f, "fa-loop", &redirect_uri).await;
    let redirect = authdeck_emulator::approve(
        &pending.authorize_url,
        "demo@example.com",
        "demo",
        "FA-100001",
    )
    .await
    .unwrap();
    let target = &redirect[redirect.find("/callback").unwrap()..];
    // DNS rebinding: the genuine redirect's path and query, sent by a page on another
    // name that resolves to 127.0.0.1. Also: the right address on another port, no
    // Host at all, two Hosts, and an absolute-form target.
    let port = addr.port();
    for request in [
        format!("GET {target} HTTP/1.1\r\nHost: rebind.example:{port}\r\n\r\n"),
        format!("GET {target} HTTP/1.1\r\nHost: localhost:{port}\r\n\r\n"),
        format!(
            "GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\r\n",
            port + 1
        ),
        format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"),
        format!("GET {target} HTTP/1.0\r\n\r\n"),
        format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nHost: evil.example\r\n\r\n"),
        format!("GET http://127.0.0.1:{port}{target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"),
        format!("POST {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\n\r\n"),
    ] {
        let answer = raw(addr, &request).await;
        assert!(
            answer.starts_with("HTTP/1.1 400 "),
            "{request:?} → {answer}"
        );
        assert!(!task.is_finished(), "{request:?} ended the flow");
    }
    assert!(f.manager.list().await.unwrap().is_empty());
    assert_eq!(
        f.manager.authorization_outcome(&pending.id).await.unwrap(),
        None,
        "still pending"
    );
    // The same redirect with the right Host completes.
    let answer = raw(
        addr,
        &format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    let conn = finished(task).await.unwrap();
    assert_eq!(conn.support_code.as_deref(), Some("FA-100001"));
}

/// The right state with a bad code goes to `complete_callback` once: the state is then
/// used, so that ends the flow (with the provider's refusal).
#[tokio::test]
async fn the_right_state_with_a_bad_code_ends_the_flow_once() {
    let f = Fixture::new().await;
    let redirect_uri = loopback_client(&f, "fa-loop", "127.0.0.1").await;
    let (pending, _addr, task) = listen(&f, "fa-loop", &redirect_uri).await;
    let state = query(&pending.authorize_url, "state").unwrap();
    let (status, page) = browser_get(&format!(
        "{redirect_uri}?code=not-a-real-code&state={state}"
    ))
    .await;
    assert_eq!(status, 200);
    assert!(page.contains("Not connected"), "{page}");
    let err = finished(task).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::ReauthorizationRequired, "{err:?}");
    assert_eq!(
        f.manager
            .authorization_outcome(&pending.id)
            .await
            .unwrap()
            .as_deref(),
        Some(err.code.as_str())
    );
}

#[tokio::test]
async fn an_ipv6_loopback_redirect_completes_on_ipv6() {
    assert!(
        std::net::TcpListener::bind("[::1]:0").is_ok(),
        "this test needs IPv6 loopback ([::1]); `ip -6 addr show lo` shows none on this machine"
    );
    let f = Fixture::new().await;
    let redirect_uri = loopback_client(&f, "fa-v6", "[::1]").await;
    let (pending, addr, task) = listen(&f, "fa-v6", &redirect_uri).await;
    assert!(
        addr.is_ipv6(),
        "bound exactly the redirect URI's address: {addr}"
    );
    assert_eq!(
        query(&pending.authorize_url, "redirect_uri").as_deref(),
        Some(redirect_uri.as_str())
    );
    // Nothing listens on IPv4 for it.
    assert!(TcpStream::connect(("127.0.0.1", addr.port()))
        .await
        .is_err());
    let redirect = authdeck_emulator::approve(
        &pending.authorize_url,
        "demo@example.com",
        "demo",
        "FA-100001",
    )
    .await
    .unwrap();
    assert!(redirect.starts_with("http://[::1]:"), "{redirect}");
    let (status, page) = browser_get(&redirect).await;
    assert_eq!(status, 200, "{page}");
    let conn = finished(task).await.unwrap();
    assert_eq!(conn.support_code.as_deref(), Some("FA-100001"));
}

#[tokio::test]
async fn the_listener_stops_when_the_authorization_expires() {
    let f = Fixture::new().await;
    let redirect_uri = loopback_client(&f, "fa-loop", "127.0.0.1").await;
    let listener = LoopbackListener::bind(&redirect_uri).await.unwrap();
    let mut pending = f.manager.begin_flowaccount("fa-loop").await.unwrap();
    pending.expires_at = f.manager.now() + chrono::Duration::milliseconds(300);
    let err = tokio::time::timeout(WAIT, listener.complete(&f.manager, &pending))
        .await
        .expect("the wait ends at expiry")
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidCallback);
    assert!(err.message.contains("expired"), "{}", err.message);
}

#[tokio::test]
async fn the_listener_stops_when_the_redirect_is_used_elsewhere() {
    let f = Fixture::new().await;
    let redirect_uri = loopback_client(&f, "fa-loop", "127.0.0.1").await;
    let (pending, addr, task) = listen(&f, "fa-loop", &redirect_uri).await;
    let redirect = authdeck_emulator::approve(
        &pending.authorize_url,
        "demo@example.com",
        "demo",
        "FA-100001",
    )
    .await
    .unwrap();
    // Pasted by hand instead (the browser could not reach the port), with a token
    // exchange slow enough that the listener looks while it is under way: it waits for
    // the outcome rather than reporting the redirect merely taken.
    f.emulator
        .control()
        .set_latency(OUTCOME_POLL_SPAN + Duration::from_millis(500));
    f.manager.complete_callback(&redirect).await.unwrap();
    let err = finished(task).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidCallback);
    assert!(
        err.message.contains("completed elsewhere"),
        "{}",
        err.message
    );
    assert!(TcpStream::connect(addr).await.is_err(), "port closed");
}

// ---- the desktop app's flows -------------------------------------------------------

#[tokio::test]
async fn app_flows_complete_a_loopback_redirect_and_report_it() {
    let f = Fixture::new().await;
    let redirect_uri = loopback_client(&f, "fa-loop", "127.0.0.1").await;
    let flows = LoopbackFlows::default();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let pending = flows
        .begin(&f.manager, "fa-loop", move |result| {
            let _ = tx.send(result);
        })
        .await
        .unwrap();
    assert_eq!(flows.listening().await, vec![pending.id.clone()]);
    // A forged request first: ignored.
    let (status, _) = browser_get(&format!("{redirect_uri}?code=x&state=forged")).await;
    assert_eq!(status, 400);
    let redirect = authdeck_emulator::approve(
        &pending.authorize_url,
        "demo@example.com",
        "demo",
        "FA-100001",
    )
    .await
    .unwrap();
    let (status, page) = browser_get(&redirect).await;
    assert_eq!(status, 200, "{page}");
    let conn = tokio::time::timeout(WAIT, rx)
        .await
        .expect("reported")
        .unwrap()
        .unwrap();
    assert_eq!(conn.support_code.as_deref(), Some("FA-100001"));
    let deadline = tokio::time::Instant::now() + WAIT;
    while !flows.listening().await.is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "the listener stops");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn app_flows_cancel_stops_the_listener_and_rejects_a_late_redirect() {
    let f = Fixture::new().await;
    let redirect_uri = loopback_client(&f, "fa-loop", "127.0.0.1").await;
    let flows = LoopbackFlows::default();
    let reported = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let r = reported.clone();
    let pending = flows
        .begin(&f.manager, "fa-loop", move |_| {
            r.store(true, std::sync::atomic::Ordering::SeqCst)
        })
        .await
        .unwrap();
    let port: u16 = url::Url::parse(&redirect_uri).unwrap().port().unwrap();
    assert!(TcpStream::connect(("127.0.0.1", port)).await.is_ok());
    assert!(flows.cancel(&f.manager, &pending.id).await.unwrap());
    assert!(flows.listening().await.is_empty());
    assert!(
        TcpStream::connect(("127.0.0.1", port)).await.is_err(),
        "the port is closed once cancelled"
    );
    assert_eq!(
        f.manager
            .authorization_outcome(&pending.id)
            .await
            .unwrap()
            .as_deref(),
        Some("cancelled")
    );
    let redirect = authdeck_emulator::approve(
        &pending.authorize_url,
        "demo@example.com",
        "demo",
        "FA-100001",
    )
    .await
    .unwrap();
    let err = f.manager.complete_callback(&redirect).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidCallback);
    assert!(f.manager.list().await.unwrap().is_empty());
    assert!(!reported.load(std::sync::atomic::Ordering::SeqCst));
}

/// Connecting again on the same address replaces the earlier listener (and cancels its
/// authorization) instead of failing on a busy port.
#[tokio::test]
async fn app_flows_a_second_begin_replaces_the_first() {
    let f = Fixture::new().await;
    let redirect_uri = loopback_client(&f, "fa-loop", "127.0.0.1").await;
    let flows = LoopbackFlows::default();
    let first = flows.begin(&f.manager, "fa-loop", |_| {}).await.unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let second = flows
        .begin(&f.manager, "fa-loop", move |result| {
            let _ = tx.send(result);
        })
        .await
        .unwrap();
    assert_eq!(flows.listening().await, vec![second.id.clone()]);
    assert_eq!(
        f.manager
            .authorization_outcome(&first.id)
            .await
            .unwrap()
            .as_deref(),
        Some("cancelled")
    );
    let redirect = authdeck_emulator::approve(
        &second.authorize_url,
        "demo@example.com",
        "demo",
        "FA-100002",
    )
    .await
    .unwrap();
    assert!(redirect.starts_with(&redirect_uri));
    browser_get(&redirect).await;
    let conn = tokio::time::timeout(WAIT, rx)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(conn.support_code.as_deref(), Some("FA-100002"));
}

/// A custom-scheme client: no listener, the deep link completes it as before.
#[tokio::test]
async fn app_flows_start_no_listener_for_the_app_scheme() {
    let f = Fixture::new().await;
    f.add_demo_clients().await;
    let flows = LoopbackFlows::default();
    let pending = flows.begin(&f.manager, "fa", |_| {}).await.unwrap();
    assert_eq!(pending.redirect_uri, "com.authdeck.desktop:/oauth/callback");
    assert!(flows.listening().await.is_empty());
}
