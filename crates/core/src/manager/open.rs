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
        Manager::new(db, secrets, options)
    }

    /// [`Manager::open`] on the blocking pool.
    pub async fn open_async(paths: Paths, options: ManagerOptions) -> Result<Self> {
        tokio::task::spawn_blocking(move || Manager::open(&paths, options))
            .await
            .map_err(|_| Error::internal("Opening the store panicked."))?
    }
}
