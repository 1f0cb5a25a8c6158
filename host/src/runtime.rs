//! The runtime: one engine and one pre-linked component per process, and a [`Session`]
//! per tenant (its own store, secret namespace, settings and limits).

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker, ResourceAny, ResourceTable};
use wasmtime::{Config, Engine, Store, Trap};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::bindings::types::{
    ChatChunk, ChatReply, ChatRequest, ConnectionStatus, DevicePrompt, LogoutReport, ModelList,
    PollOutcome, ProviderError,
};
use crate::bindings::{ProviderPlugin, ProviderPluginPre};
use crate::config::{HostConfig, Origin, ProviderSettings};
use crate::error::HostError;
use crate::http_sandbox::SandboxHooks;
use crate::limits::{EpochTicker, Limits, MemoryCap, MemoryLimitExceeded};
use crate::secrets::{KeySource, SecretStore, StoreConfig, TenantSecrets};

/// How a [`Runtime`] is set up.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// The plugin component (`.wasm`).
    pub plugin: PathBuf,
    /// Root of tenant state (secrets, locks, compile cache).
    pub state_dir: PathBuf,
    /// Where the secret store's master key comes from.
    pub key: KeySource,
    /// Limits for every session.
    pub limits: Limits,
    /// Directory for compiled components; `None` disables the cache.
    pub compile_cache: Option<PathBuf>,
}

impl RuntimeOptions {
    /// Options with the defaults: master key from `PROVIDER_HOST_KEY` or
    /// `<state-dir>/keyring/master.key`, cache in `<state-dir>/cache`.
    pub fn new(plugin: impl Into<PathBuf>, state_dir: impl Into<PathBuf>) -> Self {
        let state_dir = state_dir.into();
        Self {
            plugin: plugin.into(),
            key: KeySource::from_env_or_file(state_dir.join("keyring").join("master.key")),
            compile_cache: Some(state_dir.join("cache")),
            state_dir,
            limits: Limits::default(),
        }
    }
}

/// Compiled plugin + engine + secret store, shared by every session of a process.
pub struct Runtime {
    engine: Engine,
    pre: ProviderPluginPre<TenantState>,
    secrets: SecretStore,
    limits: Limits,
    _ticker: EpochTicker,
}

impl Runtime {
    /// Load (from the compile cache when possible) and pre-link the plugin.
    pub fn new(options: RuntimeOptions) -> Result<Self, HostError> {
        let mut config = Config::new();
        config.epoch_interruption(true).wasm_component_model(true);
        let engine = Engine::new(&config).map_err(|e| HostError::Plugin(format!("engine: {e}")))?;
        let component = load_component(&engine, &options.plugin, options.compile_cache.as_deref())?;

        let mut linker: Linker<TenantState> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .and_then(|()| wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker))
            .and_then(|()| ProviderPlugin::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s))
            .map_err(|e| HostError::Plugin(format!("linking: {e}")))?;
        let pre = linker
            .instantiate_pre(&component)
            .and_then(ProviderPluginPre::new)
            .map_err(|e| {
                HostError::Plugin(format!(
                    "{} does not fit the model-provider:plugin world: {e:#}",
                    options.plugin.display()
                ))
            })?;

        let secrets = SecretStore::open(StoreConfig {
            state_dir: options.state_dir.clone(),
            key: options.key.clone(),
            ..StoreConfig::default()
        })?;
        let ticker = EpochTicker::start(&engine);
        Ok(Self {
            engine,
            pre,
            secrets,
            limits: options.limits,
            _ticker: ticker,
        })
    }

    /// The engine (for embedders that share it).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// A live session for `tenant`, talking to what `config` allows.
    pub async fn session(&self, tenant: &str, config: &HostConfig) -> Result<Session, HostError> {
        let secrets = self.secrets.tenant(tenant)?;
        let mut session = Session {
            pre: self.pre.clone(),
            secrets,
            settings: config.provider.clone(),
            allowed: config.allowed_origins.clone().into(),
            limits: self.limits,
            denied: Arc::new(AtomicU64::new(0)),
            live: None,
        };
        session.instantiate().await?;
        Ok(session)
    }
}

/// Compile the component, or load it from the on-disk cache keyed by the component's
/// hash and the engine's compatibility hash (so a CLI call never recompiles).
fn load_component(
    engine: &Engine,
    path: &Path,
    cache: Option<&Path>,
) -> Result<Component, HostError> {
    let bytes = std::fs::read(path)
        .map_err(|e| HostError::Plugin(format!("cannot read {}: {e}", path.display())))?;
    let compile = || {
        Component::new(engine, &bytes).map_err(|e| {
            HostError::Plugin(format!(
                "{} is not a valid component: {e:#}",
                path.display()
            ))
        })
    };
    let Some(cache) = cache else { return compile() };

    let mut engine_hash = std::collections::hash_map::DefaultHasher::new();
    engine
        .precompile_compatibility_hash()
        .hash(&mut engine_hash);
    let digest = hex::encode(&Sha256::digest(&bytes)[..16]);
    let cached = cache.join(format!("{digest}-{:016x}.cwasm", engine_hash.finish()));
    if cached.exists() {
        // SAFETY: the file was written by `precompile_component` of a compatible engine
        // into the state directory, which only this user can write.
        if let Ok(c) = unsafe { Component::deserialize_file(engine, &cached) } {
            return Ok(c);
        }
    }
    let component = compile()?;
    if let Ok(serialized) = component.serialize() {
        let _ = write_atomically(cache, &cached, &serialized);
    }
    Ok(component)
}

fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".tmp-{}-{}",
        std::process::id(),
        rand::random::<u64>()
    ));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// The data of one tenant's store.
pub(crate) struct TenantState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    pub(crate) table: ResourceTable,
    hooks: SandboxHooks,
    memory: MemoryCap,
    pub(crate) secrets: TenantSecrets,
    pub(crate) settings: ProviderSettings,
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
    secrets: TenantSecrets,
    settings: ProviderSettings,
    allowed: Arc<[Origin]>,
    limits: Limits,
    denied: Arc<AtomicU64>,
    live: Option<Live>,
}

/// An open `chat-stream` resource of a session.
pub struct ChatStreamHandle(ResourceAny);

macro_rules! export_call {
    ($self:ident, |$iface:ident, $store:ident| $call:expr) => {{
        let ticks = $self.limits.call_ticks();
        let live = $self.live().await?;
        live.store.set_epoch_deadline(ticks);
        let $store = &mut live.store;
        let $iface = live.plugin.model_provider_plugin_model_provider();
        let result = $call.await;
        $self.finish(result)
    }};
}

impl Session {
    async fn instantiate(&mut self) -> Result<&mut Live, HostError> {
        let hooks = SandboxHooks::new(self.allowed.clone(), self.limits.http);
        let denied = hooks.denied_counter();
        let state = TenantState {
            // No filesystem, environment, arguments or sockets: only stderr for panics.
            wasi: WasiCtx::builder().inherit_stderr().build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            hooks,
            memory: MemoryCap::new(self.limits.memory_bytes),
            secrets: self.secrets.clone(),
            settings: self.settings.clone(),
            lock_timeout_cap: self.limits.lock_timeout_cap,
        };
        let old = std::mem::replace(&mut self.denied, denied);
        self.denied
            .fetch_add(old.load(Ordering::Relaxed), Ordering::Relaxed);
        let mut store = Store::new(self.pre.engine(), state);
        store.limiter(|s| &mut s.memory);
        store.epoch_deadline_trap();
        store.set_epoch_deadline(self.limits.call_ticks());
        let plugin = self
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| classify_trap(e, self.limits.call_timeout))?;
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
                Err(classify_trap(trap, self.limits.call_timeout))
            }
        }
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

    /// `models` export.
    pub async fn models(&mut self, force: bool) -> Result<ModelList, HostError> {
        export_call!(self, |p, store| p.call_models(store, force))
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
        export_call!(self, |p, store| p.chat_stream().call_open(store, request))
            .map(ChatStreamHandle)
    }

    /// The next chunk of an open stream; `None` once it completed.
    pub async fn next_chunk(
        &mut self,
        stream: &ChatStreamHandle,
    ) -> Result<Option<ChatChunk>, HostError> {
        let handle = stream.0;
        export_call!(self, |p, store| p.chat_stream().call_next(store, handle))
    }

    /// Close a stream (also done when the session is dropped).
    pub async fn close_chat_stream(&mut self, stream: ChatStreamHandle) -> Result<(), HostError> {
        let Some(live) = self.live.as_mut() else {
            return Ok(());
        };
        stream
            .0
            .resource_drop_async(&mut live.store)
            .await
            .map_err(|e| HostError::PluginTrap(format!("{e:#}")))
    }
}

fn classify_trap(e: wasmtime::Error, call_timeout: Duration) -> HostError {
    if let Some(m) = e.downcast_ref::<MemoryLimitExceeded>() {
        return HostError::MemoryLimit(m.to_string());
    }
    if e.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
        return HostError::CallTimeout(call_timeout);
    }
    HostError::PluginTrap(format!("{e:#}"))
}
