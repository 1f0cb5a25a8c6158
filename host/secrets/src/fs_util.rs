//! File-system helpers: private directories, atomic writes, temp-file hygiene.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::error::SecretStoreError;

/// Mode of every directory the store owns.
pub(super) const DIR_MODE: u32 = 0o700;
/// Mode of every file the store writes.
pub(super) const FILE_MODE: u32 = 0o600;
/// Suffix of in-flight writes.
const TEMP_SUFFIX: &str = ".tmp";
/// A temp file older than this belongs to a writer that died; younger ones may be in use.
pub(super) const STALE_TEMP_AGE: Duration = Duration::from_secs(600);

/// Creates `path` (and missing parents) with mode 0700 when absent; leaves an existing
/// directory's mode alone. For directories the operator may have chosen.
pub(super) fn create_dir_all_private(path: &Path) -> Result<(), SecretStoreError> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(path)
        .map_err(|e| SecretStoreError::io_at("creating a directory", path, e))
}

/// Makes sure `path` is a real directory (not a symlink) with no group/other permissions:
/// created 0700 when absent (its parent must exist), tightened to 0700 when looser.
pub(super) fn ensure_private_dir(path: &Path) -> Result<(), SecretStoreError> {
    match DirBuilder::new().mode(DIR_MODE).create(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(SecretStoreError::io_at("creating a directory", path, e));
        }
    }
    let meta = fs::symlink_metadata(path)
        .map_err(|e| SecretStoreError::io_at("inspecting a directory", path, e))?;
    if !meta.file_type().is_dir() {
        // A symlink here could point a tenant's secrets anywhere: refuse it.
        return Err(SecretStoreError::io_at(
            "a store directory is not a directory (or is a symlink)",
            path,
            io::Error::from(io::ErrorKind::NotADirectory),
        ));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        fs::set_permissions(path, fs::Permissions::from_mode(DIR_MODE)).map_err(|e| {
            SecretStoreError::io_at("restricting a directory's permissions", path, e)
        })?;
    }
    Ok(())
}

/// Flushes a directory's entries (a rename or unlink in it) to disk.
pub(super) fn sync_dir(dir: &Path) -> Result<(), SecretStoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| SecretStoreError::io_at("syncing a directory", dir, e))
}

/// A fresh temp-file name for a write of `stem`: `.<stem>.<16 hex>.tmp`. The leading dot keeps
/// it apart from every valid key, lock name and key-file name the store reads.
pub(super) fn temp_name(stem: &str) -> String {
    // Truncated so the name stays within NAME_MAX whatever the stem.
    let stem: String = stem.chars().take(128).collect();
    format!(".{stem}.{:016x}{TEMP_SUFFIX}", rand::random::<u64>())
}

/// Whether a directory entry is one of our temp files.
pub(super) fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(TEMP_SUFFIX)
}

/// Creates `dir/<temp>` exclusively with mode 0600, writes `bytes` and fsyncs it. Removes the
/// file again on failure. Returns the temp file's name.
pub(super) fn write_temp(dir: &Path, stem: &str, bytes: &[u8]) -> Result<String, SecretStoreError> {
    let name = temp_name(stem);
    let path = dir.join(&name);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(&path)
        .map_err(|e| SecretStoreError::io_at("creating a temp file", &path, e))?;
    if let Err(e) = file.write_all(bytes).and_then(|()| file.sync_all()) {
        drop(file);
        let _ = fs::remove_file(&path);
        return Err(SecretStoreError::io_at("writing a temp file", &path, e));
    }
    Ok(name)
}

/// Replaces `dir/final_name` with `bytes` atomically: temp file (0600, created
/// exclusively), fsync, rename, fsync dir. Readers see the old content or the new, never a
/// mix, even across a crash. The one atomic write of the host (the secret store, key files,
/// the compile cache).
pub fn write_atomic(dir: &Path, final_name: &str, bytes: &[u8]) -> Result<(), SecretStoreError> {
    let temp = write_temp(dir, final_name, bytes)?;
    let temp_path = dir.join(&temp);
    let final_path = dir.join(final_name);
    if let Err(e) = fs::rename(&temp_path, &final_path) {
        let _ = fs::remove_file(&temp_path);
        return Err(SecretStoreError::io_at(
            "renaming a temp file into place",
            &final_path,
            e,
        ));
    }
    sync_dir(dir)
}

/// Removes `dir/name` when it is a temp file older than [`STALE_TEMP_AGE`]. Best effort:
/// another process may be cleaning it at the same time.
pub(super) fn remove_if_stale_temp(dir: &Path, name: &str) {
    if !is_temp_name(name) {
        return;
    }
    let path = dir.join(name);
    let Ok(meta) = fs::symlink_metadata(&path) else {
        return;
    };
    let age = meta
        .modified()
        .ok()
        .and_then(|m| SystemTime::now().duration_since(m).ok());
    if meta.file_type().is_file() && age.is_some_and(|a| a > STALE_TEMP_AGE) {
        let _ = fs::remove_file(&path);
    }
}
