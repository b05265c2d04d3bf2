//! The team store's schema, as versioned migrations in schema `authdeck`.
//!
//! Each migration runs in its own transaction under a transaction advisory lock, so two
//! desktops running `team init` at once apply each step once; `authdeck.migrations`
//! records what ran. New migrations go at the end of [`MIGRATIONS`]; a shipped one never
//! changes.
//!
//! Change tracking: every insert or update of a client or connection row takes the next
//! value of its team's counter (`teams.version`) and NOTIFYs channel
//! `authdeck_<team id without dashes>` with `"<version> <kind> <id>"` (kind `client` or
//! `connection`). The counter is a row, so the row lock orders the versions of one team
//! by commit: a reader that has seen version v has seen every change ≤ v once the writer
//! of v committed, which makes "resync by version" exact. Deletions are soft
//! (`deleted = true`, a new version), so a resync sees them too. Writers lock the team row
//! first (see `store::lock_team`), which also keeps them free of deadlocks.

use authdeck_core::{Error, Result};

/// Advisory-lock namespace of the migrations (one xact lock for the whole database).
const MIGRATION_LOCK: i64 = 0x4144_4d49_4752_0001; // "ADMIGR" + 1

/// The migrations, in order; `MIGRATIONS[i]` is version `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    // 1: the whole first schema.
    r#"
CREATE SCHEMA IF NOT EXISTS authdeck;

CREATE TABLE authdeck.teams (
    id          uuid PRIMARY KEY,
    name        text NOT NULL,
    -- The key epoch of the current team key and its check value (a sealed known text,
    -- AD = team id): a wrong key is refused at join, before anything is written.
    key_epoch   integer NOT NULL,
    key_check   bytea NOT NULL,
    -- The last change version handed out in this team (see the module docs).
    version     bigint NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  text NOT NULL DEFAULT current_user
);

CREATE TABLE authdeck.clients (
    team_id     uuid NOT NULL REFERENCES authdeck.teams (id) ON DELETE CASCADE,
    id          text NOT NULL,
    -- Everything that is not secret (provider, endpoints, options…), as the core's JSON.
    record      jsonb NOT NULL,
    -- The client secret, sealed (AD: team, "client_secret", client id).
    secret      bytea,
    -- Readable by roles that may not read `secret` (support staff).
    has_secret  boolean GENERATED ALWAYS AS (secret IS NOT NULL) STORED,
    version     bigint NOT NULL DEFAULT 0,
    deleted     boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  text NOT NULL DEFAULT current_user,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    updated_by  text NOT NULL DEFAULT current_user,
    PRIMARY KEY (team_id, id)
);

CREATE TABLE authdeck.connections (
    team_id     uuid NOT NULL,
    id          text NOT NULL,
    client_id   text NOT NULL,
    -- The key of this connection's refresh lock (a session advisory lock).
    lock_key    integer GENERATED ALWAYS AS IDENTITY UNIQUE,
    record      jsonb NOT NULL,
    -- The generation of the current token set: a commit is a compare-and-swap on it.
    generation  bigint NOT NULL DEFAULT 1,
    version     bigint NOT NULL DEFAULT 0,
    deleted     boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  text NOT NULL DEFAULT current_user,
    created_on  text NOT NULL DEFAULT '',
    updated_at  timestamptz NOT NULL DEFAULT now(),
    updated_by  text NOT NULL DEFAULT current_user,
    updated_on  text NOT NULL DEFAULT '',
    last_refresh_at timestamptz,
    last_refresh_by text,
    last_refresh_on text,
    PRIMARY KEY (team_id, id),
    FOREIGN KEY (team_id, client_id) REFERENCES authdeck.clients (team_id, id)
);

-- Ciphertext only (AD: team, "token_set", connection id, generation). One row per
-- connection: the current generation's.
CREATE TABLE authdeck.token_sets (
    team_id       uuid NOT NULL,
    connection_id text NOT NULL,
    generation    bigint NOT NULL,
    sealed        bytea NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (team_id, connection_id, generation),
    FOREIGN KEY (team_id, connection_id) REFERENCES authdeck.connections (team_id, id) ON DELETE CASCADE
);

CREATE TABLE authdeck.history (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    team_id       uuid NOT NULL REFERENCES authdeck.teams (id) ON DELETE CASCADE,
    connection_id text,
    client_id     text,
    at            timestamptz NOT NULL DEFAULT now(),
    event         text NOT NULL,
    outcome       text NOT NULL,
    detail        text,
    -- Who: the PostgreSQL role of the session (the database's own authentication), and
    -- the machine it said it runs on.
    member        text NOT NULL DEFAULT current_user,
    machine       text NOT NULL DEFAULT '',
    -- What the member used: 'desktop', 'agent' or 'cli'.
    via           text NOT NULL DEFAULT ''
);
CREATE INDEX history_by_connection ON authdeck.history (team_id, connection_id, id);

-- Authorizations started on one desktop (browser sent away), finished by the callback.
CREATE TABLE authdeck.pending_authorizations (
    team_id     uuid NOT NULL REFERENCES authdeck.teams (id) ON DELETE CASCADE,
    id          text NOT NULL,
    client_id   text NOT NULL,
    record      jsonb NOT NULL,
    -- PKCE verifier and the like (AD: team, "pending", id).
    sealed      bytea NOT NULL,
    expires_at  timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  text NOT NULL DEFAULT current_user,
    machine     text NOT NULL DEFAULT '',
    PRIMARY KEY (team_id, id)
);

-- Desktops and agents seen (`team status`).
CREATE TABLE authdeck.members_seen (
    team_id     uuid NOT NULL REFERENCES authdeck.teams (id) ON DELETE CASCADE,
    member      text NOT NULL DEFAULT current_user,
    machine     text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('desktop', 'agent')),
    app_version text NOT NULL DEFAULT '',
    first_seen  timestamptz NOT NULL DEFAULT now(),
    last_seen   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (team_id, member, machine, kind)
);

-- Who holds the team scheduler's leadership (the advisory lock decides; this row tells).
CREATE TABLE authdeck.leadership (
    team_id     uuid PRIMARY KEY REFERENCES authdeck.teams (id) ON DELETE CASCADE,
    member      text NOT NULL DEFAULT current_user,
    machine     text NOT NULL,
    backend_pid integer NOT NULL,
    since       timestamptz NOT NULL DEFAULT now(),
    heartbeat   timestamptz NOT NULL DEFAULT now()
);

-- Every change takes the next version of its team (the team row lock orders them by
-- commit) and stamps who made it.
CREATE FUNCTION authdeck.bump_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE authdeck.teams SET version = version + 1 WHERE id = NEW.team_id
        RETURNING version INTO NEW.version;
    IF NEW.version IS NULL THEN
        RAISE EXCEPTION 'no team %', NEW.team_id;
    END IF;
    NEW.updated_at := now();
    NEW.updated_by := current_user;
    RETURN NEW;
END $$;

CREATE FUNCTION authdeck.notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('authdeck_' || replace(NEW.team_id::text, '-', ''),
                      NEW.version || ' ' || TG_ARGV[0] || ' ' || NEW.id);
    RETURN NULL;
END $$;

CREATE TRIGGER clients_version BEFORE INSERT OR UPDATE ON authdeck.clients
    FOR EACH ROW EXECUTE FUNCTION authdeck.bump_version();
CREATE TRIGGER clients_notify AFTER INSERT OR UPDATE ON authdeck.clients
    FOR EACH ROW EXECUTE FUNCTION authdeck.notify_change('client');
CREATE TRIGGER connections_version BEFORE INSERT OR UPDATE ON authdeck.connections
    FOR EACH ROW EXECUTE FUNCTION authdeck.bump_version();
CREATE TRIGGER connections_notify AFTER INSERT OR UPDATE ON authdeck.connections
    FOR EACH ROW EXECUTE FUNCTION authdeck.notify_change('connection');
"#,
    // 2: what the core's storage seam needs (`TeamBackend`).
    r#"
-- The connection of one business / project / account of a client (the core's natural
-- key): at most one live connection per client and key.
ALTER TABLE authdeck.connections ADD COLUMN natural_key text;
CREATE UNIQUE INDEX connections_natural_key ON authdeck.connections (team_id, client_id, natural_key)
    WHERE NOT deleted AND natural_key IS NOT NULL;

-- Client names are unique among a team's live clients (the core finds clients by name).
CREATE UNIQUE INDEX clients_name ON authdeck.clients (team_id, (record->>'name')) WHERE NOT deleted;

-- FedEx child secrets, sealed (AD: team, "child_secret", connection id). A table of its
-- own so the read-only role, which reads `connections`, never gets these.
CREATE TABLE authdeck.child_secrets (
    team_id       uuid NOT NULL,
    connection_id text NOT NULL,
    sealed        bytea NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (team_id, connection_id),
    FOREIGN KEY (team_id, connection_id) REFERENCES authdeck.connections (team_id, id) ON DELETE CASCADE
);

-- Coalesced history: one row per kind and minute with a count (rejected-redirect bursts).
ALTER TABLE authdeck.history ADD COLUMN count integer NOT NULL DEFAULT 1, ADD COLUMN kind text;
CREATE INDEX history_coalesce ON authdeck.history (team_id, kind, at) WHERE kind IS NOT NULL;

-- Pending authorizations are marked used (single use) and keep their outcome until
-- purged; the sealed PKCE verifier is optional and removed once taken.
ALTER TABLE authdeck.pending_authorizations
    ALTER COLUMN sealed DROP NOT NULL,
    ADD COLUMN consumed_at timestamptz,
    ADD COLUMN outcome text;

-- Notifications say whether the row is a tombstone: '<version> <kind>[.deleted] <id>'.
CREATE OR REPLACE FUNCTION authdeck.notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('authdeck_' || replace(NEW.team_id::text, '-', ''),
                      NEW.version || ' ' || TG_ARGV[0]
                      || CASE WHEN NEW.deleted THEN '.deleted' ELSE '' END
                      || ' ' || NEW.id);
    RETURN NULL;
END $$;
"#,
    // 3: provider calls in flight (see `lock::RefreshLock::begin_call`).
    r#"
-- A refresher records here, under the connection's lock and right before its provider
-- call, that it may hold an answer not saved yet: no other refresher presents the
-- refresh token that answer replaced while the mark lives (`until`, server time). Its
-- commit deletes it; so does its lock's release when the call left nothing to keep. No
-- secret, and none of the version or notify triggers: not a change anyone is shown.
CREATE TABLE authdeck.calls_in_flight (
    team_id       uuid NOT NULL,
    connection_id text NOT NULL,
    generation    bigint NOT NULL,
    owner         text NOT NULL,
    machine       text NOT NULL,
    member        text NOT NULL DEFAULT current_user,
    since         timestamptz NOT NULL DEFAULT now(),
    until         timestamptz NOT NULL,
    PRIMARY KEY (team_id, connection_id),
    FOREIGN KEY (team_id, connection_id) REFERENCES authdeck.connections (team_id, id) ON DELETE CASCADE
);

-- Members granted before this migration (those who may write token sets) may mark too.
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT DISTINCT grantee FROM information_schema.role_table_grants
              WHERE table_schema = 'authdeck' AND table_name = 'token_sets'
                AND privilege_type = 'INSERT' AND grantee <> current_user
    LOOP
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON authdeck.calls_in_flight TO %I', r.grantee);
    END LOOP;
END $$;
"#,
];

/// A role name safe to splice into GRANT statements (letters, digits, `_`, `-`, `.`,
/// `@`; quoted as an identifier).
fn role_ident(role: &str) -> Result<String> {
    let ok = !role.is_empty()
        && role.len() <= 63
        && role
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@'));
    if ok {
        Ok(format!("\"{role}\""))
    } else {
        Err(Error::invalid_input(
            "A role name has letters, digits and _ - . @ only (at most 63).",
        ))
    }
}

/// The SQL an administrator runs to let an existing login role be a team member: read
/// everything, refresh, connect, log out; no DDL, no change to the team row other than
/// its change counter. Members hold the team key; the database still never sees it.
pub fn grant_member_sql(role: &str) -> Result<String> {
    let r = role_ident(role)?;
    Ok(format!(
        "GRANT USAGE ON SCHEMA authdeck TO {r};
GRANT SELECT ON authdeck.migrations, authdeck.teams TO {r};
GRANT UPDATE (version) ON authdeck.teams TO {r};
GRANT SELECT, INSERT, UPDATE ON authdeck.clients, authdeck.connections TO {r};
GRANT SELECT, INSERT, DELETE ON authdeck.token_sets TO {r};
GRANT SELECT, INSERT, UPDATE, DELETE ON authdeck.pending_authorizations, authdeck.child_secrets TO {r};
GRANT SELECT, INSERT ON authdeck.history TO {r};
GRANT UPDATE (count) ON authdeck.history TO {r};
GRANT SELECT, INSERT, UPDATE ON authdeck.members_seen, authdeck.leadership TO {r};
GRANT SELECT, INSERT, UPDATE, DELETE ON authdeck.calls_in_flight TO {r};
GRANT USAGE ON ALL SEQUENCES IN SCHEMA authdeck TO {r};"
    ))
}

/// The SQL for a read-only role (support staff): connections, status, history, members
/// and leader; no token set, no client secret, no pending authorization, no write.
/// PostgreSQL itself refuses the rest.
pub fn grant_reader_sql(role: &str) -> Result<String> {
    let r = role_ident(role)?;
    Ok(format!(
        "GRANT USAGE ON SCHEMA authdeck TO {r};
GRANT SELECT ON authdeck.migrations, authdeck.teams, authdeck.connections, authdeck.history,
    authdeck.members_seen, authdeck.leadership TO {r};
GRANT SELECT (team_id, id, record, has_secret, version, deleted, created_at, created_by, updated_at, updated_by)
    ON authdeck.clients TO {r};"
    ))
}

/// The SQL that takes a member's or reader's access away (then `rotate-key`, and
/// `DROP ROLE` once it owns nothing).
pub fn revoke_sql(role: &str) -> Result<String> {
    let r = role_ident(role)?;
    Ok(format!(
        "REVOKE ALL ON ALL TABLES IN SCHEMA authdeck FROM {r};
REVOKE ALL ON ALL SEQUENCES IN SCHEMA authdeck FROM {r};
REVOKE ALL ON SCHEMA authdeck FROM {r};"
    ))
}

/// The schema version this build needs.
pub fn latest() -> i32 {
    MIGRATIONS.len() as i32
}

/// Apply every migration not yet applied; the version now. Needs a role that may create
/// objects in the database (the administrator's, at `team init`).
pub async fn migrate(client: &mut tokio_postgres::Client) -> Result<i32> {
    client
        .batch_execute(
            "CREATE SCHEMA IF NOT EXISTS authdeck;
             CREATE TABLE IF NOT EXISTS authdeck.migrations (
                 version integer PRIMARY KEY,
                 applied_at timestamptz NOT NULL DEFAULT now()
             );",
        )
        .await
        .or_else(|e| {
            // Two first-time `init`s at once may race on CREATE … IF NOT EXISTS.
            if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) {
                Ok(())
            } else {
                Err(crate::db_error(e))
            }
        })?;
    for (i, sql) in MIGRATIONS.iter().enumerate() {
        let version = i as i32 + 1;
        let tx = client.transaction().await.map_err(crate::db_error)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(crate::db_error)?;
        let done = tx
            .query_opt(
                "SELECT 1 FROM authdeck.migrations WHERE version = $1",
                &[&version],
            )
            .await
            .map_err(crate::db_error)?
            .is_some();
        if !done {
            tx.batch_execute(sql).await.map_err(crate::db_error)?;
            tx.execute(
                "INSERT INTO authdeck.migrations (version) VALUES ($1)",
                &[&version],
            )
            .await
            .map_err(crate::db_error)?;
            tracing::info!(version, "team store: migration applied");
        }
        tx.commit().await.map_err(crate::db_error)?;
    }
    current(client).await
}

/// The schema version of the database (0 when it has none).
pub async fn current(client: &tokio_postgres::Client) -> Result<i32> {
    let exists: bool = client
        .query_one("SELECT to_regclass('authdeck.migrations') IS NOT NULL", &[])
        .await
        .map_err(crate::db_error)?
        .get(0);
    if !exists {
        return Ok(0);
    }
    let row = client
        .query_one(
            "SELECT coalesce(max(version), 0) FROM authdeck.migrations",
            &[],
        )
        .await
        .map_err(crate::db_error)?;
    Ok(row.get(0))
}

/// Refuse a database whose schema this build does not know (older or newer).
pub async fn check(client: &tokio_postgres::Client) -> Result<()> {
    let have = current(client).await?;
    if have == latest() {
        Ok(())
    } else if have < latest() {
        Err(Error::new(
            authdeck_core::ErrorCode::Storage,
            "The team database has an older schema: the administrator runs `authdeckctl team init` with this version to upgrade it.",
        )
        .with_detail(format!("schema {have}, this build needs {}", latest())))
    } else {
        Err(Error::new(
            authdeck_core::ErrorCode::Storage,
            "The team database was upgraded by a newer Authdeck: update this one.",
        )
        .with_detail(format!("schema {have}, this build knows {}", latest())))
    }
}
