//! Upgrades lose nothing: a data dir exactly as the released v0.1.0 left it (the
//! committed SQLite file of `tests/fixtures/v0.1.0/`, plus the keyring entries that
//! `keyring.json` there describes, written again with fresh tokens the emulator grants)
//! is opened by the current `authdeckctl`: everything v0.1.0 stored is still there, and
//! every connection refreshes against the emulator with the tokens it was left with.
//!
//! It asserts what must be preserved, not the schema: later migrations may add columns,
//! tables and defaults as they like.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use authdeck_emulator::TokenStatus;
use serde_json::{json, Value};

use crate::common::*;

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v0.1.0")
}

fn keyring_doc() -> Value {
    let text = std::fs::read_to_string(fixture_dir().join("keyring.json")).expect("keyring.json");
    serde_json::from_str(&text).expect("keyring.json is JSON")
}

/// (connection id, at ms, event, outcome, detail)
type HistoryRow = (Option<String>, i64, String, String, Option<String>);

/// What v0.1.0 stored, read with plain SQL from the fixture (its schema is released and
/// fixed), before the current code has touched it.
struct Stored {
    /// client id → (name, provider, provider client id)
    clients: BTreeMap<String, (String, String, String)>,
    /// connection id → its JSON (`model::Connection` as v0.1.0 wrote it)
    connections: BTreeMap<String, Value>,
    /// Oldest first.
    history: Vec<HistoryRow>,
}

fn read_stored(path: &std::path::Path) -> Stored {
    let db =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("fixture opens");
    let mut clients = BTreeMap::new();
    let mut stmt = db
        .prepare("SELECT id, name, provider, data FROM clients")
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        })
        .unwrap();
    for row in rows {
        let (id, name, provider, data) = row.unwrap();
        let data: Value = serde_json::from_str(&data).unwrap();
        let client_id = data["client_id"].as_str().unwrap().to_owned();
        clients.insert(id, (name, provider, client_id));
    }
    let mut connections = BTreeMap::new();
    let mut stmt = db.prepare("SELECT id, data FROM connections").unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .unwrap();
    for row in rows {
        let (id, data) = row.unwrap();
        connections.insert(id, serde_json::from_str(&data).unwrap());
    }
    let mut stmt = db
        .prepare("SELECT connection_id, at, event, outcome, detail FROM history ORDER BY id")
        .unwrap();
    let history = stmt
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap()
        .collect::<rusqlite::Result<Vec<_>>>()
        .unwrap();
    Stored {
        clients,
        connections,
        history,
    }
}

/// Fresh tokens for a connection, granted by the emulator the way the provider granted
/// them to v0.1.0: a new consent for the same business, a client-credentials request for
/// the same project and grant, a password login of the same user.
struct Granted {
    access_token: String,
    refresh_token: Option<String>,
}

fn post(fx: &Fixture, url: &str, basic: Option<&str>, form: &[(&str, &str)]) -> Value {
    fx.rt.block_on(async {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let mut req = http.post(url).form(form);
        if let Some(b) = basic {
            req = req.header("Authorization", format!("Basic {b}"));
        }
        let resp = req.send().await.expect("token request");
        let status = resp.status();
        let body: Value = resp.json().await.expect("token response is JSON");
        assert!(
            status.is_success(),
            "the emulator granted nothing: {status}"
        );
        body
    })
}

fn grant(fx: &Fixture, conn: &Value) -> Granted {
    let base = fx.emulator.base_url();
    let tokens = match conn["provider"].as_str().unwrap() {
        "flowaccount" => {
            let business = conn["support_code"].as_str().expect("supportCode");
            let mut url = url::Url::parse(&fx.emulator.flowaccount_authorize_url()).unwrap();
            url.query_pairs_mut()
                .append_pair("response_type", "code")
                .append_pair("client_id", "demo-flowaccount")
                .append_pair("redirect_uri", "com.authdeck.desktop:/oauth/callback")
                .append_pair("scope", "flowaccount-api offline_access")
                .append_pair("state", "upgrade-test");
            let redirect = fx.approve(url.as_str(), business);
            let code = query_param(&redirect, "code").expect("a code");
            post(
                fx,
                &fx.emulator.flowaccount_token_url(),
                None,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", "com.authdeck.desktop:/oauth/callback"),
                    ("client_id", "demo-flowaccount"),
                    ("client_secret", &fx.fa_secret()),
                ],
            )
        }
        "fedex" => {
            let grant = conn["grant"].as_str().expect("grant");
            let (key, secret, child_key, child_secret) = (
                fx.fedex_key(),
                fx.fedex_secret(),
                fx.child_key(),
                fx.child_secret(),
            );
            let mut form = vec![
                ("grant_type", grant),
                ("client_id", &key),
                ("client_secret", &secret),
            ];
            if conn["child_key"].is_string() {
                form.push(("child_Key", &child_key));
                form.push(("child_secret", &child_secret));
            }
            post(fx, &fx.emulator.fedex_token_url(), None, &form)
        }
        "iot" => post(
            fx,
            &format!("{base}/iot/oauth/token"),
            Some(&fx.config.iot.client_id),
            &[
                ("grant_type", "password"),
                ("username", conn["username"].as_str().expect("username")),
                ("password", &fx.iot_password()),
            ],
        ),
        other => panic!("unknown provider {other}"),
    };
    Granted {
        access_token: tokens["access_token"].as_str().unwrap().to_owned(),
        refresh_token: tokens["refresh_token"].as_str().map(str::to_owned),
    }
}

/// v0.1.0's token bundle (`store::vault`'s wire format, version 1).
fn bundle(g: &Granted) -> Value {
    let mut b = json!({"v": 1, "access_token": g.access_token});
    if let Some(r) = &g.refresh_token {
        b["refresh_token"] = json!(r);
    }
    b
}

/// Write one keyring entry with exactly the attributes and label v0.1.0 gave it, through
/// the Secret Service's own client (the value goes in on stdin).
fn store_entry(fx: &Fixture, entry: &Value, value: &str) {
    let key = entry["key"].as_str().unwrap();
    let fill = |s: &str| s.replace("{service}", &fx.service).replace("{key}", key);
    let label = fill(entry["label"].as_str().unwrap());
    let mut cmd = Command::new("secret-tool");
    cmd.arg("store").arg(format!("--label={label}"));
    for (name, v) in entry["attributes"].as_object().unwrap() {
        cmd.arg(name).arg(fill(v.as_str().unwrap()));
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("secret-tool runs (libsecret-tools: make deps)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(value.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "secret-tool store {key}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn history_key(entry: &Value) -> (i64, String, String, Option<String>) {
    let at = chrono::DateTime::parse_from_rfc3339(entry["at"].as_str().unwrap())
        .unwrap()
        .timestamp_millis();
    (
        at,
        entry["event"].as_str().unwrap().to_owned(),
        entry["outcome"].as_str().unwrap().to_owned(),
        entry["detail"].as_str().map(str::to_owned),
    )
}

#[test]
fn a_v0_1_0_data_dir_migrates_and_every_connection_still_refreshes() {
    let fx = Fixture::new();
    let doc = keyring_doc();
    let db_path = fx.data_dir().join("authdeck.sqlite3");
    std::fs::copy(fixture_dir().join("authdeck.sqlite3"), &db_path).expect("fixture copied");
    let stored = read_stored(&db_path);
    assert_eq!(stored.connections.len(), 5, "the fixture's connections");
    let providers: BTreeSet<&str> = stored
        .connections
        .values()
        .map(|c| c["provider"].as_str().unwrap())
        .collect();
    assert_eq!(providers, BTreeSet::from(["flowaccount", "fedex", "iot"]));

    // The providers now live at this test's emulator: point the clients' endpoints there
    // (the only edit; it is what a provider moving host would need too).
    {
        let old = doc["emulator_base_url"].as_str().unwrap();
        let db = rusqlite::Connection::open(&db_path).unwrap();
        let n = db
            .execute(
                "UPDATE clients SET data = replace(data, ?1, ?2)",
                [old, &fx.emulator.base_url()],
            )
            .unwrap();
        assert_eq!(n, 3);
    }

    // The keyring as v0.1.0 left it, with tokens the emulator grants now.
    let mut granted: BTreeMap<String, Granted> = BTreeMap::new();
    for id in stored.connections.keys() {
        granted.insert(id.clone(), grant(&fx, &stored.connections[id]));
    }
    let mut holders = Vec::new();
    for entry in doc["entries"].as_array().unwrap() {
        let value = match entry["role"].as_str().unwrap() {
            "client_secret" => {
                let name = entry["client"].as_str().unwrap();
                let (_, provider, _) = stored
                    .clients
                    .values()
                    .find(|(n, _, _)| n == name)
                    .expect("the client is in the fixture");
                match provider.as_str() {
                    "flowaccount" => fx.fa_secret(),
                    "fedex" => fx.fedex_secret(),
                    other => panic!("{other} clients have no secret"),
                }
            }
            "child_secret" => fx.child_secret(),
            "tokens" => {
                let id = entry["connection"].as_str().unwrap();
                holders.push(id.to_owned());
                bundle(&granted[id]).to_string()
            }
            "token_set" => {
                let mut members = serde_json::Map::new();
                for (id, generation) in entry["members"].as_object().unwrap() {
                    holders.push(id.clone());
                    members.insert(
                        id.clone(),
                        json!({"generation": generation, "tokens": bundle(&granted[id])}),
                    );
                }
                json!({"v": 1, "members": members}).to_string()
            }
            other => panic!("unknown keyring role {other}"),
        };
        store_entry(&fx, entry, &value);
    }
    holders.sort();
    assert_eq!(
        holders,
        stored.connections.keys().cloned().collect::<Vec<_>>(),
        "keyring.json names every connection's tokens once"
    );
    let token_sets = doc["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["role"] == "token_set")
        .count();
    assert!(
        token_sets >= 1,
        "the fixture has a token set from a batch refresh"
    );

    // The current code opens (and migrates) it: clients, connections and history are all
    // still there.
    let clients = fx.json(&["client", "list"]);
    let clients: BTreeMap<String, (String, String, String)> = clients
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_owned(),
                (
                    c["name"].as_str().unwrap().to_owned(),
                    c["provider"].as_str().unwrap().to_owned(),
                    c["client_id"].as_str().unwrap().to_owned(),
                ),
            )
        })
        .collect();
    assert_eq!(clients, stored.clients);

    let list = fx.json(&["list"]);
    let listed: BTreeMap<String, Value> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (id_of(c), c.clone()))
        .collect();
    assert_eq!(
        listed.keys().collect::<Vec<_>>(),
        stored.connections.keys().collect::<Vec<_>>()
    );
    for (id, before) in &stored.connections {
        let after = fx.json(&["status", id]);
        for field in [
            "client_id",
            "provider",
            "label",
            "support_code",
            "grant",
            "child_key",
            "username",
            "user_id",
            "scope",
        ] {
            assert_eq!(
                after[field], before[field],
                "{field} of {id} is kept: {after}"
            );
        }
        // (Its *status* may say re-authorization: FlowAccount's estimated refresh expiry,
        // a day after the fixture was made, has passed. The stored state is what stays.)
        assert_eq!(after["state"], before["state"], "{id}: {after}");
    }

    let history = fx.json(&["history", "--limit", "1000"]);
    let after: Vec<_> = history
        .as_array()
        .unwrap()
        .iter()
        .map(history_key)
        .collect();
    for (_, at, event, outcome, detail) in &stored.history {
        let row = (*at, event.clone(), outcome.clone(), detail.clone());
        assert!(
            after.contains(&row),
            "history row {row:?} is kept: {history}"
        );
    }
    // Per connection too (the history of a details panel).
    for id in stored.connections.keys() {
        let mine = fx.json(&["history", id, "--limit", "1000"]);
        let expected = stored
            .history
            .iter()
            .filter(|h| h.0.as_deref() == Some(id))
            .count();
        assert!(mine.as_array().unwrap().len() >= expected, "{id}: {mine}");
    }

    // Every connection refreshes with what it was left with, one by one …
    for (id, conn) in &stored.connections {
        let stats_before = fx.control_stats();
        let refreshed = fx.json(&["refresh", id]);
        assert_eq!(refreshed["status"], "active", "{refreshed}");
        let stats = fx.control_stats();
        match conn["provider"].as_str().unwrap() {
            "flowaccount" => {
                let old = granted[id].refresh_token.as_deref().unwrap();
                assert_eq!(
                    fx.control().flowaccount_refresh_token_status(old),
                    TokenStatus::Used,
                    "{id} was refreshed with the token the keyring held"
                );
            }
            "fedex" => {
                let grant = conn["grant"].as_str().unwrap();
                assert_eq!(
                    stats["fedex"][grant].as_u64().unwrap(),
                    stats_before["fedex"][grant].as_u64().unwrap() + 1,
                    "{id}: one {grant} request (with the stored secrets)"
                );
            }
            "iot" => assert_eq!(
                stats["iot"]["refresh_ok"].as_u64().unwrap(),
                stats_before["iot"]["refresh_ok"].as_u64().unwrap() + 1,
                "{id}: refreshed with the stored refresh token"
            ),
            _ => unreachable!(),
        }
        let token = fx.ok(&["token", id]).stdout.trim().to_owned();
        assert!(!token.is_empty());
        assert_ne!(token, granted[id].access_token, "{id} has new tokens");
    }
    // … and all at once (the batch path, on what the upgrade and the refreshes wrote).
    let report = fx.json(&["refresh", "--all"]);
    let rows = report.as_array().unwrap();
    assert_eq!(rows.len(), stored.connections.len());
    assert!(rows.iter().all(|r| r["ok"] == true), "{report}");
    let stats = fx.control_stats();
    assert_eq!(stats["invalid_grant"], 0, "{stats}");
    assert_eq!(stats["reuse_detected"], 0, "{stats}");
}

/// The committed fixture is metadata only: none of the emulator's secrets (which v0.1.0
/// was given) and no token (every token the emulator issues to FedEx and IoT is a JWT).
#[test]
fn the_v0_1_0_fixture_holds_no_secret() {
    let bytes = std::fs::read(fixture_dir().join("authdeck.sqlite3")).unwrap();
    let config = authdeck_emulator::EmulatorConfig::demo();
    let secrets = [
        config.flowaccount.clients[0].client_secret.clone(),
        config.fedex.projects[0].client_secret.clone(),
        config.fedex.projects[0].children[0].child_secret.clone(),
        config.iot.users[0].password.clone(),
        "eyJ".to_owned(),
    ];
    let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    for s in &secrets {
        assert!(!contains(s.as_bytes()), "the fixture holds a secret");
    }
    // Sanity: it is the database we think it is (the search above looked at real data).
    assert!(contains(b"demo-fedex-key"));
    let doc = keyring_doc();
    for entry in doc["entries"].as_array().unwrap() {
        let text = entry.to_string();
        for s in &secrets {
            assert!(!text.contains(s.as_str()), "keyring.json holds a secret");
        }
    }
}
