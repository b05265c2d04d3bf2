//! The window in team mode: the team store's change feed forwarded into the window's
//! feed (another machine's refresh shows in this window's row at once), and the last
//! known list (`authdeck_team::last_list`, 0600 in the data directory), shown marked as
//! such while the team database does not answer — also when the app starts then.
//!
//! The list is kept from what the window is sent (every snapshot read from the store,
//! every row re-read after a change) and written at most once a second; it holds
//! [`ConnectionSummary`] rows only, never a token or secret.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use authdeck_core::manager::Manager;
use authdeck_core::store::{BackendKind, StoreChange, StoreChangeKind};
use authdeck_core::ErrorCode;
use authdeck_team::last_list::LastList;
use chrono::{DateTime, Utc};

use crate::changes::{ChangeEvent, ChangeFeed};
use crate::summary::ConnectionSummary;

/// How long after a change the list file is written (changes meanwhile share the write).
const SAVE_AFTER: Duration = Duration::from_secs(1);

/// The team's list as this window last knew it.
pub struct TeamList {
    data_dir: PathBuf,
    last: Mutex<LastList>,
    /// A write of the file is scheduled.
    saving: AtomicBool,
    /// The list is live: read from the store, its feed connected since.
    live: AtomicBool,
}

impl TeamList {
    /// The list kept in `data_dir` for `team_id` (empty, of now, when none is kept).
    pub fn load(data_dir: PathBuf, team_id: &str) -> Arc<Self> {
        let last = LastList::load(&data_dir, team_id)
            .unwrap_or_else(|| LastList::new(team_id, DateTime::<Utc>::MIN_UTC));
        Arc::new(Self {
            data_dir,
            last: Mutex::new(last),
            saving: AtomicBool::new(false),
            live: AtomicBool::new(false),
        })
    }

    /// The last known rows, and when they were known to be the team's (`None`: never).
    pub fn rows(&self) -> (Vec<ConnectionSummary>, Option<DateTime<Utc>>) {
        match self.last.lock() {
            Ok(last) => (last.rows(), known(last.as_of)),
            Err(_) => (Vec::new(), None),
        }
    }

    /// When the list was last known to be the team's (`None`: never).
    pub fn as_of(&self) -> Option<DateTime<Utc>> {
        self.last.lock().ok().and_then(|l| known(l.as_of))
    }

    /// The store listed `rows` just now.
    pub fn replace(self: &Arc<Self>, rows: &[ConnectionSummary]) {
        self.live.store(true, Ordering::SeqCst);
        self.edit(|last, now| last.replace(rows.iter().cloned(), now));
    }

    fn upsert(self: &Arc<Self>, row: &ConnectionSummary) {
        self.edit(|last, now| last.upsert(row.clone(), now));
    }

    fn remove(self: &Arc<Self>, id: &str) {
        self.edit(|last, now| last.remove(id, now));
    }

    /// The feed lost the store: a live list was the team's until now. `false` when it
    /// was not live (already lost: the feed says so on each try to reconnect).
    fn lost(self: &Arc<Self>) -> bool {
        let was_live = self.live.swap(false, Ordering::SeqCst);
        if was_live {
            self.edit(|last, now| last.as_of = now);
        }
        was_live
    }

    fn edit(self: &Arc<Self>, f: impl FnOnce(&mut LastList, DateTime<Utc>)) {
        if let Ok(mut last) = self.last.lock() {
            f(&mut last, Utc::now());
        }
        if self.saving.swap(true, Ordering::SeqCst) {
            return; // a write is scheduled: it takes this change too
        }
        let me = self.clone();
        tauri::async_runtime::spawn(async move {
            tokio::time::sleep(SAVE_AFTER).await;
            me.saving.store(false, Ordering::SeqCst);
            let Ok(last) = me.last.lock().map(|l| l.clone()) else {
                return;
            };
            let dir = me.data_dir.clone();
            let saved = tokio::task::spawn_blocking(move || last.save(&dir)).await;
            if let Ok(Err(e)) = saved {
                tracing::warn!(code = %e.code, "the last known team list was not saved");
            }
        });
    }
}

fn known(at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    (at != DateTime::<Utc>::MIN_UTC).then_some(at)
}

/// Whether `manager`'s store is a team store that answered last time (the local store:
/// always).
pub fn reachable(manager: &Manager) -> bool {
    match manager.store().kind() {
        BackendKind::Local => true,
        BackendKind::Team { reachable, .. } => reachable,
    }
}

/// What one change of the team store means for the window; `list` keeps up with it.
pub async fn on_store_change(
    manager: &Manager,
    list: &Arc<TeamList>,
    feed: &ChangeFeed,
    change: StoreChange,
) {
    match (change.kind, change.id) {
        (StoreChangeKind::ConnectionChanged, Some(id)) => match manager.connection(&id).await {
            Ok(conn) => {
                let row = ConnectionSummary::from(&conn);
                list.upsert(&row);
                feed.push(ChangeEvent::ConnectionChanged {
                    connection: Box::new(row),
                });
            }
            Err(e) if e.code == ErrorCode::NotFound => {
                list.remove(&id);
                feed.push(ChangeEvent::ConnectionRemoved { id });
            }
            // Unreachable again already: the feed says so next. Else read at the next
            // resync.
            Err(e) => tracing::warn!(code = %e.code, "a changed team connection not re-read"),
        },
        (StoreChangeKind::ConnectionRemoved, Some(id)) => {
            list.remove(&id);
            feed.push(ChangeEvent::ConnectionRemoved { id });
        }
        (StoreChangeKind::ClientChanged, _) => feed.push(ChangeEvent::ClientsChanged),
        (StoreChangeKind::Resynced, _) => {
            // Reachable (again): the header, and the whole list read again.
            feed.push(ChangeEvent::AppInfoChanged);
            feed.push(ChangeEvent::Resync);
        }
        (StoreChangeKind::Unreachable, _) => {
            // Everything up to now reached this window: the list is the team's as of now.
            if list.lost() {
                feed.push(ChangeEvent::AppInfoChanged);
            }
        }
        (StoreChangeKind::ConnectionChanged | StoreChangeKind::ConnectionRemoved, None) => {
            feed.push(ChangeEvent::Resync)
        }
    }
}
