//! The database address and its TLS policy.
//!
//! Policy (the safer default): **`verify-full` unless every host is loopback or a Unix
//! socket**. Verify-full means TLS is required and the server's certificate must chain to
//! a trusted root (the Mozilla roots of `webpki-roots`, or the PEM file of
//! `sslrootcert=`) *and* name the host connected to; rustls does both on every
//! handshake. Over loopback or a socket no TLS is used unless the string asks for it.
//! A string that asks for less than verify-full for a remote host
//! (`sslmode=disable|allow|prefer`) is refused, not silently upgraded.
//!
//! Both libpq forms are accepted (`postgres://…?sslmode=…` and `host=… sslmode=…`),
//! including multi-host strings (`host=a,b target_session_attrs=read-write`), which
//! tokio-postgres tries in order.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use authdeck_core::{Error, Result};
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres_rustls::MakeRustlsConnect;

/// What the policy decided for one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsPolicy {
    /// Every host is loopback or a Unix socket: no TLS.
    Plain,
    /// TLS required, certificate chain and host name verified.
    VerifyFull,
}

/// Whether a host is on this machine: a Unix socket, `localhost`, or a loopback IP.
pub fn is_local_host(host: &Host) -> bool {
    match host {
        Host::Unix(_) => true,
        Host::Tcp(name) => {
            let name = name.trim_start_matches('[').trim_end_matches(']');
            name.eq_ignore_ascii_case("localhost")
                || name
                    .parse::<IpAddr>()
                    .map(|ip| ip.is_loopback())
                    .unwrap_or(false)
        }
    }
}

/// The policy for a parsed configuration (see the module docs). `requested` is the
/// string's own `sslmode`, if it had one.
pub fn tls_policy(config: &tokio_postgres::Config, requested: Option<&str>) -> Result<TlsPolicy> {
    let hosts = config.get_hosts();
    if hosts.is_empty() {
        return Err(Error::invalid_input(
            "The database address names no host: give host=… (or postgres://host/…).",
        ));
    }
    let local =
        hosts.iter().all(is_local_host) && config.get_hostaddrs().iter().all(|a| a.is_loopback());
    match (requested, local) {
        (None, true) | (Some("disable" | "allow" | "prefer"), true) => Ok(TlsPolicy::Plain),
        (Some("require" | "verify-ca" | "verify-full"), _) | (None, false) => {
            Ok(TlsPolicy::VerifyFull)
        }
        (Some(weak @ ("disable" | "allow" | "prefer")), false) => {
            Err(Error::invalid_input(format!(
                "sslmode={weak} is refused for a database on another machine: Authdeck always \
             verifies the server's certificate there (remove sslmode, or use verify-full)."
            )))
        }
        (Some(other), _) => Err(Error::invalid_input(format!(
            "Unknown sslmode {other:?}: use verify-full (or leave it out)."
        ))),
    }
}

/// A parsed database address with its TLS decided.
#[derive(Clone)]
pub struct DbConfig {
    pg: tokio_postgres::Config,
    policy: TlsPolicy,
    tls: MakeRustlsConnect,
}

impl std::fmt::Debug for DbConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // tokio-postgres's own Debug redacts the password.
        f.debug_struct("DbConfig")
            .field("pg", &self.pg)
            .field("policy", &self.policy)
            .finish()
    }
}

impl DbConfig {
    /// Parse a libpq-style address. The password, if the string has one, is never shown
    /// in an error.
    pub fn parse(address: &str) -> Result<Self> {
        let (rest, sslmode, rootcert) = split_tls_options(address)?;
        let mut pg: tokio_postgres::Config = rest.parse().map_err(|e: tokio_postgres::Error| {
            Error::invalid_input(
                "The database address is not a valid PostgreSQL connection string.",
            )
            .with_detail(scrub(&e.to_string()))
        })?;
        let policy = tls_policy(&pg, sslmode.as_deref())?;
        pg.ssl_mode(match policy {
            TlsPolicy::Plain => SslMode::Disable,
            TlsPolicy::VerifyFull => SslMode::Require,
        });
        if pg.get_connect_timeout().is_none() {
            pg.connect_timeout(Duration::from_secs(10));
        }
        if pg.get_application_name().is_none() {
            pg.application_name("authdeck");
        }
        // Dead peers found within ~30 s on an idle session (the lock sessions).
        pg.keepalives(true);
        pg.keepalives_idle(Duration::from_secs(10));
        pg.keepalives_interval(Duration::from_secs(5));
        pg.keepalives_retries(3);
        // Keepalive does not cover data sent and not acknowledged: on a cut link a
        // request would wait for the kernel's retransmissions (~15 min). Give up after
        // 10 s instead (tested in tests/partition.rs).
        if pg.get_tcp_user_timeout().is_none() {
            pg.tcp_user_timeout(Duration::from_secs(10));
        }
        // The server's side of the same: a session whose client was cut off must not
        // keep its transaction — and the team row lock every writer takes first — until
        // the server's own TCP keepalive (two hours by default). The lock sessions SET
        // their own keepalive values on top.
        let server_side = "-c idle_in_transaction_session_timeout=15000 -c tcp_keepalives_idle=10 \
             -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3 -c tcp_user_timeout=10000";
        let options = match pg.get_options() {
            Some(own) if !own.trim().is_empty() => format!("{server_side} {own}"),
            _ => server_side.to_string(),
        };
        pg.options(options);
        let tls = MakeRustlsConnect::new(rustls_config(rootcert)?);
        Ok(Self { pg, policy, tls })
    }

    pub fn policy(&self) -> TlsPolicy {
        self.policy
    }

    pub fn pg(&self) -> &tokio_postgres::Config {
        &self.pg
    }

    /// A deadpool manager for this address. Plain uses `NoTls` (the rustls connector
    /// refuses a Unix socket path as a server name even when TLS is off).
    pub(crate) fn manager(
        &self,
        config: deadpool_postgres::ManagerConfig,
    ) -> deadpool_postgres::Manager {
        match self.policy {
            TlsPolicy::Plain => deadpool_postgres::Manager::from_config(
                self.pg.clone(),
                tokio_postgres::NoTls,
                config,
            ),
            TlsPolicy::VerifyFull => {
                deadpool_postgres::Manager::from_config(self.pg.clone(), self.tls.clone(), config)
            }
        }
    }

    /// One new session, its connection driven by a spawned task. For what must own its
    /// session (locks) rather than borrow one from the pool.
    pub async fn connect(&self) -> Result<tokio_postgres::Client> {
        self.connect_with(|conn| async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "team store session ended");
            }
        })
        .await
    }

    /// One new session; `drive` runs the connection (e.g. to read its notifications).
    pub(crate) async fn connect_with<D, F>(&self, drive: D) -> Result<tokio_postgres::Client>
    where
        D: FnOnce(Box<dyn Session>) -> F,
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let (client, session): (_, Box<dyn Session>) = match self.policy {
            TlsPolicy::Plain => {
                let (c, conn) = self
                    .pg
                    .connect(tokio_postgres::NoTls)
                    .await
                    .map_err(crate::db_error)?;
                (c, Box::new(conn))
            }
            TlsPolicy::VerifyFull => {
                let (c, conn) = self
                    .pg
                    .connect(self.tls.clone())
                    .await
                    .map_err(crate::db_error)?;
                (c, Box::new(conn))
            }
        };
        tokio::spawn(drive(session));
        Ok(client)
    }
}

/// A session's connection half, whatever its stream: poll it to drive the session and
/// read its notifications.
pub(crate) trait Session:
    std::future::Future<Output = std::result::Result<(), tokio_postgres::Error>> + Send + Unpin
{
    fn poll_message(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<
        Option<std::result::Result<tokio_postgres::AsyncMessage, tokio_postgres::Error>>,
    >;
}

impl<S, T> Session for tokio_postgres::Connection<S, T>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    fn poll_message(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<
        Option<std::result::Result<tokio_postgres::AsyncMessage, tokio_postgres::Error>>,
    > {
        tokio_postgres::Connection::poll_message(self, cx)
    }
}

impl DbConfig {}

fn rustls_config(rootcert: Option<PathBuf>) -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    match rootcert {
        Some(path) => {
            use rustls::pki_types::pem::PemObject;
            use rustls::pki_types::CertificateDer;
            let certs = CertificateDer::pem_file_iter(&path).map_err(|e| {
                Error::invalid_input(format!("Cannot read sslrootcert {}.", path.display()))
                    .with_detail(e.to_string())
            })?;
            for cert in certs {
                let cert = cert.map_err(|e| {
                    Error::invalid_input(format!(
                        "sslrootcert {} holds a damaged certificate.",
                        path.display()
                    ))
                    .with_detail(e.to_string())
                })?;
                roots.add(cert).map_err(|e| {
                    Error::invalid_input(format!(
                        "sslrootcert {} holds an unusable certificate.",
                        path.display()
                    ))
                    .with_detail(e.to_string())
                })?;
            }
            if roots.is_empty() {
                return Err(Error::invalid_input(format!(
                    "sslrootcert {} holds no certificate.",
                    path.display()
                )));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::internal("TLS set-up failed").with_detail(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

/// Take `sslmode` and `sslrootcert` out of a libpq string (tokio-postgres knows neither
/// `verify-full` nor `sslrootcert`): the rest, and the two values.
pub fn split_tls_options(address: &str) -> Result<(String, Option<String>, Option<PathBuf>)> {
    let mut sslmode = None;
    let mut rootcert = None;
    let trimmed = address.trim();
    if trimmed.starts_with("postgres://") || trimmed.starts_with("postgresql://") {
        let Some((base, query)) = trimmed.split_once('?') else {
            return Ok((trimmed.to_string(), None, None));
        };
        let mut kept = Vec::new();
        for pair in query.split('&') {
            match pair.split_once('=') {
                Some(("sslmode", v)) => sslmode = Some(v.to_string()),
                Some(("sslrootcert", v)) => rootcert = Some(PathBuf::from(percent_decode(v))),
                _ => kept.push(pair),
            }
        }
        let rest = if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        return Ok((rest, sslmode, rootcert));
    }
    // key = value pairs; values may be 'quoted' with \' and \\ escapes.
    let bad = || {
        Error::invalid_input("The database address is not a valid PostgreSQL connection string.")
    };
    let chars: Vec<char> = trimmed.chars().collect();
    let mut i = 0;
    let mut rest = String::new();
    while i < chars.len() {
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        if i >= chars.len() {
            break;
        }
        let start = i;
        while i < chars.len() && chars[i] != '=' && !chars[i].is_whitespace() {
            i += 1;
        }
        let key: String = chars[start..i].iter().collect();
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        if i >= chars.len() || chars[i] != '=' {
            return Err(bad());
        }
        i += 1;
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        let vstart = i;
        let mut value = String::new();
        if i < chars.len() && chars[i] == '\'' {
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(bad()),
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some('\\') => {
                        value.extend(chars.get(i + 1));
                        i += 2;
                    }
                    Some(c) => {
                        value.push(*c);
                        i += 1;
                    }
                }
            }
        } else {
            while i < chars.len() && !chars[i].is_whitespace() {
                value.push(chars[i]);
                i += 1;
            }
        }
        match key.as_str() {
            "sslmode" => sslmode = Some(value),
            "sslrootcert" => rootcert = Some(PathBuf::from(value)),
            _ => {
                if !rest.is_empty() {
                    rest.push(' ');
                }
                rest.push_str(&key);
                rest.push('=');
                rest.extend(&chars[vstart..i]);
            }
        }
    }
    Ok((rest, sslmode, rootcert))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// tokio-postgres's parse errors name the option, never its value; still, drop anything
/// after "password" to be safe.
fn scrub(message: &str) -> String {
    match message.find("password") {
        Some(at) => format!("{}password …", &message[..at]),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(s: &str) -> Result<TlsPolicy> {
        DbConfig::parse(s).map(|c| c.policy())
    }

    #[test]
    fn loopback_and_sockets_are_plain() {
        for s in [
            "host=127.0.0.1 user=u dbname=d",
            "host=127.8.9.10 user=u",
            "host=localhost user=u",
            "host=::1 user=u",
            "host=/run/postgresql user=u",
            "host=/tmp/sock,127.0.0.1 user=u",
            "postgres://u@127.0.0.1:5433/d",
            "postgres://u@localhost/d?sslmode=disable",
            "postgresql://u@%2Ftmp%2Fsock/d",
        ] {
            assert_eq!(policy(s).unwrap(), TlsPolicy::Plain, "{s}");
        }
    }

    #[test]
    fn any_remote_host_is_verify_full() {
        for s in [
            "host=db.example.invalid user=u",
            "host=10.1.2.3 user=u",
            "host=127.0.0.1,db.example.invalid user=u target_session_attrs=read-write",
            "postgres://u@db.example.invalid/d",
            "postgres://u@db.example.invalid/d?sslmode=require",
            "host=db.example.invalid user=u sslmode=verify-full",
            "host=db.example.invalid user=u sslmode=verify-ca",
            // hostaddr decides where the packets go.
            "host=localhost hostaddr=10.0.0.5 user=u",
        ] {
            assert_eq!(policy(s).unwrap(), TlsPolicy::VerifyFull, "{s}");
        }
        let c = DbConfig::parse("host=db.example.invalid user=u").unwrap();
        assert_eq!(c.pg().get_ssl_mode(), SslMode::Require);
    }

    #[test]
    fn a_local_host_may_ask_for_tls() {
        assert_eq!(
            policy("host=127.0.0.1 user=u sslmode=verify-full").unwrap(),
            TlsPolicy::VerifyFull
        );
        assert_eq!(
            policy("host=localhost user=u sslmode=require").unwrap(),
            TlsPolicy::VerifyFull
        );
    }

    #[test]
    fn weak_modes_for_remote_hosts_and_unknown_modes_are_refused() {
        for s in [
            "host=db.example.invalid user=u sslmode=disable",
            "host=db.example.invalid user=u sslmode=prefer",
            "postgres://u@db.example.invalid/d?sslmode=allow",
            "host=127.0.0.1,db.example.invalid user=u sslmode=disable",
            "host=127.0.0.1 user=u sslmode=sometimes",
        ] {
            let e = policy(s).unwrap_err();
            assert_eq!(e.code, authdeck_core::ErrorCode::InvalidInput, "{s}");
        }
    }

    #[test]
    fn multi_host_strings_parse_with_target_session_attrs() {
        let c = DbConfig::parse(
            "host=127.0.0.1,127.0.0.2 port=5432,5433 user=u target_session_attrs=read-write",
        )
        .unwrap();
        assert_eq!(c.pg().get_hosts().len(), 2);
        assert_eq!(c.pg().get_ports(), &[5432, 5433]);
        assert_eq!(
            c.pg().get_target_session_attrs(),
            tokio_postgres::config::TargetSessionAttrs::ReadWrite
        );
    }

    #[test]
    fn quoted_values_survive_and_tls_options_are_taken_out() {
        let (rest, mode, root) = split_tls_options(
            "host=h password='a b\\'c' sslmode=verify-full sslrootcert=/x/ca.pem user=u",
        )
        .unwrap();
        assert_eq!(rest, "host=h password='a b\\'c' user=u");
        assert_eq!(mode.as_deref(), Some("verify-full"));
        assert_eq!(root, Some(PathBuf::from("/x/ca.pem")));
        let (rest, mode, _) =
            split_tls_options("postgres://u@h/d?sslmode=require&application_name=x").unwrap();
        assert_eq!(rest, "postgres://u@h/d?application_name=x");
        assert_eq!(mode.as_deref(), Some("require"));
    }

    #[test]
    fn errors_do_not_show_the_password() {
        let e = DbConfig::parse("host=h password='hunter2-canary").unwrap_err();
        assert!(!format!("{e:?}").contains("hunter2"), "{e:?}");
        let e = DbConfig::parse("host=h password=hunter2-canary bogus_option=1").unwrap_err();
        assert!(!format!("{e:?}").contains("hunter2"), "{e:?}");
        let c = DbConfig::parse("host=127.0.0.1 user=u password=hunter2-canary").unwrap();
        assert!(!format!("{c:?}").contains("hunter2"), "{c:?}");
    }

    #[test]
    fn missing_sslrootcert_is_a_clear_error() {
        let e = DbConfig::parse("host=db.example.invalid user=u sslrootcert=/nonexistent/ca.pem")
            .unwrap_err();
        assert!(e.message.contains("sslrootcert"), "{e:?}");
    }
}
