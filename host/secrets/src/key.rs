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
use super::fs_util::{DIR_MODE, create_dir_all_private, is_temp_name, sync_dir, write_temp};

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
    /// both end up with the key that was published first. A missing key file is *not*
    /// replaced while the store holds encrypted values: that is refused with
    /// [`SecretStoreError::MasterKey`] (restore the file, or set `PROVIDER_HOST_KEY`).
    ///
    /// The file's directory is checked every time the key is loaded: one that holds nothing
    /// but the key file (such as the default `<state-dir>/keyring/`) is tightened to 0700; a
    /// shared one (other files in it) is left as it is, but refused when group or others
    /// may write to it (they could replace or delete the key).
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

    /// Obtains the key (reading or creating the key file as needed). `values_dir` is asked
    /// only when the key file is missing: where the store holds encrypted values, if it
    /// holds any (then no new key is made).
    /// The key as it is now, never creating a key file (a missing one is
    /// [`SecretStoreError::MasterKey`]).
    pub fn load_existing(&self) -> Result<MasterKey, SecretStoreError> {
        self.load(|| Ok(Some(PathBuf::from("the state directory"))))
    }

    pub(super) fn load(
        &self,
        values_dir: impl FnOnce() -> Result<Option<PathBuf>, SecretStoreError>,
    ) -> Result<MasterKey, SecretStoreError> {
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
            Self::File(path) => {
                secure_key_dir(path)?;
                match read_key_file(path)? {
                    Some(key) => Ok(key),
                    None => match values_dir()? {
                        Some(dir) => Err(missing_key(path, &dir)),
                        None => create_key_file(path),
                    },
                }
            }
        }
    }
}

/// A master key: 32 bytes, wiped (best effort) when dropped. Deliberately neither `Debug` nor
/// `Clone`, and nothing reads its bytes back out: it only seals, opens and derives.
///
/// The file store loads it from its [`KeySource`]; other backends and the key rotation
/// ([`crate::rotation`]) take one from [`MasterKey::from_env`], [`MasterKey::from_env_var`]
/// or [`MasterKey::from_text`].
pub struct MasterKey([u8; MASTER_KEY_LEN]);

impl MasterKey {
    /// The key with these bytes (a key file's content).
    pub fn from_bytes(bytes: [u8; MASTER_KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// Parses the text form: 64 hex characters, or base64 (standard or URL-safe alphabet,
    /// padded or not) of 32 bytes; surrounding whitespace is ignored. The error
    /// ([`SecretStoreError::MasterKey`]) never repeats the text.
    pub fn from_text(text: &str) -> Result<Self, SecretStoreError> {
        parse_key_text(text)
    }

    /// The key in `PROVIDER_HOST_KEY` ([`KEY_ENV_VAR`]), as [`KeySource::Env`] reads it.
    pub fn from_env() -> Result<Self, SecretStoreError> {
        Self::from_env_var(KEY_ENV_VAR)
    }

    /// The key in the environment variable `name` (text form, see [`MasterKey::from_text`]),
    /// e.g. the new key of a rotation; unset or empty is [`SecretStoreError::MasterKey`].
    pub fn from_env_var(name: &str) -> Result<Self, SecretStoreError> {
        match env::var(name) {
            Ok(text) if !text.trim().is_empty() => parse_key_text(&text).map_err(|e| match e {
                // parse_key_text names PROVIDER_HOST_KEY; say which variable it was.
                SecretStoreError::MasterKey(m) if name != KEY_ENV_VAR => {
                    SecretStoreError::MasterKey(m.replace(KEY_ENV_VAR, name))
                }
                other => other,
            }),
            Ok(_) | Err(VarError::NotPresent) => {
                Err(SecretStoreError::MasterKey(format!("{name} is not set")))
            }
            Err(VarError::NotUnicode(_)) => Err(SecretStoreError::MasterKey(format!(
                "{name} is not valid UTF-8; it must be 64 hex characters or the base64 of 32 \
                 bytes"
            ))),
        }
    }

    /// The AEAD keyed with this key, for [`crate::file_format::seal`] and
    /// [`crate::file_format::open`].
    pub fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(Key::from_slice(&self.0))
    }

    /// The key for `purpose` that every backend's `derive_key` answers under this master key
    /// (see [`crate::SecretBackend::derive_key`]): the file store and a database backend
    /// opened with the same master key derive the same keys.
    pub fn derive_key(&self, purpose: &[u8]) -> [u8; 32] {
        derive_from_root(&self.derive_root(), purpose)
    }

    /// The root of [`MasterKey::derive_key`], which a backend keeps instead of the key.
    pub(super) fn derive_root(&self) -> [u8; 32] {
        self.derive(b"root")
    }

    /// A key for another purpose, derived from this one (HMAC-SHA256 over a label), so
    /// that one master key serves several uses without any of them exposing it.
    pub(super) fn derive(&self, purpose: &[u8]) -> [u8; 32] {
        use hmac::Mac;
        let mut mac =
            <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.0).expect("any key length");
        mac.update(b"provider-host derived key v1\0");
        mac.update(purpose);
        mac.finalize().into_bytes().into()
    }

    /// The raw bytes, for writing a key file (rotation). Never logged.
    pub(super) fn bytes(&self) -> &[u8; MASTER_KEY_LEN] {
        &self.0
    }
}

/// The second step of [`MasterKey::derive_key`]: HMAC-SHA256 of `purpose` under the root.
pub(super) fn derive_from_root(root: &[u8; 32], purpose: &[u8]) -> [u8; 32] {
    use hmac::Mac;
    let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(root).expect("any key length");
    mac.update(purpose);
    mac.finalize().into_bytes().into()
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
        Err(e) => return Err(SecretStoreError::io_at("opening the key file", path, e)),
    };
    let meta = file
        .metadata()
        .map_err(|e| SecretStoreError::io_at("inspecting the key file", path, e))?;
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
        .map_err(|e| SecretStoreError::io_at("reading the key file", path, e))?;
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
    let parent = key_dir(path);
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
        Err(e) => Err(SecretStoreError::io_at("publishing the key file", path, e)),
    }
}

/// The parent directory of a key file (`.` for a bare file name).
fn key_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Checks the key file's directory (see [`KeySource::File`]): a directory of its own is
/// tightened to 0700; a shared one is refused when group or others may write to it. An
/// absent directory is created 0700 later, with the key.
fn secure_key_dir(path: &Path) -> Result<(), SecretStoreError> {
    let dir = key_dir(path);
    let shown = dir.display();
    let meta = match fs::metadata(dir) {
        Ok(m) if m.is_dir() => m,
        // Absent (created with the key) or not a directory (opening the key fails).
        _ => return Ok(()),
    };
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 == 0 {
        return Ok(());
    }
    let writable_by_others = mode & 0o022 != 0;
    if holds_only_the_key(dir, path)? {
        match fs::set_permissions(dir, fs::Permissions::from_mode(DIR_MODE)) {
            Ok(()) => {
                tracing::warn!(
                    "the master key's directory {shown} was accessible by group or others \
                     (mode {mode:04o}); restricted it to 0700"
                );
                return Ok(());
            }
            Err(e) if writable_by_others => {
                return Err(SecretStoreError::MasterKey(format!(
                    "the directory {shown} of the key file is writable by group or others \
                     (mode {mode:04o}), and restricting it failed ({e}): anyone who may write \
                     there can replace or delete the key; `chmod 700 {shown}`"
                )));
            }
            Err(e) => {
                tracing::warn!(
                    "the master key's directory {shown} is readable by group or others (mode \
                     {mode:04o}) and could not be restricted: {e}"
                );
                return Ok(());
            }
        }
    }
    if writable_by_others {
        return Err(SecretStoreError::MasterKey(format!(
            "the directory {shown} of the key file is writable by group or others (mode \
             {mode:04o}): anyone who may write there can replace or delete the key; keep the \
             key file in a directory of its own (it is then restricted to 0700), or set \
             {KEY_ENV_VAR}"
        )));
    }
    Ok(())
}

/// Whether `dir` holds nothing but the key file `path` and temp files of its creation.
fn holds_only_the_key(dir: &Path, path: &Path) -> Result<bool, SecretStoreError> {
    let Some(key_name) = path.file_name().and_then(|n| n.to_str()) else {
        return Ok(false);
    };
    let entries = fs::read_dir(dir)
        .map_err(|e| SecretStoreError::io_at("listing the key file's directory", dir, e))?;
    for entry in entries {
        let entry = entry
            .map_err(|e| SecretStoreError::io_at("listing the key file's directory", dir, e))?;
        let name = entry.file_name();
        let ours = name.to_str().is_some_and(|n| {
            n == key_name || (is_temp_name(n) && n.starts_with(&format!(".{key_name}.")))
        });
        if !ours {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The refusal to replace a missing key file while values encrypted under it exist.
fn missing_key(path: &Path, values_dir: &Path) -> SecretStoreError {
    SecretStoreError::MasterKey(format!(
        "the key file {} is missing, but the store under {} holds values encrypted under a \
         master key; a new key could not read them, so none is made. Restore the key file \
         from a backup ({MASTER_KEY_LEN} bytes, mode 0600), or set {KEY_ENV_VAR} to the key \
         (64 hex characters or base64). To start over without those secrets, remove {}",
        path.display(),
        values_dir.display(),
        values_dir.display()
    ))
}
