#!/usr/bin/env bash
# Run the core's test files against each storage backend (the test matrix of issue 12).
#
#   scripts/core-test-matrix.sh [--dry-run] [BACKEND...]      (default: local)
#
# --dry-run: print the cargo command of each backend instead of running it.
# `local` runs every target of authdeck-core; under any other backend the test files
# crates/core/tests/common/matrix.txt lists (local-only, no-backend) are left out, by
# name. Each run gets AUTHDECK_TEST_BACKEND=<backend> (see crates/core/tests/common).
# Run it inside scripts/with-keyring.sh: the manager tests use the real Secret Service.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tests="$root/crates/core/tests"
matrix="$tests/common/matrix.txt"
[[ -f "$matrix" ]] || fail "$matrix is missing"

# Every name the list gives must be a test file: a renamed file must not slip back in.
excluded=()
while read -r category name; do
  [[ -z "$category" || "$category" == \#* ]] && continue
  case "$category" in
    local-only | no-backend) ;;
    *) fail "$matrix: unknown category $category (local-only or no-backend)" ;;
  esac
  [[ -f "$tests/$name.rs" ]] || fail "$matrix names $name, but there is no $tests/$name.rs"
  excluded+=("$name")
done <"$matrix"

dry_run=0
if [[ "${1:-}" == --dry-run ]]; then
  dry_run=1
  shift
fi
backends=("$@")
[[ ${#backends[@]} -gt 0 ]] || backends=(local)
for backend in "${backends[@]}"; do
  # The local backend runs everything (unit tests too); another one the test files the
  # list leaves it.
  args=()
  if [[ "$backend" != local ]]; then
    for file in "$tests"/*.rs; do
      name="$(basename "$file" .rs)"
      printf '%s\n' "${excluded[@]}" | grep -qx "$name" && continue
      args+=(--test "$name")
    done
  fi
  step "core tests on the $backend backend: ${args[*]:-every target}"
  if [[ $dry_run == 1 ]]; then
    echo "AUTHDECK_TEST_BACKEND=$backend cargo test --no-fail-fast -p authdeck-core ${args[*]}"
  else
    AUTHDECK_TEST_BACKEND="$backend" cargo test --no-fail-fast -p authdeck-core "${args[@]}"
  fi
done
