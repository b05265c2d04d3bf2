//! On a small tmpfs, filled up: reads work, writes say the disk is full, and the same
//! handle writes again once space is freed (the app runs for days).
use super::*;
use crate::model::HistoryEntry;
use std::process::Command;

struct SmallDisk(PathBuf);

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let file = dir.join("filler");
    let mut f = std::fs::File::create(&file).unwrap();
    let block = vec![0u8; 4096];
    while f.write_all(&block).is_ok() {}
    file
}

#[test]
fn a_full_disk_reads_refuses_writes_in_plain_words_and_recovers() {
    let tmp = tempfile::tempdir().unwrap();
    let mnt = tmp.path().join("disk");
    std::fs::create_dir(&mnt).unwrap();
    let out = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs"])
        .arg(&mnt)
        .output()
        .expect("mount runs");
    assert!(
        out.status.success(),
        "this test fills a small tmpfs and needs to mount one (root, or a container allowed to mount): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _disk = SmallDisk(mnt.clone());
    let path = mnt.join("authdeck.sqlite3");
    let entry = HistoryEntry::new(Utc::now(), "connect", "ok", None);
    {
        let db = Db::open(&path).unwrap();
        db.add_history(None, None, &entry).unwrap();
    }
    let filler = fill(&mnt);

    let db = Db::open(&path).unwrap();
    assert!(db.read_only_reason().is_some(), "opened read-only");
    assert_eq!(db.history(None, 10).unwrap().len(), 1, "reads work");
    let err = db.add_history(None, None, &entry).unwrap_err();
    assert_eq!(err.code, ErrorCode::Storage);
    assert!(
        err.message.starts_with("The disk is full: ")
            && err.message.contains(&path.display().to_string()),
        "{err:?}"
    );

    std::fs::remove_file(filler).unwrap();
    db.add_history(None, None, &entry).unwrap();
    assert!(db.read_only_reason().is_none(), "writable again");
    assert_eq!(db.history(None, 10).unwrap().len(), 2);
}
