//! The last known list of a desktop in a team (`team-list.json`, 0600): what the window
//! shows, marked as such, while the team database does not answer, also when Authdeck
//! starts then. Rows only ([`ConnectionSummary`]: metadata, never a token or secret),
//! with the instant they were known to be the team's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use authdeck_core::model::ConnectionSummary;
use authdeck_core::{Error, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::membership::write_private;

/// The last known list in the data directory.
pub const LIST_FILE: &str = "team-list.json";

/// The team's connections as last seen here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastList {
    /// Which team they are of (a list of another team is not shown).
    pub team_id: String,
    /// When the list was last known to be the team's.
    pub as_of: DateTime<Utc>,
    /// By connection id.
    pub connections: BTreeMap<String, ConnectionSummary>,
}

impl LastList {
    pub fn new(team_id: impl Into<String>, as_of: DateTime<Utc>) -> Self {
        Self {
            team_id: team_id.into(),
            as_of,
            connections: BTreeMap::new(),
        }
    }

    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join(LIST_FILE)
    }

    /// The list kept for `team_id`, if there is one (an unreadable file is none).
    pub fn load(data_dir: &Path, team_id: &str) -> Option<LastList> {
        let text = std::fs::read(Self::path(data_dir)).ok()?;
        let list: LastList = serde_json::from_slice(&text).ok()?;
        (list.team_id == team_id).then_some(list)
    }

    /// Write it (0600, replaced atomically).
    pub fn save(&self, data_dir: &Path) -> Result<()> {
        let text = serde_json::to_vec(self).map_err(|e| {
            Error::internal("Could not encode the last known list.").with_detail(e.to_string())
        })?;
        write_private(&Self::path(data_dir), &text)
    }

    /// All of `rows`, current at `at`.
    pub fn replace(
        &mut self,
        rows: impl IntoIterator<Item = ConnectionSummary>,
        at: DateTime<Utc>,
    ) {
        self.connections = rows.into_iter().map(|c| (c.id.clone(), c)).collect();
        self.as_of = at;
    }

    pub fn upsert(&mut self, row: ConnectionSummary, at: DateTime<Utc>) {
        self.connections.insert(row.id.clone(), row);
        self.as_of = at;
    }

    pub fn remove(&mut self, id: &str, at: DateTime<Utc>) {
        self.connections.remove(id);
        self.as_of = at;
    }

    /// The rows, in the order the store lists them (label, then id).
    pub fn rows(&self) -> Vec<ConnectionSummary> {
        let mut rows: Vec<_> = self.connections.values().cloned().collect();
        rows.sort_by(|a, b| a.label.cmp(&b.label).then_with(|| a.id.cmp(&b.id)));
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use authdeck_core::model::{Connection, Environment, Provider};

    fn row(id: &str, label: &str) -> ConnectionSummary {
        let c = Connection::new(
            id,
            "client-1",
            "FedEx",
            Provider::Fedex,
            Environment::Sandbox,
            label,
            Utc::now(),
        );
        ConnectionSummary::from(&c)
    }

    #[test]
    fn the_kept_rows_hold_no_token_nor_anything_but_the_summary() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Connection::new(
            "c1",
            "client-1",
            "IoT",
            Provider::Iot,
            Environment::Sandbox,
            "ann",
            Utc::now(),
        );
        c.userinfo = Some(serde_json::json!({"token": "CANARY-userinfo-7f3"}));
        c.user_id = Some("CANARY-user-id-7f3".into());
        c.scope = Some("CANARY-scope-7f3".into());
        let mut list = LastList::new("t1", Utc::now());
        list.upsert(ConnectionSummary::from(&c), Utc::now());
        list.save(dir.path()).unwrap();
        let text = std::fs::read_to_string(LastList::path(dir.path())).unwrap();
        assert!(text.contains("\"ann\""), "{text}");
        assert!(!text.contains("CANARY"), "{text}");
    }

    #[test]
    fn the_list_round_trips_through_a_private_file_of_its_team_only() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(LastList::load(dir.path(), "t1"), None);
        let at = Utc::now();
        let mut list = LastList::new("t1", at);
        list.replace([row("b", "Bee"), row("a", "Ant")], at);
        list.upsert(row("c", "Cat"), at);
        list.remove("b", at);
        list.save(dir.path()).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(LastList::path(dir.path()))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let back = LastList::load(dir.path(), "t1").expect("kept");
        let labels: Vec<_> = back.rows().iter().map(|r| r.label.clone()).collect();
        assert_eq!(labels, ["Ant", "Cat"]);
        assert_eq!(back, list);
        assert_eq!(LastList::load(dir.path(), "another team"), None);
        std::fs::write(LastList::path(dir.path()), b"{not json").unwrap();
        assert_eq!(LastList::load(dir.path(), "t1"), None, "damaged: none");
    }
}
