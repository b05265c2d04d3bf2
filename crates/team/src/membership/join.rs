//! Join, leave and observe: the CLI's and the window's team membership steps.

use super::*;

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
