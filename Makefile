# Authdeck's commands. Every target works on a fresh Debian 12 / Ubuntu machine:
# the ones that need system packages run `deps` first (a no-op when all is present).
#
#   make run       build and start the desktop app
#   make test      formatting, lints, UI checks, every Rust test (keyring tests in a
#                  throwaway keyring), the desktop end-to-end tests, the package test
#   make e2e       the desktop end-to-end tests alone (real app, WebDriver, Xvfb)
#   make bench     benchmarks against the stated targets (release build; reports only)
#   make package   release binary and .deb
#   make fuzz      the fuzz targets, for many more cases than `make test` runs
#   make bindings  regenerate ui/src/bindings/ from the Rust types

CARGO ?= cargo

.PHONY: all deps ui build test lint fmt run bench package test-package fuzz bindings clean e2e

all: build

# Install the system packages and tools the project needs (idempotent).
deps:
	scripts/install-deps.sh

# The window's assets (ui/dist), which the app embeds at compile time.
ui: deps
	npm --prefix ui run build

# Compile the whole workspace, tests included.
build: ui
	$(CARGO) build --workspace --all-targets

# Everything CI checks, in order of cost: the lints first, then every test.
test: ui
	$(MAKE) --no-print-directory lint
	npm --prefix ui test
	scripts/with-keyring.sh $(CARGO) test --workspace --exclude authdeck-e2e --exclude authdeck-core
	CARGO="$(CARGO)" scripts/with-keyring.sh scripts/core-test-matrix.sh local team
	CARGO="$(CARGO)" scripts/test-package.sh
	AUTHDECK_E2E_UI_BUILD=0 CARGO="$(CARGO)" scripts/e2e.sh

# The desktop end-to-end tests: builds the UI and the app, then drives the real window
# over WebDriver (tauri-driver) under Xvfb, in a private D-Bus session and keyring.
# Screenshots land in docs/screenshots/; failures leave evidence in target/e2e-artifacts/.
e2e: deps
	CARGO="$(CARGO)" scripts/e2e.sh

# Formatting checks and lints (rustfmt, tsc, Biome, clippy), without tests. No
# system-package check and no UI build: it needs only ui/node_modules (for the type
# checker and Biome) and some ui/dist (the app crate embeds it at compile time), each
# made once when missing.
lint: ui/node_modules/.package-lock.json ui/dist/index.html
	$(CARGO) fmt --all -- --check
	npm --prefix ui run typecheck
	npm --prefix ui run lint
	$(CARGO) clippy --workspace --all-targets -- -D warnings

ui/node_modules/.package-lock.json: ui/package-lock.json
	npm --prefix ui ci --no-audit --no-fund

ui/dist/index.html: | ui/node_modules/.package-lock.json
	npm --prefix ui run build

# Rewrite the sources in the project's format (Rust: rustfmt; TypeScript: Biome's
# formatter and safe fixes).
fmt: ui/node_modules/.package-lock.json
	$(CARGO) fmt --all
	npm --prefix ui run format

# Build and start the desktop app (the sandbox is one click away in its window).
run: ui
	$(CARGO) build -p authdeck-app
	./target/debug/authdeck

# The release binary and the Debian package:
# target/release/bundle/deb/Authdeck_<version>_<arch>.deb (AppImage needs downloads at
# build time that this project's machines cannot make, so only the .deb is built).
package: ui
	CARGO="$(CARGO)" scripts/package.sh

# Unpack and check the .deb (building it first when missing or stale).
test-package: ui
	CARGO="$(CARGO)" scripts/test-package.sh

# Property-based fuzzing of callback URLs and provider responses, many cases.
fuzz:
	PROPTEST_CASES=$${PROPTEST_CASES:-200000} $(CARGO) test --release -p authdeck-core --test fuzz -- --nocapture

# ui/src/bindings/ is generated from the Rust types that cross IPC; a test fails when stale.
bindings: ui
	UPDATE_BINDINGS=1 scripts/with-keyring.sh $(CARGO) test -p authdeck-app --test ipc typescript_bindings_are_current

# Benchmarks against the stated targets, on the release build: prints one table and
# writes it to target/bench/latest.md. They report; they never fail the build.
bench: ui
	CARGO="$(CARGO)" scripts/bench.sh

# Remove build output.
clean:
	$(CARGO) clean
	rm -rf ui/dist
