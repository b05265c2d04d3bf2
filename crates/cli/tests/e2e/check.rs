//! `authdeckctl check CONN` and `authdeckctl label CONN NAME`, and the company name in
//! `list` and `status`: who a connection is, and whether its provider accepts it now.

use crate::common::*;

fn id_of(v: &serde_json::Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

#[test]
fn a_connected_business_is_listed_by_its_company_name_beside_its_support_code() {
    let fx = Fixture::new();
    fx.add_flowaccount_client("fa", None);
    let (conn, _) = fx.connect_flowaccount("fa", "FA-100002");
    assert_eq!(conn["title"], "Chiang Mai Crafts");
    assert_eq!(conn["label"], "FA-100002");
    assert_eq!(conn["company"]["tax_id"], "0505561001234");
    assert_eq!(conn["company"]["branch"], "สาขา 00001 นิมมานเหมินท์");
    assert!(conn["last_check"]["error"].is_null(), "{conn}");

    let list = fx.ok(&["list"]);
    assert!(
        list.stdout.contains("Chiang Mai Crafts (FA-100002)"),
        "{}",
        list.stdout
    );
    let status = fx.ok(&["status", "Chiang Mai Crafts"]);
    for line in [
        "Name             Chiang Mai Crafts",
        "Label            FA-100002",
        "supportCode      FA-100002",
        "Company          Chiang Mai Crafts",
        "Tax id           0505561001234",
        "Branch           สาขา 00001 นิมมานเหมินท์",
        "Last check       ok at ",
    ] {
        assert!(
            status.stdout.contains(line),
            "{line:?} in\n{}",
            status.stdout
        );
    }
    let listed = fx.json(&["list"]);
    assert_eq!(listed[0]["title"], "Chiang Mai Crafts");
}

#[test]
fn check_reads_the_company_again_and_a_failure_exits_non_zero_and_is_kept() {
    let fx = Fixture::new();
    fx.add_flowaccount_client("fa", None);
    fx.control()
        .push_fault("flowaccount-api:503".parse().expect("fault"));
    let (conn, _) = fx.connect_flowaccount("fa", "FA-100001");
    // The connect worked, the probe did not: said, not fatal.
    assert_eq!(conn["status"], "active");
    assert_eq!(conn["title"], "FA-100001");
    assert_eq!(conn["last_check"]["error"]["code"], "provider_unavailable");
    let id = id_of(&conn);

    let failed = fx.run(&["check", &id]);
    failed.assert_one_line_error(1, "provider_unavailable");
    let failed = fx.run(&["--json", "check", &id]);
    assert_eq!(failed.code, Some(1));
    assert_eq!(failed.json_error()["code"], "provider_unavailable");
    let status = fx.ok(&["status", &id]);
    assert!(
        status.stdout.contains("Last check       failed at "),
        "{}",
        status.stdout
    );
    assert!(
        status.stdout.contains("[provider_unavailable]"),
        "{}",
        status.stdout
    );

    fx.control().clear_faults();
    let ok = fx.ok(&["check", &id]);
    assert!(
        ok.stdout
            .contains("FlowAccount accepts บริษัท สยามเทรดดิ้ง จำกัด (FA-100001)"),
        "{}",
        ok.stdout
    );
    assert!(ok.stdout.contains("tax id 0105558096348"), "{}", ok.stdout);
    let checked = fx.json(&["check", &id]);
    assert!(checked["last_check"]["error"].is_null());
    assert_eq!(checked["last_check"]["method"], "company_info");
    let history = fx.json(&["history", &id]);
    assert_eq!(history[0]["event"], "check");
    assert_eq!(history[0]["outcome"], "ok");
    assert_eq!(history[2]["event"], "check");
    assert_eq!(history[2]["outcome"], "provider_unavailable");
}

#[test]
fn a_fedex_check_says_it_is_a_token_request_that_counts_against_the_quota() {
    let fx = Fixture::new();
    fx.add_fedex_client("ship");
    let conn = fx.connect_fedex_plain("ship");
    let before = fx.control_stats()["fedex"]["token_requests"]
        .as_u64()
        .unwrap();
    let run = fx.ok(&["check", &id_of(&conn)]);
    assert!(
        run.stderr.contains("counts against the project's quota"),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout.contains("requested a new token"),
        "{}",
        run.stdout
    );
    assert_eq!(
        fx.control_stats()["fedex"]["token_requests"]
            .as_u64()
            .unwrap(),
        before + 1
    );
    let checked = fx.json(&["check", &id_of(&conn)]);
    assert_eq!(checked["last_check"]["method"], "token_request");
}

#[test]
fn label_names_a_connection_finds_it_by_that_name_and_clear_removes_it() {
    let fx = Fixture::new();
    fx.add_flowaccount_client("fa", None);
    let (conn, _) = fx.connect_flowaccount("fa", "FA-100002");
    let id = id_of(&conn);
    let run = fx.ok(&["label", &id, "Crafts payroll"]);
    assert!(run.stdout.contains("\"Crafts payroll\""), "{}", run.stdout);
    let status = fx.json(&["status", "Crafts payroll"]);
    assert_eq!(status["id"], id.as_str());
    assert_eq!(status["title"], "Crafts payroll");
    assert_eq!(status["user_label"], "Crafts payroll");
    assert!(fx
        .ok(&["list"])
        .stdout
        .contains("Crafts payroll (FA-100002)"));
    // `rename` is the same command.
    fx.ok(&["rename", &id, "Crafts HQ"]);
    assert_eq!(fx.json(&["status", &id])["title"], "Crafts HQ");
    // Untrusted input: refused, nothing changed.
    let long = "x".repeat(65);
    fx.run(&["label", &id, &long])
        .assert_one_line_error(2, "invalid_input");
    fx.run(&["label", &id]).assert_code(2);
    assert_eq!(fx.json(&["status", &id])["title"], "Crafts HQ");
    let cleared = fx.json(&["label", &id, "--clear"]);
    assert!(cleared.get("user_label").is_none(), "{cleared}");
    assert_eq!(cleared["title"], "Chiang Mai Crafts");
    fx.run(&["label", "no-such", "x"])
        .assert_one_line_error(1, "not_found");
}
