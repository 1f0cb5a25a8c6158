//! The secret backend: what a host needs from wherever tenants' secrets live.
//!
//! [`SecretStore`](crate::SecretStore) (encrypted files and `flock`) is the default; a
//! backend for a fleet of hosts (a database) implements the same two traits. Every method
//! blocks: async callers run it on `tokio::task::spawn_blocking`, unless
//! [`TenantBackend::reads_are_local`] says a read is a local file read worth doing inline.
//!
//! Contract (the suite in [`crate::contract`], feature `contract-tests`, checks it; the file
//! store and every other backend run the same checks):
//! - values are sealed with [`crate::file_format`] (the associated data binds a value to its
//!   tenant and key) before they leave the host, and a value that does not open is
//!   [`SecretStoreError::Corrupt`];
//! - `set` replaces a value atomically: a reader sees the old or the new value, never a mix
//!   and never a half-written one;
//! - `list_keys` answers keys with a prefix, sorted;
//! - `lock` excludes every other holder of the same (tenant, name) in every process that
//!   shares the backend, for as long as the returned [`SecretLock`] lives, and is released
//!   when the holder's process dies;
//! - names are checked with the same rules everywhere (tenant `[A-Za-z0-9._-]{1,64}`, keys
//!   and lock names `[a-z0-9._-]{1,128}`, never a leading `.`), and the same limits apply
//!   (value size, keys per tenant, locks held per handle, stored bytes per tenant and per
//!   store: [`crate::Limits`]); a byte quota is checked atomically with the write (writers
//!   racing in several processes cannot overshoot it) and refuses with
//!   [`SecretStoreError::QuotaExceeded`], never a write that does not grow its tenant;
//! - a backend whose locks can end without their holder knowing (a database session cut
//!   off) fences them: a read or write through the tenant handle that holds a lock taken
//!   over since is [`SecretStoreError::LockLost`] and does nothing;
//! - `derive_key` is [`crate::MasterKey::derive_key`] of the master key, so every backend
//!   opened with one master key derives the same keys;
//! - [`crate::rotation::rotate`] re-encrypts its values under a new master key.

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::SecretStoreError;

/// Where the secrets of every tenant of a host live.
pub trait SecretBackend: fmt::Debug + Send + Sync + 'static {
    /// The storage of one tenant (its name checked; created on first use).
    fn tenant(&self, tenant_id: &str) -> Result<Arc<dyn TenantBackend>, SecretStoreError>;

    /// A 32-byte key for `purpose`, derived from the master key: the same master key gives
    /// the same key, and it reveals nothing of the master key or of other purposes' keys.
    fn derive_key(&self, purpose: &[u8]) -> [u8; 32];

    /// A short name for logs and `status` (`file`, `postgres`).
    fn kind(&self) -> &'static str;

    /// Storage the host keeps for itself in this backend, beside its tenants (`serve`'s
    /// key hashes), named `name` (a key name): a space no tenant id can name, so no
    /// tenant's plugin can read or write it. Shared by every host on the backend, as the
    /// tenants are. `Ok(None)`, the default: the backend has no such space and the host
    /// keeps that data its own way (the file store: in a store of its own beside it).
    fn host_space(&self, name: &str) -> Result<Option<Arc<dyn TenantBackend>>, SecretStoreError> {
        let _ = name;
        Ok(None)
    }
}

/// One tenant's secrets and locks.
pub trait TenantBackend: fmt::Debug + Send + Sync + 'static {
    /// The tenant's id.
    fn tenant_id(&self) -> &str;
    /// Reads a value; `None` when absent.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, SecretStoreError>;
    /// Replaces a value atomically.
    fn set(&self, key: &str, value: &[u8]) -> Result<(), SecretStoreError>;
    /// Removes a value; removing an absent key succeeds.
    fn delete(&self, key: &str) -> Result<(), SecretStoreError>;
    /// Keys starting with `prefix`, sorted.
    fn list_keys(&self, prefix: &str) -> Result<Vec<String>, SecretStoreError>;
    /// Waits up to `timeout` for the exclusive lock `name` of this tenant.
    fn lock(&self, name: &str, timeout: Duration) -> Result<SecretLock, SecretStoreError>;
    /// Whether `get` is a local read of microseconds, cheaper inline than on a blocking
    /// pool (a file is; a database round trip is not).
    fn reads_are_local(&self) -> bool {
        false
    }
}

/// An exclusive lock of some backend, held until dropped.
pub struct SecretLock {
    name: String,
    /// The backend's own guard; dropping it releases the lock.
    _held: Box<dyn Any + Send + Sync>,
}

impl SecretLock {
    /// Wraps a backend's guard (released when dropped) for the lock `name`.
    pub fn new(name: impl Into<String>, held: impl Any + Send + Sync) -> Self {
        Self {
            name: name.into(),
            _held: Box::new(held),
        }
    }

    /// The lock's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Debug for SecretLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretLock")
            .field("name", &self.name)
            .finish()
    }
}

impl SecretBackend for crate::SecretStore {
    fn tenant(&self, tenant_id: &str) -> Result<Arc<dyn TenantBackend>, SecretStoreError> {
        Ok(Arc::new(crate::SecretStore::tenant(self, tenant_id)?))
    }

    fn derive_key(&self, purpose: &[u8]) -> [u8; 32] {
        crate::SecretStore::derive_key(self, purpose)
    }

    fn kind(&self) -> &'static str {
        "file"
    }
}

impl TenantBackend for crate::TenantSecrets {
    fn tenant_id(&self) -> &str {
        crate::TenantSecrets::tenant_id(self)
    }
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, SecretStoreError> {
        crate::TenantSecrets::get(self, key)
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<(), SecretStoreError> {
        crate::TenantSecrets::set(self, key, value)
    }
    fn delete(&self, key: &str) -> Result<(), SecretStoreError> {
        crate::TenantSecrets::delete(self, key)
    }
    fn list_keys(&self, prefix: &str) -> Result<Vec<String>, SecretStoreError> {
        crate::TenantSecrets::list_keys(self, prefix)
    }
    fn lock(&self, name: &str, timeout: Duration) -> Result<SecretLock, SecretStoreError> {
        let guard = crate::TenantSecrets::lock(self, name, timeout)?;
        Ok(SecretLock::new(guard.name().to_owned(), guard))
    }
    fn reads_are_local(&self) -> bool {
        true
    }
}
