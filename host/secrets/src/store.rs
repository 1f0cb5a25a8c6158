//! The store and its per-tenant view.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chacha20poly1305::XChaCha20Poly1305;

use super::error::SecretStoreError;
use super::file_format::{self, OVERHEAD};
use super::fs_util::{
    create_dir_all_private, ensure_private_dir, remove_if_stale_temp, sync_dir, write_atomic,
};
use super::key::{KeySource, derive_from_root};
use super::lock::{self, LOCK_SUFFIX, LockFile, LockGuard, acquire};
use super::names::{is_valid_key, validate_key, validate_tenant};

/// Default cap on one value's size: 1 MiB.
pub const DEFAULT_MAX_VALUE_BYTES: usize = 1024 * 1024;
/// Default cap on the number of keys of one tenant.
pub const DEFAULT_MAX_KEYS: usize = 1024;
/// Default cap on the locks one tenant handle ([`TenantSecrets`] and its clones) holds at
/// once: 16.
pub const DEFAULT_MAX_HELD_LOCKS: usize = 16;
/// Default cap on the lock names in use (held or waited for) in one tenant at once, across
/// every process: 64. Each is one lock file; unused ones are removed.
pub const DEFAULT_MAX_LOCK_NAMES: usize = 64;

/// Suffix of value files.
pub(super) const VALUE_SUFFIX: &str = ".sec";
/// Internal lock serialising `set` within a tenant, so the key cap holds across processes.
/// Its leading dot keeps it apart from every user lock name.
pub(super) const WRITE_LOCK_FILE: &str = ".store.lock";
/// How long `set` waits for the internal write lock.
pub(super) const WRITE_LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// The limits every backend enforces the same way (the file store's [`StoreConfig`] holds them
/// as fields of its own, beside its file-specific `max_lock_names`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest value `set` accepts, in bytes; a stored value over it (plus the sealed
    /// format's overhead) reads as [`SecretStoreError::TooLarge`] and is never fetched whole.
    pub max_value_bytes: usize,
    /// Most keys one tenant may hold; a new key beyond is [`SecretStoreError::TooLarge`].
    pub max_keys: usize,
    /// Most locks one tenant handle (and its clones) may hold at once; one more is
    /// [`SecretStoreError::TooLarge`], without waiting.
    pub max_held_locks: usize,
}

impl Default for Limits {
    /// [`DEFAULT_MAX_VALUE_BYTES`], [`DEFAULT_MAX_KEYS`], [`DEFAULT_MAX_HELD_LOCKS`].
    fn default() -> Self {
        Self {
            max_value_bytes: DEFAULT_MAX_VALUE_BYTES,
            max_keys: DEFAULT_MAX_KEYS,
            max_held_locks: DEFAULT_MAX_HELD_LOCKS,
        }
    }
}

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
    /// Most locks one tenant handle (a [`TenantSecrets`] and its clones) may hold at once;
    /// one more is [`SecretStoreError::TooLarge`].
    pub max_held_locks: usize,
    /// Most lock names in use in one tenant at once (one lock file each, across processes);
    /// a lock with a new name beyond that is [`SecretStoreError::TooLarge`].
    pub max_lock_names: usize,
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
    /// [`DEFAULT_MAX_KEYS`], [`DEFAULT_MAX_HELD_LOCKS`], [`DEFAULT_MAX_LOCK_NAMES`]).
    pub fn new(state_dir: impl Into<PathBuf>, key: KeySource) -> Self {
        Self {
            state_dir: state_dir.into(),
            key,
            max_value_bytes: DEFAULT_MAX_VALUE_BYTES,
            max_keys: DEFAULT_MAX_KEYS,
            max_held_locks: DEFAULT_MAX_HELD_LOCKS,
            max_lock_names: DEFAULT_MAX_LOCK_NAMES,
        }
    }

    /// The limits shared with other backends.
    pub fn limits(&self) -> Limits {
        Limits {
            max_value_bytes: self.max_value_bytes,
            max_keys: self.max_keys,
            max_held_locks: self.max_held_locks,
        }
    }

    /// Sets the limits shared with other backends (`max_lock_names` is left as it is).
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.max_value_bytes = limits.max_value_bytes;
        self.max_keys = limits.max_keys;
        self.max_held_locks = limits.max_held_locks;
        self
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
    /// Root of the keys derived for other uses (see [`SecretStore::derive_key`]).
    derive_root: [u8; 32],
    max_value_bytes: usize,
    max_keys: usize,
    max_held_locks: usize,
    max_lock_names: usize,
}

impl fmt::Debug for SecretStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The cipher (and so the key) is left out on purpose.
        f.debug_struct("SecretStore")
            .field("tenants_dir", &self.inner.tenants_dir)
            .field("max_value_bytes", &self.inner.max_value_bytes)
            .field("max_keys", &self.inner.max_keys)
            .field("max_held_locks", &self.inner.max_held_locks)
            .field("max_lock_names", &self.inner.max_lock_names)
            .finish_non_exhaustive()
    }
}

impl SecretStore {
    /// Obtains the master key (creating the key file if needed, unless the store already
    /// holds values: then a missing key file is [`SecretStoreError::MasterKey`]) and prepares
    /// `<state_dir>/tenants/`.
    pub fn open(config: StoreConfig) -> Result<Self, SecretStoreError> {
        if config.state_dir.as_os_str().is_empty() {
            // Most likely a forgotten field: never fall back to the working directory.
            return Err(SecretStoreError::io(
                "opening the secret store",
                io::Error::new(io::ErrorKind::InvalidInput, "state_dir is empty"),
            ));
        }
        let tenants_dir = config.state_dir.join("tenants");
        let master = config
            .key
            .load(|| Ok(holds_values(&tenants_dir)?.then(|| tenants_dir.clone())))?;
        let cipher = master.cipher();
        let derive_root = master.derive_root();
        create_dir_all_private(&config.state_dir)?;
        ensure_private_dir(&tenants_dir)?;
        Ok(Self {
            inner: Arc::new(StoreInner {
                tenants_dir,
                cipher,
                derive_root,
                max_value_bytes: config.max_value_bytes,
                max_keys: config.max_keys,
                max_held_locks: config.max_held_locks,
                max_lock_names: config.max_lock_names,
            }),
        })
    }

    /// A 32-byte key for `purpose` (e.g. authenticating the compile cache), derived from
    /// the master key: the same master key gives the same key, and it reveals nothing of
    /// the master key or of the keys of other purposes.
    pub fn derive_key(&self, purpose: &[u8]) -> [u8; 32] {
        // The same derivation as MasterKey::derive_key, so every backend agrees.
        derive_from_root(&self.inner.derive_root, purpose)
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
                held_locks: Arc::default(),
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
    /// Locks held through this handle right now.
    held_locks: Arc<AtomicUsize>,
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

    /// Reads a value; `None` when absent. A file that does not decrypt, or is not a
    /// regular file, is [`SecretStoreError::Corrupt`]; one larger than any value `set`
    /// accepts is [`SecretStoreError::TooLarge`], refused before it is read (at most the
    /// limit is ever read, even from a file that grows meanwhile). Either can be deleted.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, SecretStoreError> {
        validate_key(key, "key")?;
        let t = &self.inner;
        let path = self.value_path(key);
        let reading = || format!("reading the value of key {key:?}");
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(SecretStoreError::io_at(reading(), &path, e)),
        };
        let meta = file
            .metadata()
            .map_err(|e| SecretStoreError::io_at(reading(), &path, e))?;
        if !meta.is_file() {
            return Err(SecretStoreError::Corrupt(format!(
                "key {key:?} of tenant {:?}: not a regular file",
                t.tenant_id
            )));
        }
        let limit = t.store.max_value_bytes.saturating_add(OVERHEAD);
        let too_large = |size: u64| {
            SecretStoreError::TooLarge(format!(
                "the stored value of key {key:?} of tenant {:?} is {size} bytes on disk, over \
                 the limit of {limit} ({} for the value, {OVERHEAD} of format); it was not read \
                 (delete the key to recover)",
                t.tenant_id, t.store.max_value_bytes
            ))
        };
        if meta.len() > limit as u64 {
            return Err(too_large(meta.len()));
        }
        // `take`: a file growing after the check is still read no further than the limit.
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        (&mut file)
            .take(limit as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| SecretStoreError::io_at(reading(), &path, e))?;
        if bytes.len() > limit {
            return Err(too_large(bytes.len() as u64));
        }
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
            LockFile::Permanent,
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
            Err(e) => Err(SecretStoreError::io_at(
                format!("deleting the value of key {key:?}"),
                &path,
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
    ///
    /// [`SecretStoreError::TooLarge`], without waiting, when this handle (shared by its
    /// clones) already holds [`StoreConfig::max_held_locks`] locks, or when `name` is not in
    /// use and [`StoreConfig::max_lock_names`] other names are (after removing the lock
    /// files nobody holds).
    pub fn lock(&self, name: &str, timeout: Duration) -> Result<LockGuard, SecretStoreError> {
        validate_key(name, "lock name")?;
        let t = &self.inner;
        let max_held = t.store.max_held_locks;
        let too_many_held = || {
            SecretStoreError::TooLarge(format!(
                "lock {name:?}: tenant {:?} already holds {max_held} locks at once, the limit; \
                 release one first",
                t.tenant_id
            ))
        };
        if t.held_locks.load(Ordering::Acquire) >= max_held {
            return Err(too_many_held());
        }
        let max_names = t.store.max_lock_names;
        let before_create = || {
            if lock::count(&t.locks_dir)? < max_names {
                return Ok(());
            }
            let in_use = lock::sweep(&t.locks_dir)?;
            if in_use < max_names {
                return Ok(());
            }
            Err(SecretStoreError::TooLarge(format!(
                "lock {name:?}: tenant {:?} has {in_use} lock names in use, the limit is \
                 {max_names}",
                t.tenant_id
            )))
        };
        let mut guard = acquire(
            &t.locks_dir.join(format!("{name}{LOCK_SUFFIX}")),
            name,
            &format!("lock {name:?} of tenant {:?}", t.tenant_id),
            timeout,
            LockFile::Transient {
                before_create: &before_create,
            },
        )?;
        // Counted once held, so that handles queueing for the same lock do not use up the
        // budget; a guard past the limit is released at once (unlinking its file).
        let reserved = t
            .held_locks
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max_held).then_some(n + 1)
            });
        if reserved.is_err() {
            drop(guard);
            return Err(too_many_held());
        }
        guard.count_against(Arc::clone(&t.held_locks));
        Ok(guard)
    }

    /// Path of a (validated) key's file.
    fn value_path(&self, key: &str) -> PathBuf {
        self.inner.secrets_dir.join(format!("{key}{VALUE_SUFFIX}"))
    }

    /// All stored keys, sorted; cleans up stale temp files on the way.
    fn scan(&self) -> Result<Vec<String>, SecretStoreError> {
        let dir = &self.inner.secrets_dir;
        let entries =
            fs::read_dir(dir).map_err(|e| SecretStoreError::io_at("listing the keys", dir, e))?;
        let mut keys = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| SecretStoreError::io_at("listing the keys", dir, e))?;
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
        Err(e) => Err(SecretStoreError::io_at("inspecting a value file", path, e)),
    }
}

/// Whether any tenant under `tenants_dir` holds a value file (encrypted under the master
/// key). An absent directory holds none.
fn holds_values(tenants_dir: &Path) -> Result<bool, SecretStoreError> {
    let listing = |dir: &Path, e| SecretStoreError::io_at("listing the store", dir, e);
    let tenants = match fs::read_dir(tenants_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(listing(tenants_dir, e)),
    };
    for tenant in tenants {
        let secrets_dir = tenant
            .map_err(|e| listing(tenants_dir, e))?
            .path()
            .join("secrets");
        let values = match fs::read_dir(&secrets_dir) {
            Ok(entries) => entries,
            // A stray file among the tenants, or a tenant without values yet.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                continue;
            }
            Err(e) => return Err(listing(&secrets_dir, e)),
        };
        for value in values {
            let name = value.map_err(|e| listing(&secrets_dir, e))?.file_name();
            if name
                .to_str()
                .and_then(|n| n.strip_suffix(VALUE_SUFFIX))
                .is_some_and(is_valid_key)
            {
                return Ok(true);
            }
        }
    }
    Ok(false)
}
