//! The runtime: one engine and one pre-linked component per process (shared through
//! `engine`), and a [`Session`] per tenant (its own store, secret namespace, settings and
//! limits).
//!
//! This file holds [`Runtime`] and its options; where the component comes from is in
//! `source`, a tenant's store data in `state`, the session and its export calls in
//! `session`, and how a failed call is classified in `trap`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use wasmtime::Engine;

use crate::bindings::ProviderPluginPre;
use crate::bindings::types::PluginManifest;
use crate::capabilities::DEFAULT_LOCK_WAIT_SLICE;
#[cfg(doc)]
use crate::capabilities::ProviderCtx;
use crate::compile_cache::{CacheKey, CompileCache};
use crate::engine::{self, SharedEngine};
use crate::error::HostError;
use crate::host_config::{HostConfig, ResolvedConfig};
use crate::http_pool::{ConnectionOptions, HttpClient, HttpPool};
use crate::limits::{InstanceAllocation, Limits, MemoryBudget};
use crate::secrets::{
    KeySource, SecretBackend, SecretLock, SecretStore, SecretStoreError, StoreConfig, TenantBackend,
};
use manifest_cache::ManifestCache;

mod manifest_cache;
mod session;
mod source;
mod state;
mod trap;

pub use session::{ChatStreamHandle, Session};
pub use source::PluginSource;
pub(crate) use state::TenantState;

/// How a [`Runtime`] is set up.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// The plugin component.
    pub plugin: PluginSource,
    /// Root of tenant state (secrets, locks, compile cache).
    pub state_dir: PathBuf,
    /// Where the secret store's master key comes from.
    pub key: KeySource,
    /// Where tenants' secrets live; `None`: the encrypted file store under `state_dir`,
    /// keyed by `key`.
    pub secrets: Option<Arc<dyn SecretBackend>>,
    /// Who sends the requests the sandbox lets through; `None`: the host's keep-alive
    /// pool. The sandbox's caps and timeouts apply to either.
    pub http_client: Option<Arc<dyn HttpClient>>,
    /// How the host's keep-alive pool keeps connections (unused when `http_client` is
    /// set).
    pub connections: ConnectionOptions,
    /// Limits for every session.
    pub limits: Limits,
    /// Directory for compiled components; `None` disables the cache.
    pub compile_cache: Option<PathBuf>,
    /// How session instances are allocated (default: the process-wide pool).
    pub allocation: InstanceAllocation,
    /// Tenants whose storage this runtime remembers having checked (default 100,000);
    /// past this many the record starts over (it only saves the checks, see
    /// [`Runtime::session`]).
    pub max_checked_tenants: usize,
    /// The longest one blocking attempt at a secret-store lock runs (default
    /// [`DEFAULT_LOCK_WAIT_SLICE`]; see [`ProviderCtx::with_lock_wait_slice`]).
    pub lock_wait_slice: Duration,
}

impl RuntimeOptions {
    /// Options with the defaults: master key from `PROVIDER_HOST_KEY` or
    /// `<state-dir>/keyring/master.key`, cache in `<state-dir>/cache`, pooled instances.
    pub fn new(plugin: impl Into<PluginSource>, state_dir: impl Into<PathBuf>) -> Self {
        let state_dir = state_dir.into();
        Self {
            plugin: plugin.into(),
            key: KeySource::from_env_or_file(state_dir.join("keyring").join("master.key")),
            compile_cache: Some(state_dir.join("cache")),
            secrets: None,
            http_client: None,
            connections: ConnectionOptions::default(),
            state_dir,
            limits: Limits::default(),
            allocation: InstanceAllocation::default(),
            max_checked_tenants: DEFAULT_MAX_CHECKED_TENANTS,
            lock_wait_slice: DEFAULT_LOCK_WAIT_SLICE,
        }
    }
}

/// Compiled plugin + engine + secret store, shared by every session it opens.
///
/// `Send + Sync` and cheap to clone (clones share everything): put it in an `Arc` or
/// clone it into each task; sessions of different tenants run in parallel. The engine
/// and the compiled component are shared by every `Runtime` of the process (see
/// [`InstanceAllocation`]).
#[derive(Clone)]
pub struct Runtime {
    shared: Arc<SharedEngine>,
    pre: ProviderPluginPre<TenantState>,
    secrets: Arc<dyn SecretBackend>,
    tenants: Arc<Mutex<HashMap<String, Arc<dyn TenantBackend>>>>,
    manifest: Arc<tokio::sync::OnceCell<Arc<PluginManifest>>>,
    /// Where the manifest of this component is remembered (with a compile cache).
    manifest_cache: Option<Arc<ManifestCache>>,
    limits: Limits,
    budget: Option<Arc<MemoryBudget>>,
    connections: HttpPool,
    max_checked_tenants: usize,
    lock_wait_slice: Duration,
}

/// Default of [`RuntimeOptions::max_checked_tenants`].
const DEFAULT_MAX_CHECKED_TENANTS: usize = 100_000;

// Checked here so that a change that breaks multi-task use fails to compile.
const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Runtime>();
    send::<Session>();
};

impl Runtime {
    /// Load (from this process's registry, else the compile cache, else by compiling) and
    /// pre-link the plugin.
    pub fn new(options: RuntimeOptions) -> Result<Self, HostError> {
        // The state directory is private before anything is created in it (the cache
        // below holds native code the host will run).
        crate::compile_cache::private_dir(&options.state_dir).map_err(|e| {
            HostError::Config(format!(
                "cannot create the state directory {}: {e}",
                options.state_dir.display()
            ))
        })?;
        let secrets: Arc<dyn SecretBackend> = match &options.secrets {
            Some(backend) => backend.clone(),
            None => Arc::new(SecretStore::open(StoreConfig {
                state_dir: options.state_dir.clone(),
                key: options.key.clone(),
                ..StoreConfig::default()
            })?),
        };
        let cache = options.compile_cache.as_deref().and_then(|dir| {
            CompileCache::open(dir, CacheKey(secrets.derive_key(b"compile-cache")))
        });
        let shared = engine::shared(options.allocation, &options.limits)?;
        let (pre, digest) = shared.plugin(&options.plugin, cache.as_ref())?;
        Ok(Self {
            shared,
            pre,
            secrets,
            tenants: Arc::default(),
            manifest: Arc::default(),
            manifest_cache: cache.map(|c| Arc::new(ManifestCache::new(c, &digest))),
            connections: match &options.http_client {
                Some(client) => HttpPool::over(client.clone()),
                None => HttpPool::over(
                    options
                        .connections
                        .http_client(options.limits.http.connect_timeout),
                ),
            },
            limits: options.limits,
            budget: options
                .limits
                .memory_budget_bytes
                .map(|b| Arc::new(MemoryBudget::new(b))),
            max_checked_tenants: options.max_checked_tenants,
            lock_wait_slice: options.lock_wait_slice,
        })
    }

    /// The engine (for embedders that share it).
    pub fn engine(&self) -> &Engine {
        self.shared.engine()
    }

    /// Whether this runtime's instances come from the pooling allocator (see
    /// [`InstanceAllocation`]; `false` when the process's pool was too small for this
    /// runtime's options or could not be reserved).
    pub fn is_pooling(&self) -> bool {
        self.shared.is_pooling()
    }

    /// The memory budget all sessions of this runtime share
    /// ([`Limits::memory_budget_bytes`]), if bounded.
    pub fn memory_budget(&self) -> Option<&Arc<MemoryBudget>> {
        self.budget.as_ref()
    }

    /// The plugin's manifest, asked once per component (an instance with no secrets, no
    /// configuration and no network; the export may call no import) and remembered in
    /// the compile cache, when there is one, for the next runtime (see `manifest_cache`).
    pub async fn manifest(&self) -> Result<Arc<PluginManifest>, HostError> {
        self.manifest
            .get_or_try_init(|| async {
                if let Some(manifest) = self.manifest_cache.as_ref().and_then(|c| c.get()) {
                    check_manifest(&manifest)?;
                    return Ok(Arc::new(manifest));
                }
                let mut probe = self.new_session(Arc::new(NoSecrets), ResolvedConfig::default());
                let manifest = probe.call_manifest().await?;
                check_manifest(&manifest)?;
                if let Some(cache) = &self.manifest_cache {
                    cache.put(&manifest);
                }
                Ok(Arc::new(manifest))
            })
            .await
            .cloned()
    }

    /// `config` checked against the plugin's manifest (see [`HostConfig::resolve`]).
    pub async fn resolve(&self, config: &HostConfig) -> Result<ResolvedConfig, HostError> {
        config.resolve(&*self.manifest().await?)
    }

    /// A live session for `tenant`, with `config` (checked against the plugin's manifest).
    ///
    /// The tenant's storage is prepared and checked (see [`crate::secrets`]) when this
    /// runtime opens its first session; later sessions skip those checks.
    pub async fn session(&self, tenant: &str, config: &HostConfig) -> Result<Session, HostError> {
        let resolved = self.resolve(config).await?;
        let secrets = self.tenant_secrets(tenant)?;
        let mut session = self.new_session(secrets, resolved);
        session.instantiate().await?;
        Ok(session)
    }

    fn new_session(&self, secrets: Arc<dyn TenantBackend>, config: ResolvedConfig) -> Session {
        Session::new(
            self.pre.clone(),
            secrets,
            config,
            self.limits,
            self.budget.clone(),
            self.lock_wait_slice,
            self.connections.clone(),
        )
    }

    fn tenant_secrets(&self, tenant: &str) -> Result<Arc<dyn TenantBackend>, HostError> {
        if let Some(s) = lock(&self.tenants).get(tenant) {
            return Ok(s.clone());
        }
        // Checked outside the lock: file-system calls must not serialise other tenants.
        let secrets = self.secrets.tenant(tenant)?;
        let mut tenants = lock(&self.tenants);
        if tenants.len() >= self.max_checked_tenants {
            tenants.clear();
        }
        tenants.insert(tenant.to_owned(), secrets.clone());
        Ok(secrets)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A manifest the host can act on: names it uses as keys are well-formed and unique, and
/// every route a setting names exists.
fn check_manifest(m: &PluginManifest) -> Result<(), HostError> {
    let bad = |why: String| HostError::InvalidComponent(format!("its manifest: {why}"));
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.len() <= 64
            && n.bytes()
                .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.'))
    };
    if !name_ok(&m.id) {
        return Err(bad(format!("id {:?} is not [a-z0-9._-]{{1,64}}", m.id)));
    }
    let mut seen = std::collections::HashSet::new();
    for s in &m.settings {
        if !name_ok(&s.key) || !seen.insert(s.key.as_str()) {
            return Err(bad(format!(
                "setting key {:?} is malformed or repeated",
                s.key
            )));
        }
    }
    let mut routes = std::collections::HashSet::new();
    for r in &m.routes {
        if !name_ok(&r.name) || !routes.insert(r.name.as_str()) {
            return Err(bad(format!("route {:?} is malformed or repeated", r.name)));
        }
    }
    for s in &m.settings {
        if let Some(r) = &s.route
            && !routes.contains(r.as_str())
        {
            return Err(bad(format!("setting {:?} names no route {r:?}", s.key)));
        }
    }
    Ok(())
}

/// The storage of the manifest probe: it has none.
#[derive(Debug)]
struct NoSecrets;

impl TenantBackend for NoSecrets {
    fn tenant_id(&self) -> &str {
        "(manifest)"
    }
    fn get(&self, _: &str) -> Result<Option<Vec<u8>>, SecretStoreError> {
        Err(no_secrets())
    }
    fn set(&self, _: &str, _: &[u8]) -> Result<(), SecretStoreError> {
        Err(no_secrets())
    }
    fn delete(&self, _: &str) -> Result<(), SecretStoreError> {
        Err(no_secrets())
    }
    fn list_keys(&self, _: &str) -> Result<Vec<String>, SecretStoreError> {
        Err(no_secrets())
    }
    fn lock(&self, _: &str, _: Duration) -> Result<SecretLock, SecretStoreError> {
        Err(no_secrets())
    }
}

fn no_secrets() -> SecretStoreError {
    SecretStoreError::InvalidTenant("`manifest` may not use the secret store".into())
}
