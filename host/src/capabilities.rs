//! The host side of the plugin's imports: `secrets` and `config`, backed by the tenant's
//! secret store and settings. Blocking file work runs on tokio's blocking pool.

use std::time::Duration;

use wasmtime::component::Resource;

use crate::bindings::model_provider::plugin::{config, secrets, types};
use crate::runtime::TenantState;
use crate::secrets::{LockGuard, SecretStoreError};

fn wire(e: SecretStoreError) -> secrets::SecretError {
    use secrets::SecretError as W;
    match e {
        SecretStoreError::InvalidKey(_) | SecretStoreError::InvalidTenant(_) => {
            W::InvalidKey(e.to_string())
        }
        SecretStoreError::TooLarge(_) => W::TooLarge(e.to_string()),
        SecretStoreError::LockTimeout(_) => W::LockTimeout(e.to_string()),
        SecretStoreError::Corrupt(_) => W::Corrupt(e.to_string()),
        // `Io` displays only its context; the OS reason is its source.
        other => W::Io(match std::error::Error::source(&other) {
            Some(cause) => format!("{other}: {cause}"),
            None => other.to_string(),
        }),
    }
}

async fn blocking<R: Send + 'static>(
    f: impl FnOnce() -> Result<R, SecretStoreError> + Send + 'static,
) -> Result<R, secrets::SecretError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(wire),
        Err(e) => Err(secrets::SecretError::Io(format!(
            "storage task failed: {e}"
        ))),
    }
}

impl secrets::Host for TenantState {
    async fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, secrets::SecretError> {
        // A small read of a local file takes microseconds: cheaper inline than a round trip
        // through the blocking pool (tens of microseconds, more when a core must be woken).
        self.secrets.get(&key).map_err(wire)
    }

    async fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), secrets::SecretError> {
        let s = self.secrets.clone();
        blocking(move || s.set(&key, &value)).await
    }

    async fn delete(&mut self, key: String) -> Result<(), secrets::SecretError> {
        let s = self.secrets.clone();
        blocking(move || s.delete(&key)).await
    }

    async fn list_keys(&mut self, prefix: String) -> Result<Vec<String>, secrets::SecretError> {
        let s = self.secrets.clone();
        blocking(move || s.list_keys(&prefix)).await
    }

    async fn lock(
        &mut self,
        name: String,
        timeout_ms: u32,
    ) -> Result<Resource<LockGuard>, secrets::SecretError> {
        let s = self.secrets.clone();
        let timeout = Duration::from_millis(timeout_ms.into()).min(self.lock_timeout_cap);
        let guard = blocking(move || s.lock(&name, timeout)).await?;
        self.table
            .push(guard)
            .map_err(|e| secrets::SecretError::Io(format!("too many open locks: {e}")))
    }
}

impl secrets::HostExclusiveLock for TenantState {
    async fn drop(&mut self, lock: Resource<LockGuard>) -> wasmtime::Result<()> {
        // Dropping the guard releases the OS lock.
        self.table.delete(lock)?;
        Ok(())
    }
}

impl config::Host for TenantState {
    async fn get(&mut self) -> config::ProviderConfig {
        let s = &self.settings;
        config::ProviderConfig {
            issuer: s.issuer.clone(),
            api_base: s.api_base.clone(),
            client_id: s.client_id.clone(),
            scope: s.scope.clone(),
            user_agent: s.user_agent.clone(),
        }
    }
}

impl types::Host for TenantState {}
