//! The connection list for support staff: CSV and JSON with the same columns, written
//! by `authdeckctl list --csv` / `--json` and by the window's Export button. Metadata
//! only: a row is built field by field from [`Connection`], never from its tokens, so
//! no secret can reach an export.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::model::{Connection, ConnectionStatus};

/// The columns, in order (the CSV header; the JSON keys).
pub const COLUMNS: [&str; 8] = [
    "name",
    "company",
    "provider",
    "status",
    "access_token_expires_at",
    "refresh_token_expires_at",
    "last_refresh_at",
    "last_error",
];

/// A file format of the export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum ExportFormat {
    Csv,
    Json,
}

impl ExportFormat {
    /// The file name extension (without the dot).
    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::Json => "json",
        }
    }
}

/// One connection as exported. Times are ISO 8601 (UTC); absent values are empty in
/// CSV and `null` in JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExportRow {
    /// The connection's label (supportCode, FedEx project / child key, IoT username).
    pub name: String,
    /// The company's name when a probe learned it; empty until then.
    pub company: Option<String>,
    /// `flowaccount`, `fedex` or `iot`.
    pub provider: String,
    /// `active`, `expiring_soon`, `expired`, `reauthorization_required`,
    /// `logout_pending` or `error`.
    pub status: String,
    pub access_token_expires_at: Option<String>,
    /// Empty for FedEx (no refresh token).
    pub refresh_token_expires_at: Option<String>,
    pub last_refresh_at: Option<String>,
    /// `code: message` of the last failure, if the connection has one.
    pub last_error: Option<String>,
}

fn iso(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn status_word(status: ConnectionStatus) -> String {
    // The wire name (snake_case), the same as the JSON of `list --json`.
    serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

impl ExportRow {
    pub fn new(c: &Connection, now: DateTime<Utc>) -> Self {
        Self {
            name: c.label.clone(),
            company: c.company.as_ref().and_then(|co| co.name.clone()),
            provider: c.provider.as_str().to_owned(),
            status: status_word(c.status_at(now)),
            access_token_expires_at: c.access_expires.map(|e| iso(e.at)),
            refresh_token_expires_at: c.refresh_expires.map(|e| iso(e.at)),
            last_refresh_at: c.last_refresh_at.map(iso),
            last_error: c
                .last_error
                .as_ref()
                .map(|e| format!("{}: {}", e.code.as_str(), e.message)),
        }
    }
}

/// The rows of `connections` at `now`, in the given order.
pub fn rows(connections: &[Connection], now: DateTime<Utc>) -> Vec<ExportRow> {
    connections.iter().map(|c| ExportRow::new(c, now)).collect()
}

/// The export as text: CSV (RFC 4180 quoting, a header line, `\n` line ends) or a JSON
/// array of objects.
pub fn render(
    connections: &[Connection],
    now: DateTime<Utc>,
    format: ExportFormat,
) -> Result<String> {
    let rows = rows(connections, now);
    match format {
        ExportFormat::Json => serde_json::to_string_pretty(&rows)
            .map(|mut s| {
                s.push('\n');
                s
            })
            .map_err(|e| {
                Error::internal("The export could not be written.").with_detail(e.to_string())
            }),
        ExportFormat::Csv => {
            let failed = |e: csv::Error| {
                Error::internal("The export could not be written.").with_detail(e.to_string())
            };
            let mut w = csv::WriterBuilder::new()
                .terminator(csv::Terminator::Any(b'\n'))
                .from_writer(Vec::new());
            w.write_record(COLUMNS).map_err(failed)?;
            for r in &rows {
                let cell = |v: &Option<String>| v.clone().unwrap_or_default();
                w.write_record([
                    r.name.clone(),
                    cell(&r.company),
                    r.provider.clone(),
                    r.status.clone(),
                    cell(&r.access_token_expires_at),
                    cell(&r.refresh_token_expires_at),
                    cell(&r.last_refresh_at),
                    cell(&r.last_error),
                ])
                .map_err(failed)?;
            }
            let bytes = w.into_inner().map_err(|e| {
                Error::internal("The export could not be written.").with_detail(e.to_string())
            })?;
            String::from_utf8(bytes)
                .map_err(|_| Error::internal("The export could not be written."))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Environment, Expiry, ExpirySource, LastError, Provider};

    fn conn(label: &str) -> Connection {
        let now = Utc::now();
        let mut c = Connection::new(
            "c1",
            "client-1",
            "acme",
            Provider::FlowAccount,
            Environment::Sandbox,
            label,
            now,
        );
        c.access_expires = Some(Expiry::new(
            now + chrono::Duration::hours(1),
            ExpirySource::RelativeSeconds,
        ));
        c
    }

    #[test]
    fn csv_quotes_commas_quotes_and_newlines() {
        let c = conn("Shop, \"Ltd\"\nline 2");
        let mut failed = conn("FA-2");
        failed.last_error = Some(LastError {
            code: crate::error::ErrorCode::ProviderUnavailable,
            message: "down, again".into(),
            at: Utc::now(),
        });
        let text = render(&[c, failed], Utc::now(), ExportFormat::Csv).unwrap();
        let mut r = csv::Reader::from_reader(text.as_bytes());
        assert_eq!(r.headers().unwrap().iter().collect::<Vec<_>>(), COLUMNS);
        let rows: Vec<csv::StringRecord> = r.records().map(|r| r.unwrap()).collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(&rows[0][0], "Shop, \"Ltd\"\nline 2");
        assert_eq!(&rows[0][1], "");
        assert_eq!(&rows[0][2], "flowaccount");
        assert_eq!(&rows[0][3], "active");
        assert!(rows[0][4].ends_with('Z'), "{}", &rows[0][4]);
        assert_eq!(&rows[0][5], "");
        assert_eq!(&rows[0][7], "");
        assert_eq!(&rows[1][7], "provider_unavailable: down, again");
    }

    #[test]
    fn json_has_the_same_columns() {
        let text = render(&[conn("FA-1")], Utc::now(), ExportFormat::Json).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let keys: Vec<&str> = v[0]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut want = COLUMNS.to_vec();
        want.sort_unstable();
        let mut keys = keys;
        keys.sort_unstable();
        assert_eq!(keys, want);
        assert_eq!(v[0]["name"], "FA-1");
        assert!(v[0]["company"].is_null());
    }

    #[test]
    fn the_company_column_is_the_probed_company_name() {
        let mut c = conn("FA-1");
        c.company = Some(crate::model::CompanyInfo {
            name: Some("Chiang Mai Crafts".into()),
            ..Default::default()
        });
        let text = render(&[c], Utc::now(), ExportFormat::Json).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v[0]["company"], "Chiang Mai Crafts");
    }
}
