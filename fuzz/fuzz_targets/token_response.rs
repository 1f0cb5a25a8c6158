//! Token endpoint answers (device-code redemption and refresh), whatever their status, the
//! credential record built from them, and that record read back from the store.
//!
//! Input: one status selector byte (see `grok_provider_fuzz::status`), then the body.
#![no_main]

use grok_provider_core::Credentials;
use grok_provider_core::http::Reply;
use grok_provider_core::oauth::{OAuthReply, classify_oauth};
use grok_provider_core::token::TokenResponse;
use grok_provider_fuzz::{
    NOW_MS, OLD_ACCESS_TOKEN, OLD_REFRESH_TOKEN, SECRETS, check_error, check_message, status,
};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn previous() -> Credentials {
    Credentials {
        access_token: OLD_ACCESS_TOKEN.into(),
        refresh_token: Some(OLD_REFRESH_TOKEN.into()),
        expires_at_ms: NOW_MS,
        obtained_at_ms: NOW_MS - 21_600_000,
        tier: Some(2),
        scope: Some("openid offline_access api:access".into()),
        generation: 41,
    }
}

fn exercise(c: &Credentials) {
    for now in [0, NOW_MS, c.obtained_at_ms, c.expires_at_ms, u64::MAX] {
        let expired = c.is_expired(now);
        assert!(!expired || c.needs_refresh(now));
    }
    // The stored form reads back as the same record.
    assert!(Credentials::from_bytes(&c.to_bytes()).unwrap() == *c);
    // Debug never shows a token: it does not even depend on them.
    let mut other = c.clone();
    other.access_token = "x".into();
    other.refresh_token = other.refresh_token.as_ref().map(|_| "y".into());
    assert_eq!(format!("{c:?}"), format!("{other:?}"));
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let reply = Reply {
        status: status(selector),
        headers: vec![("Retry-After".into(), "Sun, 06 Nov 1994 08:49:37 GMT".into())],
        body: body.to_vec(),
    };
    let prev = previous();
    match classify_oauth(&reply, "token refresh", &SECRETS) {
        OAuthReply::Success(v) => {
            // The tokens of this very answer must not show up in its error either.
            let own: Vec<&str> = ["access_token", "refresh_token"]
                .iter()
                .filter_map(|k| v.get(k).and_then(Value::as_str))
                .collect();
            match TokenResponse::parse(&v) {
                Ok(t) => {
                    assert!(!t.access_token.expose().is_empty());
                    let mut other = t.clone();
                    other.access_token = "x".into();
                    other.refresh_token = None;
                    let (a, b) = (format!("{t:?}"), format!("{other:?}"));
                    assert_eq!(a.replace("Some(Secret([redacted]))", "None"), b);
                    let fresh = t.refresh_token.clone();
                    let c = Credentials::from_token_response(t, NOW_MS, Some(&prev), 42);
                    // A rotated refresh token replaces the old one; none keeps it.
                    assert_eq!(
                        c.refresh_token.as_ref().map(|t| t.expose()),
                        Some(fresh.as_ref().map_or(OLD_REFRESH_TOKEN, |t| t.expose()))
                    );
                    assert_eq!((c.obtained_at_ms, c.generation), (NOW_MS, 42));
                    exercise(&c);
                }
                Err(e) => {
                    let mut secrets = SECRETS.to_vec();
                    secrets.extend(own);
                    check_error(&e, &secrets);
                }
            }
        }
        OAuthReply::Error { code, description } => {
            assert!(code.as_str().chars().count() <= 65, "{code:?}");
            check_message(code.as_str(), &SECRETS);
            if let Some(d) = description {
                check_message(&d, &SECRETS);
            }
        }
        OAuthReply::Failure(e) => check_error(&e, &SECRETS),
    }
    // A credential record as read back from the store.
    match Credentials::from_bytes(body) {
        Ok(c) => exercise(&c),
        Err(e) => check_error(&e, &[]),
    }
});
