use super::*;
use crate::model::*;

fn client(name: &str) -> Client {
    Client {
        id: format!("id-{name}"),
        name: name.into(),
        provider: Provider::Fedex,
        environment: Environment::Sandbox,
        client_id: "key".into(),
        endpoints: Endpoints {
            authorize_url: None,
            token_url: "https://apis-sandbox.fedex.com/oauth/token"
                .parse()
                .unwrap(),
            logout_url: None,
            api_base_url: None,
        },
        options: ClientOptions::default(),
        has_secret: true,
        created_at: Utc::now(),
        sandbox: false,
    }
}

fn connection(id: &str, client_id: &str, label: &str) -> Connection {
    let now = Utc::now();
    Connection {
        grant: Some(FedexGrant::ClientCredentials),
        scope: Some("CXS".into()),
        token_type: Some("bearer".into()),
        access_expires: Some(Expiry::new(now, ExpirySource::RelativeSeconds)),
        ..Connection::new(
            id,
            client_id,
            "c",
            Provider::Fedex,
            Environment::Sandbox,
            label,
            now,
        )
    }
}

/// A store laid out by the version before the sandbox flag, with an earlier
/// sandbox's demo client (port 47801), a connection of it, and look-alikes that are
/// not the sandbox's: only the first two are marked.
#[test]
fn earlier_sandbox_clients_and_their_connections_are_marked_by_the_migration() {
    let mut conn = Sqlite::open_in_memory().unwrap();
    migrations().to_version(&mut conn, 2).unwrap();
    let legacy = |name: &str, client_id: &str, token_url: &str| {
        let mut c = client(name);
        c.id = format!("id-{name}");
        c.client_id = client_id.into();
        c.endpoints.token_url = token_url.parse().unwrap();
        let mut v = serde_json::to_value(&c).unwrap();
        v.as_object_mut().unwrap().remove("sandbox");
        (c, v.to_string())
    };
    let rows = [
        legacy(
            "sandbox-fedex",
            "demo-fedex-key",
            "http://127.0.0.1:47801/fedex/oauth/token",
        ),
        // Someone's own client that happens to have the name.
        legacy(
            "sandbox-iot",
            "real-app",
            "http://127.0.0.1:47801/iot/oauth/token",
        ),
        legacy(
            "ship",
            "demo-fedex-key",
            "http://127.0.0.1:47801/fedex/oauth/token",
        ),
        legacy(
            "sandbox-flowaccount",
            "demo-flowaccount",
            "https://openapi.flowaccount.com/test/token",
        ),
    ];
    for (c, data) in &rows {
        conn.execute(
            "INSERT INTO clients (id, name, provider, data, created_at) VALUES (?1, ?2, ?3, ?4, 0)",
            params![c.id, c.name, c.provider.as_str(), data],
        )
        .unwrap();
    }
    for (id, client_id) in [("k1", "id-sandbox-fedex"), ("k2", "id-ship")] {
        let mut v = serde_json::to_value(connection(id, client_id, id)).unwrap();
        v.as_object_mut().unwrap().remove("sandbox");
        conn.execute(
            "INSERT INTO connections (id, client_id, natural_key, label, data, secret_generation, created_at, updated_at)
             VALUES (?1, ?2, ?1, ?1, ?3, 1, 0, 0)",
            params![id, client_id, v.to_string()],
        )
        .unwrap();
    }
    let db = Db::init(conn, None, false).unwrap();
    let marked: Vec<(String, bool)> = db
        .clients()
        .unwrap()
        .into_iter()
        .map(|c| (c.name, c.sandbox))
        .collect();
    assert_eq!(
        marked,
        [
            ("sandbox-fedex".to_string(), true),
            ("sandbox-flowaccount".to_string(), false),
            ("sandbox-iot".to_string(), false),
            ("ship".to_string(), false),
        ]
    );
    assert!(db.connection("k1").unwrap().sandbox);
    assert!(!db.connection("k2").unwrap().sandbox);
}

#[test]
fn a_client_record_is_rewritten_in_place() {
    let db = Db::open_in_memory().unwrap();
    let mut c = client("a");
    db.insert_client(&c).unwrap();
    c.sandbox = true;
    c.endpoints.token_url = "http://127.0.0.1:5/fedex/oauth/token".parse().unwrap();
    db.update_client(&c).unwrap();
    assert_eq!(db.client("a").unwrap(), c);
    let missing = db.update_client(&client("b")).unwrap_err();
    assert_eq!(missing.code, ErrorCode::NotFound);
}

#[test]
fn client_names_are_unique() {
    let db = Db::open_in_memory().unwrap();
    db.insert_client(&client("a")).unwrap();
    let err = db
        .insert_client(&Client {
            id: "other".into(),
            ..client("a")
        })
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::AlreadyExists);
    assert_eq!(db.client("a").unwrap().id, "id-a");
    assert_eq!(db.client("id-a").unwrap().name, "a");
    assert_eq!(db.client("zzz").unwrap_err().code, ErrorCode::NotFound);
}

#[test]
fn connection_lookup_by_id_label_and_prefix() {
    let db = Db::open_in_memory().unwrap();
    db.insert_client(&client("a")).unwrap();
    db.insert_connection(&connection("abcd1234", "id-a", "one"), "k1")
        .unwrap();
    db.insert_connection(&connection("abce9999", "id-a", "two"), "k2")
        .unwrap();
    assert_eq!(db.connection("abcd1234").unwrap().label, "one");
    assert_eq!(db.connection("two").unwrap().id, "abce9999");
    assert_eq!(db.connection("abcd").unwrap().id, "abcd1234");
    assert_eq!(db.connection("abc").unwrap_err().code, ErrorCode::NotFound);
    assert_eq!(db.connection("abc%").unwrap_err().code, ErrorCode::NotFound);
    db.insert_connection(&connection("abcf0000", "id-a", "three"), "k3")
        .unwrap();
    assert_eq!(db.connection("abcf").unwrap().id, "abcf0000");
    assert_eq!(db.connection_count_for_client("id-a").unwrap(), 3);
}

#[test]
fn connections_are_found_by_the_users_label_and_the_company_name() {
    let db = Db::open_in_memory().unwrap();
    db.insert_client(&client("a")).unwrap();
    let mut one = connection("c1", "id-a", "FA-1");
    one.user_label = Some("Payroll".into());
    db.insert_connection(&one, "k1").unwrap();
    let mut two = connection("c2", "id-a", "FA-2");
    two.company = Some(crate::model::CompanyInfo {
        id: None,
        name: Some("Chiang Mai Crafts".into()),
        tax_id: None,
        branch: None,
        at: two.created_at,
    });
    db.insert_connection(&two, "k2").unwrap();
    assert_eq!(db.connection("Payroll").unwrap().id, "c1");
    assert_eq!(db.connection("Chiang Mai Crafts").unwrap().id, "c2");
    assert_eq!(db.connection("FA-2").unwrap().id, "c2");
    // A name two connections answer to is ambiguous, not a guess.
    let mut three = connection("c3", "id-a", "FA-3");
    three.user_label = Some("Chiang Mai Crafts".into());
    db.insert_connection(&three, "k3").unwrap();
    assert_eq!(
        db.connection("Chiang Mai Crafts").unwrap_err().code,
        ErrorCode::InvalidInput
    );
}

#[test]
fn generation_switch_is_conditional() {
    let db = Db::open_in_memory().unwrap();
    db.insert_client(&client("a")).unwrap();
    let mut c = connection("c1", "id-a", "one");
    db.insert_connection(&c, "k").unwrap();
    c.secret_generation = 2;
    assert!(db.update_connection(&c, 1).unwrap());
    c.secret_generation = 3;
    assert!(
        !db.update_connection(&c, 1).unwrap(),
        "stale expected generation must not win"
    );
    assert_eq!(db.secret_generation("c1").unwrap(), Some(2));
}

fn refreshed(at: DateTime<Utc>) -> HistoryEntry {
    HistoryEntry::new(at, "refresh", "ok", None)
}

#[test]
fn token_set_members_are_live_adoptable_or_gone() {
    let db = Db::open_in_memory().unwrap();
    db.insert_client(&client("a")).unwrap();
    for (id, key) in [("c1", "k1"), ("c2", "k2"), ("c3", "k3")] {
        db.insert_connection(&connection(id, "id-a", id), key)
            .unwrap();
    }
    let at = from_ms(1_700_000_000_000);
    let members = [
        ("c1".to_string(), 2, Some(1)),
        ("c2".to_string(), 2, Some(1)),
        ("c3".to_string(), 2, None),
    ];
    db.insert_token_set("s", at, &members).unwrap();
    // Written, not switched yet: everyone is adoptable, no own entry is left yet.
    let r = db.token_set("s").unwrap().unwrap();
    assert_eq!(r.adoptable, ["c1", "c2", "c3"]);
    assert!(r.live.is_empty() && r.left_entries.is_empty());
    assert_eq!(
        db.token_set_ahead_of("c2", 1).unwrap().as_deref(),
        Some("s")
    );
    assert_eq!(db.token_set_ahead_of("c2", 2).unwrap(), None);

    // c1 switches (once: a stale expected generation loses), c3 is removed.
    let mut c1 = db.connection("c1").unwrap();
    c1.secret_generation = 2;
    c1.token_set = Some("s".into());
    let switched = db
        .switch_connections(&[(c1.clone(), 1), (c1.clone(), 1)], &refreshed(at))
        .unwrap();
    assert_eq!(switched, [true, false]);
    assert_eq!(db.connection("c1").unwrap().token_set.as_deref(), Some("s"));
    assert_eq!(
        db.history(Some("c1"), 10).unwrap().len(),
        1,
        "history of the switch"
    );
    db.delete_connection("c3").unwrap();
    let r = db.token_set("s").unwrap().unwrap();
    assert_eq!(r.live, ["c1"]);
    assert_eq!(r.adoptable, ["c2"]);
    assert_eq!(r.left_entries, [("c1".to_string(), 1)]);
    db.clear_left_entries("s", &["c1".into()]).unwrap();
    assert!(db.token_set("s").unwrap().unwrap().left_entries.is_empty());

    db.delete_token_set("s").unwrap();
    assert_eq!(db.token_set("s").unwrap(), None);
    assert_eq!(
        db.token_set_ahead_of("c2", 1).unwrap(),
        None,
        "members go with the set"
    );
}

#[test]
fn a_generation_switch_clears_the_pending_mark() {
    let db = Db::open_in_memory().unwrap();
    db.insert_client(&client("a")).unwrap();
    let mut c = connection("c1", "id-a", "one");
    db.insert_connection(&c, "k").unwrap();
    db.set_pending_generation("c1", Some(2)).unwrap();
    c.keep_fresh = true; // a metadata-only save keeps the mark
    assert!(db.update_connection(&c, 1).unwrap());
    assert_eq!(db.connection("c1").unwrap().pending_generation, Some(2));
    c.secret_generation = 2;
    assert!(db.update_connection(&c, 1).unwrap());
    assert_eq!(db.connection("c1").unwrap().pending_generation, None);
}

#[test]
fn pending_is_single_use() {
    let db = Db::open_in_memory().unwrap();
    let now = Utc::now();
    let p = PendingRecord {
        state_hash: "h".into(),
        client_key: "c".into(),
        redirect_uri: "x:/y".into(),
        pkce: true,
        reconnect_connection_id: None,
        created_at: now,
        expires_at: now + chrono::Duration::minutes(10),
        consumed_at: None,
    };
    db.insert_pending(&p).unwrap();
    assert_eq!(db.pending("h").unwrap().unwrap().redirect_uri, "x:/y");
    assert!(db.consume_pending("h", now).unwrap());
    assert!(!db.consume_pending("h", now).unwrap());
    assert!(db.pending("h").unwrap().unwrap().consumed_at.is_some());
}

#[test]
fn coalesced_history_counts_per_kind_minute_and_across_handles() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite3");
    // Two handles on one file: the app and an `authdeckctl callback` at once.
    let (a, b) = (Db::open(&path).unwrap(), Db::open(&path).unwrap());
    let at = from_ms(1_700_000_000_000 - 1_700_000_000_000 % 60_000 + 1_000);
    let rejected = |at| HistoryEntry::new(at, "callback_rejected", "invalid_callback", None);
    for i in 0..10 {
        let db = if i % 2 == 0 { &a } else { &b };
        let later = at + chrono::Duration::seconds(i * 5);
        db.add_history_coalesced(None, None, &rejected(later), "k1")
            .unwrap();
    }
    a.add_history_coalesced(None, Some("client"), &rejected(at), "k1")
        .unwrap();
    a.add_history_coalesced(None, None, &rejected(at), "k2")
        .unwrap();
    let next_minute = at + chrono::Duration::seconds(59);
    b.add_history_coalesced(None, None, &rejected(next_minute), "k1")
        .unwrap();
    let rows = a.history(None, 100).unwrap();
    let counts: Vec<u32> = rows.iter().map(|r| r.count).collect();
    assert_eq!(counts, [1, 1, 1, 10], "{rows:?}");
    assert_eq!(rows[3].at, at, "dated by the first");
    assert_eq!(rows[0].at, next_minute);
    // Plain entries are never merged.
    a.add_history(None, None, &rejected(at)).unwrap();
    a.add_history(None, None, &rejected(at)).unwrap();
    assert_eq!(a.history(None, 100).unwrap().len(), 6);
}

#[test]
fn migration_turns_pkce_on_for_existing_flowaccount_clients_only() {
    let mut conn = Sqlite::open_in_memory().unwrap();
    migrations().to_version(&mut conn, 2).unwrap();
    let mut fa = client("fa");
    fa.id = "id-fa".into();
    fa.provider = Provider::FlowAccount;
    fa.options.pkce = false;
    let fedex = client("ship");
    for c in [&fa, &fedex] {
        conn.execute(
            "INSERT INTO clients (id, name, provider, data, created_at) VALUES (?1, ?2, ?3, ?4, 0)",
            params![c.id, c.name, c.provider.as_str(), json(c).unwrap()],
        )
        .unwrap();
    }
    let db = Db::init(conn, None, false).unwrap();
    let migrated = db.client("fa").unwrap();
    assert!(
        migrated.options.pkce,
        "existing FlowAccount client: PKCE on"
    );
    assert_eq!(migrated.endpoints, fa.endpoints, "nothing else changed");
    assert!(!db.client("ship").unwrap().options.pkce, "FedEx untouched");
}

#[test]
fn pending_outcome_is_recorded_once_used() {
    let db = Db::open_in_memory().unwrap();
    let now = Utc::now();
    db.insert_pending(&PendingRecord {
        state_hash: "h".into(),
        client_key: "c".into(),
        redirect_uri: "x:/y".into(),
        pkce: true,
        reconnect_connection_id: None,
        created_at: now,
        expires_at: now + chrono::Duration::minutes(10),
        consumed_at: None,
    })
    .unwrap();
    assert_eq!(db.pending_outcome("h").unwrap(), None);
    assert!(db.consume_pending("h", now).unwrap());
    assert_eq!(db.pending_outcome("h").unwrap().as_deref(), Some("used"));
    db.set_pending_outcome("h", "invalid_grant").unwrap();
    assert_eq!(
        db.pending_outcome("h").unwrap().as_deref(),
        Some("invalid_grant")
    );
    assert_eq!(db.pending_outcome("unknown").unwrap(), None);
}

#[test]
fn history_survives_connection_delete() {
    let db = Db::open_in_memory().unwrap();
    db.insert_client(&client("a")).unwrap();
    db.insert_connection(&connection("c1", "id-a", "one"), "k")
        .unwrap();
    // History is stored with millisecond precision.
    let at = DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap();
    let e = HistoryEntry::new(at, "connect", "ok", None);
    db.add_history(Some("c1"), Some("id-a"), &e).unwrap();
    db.delete_connection("c1").unwrap();
    assert_eq!(db.history(Some("c1"), 10).unwrap(), vec![e]);
}

fn device(id: &str, client_key: &str, name: &str) -> Device {
    Device {
        id: id.into(),
        name: name.into(),
        device_id: format!("dev-{id}"),
        client_key: client_key.into(),
        client_name: "iot".into(),
        connection_id: Some("k-iot".into()),
        has_secret: true,
        created_at: DateTime::from_timestamp_millis(1_700_000_000_000).unwrap(),
        last_check: None,
        sandbox: false,
    }
}

/// A store laid out by the version before the devices lost their foreign key to
/// `clients` (8 migrations), with an IoT client and two devices (one with history):
/// the upgrade keeps every device and its history, and a device whose client lives
/// elsewhere (the team store, issue 13) can then be added.
#[test]
fn the_upgrade_that_drops_the_devices_foreign_key_keeps_every_device() {
    let mut conn = Sqlite::open_in_memory().unwrap();
    conn.pragma_update(None, "foreign_keys", "ON").unwrap();
    migrations().to_version(&mut conn, 8).unwrap();
    let mut iot = client("iot");
    iot.provider = Provider::Iot;
    conn.execute(
        "INSERT INTO clients (id, name, provider, data, created_at) VALUES (?1, ?2, ?3, ?4, 0)",
        params![
            iot.id,
            iot.name,
            iot.provider.as_str(),
            serde_json::to_string(&iot).unwrap()
        ],
    )
    .unwrap();
    let before = [
        device("d1", &iot.id, "boiler"),
        device("d2", &iot.id, "meter"),
    ];
    for d in &before {
        conn.execute(
            "INSERT INTO devices (id, client_id, connection_id, name, data, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![d.id, d.client_key, d.connection_id, d.name, serde_json::to_string(d).unwrap(), d.created_at.timestamp_millis()],
        )
        .unwrap();
    }
    // The old table refuses a device of a client this file does not hold.
    let orphan = device("d3", "id-team-client", "pump");
    assert!(conn
        .execute(
            "INSERT INTO devices (id, client_id, connection_id, name, data, created_at) VALUES (?1, ?2, NULL, ?3, '{}', 0)",
            params![orphan.id, orphan.client_key, orphan.name],
        )
        .is_err());
    conn.execute(
        "INSERT INTO history (connection_id, client_id, at, event, outcome, detail, device_id)
         VALUES (NULL, ?1, 0, 'device_added', 'ok', NULL, 'd1')",
        params![iot.id],
    )
    .unwrap();

    let db = Db::init(conn, None, false).unwrap();
    assert_eq!(db.devices().unwrap(), before.to_vec());
    assert_eq!(db.device_history("d1", 10).unwrap().len(), 1);
    assert_eq!(db.device_count_for_client(&iot.id).unwrap(), 2);
    // Names stay unique (the rebuilt table's index).
    let same_name = device("d4", &iot.id, "boiler");
    assert_eq!(
        db.insert_device(&same_name).unwrap_err().code,
        crate::error::ErrorCode::AlreadyExists
    );
    // And a device whose client is in another store is kept now.
    db.insert_device(&orphan).unwrap();
    assert_eq!(db.device("pump").unwrap(), orphan);
}
