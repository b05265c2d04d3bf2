//! The one place the core's nouns meet the team store's rows: [`Client`],
//! [`Connection`], [`PendingRecord`] and [`HistoryEntry`] to and from their non-secret
//! JSON `record`s and columns, and [`TokenBundle`] to and from the bytes
//! `TeamStore` seals.
//!
//! - A record is the core's own JSON of the noun plus `"v": 1` (this mapping's
//!   version). Columns are the truth for what they hold: a connection's id, client and
//!   generation, a client's id and whether it has a secret, a pending authorization's
//!   state hash, client, expiry and use.
//! - A row another machine wrote that does not parse (another shape, a newer `v`) is a
//!   `storage` error naming the row, never a panic and never skipped. The error never
//!   quotes the row's content.
//! - A token bundle is `{"v":1,"access_token":…,"refresh_token":…,"access_expires":…,
//!   "refresh_expires":…}`, written into and read from zeroed buffers.

use std::borrow::Cow;

use authdeck_core::activity::ActivityEntry;
use authdeck_core::model::{Client, Connection, Expiry, HistoryEntry, TeamStamp};
use authdeck_core::store::db::{PendingRecord, MAX_HISTORY_DETAIL};
use authdeck_core::store::vault::TokenBundle;
use authdeck_core::{AccessToken, Error, ErrorCode, RefreshToken, Result};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use zeroize::Zeroizing;

use crate::store::{ActivityRow, ClientRow, ConnectionRow, HistoryRow, PendingRow};

/// The version of the records this mapping writes and reads.
pub const RECORD_VERSION: u64 = 1;
/// The version of the token bundles this mapping writes and reads.
pub const TOKENS_VERSION: u32 = 1;

fn unreadable(what: &str, id: &str, why: &str) -> Error {
    Error::new(
        ErrorCode::Storage,
        format!(
            "A {what} in the team store cannot be read by this Authdeck ({why}): nothing was changed. Update Authdeck, or ask whoever wrote it."
        ),
    )
    .with_detail(format!("{what} {id:?}"))
}

fn to_record(what: &str, value: Result<Value, serde_json::Error>) -> Result<Value> {
    let mut value =
        value.map_err(|_| Error::internal(format!("Could not encode a {what} record.")))?;
    match value.as_object_mut() {
        Some(map) => {
            map.insert("v".into(), Value::from(RECORD_VERSION));
            Ok(value)
        }
        None => Err(Error::internal(format!(
            "A {what} record is not an object."
        ))),
    }
}

fn from_record<T: DeserializeOwned>(what: &str, id: &str, record: &Value) -> Result<T> {
    match record.get("v").and_then(Value::as_u64) {
        Some(RECORD_VERSION) => {}
        Some(v) if v > RECORD_VERSION => {
            return Err(unreadable(what, id, "written by a newer Authdeck"))
        }
        _ => return Err(unreadable(what, id, "not a record of this format")),
    }
    T::deserialize(record).map_err(|_| unreadable(what, id, "a field is missing or malformed"))
}

// ---- clients ------------------------------------------------------------------------

pub fn client_record(client: &Client) -> Result<Value> {
    to_record("client", serde_json::to_value(client))
}

pub fn client_of(row: &ClientRow) -> Result<Client> {
    let mut client: Client = from_record("client", &row.id, &row.record)?;
    client.id = row.id.clone();
    client.has_secret = row.has_secret;
    Ok(client)
}

// ---- connections --------------------------------------------------------------------

pub fn connection_record(conn: &Connection) -> Result<Value> {
    let mut record = to_record("connection", serde_json::to_value(conn))?;
    // The generation lives in its column (the compare-and-swap's): not twice. Who
    // connected and refreshed it are the columns' (stamped by the server), never the
    // record's: a record cannot claim another member.
    if let Some(map) = record.as_object_mut() {
        for column in ["secret_generation", "connected_by", "refreshed_by"] {
            map.remove(column);
        }
    }
    Ok(record)
}

pub fn connection_of(row: &ConnectionRow) -> Result<Connection> {
    let mut record = row.record.clone();
    if let Some(map) = record.as_object_mut() {
        map.insert("secret_generation".into(), Value::from(row.generation));
    }
    let mut conn: Connection = from_record("connection", &row.id, &record)?;
    conn.id = row.id.clone();
    conn.client_key = row.client_id.clone();
    conn.secret_generation = row.generation;
    conn.token_set = None;
    conn.pending_generation = None;
    conn.connected_by = Some(TeamStamp {
        member: row.created_by.clone(),
        machine: row.created_on.clone(),
        at: row.created_at,
    });
    conn.refreshed_by = match (
        &row.last_refresh_at,
        &row.last_refresh_by,
        &row.last_refresh_on,
    ) {
        (Some(at), Some(member), Some(machine)) => Some(TeamStamp {
            member: member.clone(),
            machine: machine.clone(),
            at: *at,
        }),
        _ => None,
    };
    Ok(conn)
}

/// Whether a commit from `old` to `next` is a refresh (stamps who refreshed, where).
pub fn is_refresh(old: &Connection, next: &Connection) -> bool {
    next.last_refresh_at.is_some() && next.last_refresh_at != old.last_refresh_at
}

// ---- pending authorizations ---------------------------------------------------------

#[derive(Serialize, Deserialize)]
struct PendingWire {
    redirect_uri: String,
    pkce: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reconnect_connection_id: Option<String>,
    created_at: DateTime<Utc>,
}

pub fn pending_record(p: &PendingRecord) -> Result<Value> {
    to_record(
        "pending authorization",
        serde_json::to_value(PendingWire {
            redirect_uri: p.redirect_uri.clone(),
            pkce: p.pkce,
            reconnect_connection_id: p.reconnect_connection_id.clone(),
            created_at: p.created_at,
        }),
    )
}

pub fn pending_of(row: &PendingRow) -> Result<PendingRecord> {
    let wire: PendingWire = from_record("pending authorization", &row.id, &row.record)?;
    Ok(PendingRecord {
        state_hash: row.id.clone(),
        client_key: row.client_id.clone(),
        redirect_uri: wire.redirect_uri,
        pkce: wire.pkce,
        reconnect_connection_id: wire.reconnect_connection_id,
        created_at: wire.created_at,
        expires_at: row.expires_at,
        consumed_at: row.consumed_at,
    })
}

/// `None` while unused, else how it ended (`used` until an outcome is recorded): the
/// local store's meaning.
pub fn pending_outcome_of(row: &PendingRow) -> Option<String> {
    row.consumed_at
        .map(|_| row.outcome.clone().unwrap_or_else(|| "used".into()))
}

// ---- history ------------------------------------------------------------------------

/// A history detail cut to the local store's limit (marked with `…`).
pub fn capped_detail(detail: Option<&str>) -> Option<Cow<'_, str>> {
    detail.map(|d| match d.char_indices().nth(MAX_HISTORY_DETAIL) {
        None => Cow::Borrowed(d),
        Some((cut, _)) => Cow::Owned(format!("{}…", &d[..cut])),
    })
}

pub fn history_count(entry: &HistoryEntry) -> i32 {
    i32::try_from(entry.count.max(1)).unwrap_or(i32::MAX)
}

pub fn history_of(row: &HistoryRow) -> HistoryEntry {
    HistoryEntry {
        at: row.at,
        event: row.event.clone(),
        outcome: row.outcome.clone(),
        detail: row.detail.clone(),
        count: u32::try_from(row.count.max(1)).unwrap_or(1),
    }
}

/// An activity line; a provider this build does not know reads as `None` (display only).
pub fn activity_of(row: &ActivityRow) -> ActivityEntry {
    ActivityEntry {
        at: row.at,
        event: row.event.clone(),
        outcome: row.outcome.clone(),
        detail: row.detail.clone(),
        count: u32::try_from(row.count.max(1)).unwrap_or(1),
        connection_id: row.connection_id.clone(),
        connection_label: row.connection_id.as_ref().and(row.connection_label.clone()),
        provider: row
            .provider
            .as_ref()
            .and_then(|p| serde_json::from_value(Value::String(p.clone())).ok()),
        removed: row.connection_id.is_some() && !row.live,
    }
}

// ---- token bundles ------------------------------------------------------------------

#[derive(Serialize)]
struct TokensOut<'a> {
    v: u32,
    access_token: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    access_expires: Option<Expiry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_expires: Option<Expiry>,
}

#[derive(Deserialize)]
struct TokensIn<'a> {
    v: u32,
    #[serde(borrow)]
    access_token: Cow<'a, str>,
    #[serde(default, borrow)]
    refresh_token: Option<Cow<'a, str>>,
    #[serde(default)]
    access_expires: Option<Expiry>,
    #[serde(default)]
    refresh_expires: Option<Expiry>,
}

/// The bytes `TeamStore` seals for a bundle. Written into one buffer sized up front (no
/// reallocation leaves a copy behind) that is zeroed when dropped.
pub fn tokens_to_bytes(tokens: &TokenBundle) -> Result<Zeroizing<Vec<u8>>> {
    let access = tokens.access_token.expose();
    let refresh = tokens.refresh_token.as_ref().map(|t| t.expose());
    let room = 256 + 2 * (access.len() + refresh.map_or(0, str::len));
    let mut buf = Zeroizing::new(Vec::with_capacity(room));
    serde_json::to_writer(
        &mut *buf,
        &TokensOut {
            v: TOKENS_VERSION,
            access_token: access,
            refresh_token: refresh,
            access_expires: tokens.access_expires,
            refresh_expires: tokens.refresh_expires,
        },
    )
    .map_err(|_| Error::internal("Could not encode a token bundle."))?;
    Ok(buf)
}

/// A bundle from opened bytes; `storage` (naming the connection, never the content)
/// when they are not a bundle of this format.
pub fn tokens_from_bytes(connection_id: &str, bytes: &[u8]) -> Result<TokenBundle> {
    let wire: TokensIn<'_> = serde_json::from_slice(bytes)
        .map_err(|_| unreadable("token set", connection_id, "not a token bundle"))?;
    if wire.v != TOKENS_VERSION {
        return Err(unreadable(
            "token set",
            connection_id,
            "a token bundle of another version",
        ));
    }
    Ok(TokenBundle {
        access_token: AccessToken::new(wire.access_token.into_owned()),
        refresh_token: wire
            .refresh_token
            .map(|t| RefreshToken::new(t.into_owned())),
        access_expires: wire.access_expires,
        refresh_expires: wire.refresh_expires,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use authdeck_core::model::{Environment, ExpirySource, Provider};
    use serde_json::json;

    fn conn_row(record: Value) -> ConnectionRow {
        let now = Utc::now();
        ConnectionRow {
            id: "c1".into(),
            client_id: "cl".into(),
            record,
            generation: 7,
            version: 1,
            deleted: false,
            created_at: now,
            created_by: "alice".into(),
            created_on: "desk".into(),
            updated_at: now,
            updated_by: "alice".into(),
            updated_on: "desk".into(),
            last_refresh_at: None,
            last_refresh_by: None,
            last_refresh_on: None,
        }
    }

    #[test]
    fn a_connection_round_trips_and_the_columns_win() {
        let now = Utc::now();
        let mut conn = Connection::new(
            "c1",
            "cl",
            "Client",
            Provider::FlowAccount,
            Environment::Sandbox,
            "SHOP1",
            now,
        );
        conn.secret_generation = 3;
        let record = connection_record(&conn).unwrap();
        assert_eq!(record["v"], json!(1));
        assert!(record.get("secret_generation").is_none());
        let row = conn_row(record);
        let read = connection_of(&row).unwrap();
        assert_eq!(read.secret_generation, 7, "the column's generation");
        let connected = TeamStamp {
            member: "alice".into(),
            machine: "desk".into(),
            at: row.created_at,
        };
        assert_eq!(
            Connection {
                secret_generation: 7,
                connected_by: Some(connected),
                ..conn.clone()
            },
            read
        );

        // Who connected and refreshed it: the columns', never the record's.
        let refreshed_at = Utc::now();
        let row = ConnectionRow {
            last_refresh_at: Some(refreshed_at),
            last_refresh_by: Some("bob".into()),
            last_refresh_on: Some("laptop".into()),
            ..conn_row(connection_record(&read).unwrap())
        };
        let record = connection_record(&read).unwrap();
        assert!(record.get("connected_by").is_none(), "{record}");
        let mut forged = read.clone();
        forged.refreshed_by = Some(TeamStamp {
            member: "mallory".into(),
            machine: "x".into(),
            at: refreshed_at,
        });
        let forged_record = connection_record(&forged).unwrap();
        assert!(forged_record.get("refreshed_by").is_none());
        let read = connection_of(&ConnectionRow {
            record: forged_record,
            ..row
        })
        .unwrap();
        assert_eq!(
            read.connected_by
                .as_ref()
                .map(|c| (&c.member[..], &c.machine[..])),
            Some(("alice", "desk"))
        );
        assert_eq!(
            read.refreshed_by,
            Some(TeamStamp {
                member: "bob".into(),
                machine: "laptop".into(),
                at: refreshed_at,
            })
        );
    }

    #[test]
    fn a_record_that_does_not_parse_is_a_storage_error_without_its_content() {
        for record in [
            json!({"v": 1, "label": "SECRET-LOOKING-TEXT"}),
            json!({"label": "x"}),
            json!(["not", "an", "object"]),
            json!("text"),
        ] {
            let e = connection_of(&conn_row(record)).unwrap_err();
            assert_eq!(e.code, ErrorCode::Storage);
            assert!(!format!("{e:?}").contains("SECRET-LOOKING-TEXT"), "{e:?}");
            assert!(e.detail.as_deref().unwrap_or("").contains("c1"), "{e:?}");
        }
        let e = connection_of(&conn_row(json!({"v": 9}))).unwrap_err();
        assert!(e.message.contains("newer Authdeck"), "{e:?}");
    }

    #[test]
    fn token_bundles_round_trip_and_refuse_other_formats() {
        let now = Utc::now();
        let tokens = TokenBundle {
            access_token: AccessToken::new("at-\"quoted\"\\n"),
            refresh_token: Some(RefreshToken::new("rt-1")),
            access_expires: Some(Expiry::new(now, ExpirySource::RelativeSeconds)),
            refresh_expires: None,
        };
        let bytes = tokens_to_bytes(&tokens).unwrap();
        let back = tokens_from_bytes("c1", &bytes).unwrap();
        assert_eq!(back.access_token.expose(), "at-\"quoted\"\\n");
        assert_eq!(back.refresh_token.unwrap().expose(), "rt-1");
        assert_eq!(back.access_expires, tokens.access_expires);
        assert_eq!(back.refresh_expires, None);
        for bad in [&b"{}"[..], b"not json", br#"{"v":2,"access_token":"a"}"#] {
            let e = tokens_from_bytes("c1", bad).unwrap_err();
            assert_eq!(e.code, ErrorCode::Storage);
        }
    }

    #[test]
    fn details_are_capped_like_the_local_store() {
        let long = "é".repeat(MAX_HISTORY_DETAIL + 5);
        let capped = capped_detail(Some(&long)).unwrap();
        assert_eq!(capped.chars().count(), MAX_HISTORY_DETAIL + 1);
        assert!(capped.ends_with('…'));
        assert_eq!(capped_detail(Some("short")).unwrap(), "short");
    }
}
