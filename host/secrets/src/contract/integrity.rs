//! Isolation and integrity: tenants see only their own values, damaged or moved values
//! read as corrupt, and racing writers never expose a partial value.

use super::*;

/// Tenants see only their own values; a stored value copied to another tenant, or to
/// another key of the same tenant, reads as `Corrupt`; writing over it works.
pub fn tenants_are_isolated(h: &dyn Harness) {
    let backend = open(h, Limits::default());
    let alice = tenant(&*backend, "isolation-alice");
    let bob = tenant(&*backend, "isolation-bob");
    alice.set("token", b"alice-secret").unwrap();
    assert_eq!(bob.get("token").unwrap(), None);
    assert!(bob.list_keys("").unwrap().is_empty());
    bob.set("token", b"bob-secret").unwrap();
    assert_eq!(value(&*alice, "token"), b"alice-secret");
    assert_eq!(value(&*bob, "token"), b"bob-secret");

    let stolen = h.read_stored("isolation-alice", "token").expect("stored");
    h.write_stored("isolation-bob", "token", &stolen);
    assert_corrupt("alice's value under bob", bob.get("token"));
    h.write_stored("isolation-alice", "other", &stolen);
    assert_corrupt("alice's value under another key", alice.get("other"));
    assert_eq!(value(&*alice, "token"), b"alice-secret");
    bob.set("token", b"bob-again").unwrap();
    assert_eq!(value(&*bob, "token"), b"bob-again");
    clear(&*alice);
    clear(&*bob);
}

/// Damaged stored values (truncated, flipped bits, wrong magic or version, garbage) read as
/// `Corrupt`, whose message never shows the value; writing over them works.
pub fn damaged_values_are_corrupt(h: &dyn Harness) {
    let backend = open(h, Limits::default());
    let t = tenant(&*backend, "damaged");
    t.set("k", b"a value of some length").unwrap();
    let good = h.read_stored("damaged", "k").expect("stored");
    let flip = |at: usize, mask: u8| {
        let mut b = good.clone();
        b[at] ^= mask;
        b
    };
    let cases: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"garbage".to_vec(),
        good[..OVERHEAD - 1].to_vec(),
        good[..good.len() - 1].to_vec(),
        flip(good.len() - 1, 1),
        flip(10, 0x80),
        flip(4, 0x03),
        flip(0, 0x20),
        vec![0; 4096],
    ];
    for bytes in cases {
        h.write_stored("damaged", "k", &bytes);
        let err = t.get("k").unwrap_err();
        assert!(matches!(err, SecretStoreError::Corrupt(_)), "{err:?}");
        assert!(!err.to_string().contains("a value of some length"));
    }
    t.set("k", b"fresh").unwrap();
    assert_eq!(value(&*t, "k"), b"fresh");
    // Under another master key the same stored value is corrupt too.
    let other = h.open_with(&other_key(h), Limits::default());
    assert_corrupt("another master key", tenant(&*other, "damaged").get("k"));
    assert_eq!(tenant(&*other, "damaged").list_keys("").unwrap(), ["k"]);
    clear(&*t);
}

/// Writers racing on one key never leave (or let a reader see) a mix of their values.
pub fn concurrent_writers_never_expose_a_partial_value(h: &dyn Harness) {
    let backend = open(h, Limits::default());
    let t = tenant(&*backend, "concurrent");
    let values: Vec<Vec<u8>> = (0..4u8)
        .map(|i| vec![b'a' + i; 2000 + 100 * i as usize])
        .collect();
    t.set("shared", &values[0]).unwrap();
    thread::scope(|s| {
        for v in &values {
            let t = std::sync::Arc::clone(&t);
            s.spawn(move || {
                for _ in 0..10 {
                    t.set("shared", v).unwrap();
                }
            });
        }
        let t = std::sync::Arc::clone(&t);
        let values = &values;
        s.spawn(move || {
            for _ in 0..40 {
                let got = value(&*t, "shared");
                assert!(values.contains(&got), "read a value nobody wrote");
            }
        });
    });
    assert!(values.contains(&value(&*t, "shared")));
    assert_eq!(t.list_keys("").unwrap(), ["shared"]);
    clear(&*t);
}
