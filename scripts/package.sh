#!/usr/bin/env bash
# Build Authdeck's Debian package:
#   target/release/bundle/deb/Authdeck_<version>_<arch>.deb   (CARGO_TARGET_DIR honoured)
#
# 1. the packaging tools: the Tauri CLI (@tauri-apps/cli 2.x, with its own bundler
#    binary) from packaging/package.json, `npm ci` only when packaging/node_modules is
#    missing or older than the lock file;
# 2. the UI (ui/dist), only when it is missing or older than its sources;
# 3. the release binary (`--features custom-protocol`: serve the embedded ui/dist) and the
#    .deb, both by `tauri build --bundles deb` (its deb bundler, no AppImage).
#
# The bridge to the root tauri.conf.json: the Tauri CLI (2.12) only accepts a project
# directory that holds BOTH a tauri config and a Cargo.toml with a [package]. The root
# has the config but a virtual workspace manifest ("No package info in the config
# file"); src-tauri/ has the package but no config ("Couldn't recognize the
# `TAURI_APP_PATH` folder as a Tauri project"); `--config` only merges onto a config
# that was found, and is also handed to the app's build script as TAURI_CONFIG, where
# its paths would resolve against the root instead. So this script writes
# src-tauri/tauri.conf.json5 (plain JSON plus a "generated" comment) from the root
# tauri.conf.json with every path made absolute, runs the CLI with
# TAURI_APP_PATH=src-tauri, and deletes the file again; it is never committed. The app's
# build script keeps reading ../tauri.conf.json, so the binary is the one
# `cargo build --release -p authdeck-app --features custom-protocol` makes (the CLI then
# patches a bundle-type marker into it).
#
# The desktop entry comes from packaging/authdeck.desktop.hbs (Exec=authdeck %u,
# MimeType=x-scheme-handler/com.authdeck.desktop;): an installed package handles the
# app's redirects with no runtime registration.
#
# The package also carries `authdeckctl` (/usr/bin/authdeckctl, built here in release
# mode before the bundler runs and added to bundle.linux.deb.files by this script, as
# its path depends on CARGO_TARGET_DIR) and the agent's systemd user unit
# (/usr/lib/systemd/user/authdeck-agent.service, from packaging/, listed in
# tauri.conf.json's bundle.linux.deb.files). The unit is not enabled by the package.
#
# AppImage is not built: its bundler downloads linuxdeploy and plugins at build time.
#
# Idempotent: a second run with nothing changed rebuilds nothing but the .deb itself.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

CARGO="${CARGO:-cargo}"

FAIL_PREFIX=package
source scripts/lib.sh

# --- 0. tools -------------------------------------------------------------------------
command -v "$CARGO" >/dev/null 2>&1 || fail "cargo not found: install Rust with rustup, or run scripts/install-deps.sh"
command -v npm >/dev/null 2>&1 || fail "npm not found: install Node.js >= 20.19 (see README)"
command -v dpkg-deb >/dev/null 2>&1 || fail "dpkg-deb not found: the .deb bundler needs Debian's dpkg"
command -v python3 >/dev/null 2>&1 || fail "python3 not found"

version="$(python3 -c 'import json; print(json.load(open("tauri.conf.json"))["version"])')" \
  || fail "cannot read the version from tauri.conf.json"
arch="$(dpkg --print-architecture)"
target_dir="${CARGO_TARGET_DIR:-target}"
deb="$target_dir/release/bundle/deb/Authdeck_${version}_${arch}.deb"

# --- 1. the Tauri CLI -------------------------------------------------------------------
# `npm install`, not `npm ci`: the registry these machines reach lacks @tauri-apps/cli's
# optional packages for other platforms, so a lock file written here never lists them
# and `npm ci` rejects it as out of sync. The CLI's version is checked below.
if [[ ! -x packaging/node_modules/.bin/tauri ]]; then
  step "packaging: npm install"
  npm --prefix packaging install --no-audit --no-fund </dev/null || fail "npm install in packaging failed"
else
  step "packaging: node_modules present"
fi
tauri=packaging/node_modules/.bin/tauri
[[ -x "$tauri" ]] || fail "$tauri missing after npm install (packaging/package.json must list @tauri-apps/cli)"
cli_version="$("$tauri" --version)" || fail "the Tauri CLI does not run: $tauri --version failed"
[[ "$cli_version" =~ ^tauri-cli\ 2\.[0-9]+\.[0-9]+$ ]] \
  || fail "expected a released Tauri CLI 2.x, got '$cli_version' (packaging/package.json pins ^2)"
step "tauri: $cli_version"

# --- 2. the UI --------------------------------------------------------------------------
npm_ci_if_stale ui
ui_inputs=(ui/src ui/index.html ui/package.json ui/package-lock.json ui/vite.config.ts ui/tsconfig.json)
[[ -d ui/public ]] && ui_inputs+=(ui/public)
if [[ ! -f ui/dist/index.html ]]; then
  ui_reason="ui/dist missing"
else
  ui_reason="$(find "${ui_inputs[@]}" -type f -newer ui/dist/index.html -print -quit)"
  [[ -n "$ui_reason" ]] && ui_reason="$ui_reason changed"
fi
if [[ -n "$ui_reason" ]]; then
  step "ui: building ($ui_reason)"
  npm --prefix ui run build </dev/null || fail "the UI build (npm --prefix ui run build) failed"
  [[ -f ui/dist/index.html ]] || fail "the UI build did not write ui/dist/index.html"
else
  step "ui: ui/dist up to date"
fi

# --- 3. release binary and .deb -----------------------------------------------------------
# The CLI's view of the root config (see the top of this file), removed on exit however
# the script ends.
cli_config=src-tauri/tauri.conf.json5 # JSON5 for the "generated" comment
if [[ -e "$cli_config" ]] && ! grep -q '^// GENERATED by scripts/package.sh' "$cli_config"; then
  fail "$cli_config exists and was not written by this script; the config lives at the root (tauri.conf.json)"
fi
trap 'rm -f "$cli_config"' EXIT
python3 - "$PWD" "$cli_config" "$target_dir" <<'PY' || fail "could not generate $cli_config from tauri.conf.json"
import json, os, sys

root, out, target_dir = sys.argv[1], sys.argv[2], sys.argv[3]
with open(os.path.join(root, "tauri.conf.json")) as f:
    config = json.load(f)

def absolute(path):
    return path if os.path.isabs(path) else os.path.normpath(os.path.join(root, path))

build, bundle = config.get("build", {}), config.get("bundle", {})
# Path-valued settings this script knows how to carry over; refuse the others rather
# than produce a package that silently lacks them.
unsupported = [key for key in ("resources", "externalBin", "licenseFile", "fileAssociations") if key in bundle]
deb = bundle.get("linux", {}).get("deb", {})
unsupported += ["linux.deb." + key for key in ("preInstallScript", "postInstallScript",
                "preRemoveScript", "postRemoveScript", "changelog") if key in deb]
if unsupported:
    sys.exit("scripts/package.sh does not rewrite the paths of bundle." + ", bundle.".join(unsupported)
             + " yet: teach it to")
if isinstance(build.get("frontendDist"), str) and "://" not in build["frontendDist"]:
    build["frontendDist"] = absolute(build["frontendDist"])
bundle["icon"] = [absolute(icon) for icon in bundle.get("icon", [])]
if "desktopTemplate" in deb:
    deb["desktopTemplate"] = absolute(deb["desktopTemplate"])
# Package path -> source file; the sources are made absolute, and the CLI added.
files = {dest: absolute(src) for dest, src in deb.get("files", {}).items()}
files["/usr/bin/authdeckctl"] = os.path.join(absolute(target_dir), "release", "authdeckctl")
deb["files"] = files
bundle.setdefault("linux", {})["deb"] = deb
config["bundle"] = bundle
with open(out, "w") as f:
    f.write("// GENERATED by scripts/package.sh from ../tauri.conf.json: edit that file.\n")
    json.dump(config, f, indent=2)
    f.write("\n")
PY

# authdeckctl first: the bundler copies it into the package as it finds it.
step "release build: authdeckctl"
"$CARGO" build --release -p authdeck-cli --bin authdeckctl </dev/null || fail "cargo build --release -p authdeck-cli failed"
[[ -x "$target_dir/release/authdeckctl" ]] || fail "$target_dir/release/authdeckctl missing after its release build"

# `tauri build` runs `cargo build --release --features custom-protocol` for the app
# crate (a no-op when nothing changed), then its deb bundler. --ci: never prompt.
step "release build and .deb: tauri build --bundles deb --features custom-protocol"
start=$SECONDS
rm -f "$deb" # never report an older package as this build's
TAURI_APP_PATH=src-tauri "$tauri" build --ci --runner "$CARGO" --bundles deb --features custom-protocol </dev/null \
  || fail "tauri build failed (see above)"
rm -f "$cli_config"
[[ -f "$deb" ]] || fail "tauri build succeeded but $deb is missing (bundle output: $(ls "$target_dir/release/bundle/deb" 2>/dev/null | tr '\n' ' '))"
dpkg-deb --info "$deb" >/dev/null || fail "$deb is not a valid Debian package"

bin="$target_dir/release/authdeck"
step "built in $((SECONDS - start)) s: $bin ($(($(stat -c %s "$bin") / 1024)) KiB), $deb ($(($(stat -c %s "$deb") / 1024)) KiB)"
echo "$deb"
