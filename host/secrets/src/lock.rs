//! Cross-process exclusive locks: `flock` on a lock file, polled until a timeout.
//!
//! The lock files of user locks exist only while someone holds or waits for them: the
//! holder unlinks its file on release, still holding the `flock`, and [`sweep`] removes the
//! files nobody holds (left by killed processes or by earlier versions). Unlinking a file
//! another process has open and is about to `flock` would let two holders coexist (one on
//! the unlinked file, one on its successor), so [`acquire`] keeps a lock only when, once
//! taken, the path still names the very file it locked (same device and inode); otherwise
//! it starts over on the path's current file.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use fs4::fs_std::FileExt;

use super::error::SecretStoreError;
use super::fs_util::FILE_MODE;
use super::names::is_valid_key;

/// Suffix of lock files.
pub(super) const LOCK_SUFFIX: &str = ".lock";

/// First pause between two attempts; doubled up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(2);
/// Longest pause between two attempts.
const MAX_PAUSE: Duration = Duration::from_millis(50);

/// An exclusive lock held until this guard is dropped (or its process dies).
pub struct LockGuard {
    /// The locked file; the lock belongs to this open file description. `None` only while
    /// dropping.
    file: Option<File>,
    /// Which lock, for diagnostics.
    name: String,
    /// A user lock's file, unlinked on release.
    remove_on_release: Option<PathBuf>,
    /// The budget of locks its tenant handle holds at once, credited back on release.
    held: Option<Arc<AtomicUsize>>,
}

impl LockGuard {
    /// The lock's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Counts this guard against `held` until it is dropped (the caller has incremented it).
    pub(super) fn count_against(&mut self, held: Arc<AtomicUsize>) {
        self.held = Some(held);
    }
}

impl fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard")
            .field("name", &self.name)
            .finish()
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if let Some(file) = self.file.take() {
            if let Some(path) = &self.remove_on_release {
                // Unlinked while still locked, and only if it is still our file. A waiter
                // that gets the `flock` next finds the path gone and starts over.
                if matches!(names_this_file(&file, path), Ok(true)) {
                    let _ = fs::remove_file(path);
                }
            }
            // Closing the file releases the lock anyway; unlocking first makes it explicit.
            let _ = FileExt::unlock(&file);
            drop(file);
        }
        if let Some(held) = self.held.take() {
            held.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// What kind of lock file.
pub(super) enum LockFile<'a> {
    /// An internal lock whose file stays (one per tenant).
    Permanent,
    /// A user lock: its file is created on demand and removed on release. `before_create`
    /// runs before a new file is created and may refuse (the cap on lock names).
    Transient {
        before_create: &'a dyn Fn() -> Result<(), SecretStoreError>,
    },
}

/// Takes an exclusive lock on `path` (created 0600 if missing), retrying with short sleeps
/// for up to `timeout`. `name` is the guard's name; `description` names the lock in errors
/// (no path: they may reach a plugin).
pub(super) fn acquire(
    path: &Path,
    name: &str,
    description: &str,
    timeout: Duration,
    kind: LockFile<'_>,
) -> Result<LockGuard, SecretStoreError> {
    let start = Instant::now();
    let mut pause = FIRST_PAUSE;
    loop {
        let file = open_lock_file(path, description, &kind)?;
        loop {
            let taken = FileExt::try_lock_exclusive(&file)
                .map_err(|e| SecretStoreError::io_at(format!("locking {description}"), path, e))?;
            if taken {
                break;
            }
            let waited = start.elapsed();
            if waited >= timeout {
                return Err(SecretStoreError::LockTimeout(format!(
                    "{description} is held elsewhere; gave up after {} ms",
                    timeout.as_millis()
                )));
            }
            thread::sleep(pause.min(timeout - waited));
            pause = (pause * 2).min(MAX_PAUSE);
        }
        if names_this_file(&file, path)
            .map_err(|e| SecretStoreError::io_at(format!("inspecting {description}"), path, e))?
        {
            return Ok(LockGuard {
                file: Some(file),
                name: name.to_owned(),
                remove_on_release: match kind {
                    LockFile::Permanent => None,
                    LockFile::Transient { .. } => Some(path.to_path_buf()),
                },
                held: None,
            });
        }
        // The file was unlinked (released by its holder, or swept) while we waited: a lock
        // on it excludes nobody. Start over on the path's current file, within the same
        // deadline; a symlink in its place would never match, so it is refused.
        drop(file);
        if fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(SecretStoreError::io_at(
                format!("{description}: its lock file is a symlink"),
                path,
                io::Error::from(io::ErrorKind::InvalidInput),
            ));
        }
    }
}

/// Opens (creating when allowed) the lock file.
fn open_lock_file(
    path: &Path,
    description: &str,
    kind: &LockFile<'_>,
) -> Result<File, SecretStoreError> {
    let mut options = OpenOptions::new();
    options.read(true).write(true);
    let err = |e| SecretStoreError::io_at(format!("opening {description}"), path, e);
    if let LockFile::Transient { before_create } = kind {
        match options.open(path) {
            Ok(file) => return Ok(file),
            Err(e) if e.kind() == io::ErrorKind::NotFound => before_create()?,
            Err(e) => return Err(err(e)),
        }
    }
    options
        .create(true)
        .truncate(false)
        .mode(FILE_MODE)
        .open(path)
        .map_err(err)
}

/// Whether `path` (not followed) is the file `file` has open.
fn names_this_file(file: &File, path: &Path) -> io::Result<bool> {
    let open = file.metadata()?;
    match fs::symlink_metadata(path) {
        Ok(linked) => Ok(linked.dev() == open.dev() && linked.ino() == open.ino()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// The lock name a directory entry is the file of, if it is a user lock file.
fn lock_name(file_name: &str) -> Option<&str> {
    file_name
        .strip_suffix(LOCK_SUFFIX)
        .filter(|name| is_valid_key(name))
}

/// How many user lock files `dir` holds.
pub(super) fn count(dir: &Path) -> Result<usize, SecretStoreError> {
    let mut n = 0;
    for entry in read_dir(dir)? {
        let entry = entry.map_err(|e| SecretStoreError::io_at("listing the locks", dir, e))?;
        if entry.file_name().to_str().and_then(lock_name).is_some() {
            n += 1;
        }
    }
    Ok(n)
}

/// Removes the user lock files of `dir` that nobody holds or waits on right now (each is
/// locked first, then unlinked only if the path still names it, then released: a
/// concurrent [`acquire`] starts over on a fresh file). Returns how many remain.
pub(super) fn sweep(dir: &Path) -> Result<usize, SecretStoreError> {
    let mut remaining = 0;
    for entry in read_dir(dir)? {
        let entry = entry.map_err(|e| SecretStoreError::io_at("listing the locks", dir, e))?;
        let file_name = entry.file_name();
        if file_name.to_str().and_then(lock_name).is_none() {
            continue;
        }
        let path = entry.path();
        let file = match OpenOptions::new().read(true).write(true).open(&path) {
            Ok(file) => file,
            // Removed meanwhile by its holder or another sweep.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(_) => {
                remaining += 1;
                continue;
            }
        };
        let removed = FileExt::try_lock_exclusive(&file).unwrap_or(false)
            && names_this_file(&file, &path).unwrap_or(false)
            && fs::remove_file(&path).is_ok();
        if !removed {
            remaining += 1;
        }
        let _ = FileExt::unlock(&file);
    }
    Ok(remaining)
}

fn read_dir(dir: &Path) -> Result<fs::ReadDir, SecretStoreError> {
    fs::read_dir(dir).map_err(|e| SecretStoreError::io_at("listing the locks", dir, e))
}
