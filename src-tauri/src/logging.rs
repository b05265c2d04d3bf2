//! Tracing to a daily-rotated file in the app's log directory (7 files kept), and to
//! stderr in development builds. `AUTHDECK_LOG` sets the filter (default `info`).
//! Nothing logged carries argv, a URL with a code or state, or a token: the core logs
//! ids and error codes only.

use std::path::Path;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{Builder, Rotation};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter, Layer};

/// Keep the returned guard alive for the life of the app: dropping it flushes the file.
pub fn init(log_dir: &Path) -> Result<WorkerGuard, String> {
    std::fs::create_dir_all(log_dir)
        .map_err(|e| format!("cannot create the log directory: {e}"))?;
    let appender = Builder::new()
        .rotation(Rotation::DAILY)
        .filename_prefix("authdeck")
        .filename_suffix("log")
        .max_log_files(7)
        .build(log_dir)
        .map_err(|e| format!("cannot open the log file: {e}"))?;
    let (file, guard) = tracing_appender::non_blocking(appender);
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
