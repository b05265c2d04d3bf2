//! `connect fedex | iot | flowaccount` and `callback`.

use authdeck_emulator::FaClient;

use crate::common::*;

#[test]
fn connect_fedex_with_each_grant() {
    let fx = Fixture::new();
    fx.add_fedex_client("fedex");
    let child_key = fx.child_key();

    // client_credentials (the default grant), human output.
    let plain = fx.ok(&["connect", "fedex", "--client", "fedex"]);
    assert!(
        plain.stdout.starts_with("Connected FedEx API fedex (id "),
        "{}",
        plain.describe()
    );
    assert!(
        plain.stdout.contains("expires in 59m"),
        "{}",
        plain.describe()
    );

    // csp_credentials: child secret on stdin.
    let csp = fx
        .run_stdin(
            &[
                "--json",
                "connect",
                "fedex",
                "--client",
                "fedex",
                "--grant",
                "csp-credentials",
                "--child-key",
                &child_key,
                "--child-secret-stdin",
            ],
            &format!("{}\n", fx.child_secret()),
        )
        .assert_code(0)
        .json();
    assert_eq!(csp["grant"], "csp_credentials");
    assert_eq!(csp["child_key"], child_key.as_str());
    assert_eq!(csp["provider"], "fedex");
    assert_eq!(csp["status"], "active");

    // client_pc_credentials: child secret from the environment.
    let pc = fx
        .run_env(
            &[
                "--json",
                "connect",
                "fedex",
                "--client",
                "fedex",
                "--grant",
                "client-pc-credentials",
                "--child-key",
                &child_key,
            ],
            &[("AUTHDECK_CHILD_SECRET", &fx.child_secret())],
        )
        .assert_code(0)
        .json();
    assert_eq!(pc["grant"], "client_pc_credentials");

    // The emulator issued three tokens, one per grant.
    let stats = fx.control_stats();
    assert_eq!(stats["fedex"]["tokens_issued"], 3, "{stats}");
    assert_eq!(stats["fedex"]["client_credentials"], 1, "{stats}");
    assert_eq!(stats["fedex"]["csp_credentials"], 1, "{stats}");
    assert_eq!(stats["fedex"]["client_pc_credentials"], 1, "{stats}");

    let list = fx.json(&["list"]);
    let grants: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["grant"].as_str().unwrap())
        .collect();
    assert_eq!(list.as_array().unwrap().len(), 3, "{list}");
    for g in [
        "client_credentials",
        "csp_credentials",
        "client_pc_credentials",
    ] {
        assert!(grants.contains(&g), "{g} in {grants:?}");
    }

    // The child secret sits in the keyring next to the tokens.
    use authdeck_core::store::SecretStore;
    let child = fx
        .keyring()
        .get(&format!("connection/{}/child_secret", id_of(&pc)))
        .unwrap()
        .expect("child secret stored");
    assert_eq!(child.expose(), fx.child_secret());

    // A grant that needs child credentials, without them: usage error, nothing stored.
    fx.run(&[
        "connect",
        "fedex",
        "--client",
        "fedex",
        "--grant",
        "csp-credentials",
    ])
    .assert_one_line_error(2, "invalid_input");
    // A wrong child secret: the provider refuses (exit 1, invalid_client).
    fx.run_env(
        &[
            "connect",
            "fedex",
            "--client",
            "fedex",
            "--grant",
            "csp-credentials",
            "--child-key",
            &child_key,
        ],
        &[("AUTHDECK_CHILD_SECRET", "wrong-child-secret")],
    )
    .assert_one_line_error(1, "invalid_client");
    assert_eq!(fx.json(&["list"]).as_array().unwrap().len(), 3);
}

/// `--grant csp_credentials` as FedEx's documentation spells it, and the kebab-case
/// form: both name the same grant; output always uses FedEx's spelling.
#[test]
fn fedex_grants_in_fedexs_spelling_and_in_kebab_case() {
    let fx = Fixture::new();
    fx.add_fedex_client("fedex");
    let child_key = fx.child_key();
    let secret = fx.child_secret();
    let connect = |grant: &str| {
        fx.run_env(
            &[
                "connect",
                "fedex",
                "--client",
                "fedex",
                "--grant",
                grant,
                "--child-key",
                &child_key,
            ],
            &[("AUTHDECK_CHILD_SECRET", &secret)],
        )
    };

    let underscore = connect("csp_credentials");
    underscore.assert_code(0);
    let id = underscore
        .stdout
        .split("(id ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .expect("the connection id in the output")
        .to_owned();
    // The same grant spelled the other way reconnects the same project, not a second one.
    connect("csp-credentials").assert_code(0);
    let list = fx.json(&["list"]);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["grant"], "csp_credentials");
    assert_eq!(id_of(&list[0]), id);
    let stats = fx.control_stats();
    assert_eq!(stats["fedex"]["csp_credentials"], 2, "{stats}");

    connect("client-pc-credentials").assert_code(0);
    fx.ok(&[
        "connect",
        "fedex",
        "--client",
        "fedex",
        "--grant",
        "client_credentials",
    ]);
    let stats = fx.control_stats();
    assert_eq!(stats["fedex"]["client_pc_credentials"], 1, "{stats}");
    assert_eq!(stats["fedex"]["client_credentials"], 1, "{stats}");

    // Human output, help and errors show FedEx's spelling only.
    let status = fx.ok(&["status", &id]);
    assert!(
        status
            .stdout
            .lines()
            .any(|l| l.starts_with("Grant") && l.trim_end().ends_with("csp_credentials")),
        "{}",
        status.describe()
    );
    let help = fx.ok(&["connect", "fedex", "--help"]);
    assert!(
        help.stdout
            .contains("client_credentials, csp_credentials, client_pc_credentials"),
        "{}",
        help.describe()
    );
    assert!(
        !help.stdout.contains("csp-credentials"),
        "{}",
        help.describe()
    );
    let wrong = fx.run(&["connect", "fedex", "--client", "fedex", "--grant", "csp"]);
    wrong.assert_code(2);
    assert!(
        wrong.stderr.contains("csp_credentials"),
        "{}",
        wrong.describe()
    );
    assert!(
        !wrong.stderr.contains("csp-credentials"),
        "{}",
        wrong.describe()
    );
}

#[test]
fn connect_iot_with_password_on_stdin() {
    let fx = Fixture::new();
    fx.add_iot_client("iot");
    let conn = fx.connect_iot("iot");
    assert_eq!(conn["provider"], "iot");
    assert_eq!(conn["username"], fx.iot_user().as_str());
    assert_eq!(conn["user_id"], fx.config.iot.users[0].user_id.as_str());
    assert_eq!(conn["status"], "active");
    let left = conn["access_expires_in"].as_i64().unwrap();
    assert!((86_000..=86_400).contains(&left), "one-day JWT: {left}");
    assert_eq!(fx.control().iot_sessions().len(), 1);

    // A wrong password: invalid_credentials, one line, nothing connected.
    let user = fx.iot_user();
    fx.run_stdin(
        &[
            "connect",
            "iot",
            "--client",
            "iot",
            "--username",
            &user,
            "--password-stdin",
        ],
        "not-the-password\n",
    )
    .assert_one_line_error(1, "invalid_credentials");
    // No password at all: usage error.
    fx.run(&["connect", "iot", "--client", "iot", "--username", &user])
        .assert_one_line_error(2, "invalid_input");
    // The password from the environment works too.
    let again = fx
        .run_env(
            &[
                "--json",
                "connect",
                "iot",
                "--client",
                "iot",
                "--username",
                &user,
            ],
            &[("AUTHDECK_PASSWORD", &fx.iot_password())],
        )
        .assert_code(0)
        .json();
    assert_eq!(
        id_of(&again),
        id_of(&conn),
        "same account: reconnected in place"
    );
    assert_eq!(fx.json(&["list"]).as_array().unwrap().len(), 1);
}

#[test]
fn connect_flowaccount_with_the_custom_scheme_and_callback() {
    let fx = Fixture::new();
    fx.add_flowaccount_client("fa", None);
    let url = fx.begin_flowaccount("fa");
    let parsed = url::Url::parse(&url).unwrap();
    let q = |k: &str| query_param(&url, k);
    assert_eq!(q("response_type").as_deref(), Some("code"));
    assert_eq!(q("client_id").as_deref(), Some("demo-flowaccount"));
    assert_eq!(
        q("redirect_uri").as_deref(),
        Some("com.authdeck.desktop:/oauth/callback")
    );
    assert!(
        q("scope").unwrap().contains("offline_access"),
        "{}",
        parsed.path()
    );
    assert!(q("state").unwrap().len() >= 22, "state has >= 128 bits");

    let redirect = fx.approve(&url, FA_BUSINESS);
    let run = fx.ok(&["callback", &redirect]);
    assert!(
        // Titled by the company the probe after connect found; supportCode beside it.
        run.stdout
            .contains("Connected FlowAccount บริษัท สยามเทรดดิ้ง จำกัด (FA-100001)"),
        "{}",
        run.describe()
    );
    let status = fx.json(&["status", "FA-100001"]);
    assert_eq!(status["support_code"], FA_BUSINESS);
    assert_eq!(status["provider"], "flowaccount");
    assert_eq!(status["status"], "active");
    assert!(status["refresh_expires_in"].as_i64().unwrap() > 23 * 3600);

    // The same redirect again is a replay: rejected, recorded, nothing changes.
    let replay = fx.run(&["callback", &redirect]);
    replay.assert_one_line_error(1, "invalid_callback");
    // The redirect through stdin (`callback -`) for a second business.
    let url2 = fx.begin_flowaccount("fa");
    let redirect2 = fx.approve(&url2, FA_BUSINESS_2);
    fx.run_stdin(&["callback", "-"], &format!("{redirect2}\n"))
        .assert_code(0);
    let labels: Vec<String> = fx
        .json(&["list"])
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["support_code"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(labels, [FA_BUSINESS, FA_BUSINESS_2]);

    // A denial comes back as access_denied.
    let url3 = fx.begin_flowaccount("fa");
    let denied = fx
        .rt
        .block_on(authdeck_emulator::deny(&url3, FA_USER, FA_PASSWORD))
        .unwrap();
    fx.run(&["callback", &denied])
        .assert_one_line_error(1, "access_denied");
}

#[test]
fn connect_flowaccount_over_a_loopback_redirect() {
    let fx = Fixture::new();
    let port = free_port();
    let redirect_uri = format!("http://127.0.0.1:{port}/callback");
    fx.control().register_flowaccount_client(FaClient {
        client_id: fx.config.flowaccount.clients[0].client_id.clone(),
        client_secret: fx.fa_secret(),
        redirect_uris: vec![redirect_uri.clone()],
    });
    let added = fx.add_flowaccount_client("fa-loop", Some(&redirect_uri));
    assert!(added.stdout.contains(&redirect_uri), "{}", added.describe());

    let result = fx.connect_flowaccount_loopback("fa-loop", FA_BUSINESS);
    let run = &result.run;
    assert_eq!(
        query_param(&result.authorize_url, "redirect_uri").as_deref(),
        Some(redirect_uri.as_str())
    );
    assert!(
        result.redirect.starts_with(&redirect_uri),
        "redirect {}",
        query_free(&result.redirect)
    );
    assert_eq!(result.page_status, 200, "page: {}", result.page);
    assert!(
        result
            .page
            .contains("Connected FlowAccount business FA-100001"),
        "the browser is told: {}",
        result.page
    );
    assert_eq!(run.code, Some(0), "{}", run.describe());
    assert!(
        // Titled by the company the probe after connect found; supportCode beside it.
        run.stdout
            .contains("Connected FlowAccount บริษัท สยามเทรดดิ้ง จำกัด (FA-100001)"),
        "{}",
        run.describe()
    );
    let status = fx.json(&["status", "FA-100001"]);
    assert_eq!(status["support_code"], FA_BUSINESS);
    assert_eq!(status["client_name"], "fa-loop");
}

/// `--json` promises machine-readable stdout: every document on it must be JSON, in
/// the loopback mode too (the authorize URL first, then the connection).
#[test]
fn connect_flowaccount_json_output_is_json_in_both_modes() {
    let fx = Fixture::new();
    fx.add_flowaccount_client("fa", None);
    let pending = fx.json(&["connect", "flowaccount", "--client", "fa", "--no-browser"]);
    let url = pending["authorize_url"].as_str().expect("authorize_url");
    assert_eq!(
        pending["redirect_uri"],
        "com.authdeck.desktop:/oauth/callback"
    );
    assert!(pending["expires_at"].is_string(), "{pending}");
    let redirect = fx.approve(url, FA_BUSINESS);
    let conn = fx.json(&["callback", &redirect]);
    assert_eq!(conn["support_code"], FA_BUSINESS);

    let port = free_port();
    let redirect_uri = format!("http://127.0.0.1:{port}/callback");
    fx.control().register_flowaccount_client(FaClient {
        client_id: fx.config.flowaccount.clients[0].client_id.clone(),
        client_secret: fx.fa_secret(),
        redirect_uris: vec![redirect_uri.clone()],
    });
    fx.add_flowaccount_client("fa-loop", Some(&redirect_uri));
    let result = fx.connect_flowaccount_loopback_with("fa-loop", FA_BUSINESS_2, true);
    assert_eq!(result.run.code, Some(0), "{}", result.run.describe());
    let docs: Result<Vec<serde_json::Value>, _> =
        serde_json::Deserializer::from_str(&result.run.stdout)
            .into_iter::<serde_json::Value>()
            .collect();
    let docs = docs.unwrap_or_else(|e| {
        panic!(
            "--json stdout of a loopback connect is not all JSON ({e}): {}",
            result.run.describe()
        )
    });
    assert_eq!(
        docs.last().unwrap()["support_code"],
        FA_BUSINESS_2,
        "{docs:?}"
    );
}
