//! Every token, client secret, child secret and password Authdeck holds, typed by its
//! role (as oauth2-rs's `types.rs`): a [`ClientSecret`] cannot be passed where a
//! [`RefreshToken`] is expected.
//!
//! Each type holds its value in a [`secrecy::SecretString`], which zeroes the bytes when
//! it is dropped (with `zeroize`, which the optimiser cannot remove). None of them prints
//! itself: `Debug` shows e.g. `ClientSecret([redacted])` and `Display` `[redacted]`. None
//! implements `Serialize`; they implement `Deserialize`, so IPC and CLI input holds them
//! from the start. `Clone` only where a copy is kept on purpose, and equality only where
//! two values are compared, in constant time. The only way to read a value is
//! `expose()`, which makes every place that handles the real value easy to find with grep.
//!
//! ```no_run
//! use authdeck_core::providers::{flowaccount, HttpClient};
//! use authdeck_core::secret::{ClientSecret, RefreshToken};
//! fn refresh(http: &HttpClient, url: &url::Url, secret: &ClientSecret, token: &RefreshToken) {
//!     let _ = flowaccount::refresh(http, url, "id", secret, token, chrono::Utc::now());
//! }
//! ```
//!
//! The same call with the two swapped does not compile:
//!
//! ```compile_fail
//! use authdeck_core::providers::{flowaccount, HttpClient};
//! use authdeck_core::secret::{ClientSecret, RefreshToken};
//! fn refresh(http: &HttpClient, url: &url::Url, secret: &ClientSecret, token: &RefreshToken) {
//!     let _ = flowaccount::refresh(http, url, "id", token, secret, chrono::Utc::now());
//! }
//! ```
//!
//! Nor does serialising one:
//!
//! ```compile_fail
//! let _ = serde_json::to_string(&authdeck_core::secret::AccessToken::new("at"));
//! ```

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

/// What every role type has in common: for code that handles secrets of any role, e.g.
/// the redactor that removes all the secrets of one request from a provider's answer,
/// or the keyring's opaque entries.
pub trait AnySecret: fmt::Debug + Send + Sync {
    /// Take ownership of a value; the `String` given is zeroed.
    fn new(value: impl Into<String>) -> Self
    where
        Self: Sized;

    /// The secret value itself. See the security warning on the role types' `expose`.
    fn expose(&self) -> &str;

    fn is_empty(&self) -> bool {
        self.expose().is_empty()
    }
}

/// Copy the text into an allocation of exactly its size, then zero the `String`: turning
/// the `String` itself into a `Box<str>` may reallocate and leave a copy behind.
fn protect(mut value: String) -> SecretString {
    let secret = SecretString::from(Box::<str>::from(value.as_str()));
    value.zeroize();
    secret
}

macro_rules! secret_role {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        pub struct $name(SecretString);

        impl $name {
            /// Take ownership of a value; the `String` given is zeroed.
            pub fn new(value: impl Into<String>) -> Self {
                Self(protect(value.into()))
            }

            /// The secret value itself.
            ///
            /// **Security:** the returned string must go only to the provider (a request
            /// body or header), the keyring, or the user who explicitly asked for it
            /// (`authdeckctl token`, "Copy access token"). Never into a log, an error
            /// message, a URL or SQLite.
            pub fn expose(&self) -> &str {
                self.0.expose_secret()
            }

            pub fn is_empty(&self) -> bool {
                self.expose().is_empty()
            }
        }

        impl AnySecret for $name {
            fn new(value: impl Into<String>) -> Self {
                $name::new(value)
            }

            fn expose(&self) -> &str {
                $name::expose(self)
            }
        }

        /// The inner `SecretString` zeroes itself when dropped.
        impl zeroize::ZeroizeOnDrop for $name {}

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("[redacted]")
            }
        }

        /// Input at the IPC and CLI edge: a JSON string. (No `Serialize`: a secret never
        /// leaves in a payload.)
        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                String::deserialize(d).map(Self::new)
            }
        }
    };
}

/// `Clone` for the roles of which a copy is kept on purpose.
macro_rules! cloneable {
    ($($name:ident),* $(,)?) => {$(
        impl Clone for $name {
            fn clone(&self) -> Self {
                Self(self.0.clone())
            }
        }
    )*};
}

/// Equality in constant time (`subtle`), for the roles that are compared.
macro_rules! constant_time_eq {
    ($($name:ident),* $(,)?) => {$(
        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.expose().as_bytes().ct_eq(other.expose().as_bytes()).into()
            }
        }

        impl Eq for $name {}
    )*};
}

secret_role! {
    /// An app registration's client secret (FlowAccount, FedEx).
    ClientSecret
}
secret_role! {
    /// A FedEx child secret (the customer's credentials for `csp_credentials` and
    /// `client_pc_credentials`).
    ChildSecret
}
secret_role! {
    /// A bearer access token.
    AccessToken
}
secret_role! {
    /// A refresh token.
    RefreshToken
}
secret_role! {
    /// The authorization code of a redirect (RFC 6749 §4.1.2), exchanged once.
    AuthorizationCode
}
secret_role! {
    /// A PKCE code verifier (RFC 7636 §4.1): kept in the keyring until the code exchange.
    PkceVerifier
}
secret_role! {
    /// The OAuth `state` of a started authorization: a bearer value, stored only hashed.
    OAuthState
}
secret_role! {
    /// The IoT platform user's password, used once at login and never stored.
    Password
}
secret_role! {
    /// An IoT device's Token (created in the platform's portal): with its Client ID, the
    /// device API's `Authorization: Device <ClientID>:<Token>` and the MQTT username.
    DeviceToken
}
secret_role! {
    /// An IoT device's Secret (optional): the MQTT password.
    DeviceSecret
}
secret_role! {
    /// The plaintext of one keyring entry, of any role above (or several tokens encoded
    /// together): what [`crate::store::SecretStore`] stores without looking inside.
    KeyringValue
}

/// The roles kept in the keyring entry of their own: to and from a [`KeyringValue`]
/// without a plaintext copy.
macro_rules! kept_in_the_keyring {
    ($($name:ident),* $(,)?) => {$(
        impl From<KeyringValue> for $name {
            fn from(value: KeyringValue) -> Self {
                Self(value.0)
            }
        }

        impl From<&$name> for KeyringValue {
            fn from(secret: &$name) -> Self {
                Self(secret.0.clone())
            }
        }
    )*};
}

cloneable!(ClientSecret, AccessToken, RefreshToken, KeyringValue);
constant_time_eq!(AccessToken, RefreshToken, KeyringValue);
kept_in_the_keyring!(
    ClientSecret,
    ChildSecret,
    PkceVerifier,
    DeviceToken,
    DeviceSecret
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = ClientSecret::new("canary-7f3a");
        assert_eq!(format!("{s:?}"), "ClientSecret([redacted])");
        assert_eq!(format!("{s}"), "[redacted]");
        assert_eq!(
            format!("{:?}", Some(s.clone())),
            "Some(ClientSecret([redacted]))"
        );
        assert_eq!(s.expose(), "canary-7f3a");
        assert_eq!(
            format!("{:?}", RefreshToken::new("canary-7f3a")),
            "RefreshToken([redacted])"
        );
        assert_eq!(
            format!("{:?}", DeviceToken::new("canary-7f3a")),
            "DeviceToken([redacted])"
        );
        assert_eq!(
            format!("{}", DeviceSecret::new("canary-7f3a")),
            "[redacted]"
        );
    }

    #[test]
    fn deserialises_from_a_json_string_and_debug_stays_redacted() {
        #[derive(Debug, serde::Deserialize)]
        struct Input {
            password: Password,
        }
        let input: Input = serde_json::from_str(r#"{"password":"canary-7f3a"}"#).unwrap();
        assert_eq!(input.password.expose(), "canary-7f3a");
        assert!(!format!("{input:?}").contains("canary"));
        assert!(serde_json::from_str::<Input>(r#"{"password":7}"#).is_err());
    }

    #[test]
    fn compared_roles_compare_by_value() {
        assert_eq!(
            RefreshToken::new("rt-1"),
            RefreshToken::new(String::from("rt-1"))
        );
        assert_ne!(RefreshToken::new("rt-1"), RefreshToken::new("rt-2"));
        assert_ne!(AccessToken::new("a"), AccessToken::new("ab"));
        assert_eq!(Some(KeyringValue::new("v")), Some(KeyringValue::new("v")));
    }

    #[test]
    fn any_secret_reads_every_role() {
        let a = AccessToken::new("one");
        let b = ChildSecret::new(String::from("two"));
        let all: Vec<&dyn AnySecret> = vec![&a, &b];
        assert_eq!(
            all.iter().map(|s| s.expose()).collect::<Vec<_>>(),
            ["one", "two"]
        );
        let c: PkceVerifier = AnySecret::new("three");
        assert_eq!(c.expose(), "three");
        assert!(KeyringValue::new("").is_empty());
    }
}
