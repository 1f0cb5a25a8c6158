//! Local API keys, the default [`TenantResolver`]: what `provider-host serve-key
//! create|list|revoke` manages. A key is shown once; only a salted SHA-256 of it is kept, next to the tenant it selects: in the secret
//! backend's host space when it has one (PostgreSQL: every replica of a fleet knows every
//! key), else in an encrypted store of its own under `<state-dir>/serve`.

use std::path::Path;
use std::sync::Arc;

use provider_runtime::HostError;

use crate::TenantResolver;
use provider_redact::Secret;
use provider_runtime::secrets::{
    KeySource, SecretBackend, SecretStore, StoreConfig, TenantBackend,
};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The name of the keys' space in a backend that has host spaces.
const HOST_SPACE: &str = "serve-keys";
const PREFIX: &str = "phk_";
const ENTRY: &str = "key.";

/// What is stored per key: never the key itself.
#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    tenant: String,
    salt: String,
    hash: String,
    created: u64,
}

/// A key as `list` shows it.
#[derive(Debug, Serialize)]
pub struct KeyInfo {
    /// The key's public id (the part `revoke` takes).
    pub id: String,
    /// The tenant the key selects.
    pub tenant: String,
    /// When it was created (Unix seconds).
    pub created: u64,
}

/// The store of serve keys: each selects a tenant.
#[derive(Clone)]
pub struct ServeKeys {
    store: Arc<dyn TenantBackend>,
}

fn digest(salt: &[u8], secret: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(secret.as_bytes());
    h.finalize().into()
}

/// Equal in constant time (the digests are of secret input); slices of different lengths
/// are unequal (a length is not secret).
fn same(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl ServeKeys {
    /// Open the key store: `backend`'s host space when it has one, else (no backend given,
    /// or one without host spaces) the store of `state_dir`, under the host's master key.
    pub fn open(
        state_dir: &Path,
        backend: Option<&Arc<dyn SecretBackend>>,
    ) -> Result<Self, HostError> {
        if let Some(store) = backend
            .map(|b| b.host_space(HOST_SPACE))
            .transpose()?
            .flatten()
        {
            return Ok(Self { store });
        }
        let key = KeySource::from_env_or_file(state_dir.join("keyring").join("master.key"));
        let store = SecretStore::open(StoreConfig::new(state_dir.join("serve"), key))?;
        Ok(Self {
            store: Arc::new(store.tenant("keys")?),
        })
    }

    /// Whether a lookup is a local file read (cheap inline) rather than a database call.
    pub fn reads_are_local(&self) -> bool {
        self.store.reads_are_local()
    }

    /// A new key for `tenant`: returned once (a [`Secret`]: printing it shows `[redacted]`;
    /// `expose()` gives the key to hand over), stored only as a salted hash.
    pub fn create(&self, tenant: &str) -> Result<(Secret, KeyInfo), HostError> {
        let mut rng = rand::rng();
        let mut id = [0u8; 8];
        let mut secret = [0u8; 32];
        let mut salt = [0u8; 16];
        rng.fill_bytes(&mut id);
        rng.fill_bytes(&mut secret);
        rng.fill_bytes(&mut salt);
        let (id, secret) = (hex::encode(id), Secret::new(hex::encode(secret)));
        let entry = Entry {
            tenant: tenant.to_owned(),
            salt: hex::encode(salt),
            hash: hex::encode(digest(&salt, secret.expose())),
            created: now(),
        };
        let bytes = serde_json::to_vec(&entry).expect("json");
        self.store.set(&format!("{ENTRY}{id}"), &bytes)?;
        Ok((
            Secret::new(format!("{PREFIX}{id}_{}", secret.expose())),
            KeyInfo {
                id,
                tenant: entry.tenant,
                created: entry.created,
            },
        ))
    }

    /// Every key (never the secret part).
    pub fn list(&self) -> Result<Vec<KeyInfo>, HostError> {
        let mut out = Vec::new();
        for k in self.store.list_keys(ENTRY)? {
            if let Some(e) = self.entry(&k)? {
                out.push(KeyInfo {
                    id: k[ENTRY.len()..].to_owned(),
                    tenant: e.tenant,
                    created: e.created,
                });
            }
        }
        Ok(out)
    }

    /// Remove key `id`; whether it existed.
    pub fn revoke(&self, id: &str) -> Result<bool, HostError> {
        let name = format!("{ENTRY}{}", id.trim_start_matches(PREFIX));
        if !valid_id(&name[ENTRY.len()..]) {
            return Ok(false);
        }
        let existed = self.store.get(&name)?.is_some();
        self.store.delete(&name)?;
        Ok(existed)
    }

    fn entry(&self, name: &str) -> Result<Option<Entry>, HostError> {
        Ok(self
            .store
            .get(name)?
            .and_then(|b| serde_json::from_slice(&b).ok()))
    }

    /// The tenant a presented key selects, or `None` for anything else.
    pub fn tenant_of(&self, presented: &str) -> Result<Option<String>, HostError> {
        let Some((id, secret)) = presented
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split_once('_'))
        else {
            return Ok(None);
        };
        if !valid_id(id) {
            return Ok(None);
        }
        let Some(e) = self.entry(&format!("{ENTRY}{id}"))? else {
            return Ok(None);
        };
        let (Ok(salt), Ok(hash)) = (hex::decode(&e.salt), hex::decode(&e.hash)) else {
            return Ok(None);
        };
        Ok(same(&digest(&salt, secret), &hash).then_some(e.tenant))
    }
}

impl TenantResolver for ServeKeys {
    fn tenant_of(&self, presented_key: &str) -> Result<Option<String>, HostError> {
        ServeKeys::tenant_of(self, presented_key)
    }

    fn is_local(&self) -> bool {
        self.reads_are_local()
    }
}

fn valid_id(id: &str) -> bool {
    id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_equal_only_byte_for_byte_and_length_for_length() {
        let a = digest(b"salt", "secret");
        assert!(same(&a, &a));
        assert!(!same(&a, &digest(b"salt", "secreT")));
        let mut last = a;
        last[31] ^= 1;
        assert!(!same(&a, &last));
        assert!(!same(&a, &a[..31]));
        assert!(!same(&a[..31], &a));
        assert!(same(&[], &[]));
    }

    #[test]
    fn keys_select_their_tenant_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let keys = ServeKeys::open(dir.path(), None).unwrap();
        let (alice, info) = keys.create("alice").unwrap();
        let (bob, _) = keys.create("bob").unwrap();
        // Printing the key never shows it; expose() does.
        let secret_part = alice.expose().rsplit('_').next().unwrap();
        for shown in [format!("{alice}"), format!("{alice:?}")] {
            assert!(
                !shown.contains(secret_part) && !shown.contains(PREFIX),
                "{shown}"
            );
        }
        let (alice, bob) = (alice.expose(), bob.expose());
        assert!(
            alice.starts_with(&format!("{PREFIX}{}_", info.id)),
            "{alice}"
        );
        assert_eq!(keys.tenant_of(alice).unwrap().as_deref(), Some("alice"));
        assert_eq!(keys.tenant_of(bob).unwrap().as_deref(), Some("bob"));
        // A wrong secret with a real id, garbage, and another key's id are all refused.
        let forged = format!("{PREFIX}{}_{}", info.id, "0".repeat(64));
        for bad in [forged.as_str(), "", "phk_", "sk-123", "phk_zz_zz"] {
            assert_eq!(keys.tenant_of(bad).unwrap(), None, "{bad}");
        }
        assert_eq!(keys.list().unwrap().len(), 2);
        // Nothing on disk holds the key in plaintext.
        for entry in walk(dir.path()) {
            let bytes = std::fs::read(&entry).unwrap();
            let secret = alice.rsplit('_').next().unwrap();
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{entry:?}"
            );
        }
        assert!(keys.revoke(&info.id).unwrap());
        assert_eq!(keys.tenant_of(alice).unwrap(), None);
        assert!(!keys.revoke(&info.id).unwrap());
    }

    fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
        out
    }
}
