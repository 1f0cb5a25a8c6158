//! Process-wide engines: at most one wasmtime [`Engine`] per allocation strategy, each with
//! its epoch ticker and, per component digest, one pre-linked component. Every
//! [`Runtime`](crate::Runtime) of a process shares them, so a component is compiled (or
//! loaded from the on-disk cache) once per process, one instance pool serves every tenant,
//! and one ticker drives every deadline (two tickers on one engine would halve timeouts).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::bindings::ProviderPluginPre;
use crate::compile_cache::CompileCache;
use crate::error::HostError;
use crate::limits::{
    EpochTicker, InstanceAllocation, Limits, MAX_CORE_INSTANCES, MAX_MEMORIES, MAX_TABLE_ELEMENTS,
    MAX_TABLES,
};
use crate::runtime::PluginSource;
use crate::runtime::TenantState;

/// Address space reserved per linear memory, and what a pool slot holds at least (the
/// plugin's cap, [`Limits::memory_bytes`], is usually this; a larger cap gets larger
/// slots). Small, so that thousands of slots fit the address space; the price is an
/// explicit bounds check on memory accesses (wasmtime elides them only with 4 GiB
/// reservations), negligible next to this plugin's I/O.
const MIN_POOL_MEMORY: usize = 64 << 20;
/// Unmapped space after each memory: lets compiled code fold small constant offsets into
/// the bounds check.
const POOL_GUARD: u64 = 2 << 20;
/// Per component: one instance budget, the same as on-demand allocation enforces (see
/// [`MAX_CORE_INSTANCES`]); a component that does not fit is refused when loaded.
const CORE_INSTANCES_PER_COMPONENT: u32 = MAX_CORE_INSTANCES;
const MEMORIES_PER_COMPONENT: u32 = MAX_MEMORIES;
const TABLES_PER_COMPONENT: u32 = MAX_TABLES;
/// Dirty bytes of a freed slot reset in place rather than decommitted (a `status()` call
/// dirties a few hundred KiB of the plugin's memory).
const POOL_KEEP_RESIDENT: usize = 512 << 10;
/// Largest table a pooled instance may have.
const POOL_TABLE_ELEMENTS: usize = MAX_TABLE_ELEMENTS;

/// An engine shared by the runtimes of this process.
pub(crate) struct SharedEngine {
    engine: Engine,
    /// `Some` for the pooling engine: its capacity.
    pool: Option<PoolSize>,
    /// Pre-linked components by SHA-256 of their bytes.
    plugins: Mutex<HashMap<[u8; 32], ProviderPluginPre<TenantState>>>,
    _ticker: EpochTicker,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PoolSize {
    live_instances: u32,
    memory_bytes: usize,
}

static ENGINES: Mutex<Vec<Arc<SharedEngine>>> = Mutex::new(Vec::new());

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SharedEngine {
    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Whether instances come from the pooling allocator.
    pub(crate) fn is_pooling(&self) -> bool {
        self.pool.is_some()
    }

    /// The component of `source`, compiled for this engine and pre-linked against the
    /// host's imports (from this process's registry, else from the disk cache, else
    /// compiled), and the SHA-256 of its bytes.
    pub(crate) fn plugin(
        &self,
        source: &PluginSource,
        cache: Option<&CompileCache>,
    ) -> Result<(ProviderPluginPre<TenantState>, [u8; 32]), HostError> {
        let component = match source {
            PluginSource::File(path) => self.component_file(path, cache)?,
            PluginSource::Bytes(bytes) => {
                let digest: [u8; 32] = Sha256::digest(bytes).into();
                self.component(source, &digest, cache, || Ok(bytes.to_vec()))?
            }
            PluginSource::Static { bytes, sha256 } => {
                self.component(source, sha256, cache, || Ok(bytes.to_vec()))?
            }
        };
        match component {
            Loaded::Known(digest, pre) => Ok((*pre, digest)),
            Loaded::New(digest, c) => Ok((self.link(source, (digest, c))?, digest)),
        }
    }

    /// The compiled component of `digest`: this process's, else the cache's, else compiled
    /// from `bytes`.
    fn component(
        &self,
        source: &PluginSource,
        digest: &[u8; 32],
        cache: Option<&CompileCache>,
        bytes: impl FnOnce() -> Result<Vec<u8>, HostError>,
    ) -> Result<Loaded, HostError> {
        if let Some(pre) = lock(&self.plugins).get(digest) {
            return Ok(Loaded::Known(*digest, Box::new(pre.clone())));
        }
        // Loaded outside the lock: a slow compile must not stall other runtimes. Two
        // threads racing here both compile; the registry keeps one.
        let c = load_component(&self.engine, source, digest, cache, bytes)?;
        Ok(Loaded::New(*digest, c))
    }

    fn component_file(
        &self,
        path: &Path,
        cache: Option<&CompileCache>,
    ) -> Result<Loaded, HostError> {
        let read = || {
            std::fs::read(path).map_err(|e| {
                HostError::InvalidComponent(format!("cannot read {}: {e}", path.display()))
            })
        };
        // The digest of a file already seen (same inode, size and times) comes from the
        // cache's memo, so a CLI call neither reads nor hashes the component.
        let memo = cache.and_then(|c| DigestMemo::new(c, path));
        let (digest, mut bytes) = match memo.as_ref().and_then(DigestMemo::get) {
            Some(digest) => (digest, None),
            None => {
                let bytes = read()?;
                let digest: [u8; 32] = Sha256::digest(&bytes).into();
                if let Some(m) = &memo {
                    m.set(&digest);
                }
                (digest, Some(bytes))
            }
        };
        let source = PluginSource::File(path.to_path_buf());
        self.component(&source, &digest, cache, || match bytes.take() {
            Some(b) => Ok(b),
            // Known by its memo only: read now, and make sure it is still that file
            // (changed in the same instant as the memo saw it, it would not be).
            None => {
                let b = read()?;
                if <[u8; 32]>::from(Sha256::digest(&b)) != digest {
                    return Err(HostError::InvalidComponent(format!(
                        "{} changed while it was being loaded; try again",
                        path.display()
                    )));
                }
                Ok(b)
            }
        })
    }

    fn link(
        &self,
        source: &PluginSource,
        (digest, component): ([u8; 32], Component),
    ) -> Result<ProviderPluginPre<TenantState>, HostError> {
        let mut linker: Linker<TenantState> = Linker::new(&self.engine);
        // Every import of the world, as an embedder with its own store data links them.
        crate::capabilities::add_to_linker(&mut linker)
            .map_err(|e| HostError::HostSetup(format!("linking: {e}")))?;
        let pre = linker
            .instantiate_pre(&component)
            .and_then(ProviderPluginPre::new)
            .map_err(|e| {
                HostError::InvalidComponent(format!(
                    "{source} does not fit the model-provider:plugin world: {e:#}"
                ))
            })?;
        Ok(lock(&self.plugins).entry(digest).or_insert(pre).clone())
    }
}

/// The engine for `allocation` and `limits`, created on first use. There is at most one
/// pooling engine per process (its reservation is sized for the whole process); a runtime
/// whose needs exceed it, or whose pool cannot be reserved, gets the on-demand engine.
pub(crate) fn shared(
    allocation: InstanceAllocation,
    limits: &Limits,
) -> Result<Arc<SharedEngine>, HostError> {
    let mut engines = lock(&ENGINES);
    if let InstanceAllocation::Pooling { max_live_instances } = allocation {
        let want = PoolSize {
            live_instances: max_live_instances.max(1),
            memory_bytes: limits
                .memory_bytes
                .max(MIN_POOL_MEMORY)
                .next_multiple_of(64 << 10),
        };
        let existing = engines.iter().find(|e| e.pool.is_some());
        match existing {
            Some(e) => {
                let have = e.pool.expect("pooling engine");
                if have.live_instances >= want.live_instances
                    && have.memory_bytes >= limits.memory_bytes
                {
                    return Ok(e.clone());
                }
                tracing::debug!(
                    ?have,
                    ?want,
                    "the process's instance pool is too small for this runtime; allocating on demand"
                );
            }
            None => match build(Some(want)) {
                Ok(e) => {
                    let e = Arc::new(e);
                    engines.push(e.clone());
                    return Ok(e);
                }
                Err(err) => tracing::warn!(
                    error = %err,
                    "cannot reserve the instance pool; allocating instances on demand"
                ),
            },
        }
    }
    if let Some(e) = engines.iter().find(|e| e.pool.is_none()) {
        return Ok(e.clone());
    }
    let e = Arc::new(build(None).map_err(|e| HostError::HostSetup(format!("engine: {e:#}")))?);
    engines.push(e.clone());
    Ok(e)
}

fn build(pool: Option<PoolSize>) -> wasmtime::Result<SharedEngine> {
    let mut config = Config::new();
    // The memory settings are the same for both engines, so that both compile the same
    // code and share one artifact in the compile cache (a CLI on demand, a service pooled).
    config
        .epoch_interruption(true)
        .wasm_component_model(true)
        .memory_reservation(MIN_POOL_MEMORY as u64)
        .memory_guard_size(POOL_GUARD)
        .memory_init_cow(true)
        // `.eh_frame` only serves native unwinders (debuggers, profilers); wasmtime's own
        // traps and backtraces do not use it. Without it the artifact is ~5% smaller and
        // its load registers no unwind tables.
        .native_unwind_info(false);
    #[cfg(target_arch = "x86_64")]
    config.with_custom_code_memory(Some(Arc::new(ProtectCode)));
    if let Some(p) = pool {
        let n = p.live_instances;
        let mut pooling = PoolingAllocationConfig::new();
        pooling
            .total_component_instances(n)
            .total_core_instances(n.saturating_mul(CORE_INSTANCES_PER_COMPONENT))
            .max_core_instances_per_component(CORE_INSTANCES_PER_COMPONENT)
            .total_memories(n.saturating_mul(MEMORIES_PER_COMPONENT))
            .max_memories_per_component(MEMORIES_PER_COMPONENT)
            .total_tables(n.saturating_mul(TABLES_PER_COMPONENT))
            .max_tables_per_component(TABLES_PER_COMPONENT)
            .table_elements(POOL_TABLE_ELEMENTS)
            .max_memory_size(p.memory_bytes)
            // Every idle store keeps the fiber stack of its last call.
            .total_stacks(n);
        if PoolingAllocationConfig::is_pagemap_scan_available() {
            // A dropped instance's slot is reset by rewriting only the pages it dirtied
            // (found with PAGEMAP_SCAN, Linux 6.7+) instead of `madvise`-ing them away, so
            // the next session in that slot takes no page faults. Without the scan the
            // reset would `memset` the whole kept range: then `madvise` is cheaper.
            pooling
                .pagemap_scan(Enabled::Yes)
                .linear_memory_keep_resident(POOL_KEEP_RESIDENT)
                .table_keep_resident(POOL_KEEP_RESIDENT);
        }
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
    }
    let engine = Engine::new(&config)?;
    let ticker = EpochTicker::start(&engine);
    Ok(SharedEngine {
        engine,
        pool,
        plugins: Mutex::new(HashMap::new()),
        _ticker: ticker,
    })
}

/// Why `Component::new` refused `source`. A component that does not fit one instance budget
/// (more core instances, memories or tables than a wasm32-wasip2 component has) is a
/// resource limit, pooled or not (on demand, `MemoryCap` refuses it at instantiation);
/// wasmtime reports the pool's refusal only as text, so it is recognised here, once.
fn refused_component(source: &PluginSource, e: wasmtime::Error) -> HostError {
    let text = format!("{e:#}");
    // Only the pooling engine says this.
    if text.contains("pooling allocator") {
        return HostError::ResourceLimit(format!(
            "{source} does not fit one instance's budget (at most {} core instances, {} \
             memories, {} tables): {text}",
            crate::limits::MAX_CORE_INSTANCES,
            crate::limits::MAX_MEMORIES,
            crate::limits::MAX_TABLES,
        ));
    }
    HostError::InvalidComponent(format!("{source} is not a valid component: {text}"))
}

/// Compile the component (its bytes, whose SHA-256 is `digest`, come from `bytes`), or load
/// it from the on-disk cache keyed by that digest and the engine's compatibility hash (so a
/// CLI call never recompiles).
fn load_component(
    engine: &Engine,
    source: &PluginSource,
    digest: &[u8; 32],
    cache: Option<&CompileCache>,
    bytes: impl FnOnce() -> Result<Vec<u8>, HostError>,
) -> Result<Component, HostError> {
    let compile = || {
        let bytes = bytes()?;
        Component::new(engine, &bytes).map_err(|e| refused_component(source, e))
    };
    let Some(cache) = cache else { return compile() };

    let mut engine_hash = std::collections::hash_map::DefaultHasher::new();
    engine
        .precompile_compatibility_hash()
        .hash(&mut engine_hash);
    let name = format!(
        "{}-{:016x}.cwasm",
        hex::encode(&digest[..16]),
        engine_hash.finish()
    );
    if let Some(image) = cache.read_image(&name) {
        // SAFETY (both): `read_image` returns only what this host serialized under this
        // name (the component's digest and the engine's compatibility hash),
        // authenticated by a MAC under a key derived from the master key, from a private
        // file of this user, in read-only memory of this process that nothing writes.
        #[cfg(target_arch = "x86_64")]
        {
            // In place (no second copy of the native code): the engine's `ProtectCode`
            // makes the text executable; the image stays mapped as long as the process,
            // like the registry that keeps the component.
            if let Ok(c) = unsafe { Component::deserialize_raw(engine, image_ptr(&image)) } {
                image.leak();
                return Ok(c);
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        if let Ok(c) = unsafe { Component::deserialize(engine, image.bytes()) } {
            return Ok(c);
        }
    }
    let component = compile()?;
    if let Ok(serialized) = component.serialize() {
        cache.write(&name, &serialized);
    }
    Ok(component)
}

/// The image's memory, for `deserialize_raw` (kept mapped by `leak` on success).
#[cfg(target_arch = "x86_64")]
fn image_ptr(image: &crate::compile_cache::Image) -> std::ptr::NonNull<[u8]> {
    let bytes = image.bytes();
    std::ptr::NonNull::slice_from_raw_parts(
        std::ptr::NonNull::from(bytes).cast::<u8>(),
        bytes.len(),
    )
}

/// Code memory made executable with `mprotect`, as wasmtime does for memory it maps
/// itself, but also for a compile-cache image loaded in place (which wasmtime, not owning
/// it, would otherwise refuse to publish). x86-64 only: there the instruction cache needs
/// no maintenance after code is written.
#[cfg(target_arch = "x86_64")]
struct ProtectCode;

#[cfg(target_arch = "x86_64")]
impl wasmtime::CustomCodeMemory for ProtectCode {
    fn required_alignment(&self) -> usize {
        crate::compile_cache::page_size()
    }

    fn publish_executable(&self, ptr: *const u8, len: usize) -> wasmtime::Result<()> {
        protect(ptr, len, libc::PROT_READ | libc::PROT_EXEC)
    }

    fn unpublish_executable(&self, ptr: *const u8, len: usize) -> wasmtime::Result<()> {
        protect(ptr, len, libc::PROT_READ | libc::PROT_WRITE)
    }
}

#[cfg(target_arch = "x86_64")]
fn protect(ptr: *const u8, len: usize, prot: libc::c_int) -> wasmtime::Result<()> {
    if len == 0 {
        return Ok(());
    }
    // SAFETY: wasmtime passes a page-aligned range of code memory it is publishing or
    // unpublishing (its own mapping or a leaked compile-cache image).
    if unsafe { libc::mprotect(ptr.cast_mut().cast(), len, prot) } != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    Ok(())
}

/// A component this process already linked, or one just loaded.
enum Loaded {
    // Boxed: a pre-linked component is far larger than a digest and a `Component`.
    Known([u8; 32], Box<ProviderPluginPre<TenantState>>),
    New([u8; 32], Component),
}

/// Remembers the SHA-256 of a component file under a key made of its path and what
/// `stat` says of it (device, inode, size, modification and change times in nanoseconds),
/// like git's index: any write changes the change time, which no user can set back. The
/// memo is a cache file like the artifacts (authenticated): a forged memo could otherwise
/// make one component run another's artifact.
struct DigestMemo {
    cache: CompileCache,
    name: String,
}

impl DigestMemo {
    fn new(cache: &CompileCache, component: &Path) -> Option<Self> {
        use std::os::unix::fs::MetadataExt;
        let canonical = std::fs::canonicalize(component).ok()?;
        let m = std::fs::metadata(&canonical).ok()?;
        let mut key = Sha256::new();
        key.update(canonical.as_os_str().as_encoded_bytes());
        for n in [
            m.dev(),
            m.ino(),
            m.size(),
            m.mtime() as u64,
            m.mtime_nsec() as u64,
            m.ctime() as u64,
            m.ctime_nsec() as u64,
        ] {
            key.update(n.to_le_bytes());
        }
        Some(Self {
            cache: cache.sub("digests")?,
            name: format!("{}.digest", hex::encode(&key.finalize()[..16])),
        })
    }

    fn get(&self) -> Option<[u8; 32]> {
        self.cache.read(&self.name)?.try_into().ok()
    }

    fn set(&self, digest: &[u8; 32]) {
        self.cache.write(&self.name, digest);
    }
}
