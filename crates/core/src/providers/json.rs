//! Lenient readers for provider JSON (numbers may be strings, blank strings are absent),
//! shared by the token parsers, the error classifier and the JWT decoder.

use serde_json::Value;

/// A non-empty string (trimmed), or a number as text.
pub(crate) fn string_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A number, or a string holding one (providers are not consistent).
pub(crate) fn number_of(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|n| n.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_may_be_strings() {
        use serde_json::json;
        assert_eq!(number_of(&json!("3600")), Some(3600.0));
        assert_eq!(number_of(&json!(" 12 ")), Some(12.0));
        assert_eq!(number_of(&json!(1.5)), Some(1.5));
        assert_eq!(number_of(&json!("soon")), None);
        assert_eq!(number_of(&json!(null)), None);
    }
}
