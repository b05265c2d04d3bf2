//! Pending authorizations: an OAuth code flow one member started.

use super::*;

impl TeamStore {
    /// Store a pending authorization (`secret`: the PKCE verifier etc., sealed here).
    /// [`TeamStore::insert_pending`] with a secret, purging nothing (no authorization
    /// expired before 1970).
    pub async fn put_pending(
        &self,
        id: &str,
        client_id: &str,
        record: &Value,
        secret: &[u8],
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        self.insert_pending(
            id,
            client_id,
            record,
            Some(secret),
            expires_at,
            DateTime::<Utc>::UNIX_EPOCH,
        )
        .await
    }

    /// Take a pending authorization: delete and return it in one statement, so one
    /// callback consumes it exactly once, whichever desktop it reaches. Expired ones are
    /// not returned.
    pub async fn take_pending(&self, id: &str) -> Result<Option<(PendingRow, Zeroizing<Vec<u8>>)>> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                "DELETE FROM authdeck.pending_authorizations
                  WHERE team_id = $1::text::uuid AND id = $2
                  RETURNING id, client_id, record, expires_at, created_by, machine, consumed_at, outcome, sealed, expires_at > now()",
                &[&self.inner.team, &id],
            )
            .await
            .map_err(db_error)?;
        let Some(r) = row else { return Ok(None) };
        if !r.get::<_, bool>(9) {
            return Ok(None);
        }
        // Since schema 2 the secret is optional (a pending authorization without PKCE).
        let secret = match r.get::<_, Option<Vec<u8>>>(8) {
            Some(sealed) => self.inner.key.open(
                &Scope::Pending {
                    team: &self.inner.team,
                    pending: id,
                },
                &sealed,
            )?,
            None => Zeroizing::new(Vec::new()),
        };
        Ok(Some((pending_row(&r), secret)))
    }

    /// The pending authorizations not yet expired (without their secrets).
    pub async fn pending(&self) -> Result<Vec<PendingRow>> {
        let c = self.client().await?;
        let rows = c
            .query(
                &format!(
                    "SELECT {PENDING_COLUMNS} FROM authdeck.pending_authorizations
                  WHERE team_id = $1::text::uuid AND expires_at > now() ORDER BY created_at"
                ),
                &[&self.inner.team],
            )
            .await
            .map_err(db_error)?;
        Ok(rows.iter().map(pending_row).collect())
    }

    /// Delete expired pending authorizations; how many.
    pub async fn purge_expired_pending(&self) -> Result<u64> {
        let c = self.client().await?;
        c.execute(
            "DELETE FROM authdeck.pending_authorizations WHERE team_id = $1::text::uuid AND expires_at <= now()",
            &[&self.inner.team],
        )
        .await
        .map_err(db_error)
    }
}
