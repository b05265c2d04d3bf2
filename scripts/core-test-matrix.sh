#!/usr/bin/env bash
# Run the core's test files against each storage backend (the test matrix of issue 12).
#
#   scripts/core-test-matrix.sh [--dry-run] [BACKEND...]      (default: local)
#
# --dry-run: print the cargo command of each backend instead of running it.
# `local` runs every target of authdeck-core; under any other backend the test files
# crates/core/tests/common/matrix.txt lists as no-backend are left out, and the tests it
# lists as local-only are skipped (`--exact --skip NAME`; a name no file has fails the
# run). Each run gets AUTHDECK_TEST_BACKEND=<backend> (see crates/core/tests/common).
# Run it inside scripts/with-keyring.sh: the manager tests use the real Secret Service.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tests="$root/crates/core/tests"
matrix="$tests/common/matrix.txt"
[[ -f "$matrix" ]] || fail "$matrix is missing"

# Every name the list gives must be a test file: a renamed file must not slip back in.
# `no-backend FILE`: the whole file is left out; `local-only FILE TEST`: that one test
# (checked against `cargo test -- --list` below, before anything runs).
excluded=()
skip_files=()
skip_tests=()
while read -r category name test rest; do
  [[ -z "$category" || "$category" == \#* ]] && continue
  [[ -f "$tests/$name.rs" ]] || fail "$matrix names $name, but there is no $tests/$name.rs"
  case "$category" in
    no-backend)
      [[ -z "$test" ]] || fail "$matrix: no-backend $name takes no test name (got $test)"
      excluded+=("$name")
      ;;
    local-only)
      [[ -n "$test" && -z "$rest" ]] ||
        fail "$matrix: local-only takes a test file and one test name (local-only $name ${test:-?})"
      skip_files+=("$name")
      skip_tests+=("$test")
      ;;
    *) fail "$matrix: unknown category $category (local-only or no-backend)" ;;
  esac
done < <(sed 's/[[:space:]]#.*//' "$matrix")

# Each local-only test must exist in its file: a renamed test must not run unnoticed
# on a backend it was kept from, nor a stale entry stay.
check_skips() {
  local i listed
  for i in "${!skip_tests[@]}"; do
    listed="$("${CARGO:-cargo}" test -q -p authdeck-core --test "${skip_files[$i]}" -- --list 2>/dev/null)" ||
      fail "cannot list the tests of ${skip_files[$i]}"
    grep -qx -- "${skip_tests[$i]}: test" <<<"$listed" ||
      fail "$matrix: ${skip_files[$i]}.rs has no test named ${skip_tests[$i]}"
  done
}

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
  filters=()
  if [[ "$backend" != local ]]; then
    for file in "$tests"/*.rs; do
      name="$(basename "$file" .rs)"
      [[ ${#excluded[@]} -gt 0 ]] && printf '%s\n' "${excluded[@]}" | grep -qx "$name" && continue
      args+=(--test "$name")
    done
    if [[ ${#skip_tests[@]} -gt 0 ]]; then
      [[ $dry_run == 1 ]] || check_skips
      filters+=(--exact)
      for test in "${skip_tests[@]}"; do
        filters+=(--skip "$test")
      done
    fi
  fi
  step "core tests on the $backend backend: ${args[*]:-every target} ${filters[*]}"
  if [[ $dry_run == 1 ]]; then
    echo "AUTHDECK_TEST_BACKEND=$backend ${CARGO:-cargo} test --no-fail-fast -p authdeck-core ${args[*]}${filters[*]:+ -- ${filters[*]}}"
  else
    AUTHDECK_TEST_BACKEND="$backend" "${CARGO:-cargo}" test --no-fail-fast -p authdeck-core "${args[@]}" ${filters[@]:+-- "${filters[@]}"}
  fi
done
