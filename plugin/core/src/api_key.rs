//! The stored API key of the `api-key` route (BYOK): its own secret, apart from the OAuth
//! credentials, which never touch it (and it never touches them).

use provider_redact::Secret;
use serde::{Deserialize, Serialize};

use crate::error::ProviderError;
use crate::json::written;
use crate::record::{Fields, Record};
use crate::types::ApiKeyInfo;

/// Store key of the API key record.
pub const API_KEY_KEY: &str = "api-key";
/// Longest key accepted (xAI's are under 100 characters).
pub const MAX_API_KEY_LEN: usize = 512;
/// Shortest key whose last four characters `api-key-status` shows.
pub const MIN_KEY_LEN_SHOWN: usize = 8;
/// Where an xAI API key comes from, for messages.
pub const API_KEY_CONSOLE: &str = "console.x.ai";

/// The stored key (secret key [`API_KEY_KEY`], JSON). Its `Debug` never shows the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    /// The key, sent as `Authorization: Bearer <key>`. Written in clear into the stored
    /// record (the host's secret store keeps it encrypted): every call reads it from there.
    #[serde(serialize_with = "Secret::serialize_exposed")]
    pub key: Secret,
    /// When it was stored (unix ms).
    pub stored_at_ms: u64,
}

impl Record for ApiKey {
    fn read(f: &mut Fields) -> Option<Self> {
        Some(Self {
            key: Secret::from(f.string("key")?),
            stored_at_ms: f.u64("stored_at_ms")?,
        })
    }
}

impl ApiKey {
    /// A key as a caller gave it: non-empty printable ASCII without whitespace, at most
    /// [`MAX_API_KEY_LEN`] characters. The error never quotes it.
    pub fn new(key: &str, now_ms: u64) -> Result<Self, ProviderError> {
        let bad = |why: &str| ProviderError::InvalidInput(format!("the API key {why}"));
        if key.is_empty() {
            return Err(bad("is empty"));
        }
        if key.len() > MAX_API_KEY_LEN {
            return Err(bad(&format!("is longer than {MAX_API_KEY_LEN} characters")));
        }
        if !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(bad(
                "must be printable ASCII without spaces or line breaks (paste the key alone)",
            ));
        }
        Ok(Self {
            key: Secret::new(key),
            stored_at_ms: now_ms,
        })
    }

    /// What `api-key-status` answers about it.
    pub fn status(&self) -> ApiKeyInfo {
        let chars: Vec<char> = self.key.expose().chars().collect();
        // A key too short to keep most of it hidden shows nothing.
        let last_four =
            (chars.len() >= MIN_KEY_LEN_SHOWN).then(|| chars[chars.len() - 4..].iter().collect());
        ApiKeyInfo {
            stored: true,
            last_four,
        }
    }

    /// Serialize for the store.
    pub fn to_bytes(&self) -> Vec<u8> {
        written(serde_json::to_vec(self))
    }

    /// Parse the stored record.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProviderError> {
        Self::from_json(bytes).ok_or_else(|| {
            ProviderError::Storage(
                "the stored API key is unreadable: call delete-api-key, then set-api-key".into(),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_without_quoting() {
        let key = "xai-0123456789abcdefSECRET";
        let k = ApiKey::new(key, 5).unwrap();
        assert_eq!(k.status().last_four.as_deref(), Some("CRET"));
        assert!(!format!("{k:?}").contains("SECRET"));
        assert!(!format!("{k:#?}").contains("SECRET"));
        assert_eq!(k.key.expose(), key);
        assert_eq!(ApiKey::from_bytes(&k.to_bytes()).unwrap(), k);
        for bad in [
            String::new(),
            "xai-with space".into(),
            "xai-line\nbreak".into(),
            "xai-tab\t".into(),
            "xai-é".into(),
            "k".repeat(MAX_API_KEY_LEN + 1),
        ] {
            let e = ApiKey::new(&bad, 0).unwrap_err();
            assert!(matches!(&e, ProviderError::InvalidInput(_)), "{e:?}");
            assert!(bad.is_empty() || !e.to_string().contains(&bad), "{e}");
        }
        assert!(ApiKey::new(&"k".repeat(MAX_API_KEY_LEN), 0).is_ok());
        // Too short to show a part of.
        assert_eq!(ApiKey::new("short", 0).unwrap().status().last_four, None);
        assert_eq!(
            ApiKey::new("12345678", 0)
                .unwrap()
                .status()
                .last_four
                .as_deref(),
            Some("5678")
        );
        assert!(ApiKey::from_bytes(b"xai-raw").is_err());
    }
}
