//! The one way a front (the CLI, the agent, the desktop app) gets a [`Manager`] on a
//! data directory: on the team store when the directory is in a team (`team.json`, see
//! [`crate::membership`]), else on the local store.
//!
//! In team mode the machine keeps its own parts (see `authdeck_core::manager::LocalParts`):
//! the SQLite database for devices, the keyring for the team key, the answer journal and
//! its key. Clients, connections, their tokens, locks, history and pending
//! authorizations are the team's.

use std::sync::Arc;

use authdeck_core::manager::{Manager, ManagerOptions};
use authdeck_core::store::backend::Backend;
use authdeck_core::store::paths::Paths;
use authdeck_core::{Error, ErrorCode, Result};
use futures_util::FutureExt as _;

use crate::backend::late::LateBackend;
use crate::backend::TeamBackend;
use crate::membership::Membership;
use crate::store::Via;

/// Which store a data directory's manager was opened on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    Local,
    Team { team_name: String, machine: String },
}

/// Open `paths`'s manager: the team store as `via` when the data directory is in a team,
/// the local store otherwise. In a team, an unreachable database is `team_unavailable`
/// and nothing is opened (no local stand-in is written).
pub async fn open_manager(
    paths: Paths,
    options: ManagerOptions,
    via: Via,
) -> Result<(Manager, Opened)> {
    open_with(paths, options, via, false).await
}

/// [`open_manager`] for a front that must start while the team database does not answer
/// (the desktop app): then the manager is on a [`LateBackend`], whose every call is
/// `team_unavailable` (nothing written anywhere else) until the database answers and the
/// store opens by itself. Any other failure (a key missing from the keyring, a team gone)
/// is still an error.
pub async fn open_manager_or_later(
    paths: Paths,
    options: ManagerOptions,
    via: Via,
) -> Result<(Manager, Opened)> {
    open_with(paths, options, via, true).await
}

async fn open_with(
    paths: Paths,
    options: ManagerOptions,
    via: Via,
    later: bool,
) -> Result<(Manager, Opened)> {
    let data_dir = paths.data_dir.clone();
    let (local, options, membership) = tokio::task::spawn_blocking(move || {
        let (local, options) = Manager::open_local_parts(&paths, options)?;
        let membership = Membership::load(&data_dir)?;
        Ok::<_, Error>((local, options, membership))
    })
    .await
    .map_err(|_| Error::internal("Opening the store panicked."))??;
    let Some(membership) = membership else {
        let store = Arc::new(local.backend(options.clock.clone()));
        return Ok((Manager::with_backend(store, local, options)?, Opened::Local));
    };
    let options = team_journal(options, &membership.team_id)?;
    let opened = Opened::Team {
        team_name: membership.team_name.clone(),
        machine: membership.machine.clone(),
    };
    let open = {
        let membership = membership.clone();
        let secrets = local.secrets.clone();
        let lock_wait = options.lock_wait;
        move || {
            let membership = membership.clone();
            let secrets = secrets.clone();
            async move {
                let store = membership.open(secrets.as_ref(), via).await?;
                TeamBackend::open(store, lock_wait).await
            }
            .boxed()
        }
    };
    let backend: Arc<dyn Backend> = match open().await {
        Ok(backend) => Arc::new(backend),
        Err(e) if later && e.code == ErrorCode::TeamUnavailable => {
            tracing::warn!(code = %e.code, "team store: the database does not answer; opening it later");
            Arc::new(LateBackend::new(
                membership.team_name.clone(),
                e,
                Box::new(open),
            ))
        }
        Err(e) => return Err(e),
    };
    Ok((Manager::with_backend(backend, local, options)?, opened))
}

/// A team's answers get a journal of their own: `journal/team-<team id>/`, its entries
/// bound to the team (the journal's associated data names its store). A local-mode
/// manager on the same data directory — after `team leave`, or `team import`'s local
/// side — reads only `journal/` (subdirectories are not its files) and so never adopts
/// a team's answer: it would find no such local connection, take it for logged out and
/// drop the answer. The other way round the same: the team never adopts a local one.
fn team_journal(mut options: ManagerOptions, team_id: &str) -> Result<ManagerOptions> {
    let safe = !team_id.is_empty()
        && team_id.len() <= 64
        && team_id.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    if !safe {
        return Err(Error::invalid_input(
            "team.json names a team id that is not one (a UUID): run `authdeckctl team join` again.",
        ));
    }
    if let Some(journal) = options.journal.as_mut() {
        journal.dir = journal.dir.join(format!("team-{team_id}"));
        journal.store = format!("{}#team-{team_id}", journal.store);
    }
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;
    use authdeck_core::journal::JournalConfig;

    #[test]
    fn a_team_journals_apart_from_the_local_store_and_refuses_a_strange_team_id() {
        let local = ManagerOptions {
            journal: Some(JournalConfig {
                dir: "/data/journal".into(),
                store: "authdeck-x".into(),
            }),
            ..ManagerOptions::default()
        };
        let id = "0f8e2c1a-7b3d-4e5f-9a0b-1c2d3e4f5a6b";
        let team = team_journal(local.clone(), id).unwrap();
        let journal = team.journal.unwrap();
        assert_eq!(
            journal.dir,
            std::path::Path::new("/data/journal").join(format!("team-{id}"))
        );
        assert_eq!(journal.store, format!("authdeck-x#team-{id}"));
        for bad in ["", "../x", "a/b", "x y"] {
            match team_journal(local.clone(), bad) {
                Err(e) => assert_eq!(e.code, ErrorCode::InvalidInput, "{bad:?}"),
                Ok(_) => panic!("{bad:?} taken for a team id"),
            }
        }
    }
}
