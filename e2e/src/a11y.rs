//! Accessibility checks of the harness: axe-core (from ui/node_modules, the UI's dev
//! dependency) injected into the window through WebDriver, keyboard input through
//! WebDriver actions, and "is the focus visible" at each stop.

use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use fantoccini::actions::{InputSource as _, KeyAction, KeyActions};
use serde_json::{json, Value};

use crate::Ui;

/// WebDriver key codes.
pub const TAB: char = '\u{e004}';
pub const ENTER: char = '\u{e007}';
pub const SHIFT: char = '\u{e008}';
pub const ESCAPE: char = '\u{e00c}';
pub const SPACE: char = '\u{e00d}';
pub const ARROW_RIGHT: char = '\u{e014}';

/// axe-core's browser build, installed by `npm ci` in ui/ (a dev dependency).
fn axe_source() -> Result<String> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../ui/node_modules/axe-core/axe.min.js"
    );
    std::fs::read_to_string(path).with_context(|| {
        format!("reading {path}: axe-core is a dev dependency of ui/ (npm --prefix ui ci)")
    })
}

/// The result of one axe run: every violation (rule, impact, where), and how many
/// are serious or critical.
#[derive(Debug, Clone)]
pub struct AxeReport {
    pub view: String,
    pub violations: Vec<Value>,
}

impl AxeReport {
    pub fn serious(&self) -> Vec<&Value> {
        self.violations
            .iter()
            .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
            .collect()
    }

    /// One line per violation: `impact rule-id (n nodes): help — first target`.
    pub fn lines(&self) -> Vec<String> {
        self.violations
            .iter()
            .map(|v| {
                let nodes = v["nodes"].as_array().map(Vec::len).unwrap_or(0);
                format!(
                    "{} {} ({nodes} nodes): {} — {}",
                    v["impact"].as_str().unwrap_or("?"),
                    v["id"].as_str().unwrap_or("?"),
                    v["help"].as_str().unwrap_or(""),
                    v["nodes"][0]["target"].as_str().unwrap_or(""),
                )
            })
            .collect()
    }
}

const RUN_AXE: &str = r#"
const done = arguments[arguments.length - 1];
window.axe.run(document, { resultTypes: ['violations'] }).then(
  (r) => done(r.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 8).map((n) => ({
      target: n.target.join(' '), html: n.html.slice(0, 240), summary: n.failureSummary,
    })),
  }))),
  (e) => done({ error: String(e) }),
);
"#;

impl Ui {
    /// Run axe-core on the window as it is now; fails on any serious or critical
    /// violation (listing them), and records every violation in
    /// `<artifacts>/axe.txt`.
    pub async fn axe(&self, view: &str) -> Result<AxeReport> {
        let loaded = self
            .js("return typeof window.axe === 'object'", vec![])
            .await?;
        if loaded != json!(true) {
            let source = axe_source()?;
            self.js(&format!("{source}\n;return typeof window.axe;"), vec![])
                .await
                .context("injecting axe-core")?;
        }
        let result = tokio::time::timeout(
            Duration::from_secs(60),
            self.c.execute_async(RUN_AXE, vec![]),
        )
        .await
        .context("axe.run did not finish within 60 s")?
        .context("running axe")?;
        if let Some(e) = result.get("error") {
            bail!("axe.run failed on {view}: {e}");
        }
        let report = AxeReport {
            view: view.to_owned(),
            violations: result.as_array().cloned().unwrap_or_default(),
        };
        let mut text = format!("{view}: {} violations\n", report.violations.len());
        for line in report.lines() {
            text.push_str(&format!("  {line}\n"));
        }
        eprint!("[e2e] axe {text}");
        let _ = std::fs::create_dir_all(&self.env.artifacts);
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.env.artifacts.join("axe.txt"))
        {
            use std::io::Write as _;
            let _ = f.write_all(text.as_bytes());
        }
        let serious = report.serious();
        if !serious.is_empty() {
            bail!(
                "axe found {} serious or critical violations on {view}:\n{}",
                serious.len(),
                serde_json::to_string_pretty(&serious)?
            );
        }
        Ok(report)
    }

    /// Press and release keys (held in order, released in reverse): `press(&[TAB])`,
    /// `press(&[SHIFT, TAB])`.
    pub async fn press(&self, keys: &[char]) -> Result<()> {
        let mut actions = KeyActions::new("keyboard".into());
        for &k in keys {
            actions = actions.then(KeyAction::Down { value: k });
        }
        for &k in keys.iter().rev() {
            actions = actions.then(KeyAction::Up { value: k });
        }
        self.c
            .perform_actions(actions)
            .await
            .context("pressing keys")?;
        Ok(())
    }

    /// The focused element: a description, whether it matches `css`, and whether its
    /// focus is visible (an outline or box-shadow drawn for it, and a box on screen).
    pub async fn focus(&self, css: &str) -> Result<Value> {
        self.js(
            r#"
const e = document.activeElement;
if (!e || e === document.body || e === document.documentElement) {
  return { none: true, matches: false, visible: false, what: 'body' };
}
const s = getComputedStyle(e);
const outline = s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0;
const shadow = s.boxShadow !== '' && s.boxShadow !== 'none';
const r = e.getBoundingClientRect();
const onScreen = r.width > 0 && r.height > 0 && r.bottom > 0 && r.right > 0
  && r.top < innerHeight && r.left < innerWidth;
const id = e.getAttribute('data-testid');
const what = e.tagName.toLowerCase() + (id ? `[data-testid=${id}]` : '')
  + (e.className && typeof e.className === 'string' ? '.' + e.className.trim().split(/\s+/).join('.') : '')
  + ' "' + (e.getAttribute('aria-label') || e.textContent || '').trim().slice(0, 40) + '"';
return { none: false, matches: e.matches(arguments[0]), visible: (outline || shadow) && onScreen,
         outline, shadow, onScreen, what };
"#,
            vec![json!(css)],
        )
        .await
    }

    /// Press Tab (Shift+Tab with `back`) until the focused element matches `css`, at
    /// most `max` times; every stop on the way must show its focus. Returns the stops.
    pub async fn tab_to(&self, css: &str, max: usize, back: bool) -> Result<Vec<String>> {
        let mut stops = Vec::new();
        for _ in 0..max {
            if back {
                self.press(&[SHIFT, TAB]).await?;
            } else {
                self.press(&[TAB]).await?;
            }
            // Let focus handlers and scrolling run.
            tokio::time::sleep(Duration::from_millis(60)).await;
            let f = self.focus(css).await?;
            let what = f["what"].as_str().unwrap_or("?").to_owned();
            if f["none"] != json!(true) && f["visible"] != json!(true) {
                bail!("the focus is not visible at {what} ({f}); stops so far: {stops:#?}");
            }
            stops.push(what);
            if f["matches"] == json!(true) {
                return Ok(stops);
            }
        }
        bail!("{css} was not reached in {max} Tab presses; stops: {stops:#?}")
    }

    /// Assert the focused element matches `css` and shows its focus.
    pub async fn expect_focus(&self, css: &str) -> Result<()> {
        let f = self.focus(css).await?;
        if f["matches"] != json!(true) || f["visible"] != json!(true) {
            bail!("expected a visible focus on {css}, got {f}");
        }
        Ok(())
    }
}
