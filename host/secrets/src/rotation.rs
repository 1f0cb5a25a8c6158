//! Master-key rotation: every value of every tenant re-encrypted under a new key.
//!
//! [`rotate`] is the procedure every backend shares; a backend supplies its stored values
//! as [`SealedValues`]. [`rotate_master_key`] runs it on the file store.
//!
//! # Procedure
//!
//! 1. Check: every stored value is read and must open under the old or the new key. One
//!    that opens under neither (damaged, or sealed under a third key, e.g. a mistyped new key
//!    in a rerun) stops the rotation before anything is written, naming it (tenant and key;
//!    delete it, or pass the right keys).
//! 2. Rewrite: each value that opens under the old key is sealed under the new one and
//!    written back atomically, only if it is still the bytes that were read (a
//!    compare-and-swap; a value changed meanwhile is read again). A value that already
//!    opens under the new key is skipped.
//!
//! So a rotation that was interrupted (a crash, a stopped process, a database gone away) is
//! completed by running it again with the same two keys, and running it again after it
//! completed changes nothing.
//!
//! Hosts still running on the old key during a rotation write values under the old key and
//! read the rotated ones as corrupt: stop every host that shares the storage first (and if
//! one was still running, rotate again once it is stopped).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::SecretStoreError;
use crate::file_format;
use crate::fs_util::{ensure_private_dir, write_atomic};
use crate::key::{KeySource, MasterKey};
use crate::lock::{LockFile, acquire};
use crate::names::{is_valid_key, validate_tenant};
use crate::store::{VALUE_SUFFIX, WRITE_LOCK_FILE, WRITE_LOCK_TIMEOUT};

/// How often the rewrite of one value is retried when it changed between read and write.
const REWRITE_ATTEMPTS: usize = 5;
/// How many unreadable values the refusal names.
const NAMED_AT_MOST: usize = 10;

/// What a rotation did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RotationReport {
    /// Values found (every tenant).
    pub values: usize,
    /// Values re-encrypted under the new key by this run.
    pub rotated: usize,
    /// Values that already opened under the new key (a rerun, or written meanwhile).
    pub already_new: usize,
    /// The key file that now holds the new key (file store with [`KeySource::File`]).
    pub key_file_replaced: Option<PathBuf>,
}

/// The stored values of a backend as the rotation sees them: sealed bytes by tenant and key.
pub trait SealedValues {
    /// Every (tenant, key) that holds a value, in a stable order.
    fn entries(&self) -> Result<Vec<(String, String)>, SecretStoreError>;
    /// The sealed bytes of one value; `None` when it is gone.
    fn read(&self, tenant: &str, key: &str) -> Result<Option<Vec<u8>>, SecretStoreError>;
    /// Replaces the sealed bytes of one value with `sealed`, atomically, if they are still
    /// `expected`; answers whether it did.
    fn replace(
        &self,
        tenant: &str,
        key: &str,
        expected: &[u8],
        sealed: &[u8],
    ) -> Result<bool, SecretStoreError>;
}

/// Under which key a sealed value opens.
enum Sealed {
    Old,
    New,
    Neither,
}

fn classify(old: &MasterKey, new: &MasterKey, tenant: &str, key: &str, bytes: &[u8]) -> Sealed {
    // The new key first: after a rerun most values open under it.
    if file_format::open(&new.cipher(), tenant, key, bytes).is_ok() {
        Sealed::New
    } else if file_format::open(&old.cipher(), tenant, key, bytes).is_ok() {
        Sealed::Old
    } else {
        Sealed::Neither
    }
}

/// Re-encrypts every value of `values` from `old` to `new` (see the module docs).
/// `after_each` is called with the tenant and key of each value once it is rewritten; an
/// error from it stops the rotation there and is returned (a caller's progress report or
/// cancellation; tests interrupt with it).
pub fn rotate(
    values: &dyn SealedValues,
    old: &MasterKey,
    new: &MasterKey,
    after_each: &mut dyn FnMut(&str, &str) -> Result<(), SecretStoreError>,
) -> Result<RotationReport, SecretStoreError> {
    let entries = values.entries()?;
    let mut report = RotationReport {
        values: entries.len(),
        ..RotationReport::default()
    };
    let mut to_rotate = Vec::new();
    let mut unreadable = Vec::new();
    for (tenant, key) in entries {
        let Some(bytes) = values.read(&tenant, &key)? else {
            continue;
        };
        match classify(old, new, &tenant, &key, &bytes) {
            Sealed::New => report.already_new += 1,
            Sealed::Old => to_rotate.push((tenant, key)),
            Sealed::Neither => unreadable.push(format!("{tenant}/{key}")),
        }
    }
    if !unreadable.is_empty() {
        let shown = unreadable
            .iter()
            .take(NAMED_AT_MOST)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        let more = unreadable.len().saturating_sub(NAMED_AT_MOST);
        return Err(SecretStoreError::Corrupt(format!(
            "{} stored values open under neither the old nor the new master key ({shown}{}); \
             this run changed nothing. Check that both keys are the right ones, or delete \
             those values, then run the rotation again",
            unreadable.len(),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        )));
    }
    for (tenant, key) in to_rotate {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let Some(current) = values.read(&tenant, &key)? else {
                break; // deleted meanwhile
            };
            let plain = match classify(old, new, &tenant, &key, &current) {
                Sealed::New => {
                    report.already_new += 1;
                    break;
                }
                Sealed::Neither => {
                    return Err(SecretStoreError::Corrupt(format!(
                        "key {key:?} of tenant {tenant:?} changed during the rotation into a \
                         value that opens under neither key; stop every host using this \
                         storage and run the rotation again"
                    )));
                }
                Sealed::Old => file_format::open(&old.cipher(), &tenant, &key, &current)?,
            };
            let sealed = file_format::seal(&new.cipher(), &tenant, &key, &plain);
            drop(plain);
            if values.replace(&tenant, &key, &current, &sealed?)? {
                report.rotated += 1;
                after_each(&tenant, &key)?;
                break;
            }
            if attempts >= REWRITE_ATTEMPTS {
                return Err(SecretStoreError::Unavailable(format!(
                    "key {key:?} of tenant {tenant:?} kept changing during the rotation; stop \
                     every host using this storage and run the rotation again"
                )));
            }
        }
    }
    Ok(report)
}

/// Rotates the file store under `state_dir` from the key `old` names to `new` (see the
/// module docs), then, when `old` is a [`KeySource::File`], replaces that key file with the
/// new key (atomically, at the very end: an interrupted rotation keeps the old key file, and
/// rerunning it with the same two keys completes it). With [`KeySource::Env`] nothing else
/// is written: start the hosts with `PROVIDER_HOST_KEY` set to the new key.
///
/// `new` must come from somewhere that outlives the rotation (an environment variable, a
/// file the operator keeps): values rewritten under a key that is then lost are lost too.
/// A missing key file is [`SecretStoreError::MasterKey`]; it is never created here.
/// `after_each` as in [`rotate`].
pub fn rotate_master_key(
    state_dir: &Path,
    old: &KeySource,
    new: &MasterKey,
    after_each: &mut dyn FnMut(&str, &str) -> Result<(), SecretStoreError>,
) -> Result<RotationReport, SecretStoreError> {
    let tenants_dir = state_dir.join("tenants");
    // Never creates a key file: asked only when it is missing, the answer says values exist.
    let old_key = old.load(|| Ok(Some(tenants_dir.clone())))?;
    let files = FileValues { tenants_dir };
    let mut report = rotate(&files, &old_key, new, after_each)?;
    if let KeySource::File(path) = old {
        let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
            SecretStoreError::MasterKey(format!(
                "key file path {} has no usable file name",
                path.display()
            ))
        })?;
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        write_atomic(dir, name, new.bytes())?;
        report.key_file_replaced = Some(path.clone());
    }
    Ok(report)
}

/// Re-encrypts the values of the file store at `state_dir` from `old` to `new`, and
/// nothing else (no key file is touched): for a second store that shares the master key of
/// another (e.g. `serve`'s key hashes), rotated before the store that owns the key file.
pub fn rotate_file_values(
    state_dir: &Path,
    old: &MasterKey,
    new: &MasterKey,
    after_each: &mut dyn FnMut(&str, &str) -> Result<(), SecretStoreError>,
) -> Result<RotationReport, SecretStoreError> {
    let files = FileValues {
        tenants_dir: state_dir.join("tenants"),
    };
    rotate(&files, old, new, after_each)
}

/// The file store's values: `<tenants_dir>/<tenant>/secrets/<key>.sec`.
struct FileValues {
    tenants_dir: PathBuf,
}

impl FileValues {
    fn value_path(&self, tenant: &str, key: &str) -> PathBuf {
        self.tenants_dir
            .join(tenant)
            .join("secrets")
            .join(format!("{key}{VALUE_SUFFIX}"))
    }

    fn listing(dir: &Path) -> Result<Vec<String>, SecretStoreError> {
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(SecretStoreError::io_at("listing the store", dir, e)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| SecretStoreError::io_at("listing the store", dir, e))?;
            if let Ok(name) = entry.file_name().into_string() {
                names.push(name);
            }
        }
        names.sort_unstable();
        Ok(names)
    }
}

impl SealedValues for FileValues {
    fn entries(&self) -> Result<Vec<(String, String)>, SecretStoreError> {
        let mut out = Vec::new();
        for tenant in Self::listing(&self.tenants_dir)? {
            if validate_tenant(&tenant).is_err() {
                continue;
            }
            let secrets = self.tenants_dir.join(&tenant).join("secrets");
            for name in Self::listing(&secrets)? {
                if let Some(key) = name.strip_suffix(VALUE_SUFFIX).filter(|k| is_valid_key(k)) {
                    out.push((tenant.clone(), key.to_owned()));
                }
            }
        }
        Ok(out)
    }

    fn read(&self, tenant: &str, key: &str) -> Result<Option<Vec<u8>>, SecretStoreError> {
        let path = self.value_path(tenant, key);
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(SecretStoreError::io_at(
                format!("reading the value of key {key:?}"),
                &path,
                e,
            )),
        }
    }

    fn replace(
        &self,
        tenant: &str,
        key: &str,
        expected: &[u8],
        sealed: &[u8],
    ) -> Result<bool, SecretStoreError> {
        let tenant_dir = self.tenants_dir.join(tenant);
        let locks_dir = tenant_dir.join("locks");
        ensure_private_dir(&locks_dir)?;
        // The lock `set` takes: the compare and the swap are one step for every writer.
        let _write = acquire(
            &locks_dir.join(WRITE_LOCK_FILE),
            WRITE_LOCK_FILE,
            &format!("the write lock of tenant {tenant:?}"),
            WRITE_LOCK_TIMEOUT,
            LockFile::Permanent,
        )?;
        if self.read(tenant, key)?.as_deref() != Some(expected) {
            return Ok(false);
        }
        write_atomic(
            &tenant_dir.join("secrets"),
            &format!("{key}{VALUE_SUFFIX}"),
            sealed,
        )?;
        Ok(true)
    }
}
