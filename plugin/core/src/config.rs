//! Where the provider talks to, with xAI's values as defaults.

use serde::{Deserialize, Serialize};

/// xAI's OAuth issuer.
pub const DEFAULT_ISSUER: &str = "https://auth.x.ai";
/// xAI's model API base.
pub const DEFAULT_API_BASE: &str = "https://api.x.ai/v1";
/// The public OAuth client id xAI's clients use (no secret, no PKCE in the device flow).
pub const DEFAULT_CLIENT_ID: &str = "b1a00492-073a-47ea-816f-4c329264a828";
/// Scopes third-party clients request.
pub const DEFAULT_SCOPE: &str = "openid profile email offline_access grok-cli:access api:access";
/// `User-Agent` sent upstream when the host sets none (the auth host sits behind
/// Cloudflare, which may challenge requests without one).
pub const DEFAULT_USER_AGENT: &str = concat!("grok-provider/", env!("CARGO_PKG_VERSION"));
/// Prefix of every model id this provider exposes.
pub const MODEL_PREFIX: &str = "xai-grok/";
/// The model to switch to after connecting.
pub const DEFAULT_MODEL_ID: &str = "xai-grok/grok-4.3";

/// Endpoint configuration (mirrors the WIT `config.provider-config` record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderConfig {
    /// OAuth issuer; discovery lives at `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    /// Base URL of the model API, e.g. `https://api.x.ai/v1`.
    pub api_base: String,
    /// Public OAuth client id.
    pub client_id: String,
    /// Space-separated OAuth scopes.
    pub scope: String,
    /// `User-Agent` to send upstream.
    pub user_agent: String,
}

impl ProviderConfig {
    /// xAI's production endpoints and public client.
    pub fn xai() -> Self {
        Self {
            issuer: DEFAULT_ISSUER.to_owned(),
            api_base: DEFAULT_API_BASE.to_owned(),
            client_id: DEFAULT_CLIENT_ID.to_owned(),
            scope: DEFAULT_SCOPE.to_owned(),
            user_agent: DEFAULT_USER_AGENT.to_owned(),
        }
    }

    /// `{api_base}/{path}` without doubled slashes.
    pub(crate) fn api_url(&self, path: &str) -> String {
        format!("{}/{}", self.api_base.trim_end_matches('/'), path)
    }

    /// The discovery document's URL.
    pub(crate) fn discovery_url(&self) -> String {
        format!(
            "{}/.well-known/openid-configuration",
            self.issuer.trim_end_matches('/')
        )
    }

    /// The user agent, or the default when the host left it empty.
    pub(crate) fn user_agent(&self) -> &str {
        if self.user_agent.trim().is_empty() {
            DEFAULT_USER_AGENT
        } else {
            &self.user_agent
        }
    }
}

impl Default for ProviderConfig {
    fn default() -> Self {
        Self::xai()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_join_without_double_slashes() {
        let mut c = ProviderConfig::xai();
        assert_eq!(c.api_url("models"), "https://api.x.ai/v1/models");
        assert_eq!(
            c.discovery_url(),
            "https://auth.x.ai/.well-known/openid-configuration"
        );
        c.api_base.push('/');
        c.issuer.push('/');
        assert_eq!(c.api_url("models"), "https://api.x.ai/v1/models");
        assert_eq!(
            c.discovery_url(),
            "https://auth.x.ai/.well-known/openid-configuration"
        );
        c.user_agent = " ".into();
        assert_eq!(c.user_agent(), DEFAULT_USER_AGENT);
    }
}
