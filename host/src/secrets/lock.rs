//! Cross-process exclusive locks: `flock` on a lock file, polled until a timeout.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use fs4::fs_std::FileExt;

use super::error::SecretStoreError;
use super::fs_util::FILE_MODE;

/// First pause between two attempts; doubled up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(2);
/// Longest pause between two attempts.
const MAX_PAUSE: Duration = Duration::from_millis(50);

/// An exclusive lock held until this guard is dropped (or its process dies).
pub struct LockGuard {
    /// The locked file; the lock belongs to this open file description.
    file: File,
    /// Which lock, for diagnostics.
    name: String,
}

impl LockGuard {
    /// The lock's name.
    pub fn name(&self) -> &str {
        &self.name
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
        // Closing the file releases the lock anyway; unlocking first makes it explicit.
        let _ = FileExt::unlock(&self.file);
    }
}

/// Takes an exclusive lock on `path` (created 0600 if missing, never deleted), retrying with
/// short sleeps for up to `timeout`. `name` is the guard's name; `description` names the lock
/// in a timeout error.
pub(super) fn acquire(
    path: &Path,
    name: &str,
    description: &str,
    timeout: Duration,
) -> Result<LockGuard, SecretStoreError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(FILE_MODE)
        .open(path)
        .map_err(|e| SecretStoreError::io(format!("opening lock file {}", path.display()), e))?;
    let start = Instant::now();
    let mut pause = FIRST_PAUSE;
    loop {
        let taken = FileExt::try_lock_exclusive(&file)
            .map_err(|e| SecretStoreError::io(format!("locking {}", path.display()), e))?;
        if taken {
            return Ok(LockGuard {
                file,
                name: name.to_owned(),
            });
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
}
