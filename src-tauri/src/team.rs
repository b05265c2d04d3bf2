//! The IPC commands of Clients & settings → Team: thin wrappers over
//! `authdeck_team::membership` (the same join, leave and status as `authdeckctl team`).
//!
//! The join key and the database password cross IPC inbound only (the join form): they
//! are deserialised into zeroed memory, handed to the membership code, and dropped
//! (zeroed) before the command answers; they are never returned, logged (their `Debug`
//! is redacted) or put in an error. The key is kept in this data directory's keyring.
//!
//! The window opens the team's store when the data directory is in a team (`state`,
//! `team_list`); a join or leave here takes effect on the list at the next start.

use authdeck_core::store::keyring::KeyringStore;
use authdeck_core::{Error, ErrorCode, KeyringValue, Password};
use authdeck_team::membership::{self, JoinSecrets, KeySource, Observed, TeamStatus};
use authdeck_team::Via;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tauri::State;
use ts_rs::TS;
use zeroize::Zeroizing;

use crate::commands::CmdResult;
use crate::state::AppState;

const APP_VERSION: &str = env!("CARGO_PKG_VERSION");

/// A desktop or agent the team has seen.
#[derive(Debug, Clone, Serialize, TS)]
pub struct TeamMember {
    /// The PostgreSQL role it connects as.
    pub member: String,
    pub machine: String,
    /// `desktop` or `agent`.
    pub kind: String,
    pub app_version: String,
    pub last_seen: DateTime<Utc>,
    /// This machine (this data directory's membership).
    pub this_machine: bool,
}

/// Who holds the team scheduler's leadership.
#[derive(Debug, Clone, Serialize, TS)]
pub struct TeamLeader {
    pub member: String,
    pub machine: String,
}

/// The team's most recent refresh.
#[derive(Debug, Clone, Serialize, TS)]
pub struct TeamRefresh {
    pub at: DateTime<Utc>,
    pub by: Option<String>,
    pub on: Option<String>,
}

/// What Settings → Team and the header show. Holds no secret.
#[derive(Debug, Clone, Serialize, TS)]
pub struct TeamState {
    /// Whether this data directory is in a team; every other field is empty when not.
    pub in_team: bool,
    pub team_id: Option<String>,
    pub team_name: Option<String>,
    /// The database's host(s), port(s) and name (never a password).
    pub database: Option<String>,
    /// This machine's name in the team.
    pub machine: Option<String>,
    /// Whether the database answered just now.
    pub reachable: bool,
    /// Why it did not (the `team_unavailable` message), when not reachable.
    pub unreachable: Option<String>,
    /// The status below is the last one seen here, not a fresh one (unreachable).
    pub last_known: bool,
    /// When the database answered the status shown; none: no status known.
    pub checked_at: Option<DateTime<Utc>>,
    /// Desktops and agents seen, most recent first.
    pub members: Vec<TeamMember>,
    pub leader: Option<TeamLeader>,
    pub last_refresh: Option<TeamRefresh>,
    /// The longest any team connection has gone without a refresh, in seconds; none
    /// without connections (or without a status).
    pub refresh_lag_seconds: Option<i64>,
    /// Connections in the team store.
    pub connections: Option<u32>,
}

impl TeamState {
    fn not_in_team() -> Self {
        Self {
            in_team: false,
            team_id: None,
            team_name: None,
            database: None,
            machine: None,
            reachable: false,
            unreachable: None,
            last_known: false,
            checked_at: None,
            members: Vec::new(),
            leader: None,
            last_refresh: None,
            refresh_lag_seconds: None,
            connections: None,
        }
    }

    fn of(
        m: &membership::Membership,
        status: Option<&TeamStatus>,
        unreachable: Option<&Error>,
    ) -> Self {
        let database = status.map(|s| s.database.clone()).or_else(|| {
            membership::parse_address(&m.database)
                .ok()
                .map(|db| membership::describe_database(&db))
        });
        Self {
            in_team: true,
            team_id: Some(m.team_id.clone()),
            team_name: Some(status.map_or(&m.team_name, |s| &s.team_name).clone()),
            database,
            machine: Some(m.machine.clone()),
            reachable: unreachable.is_none(),
            unreachable: unreachable.map(|e| e.message.clone()),
            last_known: unreachable.is_some() && status.is_some(),
            checked_at: status.map(|s| s.checked_at),
            members: status
                .map(|s| {
                    s.members
                        .iter()
                        .map(|p| TeamMember {
                            member: p.member.clone(),
                            machine: p.machine.clone(),
                            kind: p.kind.clone(),
                            app_version: p.app_version.clone(),
                            last_seen: p.last_seen,
                            this_machine: p.machine == m.machine,
                        })
                        .collect()
                })
                .unwrap_or_default(),
            leader: status.and_then(|s| s.leader.as_ref()).map(|l| TeamLeader {
                member: l.member.clone(),
                machine: l.machine.clone(),
            }),
            last_refresh: status
                .and_then(|s| s.last_refresh.as_ref())
                .map(|r| TeamRefresh {
                    at: r.at,
                    by: r.by.clone(),
                    on: r.on.clone(),
                }),
            refresh_lag_seconds: status.and_then(|s| s.refresh_lag_seconds),
            connections: status.map(|s| u32::try_from(s.connections).unwrap_or(u32::MAX)),
        }
    }
}

fn secrets(state: &AppState) -> KeyringStore {
    KeyringStore::new(state.paths().keyring_service.clone())
}

/// The team's status now (this machine noted as seen), or the last known one marked as
/// such when the database does not answer. Errs only for what the user must fix (a key
/// missing from the keyring, a damaged team.json), never for an unreachable database.
#[tauri::command]
pub async fn team_status(state: State<'_, AppState>) -> CmdResult<TeamState> {
    let data_dir = state.paths().data_dir.clone();
    let secrets = secrets(&state);
    Ok(
        match membership::observe(&data_dir, &secrets, Via::Desktop, APP_VERSION).await? {
            Observed::NotInTeam => TeamState::not_in_team(),
            Observed::Reachable { membership, status } => {
                TeamState::of(&membership, Some(&status), None)
            }
            Observed::Unreachable {
                membership,
                last_known,
                error,
            } => {
                tracing::info!(code = %error.code, "the team database does not answer");
                TeamState::of(&membership, last_known.as_ref(), Some(&error))
            }
        },
    )
}

/// The join form's input, its secrets held as the core's secret roles from the moment
/// they are deserialised (zeroed when dropped; `Debug` shows `[redacted]`).
#[derive(Debug, Deserialize, TS)]
pub struct TeamJoinInput {
    /// The database address, without a password.
    pub address: String,
    /// What `authdeckctl team init` printed.
    #[ts(type = "string")]
    pub join_key: KeyringValue,
    /// The database role's password, if it has one (kept in the keyring).
    #[ts(type = "string | null")]
    pub password: Option<Password>,
    /// This machine's name in the team (default: the host name).
    pub machine: Option<String>,
}

/// The form's secrets, given once each to the membership code.
struct FormSecrets {
    join_key: Option<KeyringValue>,
    password: Option<Password>,
}

impl JoinSecrets for FormSecrets {
    fn join_key(&mut self) -> authdeck_core::Result<Zeroizing<String>> {
        let key = self.join_key.take();
        let key = Zeroizing::new(key.as_ref().map_or("", |k| k.expose().trim()).to_owned());
        if key.is_empty() {
            return Err(Error::invalid_input(
                "Paste the join key (what `authdeckctl team init` printed).",
            ));
        }
        Ok(key)
    }

    fn password(&mut self) -> authdeck_core::Result<Option<Zeroizing<String>>> {
        // An empty field: no password (peer or trust authentication).
        Ok(self
            .password
            .take()
            .filter(|p| !p.is_empty())
            .map(|p| Zeroizing::new(p.expose().to_owned())))
    }
}

/// Join a team (or join the same team again with its new key): the same checks and
/// effects as `authdeckctl team join`; the key is kept in this data directory's keyring.
#[tauri::command]
pub async fn team_join(state: State<'_, AppState>, input: TeamJoinInput) -> CmdResult<TeamState> {
    let TeamJoinInput {
        address,
        join_key,
        password,
        machine,
    } = input;
    let machine = machine
        .map(|m| m.trim().to_owned())
        .filter(|m| !m.is_empty());
    let mut form = FormSecrets {
        join_key: Some(join_key),
        password,
    };
    let secrets = secrets(&state);
    let joined = membership::join(
        state.paths(),
        &secrets,
        membership::JoinRequest {
            address: &address,
            machine,
            key: KeySource::Keyring,
            via: Via::Desktop,
            app_version: APP_VERSION,
        },
        &mut form,
    )
    .await;
    // Whatever happened, the form's secrets are zeroed now, not when the future is dropped.
    drop(form);
    let joined = joined?;
    tracing::info!(rejoined = joined.rejoined, "joined a team");
    team_status(state).await
}

/// Leave the team on this desktop: the membership and the team key are forgotten here;
/// the team (its connections, history, this machine among the members seen) stays.
#[tauri::command]
pub async fn team_leave(state: State<'_, AppState>) -> CmdResult<TeamState> {
    let secrets = secrets(&state);
    match membership::leave(&state.paths().data_dir, &secrets)? {
        Some(_) => tracing::info!("left the team"),
        None => {
            return Err(Error::new(
                ErrorCode::NotFound,
                "This desktop is not in a team: nothing to leave.",
            ))
        }
    }
    Ok(TeamState::not_in_team())
}

pub fn export_bindings(dir: &std::path::Path) -> Result<(), ts_rs::ExportError> {
    let cfg = ts_rs::Config::new()
        .with_out_dir(dir)
        .with_large_int("number");
    TeamState::export_all(&cfg)?;
    TeamJoinInput::export_all(&cfg)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_join_input_never_debug_prints_its_secrets() {
        let input: TeamJoinInput = serde_json::from_value(serde_json::json!({
            "address": "host=127.0.0.1 dbname=team", "join_key": "adtk1_canary-key-51d",
            "password": "canary-pw-51d", "machine": null,
        }))
        .unwrap();
        let shown = format!("{input:?}");
        assert!(!shown.contains("canary"), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
        assert_eq!(input.join_key.expose(), "adtk1_canary-key-51d");
    }

    #[test]
    fn an_empty_join_key_is_refused_and_an_empty_password_is_none() {
        let mut form = FormSecrets {
            join_key: Some(KeyringValue::new("  ")),
            password: Some(Password::new("")),
        };
        assert_eq!(form.join_key().unwrap_err().code, ErrorCode::InvalidInput);
        assert!(form.password().unwrap().is_none());
    }
}
