//! The database file on disk: a commit into a file that is no longer there is an
//! error, and SQLite's errors name the file.
use super::*;
use crate::model::HistoryEntry;

fn entry() -> HistoryEntry {
    HistoryEntry::new(Utc::now(), "refresh", "ok", None)
}

#[test]
fn a_commit_after_the_data_dir_was_deleted_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    std::fs::create_dir(&dir).unwrap();
    let path = dir.join("authdeck.sqlite3");
    let db = Db::open(&path).unwrap();
    db.add_history(None, None, &entry()).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let err = db.add_history(None, None, &entry()).unwrap_err();
    assert_eq!(err.code, ErrorCode::Storage);
    assert!(
        err.message.contains("was deleted") && err.message.contains(&path.display().to_string()),
        "{err:?}"
    );
    assert!(
        err.message.contains("backup"),
        "says how to recover: {err:?}"
    );
}

#[test]
fn a_commit_into_a_replaced_or_emptied_file_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("authdeck.sqlite3");
    let db = Db::open(&path).unwrap();
    db.verify_file().unwrap();
    // Emptied in place (same inode).
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    let err = db.verify_file().unwrap_err();
    assert!(err.message.contains("was emptied"), "{err:?}");
    drop(db);

    let db = Db::open(&tmp.path().join("other.sqlite3")).unwrap();
    std::fs::rename(tmp.path().join("other.sqlite3"), tmp.path().join("moved")).unwrap();
    std::fs::write(tmp.path().join("other.sqlite3"), b"not this one").unwrap();
    let err = db.add_history(None, None, &entry()).unwrap_err();
    assert!(err.message.contains("was replaced"), "{err:?}");
}

#[test]
fn a_file_that_is_not_a_database_is_named_in_the_error() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("authdeck.sqlite3");
    std::fs::write(&path, vec![b'x'; 8192]).unwrap();
    let err = Db::open(&path).err().unwrap();
    assert_eq!(err.code, ErrorCode::Storage);
    assert!(
        err.message.contains(&path.display().to_string()) && err.message.contains("damaged"),
        "{err:?}"
    );
}

#[test]
fn history_details_are_capped() {
    let db = Db::open_in_memory().unwrap();
    let mut e = entry();
    e.detail = Some("é".repeat(70_000));
    db.add_history(None, None, &e).unwrap();
    let stored = db.history(None, 1).unwrap().remove(0).detail.unwrap();
    assert_eq!(stored.chars().count(), MAX_HISTORY_DETAIL + 1);
    assert!(stored.ends_with('…'));
}

#[test]
fn opening_a_store_again_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("authdeck.sqlite3");
    drop(Db::open(&path).unwrap());
    let before = std::fs::read(&path).unwrap();
    let db = Db::open(&path).unwrap();
    db.connections().unwrap();
    drop(db);
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert!(
        !tmp.path().join("authdeck.sqlite3-wal").exists()
            || std::fs::metadata(tmp.path().join("authdeck.sqlite3-wal"))
                .unwrap()
                .len()
                == 0,
        "nothing was written to the WAL either"
    );
}

#[test]
fn processes_opening_a_new_store_at_once_all_get_it() {
    // Several `authdeckctl` runs on a data directory nobody opened yet (a desktop that
    // just joined a team, then refreshes in parallel) all create and migrate it at once.
    for _ in 0..5 {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("authdeck.sqlite3");
        let barrier = std::sync::Barrier::new(8);
        std::thread::scope(|s| {
            let opens: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        barrier.wait();
                        Db::open(&path).map(|_| ())
                    })
                })
                .collect();
            for open in opens {
                open.join().unwrap().expect("the store opens");
            }
        });
        Db::open(&path)
            .unwrap()
            .add_history(None, None, &entry())
            .unwrap();
    }
}
