//! The data of one tenant's wasmtime store: the WASI and wasi-http contexts, the resource
//! table, the sandbox's hooks, the memory limiter, and what the `secrets` and
//! `wasi:config/store` imports serve.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_config::WasiConfigVariables;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::http_sandbox::SandboxHooks;
use crate::limits::MemoryCap;
use crate::secrets::TenantBackend;

/// The data of one tenant's store.
pub(crate) struct TenantState {
    pub(super) wasi: WasiCtx,
    pub(super) http: WasiHttpCtx,
    pub(crate) table: ResourceTable,
    pub(super) hooks: SandboxHooks,
    pub(super) memory: MemoryCap,
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
