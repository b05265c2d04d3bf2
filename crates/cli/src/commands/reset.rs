//! `reset`: start over after the data directory was lost.

use std::path::PathBuf;
use std::process::ExitCode;

use authdeck_core::store::db::Db;
use authdeck_core::store::keyring::KeyringStore;
use authdeck_core::store::paths::Paths;
use authdeck_core::{Error, Result};

/// `reset`: the one command that opens a lost store (see `vault::reset_lost_store`).
pub async fn reset(data_dir: Option<PathBuf>, yes: bool) -> Result<ExitCode> {
    let paths = Paths::resolve(data_dir)?;
    paths.ensure()?;
    let secrets = KeyringStore::new(paths.keyring_service.clone());
    let path = paths.database();
    let report = tokio::task::spawn_blocking(move || {
        let db = Db::open(&path)?;
        authdeck_core::store::vault::reset_lost_store(&db, &secrets, !yes)
    })
    .await
    .map_err(|_| Error::internal("Resetting the store panicked."))??;
    let dir = paths.data_dir.display();
    if !yes {
        return Err(Error::invalid_input(format!(
            "This deletes the {} keyring entries the lost store of {dir} left behind; restoring a backup of the data directory later needs them. Run `authdeckctl reset --yes` to go ahead.",
            report.deleted
        )));
    }
    outln!(
        "Started over in {dir}: a new, empty store; {} keyring entries of the lost store deleted.",
        report.deleted
    );
    if report.kept > 0 {
        outln!(
            "{} other entries were kept: other data directories share the keyring service {}.",
            report.kept,
            paths.keyring_service
        );
    }
    Ok(ExitCode::SUCCESS)
}
