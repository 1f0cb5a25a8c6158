//! The compile cache: compiled components are native code the host will run, so a cached
//! artifact is used only when this host wrote it. Each file carries an HMAC-SHA256, under
//! a key derived from the secret store's master key, over its name and contents (the name
//! holds the component's digest and the engine's compatibility hash); files are 0600 in
//! a 0700 directory, and a file not owned by this user, or writable by others, is never
//! read. A file that fails any check is recompiled from the component and replaced.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Bytes of the MAC appended to every cache file.
const MAC_LEN: usize = 32;
/// Largest artifact read back (a compiled plugin is a few MiB).
const MAX_ARTIFACT_BYTES: u64 = 256 << 20;

/// A key for the cache's MACs (derived from the master key by the secret store).
#[derive(Clone)]
pub struct CacheKey(pub(crate) [u8; 32]);

impl std::fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CacheKey([redacted])")
    }
}

/// A directory of authenticated cache files.
#[derive(Debug, Clone)]
pub(crate) struct CompileCache {
    dir: PathBuf,
    key: CacheKey,
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Whether `m` belongs to this user and nobody else may write it.
fn private(m: &fs::Metadata) -> bool {
    m.uid() == euid() && m.mode() & 0o022 == 0
}

impl CompileCache {
    /// The cache in `dir` (created 0700), or `None` when the directory is not this user's
    /// alone: then nothing is cached (and nothing read) rather than trusting it.
    pub(crate) fn open(dir: &Path, key: CacheKey) -> Option<Self> {
        if let Err(e) = fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
        {
            tracing::warn!(dir = %dir.display(), error = %e, "compile cache unavailable");
            return None;
        }
        let meta = fs::symlink_metadata(dir).ok()?;
        if !meta.is_dir() || !private(&meta) {
            tracing::warn!(
                dir = %dir.display(),
                "compile cache not used: the directory is not owned by this user alone"
            );
            return None;
        }
        Some(Self {
            dir: dir.to_path_buf(),
            key,
        })
    }

    fn mac(&self, name: &str, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key.0).expect("any key length");
        mac.update(&(name.len() as u64).to_le_bytes());
        mac.update(name.as_bytes());
        mac.update(body);
        mac
    }

    /// The contents of `name` if this host wrote them, unchanged.
    pub(crate) fn read(&self, name: &str) -> Option<Vec<u8>> {
        let path = self.dir.join(name);
        let mut file = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .ok()?;
        let meta = file.metadata().ok()?;
        if !meta.is_file() || !private(&meta) || meta.len() > MAX_ARTIFACT_BYTES + MAC_LEN as u64 {
            tracing::warn!(file = %path.display(), "cache file refused: not a private regular file of this user");
            return None;
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        file.read_to_end(&mut bytes).ok()?;
        let split = bytes.len().checked_sub(MAC_LEN)?;
        let (body, tag) = bytes.split_at(split);
        if self.mac(name, body).verify_slice(tag).is_err() {
            tracing::warn!(file = %path.display(), "cache file refused: its MAC does not verify (tampered or foreign)");
            return None;
        }
        bytes.truncate(split);
        Some(bytes)
    }

    /// Replace `name` with `body` (and its MAC), atomically, 0600 (the store's one atomic
    /// write). Best effort: a cache that cannot be written is only slower.
    pub(crate) fn write(&self, name: &str, body: &[u8]) {
        let tag = self.mac(name, body).finalize().into_bytes();
        let mut bytes = Vec::with_capacity(body.len() + tag.len());
        bytes.extend_from_slice(body);
        bytes.extend_from_slice(&tag);
        if let Err(e) = crate::secrets::write_atomic(&self.dir, name, &bytes) {
            tracing::debug!(error = %e, "could not write a cache file");
        }
    }

    /// A subdirectory (created 0700 like the cache).
    pub(crate) fn sub(&self, name: &str) -> Option<Self> {
        Self::open(&self.dir.join(name), self.key.clone())
    }
}

/// Tighten a directory this user owns to 0700 (the state directory, before anything is
/// created in it), creating it when missing.
pub(crate) fn private_dir(dir: &Path) -> std::io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let meta = fs::metadata(dir)?;
    if meta.uid() == euid() && meta.mode() & 0o077 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(dir: &Path, key: u8) -> CompileCache {
        CompileCache::open(dir, CacheKey([key; 32])).unwrap()
    }

    #[test]
    fn only_what_this_host_wrote_is_read_back() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cache");
        let c = cache(&dir, 1);
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        c.write("a.cwasm", b"native code");
        assert_eq!(
            fs::metadata(dir.join("a.cwasm")).unwrap().mode() & 0o777,
            0o600
        );
        assert_eq!(c.read("a.cwasm").as_deref(), Some(&b"native code"[..]));
        // Another key (another host's master key) does not verify.
        assert_eq!(cache(&dir, 2).read("a.cwasm"), None);
        // A file copied under another name (another component's artifact) does not verify.
        fs::copy(dir.join("a.cwasm"), dir.join("b.cwasm")).unwrap();
        fs::set_permissions(dir.join("b.cwasm"), fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(c.read("b.cwasm"), None);
        // A flipped byte does not verify.
        let mut bytes = fs::read(dir.join("a.cwasm")).unwrap();
        bytes[0] ^= 1;
        fs::write(dir.join("a.cwasm"), &bytes).unwrap();
        assert_eq!(c.read("a.cwasm"), None);
        // A file others may write is not read, even with a good MAC.
        c.write("c.cwasm", b"x");
        fs::set_permissions(dir.join("c.cwasm"), fs::Permissions::from_mode(0o666)).unwrap();
        assert_eq!(c.read("c.cwasm"), None);
        // A symlink is not followed.
        c.write("d.cwasm", b"y");
        std::os::unix::fs::symlink(dir.join("d.cwasm"), dir.join("e.cwasm")).unwrap();
        assert_eq!(c.read("e.cwasm"), None);
    }

    #[test]
    fn a_directory_others_may_write_is_not_used() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("loose");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        assert!(CompileCache::open(&dir, CacheKey([0; 32])).is_none());
        private_dir(&dir).unwrap();
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
    }
}
