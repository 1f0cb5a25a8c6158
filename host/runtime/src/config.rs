//! What the operator tells a plugin, and which origins the sandbox lets it reach.
//!
//! Nothing here knows a vendor. A plugin's [`PluginManifest`] names the configuration keys it
//! reads (with their defaults) and the endpoints among them; a [`HostConfig`] holds the
//! operator's overrides of those keys and the routes the operator enables. Resolving one
//! against the other ([`HostConfig::resolve`]) checks every override and derives the
//! allowlist: the origin of every endpoint setting's effective value, a route-bound
//! endpoint only while its route is enabled. The plugin is handed the overrides only
//! (through `wasi:config/store`), never anything of another plugin.
//!
//! Origins are parsed once, here ([`Origin::parse`], on `http::Uri`): `https://`, or
//! `http://` on a loopback host named explicitly (for local test servers).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use crate::bindings::types::{PluginManifest, SettingKind};
use crate::error::HostError;
use crate::outbound::OutboundPolicy;

/// The configuration key hosts set to their own name when the manifest declares it.
pub const USER_AGENT_KEY: &str = "user-agent";

/// The operator's configuration of a plugin, before it is checked against the plugin's
/// manifest.
#[derive(Clone, Default)]
pub struct HostConfig {
    overrides: BTreeMap<String, String>,
    routes: BTreeSet<String>,
    allowed_origins: Option<Vec<Origin>>,
    user_agent: Option<String>,
    policy: Option<Arc<dyn OutboundPolicy>>,
}

impl fmt::Debug for HostConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostConfig")
            .field("overrides", &self.overrides)
            .field("routes", &self.routes)
            .field("allowed_origins", &self.allowed_origins)
            .field("user_agent", &self.user_agent)
            .field("policy", &self.policy.as_ref().map(|_| "custom"))
            .finish()
    }
}

impl HostConfig {
    /// No overrides: the manifest's defaults. Refused when the process's proxy
    /// environment cannot be honoured (see [`crate::default_http_client`]).
    pub fn new() -> Result<Self, HostError> {
        if let Some(problem) = crate::http_pool::proxy_env_problem() {
            return Err(HostError::Config(problem));
        }
        Ok(Self::default())
    }

    /// Overrides `key` (a key of the manifest's settings; checked by [`Self::resolve`]).
    pub fn set(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.overrides.insert(key.into(), value.into());
        self
    }

    /// The overrides so far.
    pub fn overrides(&self) -> &BTreeMap<String, String> {
        &self.overrides
    }

    /// Enables a route of the manifest (its route-bound endpoints become reachable). The
    /// route a `route-name` setting names (e.g. the default route) is enabled anyway.
    pub fn enable_route(mut self, route: impl Into<String>) -> Self {
        self.routes.insert(route.into());
        self
    }

    /// The `User-Agent` the plugin is told to send, when its manifest has the
    /// [`USER_AGENT_KEY`] setting and no override names one.
    pub fn with_user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = Some(user_agent.into());
        self
    }

    /// Replaces the derived allowlist (for embedders that route endpoints through other
    /// origins, and for tests of the sandbox itself). Each origin is validated like an
    /// endpoint.
    pub fn with_allowed_origins(mut self, origins: &[&str]) -> Result<Self, HostError> {
        self.allowed_origins = Some(
            origins
                .iter()
                .map(|o| Origin::parse(o))
                .collect::<Result<_, _>>()?,
        );
        Ok(self)
    }

    /// An embedder's policy, asked about every request the allowlist lets through (it can
    /// refuse more, never allow more).
    pub fn with_outbound_policy(mut self, policy: Arc<dyn OutboundPolicy>) -> Self {
        self.policy = Some(policy);
        self
    }

    /// Checks the overrides against `manifest` and derives what a session needs. Refused:
    /// a key the manifest does not declare, an endpoint that is not an allowed origin, a
    /// route name (in a `route-name` setting or enabled here) the manifest does not have.
    pub fn resolve(&self, manifest: &PluginManifest) -> Result<ResolvedConfig, HostError> {
        let plugin = &manifest.id;
        let routes: BTreeSet<&str> = manifest.routes.iter().map(|r| r.name.as_str()).collect();
        let known_route = |name: &str, what: &str| {
            if routes.contains(name) {
                Ok(())
            } else {
                Err(HostError::Config(format!(
                    "{what}: {name:?} is not a route of {plugin} (routes: {})",
                    routes.iter().copied().collect::<Vec<_>>().join(", ")
                )))
            }
        };
        for key in self.overrides.keys() {
            if !manifest.settings.iter().any(|s| &s.key == key) {
                return Err(HostError::Config(format!(
                    "{key:?} is not a setting of {plugin} (settings: {})",
                    manifest
                        .settings
                        .iter()
                        .map(|s| s.key.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        let mut enabled = self.routes.clone();
        for route in &self.routes {
            known_route(route, "enabled route")?;
        }
        let mut overrides: Vec<(String, String)> = Vec::new();
        let mut endpoints: Vec<(Origin, Option<&str>)> = Vec::new();
        for setting in &manifest.settings {
            let given = self.overrides.get(&setting.key).cloned().or_else(|| {
                (setting.key == USER_AGENT_KEY)
                    .then(|| self.user_agent.clone())
                    .flatten()
            });
            let value = given.as_deref().unwrap_or(&setting.default_value);
            let named = |e: HostError| match e {
                HostError::Config(m) => HostError::Config(format!("{}: {m}", setting.key)),
                other => other,
            };
            match setting.kind {
                SettingKind::Endpoint => {
                    let origin = Origin::parse(value).map_err(named)?;
                    endpoints.push((origin, setting.route.as_deref()));
                }
                SettingKind::RouteName => {
                    known_route(value, &setting.key)?;
                    enabled.insert(value.to_owned());
                }
                SettingKind::Text => {}
            }
            if let Some(v) = given {
                overrides.push((setting.key.clone(), v));
            }
        }
        let allowed = match &self.allowed_origins {
            Some(list) => list.clone(),
            None => {
                let mut list: Vec<Origin> = Vec::new();
                for (origin, route) in endpoints {
                    let reachable = route.is_none_or(|r| enabled.contains(r));
                    if reachable && !list.contains(&origin) {
                        list.push(origin);
                    }
                }
                list
            }
        };
        Ok(ResolvedConfig {
            overrides: overrides.into(),
            allowed_origins: allowed.into(),
            enabled_routes: enabled.into_iter().collect(),
            policy: self.policy.clone(),
        })
    }
}

/// A [`HostConfig`] checked against a plugin's manifest: what one session is given.
#[derive(Clone)]
pub struct ResolvedConfig {
    /// What `wasi:config/store` answers the plugin: the overrides, nothing else.
    pub overrides: Arc<[(String, String)]>,
    /// Origins outgoing requests may reach.
    pub allowed_origins: Arc<[Origin]>,
    /// The routes enabled (named by the operator or by a `route-name` setting).
    pub enabled_routes: Vec<String>,
    /// The embedder's further policy, if any.
    pub policy: Option<Arc<dyn OutboundPolicy>>,
}

impl fmt::Debug for ResolvedConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResolvedConfig")
            .field("overrides", &self.overrides)
            .field("allowed_origins", &self.allowed_origins)
            .field("enabled_routes", &self.enabled_routes)
            .finish_non_exhaustive()
    }
}

/// URL scheme of an origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OriginScheme {
    /// TLS.
    Https,
    /// Plain HTTP: loopback only.
    Http,
}

/// A scheme, host and port, compared exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// Scheme.
    pub scheme: OriginScheme,
    /// Lower-case host (IPv6 in brackets).
    pub host: String,
    /// Port (explicit or the scheme's default).
    pub port: u16,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.scheme {
            OriginScheme::Https => "https",
            OriginScheme::Http => "http",
        };
        write!(f, "{scheme}://{}:{}", self.host, self.port)
    }
}

impl Origin {
    /// Parse the origin of an absolute URL; refuses non-http(s) schemes, userinfo, and
    /// plain http to anything but a loopback host.
    pub fn parse(url: &str) -> Result<Self, HostError> {
        let uri: http::Uri = url
            .parse()
            .map_err(|e| HostError::Config(format!("{url:?}: not a URL ({e})")))?;
        Self::of_uri(&uri).map_err(|why| HostError::Config(format!("{url:?}: {why}")))
    }

    /// The origin of a request's URI (the sandbox's check of every outgoing request).
    pub fn of_uri(uri: &http::Uri) -> Result<Self, &'static str> {
        let scheme = match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
            Some("https") => OriginScheme::Https,
            Some("http") => OriginScheme::Http,
            Some(_) => return Err("only https (or http on loopback) is allowed"),
            None => return Err("not an absolute URL"),
        };
        let authority = uri.authority().ok_or("missing host")?;
        if authority.as_str().contains('@') {
            return Err("contains userinfo");
        }
        let host = authority.host();
        if host.is_empty() {
            return Err("missing host");
        }
        // `http::Uri` accepts `host:` (an empty port) and a port past 65535 (then `port()` is
        // `None`); an origin takes neither.
        let text = authority.as_str();
        let after_host = &text[text.rfind(']').map_or(0, |i| i + 1)..];
        let port = match authority.port() {
            Some(p) => p.as_u16(),
            None if after_host.contains(':') => return Err("bad port"),
            None => match scheme {
                OriginScheme::Https => 443,
                OriginScheme::Http => 80,
            },
        };
        let origin = Origin {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
        };
        if origin.scheme == OriginScheme::Http && !origin.is_loopback() {
            return Err(
                "plain http is allowed only for loopback hosts (127.0.0.0/8, ::1, localhost)",
            );
        }
        Ok(origin)
    }

    /// Whether the host is a loopback address or `localhost`.
    pub fn is_loopback(&self) -> bool {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::types::{CredentialKind, RouteInfo, Setting};

    #[test]
    fn https_origins_get_default_ports() {
        let o = Origin::parse("https://Auth.Example/oauth2/token").unwrap();
        assert_eq!(o.to_string(), "https://auth.example:443");
        let o = Origin::parse("https://[::1]:8443/x").unwrap();
        assert_eq!(o.to_string(), "https://[::1]:8443");
    }

    #[test]
    fn plain_http_only_on_loopback() {
        assert!(Origin::parse("http://127.0.0.1:8080/x").is_ok());
        assert!(Origin::parse("http://[::1]:8080").is_ok());
        assert!(Origin::parse("http://localhost:1").is_ok());
        let err = Origin::parse("http://auth.example")
            .unwrap_err()
            .to_string();
        assert!(err.contains("loopback"), "{err}");
        assert!(Origin::parse("http://10.0.0.1").is_err());
        assert!(Origin::parse("ftp://x").is_err());
        assert!(Origin::parse("https://user@auth.example").is_err());
        assert!(Origin::parse("https://auth.example:/x").is_err());
        assert!(Origin::parse("auth.example").is_err());
        assert!(Origin::parse("https://auth.example:99999").is_err());
    }

    fn manifest() -> PluginManifest {
        let setting = |key: &str, default: &str, kind, route: Option<&str>| Setting {
            key: key.into(),
            env: None,
            description: String::new(),
            default_value: default.into(),
            kind,
            route: route.map(Into::into),
        };
        let route = |name: &str| RouteInfo {
            name: name.into(),
            description: String::new(),
            credential: CredentialKind::Oauth,
            model_prefix: format!("{name}/"),
        };
        PluginManifest {
            id: "acme".into(),
            display_name: "Acme".into(),
            settings: vec![
                setting(
                    "issuer",
                    "https://auth.acme.example",
                    SettingKind::Endpoint,
                    None,
                ),
                setting(
                    "api",
                    "https://api.acme.example/v1",
                    SettingKind::Endpoint,
                    None,
                ),
                setting(
                    "rail",
                    "https://rail.acme.example",
                    SettingKind::Endpoint,
                    Some("rail"),
                ),
                setting("default-route", "main", SettingKind::RouteName, None),
                setting(USER_AGENT_KEY, "acme-plugin", SettingKind::Text, None),
            ],
            routes: vec![route("main"), route("rail")],
        }
    }

    fn origins(r: &ResolvedConfig) -> Vec<String> {
        r.allowed_origins.iter().map(|o| o.to_string()).collect()
    }

    #[test]
    fn allowlist_comes_from_the_manifest_and_route_bound_endpoints_wait_for_their_route() {
        let r = HostConfig::default().resolve(&manifest()).unwrap();
        assert_eq!(
            origins(&r),
            [
                "https://auth.acme.example:443",
                "https://api.acme.example:443"
            ]
        );
        assert!(r.overrides.is_empty(), "defaults are not handed over");
        let r = HostConfig::default()
            .enable_route("rail")
            .resolve(&manifest())
            .unwrap();
        assert!(origins(&r).contains(&"https://rail.acme.example:443".to_owned()));
        // A route-name setting naming the route enables it too.
        let r = HostConfig::default()
            .set("default-route", "rail")
            .resolve(&manifest())
            .unwrap();
        assert!(origins(&r).contains(&"https://rail.acme.example:443".to_owned()));
    }

    #[test]
    fn overrides_are_checked_and_handed_over_alone() {
        let r = HostConfig::default()
            .set("api", "http://127.0.0.1:9/v1")
            .with_user_agent("host/1")
            .resolve(&manifest())
            .unwrap();
        assert_eq!(
            origins(&r),
            ["https://auth.acme.example:443", "http://127.0.0.1:9"]
        );
        let handed: Vec<_> = r
            .overrides
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        assert_eq!(handed, ["api=http://127.0.0.1:9/v1", "user-agent=host/1"]);

        let bad = |c: HostConfig| c.resolve(&manifest()).unwrap_err().to_string();
        assert!(bad(HostConfig::default().set("api-base", "x")).contains("not a setting of acme"));
        assert!(bad(HostConfig::default().set("api", "http://api.acme.example")).contains("api:"));
        assert!(bad(HostConfig::default().set("default-route", "nope")).contains("not a route"));
        assert!(bad(HostConfig::default().enable_route("nope")).contains("not a route"));
    }
}
