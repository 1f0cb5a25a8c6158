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
use std::time::{Duration, SystemTime};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Bytes of the MAC appended to every cache file.
const MAC_LEN: usize = 32;
/// Largest artifact read back (a compiled plugin is a few MiB).
const MAX_ARTIFACT_BYTES: u64 = 256 << 20;
/// Subdirectory of the identities of verified files (see [`CompileCache::read_image`]).
const VERIFIED_DIR: &str = "verified";
/// How old a verified file's change time must be before its identity stands for its MAC:
/// more than a timestamp tick of any local filesystem (one or two seconds at worst).
const TRUST_AFTER: Duration = Duration::from_secs(3);

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
    /// [`TRUST_AFTER`], shorter in tests.
    trust_after: Duration,
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
            trust_after: TRUST_AFTER,
        })
    }

    fn mac(&self, name: &str, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key.0).expect("any key length");
        mac.update(&(name.len() as u64).to_le_bytes());
        mac.update(name.as_bytes());
        mac.update(body);
        mac
    }

    /// `name` opened for reading if it is a private regular file of this user of a size
    /// this cache could have written, with that size.
    fn open_private(&self, name: &str) -> Option<(fs::File, usize)> {
        let path = self.dir.join(name);
        let file = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .ok()?;
        let meta = file.metadata().ok()?;
        if !meta.is_file() || !private(&meta) || meta.len() > MAX_ARTIFACT_BYTES + MAC_LEN as u64 {
            tracing::warn!(file = %path.display(), "cache file refused: not a private regular file of this user");
            return None;
        }
        Some((file, usize::try_from(meta.len()).ok()?))
    }

    /// The length of the body of `bytes` (contents read from `name`) when its MAC
    /// verifies.
    fn verify(&self, name: &str, bytes: &[u8]) -> Option<usize> {
        let split = bytes.len().checked_sub(MAC_LEN)?;
        let (body, tag) = bytes.split_at(split);
        if self.mac(name, body).verify_slice(tag).is_err() {
            tracing::warn!(file = %self.dir.join(name).display(), "cache file refused: its MAC does not verify (tampered or foreign)");
            return None;
        }
        Some(split)
    }

    /// The contents of `name` if this host wrote them, unchanged.
    pub(crate) fn read(&self, name: &str) -> Option<Vec<u8>> {
        let (mut file, len) = self.open_private(name)?;
        let mut bytes = Vec::with_capacity(len);
        file.read_to_end(&mut bytes).ok()?;
        let body = self.verify(name, &bytes)?;
        bytes.truncate(body);
        Some(bytes)
    }

    /// [`read`](Self::read) into memory of its own: page-aligned, read-only once verified,
    /// so that a compiled artifact can be used where it lies instead of being copied
    /// again (a CLI call loads the plugin's few MiB of native code each time). The bytes
    /// verified are the bytes used: they are read once, into this process's memory.
    ///
    /// Hashing those MiB is most of a CLI call's work, so a file whose MAC verified once
    /// is remembered by its identity, as git's index remembers files: device, inode, size,
    /// modification and change times (a MAC'd memo under `verified/`). A later read whose
    /// file, stat'ed after reading, has that identity is the same unchanged file: any
    /// write or replacement gives it a new change time, which no user can set back. The
    /// identity is remembered only once the change time is [`TRUST_AFTER`] old, so that a
    /// write within the same timestamp tick as the verification cannot go unseen.
    pub(crate) fn read_image(&self, name: &str) -> Option<Image> {
        let (mut file, len) = self.open_private(name)?;
        let mut image = Image::new(len)?;
        // SAFETY: the mapping is this image's own, writable until `seal`.
        let buf = unsafe { std::slice::from_raw_parts_mut(image.ptr.as_ptr(), len) };
        file.read_exact(buf).ok()?;
        // Grown since it was measured: not what is verified below, refuse it.
        if file.read(&mut [0u8]).ok()? != 0 {
            return None;
        }
        // After reading: a write during the read shows here.
        let meta = file.metadata().ok()?;
        let id = identity(&meta);
        let memo = self.sub(VERIFIED_DIR);
        let known = memo
            .as_ref()
            .and_then(|m| m.read(name))
            .is_some_and(|seen| seen == id);
        image.len = if known {
            len.checked_sub(MAC_LEN)?
        } else {
            let body = self.verify(name, buf)?;
            if let Some(m) = memo.filter(|_| settled(&meta, self.trust_after)) {
                m.write(name, &id);
            }
            body
        };
        image.seal()?;
        Some(image)
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
        let mut sub = Self::open(&self.dir.join(name), self.key.clone())?;
        sub.trust_after = self.trust_after;
        Some(sub)
    }
}

/// What identifies one version of a file: device, inode, size, modification and change
/// times (seconds and nanoseconds).
fn identity(m: &fs::Metadata) -> Vec<u8> {
    [
        m.dev(),
        m.ino(),
        m.size(),
        m.mtime() as u64,
        m.mtime_nsec() as u64,
        m.ctime() as u64,
        m.ctime_nsec() as u64,
    ]
    .iter()
    .flat_map(|n| n.to_le_bytes())
    .collect()
}

/// Whether `m` last changed at least `age` ago.
fn settled(m: &fs::Metadata, age: Duration) -> bool {
    let Ok(secs) = u64::try_from(m.ctime()) else {
        return false;
    };
    let changed = SystemTime::UNIX_EPOCH + Duration::new(secs, m.ctime_nsec() as u32);
    SystemTime::now()
        .duration_since(changed)
        .is_ok_and(|since| since >= age)
}

/// A transparent huge page of x86-64 and 4 KiB-page aarch64; an image of at least half of
/// one is mapped for huge pages (see [`Image::huge`]).
#[cfg(target_os = "linux")]
const HUGE_PAGE: usize = 2 << 20;

/// Anonymous memory holding one verified cache file's body (see
/// [`CompileCache::read_image`]); unmapped when dropped unless [`leak`](Image::leak)ed.
pub(crate) struct Image {
    ptr: std::ptr::NonNull<u8>,
    /// Bytes of the body (the MAC after it is not part of the image).
    len: usize,
    /// Bytes mapped (the file's length rounded up to pages).
    mapped: usize,
}

// SAFETY: the image is plain memory owned by this value; nothing else aliases it.
unsafe impl Send for Image {}

impl Image {
    fn new(len: usize) -> Option<Self> {
        let page = page_size();
        let mapped = len.max(1).next_multiple_of(page);
        #[cfg(target_os = "linux")]
        if page == 4096
            && mapped >= HUGE_PAGE / 2
            && let Some(image) = Self::huge(len, mapped)
        {
            return Some(image);
        }
        // SAFETY: a fresh private anonymous mapping; MAP_POPULATE faults its pages in with
        // one call instead of one fault per page while the file is read into it.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                mapped,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return None;
        }
        Some(Self {
            ptr: std::ptr::NonNull::new(ptr.cast())?,
            len,
            mapped,
        })
    }

    /// `len` bytes (`pages` once rounded up to pages) at a huge-page boundary, marked for
    /// transparent huge pages: a compiled plugin then costs one fault and one zeroed huge
    /// page instead of some 400 faults of 4 KiB pages (on the KVM guest of
    /// `scripts/bench`, 0.1 ms instead of 0.5 ms, a tenth of a CLI call). Where the kernel
    /// gives no huge page, the small pages are faulted in at once, as `MAP_POPULATE` does.
    #[cfg(target_os = "linux")]
    fn huge(len: usize, pages: usize) -> Option<Self> {
        let mapped = pages.next_multiple_of(HUGE_PAGE);
        let reserved = mapped.checked_add(HUGE_PAGE)?;
        // SAFETY: a fresh private anonymous mapping, trimmed below to its aligned part.
        let raw = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                reserved,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if raw == libc::MAP_FAILED {
            return None;
        }
        let head = (raw as usize).next_multiple_of(HUGE_PAGE) - raw as usize;
        let tail = reserved - head - mapped;
        // SAFETY: both ranges are parts of the mapping above that nothing uses: what lies
        // before the aligned start and after its `mapped` bytes.
        unsafe {
            if head > 0 {
                libc::munmap(raw, head);
            }
            if tail > 0 {
                libc::munmap(raw.cast::<u8>().add(head + mapped).cast(), tail);
            }
        }
        // SAFETY: the aligned part of a successful mapping (never null).
        let ptr = unsafe { std::ptr::NonNull::new_unchecked(raw.cast::<u8>().add(head)) };
        let image = Self { ptr, len, mapped };
        // SAFETY: advice on this image's own mapping. Both are hints: without huge pages
        // the second faults the small pages in, and a kernel before 5.14, which refuses
        // it, leaves the read to fault them.
        unsafe {
            libc::madvise(ptr.as_ptr().cast(), mapped, libc::MADV_HUGEPAGE);
            libc::madvise(ptr.as_ptr().cast(), pages, libc::MADV_POPULATE_WRITE);
        }
        Some(image)
    }

    /// Read-only from now on (the runtime makes the code part executable when it loads it).
    fn seal(&self) -> Option<()> {
        // SAFETY: the whole mapping is this image's own.
        let r = unsafe { libc::mprotect(self.ptr.as_ptr().cast(), self.mapped, libc::PROT_READ) };
        (r == 0).then_some(())
    }

    /// The body.
    pub(crate) fn bytes(&self) -> &[u8] {
        // SAFETY: `len` bytes of the mapping were read and verified.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The body, left mapped (read-only) for the rest of the process: for wasmtime's
    /// in-place load, whose component refers to this memory for as long as it lives.
    pub(crate) fn leak(self) -> std::ptr::NonNull<[u8]> {
        let raw = std::ptr::NonNull::slice_from_raw_parts(self.ptr, self.len);
        std::mem::forget(self);
        raw
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        // SAFETY: the mapping is this image's own and nothing refers to it any more.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.mapped) };
    }
}

/// The system's page size.
pub(crate) fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(n).unwrap_or(4096)
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
        assert_eq!(
            c.read_image("a.cwasm").as_ref().map(Image::bytes),
            Some(&b"native code"[..])
        );
        // Another key (another host's master key) does not verify.
        assert_eq!(cache(&dir, 2).read("a.cwasm"), None);
        assert!(cache(&dir, 2).read_image("a.cwasm").is_none());
        // A file copied under another name (another component's artifact) does not verify.
        fs::copy(dir.join("a.cwasm"), dir.join("b.cwasm")).unwrap();
        fs::set_permissions(dir.join("b.cwasm"), fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(c.read("b.cwasm"), None);
        // A flipped byte does not verify.
        let mut bytes = fs::read(dir.join("a.cwasm")).unwrap();
        bytes[0] ^= 1;
        fs::write(dir.join("a.cwasm"), &bytes).unwrap();
        assert_eq!(c.read("a.cwasm"), None);
        assert!(c.read_image("a.cwasm").is_none());
        // A file others may write is not read, even with a good MAC.
        c.write("c.cwasm", b"x");
        fs::set_permissions(dir.join("c.cwasm"), fs::Permissions::from_mode(0o666)).unwrap();
        assert_eq!(c.read("c.cwasm"), None);
        assert!(c.read_image("c.cwasm").is_none());
        // A symlink is not followed.
        c.write("d.cwasm", b"y");
        std::os::unix::fs::symlink(dir.join("d.cwasm"), dir.join("e.cwasm")).unwrap();
        assert_eq!(c.read("e.cwasm"), None);
        assert!(c.read_image("e.cwasm").is_none());
    }

    #[test]
    fn a_verified_image_is_known_by_its_identity_until_it_changes() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cache");
        let mut c = cache(&dir, 1);
        let memo = dir.join(VERIFIED_DIR).join("a.cwasm");
        c.write("a.cwasm", b"native code");
        // Just written: verified by its MAC, not remembered (its change time is too new).
        assert_eq!(c.read_image("a.cwasm").unwrap().bytes(), b"native code");
        assert!(!memo.exists());
        // Old enough (a short wait here, past any timestamp tick, instead of
        // `TRUST_AFTER`): remembered, and then read by its identity.
        std::thread::sleep(Duration::from_millis(50));
        c.trust_after = Duration::ZERO;
        assert_eq!(c.read_image("a.cwasm").unwrap().bytes(), b"native code");
        assert!(memo.exists());
        assert_eq!(c.read_image("a.cwasm").unwrap().bytes(), b"native code");
        // A write in place (same inode, same length) changes the identity: its MAC is
        // checked again, and fails.
        let mut bytes = fs::read(dir.join("a.cwasm")).unwrap();
        bytes[0] ^= 1;
        fs::write(dir.join("a.cwasm"), &bytes).unwrap();
        assert!(c.read_image("a.cwasm").is_none());
        // Another host's memo (another key) is not believed either.
        c.write("b.cwasm", b"other code");
        assert!(c.read_image("b.cwasm").is_some());
        let mut stranger = cache(&dir, 2);
        stranger.trust_after = Duration::ZERO;
        assert!(stranger.read_image("b.cwasm").is_none());
    }

    /// A plugin-sized image goes the huge-page way: at a huge-page boundary, read back
    /// whole, and still verified by its MAC.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_large_image_is_mapped_for_huge_pages() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cache");
        let c = cache(&dir, 1);
        let body: Vec<u8> = (0..(3 << 20) / 2).map(|i: u32| (i % 251) as u8).collect();
        c.write("big.cwasm", &body);
        let image = c.read_image("big.cwasm").unwrap();
        assert_eq!(image.bytes(), &body[..]);
        if page_size() == 4096 {
            assert_eq!(image.ptr.as_ptr() as usize % HUGE_PAGE, 0);
            assert_eq!(image.mapped, HUGE_PAGE);
        }
        drop(image);
        let mut bytes = fs::read(dir.join("big.cwasm")).unwrap();
        bytes[body.len() - 1] ^= 1;
        fs::write(dir.join("big.cwasm"), &bytes).unwrap();
        assert!(c.read_image("big.cwasm").is_none());
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
