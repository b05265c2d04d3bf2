//! What a list row shows of a connection: the lean shape the list, the start-up
//! snapshot and change events carry. The details panel fetches the full [`Connection`]
//! (scopes, decoded JWT, userinfo, history) for the one selected connection.

use authdeck_core::model::{
    CheckRecord, CompanyInfo, Connection, ConnectionState, Environment, Expiry, FedexGrant,
    LastError, Provider,
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use ts_rs::TS;

/// A subset of [`Connection`] with the same field names and types, so a full
/// connection (what `refresh` or `connect_*` return) can stand in for one in the UI.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
pub struct ConnectionSummary {
    pub id: String,
    /// Authdeck's key of the connection's client (see [`Connection::client_key`]).
    #[serde(rename = "client_id")]
    pub client_key: String,
    pub client_name: String,
    pub provider: Provider,
    pub environment: Environment,
    pub label: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub support_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<FedexGrant>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub child_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_expires: Option<Expiry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_expires: Option<Expiry>,
    pub state: ConnectionState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<LastError>,
    /// Lets the window ignore an event older than what it shows.
    pub updated_at: DateTime<Utc>,
    /// A connection of the built-in sandbox (demo data): the row shows a badge.
    pub sandbox: bool,
    /// The user's own name: the row's title when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_label: Option<String>,
    /// FlowAccount: who the business is (its name titles the row, and search finds it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<CompanyInfo>,
    /// The last check or probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_check: Option<CheckRecord>,
}

impl From<&Connection> for ConnectionSummary {
    fn from(c: &Connection) -> Self {
        Self {
            id: c.id.clone(),
            client_key: c.client_key.clone(),
            client_name: c.client_name.clone(),
            provider: c.provider,
            environment: c.environment,
            label: c.label.clone(),
            support_code: c.support_code.clone(),
            grant: c.grant,
            child_key: c.child_key.clone(),
            username: c.username.clone(),
            access_expires: c.access_expires,
            refresh_expires: c.refresh_expires,
            state: c.state,
            last_error: c.last_error.clone(),
            updated_at: c.updated_at,
            sandbox: c.sandbox,
            user_label: c.user_label.clone(),
            company: c.company.clone(),
            last_check: c.last_check.clone(),
        }
    }
}
