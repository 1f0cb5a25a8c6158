//! Token endpoint answers and the stored credential record.

use provider_redact::Secret;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ProviderError;
use crate::json::{str_field, u64_field, written};
use crate::jwt::decode_claims;
use crate::record::{Fields, Record};

/// Lifetime assumed when neither `expires_in` nor the JWT's `exp` says (1 h).
pub const FALLBACK_LIFETIME_MS: u64 = 60 * 60 * 1000;
/// Never refresh earlier than this before expiry (5 min)...
const REFRESH_MARGIN_MAX_MS: u64 = 5 * 60 * 1000;
/// ...nor earlier than this fraction of the lifetime before expiry (1/10).
const REFRESH_MARGIN_DIVISOR: u64 = 10;

/// A successful token endpoint answer (RFC 6749 §5.1). Its `Debug` never shows a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenResponse {
    /// The access token.
    pub access_token: Secret,
    /// A new refresh token, when one was issued.
    pub refresh_token: Option<Secret>,
    /// Lifetime in seconds, when given.
    pub expires_in: Option<u64>,
    /// Granted scopes.
    pub scope: Option<String>,
}

impl TokenResponse {
    /// Read a token response; `access_token` is required and `token_type`, when present,
    /// must be `Bearer`.
    pub fn parse(v: &Value) -> Result<Self, ProviderError> {
        if !v.is_object() {
            return Err(ProviderError::InvalidResponse(
                "token response is not a JSON object".into(),
            ));
        }
        let access_token = str_field(v, "access_token")
            .map(Secret::new)
            .ok_or_else(|| {
                ProviderError::InvalidResponse("token response without access_token".into())
            })?;
        if let Some(tt) = v.get("token_type").and_then(Value::as_str)
            && !tt.eq_ignore_ascii_case("bearer")
        {
            // Only a short plain word is quoted: anything else could be a credential
            // (found by fuzzing: a token type equal to the caller's refresh token was
            // echoed, and `parse` does not know the caller's secrets to scrub them).
            let shown = if !tt.is_empty()
                && tt.len() <= 16
                && tt.bytes().all(|b| b.is_ascii_alphabetic())
            {
                format!("{tt:?}")
            } else {
                "(not shown)".to_owned()
            };
            return Err(ProviderError::InvalidResponse(format!(
                "unsupported token type {shown}; expected Bearer"
            )));
        }
        Ok(Self {
            refresh_token: str_field(v, "refresh_token").map(Secret::new),
            expires_in: u64_field(v, "expires_in"),
            scope: str_field(v, "scope").map(str::to_owned),
            access_token,
        })
    }
}

/// The stored login (secret key `credentials`, JSON). Its `Debug` never shows a token.
/// The tokens are written in clear into the stored record (the host's secret store keeps
/// it encrypted): every later call, in any process, reads them from there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    /// Bearer for the API.
    #[serde(serialize_with = "Secret::serialize_exposed")]
    pub access_token: Secret,
    /// Single-use refresh token, when the issuer gave one.
    #[serde(
        default,
        serialize_with = "Secret::serialize_exposed_option",
        deserialize_with = "Secret::deserialize_option"
    )]
    pub refresh_token: Option<Secret>,
    /// When the access token expires (unix ms).
    pub expires_at_ms: u64,
    /// When it was obtained (unix ms).
    pub obtained_at_ms: u64,
    /// The `tier` claim of the access token.
    #[serde(default)]
    pub tier: Option<u32>,
    /// Granted scopes.
    #[serde(default)]
    pub scope: Option<String>,
    /// Bumped by every save, so that a process can tell whether another one refreshed
    /// while it waited for the lock.
    #[serde(default)]
    pub generation: u64,
}

impl Record for Credentials {
    fn read(f: &mut Fields) -> Option<Self> {
        Some(Self {
            access_token: Secret::from(f.string("access_token")?),
            refresh_token: f.opt_string("refresh_token")?.map(Secret::from),
            expires_at_ms: f.u64("expires_at_ms")?,
            obtained_at_ms: f.u64("obtained_at_ms")?,
            tier: f.opt_u32("tier")?,
            scope: f.opt_string("scope")?,
            generation: f.u64_or_zero("generation")?,
        })
    }
}

impl Credentials {
    /// Build the record from a token response. The expiry comes from `expires_in`, else
    /// the JWT's `exp`, else one hour. A missing refresh token keeps `previous`'s
    /// (issuers may not rotate on every refresh).
    pub fn from_token_response(
        resp: TokenResponse,
        now_ms: u64,
        previous: Option<&Credentials>,
        generation: u64,
    ) -> Self {
        let claims = decode_claims(resp.access_token.expose()).unwrap_or_default();
        let expires_at_ms = match (resp.expires_in, claims.exp) {
            (Some(secs), _) => now_ms.saturating_add(secs.saturating_mul(1000)),
            (None, Some(exp)) => exp.saturating_mul(1000),
            (None, None) => now_ms.saturating_add(FALLBACK_LIFETIME_MS),
        };
        Self {
            refresh_token: resp
                .refresh_token
                .or_else(|| previous.and_then(|p| p.refresh_token.clone())),
            scope: resp
                .scope
                .or_else(|| previous.and_then(|p| p.scope.clone())),
            tier: claims.tier,
            access_token: resp.access_token,
            expires_at_ms,
            obtained_at_ms: now_ms,
            generation,
        }
    }

    /// Whether the access token has expired.
    pub fn is_expired(&self, now_ms: u64) -> bool {
        now_ms >= self.expires_at_ms
    }

    /// Whether to refresh now: expired, or less than min(5 min, 10 % of the lifetime) left.
    pub fn needs_refresh(&self, now_ms: u64) -> bool {
        if self.is_expired(now_ms) {
            return true;
        }
        let lifetime = self.expires_at_ms.saturating_sub(self.obtained_at_ms);
        let margin = REFRESH_MARGIN_MAX_MS.min(lifetime / REFRESH_MARGIN_DIVISOR);
        self.expires_at_ms - now_ms < margin
    }

    /// Serialize for the store.
    pub fn to_bytes(&self) -> Vec<u8> {
        written(serde_json::to_vec(self))
    }

    /// Parse the stored record.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProviderError> {
        Self::from_json(bytes).ok_or_else(|| {
            ProviderError::Storage(
                "stored credentials are unreadable: logout, then start again".into(),
            )
        })
    }

    /// The secrets of this record, for scrubbing error messages.
    pub(crate) fn secrets(&self) -> Vec<&str> {
        let mut v = vec![self.access_token.expose()];
        if let Some(r) = &self.refresh_token {
            v.push(r.expose());
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::encode_unsigned;
    use serde_json::json;

    fn resp(v: Value) -> TokenResponse {
        TokenResponse::parse(&v).unwrap()
    }

    #[test]
    fn parses_token_responses() {
        let r = resp(
            json!({"access_token": "A", "refresh_token": "R", "expires_in": "900", "token_type": "bearer", "id_token": "x"}),
        );
        assert_eq!(
            (r.refresh_token.as_ref().map(Secret::expose), r.expires_in),
            (Some("R"), Some(900))
        );
        assert!(TokenResponse::parse(&json!({"refresh_token": "R"})).is_err());
        assert!(TokenResponse::parse(&json!({"access_token": ""})).is_err());
        assert!(
            matches!(TokenResponse::parse(&json!({"access_token": "A", "token_type": "DPoP"})), Err(ProviderError::InvalidResponse(m)) if m.contains("\"DPoP\""))
        );
        // A token type that could be a credential is never quoted.
        let e =
            TokenResponse::parse(&json!({"access_token": "A", "token_type": "rt-Zq7UO2x1Lk9c"}))
                .unwrap_err();
        assert!(!e.to_string().contains("Zq7"), "{e}");
        assert!(TokenResponse::parse(&json!([1])).is_err());
    }

    #[test]
    fn expiry_sources_in_order() {
        let now = 1_000_000_000_000;
        let jwt = encode_unsigned(&json!({"exp": 1_000_000_500u64, "tier": 2}));
        let c = Credentials::from_token_response(
            resp(json!({"access_token": jwt, "expires_in": 100})),
            now,
            None,
            1,
        );
        assert_eq!((c.expires_at_ms, c.tier), (now + 100_000, Some(2)));
        let c = Credentials::from_token_response(resp(json!({"access_token": jwt})), now, None, 1);
        assert_eq!(c.expires_at_ms, 1_000_000_500_000);
        let c =
            Credentials::from_token_response(resp(json!({"access_token": "opaque"})), now, None, 1);
        assert_eq!(
            (c.expires_at_ms, c.tier),
            (now + FALLBACK_LIFETIME_MS, None)
        );
    }

    #[test]
    fn keeps_old_refresh_token_when_none_returned() {
        let prev = Credentials::from_token_response(
            resp(json!({"access_token": "A", "refresh_token": "R1", "scope": "s"})),
            0,
            None,
            1,
        );
        let c =
            Credentials::from_token_response(resp(json!({"access_token": "B"})), 5, Some(&prev), 2);
        assert_eq!(
            (
                c.refresh_token.as_ref().map(Secret::expose),
                c.scope.as_deref(),
                c.generation
            ),
            (Some("R1"), Some("s"), 2)
        );
        let c = Credentials::from_token_response(
            resp(json!({"access_token": "B", "refresh_token": "R2"})),
            5,
            Some(&prev),
            2,
        );
        assert_eq!(c.refresh_token.as_ref().map(Secret::expose), Some("R2"));
    }

    #[test]
    fn refresh_threshold() {
        // 6 h lifetime: margin 5 min.
        let c = Credentials {
            access_token: "A".into(),
            refresh_token: None,
            expires_at_ms: 6 * 3_600_000,
            obtained_at_ms: 0,
            tier: None,
            scope: None,
            generation: 1,
        };
        assert!(!c.needs_refresh(6 * 3_600_000 - 300_000));
        assert!(c.needs_refresh(6 * 3_600_000 - 299_999));
        // 15 min lifetime: margin 90 s.
        let c = Credentials {
            expires_at_ms: 900_000,
            ..c
        };
        assert!(!c.needs_refresh(810_000));
        assert!(c.needs_refresh(810_001));
        assert!(c.needs_refresh(900_000) && c.is_expired(900_000));
        // Zero lifetime: always.
        let c = Credentials {
            expires_at_ms: 0,
            ..c
        };
        assert!(c.needs_refresh(0));
    }

    #[test]
    fn stored_records_without_a_refresh_token_read_back() {
        for stored in [
            r#"{"access_token":"A","expires_at_ms":5,"obtained_at_ms":1}"#,
            r#"{"access_token":"A","refresh_token":null,"expires_at_ms":5,"obtained_at_ms":1}"#,
        ] {
            let c = Credentials::from_bytes(stored.as_bytes()).unwrap();
            assert_eq!((c.access_token.expose(), c.refresh_token), ("A", None));
        }
        assert!(
            Credentials::from_bytes(
                br#"{"access_token":"A","refresh_token":7,"expires_at_ms":5,"obtained_at_ms":1}"#
            )
            .is_err()
        );
    }

    #[test]
    fn debug_redacts() {
        let c = Credentials::from_token_response(
            resp(json!({"access_token": "SECRET-A", "refresh_token": "SECRET-R"})),
            0,
            None,
            1,
        );
        let r = resp(json!({"access_token": "SECRET-A", "refresh_token": "SECRET-R"}));
        let d = format!("{c:?} {:?} {c:#?} {r:#?}", r);
        assert!(!d.contains("SECRET"), "{d}");
        // The stored record is where they are written.
        let stored = String::from_utf8(c.to_bytes()).unwrap();
        assert!(stored.contains("SECRET-A") && stored.contains("SECRET-R"));
        let back = Credentials::from_bytes(&c.to_bytes()).unwrap();
        assert!(back == c);
    }
}
