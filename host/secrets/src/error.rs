//! The secret store's error type.

use std::io;
use std::path::PathBuf;

/// Why a secret-store operation failed.
///
/// The display is for the host (logs, the CLI): it names tenants, keys, sizes and, for
/// [`SecretStoreError::Io`] and [`SecretStoreError::MasterKey`], file-system paths. What a
/// plugin may see is [`SecretStoreError::guest_message`], which never names a path. No
/// message ever contains a stored value or key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretStoreError {
    /// The tenant id is not acceptable (allowed: `[A-Za-z0-9._-]`, 1 to 64 characters, not
    /// starting with `.`).
    #[error("invalid tenant id: {0}")]
    InvalidTenant(String),
    /// The key or lock name is not acceptable (allowed: `[a-z0-9._-]`, 1 to 128 characters,
    /// not starting with `.`).
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// Over one of the store's limits: a value over the size limit (written, or found on
    /// disk when read), a new key over the per-tenant key limit, a lock over the limit of
    /// locks one tenant handle holds at once, or a new lock name over the limit of lock
    /// names in use in a tenant. Retrying does not help until something is released.
    #[error("too large: {0}")]
    TooLarge(String),
    /// A write refused by a byte quota: it would take its tenant past its quota of stored
    /// bytes ([`crate::Limits::max_tenant_bytes`]) or the whole store past its bound
    /// ([`crate::Limits::max_total_bytes`]). The message names the quota (never another
    /// tenant's usage). Nothing was written; deleting values makes room.
    #[error("quota exceeded: {0}")]
    QuotaExceeded(String),
    /// A write or read under a lock this holder no longer holds: its lock was lost (the
    /// database connection that held it broke) and another holder has taken it since.
    /// Nothing was written; drop the lock and start over.
    #[error("lock lost: {0}")]
    LockLost(String),
    /// A lock could not be taken before the timeout.
    #[error("lock timeout: {0}")]
    LockTimeout(String),
    /// A stored value could not be read back: damaged, copied from another tenant or key, or
    /// encrypted under another master key.
    #[error("corrupt secret: {0}")]
    Corrupt(String),
    /// The master key could not be obtained (missing while the store holds values,
    /// malformed, or badly protected).
    #[error("master key: {0}")]
    MasterKey(String),
    /// The storage backend (a database) could not be reached or did not complete the call:
    /// down, restarting, unreachable, too slow, or refusing the statement. The call changed
    /// nothing, or (when the connection broke while committing) it took effect whole; never
    /// half. Retrying later may succeed: the backend reconnects by itself.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The backend's configuration is not acceptable (a malformed database URL, a TLS mode
    /// this host does not support, or a schema newer than this host knows). Raised when the
    /// backend is opened, never to a plugin.
    #[error("storage configuration: {0}")]
    Config(String),
    /// A file-system operation failed. The display shows `context` and the path; the OS
    /// error is the [`std::error::Error::source`].
    #[error("{context}{}", path_suffix(path.as_ref()))]
    Io {
        /// What was being done, without any path, e.g. `writing the value of key "k"`.
        context: String,
        /// The file or directory concerned, when there is one (host-side only).
        path: Option<PathBuf>,
        /// The underlying OS error.
        #[source]
        source: io::Error,
    },
}

fn path_suffix(path: Option<&PathBuf>) -> String {
    path.map(|p| format!(" ({})", p.display()))
        .unwrap_or_default()
}

impl SecretStoreError {
    /// Wraps an OS error with what was being done, when no path is concerned.
    pub(super) fn io(context: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            context: context.into(),
            path: None,
            source,
        }
    }

    /// Wraps an OS error with what was being done (no path in it) and the path concerned.
    pub(super) fn io_at(
        context: impl Into<String>,
        path: impl Into<PathBuf>,
        source: io::Error,
    ) -> Self {
        Self::Io {
            context: context.into(),
            path: Some(path.into()),
            source,
        }
    }

    /// The message a plugin may see: the display without any file-system path (the
    /// host's directory layout stays on the host; log the display there). An I/O error
    /// keeps what was being done and the OS reason (`strerror`, never a path).
    pub fn guest_message(&self) -> String {
        match self {
            Self::Io {
                context, source, ..
            } => {
                let reason = match source.raw_os_error() {
                    // The OS text (`strerror`): "Not a directory (os error 20)".
                    Some(_) => source.to_string(),
                    // A synthetic error: its kind only, its text may have been built from
                    // anything.
                    None => source.kind().to_string(),
                };
                format!("{context}: {reason}")
            }
            // Only raised when the store is opened, never to a plugin; its text names
            // the key file's path.
            Self::MasterKey(_) => "master key: unavailable (see the host's log)".to_owned(),
            // The database's own words may name its host, users or schema: they stay in the
            // host's log.
            Self::Unavailable(_) => "storage unavailable; retry later".to_owned(),
            Self::Config(_) => "storage misconfigured (see the host's log)".to_owned(),
            // Built from names, sizes and limits only.
            other => other.to_string(),
        }
    }
}
