//! Locks: session-level PostgreSQL advisory locks on connections held for the lock's life.
//!
//! # Lock keys
//!
//! A (tenant, name) pair maps to the one-`bigint` form of the advisory lock functions:
//! the first 8 bytes (big-endian, as a signed 64-bit integer) of
//! `SHA-256("provider-host lock v1\0" || u32be(len(tenant)) || tenant || u32be(len(name)) ||
//! name)`. Length prefixes keep pairs apart (`a`+`bc` vs `ab`+`c`); 64 bits make an
//! accidental collision between two pairs about a 2⁻⁶⁴ event per pair, and a collision could
//! only make two locks exclude each other, never let two holders in. The schema's own lock
//! uses the two-`int4` form, a separate key space. Another application taking advisory
//! locks in the same database could collide with these: give the secrets a database (or at
//! least a cluster role) of their own.
//!
//! # Holding and releasing
//!
//! A lock is taken with `pg_try_advisory_lock` on a connection from the lock pool, polled
//! with short sleeps until the caller's timeout (the server never waits on our behalf, so a
//! caller that gives up leaves nothing pending). The guard keeps the connection; dropping
//! it runs `pg_advisory_unlock` on the backend's runtime without blocking the dropping
//! thread (guards are dropped from async code), and returns the connection to the pool, or
//! closes it when the unlock did not answer `true` in time. Closing a session releases its
//! locks, as does the server noticing a dead client, so a killed host never wedges a tenant.
//!
//! # The restart fence
//!
//! A server that restarts forgets every advisory lock, but a holder whose connection it
//! dropped may still be at work: a replica half-way through redeeming a rotating refresh
//! token, about to save the new one. Granting its lock at once would let another replica
//! read the old token and redeem it a second time, which revokes the login. So each holder
//! records its holding in `provider_secrets_lock_holds` (lock key, the server's start time
//! `pg_postmaster_start_time()`, since when) and deletes the row when it releases. A lock
//! taken while a row of another server incarnation is left over (its holder held it across
//! a restart and never released) is granted only once that holding is `restart_grace` old;
//! the wait counts against the caller's timeout, and the lock is kept meanwhile, so no one
//! else gets in. A row left by a holder that died on a running server (a killed process, a
//! dropped connection) is of the same incarnation and delays nothing.
//!
//! Because the release runs in the background, a lock taken in this process right after a
//! guard of the same key was dropped first waits for that release to finish (see
//! [`Releasing`]): within one process, dropped means released, as with the file store.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use deadpool_postgres::{Object, Pool, PoolError, TimeoutType};
use provider_secrets::SecretStoreError;
use sha2::{Digest, Sha256};
use tokio::time::{Instant, sleep, timeout};

use crate::error::Failure;

/// First pause between two attempts; doubled up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(5);
/// Longest pause between two attempts (each is a round trip to the database).
const MAX_PAUSE: Duration = Duration::from_millis(100);
/// How long a release may take before its connection is closed instead.
pub(crate) const UNLOCK_TIMEOUT: Duration = Duration::from_secs(5);

/// The advisory lock key of `name` in `tenant` (see the module docs).
pub fn lock_key(tenant: &str, name: &str) -> i64 {
    let mut hash = Sha256::new();
    hash.update(b"provider-host lock v1\0");
    for part in [tenant, name] {
        // Names are at most 128 bytes, so the cast cannot truncate.
        hash.update((part.len() as u32).to_be_bytes());
        hash.update(part.as_bytes());
    }
    let digest = hash.finalize();
    i64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}

/// Releases in flight in this process, by lock key: a lock of the same key waits for them.
struct Releasing {
    pending: Mutex<BTreeMap<i64, usize>>,
    done: Condvar,
}

static RELEASING: Releasing = Releasing {
    pending: Mutex::new(BTreeMap::new()),
    done: Condvar::new(),
};

/// One release in flight; over when dropped (whether the unlock finished, failed, or its
/// task was dropped with the runtime: then the connection closes, which releases too).
pub(crate) struct ReleaseTicket(i64);

impl ReleaseTicket {
    fn new(key: i64) -> Self {
        let mut pending = RELEASING.pending.lock().unwrap_or_else(|p| p.into_inner());
        *pending.entry(key).or_default() += 1;
        Self(key)
    }
}

impl Drop for ReleaseTicket {
    fn drop(&mut self) {
        let mut pending = RELEASING.pending.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = pending.get_mut(&self.0) {
            *n -= 1;
            if *n == 0 {
                pending.remove(&self.0);
            }
        }
        RELEASING.done.notify_all();
    }
}

/// Waits (blocking) until no release of `key` is in flight in this process, at most a
/// little longer than a release may take.
pub(crate) fn wait_for_releases(key: i64) {
    let limit = std::time::Instant::now() + UNLOCK_TIMEOUT + Duration::from_secs(1);
    let mut pending = RELEASING.pending.lock().unwrap_or_else(|p| p.into_inner());
    while pending.contains_key(&key) {
        let left = limit.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return;
        }
        pending = RELEASING
            .done
            .wait_timeout(pending, left)
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
}

/// How long from now a leftover holding of `$1` from another server incarnation is
/// fenced (no row: nothing fenced).
const FENCED_FOR: &str = "SELECT extract(epoch FROM held_since + make_interval(secs => $2) \
    - clock_timestamp())::float8 FROM provider_secrets_lock_holds \
    WHERE lock_key = $1 AND server_started <> pg_postmaster_start_time()";
/// Records the holding of `$1`, from now, on this incarnation of the server.
const RECORD_HOLD: &str = "INSERT INTO provider_secrets_lock_holds \
    (lock_key, server_started, held_since) VALUES ($1, pg_postmaster_start_time(), clock_timestamp()) \
    ON CONFLICT (lock_key) DO UPDATE SET server_started = EXCLUDED.server_started, \
    held_since = EXCLUDED.held_since";
/// Forgets the holding of `$1` and releases it (the row goes first: see the module docs).
const RELEASE: &str = "WITH gone AS (DELETE FROM provider_secrets_lock_holds WHERE lock_key = $1) \
    SELECT pg_advisory_unlock($1)";

/// Takes lock `key` on a connection of `pool`, polling until `deadline` (one attempt at
/// least), then waits out the restart fence (`grace`, see the module docs) within the same
/// deadline; `what` names the lock in errors.
pub(crate) async fn acquire(
    pool: &Pool,
    key: i64,
    deadline: Instant,
    call_timeout: Duration,
    grace: Duration,
    what: &str,
) -> Result<Object, SecretStoreError> {
    let client = take(pool, key, deadline, call_timeout, what).await?;
    match fence(&client, key, deadline, call_timeout, grace, what).await {
        Ok(()) => Ok(client),
        Err(e) => {
            // Not kept: its connection goes, and with it the lock (the row stays).
            drop(Object::take(client));
            Err(e)
        }
    }
}

/// Waits out a leftover holding of `key` from before a server restart, then records this
/// one.
async fn fence(
    client: &Object,
    key: i64,
    deadline: Instant,
    call_timeout: Duration,
    grace: Duration,
    what: &str,
) -> Result<(), SecretStoreError> {
    if !grace.is_zero() {
        let fenced = bounded(call_timeout, what, async {
            let statement = client.prepare_cached(FENCED_FOR).await?;
            let row = client
                .query_opt(&statement, &[&key, &grace.as_secs_f64()])
                .await?;
            Ok(row.and_then(|r| r.get::<_, Option<f64>>(0)))
        })
        .await?;
        // Never longer than the grace itself (a clock that jumped back).
        if let Some(wait) = fenced
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .filter(|w| !w.is_zero())
            .map(|w| grace.min(w))
        {
            if Instant::now() + wait > deadline {
                return Err(SecretStoreError::LockTimeout(format!(
                    "{what} was held when the database restarted, and its holder may still \
                     be at work: it is granted again {:.1} s from now (the restart grace); \
                     gave up after the timeout",
                    wait.as_secs_f64()
                )));
            }
            tracing::info!(
                lock_key = key,
                wait_ms = wait.as_millis() as u64,
                "lock held across a database restart: waiting out the restart grace"
            );
            sleep(wait).await;
        }
    }
    // Recorded even when this host's fence is off: other replicas may have one.
    bounded(call_timeout, what, async {
        let statement = client.prepare_cached(RECORD_HOLD).await?;
        client.execute(&statement, &[&key]).await
    })
    .await?;
    Ok(())
}

/// One statement on a lock connection, given `call_timeout`; its failure typed for `what`.
async fn bounded<T>(
    call_timeout: Duration,
    what: &str,
    statement: impl Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, SecretStoreError> {
    match timeout(call_timeout, statement).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(crate::error::unavailable(what, &e)),
        Err(_) => Err(crate::db::timed_out(what)),
    }
}

/// Takes the advisory lock `key` (see [`acquire`]).
async fn take(
    pool: &Pool,
    key: i64,
    deadline: Instant,
    call_timeout: Duration,
    what: &str,
) -> Result<Object, SecretStoreError> {
    let waited_out = |extra: &str| {
        SecretStoreError::LockTimeout(format!(
            "{what} is held elsewhere{extra}; gave up after the timeout"
        ))
    };
    let mut timeouts = pool.timeouts();
    // Waiting for a lock connection is waiting for the lock: bounded by the caller's
    // timeout (zero: only if one is free or can be opened now).
    timeouts.wait = Some(deadline.saturating_duration_since(Instant::now()));
    let client = match pool.timeout_get(&timeouts).await {
        Ok(client) => client,
        Err(PoolError::Timeout(TimeoutType::Wait)) => {
            return Err(waited_out(
                " (or every lock connection of this host is in use: see lock_connections)",
            ));
        }
        Err(e) => return Err(Failure::from(e).into_store_error(what)),
    };
    let mut pause = FIRST_PAUSE;
    loop {
        let attempt = bounded(call_timeout, what, async {
            let statement = client
                .prepare_cached("SELECT pg_try_advisory_lock($1)")
                .await?;
            Ok(client
                .query_one(&statement, &[&key])
                .await?
                .get::<_, bool>(0))
        })
        .await;
        match attempt {
            Ok(true) => return Ok(client),
            Ok(false) => {}
            Err(e) => {
                drop(Object::take(client));
                return Err(e);
            }
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(waited_out(""));
        }
        sleep(pause.min(deadline - now)).await;
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

/// A held lock: its connection, and what its release needs.
pub(crate) struct HeldLock {
    /// `None` only while dropping.
    client: Option<Object>,
    key: i64,
    /// The runtime that runs the release (kept alive by `_backend`).
    handle: tokio::runtime::Handle,
    /// Keeps the runtime and pools alive for the guard's life.
    _backend: Arc<dyn Send + Sync>,
    /// The tenant handle's count of held locks, credited back on release.
    held: Option<Arc<AtomicUsize>>,
}

impl HeldLock {
    pub(crate) fn new(
        client: Object,
        key: i64,
        handle: tokio::runtime::Handle,
        backend: Arc<dyn Send + Sync>,
    ) -> Self {
        Self {
            client: Some(client),
            key,
            handle,
            _backend: backend,
            held: None,
        }
    }

    /// Counts this lock against `held` until dropped (the caller has incremented it).
    pub(crate) fn count_against(&mut self, held: Arc<AtomicUsize>) {
        self.held = Some(held);
    }
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        if let Some(held) = self.held.take() {
            held.fetch_sub(1, Ordering::AcqRel);
        }
        let Some(client) = self.client.take() else {
            return;
        };
        let key = self.key;
        let ticket = ReleaseTicket::new(key);
        self.handle.spawn(async move {
            let _ticket = ticket;
            let unlocked = timeout(UNLOCK_TIMEOUT, async {
                let statement = client.prepare_cached(RELEASE).await?;
                let released: bool = client.query_one(&statement, &[&key]).await?.get(0);
                Ok::<_, tokio_postgres::Error>(released)
            })
            .await;
            match unlocked {
                // Back to the pool, holding nothing.
                Ok(Ok(true)) => drop(client),
                outcome => {
                    // Unsure what the session still holds: close it, which releases
                    // everything it held.
                    tracing::warn!(
                        lock_key = key,
                        answered = ?outcome.as_ref().ok().and_then(|r| r.as_ref().ok()),
                        "releasing a secret lock failed; closing its connection instead"
                    );
                    drop(Object::take(client));
                }
            }
        });
    }
}
