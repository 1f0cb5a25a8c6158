//! Who is calling: an OAuth access token (verified as the authorization server issued it)
//! or an xAI API key (looked up among the configured keys), and what each may use.
//!
//! A bearer is an API key when it is one of the configured keys, or when it looks like one
//! (`xai-` and no `.`, which a JWT always has): an unknown key of that shape is refused as
//! xAI refuses it (401 `unauthenticated:invalid-api-key`) instead of failing JWT checks.

use std::collections::HashMap;
use std::sync::Mutex;

use super::models::CatalogueModel;
use super::xai_error;
use crate::http::{Reply, lock};

/// The `error` of an unknown key's 401 begins with this.
const INVALID_KEY_MESSAGE: &str = "Incorrect API key provided";

/// What a credential may list and use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyAccess {
    /// The catalogue models offered to this `tier` claim, as for a token carrying it.
    Tier(u32),
    /// Exactly these catalogue ids, whatever their tier (a team's model list).
    Models(Vec<String>),
}

impl KeyAccess {
    /// Whether `model` is included.
    pub fn allows(&self, model: &CatalogueModel) -> bool {
        match self {
            KeyAccess::Tier(tier) => model.offered_to(*tier),
            KeyAccess::Models(ids) => ids.contains(&model.id),
        }
    }
}

impl From<u32> for KeyAccess {
    fn from(tier: u32) -> Self {
        KeyAccess::Tier(tier)
    }
}

impl From<Vec<String>> for KeyAccess {
    fn from(ids: Vec<String>) -> Self {
        KeyAccess::Models(ids)
    }
}

impl From<&[&str]> for KeyAccess {
    fn from(ids: &[&str]) -> Self {
        KeyAccess::Models(ids.iter().map(|&id| id.to_owned()).collect())
    }
}

/// A configured API key.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// The key itself, e.g. from [`random_api_key`].
    pub key: String,
    /// What it may use.
    pub access: KeyAccess,
}

impl std::fmt::Debug for ApiKey {
    // The key is a secret: tests print configs in assertion messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("key", &redacted(&self.key))
            .field("access", &self.access)
            .finish()
    }
}

/// A fresh key shaped like xAI's: `xai-` and 48 random letters and digits.
pub fn random_api_key() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let tail: String = (0..48)
        .map(|_| char::from(ALPHABET[rand::random_range(0..ALPHABET.len())]))
        .collect();
    format!("xai-{tail}")
}

/// Whether a bearer has the shape of an API key.
pub(super) fn looks_like_api_key(bearer: &str) -> bool {
    bearer.starts_with("xai-") && !bearer.contains('.')
}

/// `xai-…` plus the last four characters, as error messages show a key.
fn redacted(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() < 12 {
        return "xai-…".to_owned();
    }
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("xai-…{tail}")
}

/// The kind of credential a request presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    OAuth,
    ApiKey,
}

/// The configured keys (changeable at run time) and how refusals show a key.
pub(super) struct Keys {
    keys: Mutex<HashMap<String, KeyAccess>>,
    echo_in_errors: Mutex<bool>,
}

impl Keys {
    pub fn new(configured: &[ApiKey], echo_in_errors: bool) -> Self {
        Self {
            keys: Mutex::new(
                configured
                    .iter()
                    .map(|k| (k.key.clone(), k.access.clone()))
                    .collect(),
            ),
            echo_in_errors: Mutex::new(echo_in_errors),
        }
    }

    /// The kind of `bearer`.
    pub fn kind(&self, bearer: &str) -> Kind {
        if looks_like_api_key(bearer) || lock(&self.keys).contains_key(bearer) {
            Kind::ApiKey
        } else {
            Kind::OAuth
        }
    }

    /// What the key may use, when it is configured.
    pub fn access(&self, key: &str) -> Option<KeyAccess> {
        lock(&self.keys).get(key).cloned()
    }

    pub fn add(&self, key: String, access: KeyAccess) {
        lock(&self.keys).insert(key, access);
    }

    pub fn remove(&self, key: &str) -> bool {
        lock(&self.keys).remove(key).is_some()
    }

    pub fn set_echo_in_errors(&self, echo: bool) {
        *lock(&self.echo_in_errors) = echo;
    }

    /// xAI's answer to an unknown key: 401, the key redacted unless echoing was asked for
    /// (so a test can prove a client scrubs what upstream sends back).
    pub fn invalid(&self, key: &str) -> Reply {
        let shown = if *lock(&self.echo_in_errors) {
            key.to_owned()
        } else {
            redacted(key)
        };
        xai_error(
            401,
            "unauthenticated:invalid-api-key",
            &format!(
                "{INVALID_KEY_MESSAGE}: {shown}. You can obtain an API key from https://console.x.ai."
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_keys_have_xais_shape() {
        let a = random_api_key();
        assert!(a.starts_with("xai-") && a.len() == 52, "{a}");
        assert!(a[4..].bytes().all(|b| b.is_ascii_alphanumeric()));
        assert!(looks_like_api_key(&a));
        assert_ne!(a, random_api_key());
        assert!(!looks_like_api_key("eyJhbGciOi.e30.sig"));
        assert!(!looks_like_api_key("xai-with.a.dot"));
    }

    #[test]
    fn redaction_keeps_only_the_tail() {
        let key = random_api_key();
        let shown = redacted(&key);
        assert!(shown.starts_with("xai-…") && shown.ends_with(&key[key.len() - 4..]));
        assert!(!shown.contains(&key[4..20]));
        assert_eq!(redacted("xai-short"), "xai-…");
        assert!(
            !format!(
                "{:?}",
                ApiKey {
                    key: key.clone(),
                    access: 1.into()
                }
            )
            .contains(&key)
        );
    }
}
