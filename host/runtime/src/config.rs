//! What the plugin is told to talk to, and which origins the sandbox lets it reach.
//!
//! Validated before anything runs: an origin must be `https://`, or `http://` on a
//! loopback host named explicitly (for local test servers).

use std::fmt;

use crate::error::HostError;

/// Endpoint settings handed to the plugin through the `config` import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderSettings {
    /// OAuth issuer (discovery lives below it).
    pub issuer: String,
    /// Model API base URL.
    pub api_base: String,
    /// Public OAuth client id.
    pub client_id: String,
    /// Space-separated scopes.
    pub scope: String,
    /// `User-Agent` sent upstream.
    pub user_agent: String,
}

impl Default for ProviderSettings {
    fn default() -> Self {
        Self {
            issuer: "https://auth.x.ai".into(),
            api_base: "https://api.x.ai/v1".into(),
            client_id: "b1a00492-073a-47ea-816f-4c329264a828".into(),
            scope: "openid profile email offline_access grok-cli:access api:access".into(),
            user_agent: concat!("provider-host/", env!("CARGO_PKG_VERSION")).into(),
        }
    }
}

impl ProviderSettings {
    /// Defaults, overridden by `XAI_OAUTH_ISSUER`, `XAI_API_BASE`, `XAI_CLIENT_ID`,
    /// `XAI_OAUTH_SCOPE` where set.
    pub fn from_env() -> Self {
        let mut s = Self::default();
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        if let Some(v) = var("XAI_OAUTH_ISSUER") {
            s.issuer = v.trim_end_matches('/').to_string();
        }
        if let Some(v) = var("XAI_API_BASE") {
            s.api_base = v.trim_end_matches('/').to_string();
        }
        if let Some(v) = var("XAI_CLIENT_ID") {
            s.client_id = v;
        }
        if let Some(v) = var("XAI_OAUTH_SCOPE") {
            s.scope = v;
        }
        s
    }
}

/// Settings plus the derived sandbox allowlist, validated.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// What the plugin is told.
    pub provider: ProviderSettings,
    /// Origins outgoing requests may reach.
    pub allowed_origins: Vec<Origin>,
}

impl HostConfig {
    /// Validate `provider` and allow exactly the issuer's and the API's origins.
    pub fn new(provider: ProviderSettings) -> Result<Self, HostError> {
        if let Some(problem) = crate::http_pool::proxy_env_problem() {
            return Err(HostError::Config(problem));
        }
        let issuer = Origin::parse(&provider.issuer)?;
        let api = Origin::parse(&provider.api_base)?;
        let mut allowed_origins = vec![issuer];
        if !allowed_origins.contains(&api) {
            allowed_origins.push(api);
        }
        Ok(Self {
            provider,
            allowed_origins,
        })
    }

    /// Replace the allowlist (for embedders that route discovery endpoints elsewhere, and
    /// for tests of the sandbox itself). Each origin is validated like the endpoints.
    pub fn with_allowed_origins(mut self, origins: &[&str]) -> Result<Self, HostError> {
        self.allowed_origins = origins
            .iter()
            .map(|o| Origin::parse(o))
            .collect::<Result<_, _>>()?;
        Ok(self)
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
    /// Parse the origin of a URL; refuses non-http(s) schemes, userinfo, and plain
    /// http to anything but a loopback host.
    pub fn parse(url: &str) -> Result<Self, HostError> {
        let bad = |why: &str| HostError::Config(format!("{url:?}: {why}"));
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad("not an absolute URL"))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "https" => OriginScheme::Https,
            "http" => OriginScheme::Http,
            _ => return Err(bad("only https (or http on loopback) is allowed")),
        };
        let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
        if authority.is_empty() || authority.contains('@') {
            return Err(bad("missing host or contains userinfo"));
        }
        let (host, port) = split_host_port(authority).ok_or_else(|| bad("bad host or port"))?;
        let port = port.unwrap_or(match scheme {
            OriginScheme::Https => 443,
            OriginScheme::Http => 80,
        });
        let origin = Origin {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
        };
        if origin.scheme == OriginScheme::Http && !origin.is_loopback() {
            return Err(bad(
                "plain http is allowed only for loopback hosts (127.0.0.0/8, ::1, localhost)",
            ));
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

fn split_host_port(authority: &str) -> Option<(&str, Option<u16>)> {
    if authority.starts_with('[') {
        let end = authority.find(']')?;
        let host = &authority[..=end];
        let rest = &authority[end + 1..];
        return match rest.strip_prefix(':') {
            Some(p) => Some((host, Some(p.parse().ok()?))),
            None if rest.is_empty() => Some((host, None)),
            None => None,
        };
    }
    match authority.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() => Some((h, Some(p.parse().ok()?))),
        Some(_) => None,
        None => Some((authority, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_origins_get_default_ports() {
        let o = Origin::parse("https://Auth.X.ai/oauth2/token").unwrap();
        assert_eq!(o.to_string(), "https://auth.x.ai:443");
    }

    #[test]
    fn plain_http_only_on_loopback() {
        assert!(Origin::parse("http://127.0.0.1:8080/x").is_ok());
        assert!(Origin::parse("http://[::1]:8080").is_ok());
        assert!(Origin::parse("http://localhost:1").is_ok());
        let err = Origin::parse("http://auth.x.ai").unwrap_err().to_string();
        assert!(err.contains("loopback"), "{err}");
        assert!(Origin::parse("http://10.0.0.1").is_err());
        assert!(Origin::parse("ftp://x").is_err());
        assert!(Origin::parse("https://user@auth.x.ai").is_err());
    }

    #[test]
    fn allowlist_is_issuer_and_api() {
        let c = HostConfig::new(ProviderSettings::default()).unwrap();
        let list: Vec<String> = c.allowed_origins.iter().map(|o| o.to_string()).collect();
        assert_eq!(list, ["https://auth.x.ai:443", "https://api.x.ai:443"]);
    }
}
