//! An embedder that runs the plugin in a wasmtime store of its own: its store data holds
//! the WASI and wasi-http contexts, the host's sandbox ([`SandboxHooks`]) and capabilities
//! ([`ProviderCtx`]) next to fields of its own, and one call links every import of the
//! plugin's world ([`capabilities::add_to_linker`]), as `wasmtime-wasi-http` does for
//! `wasi:http`. (`Runtime` is built the same way; this is for an embedder that needs its
//! own engine, store or limits.)
//!
//! `cargo run -p provider-runtime --example own_store -- <component.wasm> <state-dir>`
//! (against the component's default endpoints; `tests/all/embedding.rs` runs this very file
//! against the reference servers).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use provider_runtime::bindings::ProviderPlugin;
use provider_runtime::bindings::types::{ChatRequest, DevicePrompt, Message, PollOutcome, Role};
use provider_runtime::capabilities::{self, ProviderCtx, ProviderCtxView, ProviderView};
use provider_runtime::http_sandbox::{HttpLimits, SandboxHooks};
use provider_runtime::secrets::{SecretBackend, TenantBackend};
use provider_runtime::wasmtime::component::{Component, Linker, ResourceTable};
use provider_runtime::wasmtime::{Engine, Result, Store};
use provider_runtime::wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use provider_runtime::wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};
use provider_runtime::{HostConfig, HostError, ResolvedConfig, default_http_client};

/// The embedder's store data: what the plugin's imports need, and its own fields.
pub struct MyState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    sandbox: SandboxHooks,
    provider: ProviderCtx,
    table: ResourceTable,
    /// The embedder's own: a label for its errors.
    pub label: String,
}

impl MyState {
    /// A store's data for `tenant`, allowed what `config` allows.
    pub fn new(tenant: Arc<dyn TenantBackend>, config: &ResolvedConfig) -> Self {
        let limits = HttpLimits::default();
        let client = default_http_client(limits.connect_timeout);
        Self {
            wasi: WasiCtx::builder().inherit_stderr().build(),
            http: WasiHttpCtx::new(),
            sandbox: SandboxHooks::new(tenant.tenant_id(), config, limits, client),
            label: format!("tenant {}", tenant.tenant_id()),
            provider: ProviderCtx::new(tenant, config),
            table: ResourceTable::new(),
        }
    }
}

impl WasiView for MyState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for MyState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            // Every outgoing request goes through the host's sandbox.
            hooks: &mut self.sandbox,
        }
    }
}

impl ProviderView for MyState {
    fn provider(&mut self) -> ProviderCtxView<'_> {
        ProviderCtxView {
            ctx: &mut self.provider,
            table: &mut self.table,
        }
    }
}

/// Signs `tenant` in unless it is (handing the prompt to `show`), then asks one question;
/// answers the reply's text. `secrets` holds the tenants' secrets.
pub async fn own_store(
    component: &Path,
    secrets: Arc<dyn SecretBackend>,
    config: HostConfig,
    tenant: &str,
    show: impl Fn(&DevicePrompt),
) -> Result<String> {
    let engine = Engine::default();
    let component = Component::from_file(&engine, component)?;
    let mut linker = Linker::new(&engine);
    capabilities::add_to_linker(&mut linker)?;
    let tenant = secrets.tenant(tenant)?;

    // The manifest first, from an instance allowed nothing: it says which settings and
    // endpoints the operator's configuration is checked against.
    let mut probe = Store::new(
        &engine,
        MyState::new(tenant.clone(), &ResolvedConfig::default()),
    );
    let plugin = ProviderPlugin::instantiate_async(&mut probe, &component, &linker).await?;
    let manifest = plugin
        .model_provider_plugin_model_provider()
        .call_manifest(&mut probe)
        .await?;
    // This embedder trusts the component it runs: its default route may open.
    let config = config.grant_default_route().resolve(&manifest)?;

    let mut store = Store::new(&engine, MyState::new(tenant, &config));
    let plugin = ProviderPlugin::instantiate_async(&mut store, &component, &linker).await?;
    let p = plugin.model_provider_plugin_model_provider();
    let status = p.call_status(&mut store).await?.map_err(HostError::from)?;
    if !status.connected {
        let prompt = p.call_start(&mut store).await?.map_err(HostError::from)?;
        show(&prompt);
        let mut interval = prompt.interval_seconds;
        loop {
            tokio::time::sleep(Duration::from_secs(interval.into())).await;
            let polled = p.call_poll(&mut store, Some(&prompt.pending_id)).await?;
            match polled.map_err(HostError::from)? {
                PollOutcome::Connected(_) => break,
                PollOutcome::Pending(p) => interval = p.interval_seconds,
            }
        }
    }
    let status = p.call_status(&mut store).await?.map_err(HostError::from)?;
    let model = status.default_model_id.unwrap_or_default();
    let question = ChatRequest::new(model, vec![Message::text(Role::User, "Say hi.")]);
    let reply = p
        .call_chat(&mut store, &question)
        .await
        .map_err(|e| e.context(format!("chat of {}", store.data().label)))?;
    Ok(reply.map_err(HostError::from)?.content)
}

#[allow(dead_code)] // The test includes this file and calls `own_store` only.
#[tokio::main]
async fn main() -> Result<()> {
    use provider_runtime::secrets::{KeySource, SecretStore, StoreConfig};
    let mut args = std::env::args().skip(1);
    let (Some(component), Some(state)) = (args.next(), args.next()) else {
        eprintln!("usage: own_store <component.wasm> <state-dir>");
        std::process::exit(2);
    };
    let key = KeySource::from_env_or_file(Path::new(&state).join("keyring").join("master.key"));
    let secrets = SecretStore::open(StoreConfig::new(&state, key))?;
    let reply = own_store(
        Path::new(&component),
        Arc::new(secrets),
        HostConfig::new()?,
        "default",
        |p| {
            println!(
                "Open {} and check the code {}",
                p.verification_url_with_code, p.user_code
            )
        },
    )
    .await?;
    println!("{reply}");
    Ok(())
}
