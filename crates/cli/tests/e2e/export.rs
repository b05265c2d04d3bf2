//! `authdeckctl list --csv`: the support staff's export (no secrets).

use crate::common::*;

#[test]
fn list_csv_has_the_documented_columns_and_no_secret() {
    let fx = Fixture::new();
    fx.add_demo_clients();
    let fedex = fx.connect_fedex_plain("fedex");
    let iot = fx.connect_iot("iot");
    let run = fx.ok(&["list", "--csv"]);
    let mut reader = csv::Reader::from_reader(run.stdout.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        header,
        [
            "name",
            "company",
            "provider",
            "status",
            "access_token_expires_at",
            "refresh_token_expires_at",
            "last_refresh_at",
            "last_error"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 2, "{}", run.describe());
    let row = |provider: &str| {
        rows.iter()
            .find(|r| &r[2] == provider)
            .unwrap_or_else(|| panic!("no {provider} row: {}", run.describe()))
    };
    let f = row("fedex");
    assert_eq!(&f[0], fedex["label"].as_str().unwrap());
    assert_eq!(&f[3], "active");
    assert!(
        f[4].ends_with('Z') && f[4].len() == 20,
        "ISO 8601: {:?}",
        &f[4]
    );
    assert_eq!(&f[5], "", "FedEx has no refresh token");
    let i = row("iot");
    assert_eq!(&i[0], iot["label"].as_str().unwrap());
    assert!(!i[4].is_empty(), "the IoT access token's expiry");

    // No secret: neither a configured one nor a token the connections hold.
    let mut secrets = vec![fx.fedex_secret(), fx.fa_secret(), fx.iot_password()];
    for c in [&fedex, &iot] {
        let id = c["id"].as_str().unwrap();
        secrets.push(fx.ok(&["token", id]).stdout.trim().to_owned());
    }
    let after = fx.ok(&["list", "--csv"]).stdout;
    for secret in &secrets {
        assert!(secret.len() >= 8, "a distinctive secret");
        for text in [&run.stdout, &after] {
            assert!(
                !text.contains(secret.as_str()),
                "a secret in the export:\n{text}"
            );
        }
    }

    // --csv and --json together: a usage error, nothing printed.
    let both = fx.run(&["--json", "list", "--csv"]);
    both.assert_code(2);
    assert!(both.stdout.is_empty(), "{}", both.describe());
}
