//! Tenant-scoped, encrypted secret storage with a cross-process lock: the host side of the
//! `secrets` interface of `wit/provider.wit`.
//!
//! Everything here is blocking file-system code; async callers run it on
//! `tokio::task::spawn_blocking`. [`SecretStore`], [`TenantSecrets`] and [`LockGuard`] are
//! `Send + Sync + 'static`; the first two are cheap to clone (an `Arc` inside).
//!
//! # Layout
//!
//! ```text
//! <state_dir>/tenants/<tenant>/secrets/<key>.sec               one value per file, 0600
//! <state_dir>/tenants/<tenant>/secrets/.<key>.<random>.tmp     a write in flight (ignored)
//! <state_dir>/tenants/<tenant>/locks/<name>.lock               lock files, 0600, while in use
//! <state_dir>/tenants/<tenant>/locks/.store.lock               internal: serialises `set`
//! ```
//!
//! Every directory from `tenants/` down is created 0700 and tightened back to 0700 when found
//! looser; a symlink in their place is refused. `state_dir` itself is created 0700 when
//! missing and otherwise left as it is (it may be a directory the operator chose).
//!
//! Names are checked before any path is built, so none can escape its directory:
//! tenant ids are `[A-Za-z0-9._-]{1,64}`, keys and lock names `[a-z0-9._-]{1,128}`, and none
//! may start with `.` (which also keeps them apart from temp and internal files).
//!
//! # File format (version 1)
//!
//! | offset | length | content                                                        |
//! |-------:|-------:|----------------------------------------------------------------|
//! | 0      | 4      | magic `PHSC`                                                   |
//! | 4      | 1      | version, `0x01`                                                |
//! | 5      | 24     | XChaCha20-Poly1305 nonce, fresh OS randomness on every write   |
//! | 29     | n + 16 | ciphertext of the n-byte value, then the 16-byte Poly1305 tag  |
//!
//! The associated data is `PHSC 0x01 || u32be(len(tenant)) || tenant || u32be(len(key)) ||
//! key`, so a file copied to another tenant or renamed to another key fails authentication
//! and reads as [`SecretStoreError::Corrupt`], as does any damaged file or a wrong master key.
//!
//! # Master key
//!
//! 32 bytes, from [`KeySource::Env`] (`PROVIDER_HOST_KEY`: 64 hex characters or base64 of 32
//! bytes) or [`KeySource::File`] (read when present — exactly 32 bytes, no group/other
//! permission bits — else generated from OS randomness and published atomically with mode
//! 0600, without ever replacing a key file another process created first). A key file that
//! is missing while the store holds values is not replaced (every value would then read as
//! corrupt): opening fails with [`SecretStoreError::MasterKey`], which says to restore the
//! file or set `PROVIDER_HOST_KEY`. The key file's own directory (`keyring/`) is tightened
//! to 0700 every time the key is loaded.
//!
//! # Rotating the master key
//!
//! [`rotate_master_key`] re-encrypts every value of every tenant under a new key (see
//! [`rotation`] for the procedure, which every backend shares: safe to rerun after an
//! interruption) and, for a [`KeySource::File`], replaces the key file at the very end.
//!
//! # Reads
//!
//! `get` checks a value file's size before reading it: one over what `set` accepts
//! (`max_value_bytes` plus the format's overhead) is [`SecretStoreError::TooLarge`] and is
//! never read, and no more than that is ever read from a file that grows meanwhile.
//!
//! A store keeps the values it decrypted (small ones, a few MiB in all, wiped when dropped)
//! and returns one again while its file is unchanged, which costs one `stat` of the path
//! instead of an open, reads and a decryption: a write from any process replaces the file,
//! so it is seen at the next `get`. A file changed within the last two seconds is read
//! again every time (a replacement within the same timestamp tick could look unchanged).
//!
//! # Errors and plugins
//!
//! Errors display file-system paths for the host's log and CLI;
//! [`SecretStoreError::guest_message`] is what a plugin may see, without any path.
//!
//! # Atomic replace
//!
//! `set` writes a temp file in the same directory (`O_CREAT|O_EXCL`, 0600), fsyncs it,
//! renames it over `<key>.sec` and fsyncs the directory. A crash leaves the old or the new
//! value; a stray temp file is ignored by `get`/`list_keys` and removed by `list_keys` once it
//! is older than ten minutes (younger ones may belong to a writer that is still running).
//!
//! # Locks
//!
//! [`TenantSecrets::lock`] takes an exclusive `flock` on `locks/<name>.lock`, polling with
//! short sleeps until the timeout. `flock` belongs to the open file, so two guards in one
//! process exclude each other too, and the kernel drops it when its process dies: a lock file
//! left behind never blocks anyone.
//!
//! Lock files exist while in use: the holder unlinks its file on release while still holding
//! the `flock`, and whoever then gets the `flock` of the unlinked file notices that the path
//! no longer names it (device and inode compared) and starts over on a fresh file, so
//! mutual exclusion survives the removal. Files left by killed holders (or by versions that
//! never removed them) are swept (locked, re-checked, unlinked) when the cap on lock names is
//! reached. A process of an earlier version, which does not re-check, must not share the
//! state directory with this one.
//!
//! Bounds, so a plugin cannot exhaust the process's file descriptors or the disk: one tenant
//! handle (a [`TenantSecrets`] and its clones, i.e. every session a runtime opens for that
//! tenant) holds at most [`DEFAULT_MAX_HELD_LOCKS`] (16) locks at once, and at most
//! [`DEFAULT_MAX_LOCK_NAMES`] (64) lock names (files) are in use per tenant; beyond either,
//! `lock` fails at once with [`SecretStoreError::TooLarge`] (the WIT `too-large`).
//!
//! # Byte quotas
//!
//! Stored bytes (file sizes: each value plus the format's 45 bytes, temp files included)
//! are bounded per tenant ([`StoreConfig::max_tenant_bytes`], default 16 MiB) and for the
//! whole state directory ([`StoreConfig::max_total_bytes`], default 1 GiB). `set` checks
//! both under its locks, so concurrent writers (in any process) cannot overshoot: the
//! tenant's under its write lock, the store's under `tenants/.store.lock`, taken only by a
//! write that grows the tenant. A write over either is [`SecretStoreError::QuotaExceeded`];
//! one that does not grow its tenant is always accepted.

#![deny(missing_docs)]

mod backend;
#[cfg(any(test, feature = "contract-tests"))]
pub mod contract;
mod error;
pub mod file_format;
mod fs_util;
mod key;
mod lock;
pub mod names;
mod read_cache;
pub mod rotation;
mod store;

#[cfg(test)]
mod tests;

pub use backend::{SecretBackend, SecretLock, TenantBackend};
pub use error::SecretStoreError;
pub use fs_util::write_atomic;
pub use key::{KEY_ENV_VAR, KeySource, MASTER_KEY_LEN, MasterKey};
pub use lock::LockGuard;
pub use rotation::{RotationReport, rotate_master_key};
pub use store::{
    DEFAULT_MAX_HELD_LOCKS, DEFAULT_MAX_KEYS, DEFAULT_MAX_LOCK_NAMES, DEFAULT_MAX_TENANT_BYTES,
    DEFAULT_MAX_TOTAL_BYTES, DEFAULT_MAX_VALUE_BYTES, Limits, SecretStore, StoreConfig,
    TenantSecrets,
};
