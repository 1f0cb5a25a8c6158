//! The operator's configuration of a plugin ([`HostConfig`]) and its resolution against the
//! plugin's manifest into what a session is given ([`ResolvedConfig`]); the rules it
//! applies are described in [`crate::config`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use crate::bindings::types::{PluginManifest, SettingKind};
use crate::config::{AllowedOrigin, Origin, USER_AGENT_KEY};
use crate::error::HostError;
use crate::outbound::OutboundPolicy;

/// The operator's configuration of a plugin, before it is checked against the plugin's
/// manifest.
#[derive(Clone, Default)]
pub struct HostConfig {
    overrides: BTreeMap<String, String>,
    routes: BTreeSet<String>,
    allowed_origins: Option<Vec<Origin>>,
    user_agent: Option<String>,
    policy: Option<Arc<dyn OutboundPolicy>>,
    default_route_granted: bool,
}

impl fmt::Debug for HostConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostConfig")
            .field("overrides", &self.overrides)
            .field("routes", &self.routes)
            .field("allowed_origins", &self.allowed_origins)
            .field("user_agent", &self.user_agent)
            .field("policy", &self.policy.as_ref().map(|_| "custom"))
            .field("default_route_granted", &self.default_route_granted)
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
    /// route a `route-name` setting the operator overrode names is enabled anyway; the one
    /// its default names only with [`Self::grant_default_route`].
    pub fn enable_route(mut self, route: impl Into<String>) -> Self {
        self.routes.insert(route.into());
        self
    }

    /// Grants the plugin's own default `route-name` settings: the routes they name are
    /// enabled as if the operator had named them. For a plugin the operator trusts (the
    /// CLI grants it to the plugin built into it); without it, a plugin cannot open a
    /// route-bound endpoint by its own default.
    pub fn grant_default_route(mut self) -> Self {
        self.default_route_granted = true;
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
    /// endpoint, and counts as set by the operator (any address).
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
        let mut endpoints: Vec<(AllowedOrigin, Option<&str>)> = Vec::new();
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
                    let entry = AllowedOrigin {
                        origin,
                        operator_set: given.is_some(),
                    };
                    endpoints.push((entry, setting.route.as_deref()));
                }
                SettingKind::RouteName => {
                    known_route(value, &setting.key)?;
                    // The plugin's own default opens nothing unless the operator grants it.
                    if given.is_some() || self.default_route_granted {
                        enabled.insert(value.to_owned());
                    }
                }
                SettingKind::Text => {}
            }
            if let Some(v) = given {
                overrides.push((setting.key.clone(), v));
            }
        }
        let allowed = match &self.allowed_origins {
            Some(list) => list
                .iter()
                .map(|origin| AllowedOrigin {
                    origin: origin.clone(),
                    operator_set: true,
                })
                .collect(),
            None => {
                let mut list: Vec<AllowedOrigin> = Vec::new();
                for (entry, route) in endpoints {
                    if !route.is_none_or(|r| enabled.contains(r)) {
                        continue;
                    }
                    // One entry per origin; the operator's word wins over a default's.
                    match list.iter_mut().find(|e| e.origin == entry.origin) {
                        Some(e) => e.operator_set |= entry.operator_set,
                        None => list.push(entry),
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

/// A [`HostConfig`] checked against a plugin's manifest: what one session is given. Its
/// default allows nothing and hands the plugin no overrides (what a probe of the plugin's
/// `manifest` export needs).
#[derive(Clone)]
pub struct ResolvedConfig {
    /// What `wasi:config/store` answers the plugin: the overrides, nothing else.
    pub overrides: Arc<[(String, String)]>,
    /// Origins outgoing requests may reach, each with whether the operator set it.
    pub allowed_origins: Arc<[AllowedOrigin]>,
    /// The routes enabled (named by the operator, by a `route-name` setting the operator
    /// set, or by its default when granted).
    pub enabled_routes: Vec<String>,
    /// The embedder's further policy, if any.
    pub policy: Option<Arc<dyn OutboundPolicy>>,
}

impl Default for ResolvedConfig {
    fn default() -> Self {
        Self {
            overrides: Arc::new([]),
            allowed_origins: Arc::new([]),
            enabled_routes: Vec::new(),
            policy: None,
        }
    }
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::bindings::types::{CredentialKind, RouteInfo, Setting};

    pub(crate) fn manifest() -> PluginManifest {
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

    #[test]
    fn a_default_route_name_opens_its_route_only_when_granted() {
        let mut m = manifest();
        for s in &mut m.settings {
            if s.key == "default-route" {
                s.default_value = "rail".into();
            }
        }
        let r = HostConfig::default().resolve(&m).unwrap();
        assert!(!origins(&r).contains(&"https://rail.acme.example:443".to_owned()));
        assert!(r.enabled_routes.is_empty(), "{:?}", r.enabled_routes);
        let r = HostConfig::default()
            .grant_default_route()
            .resolve(&m)
            .unwrap();
        assert!(origins(&r).contains(&"https://rail.acme.example:443".to_owned()));
    }

    #[test]
    fn only_endpoints_the_operator_set_may_be_private() {
        let r = HostConfig::default()
            .set("api", "http://127.0.0.1:9/v1")
            .resolve(&manifest())
            .unwrap();
        let set: Vec<_> = r
            .allowed_origins
            .iter()
            .map(|o| (o.to_string(), o.operator_set))
            .collect();
        assert_eq!(
            set,
            [
                ("https://auth.acme.example:443".to_owned(), false),
                ("http://127.0.0.1:9".to_owned(), true)
            ]
        );
        let r = HostConfig::default()
            .with_allowed_origins(&["https://10.0.0.1"])
            .unwrap()
            .resolve(&manifest())
            .unwrap();
        assert!(r.allowed_origins.iter().all(|o| o.operator_set));
    }
}
