//! The configuration the provider runs with: the manifest's defaults overridden by what the
//! host's `wasi:config/store` holds, validated once per export call.

use crate::error::ProviderError;
use crate::manifest::{SettingSpec, keys, setting};
use crate::origin::Url;
use crate::redact::truncate;
use crate::routes::Route;
use crate::types::SettingKind;

/// Longest configuration value accepted (a URL or a header value).
pub const MAX_VALUE_LEN: usize = 2048;

/// Where the provider talks to, and how it introduces itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// OAuth issuer; discovery lives at `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    /// Base URL of the developer API (routes `api` and `api-key`), e.g. `https://api.x.ai/v1`.
    pub api_base: String,
    /// Public OAuth client id.
    pub client_id: String,
    /// Space-separated OAuth scopes.
    pub scope: String,
    /// The route a request that names none takes.
    pub default_route: Route,
    /// Base URL of the subscription rail.
    pub subscription_base: String,
    /// `X-XAI-Token-Auth` on the subscription rail.
    pub subscription_token_auth: String,
    /// `x-grok-client-identifier` on the subscription rail.
    pub subscription_client_identifier: String,
    /// `x-grok-client-version` on the subscription rail.
    pub subscription_client_version: String,
    /// `x-grok-client-mode` on the subscription rail.
    pub subscription_client_mode: String,
    /// `x-authenticateresponse` on the subscription rail.
    pub subscription_authenticate_response: String,
    /// `User-Agent` sent upstream.
    pub user_agent: String,
}

impl Default for Settings {
    /// The manifest's defaults.
    fn default() -> Self {
        Settings::from_pairs(std::iter::empty()).expect("the manifest's defaults are valid")
    }
}

fn invalid(spec: &SettingSpec, why: &str) -> ProviderError {
    ProviderError::InvalidInput(format!("configuration key {}: {why}", spec.key))
}

/// Check `value` for `spec`'s kind; endpoints lose trailing slashes.
fn checked(spec: &SettingSpec, value: &str) -> Result<String, ProviderError> {
    if value.len() > MAX_VALUE_LEN {
        return Err(invalid(spec, &format!("longer than {MAX_VALUE_LEN} bytes")));
    }
    // Every value ends up in a URL, a form or a header: printable ASCII, spaces inside only.
    if value.bytes().any(|b| !(b.is_ascii_graphic() || b == b' ')) {
        return Err(invalid(spec, "only printable ASCII is accepted"));
    }
    let value = value.trim();
    match spec.kind {
        SettingKind::Endpoint => {
            let shown = truncate(value, 80);
            let url = Url::parse(value)
                .filter(|_| !value.contains(' '))
                .ok_or_else(|| {
                    invalid(spec, &format!("{shown:?} is not an absolute http(s) URL"))
                })?;
            if !url.origin.is_browser_safe() {
                return Err(invalid(
                    spec,
                    &format!("{shown:?} is neither https nor http on a loopback host"),
                ));
            }
            if value.contains(['?', '#']) {
                return Err(invalid(
                    spec,
                    &format!("{shown:?} has a query or a fragment"),
                ));
            }
            Ok(value.trim_end_matches('/').to_owned())
        }
        SettingKind::RouteName => Route::parse(value)
            .map(|r| r.name().to_owned())
            .map_err(|e| invalid(spec, &e.message())),
        SettingKind::Text if value.is_empty() => Err(invalid(spec, "empty")),
        SettingKind::Text => Ok(value.to_owned()),
    }
}

impl Settings {
    /// The settings of `pairs` (key, value) as `wasi:config/store.get-all` answers them:
    /// an absent key takes the manifest's default, an unknown key is ignored, and an
    /// invalid value (an endpoint neither https nor http on loopback, a route name that
    /// names no route, an empty text) is invalid input naming the key. A blank
    /// `user-agent` takes the default.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ProviderError> {
        // The pairs of keys the plugin reads (others are ignored); the last one of a key
        // counts. A short list: no map type of its own in the component.
        let given: Vec<(&str, &str)> = pairs
            .into_iter()
            .filter(|(key, _)| setting(key).is_some())
            .collect();
        let get = |key: &str| -> Result<String, ProviderError> {
            let spec = setting(key).expect("a key of the manifest");
            let value = match given.iter().rev().find(|(k, _)| *k == key).map(|(_, v)| v) {
                Some(v) if key == keys::USER_AGENT && v.trim().is_empty() => spec.default_value,
                Some(v) => v,
                None => spec.default_value,
            };
            checked(spec, value)
        };
        Ok(Settings {
            issuer: get(keys::OAUTH_ISSUER)?,
            api_base: get(keys::API_BASE)?,
            client_id: get(keys::CLIENT_ID)?,
            scope: get(keys::OAUTH_SCOPE)?,
            default_route: Route::parse(&get(keys::DEFAULT_ROUTE)?)?,
            subscription_base: get(keys::SUBSCRIPTION_BASE)?,
            subscription_token_auth: get(keys::SUBSCRIPTION_TOKEN_AUTH)?,
            subscription_client_identifier: get(keys::SUBSCRIPTION_CLIENT_IDENTIFIER)?,
            subscription_client_version: get(keys::SUBSCRIPTION_CLIENT_VERSION)?,
            subscription_client_mode: get(keys::SUBSCRIPTION_CLIENT_MODE)?,
            subscription_authenticate_response: get(keys::SUBSCRIPTION_AUTHENTICATE_RESPONSE)?,
            user_agent: get(keys::USER_AGENT)?,
        })
    }

    /// The base URL a route's requests go to.
    pub fn base(&self, route: Route) -> &str {
        match route {
            Route::Subscription => &self.subscription_base,
            Route::Api | Route::ApiKey => &self.api_base,
        }
    }

    /// `{base of route}/{path}` without doubled slashes.
    pub fn api_url(&self, route: Route, path: &str) -> String {
        format!("{}/{}", self.base(route).trim_end_matches('/'), path)
    }

    /// Headers every request of `route` carries besides the bearer (the subscription
    /// rail's client headers; upstream refuses a request without them).
    pub fn route_headers(&self, route: Route) -> Vec<(String, String)> {
        match route {
            Route::Subscription => vec![
                (
                    "x-xai-token-auth".to_owned(),
                    self.subscription_token_auth.clone(),
                ),
                (
                    "x-grok-client-identifier".to_owned(),
                    self.subscription_client_identifier.clone(),
                ),
                (
                    "x-grok-client-version".to_owned(),
                    self.subscription_client_version.clone(),
                ),
                (
                    "x-grok-client-mode".to_owned(),
                    self.subscription_client_mode.clone(),
                ),
                (
                    "x-authenticateresponse".to_owned(),
                    self.subscription_authenticate_response.clone(),
                ),
            ],
            Route::Api | Route::ApiKey => Vec::new(),
        }
    }

    /// The discovery document's URL.
    pub fn discovery_url(&self) -> String {
        format!(
            "{}/.well-known/openid-configuration",
            self.issuer.trim_end_matches('/')
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(key: &str, value: &str) -> Result<Settings, ProviderError> {
        Settings::from_pairs([(key, value)])
    }

    fn refused(key: &str, value: &str) -> String {
        match with(key, value) {
            Err(ProviderError::InvalidInput(m)) => {
                assert!(m.contains(&format!("configuration key {key}")), "{m}");
                m
            }
            other => panic!("{key}={value:?}: {other:?}"),
        }
    }

    #[test]
    fn defaults_come_from_the_manifest() {
        let s = Settings::default();
        assert_eq!(s.issuer, "https://auth.x.ai");
        assert_eq!(s.api_base, "https://api.x.ai/v1");
        assert_eq!(s.subscription_base, "https://cli-chat-proxy.grok.com/v1");
        assert_eq!(s.client_id, "b1a00492-073a-47ea-816f-4c329264a828");
        assert_eq!(
            s.scope,
            "openid profile email offline_access grok-cli:access api:access"
        );
        assert_eq!(s.default_route, Route::Subscription);
        assert_eq!(
            (
                s.subscription_client_version.as_str(),
                s.subscription_client_mode.as_str(),
                s.subscription_authenticate_response.as_str()
            ),
            ("1.0.6", "headless", "authenticate-response")
        );
        assert_eq!(
            (
                s.subscription_token_auth.as_str(),
                s.subscription_client_identifier.as_str()
            ),
            ("xai-grok-cli", "grok-cli")
        );
        assert!(s.user_agent.starts_with("grok-provider-plugin/"));
        for spec in crate::manifest::SETTINGS {
            checked(spec, spec.default_value).unwrap();
        }
    }

    #[test]
    fn overrides_unknown_keys_and_blank_user_agents() {
        let s = Settings::from_pairs([
            ("api-base", "http://127.0.0.1:9/v1/"),
            ("default-route", "api-key"),
            ("no-such-key", "whatever"),
            ("user-agent", " "),
            ("subscription-client-version", "2.0.1"),
            ("subscription-client-mode", "interactive"),
        ])
        .unwrap();
        assert_eq!(s.api_base, "http://127.0.0.1:9/v1");
        assert_eq!(s.default_route, Route::ApiKey);
        assert_eq!(s.user_agent, Settings::default().user_agent);
        assert_eq!(s.subscription_client_version, "2.0.1");
        assert_eq!(s.subscription_client_mode, "interactive");
        assert_eq!(with("user-agent", "host/1").unwrap().user_agent, "host/1");
    }

    #[test]
    fn invalid_values_name_their_key() {
        assert!(refused("api-base", "http://api.example.com/v1").contains("loopback"));
        refused("oauth-issuer", "ftp://auth.x.ai");
        refused("subscription-base", "not a url");
        refused("subscription-base", "https://x.ai/v1?debug=1");
        refused("api-base", "https://user@api.x.ai/v1");
        assert!(refused("default-route", "premium").contains("subscription, api, api-key"));
        refused("client-id", "");
        refused("client-id", "  ");
        refused("subscription-token-auth", "a\r\nx-evil: 1");
        refused("oauth-scope", "openid\u{7f}");
        refused(
            "api-base",
            &format!("https://x.ai/{}", "a".repeat(MAX_VALUE_LEN)),
        );
    }

    #[test]
    fn urls_and_headers() {
        let mut s = Settings::default();
        assert_eq!(
            s.api_url(Route::Api, "models"),
            "https://api.x.ai/v1/models"
        );
        assert_eq!(
            s.api_url(Route::ApiKey, "models"),
            "https://api.x.ai/v1/models"
        );
        assert_eq!(
            s.api_url(Route::Subscription, "billing?format=credits"),
            "https://cli-chat-proxy.grok.com/v1/billing?format=credits"
        );
        assert_eq!(
            s.discovery_url(),
            "https://auth.x.ai/.well-known/openid-configuration"
        );
        s.api_base.push('/');
        s.issuer.push('/');
        assert_eq!(
            s.api_url(Route::Api, "models"),
            "https://api.x.ai/v1/models"
        );
        assert_eq!(
            s.discovery_url(),
            "https://auth.x.ai/.well-known/openid-configuration"
        );
        assert!(s.route_headers(Route::Api).is_empty());
        let names: Vec<String> = s
            .route_headers(Route::Subscription)
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(
            names,
            [
                "x-xai-token-auth",
                "x-grok-client-identifier",
                "x-grok-client-version",
                "x-grok-client-mode",
                "x-authenticateresponse"
            ]
        );
    }
}
