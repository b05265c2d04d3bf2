//! What the window hears about changes: one ordered feed of lean events (a row's summary
//! instead of the whole connection, redirect results, app-info changes).
//!
//! The window reads the feed with the `changes` command, a long poll that answers as
//! soon as something newer than the version it shows exists. Every answer travels the
//! IPC's fetch path; a Tauri event would be run as script in the page instead, which
//! starts a JavaScriptCore VM in the app process (~4 MiB) and costs an eval per event.
//! Versions also close the gap between a snapshot and the events after it: the window
//! asks for the changes after its snapshot's version, so none is lost or needs a buffer.

use std::collections::VecDeque;
use std::time::Duration;

use authdeck_core::manager::Event;
use serde::Serialize;
use tauri::Manager as _;
use ts_rs::TS;

use crate::commands::CallbackResult;
use crate::state::AppState;
use crate::summary::ConnectionSummary;

/// One change, as the window hears it.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChangeEvent {
    ConnectionChanged {
        connection: Box<ConnectionSummary>,
    },
    ConnectionRemoved {
        id: String,
    },
    ClientsChanged,
    /// A device was added, checked or removed: the window lists the devices again.
    DevicesChanged,
    /// Something was written to the history (e.g. a rejected callback).
    HistoryAdded {
        connection_id: Option<String>,
    },
    /// `app_info` says something new (e.g. the URL scheme could not be registered).
    AppInfoChanged,
    /// A browser redirect (deep link) finished: the connection it made, or why not.
    RedirectFinished {
        result: Box<CallbackResult>,
    },
    /// Events were lost on the way here: the window loads the snapshot again.
    Resync,
}

impl From<&Event> for ChangeEvent {
    fn from(event: &Event) -> Self {
        match event {
            Event::ConnectionChanged { connection } => Self::ConnectionChanged {
                connection: Box::new(ConnectionSummary::from(connection.as_ref())),
            },
            Event::ConnectionRemoved { id } => Self::ConnectionRemoved { id: id.clone() },
            Event::ClientsChanged => Self::ClientsChanged,
            Event::DevicesChanged => Self::DevicesChanged,
            Event::HistoryAdded { connection_id } => Self::HistoryAdded {
                connection_id: connection_id.clone(),
            },
        }
    }
}

/// The answer to `changes`.
#[derive(Debug, Clone, Serialize, TS)]
pub struct Changes {
    /// The feed's version after `events`: ask for the changes after it next.
    pub version: u64,
    pub events: Vec<ChangeEvent>,
    /// The changes after the asked version are no longer kept: load the snapshot again.
    pub resync: bool,
}

/// How many changes are kept for a window that is behind.
const KEPT: usize = 1024;
/// A `changes` call answers (empty) after this long, so no call waits forever.
const LONGEST_WAIT: Duration = Duration::from_secs(50);

#[derive(Default)]
pub struct ChangeFeed {
    inner: std::sync::Mutex<Kept>,
    added: tokio::sync::Notify,
}

#[derive(Default)]
struct Kept {
    version: u64,
    /// (version of the event, event), oldest first.
    events: VecDeque<(u64, ChangeEvent)>,
}

impl ChangeFeed {
    /// The version of the newest change (0: none yet).
    pub fn version(&self) -> u64 {
        self.inner.lock().map_or(0, |k| k.version)
    }

    /// Add a change (after the store has it).
    pub fn push(&self, event: ChangeEvent) {
        if let Ok(mut k) = self.inner.lock() {
            k.version += 1;
            let v = k.version;
            k.events.push_back((v, event));
            if k.events.len() > KEPT {
                k.events.pop_front();
            }
        }
        self.added.notify_waiters();
    }

    /// The changes after `after`, if there are any (or they are no longer kept).
    fn after(&self, after: u64) -> Option<Changes> {
        let k = self.inner.lock().ok()?;
        if after == k.version {
            return None;
        }
        let oldest = k.events.front().map_or(k.version + 1, |(v, _)| *v);
        let resync = after > k.version || after + 1 < oldest;
        let events = if resync {
            Vec::new()
        } else {
            let skip = (after + 1 - oldest) as usize;
            k.events.iter().skip(skip).map(|(_, e)| e.clone()).collect()
        };
        Some(Changes {
            version: k.version,
            events,
            resync,
        })
    }

    /// The changes after `after`: at once if there are some, else as soon as one comes
    /// (or empty after [`LONGEST_WAIT`]).
    pub async fn changes_after(&self, after: u64) -> Changes {
        self.changes_within(after, LONGEST_WAIT).await
    }

    async fn changes_within(&self, after: u64, longest: Duration) -> Changes {
        let deadline = tokio::time::sleep(longest);
        tokio::pin!(deadline);
        loop {
            let added = self.added.notified();
            tokio::pin!(added);
            added.as_mut().enable(); // registered before looking: no push is missed
            if let Some(changes) = self.after(after) {
                return changes;
            }
            tokio::select! {
                _ = &mut added => {}
                _ = &mut deadline => {
                    return Changes { version: self.version(), events: Vec::new(), resync: false };
                }
            }
        }
    }
}

/// Add a change to the window's feed.
pub fn push<R: tauri::Runtime>(app: &tauri::AppHandle<R>, event: ChangeEvent) {
    app.state::<AppState>().changes().push(event);
}

/// Feed the manager's change events to the window.
pub fn forward<R: tauri::Runtime>(app: &tauri::AppHandle<R>) {
    let mut events = app.state::<AppState>().manager().subscribe();
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        loop {
            match events.recv().await {
                Ok(event) => push(&app, ChangeEvent::from(&event)),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "the window missed change events");
                    push(&app, ChangeEvent::Resync);
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
    });
}

/// Feed the store's own changes (the team store's: other desktops and agents) to the
/// window; see `team_list`. Nothing to follow on this desktop's own store.
pub fn forward_store<R: tauri::Runtime>(app: &tauri::AppHandle<R>) {
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let state = app.state::<AppState>();
        let (Some(list), Some(mut changes)) =
            (state.team_list().cloned(), state.manager().store_changes())
        else {
            return;
        };
        loop {
            match changes.recv().await {
                Ok(change) => {
                    crate::team_list::on_store_change(
                        state.manager(),
                        &list,
                        state.changes(),
                        change,
                    )
                    .await
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "the window missed team store changes");
                    push(&app, ChangeEvent::Resync);
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn removed(id: &str) -> ChangeEvent {
        ChangeEvent::ConnectionRemoved { id: id.into() }
    }

    fn ids(changes: &Changes) -> Vec<String> {
        changes
            .events
            .iter()
            .map(|e| match e {
                ChangeEvent::ConnectionRemoved { id } => id.clone(),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[tokio::test]
    async fn a_window_gets_every_change_after_its_version_in_order() {
        let feed = ChangeFeed::default();
        feed.push(removed("a"));
        feed.push(removed("b"));
        let c = feed.changes_after(0).await;
        assert_eq!(
            (c.version, ids(&c), c.resync),
            (2, vec!["a".into(), "b".into()], false)
        );
        let c = feed.changes_after(1).await;
        assert_eq!(ids(&c), vec!["b".to_string()]);
    }

    #[tokio::test]
    async fn a_waiting_window_hears_the_next_change_at_once() {
        let feed = std::sync::Arc::new(ChangeFeed::default());
        let waiting = tokio::spawn({
            let feed = feed.clone();
            async move { feed.changes_after(0).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        feed.push(removed("x"));
        let c = tokio::time::timeout(Duration::from_secs(2), waiting)
            .await
            .expect("answered at once")
            .unwrap();
        assert_eq!((c.version, ids(&c)), (1, vec!["x".to_string()]));
    }

    #[tokio::test]
    async fn nothing_new_answers_empty_after_the_longest_wait() {
        let feed = ChangeFeed::default();
        feed.push(removed("a"));
        let c = feed.changes_within(1, Duration::from_millis(30)).await;
        assert_eq!((c.version, c.events.len(), c.resync), (1, 0, false));
    }

    #[tokio::test]
    async fn a_window_too_far_behind_is_told_to_resync() {
        let feed = ChangeFeed::default();
        for i in 0..KEPT + 5 {
            feed.push(removed(&i.to_string()));
        }
        assert!(feed.changes_after(2).await.resync);
        let c = feed.changes_after(5).await; // the oldest kept is version 6
        assert!(!c.resync);
        assert_eq!(c.events.len(), KEPT);
        // A version from the future (another process's feed) cannot be followed either.
        assert!(feed.changes_after(KEPT as u64 + 99).await.resync);
    }
}
