//! The live change feed: LISTEN on the team's channel, with resync by version.
//!
//! On (re)connect the feed LISTENs first, then reads every change after the last
//! version it delivered (`changes_since`), then forwards notifications, skipping those at
//! or below what it has delivered. Versions of one team are ordered by commit (see
//! `schema`), so nothing committed while the feed was away is missed, and nothing is
//! delivered twice. A lost session is reported ([`FeedEvent::Disconnected`]) and
//! retried with a growing pause (0.2 s … 5 s).

use std::time::Duration;

use authdeck_core::Error;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_postgres::AsyncMessage;

use crate::db_error;
use crate::store::{changes_since, TeamStore};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Client,
    Connection,
}

/// One changed row: re-read it to see what changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub kind: ChangeKind,
    pub id: String,
    pub version: i64,
    /// Known from a resync (a tombstone or not) and from a tombstone's notification;
    /// `None` from a live row's notification.
    pub deleted: Option<bool>,
}

#[derive(Debug, Clone)]
pub enum FeedEvent {
    Change(Change),
    /// Listening (again), caught up to `version`.
    Connected {
        version: i64,
    },
    /// The session was lost: the list may be stale until the next `Connected`.
    Disconnected {
        error: Error,
    },
}

/// A running feed; dropping it stops it.
pub struct ChangeFeed {
    rx: mpsc::Receiver<FeedEvent>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ChangeFeed {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ChangeFeed {
    /// The next event (`None` once the feed stopped).
    pub async fn recv(&mut self) -> Option<FeedEvent> {
        self.rx.recv().await
    }
}

fn parse_payload(payload: &str) -> Option<Change> {
    let (version, rest) = payload.split_once(' ')?;
    let (kind, id) = rest.split_once(' ')?;
    // Since schema 2 a tombstone says so (`connection.deleted`); a live row's
    // notification does not (it may have been removed since: re-read it).
    let (kind, deleted) = match kind.strip_suffix(".deleted") {
        Some(kind) => (kind, Some(true)),
        None => (kind, None),
    };
    Some(Change {
        kind: match kind {
            "client" => ChangeKind::Client,
            "connection" => ChangeKind::Connection,
            _ => return None,
        },
        id: id.to_string(),
        version: version.parse().ok()?,
        deleted,
    })
}

impl TeamStore {
    /// Follow the team's changes after `from_version` (e.g. the version of the list the
    /// caller just read; 0 for everything).
    pub fn feed(&self, from_version: i64) -> ChangeFeed {
        let (tx, rx) = mpsc::channel(1024);
        let store = self.clone();
        let task = tokio::spawn(async move {
            let mut last = from_version;
            let mut pause = Duration::from_millis(200);
            loop {
                match run_once(&store, &mut last, &tx).await {
                    Ok(()) => return, // the receiver is gone
                    Err(error) => {
                        if tx.send(FeedEvent::Disconnected { error }).await.is_err() {
                            return;
                        }
                    }
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
        });
        ChangeFeed { rx, task }
    }
}

/// One session: `Ok` when the receiver went away, `Err` when the session was lost.
async fn run_once(
    store: &TeamStore,
    last: &mut i64,
    tx: &mpsc::Sender<FeedEvent>,
) -> Result<(), Error> {
    let (ntx, mut nrx) = mpsc::unbounded_channel();
    let client = store
        .db()
        .connect_with(|mut conn| async move {
            let mut messages = futures_util::stream::poll_fn(move |cx| conn.poll_message(cx));
            while let Some(m) = messages.next().await {
                match m {
                    Ok(AsyncMessage::Notification(n)) => {
                        if ntx.send(Ok(n.payload().to_string())).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        let _ = ntx.send(Err(db_error(e)));
                        return;
                    }
                }
            }
            let _ = ntx.send(Err(Error::new(
                authdeck_core::ErrorCode::TeamUnavailable,
                "The team database closed the change feed's session.",
            )));
        })
        .await?;
    client
        .batch_execute(&format!(
            "SET application_name = 'authdeck-feed'; LISTEN {}",
            store.channel()
        ))
        .await
        .map_err(db_error)?;
    let changes = changes_since(&client, store.team_id(), *last).await?;
    for c in changes {
        if c.version > *last {
            *last = c.version;
        }
        if tx.send(FeedEvent::Change(c)).await.is_err() {
            return Ok(());
        }
    }
    if tx
        .send(FeedEvent::Connected { version: *last })
        .await
        .is_err()
    {
        return Ok(());
    }
    loop {
        tokio::select! {
            m = nrx.recv() => match m {
                Some(Ok(payload)) => {
                    let Some(change) = parse_payload(&payload) else { continue };
                    if change.version <= *last {
                        continue;
                    }
                    *last = change.version;
                    if tx.send(FeedEvent::Change(change)).await.is_err() {
                        return Ok(());
                    }
                }
                Some(Err(e)) => return Err(e),
                None => return Err(Error::new(
                    authdeck_core::ErrorCode::TeamUnavailable,
                    "The change feed's session ended.",
                )),
            },
            _ = tx.closed() => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_parse_and_bad_ones_are_ignored() {
        assert_eq!(
            parse_payload("42 connection conn id with spaces"),
            Some(Change {
                kind: ChangeKind::Connection,
                id: "conn id with spaces".into(),
                version: 42,
                deleted: None
            })
        );
        assert_eq!(
            parse_payload("7 client c1").map(|c| c.kind),
            Some(ChangeKind::Client)
        );
        assert_eq!(
            parse_payload("8 connection.deleted c1"),
            Some(Change {
                kind: ChangeKind::Connection,
                id: "c1".into(),
                version: 8,
                deleted: Some(true)
            })
        );
        assert_eq!(parse_payload("8 other.deleted c1"), None);
        assert_eq!(parse_payload("x client c1"), None);
        assert_eq!(parse_payload("7 other c1"), None);
        assert_eq!(parse_payload("7"), None);
    }
}
