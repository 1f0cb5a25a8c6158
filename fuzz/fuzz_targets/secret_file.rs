//! The secret store's on-disk value format (`provider_secrets::file_format`):
//! any file content decrypts only when it is an authentic file for this tenant, key and
//! master key — otherwise a `Corrupt` error, never a panic; a sealed value opens back to
//! itself and to nothing else once any byte of it changes.
//!
//! Input: the content of a value file (the committed seeds are real files sealed with
//! [`FUZZ_MASTER_KEY`] for tenant `tenant-1`, key `credentials`).
#![no_main]

use provider_secrets::file_format;

use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::KeyInit;
use provider_secrets::SecretStoreError;
use libfuzzer_sys::fuzz_target;

/// The master key of the seed files (a fuzzing-only key).
const FUZZ_MASTER_KEY: [u8; 32] = *b"fuzzing-only-master-key-32-bytes";
const TENANT: &str = "tenant-1";
const KEY: &str = "credentials";

fn corrupt(r: Result<Vec<u8>, SecretStoreError>) {
    match r {
        Err(SecretStoreError::Corrupt(m)) => {
            assert!(!m.chars().any(char::is_control) && m.len() < 1024, "{m:?}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let cipher = XChaCha20Poly1305::new(&FUZZ_MASTER_KEY.into());
    // An untrusted file: Ok only for an authentic one (then it also opens for nothing else).
    match file_format::open(&cipher, TENANT, KEY, data) {
        Ok(value) => {
            assert_eq!(value.len() + file_format::OVERHEAD, data.len());
            corrupt(file_format::open(&cipher, TENANT, "other-key", data));
            corrupt(file_format::open(&cipher, "tenant-2", KEY, data));
        }
        Err(e) => {
            assert!(matches!(e, SecretStoreError::Corrupt(_)), "{e:?}");
        }
    }

    // The input as a value: it round-trips, and any single changed byte is detected.
    let sealed = file_format::seal(&cipher, TENANT, KEY, data).unwrap();
    assert_eq!(sealed.len(), data.len() + file_format::OVERHEAD);
    assert_eq!(
        file_format::open(&cipher, TENANT, KEY, &sealed).unwrap(),
        data
    );
    let at = data.first().map_or(0, |&b| usize::from(b)) * 131 % sealed.len();
    let mut damaged = sealed.clone();
    damaged[at] ^= 1 << (data.len() % 8);
    corrupt(file_format::open(&cipher, TENANT, KEY, &damaged));
    corrupt(file_format::open(
        &cipher,
        TENANT,
        KEY,
        &sealed[..sealed.len() - 1],
    ));
});
