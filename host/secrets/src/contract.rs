//! The backend contract as one suite that every [`SecretBackend`] runs (the file store in this
//! crate's tests, a database backend in its own): what the traits promise, checked through
//! the traits only. A backend's tests implement [`Harness`] (how to open it, and how to reach
//! its stored bytes behind its back) and expand [`crate::backend_contract_tests!`]
//! for one `#[test]` per check, or call [`run_all`].
//!
//! Built with the cargo feature `contract-tests` (a dev-dependency feature of the backends'
//! crates); it panics on the first broken promise, like any test.
//!
//! This file holds the harness, the list of checks and the helpers they share; the checks
//! live by concern in `contract/`: `values` (round trips, listing, names), `limits` (sizes,
//! counts, byte quotas, held locks), `integrity` (tenant isolation, damaged values, racing
//! writers), `locks`, `rotation` (the master key), and [`child`] (cross-process helpers).

use std::thread;
use std::time::{Duration, Instant};

use crate::file_format::OVERHEAD;
use crate::rotation::RotationReport;
use crate::{
    DEFAULT_MAX_VALUE_BYTES, Limits, MASTER_KEY_LEN, MasterKey, SecretBackend, SecretStoreError,
    TenantBackend,
};

mod integrity;
mod limits;
mod locks;
mod rotation;
mod values;

pub mod child;

pub use integrity::{
    concurrent_writers_never_expose_a_partial_value, damaged_values_are_corrupt,
    tenants_are_isolated,
};
pub use limits::{
    default_value_size_limit_is_one_mib, held_locks_limit, key_count_limit,
    store_byte_bound_holds_under_concurrent_writers, stored_value_over_the_limit_is_too_large,
    tenant_byte_quota, value_size_limit,
};
pub use locks::{
    lock_excludes_other_holders_in_one_process, lock_is_released_on_drop, lock_times_out,
};
pub use rotation::{
    derive_key_follows_the_master_key, interrupted_rotation_completes_when_rerun,
    rotation_re_encrypts_every_value, rotation_refuses_values_under_neither_key,
};
pub use values::{
    absent_values_read_as_none, delete_is_idempotent, invalid_keys_and_lock_names_are_rejected,
    invalid_tenant_ids_are_rejected, list_keys_by_prefix_sorted,
    replace_writes_a_fresh_sealed_value, round_trip,
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
