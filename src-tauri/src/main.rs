// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

/// What the command line asks for, decided before any Tauri/GTK initialisation so
/// `authdeck --version` and `--help` work without a display (packaging checks, support).
#[derive(Debug, PartialEq, Eq)]
enum Action {
    Version,
    Help,
    /// Start the app. Everything else, including a deep-link URL as the only argument
    /// (`authdeck 'com.authdeck.desktop:/oauth/callback?…'`), goes to the app untouched.
    Run,
}

fn action(args: &[std::ffi::OsString]) -> Action {
    match args.get(1).and_then(|arg| arg.to_str()) {
        Some("--version" | "-V") => Action::Version,
        Some("--help" | "-h") => Action::Help,
        _ => Action::Run,
    }
}

fn version_line() -> String {
    format!("authdeck {}", env!("CARGO_PKG_VERSION"))
}

const HELP: &str = "\
Authdeck: OAuth connection manager for FlowAccount, FedEx and IoT-platform accounts.

Usage:
  authdeck                 start the app (or bring the running window forward)
  authdeck URL             hand a com.authdeck.desktop: redirect URL to the app
  authdeck --version, -V   print the version and exit
  authdeck --help, -h      print this help and exit

The command-line client is authdeckctl.";

fn main() {
    if let Err(e) = authdeck_core::process::harden() {
        eprintln!("authdeck: could not keep secrets out of core dumps: {e}");
        std::process::exit(1);
    }
    let args: Vec<_> = std::env::args_os().collect();
    match action(&args) {
        Action::Version => println!("{}", version_line()),
        Action::Help => println!("{}\n\n{HELP}", version_line()),
        Action::Run => authdeck_app::run(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<std::ffi::OsString> {
        list.iter().map(Into::into).collect()
    }

    #[test]
    fn version_and_help_flags_are_recognised() {
        assert_eq!(action(&args(&["authdeck", "--version"])), Action::Version);
        assert_eq!(action(&args(&["authdeck", "-V"])), Action::Version);
        assert_eq!(action(&args(&["authdeck", "--help"])), Action::Help);
        assert_eq!(action(&args(&["authdeck", "-h"])), Action::Help);
        assert_eq!(
            version_line(),
            format!("authdeck {}", env!("CARGO_PKG_VERSION"))
        );
    }

    #[test]
    fn a_redirect_url_or_nothing_starts_the_app() {
        assert_eq!(action(&args(&["authdeck"])), Action::Run);
        assert_eq!(
            action(&args(&[
                "authdeck",
                "com.authdeck.desktop:/oauth/callback?state=x&code=y"
            ])),
            Action::Run
        );
    }

    #[test]
    fn the_binary_version_is_the_packaged_version() {
        // The .deb takes its version from tauri.conf.json; `authdeck --version` from Cargo.
        let config: serde_json::Value = serde_json::from_str(include_str!("../../tauri.conf.json"))
            .expect("tauri.conf.json is JSON");
        assert_eq!(config["version"], env!("CARGO_PKG_VERSION"));
    }
}
