//! Compact HS256 JWTs, as the FedEx and IoT stand-ins issue them.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

pub(crate) fn sign(key: &[u8], claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signing_input = format!("{header}.{payload}");
    let signature =
        URL_SAFE_NO_PAD.encode(mac(key, signing_input.as_bytes()).finalize().into_bytes());
    format!("{signing_input}.{signature}")
}

/// The claims of a token this key signed, or `None` (no expiry check here).
pub(crate) fn verify(key: &[u8], token: &str) -> Option<Value> {
    let (signing_input, signature) = token.rsplit_once('.')?;
    let (_, payload) = signing_input.split_once('.')?;
    let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
    mac(key, signing_input.as_bytes())
        .verify_slice(&signature)
        .ok()?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
}

fn mac(key: &[u8], data: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(data);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_and_verifies_and_rejects_tampering() {
        let key = [7u8; 32];
        let token = sign(&key, &serde_json::json!({"sub": "x", "exp": 1}));
        assert_eq!(verify(&key, &token).expect("valid")["sub"], "x");
        assert!(verify(&[8u8; 32], &token).is_none());
        let mut tampered = token.clone();
        tampered.insert(token.find('.').expect("dot") + 2, 'A');
        assert!(verify(&key, &tampered).is_none());
        assert!(verify(&key, "not-a-jwt").is_none());
    }
}
