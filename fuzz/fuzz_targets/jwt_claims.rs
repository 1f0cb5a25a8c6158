//! Access-token claims: `decode_claims` on any string, and what the credential record takes
//! from them.
#![no_main]

use grok_provider_core::Credentials;
use grok_provider_core::jwt::{Claims, decode_claims, encode_unsigned};
use grok_provider_core::token::TokenResponse;
use grok_provider_fuzz::NOW_MS;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};

fn to_json(c: &Claims) -> Value {
    let mut m = Map::new();
    if let Some(t) = c.tier {
        m.insert("tier".into(), json!(t));
    }
    if let Some(e) = c.exp {
        m.insert("exp".into(), json!(e));
    }
    if let Some(i) = c.iat {
        m.insert("iat".into(), json!(i));
    }
    if let Some(s) = &c.sub {
        m.insert("sub".into(), json!(s));
    }
    Value::Object(m)
}

fuzz_target!(|data: &[u8]| {
    // Tokens arrive as JSON strings, so they are always UTF-8.
    let token = String::from_utf8_lossy(data);
    let Some(claims) = decode_claims(&token) else {
        return;
    };
    // What was read is what a token carrying exactly those claims gives back.
    assert_eq!(
        decode_claims(&encode_unsigned(&to_json(&claims))),
        Some(claims.clone())
    );

    // The record takes its tier and (without expires_in) its expiry from the claims.
    let resp = TokenResponse::parse(&json!({"access_token": token, "token_type": "Bearer"}))
        .expect("a non-empty access token is accepted");
    let c = Credentials::from_token_response(resp, NOW_MS, None, 1);
    assert_eq!(c.tier, claims.tier);
    match claims.exp {
        Some(exp) => assert_eq!(c.expires_at_ms, exp.saturating_mul(1000)),
        None => assert!(c.expires_at_ms > NOW_MS),
    }
    let _ = c.needs_refresh(NOW_MS);
});
