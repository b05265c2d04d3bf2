//! End-to-end tests of `authdeckctl`: the real binary against an in-process provider
//! emulator, a private SQLite data dir and the real Secret Service (run them under
//! `scripts/with-keyring.sh`, e.g. `scripts/with-keyring.sh cargo test -p authdeck-cli`).
//!
//! One test binary (one link) with a module per area.

mod agent;
mod canary;
mod check;
mod clients;
mod common;
mod connect;
mod datadir;
mod devices;
mod errors;
mod exec;
mod export;
mod faults;
mod lifecycle;
mod loopback;
mod provider_echo;
mod proxy;
mod rotation;
mod sandbox;
mod signals;
mod team;
mod team_agent;
mod team_harness;
mod team_import;
mod team_mode;
mod team_storm;
mod upgrade;
