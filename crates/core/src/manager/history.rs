//! The history: what happened to each connection (and to rejected redirects), newest
//! first, with bursts of one kind of rejection coalesced into one row.

use super::*;

impl Manager {
    /// A history entry of now: `ok`, or the error's code.
    pub(super) fn history_entry(
        &self,
        event: &str,
        outcome: std::result::Result<(), &Error>,
        detail: Option<String>,
    ) -> HistoryEntry {
        let outcome = match outcome {
            Ok(()) => "ok".to_string(),
            Err(e) => e.code.as_str().to_string(),
        };
        HistoryEntry::new(self.now(), event, outcome, detail)
    }

    pub(super) async fn record(
        &self,
        connection_id: Option<&str>,
        client_key: Option<&str>,
        event: &str,
        outcome: std::result::Result<(), &Error>,
        detail: Option<String>,
    ) {
        let detail = detail.or_else(|| outcome.err().map(|e| e.message.clone()));
        let entry = self.history_entry(event, outcome, detail);
        if let Err(e) = self
            .inner
            .store
            .record(connection_id, client_key, &entry, None)
            .await
        {
            tracing::warn!(code = %e.code, "could not write a history entry");
        }
        self.emit(Event::HistoryAdded {
            connection_id: connection_id.map(str::to_owned),
        });
    }

    /// A rejected redirect, in the history: rejections of one kind (same message, the
    /// parts a sender chooses masked; same client) within one minute share one row with a
    /// count, so a burst of forged links cannot flood the history.
    pub(super) async fn record_rejection(&self, client_key: Option<&str>, error: &Error) {
        let detail = format!(
            "{}{}",
            error.message,
            error
                .detail
                .as_deref()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default()
        );
        let entry = HistoryEntry::new(
            self.now(),
            "callback_rejected",
            error.code.as_str(),
            Some(detail),
        );
        let kind = format!(
            "callback_rejected:{}:{}",
            error.code.as_str(),
            rejection_kind(&error.message)
        );
        if let Err(e) = self
            .inner
            .store
            .record(None, client_key, &entry, Some(&kind))
            .await
        {
            tracing::warn!(code = %e.code, "could not write a history entry");
        }
        self.emit(Event::HistoryAdded {
            connection_id: None,
        });
    }

    /// Newest first. With no reference: every entry, including rejected callbacks.
    pub async fn history(
        &self,
        reference: Option<&str>,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>> {
        let id = match reference {
            None => None,
            Some(r) => match self.connection(r).await {
                Ok(c) => Some(c.id),
                Err(e) if e.code == ErrorCode::NotFound => match self.device(r).await {
                    Ok(device) => {
                        return self
                            .db(move |db| db.device_history(&device.id, limit))
                            .await
                    }
                    // A disconnected connection keeps its history under its id.
                    Err(_) => Some(r.to_owned()),
                },
                Err(e) => return Err(e),
            },
        };
        let entries = self.inner.store.history(id.as_deref(), limit).await?;
        if entries.is_empty() {
            if let Some(r) = id {
                if self.connection(&r).await.is_err() {
                    return Err(Error::not_found(format!(
                        "No connection or history for {r:?}."
                    )));
                }
            }
        }
        Ok(entries)
    }
}

/// The kind of a rejection, for coalescing its history rows: its message with every
/// quoted part (`{:?}` of what the sender chose: a scheme, a host, a parameter name)
/// masked, so varying those cannot make a burst of forged links into many rows.
fn rejection_kind(message: &str) -> String {
    let mut kind = String::with_capacity(message.len());
    let mut quoted = false;
    let mut escaped = false;
    for c in message.chars() {
        if quoted {
            match (escaped, c) {
                (false, '\\') => escaped = true,
                (false, '"') => quoted = false,
                _ => escaped = false,
            }
            continue;
        }
        if c == '"' {
            quoted = true;
            kind.push_str("\"…\"");
        } else {
            kind.push(c);
        }
    }
    kind
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejection_kinds_mask_what_the_sender_chose() {
        let kind = |m: &str| rejection_kind(m);
        assert_eq!(
            kind(r#"Not an Authdeck redirect (scheme "https", host "evil.example"): ignored."#),
            kind(r#"Not an Authdeck redirect (scheme "x", host "a\"b"): ignored."#),
        );
        assert_eq!(
            kind(r#"The redirect URL repeats the "state" parameter."#),
            r#"The redirect URL repeats the "…" parameter."#
        );
        assert_ne!(
            kind("This redirect was already used (replayed state): ignored."),
            kind("This authorization expired (10 minutes): start connecting again.")
        );
    }
}
