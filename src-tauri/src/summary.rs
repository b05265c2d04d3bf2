//! What a list row shows of a connection: the lean shape the list, the start-up
//! snapshot and change events carry. The details panel fetches the full `Connection`
//! (scopes, decoded JWT, userinfo, history) for the one selected connection.
//!
//! [`ConnectionSummary`] is declared with `Connection` in the core, from the same list
//! of fields (`authdeck_core::model`'s `connection_and_summary!`): each field is written
//! once, and the test below checks that the JSON of one is a subset of the other's.

pub use authdeck_core::model::ConnectionSummary;

#[cfg(test)]
mod tests {
    use super::*;
    use authdeck_core::model::{
        Connection, Environment, Expiry, ExpirySource, FedexGrant, LastError, Provider,
    };
    use chrono::Utc;
    use serde::Serialize;

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
