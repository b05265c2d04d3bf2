#!/usr/bin/env bash
# Run the core's test files against each storage backend (the test matrix of issue 12).
#
#   scripts/core-test-matrix.sh [BACKEND...]      (default: local)
#
# Every crates/core/tests/*.rs runs under `local`; under any other backend the files
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

backends=("$@")
[[ ${#backends[@]} -gt 0 ]] || backends=(local)
for backend in "${backends[@]}"; do
  args=()
  for file in "$tests"/*.rs; do
    name="$(basename "$file" .rs)"
    if [[ "$backend" != local ]] && printf '%s\n' "${excluded[@]}" | grep -qx "$name"; then
      continue
    fi
    args+=(--test "$name")
  done
  step "core tests on the $backend backend: $((${#args[@]} / 2)) test files"
  AUTHDECK_TEST_BACKEND="$backend" cargo test -p authdeck-core "${args[@]}"
done
