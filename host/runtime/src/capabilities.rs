//! The host's capabilities as an embedder links them into a wasmtime [`Linker`] of its own,
//! the way `wasmtime-wasi-http` serves `wasi:http`: the embedder keeps a [`ProviderCtx`]
//! (and a [`ResourceTable`]) in its store's data, implements [`ProviderView`] to lend them,
//! and calls [`add_to_linker`] (every import of the plugin's world: WASI, the sandboxed
//! `wasi:http`, `secrets`, `wasi:config/store`) or [`add_only_capabilities_to_linker`] (the
//! host's own interfaces only, for an embedder that links WASI itself).
//! [`Runtime`](crate::Runtime) is built on the same functions over its own store data.
//!
//! The `secrets` import is backed by the tenant's secret backend; blocking backend work
//! runs on tokio's blocking pool. A storage error reaches the plugin as
//! [`SecretStoreError::guest_message`]: no path of the host's state directory ever does.
//! The full error, paths included, is logged here (warn for I/O, corruption and
//! master-key failures, debug for what the plugin caused: invalid names, limits, lock
//! timeouts). Limits of `lock` (locks held at once, lock names in use) reach the plugin as
//! `too-large`. `wasi:config/store` answers the operator's overrides and nothing else.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime_wasi::WasiView;
use wasmtime_wasi_config::{WasiConfig, WasiConfigVariables};
use wasmtime_wasi_http::WasiHttpView;

use crate::bindings::{secrets, types};
use crate::host_config::ResolvedConfig;
use crate::limits::Limits;
use crate::secrets::{SecretLock, SecretStoreError, TenantBackend};

/// The longest one blocking attempt at a lock runs by default (see
/// [`ProviderCtx::with_lock_wait_slice`]).
pub const DEFAULT_LOCK_WAIT_SLICE: Duration = Duration::from_millis(200);

/// What the host's own imports serve one store (one tenant's instance): the tenant's
/// secrets, the overrides `wasi:config/store` answers, and the caps on lock waits.
pub struct ProviderCtx {
    secrets: Arc<dyn TenantBackend>,
    config: WasiConfigVariables,
    lock_timeout_cap: Duration,
    lock_wait_slice: Duration,
}

impl std::fmt::Debug for ProviderCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderCtx")
            .field("tenant", &self.secrets.tenant_id())
            .field("lock_timeout_cap", &self.lock_timeout_cap)
            .finish_non_exhaustive()
    }
}

impl ProviderCtx {
    /// The capabilities of a store of the tenant whose secrets `secrets` holds, configured
    /// by `config` (its overrides are what `wasi:config/store` answers). A plugin's lock
    /// waits are capped at [`Limits::lock_timeout_cap`]'s default.
    pub fn new(secrets: Arc<dyn TenantBackend>, config: &ResolvedConfig) -> Self {
        Self {
            secrets,
            config: config
                .overrides
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
            lock_timeout_cap: Limits::default().lock_timeout_cap,
            lock_wait_slice: DEFAULT_LOCK_WAIT_SLICE,
        }
    }

    /// Caps how long a plugin may wait for a secret-store lock, whatever it asks.
    pub fn with_lock_timeout_cap(mut self, cap: Duration) -> Self {
        self.lock_timeout_cap = cap;
        self
    }

    /// The longest one blocking attempt at a lock runs (default
    /// [`DEFAULT_LOCK_WAIT_SLICE`]): a wait is made of such attempts, so that a call
    /// abandoned midway leaves at most one running on the blocking pool. Shorter slices
    /// free threads sooner and cost more attempts.
    pub fn with_lock_wait_slice(mut self, slice: Duration) -> Self {
        self.lock_wait_slice = slice.max(Duration::from_millis(1));
        self
    }

    /// The tenant whose secrets these are.
    pub fn tenant_id(&self) -> &str {
        self.secrets.tenant_id()
    }
}

/// A borrow of a store's [`ProviderCtx`] and resource table: what the host's imports work
/// on (the `secrets` host traits are implemented for it).
pub struct ProviderCtxView<'a> {
    /// The capabilities of the store.
    pub ctx: &'a mut ProviderCtx,
    /// The store's resource table (lock handles live there).
    pub table: &'a mut ResourceTable,
}

/// Lends the host's imports their state out of an embedder's store data, as
/// `wasmtime_wasi::WasiView` and `wasmtime_wasi_http::WasiHttpView` do for theirs.
pub trait ProviderView: Send {
    /// The store's [`ProviderCtx`] and resource table.
    fn provider(&mut self) -> ProviderCtxView<'_>;
}

/// The [`HasData`] of the host's imports, for calling the generated `add_to_linker`
/// functions of [`crate::bindings`] directly (`add_to_linker::<T, Capabilities>`).
pub struct Capabilities;

impl HasData for Capabilities {
    type Data<'a> = ProviderCtxView<'a>;
}

/// Links every import of the plugin's world into `linker`: WASI 0.2 (wasmtime-wasi's
/// async implementation), `wasi:http` (wasmtime-wasi-http's, through whatever hooks the
/// store's `WasiHttpView` lends: a [`crate::http_sandbox::SandboxHooks`] for the host's
/// sandbox), `secrets`, `types` and `wasi:config/store`.
pub fn add_to_linker<T>(linker: &mut Linker<T>) -> wasmtime::Result<()>
where
    T: WasiView + WasiHttpView + ProviderView + 'static,
{
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    crate::http_handler::add_http_to_linker(linker)?;
    add_only_capabilities_to_linker(linker)
}

/// Links only the host's own imports: `secrets`, `types` and `wasi:config/store` (for an
/// embedder that links WASI and `wasi:http` itself).
pub fn add_only_capabilities_to_linker<T>(linker: &mut Linker<T>) -> wasmtime::Result<()>
where
    T: ProviderView + 'static,
{
    secrets::add_to_linker::<T, Capabilities>(linker, T::provider)?;
    types::add_to_linker::<T, Capabilities>(linker, T::provider)?;
    wasmtime_wasi_config::add_to_linker(linker, |s: &mut T| {
        let ctx: &ProviderCtx = s.provider().ctx;
        WasiConfig::from(&ctx.config)
    })
}

/// The plugin's view of a storage error (no host path), after logging the host's.
fn wire(tenant: &str, e: SecretStoreError) -> secrets::SecretError {
    use secrets::SecretError as W;
    // The host's display, with the OS reason (`Io`'s source) and paths.
    let host_view = match std::error::Error::source(&e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    };
    match &e {
        SecretStoreError::Io { .. }
        | SecretStoreError::Corrupt(_)
        | SecretStoreError::MasterKey(_) => {
            tracing::warn!(tenant, error = %host_view, "secret store call of the plugin failed");
        }
        _ => tracing::debug!(tenant, error = %host_view, "secret store call of the plugin refused"),
    }
    let message = e.guest_message();
    match e {
        SecretStoreError::InvalidKey(_) | SecretStoreError::InvalidTenant(_) => {
            W::InvalidKey(message)
        }
        SecretStoreError::TooLarge(_) | SecretStoreError::QuotaExceeded(_) => W::TooLarge(message),
        SecretStoreError::LockTimeout(_) => W::LockTimeout(message),
        SecretStoreError::Corrupt(_) => W::Corrupt(message),
        _ => W::Io(message),
    }
}

async fn blocking<R: Send + 'static>(
    secrets: &Arc<dyn TenantBackend>,
    f: impl FnOnce(&dyn TenantBackend) -> Result<R, SecretStoreError> + Send + 'static,
) -> Result<R, secrets::SecretError> {
    let s = secrets.clone();
    match tokio::task::spawn_blocking(move || f(&*s)).await {
        Ok(r) => r.map_err(|e| wire(secrets.tenant_id(), e)),
        Err(e) => {
            tracing::warn!(
                tenant = secrets.tenant_id(),
                "secret store task failed: {e}"
            );
            Err(secrets::SecretError::Io("the storage task failed".into()))
        }
    }
}

impl secrets::Host for ProviderCtxView<'_> {
    async fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, secrets::SecretError> {
        // A small read of a local file takes microseconds: cheaper inline than a round trip
        // through the blocking pool (tens of microseconds, more when a core must be woken).
        // A remote backend's read goes to the pool like every other call.
        let s = &self.ctx.secrets;
        if s.reads_are_local() {
            return s.get(&key).map_err(|e| wire(s.tenant_id(), e));
        }
        blocking(s, move |s| s.get(&key)).await
    }

    async fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), secrets::SecretError> {
        blocking(&self.ctx.secrets, move |s| s.set(&key, &value)).await
    }

    async fn delete(&mut self, key: String) -> Result<(), secrets::SecretError> {
        blocking(&self.ctx.secrets, move |s| s.delete(&key)).await
    }

    async fn list_keys(&mut self, prefix: String) -> Result<Vec<String>, secrets::SecretError> {
        blocking(&self.ctx.secrets, move |s| s.list_keys(&prefix)).await
    }

    async fn lock(
        &mut self,
        name: String,
        timeout_ms: u32,
    ) -> Result<Resource<SecretLock>, secrets::SecretError> {
        let timeout = Duration::from_millis(timeout_ms.into()).min(self.ctx.lock_timeout_cap);
        // Waited in short slices, each a blocking task of its own: when the call's budget
        // ends, the call (and this future) is dropped, and at most one slice is left
        // running on the blocking pool, instead of a thread (and, in the CLI, the process
        // exiting) held until the lock frees or the whole timeout passes.
        let deadline = tokio::time::Instant::now() + timeout;
        let guard = loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let slice = left.min(self.ctx.lock_wait_slice);
            let attempt = name.clone();
            match blocking(&self.ctx.secrets, move |s| s.lock(&attempt, slice)).await {
                Err(secrets::SecretError::LockTimeout(_)) if slice < left => continue,
                Err(secrets::SecretError::LockTimeout(_)) => {
                    break Err(secrets::SecretError::LockTimeout(format!(
                        "the lock {name:?} is held elsewhere; gave up after {} ms",
                        timeout.as_millis()
                    )));
                }
                other => break other,
            }
        }?;
        self.table
            .push(guard)
            .map_err(|e| secrets::SecretError::Io(format!("too many open locks: {e}")))
    }
}

impl secrets::HostExclusiveLock for ProviderCtxView<'_> {
    async fn drop(&mut self, lock: Resource<SecretLock>) -> wasmtime::Result<()> {
        // Dropping the guard releases the OS lock.
        self.table.delete(lock)?;
        Ok(())
    }
}

impl types::Host for ProviderCtxView<'_> {}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::Path;
    use std::time::Duration;

    use super::{secrets::SecretError, wire};
    use crate::secrets::{KeySource, SecretStore, SecretStoreError, StoreConfig, TenantSecrets};

    fn text(e: &SecretError) -> &str {
        match e {
            SecretError::InvalidKey(m)
            | SecretError::TooLarge(m)
            | SecretError::LockTimeout(m)
            | SecretError::Corrupt(m)
            | SecretError::Io(m) => m,
        }
    }

    fn store(state: &Path, adjust: impl FnOnce(&mut StoreConfig)) -> SecretStore {
        let mut config = StoreConfig::new(
            state,
            KeySource::File(state.join("keyring").join("master.key")),
        );
        adjust(&mut config);
        SecretStore::open(config).unwrap()
    }

    /// What the plugin gets for `result`'s error.
    fn seen<T: std::fmt::Debug>(
        t: &TenantSecrets,
        result: Result<T, SecretStoreError>,
    ) -> SecretError {
        wire(t.tenant_id(), result.unwrap_err())
    }

    #[test]
    fn secrets_errors_reach_the_guest_without_host_paths() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let s = store(&state, |c| {
            c.max_value_bytes = 8;
            c.max_keys = 1;
            c.max_held_locks = 2;
            c.max_lock_names = 3;
        });
        let t = s.tenant("tenant-1").unwrap();
        let tenant_dir = state.join("tenants").join("tenant-1");
        let mut got: Vec<(&str, SecretError)> = Vec::new();

        got.push(("invalid key", seen(&t, t.get("Bad"))));
        got.push(("value too large", seen(&t, t.set("k", &[0; 9]))));
        t.set("k", b"v").unwrap();
        got.push(("too many keys", seen(&t, t.set("other", b"v"))));
        fs::write(tenant_dir.join("secrets/k.sec"), b"garbage").unwrap();
        got.push(("corrupt", seen(&t, t.get("k"))));
        fs::write(tenant_dir.join("secrets/k.sec"), vec![0; 4096]).unwrap();
        got.push(("stored value too large", seen(&t, t.get("k"))));
        let a = t.lock("a", Duration::ZERO).unwrap();
        got.push((
            "lock timeout",
            seen(
                &s.tenant("tenant-1").unwrap(),
                s.tenant("tenant-1").unwrap().lock("a", Duration::ZERO),
            ),
        ));
        let b = t.lock("b", Duration::ZERO).unwrap();
        got.push(("too many locks held", seen(&t, t.lock("c", Duration::ZERO))));
        let other = s.tenant("tenant-1").unwrap();
        let c = other.lock("c", Duration::ZERO).unwrap();
        got.push((
            "too many lock names",
            seen(&other, other.lock("d", Duration::ZERO)),
        ));
        drop((a, b, c));

        // I/O errors: the tenant's directories replaced by files behind the store's back.
        fs::remove_dir_all(tenant_dir.join("secrets")).unwrap();
        fs::write(tenant_dir.join("secrets"), b"").unwrap();
        got.push(("io: get", seen(&t, t.get("k"))));
        got.push(("io: set", seen(&t, t.set("k", b"v"))));
        got.push(("io: delete", seen(&t, t.delete("k"))));
        got.push(("io: list", seen(&t, t.list_keys(""))));
        fs::remove_dir_all(tenant_dir.join("locks")).unwrap();
        fs::write(tenant_dir.join("locks"), b"").unwrap();
        got.push(("io: lock", seen(&t, t.lock("e", Duration::ZERO))));
        // Never raised by a plugin's call, but mapped all the same.
        got.push((
            "master key",
            wire(
                "tenant-1",
                SecretStoreError::MasterKey(format!("key file {} is missing", state.display())),
            ),
        ));

        let expected = [
            ("invalid key", "InvalidKey"),
            ("value too large", "TooLarge"),
            ("too many keys", "TooLarge"),
            ("corrupt", "Corrupt"),
            ("stored value too large", "TooLarge"),
            ("lock timeout", "LockTimeout"),
            ("too many locks held", "TooLarge"),
            ("too many lock names", "TooLarge"),
            ("io: get", "Io"),
            ("io: set", "Io"),
            ("io: delete", "Io"),
            ("io: list", "Io"),
            ("io: lock", "Io"),
            ("master key", "Io"),
        ];
        assert_eq!(got.len(), expected.len());
        let root = dir.path().display().to_string();
        for ((what, err), (want_what, want_variant)) in got.iter().zip(expected) {
            assert_eq!(*what, want_what);
            let variant = format!("{err:?}");
            assert!(
                variant.starts_with(&format!("SecretError::{want_variant}(")),
                "{what}: {variant}"
            );
            let message = text(err);
            assert!(!message.is_empty(), "{what}");
            assert!(!message.contains(&root), "{what}: {message}");
            assert!(!message.contains('/'), "{what}: a path in {message:?}");
            assert!(!message.contains("tenants"), "{what}: {message}");
        }
        // The I/O errors still say what failed and why.
        let io = text(&got[8].1);
        assert!(io.contains("reading the value of key \"k\""), "{io}");
        assert!(io.contains("Not a directory"), "{io}");
    }

    /// The host traits work on any store's view: values round-trip, a lock wait is held to
    /// the context's cap whatever the plugin asks, and a released lock can be taken.
    #[tokio::test]
    async fn a_view_serves_secrets_and_caps_lock_waits() {
        use super::secrets::{Host as _, HostExclusiveLock as _};
        use super::{ProviderCtx, ProviderCtxView};
        use crate::ResolvedConfig;
        use crate::secrets::SecretBackend;
        use wasmtime::component::ResourceTable;

        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir.path().join("state"), |_| {});
        let tenant = SecretBackend::tenant(&s, "tenant-1").unwrap();
        let mut ctx = ProviderCtx::new(tenant, &ResolvedConfig::default())
            .with_lock_timeout_cap(Duration::from_millis(100));
        let mut table = ResourceTable::new();
        let mut view = ProviderCtxView {
            ctx: &mut ctx,
            table: &mut table,
        };
        view.set("k".into(), b"v".to_vec()).await.unwrap();
        assert_eq!(view.get("k".into()).await.unwrap(), Some(b"v".to_vec()));

        let held = s
            .tenant("tenant-1")
            .unwrap()
            .lock("l", Duration::ZERO)
            .unwrap();
        let started = std::time::Instant::now();
        let waited = view.lock("l".into(), 60_000).await;
        assert!(
            matches!(waited, Err(SecretError::LockTimeout(_))),
            "{waited:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(5), "the cap held");
        drop(held);
        let lock = view.lock("l".into(), 1_000).await.unwrap();
        view.drop(lock).await.unwrap();
        // Dropping the handle released it.
        drop(
            s.tenant("tenant-1")
                .unwrap()
                .lock("l", Duration::ZERO)
                .unwrap(),
        );
    }
}
