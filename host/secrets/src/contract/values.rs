//! Values and names: what is written reads back, deletes and listings behave, and
//! malformed tenant ids, keys and lock names are refused.

use super::*;

/// Values come back as written (binary, empty), through the same handle, another handle of
/// the tenant and another opening of the storage.
pub fn round_trip(h: &dyn Harness) {
    let backend = open(h, Limits::default());
    assert!(!backend.kind().is_empty());
    let t = tenant(&*backend, "round-trip");
    assert_eq!(t.tenant_id(), "round-trip");
    t.set("oauth.refresh_token", b"first").unwrap();
    assert_eq!(value(&*t, "oauth.refresh_token"), b"first");
    let binary: Vec<u8> = (0..=255u8).collect();
    t.set("binary", &binary).unwrap();
    t.set("empty", b"").unwrap();
    assert_eq!(value(&*t, "binary"), binary);
    assert_eq!(value(&*t, "empty"), b"");

    let again = tenant(&*backend, "round-trip");
    assert_eq!(value(&*again, "binary"), binary);
    let elsewhere = open(h, Limits::default());
    let there = tenant(&*elsewhere, "round-trip");
    assert_eq!(value(&*there, "oauth.refresh_token"), b"first");
    assert_eq!(value(&*there, "empty"), b"");
    clear(&*t);
}

/// `set` over a value replaces it; each write is sealed anew (a fresh nonce: the same value
/// written twice is stored differently), and the stored bytes never contain the value.
pub fn replace_writes_a_fresh_sealed_value(h: &dyn Harness) {
    let backend = open(h, Limits::default());
    let t = tenant(&*backend, "replace");
    let marker = b"PLAINTEXT-MARKER-refresh-token-0123456789";
    t.set("k", b"old value").unwrap();
    t.set("k", marker).unwrap();
    assert_eq!(value(&*t, "k"), marker);
    let first = h.read_stored("replace", "k").expect("stored");
    t.set("k", marker).unwrap();
    let second = h.read_stored("replace", "k").expect("stored");
    assert_eq!(first.len(), marker.len() + OVERHEAD);
    assert_ne!(
        first, second,
        "the same value was sealed the same way twice"
    );
    for stored in [&first, &second] {
        assert!(!contains(stored, marker), "plaintext in the stored value");
        assert!(!contains(stored, &marker[..16]), "plaintext prefix stored");
    }
    assert_eq!(value(&*t, "k"), marker);
    clear(&*t);
}

/// An absent key reads as `None`, in a tenant never used too, which lists nothing.
pub fn absent_values_read_as_none(h: &dyn Harness) {
    let backend = open(h, Limits::default());
    let t = tenant(&*backend, "absent");
    assert_eq!(t.get("missing").unwrap(), None);
    assert!(t.list_keys("").unwrap().is_empty());
    t.set("present", b"v").unwrap();
    assert_eq!(t.get("missing").unwrap(), None);
    let never = tenant(&*backend, "absent-never-used");
    assert_eq!(never.get("present").unwrap(), None);
    assert!(never.list_keys("").unwrap().is_empty());
    clear(&*t);
}

/// Deleting removes the value; deleting an absent key succeeds.
pub fn delete_is_idempotent(h: &dyn Harness) {
    let backend = open(h, Limits::default());
    let t = tenant(&*backend, "delete");
    t.set("k", b"v").unwrap();
    t.set("kept", b"v").unwrap();
    t.delete("k").unwrap();
    assert_eq!(t.get("k").unwrap(), None);
    t.delete("k").unwrap();
    t.delete("never-existed").unwrap();
    assert_eq!(t.list_keys("").unwrap(), ["kept"]);
    assert_eq!(value(&*t, "kept"), b"v");
    clear(&*t);
}

/// `list_keys` answers the keys starting with the prefix, sorted bytewise; a prefix no key
/// can start with matches nothing, and `_` (a wildcard in SQL `LIKE`) is only itself.
pub fn list_keys_by_prefix_sorted(h: &dyn Harness) {
    let backend = open(h, Limits::default());
    let t = tenant(&*backend, "list");
    for k in [
        "models.cache",
        "oauth.refresh",
        "oauth.access",
        "a",
        "oauth-x",
        "oauth_y",
        "oauthz",
        "b_c",
        "bxc",
    ] {
        t.set(k, k.as_bytes()).unwrap();
    }
    assert_eq!(
        t.list_keys("").unwrap(),
        [
            "a",
            "b_c",
            "bxc",
            "models.cache",
            "oauth-x",
            "oauth.access",
            "oauth.refresh",
            "oauth_y",
            "oauthz",
        ]
    );
    assert_eq!(
        t.list_keys("oauth.").unwrap(),
        ["oauth.access", "oauth.refresh"]
    );
    assert_eq!(t.list_keys("b_").unwrap(), ["b_c"]);
    assert_eq!(t.list_keys("oauth.access").unwrap(), ["oauth.access"]);
    for nothing in [
        "zzz",
        "../",
        "%",
        "oauth%",
        "A",
        "é",
        "a\0",
        ".",
        "oauth.access.x",
    ] {
        assert!(t.list_keys(nothing).unwrap().is_empty(), "{nothing:?}");
    }
    t.delete("oauth.access").unwrap();
    assert_eq!(t.list_keys("oauth.").unwrap(), ["oauth.refresh"]);
    clear(&*t);
}

/// Tenant ids outside `[A-Za-z0-9._-]{1,64}` (or with a leading `.`) are `InvalidTenant`.
pub fn invalid_tenant_ids_are_rejected(h: &dyn Harness) {
    let backend = open(h, Limits::default());
    let long = "a".repeat(65);
    for bad in [
        "", "../x", "a/b", ".hidden", ".", "..", "/abs", "a\\b", "a b", "a\0b", "é", "a'b", &long,
    ] {
        match backend.tenant(bad) {
            Err(SecretStoreError::InvalidTenant(_)) => {}
            other => panic!("tenant {bad:?}: expected InvalidTenant, got {other:?}"),
        }
    }
    for good in ["A", "Tenant_1.prod-2", &"x".repeat(64)] {
        let t = tenant(&*backend, good);
        t.set("k", b"v").unwrap();
        assert_eq!(value(&*t, "k"), b"v");
        clear(&*t);
    }
}

/// Keys and lock names outside `[a-z0-9._-]{1,128}` (or with a leading `.`) are
/// `InvalidKey` for every call.
pub fn invalid_keys_and_lock_names_are_rejected(h: &dyn Harness) {
    let backend = open(h, Limits::default());
    let t = tenant(&*backend, "names");
    let long = "a".repeat(129);
    for bad in [
        "", "../x", "a/b", ".hidden", ".", "..", "/abs", "Upper", "a b", "a\0b", "é", "x:y", "a%",
        "a'b", &long,
    ] {
        let is_invalid = |what: &str, r: Result<(), SecretStoreError>| {
            assert!(
                matches!(r, Err(SecretStoreError::InvalidKey(_))),
                "{what} {bad:?}: {r:?}"
            )
        };
        is_invalid("get", t.get(bad).map(drop));
        is_invalid("set", t.set(bad, b"v"));
        is_invalid("delete", t.delete(bad));
        is_invalid("lock", t.lock(bad, Duration::ZERO).map(drop));
    }
    assert!(t.list_keys("").unwrap().is_empty());
    for good in ["a", "0", "a.b-c_d", "-x", "_y", &"z".repeat(128)] {
        t.set(good, b"v").unwrap();
        assert_eq!(value(&*t, good), b"v");
        drop(t.lock(good, Duration::ZERO).unwrap());
    }
    clear(&*t);
}
