#!/usr/bin/env bash
# Authdeck's benchmarks (`make bench`). They REPORT; they never fail a build because a
# figure misses its target (only a benchmark that cannot run at all exits non-zero).
#
#   scripts/bench.sh                     everything, release builds
#   AUTHDECK_BENCH_SKIP_BUILD=1          use the release binaries as they are
#   AUTHDECK_BENCH_ONLY="cli app micro team"  a subset (cli: figures 1-3, app: 4-6, micro: 7,
#                                        team: the team store on PostgreSQL, issue 13 §7)
#   AUTHDECK_BENCH_CONNECTIONS=1000      connections for figures 2-6
#   AUTHDECK_BENCH_CONCURRENCY=16        `refresh --all --concurrency` (the CLI's default)
#   AUTHDECK_BENCH_CPU_SECONDS=30        CPU sampling window of figure 6
#   AUTHDECK_BENCH_TEAM_COMMITS=1000     team: commits followed by the other desktop
#   AUTHDECK_BENCH_TEAM_RATE=50          team: their steady rate per second (100 connections)
#   AUTHDECK_BENCH_TEAM_SIZE=10000       team: connections of the database-size figure
#   AUTHDECK_BENCH_TEAM_REFRESH=10000    team: connections of the team `refresh --all` and agent figures
#   AUTHDECK_BENCH_TEAM_NETNS=1          team: the server in a network namespace, reached over
#                                        a veth with TLS verify-full (root, iproute2)
#
# Prints ONE markdown table (figure, target, measured) and writes it, with the date and
# the machine (nproc, CPU model, kernel), to target/bench/latest.md.
#
# What runs where: a private D-Bus session with an unlocked throwaway gnome-keyring
# (scripts/with-keyring.sh: the real Secret Service, not a stand-in), an Xvfb display,
# throwaway XDG dirs and data dirs. `authdeck-bench serve` (crates/bench) hosts the
# provider emulator in-process — its FlowAccount demo user owning N businesses — and
# makes N FlowAccount connections through the real authorization round trip with
# authdeck-core's Manager; the emulator then keeps serving with 20 ms injected latency.
# The team group needs no emulator: `authdeck-bench team` (crates/bench/src/team.rs)
# starts a throwaway PostgreSQL cluster (authdeck_team::testing::PgCluster) with fsync ON,
# and a second `authdeck-bench team-follow` process as the other desktop;
# `authdeck-bench team-refresh` (team_refresh.rs) a cluster, the emulator and
# $TEAM_REFRESH_N team connections shared by 3 data dirs, for `refresh --all` from
# 3 authdeckctl processes at once and the team-mode agent's memory.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo="$(pwd)"

LOG_PREFIX="bench: " FAIL_PREFIX=bench
source scripts/lib.sh

N="${AUTHDECK_BENCH_CONNECTIONS:-1000}"
CONCURRENCY="${AUTHDECK_BENCH_CONCURRENCY:-16}"
LATENCY_MS=20
CPU_SECONDS="${AUTHDECK_BENCH_CPU_SECONDS:-30}"
ONLY="${AUTHDECK_BENCH_ONLY:-cli app micro team}"
TEAM_COMMITS="${AUTHDECK_BENCH_TEAM_COMMITS:-1000}"
TEAM_RATE="${AUTHDECK_BENCH_TEAM_RATE:-50}"
TEAM_SIZE="${AUTHDECK_BENCH_TEAM_SIZE:-10000}"
TEAM_REFRESH_N="${AUTHDECK_BENCH_TEAM_REFRESH:-10000}"
TEAM_NETNS=()
[[ "${AUTHDECK_BENCH_TEAM_NETNS:-0}" == 1 ]] && TEAM_NETNS=(--netns)
want() { [[ " $ONLY " == *" $1 "* ]]; }

if [[ "${1:-}" != "--inside-session" ]]; then
  # ---- Outside: build, prepare throwaway dirs, enter the keyring session. ----------
  CARGO="${CARGO:-cargo}"
  need Xvfb dbus-run-session gnome-keyring-daemon getconf
  mkdir -p target/bench
  if [[ "${AUTHDECK_BENCH_SKIP_BUILD:-0}" != 1 ]]; then
    if want cli || want team; then
      step "release builds (authdeckctl, authdeck-bench)"
      "$CARGO" build --release -p authdeck-cli -p authdeck-bench
    else
      step "release build (authdeck-bench)"
      "$CARGO" build --release -p authdeck-bench
    fi
    if want app; then
      [[ -d ui/node_modules ]] || fail "ui/node_modules missing: run scripts/install-deps.sh (make deps)"
      step "building the UI (ui/dist)"
      npm --prefix ui run build >/dev/null
      step "release build of the app (custom-protocol, as packaged) and the bare window"
      "$CARGO" build --release -p authdeck-app --features custom-protocol --bin authdeck
      "$CARGO" build --release -p authdeck-app --features custom-protocol --example bare_window
    fi
  fi
  micro_file="target/bench/micro.txt"
  : >"$micro_file"
  if want micro; then
    step "criterion micro-benchmarks (crates/core/benches/parsers.rs)"
    "$CARGO" bench -p authdeck-core --bench parsers -- --noplot >target/bench/criterion.log 2>&1 \
      || { tail -20 target/bench/criterion.log >&2; fail "cargo bench failed"; }
    for id in parse_callback parse_token_response; do
      printf '%s %s\n' "$id" "$(target/release/authdeck-bench criterion "target/criterion/$id")" >>"$micro_file"
    done
  fi

  tmp="$(mktemp -d "${TMPDIR:-/tmp}/authdeck-bench.XXXXXXXX")"
  chmod 700 "$tmp"
  cleanup() { rm -rf "$tmp"; }
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  mkdir -m 700 "$tmp/bin" "$tmp/xdg-data" "$tmp/config" "$tmp/cache" "$tmp/state" "$tmp/runtime"
  # Copies: a build elsewhere cannot swap a binary mid-run.
  cp target/release/authdeck-bench "$tmp/bin/"
  if want cli || want team; then
    cp target/release/authdeckctl "$tmp/bin/"
  fi
  if want app; then
    cp target/release/authdeck "$tmp/bin/"
    cp target/release/examples/bare_window "$tmp/bin/"
  fi
  export AUTHDECK_BENCH_TMP="$tmp" AUTHDECK_BENCH_MICRO="$repo/$micro_file"
  export XDG_DATA_HOME="$tmp/xdg-data" XDG_CONFIG_HOME="$tmp/config" XDG_CACHE_HOME="$tmp/cache"
  export XDG_STATE_HOME="$tmp/state" XDG_RUNTIME_DIR="$tmp/runtime"
  unset XDG_CURRENT_DESKTOP DESKTOP_SESSION WAYLAND_DISPLAY DISPLAY AUTHDECK_LOG
  rc=0
  scripts/with-keyring.sh "${BASH_SOURCE[0]}" --inside-session || rc=$?
  exit "$rc"
fi

# ---- Inside the private D-Bus session (keyring unlocked). ----------------------------
tmp="$AUTHDECK_BENCH_TMP"
bin="$tmp/bin"
pids=()
stop_all() {
  local pid
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  pids=()
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# key=value from a line of `authdeck-bench` output.
field() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2" | head -n1; }
# Wait (up to $3 s) until file $1 has a line matching $2.
wait_for_line() {
  local _
  for _ in $(seq 1 $(($3 * 10))); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
ticks_per_s="$(getconf CLK_TCK)"
rows=()
row() { rows+=("| $1 | $2 | $3 |"); }
num() { awk -v v="$1" 'BEGIN { printf "%.1f", v }'; }

export AUTHDECK_KEYRING_SERVICE="authdeck-bench-$$-$RANDOM"
# The emulator's /admin token: `serve` and `stats` read it from the environment (never
# from argv, where any local user could read it).
AUTHDECK_EMULATOR_ADMIN_TOKEN="$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')"
export AUTHDECK_EMULATOR_ADMIN_TOKEN
data_n="$tmp/data-$N"
data_0="$tmp/data-0"

if want cli || want app; then
  step "seeding $N FlowAccount connections (emulator in-process, real keyring)"
  "$bin/authdeck-bench" serve --data-dir "$data_n" --connections "$N" --latency-ms "$LATENCY_MS" \
    >"$tmp/serve.log" 2>&1 &
  pids+=($!)
  wait_for_line "$tmp/serve.log" '^ready ' 1200 || { cat "$tmp/serve.log" >&2; fail "seeding did not finish"; }
  base_url="$(sed -n 's/^ready //p' "$tmp/serve.log")"
  step "$(grep '^seeded' "$tmp/serve.log") — emulator at $base_url, ${LATENCY_MS} ms latency"
  export AUTHDECK_DATA_DIR="$data_n"
fi

if want cli; then
  # 1. token with a valid cached token.
  step "1. authdeckctl token (200 runs)"
  conn="FA-B00000"
  "$bin/authdeckctl" token "$conn" >/dev/null || fail "authdeckctl token $conn failed"
  out="$("$bin/authdeck-bench" runs --count 200 --warmup 5 -- "$bin/authdeckctl" token "$conn")"
  step "   $out"
  row "\`authdeckctl token CONN\` p50 (cached token, real keyring, 200 runs), token in its own entry" "≤ 10 ms" "$(field p50_ms "$out") ms"
  row "\`authdeckctl token CONN\` p95" "—" "$(field p95_ms "$out") ms"

  # 3. list --json with N connections.
  step "3. authdeckctl list --json ($N connections, 30 runs)"
  out="$("$bin/authdeck-bench" runs --count 30 --warmup 3 -- "$bin/authdeckctl" --json list)"
  step "   $out"
  row "\`authdeckctl list --json\`, $N connections (p50 of 30)" "≤ 50 ms" "$(field p50_ms "$out") ms"

  # 2. refresh --all against 20 ms latency, twice: the first pass finds every
  # connection in its own keyring entry, as connecting leaves it, and moves them into
  # token sets (deleting 1,000 entries costs what it costs in gnome-keyring); the second
  # is the steady state of every later batch refresh.
  refresh_pass() { # refresh_pass LABEL
    local label="$1" before after out wall_ms ok_rows failed_rows refreshed invalid reused limit_ms ratio
    step "2. authdeckctl refresh --all, $label ($N connections, --concurrency $CONCURRENCY, ${LATENCY_MS} ms latency)"
    before="$("$bin/authdeck-bench" stats "$base_url")"
    out="$("$bin/authdeck-bench" once --stdout "$tmp/refresh.json" -- \
      "$bin/authdeckctl" --json refresh --all --concurrency "$CONCURRENCY")"
    after="$("$bin/authdeck-bench" stats "$base_url")"
    step "   $out; emulator: $after"
    wall_ms="$(field wall_ms "$out")"
    ok_rows="$(grep -c '"ok": true' "$tmp/refresh.json" || true)"
    failed_rows="$(grep -c '"ok": false' "$tmp/refresh.json" || true)"
    refreshed=$(($(field refresh_ok "$after") - $(field refresh_ok "$before")))
    invalid=$(($(field invalid_grant "$after") - $(field invalid_grant "$before")))
    reused=$(($(field reuse_detected "$after") - $(field reuse_detected "$before")))
    limit_ms="$(awk -v n="$N" -v l="$LATENCY_MS" -v c="$CONCURRENCY" 'BEGIN { printf "%.0f", n * l / c }')"
    ratio="$(awk -v w="$wall_ms" -v l="$limit_ms" 'BEGIN { printf "%.2f", w / l }')"
    row "\`authdeckctl refresh --all\`, $N connections, ${LATENCY_MS} ms latency, concurrency $CONCURRENCY, $label: wall time" "limit N×latency/concurrency = $limit_ms ms" "$(num "$wall_ms") ms"
    row "  … ratio to the limit" "≤ 1.2" "$ratio"
    row "  … failures / invalid_grant / reuse_detected" "0 / 0 / 0" "$failed_rows / $invalid / $reused (ok $ok_rows, provider refreshes $refreshed)"
  }
  refresh_pass "first pass (every connection in its own keyring entry, as connected)"
  refresh_pass "steady state (tokens in token sets)"

  # 1 again: the token now comes out of a token set.
  step "1. authdeckctl token, token in a token set (200 runs)"
  "$bin/authdeckctl" token "$conn" >/dev/null || fail "authdeckctl token $conn failed"
  out="$("$bin/authdeck-bench" runs --count 200 --warmup 5 -- "$bin/authdeckctl" token "$conn")"
  step "   $out"
  row "\`authdeckctl token CONN\` p50 / p95, token in a token set" "p50 ≤ 10 ms" "$(field p50_ms "$out") / $(field p95_ms "$out") ms"
fi

if want app; then
  start_xvfb "$tmp"
  pids+=("$XVFB_PID")

  # 4. Launch to interactive list, from process start (the app's own clock, /proc).
  launch() { # launch DATA_DIR RUNS -> median ready_ms
    local dir="$1" runs="$2" i out values=()
    for i in $(seq 1 "$runs"); do
      out="$(AUTHDECK_DATA_DIR="$dir" AUTHDECK_EXIT_WHEN_READY=1 timeout 60 "$bin/authdeck" 2>>"$tmp/app-stderr.log" | grep '^ready_ms=' || true)"
      [[ -n "$out" ]] || fail "the app did not report ready_ms (see $tmp/app-stderr.log)"
      values+=("${out#ready_ms=}")
      sleep 0.5
    done
    step "   ready_ms: ${values[*]}"
    printf '%s\n' "${values[@]}" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
  }
  step "4. app launch to rendered list (0 connections, 5 launches after 1 warm-up)"
  mkdir -p "$data_0"
  launch "$data_0" 1 >/dev/null
  ready_0="$(launch "$data_0" 5)"
  step "4. app launch to rendered list ($N connections, 5 launches after 1 warm-up)"
  launch "$data_n" 1 >/dev/null
  ready_n="$(launch "$data_n" 5)"
  row "App launch → list rendered (from process start, median of 5), 0 connections" "—" "$ready_0 ms"
  row "App launch → list rendered, $N connections" "≤ 500 ms" "$ready_n ms"

  # 5 + 6. Memory after the list settled, CPU over 30 s of live countdowns.
  step "5. memory: the app with $N connections"
  AUTHDECK_PRINT_READY=1 "$bin/authdeck" >"$tmp/app.out" 2>>"$tmp/app-stderr.log" &
  app_pid=$!
  pids+=("$app_pid")
  wait_for_line "$tmp/app.out" '^ready_ms=' 60 || fail "the app did not get ready"
  sleep 5
  app_tree="$("$bin/authdeck-bench" tree "$app_pid")"
  step "   $app_tree"
  step "6. CPU of the app over ${CPU_SECONDS} s ($N live countdowns)"
  t0="$(field cpu_ticks "$("$bin/authdeck-bench" tree "$app_pid")")"
  sleep "$CPU_SECONDS"
  t1_line="$("$bin/authdeck-bench" tree "$app_pid")"
  t1="$(field cpu_ticks "$t1_line")"
  cpu_pct="$(awk -v d=$((t1 - t0)) -v hz="$ticks_per_s" -v s="$CPU_SECONDS" 'BEGIN { printf "%.2f", 100 * d / hz / s }')"
  step "   $((t1 - t0)) ticks over ${CPU_SECONDS} s = ${cpu_pct} % of one core ($t1_line)"
  kill "$app_pid" 2>/dev/null || true
  wait "$app_pid" 2>/dev/null || true

  # The bare window as Tauri makes it, and once more with the app's own rendering
  # choice (src-tauri/src/lib.rs: WebKit's OpenGL compositing off), like for like.
  bare_window() { # bare_window LABEL [ENV...] -> tree line
    local label="$1" bare_pid tree
    shift
    env "$@" "$bin/bare_window" >"$tmp/bare-$label.out" 2>>"$tmp/bare-stderr.log" &
    bare_pid=$!
    wait_for_line "$tmp/bare-$label.out" 'bare window up' 60 \
      || { kill "$bare_pid" 2>/dev/null; fail "the bare window ($label) did not start"; }
    sleep 5
    tree="$("$bin/authdeck-bench" tree "$bare_pid")"
    kill "$bare_pid" 2>/dev/null || true
    wait "$bare_pid" 2>/dev/null || true
    printf '%s\n' "$tree"
  }
  step "5. memory: the bare Tauri window"
  bare_tree="$(bare_window default)"
  step "   $bare_tree"
  step "5. memory: the bare Tauri window, compositing off as in the app"
  bare_sw_tree="$(bare_window software WEBKIT_DISABLE_COMPOSITING_MODE=1)"
  step "   $bare_sw_tree"
  app_pss="$(field pss_kb "$app_tree")"
  bare_pss="$(field pss_kb "$bare_tree")"
  mem_ratio="$(awk -v a="$app_pss" -v b="$bare_pss" 'BEGIN { printf "%.2f", a / b }')"
  mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
  row "Memory (PSS, app + WebKit processes, $(field procs "$app_tree") processes), $N connections, settled" "≤ 1.15 × bare window" "$(mib "$app_pss") = ${mem_ratio} ×"
  row "  … bare Tauri window, same dependencies ($(field procs "$bare_tree") processes)" "—" "$(mib "$bare_pss")"
  bare_sw_pss="$(field pss_kb "$bare_sw_tree")"
  sw_ratio="$(awk -v a="$app_pss" -v b="$bare_sw_pss" 'BEGIN { printf "%.2f", a / b }')"
  row "  … like for like: bare window with WebKit's compositing off, as the app runs" "—" "$(mib "$bare_sw_pss"); app = ${sw_ratio} ×"
  row "CPU, app + WebKit processes, $N live countdowns, ${CPU_SECONDS} s" "≤ 3 % of one core" "${cpu_pct} %"
fi

team_line=""
if want team; then
  # The team store (issue 13 §7) on a real cluster, fsync on. What the store alone can
  # measure; `refresh --all` of team connections and the agent's memory need the core's
  # team backend and the team-mode agent (rows below say so until they exist).
  step "team: PostgreSQL cluster (fsync on), propagation / commit / size ($TEAM_COMMITS commits at ${TEAM_RATE}/s, $TEAM_SIZE connections)"
  "$bin/authdeck-bench" team --commits "$TEAM_COMMITS" --rate-hz "$TEAM_RATE" \
    --size-connections "$TEAM_SIZE" "${TEAM_NETNS[@]}" >"$tmp/team.out" 2>"$tmp/team.err" \
    || { tail -20 "$tmp/team.err" >&2; fail "authdeck-bench team failed"; }
  while read -r line; do step "   $line"; done <"$tmp/team.out"
  tline() { grep "^$1" "$tmp/team.out" | head -n1; }
  server="$(tline server)"
  prop="$(tline propagation)"
  c1="$(tline 'commit writers=1 ')"
  cw="$(tline 'commit writers=3 ')"
  team_line=" Team figures: PostgreSQL $(field version "$server"), fsync=$(field fsync "$server"), synchronous_commit=$(field synchronous_commit "$server"), throwaway cluster on this machine's disk."
  row "Team: change propagation to another desktop (a second process with its own TeamStore; $(if [[ "$(field link "$server")" == veth+tls ]]; then echo "both over a veth, TLS verify-full"; else echo "both over TCP to 127.0.0.1"; fi)), $(field commits "$prop") commits at $(field rate_hz "$prop")/s (achieved $(field achieved_hz "$prop")/s) on $(field connections "$prop") connections: commit returned → feed delivered, p50 / p99 / max (CLOCK_MONOTONIC read in both processes)" \
    "p99 ≤ 1 s" "$(field p50_ms "$prop") / $(field p99_ms "$prop") / $(field max_ms "$prop") ms; delivered $(field delivered "$prop")/$(field commits "$prop"), in order: $(field in_order "$prop")"
  row "Team: \`TeamStore::commit\` (token set + generation CAS + history row, fsync on), 1 writer: p50 / p99" "—" "$(field p50_ms "$c1") / $(field p99_ms "$c1") ms; $(field per_s "$c1") commits/s"
  row "  … 3 concurrent writers (each its own TeamStore), disjoint connections: p50 / p99 (baseline of the team \`refresh --all\`)" "—" "$(field p50_ms "$cw") / $(field p99_ms "$cw") ms; $(field per_s "$cw") commits/s in all"
  kib() { awk -v k="$1" 'BEGIN { if (k >= 1024) printf "%.2f MiB", k / 1024; else printf "%.0f KiB", k }'; }
  for stage in written vacuum vacuum_full; do
    sz="$(tline "size stage=$stage ")"
    case "$stage" in
      written) label="Team: database size per 1,000 connections ($(field connections "$sz") connections, sealed token set of $(field sealed_bytes "$sz") B, one refresh and $(($(field history_rows "$sz") / $(field connections "$sz"))) history rows each), as written: authdeck tables (with indexes and TOAST)" ;;
      vacuum) label="  … after VACUUM" ;;
      vacuum_full) label="  … after VACUUM FULL (live rows only)" ;;
    esac
    row "$label" "—" "$(kib "$(field schema_kib_per_1000 "$sz")") = connections $(kib "$(field connections_kib_per_1000 "$sz")") + token_sets $(kib "$(field token_sets_kib_per_1000 "$sz")") + history $(kib "$(field history_kib_per_1000 "$sz")") + teams $(kib "$(field teams_kib_per_1000 "$sz")"); pg_database_size $(field db_mib "$sz") MiB in all (empty team: $(field base_db_mib "$sz") MiB)"
  done
  step "team: $TEAM_REFRESH_N team connections shared by 3 data dirs: refresh --all from 3 processes at once, the agent's memory"
  "$bin/authdeck-bench" team-refresh --ctl "$bin/authdeckctl" --connections "$TEAM_REFRESH_N" \
    --concurrency "$CONCURRENCY" --latency-ms "$LATENCY_MS" >"$tmp/team-refresh.out" 2>"$tmp/team-refresh.err" \
    || { tail -20 "$tmp/team-refresh.err" >&2; fail "authdeck-bench team-refresh failed"; }
  while read -r line; do step "   $line"; done <"$tmp/team-refresh.out"
  rline() { grep "^$1 " "$tmp/team-refresh.out" | head -n1; }
  tr3="$(rline team_refresh)"
  tr1="$(rline team_refresh_alone)"
  mem="$(rline team_agent_memory)"
  row "Team: \`refresh --all\` of $(field connections "$tr3") team connections shared by 3 agents (3 authdeckctl processes at once, --concurrency $(field concurrency "$tr3") each), ${LATENCY_MS} ms latency: ratio to N × latency / total concurrency" "≤ 1.3" "$(field ratio "$tr3") ($(field wall_s "$tr3") s against $(field limit_s "$tr3") s; $(field provider_refreshes "$tr3") provider refreshes, rows not ok: $(field rows_failed "$tr3"), invalid_grant $(field invalid_grant "$tr3"))"
  row "  … one process alone: ratio to N × latency / its concurrency" "—" "$(field ratio "$tr1") ($(field wall_s "$tr1") s against $(field limit_s "$tr1") s)"
  row "Team: the agent's memory with $(field connections "$mem") connections (it leads; after two passes): RSS / PSS" "—" "$(awk -v r="$(field rss_kib "$mem")" -v p="$(field pss_kib "$mem")" 'BEGIN { printf "%.1f MiB / %.1f MiB", r / 1024, p / 1024 }')"
fi

if [[ -s "$AUTHDECK_BENCH_MICRO" ]]; then
  while read -r id ns; do
    row "criterion \`$id\` (mean per parse)" "—" "$(num "$ns") ns"
  done <"$AUTHDECK_BENCH_MICRO"
fi

stop_all
cpu_model="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
{
  printf '# Authdeck benchmarks\n\n'
  printf '%s — %s CPUs (nproc), %s, Linux %s; release build; real gnome-keyring (private session); Xvfb.%s\n\n' \
    "$(date -u '+%Y-%m-%d %H:%M UTC')" "$(nproc)" "$cpu_model" "$(uname -r)" "$team_line"
  printf '| Figure | Target | Measured |\n|---|---|---|\n'
  printf '%s\n' "${rows[@]}"
} >"$repo/target/bench/latest.md.tmp"
mv "$repo/target/bench/latest.md.tmp" "$repo/target/bench/latest.md"
cat "$repo/target/bench/latest.md"
