//! Authorization-code injection (RFC 9700 §4.5), against the emulator: an attacker who
//! learns the victim's `state` (a local user reading the browser's process arguments, a
//! page that sees the redirect) completes the victim's pending authorization with a
//! code the attacker obtained for their own business. Without PKCE the attacker's
//! business lands in the victim's Authdeck; with PKCE (the default) the token exchange
//! is refused, because the victim's verifier does not match the attacker's code.

mod common;

use authdeck_core::authorize::{self, APP_REDIRECT_URI};
use authdeck_core::manager::{NewClient, PendingAuthorization};
use authdeck_core::model::{Connection, Provider};
use authdeck_core::providers::flowaccount;
use authdeck_core::{ClientSecret, ErrorCode, Result};
use authdeck_emulator::{EmulatorConfig, FaBusiness, FaUser};
use common::Fixture;

const ATTACKER: &str = "mallory@example.com";
const ATTACKER_PASSWORD: &str = "mallory-pass";
const ATTACKER_BUSINESS: &str = "FA-666666";

/// The demo emulator plus the attacker's own FlowAccount account and business.
async fn fixture() -> Fixture {
    let mut config = EmulatorConfig::demo();
    config.flowaccount.users.push(FaUser {
        username: ATTACKER.into(),
        password: ATTACKER_PASSWORD.into(),
        businesses: vec![FaBusiness {
            support_code: ATTACKER_BUSINESS.into(),
            name: "Mallory Holdings".into(),
        }],
    });
    Fixture::with_emulator(config).await
}

/// The victim's FlowAccount client, with PKCE as given (`None`: the default).
async fn add_victim_client(f: &Fixture, pkce: Option<bool>) {
    let mut fa = NewClient::new("victim-fa", Provider::FlowAccount, "demo-flowaccount");
    fa.client_secret = Some(ClientSecret::new("demo-flowaccount-secret"));
    fa.authorize_url = Some(f.emulator.flowaccount_authorize_url());
    fa.token_url = Some(f.emulator.flowaccount_token_url());
    if let Some(pkce) = pkce {
        fa.pkce = pkce;
    }
    let client = f.manager.add_client(fa).await.unwrap();
    assert_eq!(client.options.pkce, pkce.unwrap_or(true));
}

fn query(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The attack: the victim has started connecting (the browser shows FlowAccount's login
/// page); the attacker signs in at FlowAccount as themselves, for the same client and
/// redirect URI (both public), picks their own business, keeps the code, and sends the
/// victim's app a redirect with the victim's state and that code.
/// `attacker_challenge`: whether the attacker's own authorization carried a PKCE
/// challenge (of a verifier only the attacker knows).
async fn inject(
    f: &Fixture,
    attacker_challenge: bool,
) -> (PendingAuthorization, Result<Connection>) {
    let victim = f.manager.begin_flowaccount("victim-fa").await.unwrap();
    let victim_state = query(&victim.authorize_url, "state").expect("state in the URL");

    let attacker_verifier = authorize::random_token();
    let challenge = attacker_challenge.then(|| authorize::pkce_challenge(&attacker_verifier));
    let attacker_url = flowaccount::authorize_url(
        &f.emulator.flowaccount_authorize_url().parse().unwrap(),
        "demo-flowaccount",
        APP_REDIRECT_URI,
        "the-attackers-own-state",
        challenge.as_deref(),
    );
    let attacker_redirect = authdeck_emulator::approve(
        attacker_url.as_str(),
        ATTACKER,
        ATTACKER_PASSWORD,
        ATTACKER_BUSINESS,
    )
    .await
    .expect("the attacker authorizes their own business");
    let attacker_code = query(&attacker_redirect, "code").expect("the attacker's code");

    let mut forged = url::Url::parse(APP_REDIRECT_URI).unwrap();
    forged
        .query_pairs_mut()
        .append_pair("code", &attacker_code)
        .append_pair("state", &victim_state);
    let result = f.manager.complete_callback(forged.as_str()).await;
    (victim, result)
}

/// The risk PKCE removes, documented: with PKCE switched off, the injection works.
#[tokio::test]
async fn without_pkce_an_injected_code_connects_the_attackers_business() {
    let f = fixture().await;
    add_victim_client(&f, Some(false)).await;
    let (victim, result) = inject(&f, false).await;
    let conn = result.expect("without PKCE nothing tells the codes apart");
    assert_eq!(conn.support_code.as_deref(), Some(ATTACKER_BUSINESS));
    assert_eq!(conn.client_name, "victim-fa");
    let stored: Vec<_> = f
        .manager
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.support_code)
        .collect();
    assert_eq!(
        stored,
        [Some(ATTACKER_BUSINESS.to_string())],
        "the attacker's business sits in the victim's store"
    );
    assert_eq!(
        f.manager
            .authorization_outcome(&victim.id)
            .await
            .unwrap()
            .as_deref(),
        Some("ok")
    );
}

/// The default: the exchange carries the victim's verifier, which does not belong to
/// the attacker's code (issued with no challenge, or with the attacker's own), so
/// FlowAccount refuses it; nothing is stored and the authorization records why it ended.
#[tokio::test]
async fn with_the_default_pkce_an_injected_code_is_refused() {
    let f = fixture().await;
    add_victim_client(&f, None).await;
    for attacker_challenge in [false, true] {
        let (victim, result) = inject(&f, attacker_challenge).await;
        assert!(
            victim.authorize_url.contains("code_challenge_method=S256"),
            "PKCE is on by default"
        );
        let err = result.expect_err("the injected code must not connect anything");
        assert_eq!(
            err.code,
            ErrorCode::ReauthorizationRequired,
            "invalid_grant from the token endpoint: {err:?}"
        );
        assert!(
            err.detail
                .as_deref()
                .unwrap_or("")
                .contains("invalid_grant"),
            "{err:?}"
        );
        assert!(
            f.manager.list().await.unwrap().is_empty(),
            "nothing is stored"
        );
        assert_eq!(
            f.manager
                .authorization_outcome(&victim.id)
                .await
                .unwrap()
                .as_deref(),
            Some(err.code.as_str()),
            "the pending authorization records how it ended"
        );
        let last = f.manager.history(None, 1).await.unwrap();
        assert_eq!(last[0].event, "connect");
        assert_eq!(last[0].outcome, err.code.as_str());
        // The victim's verifier is gone with the attempt (asked through the seam, so
        // on every backend; `victim.id` is the state hash it is kept under).
        assert!(f
            .store
            .take_pkce_verifier(&victim.id)
            .await
            .unwrap()
            .is_none());
    }
    let stats = f.emulator.control().stats().flowaccount;
    assert_eq!(stats.codes_exchanged, 0, "{stats:?}");
    assert_eq!(stats.invalid_grant, 2, "{stats:?}");
}

/// The genuine flow with the default still connects (the emulator checks S256).
#[tokio::test]
async fn with_the_default_pkce_the_genuine_redirect_connects() {
    let f = fixture().await;
    add_victim_client(&f, None).await;
    let redirect = f.authorize_flowaccount("victim-fa", "FA-100001").await;
    let conn = f.manager.complete_callback(&redirect).await.unwrap();
    assert_eq!(conn.support_code.as_deref(), Some("FA-100001"));
}
