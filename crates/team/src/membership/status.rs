//! `team status`: what the team looks like now, and the last known status.

use super::*;

/// A member + machine the team has seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenMember {
    pub member: String,
    pub machine: String,
    /// `desktop` or `agent`.
    pub kind: String,
    pub app_version: String,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leader {
    pub member: String,
    pub machine: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastRefresh {
    pub connection_id: String,
    pub at: DateTime<Utc>,
    pub by: Option<String>,
    pub on: Option<String>,
}

/// What `team status` shows (and keeps as the last known status).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamStatus {
    pub team_id: String,
    pub team_name: String,
    /// The database's host(s), port(s) and name (never a password).
    pub database: String,
    pub machine: String,
    /// When the database answered this status.
    pub checked_at: DateTime<Utc>,
    /// The team's change version.
    pub version: i64,
    pub connections: usize,
    /// Desktops and agents seen, most recent first.
    pub members: Vec<SeenMember>,
    /// Who holds the scheduler's leadership now (none: no scheduler runs).
    pub leader: Option<Leader>,
    pub last_refresh: Option<LastRefresh>,
    /// The longest any connection has gone without a refresh (since it was created, if
    /// never refreshed): how far the team's refresher lags. `None` without connections.
    pub refresh_lag_seconds: Option<i64>,
}

/// The database's hosts, ports and name, for people (no password: refused anyway).
pub fn describe_database(db: &DbConfig) -> String {
    use tokio_postgres::config::Host;
    let pg = db.pg();
    let ports = pg.get_ports();
    let hosts: Vec<String> = pg
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let host = match h {
                Host::Tcp(name) => name.clone(),
                #[cfg(unix)]
                Host::Unix(path) => path.display().to_string(),
            };
            match ports.get(i).or(ports.first()) {
                Some(port) => format!("{host}:{port}"),
                None => host,
            }
        })
        .collect();
    let name = pg.get_dbname().or(pg.get_user()).unwrap_or("postgres");
    format!("{} database {name}", hosts.join(","))
}

/// Note this machine as seen, and read the team's status.
pub async fn status(
    store: &TeamStore,
    membership: &Membership,
    app_version: &str,
) -> Result<TeamStatus> {
    store.seen(app_version).await?;
    let members = store.members().await?;
    let leader = crate::lock::current_leader(store).await?;
    let connections = store.connections().await?;
    let version = store.current_version().await?;
    let team_name = store.team_name().await?;
    let now = Utc::now();
    let last_refresh = connections
        .iter()
        .filter_map(|c| c.last_refresh_at.map(|at| (at, c)))
        .max_by_key(|(at, _)| *at)
        .map(|(at, c)| LastRefresh {
            connection_id: c.id.clone(),
            at,
            by: c.last_refresh_by.clone(),
            on: c.last_refresh_on.clone(),
        });
    let refresh_lag_seconds = connections
        .iter()
        .map(|c| c.last_refresh_at.unwrap_or(c.created_at))
        .min()
        .map(|oldest| (now - oldest).num_seconds().max(0));
    Ok(TeamStatus {
        team_id: store.team_id().to_owned(),
        team_name,
        database: describe_database(store.db()),
        machine: membership.machine.clone(),
        checked_at: now,
        version,
        connections: connections.len(),
        members: members
            .into_iter()
            .map(|m| SeenMember {
                member: m.member,
                machine: m.machine,
                kind: m.kind,
                app_version: m.app_version,
                first_seen: m.first_seen,
                last_seen: m.last_seen,
            })
            .collect(),
        leader: leader.map(|(member, machine, _)| Leader { member, machine }),
        last_refresh,
        refresh_lag_seconds,
    })
}

impl TeamStatus {
    /// The last status seen in this data directory (nothing if none, or unreadable).
    pub fn load_cached(data_dir: &Path) -> Option<TeamStatus> {
        let text = std::fs::read_to_string(data_dir.join(STATUS_FILE)).ok()?;
        serde_json::from_str(&text).ok()
    }

    pub fn save_cached(&self, data_dir: &Path) -> Result<()> {
        let text = serde_json::to_vec_pretty(self).map_err(|e| {
            Error::internal("Could not encode the team status.").with_detail(e.to_string())
        })?;
        write_private(&data_dir.join(STATUS_FILE), &text)
    }
}
