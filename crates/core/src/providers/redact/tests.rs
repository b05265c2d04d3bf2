//! Unit tests of the redaction and cleaning of provider text (the fuzz targets in
//! `tests/fuzz.rs` drive the same code with arbitrary input).

use super::*;
use crate::secret::Password;

#[test]
fn an_empty_token_value_before_multibyte_text_does_not_panic() {
    // The old cursor jumped 10 bytes past the empty value: into the 4-byte emoji.
    let text = r#"{"refresh_token":"}/]xxxx🕴%>"} {"error":"invalid_grant"}"#;
    let scrubbed = scrub_token_text(text);
    assert!(scrubbed.contains("invalid_grant"));
}

#[test]
fn clean_text_removes_escapes_controls_and_bidi_overrides() {
    assert_eq!(clean_text("\u{1b}]2;title\u{7}ok"), "ok");
    assert_eq!(clean_text("\u{1b}]8;;https://x\u{1b}\\link"), "link");
    assert_eq!(clean_text("\u{1b}[1;31mred\u{1b}[0m"), "red");
    assert_eq!(clean_text("a\u{0}b\u{7f}c\u{85}d\u{9b}e"), "abcde");
    assert_eq!(clean_text("tab\there\r\nnext"), "tab here  next");
    assert_eq!(
        clean_text("abc\u{202e}fed\u{202c}\u{2066}x\u{2069}"),
        "abcfedx"
    );
    assert_eq!(clean_text("สวัสดี ok"), "สวัสดี ok");
    // A secret with a control character in it is redacted before cleaning.
    let tabbed = Password::new("CANARY\tsecret");
    let r = Redactor::new(&[&tabbed], Vec::new());
    assert_eq!(r.clean("x CANARY\tsecret y"), "x [redacted] y");
    assert_eq!(r.clean("x CANARY secret y"), "x [redacted] y");
}

#[test]
fn truncate_counts_chars_not_bytes() {
    assert_eq!(truncate("สวัสดี", 3), "สวั…");
    assert_eq!(truncate("abc", 3), "abc");
}
