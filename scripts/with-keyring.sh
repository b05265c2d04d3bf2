#!/usr/bin/env bash
# Run a command against a real, private, unlocked Secret Service.
#
#   scripts/with-keyring.sh [--locked] CMD [ARGS...]
#
# CMD runs inside its own `dbus-run-session` with a gnome-keyring-daemon (secrets
# component only) whose "login" collection is created fresh, unlocked with a throwaway
# password, and stored in a throwaway directory that is removed afterwards. Nothing
# touches the user's real keyring or session bus. HOME is left alone (cargo and rustup
# need it); only the keyring daemon sees the throwaway XDG_DATA_HOME.
#
# --locked: the login collection exists but is LOCKED (as after a desktop login
# without auto-unlock), for the tests of how Authdeck behaves then. Any access that
# needs it unlocked makes gnome-keyring show an unlock prompt (needs $DISPLAY; without
# one the prompt fails at once).
#
# CMD gets AUTHDECK_TEST_KEYRING=1 (the keyring tests refuse to run without it) and a
# private DBUS_SESSION_BUS_ADDRESS. The exit code of CMD is preserved.
set -euo pipefail

fail() { printf 'with-keyring: error: %s\n' "$*" >&2; exit 1; }

if [[ "${1:-}" != "--inside-session" ]]; then
  # --- Outside: make the throwaway dir, start a private bus, clean up afterwards. ---
  mode=unlocked
  if [[ "${1:-}" == "--locked" ]]; then mode=locked; shift; fi
  [[ $# -gt 0 ]] || fail "usage: $0 [--locked] CMD [ARGS...]"
  for tool in dbus-run-session dbus-send gnome-keyring-daemon; do
    command -v "$tool" >/dev/null 2>&1 || fail "$tool not found: run scripts/install-deps.sh (make deps)"
  done
  tmp="$(mktemp -d "${TMPDIR:-/tmp}/authdeck-keyring.XXXXXXXX")"
  chmod 700 "$tmp"
  mkdir -m 700 "$tmp/data" "$tmp/runtime"
  cleanup() {
    # A GUI app inside (the desktop E2E tests) makes xdg-desktop-portal start the
    # document portal, which mounts a FUSE file system at $XDG_RUNTIME_DIR/doc and may
    # outlive the bus by a moment: unmount it, retry briefly, and never fail the run.
    local _
    for _ in $(seq 1 30); do
      if [[ -d "$tmp/runtime/doc" ]] && command -v fusermount >/dev/null 2>&1; then
        fusermount -u -z "$tmp/runtime/doc" 2>/dev/null || true
      fi
      rm -rf "$tmp" 2>/dev/null && return 0
      sleep 0.1
    done
    printf 'with-keyring: warning: could not remove %s\n' "$tmp" >&2
    return 0
  }
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  # The bus daemon (and anything it D-Bus-activates, e.g. a second keyring daemon if
  # ours were not up yet) sees the throwaway dirs; the inner script restores the
  # caller's values for CMD.
  rc=0
  env \
    AUTHDECK_KEYRING_TMP="$tmp" \
    AUTHDECK_KEYRING_MODE="$mode" \
    AUTHDECK_ORIG_XDG_DATA_HOME="${XDG_DATA_HOME-__unset__}" \
    AUTHDECK_ORIG_XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR-__unset__}" \
    XDG_DATA_HOME="$tmp/data" \
    XDG_RUNTIME_DIR="$tmp/runtime" \
    dbus-run-session -- "${BASH_SOURCE[0]}" --inside-session "$@" || rc=$?
  exit "$rc"
fi

# --- Inside the private session bus. ------------------------------------------------
shift
tmp="$AUTHDECK_KEYRING_TMP"

# The password only unlocks a keyring that is deleted when we exit.
keyring_pid=""
stop_keyring() {
  if [[ -n "$keyring_pid" ]]; then
    kill "$keyring_pid" 2>/dev/null || true
    wait "$keyring_pid" 2>/dev/null || true
    keyring_pid=""
  fi
}
trap stop_keyring EXIT

secrets_on_bus() {
  dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
    org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null \
    | grep -q 'boolean true'
}
default_collection_locked() {
  dbus-send --session --print-reply --dest=org.freedesktop.secrets \
    /org/freedesktop/secrets/aliases/default org.freedesktop.DBus.Properties.Get \
    string:org.freedesktop.Secret.Collection string:Locked 2>/dev/null \
    | grep -o 'boolean [a-z]*'
}

# start_keyring [--unlock]: start the daemon and wait until it owns its bus name.
start_keyring() {
  printf 'authdeck-throwaway' \
    | gnome-keyring-daemon --foreground --components=secrets "$@" \
        >>"$tmp/keyring-daemon.log" 2>&1 &
  keyring_pid=$!
  for _ in $(seq 1 100); do
    secrets_on_bus && return 0
    kill -0 "$keyring_pid" 2>/dev/null || break
    sleep 0.1
  done
  cat "$tmp/keyring-daemon.log" >&2 || true
  fail "gnome-keyring-daemon did not come up on the private session bus"
}

# `--unlock` creates the login collection and unlocks it.
start_keyring --unlock
expected="boolean false"
if [[ "$AUTHDECK_KEYRING_MODE" == locked ]]; then
  # Restart without --unlock: the collection now exists on disk, locked.
  stop_keyring
  for _ in $(seq 1 50); do secrets_on_bus || break; sleep 0.1; done
  start_keyring
  expected="boolean true"
fi

# Make sure the collection is in the state asked for; an unexpectedly locked one would
# make every keyring call wait on an unlock prompt nobody can answer.
state="$(default_collection_locked || true)"
if [[ "$state" != "$expected" ]]; then
  cat "$tmp/keyring-daemon.log" >&2 || true
  fail "the throwaway login collection is not $AUTHDECK_KEYRING_MODE (Locked: ${state:-no default collection})"
fi

restore() {
  local name="$1" value="$2"
  if [[ "$value" == "__unset__" ]]; then unset "$name"; else export "$name=$value"; fi
}
restore XDG_DATA_HOME "$AUTHDECK_ORIG_XDG_DATA_HOME"
restore XDG_RUNTIME_DIR "$AUTHDECK_ORIG_XDG_RUNTIME_DIR"
unset AUTHDECK_ORIG_XDG_DATA_HOME AUTHDECK_ORIG_XDG_RUNTIME_DIR AUTHDECK_KEYRING_TMP AUTHDECK_KEYRING_MODE
export AUTHDECK_TEST_KEYRING=1

rc=0
"$@" || rc=$?
exit "$rc"
