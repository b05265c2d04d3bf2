//! `list`, `status`, `token`, `refresh`, `refresh --all`, `logout`, `history`.

use serde_json::Value;

use crate::common::*;

/// Three connections, one per provider: (fa, fedex, iot) views.
fn connected_three(fx: &Fixture) -> (Value, Value, Value) {
    fx.add_demo_clients();
    let (fa, _) = fx.connect_flowaccount("fa", FA_BUSINESS);
    let fedex = fx.connect_fedex_plain("fedex");
    let iot = fx.connect_iot("iot");
    (fa, fedex, iot)
}

#[test]
fn list_and_status_show_expiries_and_provider_details() {
    let fx = Fixture::new();
    let empty = fx.ok(&["list"]);
    assert!(
        empty.stdout.starts_with("No connections yet"),
        "{}",
        empty.describe()
    );
    assert_eq!(fx.json(&["list"]), serde_json::json!([]));

    let (fa, fedex, iot) = connected_three(&fx);

    let table = fx.ok(&["list"]);
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{}", table.describe());
    assert!(
        lines[0].contains("ACCESS EXPIRES IN"),
        "{}",
        table.describe()
    );
    let row = |needle: &str| {
        *lines
            .iter()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no row with {needle}: {}", table.describe()))
    };
    assert!(row("FA-100001").contains("active"));
    assert!(row("FA-100001").contains("59m"), "{}", row("FA-100001"));
    assert!(
        row("FedEx").contains("—"),
        "FedEx has no refresh token: {}",
        row("FedEx")
    );
    assert!(row("operator").contains("23h"), "{}", row("operator"));
    assert!(
        row("operator").contains("unknown"),
        "IoT refresh expiry: {}",
        row("operator")
    );

    let list = fx.json(&["list"]);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 3);
    for conn in list {
        assert_eq!(conn["status"], "active", "{conn}");
        let access = conn["access_expires_in"]
            .as_i64()
            .expect("access_expires_in");
        assert!(access > 3500, "{conn}");
        assert!(conn["access_expires"]["at"].is_string(), "{conn}");
    }
    let get = |id: &str| list.iter().find(|c| c["id"] == id).unwrap();
    let fa_row = get(&id_of(&fa));
    let refresh_left = fa_row["refresh_expires_in"]
        .as_i64()
        .expect("FlowAccount refresh expiry");
    assert!((23 * 3600..=24 * 3600).contains(&refresh_left), "{fa_row}");
    assert!(
        get(&id_of(&fedex)).get("refresh_expires_in").is_none(),
        "FedEx has no refresh token"
    );
    // The IoT platform does not say how long its refresh token lives: unknown, not "never".
    assert!(
        get(&id_of(&iot)).get("refresh_expires_in").is_none(),
        "IoT refresh expiry is unknown"
    );

    // status: supportCode, userinfo, JWT claims.
    let s = fx.json(&["status", &id_of(&fa)]);
    assert_eq!(s["support_code"], FA_BUSINESS);
    assert_eq!(
        s["token_type"].as_str().map(str::to_lowercase).as_deref(),
        Some("bearer")
    );
    let s = fx.json(&["status", &id_of(&iot)]);
    assert!(s["userinfo"].is_object(), "userinfo: {s}");
    assert_eq!(
        s["jwt"]["claims"]["ctx"]["owner"],
        fx.config.iot.users[0].user_id.as_str()
    );
    assert!(s["jwt"]["claims"]["exp"].is_number(), "{s}");
    let s = fx.json(&["status", &id_of(&fedex)]);
    assert_eq!(s["scope"], "CXS");
    assert!(s["jwt"]["claims"].is_object(), "FedEx tokens are JWTs: {s}");

    // Human status: one field per line; a short id prefix and the label both work.
    let text = fx.ok(&["status", &id_of(&iot)[..8]]);
    assert!(text.stdout.contains("JWT claims"), "{}", text.describe());
    assert!(text.stdout.contains("userinfo"), "{}", text.describe());
    let text = fx.ok(&["status", "FA-100001"]);
    assert!(
        text.stdout.contains("supportCode      FA-100001"),
        "{}",
        text.describe()
    );
    assert!(
        text.stdout.contains("Status           active"),
        "{}",
        text.describe()
    );
}

#[test]
fn token_prints_the_cached_token_and_refreshes_when_asked_for_more_validity() {
    let fx = Fixture::new();
    let (fa, fedex, iot) = connected_three(&fx);
    for (conn, min_validity) in [(&fa, "7200"), (&fedex, "7200"), (&iot, "90000")] {
        let id = id_of(conn);
        let gen = fx
            .stored_connections()
            .into_iter()
            .find(|(i, _)| *i == id)
            .unwrap()
            .1;
        let stored = fx.stored_tokens(&id, gen).expect("tokens in the keyring");
        let first = fx.ok(&["token", &id]);
        assert_eq!(
            first.stdout,
            format!("{}\n", stored["access_token"].as_str().unwrap()),
            "token prints exactly the access token"
        );
        assert!(first.stderr.is_empty(), "{}", first.describe());
        let second = fx.ok(&["token", &id]);
        assert_eq!(second.stdout, first.stdout, "no refresh needed: same token");

        let fresh = fx.ok(&["token", &id, "--min-validity", min_validity]);
        assert_ne!(fresh.stdout, first.stdout, "a refresh gives a new token");
        assert_eq!(fresh.stdout.lines().count(), 1);
        let now = fx.json(&["status", &id]);
        assert_eq!(now["secret_generation"], gen + 1, "{now}");
        assert!(now["last_refresh_at"].is_string(), "{now}");
        let stored = fx
            .stored_tokens(&id, gen + 1)
            .expect("new generation stored");
        assert_eq!(
            fresh.stdout.trim_end(),
            stored["access_token"].as_str().unwrap()
        );
        assert!(
            fx.stored_tokens(&id, gen).is_none(),
            "the old generation is deleted from the keyring"
        );
    }
    fx.run(&["token", "no-such-connection"])
        .assert_one_line_error(1, "not_found");
}

#[test]
fn refresh_one_and_all_rotate_tokens() {
    let fx = Fixture::new();
    let (fa, fedex, iot) = connected_three(&fx);
    let fa_id = id_of(&fa);
    let before = fx.stored_tokens(&fa_id, 1).unwrap();

    let run = fx.ok(&["refresh", &fa_id]);
    assert!(
        run.stdout.starts_with("Refreshed FA-100001"),
        "{}",
        run.describe()
    );
    let after = fx.stored_tokens(&fa_id, 2).expect("generation 2");
    assert_ne!(after["refresh_token"], before["refresh_token"], "rotated");
    assert_ne!(after["access_token"], before["access_token"]);
    let status = fx
        .control()
        .flowaccount_refresh_token_status(before["refresh_token"].as_str().unwrap());
    assert_eq!(status, authdeck_emulator::TokenStatus::Used);

    let view = fx.json(&["refresh", &id_of(&iot)]);
    assert_eq!(view["secret_generation"], 2);
    assert_eq!(view["status"], "active");
    assert!(view["access_expires_in"].as_i64().unwrap() > 86_000);

    let all = fx.json(&["refresh", "--all"]);
    let rows = all.as_array().unwrap();
    assert_eq!(rows.len(), 3, "{all}");
    for row in rows {
        assert_eq!(row["ok"], true, "{row}");
        assert!(row["access_expires_in"].as_i64().unwrap() > 3500, "{row}");
    }
    let gens: Vec<(String, i64)> = fx.stored_connections();
    let gen_of = |id: &str| gens.iter().find(|(i, _)| i == id).unwrap().1;
    assert_eq!(gen_of(&fa_id), 3);
    assert_eq!(gen_of(&id_of(&iot)), 3);
    assert_eq!(gen_of(&id_of(&fedex)), 2);

    let text = fx.ok(&["refresh", "--all"]);
    assert!(
        text.stdout.contains("3 refreshed, 0 failed."),
        "{}",
        text.describe()
    );

    // refresh needs a connection or --all, not both.
    fx.run(&["refresh"]).assert_code(2);
    fx.run(&["refresh", &fa_id, "--all"]).assert_code(2);
}

#[test]
fn logout_revokes_iot_and_disconnects_flowaccount() {
    let fx = Fixture::new();
    let (fa, fedex, iot) = connected_three(&fx);

    // IoT: the server revokes the session.
    let out = fx.json(&["logout", &id_of(&iot)]);
    assert_eq!(out["outcome"], "revoked");
    let sessions = fx.control().iot_sessions();
    assert_eq!(sessions.len(), 1);
    assert!(sessions[0].revoked, "the emulator's session is revoked");
    assert_eq!(fx.control_stats()["iot"]["logouts"], 1);

    // FlowAccount: disconnected locally, row and tokens gone.
    let fa_id = id_of(&fa);
    let run = fx.ok(&["logout", &fa_id]);
    assert!(run.stdout.starts_with("Disconnected"), "{}", run.describe());
    assert!(
        fx.stored_tokens(&fa_id, 1).is_none(),
        "tokens deleted from the keyring"
    );
    fx.run(&["status", &fa_id])
        .assert_one_line_error(1, "not_found");
    let ids: Vec<String> = fx
        .json(&["list"])
        .as_array()
        .unwrap()
        .iter()
        .map(id_of)
        .collect();
    assert_eq!(ids, [id_of(&fedex)]);

    // History outlives the connection.
    let history = fx.json(&["history", &fa_id]);
    let events: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    // `probe`: who the business is, asked right after the connect.
    assert_eq!(
        events,
        ["disconnect", "probe", "connect"],
        "newest first: {history}"
    );
    let history = fx.json(&["history", &id_of(&iot)]);
    assert_eq!(history[0]["event"], "logout");
    assert_eq!(history[0]["outcome"], "ok");
}

#[test]
fn history_per_connection_and_global_with_a_rejected_callback() {
    let fx = Fixture::new();
    let (fa, _, _) = connected_three(&fx);
    let fa_id = id_of(&fa);
    fx.ok(&["refresh", &fa_id]);

    // A forged redirect (a state nobody issued) is rejected and recorded.
    let forged =
        "com.authdeck.desktop:/oauth/callback?code=forged-code&state=forged-state-0123456789abcdef";
    fx.run(&["callback", forged])
        .assert_one_line_error(1, "invalid_callback");

    let own = fx.json(&["history", &fa_id]);
    let events: Vec<(&str, &str)> = own
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["event"].as_str().unwrap(), e["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(
        events,
        [("refresh", "ok"), ("probe", "ok"), ("connect", "ok")],
        "{own}"
    );

    let all = fx.json(&["history"]);
    let all = all.as_array().unwrap();
    assert_eq!(
        all[0]["event"], "callback_rejected",
        "newest first: {all:?}"
    );
    assert_eq!(all[0]["outcome"], "invalid_callback");
    assert_eq!(
        all.iter().filter(|e| e["event"] == "connect").count(),
        3,
        "{all:?}"
    );
    let text = fx.ok(&["history"]);
    assert!(
        text.stdout.lines().next().unwrap().starts_with("WHEN"),
        "{}",
        text.describe()
    );
    assert!(
        text.stdout.contains("callback_rejected"),
        "{}",
        text.describe()
    );
    // A second forged one counts into the same row (one row per kind and minute; the
    // two runs may straddle a minute boundary, then it is two rows of one).
    fx.run(&["callback", forged])
        .assert_one_line_error(1, "invalid_callback");
    let all = fx.json(&["history"]);
    let rejected: Vec<&Value> = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "callback_rejected")
        .collect();
    let counts: Vec<u64> = rejected
        .iter()
        .map(|e| e["count"].as_u64().unwrap())
        .collect();
    assert!(counts == [2] || counts == [1, 1], "{all}");
    if counts == [2] {
        let text = fx.ok(&["history"]);
        assert!(
            text.stdout.contains("callback_rejected ×2"),
            "{}",
            text.describe()
        );
    }
    let limited = fx.json(&["history", "--limit", "2"]);
    assert_eq!(limited.as_array().unwrap().len(), 2);

    fx.run(&["history", "never-existed"])
        .assert_one_line_error(1, "not_found");
}
