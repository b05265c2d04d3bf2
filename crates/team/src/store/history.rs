//! History: the lines members' changes leave.

use super::*;

impl TeamStore {
    pub async fn record_history(&self, h: &HistoryEvent<'_>) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        self.history_in(&tx, h).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(())
    }

    /// Newest first; one connection's, or the whole team's.
    pub async fn history(
        &self,
        connection_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<HistoryRow>> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT id, connection_id, client_id, at, event, outcome, detail, member, machine, via, count
                   FROM authdeck.history
                  WHERE team_id = $1::text::uuid AND ($2::text IS NULL OR connection_id = $2)
                  ORDER BY id DESC LIMIT $3",
                &[&self.inner.team, &connection_id, &limit],
            )
            .await
            .map_err(db_error)?;
        Ok(rows
            .iter()
            .map(|r| HistoryRow {
                id: r.get(0),
                connection_id: r.get(1),
                client_id: r.get(2),
                at: r.get(3),
                event: r.get(4),
                outcome: r.get(5),
                detail: r.get(6),
                member: r.get(7),
                machine: r.get(8),
                via: r.get(9),
                count: r.get(10),
            })
            .collect())
    }
}
