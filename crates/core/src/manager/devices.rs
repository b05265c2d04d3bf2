//! IoT devices (PROVIDERS.md §3 item 5): kept under an IoT client and optionally the IoT
//! connection (account) that owns them; add, list, show, check, remove. The Token and
//! the optional Secret go to the keyring only (`device/<id>/token`, `…/secret`); SQLite
//! holds the rest. A check is the read-only `GET {api}/shadow/data` with the device's
//! own credentials; its result and time are kept on the device and in the history.

use super::*;
use crate::model::{Device, DeviceCheck};
use crate::providers::device;
use crate::secret::{AnySecret, DeviceSecret, DeviceToken};

/// A device to keep, as entered by the user.
#[derive(Debug)]
pub struct NewDevice {
    pub name: String,
    /// The IoT client (name or id) the device is kept under.
    pub client: String,
    /// The IoT connection (account) that owns it, if any (id, prefix or username).
    pub connection: Option<String>,
    /// The platform's Client ID of the device.
    pub device_id: String,
    pub token: DeviceToken,
    pub secret: Option<DeviceSecret>,
}

/// A device with its credentials, read from the keyring for a program that needs them
/// (`authdeckctl device env`, the window's copy buttons). Never serialised.
pub struct DeviceCredentials {
    pub device: Device,
    pub token: DeviceToken,
    pub secret: Option<DeviceSecret>,
    /// The device API's base of its client, if it has one.
    pub api_url: Option<url::Url>,
}

impl DeviceCredentials {
    /// `Device <ClientID>:<Token>`, the REST header value.
    pub fn rest_authorization(&self) -> DeviceToken {
        device::authorization(&self.device.device_id, &self.token)
    }
}

/// What a check found: the device as now recorded, and the shadow's (cleaned) data.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct DeviceCheckReport {
    pub device: Device,
    #[cfg_attr(feature = "ts", ts(type = "unknown"))]
    pub shadow: serde_json::Value,
}

/// A device Client ID: printable, no whitespace, and no `:` (it ends at the first `:`
/// of the `Device <ClientID>:<Token>` header).
fn check_device_id(device_id: &str) -> Result<()> {
    check_length("The device's Client ID", device_id, limits::CLIENT_ID)?;
    if device_id.is_empty()
        || device_id
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == ':')
    {
        return Err(Error::invalid_input(
            "The device's Client ID is empty, or has a space, a colon or a control character.",
        ));
    }
    Ok(())
}

/// A device credential travels in a header (Token) or an MQTT packet: non-empty, no
/// control characters. The message never shows the value.
fn check_credential(what: &str, value: &dyn AnySecret) -> Result<()> {
    check_secret_length(what, value)?;
    if value.is_empty() || value.expose().chars().any(char::is_control) {
        return Err(Error::invalid_input(format!(
            "{what} is empty or has a control character."
        )));
    }
    Ok(())
}

impl Manager {
    pub async fn add_device(&self, new: NewDevice) -> Result<Device> {
        let name = new.name.trim().to_string();
        if name.is_empty()
            || name.chars().count() > limits::NAME
            || name.chars().any(char::is_control)
        {
            return Err(Error::invalid_input(format!(
                "A device name is 1 to {} printable characters.",
                limits::NAME
            )));
        }
        let device_id = new.device_id.trim().to_string();
        check_device_id(&device_id)?;
        check_credential("The device token", &new.token)?;
        if let Some(secret) = &new.secret {
            check_credential("The device secret", secret)?;
        }
        let client = self.client(&new.client).await?;
        if client.provider != Provider::Iot {
            return Err(Error::invalid_input(format!(
                "Client {:?} is a {} client: devices are kept under IoT-platform clients.",
                client.name,
                client.provider.display_name()
            )));
        }
        let connection_id = match &new.connection {
            None => None,
            Some(reference) => {
                let conn = self.connection(reference).await?;
                if conn.client_key != client.id {
                    return Err(Error::invalid_input(format!(
                        "Connection {} was not made with client {:?}: name an account of that client.",
                        conn.label, client.name
                    )));
                }
                Some(conn.id)
            }
        };
        let lookup = name.clone();
        match self.db(move |db| db.device(&lookup)).await {
            Ok(existing) if existing.name == name => {
                return Err(Error::new(
                    ErrorCode::AlreadyExists,
                    format!("A device named {name:?} exists already: pick another name."),
                ))
            }
            _ => {}
        }
        let device = Device {
            id: uuid::Uuid::new_v4().to_string(),
            name,
            device_id,
            client_key: client.id.clone(),
            client_name: client.name.clone(),
            connection_id,
            has_secret: new.secret.is_some(),
            created_at: self.now(),
            last_check: None,
            sandbox: client.sandbox,
        };
        // Secrets first: if the keyring is unavailable, nothing is written anywhere.
        let vault = &self.inner.local.vault;
        vault.set_device_token(&device.id, &new.token).await?;
        if let Some(secret) = &new.secret {
            if let Err(e) = vault.set_device_secret(&device.id, secret).await {
                let _ = vault.delete_device_secrets(&device.id).await;
                return Err(e);
            }
        }
        let stored = device.clone();
        if let Err(e) = self.db(move |db| db.insert_device(&stored)).await {
            let _ = vault.delete_device_secrets(&device.id).await;
            return Err(e);
        }
        self.record_device(&device, "device_added", Ok(()), None)
            .await;
        tracing::info!(device = %device.id, client = %device.client_key, "device added");
        self.emit(Event::DevicesChanged);
        Ok(device)
    }

    pub async fn devices(&self) -> Result<Vec<Device>> {
        self.db(|db| db.devices()).await
    }

    /// A device by id, name or unique id prefix.
    pub async fn device(&self, reference: &str) -> Result<Device> {
        let r = reference.to_owned();
        self.db(move |db| db.device(&r)).await
    }

    /// A device's history, newest first.
    pub async fn device_history(&self, reference: &str, limit: usize) -> Result<Vec<HistoryEntry>> {
        let device = self.device(reference).await?;
        self.db(move |db| db.device_history(&device.id, limit))
            .await
    }

    /// The device and its Token and Secret, from the keyring.
    pub async fn device_credentials(&self, reference: &str) -> Result<DeviceCredentials> {
        let device = self.device(reference).await?;
        let vault = &self.inner.local.vault;
        let token = vault.device_token(&device.id).await?.ok_or_else(|| {
            Error::new(
                ErrorCode::InvalidCredentials,
                format!(
                    "The token of device {:?} is missing from the system keyring (deleted outside Authdeck?): remove the device and add it again.",
                    device.name
                ),
            )
        })?;
        let secret = match device.has_secret {
            true => vault.device_secret(&device.id).await?,
            false => None,
        };
        let api_url = self
            .client(&device.client_key)
            .await
            .ok()
            .and_then(|c| c.options.device_api_url);
        Ok(DeviceCredentials {
            device,
            token,
            secret,
            api_url,
        })
    }

    /// Check a device: read its own shadow with its credentials (read-only). The result
    /// and its time are recorded on the device and in the history, success or not.
    pub async fn check_device(&self, reference: &str) -> Result<DeviceCheckReport> {
        let creds = self.device_credentials(reference).await?;
        let client = self.client(&creds.device.client_key).await?;
        let Some(api) = client.options.device_api_url.clone() else {
            return Err(Error::invalid_input(format!(
                "Client {:?} has no device API URL: add the client again with --device-api-url (NETPIE: https://api.netpie.io/v2/device).",
                client.name
            )));
        };
        let _call = self.inner.shutdown.begin_call()?;
        let result = device::read_shadow(
            &self.inner.http,
            &api,
            &creds.device.device_id,
            &creds.token,
        )
        .await;
        let result = explain_device_failure(&client, &api, result).await;
        let at = self.now();
        let check = match &result {
            Ok(shadow) => DeviceCheck {
                at,
                outcome: "ok".into(),
                message: None,
                shadow_fields: shadow
                    .as_object()
                    .map(|m| m.keys().take(50).cloned().collect())
                    .unwrap_or_default(),
            },
            Err(e) => DeviceCheck {
                at,
                outcome: e.code.as_str().into(),
                message: Some(e.message.clone()),
                shadow_fields: Vec::new(),
            },
        };
        // Re-read: the record may have changed meanwhile (another check).
        let id = creds.device.id.clone();
        let mut device = self.db(move |db| db.device(&id)).await?;
        device.last_check = Some(check);
        let stored = device.clone();
        self.db(move |db| db.update_device(&stored)).await?;
        let detail = match &result {
            Ok(_) => Some("read the device's shadow".to_string()),
            Err(e) => Some(match &e.detail {
                Some(d) => format!("{} ({d})", e.message),
                None => e.message.clone(),
            }),
        };
        self.record_device(&device, "device_check", result.as_ref().map(|_| ()), detail)
            .await;
        self.emit(Event::DevicesChanged);
        let shadow = result?;
        Ok(DeviceCheckReport { device, shadow })
    }

    /// Remove a device: its keyring entries first, then its record (the history stays).
    pub async fn remove_device(&self, reference: &str) -> Result<Device> {
        let device = self.device(reference).await?;
        self.inner
            .local
            .vault
            .delete_device_secrets(&device.id)
            .await?;
        let id = device.id.clone();
        self.db(move |db| db.delete_device(&id)).await?;
        self.record_device(&device, "device_removed", Ok(()), None)
            .await;
        tracing::info!(device = %device.id, "device removed");
        self.emit(Event::DevicesChanged);
        Ok(device)
    }

    async fn record_device(
        &self,
        device: &Device,
        event: &str,
        outcome: std::result::Result<(), &Error>,
        detail: Option<String>,
    ) {
        let detail =
            detail.or_else(|| Some(format!("device {} ({})", device.name, device.device_id)));
        let entry = self.history_entry(event, outcome, detail);
        let (id, client) = (device.id.clone(), device.client_key.clone());
        if let Err(e) = self
            .db(move |db| db.add_device_history(&id, &client, &entry))
            .await
        {
            tracing::warn!(code = %e.code, "could not write a history entry");
        }
        self.emit(Event::HistoryAdded {
            connection_id: None,
        });
    }
}

/// A sandbox client's device API that cannot be reached: the sandbox is not running.
async fn explain_device_failure<T>(
    client: &Client,
    api: &url::Url,
    result: Result<T>,
) -> Result<T> {
    match result {
        Err(e)
            if client.sandbox
                && e.code == ErrorCode::ProviderUnavailable
                && !crate::sandbox::listening(api).await =>
        {
            Err(crate::sandbox::not_running(client))
        }
        other => other,
    }
}
