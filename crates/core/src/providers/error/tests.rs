//! Unit tests of the error mapping: each answer shape, classification, messages, and
//! the redaction of what providers echo back.

use super::*;
use crate::providers::redact::is_bidi_control;
use crate::secret::{
    AuthorizationCode, ChildSecret, ClientSecret, Password, PkceVerifier, RefreshToken,
};
use chrono::TimeZone;
use std::time::Duration;

fn fa(op: Operation, status: u16, body: &str) -> Error {
    from_response(
        Provider::FlowAccount,
        op,
        status,
        None,
        body.as_bytes(),
        &[],
    )
}

#[test]
fn rfc6749_invalid_grant_on_refresh_needs_reauthorization() {
    let e = fa(
        Operation::Refresh,
        400,
        r#"{"error":"invalid_grant","error_description":"refresh token expired"}"#,
    );
    assert_eq!(e.code, ErrorCode::ReauthorizationRequired);
    assert_eq!(
        e.message,
        "FlowAccount no longer accepts this connection's refresh token: connect the business again."
    );
    let d = e.detail.unwrap();
    assert!(d.contains("HTTP 400"), "{d}");
    assert!(d.contains("error=invalid_grant"), "{d}");
    assert!(d.contains("refresh token expired"), "{d}");
}

#[test]
fn invalid_grant_on_code_exchange_says_connect_again() {
    let e = fa(
        Operation::AuthorizationCode,
        400,
        r#"{"error":"invalid_grant"}"#,
    );
    assert_eq!(e.code, ErrorCode::ReauthorizationRequired);
    assert!(e.message.contains("authorization code"), "{}", e.message);
}

#[test]
fn client_errors_map_to_invalid_client() {
    for err in ["invalid_client", "unauthorized_client"] {
        let e = fa(
            Operation::Refresh,
            401,
            &format!(r#"{{"error":"{err}","error_uri":"https://x.test/e"}}"#),
        );
        assert_eq!(e.code, ErrorCode::InvalidClient, "{err}");
        assert!(e.detail.unwrap().contains("see https://x.test/e"));
    }
}

#[test]
fn access_denied_and_other_oauth_errors() {
    assert_eq!(
        fa(
            Operation::AuthorizationCode,
            400,
            r#"{"error":"access_denied"}"#
        )
        .code,
        ErrorCode::AccessDenied
    );
    let e = fa(
        Operation::AuthorizationCode,
        400,
        r#"{"error":"invalid_scope"}"#,
    );
    assert_eq!(e.code, ErrorCode::ProviderError);
    assert!(e.message.contains("invalid_scope"), "{}", e.message);
    assert!(e.message.starts_with("FlowAccount"), "{}", e.message);
}

#[test]
fn server_errors_are_temporary() {
    for status in [500, 502, 503, 504] {
        let e = fa(Operation::Refresh, status, "");
        assert_eq!(e.code, ErrorCode::ProviderUnavailable);
        assert!(e.is_temporary());
        assert!(e.detail.unwrap().contains("empty body"));
    }
}

#[test]
fn html_body_is_excerpted_without_tags() {
    let html = format!(
        "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1>{}</body></html>",
        "x".repeat(1000)
    );
    let e = fa(Operation::Refresh, 502, &html);
    assert_eq!(e.code, ErrorCode::ProviderUnavailable);
    let d = e.detail.unwrap();
    assert!(d.contains("not JSON: (HTML) 502 Bad Gateway"), "{d}");
    assert!(d.chars().count() < 260, "{}", d.chars().count());
    let e = fa(Operation::Refresh, 404, "<html>Not Found</html>");
    assert_eq!(e.code, ErrorCode::ProviderError);
}

#[test]
fn empty_4xx_body_is_a_provider_error() {
    let e = fa(Operation::AuthorizationCode, 400, "  ");
    assert_eq!(e.code, ErrorCode::ProviderError);
    assert_eq!(e.detail.as_deref(), Some("HTTP 400; empty body"));
}

#[test]
fn rate_limited_with_seconds() {
    let e = from_response(
        Provider::Fedex,
        Operation::ClientCredentials,
        429,
        Some("17"),
        b"",
        &[],
    );
    assert_eq!(e.code, ErrorCode::RateLimited);
    assert_eq!(e.retry_after, Some(Duration::from_secs(17)));
    assert!(e.message.contains("wait 17 seconds"), "{}", e.message);
}

#[test]
fn rate_limited_with_http_date() {
    let now = Utc.with_ymd_and_hms(2015, 10, 21, 7, 28, 0).unwrap();
    assert_eq!(
        parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
        Some(Duration::from_secs(30))
    );
    assert_eq!(
        parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
        Some(Duration::ZERO)
    );
    assert_eq!(parse_retry_after("soon", now), None);
    // Through from_response, against the real clock: a date 2 minutes ahead.
    let at = (Utc::now() + chrono::Duration::seconds(120))
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    let e = from_response(
        Provider::Iot,
        Operation::Refresh,
        429,
        Some(&at),
        b"{}",
        &[],
    );
    assert_eq!(e.code, ErrorCode::RateLimited);
    let secs = e.retry_after.unwrap().as_secs();
    assert!((100..=120).contains(&secs), "{secs}");
    // No header: still rate limited, no retry_after.
    let e = from_response(Provider::Iot, Operation::Refresh, 429, None, b"", &[]);
    assert_eq!(e.retry_after, None);
    assert!(e.message.contains("wait a minute"));
}

#[test]
fn redirects_say_check_the_url() {
    let e = fa(Operation::Refresh, 302, "");
    assert_eq!(e.code, ErrorCode::InvalidResponse);
    assert!(e.message.contains("check the URL"), "{}", e.message);
}

#[test]
fn fedex_not_authorized_is_invalid_client_with_code_in_detail() {
    let body = r#"{"transactionId":"624deea6-b709-470c-8c39-4b5511281492",
        "errors":[{"code":"NOT.AUTHORIZED.ERROR","message":"The given client credentials were not valid. Please modify your request and try again."}]}"#;
    let e = from_response(
        Provider::Fedex,
        Operation::ClientCredentials,
        401,
        None,
        body.as_bytes(),
        &[],
    );
    assert_eq!(e.code, ErrorCode::InvalidClient);
    assert!(e.message.starts_with("FedEx rejected"), "{}", e.message);
    let d = e.detail.unwrap();
    assert!(d.contains("FedEx NOT.AUTHORIZED.ERROR"), "{d}");
    assert!(d.contains("transactionId=624deea6"), "{d}");
}

/// A wrong child secret (csp / parent-child grant) is not "check the client's ID and
/// secret": the child credentials are the connection's, so the advice names them first.
#[test]
fn fedex_rejected_child_credentials_name_the_child_key_and_secret() {
    let body = r#"{"transactionId":"t-1","errors":[{"code":"NOT.AUTHORIZED.ERROR","message":"The given client credentials were not valid."}]}"#;
    let child = from_response(
        Provider::Fedex,
        Operation::ChildCredentials,
        401,
        None,
        body.as_bytes(),
        &[],
    );
    assert_eq!(child.code, ErrorCode::InvalidClient);
    assert!(
        child.message.contains("child key and child secret"),
        "{}",
        child.message
    );
    let plain = from_response(
        Provider::Fedex,
        Operation::ClientCredentials,
        401,
        None,
        body.as_bytes(),
        &[],
    );
    assert!(!plain.message.contains("child"), "{}", plain.message);
    assert!(
        plain.message.contains("client settings"),
        "{}",
        plain.message
    );
}

#[test]
fn fedex_server_codes_are_unavailable_even_on_4xx() {
    for code in ["INTERNAL.SERVER.ERROR", "SERVICE.UNAVAILABLE.ERROR"] {
        let body = format!(r#"{{"errors":[{{"code":"{code}","message":"try later"}}]}}"#);
        let e = from_response(
            Provider::Fedex,
            Operation::ClientCredentials,
            400,
            None,
            body.as_bytes(),
            &[],
        );
        assert_eq!(e.code, ErrorCode::ProviderUnavailable, "{code}");
    }
}

#[test]
fn fedex_parameter_list_values_never_appear() {
    let body = r#"{"transactionId":"t-1","errors":[{"code":"BAD.REQUEST.ERROR",
        "message":"Invalid field value PARAM-VALUE-CANARY in request",
        "parameterList":[{"key":"child_Key","value":"PARAM-VALUE-CANARY"}]}]}"#;
    let e = from_response(
        Provider::Fedex,
        Operation::ClientCredentials,
        400,
        None,
        body.as_bytes(),
        &[],
    );
    assert_eq!(e.code, ErrorCode::ProviderError);
    let all = format!("{} {}", e.message, e.detail.clone().unwrap());
    assert!(!all.contains("PARAM-VALUE-CANARY"), "{all}");
    assert!(all.contains("parameters: child_Key"), "{all}");
    assert!(all.contains("BAD.REQUEST.ERROR"), "{all}");
}

#[test]
fn echoed_secrets_are_redacted_everywhere() {
    let canary = ClientSecret::new("canary+secret/7f3a");
    let refresh = RefreshToken::new("rt-canary-1234");
    let sent: [&dyn AnySecret; 2] = [&canary, &refresh];
    let bodies = [
        format!(
            r#"{{"error":"invalid_request","error_description":"bad secret {}"}}"#,
            canary.expose()
        ),
        format!(
            "<html>client_secret={}&refresh_token={}</html>",
            "canary%2Bsecret%2F7f3a",
            refresh.expose()
        ),
        format!(
            r#"{{"unexpected":"{}","nested":{{"x":"{}"}}}}"#,
            canary.expose(),
            refresh.expose()
        ),
        format!("plain text {} {}", canary.expose(), refresh.expose()),
    ];
    for (i, body) in bodies.iter().enumerate() {
        let e = from_response(
            Provider::FlowAccount,
            Operation::Refresh,
            400,
            None,
            body.as_bytes(),
            &sent,
        );
        let all = format!("{} {:?}", e.message, e.detail);
        assert!(!all.contains("canary"), "body {i}: {all}");
        assert!(all.contains("[redacted]"), "body {i}: {all}");
    }
}

/// No control character (ESC, BEL, C1…) and no bidi control in `text`.
fn assert_clean(text: &str) {
    let bad: Vec<char> = text
        .chars()
        .filter(|c| c.is_control() || is_bidi_control(*c))
        .collect();
    assert!(bad.is_empty(), "{bad:?} in {text:?}");
}

/// message and detail of an error, for assertions.
fn shown(e: &Error) -> String {
    format!("{} | {}", e.message, e.detail.as_deref().unwrap_or(""))
}

#[test]
fn an_iot_error_echoing_the_password_or_refresh_token_is_redacted_in_the_message() {
    let password = Password::new("CANARY-pass-e604");
    let refresh = RefreshToken::new("CANARY-rt-91aa");
    for (op, secret) in [
        (Operation::PasswordLogin, &password as &dyn AnySecret),
        (Operation::Refresh, &refresh),
    ] {
        let body = serde_json::json!({
            "status": 403,
            "error": format!("\u{1b}]2;x\u{7} got {}", secret.expose()),
        })
        .to_string();
        let e = from_response(Provider::Iot, op, 403, None, body.as_bytes(), &[secret]);
        assert_eq!(e.code, ErrorCode::ProviderError, "{op}");
        let all = shown(&e);
        assert!(!all.contains("CANARY"), "{op}: {all}");
        assert_clean(&all);
        // The provider's text is still there, redacted, and the OSC sequence is
        // gone whole (not just its ESC).
        assert!(e.message.contains("got [redacted]"), "{op}: {}", e.message);
        assert!(!all.contains("]2;x"), "{op}: {all}");
    }
}

#[test]
fn flowaccount_errors_echoing_the_secret_code_or_verifier_are_redacted() {
    let client_secret = ClientSecret::new("CANARY-fa-secret+/=2b9d");
    let code = AuthorizationCode::new("CANARY-code-77e1");
    let verifier = PkceVerifier::new("CANARY-verifier-0c3f-0123456789abcdef");
    let sent: [&dyn AnySecret; 3] = [&client_secret, &code, &verifier];
    for s in sent {
        let v = s.expose();
        let bodies = [
            // The provider's error code itself (it reaches `message`).
            serde_json::json!({"error": format!("bad_{v}")}).to_string(),
            serde_json::json!({"error": "invalid_request",
                "error_description": format!("\u{1b}[31m{v}\u{1b}[0m is wrong"),
                "error_uri": format!("https://x.test/e?c={v}")})
            .to_string(),
            // Form-encoded echo in a non-JSON page, and an escape inside the secret.
            format!(
                "<html>code={}&x={}</html>",
                url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>(),
                v.replacen('-', "-\u{1b}[0m", 1)
            ),
        ];
        for op in [Operation::AuthorizationCode, Operation::Refresh] {
            for status in [400, 401, 403] {
                for body in &bodies {
                    let e = from_response(
                        Provider::FlowAccount,
                        op,
                        status,
                        None,
                        body.as_bytes(),
                        &sent,
                    );
                    let all = shown(&e);
                    assert!(!all.contains("CANARY"), "{op} {status}: {all}");
                    assert_clean(&all);
                }
            }
        }
    }
    // The message names the (redacted) provider code.
    let body = format!(r#"{{"error":"bad_{}"}}"#, code.expose());
    let e = from_response(
        Provider::FlowAccount,
        Operation::AuthorizationCode,
        400,
        None,
        body.as_bytes(),
        &sent,
    );
    assert!(e.message.contains("bad_[redacted]"), "{}", e.message);
}

#[test]
fn fedex_errors_echoing_the_secret_or_child_secret_are_redacted() {
    let client_secret = ClientSecret::new("CANARY-fedex-secret-7f3a");
    let child_secret = ChildSecret::new("CANARY-child-secret-51c8");
    let sent: [&dyn AnySecret; 2] = [&client_secret, &child_secret];
    for s in sent {
        let v = s.expose();
        let body = serde_json::json!({
            "transactionId": format!("\u{9b}31m{v}"),
            "errors": [{
                "code": format!("BAD.{v}.ERROR"),
                "message": format!("\u{202e}child_secret {v} rejected\u{7}"),
                "parameterList": [{"key": format!("k\u{1b}]0;{v}\u{7}"), "value": "x"}],
            }],
        })
        .to_string();
        for status in [400, 401, 403] {
            let e = from_response(
                Provider::Fedex,
                Operation::ClientCredentials,
                status,
                None,
                body.as_bytes(),
                &sent,
            );
            let all = shown(&e);
            assert!(!all.contains("CANARY"), "{status}: {all}");
            assert_clean(&all);
            assert!(all.contains("BAD.[redacted].ERROR"), "{status}: {all}");
        }
    }
}

#[test]
fn unusable_token_answers_clean_their_field_names() {
    let secret = ClientSecret::new("CANARY-secret-abcd");
    let body = format!(
        r#"{{"\u001b]2;owned\u0007{}":1,"token_type":"bearer"}}"#,
        secret.expose()
    );
    let e = invalid_token_response(Provider::FlowAccount, 200, body.as_bytes(), &[&secret]);
    let all = shown(&e);
    assert!(!all.contains("CANARY") && !all.contains("owned"), "{all}");
    assert_clean(&all);
    assert!(all.contains("token_type"), "{all}");
}

#[test]
fn a_secret_straddling_the_cut_is_redacted_not_truncated() {
    let s = RefreshToken::new("SECRETSECRETSECRET");
    let body = format!("{}{}", "a".repeat(195), s.expose());
    let e = from_response(
        Provider::FlowAccount,
        Operation::Refresh,
        400,
        None,
        body.as_bytes(),
        &[&s],
    );
    let d = e.detail.unwrap();
    assert!(!d.contains("SECRET"), "{d}");
}

#[test]
fn unknown_json_shapes_blank_token_fields() {
    let body = r#"{"weird":true,"result":"eyJ.revoked.token","refresh_token":"rt-x"}"#;
    let e = from_response(
        Provider::Iot,
        Operation::Logout,
        418,
        None,
        body.as_bytes(),
        &[],
    );
    let d = e.detail.unwrap();
    assert!(!d.contains("eyJ.revoked"), "{d}");
    assert!(!d.contains("rt-x"), "{d}");
    assert!(d.contains("weird"), "{d}");
}

#[test]
fn iot_shapes() {
    let iot = |op, status, body: &str| {
        from_response(Provider::Iot, op, status, None, body.as_bytes(), &[])
    };
    // Refresh: 400/401 mean the session is gone.
    for status in [400, 401] {
        let e = iot(
            Operation::Refresh,
            status,
            r#"{"status":401,"message":"invalid token"}"#,
        );
        assert_eq!(e.code, ErrorCode::ReauthorizationRequired);
        assert_eq!(
            e.message,
            "The IoT platform no longer accepts this connection's refresh token: log in again."
        );
        assert!(e.detail.unwrap().contains("invalid token"));
    }
    // Login: 401 is a wrong password, unless it is about the client.
    let e = iot(
        Operation::PasswordLogin,
        401,
        r#"{"status":401,"error":"Incorrect username or password"}"#,
    );
    assert_eq!(e.code, ErrorCode::InvalidCredentials);
    assert!(e.detail.unwrap().contains("Incorrect username"));
    let e = iot(
        Operation::PasswordLogin,
        401,
        r#"{"status":401,"message":"Invalid client id"}"#,
    );
    assert_eq!(e.code, ErrorCode::InvalidClient);
    let e = iot(
        Operation::PasswordLogin,
        400,
        r#"{"error":"invalid_grant"}"#,
    );
    assert_eq!(e.code, ErrorCode::InvalidCredentials);
    let e = iot(
        Operation::PasswordLogin,
        400,
        r#"{"status":400,"message":"username required"}"#,
    );
    assert_eq!(e.code, ErrorCode::ProviderError);
    // Logout: the token is already dead.
    for status in [400, 401] {
        let e = iot(
            Operation::Logout,
            status,
            r#"{"status":401,"error":"token revoked","result":null}"#,
        );
        assert_eq!(e.code, ErrorCode::ReauthorizationRequired);
    }
    assert_eq!(
        iot(Operation::Logout, 403, "{}").code,
        ErrorCode::ProviderError
    );
}

#[test]
fn embedded_errors_in_2xx_bodies() {
    use serde_json::json;
    assert_eq!(
        embedded_error_status(&json!({"status":401,"error":"x"})),
        Some(401)
    );
    assert_eq!(embedded_error_status(&json!({"status":"500"})), Some(500));
    assert_eq!(embedded_error_status(&json!({"error":"bad"})), Some(400));
    assert_eq!(
        embedded_error_status(&json!({"status":200,"error":null})),
        None
    );
    assert_eq!(
        embedded_error_status(&json!({"status":200,"error":""})),
        None
    );
    assert_eq!(embedded_error_status(&json!({"access_token":"a"})), None);
}

#[test]
fn invalid_token_responses() {
    let e = invalid_token_response(Provider::FlowAccount, 200, b"<html>hi</html>", &[]);
    assert_eq!(e.code, ErrorCode::InvalidResponse);
    assert!(e.detail.unwrap().contains("not JSON"));
    let e = invalid_token_response(
        Provider::FlowAccount,
        200,
        br#"{"token_type":"bearer","refresh_token":"rt-leak"}"#,
        &[],
    );
    let d = e.detail.unwrap();
    assert!(
        d.contains("fields: [refresh_token, token_type]")
            || d.contains("fields: [token_type, refresh_token]"),
        "{d}"
    );
    assert!(!d.contains("rt-leak"));
    let e = invalid_token_response(Provider::Fedex, 200, b"", &[]);
    assert!(e.detail.unwrap().contains("empty body"));
}

#[test]
fn token_shaped_text_is_blanked_in_excerpts() {
    let e = invalid_token_response(
        Provider::FlowAccount,
        200,
        br#"{"access_token": "live-token-abc", "refresh_token":"rt-live","#,
        &[],
    );
    let d = e.detail.unwrap();
    assert!(
        !d.contains("live-token-abc") && !d.contains("rt-live"),
        "{d}"
    );
    assert!(d.contains("access_token"), "{d}");
    let body = "<html>token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln here; access_token=opaque123&x=1</html>";
    let e = fa(Operation::Refresh, 500, body);
    let d = e.detail.unwrap();
    assert!(!d.contains("eyJhbGci") && !d.contains("opaque123"), "{d}");
    assert!(d.contains("x=1"), "{d}");
}

/// A real reqwest failure against a loopback listener that misbehaves as `serve` does.
async fn transport_failure(
    serve: impl FnOnce(std::net::TcpStream) + Send + 'static,
    read_json: bool,
) -> reqwest::Error {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/token", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        if let Ok((stream, _)) = listener.accept() {
            serve(stream);
        }
    });
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let resp = match client.post(&url).body("x").send().await {
        Ok(resp) => resp,
        Err(e) => return e,
    };
    if read_json {
        resp.json::<Value>().await.unwrap_err()
    } else {
        resp.bytes().await.unwrap_err()
    }
}

/// Reads the request head, then answers `reply` (or nothing) and closes or holds.
fn answer(reply: &'static [u8], hold: bool) -> impl FnOnce(std::net::TcpStream) + Send {
    move |mut s| {
        use std::io::{Read, Write};
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf);
        let _ = s.write_all(reply);
        if hold {
            std::thread::sleep(Duration::from_secs(3));
        }
    }
}

fn transport_shown(e: &reqwest::Error) -> (ErrorCode, String, String) {
    let err = from_transport(Provider::FlowAccount, e);
    let detail = err.detail.clone().unwrap_or_default();
    let kind = detail.split(':').next().unwrap_or_default().to_string();
    (err.code, err.message, kind)
}

#[tokio::test]
async fn each_transport_failure_has_its_code_message_and_kind() {
    // Nothing listens: connection refused.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let refused = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("http://127.0.0.1:{port}/token"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        transport_shown(&refused),
        (
            ErrorCode::ProviderUnavailable,
            "FlowAccount could not be reached (connection failed): check the network and try again."
                .into(),
            "connect error".into()
        )
    );

    // Accepted, never answered.
    let hung = transport_failure(answer(b"", true), false).await;
    assert_eq!(
        transport_shown(&hung),
        (
            ErrorCode::ProviderUnavailable,
            "FlowAccount did not answer in time (timeout): check the network and try again.".into(),
            "timeout".into()
        )
    );

    // Accepted, closed without an answer.
    let closed = transport_failure(answer(b"", false), false).await;
    assert_eq!(
        transport_shown(&closed),
        (
            ErrorCode::ProviderUnavailable,
            "FlowAccount closed the connection before answering (connection reset): check the network and try again."
                .into(),
            "request error".into()
        )
    );

    // A body cut short of its Content-Length: reqwest reports a failed body read as a
    // decode error, and decode is checked before a reset.
    let cut = transport_failure(
        answer(
            b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{\"a\":",
            false,
        ),
        false,
    )
    .await;
    assert_eq!(
        transport_shown(&cut),
        (
            ErrorCode::InvalidResponse,
            "FlowAccount sent an answer that could not be decoded.".into(),
            "decode error".into()
        )
    );

    // A complete answer that is not the JSON asked for.
    let garbled = transport_failure(
        answer(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nnope", false),
        true,
    )
    .await;
    assert_eq!(
        transport_shown(&garbled),
        (
            ErrorCode::InvalidResponse,
            "FlowAccount sent an answer that could not be decoded.".into(),
            "decode error".into()
        )
    );

    // A request that cannot even be built.
    let unbuildable = reqwest::Client::new()
        .post("not a url")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        transport_shown(&unbuildable),
        (
            ErrorCode::Internal,
            "FlowAccount could not be asked (bad request setup).".into(),
            "transport error".into()
        )
    );
}
