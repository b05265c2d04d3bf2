//! Key rotation: a new team key, everything re-sealed under it.

use super::*;

impl TeamStore {
    /// `team rotate-key`: a new team key (next epoch); every sealed secret of the team
    /// (client secrets, token sets, child secrets, pending authorizations) is opened with the old key and
    /// sealed with the new one, and the key check value replaced, in one transaction.
    /// After the commit the old key opens nothing and writes nothing (writers check the
    /// epoch under the team row lock). Returns the store on the new key and its join key.
    pub async fn rotate_key(&self) -> Result<(TeamStore, JoinKey)> {
        let team = self.inner.team.as_str();
        let old = &self.inner.key;
        let new = TeamKey::generate(old.epoch() + 1)?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db_error)?;
        lock_team(&tx, team, old).await?;
        let clients = tx
            .query(
                "SELECT id, secret FROM authdeck.clients WHERE team_id = $1::text::uuid AND secret IS NOT NULL",
                &[&team],
            )
            .await
            .map_err(db_error)?;
        for r in &clients {
            let id: String = r.get(0);
            let sealed: Vec<u8> = r.get(1);
            let scope = Scope::ClientSecret { team, client: &id };
            let resealed = new.seal(&scope, &old.open(&scope, &sealed)?)?;
            tx.execute(
                "UPDATE authdeck.clients SET secret = $3 WHERE team_id = $1::text::uuid AND id = $2",
                &[&team, &id, &resealed],
            )
            .await
            .map_err(db_error)?;
        }
        let sets = tx
            .query(
                "SELECT connection_id, generation, sealed FROM authdeck.token_sets WHERE team_id = $1::text::uuid",
                &[&team],
            )
            .await
            .map_err(db_error)?;
        for r in &sets {
            let id: String = r.get(0);
            let generation: i64 = r.get(1);
            let sealed: Vec<u8> = r.get(2);
            let scope = Scope::TokenSet {
                team,
                connection: &id,
                generation,
            };
            let resealed = new.seal(&scope, &old.open(&scope, &sealed)?)?;
            tx.execute(
                "UPDATE authdeck.token_sets SET sealed = $4
                  WHERE team_id = $1::text::uuid AND connection_id = $2 AND generation = $3",
                &[&team, &id, &generation, &resealed],
            )
            .await
            .map_err(db_error)?;
        }
        let pending = tx
            .query(
                "SELECT id, sealed FROM authdeck.pending_authorizations WHERE team_id = $1::text::uuid AND sealed IS NOT NULL",
                &[&team],
            )
            .await
            .map_err(db_error)?;
        for r in &pending {
            let id: String = r.get(0);
            let sealed: Vec<u8> = r.get(1);
            let scope = Scope::Pending { team, pending: &id };
            let resealed = new.seal(&scope, &old.open(&scope, &sealed)?)?;
            tx.execute(
                "UPDATE authdeck.pending_authorizations SET sealed = $3 WHERE team_id = $1::text::uuid AND id = $2",
                &[&team, &id, &resealed],
            )
            .await
            .map_err(db_error)?;
        }
        let children = tx
            .query(
                "SELECT connection_id, sealed FROM authdeck.child_secrets WHERE team_id = $1::text::uuid",
                &[&team],
            )
            .await
            .map_err(db_error)?;
        for r in &children {
            let id: String = r.get(0);
            let sealed: Vec<u8> = r.get(1);
            let scope = Scope::ChildSecret {
                team,
                connection: &id,
            };
            let resealed = new.seal(&scope, &old.open(&scope, &sealed)?)?;
            tx.execute(
                "UPDATE authdeck.child_secrets SET sealed = $3 WHERE team_id = $1::text::uuid AND connection_id = $2",
                &[&team, &id, &resealed],
            )
            .await
            .map_err(db_error)?;
        }
        let check = new.check_value(team)?;
        tx.execute(
            "UPDATE authdeck.teams SET key_epoch = $2, key_check = $3 WHERE id = $1::text::uuid",
            &[&team, &(new.epoch() as i32), &check],
        )
        .await
        .map_err(db_error)?;
        tx.execute(
            "INSERT INTO authdeck.history (team_id, event, outcome, detail, machine, via)
             VALUES ($1::text::uuid, 'rotate_key', 'ok', $2, $3, $4)",
            &[
                &team,
                &format!("key epoch {}", new.epoch()),
                &self.inner.machine,
                &self.inner.via.as_str(),
            ],
        )
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        let join = JoinKey::encode(team, &new)?;
        let store = TeamStore::open(
            &self.inner.db,
            team,
            new,
            &self.inner.machine,
            self.inner.via,
        )
        .await?;
        Ok((store, join))
    }
}
