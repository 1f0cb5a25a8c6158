//! Per-call resource limits: a memory cap per instance and a CPU/wall-time budget per
//! export call, enforced with wasmtime's epoch interruption.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

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
            lock_timeout_cap: Duration::from_secs(60),
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
                    std::thread::sleep(EPOCH_TICK);
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
            let _ = t.join();
        }
    }
}
