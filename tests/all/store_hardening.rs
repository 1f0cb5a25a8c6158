//! The secret store under abuse: lock exhaustion, oversized value files, a loose or missing
//! master key, host paths in errors, and logout over unreadable credentials.

use std::fs::{self, File};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use provider_runtime::bindings::types::ProviderError;
use provider_runtime::secrets::file_format::OVERHEAD;
use provider_runtime::secrets::{
    DEFAULT_MAX_HELD_LOCKS, DEFAULT_MAX_LOCK_NAMES, DEFAULT_MAX_TENANT_BYTES,
    DEFAULT_MAX_VALUE_BYTES, KeySource, SecretStore, SecretStoreError, StoreConfig,
};
use provider_runtime::{HostError, Session};

use crate::support;

const TENANT: &str = "tenant-1";

fn key_file(state: &Path) -> PathBuf {
    state.join("keyring").join("master.key")
}

fn open(state: &Path) -> SecretStore {
    SecretStore::open(StoreConfig::new(state, KeySource::File(key_file(state)))).unwrap()
}

fn open_with(state: &Path, adjust: impl FnOnce(&mut StoreConfig)) -> SecretStore {
    let mut config = StoreConfig::new(state, KeySource::File(key_file(state)));
    adjust(&mut config);
    SecretStore::open(config).unwrap()
}

fn tenant_dir(state: &Path, tenant: &str) -> PathBuf {
    state.join("tenants").join(tenant)
}

/// The user lock files of a tenant (the internal `.store.lock` left out).
fn lock_files(state: &Path, tenant: &str) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(tenant_dir(state, tenant).join("locks"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".lock") && !n.starts_with('.'))
        .collect();
    names.sort();
    names
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn too_large<T: std::fmt::Debug>(r: Result<T, SecretStoreError>) -> String {
    match r {
        Err(e @ SecretStoreError::TooLarge(_)) => e.to_string(),
        other => panic!("expected TooLarge, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// 1. Locks
// ---------------------------------------------------------------------------------------

#[test]
fn a_tenant_handle_holds_at_most_16_locks_at_once() {
    assert_eq!(DEFAULT_MAX_HELD_LOCKS, 16);
    let state = support::state_dir();
    let store = open(state.path());
    let t = store.tenant(TENANT).unwrap();
    let mut held: Vec<_> = (0..16)
        .map(|i| t.lock(&format!("lock-{i}"), Duration::ZERO).unwrap())
        .collect();
    // The 17th is refused at once, through the handle and through any clone of it.
    let began = Instant::now();
    let message = too_large(t.lock("lock-16", Duration::from_secs(30)));
    assert!(began.elapsed() < Duration::from_secs(5), "it waited");
    assert!(message.contains("16 locks at once"), "{message}");
    too_large(t.clone().lock("lock-16", Duration::ZERO));
    // The refusal left no file behind.
    assert_eq!(lock_files(state.path(), TENANT).len(), 16);
    // Releasing one makes room again.
    held.pop();
    let again = t.lock("lock-16", Duration::ZERO).unwrap();
    drop((held, again));
    // Every file went with its lock.
    assert!(lock_files(state.path(), TENANT).is_empty());
    drop(t.lock("lock-0", Duration::ZERO).unwrap());
}

#[test]
fn lock_files_exist_only_while_in_use() {
    let state = support::state_dir();
    let store = open(state.path());
    let t = store.tenant(TENANT).unwrap();
    for i in 0..2_000 {
        let name = format!("churn-{i}");
        let guard = t.lock(&name, Duration::ZERO).unwrap();
        assert_eq!(lock_files(state.path(), TENANT), [format!("{name}.lock")]);
        drop(guard);
    }
    assert!(lock_files(state.path(), TENANT).is_empty());
    // Values are unaffected, and their internal write lock stays.
    t.set("k", b"v").unwrap();
    assert!(
        tenant_dir(state.path(), TENANT)
            .join("locks/.store.lock")
            .exists()
    );
}

#[test]
fn lock_names_in_use_per_tenant_are_capped_at_64() {
    assert_eq!(DEFAULT_MAX_LOCK_NAMES, 64);
    let state = support::state_dir();
    // Four handles (as four processes would have) of 16 locks each: 64 names in use.
    let handles: Vec<_> = (0..4)
        .map(|_| open(state.path()).tenant(TENANT).unwrap())
        .collect();
    let held: Vec<_> = handles
        .iter()
        .enumerate()
        .flat_map(|(h, t)| {
            (0..16).map(move |i| t.lock(&format!("h{h}-{i}"), Duration::ZERO).unwrap())
        })
        .collect();
    assert_eq!(lock_files(state.path(), TENANT).len(), 64);
    let fifth = open(state.path()).tenant(TENANT).unwrap();
    let message = too_large(fifth.lock("one-more", Duration::ZERO));
    assert!(message.contains("64"), "{message}");
    // A name in use is still only waited for.
    assert!(matches!(
        fifth.lock("h0-0", Duration::ZERO),
        Err(SecretStoreError::LockTimeout(_))
    ));
    // Other tenants have their own names.
    drop(
        open(state.path())
            .tenant("other")
            .unwrap()
            .lock("one-more", Duration::ZERO)
            .unwrap(),
    );
    assert_eq!(lock_files(state.path(), TENANT).len(), 64);
    drop(held);
    drop(fifth.lock("one-more", Duration::ZERO).unwrap());
    assert!(lock_files(state.path(), TENANT).is_empty());
}

#[test]
fn lock_files_left_behind_are_swept() {
    let state = support::state_dir();
    let store = open(state.path());
    let t = store.tenant(TENANT).unwrap();
    let locks = tenant_dir(state.path(), TENANT).join("locks");
    // What an earlier version (which never removed them) or killed holders left.
    for i in 0..5_000 {
        File::create(locks.join(format!("left-{i}.lock"))).unwrap();
    }
    // One of them is in use by another handle: it survives, and stays exclusive.
    let other = open(state.path()).tenant(TENANT).unwrap();
    let in_use = other.lock("left-7", Duration::ZERO).unwrap();
    // A new name sweeps the rest away.
    let fresh = t.lock("fresh", Duration::ZERO).unwrap();
    assert_eq!(
        lock_files(state.path(), TENANT),
        ["fresh.lock", "left-7.lock"]
    );
    assert!(matches!(
        t.lock("left-7", Duration::ZERO),
        Err(SecretStoreError::LockTimeout(_))
    ));
    drop((in_use, fresh));
    drop(t.lock("left-7", Duration::ZERO).unwrap());
    assert!(lock_files(state.path(), TENANT).is_empty());
}

/// Removing lock files (on release, and by sweeps) must never let two holders in at once:
/// a waiter that gets the `flock` of an unlinked file has to start over.
#[test]
fn removing_lock_files_keeps_mutual_exclusion() {
    let state = support::state_dir();
    open(state.path()).tenant(TENANT).unwrap();
    let inside = Arc::new(AtomicUsize::new(0));
    let overlaps = Arc::new(AtomicUsize::new(0));
    let entered = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let t = open(state.path()).tenant(TENANT).unwrap();
            let (inside, overlaps, entered) = (inside.clone(), overlaps.clone(), entered.clone());
            thread::spawn(move || {
                for _ in 0..150 {
                    let guard = t.lock("shared", Duration::from_secs(60)).unwrap();
                    if inside.fetch_add(1, Ordering::SeqCst) != 0 {
                        overlaps.fetch_add(1, Ordering::SeqCst);
                    }
                    entered.fetch_add(1, Ordering::SeqCst);
                    thread::yield_now();
                    thread::sleep(Duration::from_micros(200));
                    inside.fetch_sub(1, Ordering::SeqCst);
                    drop(guard);
                }
            })
        })
        .collect();
    // Meanwhile, a handle with room for two lock names keeps leaving stale files and
    // taking new names, so that sweeps run (and try `shared.lock`) all the time.
    let sweeper = {
        let t = open_with(state.path(), |c| c.max_lock_names = 2)
            .tenant(TENANT)
            .unwrap();
        let locks = tenant_dir(state.path(), TENANT).join("locks");
        let stop = stop.clone();
        thread::spawn(move || {
            let mut sweeps = 0u32;
            while !stop.load(Ordering::SeqCst) {
                File::create(locks.join("stale.lock")).unwrap();
                match t.lock("other", Duration::ZERO) {
                    Ok(guard) => drop(guard),
                    Err(SecretStoreError::TooLarge(_) | SecretStoreError::LockTimeout(_)) => {}
                    Err(e) => panic!("{e:?}"),
                }
                sweeps += 1;
            }
            sweeps
        })
    };
    for w in workers {
        w.join().unwrap();
    }
    stop.store(true, Ordering::SeqCst);
    assert!(sweeper.join().unwrap() > 0);
    assert_eq!(entered.load(Ordering::SeqCst), 4 * 150);
    assert_eq!(
        overlaps.load(Ordering::SeqCst),
        0,
        "two holders of one lock at once"
    );
}

// ---------------------------------------------------------------------------------------
// 2. Oversized value files
// ---------------------------------------------------------------------------------------

#[test]
fn an_oversized_value_file_is_refused_unread() {
    let state = support::state_dir();
    let store = open(state.path());
    let t = store.tenant(TENANT).unwrap();
    t.set("credentials", b"{}").unwrap();
    let file = tenant_dir(state.path(), TENANT).join("secrets/credentials.sec");
    // Sparse: 256 MiB that take no disk; reading them would take the memory.
    File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(256 << 20)
        .unwrap();
    let began = Instant::now();
    let message = too_large(t.get("credentials"));
    assert!(began.elapsed() < Duration::from_secs(2), "it was read");
    assert!(message.contains(&(256u64 << 20).to_string()), "{message}");
    // The limit is what `set` accepts plus the format's overhead: a file just past it is
    // refused, one at it is read (and, being garbage, corrupt).
    let overhead = 45;
    let at_limit = (DEFAULT_MAX_VALUE_BYTES + overhead) as u64;
    File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(at_limit + 1)
        .unwrap();
    too_large(t.get("credentials"));
    File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(at_limit)
        .unwrap();
    assert!(matches!(
        t.get("credentials"),
        Err(SecretStoreError::Corrupt(_))
    ));
    // It can be deleted, and the key written again.
    t.delete("credentials").unwrap();
    t.set("credentials", b"{}").unwrap();
    assert_eq!(t.get("credentials").unwrap().unwrap(), b"{}");
}

// ---------------------------------------------------------------------------------------
// 3. Master key
// ---------------------------------------------------------------------------------------

#[test]
fn a_loose_keyring_is_tightened_on_every_open() {
    let state = support::state_dir();
    let keyring = state.path().join("keyring");
    // Created loose before the first start.
    fs::create_dir(&keyring).unwrap();
    fs::set_permissions(&keyring, fs::Permissions::from_mode(0o777)).unwrap();
    open(state.path())
        .tenant(TENANT)
        .unwrap()
        .set("k", b"v")
        .unwrap();
    assert_eq!(mode(&keyring), 0o700);
    assert_eq!(mode(&key_file(state.path())), 0o600);
    // Loosened later: tightened again at the next open, and the key still works.
    for loose in [0o777, 0o755, 0o750, 0o701] {
        fs::set_permissions(&keyring, fs::Permissions::from_mode(loose)).unwrap();
        let store = open(state.path());
        assert_eq!(mode(&keyring), 0o700, "{loose:o}");
        assert_eq!(
            store.tenant(TENANT).unwrap().get("k").unwrap().unwrap(),
            b"v"
        );
    }
    // A key file in a shared directory others may write to is refused (they could swap
    // the key); the directory is not the store's to change.
    let shared = state.path().join("shared");
    fs::create_dir(&shared).unwrap();
    fs::write(shared.join("notes.txt"), b"").unwrap();
    fs::copy(key_file(state.path()), shared.join("master.key")).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o777)).unwrap();
    let err = SecretStore::open(StoreConfig::new(
        state.path(),
        KeySource::File(shared.join("master.key")),
    ))
    .unwrap_err();
    assert!(matches!(err, SecretStoreError::MasterKey(_)), "{err:?}");
    assert!(
        err.to_string().contains("writable by group or others"),
        "{err}"
    );
    assert_eq!(mode(&shared), 0o777);
    // Readable only: left alone and used.
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o755)).unwrap();
    SecretStore::open(StoreConfig::new(
        state.path(),
        KeySource::File(shared.join("master.key")),
    ))
    .unwrap();
    assert_eq!(mode(&shared), 0o755);
}

#[test]
fn a_missing_master_key_is_not_replaced_while_values_exist() {
    let state = support::state_dir();
    open(state.path())
        .tenant(TENANT)
        .unwrap()
        .set("credentials", b"v")
        .unwrap();
    let key = key_file(state.path());
    let saved = fs::read(&key).unwrap();
    fs::remove_file(&key).unwrap();

    for _ in 0..2 {
        let err = SecretStore::open(StoreConfig::new(state.path(), KeySource::File(key.clone())))
            .unwrap_err();
        assert!(matches!(err, SecretStoreError::MasterKey(_)), "{err:?}");
        let message = err.to_string();
        for needle in [
            "missing",
            "PROVIDER_HOST_KEY",
            "Restore",
            &key.display().to_string(),
        ] {
            assert!(message.contains(needle), "{needle:?} not in {message}");
        }
        // No new key was made in its place.
        assert!(!key.exists());
        assert_eq!(fs::read_dir(key.parent().unwrap()).unwrap().count(), 0);
    }
    // The runtime refuses to start the same way.
    let mut options =
        provider_runtime::RuntimeOptions::new(env!("PROVIDER_PLUGIN_COMPONENT"), state.path());
    options.key = KeySource::File(key.clone());
    let err = provider_runtime::Runtime::new(options)
        .err()
        .expect("refused");
    assert!(err.to_string().contains("missing"), "{err}");

    // Restored: everything reads again.
    fs::write(&key, &saved).unwrap();
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
    let store = open(state.path());
    assert_eq!(
        store
            .tenant(TENANT)
            .unwrap()
            .get("credentials")
            .unwrap()
            .unwrap(),
        b"v"
    );
    // A store without values (a first start) still makes its key.
    let fresh = support::state_dir();
    open(fresh.path());
    assert!(key_file(fresh.path()).exists());
}

// ---------------------------------------------------------------------------------------
// Disk: byte quotas (issue 23, item 5)
// ---------------------------------------------------------------------------------------

/// The stored bytes (regular files) under a tenant's `secrets` directory.
fn disk_bytes(state: &Path, tenant: &str) -> u64 {
    fs::read_dir(tenant_dir(state, tenant).join("secrets"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

fn quota_exceeded<T: std::fmt::Debug>(r: Result<T, SecretStoreError>) -> SecretStoreError {
    match r {
        Err(e @ SecretStoreError::QuotaExceeded(_)) => e,
        other => panic!("expected QuotaExceeded, got {other:?}"),
    }
}

/// Before the quota, one tenant could fill 1 GiB (1,024 values of 1 MiB). Now it stops at
/// its default 16 MiB, with an error naming the quota and no host path.
#[test]
fn a_tenant_fills_at_most_its_default_quota_of_16_mib() {
    let state = support::state_dir();
    let t = open(state.path()).tenant(TENANT).unwrap();
    let value = vec![7u8; DEFAULT_MAX_VALUE_BYTES];
    let mut stored = 0;
    let err = loop {
        match t.set(&format!("v{stored}"), &value) {
            Ok(()) => stored += 1,
            Err(e) => break e,
        }
        assert!(stored <= 16, "the quota did not stop the tenant");
    };
    let err = quota_exceeded(Err::<(), _>(err));
    // 15 values of 1 MiB and their sealing overhead fit in 16 MiB; a 16th does not.
    assert_eq!(stored, 15);
    assert_eq!(DEFAULT_MAX_TENANT_BYTES, 16 << 20);
    assert!(disk_bytes(state.path(), TENANT) <= DEFAULT_MAX_TENANT_BYTES);
    let guest = err.guest_message();
    assert!(
        guest.contains("max_tenant_bytes") && guest.contains(&(16u64 << 20).to_string()),
        "{guest}"
    );
    assert!(!guest.contains('/'), "{guest}");
    // What is left is exactly usable, and not a byte more.
    let stored_bytes = 15 * (DEFAULT_MAX_VALUE_BYTES + OVERHEAD) as u64;
    let rest = (DEFAULT_MAX_TENANT_BYTES - stored_bytes) as usize - OVERHEAD;
    t.set("rest", &vec![1; rest]).unwrap();
    quota_exceeded(t.set("one-more", b""));
    // Shrinking is always accepted, and makes room.
    t.set("v0", b"shrunk").unwrap();
    t.set("one-more", b"").unwrap();
}

/// The store as a whole is bounded too (`max_total_bytes`, 1 GiB by default): tenants that
/// each stay within their quota still cannot fill the disk together, in this process or
/// another opening the same state directory.
#[test]
fn the_store_is_bounded_across_tenants_and_processes() {
    let state = support::state_dir();
    let bound = |c: &mut StoreConfig| c.max_total_bytes = 40 << 20;
    let store = open_with(state.path(), bound);
    let value = vec![7u8; DEFAULT_MAX_VALUE_BYTES];
    let fill = |t: &provider_runtime::secrets::TenantSecrets| {
        let mut stored = 0;
        loop {
            match t.set(&format!("v{stored}"), &value) {
                Ok(()) => stored += 1,
                Err(e) => break (stored, e),
            }
        }
    };
    let (a, b) = (store.tenant("a").unwrap(), store.tenant("b").unwrap());
    assert_eq!(fill(&a).0, 15);
    assert_eq!(fill(&b).0, 15);
    // Another process (another opening) counts what the first wrote.
    let other = open_with(state.path(), bound);
    let c = other.tenant("c").unwrap();
    let (stored, err) = fill(&c);
    assert_eq!(
        stored, 9,
        "40 MiB hold 39 values of 1 MiB and their overhead"
    );
    let err = quota_exceeded(Err::<(), _>(err));
    let guest = err.guest_message();
    assert!(guest.contains("max_total_bytes"), "{guest}");
    let total: u64 = ["a", "b", "c"]
        .iter()
        .map(|t| disk_bytes(state.path(), t))
        .sum();
    assert!(total <= 40 << 20, "{total}");
    // A delete anywhere makes room, once; the first process sees both.
    b.delete("v0").unwrap();
    c.set("v9", &value).unwrap();
    quota_exceeded(store.tenant("d").unwrap().set("k", &value));
}

// ---------------------------------------------------------------------------------------
// 4 and 5. Through the plugin: no host paths in its errors; logout always cleans up
// ---------------------------------------------------------------------------------------

async fn plugin_session(runtime: &provider_runtime::Runtime, tenant: &str) -> Session {
    runtime
        .session(
            tenant,
            &support::config("https://auth.x.ai", "https://api.x.ai/v1"),
        )
        .await
        .unwrap()
}

/// The storage error the plugin reports, checked to name no host path.
fn storage_message(state: &Path, what: &str, err: HostError) -> String {
    let message = match err {
        HostError::Provider(ProviderError::Storage(m)) => m,
        other => panic!("{what}: expected a storage error, got {other:?}"),
    };
    let root = state.display().to_string();
    assert!(!message.contains(&root), "{what}: host path in {message:?}");
    assert!(!message.contains('/'), "{what}: a path in {message:?}");
    message
}

#[tokio::test]
async fn storage_errors_reach_the_plugin_without_host_paths() {
    let state = support::state_dir();
    let root = state.path();
    let runtime = support::runtime(root);
    let secrets = |t: &str| tenant_dir(root, t).join("secrets");

    // Corrupt credentials.
    let mut s = plugin_session(&runtime, "corrupt").await;
    fs::write(secrets("corrupt").join("credentials.sec"), b"garbage").unwrap();
    let m = storage_message(root, "corrupt", s.status().await.unwrap_err());
    assert!(m.contains("corrupt"), "{m}");

    // Credentials over the size limit.
    let mut s = plugin_session(&runtime, "huge").await;
    File::create(secrets("huge").join("credentials.sec"))
        .unwrap()
        .set_len(256 << 20)
        .unwrap();
    let m = storage_message(root, "too large", s.status().await.unwrap_err());
    assert!(m.contains("too large"), "{m}");

    // Not a file.
    let mut s = plugin_session(&runtime, "dir").await;
    fs::create_dir(secrets("dir").join("credentials.sec")).unwrap();
    storage_message(root, "not a file", s.status().await.unwrap_err());

    // I/O: the secrets directory replaced by a file behind the host's back.
    let mut s = plugin_session(&runtime, "io").await;
    fs::remove_dir_all(secrets("io")).unwrap();
    fs::write(secrets("io"), b"").unwrap();
    let m = storage_message(root, "io: get", s.status().await.unwrap_err());
    assert!(m.contains("Not a directory"), "{m}");

    // I/O while locking: the locks directory replaced likewise.
    let mut s = plugin_session(&runtime, "locks").await;
    let locks = tenant_dir(root, "locks").join("locks");
    fs::remove_dir_all(&locks).unwrap();
    fs::write(&locks, b"").unwrap();
    let m = storage_message(root, "io: lock", s.logout().await.unwrap_err());
    assert!(m.contains("Not a directory"), "{m}");
}

#[tokio::test]
async fn logout_deletes_unreadable_credentials() {
    let state = support::state_dir();
    let root = state.path();
    let runtime = support::runtime(root);
    for (tenant, size) in [("corrupt", 7u64), ("huge", 256 << 20)] {
        let mut s = plugin_session(&runtime, tenant).await;
        let file = tenant_dir(root, tenant).join("secrets/credentials.sec");
        File::create(&file).unwrap().set_len(size).unwrap();
        // Unreadable: status fails, logout still cleans up (nothing to revoke with).
        s.status().await.unwrap_err();
        let report = s.logout().await.unwrap();
        assert!(
            report.was_connected && !report.revoked,
            "{tenant}: {report:?}"
        );
        assert!(!file.exists(), "{tenant}");
        let report = s.logout().await.unwrap();
        assert!(!report.was_connected, "{tenant}");
        assert!(!s.status().await.unwrap().connected, "{tenant}");
    }
}
