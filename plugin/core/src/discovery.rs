//! OpenID discovery: which endpoints the issuer offers, and which of them the provider
//! is willing to send a device code or refresh token to.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ProviderError;
use crate::origin::Origin;
use crate::record::{Fields, Record};

/// Store key of the cached discovery document.
pub const DISCOVERY_KEY: &str = "discovery";
/// How long a discovery document is reused (1 h, like xAI's own CLI).
pub const DISCOVERY_TTL_MS: u64 = 60 * 60 * 1000;

/// The endpoints the provider uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoints {
    /// RFC 8628 device authorization endpoint, when offered.
    pub device_authorization_endpoint: Option<String>,
    /// Token endpoint.
    pub token_endpoint: String,
    /// RFC 7009 revocation endpoint, when offered.
    pub revocation_endpoint: Option<String>,
}

/// A discovery document as cached in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoveryCache {
    /// The issuer it was fetched for (a changed configuration invalidates it).
    pub issuer: String,
    /// When it was fetched (unix ms).
    pub fetched_at_ms: u64,
    /// The validated endpoints.
    pub endpoints: Endpoints,
}

impl Record for Endpoints {
    fn read(f: &mut Fields) -> Option<Self> {
        Some(Self {
            device_authorization_endpoint: f.opt_string("device_authorization_endpoint")?,
            token_endpoint: f.string("token_endpoint")?,
            revocation_endpoint: f.opt_string("revocation_endpoint")?,
        })
    }
}

impl Record for DiscoveryCache {
    fn read(f: &mut Fields) -> Option<Self> {
        Some(Self {
            issuer: f.string("issuer")?,
            fetched_at_ms: f.u64("fetched_at_ms")?,
            endpoints: f.record("endpoints")?,
        })
    }
}

impl DiscoveryCache {
    /// Whether it belongs to `issuer` and is younger than the TTL.
    pub fn is_fresh(&self, issuer: &str, now_ms: u64) -> bool {
        self.issuer == issuer
            && self.fetched_at_ms <= now_ms
            && now_ms - self.fetched_at_ms < DISCOVERY_TTL_MS
    }
}

/// Whether the provider may talk to `endpoint`: the issuer's own origin, or `https` on
/// `x.ai` or a subdomain. Secrets are posted there, so nothing else is accepted.
pub fn endpoint_allowed(issuer: &Origin, endpoint: &str) -> bool {
    match Origin::parse(endpoint) {
        Some(o) => &o == issuer || o.is_xai_https(),
        None => false,
    }
}

/// Read and validate a discovery document for `issuer`.
pub fn parse_discovery(issuer: &str, doc: &Value) -> Result<Endpoints, ProviderError> {
    let issuer_origin = Origin::parse(issuer).ok_or_else(|| {
        ProviderError::InvalidInput("the configured issuer is not an http(s) URL".into())
    })?;
    if !doc.is_object() {
        return Err(ProviderError::InvalidResponse(
            "discovery document is not a JSON object".into(),
        ));
    }
    // RFC 8414 §3.3: the document must name the issuer it was fetched for (a mix-up
    // defence); a trailing slash is the only difference tolerated.
    if let Some(named) = doc.get("issuer") {
        let same = named
            .as_str()
            .is_some_and(|n| n.trim_end_matches('/') == issuer.trim_end_matches('/'));
        if !same {
            return Err(ProviderError::InvalidResponse(format!(
                "discovery document names another issuer than {issuer}"
            )));
        }
    }
    let endpoint = |name: &str, required: bool| -> Result<Option<String>, ProviderError> {
        match doc.get(name) {
            None | Some(Value::Null) if !required => Ok(None),
            Some(Value::String(url)) if endpoint_allowed(&issuer_origin, url) => {
                Ok(Some(url.clone()))
            }
            Some(Value::String(_)) => Err(ProviderError::InvalidResponse(format!(
                "discovery: {name} is not on the issuer's origin or an https x.ai host"
            ))),
            _ => Err(ProviderError::InvalidResponse(format!(
                "discovery document without a valid {name}"
            ))),
        }
    };
    Ok(Endpoints {
        device_authorization_endpoint: endpoint("device_authorization_endpoint", false)?,
        token_endpoint: endpoint("token_endpoint", true)?.expect("required"),
        revocation_endpoint: endpoint("revocation_endpoint", false)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn refuses_a_document_of_another_issuer() {
        let doc = |issuer: &str| {
            json!({
                "issuer": issuer,
                "token_endpoint": "https://auth.x.ai/oauth2/token",
            })
        };
        assert!(parse_discovery("https://auth.x.ai", &doc("https://auth.x.ai/")).is_ok());
        assert!(parse_discovery("https://auth.x.ai/", &doc("https://auth.x.ai")).is_ok());
        let e = parse_discovery("https://auth.x.ai", &doc("https://evil.x.ai")).unwrap_err();
        assert!(
            matches!(&e, ProviderError::InvalidResponse(m) if m.contains("another issuer")),
            "{e:?}"
        );
        let no_string = json!({"issuer": 7, "token_endpoint": "https://auth.x.ai/oauth2/token"});
        assert!(parse_discovery("https://auth.x.ai", &no_string).is_err());
    }

    #[test]
    fn accepts_issuer_origin_and_xai_hosts() {
        let e = parse_discovery(
            "https://auth.x.ai",
            &json!({
                "issuer": "https://auth.x.ai",
                "device_authorization_endpoint": "https://auth.x.ai/oauth2/device/code",
                "token_endpoint": "https://auth.x.ai/oauth2/token",
                "revocation_endpoint": "https://other.x.ai/oauth2/revoke",
                "jwks_uri": "https://evil.example/jwks"
            }),
        )
        .unwrap();
        assert_eq!(e.token_endpoint, "https://auth.x.ai/oauth2/token");
        assert_eq!(
            e.revocation_endpoint.as_deref(),
            Some("https://other.x.ai/oauth2/revoke")
        );
        // A local issuer may use its own origin.
        let e = parse_discovery(
            "http://127.0.0.1:9",
            &json!({"token_endpoint": "http://127.0.0.1:9/t"}),
        )
        .unwrap();
        assert_eq!(e.device_authorization_endpoint, None);
    }

    #[test]
    fn refuses_foreign_endpoints() {
        for bad in [
            "https://evil.example/token",
            "http://auth.x.ai/token",
            "https://auth.x.ai.evil.example/token",
            "https://x.ai@evil.example/token",
            "not a url",
        ] {
            let r = parse_discovery("https://auth.x.ai", &json!({"token_endpoint": bad}));
            assert!(matches!(r, Err(ProviderError::InvalidResponse(_))), "{bad}");
            let r = parse_discovery(
                "https://auth.x.ai",
                &json!({"token_endpoint": "https://auth.x.ai/t", "device_authorization_endpoint": bad}),
            );
            assert!(matches!(r, Err(ProviderError::InvalidResponse(_))), "{bad}");
        }
        let local = parse_discovery(
            "http://127.0.0.1:9",
            &json!({"token_endpoint": "http://127.0.0.1:10/t"}),
        );
        assert!(local.is_err());
        assert!(parse_discovery("https://auth.x.ai", &json!({})).is_err());
        assert!(parse_discovery("https://auth.x.ai", &json!({"token_endpoint": 5})).is_err());
        assert!(matches!(
            parse_discovery("auth.x.ai", &json!({})),
            Err(ProviderError::InvalidInput(_))
        ));
    }

    #[test]
    fn cache_freshness() {
        let c = DiscoveryCache {
            issuer: "https://auth.x.ai".into(),
            fetched_at_ms: 1000,
            endpoints: Endpoints {
                device_authorization_endpoint: None,
                token_endpoint: "t".into(),
                revocation_endpoint: None,
            },
        };
        assert!(c.is_fresh("https://auth.x.ai", 1000 + DISCOVERY_TTL_MS - 1));
        assert!(!c.is_fresh("https://auth.x.ai", 1000 + DISCOVERY_TTL_MS));
        assert!(!c.is_fresh("https://other", 1000));
        assert!(!c.is_fresh("https://auth.x.ai", 999));
    }
}
