//! `exec` and `device env`: run a program with credentials in its environment (never on
//! its argv, which every user of the machine can read in the process list), pass its
//! exit status through (a death by signal N as 128 + N, as a shell reports it), and
//! forward SIGINT, SIGTERM and SIGHUP to it while it runs.

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitCode;

use authdeck_core::{Error, ErrorCode, Result};

use crate::signals::Signals;

/// One variable for the child: its name, and its value (`None`: removed, so a stale
/// value of the parent's environment does not pass for a current one).
pub struct Var {
    pub name: String,
    pub value: Option<zeroize::Zeroizing<String>>,
}

impl Var {
    pub fn set(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: Some(zeroize::Zeroizing::new(value.into())),
        }
    }

    pub fn unset(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: None,
        }
    }
}

/// A name a variable may have: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn check_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ok || name.len() > 128 {
        return Err(Error::invalid_input(format!(
            "{name:?} is not an environment variable name: use letters, digits and _ (not starting with a digit)."
        )));
    }
    Ok(())
}

/// Run `command` (program + arguments) with `vars` added to this process's environment;
/// signals that arrive meanwhile go to the child. Returns the child's exit status.
pub async fn run(command: &[OsString], vars: Vec<Var>, mut signals: Signals) -> Result<ExitCode> {
    let Some((program, args)) = command.split_first() else {
        return Err(Error::invalid_input(
            "Give the command to run after --, e.g. `-- curl …`.",
        ));
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args);
    for var in &vars {
        match &var.value {
            Some(value) => cmd.env(&var.name, value.as_str()),
            None => cmd.env_remove(&var.name),
        };
    }
    let mut child = cmd.spawn().map_err(|e| {
        let code = match e.kind() {
            std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => {
                ErrorCode::InvalidInput
            }
            _ => ErrorCode::Internal,
        };
        Error::new(
            code,
            format!("Could not run {}: {e}.", program.to_string_lossy()),
        )
    })?;
    drop(cmd);
    drop(vars);
    let pid = child.id();
    let status = loop {
        tokio::select! {
            status = child.wait() => break status,
            signal = signals.next() => {
                if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
                    // SAFETY: kill(2) on our own child's pid, which is not reaped yet
                    // (we have not seen it exit), so it cannot name another process.
                    unsafe {
                        libc::kill(pid, signal.number());
                    }
                }
            }
        }
    };
    let status = status.map_err(|e| {
        Error::internal("Could not wait for the command.").with_detail(e.to_string())
    })?;
    Ok(ExitCode::from(exit_code(status)))
}

/// The child's status as `authdeckctl`'s exit code: its own code, or 128 + the signal
/// that ended it.
fn exit_code(status: std::process::ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        (Some(code), _) => (code & 0xff) as u8,
        (None, Some(signal)) => (128 + (signal & 0x7f)) as u8,
        (None, None) => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variable_names_are_checked() {
        for ok in ["AUTHDECK_TOKEN", "_x", "a1"] {
            check_name(ok).unwrap();
        }
        for bad in ["", "1A", "A-B", "A=B", "A B", "ä"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_signal_death_is_128_plus_the_signal() {
        assert_eq!(exit_code(std::process::ExitStatus::from_raw(15)), 143);
        assert_eq!(exit_code(std::process::ExitStatus::from_raw(7 << 8)), 7);
    }
}
