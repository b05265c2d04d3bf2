//! Start-up time: how long from process start until the window's first list is on
//! screen (the UI calls `mark_ready` once, right after `authdeck:list-rendered`).
//!
//! The time is logged. `AUTHDECK_EXIT_WHEN_READY=1` also prints `ready_ms=<n>` on stdout
//! and quits (the launch benchmark, `make bench`); `AUTHDECK_PRINT_READY=1` prints it and
//! keeps running (the memory and CPU benchmarks).

use std::sync::atomic::{AtomicBool, Ordering};

static MARKED: AtomicBool = AtomicBool::new(false);

/// Milliseconds since this process started (Linux: from its start time in /proc, ±10 ms).
pub fn since_process_start_ms() -> Option<f64> {
    #[cfg(target_os = "linux")]
    {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Field 22 (starttime, clock ticks after boot); fields counted after "(comm)".
        let after = &stat[stat.rfind(')')? + 2..];
        let start_ticks: f64 = after.split_whitespace().nth(19)?.parse().ok()?;
        // SAFETY: sysconf and clock_gettime only write the out-parameter we own.
        let ticks_per_s = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        if ticks_per_s <= 0.0 || unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut now) } != 0
        {
            return None;
        }
        let now_ms = now.tv_sec as f64 * 1000.0 + now.tv_nsec as f64 / 1e6;
        Some(now_ms - start_ticks * 1000.0 / ticks_per_s)
    }
    #[cfg(not(target_os = "linux"))]
    None
}

/// The first list is rendered. Only the first call counts.
pub fn mark_ready<R: tauri::Runtime>(app: &tauri::AppHandle<R>) {
    if MARKED.swap(true, Ordering::SeqCst) {
        return;
    }
    let ms = since_process_start_ms();
    match ms {
        Some(ms) => tracing::info!(ready_ms = ms.round(), "list on screen"),
        None => tracing::info!("list on screen"),
    }
    let flag = |name: &str| std::env::var_os(name).is_some_and(|v| v == "1");
    let exit = flag("AUTHDECK_EXIT_WHEN_READY");
    if exit || flag("AUTHDECK_PRINT_READY") {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "ready_ms={}", ms.map_or(-1.0, f64::round));
        let _ = out.flush();
    }
    if exit {
        app.exit(0);
    }
}
