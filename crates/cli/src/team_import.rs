//! `authdeckctl team import`: move this data directory's local connections (with their
//! clients, child secrets and history) into the team it joined. The move itself, and
//! why a kill at any point loses nothing, is `authdeck_team::import`; this prints one
//! line per connection as it is done and a summary (`--json`: the summary as JSON).

use std::path::PathBuf;
use std::process::ExitCode;

use authdeck_core::manager::{Manager, ManagerOptions};
use authdeck_core::store::paths::Paths;
use authdeck_core::{Error, Result};
use authdeck_team::import::{import, ImportLine, LocalStore, Moved};
use authdeck_team::membership::Membership;
use authdeck_team::{TeamBackend, Via};

fn progress_line(line: &ImportLine) -> String {
    let what = format!("{} ({})", line.label, line.provider.display_name());
    match line.outcome {
        Moved::Imported => format!("Imported        {what}"),
        Moved::Finished => format!("Finished        {what}: an earlier import had copied it"),
        Moved::AlreadyInTeam => format!(
            "Already in team {what}: the team has it as {} (connected elsewhere); kept here, not copied",
            line.team_connection.as_deref().unwrap_or("another connection")
        ),
        Moved::Failed => format!(
            "Not moved       {what}: {}",
            line.error
                .as_ref()
                .map_or("unknown error", |e| e.message.as_str())
        ),
    }
}

pub async fn run(data_dir: Option<PathBuf>, json: bool) -> Result<ExitCode> {
    let paths = Paths::resolve(data_dir)?;
    let (parts, options, membership) = tokio::task::spawn_blocking(move || {
        let membership = Membership::load(&paths.data_dir)?;
        let (parts, options) = Manager::open_local_parts(&paths, ManagerOptions::default())?;
        Ok::<_, Error>((parts, options, membership))
    })
    .await
    .map_err(|_| Error::internal("Opening the store panicked."))??;
    let Some(membership) = membership else {
        return Err(Error::invalid_input(
            "This desktop is not in a team: join one first (`authdeckctl team join --database URL`), then import.",
        ));
    };
    let store = membership.open(parts.secrets.as_ref(), Via::Cli).await?;
    let team = TeamBackend::open(store, options.lock_wait).await?;
    let local = LocalStore::new(parts, options)?;
    let summary = import(&local, &team, |line| {
        if !json {
            outln!("{}", progress_line(line));
        }
    })
    .await?;
    if json {
        crate::print_json(&summary)?;
    } else {
        outln!(
            "Team {:?}: {} imported, {} finished, {} already in the team, {} not moved; {} client{} copied, {} matched.",
            membership.team_name,
            summary.imported,
            summary.finished,
            summary.already_in_team,
            summary.failed,
            summary.clients_copied,
            if summary.clients_copied == 1 { "" } else { "s" },
            summary.clients_matched
        );
    }
    if summary.failed > 0 {
        let code = summary
            .connections
            .iter()
            .find_map(|l| l.error.as_ref().map(|e| e.code))
            .unwrap_or(authdeck_core::ErrorCode::Internal);
        return Err(Error::new(
            code,
            format!(
                "{} connection{} not moved (their local copies are untouched): run `authdeckctl team import` again.",
                summary.failed,
                if summary.failed == 1 { " was" } else { "s were" }
            ),
        ));
    }
    Ok(ExitCode::SUCCESS)
}
