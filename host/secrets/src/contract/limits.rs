//! Limits: value size, key count, byte quotas per tenant and per store, locks held.

use super::*;

/// A value over `max_value_bytes` is `TooLarge` and leaves the old value.
pub fn value_size_limit(h: &dyn Harness) {
    let backend = open(
        h,
        Limits {
            max_value_bytes: 16,
            ..Limits::default()
        },
    );
    let t = tenant(&*backend, "value-size");
    t.set("k", &[7; 16]).unwrap();
    assert_too_large("17 bytes", t.set("k", &[8; 17]));
    assert_too_large("new key, 17 bytes", t.set("other", &[8; 17]));
    assert_eq!(value(&*t, "k"), [7; 16]);
    assert_eq!(t.get("other").unwrap(), None);
    clear(&*t);
}

/// The default limit: 1 MiB is accepted, one byte more is not.
pub fn default_value_size_limit_is_one_mib(h: &dyn Harness) {
    let backend = open(h, Limits::default());
    let t = tenant(&*backend, "one-mib");
    let big: Vec<u8> = (0..DEFAULT_MAX_VALUE_BYTES)
        .map(|i| (i % 251) as u8)
        .collect();
    t.set("big", &big).unwrap();
    assert_eq!(value(&*t, "big"), big);
    assert_too_large(
        "1 MiB + 1",
        t.set("big", &vec![1; DEFAULT_MAX_VALUE_BYTES + 1]),
    );
    assert_eq!(value(&*t, "big"), big);
    clear(&*t);
}

/// A stored value larger than any `set` accepts reads as `TooLarge` (not fetched whole, not
/// a crash); deleting it recovers.
pub fn stored_value_over_the_limit_is_too_large(h: &dyn Harness) {
    let backend = open(
        h,
        Limits {
            max_value_bytes: 16,
            ..Limits::default()
        },
    );
    let t = tenant(&*backend, "stored-too-large");
    t.set("k", b"small").unwrap();
    h.write_stored("stored-too-large", "k", &[0; 16 + OVERHEAD + 1]);
    assert_too_large("stored value", t.get("k"));
    // Exactly at the limit it is read (and, being garbage, does not open).
    h.write_stored("stored-too-large", "k", &[0; 16 + OVERHEAD]);
    assert_corrupt("garbage at the limit", t.get("k"));
    t.delete("k").unwrap();
    assert_eq!(t.get("k").unwrap(), None);
    clear(&*t);
}

/// A new key beyond `max_keys` is `TooLarge`; replacing an existing key is not; the limit is
/// per tenant.
pub fn key_count_limit(h: &dyn Harness) {
    let backend = open(
        h,
        Limits {
            max_keys: 3,
            ..Limits::default()
        },
    );
    let t = tenant(&*backend, "key-count");
    for k in ["a", "b", "c"] {
        t.set(k, b"v").unwrap();
    }
    assert_too_large("fourth key", t.set("d", b"v"));
    assert_eq!(t.get("d").unwrap(), None);
    t.set("a", b"replacing is fine").unwrap();
    t.delete("a").unwrap();
    t.set("d", b"v").unwrap();
    assert_eq!(t.list_keys("").unwrap(), ["b", "c", "d"]);
    let other = tenant(&*backend, "key-count-other");
    for k in ["a", "b", "c"] {
        other.set(k, b"v").unwrap();
    }
    clear(&*t);
    clear(&*other);
}

/// A value whose stored size (sealed) is `units` thousand bytes.
fn sized(units: usize) -> Vec<u8> {
    vec![0x5a; units * 1000 - OVERHEAD]
}

/// A tenant holds at most `max_tenant_bytes` stored bytes (values with their sealing
/// overhead): a new key or a growing replace past it is `QuotaExceeded`, naming the quota,
/// and writes nothing; a shrinking replace or a delete makes room; another tenant (and
/// another opening of the storage, as another process) counts the same.
pub fn tenant_byte_quota(h: &dyn Harness) {
    let limits = Limits {
        max_tenant_bytes: 3000,
        ..Limits::default()
    };
    let backend = open(h, limits);
    let t = tenant(&*backend, "byte-quota");
    for k in ["a", "b", "c"] {
        t.set(k, &sized(1)).unwrap();
    }
    assert_quota("a fourth value", "max_tenant_bytes", t.set("d", b"x"));
    assert_eq!(t.get("d").unwrap(), None);
    let mut grown = sized(1);
    grown.push(0);
    assert_quota("a growing replace", "max_tenant_bytes", t.set("a", &grown));
    assert_eq!(value(&*t, "a"), sized(1), "a refused write changes nothing");
    // As large as before, or smaller: always accepted.
    t.set("a", &sized(1)).unwrap();
    t.set("a", &[1; 500 - OVERHEAD]).unwrap();
    t.set("d", &[2; 500 - OVERHEAD]).unwrap();
    assert_quota("past the quota again", "max_tenant_bytes", t.set("e", b""));
    // Another process sees the same usage.
    let again = open(h, limits);
    let t2 = tenant(&*again, "byte-quota");
    assert_quota("another opening", "max_tenant_bytes", t2.set("e", b""));
    t2.delete("b").unwrap();
    t.set("e", &sized(1)).unwrap();
    // Other tenants have quotas of their own.
    let other = tenant(&*backend, "byte-quota-other");
    for k in ["a", "b", "c"] {
        other.set(k, &sized(1)).unwrap();
    }
    clear(&*t);
    clear(&*other);
}

/// Every tenant together holds at most `max_total_bytes`: writers of several tenants racing
/// (each through its own opening of the storage, as replicas or processes would) store
/// exactly as much as fits, the rest is `QuotaExceeded` naming the bound; a delete makes
/// room for another tenant. The storage holds nothing else during the check.
pub fn store_byte_bound_holds_under_concurrent_writers(h: &dyn Harness) {
    const FITS: usize = 10;
    let limits = Limits {
        max_total_bytes: FITS as u64 * 1000,
        ..Limits::default()
    };
    let stored = std::sync::atomic::AtomicUsize::new(0);
    // Opened here: a harness need not be shared across threads.
    let writers: Vec<_> = (0..4)
        .map(|w| tenant(&*open(h, limits), &format!("store-bound-{w}")))
        .collect();
    thread::scope(|s| {
        for t in writers {
            let stored = &stored;
            s.spawn(move || {
                for k in 0..6 {
                    match t.set(&format!("v{k}"), &sized(1)) {
                        Ok(()) => {
                            stored.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        Err(e) => assert_quota(
                            "past the store's bound",
                            "max_total_bytes",
                            Err::<(), _>(e),
                        ),
                    }
                }
            });
        }
    });
    assert_eq!(stored.into_inner(), FITS, "exactly what fits was stored");
    let backend = open(h, limits);
    let tenants: Vec<_> = (0..4)
        .map(|w| tenant(&*backend, &format!("store-bound-{w}")))
        .collect();
    let held: usize = tenants.iter().map(|t| t.list_keys("").unwrap().len()).sum();
    assert_eq!(held, FITS);
    let newcomer = tenant(&*backend, "store-bound-new");
    assert_quota("a new tenant", "max_total_bytes", newcomer.set("k", b"v"));
    let first = tenants
        .iter()
        .find(|t| !t.list_keys("").unwrap().is_empty())
        .unwrap();
    let key = first.list_keys("").unwrap().remove(0);
    first.delete(&key).unwrap();
    newcomer.set("k", b"v").unwrap();
    // Shrinking is accepted even at the bound.
    newcomer.set("k", b"").unwrap();
    for t in &tenants {
        clear(&**t);
    }
    clear(&*newcomer);
}

/// One tenant handle holds at most `max_held_locks` locks at once: one more is `TooLarge`
/// at once, whatever the timeout; another handle has its own budget; releasing frees one.
pub fn held_locks_limit(h: &dyn Harness) {
    let backend = open(
        h,
        Limits {
            max_held_locks: 2,
            ..Limits::default()
        },
    );
    let t = tenant(&*backend, "held-locks");
    let a = t.lock("a", Duration::ZERO).unwrap();
    let b = t.lock("b", Duration::ZERO).unwrap();
    let began = Instant::now();
    assert_too_large("third lock", t.lock("c", Duration::from_secs(30)));
    assert!(began.elapsed() < Duration::from_secs(5), "it waited");
    let clone = std::sync::Arc::clone(&t);
    assert_too_large(
        "third lock through a clone",
        clone.lock("c", Duration::ZERO),
    );
    let other_handle = tenant(&*backend, "held-locks");
    let c = other_handle.lock("c", Duration::ZERO).unwrap();
    drop(a);
    let d = t.lock("d", Duration::from_secs(10)).unwrap();
    drop((b, c, d));
}
