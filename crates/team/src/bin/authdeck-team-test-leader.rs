//! A test helper, not a tool: a separate process that takes a team's scheduler
//! leadership and then holds it until it is killed, so the failover tests can kill -9 or
//! freeze (SIGSTOP) a real leader process. Reads the database address and the join key
//! on stdin (two lines; never in arguments), prints `leading <backend pid>` once it leads,
//! and `stepped-down <last yes µs> <first no µs>` if `is_leader()` turns false (a cut).

use std::io::{BufRead, Write};
use std::time::Duration;

use authdeck_team::{DbConfig, JoinKey, Leadership, TeamStore, Via};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("error: {e} ({})", e.detail.as_deref().unwrap_or_default());
        std::process::exit(1);
    }
}

async fn run() -> authdeck_core::Result<()> {
    let mut lines = std::io::stdin().lock().lines();
    let mut line = || {
        lines.next().and_then(|l| l.ok()).ok_or_else(|| {
            authdeck_core::Error::invalid_input("expected the address and the join key on stdin")
        })
    };
    let address = line()?;
    let join = line()?;
    let db = DbConfig::parse(&address)?;
    let (team, key) = JoinKey::decode(&join)?;
    let store = TeamStore::open(&db, &team, key, "leader-process", Via::Agent).await?;
    let leader = Leadership::acquire(&store, Duration::from_secs(10))
        .await?
        .ok_or_else(|| {
            authdeck_core::Error::new(authdeck_core::ErrorCode::Busy, "another process leads")
        })?;
    println!("leading {}", leader.backend_pid());
    // Then watch `is_leader()` every 2 ms and say when it turned false: the last check
    // that said yes and the first that said no, in microseconds since the epoch (each
    // time taken before its check), so a partition test can compare them with when a
    // standby took over. Then hold on (as a leader that lost its link would).
    let mut last_yes = micros();
    loop {
        let t = micros();
        if !leader.is_leader() {
            // The test may have stopped reading: ignore a closed pipe.
            let mut out = std::io::stdout();
            let _ = writeln!(out, "stepped-down {last_yes} {t}");
            let _ = out.flush();
            break;
        }
        last_yes = t;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    loop {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}

fn micros() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0)
}
