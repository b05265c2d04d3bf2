/// `const COMMANDS`: the names in src/command_list.rs, the app's one list of commands.
macro_rules! authdeck_commands {
    ($($name:ident),* $(,)?) => {
        const COMMANDS: &[&str] = &[$(stringify!($name)),*];
    };
}
include!("src/command_list.rs");

fn main() {
    // tauri.conf.json lives at the repository root (README, "How it works": the tree).
    let attributes = tauri_build::Attributes::new()
        .config_path("../tauri.conf.json")
        // Each command gets an `allow-…` permission; permissions/default.toml grants
        // them, and the main window's capability grants that set.
        .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS));
    if let Err(error) = tauri_build::try_build(attributes) {
        panic!("tauri-build failed: {error:#}");
    }
}
