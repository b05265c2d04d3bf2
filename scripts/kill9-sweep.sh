#!/usr/bin/env bash
# kill -9 `authdeckctl refresh --all` at random instants and count the grants lost
# (reuse detection on), for each authdeckctl given (default: this tree's debug build).
#
#   scripts/kill9-sweep.sh [--rounds N] [--connections N] [CTL...]
#
# Prints one `kill9 …` line per CTL: refreshes, invalid_grant, reuse, grants lost, and
# the answer→journal-fsync window (p50 / p95 / max, µs) where CTL has the journal.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
CARGO="${CARGO:-cargo}"
args=()
while [[ "${1:-}" == --* ]]; do args+=("$1" "$2"); shift 2; done
[[ $# -gt 0 ]] || set -- target/debug/authdeckctl
"$CARGO" build -q -p authdeck-bench -p authdeck-cli
for ctl in "$@"; do
  scripts/with-keyring.sh target/debug/authdeck-bench kill9 --ctl "$ctl" "${args[@]}"
done
