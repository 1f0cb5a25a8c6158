//! The master key: derived keys follow it, and rotation re-encrypts every value, completes
//! when rerun after an interruption, and refuses values under neither key.

use super::*;

/// `derive_key` is [`MasterKey::derive_key`] of the master key: the same for every opening
/// and every backend, different per purpose and per master key.
pub fn derive_key_follows_the_master_key(h: &dyn Harness) {
    let backend = open(h, Limits::default());
    let master = MasterKey::from_bytes(h.master_key());
    let cache = backend.derive_key(b"compile-cache");
    assert_eq!(cache, master.derive_key(b"compile-cache"));
    assert_eq!(
        cache,
        open(h, Limits::default()).derive_key(b"compile-cache")
    );
    assert_ne!(cache, backend.derive_key(b"other purpose"));
    assert_ne!(cache[..], h.master_key()[..]);
    let other = h.open_with(&other_key(h), Limits::default());
    assert_ne!(cache, other.derive_key(b"compile-cache"));
}

/// Writes a few values in two tenants; answers (tenant, key, value) of each.
fn rotation_fixture(h: &dyn Harness, prefix: &str) -> Vec<(String, String, Vec<u8>)> {
    let backend = open(h, Limits::default());
    let mut written = Vec::new();
    for t in ["a", "b"] {
        let id = format!("{prefix}-{t}");
        let handle = tenant(&*backend, &id);
        for k in ["oauth.refresh", "oauth.access", "models.cache"] {
            let v = format!("{id}/{k} value").into_bytes();
            handle.set(k, &v).unwrap();
            written.push((id.clone(), k.to_owned(), v));
        }
    }
    written
}

/// Every value reads back under `key`.
fn all_read_under(
    h: &dyn Harness,
    key: &[u8; MASTER_KEY_LEN],
    values: &[(String, String, Vec<u8>)],
) {
    let backend = h.open_with(key, Limits::default());
    for (t, k, v) in values {
        assert_eq!(&value(&*tenant(&*backend, t), k), v, "{t}/{k}");
    }
}

/// Every value reads as `Corrupt` under `key`.
fn none_read_under(
    h: &dyn Harness,
    key: &[u8; MASTER_KEY_LEN],
    values: &[(String, String, Vec<u8>)],
) {
    let backend = h.open_with(key, Limits::default());
    for (t, k, _) in values {
        assert_corrupt(&format!("{t}/{k}"), tenant(&*backend, t).get(k));
    }
}

fn clear_all(h: &dyn Harness, key: &[u8; MASTER_KEY_LEN], values: &[(String, String, Vec<u8>)]) {
    let backend = h.open_with(key, Limits::default());
    for (t, _, _) in values {
        clear(&*tenant(&*backend, t));
    }
}

/// A rotation re-encrypts every value of every tenant: afterwards they read under the new key
/// only; running it again changes nothing.
pub fn rotation_re_encrypts_every_value(h: &dyn Harness) {
    let values = rotation_fixture(h, "rotate");
    let (old, new) = (h.master_key(), other_key(h));
    let report = h.rotate(&old, &new, &mut |_, _| Ok(())).unwrap();
    assert_eq!(report.rotated, values.len(), "{report:?}");
    assert_eq!(report.values, values.len(), "{report:?}");
    assert_eq!(report.already_new, 0, "{report:?}");
    all_read_under(h, &new, &values);
    none_read_under(h, &old, &values);

    let again = h.rotate(&old, &new, &mut |_, _| Ok(())).unwrap();
    assert_eq!(
        (again.rotated, again.already_new),
        (0, values.len()),
        "{again:?}"
    );
    all_read_under(h, &new, &values);
    clear_all(h, &new, &values);
}

/// A rotation stopped after some values leaves each value whole under one key or the other;
/// running it again with the same keys completes it.
pub fn interrupted_rotation_completes_when_rerun(h: &dyn Harness) {
    let values = rotation_fixture(h, "interrupted");
    let (old, new) = (h.master_key(), other_key(h));
    let mut done = 0;
    let err = h
        .rotate(&old, &new, &mut |_, _| {
            done += 1;
            if done == 2 {
                Err(SecretStoreError::Unavailable(
                    "interrupted by the test".into(),
                ))
            } else {
                Ok(())
            }
        })
        .unwrap_err();
    assert!(matches!(err, SecretStoreError::Unavailable(_)), "{err:?}");
    // Two values under the new key, the rest still under the old one; none lost.
    let under_new = h.open_with(&new, Limits::default());
    let under_old = h.open_with(&old, Limits::default());
    let mut rotated = 0;
    for (t, k, v) in &values {
        match tenant(&*under_new, t).get(k) {
            Ok(Some(got)) => {
                assert_eq!(&got, v, "{t}/{k}");
                rotated += 1;
            }
            Err(SecretStoreError::Corrupt(_)) => {
                assert_eq!(&value(&*tenant(&*under_old, t), k), v, "{t}/{k}")
            }
            other => panic!("{t}/{k}: {other:?}"),
        }
    }
    assert_eq!(rotated, 2);

    let report = h.rotate(&old, &new, &mut |_, _| Ok(())).unwrap();
    assert_eq!(
        (report.rotated, report.already_new),
        (values.len() - 2, 2),
        "{report:?}"
    );
    all_read_under(h, &new, &values);
    none_read_under(h, &old, &values);
    clear_all(h, &new, &values);
}

/// A value that opens under neither key stops the rotation before anything is written.
pub fn rotation_refuses_values_under_neither_key(h: &dyn Harness) {
    let values = rotation_fixture(h, "refused");
    h.write_stored(
        "refused-b",
        "broken",
        b"not a sealed value at all, just bytes",
    );
    let (old, new) = (h.master_key(), other_key(h));
    let err = h.rotate(&old, &new, &mut |_, _| Ok(())).unwrap_err();
    assert!(matches!(err, SecretStoreError::Corrupt(_)), "{err:?}");
    assert!(err.to_string().contains("refused-b/broken"), "{err}");
    all_read_under(h, &old, &values);
    none_read_under(h, &new, &values);
    clear_all(h, &old, &values);
}
