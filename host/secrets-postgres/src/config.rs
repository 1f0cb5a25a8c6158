//! The database URL: what this backend accepts, the TLS it asks for, and how it is shown.

use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use provider_secrets::{Limits, SecretStoreError};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres_rustls::MakeRustlsConnect;

/// Default for [`PostgresOptions::connections`].
pub const DEFAULT_CONNECTIONS: usize = 8;
/// Default for [`PostgresOptions::lock_connections`].
pub const DEFAULT_LOCK_CONNECTIONS: usize = 16;
/// Default for [`PostgresOptions::call_timeout`].
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Default for [`PostgresOptions::connect_timeout`].
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default [`PostgresOptions::holder_grace`]: longer than a token refresh takes.
pub const DEFAULT_HOLDER_GRACE: Duration = Duration::from_secs(60);

/// How to run the PostgreSQL backend, beyond its URL and key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PostgresOptions {
    /// The limits every backend enforces (value size, keys per tenant, locks held per
    /// tenant handle).
    pub limits: Limits,
    /// Pooled connections for reads and writes (opened on demand, kept while healthy).
    pub connections: usize,
    /// Connections for locks: each held lock keeps one for its life (a session-level
    /// advisory lock belongs to its connection), so this bounds the locks this host holds
    /// at once; a lock asked for beyond it waits for one within its own timeout.
    pub lock_connections: usize,
    /// Longest a call (`get`, `set`, …, and each attempt of `lock`) may take, waiting for a
    /// connection included; past it the call is [`SecretStoreError::Unavailable`].
    pub call_timeout: Duration,
    /// Longest opening one connection may take, unless the URL sets `connect_timeout`.
    pub connect_timeout: Duration,
    /// A lock whose holder vanished without releasing it (the database restarted, its
    /// connection was cut, its host was killed) ends in the database, but not the work of
    /// a holder that is still running: such a lock is granted again only this long after
    /// its holder last proved it held it (when it took it, or read or wrote under it; see
    /// the `lock` module docs), so a holder cut off mid-refresh can finish before another
    /// replica reads the refresh token it is redeeming. Zero turns this wait off (writes
    /// under a lock taken over since are still refused: the fencing token).
    pub holder_grace: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            connections: DEFAULT_CONNECTIONS,
            lock_connections: DEFAULT_LOCK_CONNECTIONS,
            call_timeout: DEFAULT_CALL_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            holder_grace: DEFAULT_HOLDER_GRACE,
        }
    }
}

/// How connections are secured.
#[derive(Clone)]
pub(crate) enum Tls {
    /// Plaintext (`sslmode=disable`, or no `sslmode` to a loopback address or socket).
    Off,
    /// TLS, the server's certificate verified (chain and name).
    On(MakeRustlsConnect),
}

/// A parsed database URL.
pub(crate) struct Target {
    pub(crate) pg: tokio_postgres::Config,
    pub(crate) tls: Tls,
    /// The URL without its password, for logs and `Debug`.
    pub(crate) shown: String,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

fn config_error(why: impl fmt::Display) -> SecretStoreError {
    SecretStoreError::Config(format!("database URL: {why}"))
}

/// Percent-decodes one query component (`+` is left alone, as libpq does). A `%` not
/// followed by two hex digits is refused, as libpq refuses it (`percent-encoding` alone
/// would keep it as text).
fn percent_decode(text: &str) -> Result<String, SecretStoreError> {
    let malformed = text.split('%').skip(1).any(|after| {
        !after
            .as_bytes()
            .get(..2)
            .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
    });
    if malformed {
        return Err(config_error("a malformed %-escape in its parameters"));
    }
    percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .map(|decoded| decoded.into_owned())
        .map_err(|_| config_error("a parameter that is not UTF-8"))
}

/// Parses `url` (`postgres://` or `postgresql://`), taking out the parameters this backend
/// handles itself (`sslmode`, `sslrootcert`) before tokio-postgres sees the rest.
///
/// TLS: `sslmode=require` or `verify-full` is TLS with the server's certificate verified
/// against `sslrootcert` (a PEM file of CA certificates; `system` or absent: the system's
/// trust store) and its name checked; `disable` is plaintext. No `sslmode` is plaintext to a
/// loopback address or a Unix socket only: a host elsewhere must say which it wants.
/// `prefer`, `allow` and `verify-ca` are refused (the first two fall back to plaintext
/// silently; the last does not check the name).
pub(crate) fn parse(url: &str, options: &PostgresOptions) -> Result<Target, SecretStoreError> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        // The text is not repeated: it may hold a password.
        return Err(config_error(
            "must start with postgres:// or postgresql:// (a URL, not key=value pairs)",
        ));
    }
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, query),
        None => (url, ""),
    };
    let mut ssl_mode = None;
    let mut root_cert = None;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match percent_decode(key)?.as_str() {
            "sslmode" => ssl_mode = Some(percent_decode(value)?),
            "sslrootcert" => root_cert = Some(percent_decode(value)?),
            _ => kept.push(pair),
        }
    }
    let rebuilt = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    // tokio-postgres's parse errors name the option, never its value.
    let mut pg = tokio_postgres::Config::from_str(&rebuilt).map_err(config_error)?;
    if pg.get_hosts().is_empty() && pg.get_hostaddrs().is_empty() {
        return Err(config_error("names no host"));
    }
    if pg.get_connect_timeout().is_none() {
        pg.connect_timeout(options.connect_timeout);
    }
    if pg.get_application_name().is_none() {
        // So operators can tell this host's sessions apart in pg_stat_activity.
        pg.application_name("provider-host");
    }

    let tls = match ssl_mode.as_deref() {
        Some("require" | "verify-full") => {
            pg.ssl_mode(SslMode::Require);
            Tls::On(tls_connector(root_cert.as_deref())?)
        }
        Some("disable") => {
            refuse_root_cert(root_cert.as_deref())?;
            pg.ssl_mode(SslMode::Disable);
            Tls::Off
        }
        None if is_local(&pg) => {
            refuse_root_cert(root_cert.as_deref())?;
            pg.ssl_mode(SslMode::Disable);
            Tls::Off
        }
        None => {
            return Err(config_error(
                "the database is not on a loopback address: add sslmode=require (TLS, the \
                 server's certificate checked; sslrootcert=PATH for a private CA) or, on a \
                 network you trust, sslmode=disable",
            ));
        }
        Some(other @ ("prefer" | "allow")) => {
            return Err(config_error(format!(
                "sslmode={other} falls back to plaintext without saying so; use \
                 sslmode=require or sslmode=disable"
            )));
        }
        Some("verify-ca") => {
            return Err(config_error(
                "sslmode=verify-ca does not check the server's name; use sslmode=verify-full \
                 (or require, which verifies the same way here)",
            ));
        }
        Some(_) => {
            return Err(config_error(
                "sslmode must be require, verify-full or disable",
            ));
        }
    };
    let shown = show(&pg, &tls);
    Ok(Target { pg, tls, shown })
}

fn refuse_root_cert(root_cert: Option<&str>) -> Result<(), SecretStoreError> {
    match root_cert {
        Some(_) => Err(config_error(
            "sslrootcert is given without TLS; add sslmode=require",
        )),
        None => Ok(()),
    }
}

/// Whether every address the URL names is this machine (loopback or a Unix socket).
fn is_local(pg: &tokio_postgres::Config) -> bool {
    let host_is_local = |host: &Host| match host {
        Host::Tcp(name) => {
            name.eq_ignore_ascii_case("localhost")
                || name
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        #[cfg(unix)]
        Host::Unix(_) => true,
    };
    // With hostaddr given, that is where the connection goes.
    if !pg.get_hostaddrs().is_empty() {
        return pg.get_hostaddrs().iter().all(IpAddr::is_loopback);
    }
    pg.get_hosts().iter().all(host_is_local)
}

/// The rustls connector: the `ring` provider, the workspace's TLS stack, and the roots.
fn tls_connector(root_cert: Option<&str>) -> Result<MakeRustlsConnect, SecretStoreError> {
    let mut roots = rustls::RootCertStore::empty();
    match root_cert {
        Some(path) if path != "system" => {
            let certs = CertificateDer::pem_file_iter(Path::new(path))
                .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
                .map_err(|e| {
                    SecretStoreError::Config(format!(
                        "database URL: sslrootcert {path}: not a readable PEM file of \
                         certificates ({e})"
                    ))
                })?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(SecretStoreError::Config(format!(
                    "database URL: sslrootcert {path} holds no usable CA certificate"
                )));
            }
        }
        _ => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                return Err(config_error(
                    "sslmode=require, but the system's trust store holds no certificate; give \
                     sslrootcert=PATH (the CA that signed the server's certificate)",
                ));
            }
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| SecretStoreError::Config(format!("TLS: {e}")))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// `postgres://user@host:port/db` (never the password) plus the TLS mode.
fn show(pg: &tokio_postgres::Config, tls: &Tls) -> String {
    let hosts: Vec<String> = pg
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let name = match host {
                Host::Tcp(name) => name.clone(),
                #[cfg(unix)]
                Host::Unix(path) => path.display().to_string(),
            };
            match pg.get_ports().get(i).or(pg.get_ports().first()) {
                Some(port) => format!("{name}:{port}"),
                None => name,
            }
        })
        .collect();
    let user = pg.get_user().map(|u| format!("{u}@")).unwrap_or_default();
    let db = pg.get_dbname().unwrap_or("");
    let mode = match tls {
        Tls::Off => "plaintext",
        Tls::On(_) => "tls",
    };
    format!("postgres://{user}{}/{db} ({mode})", hosts.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(url: &str) -> Result<Target, SecretStoreError> {
        parse(url, &PostgresOptions::default())
    }

    fn refused(url: &str) -> String {
        match parsed(url) {
            Err(e @ SecretStoreError::Config(_)) => e.to_string(),
            other => panic!("{url}: expected Config, got {other:?}"),
        }
    }

    #[test]
    fn parameters_are_percent_decoded_strictly() {
        assert_eq!(
            percent_decode("%2Fetc%2fssl/ca.pem").unwrap(),
            "/etc/ssl/ca.pem"
        );
        assert_eq!(percent_decode("a+b%C3%A9").unwrap(), "a+bé");
        assert_eq!(percent_decode("").unwrap(), "");
        for bad in ["%zz", "%", "%2", "a%", "%%41", "%é9"] {
            let message = percent_decode(bad).unwrap_err().to_string();
            assert!(message.contains("malformed %-escape"), "{bad}: {message}");
        }
        let message = percent_decode("%E9").unwrap_err().to_string();
        assert!(message.contains("not UTF-8"), "{message}");
    }

    #[test]
    fn loopback_may_be_plaintext_elsewhere_tls_must_be_chosen() {
        for url in [
            "postgres://u:pw@127.0.0.1:5432/db",
            "postgresql://u@localhost/db",
            "postgres://u@[::1]:5433/db",
            "postgres://u@%2Fvar%2Frun%2Fpostgresql/db",
            "postgres://u@db.internal/db?hostaddr=127.0.0.1",
        ] {
            let t = parsed(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert!(matches!(t.tls, Tls::Off), "{url}");
            assert_eq!(t.pg.get_ssl_mode(), SslMode::Disable, "{url}");
        }
        let message = refused("postgres://u:pw@db.internal:5432/db");
        assert!(message.contains("sslmode=require"), "{message}");
        refused("postgres://u@db.internal/db?hostaddr=10.1.2.3");
        refused("postgres://u@localhost,db.internal/db");
        let t = parsed("postgres://u@db.internal/db?sslmode=disable").unwrap();
        assert!(matches!(t.tls, Tls::Off));
    }

    #[test]
    fn tls_modes() {
        let t = parsed("postgres://u@db.internal/db?sslmode=require").unwrap();
        assert!(matches!(t.tls, Tls::On(_)));
        assert_eq!(t.pg.get_ssl_mode(), SslMode::Require);
        let t =
            parsed("postgres://u@db.internal/db?connect_timeout=3&sslmode=verify-full").unwrap();
        assert!(matches!(t.tls, Tls::On(_)));
        assert_eq!(t.pg.get_connect_timeout(), Some(&Duration::from_secs(3)));
        for bad in ["prefer", "allow", "verify-ca", "on", ""] {
            refused(&format!("postgres://u@127.0.0.1/db?sslmode={bad}"));
        }
        let message =
            refused("postgres://u@127.0.0.1/db?sslmode=require&sslrootcert=/nonexistent.pem");
        assert!(message.contains("/nonexistent.pem"), "{message}");
        refused("postgres://u@127.0.0.1/db?sslrootcert=/etc/ssl/ca.pem");
    }

    #[test]
    fn malformed_urls_are_config_errors_that_never_repeat_the_password() {
        for url in [
            "host=127.0.0.1 password=hunter2-secret",
            "mysql://u:hunter2-secret@127.0.0.1/db",
            "postgres://u:hunter2-secret@127.0.0.1/db?port=notaport",
            "postgres://u:hunter2-secret@127.0.0.1/db?unknown_option=1",
            "postgres://u:hunter2-secret@127.0.0.1/db?sslmode=%zz",
            "postgres://u:hunter2-secret@/db",
        ] {
            let message = refused(url);
            assert!(!message.contains("hunter2"), "{message}");
        }
    }

    #[test]
    fn shown_without_password_and_with_defaults_applied() {
        let t = parsed("postgres://alice:hunter2-secret@127.0.0.1:6543/secrets").unwrap();
        assert_eq!(
            t.shown,
            "postgres://alice@127.0.0.1:6543/secrets (plaintext)"
        );
        assert_eq!(format!("{t:?}"), t.shown);
        assert_eq!(t.pg.get_connect_timeout(), Some(&DEFAULT_CONNECT_TIMEOUT));
        assert_eq!(t.pg.get_application_name(), Some("provider-host"));
        let t =
            parsed("postgres://u@127.0.0.1/db?application_name=mine&connect_timeout=2").unwrap();
        assert_eq!(t.pg.get_application_name(), Some("mine"));
        assert_eq!(t.pg.get_connect_timeout(), Some(&Duration::from_secs(2)));
    }
}
