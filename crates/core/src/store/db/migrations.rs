//! The schema, as the list of its migrations.

use rusqlite_migration::{Migrations, M};

/// Versioned schema. Append new migrations; never edit a released one.
pub(super) fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(
            r#"
        CREATE TABLE clients (
            id          TEXT PRIMARY KEY,
            name        TEXT NOT NULL UNIQUE,
            provider    TEXT NOT NULL,
            data        TEXT NOT NULL,          -- JSON of model::Client
            created_at  INTEGER NOT NULL
        );
        CREATE TABLE connections (
            id                 TEXT PRIMARY KEY,
            client_id          TEXT NOT NULL REFERENCES clients(id),
            natural_key        TEXT NOT NULL,   -- supportCode / grant+child key / user id
            label              TEXT NOT NULL,
            data               TEXT NOT NULL,   -- JSON of model::Connection (no secrets)
            secret_generation  INTEGER NOT NULL,
            created_at         INTEGER NOT NULL,
            updated_at         INTEGER NOT NULL,
            UNIQUE (client_id, natural_key)
        );
        CREATE INDEX connections_by_label ON connections(label);
        -- History outlives its connection (a disconnect keeps it), hence no foreign key.
        CREATE TABLE history (
            id             INTEGER PRIMARY KEY AUTOINCREMENT,
            connection_id  TEXT,
            client_id      TEXT,
            at             INTEGER NOT NULL,
            event          TEXT NOT NULL,
            outcome        TEXT NOT NULL,
            detail         TEXT
        );
        CREATE INDEX history_by_connection ON history(connection_id, id);
        -- state_hash = SHA-256 of the OAuth state: the state itself is a bearer value.
        CREATE TABLE pending_authorizations (
            state_hash               TEXT PRIMARY KEY,
            client_id                TEXT NOT NULL,
            redirect_uri             TEXT NOT NULL,
            pkce                     INTEGER NOT NULL,
            reconnect_connection_id  TEXT,
            created_at               INTEGER NOT NULL,
            expires_at               INTEGER NOT NULL,
            consumed_at              INTEGER
        );
        "#,
        ),
        // Token sets: one keyring entry for the tokens of many connections (a batch
        // refresh writes one per batch instead of one per connection). A `token_sets`
        // row and its members are written BEFORE the keyring entry: they are how an
        // interrupted batch is found and finished, and how unused sets are swept.
        M::up(
            r#"
        ALTER TABLE connections ADD COLUMN token_set TEXT;
        -- A generation being written to the connection's own keyring entry: set before
        -- the write, cleared by the switch. Rows from before this column might have an
        -- interrupted write behind them: look once.
        ALTER TABLE connections ADD COLUMN pending_generation INTEGER;
        UPDATE connections SET pending_generation = secret_generation + 1;
        CREATE INDEX connections_by_token_set ON connections(token_set) WHERE token_set IS NOT NULL;
        CREATE TABLE token_sets (
            id          TEXT PRIMARY KEY,
            created_at  INTEGER NOT NULL
        );
        -- The entry holds these connections' tokens at these generations (or will, once
        -- written). A member whose connection is still one generation behind is an
        -- interrupted switch to be finished.
        CREATE TABLE token_set_members (
            set_id         TEXT NOT NULL REFERENCES token_sets(id) ON DELETE CASCADE,
            connection_id  TEXT NOT NULL,
            generation     INTEGER NOT NULL,
            -- The generation of the connection's own entry it left for this set, until
            -- that entry is deleted.
            left_entry     INTEGER,
            PRIMARY KEY (set_id, connection_id)
        );
        CREATE INDEX token_set_members_by_connection ON token_set_members(connection_id, generation);
        "#,
        ),
        // Which store this database is (see `vault::check_store`): the same id is kept in
        // the keyring, so a database that was deleted and came back empty is noticed.
        // `registered` = the keyring has been told.
        M::up(
            r#"
        CREATE TABLE store_identity (
            id          TEXT PRIMARY KEY,
            registered  INTEGER NOT NULL DEFAULT 0
        );
        "#,
        ),
        // PKCE (S256) on by default for FlowAccount clients, existing ones included: it is
        // what stops an injected authorization code (RFC 9700 §4.5), and FlowAccount's
        // IdentityServer accepts it from any client. A pending authorization records how
        // it ended (`ok`, an error code, or `cancelled`) once its state was used.
        M::up(
            r#"
        UPDATE clients SET data = json_set(data, '$.options.pkce', json('true'))
            WHERE provider = 'flowaccount';
        ALTER TABLE pending_authorizations ADD COLUMN outcome TEXT;
        "#,
        ),
        // The built-in sandbox's demo clients and their connections carry
        // `"sandbox": true` in their records (model `Client::sandbox`,
        // `Connection::sandbox`). Those an earlier version's sandbox added (fixed port
        // 47801) are recognised by name, demo client id and endpoint, and marked too.
        M::up(
            r#"
        UPDATE clients SET data = json_set(data, '$.sandbox', json('true'))
         WHERE (name, json_extract(data, '$.client_id')) IN (VALUES
                 ('sandbox-flowaccount', 'demo-flowaccount'),
                 ('sandbox-flowaccount-loopback', 'demo-flowaccount'),
                 ('sandbox-fedex', 'demo-fedex-key'),
                 ('sandbox-iot', 'demo-iot-client'))
           AND json_extract(data, '$.endpoints.token_url') LIKE 'http://127.0.0.1:47801/%';
        UPDATE connections SET data = json_set(data, '$.sandbox', json('true'))
         WHERE client_id IN (SELECT id FROM clients WHERE json_extract(data, '$.sandbox') = 1);
        "#,
        ),
        // Coalesced history: events a burst can repeat (rejected redirects: any local
        // program can fire the URL scheme) count into one row per kind and minute.
        // `kind` is the coalescing key (NULL: never coalesced), `count` how many.
        M::up(
            r#"
        ALTER TABLE history ADD COLUMN count INTEGER NOT NULL DEFAULT 1;
        ALTER TABLE history ADD COLUMN kind TEXT;
        CREATE INDEX history_by_kind ON history(kind, at) WHERE kind IS NOT NULL;
        "#,
        ),
        // The activity view names the connection of every history row, also after the
        // connection is gone: its label and provider, kept by triggers (never deleted).
        M::up(
            r#"
        CREATE TABLE connection_names (
            connection_id  TEXT PRIMARY KEY,
            label          TEXT NOT NULL,
            provider       TEXT
        );
        INSERT OR REPLACE INTO connection_names
            SELECT id, label, json_extract(data, '$.provider') FROM connections;
        CREATE TRIGGER connection_names_on_insert AFTER INSERT ON connections BEGIN
            INSERT OR REPLACE INTO connection_names
                VALUES (NEW.id, NEW.label, json_extract(NEW.data, '$.provider'));
        END;
        CREATE TRIGGER connection_names_on_update AFTER UPDATE OF label ON connections BEGIN
            INSERT OR REPLACE INTO connection_names
                VALUES (NEW.id, NEW.label, json_extract(NEW.data, '$.provider'));
        END;
        "#,
        ),
        // IoT devices (PROVIDERS.md §3 item 5) under an IoT client, optionally owned by
        // an IoT connection (no foreign key: a logged-out account leaves its devices).
        // No secret here: the Token and Secret are in the keyring. History rows of a
        // device carry its id in `device_id` (and no connection id).
        M::up(
            r#"
        CREATE TABLE devices (
            id             TEXT PRIMARY KEY,
            client_id      TEXT NOT NULL REFERENCES clients(id),
            connection_id  TEXT,
            name           TEXT NOT NULL UNIQUE,
            data           TEXT NOT NULL,   -- JSON of model::Device (no secrets)
            created_at     INTEGER NOT NULL
        );
        ALTER TABLE history ADD COLUMN device_id TEXT;
        CREATE INDEX history_by_device ON history(device_id, id) WHERE device_id IS NOT NULL;
        "#,
        ),
        // Devices without the foreign key to `clients`: with a team backend (issue 13)
        // the clients live in the team store, not in this file, while devices stay per
        // machine. The manager checks the client through the store before it adds a
        // device, and refuses to remove a client that still has devices. SQLite cannot
        // drop a constraint: a new table, every row copied, the old one dropped, the new
        // one renamed (in this migration's transaction). `name UNIQUE` is the table's
        // only index, rebuilt with it.
        M::up(
            r#"
        CREATE TABLE devices_new (
            id             TEXT PRIMARY KEY,
            client_id      TEXT NOT NULL,
            connection_id  TEXT,
            name           TEXT NOT NULL UNIQUE,
            data           TEXT NOT NULL,   -- JSON of model::Device (no secrets)
            created_at     INTEGER NOT NULL
        );
        INSERT INTO devices_new (id, client_id, connection_id, name, data, created_at)
            SELECT id, client_id, connection_id, name, data, created_at FROM devices;
        DROP TABLE devices;
        ALTER TABLE devices_new RENAME TO devices;
        "#,
        ),
    ])
}
