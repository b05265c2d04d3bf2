//! Opening the local store of a data directory: the one way the desktop app, the CLI
//! and the benchmarks get a [`Manager`] on a user's data.

use super::*;
use crate::store::keyring::KeyringStore;
use crate::store::paths::Paths;

impl Manager {
    /// Open the data directory `paths` names: create it (private) when missing, open its
    /// SQLite database, check it belongs with this keyring (a lost or swapped store is
    /// refused, see [`crate::store::vault::check_store`]), and put the cross-process
    /// locks and the answer journal in it. `options` supplies the rest; its `lock_dir`
    /// and `journal` are replaced.
    ///
    /// Blocks (file system and keyring round trips): call it on a blocking thread, or
    /// through [`Manager::open_async`] from async code.
    pub fn open(paths: &Paths, options: ManagerOptions) -> Result<Self> {
        let (local, options) = Self::open_local_parts(paths, options)?;
        let store = Arc::new(local.backend(options.clock.clone()));
        Manager::with_backend(store, local, options)
    }

    /// What [`Manager::open`] opens before it picks the backend: this machine's parts
    /// (database, keyring, locks) and the options with the data directory's lock
    /// directory and journal. A team-mode front builds its [`Manager`] from these with
    /// [`Manager::with_backend`] and the team store; the keyring is
    /// [`LocalParts::secrets`]. Blocks, like [`Manager::open`].
    pub fn open_local_parts(
        paths: &Paths,
        options: ManagerOptions,
    ) -> Result<(LocalParts, ManagerOptions)> {
        paths.ensure()?;
        let db = Db::open(&paths.database())?;
        let secrets = Arc::new(KeyringStore::new(paths.keyring_service.clone()));
        crate::store::vault::check_store(&db, secrets.as_ref())?;
        let options = ManagerOptions {
            lock_dir: Some(paths.data_dir.join("locks")),
            journal: Some(JournalConfig {
                dir: paths.data_dir.join("journal"),
                store: paths.keyring_service.clone(),
            }),
            ..options
        };
        Ok((LocalParts::new(db, secrets, &options), options))
    }

    /// [`Manager::open`] on the blocking pool.
    pub async fn open_async(paths: Paths, options: ManagerOptions) -> Result<Self> {
        tokio::task::spawn_blocking(move || Manager::open(&paths, options))
            .await
            .map_err(|_| Error::internal("Opening the store panicked."))?
    }
}
