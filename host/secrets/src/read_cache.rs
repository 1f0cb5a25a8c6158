//! The values `get` decrypted, kept while their files stay the same.
//!
//! `serve` reads the same few values on every request (the caller's key, the tenant's
//! credentials): without this, each costs an `open`, an `fstat`, two `read`s, a `close` and a
//! decryption. With it, a value whose file is unchanged costs one `stat` of its path.
//!
//! A file is "unchanged" when its device, inode, size, modification and status-change
//! times are those it had when it was read. Every write of the store replaces the file
//! (a new inode, renamed into place) and any other change moves its status-change time, so
//! a change from this process or another is seen at the next `get`. One case is excluded
//! the way git excludes "racily clean" files: a file read within [`RACY_MARGIN`] of its
//! last change is not kept, since a replacement within the same coarse file-system
//! timestamp tick could reuse the freed inode number with the same size and times.
//!
//! Bounded: values over [`MAX_VALUE`] bytes are not kept, and past [`MAX_BYTES`] in all the
//! oldest-inserted entries make room. Kept values are wiped from memory when dropped.

use std::collections::{HashMap, VecDeque};
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use zeroize::Zeroizing;

/// A file or directory changed this recently may change again within the same file-system
/// timestamp tick, so its times do not yet tell one version from the next (also used by the
/// store's cached usage scans).
pub(super) const RACY_MARGIN: Duration = Duration::from_secs(2);
/// Largest value kept (credentials and keys are a few hundred bytes to a few KiB).
pub(super) const MAX_VALUE: usize = 16 * 1024;
/// Bytes of values kept per store, in all (a few thousand tenants' credentials).
pub(super) const MAX_BYTES: usize = 4 * 1024 * 1024;

/// What identifies one version of a file.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct FileStamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileStamp {
    pub(super) fn of(meta: &Metadata) -> Self {
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }

    /// Whether the file had been still for [`RACY_MARGIN`] at `now`.
    fn settled(&self, now: SystemTime) -> bool {
        let Ok(now) = now.duration_since(UNIX_EPOCH) else {
            return false;
        };
        let now = (now.as_secs() as i64, i64::from(now.subsec_nanos()));
        let margin = RACY_MARGIN.as_secs() as i64;
        [self.mtime, self.ctime]
            .iter()
            .all(|&(secs, nanos)| (secs.saturating_add(margin), nanos) < now)
    }
}

struct Entry {
    stamp: FileStamp,
    value: Zeroizing<Vec<u8>>,
    /// Its place in [`Entries::order`].
    seq: u64,
}

#[derive(Default)]
struct Entries {
    by_path: HashMap<PathBuf, Entry>,
    /// Insertion order, for eviction: a listing whose number is no longer its path's entry's
    /// (the path was removed or inserted again since) is stale and skipped.
    order: VecDeque<(u64, PathBuf)>,
    next_seq: u64,
    bytes: usize,
}

/// Decrypted values by file path (see the module docs).
#[derive(Default)]
pub(super) struct ReadCache {
    entries: Mutex<Entries>,
}

impl ReadCache {
    /// The value kept for `path` if its file still has `stamp`; a stale entry is dropped.
    pub(super) fn get(&self, path: &Path, stamp: FileStamp) -> Option<Vec<u8>> {
        let mut entries = self.lock();
        match entries.by_path.get(path) {
            Some(entry) if entry.stamp == stamp => Some(entry.value.to_vec()),
            Some(_) => {
                entries.remove(path);
                None
            }
            None => None,
        }
    }

    /// Keeps `value`, read from a file with `stamp`, if the file was settled and the value
    /// small enough.
    pub(super) fn insert(&self, path: &Path, stamp: FileStamp, value: &[u8]) {
        if value.len() > MAX_VALUE || !stamp.settled(SystemTime::now()) {
            return;
        }
        let mut entries = self.lock();
        entries.remove(path);
        while entries.bytes + value.len() > MAX_BYTES {
            let Some((seq, oldest)) = entries.order.pop_front() else {
                break;
            };
            if entries.by_path.get(&oldest).is_some_and(|e| e.seq == seq) {
                entries.remove(&oldest);
            }
        }
        let seq = entries.next_seq;
        entries.next_seq += 1;
        entries.bytes += value.len();
        entries.order.push_back((seq, path.to_owned()));
        entries.by_path.insert(
            path.to_owned(),
            Entry {
                stamp,
                value: Zeroizing::new(value.to_vec()),
                seq,
            },
        );
        // Stale listings would otherwise pile up when the same paths are read again and
        // again without eviction.
        if entries.order.len() > 2 * entries.by_path.len() + 64 {
            let Entries { by_path, order, .. } = &mut *entries;
            order.retain(|(seq, p)| by_path.get(p).is_some_and(|e| e.seq == *seq));
        }
    }

    /// Forgets `path` (its file was written or removed by this process).
    pub(super) fn forget(&self, path: &Path) {
        self.lock().remove(path);
    }

    /// How many values are kept.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.lock().by_path.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Entries {
    fn remove(&mut self, path: &Path) {
        if let Some(entry) = self.by_path.remove(path) {
            self.bytes -= entry.value.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(ino: u64, secs: i64) -> FileStamp {
        FileStamp {
            dev: 1,
            ino,
            size: 3,
            mtime: (secs, 0),
            ctime: (secs, 0),
        }
    }

    #[test]
    fn a_value_is_returned_only_for_the_same_stamp() {
        let cache = ReadCache::default();
        let path = Path::new("/t/a.sec");
        cache.insert(path, stamp(7, 1_000), b"abc");
        assert_eq!(
            cache.get(path, stamp(7, 1_000)).as_deref(),
            Some(&b"abc"[..])
        );
        // Another inode, or another time: the entry is stale and dropped.
        assert_eq!(cache.get(path, stamp(8, 1_000)), None);
        assert_eq!(cache.get(path, stamp(7, 1_000)), None);
    }

    #[test]
    fn a_file_changed_within_the_margin_is_not_kept() {
        let cache = ReadCache::default();
        let path = Path::new("/t/a.sec");
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        cache.insert(path, stamp(7, now), b"abc");
        assert_eq!(cache.get(path, stamp(7, now)), None);
        let mut changed = stamp(7, 1_000);
        changed.ctime = (now, 0);
        cache.insert(path, changed, b"abc");
        assert_eq!(cache.get(path, changed), None);
    }

    #[test]
    fn the_cache_stays_within_its_bounds() {
        let cache = ReadCache::default();
        cache.insert(
            Path::new("/t/big.sec"),
            stamp(1, 1_000),
            &vec![0; MAX_VALUE + 1],
        );
        assert_eq!(cache.get(Path::new("/t/big.sec"), stamp(1, 1_000)), None);
        let value = vec![1u8; MAX_VALUE];
        let n = MAX_BYTES / MAX_VALUE + 10;
        for i in 0..n {
            let path = PathBuf::from(format!("/t/{i}.sec"));
            cache.insert(&path, stamp(i as u64, 1_000), &value);
            // Re-inserting the same path does not count it twice.
            cache.insert(&path, stamp(i as u64, 1_000), &value);
        }
        let entries = cache.lock();
        assert!(entries.bytes <= MAX_BYTES);
        assert_eq!(entries.bytes, entries.by_path.len() * MAX_VALUE);
        assert!(entries.order.len() <= 2 * entries.by_path.len() + 64);
        drop(entries);
        // The oldest went first.
        assert_eq!(cache.get(Path::new("/t/0.sec"), stamp(0, 1_000)), None);
        let last = PathBuf::from(format!("/t/{}.sec", n - 1));
        assert!(cache.get(&last, stamp(n as u64 - 1, 1_000)).is_some());
    }

    #[test]
    fn forget_drops_the_entry() {
        let cache = ReadCache::default();
        let path = Path::new("/t/a.sec");
        cache.insert(path, stamp(7, 1_000), b"abc");
        cache.forget(path);
        assert_eq!(cache.get(path, stamp(7, 1_000)), None);
        assert_eq!(cache.lock().bytes, 0);
    }
}
