//! The store and its per-tenant view.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chacha20poly1305::XChaCha20Poly1305;

use super::error::SecretStoreError;
use super::file_format;
use super::fs_util::{
    create_dir_all_private, ensure_private_dir, remove_if_stale_temp, sync_dir, write_atomic,
};
use super::key::KeySource;
use super::lock::{LockGuard, acquire};
use super::names::{is_valid_key, validate_key, validate_tenant};

/// Default cap on one value's size: 1 MiB.
pub const DEFAULT_MAX_VALUE_BYTES: usize = 1024 * 1024;
/// Default cap on the number of keys of one tenant.
pub const DEFAULT_MAX_KEYS: usize = 1024;

/// Suffix of value files.
const VALUE_SUFFIX: &str = ".sec";
/// Suffix of lock files.
const LOCK_SUFFIX: &str = ".lock";
/// Internal lock serialising `set` within a tenant, so the key cap holds across processes.
/// Its leading dot keeps it apart from every user lock name.
const WRITE_LOCK_FILE: &str = ".store.lock";
/// How long `set` waits for the internal write lock.
const WRITE_LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// How to open a [`SecretStore`].
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Root of the host's state; secrets live under `<state_dir>/tenants/`.
    pub state_dir: PathBuf,
    /// Where the master key comes from.
    pub key: KeySource,
    /// Largest value `set` accepts, in bytes.
    pub max_value_bytes: usize,
    /// Most keys one tenant may hold.
    pub max_keys: usize,
}

impl Default for StoreConfig {
    /// Default limits, [`KeySource::Env`], and an empty `state_dir` that
    /// [`SecretStore::open`] refuses: set `state_dir` (e.g. with `..Default::default()`).
    fn default() -> Self {
        Self::new(PathBuf::new(), KeySource::Env)
    }
}

impl StoreConfig {
    /// A configuration with the default limits ([`DEFAULT_MAX_VALUE_BYTES`],
    /// [`DEFAULT_MAX_KEYS`]).
    pub fn new(state_dir: impl Into<PathBuf>, key: KeySource) -> Self {
        Self {
            state_dir: state_dir.into(),
            key,
            max_value_bytes: DEFAULT_MAX_VALUE_BYTES,
            max_keys: DEFAULT_MAX_KEYS,
        }
    }
}

/// Encrypted secret storage for every tenant under one state directory. Cheap to clone.
#[derive(Clone)]
pub struct SecretStore {
    inner: Arc<StoreInner>,
}

/// What every tenant view shares.
struct StoreInner {
    tenants_dir: PathBuf,
    cipher: XChaCha20Poly1305,
    max_value_bytes: usize,
    max_keys: usize,
}

impl fmt::Debug for SecretStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The cipher (and so the key) is left out on purpose.
        f.debug_struct("SecretStore")
            .field("tenants_dir", &self.inner.tenants_dir)
            .field("max_value_bytes", &self.inner.max_value_bytes)
            .field("max_keys", &self.inner.max_keys)
            .finish_non_exhaustive()
    }
}

impl SecretStore {
    /// Obtains the master key (creating the key file if needed) and prepares
    /// `<state_dir>/tenants/`.
    pub fn open(config: StoreConfig) -> Result<Self, SecretStoreError> {
        if config.state_dir.as_os_str().is_empty() {
            // Most likely a forgotten field: never fall back to the working directory.
            return Err(SecretStoreError::io(
                "opening the secret store",
                io::Error::new(io::ErrorKind::InvalidInput, "state_dir is empty"),
            ));
        }
        let cipher = config.key.load()?.cipher();
        create_dir_all_private(&config.state_dir)?;
        let tenants_dir = config.state_dir.join("tenants");
        ensure_private_dir(&tenants_dir)?;
        Ok(Self {
            inner: Arc::new(StoreInner {
                tenants_dir,
                cipher,
                max_value_bytes: config.max_value_bytes,
                max_keys: config.max_keys,
            }),
        })
    }

    /// The storage of one tenant, creating its directories (0700) if needed and tightening
    /// them if they are looser.
    pub fn tenant(&self, tenant_id: &str) -> Result<TenantSecrets, SecretStoreError> {
        validate_tenant(tenant_id)?;
        let root = self.inner.tenants_dir.join(tenant_id);
        let secrets_dir = root.join("secrets");
        let locks_dir = root.join("locks");
        for dir in [&self.inner.tenants_dir, &root, &secrets_dir, &locks_dir] {
            ensure_private_dir(dir)?;
        }
        Ok(TenantSecrets {
            inner: Arc::new(TenantInner {
                store: Arc::clone(&self.inner),
                tenant_id: tenant_id.to_owned(),
                secrets_dir,
                locks_dir,
            }),
        })
    }
}

/// One tenant's secrets and locks. Cheap to clone; every method blocks on file I/O.
#[derive(Clone)]
pub struct TenantSecrets {
    inner: Arc<TenantInner>,
}

struct TenantInner {
    store: Arc<StoreInner>,
    tenant_id: String,
    secrets_dir: PathBuf,
    locks_dir: PathBuf,
}

impl fmt::Debug for TenantSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantSecrets")
            .field("tenant_id", &self.inner.tenant_id)
            .field("secrets_dir", &self.inner.secrets_dir)
            .finish_non_exhaustive()
    }
}

impl TenantSecrets {
    /// The tenant's id.
    pub fn tenant_id(&self) -> &str {
        &self.inner.tenant_id
    }

    /// Reads a value; `None` when absent. A file that does not decrypt is
    /// [`SecretStoreError::Corrupt`].
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, SecretStoreError> {
        validate_key(key, "key")?;
        let path = self.value_path(key);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(SecretStoreError::io(
                    format!("reading {}", path.display()),
                    e,
                ));
            }
        };
        let t = &self.inner;
        file_format::open(&t.store.cipher, &t.tenant_id, key, &bytes).map(Some)
    }

    /// Replaces a value atomically (see the module docs). Fails with
    /// [`SecretStoreError::TooLarge`] over the value size cap, or when `key` is new and the
    /// tenant already holds the maximum number of keys.
    pub fn set(&self, key: &str, value: &[u8]) -> Result<(), SecretStoreError> {
        validate_key(key, "key")?;
        let t = &self.inner;
        if value.len() > t.store.max_value_bytes {
            return Err(SecretStoreError::TooLarge(format!(
                "the value for key {key:?} is {} bytes; the limit is {}",
                value.len(),
                t.store.max_value_bytes
            )));
        }
        let sealed = file_format::seal(&t.store.cipher, &t.tenant_id, key, value)?;
        let file_name = format!("{key}{VALUE_SUFFIX}");

        // Serialised with other writers of this tenant so that counting keys and adding one
        // is a single step, even across processes.
        let _write = acquire(
            &t.locks_dir.join(WRITE_LOCK_FILE),
            WRITE_LOCK_FILE,
            &format!("the write lock of tenant {:?}", t.tenant_id),
            WRITE_LOCK_TIMEOUT,
        )?;
        if !exists(&t.secrets_dir.join(&file_name))? {
            let count = self.scan()?.len();
            if count >= t.store.max_keys {
                return Err(SecretStoreError::TooLarge(format!(
                    "tenant {:?} already holds {count} keys; the limit is {}",
                    t.tenant_id, t.store.max_keys
                )));
            }
        }
        write_atomic(&t.secrets_dir, &file_name, &sealed)
    }

    /// Removes a value; removing an absent key succeeds.
    pub fn delete(&self, key: &str) -> Result<(), SecretStoreError> {
        validate_key(key, "key")?;
        let path = self.value_path(key);
        match fs::remove_file(&path) {
            Ok(()) => sync_dir(&self.inner.secrets_dir),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(SecretStoreError::io(
                format!("deleting {}", path.display()),
                e,
            )),
        }
    }

    /// The keys starting with `prefix`, sorted. Also removes temp files left by writers that
    /// died (older than ten minutes).
    pub fn list_keys(&self, prefix: &str) -> Result<Vec<String>, SecretStoreError> {
        let mut keys = self.scan()?;
        keys.retain(|k| k.starts_with(prefix));
        Ok(keys)
    }

    /// Takes the tenant's exclusive lock `name` (same rules as keys), waiting up to `timeout`
    /// ([`SecretStoreError::LockTimeout`] after that). It excludes every other holder of the
    /// same lock, in this process or another, until the guard is dropped.
    pub fn lock(&self, name: &str, timeout: Duration) -> Result<LockGuard, SecretStoreError> {
        validate_key(name, "lock name")?;
        let t = &self.inner;
        acquire(
            &t.locks_dir.join(format!("{name}{LOCK_SUFFIX}")),
            name,
            &format!("lock {name:?} of tenant {:?}", t.tenant_id),
            timeout,
        )
    }

    /// Path of a (validated) key's file.
    fn value_path(&self, key: &str) -> PathBuf {
        self.inner.secrets_dir.join(format!("{key}{VALUE_SUFFIX}"))
    }

    /// All stored keys, sorted; cleans up stale temp files on the way.
    fn scan(&self) -> Result<Vec<String>, SecretStoreError> {
        let dir = &self.inner.secrets_dir;
        let entries = fs::read_dir(dir)
            .map_err(|e| SecretStoreError::io(format!("listing {}", dir.display()), e))?;
        let mut keys = Vec::new();
        for entry in entries {
            let entry =
                entry.map_err(|e| SecretStoreError::io(format!("listing {}", dir.display()), e))?;
            let file_name = entry.file_name();
            let Some(name) = file_name.to_str() else {
                continue;
            };
            match name.strip_suffix(VALUE_SUFFIX) {
                Some(key) if is_valid_key(key) => keys.push(key.to_owned()),
                _ => remove_if_stale_temp(dir, name),
            }
        }
        keys.sort_unstable();
        Ok(keys)
    }
}

/// Whether anything exists at `path` (without following a symlink).
fn exists(path: &Path) -> Result<bool, SecretStoreError> {
    match fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(SecretStoreError::io(
            format!("inspecting {}", path.display()),
            e,
        )),
    }
}
