//! Secrets come from standard input or an environment variable, never from argv (argv is
//! visible to every user of the machine in the process list).

use std::io::BufRead;

use authdeck_core::{AnySecret, Error, Result};

/// Reads one secret per call from a shared stdin, so a command needing two secrets can
/// take them as two lines.
pub struct SecretInput {
    lines: Option<std::io::Lines<std::io::StdinLock<'static>>>,
}

impl SecretInput {
    pub fn new() -> Self {
        Self { lines: None }
    }

    /// The secret from `env_var` if set, else (when `from_stdin`) the next stdin line,
    /// as the role `T` it is read for.
    pub fn read<T: AnySecret>(
        &mut self,
        what: &str,
        from_stdin: bool,
        env_var: &str,
    ) -> Result<Option<T>> {
        if from_stdin {
            let lines = self
                .lines
                .get_or_insert_with(|| std::io::stdin().lock().lines());
            let line = match lines.next() {
                Some(Ok(line)) => line,
                Some(Err(_)) => {
                    return Err(Error::invalid_input(format!(
                        "Could not read the {what} from standard input."
                    )))
                }
                None => {
                    return Err(Error::invalid_input(format!(
                        "Expected the {what} as a line on standard input, found end of input."
                    )))
                }
            };
            // Wrapped at once, so the line read is zeroed too.
            let line = T::new(line);
            let value = line.expose().trim_end_matches(['\r', '\n']);
            if value.is_empty() {
                return Err(Error::invalid_input(format!(
                    "The {what} read from standard input is empty."
                )));
            }
            return Ok(Some(T::new(value)));
        }
        match std::env::var(env_var) {
            Ok(v) if !v.is_empty() => Ok(Some(T::new(v))),
            _ => Ok(None),
        }
    }

    pub fn require<T: AnySecret>(
        &mut self,
        what: &str,
        flag: &str,
        from_stdin: bool,
        env_var: &str,
    ) -> Result<T> {
        self.read(what, from_stdin, env_var)?.ok_or_else(|| {
            Error::invalid_input(format!("Give the {what} on standard input with {flag}, or in the environment variable {env_var}."))
        })
    }
}
