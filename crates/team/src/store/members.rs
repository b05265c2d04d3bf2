//! Members seen (`authdeck.members_seen`) and the change feed.

use super::*;

impl TeamStore {
    /// Note this member + machine as seen now (`team status`).
    pub async fn seen(&self, app_version: &str) -> Result<()> {
        let c = self.client().await?;
        let kind = match self.inner.via {
            Via::Agent => "agent",
            Via::Desktop | Via::Cli => "desktop",
        };
        c.execute(
            "INSERT INTO authdeck.members_seen (team_id, machine, kind, app_version) VALUES ($1::text::uuid, $2, $3, $4)
             ON CONFLICT (team_id, member, machine, kind) DO UPDATE SET last_seen = now(), app_version = EXCLUDED.app_version",
            &[&self.inner.team, &self.inner.machine, &kind, &app_version],
        )
        .await
        .map_err(db_error)?;
        Ok(())
    }

    pub async fn members(&self) -> Result<Vec<MemberRow>> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT member, machine, kind, app_version, first_seen, last_seen FROM authdeck.members_seen
                  WHERE team_id = $1::text::uuid ORDER BY last_seen DESC",
                &[&self.inner.team],
            )
            .await
            .map_err(db_error)?;
        Ok(rows
            .iter()
            .map(|r| MemberRow {
                member: r.get(0),
                machine: r.get(1),
                kind: r.get(2),
                app_version: r.get(3),
                first_seen: r.get(4),
                last_seen: r.get(5),
            })
            .collect())
    }

    /// The team's last change version.
    pub async fn current_version(&self) -> Result<i64> {
        let c = self.client().await?;
        let row = c
            .query_one(
                "SELECT version FROM authdeck.teams WHERE id = $1::text::uuid",
                &[&self.inner.team],
            )
            .await
            .map_err(db_error)?;
        Ok(row.get(0))
    }

    /// Every client and connection changed after `version` (tombstones included), in
    /// version order.
    pub async fn changes_since(&self, version: i64) -> Result<Vec<crate::Change>> {
        let c = self.client().await?;
        changes_since(&c, &self.inner.team, version).await
    }
}
