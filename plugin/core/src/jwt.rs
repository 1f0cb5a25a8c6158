//! Reading an access token's claims. The signature is NOT checked: the token comes
//! straight from the issuer over TLS and is only read for display (tier) and expiry
//! hints; the API verifies it on every call.

use base64::Engine as _;
use base64::alphabet::URL_SAFE;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde_json::Value;

use crate::json::{as_u32, u64_field};

/// base64url, with or without padding.
const B64URL: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The claims the provider uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claims {
    /// Subscription tier (`tier`, an integer or a numeric string).
    pub tier: Option<u32>,
    /// Expiry (`exp`, unix seconds).
    pub exp: Option<u64>,
    /// Issue time (`iat`, unix seconds).
    pub iat: Option<u64>,
    /// Subject (`sub`).
    pub sub: Option<String>,
}

/// Decode the payload of a JWT. `None` when the token is not a JWT (opaque tokens are
/// legal; callers fall back to other sources).
pub fn decode_claims(token: &str) -> Option<Claims> {
    let mut parts = token.split('.');
    let (_header, payload) = (parts.next()?, parts.next()?);
    parts.next()?; // a JWS has three parts; anything else is not a JWT we read
    if parts.next().is_some() {
        return None;
    }
    let bytes = B64URL.decode(payload).ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    if !v.is_object() {
        return None;
    }
    Some(Claims {
        tier: v.get("tier").and_then(as_u32),
        exp: u64_field(&v, "exp"),
        iat: u64_field(&v, "iat"),
        sub: v.get("sub").and_then(Value::as_str).map(str::to_owned),
    })
}

/// Build an unsigned JWT-shaped token around `claims` (for tests and fakes).
pub fn encode_unsigned(claims: &Value) -> String {
    let enc = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    format!(
        "{}.{}.{}",
        enc(br#"{"alg":"ES256","typ":"at+jwt"}"#),
        enc(claims.to_string().as_bytes()),
        enc(b"not-a-signature")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_claims() {
        let t = encode_unsigned(
            &json!({"tier": 3, "exp": 1700000000u64, "iat": 1699990000u64, "sub": "u1", "x": [1]}),
        );
        assert_eq!(
            decode_claims(&t),
            Some(Claims {
                tier: Some(3),
                exp: Some(1_700_000_000),
                iat: Some(1_699_990_000),
                sub: Some("u1".into())
            })
        );
        let t = encode_unsigned(&json!({"tier": "4"}));
        assert_eq!(decode_claims(&t).unwrap().tier, Some(4));
        let t = encode_unsigned(&json!({"tier": "heavy"}));
        assert_eq!(decode_claims(&t).unwrap().tier, None);
    }

    #[test]
    fn accepts_padding_and_refuses_non_jwts() {
        let payload = base64::engine::general_purpose::URL_SAFE.encode(br#"{"tier":1}"#);
        assert_eq!(
            decode_claims(&format!("a.{payload}.c")).unwrap().tier,
            Some(1)
        );
        assert_eq!(decode_claims("opaque-token"), None);
        assert_eq!(decode_claims("a.b"), None);
        assert_eq!(decode_claims("a.b.c.d"), None);
        assert_eq!(decode_claims("a.!!!.c"), None);
        let arr = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b"[1]");
        assert_eq!(decode_claims(&format!("a.{arr}.c")), None);
    }
}
