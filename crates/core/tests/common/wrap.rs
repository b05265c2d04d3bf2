//! A backend that passes every call to the backend under test, except the few a test
//! fakes through [`Hooks`] (a lock whose check says "lost", a scheduler's role).

use std::sync::Arc;

use async_trait::async_trait;
use authdeck_core::activity::ActivityEntry;
use authdeck_core::model::{Client, Connection, HistoryEntry};
use authdeck_core::scheduler::SchedulerRole;
use authdeck_core::store::backend::{
    Backend, BackendKind, CommitOutcome, Lease, OrphanProbe, Settled, StoreChange, TokenCommit,
    TokenPrefetch,
};
use authdeck_core::store::db::PendingRecord;
use authdeck_core::store::vault::TokenBundle;
use authdeck_core::{ChildSecret, ClientSecret, PkceVerifier, Result};
use chrono::{DateTime, Utc};

/// What a test fakes; each defaults to the backend under test's own answer.
#[async_trait]
pub trait Hooks: Send + Sync + 'static {
    async fn lock(&self, inner: &dyn Backend, connection_id: &str) -> Result<Lease> {
        inner.lock(connection_id).await
    }
    async fn scheduler_role(&self, inner: &dyn Backend) -> SchedulerRole {
        inner.scheduler_role().await
    }
}

/// `inner` with `hooks` in front.
pub struct Wrapped<H> {
    pub inner: Arc<dyn Backend>,
    pub hooks: H,
}

#[async_trait]
impl<H: Hooks> Backend for Wrapped<H> {
    async fn scheduler_role(&self) -> SchedulerRole {
        self.hooks.scheduler_role(self.inner.as_ref()).await
    }

    fn kind(&self) -> BackendKind {
        self.inner.kind()
    }
    async fn clients(&self) -> Result<Vec<Client>> {
        self.inner.clients().await
    }
    async fn client(&self, reference: &str) -> Result<Client> {
        self.inner.client(reference).await
    }
    async fn insert_client(&self, client: &Client, secret: Option<&ClientSecret>) -> Result<()> {
        self.inner.insert_client(client, secret).await
    }
    async fn update_client(&self, client: &Client) -> Result<()> {
        self.inner.update_client(client).await
    }
    async fn remove_client(&self, client: &Client) -> Result<()> {
        self.inner.remove_client(client).await
    }
    async fn client_secret(&self, client: &Client) -> Result<ClientSecret> {
        self.inner.client_secret(client).await
    }
    async fn connections(&self) -> Result<Vec<Connection>> {
        self.inner.connections().await
    }
    async fn connection(&self, reference: &str) -> Result<Connection> {
        self.inner.connection(reference).await
    }
    async fn connection_by_natural_key(
        &self,
        client_key: &str,
        natural_key: &str,
    ) -> Result<Option<Connection>> {
        self.inner
            .connection_by_natural_key(client_key, natural_key)
            .await
    }
    async fn connection_count_for_client(&self, client_key: &str) -> Result<usize> {
        self.inner.connection_count_for_client(client_key).await
    }
    async fn ensure_writable(&self) -> Result<()> {
        self.inner.ensure_writable().await
    }
    async fn tokens(&self, conn: &Connection) -> Result<Option<TokenBundle>> {
        self.inner.tokens(conn).await
    }
    fn prefetch(&self, connections: &[Connection]) -> Option<Arc<dyn TokenPrefetch>> {
        self.inner.prefetch(connections)
    }
    async fn insert_connection(
        &self,
        conn: &Connection,
        natural_key: &str,
        tokens: &TokenBundle,
        child: Option<&ChildSecret>,
    ) -> Result<()> {
        self.inner
            .insert_connection(conn, natural_key, tokens, child)
            .await
    }
    async fn commit(
        &self,
        old: &Connection,
        next: &Connection,
        tokens: &TokenBundle,
    ) -> Result<CommitOutcome> {
        self.inner.commit(old, next, tokens).await
    }
    async fn commit_many(&self, items: Vec<TokenCommit>) -> Vec<Result<CommitOutcome>> {
        self.inner.commit_many(items).await
    }
    async fn settle(&self, id: &str, probe: OrphanProbe) -> Result<Settled> {
        self.inner.settle(id, probe).await
    }
    async fn save_metadata(&self, conn: &Connection) -> Result<bool> {
        self.inner.save_metadata(conn).await
    }
    async fn remove_connection(&self, conn: &Connection) -> Result<()> {
        self.inner.remove_connection(conn).await
    }
    async fn set_child_secret(&self, connection_id: &str, secret: &ChildSecret) -> Result<()> {
        self.inner.set_child_secret(connection_id, secret).await
    }
    async fn child_secret(&self, connection_id: &str) -> Result<Option<ChildSecret>> {
        self.inner.child_secret(connection_id).await
    }
    async fn maintain(&self) -> Result<()> {
        self.inner.maintain().await
    }
    async fn lock(&self, connection_id: &str) -> Result<Lease> {
        self.hooks.lock(self.inner.as_ref(), connection_id).await
    }
    fn forget_lock(&self, connection_id: &str) {
        self.inner.forget_lock(connection_id)
    }
    async fn record(
        &self,
        connection_id: Option<&str>,
        client_key: Option<&str>,
        entry: &HistoryEntry,
        coalesce: Option<&str>,
    ) -> Result<()> {
        self.inner
            .record(connection_id, client_key, entry, coalesce)
            .await
    }
    async fn history(
        &self,
        connection_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>> {
        self.inner.history(connection_id, limit).await
    }
    async fn activity(&self, limit: usize) -> Result<Vec<ActivityEntry>> {
        self.inner.activity(limit).await
    }
    async fn insert_pending(
        &self,
        record: &PendingRecord,
        verifier: Option<&PkceVerifier>,
        purge_before: DateTime<Utc>,
    ) -> Result<()> {
        self.inner
            .insert_pending(record, verifier, purge_before)
            .await
    }
    async fn pending(&self, state_hash: &str) -> Result<Option<PendingRecord>> {
        self.inner.pending(state_hash).await
    }
    async fn consume_pending(&self, state_hash: &str, now: DateTime<Utc>) -> Result<bool> {
        self.inner.consume_pending(state_hash, now).await
    }
    async fn set_pending_outcome(&self, state_hash: &str, outcome: &str) -> Result<()> {
        self.inner.set_pending_outcome(state_hash, outcome).await
    }
    async fn pending_outcome(&self, state_hash: &str) -> Result<Option<String>> {
        self.inner.pending_outcome(state_hash).await
    }
    async fn take_pkce_verifier(&self, state_hash: &str) -> Result<Option<PkceVerifier>> {
        self.inner.take_pkce_verifier(state_hash).await
    }
    fn changes(&self) -> Option<tokio::sync::broadcast::Receiver<StoreChange>> {
        self.inner.changes()
    }
}
