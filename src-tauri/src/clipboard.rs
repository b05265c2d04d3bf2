//! Copy an access token to the clipboard, and take it away again after
//! [`CLEAR_AFTER`] if the clipboard still holds it (what password managers do). All in
//! Rust: the token never enters the web view, and neither it nor what the clipboard
//! holds is ever logged.
//!
//! The token is written with the "secret" hints clipboard managers honour (they keep
//! it out of their history). After the delay the clipboard is read back, compared with
//! the token in constant time, and cleared only if they are equal: whatever the user
//! copied since is left alone. The read-back is zeroized. If the clipboard cannot be
//! read then, it is left as it is (it may hold something of the user's).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

#[cfg(test)]
use authdeck_core::AccessToken;
use authdeck_core::AnySecret;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// How long a copied token stays on the clipboard.
pub const CLEAR_AFTER: Duration = Duration::from_secs(45);

/// What the clearing needs from a clipboard (Tauri's plugin in the app, a fake in tests).
pub trait Clipboard: Send + Sync + 'static {
    /// Write `text`, marked as a secret for clipboard managers.
    fn write_secret(&self, text: &str) -> Result<(), String>;
    /// The clipboard's text now.
    fn read_text(&self) -> Result<Zeroizing<String>, String>;
    fn clear(&self) -> Result<(), String>;
}

/// What happened when the time was up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The clipboard still held the token: it was cleared.
    Cleared,
    /// The clipboard holds something else now: left alone.
    Changed,
    /// The clipboard could not be read or cleared: left as it is.
    Failed,
}

/// Clear the clipboard if it still holds `copied`.
pub fn clear_if_unchanged(clipboard: &dyn Clipboard, copied: &dyn AnySecret) -> Outcome {
    let Ok(current) = clipboard.read_text() else {
        return Outcome::Failed;
    };
    let same: bool = current.as_bytes().ct_eq(copied.expose().as_bytes()).into();
    drop(current); // zeroized
    if !same {
        return Outcome::Changed;
    }
    match clipboard.clear() {
        Ok(()) => Outcome::Cleared,
        Err(_) => Outcome::Failed,
    }
}

/// Write `token` to the clipboard; the returned future waits [`CLEAR_AFTER`] with
/// `sleep` and then clears the clipboard if it still holds the token. The clock is
/// injected: the app passes `tokio::time::sleep`, tests a timer they fire themselves.
pub fn copy<C, T, S, F>(
    clipboard: Arc<C>,
    token: T,
    sleep: S,
) -> Result<impl Future<Output = Outcome> + Send + 'static, String>
where
    C: Clipboard,
    T: AnySecret + 'static,
    S: FnOnce(Duration) -> F + Send + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    clipboard.write_secret(token.expose())?;
    Ok(async move {
        sleep(CLEAR_AFTER).await;
        // Clipboard calls block (and must not run on the main thread).
        tokio::task::spawn_blocking(move || {
            let outcome = clear_if_unchanged(&*clipboard, &token);
            tracing::debug!(?outcome, "copied token's time on the clipboard is up");
            outcome
        })
        .await
        .unwrap_or(Outcome::Failed)
    })
}

/// The system clipboard, through tauri-plugin-clipboard-manager.
pub struct SystemClipboard<R: tauri::Runtime>(pub tauri::AppHandle<R>);

impl<R: tauri::Runtime> Clipboard for SystemClipboard<R> {
    fn write_secret(&self, text: &str) -> Result<(), String> {
        use tauri_plugin_clipboard_manager::ClipboardExt;
        self.0
            .clipboard()
            .write_secret(text)
            .map_err(|e| e.to_string())
    }

    fn read_text(&self) -> Result<Zeroizing<String>, String> {
        use tauri_plugin_clipboard_manager::ClipboardExt;
        // Not the error's text: it could quote what the clipboard holds.
        self.0
            .clipboard()
            .read_text()
            .map(Zeroizing::new)
            .map_err(|_| "the clipboard could not be read".to_owned())
    }

    fn clear(&self) -> Result<(), String> {
        use tauri_plugin_clipboard_manager::ClipboardExt;
        self.0.clipboard().clear().map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use tokio::sync::oneshot;

    use super::*;

    /// A clipboard in memory.
    #[derive(Default)]
    struct Fake {
        text: Mutex<Option<String>>,
        writes: Mutex<Vec<String>>,
    }

    impl Fake {
        fn user_copies(&self, text: &str) {
            *self.text.lock().unwrap() = Some(text.to_owned());
        }
        fn holds(&self) -> Option<String> {
            self.text.lock().unwrap().clone()
        }
    }

    impl Clipboard for Fake {
        fn write_secret(&self, text: &str) -> Result<(), String> {
            self.writes.lock().unwrap().push(text.to_owned());
            self.user_copies(text);
            Ok(())
        }
        fn read_text(&self) -> Result<Zeroizing<String>, String> {
            self.holds()
                .map(Zeroizing::new)
                .ok_or_else(|| "no text".to_owned())
        }
        fn clear(&self) -> Result<(), String> {
            *self.text.lock().unwrap() = None;
            Ok(())
        }
    }

    type Sleeping = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

    /// The test's side of a timer: fire it; see what delay was asked for.
    struct Timer {
        fire: oneshot::Sender<()>,
        asked: Arc<Mutex<Option<Duration>>>,
    }

    /// A timer the test fires: `sleep` resolves when `Timer::fire` is sent.
    fn timer() -> (impl FnOnce(Duration) -> Sleeping + Send, Timer) {
        let (fire, fired) = oneshot::channel::<()>();
        let asked = Arc::new(Mutex::new(None));
        let record = asked.clone();
        let sleep = move |d: Duration| {
            *record.lock().unwrap() = Some(d);
            Box::pin(async move {
                let _ = fired.await;
            }) as Sleeping
        };
        (sleep, Timer { fire, asked })
    }

    #[tokio::test]
    async fn the_token_is_cleared_after_45_seconds_if_it_is_still_there() {
        let clipboard = Arc::new(Fake::default());
        let (sleep, Timer { fire, asked }) = timer();
        let later = copy(clipboard.clone(), AccessToken::new("tok-1"), sleep).unwrap();
        let task = tokio::spawn(later);
        assert_eq!(clipboard.holds().as_deref(), Some("tok-1"));
        tokio::task::yield_now().await;
        assert_eq!(*asked.lock().unwrap(), Some(Duration::from_secs(45)));
        assert_eq!(
            clipboard.holds().as_deref(),
            Some("tok-1"),
            "not before the time"
        );
        fire.send(()).unwrap();
        assert_eq!(task.await.unwrap(), Outcome::Cleared);
        assert_eq!(clipboard.holds(), None);
        assert_eq!(*clipboard.writes.lock().unwrap(), ["tok-1"]);
    }

    #[tokio::test]
    async fn what_the_user_copied_since_is_left_alone() {
        let clipboard = Arc::new(Fake::default());
        let (sleep, Timer { fire, .. }) = timer();
        let task = tokio::spawn(copy(clipboard.clone(), AccessToken::new("tok-1"), sleep).unwrap());
        clipboard.user_copies("an invoice number");
        fire.send(()).unwrap();
        assert_eq!(task.await.unwrap(), Outcome::Changed);
        assert_eq!(clipboard.holds().as_deref(), Some("an invoice number"));
    }

    #[tokio::test]
    async fn a_second_copy_is_cleared_by_its_own_timer_only() {
        let clipboard = Arc::new(Fake::default());
        let (sleep1, Timer { fire: fire1, .. }) = timer();
        let (sleep2, Timer { fire: fire2, .. }) = timer();
        let first =
            tokio::spawn(copy(clipboard.clone(), AccessToken::new("tok-1"), sleep1).unwrap());
        let second =
            tokio::spawn(copy(clipboard.clone(), AccessToken::new("tok-12"), sleep2).unwrap());
        fire1.send(()).unwrap();
        assert_eq!(first.await.unwrap(), Outcome::Changed);
        assert_eq!(clipboard.holds().as_deref(), Some("tok-12"));
        fire2.send(()).unwrap();
        assert_eq!(second.await.unwrap(), Outcome::Cleared);
        assert_eq!(clipboard.holds(), None);
    }

    #[test]
    fn an_unreadable_clipboard_is_left_as_it_is() {
        let clipboard = Fake::default(); // holds no text (say, an image)
        assert_eq!(
            clear_if_unchanged(&clipboard, &AccessToken::new("tok")),
            Outcome::Failed
        );
        // A prefix or an extension of the token is not the token.
        clipboard.user_copies("tok-1");
        assert_eq!(
            clear_if_unchanged(&clipboard, &AccessToken::new("tok")),
            Outcome::Changed
        );
        assert_eq!(
            clear_if_unchanged(&clipboard, &AccessToken::new("tok-10")),
            Outcome::Changed
        );
        assert_eq!(clipboard.holds().as_deref(), Some("tok-1"));
    }
}
