//! The baseline of benchmark b: the same provider logic (`grok-provider-core`) run natively
//! in the host process over the same secret store, without WebAssembly.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use grok_provider_core::io::{
    Clock, HttpRequest, HttpResponse, ResponseBody, SecretStore, StoreError, Transport,
    TransportError,
};
use grok_provider_core::settings::Settings;
use grok_provider_core::{ConnectionStatus, Provider, ProviderError};
use provider_runtime::secrets::{LockGuard, TenantSecrets};

/// The provider logic over the host's secret store, natively.
pub struct Native {
    store: provider_runtime::secrets::SecretStore,
    /// Like the runtime, a tenant's directories are checked on its first use only.
    tenants: HashMap<String, TenantSecrets>,
}

impl Native {
    pub fn new(store: provider_runtime::secrets::SecretStore) -> Self {
        Self {
            store,
            tenants: HashMap::new(),
        }
    }

    fn secrets(&mut self, tenant: &str) -> TenantSecrets {
        match self.tenants.get(tenant) {
            Some(s) => s.clone(),
            None => {
                let s = self.store.tenant(tenant).expect("tenant");
                self.tenants.insert(tenant.to_owned(), s.clone());
                s
            }
        }
    }

    /// `chat()` of `tenant`, natively, its request answered in memory with `reply` (the
    /// bytes the API sent): the provider logic alone, from the credentials read to the
    /// parsed reply, with no network and no WebAssembly.
    pub fn chat(
        &mut self,
        settings: &Settings,
        tenant: &str,
        request: &grok_provider_core::ChatRequest,
        reply: &[u8],
    ) -> Result<grok_provider_core::ChatReply, ProviderError> {
        let secrets = self.secrets(tenant);
        Provider::new(
            settings.clone(),
            Canned(reply.to_vec()),
            Store(secrets),
            SystemClock,
        )
        .chat(request)
    }

    /// `status()` of `tenant`. A call that would need the network fails.
    pub fn status(
        &mut self,
        settings: &Settings,
        tenant: &str,
    ) -> Result<ConnectionStatus, ProviderError> {
        let secrets = self.secrets(tenant);
        Provider::new(settings.clone(), NoNetwork, Store(secrets), SystemClock).status()
    }
}

struct Store(TenantSecrets);

fn failed(e: impl std::fmt::Display) -> StoreError {
    StoreError::Failed(e.to_string())
}

impl SecretStore for Store {
    type Guard = LockGuard;

    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.0.get(key).map_err(failed)
    }

    fn set(&mut self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.0.set(key, value).map_err(failed)
    }

    fn delete(&mut self, key: &str) -> Result<(), StoreError> {
        self.0.delete(key).map_err(failed)
    }

    fn list_keys(&mut self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.0.list_keys(prefix).map_err(failed)
    }

    fn lock(&mut self, name: &str, timeout_ms: u32) -> Result<LockGuard, StoreError> {
        self.0
            .lock(name, std::time::Duration::from_millis(timeout_ms.into()))
            .map_err(failed)
    }
}

struct NoNetwork;

struct NoBody;

impl ResponseBody for NoBody {
    fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, TransportError> {
        Ok(None)
    }
}

impl Transport for NoNetwork {
    type Body = NoBody;

    fn send(&mut self, _: HttpRequest) -> Result<HttpResponse<NoBody>, TransportError> {
        Err(TransportError::Failed(
            "no network in the native baseline".into(),
        ))
    }
}

/// Answers every request with 200 and the same JSON body, in one chunk.
struct Canned(Vec<u8>);

struct CannedBody(Option<Vec<u8>>);

impl ResponseBody for CannedBody {
    fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, TransportError> {
        Ok(self.0.take())
    }
}

impl Transport for Canned {
    type Body = CannedBody;

    fn send(&mut self, _: HttpRequest) -> Result<HttpResponse<CannedBody>, TransportError> {
        Ok(HttpResponse {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: CannedBody(Some(self.0.clone())),
        })
    }
}

struct SystemClock;

impl Clock for SystemClock {
    fn now_unix_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }

    fn sleep_ms(&self, ms: u64) {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }

    fn random_bytes(&self, out: &mut [u8]) {
        rand::fill(out);
    }
}
