//! A tenant's session: its live instance of the plugin, replaced after a trap, and the
//! plugin's exports as async methods, each bounded by the session's limits.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use wasmtime::Store;
use wasmtime::component::{ResourceAny, ResourceTable};
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi_http::WasiHttpCtx;

use super::TenantState;
use super::trap::classify_trap;
use crate::bindings::types::{
    ApiKeyInfo, ChatChunk, ChatReply, ChatRequest, ConnectionStatus, DevicePrompt, LogoutReport,
    ModelList, PluginManifest, PollOutcome, ProviderError, QuotaReport,
};
use crate::bindings::{ProviderPlugin, ProviderPluginPre};
use crate::capabilities::ProviderCtx;
use crate::error::HostError;
use crate::guest_stderr::GuestStderr;
use crate::host_config::ResolvedConfig;
use crate::http_pool::HttpPool;
use crate::http_sandbox::SandboxHooks;
use crate::limits::{Limits, MemoryBudget, MemoryCap};
use crate::secrets::TenantBackend;

pub(super) struct Live {
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
    /// The runtime's budget for all its instances.
    budget: Option<Arc<MemoryBudget>>,
    lock_wait_slice: Duration,
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
    pub(super) fn new(
        pre: ProviderPluginPre<TenantState>,
        secrets: Arc<dyn TenantBackend>,
        config: ResolvedConfig,
        limits: Limits,
        budget: Option<Arc<MemoryBudget>>,
        lock_wait_slice: Duration,
        connections: HttpPool,
    ) -> Self {
        Self {
            pre,
            secrets,
            config,
            limits,
            budget,
            lock_wait_slice,
            denied: Arc::new(AtomicU64::new(0)),
            stderr_used: Arc::new(AtomicUsize::new(0)),
            connections,
            live: None,
            generation: 0,
            open_streams: 0,
        }
    }

    pub(super) async fn instantiate(&mut self) -> Result<&mut Live, HostError> {
        // The session's counter outlives instances, so refusals are counted across traps.
        let hooks = SandboxHooks::with_pool(
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
                    self.limits.stderr_bytes_per_call,
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
            memory: MemoryCap::new(self.limits.memory_bytes, self.budget.clone()),
            provider: ProviderCtx::new(self.secrets.clone(), &self.config)
                .with_lock_timeout_cap(self.limits.lock_timeout_cap)
                .with_lock_wait_slice(self.lock_wait_slice),
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

    pub(super) async fn call_manifest(&mut self) -> Result<PluginManifest, HostError> {
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
