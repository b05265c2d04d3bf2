# Shared by Authdeck's scripts: `source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"`.
#
# Before sourcing, a script may set LOG_PREFIX (e.g. "e2e: ") for its step lines and
# FAIL_PREFIX (e.g. "e2e") for its error lines; both default to the script's name.
# Nothing here runs on its own: it only defines functions and constants.

LOG_PREFIX="${LOG_PREFIX-}"
FAIL_PREFIX="${FAIL_PREFIX-$(basename "$0" .sh)}"

# The tauri-driver release the desktop E2E tests are known to work with (pinned so a
# fresh machine gets the same WebDriver bridge as CI).
TAURI_DRIVER_VERSION=2.1.0

step() { printf '==> %s%s\n' "$LOG_PREFIX" "$*" >&2; }
fail() {
  printf '%s: error: %s\n' "$FAIL_PREFIX" "$*" >&2
  exit 1
}

# need TOOL... : fail with the install hint unless every TOOL is on PATH.
need() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || fail "$tool not found: run scripts/install-deps.sh (make deps)"
  done
}

# npm_ci_if_stale DIR: `npm ci` in DIR when its node_modules is missing or older than
# its lock file (npm rewrites node_modules/.package-lock.json on every install).
npm_ci_if_stale() {
  local dir="$1"
  if [[ ! -f "$dir/node_modules/.package-lock.json" || "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]]; then
    step "$dir: npm ci"
    npm --prefix "$dir" ci --no-audit --no-fund </dev/null || fail "npm ci in $dir failed"
  else
    step "$dir: node_modules up to date"
  fi
}

# start_xvfb DIR: start Xvfb on a free display (it writes the number to fd 3), export
# DISPLAY, and set XVFB_PID. Its log goes to DIR/xvfb.log. The caller stops it.
start_xvfb() {
  local dir="$1" _
  : >"$dir/display"
  Xvfb -displayfd 3 -screen 0 1280x860x24 -nolisten tcp 3>"$dir/display" >"$dir/xvfb.log" 2>&1 &
  XVFB_PID=$!
  for _ in $(seq 1 100); do
    [[ -s "$dir/display" ]] && break
    kill -0 "$XVFB_PID" 2>/dev/null || break
    sleep 0.1
  done
  [[ -s "$dir/display" ]] || {
    cat "$dir/xvfb.log" >&2
    fail "Xvfb did not start"
  }
  DISPLAY=":$(tr -d '[:space:]' <"$dir/display")"
  export DISPLAY
  # The app makes D-Bus activate xdg-desktop-portal(-gtk); give activated services the
  # display, or portal-gtk fails and is retried (and logs) a dozen times per start.
  dbus-update-activation-environment DISPLAY 2>/dev/null || true
}
