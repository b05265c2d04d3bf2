//! Where a desktop's (or an agent's) team membership lives, and joining, leaving and the
//! status: one implementation for `authdeckctl team …` and the window's Settings → Team.
//!
//! - **The membership** (`team.json` in the data directory, 0600, replaced atomically):
//!   the database address *without* any password, the team id and name, this machine's
//!   name, where the key is. Nothing in it is secret.
//! - **The team key** in the OS keyring, under the data directory's keyring service (the
//!   vault's store), key [`KEY_ENTRY`]; for a headless agent instead in a 0600 file
//!   ([`KeySource::File`]) or the systemd credential `team-key`
//!   (`$CREDENTIALS_DIRECTORY/team-key`, [`KeySource::Credential`]). It is kept as the
//!   join key's text (team id, epoch, key and a checksum), never in `team.json`.
//! - **The database password**, if the role has one: read on stdin once and kept in the
//!   same keyring ([`PASSWORD_ENTRY`]), never in a file or the address. (tokio-postgres
//!   does not read libpq's `~/.pgpass`; the keyring is where Authdeck keeps every other
//!   secret, encrypted at rest and unlocked with the session.) Roles without a password
//!   (peer authentication over a Unix socket, `trust` on loopback) need nothing.
//! - **The last status** (`team-status.json`, 0600): what `team status` saw last, shown
//!   (marked as last known) when the database cannot be reached.

use std::io::Write;
use std::path::{Path, PathBuf};

use authdeck_core::secret::KeyringValue;
use authdeck_core::store::paths::Paths;
use authdeck_core::store::SecretStore;
use authdeck_core::{Error, ErrorCode, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::crypto::{JoinKey, TeamKey};
use crate::store::{TeamStore, Via};
use crate::tls::DbConfig;

/// The membership file in the data directory.
pub const CONFIG_FILE: &str = "team.json";
/// The last status `team status` saw.
pub const STATUS_FILE: &str = "team-status.json";
/// The keyring entry of the team key (as join key text).
pub const KEY_ENTRY: &str = "team/key";
/// The keyring entry of the database role's password.
pub const PASSWORD_ENTRY: &str = "team/db-password";
/// The systemd credential's name (`LoadCredential=team-key:…`).
pub const CREDENTIAL_NAME: &str = "team-key";

/// Where the team key is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum KeySource {
    /// The OS keyring of this data directory ([`KEY_ENTRY`]).
    Keyring,
    /// A file private to the user (0600), written by `team join --key-file`.
    File { path: PathBuf },
    /// `$CREDENTIALS_DIRECTORY/team-key`, provided by systemd to the service.
    Credential,
}

impl KeySource {
    pub fn describe(&self) -> String {
        match self {
            KeySource::Keyring => "the system keyring".into(),
            KeySource::File { path } => format!("the file {}", path.display()),
            KeySource::Credential => {
                format!("the systemd credential {CREDENTIAL_NAME} ($CREDENTIALS_DIRECTORY)")
            }
        }
    }
}

/// `team.json`: this data directory's membership. Nothing in it is secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    pub v: u32,
    /// The database address as given, without a password (refused with one).
    pub database: String,
    pub team_id: String,
    pub team_name: String,
    /// This machine's name in the team (history, members seen).
    pub machine: String,
    pub key: KeySource,
    /// Whether the role's password is in the keyring ([`PASSWORD_ENTRY`]).
    #[serde(default)]
    pub password: bool,
    pub joined_at: DateTime<Utc>,
}

fn storage(what: String, e: std::io::Error) -> Error {
    Error::new(ErrorCode::Storage, what).with_detail(e.to_string())
}

impl Membership {
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join(CONFIG_FILE)
    }

    /// The membership of a data directory, if it is in a team.
    pub fn load(data_dir: &Path) -> Result<Option<Membership>> {
        let path = Self::path(data_dir);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(storage(format!("Cannot read {}.", path.display()), e)),
        };
        let m: Membership = serde_json::from_str(&text).map_err(|e| {
            Error::new(
                ErrorCode::Storage,
                format!(
                    "{} is damaged: run `authdeckctl team leave`, then join again.",
                    path.display()
                ),
            )
            .with_detail(e.to_string())
        })?;
        if m.v != 1 {
            return Err(Error::new(
                ErrorCode::Storage,
                format!(
                    "{} was written by a newer Authdeck (version {}).",
                    path.display(),
                    m.v
                ),
            ));
        }
        Ok(Some(m))
    }

    /// Write `team.json` (0600, atomically: a reader sees the old file or the new one).
    pub fn save(&self, data_dir: &Path) -> Result<()> {
        let text = serde_json::to_vec_pretty(self).map_err(|e| {
            Error::internal("Could not encode team.json.").with_detail(e.to_string())
        })?;
        write_private(&Self::path(data_dir), &text)
    }

    pub fn remove(data_dir: &Path) -> Result<()> {
        remove_file(&Self::path(data_dir))?;
        remove_file(&data_dir.join(STATUS_FILE))
    }

    /// The database address with the password (if any) from the keyring.
    pub fn db_config(&self, secrets: &dyn SecretStore) -> Result<DbConfig> {
        if !self.password {
            return address_config(&self.database, None);
        }
        let password = secrets.get(PASSWORD_ENTRY)?.ok_or_else(|| {
            Error::new(
                ErrorCode::KeyringUnavailable,
                "The team database password is missing from the keyring: run `authdeckctl team leave`, then join again.",
            )
        })?;
        address_config(&self.database, Some(password.expose()))
    }

    /// The team key, from where [`Membership::key`] says, checked to be this team's.
    pub fn team_key(&self, secrets: &dyn SecretStore) -> Result<TeamKey> {
        let missing = || {
            Error::new(
                ErrorCode::KeyringUnavailable,
                format!(
                    "The team key is missing from {}: ask a member for the join key and run `authdeckctl team join` again (or `team leave`).",
                    self.key.describe()
                ),
            )
        };
        let text: Zeroizing<String> = match &self.key {
            KeySource::Keyring => Zeroizing::new(
                secrets
                    .get(KEY_ENTRY)?
                    .ok_or_else(missing)?
                    .expose()
                    .to_owned(),
            ),
            KeySource::File { path } => read_key_file(path)?,
            KeySource::Credential => read_key_file(&credential_path()?)?,
        };
        let (team, key) = JoinKey::decode(&text).map_err(|_| {
            Error::new(
                ErrorCode::Storage,
                format!(
                    "The team key in {} is damaged: run `authdeckctl team join` again with the join key.",
                    self.key.describe()
                ),
            )
        })?;
        if team != self.team_id {
            return Err(Error::new(
                ErrorCode::Storage,
                format!(
                    "The team key in {} belongs to another team: run `authdeckctl team join` again with this team's join key.",
                    self.key.describe()
                ),
            ));
        }
        Ok(key)
    }

    /// Open the team store as this member.
    pub async fn open(&self, secrets: &dyn SecretStore, via: Via) -> Result<TeamStore> {
        let db = self.db_config(secrets)?;
        let key = self.team_key(secrets)?;
        TeamStore::open(&db, &self.team_id, key, &self.machine, via).await
    }
}

/// Keep the team key (its join key text) where `source` says. The credential is
/// provided by systemd: nothing is written, and it must hold this key.
pub fn keep_key(source: &KeySource, join: &str, secrets: &dyn SecretStore) -> Result<()> {
    match source {
        KeySource::Keyring => secrets.set(KEY_ENTRY, &KeyringValue::new(join.to_owned())),
        KeySource::File { path } => {
            let mut text = Zeroizing::new(join.as_bytes().to_vec());
            text.push(b'\n');
            write_private(path, &text)
        }
        KeySource::Credential => Ok(()),
    }
}

/// Forget the key and password this membership kept (the keyring entries, the key file).
pub fn forget_secrets(m: &Membership, secrets: &dyn SecretStore) -> Result<()> {
    match &m.key {
        KeySource::Keyring => secrets.delete(KEY_ENTRY)?,
        KeySource::File { path } => remove_file(path)?,
        KeySource::Credential => {}
    }
    if m.password {
        secrets.delete(PASSWORD_ENTRY)?;
    }
    Ok(())
}

/// `$CREDENTIALS_DIRECTORY/team-key`.
pub fn credential_path() -> Result<PathBuf> {
    match std::env::var_os("CREDENTIALS_DIRECTORY") {
        Some(dir) if !dir.is_empty() => Ok(PathBuf::from(dir).join(CREDENTIAL_NAME)),
        _ => Err(Error::new(
            ErrorCode::KeyringUnavailable,
            format!(
                "The team key is a systemd credential, but $CREDENTIALS_DIRECTORY is not set: run this as the service (LoadCredential={CREDENTIAL_NAME}:…), or join with the key in the keyring."
            ),
        )),
    }
}

/// Read a key file, refused when others may read it (it must be 0600 or 0400).
fn read_key_file(path: &Path) -> Result<Zeroizing<String>> {
    let meta = std::fs::metadata(path).map_err(|e| {
        storage(
            format!("Cannot read the team key file {}.", path.display()),
            e,
        )
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(Error::new(
                ErrorCode::Storage,
                format!(
                    "Refusing the team key file {}: others may read it (chmod 600 it, and make a new key with `team rotate-key` if anyone did).",
                    path.display()
                ),
            ));
        }
    }
    let _ = meta;
    let bytes = Zeroizing::new(std::fs::read(path).map_err(|e| {
        storage(
            format!("Cannot read the team key file {}.", path.display()),
            e,
        )
    })?);
    let text = std::str::from_utf8(&bytes).map_err(|_| {
        Error::new(
            ErrorCode::Storage,
            format!("The team key file {} is not text.", path.display()),
        )
    })?;
    Ok(Zeroizing::new(text.trim().to_owned()))
}

/// Parse a database address for a membership: refused (without repeating it) when it
/// embeds a password.
pub fn parse_address(address: &str) -> Result<DbConfig> {
    let db = DbConfig::parse(address)?;
    if db.pg().get_password().is_some() {
        return Err(Error::invalid_input(
            "The database address contains a password: remove it from the address (it would be kept in team.json). Give the password on standard input with --password-stdin instead: it is kept in the system keyring.",
        ));
    }
    Ok(db)
}

/// A membership's address (refused with a password in it, see [`parse_address`]) with
/// the role's password, if it has one, added.
pub fn address_config(address: &str, password: Option<&str>) -> Result<DbConfig> {
    let db = parse_address(address)?;
    match password {
        None => Ok(db),
        Some(p) => DbConfig::parse(&with_password(address, p)),
    }
}

/// The address with `password` added (key=value: a quoted `password='…'`; URL: a
/// `password=` query parameter, percent-encoded). Held in zeroed memory.
fn with_password(address: &str, password: &str) -> Zeroizing<String> {
    let trimmed = address.trim();
    let mut out = Zeroizing::new(String::with_capacity(
        trimmed.len() + password.len() * 3 + 16,
    ));
    out.push_str(trimmed);
    if trimmed.starts_with("postgres://") || trimmed.starts_with("postgresql://") {
        out.push(if trimmed.contains('?') { '&' } else { '?' });
        out.push_str("password=");
        for b in password.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    } else {
        out.push_str(" password='");
        for c in password.chars() {
            if matches!(c, '\'' | '\\') {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('\'');
    }
    out
}

/// This machine's name: the kernel's host name, else `$HOSTNAME`/`$COMPUTERNAME`.
pub fn default_machine_name() -> String {
    let from_kernel = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned());
    from_kernel
        .into_iter()
        .chain(std::env::var("HOSTNAME").ok())
        .chain(std::env::var("COMPUTERNAME").ok())
        .find(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// Write a file private to the user (0600), atomically: a temporary file beside it,
/// synced, renamed over it.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let fail = |e: std::io::Error| storage(format!("Could not write {}.", path.display()), e);
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = (|| {
        let mut f = options.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        #[cfg(unix)]
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(fail)
}

fn remove_file(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(storage(format!("Could not remove {}.", path.display()), e)),
    }
}

// ---- status ------------------------------------------------------------------------

/// A member + machine the team has seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenMember {
    pub member: String,
    pub machine: String,
    /// `desktop` or `agent`.
    pub kind: String,
    pub app_version: String,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leader {
    pub member: String,
    pub machine: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastRefresh {
    pub connection_id: String,
    pub at: DateTime<Utc>,
    pub by: Option<String>,
    pub on: Option<String>,
}

/// What `team status` shows (and keeps as the last known status).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamStatus {
    pub team_id: String,
    pub team_name: String,
    /// The database's host(s), port(s) and name (never a password).
    pub database: String,
    pub machine: String,
    /// When the database answered this status.
    pub checked_at: DateTime<Utc>,
    /// The team's change version.
    pub version: i64,
    pub connections: usize,
    /// Desktops and agents seen, most recent first.
    pub members: Vec<SeenMember>,
    /// Who holds the scheduler's leadership now (none: no scheduler runs).
    pub leader: Option<Leader>,
    pub last_refresh: Option<LastRefresh>,
    /// The longest any connection has gone without a refresh (since it was created, if
    /// never refreshed): how far the team's refresher lags. `None` without connections.
    pub refresh_lag_seconds: Option<i64>,
}

/// The database's hosts, ports and name, for people (no password: refused anyway).
pub fn describe_database(db: &DbConfig) -> String {
    use tokio_postgres::config::Host;
    let pg = db.pg();
    let ports = pg.get_ports();
    let hosts: Vec<String> = pg
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let host = match h {
                Host::Tcp(name) => name.clone(),
                #[cfg(unix)]
                Host::Unix(path) => path.display().to_string(),
            };
            match ports.get(i).or(ports.first()) {
                Some(port) => format!("{host}:{port}"),
                None => host,
            }
        })
        .collect();
    let name = pg.get_dbname().or(pg.get_user()).unwrap_or("postgres");
    format!("{} database {name}", hosts.join(","))
}

/// Note this machine as seen, and read the team's status.
pub async fn status(
    store: &TeamStore,
    membership: &Membership,
    app_version: &str,
) -> Result<TeamStatus> {
    store.seen(app_version).await?;
    let members = store.members().await?;
    let leader = crate::lock::current_leader(store).await?;
    let connections = store.connections().await?;
    let version = store.current_version().await?;
    let team_name = store.team_name().await?;
    let now = Utc::now();
    let last_refresh = connections
        .iter()
        .filter_map(|c| c.last_refresh_at.map(|at| (at, c)))
        .max_by_key(|(at, _)| *at)
        .map(|(at, c)| LastRefresh {
            connection_id: c.id.clone(),
            at,
            by: c.last_refresh_by.clone(),
            on: c.last_refresh_on.clone(),
        });
    let refresh_lag_seconds = connections
        .iter()
        .map(|c| c.last_refresh_at.unwrap_or(c.created_at))
        .min()
        .map(|oldest| (now - oldest).num_seconds().max(0));
    Ok(TeamStatus {
        team_id: store.team_id().to_owned(),
        team_name,
        database: describe_database(store.db()),
        machine: membership.machine.clone(),
        checked_at: now,
        version,
        connections: connections.len(),
        members: members
            .into_iter()
            .map(|m| SeenMember {
                member: m.member,
                machine: m.machine,
                kind: m.kind,
                app_version: m.app_version,
                first_seen: m.first_seen,
                last_seen: m.last_seen,
            })
            .collect(),
        leader: leader.map(|(member, machine, _)| Leader { member, machine }),
        last_refresh,
        refresh_lag_seconds,
    })
}

impl TeamStatus {
    /// The last status seen in this data directory (nothing if none, or unreadable).
    pub fn load_cached(data_dir: &Path) -> Option<TeamStatus> {
        let text = std::fs::read_to_string(data_dir.join(STATUS_FILE)).ok()?;
        serde_json::from_str(&text).ok()
    }

    pub fn save_cached(&self, data_dir: &Path) -> Result<()> {
        let text = serde_json::to_vec_pretty(self).map_err(|e| {
            Error::internal("Could not encode the team status.").with_detail(e.to_string())
        })?;
        write_private(&data_dir.join(STATUS_FILE), &text)
    }
}

// ---- join, leave, status (the CLI and the window) ----------------------------------

/// Refuse a second team: one membership per data directory. `same_team`: a re-join of
/// the same team (a new key after a rotation) is allowed.
pub fn refuse_other_team(data_dir: &Path, same_team: Option<&str>) -> Result<Option<Membership>> {
    let existing = Membership::load(data_dir)?;
    match &existing {
        Some(m) if Some(m.team_id.as_str()) != same_team => Err(Error::new(
            ErrorCode::AlreadyExists,
            format!(
                "This desktop is already in the team {:?} ({}): run `authdeckctl team leave` first.",
                m.team_name, m.team_id
            ),
        )),
        _ => Ok(existing),
    }
}

/// Before anything is created: the keyring (or key file place) can keep the key.
pub fn check_key_place(
    source: &KeySource,
    password: bool,
    secrets: &dyn SecretStore,
) -> Result<()> {
    if matches!(source, KeySource::Keyring) || password {
        secrets.check()?;
    }
    if let KeySource::File { path } = source {
        if let Some(parent) = path.parent() {
            if !parent.is_dir() {
                return Err(Error::invalid_input(format!(
                    "The key file's directory {} does not exist.",
                    parent.display()
                )));
            }
        }
    }
    Ok(())
}

/// Keep the database role's password (if any) in the keyring ([`PASSWORD_ENTRY`]).
pub fn keep_password(password: Option<&str>, secrets: &dyn SecretStore) -> Result<()> {
    if let Some(p) = password {
        secrets.set(PASSWORD_ENTRY, &KeyringValue::new(p.to_owned()))?;
    }
    Ok(())
}

/// Where a join's secrets come from (the CLI: stdin lines; the window: its form), asked
/// for only when needed, in this order: the join key once the address is accepted, the
/// password once the key is (so a refusal reads no more than it must).
pub trait JoinSecrets {
    fn join_key(&mut self) -> Result<Zeroizing<String>>;
    /// `None`: the role has no password.
    fn password(&mut self) -> Result<Option<Zeroizing<String>>>;
}

/// A join, besides its secrets.
pub struct JoinRequest<'a> {
    /// The database address, without a password.
    pub address: &'a str,
    /// This machine's name (default: the one of an earlier membership, else the host name).
    pub machine: Option<String>,
    pub key: KeySource,
    pub via: Via,
    pub app_version: &'a str,
}

/// What a join did.
#[derive(Debug, Clone)]
pub struct Joined {
    pub membership: Membership,
    /// The database's hosts and name ([`describe_database`]).
    pub database: String,
    /// This data directory was in the team already (a new key after a rotation).
    pub rejoined: bool,
}

/// Join a team: check the address (no password in it), take the join key, refuse
/// another team's, open the team with it (the database must answer and the key be the
/// team's current one), note this machine as seen, then keep the key (and password)
/// and write `team.json`. Nothing is kept unless the team opened.
pub async fn join<S: JoinSecrets + ?Sized>(
    paths: &Paths,
    secrets: &dyn SecretStore,
    request: JoinRequest<'_>,
    input: &mut S,
) -> Result<Joined> {
    let JoinRequest {
        address,
        machine,
        key: source,
        via,
        app_version,
    } = request;
    let config = parse_address(address)?;
    // In a team already: only a re-join of the same team (a new key) is allowed, which
    // the key tells.
    let current = Membership::load(&paths.data_dir)?;
    let text = input.join_key()?;
    let (team, team_key) = JoinKey::decode(&text)?;
    refuse_other_team(&paths.data_dir, Some(&team))?;
    let password = input.password()?;
    let config = match &password {
        Some(p) => address_config(address, Some(p.as_str()))?,
        None => config,
    };
    paths.ensure()?;
    check_key_place(&source, password.is_some(), secrets)?;
    let machine = machine
        .or_else(|| current.as_ref().map(|m| m.machine.clone()))
        .unwrap_or_else(default_machine_name);
    let store = TeamStore::open(&config, &team, team_key, &machine, via).await?;
    let team_name = store.team_name().await?;
    store.seen(app_version).await?;
    let m = Membership {
        v: 1,
        database: address.trim().to_owned(),
        team_id: team,
        team_name,
        machine,
        key: source,
        password: password.is_some(),
        joined_at: Utc::now(),
    };
    if let Some(old) = &current {
        if old.key != m.key || (old.password && !m.password) {
            forget_secrets(old, secrets)?;
        }
    }
    keep_password(password.as_ref().map(|p| p.as_str()), secrets)?;
    keep_key(&m.key, &text, secrets)?;
    m.save(&paths.data_dir)?;
    Ok(Joined {
        database: describe_database(store.db()),
        membership: m,
        rejoined: current.is_some(),
    })
}

/// Leave the team here: forget the key and password, then the membership (secrets
/// first: interrupted, it can run again). Works offline; the team itself (its
/// connections, history, this machine among the members seen) is not touched.
/// `None`: this data directory was in no team.
pub fn leave(data_dir: &Path, secrets: &dyn SecretStore) -> Result<Option<Membership>> {
    let Some(m) = Membership::load(data_dir)? else {
        return Ok(None);
    };
    forget_secrets(&m, secrets)?;
    Membership::remove(data_dir)?;
    Ok(Some(m))
}

/// What [`observe`] found.
#[derive(Debug)]
pub enum Observed {
    NotInTeam,
    /// The database answered: this status (also kept as the last known one).
    Reachable {
        membership: Membership,
        status: TeamStatus,
    },
    /// The database could not be reached (`team_unavailable`, in `error`): the last
    /// status seen here, if any (of this team only). Nothing was written.
    Unreachable {
        membership: Membership,
        last_known: Option<TeamStatus>,
        error: Error,
    },
}

/// The membership of this data directory and the team's status now: this machine noted
/// as seen, the status kept as the last known one (a cache: failing to write it fails
/// nothing). An error other than `team_unavailable` (a missing key, a refusal) is Err.
pub async fn observe(
    data_dir: &Path,
    secrets: &dyn SecretStore,
    via: Via,
    app_version: &str,
) -> Result<Observed> {
    let Some(membership) = Membership::load(data_dir)? else {
        return Ok(Observed::NotInTeam);
    };
    let reached = async {
        let store = membership.open(secrets, via).await?;
        status(&store, &membership, app_version).await
    }
    .await;
    match reached {
        Ok(status) => {
            if let Err(e) = status.save_cached(data_dir) {
                tracing::warn!(code = %e.code, "team status not cached");
            }
            Ok(Observed::Reachable { membership, status })
        }
        Err(error) if error.code == ErrorCode::TeamUnavailable => {
            let last_known =
                TeamStatus::load_cached(data_dir).filter(|s| s.team_id == membership.team_id);
            Ok(Observed::Unreachable {
                membership,
                last_known,
                error,
            })
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_with_a_password_is_refused_without_repeating_it() {
        for address in [
            "postgres://alice:hunter2-secret@db.example.com/team",
            "host=db.example.com user=alice password=hunter2-secret dbname=team",
            "postgresql://alice@db.example.com/team?password=hunter2-secret",
        ] {
            let err = parse_address(address).expect_err(address);
            assert_eq!(err.code, ErrorCode::InvalidInput);
            let shown = format!("{} {:?}", err.message, err.detail);
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(shown.contains("password"), "{shown}");
        }
        let ok = parse_address("host=127.0.0.1 port=5432 user=alice dbname=team").unwrap();
        assert_eq!(describe_database(&ok), "127.0.0.1:5432 database team");
    }

    #[test]
    fn the_password_is_added_in_either_address_form() {
        for (address, password) in [
            (
                "host=127.0.0.1 user=alice dbname=team",
                "it's a \\ pass word",
            ),
            ("postgres://alice@127.0.0.1/team", "p@ss/w?rd&x=1 é"),
            ("postgres://alice@127.0.0.1/team?connect_timeout=5", "plain"),
        ] {
            let db = DbConfig::parse(&with_password(address, password)).unwrap();
            assert_eq!(
                db.pg().get_password(),
                Some(password.as_bytes()),
                "{address}"
            );
            assert_eq!(db.pg().get_user(), Some("alice"));
        }
    }

    #[test]
    fn a_membership_round_trips_through_a_private_file() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Membership::load(dir.path()).unwrap(), None);
        let m = Membership {
            v: 1,
            database: "host=127.0.0.1 dbname=team".into(),
            team_id: "0b7f2c1e-3a4d-4e5f-8a9b-0c1d2e3f4a5b".into(),
            team_name: "Firm".into(),
            machine: "desk-a".into(),
            key: KeySource::File {
                path: dir.path().join("key"),
            },
            password: false,
            joined_at: Utc::now(),
        };
        m.save(dir.path()).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(Membership::path(dir.path()))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(Membership::load(dir.path()).unwrap(), Some(m));
        Membership::remove(dir.path()).unwrap();
        assert_eq!(Membership::load(dir.path()).unwrap(), None);
        // Only the membership was there: nothing else left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_others_may_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        write_private(&path, b"adtk1_x\n").unwrap();
        assert_eq!(read_key_file(&path).unwrap().as_str(), "adtk1_x");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = read_key_file(&path).unwrap_err();
        assert!(err.message.contains("others may read it"), "{err:?}");
        assert!(!err.message.contains("adtk1_x"));
    }
}
