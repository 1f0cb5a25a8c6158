//! The runtime: one engine and one pre-linked component per process (shared through
//! `engine`), and a [`Session`] per tenant (its own store, secret namespace, settings and
//! limits).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use wasmtime::component::{ResourceAny, ResourceTable, ResourceTableError};
use wasmtime::{Engine, PoolConcurrencyLimitError, Store, Trap};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use wasmtime_wasi_config::WasiConfigVariables;

use crate::bindings::types::{
    ApiKeyInfo, ChatChunk, ChatReply, ChatRequest, ConnectionStatus, DevicePrompt, LogoutReport,
    ModelList, PluginManifest, PollOutcome, ProviderError, QuotaReport,
};
use crate::bindings::{ProviderPlugin, ProviderPluginPre};
use crate::compile_cache::{CacheKey, CompileCache};
use crate::config::{HostConfig, ResolvedConfig};
use crate::engine::{self, SharedEngine};
use crate::error::HostError;
use crate::guest_stderr::GuestStderr;
use crate::http_pool::HttpPool;
use crate::http_sandbox::SandboxHooks;
use crate::limits::{InstanceAllocation, Limits, MemoryCap, MemoryLimitExceeded};
use crate::secrets::{
    KeySource, SecretBackend, SecretLock, SecretStore, SecretStoreError, StoreConfig, TenantBackend,
};

/// Where the plugin component comes from.
#[derive(Clone)]
pub enum PluginSource {
    /// A `.wasm` file, read when first needed (its digest memoised in the compile cache).
    File(PathBuf),
    /// Component bytes held by the embedder.
    Bytes(Arc<[u8]>),
    /// Bytes compiled into the program, with their SHA-256 computed at build time (so a
    /// CLI call neither reads nor hashes the component).
    Static {
        /// The component.
        bytes: &'static [u8],
        /// Its SHA-256.
        sha256: [u8; 32],
    },
}

impl std::fmt::Debug for PluginSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(p) => f.debug_tuple("File").field(p).finish(),
            Self::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            Self::Static { bytes, .. } => write!(f, "Static({} bytes)", bytes.len()),
        }
    }
}

impl std::fmt::Display for PluginSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(p) => write!(f, "{}", p.display()),
            Self::Bytes(_) => f.write_str("the given component"),
            Self::Static { .. } => f.write_str("the embedded component"),
        }
    }
}

impl From<PathBuf> for PluginSource {
    fn from(p: PathBuf) -> Self {
        Self::File(p)
    }
}

impl From<&std::path::Path> for PluginSource {
    fn from(p: &std::path::Path) -> Self {
        Self::File(p.to_path_buf())
    }
}

impl From<&PathBuf> for PluginSource {
    fn from(p: &PathBuf) -> Self {
        Self::File(p.clone())
    }
}

impl From<&str> for PluginSource {
    fn from(p: &str) -> Self {
        Self::File(p.into())
    }
}

impl From<String> for PluginSource {
    fn from(p: String) -> Self {
        Self::File(p.into())
    }
}

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
    pub http_client: Option<Arc<dyn crate::http_pool::HttpClient>>,
    /// Limits for every session.
    pub limits: Limits,
    /// Directory for compiled components; `None` disables the cache.
    pub compile_cache: Option<PathBuf>,
    /// How session instances are allocated (default: the process-wide pool).
    pub allocation: InstanceAllocation,
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
            state_dir,
            limits: Limits::default(),
            allocation: InstanceAllocation::default(),
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
    limits: Limits,
    connections: HttpPool,
}

/// Tenants whose directories this runtime has checked; past this many the record starts
/// over (it only saves the checks, see [`Runtime::session`]).
const CHECKED_TENANTS_MAX: usize = 100_000;

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
        let pre = shared.plugin(&options.plugin, cache.as_ref())?;
        Ok(Self {
            shared,
            pre,
            secrets,
            tenants: Arc::default(),
            manifest: Arc::default(),
            connections: match &options.http_client {
                Some(client) => HttpPool::over(client.clone()),
                None => HttpPool::new(options.limits.http.connect_timeout),
            },
            limits: options.limits,
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

    /// The plugin's manifest, asked once per runtime (an instance with no secrets, no
    /// configuration and no network; the export may call no import).
    pub async fn manifest(&self) -> Result<Arc<PluginManifest>, HostError> {
        self.manifest
            .get_or_try_init(|| async {
                let mut probe = self.new_session(Arc::new(NoSecrets), empty_config());
                let manifest = probe.call_manifest().await?;
                check_manifest(&manifest)?;
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
        Session {
            pre: self.pre.clone(),
            secrets,
            config,
            limits: self.limits,
            denied: Arc::new(AtomicU64::new(0)),
            stderr_used: Arc::new(AtomicUsize::new(0)),
            connections: self.connections.clone(),
            live: None,
            generation: 0,
            open_streams: 0,
        }
    }

    fn tenant_secrets(&self, tenant: &str) -> Result<Arc<dyn TenantBackend>, HostError> {
        if let Some(s) = lock(&self.tenants).get(tenant) {
            return Ok(s.clone());
        }
        // Checked outside the lock: file-system calls must not serialise other tenants.
        let secrets = self.secrets.tenant(tenant)?;
        let mut tenants = lock(&self.tenants);
        if tenants.len() >= CHECKED_TENANTS_MAX {
            tenants.clear();
        }
        tenants.insert(tenant.to_owned(), secrets.clone());
        Ok(secrets)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn empty_config() -> ResolvedConfig {
    ResolvedConfig {
        overrides: Arc::new([]),
        allowed_origins: Arc::new([]),
        enabled_routes: Vec::new(),
        policy: None,
    }
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

/// The data of one tenant's store.
pub(crate) struct TenantState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    pub(crate) table: ResourceTable,
    hooks: SandboxHooks,
    memory: MemoryCap,
    pub(crate) secrets: Arc<dyn TenantBackend>,
    pub(crate) config: WasiConfigVariables,
    pub(crate) lock_timeout_cap: Duration,
}

impl WasiView for TenantState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for TenantState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

struct Live {
    store: Store<TenantState>,
    plugin: ProviderPlugin,
}

/// A tenant's live instance of the plugin. After a trap (time or memory limit, guest
/// bug) the instance is discarded and the next call gets a fresh one.
pub struct Session {
    pre: ProviderPluginPre<TenantState>,
    secrets: Arc<dyn TenantBackend>,
    config: ResolvedConfig,
    limits: Limits,
    denied: Arc<AtomicU64>,
    /// Bytes of stderr written in the current export call.
    stderr_used: Arc<AtomicUsize>,
    connections: HttpPool,
    live: Option<Live>,
    /// Counts instances: a stream handle is only good with the instance that opened it.
    generation: u64,
    /// Streams of the live instance opened and not yet closed.
    open_streams: usize,
}

/// An open `chat-stream` resource of a session, tied to the instance that opened it: after
/// that instance is discarded (a trap, a timeout) the handle answers `stream_closed` and
/// never reaches the session's next instance.
pub struct ChatStreamHandle {
    resource: ResourceAny,
    generation: u64,
}

macro_rules! export_call {
    ($self:ident, |$iface:ident, $store:ident| $call:expr) => {{
        let ticks = $self.limits.call_ticks();
        let wall_clock = $self.limits.call_timeout;
        $self.stderr_used.store(0, Ordering::Relaxed);
        $self.live().await?;
        // The instance belongs to this call's future until the call returns: a caller that
        // drops the future midway (a client gave up, a `select!` chose another branch)
        // drops the half-entered instance with it, and with it its lock handles and open
        // responses; the session's next call starts a fresh one. Cancel safety lives here,
        // not in a rule each caller must remember.
        let mut live = $self.live.take().expect("instantiated above");
        live.store.set_epoch_deadline(ticks);
        // The epoch budget counts guest execution only; a guest blocked on the host (a
        // clock, a response, a lock) is bounded by wall-clock time here. On expiry the
        // call is abandoned and the instance discarded, which drops its lock handles.
        let outcome = {
            let $store = &mut live.store;
            let $iface = live.plugin.model_provider_plugin_model_provider();
            tokio::time::timeout(wall_clock, $call).await
        };
        match outcome {
            Ok(result) => {
                $self.live = Some(live);
                $self.finish(result)
            }
            Err(_elapsed) => {
                $self.open_streams = 0;
                Err(HostError::CallTimeout(wall_clock))
            }
        }
    }};
}

impl Session {
    async fn instantiate(&mut self) -> Result<&mut Live, HostError> {
        // The session's counter outlives instances, so refusals are counted across traps.
        let hooks = SandboxHooks::new(
            self.secrets.tenant_id().into(),
            self.config.allowed_origins.clone(),
            self.config.policy.clone(),
            self.limits.http,
            self.denied.clone(),
            self.connections.clone(),
        );
        let state = TenantState {
            // No filesystem, environment, arguments or sockets: only stderr for panics,
            // capped and logged line by line as the plugin's (see `guest_stderr`).
            wasi: WasiCtx::builder()
                .stderr(GuestStderr::new(
                    self.secrets.tenant_id(),
                    self.stderr_used.clone(),
                ))
                .build(),
            http: {
                let mut http = WasiHttpCtx::new();
                http.set_field_size_limit(self.limits.http.max_fields_bytes);
                http
            },
            table: {
                let mut table = ResourceTable::new();
                table.set_max_capacity(self.limits.max_resources);
                table
            },
            hooks,
            memory: MemoryCap::new(self.limits.memory_bytes),
            secrets: self.secrets.clone(),
            config: self
                .config
                .overrides
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
            lock_timeout_cap: self.limits.lock_timeout_cap,
        };
        let mut store = Store::new(self.pre.engine(), state);
        store.limiter(|s| &mut s.memory);
        store.set_hostcall_fuel(self.limits.max_lifted_bytes);
        store.epoch_deadline_trap();
        store.set_epoch_deadline(self.limits.call_ticks());
        let plugin = self
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| classify_trap(e, self.limits.call_timeout))?;
        self.generation += 1;
        self.open_streams = 0;
        Ok(self.live.insert(Live { store, plugin }))
    }

    async fn live(&mut self) -> Result<&mut Live, HostError> {
        if self.live.is_none() {
            self.instantiate().await?;
        }
        Ok(self.live.as_mut().expect("instantiated above"))
    }

    fn finish<R>(
        &mut self,
        result: wasmtime::Result<Result<R, ProviderError>>,
    ) -> Result<R, HostError> {
        match result {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => Err(HostError::Provider(e)),
            Err(trap) => {
                // A trapped instance cannot be called again; the next call starts afresh.
                self.live = None;
                self.open_streams = 0;
                Err(classify_trap(trap, self.limits.call_timeout))
            }
        }
    }

    /// The configuration this session was opened with (overrides handed to the plugin,
    /// the allowlist, the enabled routes).
    pub fn config(&self) -> &ResolvedConfig {
        &self.config
    }

    async fn call_manifest(&mut self) -> Result<PluginManifest, HostError> {
        export_call!(self, |p, store| async {
            p.call_manifest(store).await.map(Ok)
        })
    }

    /// Requests the sandbox refused during this session.
    pub fn denied_requests(&self) -> u64 {
        self.denied.load(Ordering::Relaxed)
    }

    /// `status` export.
    pub async fn status(&mut self) -> Result<ConnectionStatus, HostError> {
        export_call!(self, |p, store| p.call_status(store))
    }

    /// `start` export.
    pub async fn start(&mut self) -> Result<DevicePrompt, HostError> {
        export_call!(self, |p, store| p.call_start(store))
    }

    /// `poll` export.
    pub async fn poll(&mut self, pending_id: Option<&str>) -> Result<PollOutcome, HostError> {
        let id = pending_id.map(str::to_string);
        export_call!(self, |p, store| p.call_poll(store, id.as_deref()))
    }

    /// `logout` export.
    pub async fn logout(&mut self) -> Result<LogoutReport, HostError> {
        export_call!(self, |p, store| p.call_logout(store))
    }

    /// `refresh` export.
    pub async fn refresh(&mut self) -> Result<ConnectionStatus, HostError> {
        export_call!(self, |p, store| p.call_refresh(store))
    }

    /// `models` export: the chat models of `route` (`None`: the default route).
    pub async fn models(
        &mut self,
        force: bool,
        route: Option<&str>,
    ) -> Result<ModelList, HostError> {
        export_call!(self, |p, store| p.call_models(store, force, route))
    }

    /// `set-api-key` export. The key goes to the plugin (which stores it encrypted) and is
    /// never kept by the host.
    pub async fn set_api_key(&mut self, key: &str) -> Result<ApiKeyInfo, HostError> {
        export_call!(self, |p, store| p.call_set_api_key(store, key))
    }

    /// `api-key-status` export.
    pub async fn api_key_status(&mut self) -> Result<ApiKeyInfo, HostError> {
        export_call!(self, |p, store| p.call_api_key_status(store))
    }

    /// `delete-api-key` export.
    pub async fn delete_api_key(&mut self) -> Result<ApiKeyInfo, HostError> {
        export_call!(self, |p, store| p.call_delete_api_key(store))
    }

    /// `usage` export: what is left of `route`'s quota (`None`: the default route).
    pub async fn usage(&mut self, route: Option<&str>) -> Result<QuotaReport, HostError> {
        export_call!(self, |p, store| p.call_usage(store, route))
    }

    /// `chat` export.
    pub async fn chat(&mut self, request: &ChatRequest) -> Result<ChatReply, HostError> {
        export_call!(self, |p, store| p.call_chat(store, request))
    }

    /// Open a `chat-stream`.
    pub async fn open_chat_stream(
        &mut self,
        request: &ChatRequest,
    ) -> Result<ChatStreamHandle, HostError> {
        let resource = export_call!(self, |p, store| p.chat_stream().call_open(store, request))?;
        self.open_streams += 1;
        Ok(ChatStreamHandle {
            resource,
            generation: self.generation,
        })
    }

    /// Whether `stream` belongs to the live instance.
    fn owns(&self, stream: &ChatStreamHandle) -> bool {
        self.live.is_some() && stream.generation == self.generation
    }

    /// The next chunk of an open stream; `None` once it completed.
    pub async fn next_chunk(
        &mut self,
        stream: &ChatStreamHandle,
    ) -> Result<Option<ChatChunk>, HostError> {
        if !self.owns(stream) {
            return Err(HostError::StreamClosed(
                "the instance that opened this stream was discarded after an error; open a new stream".into(),
            ));
        }
        let handle = stream.resource;
        export_call!(self, |p, store| p.chat_stream().call_next(store, handle))
    }

    /// Close a stream (also done when the session is dropped).
    pub async fn close_chat_stream(&mut self, stream: ChatStreamHandle) -> Result<(), HostError> {
        if !self.owns(&stream) {
            // Gone with its instance.
            return Ok(());
        }
        // Owned by this future while the guest runs the drop, as in every export call.
        let Some(mut live) = self.live.take() else {
            return Ok(());
        };
        let dropped = stream.resource.resource_drop_async(&mut live.store).await;
        match dropped {
            Ok(()) => {
                self.live = Some(live);
                self.open_streams = self.open_streams.saturating_sub(1);
                Ok(())
            }
            Err(e) => {
                self.open_streams = 0;
                Err(classify_trap(e, self.limits.call_timeout))
            }
        }
    }

    /// Whether this session is fit to serve another caller as it is: no stream of its live
    /// instance is left open. A pool (such as [`crate::SessionPool`]) discards a session
    /// that is not, since a stream its last user abandoned would hold the upstream
    /// response and a resource-table entry forever.
    pub fn is_reusable(&self) -> bool {
        self.live.is_none() || self.open_streams == 0
    }
}

fn classify_trap(e: wasmtime::Error, call_timeout: Duration) -> HostError {
    if let Some(p) = e.downcast_ref::<PoolConcurrencyLimitError>() {
        return HostError::PoolExhausted(format!(
            "too many live sessions in this process ({p}); drop idle sessions or raise \
             InstanceAllocation::Pooling::max_live_instances"
        ));
    }
    if let Some(m) = e.downcast_ref::<MemoryLimitExceeded>() {
        return HostError::MemoryLimit(m.to_string());
    }
    if let Some(ResourceTableError::Full) = e.downcast_ref::<ResourceTableError>() {
        return HostError::ResourceLimit(format!(
            "the session holds the most resources it may ({e:#})"
        ));
    }
    // A `fields` past `HttpLimits::max_fields_bytes` (or `HeaderMap`'s entry limit): wasi-http
    // 0.2 has no header error for it, so it traps.
    if let Some(
        f @ (wasmtime_wasi_http::FieldMapError::TotalSizeTooBig
        | wasmtime_wasi_http::FieldMapError::TooManyFields),
    ) = e.downcast_ref::<wasmtime_wasi_http::FieldMapError>()
    {
        return HostError::ResourceLimit(format!("{f} (a plugin's fields are capped)"));
    }
    // `MemoryCap`'s instance, memory and table counts, refused by wasmtime with this text.
    let text = format!("{e:#}");
    // wasmtime's hostcall fuel (`Limits::max_lifted_bytes`), whose error type is private.
    if text.contains("fuel allocated for hostcalls has been exhausted") {
        return HostError::ResourceLimit(format!(
            "the plugin handed the host more data in one call than a session may \
             (Limits::max_lifted_bytes): {text}"
        ));
    }
    if text.contains("resource limit exceeded") {
        return HostError::ResourceLimit(text);
    }
    if e.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
        return HostError::CallTimeout(call_timeout);
    }
    HostError::PluginTrap(text)
}
