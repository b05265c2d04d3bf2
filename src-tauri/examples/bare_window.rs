//! The memory baseline of `make bench`: a bare Tauri window built from the same
//! dependencies as the app (same tauri crate and features, release profile), no plugins,
//! showing a one-line HTML page. scripts/bench.sh measures its PSS (process + WebKit
//! processes) next to the app's.
//!
//! `cargo build --release -p authdeck-app --features custom-protocol --example bare_window`

use tauri::{WebviewUrl, WebviewWindowBuilder};

const PAGE: &[u8] = b"<!doctype html><html><head><meta charset=\"utf-8\"><title>bare</title></head><body>bare window</body></html>";

fn main() {
    let mut context = authdeck_app::context::<tauri::Wry>();
    // The app's own window would load the app's UI: make a bare one instead.
    context.config_mut().app.windows.clear();
    tauri::Builder::default()
        .register_uri_scheme_protocol("bare", |_ctx, _request| {
            tauri::http::Response::builder()
                .header("Content-Type", "text/html; charset=utf-8")
                .body(PAGE.to_vec())
                .expect("a static response")
        })
        .setup(|app| {
            let url = "bare://localhost/".parse().expect("a static URL");
            WebviewWindowBuilder::new(app, "bare", WebviewUrl::CustomProtocol(url))
                .title("bare")
                .inner_size(1180.0, 760.0)
                .build()?;
            println!("bare window up");
            Ok(())
        })
        .run(context)
        .expect("the bare window runs");
}
