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
//! # The fence
//!
//! An advisory lock ends with its session, but not the work of its holder: a server that
//! restarts, a connection cut by a network partition or `pg_terminate_backend`, both end
//! the lock while a replica may be half-way through redeeming a rotating refresh token,
//! about to save the new one, without knowing it lost the lock. Granting the lock at once
//! would let another replica read the old token and redeem it a second time, which revokes
//! the login for the fleet. So:
//!
//! - Each holding is recorded in `provider_secrets_lock_holds` (lock key, the server's start
//!   time, since when, the last proof, and a fresh **fencing token** from a sequence); a
//!   clean release deletes the row.
//! - The holder **proves** it still holds the lock before every read and write it makes
//!   under it (through the tenant handle that took it): the row must still carry its token
//!   (one `UPDATE`, which also records the proof's time). A write proves in its own
//!   transaction, the row locked until the commit, so a takeover waits for the write or the
//!   write sees the takeover. A lock taken over since is [`SecretStoreError::LockLost`] and
//!   nothing is read or written: a holder cut off never acts on, or overwrites, what the
//!   next holder did.
//! - A row left over when a lock is taken (its holder never released: cut off, or dead) is
//!   **taken over** only `holder_grace` after that holder's last proof, within the caller's
//!   timeout (the lock is kept meanwhile, so no one else gets in). A holder that proved
//!   (read the refresh token) just before it was cut off has that long to redeem it and
//!   save the result under its still-valid token; the next holder then reads the new
//!   token. The price: a holder that died mid-lock delays its lock's next holder by up to
//!   the grace (a clean release, or an instance dropped at its budget, delays nobody).
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
/// Longest sleep between two looks at a leftover holding (see `fence`).
const GRACE_POLL: Duration = Duration::from_millis(250);
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

/// Waits (blocking) until no release is in flight in this process, at most a little
/// longer than a release may take: a process that drops its backend right after a guard
/// (a CLI command ending) lets the release finish rather than leave its holding for the
/// next holder to wait out the grace.
pub(crate) fn wait_for_all_releases() {
    let limit = std::time::Instant::now() + UNLOCK_TIMEOUT + Duration::from_secs(1);
    let mut pending = RELEASING.pending.lock().unwrap_or_else(|p| p.into_inner());
    while !pending.is_empty() {
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

/// How long from now a leftover holding of `$1` is fenced (`$2`: the grace), and whether it
/// is from before a server restart (no row: nothing fenced).
const FENCED_FOR: &str = "SELECT extract(epoch FROM greatest(held_since, \
    coalesce(proved_at, held_since)) + make_interval(secs => $2) - clock_timestamp())::float8, \
    server_started <> pg_postmaster_start_time() FROM provider_secrets_lock_holds \
    WHERE lock_key = $1";
/// Records the holding of `$1`, from now, with a fresh fencing token, unless a leftover
/// holding is still within the grace `$2` of its last proof (then no row is answered).
const RECORD_HOLD: &str = "INSERT INTO provider_secrets_lock_holds AS h \
    (lock_key, server_started, held_since, proved_at, fence) VALUES ($1, \
    pg_postmaster_start_time(), clock_timestamp(), clock_timestamp(), \
    nextval('provider_secrets_fence')) \
    ON CONFLICT (lock_key) DO UPDATE SET server_started = EXCLUDED.server_started, \
    held_since = EXCLUDED.held_since, proved_at = EXCLUDED.proved_at, fence = EXCLUDED.fence \
    WHERE greatest(h.held_since, coalesce(h.proved_at, h.held_since)) \
    + make_interval(secs => $2) <= clock_timestamp() \
    RETURNING fence";
/// Forgets the holding of `$1` if it still carries the token `$2` (after a failed release).
const FORGET: &str = "DELETE FROM provider_secrets_lock_holds WHERE lock_key = $1 AND fence = $2";
/// Forgets the holding of `$1` and releases it (the row goes first: see the module docs).
const RELEASE: &str = "WITH gone AS (DELETE FROM provider_secrets_lock_holds WHERE lock_key = $1) \
    SELECT pg_advisory_unlock($1)";

/// Takes lock `key` on a connection of `pool`, polling until `deadline` (one attempt at
/// least), then waits out a leftover holding (`grace`, see the module docs) within the same
/// deadline and records this one; `what` names the lock in errors. Answers the connection
/// and the holding's fencing token.
pub(crate) async fn acquire(
    pool: &Pool,
    key: i64,
    deadline: Instant,
    call_timeout: Duration,
    grace: Duration,
    what: &str,
) -> Result<(Object, i64), SecretStoreError> {
    let client = take(pool, key, deadline, call_timeout, what).await?;
    match fence(&client, key, deadline, call_timeout, grace, what).await {
        Ok(token) => Ok((client, token)),
        Err(e) => {
            // Not kept. A wait that ran out (callers wait in short slices, so this is
            // common during a grace) unlocks and keeps the connection for the next attempt;
            // anything else closes it, which unlocks too. The leftover row stays either way.
            let unlocked = matches!(e, SecretStoreError::LockTimeout(_))
                && matches!(
                    bounded(call_timeout, what, async {
                        let statement = client
                            .prepare_cached("SELECT pg_advisory_unlock($1)")
                            .await?;
                        Ok(client
                            .query_one(&statement, &[&key])
                            .await?
                            .get::<_, bool>(0))
                    })
                    .await,
                    Ok(true)
                );
            if !unlocked {
                drop(Object::take(client));
            }
            Err(e)
        }
    }
}

/// Waits out a leftover holding of `key` (its holder may still be at work), then records
/// this one; answers its fencing token.
async fn fence(
    client: &Object,
    key: i64,
    deadline: Instant,
    call_timeout: Duration,
    grace: Duration,
    what: &str,
) -> Result<i64, SecretStoreError> {
    let grace_secs = grace.as_secs_f64();
    loop {
        // Recorded even when this host's grace is zero: other replicas may have one.
        let token = bounded(call_timeout, what, async {
            let statement = client.prepare_cached(RECORD_HOLD).await?;
            let row = client.query_opt(&statement, &[&key, &grace_secs]).await?;
            Ok(row.map(|r| r.get::<_, i64>(0)))
        })
        .await?;
        if let Some(token) = token {
            return Ok(token);
        }
        let fenced = bounded(call_timeout, what, async {
            let statement = client.prepare_cached(FENCED_FOR).await?;
            let row = client.query_opt(&statement, &[&key, &grace_secs]).await?;
            Ok(row.map(|r| (r.get::<_, Option<f64>>(0), r.get::<_, bool>(1))))
        })
        .await?;
        let Some((left, restarted)) = fenced else {
            // Released meanwhile: record ours.
            continue;
        };
        // Never longer than the grace itself (a clock that jumped back).
        let left = left
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .unwrap_or_default()
            .min(grace);
        let now = Instant::now();
        if now >= deadline {
            let why = if restarted {
                "was held when the database restarted"
            } else {
                "was held by a holder that lost its database connection (cut off, or its \
                 host killed) without releasing it"
            };
            return Err(SecretStoreError::LockTimeout(format!(
                "{what} {why}, and that holder may still be at work: it is granted again \
                 {:.1} s from now (the holder grace); gave up after the timeout",
                left.as_secs_f64()
            )));
        }
        tracing::debug!(
            lock_key = key,
            left_ms = left.as_millis() as u64,
            restarted,
            "lock left behind by a holder cut off: waiting out the holder grace"
        );
        // In slices: the holding may be forgotten sooner (its holder finished), and a row
        // proved again meanwhile is re-read rather than polled in a tight loop.
        sleep(left.clamp(FIRST_PAUSE, GRACE_POLL).min(deadline - now)).await;
    }
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
    /// The value connections: a release whose lock connection failed forgets the holding
    /// on one of them.
    values: Pool,
    /// The tenant handle's fences and this lock's fencing token: what its reads and writes
    /// prove, until released.
    fenced: Option<(Fences, i64)>,
}

/// The locks a tenant handle (and its clones) holds, which its reads and writes prove.
pub(crate) type Fences = Arc<Mutex<Vec<crate::ops::Fence>>>;

impl HeldLock {
    pub(crate) fn new(
        client: Object,
        values: Pool,
        key: i64,
        handle: tokio::runtime::Handle,
        backend: Arc<dyn Send + Sync>,
    ) -> Self {
        Self {
            client: Some(client),
            values,
            key,
            handle,
            _backend: backend,
            held: None,
            fenced: None,
        }
    }

    /// Makes the reads and writes of a tenant handle prove this lock (token `token`, name
    /// `name`) until it is dropped.
    pub(crate) fn fence(&mut self, fences: Fences, token: i64, name: &str) {
        let mut list = fences.lock().unwrap_or_else(|p| p.into_inner());
        list.push(crate::ops::Fence {
            key: self.key,
            token,
            name: name.into(),
        });
        // One locking order of the holdings' rows for every prover.
        list.sort_by_key(|f| (f.key, f.token));
        drop(list);
        self.fenced = Some((fences, token));
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
        let token = self.fenced.take().map(|(fences, token)| {
            let mut list = fences.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(i) = list
                .iter()
                .position(|f| f.key == self.key && f.token == token)
            {
                list.remove(i);
            }
            token
        });
        let Some(client) = self.client.take() else {
            return;
        };
        let key = self.key;
        let values = self.values.clone();
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
                    // Our holding, if still ours, is over: say so on another connection,
                    // so the next holder does not wait out the grace for a holder that is
                    // done (a cut connection, a process that is still alive).
                    if let Some(token) = token {
                        let forgotten = timeout(UNLOCK_TIMEOUT, async {
                            let c = values.get().await.map_err(|e| e.to_string())?;
                            c.execute(FORGET, &[&key, &token])
                                .await
                                .map_err(|e| e.to_string())
                        })
                        .await;
                        if !matches!(forgotten, Ok(Ok(_))) {
                            tracing::warn!(
                                lock_key = key,
                                "could not forget a secret lock's holding; its next holder \
                                 waits out the holder grace"
                            );
                        }
                    }
                }
            }
        });
    }
}
