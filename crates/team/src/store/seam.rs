//! What the core's storage seam (`crate::backend`) needs beyond the rows of the
//! other files: lookups by reference, conditional updates, coalesced history, pending
//! authorizations as the core sees them.

use super::*;

/// Advisory-lock namespace of coalesced history lines (first key of the two-key form).
const HISTORY_NS: i32 = 0x4144_0003;

/// What the core's storage seam needs beyond the rows above (see `crate::backend`).
impl TeamStore {
    /// The team's name (the window's header).
    pub async fn team_name(&self) -> Result<String> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                "SELECT name FROM authdeck.teams WHERE id = $1::text::uuid",
                &[&self.inner.team],
            )
            .await
            .map_err(db_error)?
            .ok_or_else(|| Error::not_found("This team no longer exists in the team database."))?;
        Ok(row.get(0))
    }

    // ---- clients ------------------------------------------------------------------

    /// A new client with its secret (sealed here), together. `already_exists` when a live
    /// client has this id or this name (`record.name`); a tombstone of the id is revived.
    pub async fn insert_client(
        &self,
        id: &str,
        record: &Value,
        secret: Option<&[u8]>,
    ) -> Result<i64> {
        let sealed = self.seal_client_secret(id, secret)?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        lock_team(&tx, &self.inner.team, &self.inner.key).await?;
        let taken = || {
            Error::new(
                ErrorCode::AlreadyExists,
                "A client with this name exists already in the team: pick another name.",
            )
        };
        let row = tx
            .query_opt(
                "INSERT INTO authdeck.clients (team_id, id, record, secret) VALUES ($1::text::uuid, $2, $3, $4)
                 ON CONFLICT (team_id, id) DO UPDATE SET record = EXCLUDED.record, secret = EXCLUDED.secret, deleted = false
                    WHERE authdeck.clients.deleted
                 RETURNING version",
                &[&self.inner.team, &id, record, &sealed],
            )
            .await
            .map_err(|e| if is_unique_violation(&e) { taken() } else { db_error(e) })?
            .ok_or_else(taken)?;
        tx.commit().await.map_err(db_error)?;
        Ok(row.get(0))
    }

    /// New settings of a live client with this id and name (`record.name`); its secret
    /// unchanged. `not_found` when there is none.
    pub async fn update_client_record(&self, id: &str, name: &str, record: &Value) -> Result<i64> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        lock_team(&tx, &self.inner.team, &self.inner.key).await?;
        let row = tx
            .query_opt(
                "UPDATE authdeck.clients SET record = $3
                  WHERE team_id = $1::text::uuid AND id = $2 AND NOT deleted AND record->>'name' = $4
                  RETURNING version",
                &[&self.inner.team, &id, record, &name],
            )
            .await
            .map_err(db_error)?
            .ok_or_else(|| Error::not_found(format!("No client named {name:?} in the team.")))?;
        tx.commit().await.map_err(db_error)?;
        Ok(row.get(0))
    }

    /// A live client by id, else by name (`record.name`).
    pub async fn find_client(&self, reference: &str) -> Result<Option<ClientRow>> {
        let c = self.client().await?;
        let sql = format!(
            "SELECT {CLIENT_COLUMNS} FROM authdeck.clients
              WHERE team_id = $1::text::uuid AND NOT deleted AND (id = $2 OR record->>'name' = $2)
              ORDER BY (id = $2) DESC LIMIT 1"
        );
        let row = c
            .query_opt(&sql, &[&self.inner.team, &reference])
            .await
            .map_err(db_error)?;
        Ok(row.as_ref().map(client_row))
    }

    // ---- connections --------------------------------------------------------------

    /// The live connections a person may mean by `reference`: the one with this id; else
    /// those with this label, user label or company name; else (4 characters or more)
    /// those whose id starts with it.
    pub async fn find_connections(&self, reference: &str) -> Result<Vec<ConnectionRow>> {
        let c = self.client().await?;
        let team = &self.inner.team;
        let base = format!(
            "SELECT {CONNECTION_COLUMNS} FROM authdeck.connections WHERE team_id = $1::text::uuid AND NOT deleted"
        );
        let exact = c
            .query(&format!("{base} AND id = $2"), &[team, &reference])
            .await
            .map_err(db_error)?;
        if !exact.is_empty() {
            return Ok(exact.iter().map(connection_row).collect());
        }
        let by_label = c
            .query(
                &format!(
                    "{base} AND (record->>'label' = $2 OR record->>'user_label' = $2
                              OR record #>> '{{company,name}}' = $2) ORDER BY id"
                ),
                &[team, &reference],
            )
            .await
            .map_err(db_error)?;
        if !by_label.is_empty() || reference.chars().count() < 4 {
            return Ok(by_label.iter().map(connection_row).collect());
        }
        let by_prefix = c
            .query(
                &format!("{base} AND left(id, length($2)) = $2 ORDER BY id"),
                &[team, &reference],
            )
            .await
            .map_err(db_error)?;
        Ok(by_prefix.iter().map(connection_row).collect())
    }

    /// The live connection of a client with this natural key.
    pub async fn connection_by_natural_key(
        &self,
        client_id: &str,
        natural_key: &str,
    ) -> Result<Option<ConnectionRow>> {
        let c = self.client().await?;
        let sql = format!(
            "SELECT {CONNECTION_COLUMNS} FROM authdeck.connections
              WHERE team_id = $1::text::uuid AND client_id = $2 AND natural_key = $3 AND NOT deleted"
        );
        let row = c
            .query_opt(&sql, &[&self.inner.team, &client_id, &natural_key])
            .await
            .map_err(db_error)?;
        Ok(row.as_ref().map(connection_row))
    }

    /// How many live connections use a client.
    pub async fn connection_count_for_client(&self, client_id: &str) -> Result<i64> {
        let c = self.client().await?;
        let row = c
            .query_one(
                "SELECT count(*) FROM authdeck.connections WHERE team_id = $1::text::uuid AND client_id = $2 AND NOT deleted",
                &[&self.inner.team, &client_id],
            )
            .await
            .map_err(db_error)?;
        Ok(row.get(0))
    }

    /// Change a connection's record only if its generation is still `generation`
    /// (compare and swap; the token set untouched). `false`: superseded or removed,
    /// nothing written.
    pub async fn update_record_if(
        &self,
        id: &str,
        generation: i64,
        record: &Value,
    ) -> Result<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        lock_team(&tx, &self.inner.team, &self.inner.key).await?;
        let n = tx
            .execute(
                "UPDATE authdeck.connections SET record = $4, updated_on = $5
                  WHERE team_id = $1::text::uuid AND id = $2 AND generation = $3 AND NOT deleted",
                &[
                    &self.inner.team,
                    &id,
                    &generation,
                    record,
                    &self.inner.machine,
                ],
            )
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(n == 1)
    }

    /// Store (or replace) a live connection's FedEx child secret, sealed.
    pub async fn set_child_secret(&self, connection_id: &str, secret: &[u8]) -> Result<()> {
        let sealed = self.inner.key.seal(
            &Scope::ChildSecret {
                team: &self.inner.team,
                connection: connection_id,
            },
            secret,
        )?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        lock_team(&tx, &self.inner.team, &self.inner.key).await?;
        let live = tx
            .query_opt(
                "SELECT 1 FROM authdeck.connections WHERE team_id = $1::text::uuid AND id = $2 AND NOT deleted",
                &[&self.inner.team, &connection_id],
            )
            .await
            .map_err(db_error)?;
        if live.is_none() {
            return Err(Error::not_found("No such connection."));
        }
        tx.execute(
            "INSERT INTO authdeck.child_secrets (team_id, connection_id, sealed) VALUES ($1::text::uuid, $2, $3)
             ON CONFLICT (team_id, connection_id) DO UPDATE SET sealed = EXCLUDED.sealed, updated_at = now()",
            &[&self.inner.team, &connection_id, &sealed],
        )
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(())
    }

    /// A live connection's child secret, opened.
    pub async fn child_secret(&self, connection_id: &str) -> Result<Option<Zeroizing<Vec<u8>>>> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                "SELECT s.sealed FROM authdeck.child_secrets s
                   JOIN authdeck.connections c ON c.team_id = s.team_id AND c.id = s.connection_id
                  WHERE s.team_id = $1::text::uuid AND s.connection_id = $2 AND NOT c.deleted",
                &[&self.inner.team, &connection_id],
            )
            .await
            .map_err(db_error)?;
        let Some(row) = row else { return Ok(None) };
        let sealed: Vec<u8> = row.get(0);
        self.inner
            .key
            .open(
                &Scope::ChildSecret {
                    team: &self.inner.team,
                    connection: connection_id,
                },
                &sealed,
            )
            .map(Some)
    }

    // ---- history ------------------------------------------------------------------

    /// Append a history line (member: the session's role; machine and via: this
    /// store's). With `coalesce`, count it into the line of that kind (same connection
    /// and client) whose time is in the same clock minute as `line.at`, if there is one:
    /// one transaction under a transaction advisory lock of that kind, so desktops
    /// coalescing at once count into one line.
    pub async fn add_history(&self, line: &HistoryLine<'_>, coalesce: Option<&str>) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        let count = line.count.max(1);
        if let Some(kind) = coalesce {
            let minute_ms = line.at.timestamp_millis().div_euclid(60_000) * 60_000;
            let from = DateTime::<Utc>::from_timestamp_millis(minute_ms).unwrap_or(line.at);
            let to = from + chrono::Duration::minutes(1);
            tx.execute(
                "SELECT pg_advisory_xact_lock($1, hashtext($2 || '/' || $3 || '/' || coalesce($4, '') || '/' || coalesce($5, '')))",
                &[&HISTORY_NS, &self.inner.team, &kind, &line.connection_id, &line.client_id],
            )
            .await
            .map_err(db_error)?;
            let counted = tx
                .execute(
                    "UPDATE authdeck.history SET count = least(count::bigint + $7, 2147483647)::integer WHERE id = (
                         SELECT id FROM authdeck.history
                          WHERE team_id = $1::text::uuid AND kind = $2
                            AND connection_id IS NOT DISTINCT FROM $3 AND client_id IS NOT DISTINCT FROM $4
                            AND at >= $5 AND at < $6
                          ORDER BY id DESC LIMIT 1)",
                    &[
                        &self.inner.team,
                        &kind,
                        &line.connection_id,
                        &line.client_id,
                        &from,
                        &to,
                        &i64::from(count),
                    ],
                )
                .await
                .map_err(db_error)?;
            if counted == 1 {
                tx.commit().await.map_err(db_error)?;
                return Ok(());
            }
        }
        self.line_in(&tx, line, coalesce).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(())
    }

    pub(super) async fn line_in(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        line: &HistoryLine<'_>,
        coalesce: Option<&str>,
    ) -> Result<()> {
        tx.execute(
            "INSERT INTO authdeck.history (team_id, connection_id, client_id, at, event, outcome, detail, machine, via, count, kind)
             VALUES ($1::text::uuid, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            &[
                &self.inner.team,
                &line.connection_id,
                &line.client_id,
                &line.at,
                &line.event,
                &line.outcome,
                &line.detail,
                &self.inner.machine,
                &self.inner.via.as_str(),
                &line.count.max(1),
                &coalesce,
            ],
        )
        .await
        .map_err(db_error)?;
        Ok(())
    }

    /// Newest first, at most `limit`: every history line with its connection's label and
    /// provider (from its record, kept by the tombstone after a removal) and whether the
    /// connection is still there. A record without them gives `None`, not an error.
    pub async fn activity(&self, limit: i64) -> Result<Vec<ActivityRow>> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT h.at, h.event, h.outcome, h.detail, h.count, h.connection_id,
                        c.record->>'label', c.record->>'provider', coalesce(NOT c.deleted, false),
                        h.member, h.machine, h.via
                   FROM authdeck.history h
                   LEFT JOIN authdeck.connections c ON c.team_id = h.team_id AND c.id = h.connection_id
                  WHERE h.team_id = $1::text::uuid
                  ORDER BY h.id DESC LIMIT $2",
                &[&self.inner.team, &limit],
            )
            .await
            .map_err(db_error)?;
        Ok(rows
            .iter()
            .map(|r| ActivityRow {
                at: r.get(0),
                event: r.get(1),
                outcome: r.get(2),
                detail: r.get(3),
                count: r.get(4),
                connection_id: r.get(5),
                connection_label: r.get(6),
                provider: r.get(7),
                live: r.get(8),
                member: r.get(9),
                machine: r.get(10),
                via: r.get(11),
            })
            .collect())
    }

    // ---- pending authorizations ----------------------------------------------------

    /// A started authorization with its (optional) secret, sealed here; those that
    /// expired before `purge_before` go in the same transaction.
    pub async fn insert_pending(
        &self,
        id: &str,
        client_id: &str,
        record: &Value,
        secret: Option<&[u8]>,
        expires_at: DateTime<Utc>,
        purge_before: DateTime<Utc>,
    ) -> Result<()> {
        let sealed = match secret {
            Some(secret) => Some(self.inner.key.seal(
                &Scope::Pending {
                    team: &self.inner.team,
                    pending: id,
                },
                secret,
            )?),
            None => None,
        };
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        lock_team(&tx, &self.inner.team, &self.inner.key).await?;
        tx.execute(
            "DELETE FROM authdeck.pending_authorizations WHERE team_id = $1::text::uuid AND expires_at < $2",
            &[&self.inner.team, &purge_before],
        )
        .await
        .map_err(db_error)?;
        tx.execute(
            "INSERT INTO authdeck.pending_authorizations (team_id, id, client_id, record, sealed, expires_at, machine)
             VALUES ($1::text::uuid, $2, $3, $4, $5, $6, $7)",
            &[&self.inner.team, &id, &client_id, record, &sealed, &expires_at, &self.inner.machine],
        )
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                Error::new(ErrorCode::AlreadyExists, "A pending authorization with this id exists already.")
            } else {
                db_error(e)
            }
        })?;
        tx.commit().await.map_err(db_error)?;
        Ok(())
    }

    /// A pending authorization, used or not, expired or not (without its secret).
    pub async fn pending_by_id(&self, id: &str) -> Result<Option<PendingRow>> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                &format!(
                    "SELECT {PENDING_COLUMNS} FROM authdeck.pending_authorizations WHERE team_id = $1::text::uuid AND id = $2"
                ),
                &[&self.inner.team, &id],
            )
            .await
            .map_err(db_error)?;
        Ok(row.as_ref().map(pending_row))
    }

    /// Mark a pending authorization used at `now`: `true` for exactly one caller, on
    /// whichever desktop (one conditional UPDATE; a second waits for the first's row
    /// lock, then finds it used).
    pub async fn consume_pending(&self, id: &str, now: DateTime<Utc>) -> Result<bool> {
        let c = self.client().await?;
        let n = c
            .execute(
                "UPDATE authdeck.pending_authorizations SET consumed_at = $3
                  WHERE team_id = $1::text::uuid AND id = $2 AND consumed_at IS NULL",
                &[&self.inner.team, &id, &now],
            )
            .await
            .map_err(db_error)?;
        Ok(n == 1)
    }

    /// How a used pending authorization ended (`ok`, an error code, `cancelled`).
    pub async fn set_pending_outcome(&self, id: &str, outcome: &str) -> Result<()> {
        let c = self.client().await?;
        c.execute(
            "UPDATE authdeck.pending_authorizations SET outcome = $3 WHERE team_id = $1::text::uuid AND id = $2",
            &[&self.inner.team, &id, &outcome],
        )
        .await
        .map_err(db_error)?;
        Ok(())
    }

    /// A pending authorization's secret, opened and removed from the row (used once).
    /// Nothing is removed when it does not open.
    pub async fn take_pending_secret(&self, id: &str) -> Result<Option<Zeroizing<Vec<u8>>>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        let row = tx
            .query_opt(
                "SELECT sealed FROM authdeck.pending_authorizations
                  WHERE team_id = $1::text::uuid AND id = $2 AND sealed IS NOT NULL FOR UPDATE",
                &[&self.inner.team, &id],
            )
            .await
            .map_err(db_error)?;
        let Some(row) = row else { return Ok(None) };
        let sealed: Vec<u8> = row.get(0);
        let secret = self.inner.key.open(
            &Scope::Pending {
                team: &self.inner.team,
                pending: id,
            },
            &sealed,
        )?;
        tx.execute(
            "UPDATE authdeck.pending_authorizations SET sealed = NULL WHERE team_id = $1::text::uuid AND id = $2",
            &[&self.inner.team, &id],
        )
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(Some(secret))
    }
}
