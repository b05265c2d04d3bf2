//! Tracing to a daily-rotated file in the app's log directory (7 files kept), and to
//! stderr in development builds. `AUTHDECK_LOG` sets the filter (default `info`).
//! Nothing logged carries argv, a URL with a code or state, or a token: the core logs
//! ids and error codes only.
//!
//! The logs are the user's alone: the directory is 0700 and every log file 0600 (on
//! Unix), whatever the umask. `tracing-appender` creates its files with the default
//! mode, so [`PrivateLogs`] creates each day's file itself (0600) before the appender
//! opens it, and makes any of its files that is looser private again when the day
//! changes (a file the appender opened a moment before we did, at midnight).

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use chrono::{NaiveDate, Utc};
use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{Builder, RollingFileAppender, Rotation};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter, Layer};

const PREFIX: &str = "authdeck";
const SUFFIX: &str = "log";

/// Keep the returned guard alive for the life of the app: dropping it flushes the file.
pub fn init(log_dir: &Path) -> Result<WorkerGuard, String> {
    let (file, guard) = tracing_appender::non_blocking(PrivateLogs::open(log_dir)?);
    let filter =
        || EnvFilter::try_from_env("AUTHDECK_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let file_layer = fmt::layer()
        .with_writer(file)
        .with_ansi(false)
        .with_filter(filter());
    let stderr_layer = cfg!(debug_assertions).then(|| {
        fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(filter())
    });
    tracing_subscriber::registry()
        .with(file_layer)
        .with(stderr_layer)
        .try_init()
        .map_err(|e| format!("cannot install the logger: {e}"))?;
    Ok(guard)
}

/// The daily-rotating log files, kept private (see the module docs).
pub struct PrivateLogs {
    dir: PathBuf,
    appender: RollingFileAppender,
    /// The UTC day whose file was made private last.
    day: NaiveDate,
}

impl PrivateLogs {
    /// Create the directory (0700) if missing, or make it private; create today's file
    /// (0600); open the appender on them.
    pub fn open(log_dir: &Path) -> Result<Self, String> {
        create_private_dir(log_dir).map_err(|e| format!("cannot create the log directory: {e}"))?;
        let day = Utc::now().date_naive();
        make_private(log_dir, day).map_err(|e| format!("cannot create the log file: {e}"))?;
        let appender = Builder::new()
            .rotation(Rotation::DAILY)
            .filename_prefix(PREFIX)
            .filename_suffix(SUFFIX)
            .max_log_files(7)
            .build(log_dir)
            .map_err(|e| format!("cannot open the log file: {e}"))?;
        // Whatever the appender opened (a name we did not foresee) is private too.
        restrict_existing(log_dir).map_err(|e| format!("cannot restrict the log files: {e}"))?;
        Ok(Self {
            dir: log_dir.to_path_buf(),
            appender,
            day,
        })
    }
}

impl Write for PrivateLogs {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let today = Utc::now().date_naive();
        if today != self.day {
            // Before the appender rotates to the new day's file, and after it if it
            // beat us to it.
            make_private(&self.dir, today)?;
            self.day = today;
            let written = self.appender.write(buf)?;
            restrict_existing(&self.dir)?;
            return Ok(written);
        }
        self.appender.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.appender.flush()
    }
}

/// The file the daily appender writes on `day` (`authdeck.2026-12-01.log`).
fn file_of(dir: &Path, day: NaiveDate) -> PathBuf {
    dir.join(format!("{PREFIX}.{}.{SUFFIX}", day.format("%Y-%m-%d")))
}

/// Create `day`'s file 0600 if missing; make it 0600 if it exists.
fn make_private(dir: &Path, day: NaiveDate) -> io::Result<()> {
    let path = file_of(dir, day);
    let mut options = std::fs::OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(&path)?;
    restrict(&file.metadata()?, &path, 0o600)
}

/// Make every `authdeck.*` file in `dir` 0600.
fn restrict_existing(dir: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let ours = name
            .to_str()
            .is_some_and(|n| n.starts_with(&format!("{PREFIX}.")));
        let meta = entry.metadata()?;
        if ours && meta.is_file() {
            restrict(&meta, &entry.path(), 0o600)?;
        }
    }
    Ok(())
}

/// The log directory: created 0700 (its parents with the usual defaults), or made 0700
/// if it exists looser.
fn create_private_dir(dir: &Path) -> io::Result<()> {
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    match builder.create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => {}
        Err(e) => return Err(e),
    }
    restrict(&std::fs::metadata(dir)?, dir, 0o700)
}

/// Set `mode` if the permissions are anything else (the umask filters a create's mode).
#[cfg(unix)]
fn restrict(meta: &std::fs::Metadata, path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if meta.permissions().mode() & 0o777 != mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn restrict(_: &std::fs::Metadata, _: &Path, _: u32) -> io::Result<()> {
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_fresh_log_file_and_its_directory_are_private() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("com.authdeck.desktop/logs");
        let mut logs = PrivateLogs::open(&dir).unwrap();
        logs.write_all(b"a line\n").unwrap();
        logs.flush().unwrap();
        assert_eq!(mode(&dir), 0o700, "the log directory");
        let files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        assert_eq!(mode(&files[0]), 0o600, "{}", files[0].display());
        assert_eq!(std::fs::read_to_string(&files[0]).unwrap(), "a line\n");
    }

    #[test]
    fn looser_logs_of_an_older_version_are_made_private() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("logs");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let old = dir.join("authdeck.2026-11-30.log");
        std::fs::write(&old, "old\n").unwrap();
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();
        let _logs = PrivateLogs::open(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&old), 0o600);
    }

    #[test]
    fn the_next_days_file_is_created_private() {
        let root = tempfile::tempdir().unwrap();
        let day = NaiveDate::from_ymd_opt(2026, 12, 2).unwrap();
        make_private(root.path(), day).unwrap();
        let path = root.path().join("authdeck.2026-12-02.log");
        assert_eq!(mode(&path), 0o600);
        // One the appender created first (default mode) is made private.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        make_private(root.path(), day).unwrap();
        assert_eq!(mode(&path), 0o600);
    }
}
