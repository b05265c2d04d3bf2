//! `client add | list | remove` and their validation.

use crate::common::*;

#[test]
fn client_add_list_and_remove() {
    let fx = Fixture::new();
    let added = fx.add_flowaccount_client("fa", None);
    assert!(
        added
            .stdout
            .contains("com.authdeck.desktop:/oauth/callback"),
        "a FlowAccount add says which redirect URI to register: {}",
        added.describe()
    );
    fx.add_fedex_client("fedex");
    fx.add_iot_client("iot");

    // The table names every client with its token URL.
    let table = fx.ok(&["client", "list"]);
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "header + 3 clients: {}", table.describe());
    assert!(lines[0].starts_with("NAME"), "{}", table.describe());
    for (name, url) in [
        ("fa", fx.emulator.flowaccount_token_url()),
        ("fedex", fx.emulator.fedex_token_url()),
        ("iot", format!("{}/oauth/token", fx.emulator.iot_auth_url())),
    ] {
        let row = lines
            .iter()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no row for {name}: {}", table.describe()));
        assert!(row.contains(&url), "row of {name} shows {url}: {row}");
        assert!(
            row.contains("custom"),
            "custom URLs make a custom environment: {row}"
        );
    }

    // JSON: every client, has_secret, no secret anywhere.
    let list = fx.ok(&["--json", "client", "list"]);
    let clients = list.json();
    let clients = clients.as_array().expect("an array");
    assert_eq!(clients.len(), 3);
    let by_name = |n: &str| clients.iter().find(|c| c["name"] == n).unwrap().clone();
    assert_eq!(by_name("fa")["provider"], "flowaccount");
    assert_eq!(by_name("fa")["has_secret"], true);
    assert_eq!(
        by_name("fa")["options"]["redirect_uri"],
        "com.authdeck.desktop:/oauth/callback"
    );
    assert_eq!(by_name("fedex")["provider"], "fedex");
    assert_eq!(by_name("fedex")["has_secret"], true);
    assert_eq!(by_name("fedex")["client_id"], fx.fedex_key());
    assert_eq!(by_name("iot")["provider"], "iot");
    assert_eq!(by_name("iot")["has_secret"], false);
    assert_eq!(
        by_name("iot")["endpoints"]["logout_url"],
        format!("{}/user/logout", fx.emulator.iot_auth_url())
    );
    for secret in [fx.fa_secret(), fx.fedex_secret()] {
        assert!(
            !list.stdout.contains(&secret),
            "client list --json shows a secret"
        );
        assert!(
            !table.stdout.contains(&secret),
            "client list shows a secret"
        );
    }

    // The secrets are in the keyring, under the client's id.
    let keyring = fx.keyring();
    use authdeck_core::store::SecretStore;
    let fedex_id = by_name("fedex")["id"].as_str().unwrap().to_owned();
    let stored = keyring
        .get(&format!("client/{fedex_id}/secret"))
        .unwrap()
        .expect("the FedEx secret is in the keyring");
    assert_eq!(stored.expose(), fx.fedex_secret());

    // A name is unique.
    let dup = fx.run_env(
        &[
            "client",
            "add",
            "fedex",
            "--name",
            "fedex",
            "--client-id",
            "x",
            "--token-url",
            &fx.emulator.fedex_token_url(),
        ],
        &[("AUTHDECK_CLIENT_SECRET", "another")],
    );
    dup.assert_one_line_error(1, "already_exists");

    // Remove refuses while a connection exists, works once it is gone.
    let conn = fx.connect_fedex_plain("fedex");
    let refused = fx.run(&["client", "remove", "fedex"]);
    refused.assert_one_line_error(2, "invalid_input");
    assert!(
        refused.stderr.contains("connection"),
        "{}",
        refused.describe()
    );
    assert_eq!(fx.json(&["client", "list"]).as_array().unwrap().len(), 3);

    fx.ok(&["logout", &id_of(&conn)]);
    let removed = fx.ok(&["client", "remove", "fedex"]);
    assert!(
        removed.stdout.contains("Removed client"),
        "{}",
        removed.describe()
    );
    let names: Vec<String> = fx
        .json(&["client", "list"])
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["fa", "iot"]);
    assert!(
        keyring
            .get(&format!("client/{fedex_id}/secret"))
            .unwrap()
            .is_none(),
        "removing a client deletes its secret from the keyring"
    );
    fx.run(&["client", "remove", "fedex"])
        .assert_one_line_error(1, "not_found");
}

#[test]
fn client_add_validation_errors_exit_2_and_store_nothing() {
    let fx = Fixture::new();
    let token = fx.emulator.fedex_token_url();
    let authorize = fx.emulator.flowaccount_authorize_url();
    let fa_token = fx.emulator.flowaccount_token_url();

    // Plain http to a non-loopback host.
    let http = fx.run_env(
        &[
            "client",
            "add",
            "fedex",
            "--name",
            "f",
            "--client-id",
            "k",
            "--token-url",
            "http://apis.example.com/oauth/token",
        ],
        &[("AUTHDECK_CLIENT_SECRET", "s3cret-value")],
    );
    http.assert_one_line_error(2, "invalid_input");
    assert!(http.stderr.contains("https"), "{}", http.describe());

    // FlowAccount is confidential: no secret, no client.
    fx.run(&[
        "client",
        "add",
        "flowaccount",
        "--name",
        "fa",
        "--client-id",
        "demo-flowaccount",
        "--authorize-url",
        &authorize,
        "--token-url",
        &fa_token,
    ])
    .assert_one_line_error(2, "invalid_input");

    // --client-secret-stdin with nothing on stdin.
    fx.run(&[
        "client",
        "add",
        "fedex",
        "--name",
        "f",
        "--client-id",
        "k",
        "--client-secret-stdin",
        "--token-url",
        &token,
    ])
    .assert_one_line_error(2, "invalid_input");

    // The IoT platform takes no client secret.
    fx.run_env(
        &[
            "client",
            "add",
            "iot",
            "--name",
            "i",
            "--client-id",
            "c",
            "--auth-url",
            &fx.emulator.iot_auth_url(),
        ],
        &[("AUTHDECK_CLIENT_SECRET", "nope")],
    )
    .assert_one_line_error(2, "invalid_input");

    // A redirect URI that is neither the app scheme nor loopback.
    let bad_redirect = fx.run_stdin(
        &[
            "client",
            "add",
            "flowaccount",
            "--name",
            "fa",
            "--client-id",
            "demo-flowaccount",
            "--client-secret-stdin",
            "--authorize-url",
            &authorize,
            "--token-url",
            &fa_token,
            "--redirect-uri",
            "https://evil.example/callback",
        ],
        "secret\n",
    );
    bad_redirect.assert_one_line_error(2, "invalid_input");

    // Unknown provider and missing flags are clap usage errors.
    let unknown = fx.run(&[
        "client",
        "add",
        "dropbox",
        "--name",
        "d",
        "--client-id",
        "x",
    ]);
    unknown.assert_code(2);
    assert!(unknown.stderr.contains("dropbox"), "{}", unknown.describe());
    fx.run(&["client", "add", "fedex", "--name", "f"])
        .assert_code(2);

    // Nothing was stored.
    let list = fx.ok(&["--json", "client", "list"]).json();
    assert_eq!(list, serde_json::json!([]), "no client after failed adds");
}
