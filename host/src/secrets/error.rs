//! The secret store's error type.

use std::io;

/// Why a secret-store operation failed.
///
/// Messages name tenants, keys, paths and sizes; they never contain stored values or key
/// material.
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
    /// A value over the size limit, or a new key over the per-tenant key limit.
    #[error("too large: {0}")]
    TooLarge(String),
    /// A lock could not be taken before the timeout.
    #[error("lock timeout: {0}")]
    LockTimeout(String),
    /// A stored value could not be read back: damaged, copied from another tenant or key, or
    /// encrypted under another master key.
    #[error("corrupt secret: {0}")]
    Corrupt(String),
    /// The master key could not be obtained (missing, malformed, or badly protected).
    #[error("master key: {0}")]
    MasterKey(String),
    /// A file-system operation failed. The display shows only `context`; the OS error is the
    /// [`std::error::Error::source`].
    #[error("{context}")]
    Io {
        /// What was being done, e.g. `writing /state/tenants/t/secrets/k.sec`.
        context: String,
        /// The underlying OS error.
        #[source]
        source: io::Error,
    },
}

impl SecretStoreError {
    /// Wraps an OS error with what was being done.
    pub(super) fn io(context: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}
