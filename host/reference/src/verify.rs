//! Bearer verification against a JWKS: ES256 (P-256) and RS256 keys, `exp`/`nbf`, `iss`,
//! `aud`, plus an optional revocation check supplied by the reference authorization server.

use std::fmt;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use p256::ecdsa::signature::Verifier as _;
use serde_json::Value;

use crate::error::{Error, Result, VerifyError};
use crate::http::unix_now;

/// A verified token's claims.
pub type Claims = serde_json::Map<String, Value>;

/// Extra check run after the signature and claims pass; `true` means "revoked".
pub(crate) type RevocationCheck = Arc<dyn Fn(&Claims) -> bool + Send + Sync>;

enum KeyMaterial {
    Es256(p256::ecdsa::VerifyingKey),
    Rs256(rsa::pkcs1v15::VerifyingKey<sha2::Sha256>),
}

struct Key {
    kid: Option<String>,
    material: KeyMaterial,
}

/// Checks bearer tokens: signature by a JWKS key, not expired, and optionally issuer and
/// audience. Cheap to clone.
#[derive(Clone)]
pub struct TokenVerifier {
    keys: Arc<Vec<Key>>,
    issuer: Option<String>,
    audience: Option<String>,
    leeway_seconds: u64,
    revoked: Option<RevocationCheck>,
}

impl fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("keys", &self.keys.len())
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("leeway_seconds", &self.leeway_seconds)
            .field("revocation_check", &self.revoked.is_some())
            .finish()
    }
}

impl TokenVerifier {
    /// Build from a JWKS document (`{"keys":[...]}`). EC P-256 and RSA signing keys are
    /// used; other keys (and `"use":"enc"` keys) are skipped. Fails when none is usable.
    pub fn from_jwks_json(jwks: &str) -> Result<Self> {
        let doc: Value =
            serde_json::from_str(jwks).map_err(|e| Error::Jwks(format!("not JSON: {e}")))?;
        let entries = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| Error::Jwks("no \"keys\" array".into()))?;
        let keys: Vec<Key> = entries.iter().filter_map(parse_jwk).collect();
        if keys.is_empty() {
            return Err(Error::Jwks("no usable ES256 or RS256 signing key".into()));
        }
        Ok(Self {
            keys: Arc::new(keys),
            issuer: None,
            audience: None,
            leeway_seconds: 0,
            revoked: None,
        })
    }

    /// Also require this `iss`.
    pub fn with_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// Also require this value in `aud`.
    pub fn with_audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// Tolerate this much clock skew on `exp` and `nbf` (default 0).
    pub fn with_leeway(mut self, seconds: u64) -> Self {
        self.leeway_seconds = seconds;
        self
    }

    pub(crate) fn with_revocation(mut self, check: RevocationCheck) -> Self {
        self.revoked = Some(check);
        self
    }

    /// Number of usable keys.
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// Verify a compact JWS and return its claims.
    pub fn verify(&self, token: &str) -> Result<Claims, VerifyError> {
        let mut parts = token.split('.');
        let (Some(h), Some(c), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(VerifyError::Malformed);
        };
        let header: Claims = decode_json(h)?;
        let claims: Claims = decode_json(c)?;
        let signature = B64.decode(s).map_err(|_| VerifyError::Malformed)?;
        let alg = header.get("alg").and_then(Value::as_str).unwrap_or("");
        if alg != "ES256" && alg != "RS256" {
            return Err(VerifyError::UnsupportedAlgorithm(alg.to_owned()));
        }
        let kid = header.get("kid").and_then(Value::as_str);
        let signed = &token.as_bytes()[..h.len() + 1 + c.len()];
        let candidates = self.keys.iter().filter(|k| match (kid, &k.kid) {
            (Some(want), Some(have)) => want == have,
            _ => true,
        });
        let mut matched = false;
        let mut ok = false;
        for key in candidates {
            match (alg, &key.material) {
                ("ES256", KeyMaterial::Es256(vk)) => {
                    matched = true;
                    if let Ok(sig) = p256::ecdsa::Signature::from_slice(&signature) {
                        ok = vk.verify(signed, &sig).is_ok();
                    }
                }
                ("RS256", KeyMaterial::Rs256(vk)) => {
                    matched = true;
                    if let Ok(sig) = rsa::pkcs1v15::Signature::try_from(signature.as_slice()) {
                        ok = vk.verify(signed, &sig).is_ok();
                    }
                }
                _ => {}
            }
            if ok {
                break;
            }
        }
        if !matched {
            return Err(VerifyError::UnknownKey);
        }
        if !ok {
            return Err(VerifyError::BadSignature);
        }
        self.check_claims(&claims)?;
        Ok(claims)
    }

    fn check_claims(&self, claims: &Claims) -> Result<(), VerifyError> {
        let now = unix_now();
        let exp = claims
            .get("exp")
            .and_then(Value::as_u64)
            .ok_or(VerifyError::Expired)?;
        if now >= exp.saturating_add(self.leeway_seconds) {
            return Err(VerifyError::Expired);
        }
        if let Some(nbf) = claims.get("nbf").and_then(Value::as_u64)
            && nbf > now.saturating_add(self.leeway_seconds)
        {
            return Err(VerifyError::NotYetValid);
        }
        if let Some(issuer) = &self.issuer
            && claims.get("iss").and_then(Value::as_str) != Some(issuer.as_str())
        {
            return Err(VerifyError::WrongIssuer);
        }
        if let Some(audience) = &self.audience {
            let fits = match claims.get("aud") {
                Some(Value::String(a)) => a == audience,
                Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(audience)),
                _ => false,
            };
            if !fits {
                return Err(VerifyError::WrongAudience);
            }
        }
        if let Some(revoked) = &self.revoked
            && revoked(claims)
        {
            return Err(VerifyError::Revoked);
        }
        Ok(())
    }
}

/// The `tier` claim as an integer (number or numeric string).
pub fn tier_claim(claims: &Claims) -> Option<u32> {
    match claims.get("tier")? {
        Value::Number(n) => n.as_u64().and_then(|t| u32::try_from(t).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn decode_json(part: &str) -> Result<Claims, VerifyError> {
    let bytes = B64.decode(part).map_err(|_| VerifyError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| VerifyError::Malformed)
}

fn b64_field(jwk: &Value, name: &str) -> Option<Vec<u8>> {
    B64.decode(jwk.get(name)?.as_str()?).ok()
}

fn parse_jwk(jwk: &Value) -> Option<Key> {
    if jwk
        .get("use")
        .and_then(Value::as_str)
        .is_some_and(|u| u != "sig")
    {
        return None;
    }
    let alg = jwk.get("alg").and_then(Value::as_str);
    let material = match jwk.get("kty")?.as_str()? {
        "EC" if jwk.get("crv")?.as_str()? == "P-256" && alg.is_none_or(|a| a == "ES256") => {
            let (x, y) = (b64_field(jwk, "x")?, b64_field(jwk, "y")?);
            if x.len() != 32 || y.len() != 32 {
                return None;
            }
            let point = p256::EncodedPoint::from_affine_coordinates(
                x.as_slice().into(),
                y.as_slice().into(),
                false,
            );
            KeyMaterial::Es256(p256::ecdsa::VerifyingKey::from_encoded_point(&point).ok()?)
        }
        "RSA" if alg.is_none_or(|a| a == "RS256") => {
            let n = rsa::BigUint::from_bytes_be(&b64_field(jwk, "n")?);
            let e = rsa::BigUint::from_bytes_be(&b64_field(jwk, "e")?);
            let public = rsa::RsaPublicKey::new(n, e).ok()?;
            KeyMaterial::Rs256(rsa::pkcs1v15::VerifyingKey::new(public))
        }
        _ => return None,
    };
    Some(Key {
        kid: jwk.get("kid").and_then(Value::as_str).map(str::to_owned),
        material,
    })
}
