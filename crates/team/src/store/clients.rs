//! Clients: the shared client rows and their sealed secrets.

use super::*;

impl TeamStore {
    /// A client's secret sealed for this team and client (a ciphertext moved to another
    /// client does not open).
    pub(super) fn seal_client_secret(
        &self,
        id: &str,
        secret: Option<&[u8]>,
    ) -> Result<Option<Vec<u8>>> {
        let scope = Scope::ClientSecret {
            team: &self.inner.team,
            client: id,
        };
        secret.map(|s| self.inner.key.seal(&scope, s)).transpose()
    }

    /// Insert or replace a client (`secret`: `None` keeps no secret).
    pub async fn put_client(&self, id: &str, record: &Value, secret: Option<&[u8]>) -> Result<i64> {
        let sealed = self.seal_client_secret(id, secret)?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        lock_team(&tx, &self.inner.team, &self.inner.key).await?;
        let row = tx
            .query_one(
                "INSERT INTO authdeck.clients (team_id, id, record, secret) VALUES ($1::text::uuid, $2, $3, $4)
                 ON CONFLICT (team_id, id) DO UPDATE SET record = EXCLUDED.record, secret = EXCLUDED.secret, deleted = false
                 RETURNING version",
                &[&self.inner.team, &id, record, &sealed],
            )
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(row.get(0))
    }

    pub async fn client_row(&self, id: &str) -> Result<Option<ClientRow>> {
        let c = self.client().await?;
        let sql = format!(
            "SELECT {CLIENT_COLUMNS} FROM authdeck.clients WHERE team_id = $1::text::uuid AND id = $2 AND NOT deleted"
        );
        let row = c
            .query_opt(&sql, &[&self.inner.team, &id])
            .await
            .map_err(db_error)?;
        Ok(row.as_ref().map(client_row))
    }

    pub async fn clients(&self) -> Result<Vec<ClientRow>> {
        let c = self.client().await?;
        let sql = format!(
            "SELECT {CLIENT_COLUMNS} FROM authdeck.clients WHERE team_id = $1::text::uuid AND NOT deleted ORDER BY id"
        );
        let rows = c.query(&sql, &[&self.inner.team]).await.map_err(db_error)?;
        Ok(rows.iter().map(client_row).collect())
    }

    /// A client's secret, opened.
    pub async fn client_secret(&self, id: &str) -> Result<Option<Zeroizing<Vec<u8>>>> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                "SELECT secret FROM authdeck.clients WHERE team_id = $1::text::uuid AND id = $2 AND NOT deleted",
                &[&self.inner.team, &id],
            )
            .await
            .map_err(db_error)?;
        let Some(sealed) = row.and_then(|r| r.get::<_, Option<Vec<u8>>>(0)) else {
            return Ok(None);
        };
        self.inner
            .key
            .open(
                &Scope::ClientSecret {
                    team: &self.inner.team,
                    client: id,
                },
                &sealed,
            )
            .map(Some)
    }

    /// Remove a client (soft: a tombstone with a new version). Refused while live
    /// connections use it.
    pub async fn remove_client(&self, id: &str) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        lock_team(&tx, &self.inner.team, &self.inner.key).await?;
        let used: i64 = tx
            .query_one(
                "SELECT count(*) FROM authdeck.connections WHERE team_id = $1::text::uuid AND client_id = $2 AND NOT deleted",
                &[&self.inner.team, &id],
            )
            .await
            .map_err(db_error)?
            .get(0);
        if used > 0 {
            return Err(Error::invalid_input(format!(
                "This client still has {used} connection(s): remove them first."
            )));
        }
        let n = tx
            .execute(
                "UPDATE authdeck.clients SET deleted = true, secret = NULL WHERE team_id = $1::text::uuid AND id = $2 AND NOT deleted",
                &[&self.inner.team, &id],
            )
            .await
            .map_err(db_error)?;
        if n == 0 {
            return Err(Error::not_found("No such client."));
        }
        tx.commit().await.map_err(db_error)?;
        Ok(())
    }
}
