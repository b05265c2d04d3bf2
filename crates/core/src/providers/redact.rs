//! What makes provider text safe to store and show: the request's secrets redacted
//! wherever they are echoed, token-bearing fields and token-shaped text blanked, terminal
//! escapes, control characters and bidi overrides removed. Fuzzed (`tests/fuzz.rs`).
//!
//! Every provider-supplied string, wherever it goes (an error's `message` and `detail`,
//! and the fields of a token answer that are stored and shown: scope, `supportCode`,
//! `userinfo`…), passes the same [`Redactor`]: the request's secrets become
//! `[redacted]`, and terminal escape sequences, control characters and bidi overrides
//! are removed ([`clean_text`]), so a provider's text can neither leak a secret nor
//! repaint a terminal.

use serde_json::Value;

use crate::secret::AnySecret;

/// The longest body excerpt (in characters) kept in an error's `detail`.
pub const EXCERPT_CHARS: usize = 200;

const REDACTED: &str = "[redacted]";

/// JSON fields that may carry a live or revoked token, blanked before any excerpt.
/// (`result` is the revoked user token of an IoT logout answer.)
/// (An echoed authorization `code` is caught by the [`Redactor`]: a bare `code` key is
/// too often an error code to blank.)
const TOKEN_FIELDS: [&str; 8] = [
    "access_token",
    "refresh_token",
    "id_token",
    "result",
    "password",
    "client_secret",
    "child_secret",
    "code_verifier",
];

/// Replaces every sent secret (and every FedEx parameter value) in text shown to people,
/// and cleans that text of terminal escapes and control characters.
pub(crate) struct Redactor {
    needles: Vec<String>,
}

impl Redactor {
    pub(crate) fn new(secrets: &[&dyn AnySecret], extra: Vec<String>) -> Self {
        let mut needles: Vec<String> = Vec::new();
        for s in secrets.iter().map(|s| s.expose().to_string()).chain(extra) {
            if s.is_empty() {
                continue;
            }
            // A body may echo the form-encoded request, a JSON-escaped copy, or (after
            // cleaning) the secret without its control characters.
            let encoded: String = url::form_urlencoded::byte_serialize(s.as_bytes()).collect();
            let json = serde_json::to_string(&s).unwrap_or_default();
            let json = json.trim_matches('"').to_string();
            let cleaned = clean_text(&s);
            for variant in [encoded, json, cleaned] {
                if !variant.is_empty() && variant != s && !needles.contains(&variant) {
                    needles.push(variant);
                }
            }
            needles.push(s);
        }
        // Longest first, so a secret containing another is replaced whole.
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        Self { needles }
    }

    fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for n in &self.needles {
            if out.contains(n.as_str()) {
                out = out.replace(n.as_str(), REDACTED);
            }
        }
        out
    }

    /// Redacted and cleaned, in full: for provider text that is kept as a value
    /// (scope, `userinfo`). Redacted before cleaning (a secret with a control character
    /// in it is still found) and after (an escape sequence inside an echoed secret does
    /// not hide it).
    pub(crate) fn clean(&self, text: &str) -> String {
        self.redact(&clean_text(&self.redact(text)))
    }

    /// Redacted first, then cut: a cut can never leave half a secret behind.
    pub(crate) fn excerpt(&self, text: &str) -> String {
        let text = scrub_token_text(&self.clean(text));
        truncate(&collapse_whitespace(&text), EXCERPT_CHARS)
    }

    /// A JSON value with every string (and object key) cleaned, and token-bearing
    /// fields blanked at any depth.
    pub(crate) fn clean_json(&self, v: &Value) -> Value {
        match v {
            Value::String(s) => Value::String(self.clean(s)),
            Value::Array(a) => Value::Array(a.iter().map(|v| self.clean_json(v)).collect()),
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, v)| {
                        let v = if is_token_field(k) {
                            Value::String(REDACTED.into())
                        } else {
                            self.clean_json(v)
                        };
                        (self.clean(k), v)
                    })
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

/// Whether a JSON key names a field that may carry a token or a secret.
fn is_token_field(key: &str) -> bool {
    TOKEN_FIELDS.iter().any(|t| key.eq_ignore_ascii_case(t))
}

/// Provider text made safe to store and show: terminal escape sequences removed as a
/// VT parser reads them (CSI `ESC [ … m`, OSC `ESC ] … BEL`, DCS, …), then every
/// remaining control character (C0, DEL, C1) and the Unicode bidi controls dropped;
/// tabs and line breaks become spaces.
pub fn clean_text(text: &str) -> String {
    let stripped = anstream::adapter::strip_str(text).to_string();
    stripped
        .chars()
        .filter_map(|c| match c {
            '\t' | '\n' | '\r' | '\u{0b}' | '\u{0c}' | '\u{2028}' | '\u{2029}' => Some(' '),
            c if c.is_control() || is_bidi_control(c) => None,
            c => Some(c),
        })
        .collect()
}

/// The invisible characters that reorder text (Trojan Source, CVE-2021-42574).
pub(crate) fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
    )
}

/// Blanks what looks like an issued token in text we could not parse: the value after a
/// token field name (`"access_token": "…"`, `refresh_token=…`), and anything JWT-shaped
/// (`eyJ…`). A truncated or malformed success body may still carry a live token.
fn scrub_token_text(text: &str) -> String {
    let mut out = text.to_string();
    for key in TOKEN_FIELDS {
        let mut from = 0;
        while let Some(pos) = out[from..].find(key).map(|p| p + from) {
            let after_key = pos + key.len();
            let rest = &out[after_key..];
            // `"key" : "value"` (JSON-ish) or `key=value` (form-ish).
            let skip = rest.len() - rest.trim_start_matches(['"', ' ', '\t']).len();
            let rest2 = &rest[skip..];
            let Some(sep) = rest2.chars().next().filter(|c| *c == ':' || *c == '=') else {
                from = after_key;
                continue;
            };
            let value_start = after_key + skip + sep.len_utf8();
            let value_rest = &out[value_start..];
            let lead = value_rest.len() - value_rest.trim_start_matches([' ', '\t', '"']).len();
            let v0 = value_start + lead;
            let end = out[v0..]
                .find(['"', '&', ',', '}', ' ', '\n', '\r', '\t'])
                .map_or(out.len(), |e| v0 + e);
            // Continue after the replacement, or at the (empty) value: both are char
            // boundaries (jumping ahead by REDACTED's length without replacing was not:
            // found by the fuzz target).
            from = if end > v0 {
                out.replace_range(v0..end, REDACTED);
                v0 + REDACTED.len()
            } else {
                v0
            };
        }
    }
    redact_jwt_shapes(&out)
}

fn redact_jwt_shapes(text: &str) -> String {
    let is_b64 = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '=');
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("eyJ") {
        let run_len = rest[pos..]
            .find(|c: char| !is_b64(c))
            .unwrap_or(rest.len() - pos);
        out.push_str(&rest[..pos]);
        if run_len >= 16 {
            out.push_str(REDACTED);
        } else {
            out.push_str(&rest[pos..pos + run_len]);
        }
        rest = &rest[pos + run_len..];
    }
    out.push_str(rest);
    out
}

/// A JSON body as compact text with token-bearing fields and FedEx parameter values blanked.
pub(crate) fn json_excerpt(v: &Value) -> String {
    fn scrub(v: &Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, v)| {
                        let v = if is_token_field(k) {
                            Value::String(REDACTED.into())
                        } else if k == "parameterList" {
                            scrub_parameters(v)
                        } else {
                            scrub(v)
                        };
                        (k.clone(), v)
                    })
                    .collect(),
            ),
            Value::Array(a) => Value::Array(a.iter().map(scrub).collect()),
            other => other.clone(),
        }
    }
    fn scrub_parameters(v: &Value) -> Value {
        match v {
            Value::Array(a) => Value::Array(
                a.iter()
                    .map(|p| match p.get("key") {
                        Some(k) => serde_json::json!({ "key": k }),
                        None => Value::Null,
                    })
                    .collect(),
            ),
            _ => Value::Null,
        }
    }
    scrub(v).to_string()
}

fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub(crate) fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests;
