//! Display-only JWT decoding: the header and claims of an access token, so the details
//! panel can show issuer, subject and `exp`. **No signature check**: nothing here is
//! trusted for a security decision; the provider is the one that validates its tokens.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::model::JwtSummary;
use crate::providers::json::{number_of, string_of};

/// Decodes a compact JWS (`header.claims.signature`). `None` when the token is not one
/// (opaque tokens, JWE, garbage): that is normal, not an error.
pub fn decode(token: &str) -> Option<JwtSummary> {
    let mut parts = token.trim().split('.');
    let (header, claims, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    // Shown and stored like any provider text: cleaned of escapes and control characters.
    let clean = crate::providers::redact::Redactor::new(&[], Vec::new());
    let header = clean.clean_json(&decode_object(header)?);
    let claims = clean.clean_json(&decode_object(claims)?);
    Some(JwtSummary { header, claims })
}

/// The `exp` claim (NumericDate, epoch seconds; RFC 7519 §4.1.4). Tolerates a numeric
/// string or a fractional value.
pub fn exp(summary: &JwtSummary) -> Option<DateTime<Utc>> {
    let secs = number_of(summary.claims.get("exp")?)?;
    DateTime::from_timestamp_millis((secs * 1000.0).round() as i64)
}

/// `ctx.owner` of an IoT user token (PROVIDERS.md §3), the user id sent on refresh.
pub fn ctx_owner(summary: &JwtSummary) -> Option<String> {
    string_of(summary.claims.get("ctx")?.get("owner")?)
}

fn decode_object(part: &str) -> Option<Value> {
    // base64url without padding per RFC 7515, but tolerate padding.
    let bytes = URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).ok()?;
    match serde_json::from_slice::<Value>(&bytes).ok()? {
        v @ Value::Object(_) => Some(v),
        _ => None,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    /// A JWT with the given claims and a fake signature (tests only).
    pub(crate) fn make(claims: &Value) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
        format!("{header}.{claims}.c2lnbmF0dXJl")
    }

    #[test]
    fn decodes_header_and_claims() {
        let t = make(
            &json!({"ctx":{"owner":"U974814773204"},"iat":1700000000,"exp":1700086400,"iss":"cer:usertoken"}),
        );
        let s = decode(&t).unwrap();
        assert_eq!(s.header["alg"], "HS256");
        assert_eq!(s.claims["iss"], "cer:usertoken");
        assert_eq!(exp(&s).unwrap().timestamp(), 1_700_086_400);
        assert_eq!(ctx_owner(&s).as_deref(), Some("U974814773204"));
    }

    #[test]
    fn tolerates_padding() {
        use base64::engine::general_purpose::URL_SAFE;
        // 22 bytes of claims: base64 needs "==" padding.
        let claims = URL_SAFE.encode(br#"{"exp":"1700000000"}  "#);
        assert!(claims.ends_with('='), "{claims}");
        let header = URL_SAFE.encode(br#"{"alg":"none"}"#);
        let s = decode(&format!("{header}.{claims}.")).unwrap();
        assert_eq!(exp(&s).unwrap().timestamp(), 1_700_000_000);
    }

    #[test]
    fn garbage_is_not_a_jwt() {
        for t in [
            "",
            "opaque-token-123",
            "a.b",
            "a.b.c",
            "a.b.c.d.e",
            "e30.bm90LWpzb24.sig", // claims not JSON
            "e30.WzFd.sig",        // claims a JSON array
            "!!!.e30.sig",
        ] {
            assert!(decode(t).is_none(), "{t}");
        }
        // "{}" . "{}" is a (silly) JWT without exp.
        let s = decode("e30.e30.").unwrap();
        assert_eq!(exp(&s), None);
        assert_eq!(ctx_owner(&s), None);
    }
}
