//! The backend contract as one suite that every [`SecretBackend`] runs (the file store in this
//! crate's tests, a database backend in its own): what the traits promise, checked through
//! the traits only. A backend's tests implement [`Harness`] (how to open it, and how to reach
//! its stored bytes behind its back) and expand [`crate::backend_contract_tests!`]
//! for one `#[test]` per check, or call [`run_all`].
//!
//! Built with the cargo feature `contract-tests` (a dev-dependency feature of the backends'
//! crates); it panics on the first broken promise, like any test.

use std::thread;
use std::time::{Duration, Instant};

use crate::file_format::OVERHEAD;
use crate::rotation::RotationReport;
use crate::{
    DEFAULT_MAX_VALUE_BYTES, Limits, MASTER_KEY_LEN, MasterKey, SecretBackend, SecretStoreError,
    TenantBackend,
};

/// A backend's test fixture: one storage (a directory, a database) the checks open as often
/// as they like.
pub trait Harness {
    /// The master key the storage's values are sealed under unless a check says otherwise.
    fn master_key(&self) -> [u8; MASTER_KEY_LEN];

    /// Opens the storage anew under `key` with `limits`: a separate backend value, as another
    /// host process would open it (it shares values and locks with the others).
    fn open_with(&self, key: &[u8; MASTER_KEY_LEN], limits: Limits) -> Box<dyn SecretBackend>;

    /// The sealed bytes stored for `key` of `tenant`, read behind the backend's back; `None`
    /// when nothing is stored.
    fn read_stored(&self, tenant: &str, key: &str) -> Option<Vec<u8>>;

    /// Stores `bytes` as the sealed value of `key` of `tenant` behind the backend's back, as
    /// anyone who can write to the storage could (the tenant has been used before).
    fn write_stored(&self, tenant: &str, key: &str, bytes: &[u8]);

    /// Runs the backend's master-key rotation from `old` to `new`, with `after_each` as in
    /// [`crate::rotation::rotate`].
    fn rotate(
        &self,
        old: &[u8; MASTER_KEY_LEN],
        new: &[u8; MASTER_KEY_LEN],
        after_each: &mut dyn FnMut(&str, &str) -> Result<(), SecretStoreError>,
    ) -> Result<RotationReport, SecretStoreError>;
}

/// A check of the contract.
pub type Check = fn(&dyn Harness);

/// Every check, by name, in the order [`run_all`] runs them.
pub const CHECKS: &[(&str, Check)] = &[
    ("round_trip", round_trip),
    (
        "replace_writes_a_fresh_sealed_value",
        replace_writes_a_fresh_sealed_value,
    ),
    ("absent_values_read_as_none", absent_values_read_as_none),
    ("delete_is_idempotent", delete_is_idempotent),
    ("list_keys_by_prefix_sorted", list_keys_by_prefix_sorted),
    (
        "invalid_tenant_ids_are_rejected",
        invalid_tenant_ids_are_rejected,
    ),
    (
        "invalid_keys_and_lock_names_are_rejected",
        invalid_keys_and_lock_names_are_rejected,
    ),
    ("value_size_limit", value_size_limit),
    (
        "default_value_size_limit_is_one_mib",
        default_value_size_limit_is_one_mib,
    ),
    (
        "stored_value_over_the_limit_is_too_large",
        stored_value_over_the_limit_is_too_large,
    ),
    ("key_count_limit", key_count_limit),
    ("tenant_byte_quota", tenant_byte_quota),
    (
        "store_byte_bound_holds_under_concurrent_writers",
        store_byte_bound_holds_under_concurrent_writers,
    ),
    ("held_locks_limit", held_locks_limit),
    ("tenants_are_isolated", tenants_are_isolated),
    ("damaged_values_are_corrupt", damaged_values_are_corrupt),
    (
        "lock_excludes_other_holders_in_one_process",
        lock_excludes_other_holders_in_one_process,
    ),
    ("lock_times_out", lock_times_out),
    ("lock_is_released_on_drop", lock_is_released_on_drop),
    (
        "concurrent_writers_never_expose_a_partial_value",
        concurrent_writers_never_expose_a_partial_value,
    ),
    (
        "derive_key_follows_the_master_key",
        derive_key_follows_the_master_key,
    ),
    (
        "rotation_re_encrypts_every_value",
        rotation_re_encrypts_every_value,
    ),
    (
        "interrupted_rotation_completes_when_rerun",
        interrupted_rotation_completes_when_rerun,
    ),
    (
        "rotation_refuses_values_under_neither_key",
        rotation_refuses_values_under_neither_key,
    ),
];

/// Runs every check against one harness, in order. Each check uses tenants of its own and
/// deletes what it wrote, so they can share one storage (which must start empty).
pub fn run_all(harness: &dyn Harness) {
    for (name, check) in CHECKS {
        let _announce = Announce(name);
        check(harness);
    }
}

/// Names the failing check when a check panics inside [`run_all`].
struct Announce(&'static str);

impl Drop for Announce {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("backend contract check `{}` failed", self.0);
        }
    }
}

/// One `#[test]` per contract check: `provider_secrets::backend_contract_tests!(expr);` where
/// `expr` makes a fresh [`Harness`] for each test.
#[macro_export]
macro_rules! backend_contract_tests {
    ($harness:expr) => {
        $crate::backend_contract_tests!(@each $harness;
            round_trip,
            replace_writes_a_fresh_sealed_value,
            absent_values_read_as_none,
            delete_is_idempotent,
            list_keys_by_prefix_sorted,
            invalid_tenant_ids_are_rejected,
            invalid_keys_and_lock_names_are_rejected,
            value_size_limit,
            default_value_size_limit_is_one_mib,
            stored_value_over_the_limit_is_too_large,
            key_count_limit,
            tenant_byte_quota,
            store_byte_bound_holds_under_concurrent_writers,
            held_locks_limit,
            tenants_are_isolated,
            damaged_values_are_corrupt,
            lock_excludes_other_holders_in_one_process,
            lock_times_out,
            lock_is_released_on_drop,
            concurrent_writers_never_expose_a_partial_value,
            derive_key_follows_the_master_key,
            rotation_re_encrypts_every_value,
            interrupted_rotation_completes_when_rerun,
            rotation_refuses_values_under_neither_key,
        );
    };
    (@each $harness:expr; $($check:ident),* $(,)?) => {
        $(
            #[test]
            fn $check() {
                let harness = $harness;
                $crate::contract::$check(&harness);
            }
        )*
    };
}

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// Opens the harness's storage under its own key.
fn open(h: &dyn Harness, limits: Limits) -> Box<dyn SecretBackend> {
    h.open_with(&h.master_key(), limits)
}

fn tenant(backend: &dyn SecretBackend, id: &str) -> std::sync::Arc<dyn TenantBackend> {
    backend
        .tenant(id)
        .unwrap_or_else(|e| panic!("tenant {id:?}: {e}"))
}

/// Deletes every key of `t` (each check leaves its tenants empty).
fn clear(t: &dyn TenantBackend) {
    for key in t.list_keys("").unwrap() {
        t.delete(&key).unwrap();
    }
    assert!(t.list_keys("").unwrap().is_empty());
}

fn value(t: &dyn TenantBackend, key: &str) -> Vec<u8> {
    t.get(key)
        .unwrap_or_else(|e| panic!("get {key:?}: {e}"))
        .unwrap_or_else(|| panic!("get {key:?}: absent"))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn assert_corrupt<T: std::fmt::Debug>(what: &str, r: Result<T, SecretStoreError>) {
    match r {
        Err(SecretStoreError::Corrupt(_)) => {}
        other => panic!("{what}: expected Corrupt, got {other:?}"),
    }
}

fn assert_too_large<T: std::fmt::Debug>(what: &str, r: Result<T, SecretStoreError>) {
    match r {
        Err(SecretStoreError::TooLarge(_)) => {}
        other => panic!("{what}: expected TooLarge, got {other:?}"),
    }
}

/// A refusal by a byte quota, whose message names the quota.
fn assert_quota<T: std::fmt::Debug>(what: &str, quota: &str, r: Result<T, SecretStoreError>) {
    match r {
        Err(SecretStoreError::QuotaExceeded(m)) => {
            assert!(m.contains(quota), "{what}: the message names {quota}: {m}");
        }
        other => panic!("{what}: expected QuotaExceeded, got {other:?}"),
    }
}

fn assert_lock_timeout<T: std::fmt::Debug>(what: &str, r: Result<T, SecretStoreError>) {
    match r {
        Err(SecretStoreError::LockTimeout(_)) => {}
        other => panic!("{what}: expected LockTimeout, got {other:?}"),
    }
}

/// A second key, different from the harness's.
fn other_key(h: &dyn Harness) -> [u8; MASTER_KEY_LEN] {
    let mut key = h.master_key();
    for (i, b) in key.iter_mut().enumerate() {
        *b ^= 0x5a ^ (i as u8);
    }
    key
}

// ---------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------
// Isolation and integrity
// ---------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------
// Locks
// ---------------------------------------------------------------------------------------

/// A held lock excludes another handle of the tenant and another opening of the storage;
/// other names and other tenants are independent, and values stay writable.
pub fn lock_excludes_other_holders_in_one_process(h: &dyn Harness) {
    let backend = open(h, Limits::default());
    let t = tenant(&*backend, "lock-one-process");
    let guard = t.lock("refresh", Duration::from_secs(1)).unwrap();
    assert_eq!(guard.name(), "refresh");
    assert_lock_timeout("same handle", t.lock("refresh", Duration::ZERO));
    let second_handle = tenant(&*backend, "lock-one-process");
    assert_lock_timeout(
        "second handle",
        second_handle.lock("refresh", Duration::ZERO),
    );
    let elsewhere = open(h, Limits::default());
    let there = tenant(&*elsewhere, "lock-one-process");
    assert_lock_timeout("second opening", there.lock("refresh", Duration::ZERO));

    let other_name = t.lock("models", Duration::ZERO).unwrap();
    let other_tenant = tenant(&*backend, "lock-one-process-other")
        .lock("refresh", Duration::ZERO)
        .unwrap();
    t.set("k", b"v").unwrap();
    drop(guard);
    let again = there.lock("refresh", Duration::from_secs(10)).unwrap();
    drop((again, other_name, other_tenant));
    clear(&*t);
}

/// Waiting for a held lock gives up with `LockTimeout` once the timeout has passed (and not
/// before); a zero timeout is one attempt.
pub fn lock_times_out(h: &dyn Harness) {
    let backend = open(h, Limits::default());
    let t = tenant(&*backend, "lock-timeout");
    let guard = t.lock("refresh", Duration::ZERO).unwrap();
    let other = tenant(&*backend, "lock-timeout");
    let began = Instant::now();
    assert_lock_timeout("300 ms", other.lock("refresh", Duration::from_millis(300)));
    let waited = began.elapsed();
    assert!(
        waited >= Duration::from_millis(300),
        "gave up after {waited:?}"
    );
    assert!(waited < Duration::from_secs(30), "waited {waited:?}");
    let began = Instant::now();
    assert_lock_timeout("zero", other.lock("refresh", Duration::ZERO));
    assert!(began.elapsed() < Duration::from_secs(10));
    drop(guard);
}

/// Dropping the guard releases the lock: at once for anyone in this process, and a thread
/// waiting for it gets it.
pub fn lock_is_released_on_drop(h: &dyn Harness) {
    let backend = open(h, Limits::default());
    let elsewhere = open(h, Limits::default());
    let t = tenant(&*backend, "lock-release");
    let there = tenant(&*elsewhere, "lock-release");
    for _ in 0..3 {
        let guard = t.lock("refresh", Duration::ZERO).unwrap();
        drop(guard);
        drop(there.lock("refresh", Duration::ZERO).unwrap());
    }
    let guard = t.lock("refresh", Duration::ZERO).unwrap();
    let waiter = {
        let there = std::sync::Arc::clone(&there);
        thread::spawn(move || there.lock("refresh", Duration::from_secs(60)).map(drop))
    };
    thread::sleep(Duration::from_millis(50));
    drop(guard);
    waiter.join().unwrap().unwrap();
}

// ---------------------------------------------------------------------------------------
// Concurrency
// ---------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------
// Master key
// ---------------------------------------------------------------------------------------

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

/// Cross-process checks (a lock held by another process, a holder killed mid-write): a test
/// re-runs its own test binary as a child that plays one part of it, chosen by an
/// environment variable, and talks to it over the child's stdin and stdout.
pub mod child {
    use std::ffi::OsStr;
    use std::io::{BufRead, BufReader, Read};
    use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};

    /// Re-runs this test binary for test `test_fn` of `module` alone (the caller's
    /// `module_path!()`), with `env` set and stdin, stdout and stderr piped.
    pub fn spawn(module: &str, test_fn: &str, env: &[(&str, &OsStr)]) -> Child {
        // module_path!() starts with the crate's name; libtest names tests without it.
        let module = module.split_once("::").map_or(module, |(_, rest)| rest);
        Command::new(std::env::current_exe().expect("the test binary"))
            .args(["--exact", &format!("{module}::{test_fn}"), "--nocapture"])
            .args(["--test-threads", "1"])
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("re-running the test binary")
    }

    /// Reads the child's stdout up to a line containing `marker`; fails with the child's
    /// output when it ends first.
    pub fn wait_for_marker(out: &mut BufReader<ChildStdout>, marker: &str, child: &mut Child) {
        let mut seen = String::new();
        loop {
            let mut line = String::new();
            if out.read_line(&mut line).expect("the child's stdout") == 0 {
                let (status, stderr) = finish(child);
                panic!("child ended ({status}) before {marker}:\n{seen}\n{stderr}");
            }
            if line.contains(marker) {
                return;
            }
            seen.push_str(&line);
        }
    }

    /// Waits for the child; its status and what it wrote (stdout not yet taken, then
    /// stderr).
    pub fn finish(child: &mut Child) -> (ExitStatus, String) {
        let mut text = String::new();
        if let Some(mut out) = child.stdout.take() {
            out.read_to_string(&mut text).expect("the child's stdout");
        }
        if let Some(mut err) = child.stderr.take() {
            err.read_to_string(&mut text).expect("the child's stderr");
        }
        (child.wait().expect("waiting for the child"), text)
    }
}
