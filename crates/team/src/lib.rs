//! Authdeck's team store: clients, connections, token sets, history and pending
//! authorizations shared by a firm's desktops and agents in PostgreSQL (issue 13).
//!
//! - [`tls`]: the database address and its TLS policy (verify-full unless loopback).
//! - [`schema`]: versioned migrations; every change bumps a version and NOTIFYs.
//! - [`crypto`]: the team key, the join key, XChaCha20-Poly1305 with associated data
//!   binding each ciphertext to its team, row and generation.
//! - [`store`]: [`TeamStore`], the reads and the atomic writes (commit = compare and
//!   swap on the generation).
//! - [`lock`]: a connection's refresh lock and the team scheduler's leadership, both
//!   session advisory locks the server releases when the holder's session dies.
//! - [`feed`]: the live change feed (LISTEN/NOTIFY) with resync by version.
//! - [`membership`]: where a desktop's membership lives (`team.json`, the key in the
//!   keyring or a 0600 file / systemd credential) and `team status`.
//! - [`backend`]: [`TeamBackend`], the core's storage seam on the team store, and
//!   [`LateBackend`], the same opened as soon as the database answers (the desktop app
//!   starts without it).
//! - [`import`]: `team import`, a data directory's local connections moved into the team.
//! - [`last_list`]: the desktop's last known list, shown while the database does not
//!   answer.
//! - [`open`]: a data directory's [`authdeck_core::manager::Manager`], on the team store
//!   when the directory is in a team, else on the local one.
//! - `testing` (feature `testing`): a throwaway PostgreSQL cluster for tests.
//!
//! See docs/TEAM.md for the schema, the crypto and the lock semantics.

pub mod backend;
pub mod crypto;
pub mod feed;
pub mod import;
pub mod last_list;
pub mod lock;
pub mod membership;
pub mod open;
pub mod schema;
pub mod store;
pub mod tls;

#[cfg(feature = "testing")]
pub mod testing;

pub use backend::late::LateBackend;
pub use backend::TeamBackend;
pub use crypto::{JoinKey, Scope, TeamKey};
pub use feed::{Change, ChangeFeed, ChangeKind, FeedEvent};
pub use lock::{Leadership, RefreshLock};
pub use store::{
    ActivityRow, ClientRow, CommitOutcome, CommitRequest, ConnectionRow, HistoryEvent, HistoryLine,
    HistoryRow, MemberRow, NewConnection, PendingRow, TeamStore, Via,
};
pub use tls::{DbConfig, TlsPolicy};

use authdeck_core::{Error, ErrorCode};
use tokio_postgres::error::SqlState;

/// A tokio-postgres error as Authdeck's one error type: the store unreachable (or the
/// session lost), or the server out of connection slots (SQLSTATE 53300/53400, said so:
/// it was reached), is `team_unavailable`; a refusal by the server is `storage`, with
/// the SQLSTATE in the detail. Never a value from a row.
pub(crate) fn db_error(e: tokio_postgres::Error) -> Error {
    let Some(db) = e.as_db_error() else {
        let text = e.to_string();
        let cause = std::error::Error::source(&e).map(|s| s.to_string());
        let detail = match cause {
            Some(cause) => format!("{text}: {cause}"),
            None => text.clone(),
        };
        if text.contains("TLS") {
            return Error::new(
                ErrorCode::TeamUnavailable,
                "The team database's certificate could not be verified (verify-full): check the host name in the address and the CA (sslrootcert).",
            )
            .with_detail(detail);
        }
        return Error::new(
            ErrorCode::TeamUnavailable,
            "The team database cannot be reached: nothing was changed. Try again when it is back.",
        )
        .with_detail(detail);
    };
    let code = db.code();
    let detail = format!("SQLSTATE {}: {}", code.code(), db.message());
    let unavailable = code.code().starts_with("08")
        || code.code().starts_with("57P")
        || *code == SqlState::READ_ONLY_SQL_TRANSACTION;
    if *code == SqlState::TOO_MANY_CONNECTIONS || *code == SqlState::CONFIGURATION_LIMIT_EXCEEDED {
        // The server is up and answered: it has no session slot left (max_connections,
        // or a role's or database's connection limit). Not "cannot be reached".
        Error::new(
            ErrorCode::TeamUnavailable,
            "The team database has no free connections (its max_connections, or a role or database connection limit, is reached): nothing was changed. Try again in a moment, or ask the administrator to raise the limit.",
        )
        .with_detail(detail)
    } else if unavailable {
        Error::new(
            ErrorCode::TeamUnavailable,
            "The team database is unavailable (restarting, failing over or full): nothing was changed. Try again in a moment.",
        )
        .with_detail(detail)
    } else if code.code().starts_with("28") {
        Error::new(
            ErrorCode::TeamUnavailable,
            "The team database refused the login: check your database role and password with the administrator.",
        )
        .with_detail(detail)
    } else if *code == SqlState::INSUFFICIENT_PRIVILEGE {
        Error::new(
            ErrorCode::Storage,
            "Your team role may not do this (the database refused it): ask the team's administrator.",
        )
        .with_detail(detail)
    } else if *code == SqlState::LOCK_NOT_AVAILABLE || *code == SqlState::QUERY_CANCELED {
        Error::new(
            ErrorCode::Busy,
            "Another desktop holds this for too long: try again in a moment.",
        )
        .with_detail(detail)
    } else {
        Error::new(ErrorCode::Storage, "The team database refused the change.").with_detail(detail)
    }
}

/// A pool error: a session that could not be made is [`db_error`]'s; every pooled
/// session staying busy for the whole wait is said so (the store was reached).
pub(crate) fn pool_error(e: deadpool_postgres::PoolError) -> Error {
    match e {
        deadpool_postgres::PoolError::Backend(e) => db_error(e),
        deadpool_postgres::PoolError::Timeout(deadpool_postgres::TimeoutType::Wait) => {
            Error::new(
                ErrorCode::TeamUnavailable,
                "All of this process's sessions to the team database stayed busy (its connection pool is exhausted): nothing was changed. Try again in a moment.",
            )
            .with_detail(e.to_string())
        }
        other => Error::new(
            ErrorCode::TeamUnavailable,
            "The team database cannot be reached: nothing was changed. Try again when it is back.",
        )
        .with_detail(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_wait_that_runs_out_says_the_pool_is_exhausted_not_unreachable() {
        let e = pool_error(deadpool_postgres::PoolError::Timeout(
            deadpool_postgres::TimeoutType::Wait,
        ));
        assert_eq!(e.code, ErrorCode::TeamUnavailable);
        assert!(e.message.contains("pool is exhausted"), "{}", e.message);
        assert!(!e.message.contains("cannot be reached"), "{}", e.message);
        // A session that could not be made in time is another matter.
        let e = pool_error(deadpool_postgres::PoolError::Timeout(
            deadpool_postgres::TimeoutType::Create,
        ));
        assert!(e.message.contains("cannot be reached"), "{}", e.message);
    }
}
