//! What the plugin says about itself (the WIT `manifest` export): its configuration keys
//! with their defaults, and its routes. This is the one home of those defaults: the
//! [`Settings`](crate::settings::Settings) take theirs from [`SETTINGS`], and
//! [`Route`] its names, prefixes and credentials from [`ROUTES`].

use crate::routes::Route;
use crate::types::{CredentialKind, PluginManifest, RouteInfo, Setting, SettingKind};

/// The plugin's stable identifier.
pub const ID: &str = "xai-grok";
/// Its human name.
pub const DISPLAY_NAME: &str = "xAI Grok (Sign in with Grok)";

/// The configuration keys, as `wasi:config/store` names them.
pub mod keys {
    /// OAuth issuer.
    pub const OAUTH_ISSUER: &str = "oauth-issuer";
    /// Base URL of the developer API.
    pub const API_BASE: &str = "api-base";
    /// Public OAuth client id.
    pub const CLIENT_ID: &str = "client-id";
    /// Space-separated OAuth scopes.
    pub const OAUTH_SCOPE: &str = "oauth-scope";
    /// The route a request that names none takes.
    pub const DEFAULT_ROUTE: &str = "default-route";
    /// Base URL of the subscription rail.
    pub const SUBSCRIPTION_BASE: &str = "subscription-base";
    /// Value of `X-XAI-Token-Auth` on the subscription rail.
    pub const SUBSCRIPTION_TOKEN_AUTH: &str = "subscription-token-auth";
    /// Value of `x-grok-client-identifier` on the subscription rail.
    pub const SUBSCRIPTION_CLIENT_IDENTIFIER: &str = "subscription-client-identifier";
    /// Value of `x-grok-client-version` on the subscription rail.
    pub const SUBSCRIPTION_CLIENT_VERSION: &str = "subscription-client-version";
    /// Value of `x-grok-client-mode` on the subscription rail.
    pub const SUBSCRIPTION_CLIENT_MODE: &str = "subscription-client-mode";
    /// Value of `x-authenticateresponse` on the subscription rail.
    pub const SUBSCRIPTION_AUTHENTICATE_RESPONSE: &str = "subscription-authenticate-response";
    /// `User-Agent` sent upstream.
    pub const USER_AGENT: &str = "user-agent";
}

/// The `x-grok-client-version` the rail is sent by default: a real release of xAI's own
/// CLI. The rail refuses (HTTP 426) versions below its floor and, since about 2026-09-13,
/// versions that are no real release, so this must name one. Source: `xai-org/grok-build`
/// at commit 19d42e35 (2026-08-19), crate version 1.0.6 (also what vercel-labs/fx sends);
/// see `shared/reference/xai-wire-2026.md` §2.2. Operators override it with
/// `XAI_SUBSCRIPTION_CLIENT_VERSION` when the rail asks for a newer one.
pub const DEFAULT_CLIENT_VERSION: &str = "1.0.6";

/// A configuration key, statically.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettingSpec {
    /// The key.
    pub key: &'static str,
    /// Where a command-line host reads it from.
    pub env: Option<&'static str>,
    /// What it is for.
    pub description: &'static str,
    /// The value used when the host sets none.
    pub default_value: &'static str,
    /// How the host treats it.
    pub kind: SettingKind,
    /// The route whose endpoint this is (allowed only while the host enables the route).
    pub route: Option<Route>,
}

/// Every configuration key the plugin reads.
pub const SETTINGS: &[SettingSpec] = &[
    SettingSpec {
        key: keys::OAUTH_ISSUER,
        env: Some("XAI_OAUTH_ISSUER"),
        description: "OAuth issuer; discovery lives at {issuer}/.well-known/openid-configuration",
        default_value: "https://auth.x.ai",
        kind: SettingKind::Endpoint,
        route: None,
    },
    SettingSpec {
        key: keys::API_BASE,
        env: Some("XAI_API_BASE"),
        description: "Base URL of xAI's developer API (routes api and api-key)",
        default_value: "https://api.x.ai/v1",
        kind: SettingKind::Endpoint,
        route: None,
    },
    SettingSpec {
        key: keys::CLIENT_ID,
        env: Some("XAI_CLIENT_ID"),
        description: "Public OAuth client id (no secret)",
        default_value: "b1a00492-073a-47ea-816f-4c329264a828",
        kind: SettingKind::Text,
        route: None,
    },
    SettingSpec {
        key: keys::OAUTH_SCOPE,
        env: Some("XAI_OAUTH_SCOPE"),
        description: "Space-separated OAuth scopes",
        default_value: "openid profile email offline_access grok-cli:access api:access",
        kind: SettingKind::Text,
        route: None,
    },
    SettingSpec {
        key: keys::DEFAULT_ROUTE,
        env: Some("XAI_ROUTE"),
        description: "The route a request that names none takes (subscription: spend the Grok subscription)",
        default_value: "subscription",
        kind: SettingKind::RouteName,
        route: None,
    },
    SettingSpec {
        key: keys::SUBSCRIPTION_BASE,
        env: Some("XAI_SUBSCRIPTION_BASE"),
        description: "Base URL of the Grok CLI subscription rail",
        default_value: "https://cli-chat-proxy.grok.com/v1",
        kind: SettingKind::Endpoint,
        route: Some(Route::Subscription),
    },
    SettingSpec {
        key: keys::SUBSCRIPTION_TOKEN_AUTH,
        env: Some("XAI_SUBSCRIPTION_TOKEN_AUTH"),
        description: "Value of the X-XAI-Token-Auth header on the subscription rail",
        default_value: "xai-grok-cli",
        kind: SettingKind::Text,
        route: None,
    },
    SettingSpec {
        key: keys::SUBSCRIPTION_CLIENT_IDENTIFIER,
        env: Some("XAI_SUBSCRIPTION_CLIENT_IDENTIFIER"),
        description: "Value of the x-grok-client-identifier header on the subscription rail",
        default_value: "grok-cli",
        kind: SettingKind::Text,
        route: None,
    },
    SettingSpec {
        key: keys::SUBSCRIPTION_CLIENT_VERSION,
        env: Some("XAI_SUBSCRIPTION_CLIENT_VERSION"),
        description: "Value of the x-grok-client-version header on the subscription rail: a real release of xAI's grok CLI (the rail refuses others with HTTP 426)",
        default_value: DEFAULT_CLIENT_VERSION,
        kind: SettingKind::Text,
        route: None,
    },
    SettingSpec {
        key: keys::SUBSCRIPTION_CLIENT_MODE,
        env: Some("XAI_SUBSCRIPTION_CLIENT_MODE"),
        description: "Value of the x-grok-client-mode header on the subscription rail (interactive or headless)",
        default_value: "headless",
        kind: SettingKind::Text,
        route: None,
    },
    SettingSpec {
        key: keys::SUBSCRIPTION_AUTHENTICATE_RESPONSE,
        env: Some("XAI_SUBSCRIPTION_AUTHENTICATE_RESPONSE"),
        description: "Value of the x-authenticateresponse header on the subscription rail",
        default_value: "authenticate-response",
        kind: SettingKind::Text,
        route: None,
    },
    SettingSpec {
        key: keys::USER_AGENT,
        env: None,
        description: "User-Agent sent upstream (hosts set their own name)",
        default_value: concat!("grok-provider-plugin/", env!("CARGO_PKG_VERSION")),
        kind: SettingKind::Text,
        route: None,
    },
];

/// A route, statically.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteSpec {
    /// Which route.
    pub route: Route,
    /// Its name.
    pub name: &'static str,
    /// What it is.
    pub description: &'static str,
    /// The credential it spends.
    pub credential: CredentialKind,
    /// The prefix of its model ids.
    pub model_prefix: &'static str,
    /// Which pool its requests spend, for people.
    pub bills: &'static str,
}

/// Every route, the default first.
pub const ROUTES: &[RouteSpec] = &[
    RouteSpec {
        route: Route::Subscription,
        name: "subscription",
        description: "OAuth bearer on the Grok CLI subscription rail (the default)",
        credential: CredentialKind::Oauth,
        model_prefix: "xai-grok-sub/",
        bills: "the Grok subscription's allowance (weekly or monthly), then its pay-as-you-go or prepaid credits",
    },
    RouteSpec {
        route: Route::Api,
        name: "api",
        description: "OAuth bearer on api.x.ai",
        credential: CredentialKind::Oauth,
        model_prefix: "xai-grok/",
        bills: "xAI's API pool, not the subscription: its free allowance, then the personal team's API credits",
    },
    RouteSpec {
        route: Route::ApiKey,
        name: "api-key",
        description: "an xAI API key on api.x.ai (BYOK)",
        credential: CredentialKind::ApiKey,
        model_prefix: "xai/",
        bills: "the API key's team credits (console.x.ai)",
    },
];

/// The static description of `key`, when the plugin reads it.
pub fn setting(key: &str) -> Option<&'static SettingSpec> {
    SETTINGS.iter().find(|s| s.key == key)
}

/// The manifest the `manifest` export answers. Pure: reads nothing, calls no import.
pub fn manifest() -> PluginManifest {
    PluginManifest {
        id: ID.to_owned(),
        display_name: DISPLAY_NAME.to_owned(),
        settings: SETTINGS
            .iter()
            .map(|s| Setting {
                key: s.key.to_owned(),
                env: s.env.map(str::to_owned),
                description: s.description.to_owned(),
                default_value: s.default_value.to_owned(),
                kind: s.kind,
                route: s.route.map(|r| r.name().to_owned()),
            })
            .collect(),
        routes: ROUTES
            .iter()
            .map(|r| RouteInfo {
                name: r.name.to_owned(),
                description: r.description.to_owned(),
                credential: r.credential,
                model_prefix: r.model_prefix.to_owned(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn the_manifest_is_consistent() {
        let m = manifest();
        assert_eq!(
            (m.id.as_str(), m.routes[0].name.as_str()),
            ("xai-grok", "subscription")
        );
        let keys: BTreeSet<&str> = m.settings.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(keys.len(), m.settings.len(), "keys are unique");
        for s in &m.settings {
            assert!(
                s.key
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                "{}",
                s.key
            );
            if let Some(r) = &s.route {
                assert!(m.routes.iter().any(|x| &x.name == r), "{r}");
                assert_eq!(s.kind, SettingKind::Endpoint);
            }
        }
        // Route names and prefixes are unique, and no prefix starts another: a model id
        // names at most one route.
        for (i, a) in m.routes.iter().enumerate() {
            for b in &m.routes[i + 1..] {
                assert_ne!(a.name, b.name);
                assert!(!a.model_prefix.starts_with(&b.model_prefix));
                assert!(!b.model_prefix.starts_with(&a.model_prefix));
            }
        }
        for (spec, route) in ROUTES.iter().zip(Route::ALL) {
            assert_eq!(spec.route, route, "ROUTES is in Route::ALL's order");
        }
        assert_eq!(ROUTES.len(), Route::ALL.len());
        assert!(
            setting(keys::USER_AGENT)
                .unwrap()
                .default_value
                .starts_with("grok-provider-plugin/")
        );
        assert!(setting("nope").is_none());
    }
}
