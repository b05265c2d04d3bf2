//! `team import`: move a data directory's local connections (with their clients, child
//! secrets and history) into the team store it joined (issue 13 §5).
//!
//! Per connection, under its local lock (a local refresh cannot run meanwhile, so the
//! copy cannot fork): settle it (an interrupted local commit is completed first), read
//! its tokens and child secret, insert it into the team in one transaction with its
//! history, and only then remove the local copy. A kill at any point loses nothing:
//! - before the team commit, the local copy is untouched (the next run imports it);
//! - after it, the next run finds the connection in the team under the same id and
//!   finishes the move: it removes the local copy, after storing the local tokens in the
//!   team first if they are newer (a local refresh between the two runs);
//! - a business the team holds under another id (connected from another desktop) is
//!   reported and kept locally, never copied twice.
//!
//! Journalled answers of local refreshes that died (`authdeck_core::journal`) are
//! adopted into the local store before anything is read, or the import would carry a
//! refresh token the provider already replaced.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use authdeck_core::crash::crash_point;
use authdeck_core::manager::{LocalParts, Manager, ManagerOptions};
use authdeck_core::model::{Client, Connection, Provider};
use authdeck_core::store::backend::Backend;
use authdeck_core::store::vault::TokenBundle;
use authdeck_core::store::{CommitOutcome, LocalBackend, OrphanProbe};
use authdeck_core::{Error, ErrorCode, Result};
use serde::Serialize;

use crate::backend::records::{capped_detail, connection_record, history_count, tokens_to_bytes};
use crate::backend::TeamBackend;
use crate::store::{HistoryEvent, HistoryLine, NewConnection};

/// What happened to one local connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Moved {
    /// Copied into the team; the local copy is removed.
    Imported,
    /// An interrupted import had copied it already: the local copy is removed now (its
    /// tokens stored in the team first when a local refresh had renewed them since).
    Finished,
    /// The team holds this business / project / account already (connected from another
    /// desktop, under another id): nothing copied, the local copy kept.
    AlreadyInTeam,
    /// Not moved (see `error`); the local copy is untouched. Run the import again.
    Failed,
}

/// One line of the import's report. Never carries a secret.
#[derive(Debug, Clone, Serialize)]
pub struct ImportLine {
    pub id: String,
    pub label: String,
    pub provider: Provider,
    pub outcome: Moved,
    /// The team's connection of the same business, for [`Moved::AlreadyInTeam`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team_connection: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Error>,
}

/// What the import did, in total.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportSummary {
    /// Local clients copied into the team.
    pub clients_copied: usize,
    /// Local clients the team had already (same id, or same provider, app id and token
    /// URL): their connections went to the team's client.
    pub clients_matched: usize,
    pub imported: usize,
    pub finished: usize,
    pub already_in_team: usize,
    pub failed: usize,
    pub connections: Vec<ImportLine>,
}

/// The local store of a data directory, opened for an import (see
/// `Manager::open_local_parts`).
pub struct LocalStore {
    backend: LocalBackend,
    parts: LocalParts,
    manager: Manager,
}

impl LocalStore {
    pub fn new(parts: LocalParts, options: ManagerOptions) -> Result<Self> {
        let backend = parts.backend(options.clock.clone());
        let manager = Manager::with_backend(Arc::new(backend.clone()), parts.clone(), options)?;
        Ok(Self {
            backend,
            parts,
            manager,
        })
    }

    async fn natural_key(&self, id: &str) -> Result<Option<String>> {
        let db = self.parts.db.clone();
        let id = id.to_owned();
        tokio::task::spawn_blocking(move || db.natural_key(&id))
            .await
            .map_err(|_| Error::internal("A database call panicked."))?
    }
}

/// A local client's counterpart in the team: same provider, app id and token URL.
fn same_app(a: &Client, b: &Client) -> bool {
    a.provider == b.provider
        && a.client_id == b.client_id
        && a.endpoints.token_url == b.endpoints.token_url
}

/// Move every local connection of `local` into `team`; `progress` hears each line as
/// it is done. `Err` only when nothing could start (the team or the local store not
/// readable); one connection's failure is its line's.
pub async fn import(
    local: &LocalStore,
    team: &TeamBackend,
    mut progress: impl FnMut(&ImportLine),
) -> Result<ImportSummary> {
    let mut summary = ImportSummary::default();
    let locals = local.backend.connections().await?;
    // Answers a dead local refresh journalled are committed locally first.
    let ids: HashSet<String> = locals.iter().map(|c| c.id.clone()).collect();
    let held_back = local.manager.adopt_journalled(&ids).await;

    let clients = copy_clients(local, team, &mut summary).await?;
    for (n, conn) in locals.iter().enumerate() {
        if n > 0 {
            crash_point("import_between_connections");
        }
        let line = if held_back.contains(&conn.id) {
            failed(conn, Error::new(
                ErrorCode::KeyringUnavailable,
                "Refreshed tokens of this connection from an interrupted run are not saved yet: unlock the keyring and import again.",
            ))
        } else {
            match clients.get(&conn.client_key) {
                Some(client) => match move_one(local, team, conn, client).await {
                    Ok(line) => line,
                    Err(e) => failed(conn, e),
                },
                None => failed(
                    conn,
                    Error::not_found("Its client could not be copied into the team."),
                ),
            }
        };
        match line.outcome {
            Moved::Imported => summary.imported += 1,
            Moved::Finished => summary.finished += 1,
            Moved::AlreadyInTeam => summary.already_in_team += 1,
            Moved::Failed => summary.failed += 1,
        }
        progress(&line);
        summary.connections.push(line);
    }
    // A client is moved once none of its connections is left here.
    for client in local.backend.clients().await? {
        if clients.contains_key(&client.id)
            && local
                .backend
                .connection_count_for_client(&client.id)
                .await?
                == 0
        {
            local.backend.remove_client(&client).await?;
        }
    }
    Ok(summary)
}

fn failed(conn: &Connection, e: Error) -> ImportLine {
    ImportLine {
        id: conn.id.clone(),
        label: conn.label.clone(),
        provider: conn.provider,
        outcome: Moved::Failed,
        team_connection: None,
        error: Some(e),
    }
}

/// Every local client's team client (by local id): the team's own when it has the same
/// id or the same app, else a copy with its secret (renamed when the team uses its name).
async fn copy_clients(
    local: &LocalStore,
    team: &TeamBackend,
    summary: &mut ImportSummary,
) -> Result<HashMap<String, Client>> {
    let mut map = HashMap::new();
    let mut in_team = team.clients().await?;
    for client in local.backend.clients().await? {
        let found = in_team
            .iter()
            .find(|t| t.id == client.id)
            .or_else(|| in_team.iter().find(|t| same_app(t, &client)))
            .cloned();
        if let Some(t) = found {
            summary.clients_matched += 1;
            map.insert(client.id.clone(), t);
            continue;
        }
        let secret = match client.has_secret {
            true => Some(local.backend.client_secret(&client).await?),
            false => None,
        };
        let mut copy = client.clone();
        if in_team.iter().any(|t| t.name == copy.name) {
            copy.name = format!("{} ({})", client.name, team.store().machine());
        }
        team.insert_client(&copy, secret.as_ref()).await?;
        summary.clients_copied += 1;
        in_team.push(copy.clone());
        map.insert(client.id.clone(), copy);
    }
    Ok(map)
}

fn same_tokens(a: &TokenBundle, b: &TokenBundle) -> bool {
    a.access_token.expose() == b.access_token.expose()
        && a.refresh_token.as_ref().map(|t| t.expose())
            == b.refresh_token.as_ref().map(|t| t.expose())
}

/// One connection, under its local lock.
async fn move_one(
    local: &LocalStore,
    team: &TeamBackend,
    seen: &Connection,
    client: &Client,
) -> Result<ImportLine> {
    let _lease = local.backend.lock(&seen.id).await?;
    // Re-read under the lock; an interrupted local commit is completed first.
    let conn = match local.backend.settle(&seen.id, OrphanProbe::Always).await {
        Ok(settled) => settled.connection,
        Err(e) if e.code == ErrorCode::NotFound => {
            return Err(Error::not_found(
                "Removed locally meanwhile: nothing to move.",
            ))
        }
        Err(e) => return Err(e),
    };
    let line = |outcome, team_connection| ImportLine {
        id: conn.id.clone(),
        label: conn.label.clone(),
        provider: conn.provider,
        outcome,
        team_connection,
        error: None,
    };
    let tokens = local.backend.tokens(&conn).await?.ok_or_else(|| {
        Error::new(
            ErrorCode::ReauthorizationRequired,
            format!(
                "The tokens of {} are missing from the system keyring: connect it again in the team instead.",
                conn.label
            ),
        )
    })?;
    let natural_key = local
        .natural_key(&conn.id)
        .await?
        .ok_or_else(|| Error::not_found("Removed locally meanwhile: nothing to move."))?;

    // Moved by an interrupted run already?
    match team.settle(&conn.id, OrphanProbe::MarkedOnly).await {
        Ok(_) => {
            finish(local, team, &conn, &tokens).await?;
            return Ok(line(Moved::Finished, None));
        }
        Err(e) if e.code == ErrorCode::NotFound => {}
        Err(e) => return Err(e),
    }
    if let Some(other) = team
        .connection_by_natural_key(&client.id, &natural_key)
        .await?
    {
        return Ok(line(Moved::AlreadyInTeam, Some(other.id)));
    }

    let child = local.backend.child_secret(&conn.id).await?;
    let mut copy = conn.clone();
    copy.client_key = client.id.clone();
    copy.client_name = client.name.clone();
    copy.secret_generation = 1;
    copy.token_set = None;
    copy.pending_generation = None;
    let record = connection_record(&copy)?;
    let bytes = tokens_to_bytes(&tokens)?;
    // Its history, oldest first, in the same transaction.
    let mut history = local.backend.history(Some(&conn.id), usize::MAX).await?;
    history.reverse();
    let details: Vec<_> = history
        .iter()
        .map(|h| capped_detail(h.detail.as_deref()))
        .collect();
    let lines: Vec<HistoryLine<'_>> = history
        .iter()
        .zip(&details)
        .map(|(h, detail)| HistoryLine {
            connection_id: Some(&copy.id),
            client_id: Some(&copy.client_key),
            at: h.at,
            event: &h.event,
            outcome: &h.outcome,
            detail: detail.as_deref(),
            count: history_count(h),
        })
        .collect();
    let note = format!("moved from the local store of {}", team.store().machine());
    crash_point("import_before_team_insert");
    team.store()
        .insert_imported_connection(
            &NewConnection {
                id: &copy.id,
                client_id: &copy.client_key,
                natural_key: Some(&natural_key),
                record: &record,
                generation: copy.secret_generation,
                token_set: &bytes,
                child_secret: child.as_ref().map(|c| c.expose().as_bytes()),
                history: Some(HistoryEvent {
                    connection_id: Some(&copy.id),
                    client_id: Some(&copy.client_key),
                    event: "import",
                    outcome: "ok",
                    detail: Some(&note),
                }),
            },
            &lines,
        )
        .await?;
    crash_point("import_after_team_commit");
    remove_local(local, &conn).await?;
    Ok(line(Moved::Imported, None))
}

/// The team has `conn` under its id (an interrupted import): keep the newer tokens,
/// then remove the local copy.
async fn finish(
    local: &LocalStore,
    team: &TeamBackend,
    conn: &Connection,
    tokens: &TokenBundle,
) -> Result<()> {
    let _lease = team.lock(&conn.id).await?;
    let stored = team
        .settle(&conn.id, OrphanProbe::MarkedOnly)
        .await?
        .connection;
    let theirs = team.tokens(&stored).await?;
    if !theirs.as_ref().is_some_and(|t| same_tokens(t, tokens)) {
        if stored.secret_generation != 1 {
            // Refreshed in the team and here since the copy: the two copies forked.
            return Err(Error::new(
                ErrorCode::AlreadyExists,
                format!(
                    "{} was refreshed both in the team and on this desktop since an interrupted import copied it: the local copy is kept; check which one the provider still accepts.",
                    conn.label
                ),
            ));
        }
        // Refreshed here after the copy (between two runs): the local tokens are newer.
        let mut next = conn.clone();
        next.client_key = stored.client_key.clone();
        next.client_name = stored.client_name.clone();
        next.token_set = None;
        next.pending_generation = None;
        if let CommitOutcome::Superseded = team.commit(&stored, &next, tokens).await? {
            return Err(Error::new(
                ErrorCode::Busy,
                "The team's copy changed meanwhile: import again.",
            ));
        }
    }
    remove_local(local, conn).await
}

async fn remove_local(local: &LocalStore, conn: &Connection) -> Result<()> {
    local.backend.remove_connection(conn).await?;
    local.backend.forget_lock(&conn.id);
    Ok(())
}
