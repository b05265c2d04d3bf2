//! What scripts/e2e.sh tells the tests, and the state an app under test leaves:
//! the data directory, the keyring items, the URLs the fake browser opened.

use super::*;

/// What scripts/e2e.sh tells the tests.
#[derive(Debug, Clone)]
pub struct E2eEnv {
    /// The `authdeck` binary under test (debug build, UI embedded).
    pub app: PathBuf,
    /// tauri-driver, e.g. `http://127.0.0.1:4444`.
    pub webdriver: String,
    /// `AUTHDECK_DATA_DIR` of the app under test (throwaway).
    pub data_dir: PathBuf,
    /// `AUTHDECK_KEYRING_SERVICE` of the app under test (unique per run).
    pub keyring_service: String,
    /// The file the fake system browser (`$BROWSER`) appends each opened URL to.
    pub browser_log: PathBuf,
    /// Where the README screenshots go (docs/screenshots).
    pub screenshots: PathBuf,
    /// Where failure screenshots and page dumps go.
    pub artifacts: PathBuf,
}

const NOT_UNDER_E2E_SH: &str =
    "the desktop E2E tests drive the real app through tauri-driver under Xvfb, \
     in a private D-Bus session with a throwaway keyring: run them with `scripts/e2e.sh` \
     (or `make e2e`), not with a plain `cargo test`";

impl E2eEnv {
    /// Read the environment scripts/e2e.sh sets; panics with instructions when it is
    /// missing (no silent skip).
    pub fn from_env() -> E2eEnv {
        fn var(name: &str) -> String {
            match std::env::var(name) {
                Ok(v) if !v.is_empty() => v,
                _ => panic!("{NOT_UNDER_E2E_SH} (${name} is not set)"),
            }
        }
        for name in [
            "AUTHDECK_TEST_KEYRING",
            "DISPLAY",
            "DBUS_SESSION_BUS_ADDRESS",
        ] {
            var(name);
        }
        let env = E2eEnv {
            app: PathBuf::from(var("AUTHDECK_E2E_APP")),
            webdriver: var("AUTHDECK_E2E_WEBDRIVER"),
            data_dir: PathBuf::from(var("AUTHDECK_DATA_DIR")),
            keyring_service: var("AUTHDECK_KEYRING_SERVICE"),
            browser_log: PathBuf::from(var("AUTHDECK_E2E_BROWSER_LOG")),
            screenshots: PathBuf::from(var("AUTHDECK_E2E_SCREENSHOTS")),
            artifacts: PathBuf::from(var("AUTHDECK_E2E_ARTIFACTS")),
        };
        assert!(
            env.app.is_file(),
            "the app binary {} does not exist: scripts/e2e.sh builds it",
            env.app.display()
        );
        env
    }
}

/// The URLs the fake browser was asked to open, in order.
pub fn browser_urls(env: &E2eEnv) -> Vec<String> {
    std::fs::read_to_string(&env.browser_log)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The keyring items of the app under test: `user` → the lines secret-tool prints about
/// them, secrets left out.
pub fn keyring_keys(env: &E2eEnv) -> Result<Vec<String>> {
    let out = Command::new("secret-tool")
        .args([
            "search",
            "--all",
            "--unlock",
            "service",
            &env.keyring_service,
        ])
        .stdin(Stdio::null())
        .output()
        .context("running secret-tool (package libsecret-tools)")?;
    // secret-tool exits 1 when nothing matches.
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    Ok(text
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            l.strip_prefix("attribute.username = ")
                .or_else(|| l.strip_prefix("attribute.user = "))
                .or_else(|| l.strip_prefix("attribute.account = "))
                .map(str::to_owned)
        })
        .collect())
}

/// A first start: no database, no secrets, no opened URLs.
pub(crate) fn reset_state(env: &E2eEnv) -> Result<()> {
    if env.data_dir.exists() {
        std::fs::remove_dir_all(&env.data_dir)
            .with_context(|| format!("emptying {}", env.data_dir.display()))?;
    }
    let status = Command::new("secret-tool")
        .args(["clear", "service", &env.keyring_service])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("running secret-tool clear")?;
    let _ = status; // exits 1 when there was nothing to clear
    let left = keyring_keys(env)?;
    if !left.is_empty() {
        bail!(
            "could not empty the keyring service {}: {left:?}",
            env.keyring_service
        );
    }
    let _ = std::fs::remove_file(&env.browser_log);
    // The window's remembered size and position (tauri-plugin-window-state), in the
    // throwaway XDG_CONFIG_HOME, and the web view's storage (the language chosen in
    // Settings lives in its localStorage), in the throwaway XDG_DATA_HOME: every test
    // starts with the default window.
    if let Some(config) = std::env::var_os("XDG_CONFIG_HOME") {
        let _ = std::fs::remove_file(
            Path::new(&config)
                .join("com.authdeck.desktop")
                .join(".window-state.json"),
        );
    }
    if let Some(data) = std::env::var_os("XDG_DATA_HOME") {
        let webview = Path::new(&data).join("com.authdeck.desktop");
        for dir in ["storage", "localstorage"] {
            let _ = std::fs::remove_dir_all(webview.join(dir));
        }
    }
    Ok(())
}
