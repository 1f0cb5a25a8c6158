//! Per-session resource limits: one memory budget per instance (every linear memory and
//! table of its store counted together), caps on its core instances, memories, tables and
//! resource-table entries, and a CPU/wall-time budget per export call, enforced with
//! wasmtime's epoch interruption; one memory budget for all instances of a runtime
//! ([`MemoryBudget`]); and how the instances of live sessions are allocated
//! ([`InstanceAllocation`]).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use wasmtime::{Engine, ResourceLimiter};

use crate::http_sandbox::HttpLimits;

/// How often the engine's epoch advances; the granularity of call deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Limits applied to every tenant session.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most bytes all linear memories and tables of an instance may hold together (a table
    /// element counts [`TABLE_ELEMENT_BYTES`]).
    pub memory_bytes: usize,
    /// Most bytes the instances of all sessions of one [`Runtime`](crate::Runtime) may
    /// hold together, counted as [`Self::memory_bytes`] is ([`MemoryBudget`]): many
    /// sessions each under its own cap cannot add up to more. `None`: no bound but the
    /// per-instance one.
    pub memory_budget_bytes: Option<usize>,
    /// Most entries of a session's resource table (streams, pollables, `fields`, requests,
    /// ... alive at once); past it the call that would add one traps with
    /// [`HostError::ResourceLimit`](crate::HostError::ResourceLimit).
    pub max_resources: usize,
    /// Longest one export call may run, host waits included.
    pub call_timeout: Duration,
    /// Longest a plugin may wait for a secret-store lock.
    pub lock_timeout_cap: Duration,
    /// Outgoing HTTP caps.
    pub http: HttpLimits,
    /// Most bytes the host copies out of the plugin in one crossing: an import's arguments
    /// or an export's result (wasmtime's hostcall fuel, 128 MiB unless lowered). Past it
    /// the call traps with [`HostError::ResourceLimit`](crate::HostError::ResourceLimit),
    /// before the host allocates: a plugin answering a 600,000-entry model list does not
    /// make the host hold gigabytes.
    pub max_lifted_bytes: usize,
    /// Bytes of stderr a plugin may write per export call (logged line by line as the
    /// plugin's); the rest is dropped, and said so.
    pub stderr_bytes_per_call: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: 64 * 1024 * 1024,
            memory_budget_bytes: Some(DEFAULT_MEMORY_BUDGET_BYTES),
            max_resources: DEFAULT_MAX_RESOURCES,
            call_timeout: Duration::from_secs(300),
            lock_timeout_cap: Duration::from_secs(180),
            http: HttpLimits::default(),
            max_lifted_bytes: DEFAULT_MAX_LIFTED_BYTES,
            stderr_bytes_per_call: DEFAULT_STDERR_BYTES_PER_CALL,
        }
    }
}

impl Limits {
    /// The call budget in epoch ticks.
    pub(crate) fn call_ticks(&self) -> u64 {
        (self.call_timeout.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64
    }
}

/// Default of [`Limits::memory_budget_bytes`]: six instances at their cap, or a few hundred
/// sessions of the xAI plugin (about 1.1 MiB each at rest), with a service's own memory
/// under 512 MiB.
pub const DEFAULT_MEMORY_BUDGET_BYTES: usize = 384 * 1024 * 1024;

/// Default of [`Limits::max_lifted_bytes`]: a reply of the longest text a model writes,
/// many times over; a chat request's images go the other way (host to plugin) and are not
/// counted.
pub const DEFAULT_MAX_LIFTED_BYTES: usize = 8 * 1024 * 1024;

/// Default of [`Limits::stderr_bytes_per_call`].
pub const DEFAULT_STDERR_BYTES_PER_CALL: usize = 16 * 1024;

/// Default of [`Limits::max_resources`]: the plugin holds a few dozen at most.
pub const DEFAULT_MAX_RESOURCES: usize = 2_048;

/// What one component instance may contain, whichever the allocation: a `wasm32-wasip2`
/// component (like the plugin) instantiates three core modules with one memory and two
/// tables. The pool's slots are sized by these; on demand, `MemoryCap` enforces them. A
/// component that needs more is refused ([`HostError::ResourceLimit`](crate::HostError)).
pub const MAX_CORE_INSTANCES: u32 = 4;
/// See [`MAX_CORE_INSTANCES`].
pub const MAX_MEMORIES: u32 = 1;
/// See [`MAX_CORE_INSTANCES`].
pub const MAX_TABLES: u32 = 2;
/// Largest table an instance may have (the plugin's has 152 elements).
pub const MAX_TABLE_ELEMENTS: usize = 10_000;
/// What a table element counts against [`Limits::memory_bytes`].
pub const TABLE_ELEMENT_BYTES: usize = 8;

/// Default of [`InstanceAllocation::Pooling::max_live_instances`]: ten thousand tenants,
/// plus headroom for sessions being replaced. It is also about what Linux's default
/// `vm.max_map_count` (65,530 mappings per process) allows: the pool maps two areas per
/// slot up front and a live session adds about four.
pub const DEFAULT_MAX_LIVE_INSTANCES: u32 = 10_500;

/// How the instances of live sessions get their linear memory, tables and fiber stacks.
///
/// Either way a session's instance lives until the session is dropped (or traps), and
/// [`Limits::memory_bytes`] caps its memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceAllocation {
    /// wasmtime's pooling allocator, for services with many tenants: address space for
    /// `max_live_instances` instances is reserved once per process and shared by every
    /// runtime (pages become resident only as instances touch them). Instantiating takes a
    /// free slot, with the component's data mapped copy-on-write, so opening and dropping
    /// a session cost microseconds and no `mmap`. Past the limit, opening a session fails
    /// until another is dropped.
    ///
    /// The reservation is made when the process's first pooling runtime is created and
    /// costs one `mprotect` per slot (about 40 ms for the default size on a small VM), so a
    /// process that opens one session, like the CLI, should use
    /// [`InstanceAllocation::OnDemand`]. A later runtime that asks for more slots (or a
    /// larger memory cap) than the process's pool has, or a pool that cannot be reserved
    /// (e.g. under `ulimit -v`), gets on-demand allocation instead.
    Pooling {
        /// Most sessions holding an instance at once, over all runtimes of the process.
        max_live_instances: u32,
    },
    /// A fresh mapping per instance (wasmtime's default strategy): nothing reserved up
    /// front and no limit on live sessions; slower to instantiate and drop.
    OnDemand,
}

impl Default for InstanceAllocation {
    fn default() -> Self {
        Self::Pooling {
            max_live_instances: DEFAULT_MAX_LIVE_INSTANCES,
        }
    }
}

/// Raised (as the error of a memory grow) when an instance asks for more than its cap.
#[derive(Debug, thiserror::Error)]
#[error("the plugin asked for {asked} bytes of memory; the limit is {limit}")]
pub struct MemoryLimitExceeded {
    /// Bytes asked for.
    pub asked: usize,
    /// The cap.
    pub limit: usize,
}

/// Raised (as the error of a memory grow) when the instances of a runtime together hold
/// its whole [`MemoryBudget`]: the host is loaded, the plugin did nothing wrong.
#[derive(Debug, thiserror::Error)]
#[error(
    "the plugins' memory budget of this host ({limit} bytes) is in use by other calls; {asked} \
     more bytes were asked"
)]
pub struct MemoryBudgetExceeded {
    /// Bytes the instance asked for on top of what it held.
    pub asked: usize,
    /// The budget.
    pub limit: usize,
}

/// Bytes of plugin memory that all instances of one [`Runtime`](crate::Runtime) may hold
/// together ([`Limits::memory_budget_bytes`]). An instance takes its share as it grows and
/// gives it back when its store is dropped. When a grow does not fit, the budget first
/// asks its reclaimers (a [`SessionPool`](crate::SessionPool) drops idle sessions, oldest
/// first) and only then refuses the grow with [`MemoryBudgetExceeded`].
pub struct MemoryBudget {
    limit: usize,
    used: AtomicUsize,
    reclaimers: Mutex<Vec<Weak<dyn Reclaim>>>,
}

impl std::fmt::Debug for MemoryBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBudget")
            .field("limit", &self.limit)
            .field("used", &self.used())
            .finish_non_exhaustive()
    }
}

/// Something that can free budget on demand (idle sessions it keeps).
pub(crate) trait Reclaim: Send + Sync {
    /// Drops idle sessions until `budget` has `needed` bytes free or none is left.
    fn reclaim(&self, budget: &MemoryBudget, needed: usize);
}

impl MemoryBudget {
    /// A budget of `limit` bytes, none taken.
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            used: AtomicUsize::new(0),
            reclaimers: Mutex::default(),
        }
    }

    /// The budget in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes held by live instances now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Bytes free now.
    pub fn available(&self) -> usize {
        self.limit.saturating_sub(self.used())
    }

    pub(crate) fn add_reclaimer(&self, r: Weak<dyn Reclaim>) {
        let mut list = self
            .reclaimers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        list.retain(|w| w.strong_count() > 0);
        list.push(r);
    }

    fn try_take(&self, bytes: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|&u| u <= self.limit)
            })
            .is_ok()
    }

    /// Takes `bytes`, reclaiming idle sessions when they do not fit.
    fn take(&self, bytes: usize) -> Result<(), MemoryBudgetExceeded> {
        if bytes == 0 || self.try_take(bytes) {
            return Ok(());
        }
        // Cloned out of the lock: a reclaimer drops stores, which give back (no lock).
        let reclaimers: Vec<_> = self
            .reclaimers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        for r in reclaimers {
            r.reclaim(self, bytes);
            if self.try_take(bytes) {
                return Ok(());
            }
        }
        Err(MemoryBudgetExceeded {
            asked: bytes,
            limit: self.limit,
        })
    }

    fn give_back(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
    }
}

/// Limiter of one store (one instance): every linear memory and table it creates or grows
/// counts against one budget, and growing past it traps with [`MemoryLimitExceeded`]; it
/// may hold at most [`MAX_CORE_INSTANCES`] core instances, [`MAX_MEMORIES`] memories and
/// [`MAX_TABLES`] tables of at most [`MAX_TABLE_ELEMENTS`] elements. What it holds is also
/// taken from the runtime's [`MemoryBudget`], if any, and given back when the store drops.
pub(crate) struct MemoryCap {
    limit: usize,
    /// Bytes of every memory and table of the store, as last allowed to grow (a store's
    /// memories and tables live as long as it: nothing is subtracted).
    used: usize,
    budget: Option<Arc<MemoryBudget>>,
}

impl MemoryCap {
    pub(crate) fn new(limit: usize, budget: Option<Arc<MemoryBudget>>) -> Self {
        Self {
            limit,
            used: 0,
            budget,
        }
    }

    fn grow(&mut self, current: usize, desired: usize) -> wasmtime::Result<bool> {
        let more = desired.saturating_sub(current);
        let asked = self.used.saturating_add(more);
        if asked > self.limit {
            return Err(MemoryLimitExceeded {
                asked,
                limit: self.limit,
            }
            .into());
        }
        if let Some(budget) = &self.budget {
            budget.take(more)?;
        }
        self.used = asked;
        Ok(true)
    }
}

impl Drop for MemoryCap {
    fn drop(&mut self) {
        if let Some(budget) = &self.budget {
            budget.give_back(self.used);
        }
    }
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.grow(current, desired)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > MAX_TABLE_ELEMENTS {
            return Ok(false);
        }
        self.grow(
            current.saturating_mul(TABLE_ELEMENT_BYTES),
            desired.saturating_mul(TABLE_ELEMENT_BYTES),
        )
    }

    fn instances(&self) -> usize {
        MAX_CORE_INSTANCES as usize
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES as usize
    }

    fn tables(&self) -> usize {
        MAX_TABLES as usize
    }
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until dropped.
pub(crate) struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for EpochTicker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EpochTicker").finish_non_exhaustive()
    }
}

impl EpochTicker {
    pub(crate) fn start(engine: &Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let weak: Weak<AtomicBool> = Arc::downgrade(&stop);
        let engine = engine.weak();
        let thread = std::thread::Builder::new()
            .name("epoch-ticker".into())
            .spawn(move || {
                while let Some(stop) = weak.upgrade() {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    drop(stop);
                    let Some(engine) = engine.upgrade() else {
                        break;
                    };
                    engine.increment_epoch();
                    drop(engine);
                    // Parked rather than slept, so that dropping the ticker wakes it at
                    // once instead of waiting out the tick (a CLI call exits sooner).
                    let next = Instant::now() + EPOCH_TICK;
                    while let Some(left) = next.checked_duration_since(Instant::now()) {
                        if left.is_zero()
                            || weak.upgrade().is_none_or(|s| s.load(Ordering::Relaxed))
                        {
                            break;
                        }
                        std::thread::park_timeout(left);
                    }
                }
            })
            .expect("spawn epoch ticker");
        Self {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let thread: &Thread = t.thread();
            thread.unpark();
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::component::{Component, Linker};
    use wasmtime::{Config, Store};

    /// A component of `instances` core instances of one module whose start function fills
    /// `fill_mib` MiB of its own memory of `pages` pages.
    fn component(instances: u8, pages: u16, fill_mib: u8) -> Vec<u8> {
        let fill = u32::from(fill_mib) << 20;
        let instances = "(core instance (instantiate $m))".repeat(usize::from(instances));
        wat::parse_str(format!(
            "(component
               (core module $m
                 (memory {pages})
                 (func $fill (memory.fill (i32.const 0) (i32.const 1) (i32.const {fill})))
                 (start $fill))
               {instances})"
        ))
        .expect("valid component text")
    }

    fn instantiate(bytes: &[u8], limit: usize) -> wasmtime::Result<()> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        let engine = Engine::new(&config)?;
        let component = Component::new(&engine, bytes)?;
        let mut store = Store::new(&engine, MemoryCap::new(limit, None));
        store.limiter(|s| s);
        Linker::<MemoryCap>::new(&engine).instantiate(&mut store, &component)?;
        Ok(())
    }

    fn rss_kib() -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    #[test]
    fn one_instance_budget_counts_every_core_instance_on_demand() {
        // 20 core instances, each filling 32 MiB of its own 64 MiB memory: 640 MiB resident
        // if each memory were capped on its own.
        let before = rss_kib();
        let err = instantiate(&component(20, 1024, 32), 64 << 20).unwrap_err();
        let grew = rss_kib().saturating_sub(before) << 10;
        assert!(
            format!("{err:#}").contains("resource limit exceeded"),
            "{err:#}"
        );
        assert!(grew < 200 << 20, "RSS grew by {} MiB", grew >> 20);
        // One such instance fits.
        instantiate(&component(1, 1024, 1), 64 << 20).unwrap();
    }

    #[test]
    fn memories_and_tables_share_one_byte_budget() {
        let mut cap = MemoryCap::new(1 << 20, None);
        assert!(cap.memory_growing(0, 512 << 10, None).unwrap());
        assert!(cap.table_growing(0, 1000, None).unwrap());
        // The memory's second half no longer fits next to the table.
        let err = cap.memory_growing(512 << 10, 1 << 20, None).unwrap_err();
        assert!(
            err.downcast_ref::<MemoryLimitExceeded>().is_some(),
            "{err:#}"
        );
        assert!(
            !cap.table_growing(1000, MAX_TABLE_ELEMENTS + 1, None)
                .unwrap()
        );
    }

    struct DropAll(Mutex<Vec<MemoryCap>>);

    impl Reclaim for DropAll {
        fn reclaim(&self, budget: &MemoryBudget, needed: usize) {
            let mut idle = self.0.lock().unwrap();
            while budget.available() < needed && idle.pop().is_some() {}
        }
    }

    #[test]
    fn instances_share_the_runtime_budget_and_idle_ones_are_reclaimed() {
        let budget = Arc::new(MemoryBudget::new(3 << 20));
        let mut a = MemoryCap::new(2 << 20, Some(budget.clone()));
        let mut b = MemoryCap::new(2 << 20, Some(budget.clone()));
        assert!(a.memory_growing(0, 2 << 20, None).unwrap());
        assert!(b.memory_growing(0, 1 << 20, None).unwrap());
        // Each is under its own cap, but together they would pass the budget.
        let err = b.memory_growing(1 << 20, 2 << 20, None).unwrap_err();
        let e = err.downcast_ref::<MemoryBudgetExceeded>().expect("budget");
        assert_eq!((e.asked, e.limit), (1 << 20, 3 << 20));
        assert_eq!(budget.used(), 3 << 20);
        // A dropped instance gives its share back.
        drop(a);
        assert_eq!(budget.used(), 1 << 20);
        assert!(b.memory_growing(1 << 20, 2 << 20, None).unwrap());
        // An idle instance a reclaimer keeps is dropped to make room.
        let mut idle = MemoryCap::new(2 << 20, Some(budget.clone()));
        assert!(idle.memory_growing(0, 1 << 20, None).unwrap());
        let keeper: Arc<dyn Reclaim> = Arc::new(DropAll(Mutex::new(vec![idle])));
        budget.add_reclaimer(Arc::downgrade(&keeper));
        let mut c = MemoryCap::new(2 << 20, Some(budget.clone()));
        assert!(c.memory_growing(0, 1 << 20, None).unwrap());
        assert_eq!(budget.used(), 3 << 20);
        drop((b, c));
        assert_eq!(budget.used(), 0);
    }
}
