//! The master key: where it comes from, how it is parsed, and how a key file is created.

use std::env::{self, VarError};
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::KeyInit;
use chacha20poly1305::{Key, XChaCha20Poly1305};
use rand::TryRngCore;
use rand::rngs::OsRng;

use super::error::SecretStoreError;
use super::fs_util::{create_dir_all_private, sync_dir, write_temp};

/// The environment variable [`KeySource::Env`] reads.
pub const KEY_ENV_VAR: &str = "PROVIDER_HOST_KEY";

/// Length of the master key in bytes.
pub const MASTER_KEY_LEN: usize = 32;

/// Where the master key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// The environment variable `PROVIDER_HOST_KEY`: 64 hex characters, or base64 (standard
    /// or URL-safe alphabet, padded or not) of 32 bytes. Surrounding whitespace is ignored.
    Env,
    /// A key file of exactly 32 raw bytes with no group/other permissions, read when present.
    /// When absent it is generated from OS randomness and published atomically with mode 0600
    /// (missing parent directories are created 0700). If two processes create it at once,
    /// both end up with the key that was published first.
    File(PathBuf),
}

impl KeySource {
    /// [`KeySource::Env`] when `PROVIDER_HOST_KEY` is set to a non-empty value, otherwise
    /// [`KeySource::File`] of `path`.
    pub fn from_env_or_file(path: impl Into<PathBuf>) -> Self {
        match env::var_os(KEY_ENV_VAR) {
            Some(v) if !v.is_empty() => Self::Env,
            _ => Self::File(path.into()),
        }
    }

    /// Obtains the key (reading or creating the key file as needed).
    pub(super) fn load(&self) -> Result<MasterKey, SecretStoreError> {
        match self {
            Self::Env => match env::var(KEY_ENV_VAR) {
                Ok(text) => parse_key_text(&text),
                Err(VarError::NotPresent) => Err(SecretStoreError::MasterKey(format!(
                    "{KEY_ENV_VAR} is not set"
                ))),
                Err(VarError::NotUnicode(_)) => Err(SecretStoreError::MasterKey(format!(
                    "{KEY_ENV_VAR} is not valid UTF-8; it must be 64 hex characters or the \
                     base64 of 32 bytes"
                ))),
            },
            Self::File(path) => match read_key_file(path)? {
                Some(key) => Ok(key),
                None => create_key_file(path),
            },
        }
    }
}

/// 32 key bytes, wiped (best effort) when dropped. Deliberately not `Debug`.
pub(super) struct MasterKey([u8; MASTER_KEY_LEN]);

impl MasterKey {
    /// The AEAD keyed with this key.
    pub(super) fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(Key::from_slice(&self.0))
    }
}

impl Drop for MasterKey {
    fn drop(&mut self) {
        self.0.fill(0);
        std::hint::black_box(&self.0);
    }
}

/// Parses the text form of a key (`PROVIDER_HOST_KEY`): 64 hex characters, or base64 of 32
/// bytes. The error never repeats the text.
pub(super) fn parse_key_text(text: &str) -> Result<MasterKey, SecretStoreError> {
    let text = text.trim();
    // Hex first: 64 hex characters are also valid base64 (of 48 bytes).
    if text.len() == 2 * MASTER_KEY_LEN && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        let mut key = MasterKey([0; MASTER_KEY_LEN]);
        for (i, pair) in text.as_bytes().chunks_exact(2).enumerate() {
            key.0[i] = (hex_digit(pair[0]) << 4) | hex_digit(pair[1]);
        }
        return Ok(key);
    }
    for engine in [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD] {
        if let Ok(mut bytes) = engine.decode(text) {
            let fits = bytes.len() == MASTER_KEY_LEN;
            let mut key = MasterKey([0; MASTER_KEY_LEN]);
            if fits {
                key.0.copy_from_slice(&bytes);
            }
            bytes.fill(0);
            if fits {
                return Ok(key);
            }
        }
    }
    Err(SecretStoreError::MasterKey(format!(
        "{KEY_ENV_VAR} must be 64 hex characters or the base64 of {MASTER_KEY_LEN} bytes; the \
         value given ({} characters) is neither",
        text.chars().count()
    )))
}

/// Value of one ASCII hex digit (the caller checked it is one).
fn hex_digit(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        _ => b - b'A' + 10,
    }
}

/// Reads a key file; `None` when it does not exist. Refuses anything but a regular file of
/// exactly 32 bytes without group/other permissions.
fn read_key_file(path: &Path) -> Result<Option<MasterKey>, SecretStoreError> {
    let shown = path.display();
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(SecretStoreError::io(format!("opening key file {shown}"), e)),
    };
    let meta = file
        .metadata()
        .map_err(|e| SecretStoreError::io(format!("inspecting key file {shown}"), e))?;
    if !meta.is_file() {
        return Err(SecretStoreError::MasterKey(format!(
            "key file {shown} is not a regular file"
        )));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(SecretStoreError::MasterKey(format!(
            "key file {shown} is accessible by group or others (mode {mode:03o}); refusing to \
             use it: restrict it with `chmod 600 {shown}`"
        )));
    }
    if meta.len() != MASTER_KEY_LEN as u64 {
        return Err(SecretStoreError::MasterKey(format!(
            "key file {shown} must hold exactly {MASTER_KEY_LEN} bytes, it holds {}",
            meta.len()
        )));
    }
    let mut key = MasterKey([0; MASTER_KEY_LEN]);
    file.read_exact(&mut key.0)
        .map_err(|e| SecretStoreError::io(format!("reading key file {shown}"), e))?;
    Ok(Some(key))
}

/// Generates a key and publishes it at `path` without ever replacing an existing file: the
/// key is written and fsynced under a temp name, then hard-linked into place (which fails if
/// another process got there first; then its key is used).
fn create_key_file(path: &Path) -> Result<MasterKey, SecretStoreError> {
    let shown = path.display();
    let name = path
        .file_name()
        .ok_or_else(|| {
            SecretStoreError::MasterKey(format!("key file path {shown} has no file name"))
        })?
        .to_string_lossy()
        .into_owned();
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    create_dir_all_private(parent)?;

    let mut key = MasterKey([0; MASTER_KEY_LEN]);
    OsRng.try_fill_bytes(&mut key.0).map_err(|e| {
        SecretStoreError::io("drawing a master key", io::Error::other(e.to_string()))
    })?;
    let temp = parent.join(write_temp(parent, &name, &key.0)?);
    let linked = fs::hard_link(&temp, path);
    let _ = fs::remove_file(&temp);
    match linked {
        Ok(()) => {
            sync_dir(parent)?;
            Ok(key)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            read_key_file(path)?.ok_or_else(|| {
                SecretStoreError::MasterKey(format!("key file {shown} vanished while created"))
            })
        }
        Err(e) => Err(SecretStoreError::io(
            format!("publishing key file {shown}"),
            e,
        )),
    }
}
