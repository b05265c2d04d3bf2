# Authdeck's commands. Every target works on a fresh Debian 12 / Ubuntu machine:
# the ones that need system packages run `deps` first (a no-op when all is present).
#
#   make run     build and start the demo sandbox
#   make test    formatting, lints, and every test (keyring tests in a throwaway keyring),
#                the desktop end-to-end tests last
#   make e2e     the desktop end-to-end tests alone (real app, WebDriver, Xvfb)

CARGO ?= cargo

.PHONY: all deps build test lint fmt run bench clean e2e

all: build

# Install the system packages and tools the project needs (idempotent).
deps:
	scripts/install-deps.sh

# Compile the whole workspace, tests included.
build:
	$(CARGO) build --workspace --all-targets

# Check formatting and lints, then run all tests against a private, unlocked keyring.
test: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	scripts/with-keyring.sh $(CARGO) test --workspace --exclude authdeck-e2e
	CARGO="$(CARGO)" scripts/e2e.sh

# The desktop end-to-end tests: builds the UI and the app, then drives the real window
# over WebDriver (tauri-driver) under Xvfb, in a private D-Bus session and keyring.
# Screenshots land in docs/screenshots/; failures leave evidence in target/e2e-artifacts/.
e2e: deps
	CARGO="$(CARGO)" scripts/e2e.sh

# Formatting check and clippy, without tests.
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# Rewrite the sources in the project's format.
fmt:
	$(CARGO) fmt --all

# Build and start the sandbox (local provider emulators + a connection manager).
# For now the CLI's sandbox; the desktop app replaces this later.
run: deps
	$(CARGO) build --workspace
	$(CARGO) run -p authdeck-cli -- sandbox

# PLACEHOLDER: the benchmarks arrive with issue 5.
bench:
	@echo "benchmarks arrive with issue 5"

# Remove build output.
clean:
	$(CARGO) clean
