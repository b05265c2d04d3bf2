//! The sandbox's demo clients in the store: start (add or re-point them) and leave
//! (remove them with their connections). See `crate::sandbox`.

use super::*;
use crate::sandbox::{demo_clients, listening, LeaveReport, SandboxEndpoints, SandboxInstall};
pub(super) use crate::sandbox::{ensure_running, explain_failure};

impl Manager {
    /// A sandbox is running at `endpoints`: point the sandbox clients already stored at
    /// it, and (with `add_missing`) add the demo clients that are not there yet. A
    /// client of the user's that bears a demo name is left alone (`skipped`).
    pub async fn install_sandbox(
        &self,
        endpoints: &SandboxEndpoints,
        add_missing: bool,
    ) -> Result<SandboxInstall> {
        let mut report = SandboxInstall::default();
        for new in demo_clients(endpoints) {
            let wanted = self.validate_new_client(&new)?;
            let name = new.name.clone();
            let existing = match self.client(&name).await {
                Ok(client) => Some(client),
                Err(e) if e.code == ErrorCode::NotFound => None,
                Err(e) => return Err(e),
            };
            match existing {
                Some(client) if !client.sandbox => report.skipped.push(name),
                Some(mut client) => {
                    if client.endpoints != wanted.endpoints
                        || client.environment != wanted.environment
                        || client.options.device_api_url != wanted.options.device_api_url
                    {
                        client.endpoints = wanted.endpoints;
                        client.environment = wanted.environment;
                        client.options.device_api_url = wanted.options.device_api_url;
                        self.inner.store.update_client(&client).await?;
                        tracing::info!(client = %client.id, "sandbox client re-pointed");
                        self.emit(Event::ClientsChanged);
                    }
                    report.updated.push(name);
                }
                None if add_missing => match self.add_client(new).await {
                    Ok(_) => report.added.push(name),
                    // Added by another process meanwhile: it points at a sandbox too.
                    Err(e) if e.code == ErrorCode::AlreadyExists => report.skipped.push(name),
                    Err(e) => return Err(e),
                },
                None => {}
            }
        }
        Ok(report)
    }

    /// "Leave the sandbox": every sandbox connection is logged out (at the sandbox, if
    /// it is running) and removed, then every sandbox client, with their keyring
    /// entries. Other clients and connections are not touched. The caller stops its
    /// sandbox afterwards.
    pub async fn leave_sandbox(&self) -> Result<LeaveReport> {
        let clients: Vec<Client> = self
            .clients()
            .await?
            .into_iter()
            .filter(|c| c.sandbox)
            .collect();
        let mut report = LeaveReport::default();
        for conn in self.list().await? {
            let Some(client) = clients.iter().find(|c| c.id == conn.client_key) else {
                continue;
            };
            let logged_out = listening(&client.endpoints.token_url).await
                && match self.logout(&conn.id).await {
                    Ok(_) => true,
                    Err(e) if e.code == ErrorCode::KeyringUnavailable => return Err(e),
                    Err(e) if e.code == ErrorCode::NotFound => continue,
                    Err(_) => false,
                };
            if !logged_out {
                self.forget_sandbox_connection(&conn.id).await?;
            }
            report.connections.push(conn.label);
        }
        for device in self.devices().await? {
            if clients.iter().any(|c| c.id == device.client_key) {
                self.remove_device(&device.id).await?;
                report.devices.push(device.name);
            }
        }
        for client in clients {
            self.remove_client(&client.id).await?;
            tracing::info!(client = %client.id, "sandbox client removed");
            report.clients.push(client.name);
        }
        Ok(report)
    }

    /// Remove a sandbox connection here only (its sandbox is gone, so there is no
    /// session to revoke).
    async fn forget_sandbox_connection(&self, id: &str) -> Result<()> {
        let _lease = self.inner.store.lock(id).await?;
        let conn = match self
            .finish_interrupted_switch(id, OrphanProbe::Always)
            .await
        {
            Ok(conn) => conn,
            Err(e) if e.code == ErrorCode::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        self.remove_connection_locally(
            &conn,
            "leave_sandbox",
            Some("removed with the sandbox, which was not running".into()),
        )
        .await
    }
}
