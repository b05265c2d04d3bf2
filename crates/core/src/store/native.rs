//! The operating system's own credential store, behind [`KeyringStore`](super::keyring::KeyringStore):
//! one per OS, chosen at compile time. crates/core/Cargo.toml brings in exactly one
//! store crate per target (its target-specific dependencies), and [`os`] below names it:
//!
//! - Linux and the BSDs: the Secret Service over D-Bus (`zbus-secret-service-keyring-store`:
//!   gnome-keyring, KWallet); tested.
//! - Windows: the Credential Manager (`windows-native-keyring-store`); untested.
//! - macOS: the user's login keychain (`apple-native-keyring-store`); untested.
//!
//! All three implement `keyring_core`'s store API, so nothing else in the core differs
//! by OS. See docs/PLATFORMS.md.

use std::sync::LazyLock;

pub use keyring_core::{Entry, Error};

/// The process's store, set up once, on first use (on Linux this connects to D-Bus).
static STORE: LazyLock<Result<(), Error>> = LazyLock::new(|| {
    keyring_core::set_default_store(os::store()?);
    Ok(())
});

/// Whether the OS store could be set up, and if not, why (e.g. no session bus).
pub fn status() -> &'static Result<(), Error> {
    &STORE
}

/// The entry `key` of `service` in the OS store; `Error::NoDefaultStore` when the
/// store could not be set up ([`status`] says why).
pub fn entry(service: &str, key: &str) -> Result<Entry, Error> {
    if STORE.is_err() {
        return Err(Error::NoDefaultStore);
    }
    Entry::new(service, key)
}

/// Every entry of `service` in the OS store (and, on Windows, any whose name merely
/// starts like it: callers keep those whose specifiers name `service`).
pub fn search(service: &str) -> Result<Vec<Entry>, Error> {
    if STORE.is_err() {
        return Err(Error::NoDefaultStore);
    }
    let (attribute, value) = os::search_spec(service);
    Entry::search(&std::collections::HashMap::from([(
        attribute,
        value.as_str(),
    )]))
}

#[cfg(all(
    unix,
    not(any(target_os = "macos", target_os = "ios", target_os = "android"))
))]
mod os {
    pub fn store() -> keyring_core::Result<std::sync::Arc<keyring_core::api::CredentialStore>> {
        Ok(zbus_secret_service_keyring_store::Store::new()?)
    }

    /// The Secret Service searches by the items' `service` attribute.
    pub fn search_spec(service: &str) -> (&'static str, String) {
        ("service", service.to_owned())
    }
}

#[cfg(windows)]
mod os {
    pub fn store() -> keyring_core::Result<std::sync::Arc<keyring_core::api::CredentialStore>> {
        Ok(windows_native_keyring_store::Store::new()?)
    }

    /// The Credential Manager searches target names (`<service>.<key>`) by a regex.
    pub fn search_spec(service: &str) -> (&'static str, String) {
        ("pattern", format!("^{}\\.", regex::escape(service)))
    }
}

#[cfg(target_os = "macos")]
mod os {
    pub fn store() -> keyring_core::Result<std::sync::Arc<keyring_core::api::CredentialStore>> {
        Ok(apple_native_keyring_store::keychain::Store::new()?)
    }

    /// The keychain searches generic passwords by their service attribute.
    pub fn search_spec(service: &str) -> (&'static str, String) {
        ("service", service.to_owned())
    }
}
