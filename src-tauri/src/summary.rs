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

/// Declares a struct of some of [`Connection`]'s fields and its `From<&Connection>`
/// from one list: each field is named once, and the compiler checks that it is a field
/// of `Connection` of the same type (`c.field.clone()` must be the declared type).
/// The serde attributes are `Connection`'s own, repeated: the test
/// `a_summary_is_a_subset_of_its_connections_json` fails when they differ.
macro_rules! connection_subset {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $($(#[$field_meta:meta])* pub $field:ident: $ty:ty,)*
        }
    ) => {
        $(#[$meta])*
        pub struct $name {
            $($(#[$field_meta])* pub $field: $ty,)*
        }

        impl From<&Connection> for $name {
            #[allow(clippy::clone_on_copy)]
            fn from(c: &Connection) -> Self {
                Self { $($field: c.$field.clone(),)* }
            }
        }
    };
}

connection_subset! {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use authdeck_core::model::{ExpirySource, FedexGrant};

    fn json_object(value: impl Serialize) -> serde_json::Map<String, serde_json::Value> {
        match serde_json::to_value(value).unwrap() {
            serde_json::Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    /// The UI lets a full connection stand in for a row: every key of the summary's
    /// JSON is in the connection's, with the same value, with fields set and unset.
    #[test]
    fn a_summary_is_a_subset_of_its_connections_json() {
        let now = Utc::now();
        let bare = Connection::new(
            "conn-1",
            "client-1",
            "FedEx prod",
            Provider::Fedex,
            Environment::Production,
            "project 7",
            now,
        );
        let full = Connection {
            support_code: Some("SC-1".into()),
            grant: Some(FedexGrant::ClientCredentials),
            child_key: Some("child".into()),
            username: Some("ann".into()),
            access_expires: Some(Expiry::new(now, ExpirySource::RelativeSeconds)),
            refresh_expires: Some(Expiry::new(now, ExpirySource::RelativeSeconds)),
            last_error: Some(LastError::of(
                &authdeck_core::Error::invalid_input("no"),
                now,
            )),
            sandbox: true,
            ..bare.clone()
        };
        for connection in [bare, full] {
            let summary = json_object(ConnectionSummary::from(&connection));
            let whole = json_object(&connection);
            assert!(summary.contains_key("client_id") && summary.contains_key("sandbox"));
            for (key, value) in &summary {
                assert_eq!(whole.get(key), Some(value), "{key}");
            }
            // Unset optional fields are left out of both.
            let absent = |map: &serde_json::Map<_, _>| map.contains_key("support_code");
            assert_eq!(absent(&summary), absent(&whole));
        }
    }
}
