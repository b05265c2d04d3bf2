//! "Who is this connection, and does the provider accept it now": the probe after a
//! FlowAccount connect, the check of any connection on demand, and the user's own name
//! for a connection.
//!
//! A check proves the provider accepts the connection now, not just that it has not
//! expired locally: FlowAccount `GET {api base}/company/info` with the access token
//! (read-only; it also learns the business's name, tax id and branch); FedEx a new token
//! request (FedEx has no identity endpoint, and every call counts against the project's
//! quota); the IoT platform a renewal of the session (it documents no read-only call that
//! takes the user's token). A failed check or probe is recorded with its error and time
//! on the connection and in the history; it never changes the connection's state, and a
//! failed probe never fails the connect it follows.

use super::*;

/// How long the probe after a connect may take before the connect returns without it.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

impl Manager {
    /// Ask the provider whether it accepts `reference` now (see the module docs). The
    /// result is kept on the connection (`last_check`, and `company` for FlowAccount) and
    /// in the history either way; `Err` is the provider's (or the lookup's) error.
    pub async fn check(&self, reference: &str) -> Result<Connection> {
        let conn = self.connection(reference).await?;
        let method = CheckMethod::for_provider(conn.provider);
        let result = match conn.provider {
            Provider::FlowAccount => self.company_probe(&conn).await.map(Some),
            // The one refresh code path: its answer is committed like any refresh.
            Provider::Fedex | Provider::Iot => self.refresh(&conn.id).await.map(|_| None),
        };
        self.record_check(&conn, method, result, "check").await
    }

    /// After a FlowAccount connect: learn who the business is. Bounded in time; whatever
    /// happens is recorded and the connection is returned (with the company if it worked).
    pub(super) async fn probe_after_connect(&self, conn: Connection) -> Connection {
        if conn.provider != Provider::FlowAccount || self.inner.shutdown.is_stopping() {
            return conn;
        }
        let result = match tokio::time::timeout(PROBE_TIMEOUT, self.company_probe(&conn)).await {
            Ok(result) => result.map(Some),
            Err(_) => Err(Error::new(
                ErrorCode::ProviderUnavailable,
                "FlowAccount did not say who this business is in time: use Check to ask again.",
            )
            .with_detail(format!("no answer within {} s", PROBE_TIMEOUT.as_secs()))),
        };
        match self
            .record_check(&conn, CheckMethod::CompanyInfo, result, "probe")
            .await
        {
            Ok(probed) => probed,
            Err(e) => {
                tracing::info!(connection = %conn.id, code = %e.code, "probe after connect failed");
                self.connection(&conn.id).await.unwrap_or(conn)
            }
        }
    }

    /// FlowAccount `GET {api base}/company/info` with a valid access token.
    async fn company_probe(&self, conn: &Connection) -> Result<CompanyInfo> {
        let client = self.client(&conn.client_key).await?;
        let api_base = client.api_base().ok_or_else(|| {
            Error::invalid_input(format!(
                "Client {:?} has no FlowAccount API address: add it again with --api-url (e.g. https://openapi.flowaccount.com/v1).",
                client.name
            ))
        })?;
        let (token, _) = self.access_token(&conn.id, Duration::from_secs(60)).await?;
        let result =
            flowaccount::company_info(&self.inner.http, &api_base, &token, self.now()).await;
        sandbox::explain_failure(&client, result).await
    }

    /// Keep a check's outcome on the connection (under its lock, re-read first) and in
    /// the history, and announce it. Returns the connection, or the check's error.
    async fn record_check(
        &self,
        conn: &Connection,
        method: CheckMethod,
        result: Result<Option<CompanyInfo>>,
        event: &str,
    ) -> Result<Connection> {
        let now = self.now();
        let record = CheckRecord {
            at: now,
            method,
            error: result.as_ref().err().map(|e| LastError::of(e, now)),
        };
        let saved = async {
            let _lease = self.inner.store.lock(&conn.id).await?;
            let mut current = self.connection(&conn.id).await?;
            current.last_check = Some(record.clone());
            if let Ok(Some(company)) = &result {
                current.company = Some(company.clone());
            }
            self.save_metadata(&current).await?;
            self.connection(&conn.id).await
        }
        .await;
        let detail = match (&result, &saved) {
            (Ok(_), Ok(c)) if c.company.is_some() && method == CheckMethod::CompanyInfo => {
                format!("{}: {}", method.describe(), c.title())
            }
            (Ok(_), _) => method.describe().to_string(),
            (Err(e), _) => format!("{}: {}", method.describe(), e.message),
        };
        self.record(
            Some(&conn.id),
            Some(&conn.client_key),
            event,
            result.as_ref().map(|_| ()),
            Some(detail),
        )
        .await;
        if let Ok(c) = &saved {
            self.emit(Event::ConnectionChanged {
                connection: Box::new(c.clone()),
            });
        }
        match (result, saved) {
            (Err(e), _) => Err(e),
            (Ok(_), saved) => saved,
        }
    }

    /// Give `reference` a name of the user's own (the row's title); `None` or a blank
    /// name removes it, and the company's name or the label shows again.
    pub async fn set_label(&self, reference: &str, name: Option<&str>) -> Result<Connection> {
        let name = name.map(str::trim).filter(|n| !n.is_empty());
        if let Some(n) = name {
            check_length("The name", n, limits::NAME)?;
            if n.chars()
                .any(|c| c.is_control() || crate::providers::redact::is_bidi_control(c))
            {
                return Err(Error::invalid_input(
                    "The name contains control or text-direction characters: type it again.",
                ));
            }
        }
        let conn = self.connection(reference).await?;
        let _lease = self.inner.store.lock(&conn.id).await?;
        let mut conn = self.connection(&conn.id).await?;
        conn.user_label = name.map(str::to_owned);
        self.save_metadata(&conn).await?;
        let conn = self.connection(&conn.id).await?;
        self.record(
            Some(&conn.id),
            Some(&conn.client_key),
            "rename",
            Ok(()),
            Some(match name {
                Some(n) => format!("named {n:?}"),
                None => "own name removed".to_string(),
            }),
        )
        .await;
        self.emit(Event::ConnectionChanged {
            connection: Box::new(conn.clone()),
        });
        Ok(conn)
    }
}
