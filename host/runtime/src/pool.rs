//! Sessions reused per tenant: a server's way to call many tenants' plugins at once.
//!
//! A [`SessionPool`] keeps up to [`PoolOptions::sessions_per_tenant`] live sessions per
//! tenant (calls of one tenant run in parallel up to that, tenants independently), lends
//! one per call as a [`Lease`], takes it back when the lease is dropped if it is still fit
//! to serve ([`Session::is_reusable`]), and drops sessions idle longer than
//! [`PoolOptions::idle_timeout`]. A caller that finds all of its tenant's sessions busy
//! waits at most [`PoolOptions::max_wait`], then gets [`HostError::TenantBusy`]: never an
//! unbounded silent queue.
//!
//! Cancel safety: a lease may be dropped at any point (a client went away mid-call). The
//! session's own calls own their instance while they run ([`Session`]'s docs), so a dropped
//! call leaves the session with no instance rather than a half-entered one, and a session
//! with a stream left open is discarded here instead of being lent again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError, Weak};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::limits::{MemoryBudget, Reclaim};
use crate::{HostConfig, HostError, Runtime, Session};

/// How a [`SessionPool`] shares sessions.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct PoolOptions {
    /// Live sessions per tenant; more concurrent calls of one tenant wait for one.
    pub sessions_per_tenant: usize,
    /// How long a call waits for a session of its tenant before [`HostError::TenantBusy`].
    pub max_wait: Duration,
    /// A session unused this long is dropped (its instance and memory freed).
    pub idle_timeout: Duration,
}

// Default of `PoolOptions::sessions_per_tenant`.
const DEFAULT_SESSIONS_PER_TENANT: usize = 8;
// Default of `PoolOptions::max_wait`.
const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(10);
// Default of `PoolOptions::idle_timeout`.
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            sessions_per_tenant: DEFAULT_SESSIONS_PER_TENANT,
            max_wait: DEFAULT_MAX_WAIT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
        }
    }
}

impl PoolOptions {
    /// These options with `n` sessions per tenant (at least one).
    pub fn with_sessions_per_tenant(mut self, n: usize) -> Self {
        self.sessions_per_tenant = n.max(1);
        self
    }

    /// These options with a different bounded wait.
    pub fn with_max_wait(mut self, wait: Duration) -> Self {
        self.max_wait = wait;
        self
    }

    /// These options with a different idle timeout.
    pub fn with_idle_timeout(mut self, idle: Duration) -> Self {
        self.idle_timeout = idle;
        self
    }
}

struct Idle {
    session: Session,
    since: Instant,
}

struct TenantPool {
    idle: Mutex<Vec<Idle>>,
    slots: Arc<Semaphore>,
}

/// Every tenant's sessions, over one [`Runtime`] and one configuration.
pub struct SessionPool {
    runtime: Runtime,
    config: HostConfig,
    options: PoolOptions,
    tenants: Arc<Tenants>,
    last_sweep: Mutex<Instant>,
}

/// Every tenant's pool. Also what the runtime's memory budget reclaims from.
#[derive(Default)]
struct Tenants(Mutex<HashMap<String, Arc<TenantPool>>>);

impl Reclaim for Tenants {
    /// Drops idle sessions, the longest idle first, until `needed` bytes are free. Called
    /// from inside another instance's memory grow: it only tries the locks.
    fn reclaim(&self, budget: &MemoryBudget, needed: usize) {
        let tenants = match self.0.try_lock() {
            Ok(t) => t,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return,
        };
        while budget.available() < needed {
            let oldest = tenants
                .values()
                .filter_map(|p| Some((p.idle.try_lock().ok()?.first()?.since, p)))
                .min_by_key(|(since, _)| *since)
                .map(|(_, p)| p);
            let Some(pool) = oldest else { return };
            let Ok(mut idle) = pool.idle.try_lock() else {
                return;
            };
            let session = (!idle.is_empty()).then(|| idle.remove(0));
            drop(idle);
            // Its store gives its share back as it drops.
            drop(session);
        }
    }
}

/// A session lent to one call; back to its tenant's pool when dropped (if still fit).
pub struct Lease {
    session: Option<Session>,
    pool: Arc<TenantPool>,
    _slot: OwnedSemaphorePermit,
}

impl Lease {
    /// The lent session.
    pub fn session(&mut self) -> &mut Session {
        self.session
            .as_mut()
            .expect("a lease holds its session until dropped")
    }

    /// Drop the session instead of returning it (its caller knows it is unfit).
    pub fn discard(mut self) {
        self.session = None;
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(session) = self.session.take()
            && session.is_reusable()
        {
            lock(&self.pool.idle).push(Idle {
                session,
                since: Instant::now(),
            });
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SessionPool {
    /// A pool of sessions of `runtime` opened with `config`.
    ///
    /// When the runtime has a memory budget, the pool's idle sessions are dropped (the
    /// longest idle first) whenever an instance would not fit it otherwise.
    pub fn new(runtime: Runtime, config: HostConfig, options: PoolOptions) -> Self {
        let tenants = Arc::new(Tenants::default());
        if let Some(budget) = runtime.memory_budget() {
            let weak: Weak<dyn Reclaim> = Arc::downgrade(&(tenants.clone() as Arc<dyn Reclaim>));
            budget.add_reclaimer(weak);
        }
        Self {
            runtime,
            config,
            options,
            tenants,
            last_sweep: Mutex::new(Instant::now()),
        }
    }

    /// The options this pool was made with.
    pub fn options(&self) -> PoolOptions {
        self.options
    }

    /// A session of `tenant`: an idle one, or a new one while the tenant has fewer than
    /// [`PoolOptions::sessions_per_tenant`]; otherwise waits up to
    /// [`PoolOptions::max_wait`] for one to come back.
    pub async fn lease(&self, tenant: &str) -> Result<Lease, HostError> {
        self.sweep_if_due();
        // The first try happens under the tenants' lock, so `evict_idle` never forgets a
        // tenant between finding its pool and taking a slot of it (a waiting caller is
        // behind slots that are taken, which keeps the pool from being forgotten).
        let (pool, slot) = {
            let mut tenants = lock(&self.tenants.0);
            let pool = tenants
                .entry(tenant.to_owned())
                .or_insert_with(|| {
                    Arc::new(TenantPool {
                        idle: Mutex::default(),
                        slots: Arc::new(Semaphore::new(self.options.sessions_per_tenant)),
                    })
                })
                .clone();
            let slot = pool.slots.clone().try_acquire_owned().ok();
            (pool, slot)
        };
        let slot = match slot {
            Some(slot) => slot,
            None => {
                let waiting = pool.slots.clone().acquire_owned();
                match tokio::time::timeout(self.options.max_wait, waiting).await {
                    Ok(slot) => slot.expect("the semaphore is never closed"),
                    Err(_) => {
                        return Err(HostError::TenantBusy {
                            sessions: self.options.sessions_per_tenant,
                            waited: self.options.max_wait,
                        });
                    }
                }
            }
        };
        let idle = lock(&pool.idle).pop().map(|i| i.session);
        let session = match idle {
            Some(s) => s,
            None => self.runtime.session(tenant, &self.config).await?,
        };
        Ok(Lease {
            session: Some(session),
            pool,
            _slot: slot,
        })
    }

    /// Drops every session idle longer than [`PoolOptions::idle_timeout`], and forgets
    /// tenants left with none (neither idle nor lent). Called by [`Self::lease`] at most
    /// every quarter of the timeout; a server may also call it from a timer.
    pub fn evict_idle(&self) {
        let now = Instant::now();
        let idle_timeout = self.options.idle_timeout;
        let mut evicted = Vec::new();
        lock(&self.tenants.0).retain(|_, pool| {
            let mut idle = lock(&pool.idle);
            let (stale, fresh): (Vec<Idle>, Vec<Idle>) = idle
                .drain(..)
                .partition(|i| now.duration_since(i.since) >= idle_timeout);
            *idle = fresh;
            evicted.extend(stale);
            let unused = idle.is_empty()
                && pool.slots.available_permits() == self.options.sessions_per_tenant;
            !unused
        });
        // Instances are freed outside the locks.
        drop(evicted);
        *lock(&self.last_sweep) = now;
    }

    /// Sessions idle now, of every tenant.
    pub fn idle_sessions(&self) -> usize {
        lock(&self.tenants.0)
            .values()
            .map(|p| lock(&p.idle).len())
            .sum()
    }

    fn sweep_if_due(&self) {
        let due = lock(&self.last_sweep).elapsed() >= self.options.idle_timeout / 4;
        if due {
            self.evict_idle();
        }
    }
}
