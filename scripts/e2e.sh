#!/usr/bin/env bash
# Authdeck's desktop end-to-end tests: the real app binary in a real window, driven over
# WebDriver (tauri-driver → WebKitWebDriver), against the in-app provider emulator.
#
#   scripts/e2e.sh [TEST-NAME-FILTER...]        (make e2e)
#
# 1. Builds the UI (ui/dist) and the debug app binary that embeds it, and the tests.
# 2. Inside ONE private D-Bus session with an unlocked throwaway gnome-keyring
#    (scripts/with-keyring.sh) and an Xvfb display, with throwaway XDG dirs (the app's
#    URL-scheme handler and MIME defaults land there, not in yours), starts tauri-driver
#    and runs `cargo test -p authdeck-e2e -- --test-threads 1`.
# 3. Stops everything it started, whatever happened, and exits with the tests' code.
#
# The app under test sees AUTHDECK_DATA_DIR / AUTHDECK_KEYRING_SERVICE (throwaway dir,
# unique service), AUTHDECK_SANDBOX_PORT=47801 and a random AUTHDECK_EMULATOR_ADMIN_TOKEN
# (the in-app sandbox's port and /admin token, which the tests read too) and BROWSER = a script that records the URLs the app opens instead of
# opening a browser. Screenshots go to docs/screenshots/ (overwritten); failure
# screenshots, page dumps and logs to target/e2e-artifacts/.
#
# Environment: AUTHDECK_E2E_PORT (tauri-driver, default 4444; WebKitWebDriver gets the
# next port), AUTHDECK_E2E_UI_BUILD=0 (use ui/dist as it is), AUTHDECK_E2E_KEEP=1 (keep
# the throwaway dir).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo="$(pwd)"

LOG_PREFIX="e2e: " FAIL_PREFIX=e2e
source scripts/lib.sh

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if [[ "${1:-}" != "--inside-session" ]]; then
  # ---- Outside: check, build, prepare the throwaway dirs, enter the session. ---------
  CARGO="${CARGO:-cargo}"
  need Xvfb tauri-driver WebKitWebDriver dbus-run-session gnome-keyring-daemon secret-tool xdg-open
  port="${AUTHDECK_E2E_PORT:-4444}"
  for p in "$port" "$((port + 1))" 47801; do
    if port_in_use "$p"; then
      fail "127.0.0.1:$p is in use (tauri-driver, WebKitWebDriver and the app's sandbox need $port, $((port + 1)) and 47801): stop what holds it, or set AUTHDECK_E2E_PORT"
    fi
  done

  started=$SECONDS
  if [[ -f ui/package.json && "${AUTHDECK_E2E_UI_BUILD:-1}" != 0 ]]; then
    npm_ci_if_stale ui
    step "building the UI (ui/dist)"
    npm --prefix ui run build
  fi
  [[ -f ui/dist/index.html ]] || fail "ui/dist/index.html is missing: the UI must be built first (npm --prefix ui run build)"

  # A debug build embeds ui/dist too: tauri.conf.json has no devUrl, so the window loads
  # the bundled files from tauri://localhost (the smoke test checks it).
  step "building the app (target/debug/authdeck) and the tests"
  "$CARGO" build -p authdeck-app --bin authdeck
  # tests/team.rs runs `authdeckctl team init` as the other desktop.
  "$CARGO" build -p authdeck-cli --bin authdeckctl
  "$CARGO" test -p authdeck-e2e --no-run
  step "built in $((SECONDS - started)) s"

  tmp="$(mktemp -d "${TMPDIR:-/tmp}/authdeck-e2e.XXXXXXXX")"
  chmod 700 "$tmp"
  cleanup() {
    if [[ "${AUTHDECK_E2E_KEEP:-0}" == 1 ]]; then
      step "kept $tmp"
    else
      rm -rf "$tmp"
    fi
  }
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  mkdir -m 700 "$tmp/bin" "$tmp/data" "$tmp/config" "$tmp/cache" "$tmp/state" "$tmp/runtime"
  # The binary under test is a copy: a `cargo build` elsewhere cannot swap it mid-run.
  cp target/debug/authdeck "$tmp/bin/authdeck"
  # The "system browser": records the URL instead of opening it (xdg-open honours
  # $BROWSER when no desktop environment and no http handler is configured).
  cat >"$tmp/bin/fake-browser" <<'EOF'
#!/bin/sh
printf '%s\n' "$1" >>"$AUTHDECK_E2E_BROWSER_LOG"
EOF
  chmod 755 "$tmp/bin/fake-browser"
  # ... also when a real browser is installed: xdg-open (no desktop environment) asks
  # the MIME defaults for an http handler before it looks at $BROWSER, so the throwaway
  # defaults name the fake browser too.
  mkdir -p "$tmp/data/applications"
  cat >"$tmp/data/applications/authdeck-e2e-browser.desktop" <<EOF
[Desktop Entry]
Type=Application
Name=Authdeck E2E fake browser
Exec=$tmp/bin/fake-browser %u
NoDisplay=true
MimeType=x-scheme-handler/http;x-scheme-handler/https;
EOF
  cat >"$tmp/config/mimeapps.list" <<'EOF'
[Default Applications]
x-scheme-handler/http=authdeck-e2e-browser.desktop
x-scheme-handler/https=authdeck-e2e-browser.desktop
EOF

  artifacts="$repo/target/e2e-artifacts"
  rm -rf "$artifacts"
  mkdir -p "$artifacts" "$repo/docs/screenshots"

  export AUTHDECK_E2E_TMP="$tmp"
  export AUTHDECK_E2E_PORT="$port"
  export AUTHDECK_E2E_APP="$tmp/bin/authdeck"
  export AUTHDECK_E2E_WEBDRIVER="http://127.0.0.1:$port"
  export AUTHDECK_E2E_BROWSER_LOG="$tmp/browser.log"
  export AUTHDECK_E2E_SCREENSHOTS="$repo/docs/screenshots"
  export AUTHDECK_E2E_ARTIFACTS="$artifacts"
  export AUTHDECK_DATA_DIR="$tmp/authdeck-data"
  export AUTHDECK_KEYRING_SERVICE="authdeck-e2e-$$-$RANDOM"
  # The in-app sandbox: on the port the tests expect (it takes a free one otherwise),
  # with an admin token they know (honoured by debug builds only; never in argv).
  export AUTHDECK_SANDBOX_PORT=47801
  AUTHDECK_EMULATOR_ADMIN_TOKEN="$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')"
  export AUTHDECK_EMULATOR_ADMIN_TOKEN
  # Debug builds save the window's exports here instead of asking through the save
  # dialog (which WebDriver cannot drive).
  mkdir -m 700 "$tmp/exports"
  export AUTHDECK_E2E_EXPORT_DIR="$tmp/exports"
  export BROWSER="$tmp/bin/fake-browser"
  export XDG_DATA_HOME="$tmp/data" XDG_CONFIG_HOME="$tmp/config" XDG_CACHE_HOME="$tmp/cache"
  export XDG_STATE_HOME="$tmp/state" XDG_RUNTIME_DIR="$tmp/runtime"
  # No desktop environment: xdg-open falls back to $BROWSER.
  unset XDG_CURRENT_DESKTOP DESKTOP_SESSION GNOME_DESKTOP_SESSION_ID KDE_FULL_SESSION WAYLAND_DISPLAY DISPLAY
  export CARGO
  rc=0
  scripts/with-keyring.sh "${BASH_SOURCE[0]}" --inside-session "$@" || rc=$?
  # Logs of the app, tauri-driver and Xvfb, for the record (they hold no secrets).
  find "$tmp/data" -path '*com.authdeck.desktop/logs/*' -type f -exec cp {} "$artifacts/" \; 2>/dev/null || true
  cp "$tmp"/*.log "$artifacts/" 2>/dev/null || true
  if [[ -s "$artifacts/durations.txt" ]]; then
    step "tests:"
    sed 's/^/      /' "$artifacts/durations.txt" >&2
  fi
  step "finished in $((SECONDS - started)) s (exit $rc)"
  exit "$rc"
fi

# ---- Inside the private D-Bus session (keyring unlocked). ------------------------------
shift
tmp="$AUTHDECK_E2E_TMP"
port="$AUTHDECK_E2E_PORT"
xvfb_pid=""
driver_pid=""
stop() {
  for pid in "$driver_pid" "$xvfb_pid"; do
    [[ -n "$pid" ]] || continue
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  driver_pid=""
  xvfb_pid=""
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start_xvfb "$tmp"
xvfb_pid=$XVFB_PID
step "Xvfb on $DISPLAY"

tauri-driver --port "$port" --native-port "$((port + 1))" \
  --native-driver "$(command -v WebKitWebDriver)" >"$tmp/tauri-driver.log" 2>&1 &
driver_pid=$!
for _ in $(seq 1 100); do
  port_in_use "$port" && break
  kill -0 "$driver_pid" 2>/dev/null || break
  sleep 0.1
done
port_in_use "$port" || { cat "$tmp/tauri-driver.log" >&2; fail "tauri-driver did not listen on $port"; }
step "tauri-driver on 127.0.0.1:$port"

rc=0
"$CARGO" test -p authdeck-e2e -- --test-threads 1 "$@" || rc=$?
stop
exit "$rc"
