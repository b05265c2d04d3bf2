//! Proxies and plain HTTP from the command line: with every proxy variable pointing at a
//! listening fake proxy, requests to the (loopback) emulator still go straight to it;
//! plain-http endpoints other than IP-literal loopback are refused.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;

/// A TCP listener on 127.0.0.1 that records the start of whatever connects to it.
fn fake_proxy() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut buf = [0u8; 4096];
            let n = stream.read(&mut buf).unwrap_or(0);
            record
                .lock()
                .unwrap()
                .push(String::from_utf8_lossy(&buf[..n]).into_owned());
            let _ = stream.write_all(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n");
        }
    });
    (url, seen)
}

#[test]
fn loopback_endpoints_are_never_proxied() {
    let fx = Fixture::new();
    fx.add_fedex_client("fedex");
    fx.add_iot_client("iot");
    let (proxy, seen) = fake_proxy();
    let envs: Vec<(&str, &str)> = [
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ]
    .into_iter()
    .map(|name| (name, proxy.as_str()))
    .collect();
    let unset = ["no_proxy", "NO_PROXY"];
    let fedex = fx.run_full(
        &["--json", "connect", "fedex", "--client", "fedex"],
        None,
        &envs,
        &unset,
    );
    fedex.assert_code(0);
    let iot = fx.run_full(
        &[
            "--json",
            "connect",
            "iot",
            "--client",
            "iot",
            "--username",
            &fx.iot_user(),
            "--password-stdin",
        ],
        Some(&format!("{}\n", fx.iot_password())),
        &envs,
        &unset,
    );
    iot.assert_code(0);
    fx.run_full(&["refresh", "--all"], None, &envs, &unset)
        .assert_code(0);
    assert_eq!(
        seen.lock().unwrap().clone(),
        Vec::<String>::new(),
        "the proxy received requests meant for 127.0.0.1"
    );
}

#[test]
fn plain_http_endpoints_other_than_ip_loopback_are_refused() {
    let fx = Fixture::new();
    let port = free_port();
    for url in [
        format!("http://localhost:{port}/oauth/token"),
        "http://10.0.0.1/oauth/token".to_string(),
    ] {
        let run = fx.run_env(
            &[
                "--json",
                "client",
                "add",
                "fedex",
                "--name",
                "plain",
                "--client-id",
                "k",
                "--token-url",
                &url,
            ],
            &[("AUTHDECK_CLIENT_SECRET", "s")],
        );
        run.assert_code(2);
        assert_eq!(
            run.json_error()["code"],
            "invalid_input",
            "{}",
            run.describe()
        );
    }
    let clients = fx.json(&["client", "list"]);
    assert_eq!(clients.as_array().map(Vec::len), Some(0), "{clients}");
}
