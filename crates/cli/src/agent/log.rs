//! The agent's log lines: stdout, journald-friendly.

use super::*;

/// One line per event on stdout. A write that fails (a closed pipe, a journal gone) is
/// dropped: the agent keeps refreshing.
pub struct Log {
    /// stdout is the journal's stream: `<N>` level prefixes, no timestamps.
    pub(super) journal: bool,
    pub(super) color: bool,
}

#[derive(Clone, Copy)]
pub(super) enum Level {
    Info,
    Warn,
    Error,
}

impl Log {
    pub fn for_stdout() -> Self {
        let stdout = std::io::stdout();
        let journal = std::env::var("JOURNAL_STREAM")
            .ok()
            .is_some_and(|v| is_our_stream(&v, &stdout));
        let color = !journal
            && stdout.is_terminal()
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            && std::env::var("TERM").map_or(true, |t| t != "dumb");
        Self { journal, color }
    }

    pub(super) fn info(&self, args: std::fmt::Arguments<'_>) {
        self.line(Level::Info, args)
    }

    pub(super) fn warn(&self, args: std::fmt::Arguments<'_>) {
        self.line(Level::Warn, args)
    }

    pub(super) fn error(&self, args: std::fmt::Arguments<'_>) {
        self.line(Level::Error, args)
    }

    pub(super) fn line(&self, level: Level, args: std::fmt::Arguments<'_>) {
        let text = args.to_string();
        // One event, one line, whatever a title holds.
        let text: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let line = if self.journal {
            let priority = match level {
                Level::Info => 6,
                Level::Warn => 4,
                Level::Error => 3,
            };
            format!("<{priority}>{text}\n")
        } else {
            let (word, colour) = match level {
                Level::Info => ("info ", "32"),
                Level::Warn => ("warn ", "33"),
                Level::Error => ("error", "31"),
            };
            let stamp = time(Utc::now());
            if self.color {
                format!("\x1b[2m{stamp}\x1b[0m \x1b[{colour}m{word}\x1b[0m {text}\n")
            } else {
                format!("{stamp} {word} {text}\n")
            }
        };
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(line.as_bytes()).and_then(|()| out.flush());
    }
}

/// `JOURNAL_STREAM` is `device:inode` of the journal's socket when systemd connected
/// stdout or stderr to it; it counts only if it is our stdout (not inherited by a
/// process whose output goes elsewhere).
pub(super) fn is_our_stream(value: &str, stdout: &std::io::Stdout) -> bool {
    use std::os::fd::AsFd;
    let Some((dev, ino)) = value.split_once(':') else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    let Ok(fd) = stdout.as_fd().try_clone_to_owned() else {
        return false;
    };
    File::from(fd)
        .metadata()
        .is_ok_and(|m| m.dev() == dev && m.ino() == ino)
}
