//! The store and its per-tenant view.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use chacha20poly1305::XChaCha20Poly1305;

use super::error::SecretStoreError;
use super::file_format::{self, OVERHEAD};
use super::fs_util::{
    create_dir_all_private, ensure_private_dir, remove_if_stale_temp, sync_dir, write_atomic,
};
use super::key::{KeySource, derive_from_root};
use super::lock::{self, LOCK_SUFFIX, LockFile, LockGuard, acquire};
use super::names::{is_valid_key, validate_key, validate_tenant};
use super::read_cache::{FileStamp, RACY_MARGIN, ReadCache};

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

/// Default quota of stored bytes per tenant: 16 MiB (a login takes a few KiB).
pub const DEFAULT_MAX_TENANT_BYTES: u64 = 16 * 1024 * 1024;
/// Default bound on the stored bytes of every tenant together, per store: 1 GiB.
pub const DEFAULT_MAX_TOTAL_BYTES: u64 = 1024 * 1024 * 1024;

/// Suffix of value files.
pub(super) const VALUE_SUFFIX: &str = ".sec";
/// Internal lock serialising `set` within a tenant, so the key cap holds across processes.
/// Its leading dot keeps it apart from every user lock name.
pub(super) const WRITE_LOCK_FILE: &str = ".store.lock";
/// Internal lock (in `tenants/`, beside the tenant directories) serialising the writes that
/// grow the store, so the store-wide byte bound holds across tenants and processes.
pub(super) const STORE_LOCK_FILE: &str = ".store.lock";
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
    /// Quota of stored bytes per tenant (each value counts with its sealing overhead,
    /// [`crate::file_format::OVERHEAD`]); a write that would grow the tenant past it is
    /// [`SecretStoreError::QuotaExceeded`]. Checked atomically with the write.
    pub max_tenant_bytes: u64,
    /// Bound on the stored bytes of every tenant together in this store (a state directory,
    /// a database); a write that would grow the store past it is
    /// [`SecretStoreError::QuotaExceeded`]. Checked atomically with the write.
    pub max_total_bytes: u64,
}

impl Default for Limits {
    /// [`DEFAULT_MAX_VALUE_BYTES`], [`DEFAULT_MAX_KEYS`], [`DEFAULT_MAX_HELD_LOCKS`],
    /// [`DEFAULT_MAX_TENANT_BYTES`], [`DEFAULT_MAX_TOTAL_BYTES`].
    fn default() -> Self {
        Self {
            max_value_bytes: DEFAULT_MAX_VALUE_BYTES,
            max_keys: DEFAULT_MAX_KEYS,
            max_held_locks: DEFAULT_MAX_HELD_LOCKS,
            max_tenant_bytes: DEFAULT_MAX_TENANT_BYTES,
            max_total_bytes: DEFAULT_MAX_TOTAL_BYTES,
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
    /// Quota of stored bytes per tenant ([`Limits::max_tenant_bytes`]).
    pub max_tenant_bytes: u64,
    /// Bound on the stored bytes of the whole state directory ([`Limits::max_total_bytes`]).
    pub max_total_bytes: u64,
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
            max_tenant_bytes: DEFAULT_MAX_TENANT_BYTES,
            max_total_bytes: DEFAULT_MAX_TOTAL_BYTES,
        }
    }

    /// The limits shared with other backends.
    pub fn limits(&self) -> Limits {
        Limits {
            max_value_bytes: self.max_value_bytes,
            max_keys: self.max_keys,
            max_held_locks: self.max_held_locks,
            max_tenant_bytes: self.max_tenant_bytes,
            max_total_bytes: self.max_total_bytes,
        }
    }

    /// Sets the limits shared with other backends (`max_lock_names` is left as it is).
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.max_value_bytes = limits.max_value_bytes;
        self.max_keys = limits.max_keys;
        self.max_held_locks = limits.max_held_locks;
        self.max_tenant_bytes = limits.max_tenant_bytes;
        self.max_total_bytes = limits.max_total_bytes;
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
    max_tenant_bytes: u64,
    max_total_bytes: u64,
    /// Stored bytes of each tenant as last scanned, for the store-wide bound (see
    /// [`StoreInner::usage`]).
    usage: Mutex<HashMap<String, ScannedUsage>>,
    /// Values decrypted by `get`, kept while their files are unchanged.
    read_cache: ReadCache,
}

/// A tenant's stored bytes as scanned, and the state of its `secrets` directory then.
struct ScannedUsage {
    /// Modification time, inode and device of the directory: any entry created, renamed or
    /// removed in it changes the time.
    stamp: (SystemTime, u64, u64),
    bytes: u64,
    /// Whether the directory had been still for [`RACY_MARGIN`] when it was scanned, so a
    /// later change cannot share its timestamp.
    settled: bool,
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
            .field("max_tenant_bytes", &self.inner.max_tenant_bytes)
            .field("max_total_bytes", &self.inner.max_total_bytes)
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
                max_tenant_bytes: config.max_tenant_bytes,
                max_total_bytes: config.max_total_bytes,
                usage: Mutex::default(),
                read_cache: ReadCache::default(),
            }),
        })
    }

    /// How many decrypted values the store keeps (tests of `read_cache`'s use).
    #[cfg(test)]
    pub(crate) fn cached_values(&self) -> usize {
        self.inner.read_cache.len()
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
        // One `stat` of the path: a value read before from the same, unchanged file is
        // returned as it was decrypted then (see `read_cache`).
        match fs::metadata(&path) {
            Ok(meta) => {
                if let Some(value) = t.store.read_cache.get(&path, FileStamp::of(&meta)) {
                    return Ok(Some(value));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            // Reported below, by the open that would meet the same error.
            Err(_) => {}
        }
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
        let value = file_format::open(&t.store.cipher, &t.tenant_id, key, &bytes)?;
        // The stamp of the file as opened: a change after it was taken gives the path
        // another stamp, so the value is never kept for a version it was not read from.
        t.store
            .read_cache
            .insert(&path, FileStamp::of(&meta), &value);
        Ok(Some(value))
    }

    /// Replaces a value atomically (see the module docs). Fails with
    /// [`SecretStoreError::TooLarge`] over the value size cap, or when `key` is new and the
    /// tenant already holds the maximum number of keys; with
    /// [`SecretStoreError::QuotaExceeded`] when the write would grow the tenant past
    /// [`StoreConfig::max_tenant_bytes`] or the store past [`StoreConfig::max_total_bytes`]
    /// (checked under the same locks as the write, so concurrent writers cannot overshoot).
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
        let usage = self.usage(key)?;
        if usage.old.is_none() && usage.keys >= t.store.max_keys {
            return Err(SecretStoreError::TooLarge(format!(
                "tenant {:?} already holds {} keys; the limit is {}",
                t.tenant_id, usage.keys, t.store.max_keys
            )));
        }
        let (old, new) = (usage.old.unwrap_or(0), sealed.len() as u64);
        // A write that does not grow the tenant is never refused: it only makes room.
        let _store = if new > old {
            let after = usage.bytes.saturating_sub(old).saturating_add(new);
            if after > t.store.max_tenant_bytes {
                return Err(SecretStoreError::QuotaExceeded(format!(
                    "writing key {key:?} would bring tenant {:?} to {after} stored bytes, over \
                     its quota of {} bytes (max_tenant_bytes); delete values to make room",
                    t.tenant_id, t.store.max_tenant_bytes
                )));
            }
            self.check_store_bound(usage.bytes, new - old)?
        } else {
            None
        };
        t.store.read_cache.forget(&t.secrets_dir.join(&file_name));
        write_atomic(&t.secrets_dir, &file_name, &sealed)
    }

    /// The store-wide bound, for a write growing this tenant (now `tenant_bytes`) by
    /// `growth`: takes the store's lock (held, in the returned guard, until the write is
    /// done) and counts every other tenant's bytes. `None` when the store is unbounded.
    fn check_store_bound(
        &self,
        tenant_bytes: u64,
        growth: u64,
    ) -> Result<Option<LockGuard>, SecretStoreError> {
        let store = &self.inner.store;
        if store.max_total_bytes == u64::MAX {
            return Ok(None);
        }
        let guard = acquire(
            &store.tenants_dir.join(STORE_LOCK_FILE),
            STORE_LOCK_FILE,
            "the store's write lock",
            WRITE_LOCK_TIMEOUT,
            LockFile::Permanent,
        )?;
        let total = store
            .others_bytes(&self.inner.tenant_id)?
            .saturating_add(tenant_bytes);
        if total.saturating_add(growth) > store.max_total_bytes {
            // The store's total is not shown: it tells of other tenants.
            return Err(SecretStoreError::QuotaExceeded(format!(
                "the host's storage quota of {} bytes for all tenants together \
                 (max_total_bytes) is reached; nothing was written",
                store.max_total_bytes
            )));
        }
        Ok(Some(guard))
    }

    /// The tenant's keys and stored bytes (temp files included: they take disk too), and the
    /// stored size of `key`, if it exists. One pass over the tenant's directory.
    fn usage(&self, key: &str) -> Result<TenantUsage, SecretStoreError> {
        let dir = &self.inner.secrets_dir;
        let listing = |e| SecretStoreError::io_at("listing the keys", dir, e);
        let mut usage = TenantUsage::default();
        for entry in fs::read_dir(dir).map_err(listing)? {
            let entry = entry.map_err(listing)?;
            let meta = match entry.metadata() {
                Ok(meta) => meta,
                // Removed meanwhile (a delete, a temp file renamed).
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(listing(e)),
            };
            let file_name = entry.file_name();
            let stored_key = file_name
                .to_str()
                .and_then(|n| n.strip_suffix(VALUE_SUFFIX))
                .filter(|k| is_valid_key(k));
            if let Some(k) = stored_key {
                usage.keys += 1;
                if k == key {
                    usage.old = Some(meta.len());
                }
            }
            if meta.is_file() {
                usage.bytes = usage.bytes.saturating_add(meta.len());
            }
        }
        Ok(usage)
    }

    /// Removes a value; removing an absent key succeeds.
    pub fn delete(&self, key: &str) -> Result<(), SecretStoreError> {
        validate_key(key, "key")?;
        let path = self.value_path(key);
        self.inner.store.read_cache.forget(&path);
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

/// A tenant's use of the store, as [`TenantSecrets::set`] checks it.
#[derive(Default)]
struct TenantUsage {
    keys: usize,
    bytes: u64,
    /// The stored size of the key being written, when it exists.
    old: Option<u64>,
}

impl StoreInner {
    /// Stored bytes of every tenant but `except` (the caller holds the store's lock).
    ///
    /// A tenant's `secrets` directory is rescanned only when it changed since the last scan
    /// (its modification time, inode or device differ) or was still changing then (within
    /// [`RACY_MARGIN`], when a later change could carry the same coarse timestamp): a write
    /// costs one `stat` per tenant, not one per value.
    fn others_bytes(&self, except: &str) -> Result<u64, SecretStoreError> {
        let mut cache = self.usage.lock().unwrap_or_else(PoisonError::into_inner);
        let listing = |dir: &Path, e| SecretStoreError::io_at("measuring the store", dir, e);
        let scanned_at = SystemTime::now();
        let mut seen = HashSet::new();
        let mut total: u64 = 0;
        let entries = fs::read_dir(&self.tenants_dir).map_err(|e| listing(&self.tenants_dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| listing(&self.tenants_dir, e))?;
            let Ok(tenant) = entry.file_name().into_string() else {
                continue;
            };
            // Internal files (a leading dot) and this tenant (counted by the caller).
            if tenant == except || validate_tenant(&tenant).is_err() {
                continue;
            }
            let dir = entry.path().join("secrets");
            let meta = match fs::symlink_metadata(&dir) {
                Ok(meta) if meta.is_dir() => meta,
                Ok(_) => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                    ) =>
                {
                    continue;
                }
                Err(e) => return Err(listing(&dir, e)),
            };
            let modified = meta.modified().map_err(|e| listing(&dir, e))?;
            let stamp = (modified, meta.ino(), meta.dev());
            let bytes = match cache.get(&tenant) {
                Some(c) if c.settled && c.stamp == stamp => c.bytes,
                _ => {
                    let bytes = dir_bytes(&dir)?;
                    let settled = modified
                        .checked_add(RACY_MARGIN)
                        .is_some_and(|t| t < scanned_at);
                    cache.insert(
                        tenant.clone(),
                        ScannedUsage {
                            stamp,
                            bytes,
                            settled,
                        },
                    );
                    bytes
                }
            };
            total = total.saturating_add(bytes);
            seen.insert(tenant);
        }
        cache.retain(|tenant, _| seen.contains(tenant));
        Ok(total)
    }
}

/// The bytes of the regular files in `dir`.
fn dir_bytes(dir: &Path) -> Result<u64, SecretStoreError> {
    let listing = |e| SecretStoreError::io_at("measuring the store", dir, e);
    let mut bytes: u64 = 0;
    for entry in fs::read_dir(dir).map_err(listing)? {
        let entry = entry.map_err(listing)?;
        match entry.metadata() {
            Ok(meta) if meta.is_file() => bytes = bytes.saturating_add(meta.len()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(listing(e)),
        }
    }
    Ok(bytes)
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
