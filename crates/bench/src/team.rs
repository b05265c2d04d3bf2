//! The team store's figures of `make bench` (issue 13 §7), on a real PostgreSQL cluster
//! (`authdeck_team::testing::PgCluster`, **fsync on**: every COMMIT waits for its WAL
//! on this machine's disk, the real cost).
//!
//! - `team` (the driver, [`run`]) prints one `key=value` line per figure:
//!   - `propagation`: one desktop (this process, its own `TeamStore`) commits token
//!     updates at a steady rate on a set of connections; another desktop — a separate OS
//!     process, `authdeck-bench team-follow`, with its own `TeamStore` over TCP (to
//!     127.0.0.1; with `--netns` over a veth with TLS verify-full to a server in a network
//!     namespace of its own, as from another machine) — follows the change feed. Latency = the follower's delivery instant − the instant the
//!     writer's `commit` returned, both read from CLOCK_MONOTONIC (one machine: the same
//!     clock in both processes), passed through the follower's stdout. A negative value
//!     would mean the notification overtook the COMMIT's answer.
//!   - `commit`: `TeamStore::commit` latency and throughput with 1 and with W concurrent
//!     writers (each its own `TeamStore`, like W desktops or agents) on disjoint
//!     connections.
//!   - `size`: N connections, each with a sealed token set shaped like the emulator's
//!     (an HS256 JWT access token, a 43-character refresh token, their expiries), one
//!     refresh commit each and H history rows each; `pg_database_size` and
//!     `pg_total_relation_size` of each table, per 1,000 connections (above the empty
//!     team's baseline), as written, after `VACUUM` and after `VACUUM FULL`.
//! - `team-follow` ([`follow`]): the second desktop. Reads the join key on stdin (never
//!   argv), follows the feed, prints `ready VERSION` once caught up, then
//!   `v VERSION MONO_NS` per change; exits after `--count` changes or `--timeout-s`.
//!
//! What the store alone cannot measure yet (the core's team backend and the team-mode
//! agent): `refresh --all` of 10,000 team connections by 3 agents against the emulator,
//! and the agent's memory with 10,000 connections. The `commit` figure is their
//! baseline: the store's part of each refresh.

use std::io::Write;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use authdeck_team::testing::{PgCluster, PgOptions};
use authdeck_team::{
    CommitOutcome, CommitRequest, DbConfig, FeedEvent, HistoryEvent, JoinKey, TeamStore, Via,
};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

const CLIENT: &str = "bench-flowaccount";

/// What `authdeck-bench team` measures, and how much.
pub struct Options {
    /// Commits of the propagation figure.
    pub commits: usize,
    /// Their steady rate (commits per second).
    pub rate_hz: f64,
    /// Connections they go round.
    pub connections: usize,
    /// Concurrent writers of the commit figure.
    pub writers: usize,
    /// Commits per writer.
    pub writer_commits: usize,
    /// Connections of the size figure.
    pub size_connections: usize,
    /// History rows per connection of the size figure.
    pub history: usize,
    /// Run the server in a network namespace of its own and reach it over a veth with
    /// TLS verify-full, as a desktop on another machine would (needs root, iproute2).
    pub netns: bool,
}

/// How every desktop of the benchmark reaches `dbname`: TCP to 127.0.0.1 (plain), or
/// over the veth with TLS verify-full when the cluster runs in a namespace.
fn address(cluster: &PgCluster, dbname: &str) -> String {
    if cluster.netns().is_some() {
        cluster.netns_config(dbname)
    } else {
        cluster.tcp_config(dbname)
    }
}

/// CLOCK_MONOTONIC in nanoseconds: one clock for every process of this machine.
fn mono_ns() -> i128 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as i128 * 1_000_000_000 + t.tv_nsec as i128
}

fn err(e: authdeck_core::Error) -> String {
    match &e.detail {
        Some(d) => format!("{} ({d})", e.message),
        None => e.message,
    }
}

/// Percentile (nearest rank) of sorted values.
fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

// ---- realistic rows --------------------------------------------------------------------

/// Filler in the base64url alphabet (what the tokens are made of). Its content does not
/// matter for the database: the token set is sealed (random-looking ciphertext) before
/// it leaves the process; only its length does.
fn b64ish(seed: u64, len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ALPHABET[(x & 63) as usize] as char
        })
        .collect()
}

fn expiry(seconds: i64) -> Value {
    let at = chrono::Utc::now() + chrono::Duration::seconds(seconds);
    json!({ "at": at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true), "source": "relative_seconds" })
}

/// A token set as the core's team backend stores it (the local store's wire shape: a
/// version, the access token, the refresh token and their expiries), with an access
/// token the length of the emulator's HS256 JWTs (header.claims.signature: 36 + 1 +
/// ~190 + 1 + 43 characters) and its 32-byte refresh token (43 characters).
fn token_set(i: usize, generation: i64) -> Vec<u8> {
    let seed = (i as u64) << 20 | generation as u64;
    let jwt = format!(
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.{}.{}",
        b64ish(seed, 190),
        b64ish(seed ^ 1, 43)
    );
    let wire = json!({
        "v": 1,
        "access_token": jwt,
        "refresh_token": b64ish(seed ^ 2, 43),
        "access_expires": expiry(86_400),
        "refresh_expires": expiry(30 * 86_400),
    });
    wire.to_string().into_bytes()
}

/// A connection's non-secret record, shaped like the core's `Connection` of a
/// FlowAccount business (what the team backend keeps in `connections.record`).
fn record(i: usize) -> Value {
    json!({
        "kind": "connection",
        "id": format!("conn-{i:06}"),
        "client_id": CLIENT,
        "client_name": "FlowAccount (bench)",
        "provider": "flowaccount",
        "environment": "sandbox",
        "label": format!("B{i:05}"),
        "support_code": format!("B{i:05}"),
        "scope": "openid profile email offline_access flowaccount-api",
        "token_type": "bearer",
        "access_expires": expiry(86_400),
        "refresh_expires": expiry(30 * 86_400),
        "state": "connected",
        "keep_fresh": false,
        "last_refresh_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "business_name": format!("Bench business {i}"),
    })
}

fn conn_id(i: usize) -> String {
    format!("conn-{i:06}")
}

async fn new_team(db: &DbConfig, name: &str) -> Result<(TeamStore, JoinKey), String> {
    let (store, join) = TeamStore::init(db, name, "bench-desk-1", Via::Desktop)
        .await
        .map_err(err)?;
    store
        .put_client(
            CLIENT,
            &json!({ "kind": "client", "name": "FlowAccount (bench)", "provider": "flowaccount", "client_id": "bench-client-id", "redirect_uri": "http://127.0.0.1/callback" }),
            Some(b"bench-client-secret-0123456789abcdef"),
        )
        .await
        .map_err(err)?;
    Ok((store, join))
}

async fn open(db: &DbConfig, join: &JoinKey, machine: &str) -> Result<TeamStore, String> {
    let (team, key) = JoinKey::decode(join.expose()).map_err(err)?;
    TeamStore::open(db, &team, key, machine, Via::Desktop)
        .await
        .map_err(err)
}

/// Insert connections `range` (generation 1, one `connect` history row each), `tasks`
/// at a time.
async fn insert_connections(
    store: &TeamStore,
    range: std::ops::Range<usize>,
    tasks: usize,
) -> Result<(), String> {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(range.start));
    let end = range.end;
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..tasks.max(1) {
        let store = store.clone();
        let next = next.clone();
        set.spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= end {
                    return Ok::<(), String>(());
                }
                let id = conn_id(i);
                store
                    .insert_connection(
                        &id,
                        CLIENT,
                        &record(i),
                        &token_set(i, 1),
                        Some(HistoryEvent {
                            connection_id: Some(&id),
                            client_id: Some(CLIENT),
                            event: "connect",
                            outcome: "ok",
                            detail: Some("FlowAccount business connected"),
                        }),
                    )
                    .await
                    .map_err(err)?;
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r.map_err(|e| e.to_string())??;
    }
    Ok(())
}

/// One refresh-like commit of connection `i` from `generation`, with its history row.
async fn commit_one(store: &TeamStore, i: usize, generation: i64) -> Result<CommitOutcome, String> {
    let id = conn_id(i);
    let tokens = token_set(i, generation + 1);
    let rec = record(i);
    store
        .commit(&CommitRequest {
            connection_id: &id,
            expected_generation: generation,
            token_set: &tokens,
            record: &rec,
            refreshed: true,
            history: Some(HistoryEvent {
                connection_id: Some(&id),
                client_id: Some(CLIENT),
                event: "refresh",
                outcome: "ok",
                detail: Some("access token valid for 86400 s"),
            }),
        })
        .await
        .map_err(err)
}

// ---- the driver ------------------------------------------------------------------------

pub fn run(opts: Options) -> Result<(), String> {
    if !opts.rate_hz.is_finite()
        || opts.rate_hz <= 0.0
        || opts.connections == 0
        || opts.commits == 0
        || opts.writers == 0
    {
        return Err(
            "team: --rate-hz, --connections, --commits and --writers must be above 0".into(),
        );
    }
    if opts.size_connections == 0 {
        return Err("team: --size-connections must be above 0".into());
    }
    let cluster = PgCluster::start_with(PgOptions {
        fsync: true,
        netns: opts.netns.then(authdeck_team::testing::netns::Netns::new),
        ..PgOptions::default()
    });
    let server = cluster.psql("postgres", "SHOW server_version");
    let fsync = cluster.psql("postgres", "SHOW fsync");
    let sync = cluster.psql("postgres", "SHOW synchronous_commit");
    println!(
        "server version={} fsync={} synchronous_commit={} link={}",
        server.split_whitespace().next().unwrap_or("?"),
        fsync.trim(),
        sync.trim(),
        if opts.netns { "veth+tls" } else { "loopback" }
    );
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        propagation(&cluster, &opts, &exe).await?;
        commits(&cluster, 1, opts.writer_commits).await?;
        commits(&cluster, opts.writers, opts.writer_commits).await?;
        size(&cluster, &opts).await
    })
}

async fn propagation(cluster: &PgCluster, opts: &Options, exe: &PathBuf) -> Result<(), String> {
    let address = address(cluster, "postgres");
    let db = DbConfig::parse(&address).map_err(err)?;
    let (store, join) = new_team(&db, "Bench propagation").await?;
    insert_connections(&store, 0..opts.connections, 4).await?;
    let from = store.current_version().await.map_err(err)?;

    let mut child = tokio::process::Command::new(exe)
        .args([
            "team-follow",
            "--address",
            &address,
            "--from",
            &from.to_string(),
            "--count",
            &opts.commits.to_string(),
            "--timeout-s",
            &((opts.commits as f64 / opts.rate_hz) as u64 + 60).to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("team-follow: {e}"))?;
    {
        let mut stdin = child.stdin.take().ok_or("team-follow: no stdin")?;
        stdin
            .write_all(join.expose().as_bytes())
            .await
            .map_err(|e| format!("team-follow stdin: {e}"))?;
        // Dropped: EOF ends the key.
    }
    let stdout = child.stdout.take().ok_or("team-follow: no stdout")?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let ready = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.map_err(|e| e.to_string())? {
            if line.starts_with("ready ") {
                return Ok(());
            }
        }
        Err::<(), String>("team-follow ended before it was ready".into())
    })
    .await;
    match ready {
        Ok(r) => r?,
        Err(_) => return Err("team-follow was not ready within 30 s".into()),
    }
    let reader = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Ok(Some(line)) = lines.next_line().await {
            let mut parts = line.split_whitespace();
            if parts.next() != Some("v") {
                continue;
            }
            let (Some(Ok(v)), Some(Ok(ns))) = (
                parts.next().map(str::parse::<i64>),
                parts.next().map(str::parse::<i128>),
            ) else {
                continue;
            };
            seen.push((v, ns));
        }
        seen
    });

    // The writer: a steady rate, round the connections.
    let mut generations = vec![1i64; opts.connections];
    let mut committed = std::collections::HashMap::with_capacity(opts.commits);
    let mut commit_ms = Vec::with_capacity(opts.commits);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / opts.rate_hz));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let started = Instant::now();
    for k in 0..opts.commits {
        tick.tick().await;
        let i = k % opts.connections;
        let t0 = Instant::now();
        let outcome = commit_one(&store, i, generations[i]).await?;
        let done = mono_ns();
        commit_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
        match outcome {
            CommitOutcome::Won {
                generation,
                version,
            } => {
                generations[i] = generation;
                committed.insert(version, done);
            }
            CommitOutcome::Lost { current } => {
                return Err(format!(
                    "commit of {} lost (generation now {current:?})",
                    conn_id(i)
                ))
            }
        }
    }
    let writing_s = started.elapsed().as_secs_f64();
    let seen = match tokio::time::timeout(Duration::from_secs(30), reader).await {
        Ok(r) => r.map_err(|e| e.to_string())?,
        Err(_) => {
            let _ = child.start_kill();
            return Err("team-follow did not deliver every change within 30 s".into());
        }
    };
    let _ = child.wait().await;
    let mut in_order = true;
    let mut last = i64::MIN;
    let mut lat: Vec<f64> = Vec::with_capacity(seen.len());
    for (v, ns) in &seen {
        if *v <= last {
            in_order = false;
        }
        last = *v;
        if let Some(c) = committed.get(v) {
            lat.push((*ns - *c) as f64 / 1e6);
        }
    }
    lat.sort_by(f64::total_cmp);
    commit_ms.sort_by(f64::total_cmp);
    println!(
        "propagation commits={} connections={} rate_hz={:.0} achieved_hz={:.1} delivered={} in_order={in_order} p50_ms={:.2} p99_ms={:.2} max_ms={:.2} min_ms={:.2} commit_p50_ms={:.2}",
        opts.commits,
        opts.connections,
        opts.rate_hz,
        opts.commits as f64 / writing_s,
        lat.len(),
        pct(&lat, 0.50),
        pct(&lat, 0.99),
        lat.last().copied().unwrap_or(f64::NAN),
        lat.first().copied().unwrap_or(f64::NAN),
        pct(&commit_ms, 0.50),
    );
    Ok(())
}

/// `writers` writers (each its own `TeamStore`), each committing `per_writer` times as
/// fast as it can, round 100 connections of its own.
async fn commits(cluster: &PgCluster, writers: usize, per_writer: usize) -> Result<(), String> {
    const PER_WRITER_CONNECTIONS: usize = 100;
    let db = DbConfig::parse(&address(cluster, "postgres")).map_err(err)?;
    let (store, join) = new_team(&db, &format!("Bench {writers} writers")).await?;
    insert_connections(&store, 0..writers * PER_WRITER_CONNECTIONS, 4).await?;
    let mut stores = Vec::with_capacity(writers);
    for w in 0..writers {
        stores.push(open(&db, &join, &format!("bench-writer-{w}")).await?);
    }
    let barrier = Arc::new(tokio::sync::Barrier::new(writers));
    let mut set = tokio::task::JoinSet::new();
    let started = Instant::now();
    for (w, store) in stores.into_iter().enumerate() {
        let barrier = barrier.clone();
        set.spawn(async move {
            // Warm the pool's session first.
            store.current_version().await.map_err(err)?;
            barrier.wait().await;
            let mut generations = [1i64; PER_WRITER_CONNECTIONS];
            let mut ms = Vec::with_capacity(per_writer);
            for k in 0..per_writer {
                let j = k % PER_WRITER_CONNECTIONS;
                let t0 = Instant::now();
                match commit_one(&store, w * PER_WRITER_CONNECTIONS + j, generations[j]).await? {
                    CommitOutcome::Won { generation, .. } => generations[j] = generation,
                    CommitOutcome::Lost { current } => {
                        return Err(format!("a disjoint commit lost (now {current:?})"))
                    }
                }
                ms.push(t0.elapsed().as_secs_f64() * 1000.0);
            }
            Ok::<Vec<f64>, String>(ms)
        });
    }
    let mut all = Vec::with_capacity(writers * per_writer);
    while let Some(r) = set.join_next().await {
        all.extend(r.map_err(|e| e.to_string())??);
    }
    let wall = started.elapsed().as_secs_f64();
    all.sort_by(f64::total_cmp);
    println!(
        "commit writers={writers} commits={} p50_ms={:.2} p99_ms={:.2} max_ms={:.2} per_s={:.0}",
        all.len(),
        pct(&all, 0.50),
        pct(&all, 0.99),
        all.last().copied().unwrap_or(f64::NAN),
        all.len() as f64 / wall
    );
    Ok(())
}

/// `pg_database_size` and each table's `pg_total_relation_size` (bytes).
fn sizes(cluster: &PgCluster, dbname: &str) -> (i64, Vec<(String, i64)>) {
    tokio::task::block_in_place(|| {
        let db: i64 = cluster
            .psql(dbname, "SELECT pg_database_size(current_database())")
            .trim()
            .parse()
            .unwrap_or(-1);
        let tables = cluster
            .psql(
                dbname,
                "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c \
                 WHERE c.relnamespace = 'authdeck'::regnamespace AND c.relkind = 'r' ORDER BY 1",
            )
            .lines()
            .filter_map(|l| {
                let (name, size) = l.split_once('|')?;
                Some((name.to_string(), size.trim().parse().ok()?))
            })
            .collect();
        (db, tables)
    })
}

async fn size(cluster: &PgCluster, opts: &Options) -> Result<(), String> {
    let dbname = "authdeck_size";
    tokio::task::block_in_place(|| cluster.create_database(dbname));
    let db = DbConfig::parse(&address(cluster, dbname)).map_err(err)?;
    let (store, _join) = new_team(&db, "Bench size").await?;
    let n = opts.size_connections;
    // The baseline: the empty team, its catalogs compacted (the migrations' DDL leaves
    // dead catalog rows that a later VACUUM FULL would otherwise count as a saving).
    tokio::task::block_in_place(|| cluster.psql(dbname, "VACUUM FULL"));
    let (base_db, base_tables) = sizes(cluster, dbname);
    let started = Instant::now();
    insert_connections(&store, 0..n, 4).await?;
    let inserted_s = started.elapsed().as_secs_f64();
    // One refresh each: generation 2, the token set replaced (what a day of the
    // scheduler leaves behind: dead tuples for VACUUM), a `refresh` history row.
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let store = store.clone();
        let next = next.clone();
        set.spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    return Ok::<(), String>(());
                }
                commit_one(&store, i, 1).await?;
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r.map_err(|e| e.to_string())??;
    }
    // The rest of the history (connect + refresh are 2): older refreshes, as the server
    // would have them, in one statement.
    let more = opts.history.saturating_sub(2);
    let team = store.team_id().to_string();
    tokio::task::block_in_place(|| {
        cluster.psql(
            dbname,
            &format!(
                "INSERT INTO authdeck.history (team_id, connection_id, client_id, at, event, outcome, detail, machine, via) \
                 SELECT c.team_id, c.id, c.client_id, now() - g * interval '20 hours', 'refresh', 'ok', \
                        'access token valid for 86400 s', 'bench-agent', 'agent' \
                   FROM authdeck.connections c, generate_series(1, {more}) g \
                  WHERE c.team_id = '{team}'::uuid"
            ),
        )
    });
    let history_rows: i64 = tokio::task::block_in_place(|| {
        cluster.psql(
            dbname,
            "SELECT count(*) FROM authdeck.history WHERE connection_id IS NOT NULL",
        )
    })
    .trim()
    .parse()
    .unwrap_or(-1);
    let sealed_len = {
        let tokens = token_set(0, 2);
        tokens.len() + 45 // 0x01, epoch (4), nonce (24), Poly1305 tag (16)
    };
    let per_1000 = |v: i64, base: i64| (v - base) as f64 * 1000.0 / n as f64 / 1024.0;
    let report = |label: &str, (db_size, tables): (i64, Vec<(String, i64)>)| {
        let schema: i64 = tables.iter().map(|(_, s)| s).sum();
        let base_schema: i64 = base_tables.iter().map(|(_, s)| s).sum();
        let mut line = format!(
            "size stage={label} connections={n} history_rows={history_rows} token_set_bytes={} sealed_bytes={sealed_len} \
             db_kib_per_1000={:.0} db_mib={:.1} base_db_mib={:.1} schema_kib_per_1000={:.0}",
            token_set(0, 2).len(),
            per_1000(db_size, base_db),
            db_size as f64 / 1048576.0,
            base_db as f64 / 1048576.0,
            per_1000(schema, base_schema),
        );
        for (name, size) in &tables {
            let base = base_tables
                .iter()
                .find(|(b, _)| b == name)
                .map(|(_, s)| *s)
                .unwrap_or(0);
            line.push_str(&format!(
                " {name}_kib_per_1000={:.0}",
                per_1000(*size, base)
            ));
        }
        println!("{line}");
    };
    eprintln!(
        "authdeck-bench team: {n} connections inserted in {inserted_s:.1} s, refreshed once, {history_rows} history rows"
    );
    report("written", sizes(cluster, dbname));
    tokio::task::block_in_place(|| cluster.psql(dbname, "VACUUM (ANALYZE)"));
    report("vacuum", sizes(cluster, dbname));
    tokio::task::block_in_place(|| cluster.psql(dbname, "VACUUM FULL"));
    report("vacuum_full", sizes(cluster, dbname));
    Ok(())
}

// ---- the second desktop ----------------------------------------------------------------

pub fn follow(address: &str, from: i64, count: usize, timeout_s: u64) -> Result<(), String> {
    let (team, key) = JoinKey::read_from(std::io::stdin().lock()).map_err(err)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let db = DbConfig::parse(address).map_err(err)?;
        let store = TeamStore::open(&db, &team, key, "bench-desk-2", Via::Desktop)
            .await
            .map_err(err)?;
        let mut feed = store.feed(from);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout_s);
        let stdout = std::io::stdout();
        let mut delivered = 0;
        let mut ready = false;
        while delivered < count {
            let event = match tokio::time::timeout_at(deadline, feed.recv()).await {
                Ok(Some(e)) => e,
                Ok(None) => return Err("the feed stopped".to_string()),
                Err(_) => {
                    return Err(format!(
                        "{delivered} of {count} changes within {timeout_s} s"
                    ))
                }
            };
            let at = mono_ns();
            let mut out = stdout.lock();
            let written = match event {
                FeedEvent::Change(c) => {
                    delivered += 1;
                    writeln!(out, "v {} {at}", c.version)
                }
                FeedEvent::Connected { version } if !ready => {
                    ready = true;
                    writeln!(out, "ready {version}")
                }
                FeedEvent::Connected { .. } => Ok(()),
                FeedEvent::Disconnected { error } => {
                    eprintln!("authdeck-bench team-follow: disconnected: {}", err(error));
                    Ok(())
                }
            };
            written
                .and_then(|()| out.flush())
                .map_err(|e| format!("stdout: {e}"))?;
        }
        Ok(())
    })
}

/// The figures' lines are read by scripts/bench.sh; keep them parseable.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_sets_are_sized_like_the_emulators() {
        let t = token_set(7, 3);
        let v: Value = serde_json::from_slice(&t).unwrap();
        let jwt = v["access_token"].as_str().unwrap();
        assert_eq!(jwt.split('.').count(), 3);
        assert_eq!(v["refresh_token"].as_str().unwrap().len(), 43);
        assert!((350..600).contains(&t.len()), "{}", t.len());
        assert_ne!(token_set(7, 3), token_set(7, 4));
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(pct(&v, 0.50), 50.0);
        assert_eq!(pct(&v, 0.99), 99.0);
        assert!(pct(&[], 0.5).is_nan());
    }

    #[test]
    fn the_filler_is_base64url() {
        let s = b64ish(42, 100);
        assert_eq!(s.len(), 100);
        assert!(s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    }
}
