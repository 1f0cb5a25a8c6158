//! The core's `SecretStore` over the host's `secrets` import.

use grok_provider_core::io::{SecretStore, StoreError};

use super::bindings::model_provider::plugin::secrets::{self, ExclusiveLock, SecretError};

/// Secret storage granted by the host, already scoped to this tenant.
pub struct HostSecrets;

fn store_error(e: SecretError) -> StoreError {
    match e {
        SecretError::LockTimeout(m) => StoreError::LockTimeout(m),
        SecretError::InvalidKey(m) => StoreError::Failed(format!("invalid key: {m}")),
        SecretError::TooLarge(m) => StoreError::Failed(format!("too large: {m}")),
        SecretError::Corrupt(m) => StoreError::Failed(format!("corrupt: {m}")),
        SecretError::Io(m) => StoreError::Failed(m),
    }
}

impl SecretStore for HostSecrets {
    type Guard = ExclusiveLock;

    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        secrets::get(key).map_err(store_error)
    }

    fn set(&mut self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        secrets::set(key, value).map_err(store_error)
    }

    fn delete(&mut self, key: &str) -> Result<(), StoreError> {
        secrets::delete(key).map_err(store_error)
    }

    fn list_keys(&mut self, prefix: &str) -> Result<Vec<String>, StoreError> {
        secrets::list_keys(prefix).map_err(store_error)
    }

    fn lock(&mut self, name: &str, timeout_ms: u32) -> Result<ExclusiveLock, StoreError> {
        secrets::lock(name, timeout_ms).map_err(store_error)
    }
}
