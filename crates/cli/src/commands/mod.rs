//! One module a command group; what several share is here.

pub mod clients;
pub mod connections;
pub mod devices;
pub mod history;
pub mod reset;
pub mod sandbox;
pub mod tokens;

use std::path::PathBuf;
use std::time::Duration;

use authdeck_core::manager::{Manager, ManagerOptions};
use authdeck_core::shutdown::Shutdown;
use authdeck_core::store::paths::Paths;
use authdeck_core::store::BackendKind;
use authdeck_core::{Error, ErrorCode, Result};

pub fn print_json<T: serde::Serialize>(value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Error::internal("Could not encode JSON output.").with_detail(e.to_string()))?;
    outln!("{text}");
    Ok(())
}

/// Open the store: the data directory, the database (checked to be the store the keyring
/// belongs to, see `vault::check_store`) and the keyring.
pub async fn open_manager(
    data_dir: Option<PathBuf>,
    refresh_concurrency: usize,
    shutdown: Shutdown,
) -> Result<Manager> {
    let options = ManagerOptions {
        refresh_concurrency,
        shutdown,
        ..ManagerOptions::default()
    };
    // In a team (team.json), the team store; else this machine's.
    let (manager, _) = authdeck_team::open::open_manager(
        Paths::resolve(data_dir)?,
        options,
        authdeck_team::Via::Cli,
    )
    .await?;
    Ok(manager)
}

/// How long the CLI waits for a locked keyring to be unlocked before it gives up on
/// saving the tokens a provider already sent.
pub const KEYRING_WAIT: Duration = Duration::from_secs(120);

/// Save the answers that could not be stored — a locked keyring refused them, or (team
/// mode) the team database stopped answering before their commit — waiting at most
/// [`KEYRING_WAIT`]; fails naming the connections whose new tokens are not saved.
pub async fn keep_answers(manager: &Manager) -> Result<()> {
    // Debug builds only: the tests of a keyring that stays locked wait less.
    #[cfg(debug_assertions)]
    let wait = std::env::var("AUTHDECK_TEST_KEYRING_WAIT_S")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(KEYRING_WAIT, Duration::from_secs);
    #[cfg(not(debug_assertions))]
    let wait = KEYRING_WAIT;
    let team = matches!(manager.store().kind(), BackendKind::Team { .. });
    let at_risk = manager
        .save_unsaved(wait, |n| {
            let s = if n == 1 { "" } else { "s" };
            match team {
                true => errln!(
                    "authdeckctl: The team database does not answer: the refreshed tokens of {n} connection{s} are kept to be saved when it does; waiting up to {} s…",
                    wait.as_secs()
                ),
                false => errln!(
                    "authdeckctl: Unlock your keyring to keep the refreshed tokens of {n} connection{s}; waiting up to {} s…",
                    wait.as_secs()
                ),
            }
        })
        .await;
    if at_risk.is_empty() {
        return Ok(());
    }
    let labels: Vec<&str> = at_risk.iter().map(|c| c.label.as_str()).collect();
    Err(match team {
        true => Error::new(
            ErrorCode::TeamUnavailable,
            format!(
                "The refreshed tokens of {} are not saved: the team database did not answer. They are kept (encrypted) in this machine's journal: run `authdeckctl refresh --all` here once it answers, to save them before another machine refreshes these connections.",
                labels.join(", ")
            ),
        ),
        false => Error::new(
            ErrorCode::KeyringUnavailable,
            format!(
                "The refreshed tokens of {} are not saved: the keyring stayed locked. They are kept (encrypted) in the journal: unlock the keyring and run `authdeckctl refresh --all` to save them before anything else uses these connections.",
                labels.join(", ")
            ),
        ),
    })
}
