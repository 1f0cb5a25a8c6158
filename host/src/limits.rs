//! Per-call resource limits: a memory cap per instance and a CPU/wall-time budget per
//! export call, enforced with wasmtime's epoch interruption; and how the instances of live
//! sessions are allocated ([`InstanceAllocation`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use wasmtime::{Engine, ResourceLimiter};

use crate::http_sandbox::HttpLimits;

/// How often the engine's epoch advances; the granularity of call deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Limits applied to every tenant session.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest linear memory (and sum of tables) an instance may grow to.
    pub memory_bytes: usize,
    /// Longest one export call may run, host waits included.
    pub call_timeout: Duration,
    /// Longest a plugin may wait for a secret-store lock.
    pub lock_timeout_cap: Duration,
    /// Outgoing HTTP caps.
    pub http: HttpLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: 64 * 1024 * 1024,
            call_timeout: Duration::from_secs(300),
            lock_timeout_cap: Duration::from_secs(180),
            http: HttpLimits::default(),
        }
    }
}

impl Limits {
    /// The call budget in epoch ticks.
    pub(crate) fn call_ticks(&self) -> u64 {
        (self.call_timeout.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64
    }
}

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

/// Memory limiter of one store: growing past the cap traps with [`MemoryLimitExceeded`].
pub(crate) struct MemoryCap {
    limit: usize,
}

impl MemoryCap {
    pub(crate) fn new(limit: usize) -> Self {
        Self { limit }
    }
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            return Err(MemoryLimitExceeded {
                asked: desired,
                limit: self.limit,
            }
            .into());
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
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
