# Authdeck's commands. Every target works on a fresh Debian 12 / Ubuntu machine:
# the ones that need system packages run `deps` first (a no-op when all is present).
#
#   make run     build and start the demo sandbox
#   make test    formatting, lints, and every test (keyring tests in a throwaway keyring)

CARGO ?= cargo

.PHONY: all deps build test lint fmt run bench clean

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
	scripts/with-keyring.sh $(CARGO) test --workspace

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
