//! authdeck-core: the domain of Authdeck, free of any UI.
//!
//! - [`providers`]: the FlowAccount, FedEx and IoT wire protocols.
//! - [`authorize`]: pending authorizations and callback URLs.
//! - [`store`]: SQLite metadata + OS keyring secrets.
//! - [`manager`]: the façade the CLI and the desktop app call.

pub mod activity;
pub mod authorize;
pub mod clock;
pub mod crash;
pub mod error;
pub mod export;
pub mod journal;
pub mod locks;
pub mod loopback;
pub mod manager;
pub mod model;
pub mod process;
pub mod providers;
pub mod sandbox;
pub mod scheduler;
pub mod secret;
pub mod shutdown;
pub mod store;

pub use error::{Error, ErrorCode, Result};
pub use secret::{
    AccessToken, AnySecret, AuthorizationCode, ChildSecret, ClientSecret, DeviceSecret,
    DeviceToken, KeyringValue, OAuthState, Password, PkceVerifier, RefreshToken,
};
