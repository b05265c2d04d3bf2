//! The four shapes of a provider's error answer (RFC 6749 §5.2, FedEx `errors[]`, the
//! IoT platform's `{status, error|message}`, non-JSON), read into one [`ParsedBody`], and
//! the 2xx bodies that are errors in disguise.

use serde_json::{Map, Value};

use crate::providers::json::{number_of, string_of};
use crate::providers::redact::{json_excerpt, Redactor};

/// What the body of an error answer turned out to be.
#[derive(Debug)]
pub(super) enum ParsedBody {
    Empty,
    Json(Value),
    Text(String),
}

impl ParsedBody {
    pub(super) fn parse(body: &[u8]) -> Self {
        let text = String::from_utf8_lossy(body);
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Self::Empty;
        }
        match serde_json::from_str::<Value>(trimmed) {
            Ok(v) => Self::Json(v),
            Err(_) => Self::Text(trimmed.to_string()),
        }
    }

    fn object(&self) -> Option<&Map<String, Value>> {
        match self {
            Self::Json(Value::Object(m)) => Some(m),
            _ => None,
        }
    }

    /// RFC 6749 `error`, or an `error` object's `code`.
    pub(super) fn oauth_error(&self) -> Option<String> {
        let m = self.object()?;
        match m.get("error")? {
            Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
            Value::Object(inner) => string_of(inner.get("code")?),
            _ => None,
        }
    }

    /// FedEx `errors[].code`, in order.
    pub(super) fn fedex_codes(&self) -> Vec<String> {
        self.fedex_errors()
            .filter_map(|e| e.get("code").and_then(string_of))
            .collect()
    }

    fn fedex_errors(&self) -> impl Iterator<Item = &Map<String, Value>> {
        self.object()
            .and_then(|m| m.get("errors"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_object)
    }

    /// The provider's own error code, whichever shape carried it.
    pub(super) fn primary_code(&self) -> Option<String> {
        self.oauth_error()
            .or_else(|| self.fedex_codes().into_iter().next())
    }

    /// The human text the provider sent (`error_description`, IoT `message`, or an
    /// IoT `error` sentence).
    pub(super) fn description(&self) -> Option<String> {
        let m = self.object()?;
        for key in ["error_description", "message", "error_message", "detail"] {
            if let Some(s) = m.get(key).and_then(string_of) {
                return Some(s);
            }
        }
        if let Some(Value::Object(inner)) = m.get("error") {
            return inner.get("message").and_then(string_of);
        }
        None
    }

    /// FedEx `parameterList[].value`s: never shown, and redacted if echoed elsewhere.
    pub(super) fn parameter_values(&self) -> Vec<String> {
        self.fedex_errors()
            .filter_map(|e| e.get("parameterList").and_then(Value::as_array))
            .flatten()
            .filter_map(|p| p.get("value").and_then(string_of))
            .collect()
    }

    fn body_status(&self) -> Option<u16> {
        self.object()
            .and_then(|m| m.get("status"))
            .and_then(number_of)
            .and_then(|n| u16::try_from(n as i64).ok())
    }

    /// Appends `; …` parts describing the body to `out`.
    pub(super) fn describe(&self, r: &Redactor, out: &mut String) {
        match self {
            Self::Empty => out.push_str("; empty body"),
            Self::Text(t) => {
                out.push_str("; not JSON: ");
                out.push_str(&r.excerpt(&strip_markup(t)));
            }
            Self::Json(v) => {
                let Some(m) = v.as_object() else {
                    out.push_str("; JSON: ");
                    out.push_str(&r.excerpt(&json_excerpt(v)));
                    return;
                };
                let mut known = false;
                if let Some(e) = self.oauth_error() {
                    out.push_str(&format!("; error={}", r.excerpt(&e)));
                    known = true;
                }
                for item in self.fedex_errors() {
                    known = true;
                    let code = item.get("code").and_then(string_of).unwrap_or_default();
                    out.push_str(&format!("; FedEx {}", r.excerpt(&code)));
                    if let Some(msg) = item.get("message").and_then(string_of) {
                        out.push_str(&format!(": {}", r.excerpt(&msg)));
                    }
                    let keys: Vec<String> = item
                        .get("parameterList")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(|p| p.get("key").and_then(string_of))
                        .collect();
                    if !keys.is_empty() {
                        out.push_str(&format!(" (parameters: {})", r.excerpt(&keys.join(", "))));
                    }
                }
                if let Some(s) = self.body_status() {
                    out.push_str(&format!("; status={s}"));
                    known = true;
                }
                if let Some(d) = self.description() {
                    out.push_str(&format!("; {}", r.excerpt(&d)));
                    known = true;
                }
                if let Some(uri) = m.get("error_uri").and_then(string_of) {
                    out.push_str(&format!("; see {}", r.excerpt(&uri)));
                }
                if let Some(t) = m.get("transactionId").and_then(string_of) {
                    out.push_str(&format!("; transactionId={}", r.excerpt(&t)));
                }
                if !known {
                    out.push_str("; JSON: ");
                    out.push_str(&r.excerpt(&json_excerpt(v)));
                }
            }
        }
    }
}

/// HTML error pages say what they are in their text; drop the tags around it.
fn strip_markup(text: &str) -> String {
    if !text.starts_with('<') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut in_tag = false;
    for ch in text.chars() {
        match ch {
            '<' => {
                in_tag = true;
                out.push(' ');
            }
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    format!("(HTML) {}", out.trim())
}

/// If a 2xx body is really an error in disguise (`{status: 401, error: "…"}`, as the
/// IoT platform may send), the status it claims; `None` when it looks like success.
pub(crate) fn embedded_error_status(body: &Value) -> Option<u16> {
    let m = body.as_object()?;
    let status = m.get("status").and_then(number_of).map(|n| n as i64);
    let has_error = match m.get("error") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::String(s)) => !s.trim().is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(_) => true,
    } || m
        .get("errors")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    match status {
        Some(s) if !(200..300).contains(&s) => Some(u16::try_from(s).unwrap_or(400).max(400)),
        _ if has_error => Some(400),
        _ => None,
    }
}
