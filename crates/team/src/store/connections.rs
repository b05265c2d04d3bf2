//! Connections: their rows, token sets and the compare-and-swap commit.

use super::*;

impl TeamStore {
    /// A new connection at generation 1 with its first token set, in one transaction.
    pub async fn insert_connection(
        &self,
        id: &str,
        client_id: &str,
        record: &Value,
        token_set: &[u8],
        history: Option<HistoryEvent<'_>>,
    ) -> Result<ConnectionRow> {
        self.insert_new_connection(&NewConnection {
            id,
            client_id,
            natural_key: None,
            record,
            generation: 1,
            token_set,
            child_secret: None,
            history,
        })
        .await
    }

    /// A new connection with its first token set and (FedEx) child secret, all in one
    /// transaction: all or nothing. `already_exists` for a live connection with the same
    /// id, or with the same client and natural key.
    pub async fn insert_new_connection(&self, new: &NewConnection<'_>) -> Result<ConnectionRow> {
        self.insert_imported_connection(new, &[]).await
    }

    /// [`Self::insert_new_connection`] with the history it had elsewhere (`team import`:
    /// the local store's lines, each with its own time), in the same transaction.
    pub async fn insert_imported_connection(
        &self,
        new: &NewConnection<'_>,
        lines: &[HistoryLine<'_>],
    ) -> Result<ConnectionRow> {
        let team = self.inner.team.as_str();
        let sealed = self.inner.key.seal(
            &Scope::TokenSet {
                team,
                connection: new.id,
                generation: new.generation,
            },
            new.token_set,
        )?;
        let child = match new.child_secret {
            Some(secret) => Some(self.inner.key.seal(
                &Scope::ChildSecret {
                    team,
                    connection: new.id,
                },
                secret,
            )?),
            None => None,
        };
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        lock_team(&tx, team, &self.inner.key).await?;
        // The foreign key accepts a removed client's tombstone: refuse that here.
        let live_client = tx
            .query_opt(
                "SELECT 1 FROM authdeck.clients WHERE team_id = $1::text::uuid AND id = $2 AND NOT deleted",
                &[&team, &new.client_id],
            )
            .await
            .map_err(db_error)?;
        if live_client.is_none() {
            return Err(Error::not_found("No such client in this team."));
        }
        let sql = format!(
            "INSERT INTO authdeck.connections (team_id, id, client_id, record, generation, natural_key, created_on, updated_on)
             VALUES ($1::text::uuid, $2, $3, $4, $5, $6, $7, $7) RETURNING {CONNECTION_COLUMNS}"
        );
        let row = tx
            .query_one(
                &sql,
                &[
                    &team,
                    &new.id,
                    &new.client_id,
                    new.record,
                    &new.generation,
                    &new.natural_key,
                    &self.inner.machine,
                ],
            )
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    let by_key = e
                        .as_db_error()
                        .and_then(|d| d.constraint())
                        .is_some_and(|c| c == "connections_natural_key");
                    Error::new(
                        ErrorCode::AlreadyExists,
                        if by_key {
                            "This business / account is connected already (maybe from another desktop): reconnect it instead."
                        } else {
                            "A connection with this id exists already."
                        },
                    )
                } else if e.code() == Some(&tokio_postgres::error::SqlState::FOREIGN_KEY_VIOLATION)
                {
                    Error::not_found("No such client in this team.")
                } else {
                    db_error(e)
                }
            })?;
        tx.execute(
            "INSERT INTO authdeck.token_sets (team_id, connection_id, generation, sealed) VALUES ($1::text::uuid, $2, $3, $4)",
            &[&team, &new.id, &new.generation, &sealed],
        )
        .await
        .map_err(db_error)?;
        if let Some(child) = &child {
            tx.execute(
                "INSERT INTO authdeck.child_secrets (team_id, connection_id, sealed) VALUES ($1::text::uuid, $2, $3)",
                &[&team, &new.id, child],
            )
            .await
            .map_err(db_error)?;
        }
        for line in lines {
            self.line_in(&tx, line, None).await?;
        }
        if let Some(h) = &new.history {
            self.history_in(&tx, h).await?;
        }
        tx.commit().await.map_err(db_error)?;
        Ok(connection_row(&row))
    }

    pub async fn connection(&self, id: &str) -> Result<Option<ConnectionRow>> {
        let c = self.client().await?;
        let sql = format!(
            "SELECT {CONNECTION_COLUMNS} FROM authdeck.connections WHERE team_id = $1::text::uuid AND id = $2 AND NOT deleted"
        );
        let row = c
            .query_opt(&sql, &[&self.inner.team, &id])
            .await
            .map_err(db_error)?;
        Ok(row.as_ref().map(connection_row))
    }

    pub async fn connections(&self) -> Result<Vec<ConnectionRow>> {
        let c = self.client().await?;
        let sql = format!(
            "SELECT {CONNECTION_COLUMNS} FROM authdeck.connections WHERE team_id = $1::text::uuid AND NOT deleted ORDER BY id"
        );
        let rows = c.query(&sql, &[&self.inner.team]).await.map_err(db_error)?;
        Ok(rows.iter().map(connection_row).collect())
    }

    /// The current token set and its generation, opened.
    pub async fn token_set(&self, id: &str) -> Result<Option<(i64, Zeroizing<Vec<u8>>)>> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                "SELECT c.generation, t.sealed FROM authdeck.connections c
                   JOIN authdeck.token_sets t
                     ON t.team_id = c.team_id AND t.connection_id = c.id AND t.generation = c.generation
                  WHERE c.team_id = $1::text::uuid AND c.id = $2 AND NOT c.deleted",
                &[&self.inner.team, &id],
            )
            .await
            .map_err(db_error)?;
        let Some(row) = row else { return Ok(None) };
        let generation: i64 = row.get(0);
        let sealed: Vec<u8> = row.get(1);
        let plain = self.open_token_set(id, generation, &sealed)?;
        Ok(Some((generation, plain)))
    }

    pub(crate) fn open_token_set(
        &self,
        id: &str,
        generation: i64,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        self.inner.key.open(
            &Scope::TokenSet {
                team: &self.inner.team,
                connection: id,
                generation,
            },
            sealed,
        )
    }

    /// Change a connection's non-secret record (label, status, last error…) without
    /// touching its generation or token set.
    pub async fn update_record(&self, id: &str, record: &Value) -> Result<i64> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        lock_team(&tx, &self.inner.team, &self.inner.key).await?;
        let row = tx
            .query_opt(
                "UPDATE authdeck.connections SET record = $3, updated_on = $4
                  WHERE team_id = $1::text::uuid AND id = $2 AND NOT deleted RETURNING version",
                &[&self.inner.team, &id, record, &self.inner.machine],
            )
            .await
            .map_err(db_error)?
            .ok_or_else(|| Error::not_found("No such connection."))?;
        tx.commit().await.map_err(db_error)?;
        Ok(row.get(0))
    }

    /// Commit a new token set: one transaction, compare and swap on the generation.
    ///
    /// An `Err` with code `team_unavailable` from the COMMIT itself leaves the outcome
    /// unknown (the server may have committed before the session broke): re-read the
    /// connection; generation `expected + 1` means this commit landed (only the lock
    /// holder commits).
    pub async fn commit(&self, req: &CommitRequest<'_>) -> Result<CommitOutcome> {
        let next = req.expected_generation + 1;
        let sealed = self.inner.key.seal(
            &Scope::TokenSet {
                team: &self.inner.team,
                connection: req.connection_id,
                generation: next,
            },
            req.token_set,
        )?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        lock_team(&tx, &self.inner.team, &self.inner.key).await?;
        let won = tx
            .query_opt(
                "UPDATE authdeck.connections
                    SET generation = $4, record = $5, updated_on = $6,
                        last_refresh_at = CASE WHEN $7 THEN now() ELSE last_refresh_at END,
                        last_refresh_by = CASE WHEN $7 THEN current_user ELSE last_refresh_by END,
                        last_refresh_on = CASE WHEN $7 THEN $6 ELSE last_refresh_on END
                  WHERE team_id = $1::text::uuid AND id = $2 AND generation = $3 AND NOT deleted
                  RETURNING version",
                &[
                    &self.inner.team,
                    &req.connection_id,
                    &req.expected_generation,
                    &next,
                    req.record,
                    &self.inner.machine,
                    &req.refreshed,
                ],
            )
            .await
            .map_err(db_error)?;
        let Some(won) = won else {
            let current = tx
                .query_opt(
                    "SELECT generation FROM authdeck.connections WHERE team_id = $1::text::uuid AND id = $2 AND NOT deleted",
                    &[&self.inner.team, &req.connection_id],
                )
                .await
                .map_err(db_error)?
                .map(|r| r.get(0));
            tx.rollback().await.map_err(db_error)?;
            return Ok(CommitOutcome::Lost { current });
        };
        // The old token set out, and the in-flight mark of the call this commit saves
        // (see `RefreshLock::begin_call`) with it: one statement.
        tx.execute(
            "WITH unmark AS (
                 DELETE FROM authdeck.calls_in_flight WHERE team_id = $1::text::uuid AND connection_id = $2)
             DELETE FROM authdeck.token_sets WHERE team_id = $1::text::uuid AND connection_id = $2",
            &[&self.inner.team, &req.connection_id],
        )
        .await
        .map_err(db_error)?;
        tx.execute(
            "INSERT INTO authdeck.token_sets (team_id, connection_id, generation, sealed) VALUES ($1::text::uuid, $2, $3, $4)",
            &[&self.inner.team, &req.connection_id, &next, &sealed],
        )
        .await
        .map_err(db_error)?;
        if let Some(h) = &req.history {
            self.history_in(&tx, h).await?;
        }
        tx.commit().await.map_err(db_error)?;
        Ok(CommitOutcome::Won {
            generation: next,
            version: won.get(0),
        })
    }

    /// Many commits in one transaction (a batch refresh): one outcome per request, in
    /// order, each exactly what [`TeamStore::commit`] would have done on its own (a
    /// request for a connection an earlier one of the batch switched loses). One
    /// statement per request, pipelined: a batch costs about one round trip and one
    /// commit, not one per connection. Each request's `line` (if any) is recorded in the
    /// same transaction iff it won. An `Err` means nothing of the batch was written (or,
    /// `team_unavailable` from the COMMIT, that the outcome is unknown: re-read).
    pub async fn commit_many(
        &self,
        batch: &[(CommitRequest<'_>, Option<HistoryLine<'_>>)],
    ) -> Result<Vec<CommitOutcome>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let reqs: Vec<&CommitRequest<'_>> = batch.iter().map(|(req, _)| req).collect();
        let team = self.inner.team.as_str();
        let sealed = reqs
            .iter()
            .map(|req| {
                self.inner.key.seal(
                    &Scope::TokenSet {
                        team,
                        connection: req.connection_id,
                        generation: req.expected_generation + 1,
                    },
                    req.token_set,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        lock_team(&tx, team, &self.inner.key).await?;
        // The compare-and-swap, the old token set out and the new one in, and the
        // in-flight mark out, as one statement (the old and the new row differ in
        // generation, so both fit).
        let statement = tx
            .prepare(
                "WITH won AS (
                     UPDATE authdeck.connections
                        SET generation = $4, record = $5, updated_on = $6,
                            last_refresh_at = CASE WHEN $7 THEN now() ELSE last_refresh_at END,
                            last_refresh_by = CASE WHEN $7 THEN current_user ELSE last_refresh_by END,
                            last_refresh_on = CASE WHEN $7 THEN $6 ELSE last_refresh_on END
                      WHERE team_id = $1::text::uuid AND id = $2 AND generation = $3 AND NOT deleted
                      RETURNING version),
                 gone AS (
                     DELETE FROM authdeck.token_sets
                      WHERE team_id = $1::text::uuid AND connection_id = $2 AND EXISTS (SELECT 1 FROM won)),
                 put AS (
                     INSERT INTO authdeck.token_sets (team_id, connection_id, generation, sealed)
                     SELECT $1::text::uuid, $2, $4, $8 FROM won),
                 unmark AS (
                     DELETE FROM authdeck.calls_in_flight
                      WHERE team_id = $1::text::uuid AND connection_id = $2 AND EXISTS (SELECT 1 FROM won))
                 SELECT version FROM won",
            )
            .await
            .map_err(db_error)?;
        let nexts: Vec<i64> = reqs.iter().map(|r| r.expected_generation + 1).collect();
        type Param<'p> = &'p (dyn tokio_postgres::types::ToSql + Sync);
        let params: Vec<[Param<'_>; 8]> = reqs
            .iter()
            .zip(&sealed)
            .zip(&nexts)
            .map(|((req, sealed), next)| {
                [
                    &team as Param<'_>,
                    &req.connection_id,
                    &req.expected_generation,
                    next,
                    req.record,
                    &self.inner.machine,
                    &req.refreshed,
                    sealed,
                ]
            })
            .collect();
        let pipelined = params.iter().map(|p| tx.query_opt(&statement, p));
        let rows = futures_util::future::try_join_all(pipelined)
            .await
            .map_err(db_error)?;
        let mut outcomes = Vec::with_capacity(reqs.len());
        for (((req, line), row), next) in batch.iter().zip(&rows).zip(&nexts) {
            outcomes.push(match row {
                Some(row) => {
                    if let Some(h) = &req.history {
                        self.history_in(&tx, h).await?;
                    }
                    if let Some(line) = line {
                        self.line_in(&tx, line, None).await?;
                    }
                    CommitOutcome::Won {
                        generation: *next,
                        version: row.get(0),
                    }
                }
                None => {
                    let current = tx
                        .query_opt(
                            "SELECT generation FROM authdeck.connections WHERE team_id = $1::text::uuid AND id = $2 AND NOT deleted",
                            &[&team, &req.connection_id],
                        )
                        .await
                        .map_err(db_error)?
                        .map(|r| r.get(0));
                    CommitOutcome::Lost { current }
                }
            });
        }
        tx.commit().await.map_err(db_error)?;
        Ok(outcomes)
    }

    /// Remove a connection (logout): its token set and child secret go, the row stays as a tombstone
    /// with a new version so every desktop's feed sees it.
    pub async fn remove_connection(
        &self,
        id: &str,
        history: Option<HistoryEvent<'_>>,
    ) -> Result<i64> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        lock_team(&tx, &self.inner.team, &self.inner.key).await?;
        let row = tx
            .query_opt(
                "UPDATE authdeck.connections SET deleted = true, updated_on = $3
                  WHERE team_id = $1::text::uuid AND id = $2 AND NOT deleted RETURNING version",
                &[&self.inner.team, &id, &self.inner.machine],
            )
            .await
            .map_err(db_error)?
            .ok_or_else(|| Error::not_found("No such connection."))?;
        tx.execute(
            "DELETE FROM authdeck.token_sets WHERE team_id = $1::text::uuid AND connection_id = $2",
            &[&self.inner.team, &id],
        )
        .await
        .map_err(db_error)?;
        tx.execute(
            "DELETE FROM authdeck.child_secrets WHERE team_id = $1::text::uuid AND connection_id = $2",
            &[&self.inner.team, &id],
        )
        .await
        .map_err(db_error)?;
        if let Some(h) = history {
            self.history_in(&tx, &h).await?;
        }
        tx.commit().await.map_err(db_error)?;
        Ok(row.get(0))
    }
}
