//! What only a real database shows. The cross-process tests re-run this test binary as a
//! child (`--exact <test> --nocapture`) with [`CHILD_ROLE`] set; the test function then plays
//! the child's part, with the master key in `PROVIDER_HOST_KEY` as a replica would have it.

use std::ffi::OsStr;
use std::io::{BufReader, Read, Write};
use std::process::Child;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use provider_secrets::contract::child::{self, finish, wait_for_marker};
use provider_secrets::file_format;
use provider_secrets::{
    KEY_ENV_VAR, KeySource, Limits, MasterKey, SecretBackend, SecretStore, SecretStoreError,
    StoreConfig, TenantBackend,
};
use provider_secrets_postgres::{PostgresBackend, PostgresOptions, SCHEMA_VERSION, lock_key};

use crate::contract::HARNESS_KEY;
use crate::support::{Cluster, DATABASE};

/// Tells a re-run test binary which child part to play.
const CHILD_ROLE: &str = "PROVIDER_SECRETS_PG_TEST_CHILD";
/// The child's database URL.
const CHILD_URL: &str = "PROVIDER_SECRETS_PG_TEST_URL";
const TENANT: &str = "tenant-1";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn backend(url: &str, options: PostgresOptions) -> PostgresBackend {
    PostgresBackend::connect_with(url, MasterKey::from_bytes(HARNESS_KEY), options)
        .unwrap_or_else(|e| panic!("opening the backend: {e}"))
}

fn default_backend(url: &str) -> PostgresBackend {
    backend(url, PostgresOptions::default())
}

fn unavailable<T: std::fmt::Debug>(what: &str, r: Result<T, SecretStoreError>) -> SecretStoreError {
    match r {
        Err(e @ SecretStoreError::Unavailable(_)) => e,
        other => panic!("{what}: expected Unavailable, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------------------

/// Re-runs this test binary to play `role` in test `test_fn` of this module.
fn spawn_child(test_fn: &str, role: &str, url: &str) -> Child {
    let key = hex(&HARNESS_KEY);
    child::spawn(
        module_path!(),
        test_fn,
        &[
            (CHILD_ROLE, OsStr::new(role)),
            (CHILD_URL, OsStr::new(url)),
            (KEY_ENV_VAR, OsStr::new(&key)),
        ],
    )
}

/// The backend a child opens, as a replica does: the URL, and the key from the environment.
fn child_backend() -> PostgresBackend {
    let url = std::env::var(CHILD_URL).unwrap();
    PostgresBackend::connect(&url, KeySource::Env, Limits::default()).unwrap()
}

/// Child part of the lock tests: take `refresh`, say so, wait for a line on stdin (or its
/// end), hold on ~1 s more, release and say so. Gives up by itself after a minute.
fn child_hold_lock() {
    let backend = child_backend();
    let guard = backend
        .tenant(TENANT)
        .unwrap()
        .lock_dyn("refresh", Duration::from_secs(30));
    println!("CHILD-LOCKED");
    std::io::stdout().flush().unwrap();
    thread::spawn(|| {
        thread::sleep(Duration::from_secs(60));
        std::process::exit(3);
    });
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    thread::sleep(Duration::from_millis(1000));
    drop(guard);
    // The release runs in the background: give it its round trip before exiting.
    drop(
        backend
            .tenant(TENANT)
            .unwrap()
            .lock_dyn("refresh", Duration::from_secs(10)),
    );
    println!("CHILD-RELEASED");
    std::io::stdout().flush().unwrap();
}

/// `lock` through the trait, as the runtime calls it.
trait LockDyn {
    fn lock_dyn(&self, name: &str, timeout: Duration) -> provider_secrets::SecretLock;
}

impl<T: TenantBackend> LockDyn for T {
    fn lock_dyn(&self, name: &str, timeout: Duration) -> provider_secrets::SecretLock {
        self.lock(name, timeout)
            .unwrap_or_else(|e| panic!("lock {name:?}: {e}"))
    }
}

// ---------------------------------------------------------------------------------------
// Locks across processes
// ---------------------------------------------------------------------------------------

#[test]
fn lock_excludes_another_process() {
    const TEST: &str = "lock_excludes_another_process";
    if let Ok(role) = std::env::var(CHILD_ROLE) {
        assert_eq!(role, "hold");
        child_hold_lock();
        return;
    }
    let cluster = Cluster::start();
    let backend = default_backend(&cluster.url());
    let t = backend.tenant(TENANT).unwrap();
    let mut child = spawn_child(TEST, "hold", &cluster.url());
    let mut out = BufReader::new(child.stdout.take().unwrap());
    wait_for_marker(&mut out, "CHILD-LOCKED", &mut child);

    // The child holds it until told otherwise: no timing involved.
    let err = t.lock("refresh", Duration::from_millis(300)).unwrap_err();
    assert!(matches!(err, SecretStoreError::LockTimeout(_)), "{err:?}");
    // Other names and tenants are free meanwhile.
    drop(t.lock_dyn("models", Duration::ZERO));
    drop(
        backend
            .tenant("other")
            .unwrap()
            .lock_dyn("refresh", Duration::ZERO),
    );

    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "release").unwrap();
    drop(stdin);
    // Spans the child's last second of holding.
    let guard = t.lock_dyn("refresh", Duration::from_secs(60));
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    drop(guard);
    let (status, stderr) = finish(&mut child);
    assert!(status.success(), "child failed:\n{rest}\n{stderr}");
    assert!(rest.contains("CHILD-RELEASED"), "{rest}");
}

#[test]
fn a_holder_killed_with_sigkill_frees_its_lock() {
    const TEST: &str = "a_holder_killed_with_sigkill_frees_its_lock";
    if let Ok(role) = std::env::var(CHILD_ROLE) {
        assert_eq!(role, "hold");
        child_hold_lock();
        return;
    }
    let cluster = Cluster::start();
    let admin = cluster.admin();
    // The child (default options) holds; this host waits out a short grace of its own.
    const GRACE: Duration = Duration::from_secs(2);
    let backend = backend(
        &cluster.url(),
        PostgresOptions {
            holder_grace: GRACE,
            ..PostgresOptions::default()
        },
    );
    let t = backend.tenant(TENANT).unwrap();
    let mut child = spawn_child(TEST, "hold", &cluster.url());
    let mut out = BufReader::new(child.stdout.take().unwrap());
    wait_for_marker(&mut out, "CHILD-LOCKED", &mut child);

    // The database shows the lock under the documented key (one-bigint form: classid and
    // objid are its high and low halves, objsubid 1).
    let held_keys = || -> Vec<i64> {
        admin
            .query(
                "SELECT ((classid::bigint << 32) | objid::bigint) FROM pg_locks \
                 WHERE locktype = 'advisory' AND objsubid = 1 AND granted",
                &[],
            )
            .iter()
            .map(|r| r.get(0))
            .collect()
    };
    assert_eq!(held_keys(), [lock_key(TENANT, "refresh")]);
    let err = t.lock("refresh", Duration::ZERO).unwrap_err();
    assert!(matches!(err, SecretStoreError::LockTimeout(_)), "{err:?}");

    child.kill().unwrap(); // SIGKILL: no destructor, no release runs
    child.wait().unwrap();
    // The server ends the dead client's session, and its locks with it; its holding is
    // taken over once the holder grace has passed since it was taken (the holder might
    // have been cut off rather than killed, and at work).
    let began = Instant::now();
    let guard = t.lock_dyn("refresh", Duration::from_secs(30));
    eprintln!(
        "the killed holder's lock was free after {:?}",
        began.elapsed()
    );
    assert!(began.elapsed() < GRACE + Duration::from_secs(10));
    assert_eq!(held_keys(), [lock_key(TENANT, "refresh")]);
    drop(guard);
    // The release is in the background; the next lock in this process waits for it.
    drop(t.lock_dyn("refresh", Duration::ZERO));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !held_keys().is_empty() {
        assert!(Instant::now() < deadline, "a released lock is still held");
        thread::sleep(Duration::from_millis(10));
    }
}

// ---------------------------------------------------------------------------------------
// The database going away
// ---------------------------------------------------------------------------------------

#[test]
fn a_database_restart_fails_calls_with_a_typed_error_then_recovers_by_itself() {
    let mut cluster = Cluster::start();
    let options = PostgresOptions {
        call_timeout: Duration::from_secs(3),
        connect_timeout: Duration::from_secs(2),
        ..PostgresOptions::default()
    };
    let backend = backend(&cluster.url(), options);
    let t = backend.tenant(TENANT).unwrap();
    t.set("token", b"before the restart").unwrap();
    t.set("doomed", b"deleted after").unwrap();
    let held = t.lock_dyn("held", Duration::ZERO);

    cluster.stop();
    let port = cluster.port().to_string();
    type Call<'a> = Box<dyn Fn() -> Result<(), SecretStoreError> + 'a>;
    let calls: Vec<(&str, Call)> = vec![
        ("get", Box::new(|| t.get("token").map(drop))),
        ("set", Box::new(|| t.set("token", b"written while down"))),
        (
            "set new",
            Box::new(|| t.set("new-key", b"written while down")),
        ),
        ("delete", Box::new(|| t.delete("doomed"))),
        ("list", Box::new(|| t.list_keys("").map(drop))),
        (
            "lock",
            Box::new(|| t.lock("other", Duration::from_secs(1)).map(drop)),
        ),
    ];
    for (what, call) in &calls {
        let began = Instant::now();
        let err = unavailable(what, call());
        assert!(
            began.elapsed() < Duration::from_secs(15),
            "{what} took {:?}",
            began.elapsed()
        );
        // The host's log gets the details; a plugin gets none.
        eprintln!("{what} while the database is down: {err}");
        let guest = err.guest_message();
        assert_eq!(guest, "storage unavailable; retry later", "{what}");
        assert!(
            !guest.contains(&port) && !guest.contains("127.0.0.1"),
            "{guest}"
        );
        assert!(!err.to_string().contains(cluster.password()), "{err}");
    }
    // Dropping a guard whose connection died neither blocks nor panics.
    drop(held);

    cluster.restart();
    // The same backend, not reopened: the first call after the restart succeeds.
    assert_eq!(t.get("token").unwrap().unwrap(), b"before the restart");
    assert_eq!(t.get("new-key").unwrap(), None);
    assert_eq!(t.list_keys("").unwrap(), ["doomed", "token"]);
    t.set("token", b"after the restart").unwrap();
    assert_eq!(t.get("token").unwrap().unwrap(), b"after the restart");
    t.delete("doomed").unwrap();
    // The server lost every lock when it stopped; the one held across the restart is
    // fenced for the holder grace (its holder might still be at work), the others are free.
    match t.lock("held", Duration::ZERO) {
        Err(SecretStoreError::LockTimeout(m)) => assert!(m.contains("restart"), "{m}"),
        other => panic!("expected the restart fence, got {other:?}"),
    }
    drop(t.lock_dyn("other", Duration::ZERO));
}

#[test]
fn a_lock_held_across_a_restart_is_granted_again_only_after_the_holder_grace() {
    const GRACE: Duration = Duration::from_secs(3);
    let mut cluster = Cluster::start();
    let options = || PostgresOptions {
        call_timeout: Duration::from_secs(3),
        connect_timeout: Duration::from_secs(2),
        holder_grace: GRACE,
        ..PostgresOptions::default()
    };
    // Two replicas; the first holds `refresh` when the server restarts.
    let first = backend(&cluster.url(), options());
    let second = backend(&cluster.url(), options());
    let held = first
        .tenant(TENANT)
        .unwrap()
        .lock_dyn("refresh", Duration::ZERO);
    let taken = Instant::now();
    cluster.stop();
    cluster.restart();
    let t = second.tenant(TENANT).unwrap();
    // Within the grace, a short wait gives up (and leaves the fence in place)...
    match t.lock("refresh", Duration::from_millis(300)) {
        Err(SecretStoreError::LockTimeout(m)) => {
            assert!(m.contains("restarted") && m.contains("holder grace"), "{m}")
        }
        other => panic!("expected the restart fence, got {other:?}"),
    }
    // ...a long enough one is granted once the first holding is GRACE old, not before.
    let lock = t.lock("refresh", Duration::from_secs(30)).unwrap();
    // The server's clock judges; `taken` was read just after the holding was recorded.
    assert!(
        taken.elapsed() >= GRACE - Duration::from_millis(100),
        "granted after {:?}",
        taken.elapsed()
    );
    assert!(
        taken.elapsed() < GRACE + Duration::from_secs(10),
        "{:?}",
        taken.elapsed()
    );
    // Meanwhile no one else gets it, and a clean release leaves no fence behind.
    assert!(matches!(
        first
            .tenant(TENANT)
            .unwrap()
            .lock("refresh", Duration::ZERO),
        Err(SecretStoreError::LockTimeout(_))
    ));
    drop(lock);
    drop(t.lock_dyn("refresh", Duration::from_secs(2)));
    let admin = cluster.admin();
    assert_eq!(
        admin.query("SELECT count(*) FROM provider_secrets_lock_holds", &[])[0].get::<_, i64>(0),
        0
    );
    // The old guard's release finds its connection gone: nothing blocks, nothing panics.
    drop(held);

    // A holder cut off on a running server is waited for too (see
    // `a_holder_cut_off_mid_refresh_never_overwrites_its_successor`); zero turns the wait
    // off.
    let unfenced = backend(
        &cluster.url(),
        PostgresOptions {
            holder_grace: Duration::ZERO,
            ..options()
        },
    );
    let held = unfenced
        .tenant(TENANT)
        .unwrap()
        .lock_dyn("refresh", Duration::from_secs(2));
    cluster.stop();
    cluster.restart();
    drop(
        unfenced
            .tenant(TENANT)
            .unwrap()
            .lock_dyn("refresh", Duration::from_secs(2)),
    );
    drop(held);
}

#[test]
fn a_database_down_at_start_is_unavailable_and_a_wrong_password_never_shows() {
    let mut cluster = Cluster::start();
    let wrong = cluster
        .url()
        .replace(cluster.password(), "not-the-password-Q7");
    let err = unavailable(
        "wrong password",
        PostgresBackend::connect_with(
            &wrong,
            MasterKey::from_bytes(HARNESS_KEY),
            PostgresOptions::default(),
        ),
    );
    let shown = format!("{err} {err:?}");
    assert!(shown.contains("28P01"), "{shown}"); // invalid_password
    assert!(!shown.contains("not-the-password-Q7"), "{shown}");

    let ok = default_backend(&cluster.url());
    let shown = format!("{ok:?} {}", ok.database());
    assert!(!shown.contains(cluster.password()), "{shown}");
    assert!(
        shown.contains(&format!("127.0.0.1:{}/{DATABASE}", cluster.port())),
        "{shown}"
    );

    cluster.stop();
    let err = unavailable(
        "database down",
        PostgresBackend::connect_with(
            &cluster.url(),
            MasterKey::from_bytes(HARNESS_KEY),
            PostgresOptions::default(),
        ),
    );
    assert!(!err.to_string().contains(cluster.password()), "{err}");
}

// ---------------------------------------------------------------------------------------
// Concurrency across connections and backends
// ---------------------------------------------------------------------------------------

#[test]
fn concurrent_sets_of_one_key_never_leave_a_half_written_value() {
    let cluster = Cluster::start();
    let admin = cluster.admin();
    let url = cluster.url();
    // Different lengths and contents: a mix of two cannot pass for either.
    let values: Vec<Vec<u8>> = (0..6u8)
        .map(|i| vec![b'a' + i; 10_000 + 777 * i as usize])
        .collect();
    let reads = AtomicUsize::new(0);
    thread::scope(|s| {
        for v in &values {
            let url = &url;
            // Each writer its own backend: its own pool, its own connections.
            s.spawn(move || {
                let t = default_backend(url).tenant(TENANT).unwrap();
                for _ in 0..25 {
                    t.set("shared", v).unwrap();
                }
            });
        }
        for _ in 0..2 {
            let (url, values, reads) = (&url, &values, &reads);
            s.spawn(move || {
                let t = default_backend(url).tenant(TENANT).unwrap();
                // 60 reads of a value, however long the first write takes to land.
                let (mut seen, give_up) = (0, Instant::now() + Duration::from_secs(30));
                while seen < 60 && Instant::now() < give_up {
                    if let Some(got) = t.get("shared").unwrap() {
                        assert!(values.contains(&got), "read a value nobody wrote");
                        reads.fetch_add(1, Ordering::Relaxed);
                        seen += 1;
                    }
                }
            });
        }
    });
    assert!(reads.load(Ordering::Relaxed) > 0);
    let t = default_backend(&url).tenant(TENANT).unwrap();
    assert!(values.contains(&t.get("shared").unwrap().unwrap()));
    // One row, and it opens.
    let rows = admin.query(
        "SELECT key, sealed FROM provider_secrets_values WHERE tenant = $1",
        &[&TENANT],
    );
    assert_eq!(rows.len(), 1);
    let sealed: Vec<u8> = rows[0].get(1);
    let cipher = MasterKey::from_bytes(HARNESS_KEY).cipher();
    assert!(values.contains(&file_format::open(&cipher, TENANT, "shared", &sealed).unwrap()));
}

#[test]
fn new_keys_racing_from_several_replicas_stop_at_the_key_limit() {
    let cluster = Cluster::start();
    let url = cluster.url();
    const MAX_KEYS: usize = 5;
    let options = PostgresOptions {
        limits: Limits {
            max_keys: MAX_KEYS,
            ..Limits::default()
        },
        ..PostgresOptions::default()
    };
    let (stored, refused) = (AtomicUsize::new(0), AtomicUsize::new(0));
    thread::scope(|s| {
        for i in 0..8 {
            let (url, stored, refused) = (&url, &stored, &refused);
            s.spawn(move || {
                let t = backend(url, options).tenant(TENANT).unwrap();
                for j in 0..3 {
                    match t.set(&format!("key-{i}-{j}"), b"v") {
                        Ok(()) => stored.fetch_add(1, Ordering::Relaxed),
                        Err(SecretStoreError::TooLarge(_)) => {
                            refused.fetch_add(1, Ordering::Relaxed)
                        }
                        Err(e) => panic!("{e}"),
                    };
                }
            });
        }
    });
    assert_eq!(stored.load(Ordering::Relaxed), MAX_KEYS);
    assert_eq!(refused.load(Ordering::Relaxed), 24 - MAX_KEYS);
    let t = backend(&url, options).tenant(TENANT).unwrap();
    assert_eq!(t.list_keys("key-").unwrap().len(), MAX_KEYS);
}

// ---------------------------------------------------------------------------------------
// Schema, contents, configuration
// ---------------------------------------------------------------------------------------

#[test]
fn the_schema_is_versioned_and_migrated_once_by_replicas_starting_together() {
    let cluster = Cluster::start();
    let admin = cluster.admin();
    let url = cluster.url();
    let backends: Vec<PostgresBackend> = thread::scope(|s| {
        let handles: Vec<_> = (0..4).map(|_| s.spawn(|| default_backend(&url))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let versions: Vec<i32> = admin
        .query(
            "SELECT version FROM provider_secrets_schema ORDER BY version",
            &[],
        )
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, (1..=SCHEMA_VERSION).collect::<Vec<_>>());
    backends[0].tenant(TENANT).unwrap().set("k", b"v").unwrap();
    drop(backends);
    // Reopening changes nothing and keeps the data.
    let again = default_backend(&url);
    assert_eq!(
        again.tenant(TENANT).unwrap().get("k").unwrap().unwrap(),
        b"v"
    );
    assert_eq!(
        admin.query("SELECT count(*) FROM provider_secrets_schema", &[])[0].get::<_, i64>(0),
        i64::from(SCHEMA_VERSION)
    );

    // A schema from a newer host is refused, not used.
    admin.execute("INSERT INTO provider_secrets_schema (version) VALUES (99)");
    match PostgresBackend::connect_with(
        &url,
        MasterKey::from_bytes(HARNESS_KEY),
        PostgresOptions::default(),
    ) {
        Err(e @ SecretStoreError::Config(_)) => assert!(e.to_string().contains("99"), "{e}"),
        other => panic!("expected Config, got {other:?}"),
    }
    // The database refuses rows no host would write.
    let rows = admin.query(
        "SELECT count(*) FROM pg_constraint WHERE conrelid = 'provider_secrets_values'::regclass \
         AND contype = 'c'",
        &[],
    );
    assert_eq!(rows[0].get::<_, i64>(0), 2);
}

#[test]
fn the_database_holds_only_ciphertext_bound_to_tenant_and_key() {
    let cluster = Cluster::start();
    let admin = cluster.admin();
    let backend = default_backend(&cluster.url());
    let marker = b"PLAINTEXT-MARKER-refresh-token-0123456789";
    for tenant in ["alice", "bob"] {
        let t = backend.tenant(tenant).unwrap();
        t.set("oauth.refresh_token", marker).unwrap();
        t.set("oauth.refresh_token", marker).unwrap();
        t.set("other", marker).unwrap();
    }
    // Every column of every table, as text (bytea in hex), and the values raw.
    let dump: String = admin.query(
        "SELECT string_agg(t::text, '|') FROM ( \
                SELECT v::text AS t FROM provider_secrets_values v \
                UNION ALL SELECT x::text FROM provider_secrets_tenants x \
                UNION ALL SELECT s::text FROM provider_secrets_schema s) all_rows",
        &[],
    )[0]
    .get(0);
    assert!(
        !dump.contains("PLAINTEXT-MARKER"),
        "plaintext in the database"
    );
    assert!(
        !dump.contains(&hex(marker)),
        "plaintext (hex) in the database"
    );
    assert!(
        !dump.contains(&hex(&HARNESS_KEY)),
        "the master key in the database"
    );
    let rows = admin.query(
        "SELECT tenant, key, sealed FROM provider_secrets_values",
        &[],
    );
    assert_eq!(rows.len(), 4);
    let cipher = MasterKey::from_bytes(HARNESS_KEY).cipher();
    for row in &rows {
        let (tenant, key, sealed): (String, String, Vec<u8>) = (row.get(0), row.get(1), row.get(2));
        assert_eq!(&sealed[..4], &file_format::MAGIC);
        assert_eq!(sealed.len(), marker.len() + file_format::OVERHEAD);
        assert_eq!(
            file_format::open(&cipher, &tenant, &key, &sealed).unwrap(),
            marker
        );
    }
    let tenants: Vec<String> = admin
        .query(
            "SELECT tenant FROM provider_secrets_tenants ORDER BY tenant",
            &[],
        )
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(tenants, ["alice", "bob"]);
}

#[test]
fn the_master_key_comes_from_the_environment_only() {
    const TEST: &str = "the_master_key_comes_from_the_environment_only";
    if let Ok(role) = std::env::var(CHILD_ROLE) {
        assert_eq!(role, "env-key");
        let backend = child_backend();
        backend
            .tenant(TENANT)
            .unwrap()
            .set("from-child", b"child value")
            .unwrap();
        // The file store under the same key derives the same keys.
        let dir = tempfile::tempdir().unwrap();
        let store = SecretStore::open(StoreConfig::new(dir.path(), KeySource::Env)).unwrap();
        for purpose in [&b"compile-cache"[..], b"anything else"] {
            assert_eq!(
                SecretBackend::derive_key(&backend, purpose),
                store.derive_key(purpose)
            );
        }
        println!("CHILD-OK");
        return;
    }
    let cluster = Cluster::start();
    let err = PostgresBackend::connect(
        &cluster.url(),
        KeySource::File("/etc/provider-host/master.key".into()),
        Limits::default(),
    )
    .unwrap_err();
    assert!(matches!(err, SecretStoreError::MasterKey(_)), "{err:?}");
    assert!(err.to_string().contains(KEY_ENV_VAR), "{err}");

    let mut child = spawn_child(TEST, "env-key", &cluster.url());
    drop(child.stdin.take());
    let (status, output) = finish(&mut child);
    assert!(status.success(), "child failed:\n{output}");
    assert!(output.contains("CHILD-OK"), "{output}");
    // Written under the environment's key, read under the same key given directly.
    let t = default_backend(&cluster.url()).tenant(TENANT).unwrap();
    assert_eq!(t.get("from-child").unwrap().unwrap(), b"child value");
}

#[test]
fn a_get_is_one_statement_on_a_pooled_connection() {
    let cluster = Cluster::start_with(
        &[("shared_preload_libraries", "pg_stat_statements")],
        |_| {},
    );
    let admin = cluster.admin();
    admin.execute("CREATE EXTENSION pg_stat_statements");
    let backend = default_backend(&cluster.url());
    let t = backend.tenant(TENANT).unwrap();
    t.set("status", b"connected").unwrap();
    // Warm: the connection is open and the statement prepared.
    t.get("status").unwrap();
    admin.execute("SELECT pg_stat_statements_reset()");
    for _ in 0..20 {
        assert_eq!(t.get("status").unwrap().unwrap(), b"connected");
    }
    let seen: Vec<(String, i64)> = admin
        .query(
            "SELECT query, calls FROM pg_stat_statements \
             WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) \
             AND query NOT LIKE '%pg_stat_statements%'",
            &[],
        )
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(seen[0].0.contains("octet_length(sealed)"), "{seen:?}");
    assert_eq!(seen[0].1, 20, "{seen:?}");
}

/// A held lock keeps a connection of the lock pool; the pool bounds them.
#[test]
fn lock_connections_bound_the_locks_held_at_once() {
    let cluster = Cluster::start();
    let options = PostgresOptions {
        lock_connections: 2,
        ..PostgresOptions::default()
    };
    let backend = backend(&cluster.url(), options);
    let (a, b) = (backend.tenant("a").unwrap(), backend.tenant("b").unwrap());
    let held = [
        a.lock_dyn("x", Duration::ZERO),
        b.lock_dyn("x", Duration::ZERO),
    ];
    let c = backend.tenant("c").unwrap();
    let err = c.lock("x", Duration::from_millis(200)).unwrap_err();
    assert!(matches!(err, SecretStoreError::LockTimeout(_)), "{err:?}");
    assert!(err.to_string().contains("lock_connections"), "{err}");
    // Values do not wait behind locks.
    c.set("k", b"v").unwrap();
    let [first, _second] = held;
    drop(first);
    drop(c.lock_dyn("x", Duration::from_secs(10)));
}

// ---------------------------------------------------------------------------------------
// Threads
// ---------------------------------------------------------------------------------------

/// As the runtime uses it: calls on tokio's blocking pool, and guards (and at last the
/// backend itself) dropped inside async tasks, where blocking or dropping a runtime would
/// panic.
#[test]
fn calls_from_the_blocking_pool_and_drops_in_async_code() {
    let cluster = Cluster::start();
    let backend: Arc<dyn SecretBackend> = Arc::new(default_backend(&cluster.url()));
    let host = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    host.block_on(async move {
        let t = backend.tenant(TENANT).unwrap();
        let (t2, t3) = (Arc::clone(&t), Arc::clone(&t));
        tokio::task::spawn_blocking(move || t2.set("k", b"from the blocking pool"))
            .await
            .unwrap()
            .unwrap();
        let guard = tokio::task::spawn_blocking(move || t3.lock("refresh", Duration::ZERO))
            .await
            .unwrap()
            .unwrap();
        // Dropped on a worker thread, in async code.
        drop(guard);
        let t4 = Arc::clone(&t);
        let again = tokio::task::spawn_blocking(move || t4.lock("refresh", Duration::ZERO))
            .await
            .unwrap()
            .unwrap();
        let t5 = Arc::clone(&t);
        let got = tokio::task::spawn_blocking(move || t5.get("k"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.unwrap(), b"from the blocking pool");
        // The last references, guard first, then tenant and backend: in async code too.
        drop(again);
        drop(t);
        drop(backend);
    });
}

#[test]
fn a_huge_lock_timeout_is_no_overflow() {
    let cluster = Cluster::start();
    let t = default_backend(&cluster.url()).tenant(TENANT).unwrap();
    drop(t.lock_dyn("refresh", Duration::MAX));
}

#[test]
fn the_hosts_own_space_is_beside_the_tenants_and_out_of_their_reach() {
    let cluster = Cluster::start();
    let admin = cluster.admin();
    let backend = default_backend(&cluster.url());
    let space = SecretBackend::host_space(&backend, "serve-keys")
        .unwrap()
        .expect("postgres has host spaces");
    space.set("key.0123", b"salted hash").unwrap();
    backend
        .tenant("serve-keys")
        .unwrap()
        .set("key.0123", b"a tenant's")
        .unwrap();
    // A tenant of the same name is another row; no tenant id reaches the space.
    assert_eq!(space.get("key.0123").unwrap().unwrap(), b"salted hash");
    assert_eq!(space.list_keys("key.").unwrap(), ["key.0123"]);
    for id in [".host.serve-keys", ".host", "..host.serve-keys"] {
        assert!(
            matches!(backend.tenant(id), Err(SecretStoreError::InvalidTenant(_))),
            "{id}"
        );
    }
    // Names follow the key rules and the schema's bound.
    for bad in ["", "Serve", "../x", &"a".repeat(33)] {
        assert!(backend.host_space(bad).is_err(), "{bad:?}");
    }
    backend
        .host_space(&"a".repeat(32))
        .unwrap()
        .set("k", b"v")
        .unwrap();
    // Sealed and bound to its name: a copy under a tenant's name does not open.
    admin.execute(
        "UPDATE provider_secrets_values SET sealed = \
         (SELECT sealed FROM provider_secrets_values WHERE tenant = '.host.serve-keys') \
         WHERE tenant = 'serve-keys'",
    );
    assert!(matches!(
        backend.tenant("serve-keys").unwrap().get("key.0123"),
        Err(SecretStoreError::Corrupt(_))
    ));
    // Locks work there as for a tenant.
    let held = space.lock("create", Duration::from_secs(1)).unwrap();
    assert!(space.lock("create", Duration::from_millis(50)).is_err());
    drop(held);
    // The database itself refuses any other dotted tenant.
    let refused = admin.try_execute(
        "INSERT INTO provider_secrets_values (tenant, key, sealed) VALUES ('.other', 'k', '\\x00')",
    );
    assert!(
        refused.is_err(),
        "a dotted tenant other than .host.* was stored"
    );
}

// ---------------------------------------------------------------------------------------
// The fleet's fence
// ---------------------------------------------------------------------------------------

/// Ends the session of every advisory lock holder but the admin's own, as a network
/// partition or an operator's `pg_terminate_backend` would, and waits until the server has
/// let go of the locks.
fn cut_lock_holders(admin: &crate::support::Admin) {
    admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_locks \
         WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid()",
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while admin.query(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted",
        &[],
    )[0]
    .get::<_, i64>(0)
        > 0
    {
        assert!(Instant::now() < deadline, "the cut lock is still held");
        thread::sleep(Duration::from_millis(10));
    }
}

/// A replica holding the `credentials` lock has read the refresh token (the proof before
/// redeeming) when its lock connection is cut on a running server. The advisory lock is
/// gone, but a second replica is not let in until the first has had the holder grace since
/// its last proof: a first holder that finishes within it saves its tokens and the second
/// reads them (one redemption); one that is slower finds its lock taken over, and its read
/// and write are refused (`LockLost`), never overwriting the newer tokens.
#[test]
fn a_holder_cut_off_mid_refresh_never_overwrites_its_successor() {
    const GRACE: Duration = Duration::from_secs(3);
    let cluster = Cluster::start();
    let admin = cluster.admin();
    let options = PostgresOptions {
        holder_grace: GRACE,
        call_timeout: Duration::from_secs(3),
        ..PostgresOptions::default()
    };
    let first = backend(&cluster.url(), options).tenant(TENANT).unwrap();
    let second = backend(&cluster.url(), options).tenant(TENANT).unwrap();
    first.set("credentials", b"generation 1").unwrap();

    // 1. Cut mid-refresh, the holder finishes within the grace.
    let held = first.lock_dyn("credentials", Duration::ZERO);
    assert_eq!(first.get("credentials").unwrap().unwrap(), b"generation 1");
    cut_lock_holders(&admin);
    let began = Instant::now();
    let waiter = {
        let second = second.clone();
        thread::spawn(move || {
            let lock = second.lock_dyn("credentials", Duration::from_secs(30));
            let seen = second.get("credentials").unwrap().unwrap();
            (began.elapsed(), seen, lock)
        })
    };
    thread::sleep(Duration::from_millis(500));
    // The redemption's result is saved under the holding's still-current token.
    first.set("credentials", b"generation 2 (first)").unwrap();
    drop(held);
    let (waited, seen, lock) = waiter.join().unwrap();
    assert_eq!(
        seen, b"generation 2 (first)",
        "the second holder reads the first one's tokens: nothing to redeem"
    );
    assert!(
        waited >= Duration::from_millis(400),
        "the second holder waited for the first: {waited:?}"
    );
    // The first, done, forgot its holding on another connection: no full grace to wait.
    assert!(waited < GRACE + Duration::from_secs(5), "{waited:?}");
    drop(lock);

    // 2. Cut mid-refresh, the holder is slower than the grace.
    let held = first.lock_dyn("credentials", Duration::from_secs(10));
    assert_eq!(
        first.get("credentials").unwrap().unwrap(),
        b"generation 2 (first)"
    );
    let proved = Instant::now();
    cut_lock_holders(&admin);
    // The second replica is let in only once the first's last proof is GRACE old; it asks
    // in 200 ms slices, as the runtime's `secrets` import does.
    let taken = loop {
        match second.lock("credentials", Duration::from_millis(200)) {
            Ok(lock) => break lock,
            Err(SecretStoreError::LockTimeout(m)) => {
                assert!(m.contains("holder grace"), "{m}");
                assert!(
                    proved.elapsed() < Duration::from_secs(30),
                    "never taken over"
                );
            }
            Err(e) => panic!("a slice of the wait: {e}"),
        }
    };
    assert!(
        proved.elapsed() >= GRACE - Duration::from_millis(200),
        "taken over {:?} after the proof",
        proved.elapsed()
    );
    assert_eq!(
        second.get("credentials").unwrap().unwrap(),
        b"generation 2 (first)"
    );
    second.set("credentials", b"generation 3 (second)").unwrap();
    // The first holder's late write, and any read or delete under its lost lock: refused.
    let lost = |what: &str, r: Result<(), SecretStoreError>| match r {
        Err(SecretStoreError::LockLost(m)) => {
            assert!(m.contains("credentials") && m.contains(TENANT), "{m}");
        }
        other => panic!("{what}: expected LockLost, got {other:?}"),
    };
    lost(
        "the late write",
        first.set("credentials", b"generation 3 (first)"),
    );
    lost("a new key", first.set("revoked", b"mark"));
    lost("a read", first.get("credentials").map(drop));
    lost("a delete", first.delete("credentials"));
    assert_eq!(
        second.get("credentials").unwrap().unwrap(),
        b"generation 3 (second)",
        "the newer tokens stand"
    );
    // Released, the first handle reads and writes as before.
    drop(held);
    assert_eq!(
        first.get("credentials").unwrap().unwrap(),
        b"generation 3 (second)"
    );
    drop(taken);
    // A clean release leaves nothing for the next holder to wait for.
    let began = Instant::now();
    drop(first.lock_dyn("credentials", Duration::from_secs(5)));
    assert!(
        began.elapsed() < Duration::from_secs(1),
        "{:?}",
        began.elapsed()
    );
}

/// The byte counts the quotas read (per tenant, and for the database) follow every change
/// of a value: the backend's writes, replaces and deletes, a rotation's re-sealing, and rows
/// written or removed behind its back.
#[test]
fn stored_bytes_are_counted_whoever_writes() {
    let cluster = Cluster::start();
    let admin = cluster.admin();
    let backend = default_backend(&cluster.url());
    let t = backend.tenant(TENANT).unwrap();
    let other = backend.tenant("other").unwrap();
    let check = |when: &str| {
        let counted: Vec<(String, i64)> = admin
            .query(
                "SELECT tenant, bytes FROM provider_secrets_tenants WHERE bytes <> 0 \
                 ORDER BY tenant",
                &[],
            )
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let actual: Vec<(String, i64)> = admin
            .query(
                "SELECT tenant, sum(octet_length(sealed))::int8 FROM provider_secrets_values \
                 GROUP BY tenant ORDER BY tenant",
                &[],
            )
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        assert_eq!(counted, actual, "{when}");
        let total: i64 = admin.query("SELECT bytes FROM provider_secrets_usage", &[])[0].get(0);
        assert_eq!(total, actual.iter().map(|(_, b)| b).sum::<i64>(), "{when}");
    };
    t.set("a", &[1; 100]).unwrap();
    t.set("b", &[2; 200]).unwrap();
    other.set("a", &[3; 300]).unwrap();
    check("after inserts");
    t.set("a", &[1; 50]).unwrap();
    t.set("b", &[2; 400]).unwrap();
    check("after a shrinking and a growing replace");
    t.delete("b").unwrap();
    check("after a delete");
    admin.execute_with(
        "INSERT INTO provider_secrets_values (tenant, key, sealed) VALUES ($1, 'x', $2)",
        &[&"behind", &vec![0u8; 1000]],
    );
    admin.execute("DELETE FROM provider_secrets_values WHERE tenant = 'other'");
    check("after writes behind the backend's back");
    let new_key = MasterKey::from_bytes([0x42; provider_secrets::MASTER_KEY_LEN]);
    admin.execute("DELETE FROM provider_secrets_values WHERE tenant = 'behind'");
    provider_secrets_postgres::rotate_master_key(
        &cluster.url(),
        &MasterKey::from_bytes(HARNESS_KEY),
        &new_key,
        &mut |_, _| Ok(()),
    )
    .unwrap();
    check("after a rotation");
}
