#!/usr/bin/env bash
# Install what Authdeck needs to build, test and run on Debian 12 / Ubuntu 22.04+.
#
# Idempotent: every step checks first and does nothing when its work is already done,
# so `make test` / `make run` can call it every time. Uses sudo only when not root.
# Non-interactive (CI runs it with no stdin).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

FAIL_PREFIX=install-deps
source scripts/lib.sh

# System packages: Tauri 2's Linux prerequisites, the headless display and WebDriver
# for end-to-end tests, and a Secret Service (gnome-keyring) + session D-Bus for the
# keyring tests (scripts/with-keyring.sh); the openssl CLI makes the team store's TLS test
# cluster's certificates (crates/team/src/testing.rs); iproute2 (`ip netns`, veth) gives
# the team store's partition tests their network namespaces (crates/team/src/testing/netns.rs);
# systemd's systemd-analyze verifies the agent's user unit in the package test.
APT_PACKAGES=(
  libwebkit2gtk-4.1-dev
  build-essential
  file
  libxdo-dev
  libssl-dev
  libayatana-appindicator3-dev
  librsvg2-dev
  pkg-config
  xvfb
  xauth
  webkit2gtk-driver
  dbus
  dbus-user-session
  gnome-keyring
  libsecret-tools
  xdg-utils
  desktop-file-utils
  openssl
  locales
  iproute2
  systemd
)

if [[ "$(id -u)" -eq 0 ]]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  SUDO=()
fi

command -v dpkg-query >/dev/null 2>&1 \
  || fail "dpkg-query not found: this script supports Debian/Ubuntu only. Install the equivalents of: ${APT_PACKAGES[*]}"

is_installed() {
  [[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" == "installed" ]]
}

# --- 1. System packages ------------------------------------------------------------
step "checking ${#APT_PACKAGES[@]} system packages"
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  is_installed "$pkg" || missing+=("$pkg")
done

if [[ ${#missing[@]} -eq 0 ]]; then
  step "system packages: all present"
else
  if [[ "$(id -u)" -ne 0 && ${#SUDO[@]} -eq 0 ]]; then
    fail "missing packages (${missing[*]}) and not root, and sudo is not installed. Install them as root and re-run."
  fi
  step "system packages: installing ${missing[*]}"
  # apt's chatter goes to a log, shown only when something fails.
  log="$(mktemp "${TMPDIR:-/tmp}/authdeck-apt.XXXXXX.log")"
  apt() {
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q "$@" </dev/null >>"$log" 2>&1 \
      || { tail -n 30 "$log" >&2; fail "apt-get $1 failed (full log: $log)"; }
  }
  step "system packages: apt-get update"
  apt update
  step "system packages: apt-get install"
  apt install -y --no-install-recommends "${missing[@]}"
  rm -f "$log"
  for pkg in "${missing[@]}"; do
    is_installed "$pkg" || fail "package $pkg is still not installed after apt-get install"
  done
  step "system packages: installed ${#missing[@]}"
fi

# --- 1b. PostgreSQL for the team store's tests -----------------------------------------
# crates/team's tests start throwaway clusters of their own (initdb + pg_ctl as the
# `postgres` user); they need the server binaries only, never Debian's own cluster.
# policy-rc.d keeps apt from starting the service while it installs, and a `main`
# cluster that runs anyway is stopped (the package is installed once, so this is a no-op
# on later runs).
if is_installed postgresql; then
  step "postgresql: present"
else
  [[ "$(id -u)" -eq 0 || ${#SUDO[@]} -gt 0 ]] \
    || fail "postgresql is missing and not root, and sudo is not installed. Install it as root and re-run."
  step "postgresql: installing (service not started)"
  log="$(mktemp "${TMPDIR:-/tmp}/authdeck-apt.XXXXXX.log")"
  placed_policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\n# authdeck install-deps: no service starts during this install\nexit 101\n' \
      | "${SUDO[@]}" tee /usr/sbin/policy-rc.d >/dev/null
    "${SUDO[@]}" chmod 0755 /usr/sbin/policy-rc.d
    placed_policy=1
  fi
  pg_apt_ok=1
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q update </dev/null >>"$log" 2>&1 \
    && "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q install -y --no-install-recommends \
      postgresql </dev/null >>"$log" 2>&1 \
    || pg_apt_ok=0
  [[ $placed_policy -eq 1 ]] && "${SUDO[@]}" rm -f /usr/sbin/policy-rc.d
  if [[ $pg_apt_ok -eq 0 ]]; then
    tail -n 30 "$log" >&2
    fail "apt-get install postgresql failed (full log: $log)"
  fi
  rm -f "$log"
  is_installed postgresql || fail "package postgresql is still not installed after apt-get install"
fi
# Debian's own cluster is never used: stop it if something started it.
if command -v pg_lsclusters >/dev/null 2>&1; then
  pg_lsclusters --no-header 2>/dev/null | while read -r ver name _port status _rest; do
    if [[ "$status" == online* ]]; then
      step "postgresql: stopping Debian's cluster $ver/$name (the tests start their own)"
      "${SUDO[@]}" pg_ctlcluster "$ver" "$name" stop || true
    fi
  done
fi
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
  || fail "postgresql is installed but no /usr/lib/postgresql/*/bin/initdb exists"

# --- 1c. The Thai locale, for the E2E test that starts the app under LANG=th_TH.UTF-8 ---
# (e2e/tests/desktop.rs). Debian generates what /etc/locale.gen lists; Ubuntu's
# locale-gen also takes the name.
has_thai_locale() { locale -a 2>/dev/null | grep -qix 'th_TH\.utf-\?8'; }
if has_thai_locale; then
  step "locale th_TH.UTF-8: present"
else
  step "locale th_TH.UTF-8: generating"
  if [[ -f /etc/locale.gen ]] && grep -qE '^#? *th_TH\.UTF-8 UTF-8' /etc/locale.gen; then
    "${SUDO[@]}" sed -i -E 's/^# *(th_TH\.UTF-8 UTF-8)/\1/' /etc/locale.gen
  elif [[ -f /etc/locale.gen ]]; then
    echo 'th_TH.UTF-8 UTF-8' | "${SUDO[@]}" tee -a /etc/locale.gen >/dev/null
  fi
  "${SUDO[@]}" locale-gen >/dev/null 2>&1 || true
  has_thai_locale || "${SUDO[@]}" locale-gen th_TH.UTF-8 >/dev/null 2>&1 || true
  has_thai_locale || fail "could not generate the th_TH.UTF-8 locale (locale-gen)"
  step "locale th_TH.UTF-8: generated"
fi

# --- 2. Rust toolchain ---------------------------------------------------------------
if command -v cargo >/dev/null 2>&1; then
  step "rust: $(cargo --version)"
else
  fail "cargo not found. Install Rust with rustup (https://rustup.rs), then re-run."
fi

# --- 3. UI dependencies (ui/ is a TypeScript + Vite app) --------------------------------
command -v npm >/dev/null 2>&1 \
  || fail "npm not found: install Node.js >= 20.19 (https://nodejs.org, or NodeSource packages), then re-run."
npm_ci_if_stale ui

# --- 4. WebDriver server for the desktop end-to-end tests (scripts/e2e.sh) --------------
# tauri-driver drives the app through WebKitWebDriver (package webkit2gtk-driver above).
# It has no --version flag; cargo's own install list says which release is installed.
if cargo install --list 2>/dev/null | grep -qx "tauri-driver v$TAURI_DRIVER_VERSION:"; then
  step "tauri-driver: $TAURI_DRIVER_VERSION present"
else
  step "tauri-driver: cargo install tauri-driver --version $TAURI_DRIVER_VERSION --locked"
  cargo install tauri-driver --version "$TAURI_DRIVER_VERSION" --locked </dev/null \
    || fail "cargo install tauri-driver $TAURI_DRIVER_VERSION failed"
fi
command -v tauri-driver >/dev/null 2>&1 \
  || fail "tauri-driver was installed but is not on PATH: add ${CARGO_HOME:-$HOME/.cargo}/bin to PATH"

step "dependencies ready"
