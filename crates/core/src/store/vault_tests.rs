//! The vault's unit tests (`store::vault::store_tests`), beside it to keep `vault.rs` short.

use super::*;
use crate::store::db::Db;
use crate::store::keyring::MemoryStore;

fn open(path: &std::path::Path, secrets: &MemoryStore) -> Result<Db> {
    let db = Db::open(path)?;
    check_store(&db, secrets)?;
    Ok(db)
}

#[test]
fn a_new_store_registers_once_and_a_lost_one_stops_until_reset() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    std::fs::create_dir(&dir).unwrap();
    let path = dir.join("authdeck.sqlite3");
    let secrets = MemoryStore::new();
    drop(open(&path, &secrets).unwrap());
    assert_eq!(secrets.keys(), [store_key(&path)]);
    // Registered: opening again needs no keyring at all.
    secrets.set_unavailable(true);
    drop(open(&path, &secrets).unwrap());
    secrets.set_unavailable(false);
    secrets
        .set("client/c1/secret", &KeyringValue::new("s"))
        .unwrap();

    // The data dir goes; the keyring stays.
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::create_dir(&dir).unwrap();
    for _ in 0..2 {
        let err = open(&path, &secrets).err().unwrap();
        assert_eq!(err.code, ErrorCode::Storage);
        assert!(err.message.contains("has lost its database"), "{err:?}");
        assert!(err.message.contains("authdeckctl reset"), "{err:?}");
    }
    let db = Db::open(&path).unwrap();
    let counted = reset_lost_store(&db, &secrets, true).unwrap();
    assert_eq!(
        counted,
        ResetReport {
            deleted: 2,
            kept: 0
        }
    );
    assert_eq!(secrets.keys().len(), 2, "a dry run deletes nothing");
    reset_lost_store(&db, &secrets, false).unwrap();
    assert_eq!(
        secrets.keys(),
        [store_key(&path)],
        "only the new store's id is left"
    );
    drop(db);
    drop(open(&path, &secrets).unwrap());
    let err = reset_lost_store(&Db::open(&path).unwrap(), &secrets, false).unwrap_err();
    assert_eq!(
        err.code,
        ErrorCode::InvalidInput,
        "a working store is never reset"
    );
}

#[test]
fn two_processes_registering_one_new_store_agree_on_its_id() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("authdeck.sqlite3");
    let secrets = MemoryStore::new();
    let db = Db::open(&path).unwrap();
    // This process recorded its id; the other one told the keyring first.
    db.set_store_identity("mine", Registration::Pending)
        .unwrap();
    secrets
        .set(&store_key(&path), &KeyringValue::new("theirs"))
        .unwrap();
    check_store(&db, &secrets).unwrap();
    assert_eq!(
        db.store_identity().unwrap(),
        Some(("theirs".to_string(), Registration::Registered))
    );
}

#[test]
fn a_token_bundle_survives_its_bytes_and_damaged_bytes_are_refused() {
    let expires = Expiry::new(
        chrono::Utc::now(),
        crate::model::ExpirySource::RelativeSeconds,
    );
    let bundle = TokenBundle::new(
        AccessToken::new("a1"),
        Some(RefreshToken::new("r1")),
        Some(expires),
        None,
    );
    let bytes = bundle.to_bytes().unwrap();
    assert!(bytes.starts_with(br#"{"v":1,"#), "versioned JSON");
    let back = TokenBundle::from_bytes(&bytes).unwrap();
    assert_eq!(back.access_token.expose(), "a1");
    assert_eq!(back.refresh_token.unwrap().expose(), "r1");
    assert_eq!(back.access_expires, Some(expires));
    let err = TokenBundle::from_bytes(b"{\"v\":1").unwrap_err();
    assert_eq!(err.code, ErrorCode::KeyringUnavailable);
    assert!(!err.message.contains("v\":1"));
}

#[test]
fn an_emptied_database_is_a_lost_store_too() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("authdeck.sqlite3");
    let secrets = MemoryStore::new();
    drop(open(&path, &secrets).unwrap());
    std::fs::write(&path, b"").unwrap();
    let err = open(&path, &secrets).err().unwrap();
    assert!(err.message.contains("has lost its database"), "{err:?}");
}

#[test]
fn a_shared_keyring_service_keeps_the_other_stores_entries() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a.sqlite3"), tmp.path().join("b.sqlite3"));
    let secrets = MemoryStore::new();
    drop(open(&a, &secrets).unwrap());
    drop(open(&b, &secrets).unwrap());
    secrets
        .set("client/x/secret", &KeyringValue::new("s"))
        .unwrap();
    std::fs::remove_file(&a).unwrap();
    let db = Db::open(&a).unwrap();
    let report = reset_lost_store(&db, &secrets, false).unwrap();
    assert_eq!(
        report,
        ResetReport {
            deleted: 1,
            kept: 2
        }
    );
    assert!(secrets.keys().contains(&"client/x/secret".to_string()));
    assert!(secrets.keys().contains(&store_key(&b)));
}
