//! The authorization server's ES256 signing key: compact JWS signing and its JWKS.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// A fresh P-256 key per server, named by its RFC 7638 thumbprint.
pub(crate) struct JwtSigner {
    key: SigningKey,
    kid: String,
    public_jwk: Value,
}

impl JwtSigner {
    pub(crate) fn generate() -> Self {
        let key = loop {
            // A random 32-byte string is a valid scalar except with negligible probability.
            let bytes: [u8; 32] = rand::random();
            if let Ok(key) = SigningKey::from_bytes(&bytes.into()) {
                break key;
            }
        };
        let point = key.verifying_key().to_encoded_point(false);
        let x = B64.encode(point.x().map(|x| &x[..]).unwrap_or_default());
        let y = B64.encode(point.y().map(|y| &y[..]).unwrap_or_default());
        // RFC 7638: members in lexicographic order, no whitespace.
        let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        let kid = B64.encode(Sha256::digest(canonical.as_bytes()));
        let public_jwk = json!({
            "kty": "EC", "crv": "P-256", "x": x, "y": y,
            "kid": kid, "use": "sig", "alg": "ES256",
        });
        Self {
            key,
            kid,
            public_jwk,
        }
    }

    /// Sign `claims` as a compact JWS with the given `typ`.
    pub(crate) fn sign(&self, typ: &str, claims: &Value) -> String {
        let header = json!({"alg": "ES256", "typ": typ, "kid": self.kid});
        let signing_input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let signature: Signature = self.key.sign(signing_input.as_bytes());
        format!("{signing_input}.{}", B64.encode(signature.to_bytes()))
    }

    /// The JWKS document with the public key.
    pub(crate) fn jwks(&self) -> Value {
        json!({"keys": [self.public_jwk]})
    }
}
