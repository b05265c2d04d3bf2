//! `connect flowaccount` over a loopback redirect, with somebody else talking to the
//! port first; and PKCE on by default for `client add flowaccount`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use authdeck_emulator::FaClient;

use crate::common::*;

/// A loopback client `name` on `host` (`127.0.0.1` or `[::1]`), registered at the
/// emulator too; its redirect URI.
fn loopback_client(fx: &Fixture, name: &str, host: &str) -> String {
    let ip = host.trim_matches(['[', ']']);
    let port = std::net::TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let redirect_uri = format!("http://{host}:{port}/callback");
    fx.control().register_flowaccount_client(FaClient {
        client_id: fx.config.flowaccount.clients[0].client_id.clone(),
        client_secret: fx.fa_secret(),
        redirect_uris: vec![redirect_uri.clone()],
    });
    fx.add_flowaccount_client(name, Some(&redirect_uri));
    redirect_uri
}

/// One raw request to `addr`, the whole answer.
fn raw(addr: &str, request: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("the CLI listens");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn host_port(redirect_uri: &str) -> String {
    let u = url::Url::parse(redirect_uri).unwrap();
    format!("{}:{}", u.host_str().unwrap(), u.port().unwrap())
}

fn assert_connected(fx: &Fixture, result: &LoopbackResult, business: &str) {
    assert_eq!(result.page_status, 200, "page: {}", result.page);
    assert!(
        result
            .page
            .contains(&format!("Connected FlowAccount business {business}")),
        "{}",
        result.page
    );
    assert_eq!(result.run.code, Some(0), "{}", result.run.describe());
    assert_eq!(fx.json(&["status", business])["support_code"], business);
}

#[test]
fn client_add_flowaccount_sends_pkce_unless_no_pkce() {
    let fx = Fixture::new();
    fx.add_flowaccount_client("fa", None);
    let url = fx.begin_flowaccount("fa");
    assert_eq!(
        query_param(&url, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert!(query_param(&url, "code_challenge").is_some());
    // The genuine flow still connects (the emulator checks the verifier).
    let redirect = fx.approve(&url, FA_BUSINESS);
    assert_eq!(
        fx.json(&["callback", &redirect])["support_code"],
        FA_BUSINESS
    );

    // The explicit opt-out.
    let authorize = fx.emulator.flowaccount_authorize_url();
    let token = fx.emulator.flowaccount_token_url();
    let client_id = fx.config.flowaccount.clients[0].client_id.clone();
    let add = |name: &str, extra: &[&str]| {
        let mut args = vec![
            "--json",
            "client",
            "add",
            "flowaccount",
            "--name",
            name,
            "--client-id",
            &client_id,
            "--client-secret-stdin",
            "--authorize-url",
            &authorize,
            "--token-url",
            &token,
        ];
        args.extend_from_slice(extra);
        fx.run_stdin(&args, &format!("{}\n", fx.fa_secret()))
    };
    let plain = add("fa-plain", &["--no-pkce"]).assert_code(0).json();
    assert_eq!(plain["options"]["pkce"], false);
    let url = fx.begin_flowaccount("fa-plain");
    assert_eq!(query_param(&url, "code_challenge"), None);
    // The old spelling still works and means the default.
    let old = add("fa-old", &["--pkce"]).assert_code(0).json();
    assert_eq!(old["options"]["pkce"], true);
    add("fa-both", &["--pkce", "--no-pkce"]).assert_code(2);
    let clients = fx.json(&["client", "list"]);
    let fa = clients
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "fa")
        .unwrap();
    assert_eq!(fa["options"]["pkce"], true, "on by default");

    // Not a FlowAccount switch.
    let key = fx.fedex_key();
    let token = fx.emulator.fedex_token_url();
    fx.run_env(
        &[
            "client",
            "add",
            "fedex",
            "--name",
            "ship",
            "--client-id",
            &key,
            "--token-url",
            &token,
            "--no-pkce",
        ],
        &[("AUTHDECK_CLIENT_SECRET", &fx.fedex_secret())],
    )
    .assert_one_line_error(2, "invalid_input");
}

#[test]
fn a_forged_request_then_the_genuine_redirect_completes() {
    let fx = Fixture::new();
    let redirect_uri = loopback_client(&fx, "fa-loop", "127.0.0.1");
    let hp = host_port(&redirect_uri);
    let result = fx.connect_flowaccount_loopback_probed("fa-loop", FA_BUSINESS, false, |url| {
        let state = query_param(url, "state").unwrap();
        for target in [
            "/callback?code=forged-code&state=forged-state".to_string(),
            "/favicon.ico".to_string(),
            format!("/elsewhere?code=forged-code&state={state}"),
        ] {
            let answer = raw(&hp, &format!("GET {target} HTTP/1.1\r\nHost: {hp}\r\n\r\n"));
            assert!(answer.starts_with("HTTP/1.1 400 "), "{target} → {answer}");
        }
    });
    assert_connected(&fx, &result, FA_BUSINESS);
    assert_eq!(fx.json(&["list"]).as_array().unwrap().len(), 1);
}

#[test]
fn a_wrong_host_header_is_refused_and_the_flow_continues() {
    let fx = Fixture::new();
    let redirect_uri = loopback_client(&fx, "fa-loop", "127.0.0.1");
    let hp = host_port(&redirect_uri);
    let result = fx.connect_flowaccount_loopback_probed("fa-loop", FA_BUSINESS, false, |url| {
        // The right state, from a page on a rebinding name.
        let state = query_param(url, "state").unwrap();
        let answer = raw(
            &hp,
            &format!(
                "GET /callback?code=c&state={state} HTTP/1.1\r\nHost: rebind.example:{}\r\n\r\n",
                hp.rsplit(':').next().unwrap()
            ),
        );
        assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    });
    assert_connected(&fx, &result, FA_BUSINESS);
}

#[test]
fn a_slow_client_holding_a_connection_does_not_block_the_redirect() {
    let fx = Fixture::new();
    let redirect_uri = loopback_client(&fx, "fa-loop", "127.0.0.1");
    let hp = host_port(&redirect_uri);
    let mut slow = None;
    let result = fx.connect_flowaccount_loopback_probed("fa-loop", FA_BUSINESS_2, false, |_| {
        let mut s = TcpStream::connect(&hp).unwrap();
        s.write_all(b"GET /callback?sta").unwrap();
        slow = Some((s, std::time::Instant::now()));
    });
    let (mut slow, since) = slow.unwrap();
    let held = since.elapsed();
    assert_connected(&fx, &result, FA_BUSINESS_2);
    // The redirect was served while the slow client still had its connection (a
    // listener serving one connection at a time would first wait out the slow one's
    // limit, 5 s here, 10 s before): it was closed unanswered when the flow ended.
    assert!(
        held < Duration::from_secs(5),
        "the redirect waited for the slow client ({held:?})"
    );
    slow.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut answer = String::new();
    let _ = slow.read_to_string(&mut answer);
    assert_eq!(
        answer, "",
        "the slow client was answered before the redirect"
    );
}

#[test]
fn an_ipv6_loopback_redirect_completes() {
    assert!(
        std::net::TcpListener::bind("[::1]:0").is_ok(),
        "this test needs IPv6 loopback ([::1]); `ip -6 addr show lo` shows none on this machine"
    );
    let fx = Fixture::new();
    let redirect_uri = loopback_client(&fx, "fa-v6", "[::1]");
    let result = fx.connect_flowaccount_loopback("fa-v6", FA_BUSINESS);
    assert!(
        result.redirect.starts_with(&redirect_uri),
        "{}",
        query_free(&result.redirect)
    );
    assert_connected(&fx, &result, FA_BUSINESS);
}
