//! Refresh: rotation, single flight, failures, the automatic threshold.

use grok_provider_core::{Credentials, ProviderError, TransportError};
use serde_json::json;

use crate::fakes::{FakeBody, response};
use crate::*;

#[test]
fn forced_refresh_rotates_and_saves() {
    let mut h = H::connected(2);
    let access = jwt(2, NOW + 6 * HOUR, "a2");
    h.t.json(200, token_body(&access, Some("rt-SECRET-2"), Some(21_600)));
    let status = ok(h.p.refresh());
    assert!(status.connected);
    assert_eq!(
        (status.tier, status.expires_at),
        (Some(2), Some(NOW / 1000 + 21_600))
    );

    let req = &h.t.requests()[0];
    assert_eq!(req.url, TOKEN_URL);
    let f = form(req);
    assert_eq!(f["grant_type"], "refresh_token");
    assert_eq!(f["refresh_token"], "rt-SECRET-1");
    assert_eq!(f["client_id"], "b1a00492-073a-47ea-816f-4c329264a828");
    assert_eq!(header(req, "user-agent").as_deref(), Some(UA));

    let c = h.creds();
    assert_eq!(c.access_token.expose(), access);
    assert_eq!(
        c.refresh_token.as_ref().map(|t| t.expose()),
        Some("rt-SECRET-2")
    );
    assert_eq!(
        (c.generation, c.obtained_at_ms, c.expires_at_ms),
        (2, NOW, NOW + 21_600_000)
    );
    assert_eq!(h.s.locks_taken(), vec!["credentials"]);
    assert!(!h.s.any_lock_held());
}

#[test]
fn missing_refresh_token_and_expiry_fall_back() {
    let mut h = H::connected(1);
    let access = jwt(1, NOW + 900_000, "a2");
    h.t.json(200, token_body(&access, None, None));
    ok(h.p.refresh());
    let c = h.creds();
    assert_eq!(
        c.refresh_token.as_ref().map(|t| t.expose()),
        Some("rt-SECRET-1"),
        "old refresh token kept"
    );
    assert_eq!(
        c.expires_at_ms,
        (NOW + 900_000) / 1000 * 1000,
        "expiry from the JWT exp"
    );
}

#[test]
fn new_refresh_token_is_saved_before_the_access_token_is_used() {
    let mut h = H::connected(1);
    h.travel(NOW + 5 * HOUR - 60_000); // one minute left: auto refresh
    let access = jwt(1, NOW + 11 * HOUR, "a2");
    h.t.json(200, token_body(&access, Some("rt-SECRET-2"), Some(21_600)));
    let store = h.s.clone();
    let expected = access.clone();
    h.t.push(move |req| {
        let saved = Credentials::from_bytes(&store.raw("credentials").unwrap()).unwrap();
        assert_eq!(
            saved.refresh_token.as_ref().map(|t| t.expose()),
            Some("rt-SECRET-2")
        );
        assert_eq!(
            header(req, "authorization"),
            Some(format!("Bearer {expected}"))
        );
        Ok(response(
            200,
            &[],
            FakeBody::bytes(models_body().to_string().as_bytes()),
        ))
    });
    ok(h.p.models(false, None));
    assert_eq!(h.t.count(), 2);
    assert_eq!(h.t.unused(), 0);
}

#[test]
fn auto_refresh_threshold() {
    // 6 h lifetime: refresh when less than 5 min are left.
    let mut h = H::connected(1);
    h.travel(NOW + 5 * HOUR - 300_000);
    h.t.json(200, models_body());
    ok(h.p.models(true, None));
    assert_eq!(
        h.t.requests()[0].url,
        MODELS_URL,
        "5 min left: no refresh yet"
    );

    h.c.advance(1);
    h.t.json(
        200,
        token_body(
            &jwt(1, NOW + 11 * HOUR, "a2"),
            Some("rt-SECRET-2"),
            Some(21_600),
        ),
    );
    h.t.json(200, models_body());
    ok(h.p.models(true, None));
    let urls: Vec<String> = h.t.requests().into_iter().map(|r| r.url).collect();
    assert_eq!(urls, vec![MODELS_URL, TOKEN_URL, MODELS_URL]);

    // 15 min lifetime: margin is 10 % (90 s).
    let mut h = H::connected(1);
    h.set_creds(Credentials {
        expires_at_ms: NOW + 900_000,
        obtained_at_ms: NOW,
        ..h.creds()
    });
    h.travel(NOW + 810_000);
    h.t.json(200, models_body());
    ok(h.p.models(true, None));
    assert_eq!(h.t.count(), 1);
    h.c.advance(1);
    h.t.json(
        200,
        token_body(&jwt(1, NOW + 2 * HOUR, "a2"), None, Some(900)),
    );
    h.t.json(200, models_body());
    ok(h.p.models(true, None));
    assert_eq!(h.t.requests()[1].url, TOKEN_URL);
}

#[test]
fn invalid_grant_means_logged_out() {
    let mut h = H::connected(1);
    let before = h.creds();
    h.t.json(
        400,
        json!({"error": "invalid_grant", "error_description": "Refresh token has been revoked"}),
    );
    let e = err(h.p.refresh());
    let ProviderError::Unauthorized(m) = &e else {
        panic!("{e:?}")
    };
    // Says what may have happened (xAI's own CLI shares the client id) and what to do.
    assert!(m.contains("invalid_grant") && m.contains("revoked"), "{m}");
    assert!(
        m.contains("same xAI client id") && m.contains("`grok` CLI"),
        "{m}"
    );
    assert!(m.contains("log in again"), "{m}");
    assert_eq!(h.t.count(), 1, "a dead login is not retried");
    assert!(h.creds() == before, "credentials untouched");

    // Recorded: status no longer says connected, and calls fail without the network.
    let s = ok(h.p.status());
    assert!(!s.connected);
    let oauth: Vec<_> = s.routes.iter().filter(|r| r.name != "api-key").collect();
    assert!(
        oauth
            .iter()
            .all(|r| !r.usable && r.detail.as_deref().is_some_and(|d| d.contains("revoked"))),
        "{oauth:?}"
    );
    let e = err(h.p.models(true, None));
    assert!(
        matches!(&e, ProviderError::Unauthorized(m) if m.contains("same xAI client id")),
        "{e:?}"
    );
    assert!(matches!(err(h.p.refresh()), ProviderError::Unauthorized(_)));
    assert_eq!(h.t.count(), 1, "a dead refresh token is not sent again");

    // Logout clears the mark (revocation of the dead token is best effort).
    h.t.reply(200, "");
    ok(h.p.logout());
    assert!(h.s.raw("credentials-revoked").is_none());
}

#[test]
fn status_learns_a_revocation_and_stops_saying_connected() {
    let mut h = H::connected(1);
    h.travel(NOW + 5 * HOUR - 60_000); // close to expiry: status refreshes
    h.t.json(400, json!({"error": "invalid_grant"}));
    let s = ok(h.p.status());
    assert!(!s.connected, "{s:?}");
    assert_eq!(h.t.count(), 1);
    assert!(h.s.raw("credentials-revoked").is_some());
}

#[test]
fn invalid_grant_adopts_a_newer_record_another_process_wrote() {
    let mut h = H::connected(1);
    let mut newer = h.creds();
    newer.access_token = jwt(1, NOW + 11 * HOUR, "sibling").into();
    newer.refresh_token = Some("rt-SECRET-7".into());
    newer.generation = 5;
    let (store, bytes) = (h.s.clone(), newer.to_bytes());
    h.t.push(move |_| {
        store.put("credentials", &bytes);
        Ok(response(
            400,
            &[],
            FakeBody::bytes(br#"{"error":"invalid_grant"}"#),
        ))
    });
    let s = ok(h.p.refresh());
    assert!(s.connected);
    assert!(h.creds() == newer);
    assert!(h.s.raw("credentials-revoked").is_none());
}

#[test]
fn a_temporarily_unavailable_token_endpoint_is_not_a_dead_login() {
    for code in [
        "temporarily_unavailable",
        "server_error",
        "invalid_request",
        "unknown_code",
    ] {
        let mut h = H::connected(1);
        let before = h.creds();
        for _ in 0..3 {
            h.t.json(400, json!({"error": code}));
        }
        let e = err(h.p.refresh());
        assert!(
            matches!(&e, ProviderError::UpstreamUnavailable(m) if m.contains(code) && m.contains("login is kept")),
            "{e:?}"
        );
        assert_eq!(h.t.count(), 3, "{code}: three attempts, like xAI's CLI");
        assert_eq!(h.c.sleeps(), vec![200, 1_000]);
        assert!(h.creds() == before, "credentials untouched");
        assert!(h.s.raw("credentials-revoked").is_none());
        h.t.json(200, models_body());
        assert!(ok(h.p.status()).connected);
    }
    // A transient failure followed by success.
    let mut h = H::connected(1);
    h.t.reply(503, "down");
    h.t.json(
        200,
        token_body(
            &jwt(1, NOW + 6 * HOUR, "a2"),
            Some("rt-SECRET-2"),
            Some(21_600),
        ),
    );
    ok(h.p.refresh());
    assert_eq!(
        h.creds().refresh_token.as_ref().map(|t| t.expose()),
        Some("rt-SECRET-2")
    );
}

#[test]
fn invalid_grant_after_a_concurrent_refresh_uses_the_new_record() {
    let mut h = H::connected(1);
    h.travel(NOW + 5 * HOUR - 1_000); // auto refresh before the chat call
    let winner = Credentials {
        access_token: jwt(1, NOW + 11 * HOUR, "other").into(),
        refresh_token: Some("rt-SECRET-9".into()),
        expires_at_ms: NOW + 11 * HOUR,
        obtained_at_ms: NOW + 5 * HOUR - 2_000,
        tier: Some(1),
        scope: None,
        generation: 2,
    };
    // Another tool (outside our lock) redeemed the token just before us and wrote its result.
    let store = h.s.clone();
    let bytes = winner.to_bytes();
    h.t.push(move |_| {
        store.put("credentials", &bytes);
        Ok(response(
            400,
            &[],
            FakeBody::bytes(br#"{"error":"invalid_grant"}"#),
        ))
    });
    h.t.json(
        200,
        json!({"choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}]}),
    );
    let reply = ok(h.p.chat(&crate::chat::simple_request("grok-4.3")));
    assert_eq!(reply.content, "hi");
    assert_eq!(
        header(&h.t.requests()[1], "authorization"),
        Some(format!("Bearer {}", winner.access_token.expose()))
    );
    assert!(h.creds() == winner);
}

#[test]
fn waiting_on_the_lock_finds_the_refreshed_record() {
    let mut h = H::connected(1);
    h.travel(NOW + 5 * HOUR - 1_000);
    let mut winner = h.creds();
    winner.access_token = jwt(1, NOW + 11 * HOUR, "other").into();
    winner.refresh_token = Some("rt-SECRET-9".into());
    winner.expires_at_ms = NOW + 11 * HOUR;
    winner.generation = 2;
    let bytes = winner.to_bytes();
    h.s.on_next_lock(move |map| {
        map.insert("credentials".into(), bytes.clone());
    });
    h.t.json(200, models_body());
    ok(h.p.models(false, None));
    assert_eq!(h.t.count(), 1, "no redemption: the other process refreshed");
    assert_eq!(
        header(&h.t.requests()[0], "authorization"),
        Some(format!("Bearer {}", winner.access_token.expose()))
    );
}

#[test]
fn forced_refresh_finds_a_record_rotated_while_waiting_for_the_lock() {
    // The 401 path and `refresh()` redeem unconditionally, except when the record
    // changed since it was read: another process rotated it meanwhile.
    let mut h = H::connected(1);
    let mut winner = h.creds();
    winner.access_token = jwt(1, NOW + 6 * HOUR, "other").into();
    winner.refresh_token = Some("rt-SECRET-9".into());
    winner.obtained_at_ms = NOW - 10_000;
    winner.generation = 2;
    let bytes = winner.to_bytes();
    h.s.on_next_lock(move |map| {
        map.insert("credentials".into(), bytes.clone());
    });
    ok(h.p.refresh());
    assert_eq!(h.t.count(), 0, "no second redemption");
    assert!(h.creds() == winner);
}

#[test]
fn forced_refresh_right_after_a_refresh_is_skipped() {
    let mut h = H::connected(1);
    h.set_creds(Credentials {
        obtained_at_ms: NOW - 1_999,
        ..h.creds()
    });
    let status = ok(h.p.refresh());
    assert!(status.connected);
    assert_eq!(h.t.count(), 0);
    h.c.advance(1);
    h.t.json(200, token_body(&jwt(1, NOW + HOUR, "a2"), None, Some(3600)));
    ok(h.p.refresh());
    assert_eq!(h.t.count(), 1);
}

#[test]
fn refresh_failures() {
    // Network: the old record is kept (the token may or may not have been consumed).
    // Transient failures are tried three times in all, and the login is kept.
    let mut h = H::connected(1);
    let before = h.creds();
    for _ in 0..3 {
        h.t.fail(TransportError::Failed("reset".into()));
    }
    assert_eq!(err(h.p.refresh()), ProviderError::Network("reset".into()));
    assert!(h.creds() == before);
    assert!(!h.s.any_lock_held());
    assert_eq!(h.t.count(), 3);

    let mut h = H::connected(1);
    for _ in 0..3 {
        h.t.reply(502, "bad gateway");
    }
    assert!(matches!(
        err(h.p.refresh()),
        ProviderError::UpstreamUnavailable(_)
    ));
    assert_eq!(h.t.count(), 3);
    let mut h = H::connected(1);
    for _ in 0..3 {
        h.t.reply_h(429, &[("retry-after", "9")], "{}");
    }
    assert!(matches!(
        err(h.p.refresh()),
        ProviderError::RateLimited {
            retry_after_seconds: Some(9),
            ..
        }
    ));
    // An edge's HTML refusal (another 4xx) is retried too, and kept transient.
    let mut h = H::connected(1);
    for _ in 0..3 {
        h.t.reply(403, "<html>denied</html>");
    }
    assert!(matches!(
        err(h.p.refresh()),
        ProviderError::UpstreamUnavailable(_)
    ));
    assert!(h.creds() == before);
    // Only invalid_grant and invalid_client are final.
    let mut h = H::connected(1);
    h.t.json(401, json!({"error": "invalid_client"}));
    assert!(
        matches!(err(h.p.refresh()), ProviderError::Unauthorized(m) if m.contains("invalid_client"))
    );
    assert_eq!(h.t.count(), 1);
    // A success without an access token is unusable, and never resent (the refresh token
    // may be consumed).
    let mut h = H::connected(1);
    h.t.json(200, json!({"refresh_token": "rt-SECRET-2"}));
    assert!(matches!(
        err(h.p.refresh()),
        ProviderError::InvalidResponse(_)
    ));
    assert_eq!(h.t.count(), 1);

    // No refresh token.
    let mut h = H::connected(1);
    h.set_creds(Credentials {
        refresh_token: None,
        ..h.creds()
    });
    assert!(matches!(err(h.p.refresh()), ProviderError::Unauthorized(_)));
    assert_eq!(h.t.count(), 0);
    // Not connected.
    let mut h = H::new();
    assert!(matches!(err(h.p.refresh()), ProviderError::NotConnected(_)));
}

#[test]
fn status_survives_transient_refresh_failures_while_the_token_is_valid() {
    let mut h = H::connected(4);
    h.s.put("models.api", &serde_json::to_vec(&json!({"fetched_at_ms": NOW + 5 * HOUR - 100_000, "tier": 4, "models": [], "media_models": []})).unwrap());
    h.travel(NOW + 5 * HOUR - 60_000);
    for _ in 0..3 {
        h.t.reply(503, "down");
    }
    let s = ok(h.p.status());
    assert!(s.connected);
    assert_eq!(
        (s.tier, s.tier_name.as_deref()),
        (Some(4), Some("X Premium+"))
    );
    assert_eq!(h.t.count(), 3);

    // Expired: the error is reported, and the login kept.
    h.travel(NOW + 5 * HOUR);
    for _ in 0..3 {
        h.t.fail(TransportError::Timeout("slow".into()));
    }
    assert!(matches!(err(h.p.status()), ProviderError::Network(_)));
    assert!(h.s.raw("credentials").is_some());

    // A revoked login is reported even while the token is valid: not connected.
    let mut h = H::connected(1);
    h.travel(NOW + 5 * HOUR - 60_000);
    h.t.json(400, json!({"error": "invalid_grant"}));
    assert!(!ok(h.p.status()).connected);
}
