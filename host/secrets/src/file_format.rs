//! The on-disk format of one value (version 1; see the module docs for the table):
//! `PHSC` · version `0x01` · 24-byte nonce · XChaCha20-Poly1305 ciphertext with tag.

use std::io;

use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::XNonce;
use chacha20poly1305::aead::{Aead, Payload};
use rand::TryRngCore;
use rand::rngs::OsRng;

use super::error::SecretStoreError;

/// First bytes of every value file.
pub const MAGIC: [u8; 4] = *b"PHSC";
/// The format version this code writes and reads.
pub const VERSION: u8 = 1;
/// Length of magic plus version.
pub const HEADER_LEN: usize = MAGIC.len() + 1;
/// XChaCha20 nonce length.
pub const NONCE_LEN: usize = 24;
/// Poly1305 tag length.
pub const TAG_LEN: usize = 16;
/// Bytes a file holds on top of the value.
pub const OVERHEAD: usize = HEADER_LEN + NONCE_LEN + TAG_LEN;

/// The associated data: header plus length-prefixed tenant and key, so a file only opens
/// under the tenant and key it was written for.
fn associated_data(tenant: &str, key: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(HEADER_LEN + 8 + tenant.len() + key.len());
    aad.extend_from_slice(&MAGIC);
    aad.push(VERSION);
    for part in [tenant, key] {
        // Names are at most 128 bytes, so the cast cannot truncate.
        aad.extend_from_slice(&(part.len() as u32).to_be_bytes());
        aad.extend_from_slice(part.as_bytes());
    }
    aad
}

/// Encrypts `value` for `tenant`/`key` under a fresh random nonce.
pub fn seal(
    cipher: &XChaCha20Poly1305,
    tenant: &str,
    key: &str,
    value: &[u8],
) -> Result<Vec<u8>, SecretStoreError> {
    let mut nonce = [0u8; NONCE_LEN];
    OsRng
        .try_fill_bytes(&mut nonce)
        .map_err(|e| SecretStoreError::io("drawing a nonce", io::Error::other(e.to_string())))?;
    let aad = associated_data(tenant, key);
    let ciphertext = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: value,
                aad: &aad,
            },
        )
        // Only possible for values far beyond any size limit; say nothing about the value.
        .map_err(|_| SecretStoreError::io("encrypting", io::Error::other("AEAD failure")))?;
    let mut out = Vec::with_capacity(HEADER_LEN + NONCE_LEN + ciphertext.len());
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ciphertext);
    Ok(out)
}

/// Decrypts a file written by [`seal`] for the same `tenant`/`key`. Anything else — wrong
/// magic or version, truncation, tampering, another tenant/key, another master key — is
/// [`SecretStoreError::Corrupt`].
pub fn open(
    cipher: &XChaCha20Poly1305,
    tenant: &str,
    key: &str,
    file: &[u8],
) -> Result<Vec<u8>, SecretStoreError> {
    let corrupt =
        |why: &str| SecretStoreError::Corrupt(format!("key {key:?} of tenant {tenant:?}: {why}"));
    if file.len() < OVERHEAD {
        return Err(corrupt("file too short"));
    }
    if file[..MAGIC.len()] != MAGIC {
        return Err(corrupt("not a secret file (bad magic)"));
    }
    if file[MAGIC.len()] != VERSION {
        return Err(corrupt("unsupported format version"));
    }
    let (nonce, ciphertext) = file[HEADER_LEN..].split_at(NONCE_LEN);
    let aad = associated_data(tenant, key);
    cipher
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad: &aad,
            },
        )
        .map_err(|_| {
            corrupt(
                "authentication failed (damaged, written for another tenant or key, or \
                 encrypted under another master key)",
            )
        })
}
