//! The data of one tenant's wasmtime store: the WASI and wasi-http contexts, the resource
//! table, the sandbox's hooks, the memory limiter, and the host's own capabilities
//! ([`ProviderCtx`]). It lends each its view, as an embedder's own store data would (see
//! [`crate::capabilities`]).

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::capabilities::{ProviderCtx, ProviderCtxView, ProviderView};
use crate::http_sandbox::SandboxHooks;
use crate::limits::MemoryCap;

/// The data of one tenant's store.
pub(crate) struct TenantState {
    pub(super) wasi: WasiCtx,
    pub(super) http: WasiHttpCtx,
    pub(super) table: ResourceTable,
    pub(super) hooks: SandboxHooks,
    pub(super) memory: MemoryCap,
    pub(super) provider: ProviderCtx,
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

impl ProviderView for TenantState {
    fn provider(&mut self) -> ProviderCtxView<'_> {
        ProviderCtxView {
            ctx: &mut self.provider,
            table: &mut self.table,
        }
    }
}
