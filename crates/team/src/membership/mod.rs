//! Where a desktop's (or an agent's) team membership lives, and joining, leaving and the
//! status: one implementation for `authdeckctl team …` and the window's Settings → Team.
//!
//! - **The membership** (`team.json` in the data directory, 0600, replaced atomically):
//!   the database address *without* any password, the team id and name, this machine's
//!   name, where the key is. Nothing in it is secret.
//! - **The team key** in the OS keyring, under the data directory's keyring service (the
//!   vault's store), key [`KEY_ENTRY`]; for a headless agent instead in a 0600 file
//!   ([`KeySource::File`]) or the systemd credential `team-key`
//!   (`$CREDENTIALS_DIRECTORY/team-key`, [`KeySource::Credential`]). It is kept as the
//!   join key's text (team id, epoch, key and a checksum), never in `team.json`.
//! - **The database password**, if the role has one: read on stdin once and kept in the
//!   same keyring ([`PASSWORD_ENTRY`]), never in a file or the address. (tokio-postgres
//!   does not read libpq's `~/.pgpass`; the keyring is where Authdeck keeps every other
//!   secret, encrypted at rest and unlocked with the session.) Roles without a password
//!   (peer authentication over a Unix socket, `trust` on loopback) need nothing.
//! - **The last status** (`team-status.json`, 0600): what `team status` saw last, shown
//!   (marked as last known) when the database cannot be reached.

use std::io::Write;
use std::path::{Path, PathBuf};

use authdeck_core::secret::KeyringValue;
use authdeck_core::store::paths::Paths;
use authdeck_core::store::SecretStore;
use authdeck_core::{Error, ErrorCode, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::crypto::{JoinKey, TeamKey};
use crate::store::{TeamStore, Via};
use crate::tls::DbConfig;

/// The membership file in the data directory.
pub const CONFIG_FILE: &str = "team.json";
/// The last status `team status` saw.
pub const STATUS_FILE: &str = "team-status.json";
/// The keyring entry of the team key (as join key text).
pub const KEY_ENTRY: &str = "team/key";
/// The keyring entry of the database role's password.
pub const PASSWORD_ENTRY: &str = "team/db-password";
/// The systemd credential's name (`LoadCredential=team-key:…`).
pub const CREDENTIAL_NAME: &str = "team-key";

mod config;
mod join;
mod status;

pub use config::*;
pub use join::*;
pub use status::*;

#[cfg(test)]
mod tests {
    use super::config::{read_key_file, with_password};
    use super::*;

    #[test]
    fn an_address_with_a_password_is_refused_without_repeating_it() {
        for address in [
            "postgres://alice:hunter2-secret@db.example.com/team",
            "host=db.example.com user=alice password=hunter2-secret dbname=team",
            "postgresql://alice@db.example.com/team?password=hunter2-secret",
        ] {
            let err = parse_address(address).expect_err(address);
            assert_eq!(err.code, ErrorCode::InvalidInput);
            let shown = format!("{} {:?}", err.message, err.detail);
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(shown.contains("password"), "{shown}");
        }
        let ok = parse_address("host=127.0.0.1 port=5432 user=alice dbname=team").unwrap();
        assert_eq!(describe_database(&ok), "127.0.0.1:5432 database team");
    }

    #[test]
    fn the_password_is_added_in_either_address_form() {
        for (address, password) in [
            (
                "host=127.0.0.1 user=alice dbname=team",
                "it's a \\ pass word",
            ),
            ("postgres://alice@127.0.0.1/team", "p@ss/w?rd&x=1 é"),
            ("postgres://alice@127.0.0.1/team?connect_timeout=5", "plain"),
        ] {
            let db = DbConfig::parse(&with_password(address, password)).unwrap();
            assert_eq!(
                db.pg().get_password(),
                Some(password.as_bytes()),
                "{address}"
            );
            assert_eq!(db.pg().get_user(), Some("alice"));
        }
    }

    #[test]
    fn a_membership_round_trips_through_a_private_file() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Membership::load(dir.path()).unwrap(), None);
        let m = Membership {
            v: 1,
            database: "host=127.0.0.1 dbname=team".into(),
            team_id: "0b7f2c1e-3a4d-4e5f-8a9b-0c1d2e3f4a5b".into(),
            team_name: "Firm".into(),
            machine: "desk-a".into(),
            key: KeySource::File {
                path: dir.path().join("key"),
            },
            password: false,
            joined_at: Utc::now(),
        };
        m.save(dir.path()).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(Membership::path(dir.path()))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(Membership::load(dir.path()).unwrap(), Some(m));
        Membership::remove(dir.path()).unwrap();
        assert_eq!(Membership::load(dir.path()).unwrap(), None);
        // Only the membership was there: nothing else left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_others_may_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        write_private(&path, b"adtk1_x\n").unwrap();
        assert_eq!(read_key_file(&path).unwrap().as_str(), "adtk1_x");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = read_key_file(&path).unwrap_err();
        assert!(err.message.contains("others may read it"), "{err:?}");
        assert!(!err.message.contains("adtk1_x"));
    }
}
