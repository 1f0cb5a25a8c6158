//! Tests of the secret store. The cross-process tests re-run this test binary as a child
//! process (`--exact <this test> --nocapture`) with [`CHILD_ROLE`] set; the test function
//! then plays the child's part instead of the parent's.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout};

use crate::contract::child::{finish, wait_for_marker};
use std::thread;
use std::time::{Duration, SystemTime};

use tempfile::TempDir;

use super::file_format::{self, MAGIC, OVERHEAD, VERSION};
use super::key::parse_key_text;
use super::*;

/// Tells a re-run test binary which child part to play.
const CHILD_ROLE: &str = "PROVIDER_HOST_SECRETS_TEST_CHILD";
/// The child's state directory.
const CHILD_STATE: &str = "PROVIDER_HOST_SECRETS_TEST_STATE";
/// The child's key file.
const CHILD_KEY_FILE: &str = "PROVIDER_HOST_SECRETS_TEST_KEY_FILE";

const TENANT: &str = "tenant-1";

struct Fixture {
    _dir: TempDir,
    root: PathBuf,
    state: PathBuf,
    key_file: PathBuf,
    store: SecretStore,
}

fn fixture() -> Fixture {
    fixture_with(|_| {})
}

fn fixture_with(adjust: impl FnOnce(&mut StoreConfig)) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let state = root.join("state");
    let key_file = root.join("keys").join("master.key");
    let mut config = StoreConfig::new(&state, KeySource::File(key_file.clone()));
    adjust(&mut config);
    let store = SecretStore::open(config).unwrap();
    Fixture {
        _dir: dir,
        root,
        state,
        key_file,
        store,
    }
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o777
}

fn tenant_dir(state: &Path, tenant: &str) -> PathBuf {
    state.join("tenants").join(tenant)
}

fn secrets_dir(state: &Path, tenant: &str) -> PathBuf {
    tenant_dir(state, tenant).join("secrets")
}

fn locks_dir(state: &Path, tenant: &str) -> PathBuf {
    tenant_dir(state, tenant).join("locks")
}

/// Every regular file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn assert_corrupt(result: Result<Option<Vec<u8>>, SecretStoreError>) {
    match result {
        Err(SecretStoreError::Corrupt(_)) => {}
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------

#[test]
fn no_plaintext_on_disk() {
    let fx = fixture();
    let t = fx.store.tenant(TENANT).unwrap();
    let value = b"PLAINTEXT-MARKER-refresh-token-0123456789";
    t.set("oauth.refresh_token", value).unwrap();
    t.set("oauth.refresh_token", value).unwrap();

    let path = secrets_dir(&fx.state, TENANT).join("oauth.refresh_token.sec");
    let raw = fs::read(&path).unwrap();
    assert_eq!(&raw[..4], &MAGIC);
    assert_eq!(raw[4], VERSION);
    assert_eq!(raw.len(), value.len() + OVERHEAD);
    for file in files_under(&fx.root) {
        let bytes = fs::read(&file).unwrap();
        assert!(
            !contains(&bytes, value),
            "plaintext found in {}",
            file.display()
        );
        assert!(
            !contains(&bytes, &value[..16]),
            "plaintext prefix in {}",
            file.display()
        );
    }
}

// ---------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------

// The contract-level checks of names (every call, every rule) are in `contract`; these add
// what is particular to files: a refused name creates nothing on disk.

#[test]
fn invalid_names_create_nothing_on_disk() {
    let fx = fixture();
    for bad in ["../x", "a/b", ".hidden", "..", "/abs"] {
        assert!(matches!(
            fx.store.tenant(bad),
            Err(SecretStoreError::InvalidTenant(_))
        ));
    }
    assert_eq!(names_in(&fx.state), ["tenants"]);
    assert!(names_in(&fx.state.join("tenants")).is_empty());

    let t = fx.store.tenant(TENANT).unwrap();
    for bad in ["../x", "a/b", ".hidden", "..", "/abs", "Upper"] {
        assert!(t.set(bad, b"v").is_err());
        assert!(t.lock(bad, Duration::ZERO).is_err());
        assert!(t.delete(bad).is_err());
    }
    assert!(
        files_under(&fx.state).is_empty(),
        "{:?}",
        files_under(&fx.state)
    );
}

// ---------------------------------------------------------------------------------------
// The backend contract
// ---------------------------------------------------------------------------------------

/// The file store as the contract suite sees it: one state directory; every opening gets its
/// key from a key file of its own holding the key it is asked for.
struct FileHarness {
    _dir: TempDir,
    state: PathBuf,
    keys: PathBuf,
    opened: std::sync::atomic::AtomicUsize,
}

/// The master key of the contract suite's file store.
const HARNESS_KEY: [u8; MASTER_KEY_LEN] = [0x42; MASTER_KEY_LEN];

fn file_harness() -> FileHarness {
    let dir = tempfile::tempdir().unwrap();
    FileHarness {
        state: dir.path().join("state"),
        keys: dir.path().join("keys"),
        _dir: dir,
        opened: Default::default(),
    }
}

impl FileHarness {
    /// A new key file (in a directory of its own) holding `key`.
    fn key_file(&self, key: &[u8; MASTER_KEY_LEN]) -> PathBuf {
        let n = self
            .opened
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = self.keys.join(n.to_string());
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        let path = dir.join("master.key");
        fs::write(&path, key).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        path
    }
}

impl contract::Harness for FileHarness {
    fn master_key(&self) -> [u8; MASTER_KEY_LEN] {
        HARNESS_KEY
    }

    fn open_with(&self, key: &[u8; MASTER_KEY_LEN], limits: Limits) -> Box<dyn SecretBackend> {
        let config =
            StoreConfig::new(&self.state, KeySource::File(self.key_file(key))).with_limits(limits);
        Box::new(SecretStore::open(config).unwrap())
    }

    fn read_stored(&self, tenant: &str, key: &str) -> Option<Vec<u8>> {
        fs::read(secrets_dir(&self.state, tenant).join(format!("{key}.sec"))).ok()
    }

    fn write_stored(&self, tenant: &str, key: &str, bytes: &[u8]) {
        fs::write(
            secrets_dir(&self.state, tenant).join(format!("{key}.sec")),
            bytes,
        )
        .unwrap();
    }

    fn rotate(
        &self,
        old: &[u8; MASTER_KEY_LEN],
        new: &[u8; MASTER_KEY_LEN],
        after_each: &mut dyn FnMut(&str, &str) -> Result<(), SecretStoreError>,
    ) -> Result<RotationReport, SecretStoreError> {
        rotate_master_key(
            &self.state,
            &KeySource::File(self.key_file(old)),
            &MasterKey::from_bytes(*new),
            after_each,
        )
    }
}

mod contract_suite {
    crate::backend_contract_tests!(super::file_harness());

    #[test]
    fn run_all_passes_on_one_store() {
        crate::contract::run_all(&super::file_harness());
    }
}

// ---------------------------------------------------------------------------------------
// Rotation (the file store's part: its key file)
// ---------------------------------------------------------------------------------------

#[test]
fn rotation_replaces_the_key_file_only_once_every_value_is_rotated() {
    let fx = fixture();
    let t = fx.store.tenant(TENANT).unwrap();
    for k in ["a", "b", "c"] {
        t.set(k, k.as_bytes()).unwrap();
    }
    let old_bytes = fs::read(&fx.key_file).unwrap();
    let new = MasterKey::from_bytes([0x17; MASTER_KEY_LEN]);
    let source = KeySource::File(fx.key_file.clone());

    // Interrupted after one value: the key file still holds the old key.
    let err = rotate_master_key(&fx.state, &source, &new, &mut |_, _| {
        Err(SecretStoreError::Unavailable("stop".into()))
    })
    .unwrap_err();
    assert!(matches!(err, SecretStoreError::Unavailable(_)), "{err:?}");
    assert_eq!(fs::read(&fx.key_file).unwrap(), old_bytes);

    let report = rotate_master_key(&fx.state, &source, &new, &mut |_, _| Ok(())).unwrap();
    assert_eq!((report.rotated, report.already_new), (2, 1), "{report:?}");
    assert_eq!(
        report.key_file_replaced.as_deref(),
        Some(fx.key_file.as_path())
    );
    assert_eq!(fs::read(&fx.key_file).unwrap(), [0x17; MASTER_KEY_LEN]);
    assert_eq!(mode(&fx.key_file), 0o600);
    assert_eq!(names_in(fx.key_file.parent().unwrap()), ["master.key"]);

    // The store opened from the same key file reads everything; a rerun from it (the key
    // file now holds the new key) changes nothing.
    let reopened = SecretStore::open(StoreConfig::new(&fx.state, source.clone())).unwrap();
    let t = reopened.tenant(TENANT).unwrap();
    for k in ["a", "b", "c"] {
        assert_eq!(t.get(k).unwrap().unwrap(), k.as_bytes());
    }
    let again = rotate_master_key(&fx.state, &source, &new, &mut |_, _| Ok(())).unwrap();
    assert_eq!((again.rotated, again.already_new), (0, 3), "{again:?}");
    // The old store (old key in memory) can no longer read them.
    assert_corrupt(fx.store.tenant(TENANT).unwrap().get("a"));
}

#[test]
fn rotation_never_creates_a_key_file() {
    let fx = fixture();
    fx.store.tenant(TENANT).unwrap().set("k", b"v").unwrap();
    let missing = fx.root.join("nowhere").join("master.key");
    let new = MasterKey::from_bytes([1; MASTER_KEY_LEN]);
    let err = rotate_master_key(
        &fx.state,
        &KeySource::File(missing.clone()),
        &new,
        &mut |_, _| Ok(()),
    )
    .unwrap_err();
    assert!(matches!(err, SecretStoreError::MasterKey(_)), "{err:?}");
    assert!(!missing.exists());
}

// ---------------------------------------------------------------------------------------
// Derived keys
// ---------------------------------------------------------------------------------------

#[test]
fn derived_keys_are_stable_across_versions() {
    // A known answer: a change here silently invalidates every compile cache (and any other
    // key derived from the master key) of every deployment.
    let master = MasterKey::from_bytes([7; MASTER_KEY_LEN]);
    assert_eq!(hex(&master.derive_key(b"compile-cache")), DERIVED_KAT);
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("keys").join("master.key");
    fs::create_dir_all(key_file.parent().unwrap()).unwrap();
    fs::write(&key_file, [7; MASTER_KEY_LEN]).unwrap();
    fs::set_permissions(&key_file, fs::Permissions::from_mode(0o600)).unwrap();
    let store = SecretStore::open(StoreConfig::new(
        dir.path().join("state"),
        KeySource::File(key_file),
    ))
    .unwrap();
    assert_eq!(hex(&store.derive_key(b"compile-cache")), DERIVED_KAT);
}

/// `derive_key(b"compile-cache")` under the master key `[7; 32]`.
const DERIVED_KAT: &str = "50a0aea925896086e261548a80c19c2fb92218c73bf009a328cea5ca7a2bc854";

#[test]
fn master_key_from_a_named_variable_in_a_child() {
    const TEST: &str = "master_key_from_a_named_variable_in_a_child";
    if let Ok(role) = std::env::var(CHILD_ROLE) {
        assert_eq!(role, "named-var");
        let key = MasterKey::from_env_var("PROVIDER_HOST_TEST_NEW_KEY").unwrap();
        assert_eq!(hex(&key.derive_key(b"compile-cache")), DERIVED_KAT);
        let Err(err) = MasterKey::from_env_var("PROVIDER_HOST_TEST_BAD_KEY") else {
            panic!("a bad key was accepted");
        };
        let shown = err.to_string();
        assert!(shown.contains("PROVIDER_HOST_TEST_BAD_KEY"), "{shown}");
        assert!(!shown.contains(KEY_ENV_VAR), "{shown}");
        assert!(!shown.contains("not-a-key"), "{shown}");
        assert!(MasterKey::from_env_var("PROVIDER_HOST_TEST_UNSET_KEY").is_err());
        println!("CHILD-OK");
        return;
    }
    let fx = fixture();
    let mut child = spawn_child(
        TEST,
        "named-var",
        &fx,
        &[
            ("PROVIDER_HOST_TEST_NEW_KEY", &hex(&[7; MASTER_KEY_LEN])),
            ("PROVIDER_HOST_TEST_BAD_KEY", "not-a-key-at-all"),
        ],
    );
    drop(child.stdin.take());
    let (status, output) = finish(&mut child);
    assert!(status.success(), "child failed:\n{output}");
    assert!(output.contains("CHILD-OK"), "{output}");
}

// ---------------------------------------------------------------------------------------
// Permissions and files
// ---------------------------------------------------------------------------------------

#[test]
fn files_are_0600_and_directories_0700() {
    let fx = fixture();
    let t = fx.store.tenant(TENANT).unwrap();
    t.set("k", b"v").unwrap();
    let guard = t.lock("refresh", Duration::ZERO).unwrap();

    for dir in [
        fx.state.clone(),
        fx.state.join("tenants"),
        tenant_dir(&fx.state, TENANT),
        secrets_dir(&fx.state, TENANT),
        locks_dir(&fx.state, TENANT),
        fx.key_file.parent().unwrap().to_path_buf(),
    ] {
        assert_eq!(mode(&dir), 0o700, "{}", dir.display());
    }
    for file in [
        secrets_dir(&fx.state, TENANT).join("k.sec"),
        locks_dir(&fx.state, TENANT).join("refresh.lock"),
        locks_dir(&fx.state, TENANT).join(".store.lock"),
        fx.key_file.clone(),
    ] {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    drop(guard);
}

#[test]
fn loose_directories_are_tightened() {
    let fx = fixture();
    fx.store.tenant(TENANT).unwrap();
    let dirs = [
        fx.state.join("tenants"),
        tenant_dir(&fx.state, TENANT),
        secrets_dir(&fx.state, TENANT),
        locks_dir(&fx.state, TENANT),
    ];
    for dir in &dirs {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    }
    fx.store.tenant(TENANT).unwrap();
    for dir in &dirs {
        assert_eq!(mode(dir), 0o700, "{}", dir.display());
    }
}

#[test]
fn a_symlinked_secrets_dir_is_refused() {
    let fx = fixture();
    let elsewhere = fx.root.join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    fs::create_dir_all(tenant_dir(&fx.state, "evil")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, secrets_dir(&fx.state, "evil")).unwrap();
    let err = fx.store.tenant("evil").unwrap_err();
    assert!(matches!(err, SecretStoreError::Io { .. }), "{err:?}");
}

#[test]
fn atomic_replace_leaves_no_temp_files() {
    let fx = fixture();
    let t = fx.store.tenant(TENANT).unwrap();
    for i in 0..20u8 {
        t.set("k", &[i; 100]).unwrap();
        t.set(&format!("k{}", i % 3), &[i]).unwrap();
    }
    assert_eq!(
        names_in(&secrets_dir(&fx.state, TENANT)),
        ["k.sec", "k0.sec", "k1.sec", "k2.sec"]
    );
    assert_eq!(t.get("k").unwrap().unwrap(), [19u8; 100]);
    let key_dir = fx.key_file.parent().unwrap();
    assert_eq!(names_in(key_dir), ["master.key"]);
}

#[test]
fn stray_temp_files_are_ignored_and_stale_ones_cleaned() {
    let fx = fixture();
    let t = fx.store.tenant(TENANT).unwrap();
    t.set("k", b"old").unwrap();
    // What a writer that crashed before its rename leaves behind.
    let dir = secrets_dir(&fx.state, TENANT);
    let stale = dir.join(".k.sec.0123456789abcdef.tmp");
    let fresh = dir.join(".k.sec.fedcba9876543210.tmp");
    fs::write(&stale, b"half-written").unwrap();
    fs::write(&fresh, b"being written").unwrap();
    File::options()
        .write(true)
        .open(&stale)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(3600))
        .unwrap();

    assert_eq!(t.get("k").unwrap().unwrap(), b"old");
    assert_eq!(t.list_keys("").unwrap(), ["k"]);
    assert!(!stale.exists(), "a stale temp file was kept");
    assert!(
        fresh.exists(),
        "a young temp file (maybe in use) was removed"
    );
    // Temp files do not count against the key cap either.
    t.set("k", b"new").unwrap();
    assert_eq!(t.get("k").unwrap().unwrap(), b"new");
}

#[test]
fn concurrent_writers_leave_one_file() {
    let fx = fixture();
    let t = fx.store.tenant(TENANT).unwrap();
    thread::scope(|s| {
        for i in 0..4u8 {
            let t = t.clone();
            s.spawn(move || {
                for _ in 0..10 {
                    t.set("shared", &vec![i; 2000 + 100 * i as usize]).unwrap();
                }
            });
        }
    });
    assert_eq!(names_in(&secrets_dir(&fx.state, TENANT)), ["shared.sec"]);
}

// ---------------------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------------------

#[test]
fn default_config() {
    let config = StoreConfig::default();
    assert_eq!(config.max_value_bytes, DEFAULT_MAX_VALUE_BYTES);
    assert_eq!(config.max_keys, DEFAULT_MAX_KEYS);
    assert_eq!(DEFAULT_MAX_VALUE_BYTES, 1 << 20);
    assert_eq!(DEFAULT_MAX_KEYS, 1024);
    // An unset state_dir is refused rather than meaning the working directory.
    let dir = tempfile::tempdir().unwrap();
    let err = SecretStore::open(StoreConfig {
        key: KeySource::File(dir.path().join("master.key")),
        ..StoreConfig::default()
    })
    .unwrap_err();
    assert!(matches!(err, SecretStoreError::Io { .. }), "{err:?}");
}

// ---------------------------------------------------------------------------------------
// Master key
// ---------------------------------------------------------------------------------------

/// Whether two keys are the same key: what one seals, the other opens.
fn same_key(a: &MasterKey, b: &MasterKey) -> bool {
    let sealed = file_format::seal(&a.cipher(), "t", "k", b"probe").unwrap();
    file_format::open(&b.cipher(), "t", "k", &sealed).is_ok()
}

#[test]
fn key_file_is_created_once_then_reused() {
    let fx = fixture();
    let original = fs::read(&fx.key_file).unwrap();
    assert_eq!(original.len(), MASTER_KEY_LEN);
    fx.store.tenant(TENANT).unwrap().set("k", b"v").unwrap();

    let reopened = SecretStore::open(StoreConfig::new(
        &fx.state,
        KeySource::File(fx.key_file.clone()),
    ))
    .unwrap();
    assert_eq!(
        reopened.tenant(TENANT).unwrap().get("k").unwrap().unwrap(),
        b"v"
    );
    assert_eq!(fs::read(&fx.key_file).unwrap(), original);
    // Debug output names no key material.
    let shown = format!("{reopened:?}");
    assert!(!shown.contains(&hex(&original)), "{shown}");
}

#[test]
fn racing_key_file_creation_agrees_on_one_key() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("new").join("master.key");
    let stores: Vec<SecretStore> = thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let config = StoreConfig::new(
                    dir.path().join(format!("state{i}")),
                    KeySource::File(key_file.clone()),
                );
                s.spawn(move || SecretStore::open(config).unwrap())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    // Each store wrote with its own in-memory key; all must read each other's files.
    assert_eq!(fs::read(&key_file).unwrap().len(), MASTER_KEY_LEN);
    stores[0].tenant(TENANT).unwrap().set("k", b"v").unwrap();
    let file = dir
        .path()
        .join("state0/tenants")
        .join(TENANT)
        .join("secrets/k.sec");
    for (i, store) in stores.iter().enumerate().skip(1) {
        let target = dir.path().join(format!("state{i}/tenants")).join(TENANT);
        store.tenant(TENANT).unwrap();
        fs::copy(&file, target.join("secrets/k.sec")).unwrap();
        assert_eq!(
            store.tenant(TENANT).unwrap().get("k").unwrap().unwrap(),
            b"v"
        );
    }
    assert_eq!(names_in(&dir.path().join("new")), ["master.key"]);
}

#[test]
fn group_readable_key_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("master.key");
    fs::write(&key_file, [9u8; 32]).unwrap();
    for loose in [0o640, 0o604, 0o644, 0o660] {
        fs::set_permissions(&key_file, fs::Permissions::from_mode(loose)).unwrap();
        let err = SecretStore::open(StoreConfig::new(
            dir.path().join("state"),
            KeySource::File(key_file.clone()),
        ))
        .unwrap_err();
        assert!(matches!(err, SecretStoreError::MasterKey(_)), "{err:?}");
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }
    // The file was refused, not replaced.
    assert_eq!(fs::read(&key_file).unwrap(), [9u8; 32]);
    fs::set_permissions(&key_file, fs::Permissions::from_mode(0o600)).unwrap();
    SecretStore::open(StoreConfig::new(
        dir.path().join("state"),
        KeySource::File(key_file.clone()),
    ))
    .unwrap();
}

#[test]
fn key_file_of_wrong_size_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("master.key");
    for len in [0usize, 31, 33, 64] {
        fs::write(&key_file, vec![5u8; len]).unwrap();
        fs::set_permissions(&key_file, fs::Permissions::from_mode(0o600)).unwrap();
        let err = SecretStore::open(StoreConfig::new(
            dir.path().join("state"),
            KeySource::File(key_file.clone()),
        ))
        .unwrap_err();
        assert!(
            matches!(err, SecretStoreError::MasterKey(_)),
            "{len}: {err:?}"
        );
    }
    let as_dir = dir.path().join("dir.key");
    fs::create_dir(&as_dir).unwrap();
    let err = SecretStore::open(StoreConfig::new(
        dir.path().join("state"),
        KeySource::File(as_dir),
    ))
    .unwrap_err();
    assert!(matches!(err, SecretStoreError::MasterKey(_)), "{err:?}");
}

#[test]
fn key_text_parsing() {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

    let bytes: Vec<u8> = (0..32u8)
        .map(|i| i.wrapping_mul(37).wrapping_add(0xf9))
        .collect();
    let reference = parse_key_text(&hex(&bytes)).unwrap();
    for text in [
        hex(&bytes).to_uppercase(),
        format!("  {}\n", hex(&bytes)),
        STANDARD.encode(&bytes),
        URL_SAFE_NO_PAD.encode(&bytes),
        format!("{}\n", STANDARD.encode(&bytes)),
    ] {
        assert!(
            same_key(&reference, &parse_key_text(&text).unwrap()),
            "{text}"
        );
    }
    let other = parse_key_text(&hex(&[0u8; 32])).unwrap();
    assert!(!same_key(&reference, &other));

    let secretish = "SECRETISH-not-a-key-QQQQ";
    for bad in [
        String::new(),
        secretish.to_owned(),
        hex(&bytes)[..63].to_owned(),
        format!("{}0", hex(&bytes)),
        format!("{}zz", &hex(&bytes)[..62]),
        STANDARD.encode(&bytes[..31]),
        STANDARD.encode([1u8; 33]),
    ] {
        let Err(err) = parse_key_text(&bad) else {
            panic!("{bad:?} was accepted");
        };
        assert!(matches!(err, SecretStoreError::MasterKey(_)), "{err:?}");
        let shown = format!("{err} {err:?}");
        assert!(shown.contains(KEY_ENV_VAR), "{shown}");
        if bad.len() >= 8 {
            assert!(!shown.contains(&bad), "error repeats the key text: {shown}");
        }
    }
}

#[test]
fn key_source_from_environment_in_a_child() {
    const TEST: &str = "key_source_from_environment_in_a_child";
    if let Ok(role) = std::env::var(CHILD_ROLE) {
        assert_eq!(role, "env-key");
        child_env_key();
        return;
    }
    let fx = fixture();
    fx.store
        .tenant(TENANT)
        .unwrap()
        .set("from-parent", b"parent value")
        .unwrap();
    let key_hex = hex(&fs::read(&fx.key_file).unwrap());

    let mut child = spawn_child(TEST, "env-key", &fx, &[(KEY_ENV_VAR, &key_hex)]);
    drop(child.stdin.take());
    let (status, output) = finish(&mut child);
    assert!(status.success(), "child failed:\n{output}");
    assert!(output.contains("CHILD-OK"), "{output}");
    assert_eq!(
        fx.store
            .tenant(TENANT)
            .unwrap()
            .get("from-child")
            .unwrap()
            .unwrap(),
        b"child value"
    );
}

/// Child part of [`key_source_from_environment_in_a_child`]: the same key, given as hex in
/// `PROVIDER_HOST_KEY`, reads and writes the parent's store.
fn child_env_key() {
    let state = PathBuf::from(std::env::var_os(CHILD_STATE).unwrap());
    let source = KeySource::from_env_or_file("/nonexistent/master.key");
    assert_eq!(source, KeySource::Env);
    let store = SecretStore::open(StoreConfig::new(state, source)).unwrap();
    let t = store.tenant(TENANT).unwrap();
    assert_eq!(t.get("from-parent").unwrap().unwrap(), b"parent value");
    t.set("from-child", b"child value").unwrap();
    println!("CHILD-OK");
}

// ---------------------------------------------------------------------------------------
// Locks
// ---------------------------------------------------------------------------------------

#[test]
fn lock_excludes_another_process() {
    const TEST: &str = "lock_excludes_another_process";
    if let Ok(role) = std::env::var(CHILD_ROLE) {
        assert_eq!(role, "hold");
        child_hold_lock();
        return;
    }
    let fx = fixture();
    let t = fx.store.tenant(TENANT).unwrap();
    let mut child = spawn_child(TEST, "hold", &fx, &[]);
    let mut out = BufReader::new(child.stdout.take().unwrap());
    wait_for_marker(&mut out, "CHILD-LOCKED", &mut child);

    // The child holds it (until told otherwise): no timing involved.
    let err = t.lock("refresh", Duration::from_millis(200)).unwrap_err();
    assert!(matches!(err, SecretStoreError::LockTimeout(_)), "{err:?}");

    // Tell the child to let go (it holds on ~1.5 s more); this wait spans that time.
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "release").unwrap();
    drop(stdin);
    let guard = t.lock("refresh", Duration::from_secs(60)).unwrap();
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    let (status, stderr) = finish(&mut child);
    assert!(status.success(), "child failed:\n{rest}\n{stderr}");
    assert!(rest.contains("CHILD-RELEASED"), "{rest}");
    drop(guard);
}

#[test]
fn a_dead_holder_and_stale_lock_files_do_not_block() {
    const TEST: &str = "a_dead_holder_and_stale_lock_files_do_not_block";
    if let Ok(role) = std::env::var(CHILD_ROLE) {
        assert_eq!(role, "hold");
        child_hold_lock();
        return;
    }
    let fx = fixture();
    let t = fx.store.tenant(TENANT).unwrap();

    // A lock file nobody holds (left by an earlier run).
    fs::write(locks_dir(&fx.state, TENANT).join("stale.lock"), b"").unwrap();
    drop(t.lock("stale", Duration::ZERO).unwrap());

    // A holder killed while holding: the OS drops its flock.
    let mut child = spawn_child(TEST, "hold", &fx, &[]);
    let mut out = BufReader::new(child.stdout.take().unwrap());
    wait_for_marker(&mut out, "CHILD-LOCKED", &mut child);
    assert!(matches!(
        t.lock("refresh", Duration::ZERO),
        Err(SecretStoreError::LockTimeout(_))
    ));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(locks_dir(&fx.state, TENANT).join("refresh.lock").exists());
    drop(t.lock("refresh", Duration::from_secs(10)).unwrap());
}

/// Child part of the lock tests: take `refresh`, say so, wait for a line on stdin (or its
/// end), hold on ~1.5 s more, release and say so.
fn child_hold_lock() {
    let state = PathBuf::from(std::env::var_os(CHILD_STATE).unwrap());
    let key_file = PathBuf::from(std::env::var_os(CHILD_KEY_FILE).unwrap());
    let store = SecretStore::open(StoreConfig::new(state, KeySource::File(key_file))).unwrap();
    let guard = store
        .tenant(TENANT)
        .unwrap()
        .lock("refresh", Duration::from_secs(30))
        .unwrap();
    println!("CHILD-LOCKED");
    std::io::stdout().flush().unwrap();
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    thread::sleep(Duration::from_millis(1500));
    drop(guard);
    println!("CHILD-RELEASED");
    std::io::stdout().flush().unwrap();
}

/// Re-runs this test binary to play `role` in test `test_fn` of this module.
fn spawn_child(test_fn: &str, role: &str, fx: &Fixture, env: &[(&str, &str)]) -> Child {
    let mut vars: Vec<(&str, &OsStr)> = vec![
        (CHILD_ROLE, OsStr::new(role)),
        (CHILD_STATE, fx.state.as_os_str()),
        (CHILD_KEY_FILE, fx.key_file.as_os_str()),
    ];
    vars.extend(env.iter().map(|(k, v)| (*k, OsStr::new(v))));
    contract::child::spawn(module_path!(), test_fn, &vars)
}

// ---------------------------------------------------------------------------------------
// Crash safety
// ---------------------------------------------------------------------------------------

/// Key the crash test's writer hammers.
const CRASH_KEY: &str = "credentials";
/// How many writers the crash test kills.
const CRASH_ROUNDS: usize = 200;

/// The two values the killed writer alternates between: large (so a kill often lands in the
/// middle of writing one), of about the same size (so one write's time predicts the next),
/// but of different lengths and contents (so a mix of the two cannot pass for either).
fn crash_values() -> [Vec<u8>; 2] {
    [vec![0xa5; 80 * 1024], vec![0x3c; 80 * 1024 + 17]]
}

#[test]
fn a_writer_killed_at_any_moment_leaves_the_old_or_the_new_value() {
    const TEST: &str = "a_writer_killed_at_any_moment_leaves_the_old_or_the_new_value";
    if let Ok(role) = std::env::var(CHILD_ROLE) {
        assert_eq!(role, "write-loop");
        child_write_loop();
        return;
    }
    let fx = fixture();
    let t = fx.store.tenant(TENANT).unwrap();
    let values = crash_values();
    t.set(CRASH_KEY, &values[0]).unwrap();
    let dir = secrets_dir(&fx.state, TENANT);
    let value_file = format!("{CRASH_KEY}.sec");
    let is_our_temp =
        |name: &str| name.starts_with(&format!(".{value_file}.")) && name.ends_with(".tmp");

    let (mut seen, mut rounds_with_temp) = ([0usize; 2], 0);
    for round in 0..CRASH_ROUNDS {
        let mut child = spawn_child(TEST, "write-loop", &fx, &[]);
        let mut out = BufReader::new(child.stdout.take().unwrap());
        // Let it finish one or two writes, then kill it at a random moment of the next one
        // (or just after it), scaled by the child's own last write time so that the kills
        // spread over whole writes whatever the machine's speed. Every other round aims at
        // the tail of a write, where the file work is (temp file, fsync, rename, directory
        // fsync; encryption comes first). Nothing is asserted about time.
        let mut write_micros = 0;
        for _ in 0..rand::random_range(1..=2) {
            write_micros = read_write_report(&mut out, &mut child);
        }
        let (from, to) = if round % 2 == 0 { (0, 125) } else { (70, 110) };
        let delay = write_micros * rand::random_range(from..=to) / 100;
        thread::sleep(Duration::from_micros(delay));
        child.kill().unwrap(); // SIGKILL: no destructor, no cleanup runs
        child.wait().unwrap();

        // The value reads back whole: one of the two, never an error or a mix.
        let got = t
            .get(CRASH_KEY)
            .unwrap_or_else(|e| panic!("round {round}: the store broke: {e}"))
            .unwrap_or_else(|| panic!("round {round}: the value vanished"));
        let which = values
            .iter()
            .position(|v| *v == got)
            .unwrap_or_else(|| panic!("round {round}: read {} bytes nobody wrote", got.len()));
        seen[which] += 1;
        // Whatever the writer left behind is one of our temp files, and they change nothing
        // for readers: the listing is exactly the one key.
        let names = names_in(&dir);
        for name in &names {
            assert!(
                *name == value_file || is_our_temp(name),
                "round {round}: unexpected file {name}"
            );
        }
        assert_eq!(t.list_keys("").unwrap(), [CRASH_KEY], "round {round}");

        // Leftovers of a dead writer go once they are old (aged by hand here), which also
        // keeps the test's disk use bounded.
        let temps: Vec<&String> = names.iter().filter(|n| is_our_temp(n)).collect();
        if !temps.is_empty() {
            rounds_with_temp += 1;
            for name in temps {
                File::options()
                    .write(true)
                    .open(dir.join(name))
                    .unwrap()
                    .set_modified(SystemTime::now() - Duration::from_secs(3600))
                    .unwrap();
            }
            assert_eq!(t.list_keys("").unwrap(), [CRASH_KEY], "round {round}");
            assert_eq!(names_in(&dir), [value_file.as_str()], "round {round}");
            assert_eq!(t.get(CRASH_KEY).unwrap().unwrap(), got, "round {round}");
        }
    }
    // For the curious (`--nocapture`): how the kills fell. Not asserted: it depends on timing.
    eprintln!(
        "{CRASH_ROUNDS} writers killed: {} left the first value, {} the second, \
         {rounds_with_temp} a temp file",
        seen[0], seen[1]
    );
    // The store still takes writes.
    t.set(CRASH_KEY, b"after the crashes").unwrap();
    assert_eq!(t.get(CRASH_KEY).unwrap().unwrap(), b"after the crashes");
}

/// Reads the crash test child's stdout up to its next `WROTE <micros>` line and returns the
/// microseconds that write took.
fn read_write_report(out: &mut BufReader<ChildStdout>, child: &mut Child) -> u64 {
    loop {
        let mut line = String::new();
        if out.read_line(&mut line).unwrap() == 0 {
            let (status, stderr) = finish(child);
            panic!("the writer ended ({status}) before writing:\n{stderr}");
        }
        // (libtest may print its own text on the same line first.)
        if let Some((_, micros)) = line.trim().split_once("WROTE ") {
            return micros.parse().unwrap();
        }
    }
}

/// Child part of the crash test: write the two values in turn, as fast as possible, until
/// killed. It also stops when its stdin closes (the parent is gone) or after 20 s, so that a
/// failing parent never leaves it running.
fn child_write_loop() {
    let state = PathBuf::from(std::env::var_os(CHILD_STATE).unwrap());
    let key_file = PathBuf::from(std::env::var_os(CHILD_KEY_FILE).unwrap());
    let store = SecretStore::open(StoreConfig::new(state, KeySource::File(key_file))).unwrap();
    let t = store.tenant(TENANT).unwrap();
    let values = crash_values();
    thread::spawn(|| {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        std::process::exit(0);
    });
    let start = std::time::Instant::now();
    let mut i = 0;
    while start.elapsed() < Duration::from_secs(20) {
        let timer = std::time::Instant::now();
        t.set(CRASH_KEY, &values[i % 2]).unwrap();
        println!("WROTE {}", timer.elapsed().as_micros());
        std::io::stdout().flush().unwrap();
        i += 1;
    }
}

// ---------------------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------------------

#[test]
fn types_can_cross_threads() {
    fn send_sync_static<T: Send + Sync + 'static>() {}
    send_sync_static::<SecretStore>();
    send_sync_static::<TenantSecrets>();
    send_sync_static::<LockGuard>();
    send_sync_static::<SecretStoreError>();
    send_sync_static::<StoreConfig>();
    send_sync_static::<KeySource>();
}

#[test]
fn io_errors_keep_their_source() {
    let fx = fixture();
    let t = fx.store.tenant(TENANT).unwrap();
    fs::remove_dir_all(secrets_dir(&fx.state, TENANT)).unwrap();
    let err = t.set("k", b"v").unwrap_err();
    let SecretStoreError::Io {
        context,
        path,
        source,
    } = &err
    else {
        panic!("{err:?}");
    };
    // The path is kept apart from what was being done (which a plugin may see).
    let path = path.as_ref().unwrap();
    assert!(
        path.starts_with(secrets_dir(&fx.state, TENANT)),
        "{}",
        path.display()
    );
    assert!(!context.contains('/'), "{context}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    assert!(
        !err.guest_message().contains('/'),
        "{}",
        err.guest_message()
    );
    assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
    assert!(std::error::Error::source(&err).is_some());
    // Re-opening the tenant recreates its directories.
    fx.store.tenant(TENANT).unwrap().set("k", b"v").unwrap();
}

/// `get` keeps what it decrypted while the file is unchanged; a write by another process
/// (another store on the same directory, with a cache of its own) is seen at once.
#[test]
fn values_read_again_come_from_the_cache_until_their_file_changes() {
    let f = fixture();
    let other = SecretStore::open(StoreConfig::new(
        &f.state,
        KeySource::File(f.key_file.clone()),
    ))
    .unwrap();
    let (ours, theirs) = (
        f.store.tenant(TENANT).unwrap(),
        other.tenant(TENANT).unwrap(),
    );
    theirs.set("credentials", b"first").unwrap();
    // Read within the margin of the write: not kept (a replacement in the same timestamp
    // tick could look the same).
    assert_eq!(
        ours.get("credentials").unwrap().as_deref(),
        Some(&b"first"[..])
    );
    assert_eq!(f.store.cached_values(), 0);
    thread::sleep(crate::read_cache::RACY_MARGIN + Duration::from_millis(100));
    assert_eq!(
        ours.get("credentials").unwrap().as_deref(),
        Some(&b"first"[..])
    );
    assert_eq!(f.store.cached_values(), 1);
    assert_eq!(
        ours.get("credentials").unwrap().as_deref(),
        Some(&b"first"[..])
    );

    // Replaced, deleted, written again, tampered with: each seen at the next read.
    theirs.set("credentials", b"later").unwrap();
    assert_eq!(
        ours.get("credentials").unwrap().as_deref(),
        Some(&b"later"[..])
    );
    theirs.delete("credentials").unwrap();
    assert_eq!(ours.get("credentials").unwrap(), None);
    theirs.set("credentials", b"first").unwrap();
    assert_eq!(
        ours.get("credentials").unwrap().as_deref(),
        Some(&b"first"[..])
    );
    thread::sleep(crate::read_cache::RACY_MARGIN + Duration::from_millis(100));
    assert_eq!(
        ours.get("credentials").unwrap().as_deref(),
        Some(&b"first"[..])
    );
    assert_eq!(f.store.cached_values(), 1);
    let path = secrets_dir(&f.state, TENANT).join("credentials.sec");
    let mut bytes = fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let mtime = fs::metadata(&path).unwrap().modified().unwrap();
    fs::write(&path, &bytes).unwrap();
    // Even with its modification time put back, the status-change time moved.
    File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    assert_corrupt(ours.get("credentials"));
    assert_eq!(f.store.cached_values(), 0);
}
