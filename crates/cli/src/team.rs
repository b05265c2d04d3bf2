//! `authdeckctl team …`: this desktop's membership of a team (issue 13 §5).
//!
//! The membership (`team.json`, no secret), the team key (keyring, or a 0600 file /
//! systemd credential for a headless agent) and the status live in
//! `authdeck_team::membership`, so the window can share them. Join keys are read on
//! stdin only and printed on stdout only, once; nothing here puts one in an error.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;

use authdeck_core::store::keyring::KeyringStore;
use authdeck_core::store::paths::Paths;
use authdeck_core::store::SecretStore;
use authdeck_core::{Error, Result};
use authdeck_team::membership::{self, KeySource, Membership, Observed, TeamStatus};
use authdeck_team::{schema, JoinKey, TeamStore, Via};
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand, ValueEnum};
use zeroize::Zeroizing;

const APP_VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(Subcommand)]
pub enum TeamCommand {
    /// Create a team in a PostgreSQL database (the schema, a new team key) and make this
    /// desktop its first member. Prints the join key once, on stdout.
    Init {
        #[command(flatten)]
        db: DatabaseArgs,
        /// The team's name (shown to every member).
        #[arg(long, default_value = "Authdeck team")]
        name: String,
        #[command(flatten)]
        key: KeyArgs,
    },
    /// Join a team: the join key (what `team init` printed) as the first line of stdin,
    /// never on the command line.
    Join {
        #[command(flatten)]
        db: DatabaseArgs,
        #[command(flatten)]
        key: KeyArgs,
    },
    /// The team, its database, whether it answers, the desktops and agents seen, the
    /// scheduler's leader, the last refresh and the refresh lag.
    Status,
    /// Forget this desktop's membership and team key (the team itself is not touched).
    Leave,
    /// A new team key: every secret in the team is sealed again in one transaction, and
    /// the old key opens nothing. Prints the new join key once, on stdout.
    RotateKey,
    /// Move this desktop's local connections (with their clients, child secrets and
    /// history) into the team; each local copy is removed only after the team has it.
    /// Safe to interrupt and run again.
    Import,
    /// Print the SQL an administrator runs for a PostgreSQL role.
    Sql {
        #[arg(value_enum)]
        kind: SqlKind,
        /// The PostgreSQL role (an existing login role).
        role: String,
    },
}

#[derive(Args)]
pub struct DatabaseArgs {
    /// The database address: `host=… port=… user=… dbname=…` or `postgres://user@host/db`,
    /// without a password.
    #[arg(long, value_name = "URL")]
    database: String,
    /// This machine's name in the team (default: the host name).
    #[arg(long, value_name = "NAME")]
    machine: Option<String>,
    /// Read the database role's password from stdin (join: the line after the join
    /// key); it is kept in the system keyring.
    #[arg(long)]
    password_stdin: bool,
}

#[derive(Args)]
pub struct KeyArgs {
    /// Headless agent: keep the team key in this file (created 0600) instead of the keyring.
    #[arg(long, value_name = "PATH", conflicts_with = "key_credential")]
    key_file: Option<PathBuf>,
    /// Headless agent under systemd: read the team key from the credential `team-key`
    /// ($CREDENTIALS_DIRECTORY/team-key) each time; nothing is stored here.
    #[arg(long)]
    key_credential: bool,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum SqlKind {
    /// A member: reads and refreshes the team's connections.
    Member,
    /// Read-only (support staff): connections, status, history; no token, no write.
    Reader,
    /// Take a member's or reader's access away (then `team rotate-key`, then DROP ROLE).
    Revoke,
}

impl KeyArgs {
    fn source(&self) -> Result<KeySource> {
        if self.key_credential {
            return Ok(KeySource::Credential);
        }
        match &self.key_file {
            None => Ok(KeySource::Keyring),
            Some(path) => Ok(KeySource::File {
                path: std::path::absolute(path).map_err(|e| {
                    Error::invalid_input(format!("Cannot use the key file {}.", path.display()))
                        .with_detail(e.to_string())
                })?,
            }),
        }
    }
}

pub async fn run(command: TeamCommand, data_dir: Option<PathBuf>, json: bool) -> Result<ExitCode> {
    let open = || -> Result<(Paths, KeyringStore)> {
        let paths = Paths::resolve(data_dir.clone())?;
        let secrets = KeyringStore::new(paths.keyring_service.clone());
        Ok((paths, secrets))
    };
    match command {
        TeamCommand::Sql { kind, role } => {
            let sql = match kind {
                SqlKind::Member => schema::grant_member_sql(&role)?,
                SqlKind::Reader => schema::grant_reader_sql(&role)?,
                SqlKind::Revoke => schema::revoke_sql(&role)?,
            };
            outln!("{sql}");
            Ok(ExitCode::SUCCESS)
        }
        TeamCommand::Init { db, name, key } => {
            let (paths, secrets) = open()?;
            init(&paths, &secrets, db, &name, key, json).await
        }
        TeamCommand::Join { db, key } => {
            let (paths, secrets) = open()?;
            join(&paths, &secrets, db, key, json).await
        }
        TeamCommand::Status => {
            let (paths, secrets) = open()?;
            status(&paths, &secrets, json).await
        }
        TeamCommand::Leave => {
            let (paths, secrets) = open()?;
            leave(&paths, &secrets, json)
        }
        TeamCommand::Import => crate::team_import::run(data_dir, json).await,
        TeamCommand::RotateKey => {
            let (paths, secrets) = open()?;
            rotate_key(&paths, &secrets, json).await
        }
    }
}

/// Lines from stdin, each zeroed when dropped (a join key, a password).
struct StdinLines {
    lock: std::io::StdinLock<'static>,
}

impl StdinLines {
    fn new() -> Self {
        Self {
            lock: std::io::stdin().lock(),
        }
    }

    fn next(&mut self, what: &str) -> Result<Zeroizing<String>> {
        if std::io::stdin().is_terminal() {
            errln!("Paste or type the {what}, then press Enter:");
        }
        let mut line = Zeroizing::new(String::new());
        let read = std::io::Read::take(&mut self.lock, 8192)
            .read_line(&mut line)
            .map_err(|_| {
                Error::invalid_input(format!("Could not read the {what} from standard input."))
            })?;
        if read == 0 {
            return Err(Error::invalid_input(format!(
                "Expected the {what} as a line on standard input, found end of input."
            )));
        }
        let value = Zeroizing::new(line.trim().to_owned());
        if value.is_empty() {
            return Err(Error::invalid_input(format!(
                "The {what} read from standard input is empty."
            )));
        }
        Ok(value)
    }
}

/// SIGINT, SIGTERM and SIGHUP held off (received and ignored) while this lives: between
/// the commit of a new team key and its one printing, a signal would lose the only copy
/// (the database holds only its check value). SIGKILL cannot be held off.
struct HeldSignals {
    #[cfg(unix)]
    _streams: Vec<tokio::signal::unix::Signal>,
}

fn hold_signals() -> Result<HeldSignals> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut streams = Vec::new();
        for kind in [
            SignalKind::interrupt(),
            SignalKind::terminate(),
            SignalKind::hangup(),
        ] {
            streams.push(signal(kind).map_err(|e| {
                Error::internal("Could not set up signal handling.").with_detail(e.to_string())
            })?);
        }
        Ok(HeldSignals { _streams: streams })
    }
    #[cfg(not(unix))]
    Ok(HeldSignals {})
}

fn warn_join_key(what: &str) {
    errln!(
        "authdeckctl: {what} is the line above on stdout, shown this once. Pass it to each member over a channel you trust (in person, a password manager), never in clear e-mail or chat: they run `authdeckctl team join --database URL` and paste it on stdin. Anyone with it and a database role can read the team's tokens."
    );
}

async fn init(
    paths: &Paths,
    secrets: &KeyringStore,
    db: DatabaseArgs,
    name: &str,
    key: KeyArgs,
    json: bool,
) -> Result<ExitCode> {
    membership::refuse_other_team(&paths.data_dir, None)?;
    let source = key.source()?;
    let config = membership::parse_address(&db.database)?;
    let password = if db.password_stdin {
        Some(StdinLines::new().next("database password")?)
    } else {
        None
    };
    if name.trim().is_empty() {
        return Err(Error::invalid_input("The team's name cannot be empty."));
    }
    paths.ensure()?;
    membership::check_key_place(&source, password.is_some(), secrets)?;
    let config = match &password {
        Some(p) => membership::address_config(&db.database, Some(p.as_str()))?,
        None => config,
    };
    let machine = db.machine.unwrap_or_else(membership::default_machine_name);
    let _held = hold_signals()?;
    let (store, join) = TeamStore::init(&config, name.trim(), &machine, Via::Cli).await?;
    let m = Membership {
        v: 1,
        database: db.database.trim().to_owned(),
        team_id: store.team_id().to_owned(),
        team_name: name.trim().to_owned(),
        machine,
        key: source,
        password: password.is_some(),
        joined_at: Utc::now(),
    };
    // The team exists now: whatever fails below, the join key is printed, so the team
    // can still be joined (here too, with `team join`).
    let kept = membership::keep_password(password.as_ref().map(|p| p.as_str()), secrets)
        .and_then(|()| membership::keep_key(&m.key, join.expose(), secrets))
        .and_then(|()| m.save(&paths.data_dir));
    let _ = store.seen(APP_VERSION).await;
    print_join_key(&join, &m, json)?;
    warn_join_key("The team's join key");
    kept?;
    errln!(
        "authdeckctl: Created team {:?} ({}) in {}; this desktop ({}) is its first member, its key in {}.",
        m.team_name,
        m.team_id,
        membership::describe_database(store.db()),
        m.machine,
        m.key.describe()
    );
    if matches!(m.key, KeySource::Credential) {
        errln!("authdeckctl: Put the join key into the service's credential `team-key` (systemd-creds encrypt … / LoadCredentialEncrypted=team-key:…).");
    }
    Ok(ExitCode::SUCCESS)
}

fn print_join_key(join: &JoinKey, m: &Membership, json: bool) -> Result<()> {
    if json {
        let value = serde_json::json!({
            "team_id": m.team_id,
            "team_name": m.team_name,
            "join_key": join.expose(),
        });
        crate::print_json(&value)
    } else {
        outln!("{}", join.expose());
        Ok(())
    }
}

/// The join key, then (with --password-stdin) the password: lines of stdin.
struct StdinJoin {
    lines: StdinLines,
    password: bool,
}

impl membership::JoinSecrets for StdinJoin {
    fn join_key(&mut self) -> Result<Zeroizing<String>> {
        self.lines.next("join key")
    }

    fn password(&mut self) -> Result<Option<Zeroizing<String>>> {
        if self.password {
            self.lines.next("database password").map(Some)
        } else {
            Ok(None)
        }
    }
}

async fn join(
    paths: &Paths,
    secrets: &KeyringStore,
    db: DatabaseArgs,
    key: KeyArgs,
    json: bool,
) -> Result<ExitCode> {
    let source = key.source()?;
    let mut input = StdinJoin {
        lines: StdinLines::new(),
        password: db.password_stdin,
    };
    let joined = membership::join(
        paths,
        secrets,
        membership::JoinRequest {
            address: &db.database,
            machine: db.machine,
            key: source,
            via: Via::Cli,
            app_version: APP_VERSION,
        },
        &mut input,
    )
    .await?;
    let m = &joined.membership;
    if json {
        crate::print_json(&serde_json::json!({
            "team_id": m.team_id,
            "team_name": m.team_name,
            "machine": m.machine,
            "database": joined.database,
            "key": m.key,
            "rejoined": joined.rejoined,
        }))?;
    } else {
        outln!(
            "{} team {:?} ({}) as {} on {}; the team key is in {}.",
            if joined.rejoined {
                "Joined again:"
            } else {
                "Joined"
            },
            m.team_name,
            m.team_id,
            m.machine,
            joined.database,
            m.key.describe()
        );
        outln!("authdeckctl now uses the team's connections; this desktop's local ones stay local until `authdeckctl team import` moves them into the team.");
    }
    Ok(ExitCode::SUCCESS)
}

fn not_in_team(json: bool) -> Result<ExitCode> {
    if json {
        crate::print_json(&serde_json::json!({ "in_team": false }))?;
    } else {
        outln!("This desktop is not in a team: `authdeckctl team init --database URL` creates one, `authdeckctl team join --database URL` joins one.");
    }
    Ok(ExitCode::SUCCESS)
}

async fn status(paths: &Paths, secrets: &KeyringStore, json: bool) -> Result<ExitCode> {
    match membership::observe(&paths.data_dir, secrets, Via::Cli, APP_VERSION).await? {
        Observed::NotInTeam => not_in_team(json),
        Observed::Reachable { membership, status } => {
            show_status(&membership, &status, true, json)?;
            Ok(ExitCode::SUCCESS)
        }
        Observed::Unreachable {
            membership: m,
            last_known,
            error,
        } => {
            match last_known {
                Some(s) => show_status(&m, &s, false, json)?,
                None if json => crate::print_json(&serde_json::json!({
                    "in_team": true,
                    "team_id": m.team_id,
                    "team_name": m.team_name,
                    "reachable": false,
                    "last_known": null,
                }))?,
                None => outln!(
                    "Team {:?} ({}): the database does not answer, and no earlier status is known here.",
                    m.team_name,
                    m.team_id
                ),
            }
            Err(error)
        }
    }
}

fn when(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn ago(at: DateTime<Utc>) -> String {
    let s = (Utc::now() - at).num_seconds();
    if s <= 0 {
        "just now".into()
    } else {
        format!("{} ago", crate::output::duration_text(s))
    }
}

fn show_status(m: &Membership, s: &TeamStatus, reachable: bool, json: bool) -> Result<()> {
    if json {
        let mut value = serde_json::to_value(s).map_err(|e| {
            Error::internal("Could not encode the team status.").with_detail(e.to_string())
        })?;
        if let Some(obj) = value.as_object_mut() {
            obj.insert("in_team".into(), true.into());
            obj.insert("reachable".into(), reachable.into());
            obj.insert("last_known".into(), (!reachable).into());
            obj.insert(
                "key".into(),
                serde_json::to_value(&m.key).unwrap_or_default(),
            );
        }
        return crate::print_json(&value);
    }
    let field = |k: &str, v: &str| outln!("{k:<15}{v}");
    field("Team", &format!("{} ({})", s.team_name, s.team_id));
    field(
        "Database",
        &if reachable {
            format!("{} — reachable", s.database)
        } else {
            format!("{} — NOT reachable", s.database)
        },
    );
    if !reachable {
        field(
            "Last known",
            &format!(
                "as of {} ({}); what follows may be out of date",
                when(s.checked_at),
                ago(s.checked_at)
            ),
        );
    }
    field(
        "This machine",
        &format!("{} (key in {})", m.machine, m.key.describe()),
    );
    field(
        "Leader",
        &match &s.leader {
            Some(l) => format!("{} on {}", l.member, l.machine),
            None => "none (no scheduler runs in the team)".into(),
        },
    );
    field("Connections", &s.connections.to_string());
    field(
        "Last refresh",
        &match &s.last_refresh {
            Some(r) => format!(
                "{} ({}) by {} on {}",
                when(r.at),
                ago(r.at),
                r.by.as_deref().unwrap_or("?"),
                r.on.as_deref().unwrap_or("?")
            ),
            None => "never".into(),
        },
    );
    field(
        "Refresh lag",
        &match s.refresh_lag_seconds {
            Some(secs) => format!(
                "{} (the longest any connection has gone unrefreshed)",
                crate::output::duration_text(secs.max(1))
            ),
            None => "— (no connections)".into(),
        },
    );
    outln!("");
    outln!("KIND     MACHINE              MEMBER               VERSION  LAST SEEN");
    for p in &s.members {
        outln!(
            "{:<8} {:<20} {:<20} {:<8} {} ({})",
            p.kind,
            p.machine,
            p.member,
            p.app_version,
            when(p.last_seen),
            ago(p.last_seen)
        );
    }
    Ok(())
}

fn leave(paths: &Paths, secrets: &KeyringStore, json: bool) -> Result<ExitCode> {
    let Some(m) = membership::leave(&paths.data_dir, secrets)? else {
        return not_in_team(json);
    };
    if json {
        crate::print_json(&serde_json::json!({
            "left": true,
            "team_id": m.team_id,
            "team_name": m.team_name,
        }))?;
    } else {
        outln!(
            "Left team {:?} ({}) on this desktop: its membership and the team key ({}) are forgotten here.",
            m.team_name,
            m.team_id,
            m.key.describe()
        );
        outln!("What stays in the team: its connections, history and this machine ({}) in the list of members seen; other members are not affected; your database role still exists.", m.machine);
        outln!("To take this desktop's access away for good, the administrator runs `authdeckctl team sql revoke ROLE` and then `authdeckctl team rotate-key`: the key this desktop held then opens nothing.");
    }
    Ok(ExitCode::SUCCESS)
}

async fn rotate_key(paths: &Paths, secrets: &KeyringStore, json: bool) -> Result<ExitCode> {
    let Some(m) = Membership::load(&paths.data_dir)? else {
        return Err(Error::invalid_input(
            "This desktop is not in a team: nothing to rotate.",
        ));
    };
    if matches!(m.key, KeySource::Keyring) {
        secrets.check()?;
    }
    let store = m.open(secrets, Via::Cli).await?;
    let _held = hold_signals()?;
    let (_new_store, join) = store.rotate_key().await?;
    // Committed: the old key opens nothing now. The new join key is printed whatever
    // happens below, or the team would be locked out.
    let kept = membership::keep_key(&m.key, join.expose(), secrets);
    print_join_key(&join, &m, json)?;
    warn_join_key("The team's new join key");
    errln!("authdeckctl: The old key opens nothing any more: every other member runs `authdeckctl team join --database URL` again with the new key.");
    if let Err(e) = kept {
        return Err(Error::new(
            e.code,
            format!(
                "The key was rotated, but the new key could not be kept in {}: run `authdeckctl team join --database URL` here with the join key printed above. ({})",
                m.key.describe(),
                e.message
            ),
        ));
    }
    if matches!(m.key, KeySource::Credential) {
        errln!("authdeckctl: Replace the service's credential `team-key` with the new join key.");
    }
    Ok(ExitCode::SUCCESS)
}
