//! Where Authdeck keeps its things: the data directory (SQLite database) and the keyring
//! service name its secrets are filed under.
//!
//! Each data directory gets its own keyring service, so two data directories (a test
//! run, a second profile) never read or overwrite each other's secrets.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, ErrorCode, Result};

/// Overrides the data directory (below the `--data-dir` flag).
pub const DATA_DIR_ENV: &str = "AUTHDECK_DATA_DIR";
/// Overrides the keyring service name.
pub const KEYRING_SERVICE_ENV: &str = "AUTHDECK_KEYRING_SERVICE";
/// The keyring service of the default data directory.
pub const DEFAULT_KEYRING_SERVICE: &str = "authdeck";
/// The database file inside the data directory.
pub const DATABASE_FILE: &str = "authdeck.sqlite3";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// Absolute.
    pub data_dir: PathBuf,
    pub keyring_service: String,
}

impl Paths {
    /// Resolve from the `--data-dir` flag and the process environment:
    ///
    /// - data dir: `flag` > `$AUTHDECK_DATA_DIR` > the OS's default: on Linux
    ///   `$XDG_DATA_HOME/authdeck` > `$HOME/.local/share/authdeck` (Windows and macOS:
    ///   their application data folder, see `os`);
    /// - keyring service: `$AUTHDECK_KEYRING_SERVICE` > `"authdeck"` for the default data
    ///   dir > `"authdeck-"` + the first 12 hex digits of SHA-256(absolute data dir).
    pub fn resolve(data_dir_flag: Option<PathBuf>) -> Result<Paths> {
        Self::resolve_with(data_dir_flag, |name| std::env::var(name).ok())
    }

    /// [`Paths::resolve`] with the environment passed in (`env(name)` → value). Empty
    /// values count as unset. Relative paths are taken from the current directory.
    pub fn resolve_with(
        data_dir_flag: Option<PathBuf>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Paths> {
        let env = |name: &str| env(name).filter(|value| !value.is_empty());

        // The default is computed even when overridden: an override that names the
        // default directory keeps the default service name.
        let default_dir = os::default_data_dir(env);
        let chosen = data_dir_flag
            .filter(|flag| !flag.as_os_str().is_empty())
            .or_else(|| env(DATA_DIR_ENV).map(PathBuf::from));
        let data_dir = match (chosen, &default_dir) {
            (Some(dir), _) => absolute(&dir)?,
            (None, Ok(default)) => default.clone(),
            (None, Err(e)) => return Err(e.clone()),
        };

        let keyring_service = match env(KEYRING_SERVICE_ENV) {
            Some(service) => service,
            None if default_dir.as_ref().is_ok_and(|d| *d == data_dir) => {
                DEFAULT_KEYRING_SERVICE.to_owned()
            }
            None => service_for(&data_dir),
        };
        Ok(Paths {
            data_dir,
            keyring_service,
        })
    }

    /// The SQLite database: `<data dir>/authdeck.sqlite3`.
    pub fn database(&self) -> PathBuf {
        self.data_dir.join(DATABASE_FILE)
    }

    /// Create the data directory (and its parents) if missing; a directory created here
    /// is private to the user (0700 on Unix), parents get the usual defaults.
    ///
    /// An existing directory is used as it is, never re-moded: it is refused (with
    /// `storage`, naming it) when it is not a directory, not owned by the user, or
    /// writable by the group or others, since whoever can write to it can replace the
    /// database.
    pub fn ensure(&self) -> Result<()> {
        let dir = &self.data_dir;
        let fail = |what: &str, e: std::io::Error| {
            Error::new(
                ErrorCode::Storage,
                format!(
                    "Could not {what} the data directory {}: {}. Check its permissions, or choose another with --data-dir.",
                    dir.display(),
                    io_cause(&e)
                ),
            )
            .with_detail(e.to_string())
        };
        let existing = match std::fs::metadata(dir) {
            Ok(meta) => Some(meta),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(fail("read", e)),
        };
        let meta = match existing {
            Some(meta) => meta,
            None => {
                if let Some(parent) = dir.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| fail("create", e))?;
                }
                match os::create_private_dir(dir) {
                    Ok(()) => {
                        return os::make_private(dir).map_err(|e| fail("restrict access to", e));
                    }
                    // Created by another process meanwhile: check it like any existing one.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        std::fs::metadata(dir).map_err(|e| fail("read", e))?
                    }
                    Err(e) => return Err(fail("create", e)),
                }
            }
        };
        self.check_existing(&meta)
    }

    /// Whether an existing data directory may be used (see [`Self::ensure`]).
    fn check_existing(&self, meta: &std::fs::Metadata) -> Result<()> {
        let refuse = |why: String| {
            Err(Error::new(
                ErrorCode::Storage,
                format!(
                    "Refusing to use {} as the data directory: {why}. Choose another with --data-dir (Authdeck creates it, private to you).",
                    self.data_dir.display()
                ),
            ))
        };
        if !meta.is_dir() {
            return refuse("it is not a directory".into());
        }
        match os::why_not_private(meta) {
            Some(why) => refuse(why),
            None => Ok(()),
        }
    }
}

/// What differs by OS: where the data lives by default, and what makes a directory
/// private (docs/PLATFORMS.md).
#[cfg(unix)]
mod os {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    use std::path::{Path, PathBuf};

    use crate::error::Result;

    /// Linux and the BSDs: `$XDG_DATA_HOME/authdeck`, else `$HOME/.local/share/authdeck`
    /// (XDG Base Directory spec).
    #[cfg(not(target_os = "macos"))]
    pub fn default_data_dir(env: impl Fn(&str) -> Option<String>) -> Result<PathBuf> {
        super::xdg_data_dir(env)
    }

    /// macOS: `~/Library/Application Support/Authdeck`. Untested: no Mac here.
    #[cfg(target_os = "macos")]
    pub fn default_data_dir(_env: impl Fn(&str) -> Option<String>) -> Result<PathBuf> {
        super::platform_data_dir()
    }

    /// Create `dir` (its parent exists), 0700 before the umask.
    pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
        std::fs::DirBuilder::new().mode(0o700).create(dir)
    }

    /// The mode given at creation is filtered by the umask: ours, so set it exactly.
    pub fn make_private(dir: &Path) -> std::io::Result<()> {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
    }

    /// Why an existing directory is not private to the user, if it is not: another
    /// owner, or writable by the group or others.
    pub fn why_not_private(meta: &std::fs::Metadata) -> Option<String> {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        if meta.uid() != me {
            return Some(format!(
                "it belongs to another user (uid {}, you are {me})",
                meta.uid()
            ));
        }
        let mode = meta.mode() & 0o7777;
        (mode & 0o022 != 0).then(|| {
            format!(
                "others can write to it (mode {mode:04o}); make it private with `chmod 700` if it is yours"
            )
        })
    }
}

/// What differs by OS: where the data lives by default, and what makes a directory
/// private (docs/PLATFORMS.md). Untested: no Windows machine here.
#[cfg(windows)]
mod os {
    use std::path::{Path, PathBuf};

    use crate::error::Result;

    /// `%APPDATA%\Authdeck` (the roaming profile's application data).
    pub fn default_data_dir(_env: impl Fn(&str) -> Option<String>) -> Result<PathBuf> {
        super::platform_data_dir()
    }

    /// The new directory inherits the profile folder's ACL (the user, SYSTEM and
    /// administrators): private to the user in a default profile.
    pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir(dir)
    }

    /// Nothing to narrow (see [`create_private_dir`]).
    pub fn make_private(_dir: &Path) -> std::io::Result<()> {
        Ok(())
    }

    /// Not checked yet: an ACL check (owner = the user, no write for others) is what
    /// belongs here.
    pub fn why_not_private(_meta: &std::fs::Metadata) -> Option<String> {
        None
    }
}

/// An I/O failure in plain words.
pub(crate) fn io_cause(e: &std::io::Error) -> &'static str {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::PermissionDenied => "permission denied",
        K::StorageFull => "the disk is full",
        K::ReadOnlyFilesystem => "the file system is read-only",
        K::NotFound => "it does not exist",
        K::NotADirectory => "a part of the path is not a directory",
        K::AlreadyExists => "something else is in the way",
        K::QuotaExceeded => "the disk quota is exceeded",
        _ => "an input/output error",
    }
}

/// The OS's per-user application data folder + `Authdeck` (the `dirs` crate:
/// `FOLDERID_RoamingAppData` on Windows, `~/Library/Application Support` on macOS).
#[cfg(any(windows, target_os = "macos"))]
fn platform_data_dir() -> Result<PathBuf> {
    dirs::data_dir().map(|dir| dir.join("Authdeck")).ok_or_else(|| {
        Error::invalid_input(format!(
            "Cannot tell where to keep Authdeck's data: no application data folder. Pass --data-dir or set {DATA_DIR_ENV}."
        ))
    })
}

/// `$XDG_DATA_HOME/authdeck`, else `$HOME/.local/share/authdeck` (XDG Base Directory
/// spec: a relative `XDG_DATA_HOME` is invalid and ignored).
#[cfg_attr(any(windows, target_os = "macos"), allow(dead_code))]
fn xdg_data_dir(env: impl Fn(&str) -> Option<String>) -> Result<PathBuf> {
    if let Some(xdg) = env("XDG_DATA_HOME").map(PathBuf::from) {
        if xdg.is_absolute() {
            return Ok(xdg.join("authdeck"));
        }
    }
    match env("HOME").map(PathBuf::from) {
        Some(home) if home.is_absolute() => Ok(home.join(".local/share/authdeck")),
        _ => Err(Error::invalid_input(format!(
            "Cannot tell where to keep Authdeck's data: HOME is not set. Pass --data-dir or set {DATA_DIR_ENV}."
        ))),
    }
}

/// The keyring service of a non-default data dir: `authdeck-` + 12 hex digits of its
/// absolute path's SHA-256.
fn service_for(data_dir: &Path) -> String {
    let digest = Sha256::digest(data_dir.as_os_str().as_encoded_bytes());
    let hex: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("{DEFAULT_KEYRING_SERVICE}-{hex}")
}

/// Absolute and lexically clean (`a/./b/` → `a/b`, no symlinks resolved), so one
/// directory spelled two ways gets one keyring service.
fn absolute(path: &Path) -> Result<PathBuf> {
    let path = std::path::absolute(path).map_err(|e| {
        Error::invalid_input(format!("Cannot use {} as data directory.", path.display()))
            .with_detail(e.to_string())
    })?;
    let mut clean = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                clean.pop();
            }
            other => clean.push(other),
        }
    }
    Ok(clean)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn default_is_home_local_share_with_the_plain_service_name() {
        let p = Paths::resolve_with(None, env(&[("HOME", "/home/ann")])).unwrap();
        assert_eq!(p.data_dir, PathBuf::from("/home/ann/.local/share/authdeck"));
        assert_eq!(p.keyring_service, "authdeck");
        assert_eq!(
            p.database(),
            PathBuf::from("/home/ann/.local/share/authdeck/authdeck.sqlite3")
        );
    }

    #[test]
    fn xdg_data_home_beats_home_but_only_when_absolute() {
        let p = Paths::resolve_with(None, env(&[("HOME", "/h"), ("XDG_DATA_HOME", "/x")]));
        assert_eq!(p.unwrap().data_dir, PathBuf::from("/x/authdeck"));
        let p = Paths::resolve_with(None, env(&[("HOME", "/h"), ("XDG_DATA_HOME", "rel")]));
        assert_eq!(
            p.unwrap().data_dir,
            PathBuf::from("/h/.local/share/authdeck")
        );
        let p = Paths::resolve_with(None, env(&[("HOME", "/h"), ("XDG_DATA_HOME", "")]));
        assert_eq!(
            p.unwrap().data_dir,
            PathBuf::from("/h/.local/share/authdeck")
        );
    }

    #[test]
    fn flag_beats_env_beats_default_and_gets_its_own_service() {
        let e = env(&[("HOME", "/h"), (DATA_DIR_ENV, "/from-env")]);
        let p = Paths::resolve_with(Some("/from-flag".into()), &e).unwrap();
        assert_eq!(p.data_dir, PathBuf::from("/from-flag"));
        assert_eq!(p.keyring_service, service_for(Path::new("/from-flag")));

        let p = Paths::resolve_with(None, &e).unwrap();
        assert_eq!(p.data_dir, PathBuf::from("/from-env"));
        assert_eq!(p.keyring_service, service_for(Path::new("/from-env")));
        assert_ne!(
            service_for(Path::new("/from-env")),
            service_for(Path::new("/from-flag"))
        );
    }

    #[test]
    fn service_name_is_authdeck_dash_12_hex_of_sha256_of_the_path() {
        let s = service_for(Path::new("/tmp/a"));
        let digest = Sha256::digest(b"/tmp/a");
        let expected: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(s, format!("authdeck-{}", &expected[..12]));
        assert_eq!(s.len(), "authdeck-".len() + 12);
    }

    #[test]
    fn naming_the_default_dir_explicitly_keeps_the_default_service() {
        let e = env(&[("HOME", "/h")]);
        let p = Paths::resolve_with(Some("/h/.local/share/./authdeck/".into()), &e).unwrap();
        assert_eq!(p.data_dir, PathBuf::from("/h/.local/share/authdeck"));
        assert_eq!(p.keyring_service, "authdeck");
    }

    #[test]
    fn spellings_of_one_dir_share_a_service() {
        let e = env(&[("HOME", "/h")]);
        let a = Paths::resolve_with(Some("/d/x".into()), &e).unwrap();
        let b = Paths::resolve_with(Some("/d/y/../x/.".into()), &e).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn relative_dirs_are_made_absolute() {
        let p = Paths::resolve_with(Some("rel/dir".into()), env(&[("HOME", "/h")])).unwrap();
        assert_eq!(p.data_dir, std::env::current_dir().unwrap().join("rel/dir"));
    }

    #[test]
    fn keyring_service_env_wins() {
        let e = env(&[("HOME", "/h"), (KEYRING_SERVICE_ENV, "authdeck-test-1")]);
        assert_eq!(
            Paths::resolve_with(None, &e).unwrap().keyring_service,
            "authdeck-test-1"
        );
        let p = Paths::resolve_with(Some("/other".into()), &e).unwrap();
        assert_eq!(p.keyring_service, "authdeck-test-1");
    }

    #[test]
    fn without_home_a_flag_or_env_is_needed() {
        let err = Paths::resolve_with(None, env(&[])).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidInput);
        assert!(err.message.contains("--data-dir"));
        let p = Paths::resolve_with(None, env(&[(DATA_DIR_ENV, "/d")])).unwrap();
        assert_eq!(p.data_dir, PathBuf::from("/d"));
        assert_eq!(p.keyring_service, service_for(Path::new("/d")));
    }

    #[cfg(unix)]
    fn mode(p: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[cfg(unix)]
    #[test]
    fn ensure_creates_a_private_dir_whatever_the_umask() {
        let tmp = tempfile::tempdir().unwrap();
        let paths = Paths {
            data_dir: tmp.path().join("nested/authdeck"),
            keyring_service: "x".into(),
        };
        paths.ensure().unwrap();
        paths.ensure().unwrap(); // idempotent
        assert_eq!(mode(&paths.data_dir), 0o700);
    }

    #[cfg(unix)]
    #[test]
    fn ensure_never_changes_the_mode_of_an_existing_dir() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("mine");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let paths = Paths {
            data_dir: dir.clone(),
            keyring_service: "x".into(),
        };
        paths.ensure().unwrap();
        assert_eq!(mode(&dir), 0o755, "an existing directory keeps its mode");
    }

    #[cfg(unix)]
    #[test]
    fn ensure_refuses_a_dir_others_can_write_to_and_leaves_it_alone() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        for loose in [0o777, 0o1777, 0o770, 0o702] {
            let dir = tmp.path().join(format!("loose-{loose:o}"));
            std::fs::create_dir(&dir).unwrap();
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(loose)).unwrap();
            let paths = Paths {
                data_dir: dir.clone(),
                keyring_service: "x".into(),
            };
            let err = paths.ensure().unwrap_err();
            assert_eq!(err.code, ErrorCode::Storage);
            assert!(
                err.message.contains(&dir.display().to_string())
                    && err.message.contains("others can write"),
                "{err:?}"
            );
            assert_eq!(mode(&dir), loose, "the refused directory was not touched");
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn ensure_never_touches_system_directories() {
        // Owned by root: refused for anyone else; as root they are not "others-writable"
        // and are used as they are. Either way their mode stays.
        for dir in ["/proc", "/sys/kernel"] {
            let before = mode(Path::new(dir));
            let paths = Paths {
                data_dir: dir.into(),
                keyring_service: "x".into(),
            };
            let _ = paths.ensure();
            assert_eq!(mode(Path::new(dir)), before, "{dir} keeps its mode");
        }
    }

    #[cfg(unix)]
    #[test]
    fn ensure_refuses_a_dir_of_another_user() {
        use std::os::unix::fs::MetadataExt;
        // A directory that exists on every Linux and is not ours unless we are root.
        let me = unsafe { libc::geteuid() };
        let root_dir = Path::new("/");
        if std::fs::metadata(root_dir).unwrap().uid() == me {
            // Running as root: make a directory owned by someone else.
            let tmp = tempfile::tempdir().unwrap();
            let dir = tmp.path().join("theirs");
            std::fs::create_dir(&dir).unwrap();
            std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
            let paths = Paths {
                data_dir: dir.clone(),
                keyring_service: "x".into(),
            };
            let err = paths.ensure().unwrap_err();
            assert!(err.message.contains("another user"), "{err:?}");
        } else {
            let paths = Paths {
                data_dir: root_dir.into(),
                keyring_service: "x".into(),
            };
            let err = paths.ensure().unwrap_err();
            assert!(err.message.contains("another user"), "{err:?}");
        }
    }

    #[test]
    fn ensure_fails_with_storage_when_a_file_is_in_the_way() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("file");
        std::fs::write(&file, "").unwrap();
        let paths = Paths {
            data_dir: file,
            keyring_service: "x".into(),
        };
        assert_eq!(paths.ensure().unwrap_err().code, ErrorCode::Storage);
    }
}
