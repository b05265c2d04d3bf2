//! `team.json` and where the team key and the database password are kept.

use super::*;

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
        remove_file(&data_dir.join(STATUS_FILE))?;
        remove_file(&crate::last_list::LastList::path(data_dir))
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
pub(super) fn read_key_file(path: &Path) -> Result<Zeroizing<String>> {
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
pub(super) fn with_password(address: &str, password: &str) -> Zeroizing<String> {
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
