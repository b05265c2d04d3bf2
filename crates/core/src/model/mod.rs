//! The nouns: providers, environments, clients (app registrations), connections (one
//! business / project / user account each), and token expiries.

mod client;
mod connection;
mod device;
mod history;
mod provider;

pub use self::client::*;
pub use self::connection::*;
pub use self::device::*;
pub use self::history::*;
pub use self::provider::*;

use crate::error::{Error, Result};

/// The longest text accepted from a user (CLI argument, IPC field) for each kind of
/// field, in characters (secrets: bytes). Beyond these an input is a mistake or an
/// attack: it is refused with `invalid_input` before anything is stored or sent.
pub mod limits {
    /// Client names (also a connection's label).
    pub const NAME: usize = 64;
    /// Usernames, FedEx child keys.
    pub const USERNAME: usize = 256;
    /// Client ids (FedEx API keys, OAuth client ids).
    pub const CLIENT_ID: usize = 512;
    /// Endpoint and redirect URLs.
    pub const URL: usize = 2048;
    /// Client secrets, child secrets, passwords.
    pub const SECRET_BYTES: usize = 4096;
}

/// Refuse `value` (described as `what`, e.g. "The username") when it is longer than `max`
/// characters, with a message that says how long it may be.
pub fn check_length(what: &str, value: &str, max: usize) -> Result<()> {
    let chars = value.chars().count();
    if chars > max {
        return Err(Error::invalid_input(format!(
            "{what} is too long ({chars} characters; at most {max})."
        )));
    }
    Ok(())
}

/// [`check_length`] for a secret, in bytes; the message never shows the value.
pub fn check_secret_length(what: &str, value: &dyn crate::secret::AnySecret) -> Result<()> {
    let bytes = value.expose().len();
    if bytes > limits::SECRET_BYTES {
        return Err(Error::invalid_input(format!(
            "{what} is too long ({bytes} bytes; at most {}).",
            limits::SECRET_BYTES
        )));
    }
    Ok(())
}
