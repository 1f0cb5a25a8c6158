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
//!
//! Capabilities are granted, not taken: what a plugin's manifest says is a request, and
//! the operator decides.
//! - **Destinations.** An endpoint the operator set ([`HostConfig::set`],
//!   [`HostConfig::with_allowed_origins`]) may be any address; one that is only the
//!   plugin's own default reaches public addresses only ([`AllowedOrigin::operator_set`],
//!   [`is_public_ip`]): loopback, private, link-local (cloud metadata), multicast,
//!   unspecified and reserved addresses are refused, whether named literally or reached
//!   through DNS (the sandbox checks literals, the connection pool the resolved
//!   addresses), and plain http is never allowed to a default.
//! - **Routes.** A route-bound endpoint opens when the operator enables its route, or sets
//!   the `route-name` setting naming it; the plugin's own default `route-name` enables its
//!   route only when the operator grants it ([`HostConfig::grant_default_route`], as the
//!   CLI does for the plugin built into it).
//! - **Environment.** A host that reads settings from its environment uses
//!   [`env_overrides`]: a setting may name only variables with the plugin's own prefix
//!   ([`env_prefix`]) or ones the operator approved, and never the host's own, proxy or
//!   credential variables ([`forbidden_env`]).

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

/// The prefix of the environment names a plugin's settings may read without the
/// operator's approval: the first word (letters and digits) of its manifest id,
/// upper-cased, then `_` (`xai-grok` → `XAI_`, `acme` → `ACME_`). A first word shorter
/// than three characters gives no prefix (such a plugin reads only approved names).
pub fn env_prefix(plugin_id: &str) -> Option<String> {
    let word: String = plugin_id
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect();
    (word.len() >= 3).then(|| format!("{}_", word.to_ascii_uppercase()))
}

/// Variables of the host's own process that no plugin may read, whatever it is granted.
const FORBIDDEN_ENV_PREFIXES: &[(&str, &str)] = &[
    (
        "PROVIDER_HOST_",
        "the host's own configuration (its master key, its database)",
    ),
    ("AWS_", "cloud credentials"),
    ("AZURE_", "cloud credentials"),
    ("GOOGLE_", "cloud credentials"),
    ("GCLOUD_", "cloud credentials"),
    ("ARM_", "cloud credentials"),
    ("ACTIONS_", "CI credentials"),
];

/// Exact names (compared upper-cased) of the same.
const FORBIDDEN_ENV_NAMES: &[(&str, &str)] = &[
    (
        "HTTP_PROXY",
        "the host's proxy (which may carry credentials)",
    ),
    (
        "HTTPS_PROXY",
        "the host's proxy (which may carry credentials)",
    ),
    (
        "ALL_PROXY",
        "the host's proxy (which may carry credentials)",
    ),
    ("NO_PROXY", "the host's proxy settings"),
    (
        "FTP_PROXY",
        "the host's proxy (which may carry credentials)",
    ),
    ("SSL_CERT_FILE", "the host's trust store"),
    ("SSL_CERT_DIR", "the host's trust store"),
    ("GITHUB_TOKEN", "a credential"),
    ("GH_TOKEN", "a credential"),
    ("GITLAB_TOKEN", "a credential"),
    ("CI_JOB_TOKEN", "a credential"),
    ("NPM_TOKEN", "a credential"),
    ("NODE_AUTH_TOKEN", "a credential"),
    ("CARGO_REGISTRY_TOKEN", "a credential"),
    ("DOCKER_PASSWORD", "a credential"),
    ("DOCKER_AUTH_CONFIG", "a credential"),
    ("VAULT_TOKEN", "a credential"),
    ("PGPASSWORD", "a credential"),
    ("DATABASE_URL", "a credential"),
    ("SSH_AUTH_SOCK", "a credential"),
    ("KUBECONFIG", "a credential"),
    ("RUST_LOG", "the host's own configuration"),
];

/// Why no plugin may read the environment variable `name`, if none may: the host's own
/// variables (`PROVIDER_HOST_*`), proxy variables in any case, and known credential
/// variables (`AWS_*`, `GITHUB_TOKEN`, ...). The operator cannot approve these.
pub fn forbidden_env(name: &str) -> Option<&'static str> {
    let upper = name.to_ascii_uppercase();
    FORBIDDEN_ENV_PREFIXES
        .iter()
        .find(|(p, _)| upper.starts_with(p))
        .or_else(|| FORBIDDEN_ENV_NAMES.iter().find(|(n, _)| upper == *n))
        .map(|(_, why)| *why)
}

/// One setting's value read from the environment by [`env_overrides`].
#[derive(Clone, PartialEq, Eq)]
pub struct EnvOverride {
    /// The setting's key.
    pub key: String,
    /// The variable it was read from.
    pub var: String,
    /// Its value, trimmed (an endpoint's trailing `/` removed).
    pub value: String,
    /// Whether the variable carries the plugin's own prefix; a value read from any other
    /// (approved) variable is never repeated in an error.
    pub own: bool,
}

impl fmt::Debug for EnvOverride {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvOverride")
            .field("key", &self.key)
            .field("var", &self.var)
            .field("own", &self.own)
            .finish_non_exhaustive()
    }
}

/// The operator's overrides a host reads from its environment for `manifest`: each
/// setting with an `env` name whose variable `lookup` finds set (and not blank).
///
/// Every `env` name of the manifest is checked first, set or not: a name no plugin may
/// read ([`forbidden_env`]) is refused even if approved; any other name must carry the
/// plugin's prefix ([`env_prefix`]) or be in `approved`. A refusal is a
/// [`HostError::Config`] naming the setting and the variable. An endpoint's value must be
/// an origin the sandbox accepts and a route name a route of the plugin; the error names
/// the variable, and repeats the value only when the variable is the plugin's own.
pub fn env_overrides(
    manifest: &PluginManifest,
    approved: &BTreeSet<String>,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Vec<EnvOverride>, HostError> {
    let prefix = env_prefix(&manifest.id);
    let plugin = &manifest.id;
    let own = |var: &str| prefix.as_deref().is_some_and(|p| var.starts_with(p));
    for setting in &manifest.settings {
        let Some(var) = &setting.env else { continue };
        let key = &setting.key;
        if let Some(why) = forbidden_env(var) {
            return Err(HostError::Config(format!(
                "setting {key:?} of {plugin} reads the environment variable {var}, which no \
                 plugin may read ({why})"
            )));
        }
        if !own(var) && !approved.contains(var) {
            let allowed = match &prefix {
                Some(p) => format!("only {p}* names"),
                None => "no name".to_owned(),
            };
            return Err(HostError::Config(format!(
                "setting {key:?} of {plugin} reads the environment variable {var}: {plugin} \
                 may read {allowed} unless the operator approves another"
            )));
        }
    }
    let mut found = Vec::new();
    for setting in &manifest.settings {
        let Some(var) = &setting.env else { continue };
        let Some(value) = lookup(var).filter(|v| !v.trim().is_empty()) else {
            continue;
        };
        let own = own(var);
        let value = value.trim();
        let value = match setting.kind {
            SettingKind::Endpoint => {
                if let Err(e) = Origin::parse(value) {
                    return Err(HostError::Config(if own {
                        format!("{var}: {e}")
                    } else {
                        // Not the plugin's variable: its value may be anything of the
                        // operator's, so only the reason is told.
                        format!("{var}: not an endpoint (https, or http on a loopback host)")
                    }));
                }
                value.trim_end_matches('/')
            }
            SettingKind::RouteName => {
                if !manifest.routes.iter().any(|r| r.name == value) {
                    let routes = manifest
                        .routes
                        .iter()
                        .map(|r| r.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ");
                    let shown = if own {
                        format!("{value:?}")
                    } else {
                        "its value".into()
                    };
                    return Err(HostError::Config(format!(
                        "{var}: {shown} is not a route of {plugin} (routes: {routes})"
                    )));
                }
                value
            }
            SettingKind::Text => value,
        };
        found.push(EnvOverride {
            key: setting.key.clone(),
            var: var.clone(),
            value: value.to_owned(),
            own,
        });
    }
    Ok(found)
}

/// A [`HostConfig`] checked against a plugin's manifest: what one session is given.
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

impl fmt::Debug for ResolvedConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResolvedConfig")
            .field("overrides", &self.overrides)
            .field("allowed_origins", &self.allowed_origins)
            .field("enabled_routes", &self.enabled_routes)
            .finish_non_exhaustive()
    }
}

/// An origin on a session's allowlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedOrigin {
    /// The origin.
    pub origin: Origin,
    /// Set by the operator (an override, an explicit allowlist): it may be any address,
    /// loopback and private ones included, and plain http on loopback. Otherwise it is
    /// the plugin's own default, which may reach public addresses over https only.
    pub operator_set: bool,
}

impl fmt::Display for AllowedOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.origin.fmt(f)
    }
}

/// Which addresses a connection may reach: attached by the sandbox to every request it
/// lets through (as an `http` extension), honoured by the default pool on every address
/// it connects to after DNS. An embedder's own [`crate::HttpClient`] should honour it too
/// (a request without it is treated as [`Reach::Public`] by the default pool).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Public addresses only ([`is_public_ip`]).
    Public,
    /// Any address (an endpoint the operator set).
    Any,
}

/// Whether `ip` is a public unicast address a plugin's own default may reach: not
/// loopback, private (RFC 1918, RFC 4193 ULA, 100.64/10 shared), link-local (including
/// the 169.254.169.254 metadata service), multicast, unspecified, broadcast, reserved or
/// documentation ranges, nor an IPv6 form embedding one of those (IPv4-mapped,
/// IPv4-compatible, NAT64, 6to4).
pub fn is_public_ip(ip: std::net::IpAddr) -> bool {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    fn v4(ip: Ipv4Addr) -> bool {
        let [a, b, c, _] = ip.octets();
        !(a == 0 // "this network", 0.0.0.0
            || a == 10
            || a == 127
            || (a == 100 && (64..128).contains(&b))
            || (a == 169 && b == 254)
            || (a == 172 && (16..32).contains(&b))
            || (a == 192 && b == 168)
            || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
            || (a == 192 && b == 0 && c == 2)
            || (a == 198 && (b == 18 || b == 19)) // benchmarking
            || (a == 198 && b == 51 && c == 100)
            || (a == 203 && b == 0 && c == 113)
            || a >= 224) // multicast, reserved, broadcast
    }
    fn v6(ip: Ipv6Addr) -> bool {
        let s = ip.segments();
        if let Some(inner) = ip.to_ipv4_mapped() {
            return v4(inner);
        }
        // IPv4-compatible (::a.b.c.d, deprecated), NAT64 (64:ff9b::/96) and 6to4
        // (2002::/16) carry an IPv4 address a relay may reach.
        if s[..6] == [0; 6] || s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
            let [a, b] = s[6].to_be_bytes();
            let [c, d] = s[7].to_be_bytes();
            return !ip.is_unspecified() && !ip.is_loopback() && v4(Ipv4Addr::new(a, b, c, d));
        }
        if s[0] == 0x2002 {
            let [a, b] = s[1].to_be_bytes();
            let [c, d] = s[2].to_be_bytes();
            return v4(Ipv4Addr::new(a, b, c, d));
        }
        !(ip.is_unspecified()
            || ip.is_loopback()
            || ip.is_multicast()
            || (s[0] & 0xfe00) == 0xfc00 // unique local
            || (s[0] & 0xffc0) == 0xfe80 // link-local
            || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
            || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
            || (s[0] == 0x0100 && s[1..4] == [0, 0, 0])) // discard-only
    }
    match ip {
        IpAddr::V4(ip) => v4(ip),
        IpAddr::V6(ip) => v6(ip),
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

    /// The host as an IP address, when it is one (IPv6 without its brackets).
    pub fn ip(&self) -> Option<std::net::IpAddr> {
        self.host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .ok()
    }

    /// Why a plugin's own default may not reach this origin, if it may not: plain http,
    /// `localhost`, or an address that is not public ([`is_public_ip`]). A name is checked
    /// again on the addresses it resolves to, when connecting.
    pub fn default_refusal(&self) -> Option<&'static str> {
        if self.scheme == OriginScheme::Http {
            return Some("plain http only to an endpoint the operator set");
        }
        let host = self.host.trim_end_matches('.');
        if host == "localhost" || host.ends_with(".localhost") {
            return Some("a loopback name");
        }
        match self.ip() {
            Some(ip) if !is_public_ip(ip) => Some("not a public address"),
            _ => None,
        }
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

    #[test]
    fn non_public_addresses_are_recognised_in_every_form() {
        for private in [
            "127.0.0.1",
            "127.0.0.2",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:169.254.169.254",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:a9fe:a9fe::1",
        ] {
            let ip: std::net::IpAddr = private.parse().unwrap();
            assert!(!is_public_ip(ip), "{private} counted as public");
        }
        for public in [
            "1.1.1.1",
            "104.18.0.1",
            "172.32.0.1",
            "2606:4700::1111",
            "::ffff:1.1.1.1",
        ] {
            let ip: std::net::IpAddr = public.parse().unwrap();
            assert!(is_public_ip(ip), "{public} counted as private");
        }
        let refusal = |u: &str| Origin::parse(u).unwrap().default_refusal();
        assert!(refusal("https://169.254.169.254").is_some());
        assert!(refusal("https://[::ffff:169.254.169.254]").is_some());
        assert!(refusal("https://[::ffff:a9fe:a9fe]").is_some());
        assert!(refusal("https://localhost:8443").is_some());
        assert!(refusal("http://127.0.0.1:8080").is_some());
        assert!(refusal("https://api.acme.example").is_none());
    }

    fn env_manifest(env: &[(&str, &str, SettingKind)]) -> PluginManifest {
        let mut m = manifest();
        m.id = "acme-cloud".into();
        for (key, var, kind) in env {
            m.settings.push(Setting {
                key: (*key).into(),
                env: Some((*var).into()),
                description: String::new(),
                default_value: "https://x.acme.example".into(),
                kind: *kind,
                route: None,
            });
        }
        m
    }

    #[test]
    fn environment_names_are_the_plugins_own_or_approved_and_never_the_hosts() {
        assert_eq!(env_prefix("xai-grok").as_deref(), Some("XAI_"));
        assert_eq!(env_prefix("acme").as_deref(), Some("ACME_"));
        assert_eq!(env_prefix("ab-c"), None);
        let vars = |name: &str| match name {
            "ACME_BASE" => Some("https://base.acme.example/".to_owned()),
            "SHARED_REGION" => Some("eu".to_owned()),
            "SHARED_URL" => Some("http://secret-value.example".to_owned()),
            _ => Some("leaked".to_owned()),
        };
        let none = BTreeSet::new();
        let found = env_overrides(
            &env_manifest(&[("base", "ACME_BASE", SettingKind::Endpoint)]),
            &none,
            vars,
        )
        .unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].value, "https://base.acme.example");
        assert!(found[0].own);

        let region = env_manifest(&[("region", "SHARED_REGION", SettingKind::Text)]);
        let err = env_overrides(&region, &none, vars).unwrap_err().to_string();
        assert!(
            err.contains("\"region\"") && err.contains("SHARED_REGION"),
            "{err}"
        );
        assert!(err.contains("ACME_*"), "{err}");
        let approved: BTreeSet<String> = ["SHARED_REGION".to_owned(), "SHARED_URL".to_owned()]
            .into_iter()
            .collect();
        let found = env_overrides(&region, &approved, vars).unwrap();
        assert!(!found[0].own);

        for forbidden in [
            "PROVIDER_HOST_KEY",
            "PROVIDER_HOST_SECRETS_URL",
            "HTTPS_PROXY",
            "https_proxy",
            "No_Proxy",
            "ALL_PROXY",
            "AWS_SECRET_ACCESS_KEY",
            "GITHUB_TOKEN",
        ] {
            let m = env_manifest(&[("leak", forbidden, SettingKind::Text)]);
            let approved: BTreeSet<String> = [forbidden.to_owned()].into_iter().collect();
            let err = env_overrides(&m, &approved, vars).unwrap_err();
            assert_eq!(err.code(), "config_error");
            let err = err.to_string();
            assert!(err.contains("\"leak\"") && err.contains(forbidden), "{err}");
            assert!(!err.contains("leaked"), "{err}");
        }
        // An approved variable that is not the plugin's: its value is never repeated.
        let m = env_manifest(&[("url", "SHARED_URL", SettingKind::Endpoint)]);
        let err = env_overrides(&m, &approved, vars).unwrap_err().to_string();
        assert!(
            err.contains("SHARED_URL") && !err.contains("secret-value"),
            "{err}"
        );
    }
}
