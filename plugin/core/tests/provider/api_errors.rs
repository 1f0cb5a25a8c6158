//! The model API's error policy, through `models` and `chat`.

use grok_provider_core::{ProviderError, TransportError};
use serde_json::json;

use crate::chat::simple_request;
use crate::fakes::{FakeBody, response};
use crate::*;

fn chat_ok() -> serde_json::Value {
    json!({"choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}]})
}

fn rotated(h: &H) {
    h.t.json(
        200,
        token_body(
            &jwt(1, NOW + 6 * HOUR, "a2"),
            Some("rt-SECRET-2"),
            Some(21_600),
        ),
    );
}

#[test]
fn unauthorized_refreshes_once_and_retries_once() {
    for first in [
        (401, json!({"error": "token expired"})),
        (
            403,
            json!({"code": "unauthenticated:bad-credentials", "error": "bad credentials"}),
        ),
    ] {
        let mut h = H::connected(1);
        let old = h.creds().access_token;
        h.t.json(first.0, first.1.clone());
        rotated(&h);
        h.t.json(200, chat_ok());
        assert_eq!(ok(h.p.chat(&simple_request("grok-4.3"))).content, "ok");
        let reqs = h.t.requests();
        let urls: Vec<&str> = reqs.iter().map(|r| r.url.as_str()).collect();
        assert_eq!(urls, vec![CHAT_URL, TOKEN_URL, CHAT_URL]);
        assert_eq!(
            header(&reqs[0], "authorization"),
            Some(format!("Bearer {}", old.expose()))
        );
        assert_eq!(
            header(&reqs[2], "authorization"),
            Some(format!("Bearer {}", h.creds().access_token.expose()))
        );
        assert_ne!(old, h.creds().access_token);
    }
}

/// The rotated refresh token is saved before the retried request: when the retry fails
/// on the network, the next call works with what was saved, without a new login (had the
/// save come after the retry, the rotated token would be lost and the old one, already
/// redeemed, would revoke the grant).
#[test]
fn a_refresh_after_401_is_saved_before_the_retry() {
    let mut h = H::connected(1);
    h.t.json(401, json!({"error": "token expired"}));
    rotated(&h);
    h.t.fail(TransportError::Failed("connection reset".into()));
    assert!(matches!(
        h.p.chat(&simple_request("grok-4.3")),
        Err(ProviderError::Network(_))
    ));
    let saved = h.creds();
    assert_eq!(
        saved.refresh_token.as_ref().map(|t| t.expose()),
        Some("rt-SECRET-2")
    );
    h.t.json(200, chat_ok());
    assert_eq!(ok(h.p.chat(&simple_request("grok-4.3"))).content, "ok");
    let reqs = h.t.requests();
    let last = reqs.last().unwrap();
    assert_eq!(last.url, CHAT_URL);
    assert_eq!(
        header(last, "authorization"),
        Some(format!("Bearer {}", saved.access_token.expose()))
    );
    // No second redemption: the next call used the saved access token as it was.
    assert_eq!(reqs.iter().filter(|r| r.url == TOKEN_URL).count(), 1);
}

#[test]
fn unauthorized_twice_is_final_and_never_loops() {
    let mut h = H::connected(1);
    h.t.json(401, json!({"error": "no"}));
    rotated(&h);
    h.t.json(401, json!({"error": "still no"}));
    let e = err(h.p.models(true, None));
    assert!(
        matches!(&e, ProviderError::Unauthorized(m) if m.contains("logout")),
        "{e:?}"
    );
    assert_eq!(h.t.count(), 3);
    assert_eq!(h.t.unused(), 0);

    // Even a token obtained a moment ago is refreshed once when refused: the coalescing
    // window of explicit refreshes does not apply to a token known to be bad, and
    // `unauthorized` means "rejected even after one refresh".
    let mut h = H::connected(1);
    let mut c = h.creds();
    c.obtained_at_ms = NOW - 500;
    h.set_creds(c);
    h.t.json(401, json!({}));
    rotated(&h);
    h.t.json(401, json!({}));
    assert!(matches!(
        err(h.p.models(true, None)),
        ProviderError::Unauthorized(_)
    ));
    let urls: Vec<String> = h.t.requests().into_iter().map(|r| r.url).collect();
    assert_eq!(urls, vec![MODELS_URL, TOKEN_URL, MODELS_URL]);

    // A revoked login during the retry refresh is reported as such.
    let mut h = H::connected(1);
    h.t.json(401, json!({}));
    h.t.json(400, json!({"error": "invalid_grant"}));
    assert!(
        matches!(err(h.p.models(true, None)), ProviderError::Unauthorized(m) if m.contains("revoked"))
    );
    assert_eq!(h.t.count(), 2);
}

#[test]
fn forbidden_has_three_meanings() {
    let mut h = H::connected(1);
    h.t.json(403, json!({"code": "The caller does not have permission to execute the specified operation", "error": "Team is not authorized to use model grok-build-0.1"}));
    let e = err(h.p.chat(&simple_request("grok-build-0.1")));
    assert!(
        matches!(&e, ProviderError::TierNotAllowed(m) if m.contains("logging in again will not help")),
        "{e:?}"
    );
    assert_eq!(h.t.count(), 1, "no refresh for a tier gate");

    for body in [
        json!({"code": "personal-team-blocked:spending-limit", "error": "blocked"}),
        json!({"error": "You have run out of credits"}),
        json!({"error": "Your team has reached its monthly spending limit"}),
    ] {
        let mut h = H::connected(1);
        h.t.json(403, body);
        assert!(matches!(
            err(h.p.chat(&simple_request("grok-4.3"))),
            ProviderError::QuotaExhausted { .. }
        ));
        assert_eq!(h.t.count(), 1);
    }
    let mut h = H::connected(1);
    h.t.json(402, json!({"error": "payment required"}));
    assert_eq!(
        err(h.p.models(true, None)),
        ProviderError::QuotaExhausted {
            message: "payment required".into(),
            route: "api".into(),
            alternatives: vec!["subscription".into(), "api-key".into()],
        }
    );
    let mut h = H::connected(1);
    h.t.json(403, json!({"error": "Region not supported"}));
    assert!(
        matches!(err(h.p.models(true, None)), ProviderError::TierNotAllowed(m) if m.contains("Region not supported"))
    );
}

#[test]
fn rate_limits_are_not_retried() {
    let mut h = H::connected(1);
    h.t.reply_h(
        429,
        &[("retry-after", "30")],
        r#"{"error":"rate limit exceeded"}"#,
    );
    assert_eq!(
        err(h.p.chat(&simple_request("grok-4.3"))),
        ProviderError::RateLimited {
            message: "rate limit exceeded".into(),
            retry_after_seconds: Some(30),
            alternatives: vec!["subscription".into(), "api-key".into()],
        }
    );
    assert_eq!(h.t.count(), 1);
    assert!(h.c.sleeps().is_empty());

    // Like xAI's CLI: an HTTP date is ignored, and seconds are capped at 120.
    let mut h = H::connected(1);
    h.t.reply_h(
        429,
        &[("retry-after", "Tue, 14 Nov 2023 22:15:00 GMT")],
        "{}",
    );
    assert!(matches!(
        err(h.p.models(true, None)),
        ProviderError::RateLimited {
            retry_after_seconds: None,
            ..
        }
    ));
    let mut h = H::connected(1);
    h.t.reply_h(429, &[("retry-after", "3600")], "{}");
    assert!(matches!(
        err(h.p.models(true, None)),
        ProviderError::RateLimited {
            retry_after_seconds: Some(120),
            ..
        }
    ));
    let mut h = H::connected(1);
    h.t.reply_h(429, &[], "{}");
    assert!(matches!(
        err(h.p.models(true, None)),
        ProviderError::RateLimited {
            retry_after_seconds: None,
            ..
        }
    ));
}

#[test]
fn server_errors_back_off_twice() {
    let mut h = H::connected(1);
    h.t.reply(503, "busy");
    h.t.reply(500, "oops");
    h.t.json(200, chat_ok());
    assert_eq!(ok(h.p.chat(&simple_request("grok-4.3"))).content, "ok");
    assert_eq!(h.c.sleeps(), vec![250, 1_000]);
    assert_eq!(h.t.count(), 3);

    let mut h = H::connected(1);
    for _ in 0..3 {
        h.t.reply(502, r#"{"error":"bad gateway"}"#);
    }
    assert_eq!(
        err(h.p.models(true, None)),
        ProviderError::UpstreamUnavailable("bad gateway".into())
    );
    assert_eq!(h.c.sleeps(), vec![250, 1_000]);
    assert_eq!(h.t.count(), 3);
    assert_eq!(h.t.unused(), 0);
}

#[test]
fn client_errors_and_redirects() {
    for status in [400, 404, 422] {
        let mut h = H::connected(1);
        h.t.json(status, json!({"error": format!("bad thing {status}")}));
        assert_eq!(
            err(h.p.chat(&simple_request("grok-4.3"))),
            ProviderError::InvalidInput(format!("bad thing {status}"))
        );
    }
    let mut h = H::connected(1);
    h.t.reply_h(307, &[("location", "https://elsewhere.example/")], "");
    assert_eq!(
        err(h.p.models(true, None)),
        ProviderError::InvalidResponse("unexpected redirect (HTTP 307)".into())
    );
    assert_eq!(h.t.count(), 1);
}

#[test]
fn body_caps() {
    // A success body over 4 MiB is refused.
    let mut h = H::connected(1);
    let big = format!(
        "{{\"data\":[],\"pad\":\"{}\"}}",
        "x".repeat(4 * 1024 * 1024)
    );
    h.t.push(move |_| {
        Ok(response(
            200,
            &[],
            FakeBody::chunks(
                big.as_bytes()
                    .chunks(65_536)
                    .map(|c| c.to_vec())
                    .collect::<Vec<_>>(),
            ),
        ))
    });
    assert!(
        matches!(err(h.p.models(true, None)), ProviderError::InvalidResponse(m) if m.contains("4 MiB"))
    );
    // An error body is read up to 64 KiB only; the message is bounded.
    let mut h = H::connected(1);
    let huge = format!("{{\"error\":\"{}\"}}", "y".repeat(1024 * 1024));
    h.t.reply(400, &huge);
    let ProviderError::InvalidInput(m) = err(h.p.models(true, None)) else {
        panic!()
    };
    assert!(m.chars().count() <= 301, "{}", m.len());
}

#[test]
fn no_token_in_errors() {
    // Upstream echoing the bearer or the refresh token back in its error text.
    let mut h = H::connected(1);
    let token = h.creds().access_token;
    h.t.json(
        400,
        json!({"error": format!("invalid token {token} (refresh rt-SECRET-1)")}),
    );
    let e = err(h.p.chat(&simple_request("grok-4.3")));
    assert!(!e.to_string().contains(token.expose()));
    let mut h = H::connected(1);
    h.t.json(400, json!({"error": "invalid_grant", "error_description": "refresh token rt-SECRET-1 is revoked"}));
    err(h.p.refresh());
    let mut h = H::connected(1);
    h.t.json(
        401,
        json!({"error": "invalid_client", "error_description": "rt-SECRET-1 not yours"}),
    );
    err(h.p.refresh());
    // Debug output of the record redacts both tokens.
    let h = H::connected(1);
    crate::assert_clean(&format!("{:?}", h.creds()));
}

#[test]
fn network_errors_are_reported_as_such() {
    let mut h = H::connected(1);
    h.t.fail(TransportError::Timeout("first byte".into()));
    assert_eq!(
        err(h.p.chat(&simple_request("grok-4.3"))),
        ProviderError::Network("timed out: first byte".into())
    );
    assert_eq!(h.t.count(), 1);
    let mut h = H::connected(1);
    h.t.fail(TransportError::Denied("api.x.ai not allowed".into()));
    assert!(matches!(
        err(h.p.models(true, None)),
        ProviderError::DeniedBySandbox(_)
    ));
}

#[test]
fn request_debug_output_hides_secrets() {
    let mut h = H::connected(1);
    h.t.json(
        200,
        token_body(&jwt(1, NOW + HOUR, "a2"), Some("rt-SECRET-2"), Some(3600)),
    );
    h.t.json(200, models_body());
    ok(h.p.refresh());
    ok(h.p.models(true, None));
    for req in h.t.requests() {
        crate::assert_clean(&format!("{req:?}"));
    }
    assert!(format!("{:?}", h.t.requests()[1]).contains("[redacted]"));
}

#[test]
fn x_should_retry_false_makes_a_server_error_final() {
    let mut h = H::connected(1);
    h.t.reply_h(
        503,
        &[("x-should-retry", "false")],
        r#"{"error":"overloaded"}"#,
    );
    let e = err(h.p.chat(&simple_request("grok-4.3")));
    assert!(
        matches!(&e, ProviderError::UpstreamUnavailable(m) if m.contains("overloaded") && m.contains("not to retry")),
        "{e:?}"
    );
    assert_eq!(h.t.count(), 1);
    assert!(h.c.sleeps().is_empty());
    // `true` is ignored: the usual two retries.
    let mut h = H::connected(1);
    for _ in 0..3 {
        h.t.reply_h(503, &[("x-should-retry", "true")], "busy");
    }
    err(h.p.chat(&simple_request("grok-4.3")));
    assert_eq!(h.t.count(), 3);
}

#[test]
fn server_retries_wait_retry_after_clamped_to_30_seconds() {
    let mut h = H::connected(1);
    h.t.reply_h(503, &[("retry-after", "45")], "busy");
    h.t.reply_h(503, &[("retry-after", "2")], "busy");
    h.t.json(200, chat_ok());
    ok(h.p.chat(&simple_request("grok-4.3")));
    assert_eq!(h.c.sleeps(), vec![30_000, 2_000]);
}
