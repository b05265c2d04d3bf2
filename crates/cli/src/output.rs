//! How connections, clients and history look on a terminal, and their `--json` forms.

use authdeck_core::model::{Client, Connection, ConnectionStatus, Expiry, HistoryEntry};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// A connection plus what is computed from "now", for `list --json` and `status --json`.
#[derive(Serialize)]
pub struct ConnectionView<'a> {
    #[serde(flatten)]
    pub connection: &'a Connection,
    pub status: ConnectionStatus,
    /// Seconds until the access token expires (negative once expired; absent if unknown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_expires_in: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_expires_in: Option<i64>,
}

impl<'a> ConnectionView<'a> {
    pub fn new(connection: &'a Connection, now: DateTime<Utc>) -> Self {
        Self {
            connection,
            status: connection.status_at(now),
            access_expires_in: connection.access_expires.map(|e| e.seconds_left(now)),
            refresh_expires_in: connection.refresh_expires.map(|e| e.seconds_left(now)),
        }
    }
}

pub fn status_text(s: ConnectionStatus) -> &'static str {
    match s {
        ConnectionStatus::Active => "active",
        ConnectionStatus::ExpiringSoon => "expiring soon",
        ConnectionStatus::Expired => "expired",
        ConnectionStatus::ReauthorizationRequired => "re-authorization needed",
        ConnectionStatus::LogoutPending => "logout pending",
        ConnectionStatus::Error => "error",
    }
}

/// "59m 12s", "23h 59m", "2d 3h", "expired 4m 00s ago".
pub fn duration_text(seconds: i64) -> String {
    match seconds {
        0 => "expired".into(),
        s if s < 0 => format!("expired {} ago", span(-s)),
        s => span(s),
    }
}

fn span(seconds: i64) -> String {
    let (d, h, m, s) = (
        seconds / 86_400,
        seconds % 86_400 / 3600,
        seconds % 3600 / 60,
        seconds % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s:02}s"),
        (0, _, _) => format!("{h}h {m:02}m"),
        _ => format!("{d}d {h}h"),
    }
}

fn expiry_cell(e: Option<&Expiry>, now: DateTime<Utc>) -> String {
    match e {
        Some(e) => duration_text(e.seconds_left(now)),
        None => "unknown".into(),
    }
}

fn short_id(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

fn table(headers: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let text: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", text.join("  ").trim_end());
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    for row in rows {
        line(row);
    }
}

pub fn connections_table(connections: &[Connection], now: DateTime<Utc>) {
    if connections.is_empty() {
        println!("No connections yet. Add a client (`authdeckctl client add …`), then `authdeckctl connect …`.");
        return;
    }
    let rows = connections
        .iter()
        .map(|c| {
            vec![
                short_id(&c.id).to_string(),
                c.provider.display_name().to_string(),
                c.label.clone(),
                c.environment.to_string(),
                status_text(c.status_at(now)).to_string(),
                expiry_cell(c.access_expires.as_ref(), now),
                if c.provider.has_refresh_token() {
                    expiry_cell(c.refresh_expires.as_ref(), now)
                } else {
                    "—".into()
                },
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "PROVIDER",
            "NAME",
            "ENV",
            "STATUS",
            "ACCESS EXPIRES IN",
            "REFRESH EXPIRES IN",
        ],
        rows,
    );
}

pub fn clients_table(clients: &[Client]) {
    if clients.is_empty() {
        println!("No clients yet: `authdeckctl client add flowaccount|fedex|iot --name NAME --client-id ID …`.");
        return;
    }
    let rows = clients
        .iter()
        .map(|c| {
            vec![
                c.name.clone(),
                c.provider.display_name().to_string(),
                c.environment.to_string(),
                c.client_id.clone(),
                c.endpoints.token_url.to_string(),
                c.options.redirect_uri.clone().unwrap_or_else(|| "—".into()),
            ]
        })
        .collect();
    table(
        &[
            "NAME",
            "PROVIDER",
            "ENV",
            "CLIENT ID",
            "TOKEN URL",
            "REDIRECT URI",
        ],
        rows,
    );
}

fn when(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn expiry_line(label: &str, e: Option<&Expiry>, now: DateTime<Utc>) {
    match e {
        Some(e) => println!(
            "{label:<17}{} (in {}; from {})",
            when(e.at),
            duration_text(e.seconds_left(now)),
            serde_json::to_value(e.source)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        ),
        None => println!("{label:<17}unknown"),
    }
}

pub fn status(c: &Connection, now: DateTime<Utc>) {
    let field = |k: &str, v: &str| println!("{k:<17}{v}");
    field("Connection", &c.id);
    field("Name", &c.label);
    field("Provider", c.provider.display_name());
    field("Client", &c.client_name);
    field("Environment", c.environment.as_str());
    field("Status", status_text(c.status_at(now)));
    if let Some(code) = &c.support_code {
        field("supportCode", code);
    }
    if let Some(g) = c.grant {
        field("Grant", g.as_str());
    }
    if let Some(k) = &c.child_key {
        field("Child key", k);
    }
    if let Some(u) = &c.username {
        field("Username", u);
    }
    if let Some(u) = &c.user_id {
        field("User id", u);
    }
    field("Scope", c.scope.as_deref().unwrap_or("—"));
    field("Token type", c.token_type.as_deref().unwrap_or("—"));
    expiry_line("Access expires", c.access_expires.as_ref(), now);
    if c.provider.has_refresh_token() {
        expiry_line("Refresh expires", c.refresh_expires.as_ref(), now);
    }
    field(
        "Last refresh",
        &c.last_refresh_at
            .map(when)
            .unwrap_or_else(|| "never".into()),
    );
    match &c.last_error {
        Some(e) => field(
            "Last error",
            &format!("{} [{}] at {}", e.message, e.code, when(e.at)),
        ),
        None => field("Last error", "none"),
    }
    if let Some(info) = &c.userinfo {
        field("userinfo", &info.to_string());
    }
    if let Some(jwt) = &c.jwt {
        field("JWT header", &jwt.header.to_string());
        field("JWT claims", &jwt.claims.to_string());
    }
}

pub fn history(entries: &[HistoryEntry]) {
    if entries.is_empty() {
        println!("No history.");
        return;
    }
    let rows = entries
        .iter()
        .map(|e| {
            vec![
                when(e.at),
                match e.count {
                    0 | 1 => e.event.clone(),
                    n => format!("{} ×{n}", e.event),
                },
                e.outcome.clone(),
                e.detail.clone().unwrap_or_default(),
            ]
        })
        .collect();
    table(&["WHEN", "EVENT", "OUTCOME", "DETAIL"], rows);
}

#[cfg(test)]
mod tests {
    use super::duration_text;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration_text(42), "42s");
        assert_eq!(duration_text(3599), "59m 59s");
        assert_eq!(duration_text(3600), "1h 00m");
        assert_eq!(duration_text(86_399), "23h 59m");
        assert_eq!(duration_text(90_000), "1d 1h");
        assert_eq!(duration_text(0), "expired");
        assert_eq!(duration_text(-240), "expired 4m 00s ago");
    }
}
