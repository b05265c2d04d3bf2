//! Text a provider sends through the browser (an authorization error in the redirect)
//! is cleaned like its HTTP answers: no terminal escapes, control characters or bidi
//! overrides reach the history or the terminal.

use authdeck_core::authorize::{parse_callback, CallbackOutcome};

#[test]
fn a_redirects_error_text_is_cleaned_of_escapes_and_bidi_overrides() {
    // error_description = ESC ] 2 ; x BEL "denied" RLO "ok" ; scope = ESC [ 2 J "read"
    let cb = parse_callback(
        "com.authdeck.desktop:/oauth/callback?state=s&error=access_denied\
         &error_description=%1B%5D2%3Bx%07denied%E2%80%AEok&scope=%1B%5B2Jread",
    )
    .unwrap();
    match cb.outcome {
        CallbackOutcome::Denied { error, description } => {
            assert_eq!(error, "access_denied");
            assert_eq!(description.as_deref(), Some("deniedok"));
        }
        other => panic!("expected a denial, got {other:?}"),
    }
    assert_eq!(cb.scope.as_deref(), Some("read"));
}
