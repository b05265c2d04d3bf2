//! How connections, clients and history look on a terminal, and their `--json` forms;
//! and how anything is written at all ([`outln!`], [`errln!`]).
//!
//! A closed stdout (`authdeckctl history | head`) ends the command quietly with exit
//! status [`EXIT_BROKEN_PIPE`], the status a shell shows for a command ended by SIGPIPE:
//! `set -o pipefail` scripts see what they see with any other tool. The command's work is
//! done by then (every command prints after it). A closed stderr is ignored.

use std::fmt;
use std::io::Write;

use authdeck_core::model::{
    CheckRecord, Client, Connection, ConnectionStatus, Environment, Expiry, HistoryEntry,
};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// Exit status when stdout was closed before everything was printed (128 + SIGPIPE).
pub const EXIT_BROKEN_PIPE: u8 = 141;

/// `println!` that ends the command quietly when stdout is closed (see the module docs).
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::output::write_out(format_args!($($arg)*))
    };
}

/// `eprintln!` that ignores a closed stderr.
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::output::write_err(format_args!($($arg)*))
    };
}

/// One line on stdout. Closed (EPIPE): exit [`EXIT_BROKEN_PIPE`] at once, quietly. Any
/// other failure to write (a full disk behind `> file`): say so on stderr, exit 1.
pub fn write_out(args: fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    let written = out
        .write_fmt(args)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
    if let Err(e) = written {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(i32::from(EXIT_BROKEN_PIPE));
        }
        write_err(format_args!("authdeckctl: could not write the output: {e}"));
        std::process::exit(1);
    }
}

/// One line on stderr; nothing to do if it is closed.
pub fn write_err(args: fmt::Arguments<'_>) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_fmt(args).and_then(|()| err.write_all(b"\n"));
}

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
    /// What a person calls it: the user's label, else the company's name, else `label`.
    pub title: &'a str,
}

impl<'a> ConnectionView<'a> {
    pub fn new(connection: &'a Connection, now: DateTime<Utc>) -> Self {
        Self {
            connection,
            status: connection.status_at(now),
            access_expires_in: connection.access_expires.map(|e| e.seconds_left(now)),
            refresh_expires_in: connection.refresh_expires.map(|e| e.seconds_left(now)),
            title: connection.title(),
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

/// The ENV column: the built-in sandbox's clients and connections say so (they hold
/// demo data, and `authdeckctl sandbox leave` removes them).
fn env_cell(environment: Environment, sandbox: bool) -> String {
    if sandbox {
        SANDBOX_MARK.to_string()
    } else {
        environment.to_string()
    }
}

/// How the built-in sandbox's clients and connections are marked.
pub const SANDBOX_MARK: &str = "built-in sandbox";

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
    // Padded by hand: `format!("{c:<w$}")` panics for widths over 65,535.
    let line = |cells: Vec<String>| {
        let mut text = String::new();
        for (i, (cell, width)) in cells.iter().zip(&widths).enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            text.push_str(cell);
            if i + 1 < cells.len() {
                let n = cell.chars().count();
                text.extend(std::iter::repeat_n(' ', width.saturating_sub(n)));
            }
        }
        outln!("{}", text.trim_end());
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    for row in rows {
        line(row);
    }
}

pub fn connections_table(connections: &[Connection], now: DateTime<Utc>) {
    if connections.is_empty() {
        outln!("No connections yet. Add a client (`authdeckctl client add …`), then `authdeckctl connect …`.");
        return;
    }
    let rows = connections
        .iter()
        .map(|c| {
            vec![
                short_id(&c.id).to_string(),
                c.provider.display_name().to_string(),
                title_with_code(c),
                env_cell(c.environment, c.sandbox),
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
        outln!("No clients yet: `authdeckctl client add flowaccount|fedex|iot --name NAME --client-id ID …`.");
        return;
    }
    let rows = clients
        .iter()
        .map(|c| {
            vec![
                c.name.clone(),
                c.provider.display_name().to_string(),
                env_cell(c.environment, c.sandbox),
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
        Some(e) => outln!(
            "{label:<17}{} (in {}; from {})",
            when(e.at),
            duration_text(e.seconds_left(now)),
            serde_json::to_value(e.source)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        ),
        None => outln!("{label:<17}unknown"),
    }
}

pub fn status(c: &Connection, now: DateTime<Utc>) {
    let field = |k: &str, v: &str| outln!("{k:<17}{v}");
    field("Connection", &c.id);
    field("Name", c.title());
    if c.title() != c.label {
        field("Label", &c.label);
    }
    if let Some(own) = &c.user_label {
        field("Your name", own);
    }
    field("Provider", c.provider.display_name());
    field("Client", &c.client_name);
    if c.sandbox {
        field(
            "Environment",
            &format!("{SANDBOX_MARK} (demo data; `authdeckctl sandbox leave` removes it)"),
        );
    } else {
        field("Environment", c.environment.as_str());
    }
    field("Status", status_text(c.status_at(now)));
    if let Some(code) = &c.support_code {
        field("supportCode", code);
    }
    if let Some(company) = &c.company {
        let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "—".into());
        field("Company", &or_dash(&company.name));
        field("Tax id", &or_dash(&company.tax_id));
        field("Branch", &or_dash(&company.branch));
    }
    if let Some(check) = &c.last_check {
        field("Last check", &check_text(check));
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

/// The title, and the label (supportCode, project, username) beside it when they differ.
pub fn title_with_code(c: &Connection) -> String {
    match c.title() {
        t if t == c.label => t.to_string(),
        t => format!("{t} ({})", c.label),
    }
}

/// Said before a FedEx check (on stderr): it is not free.
pub const FEDEX_CHECK_NOTE: &str = "FedEx has no identity endpoint: the check requests a new token, and every request counts against the project's quota.";

fn check_text(check: &CheckRecord) -> String {
    match &check.error {
        None => format!("ok at {} ({})", when(check.at), check.method.describe()),
        Some(e) => format!(
            "failed at {}: {} [{}] ({})",
            when(check.at),
            e.message,
            e.code,
            check.method.describe()
        ),
    }
}

/// What `authdeckctl check` says after a check that passed.
pub fn checked(c: &Connection) {
    let how = c
        .last_check
        .as_ref()
        .map(|check| check.method.describe())
        .unwrap_or("checked");
    outln!(
        "{} accepts {}: {how}.",
        c.provider.display_name(),
        title_with_code(c)
    );
    if let Some(company) = &c.company {
        let parts: Vec<String> = [
            company.name.as_ref().map(|n| format!("company {n}")),
            company.tax_id.as_ref().map(|t| format!("tax id {t}")),
            company.branch.as_ref().map(|b| format!("branch {b}")),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !parts.is_empty() {
            outln!("{}", parts.join(", "));
        }
    }
}

pub fn history(entries: &[HistoryEntry]) {
    if entries.is_empty() {
        outln!("No history.");
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

/// `device list`: one row per device (never a token or secret).
pub fn devices_table(devices: &[authdeck_core::model::Device]) {
    if devices.is_empty() {
        outln!("No devices yet: `authdeckctl device add NAME --client IOT_CLIENT --device-id CLIENT_ID --token-stdin`.");
        return;
    }
    let rows = devices
        .iter()
        .map(|d| {
            vec![
                short_id(&d.id).to_string(),
                d.name.clone(),
                d.device_id.clone(),
                d.client_name.clone(),
                if d.has_secret { "yes" } else { "no" }.to_string(),
                d.last_check
                    .as_ref()
                    .map(|c| format!("{} at {}", c.outcome, when(c.at)))
                    .unwrap_or_else(|| "never".into()),
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "NAME",
            "CLIENT ID",
            "IOT CLIENT",
            "SECRET",
            "LAST CHECK",
        ],
        rows,
    );
}

/// `device show`: the device in detail, and its history (never a token or secret).
pub fn device(
    d: &authdeck_core::model::Device,
    owner: Option<&str>,
    history_entries: &[HistoryEntry],
) {
    outln!("Device      {} (id {})", d.name, d.id);
    outln!("Client ID   {}", d.device_id);
    outln!(
        "IoT client  {}{}",
        d.client_name,
        if d.sandbox { " (built-in sandbox)" } else { "" }
    );
    match (&d.connection_id, owner) {
        (Some(_), Some(label)) => outln!("Account     {label}"),
        (Some(id), None) => outln!("Account     {} (not connected any more)", short_id(id)),
        (None, _) => outln!("Account     —"),
    }
    outln!(
        "Credentials token{} in the system keyring",
        if d.has_secret { " and secret" } else { "" }
    );
    outln!("Added       {}", when(d.created_at));
    match &d.last_check {
        None => outln!("Last check  never (`authdeckctl device check {}`)", d.name),
        Some(c) => {
            outln!("Last check  {} at {}", c.outcome, when(c.at));
            if let Some(m) = &c.message {
                outln!("            {m}");
            }
            if !c.shadow_fields.is_empty() {
                outln!("Shadow      {}", c.shadow_fields.join(", "));
            }
        }
    }
    if !history_entries.is_empty() {
        outln!("");
        history(history_entries);
    }
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
