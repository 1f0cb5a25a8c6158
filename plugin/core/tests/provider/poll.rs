//! `poll`: one token request per call, paced, every outcome.

use grok_provider_core::{PollOutcome, ProviderError, TransportError};
use serde_json::json;

use crate::*;

/// Start a login (device code `dc-SECRET-<n>`, 30 min, interval 5 s); returns its id.
fn started(h: &mut H, n: u32) -> String {
    h.t.json(
        200,
        json!({
            "device_code": format!("dc-SECRET-{n}"), "user_code": "WXYZ-0000",
            "verification_uri": "https://accounts.x.ai/oauth2/device",
            "verification_uri_complete": "https://accounts.x.ai/oauth2/device?user_code=WXYZ-0000",
            "expires_in": 1800, "interval": 5
        }),
    );
    h.p.start().unwrap().pending_id
}

fn pending(o: PollOutcome) -> grok_provider_core::PendingLogin {
    match o {
        PollOutcome::Pending(p) => p,
        other => panic!("expected pending, got {other:?}"),
    }
}

#[test]
fn nothing_pending() {
    let mut h = H::new();
    assert_eq!(
        err(h.p.poll(None)),
        ProviderError::NotConnected("no login is pending: call start".into())
    );
    assert!(matches!(
        err(h.p.poll(Some("0123456789abcdef0123456789abcdef"))),
        ProviderError::NotConnected(_)
    ));
    assert!(matches!(
        err(h.p.poll(Some("../credentials"))),
        ProviderError::NotConnected(_)
    ));
    assert_eq!(h.t.count(), 0);
}

#[test]
fn pending_then_paced() {
    let mut h = H::new();
    let id = started(&mut h, 1);
    // The first poll right after start is allowed: the user's confirmation paces it.
    h.t.json(400, json!({"error": "authorization_pending"}));
    let p = pending(ok(h.p.poll(Some(&id))));
    assert_eq!(
        (
            p.pending_id.as_str(),
            p.interval_seconds,
            p.expires_in_seconds
        ),
        (id.as_str(), 5, 1800)
    );
    let req = &h.t.requests()[1];
    assert_eq!(req.url, TOKEN_URL);
    let f = form(req);
    assert_eq!(
        f["grant_type"],
        "urn:ietf:params:oauth:grant-type:device_code"
    );
    assert_eq!(f["device_code"], "dc-SECRET-1");
    assert_eq!(f["client_id"], "b1a00492-073a-47ea-816f-4c329264a828");
    assert_eq!(header(req, "user-agent").as_deref(), Some(UA));
    assert_eq!(
        header(req, "content-type").as_deref(),
        Some("application/x-www-form-urlencoded")
    );

    // Too early: answered without a request.
    h.c.advance(4_999);
    let p = pending(ok(h.p.poll(None)));
    assert_eq!(p.expires_in_seconds, 1795);
    assert_eq!(h.t.count(), 2);
    // On time: one request (HTTP 200 with an error field counts as the error).
    h.c.advance(1);
    h.t.json(200, json!({"error": "authorization_pending"}));
    pending(ok(h.p.poll(None)));
    assert_eq!(h.t.count(), 3);
    assert_eq!(h.t.unused(), 0);
}

#[test]
fn slow_down_raises_the_interval_for_all_later_polls() {
    let mut h = H::new();
    let id = started(&mut h, 1);
    h.t.json(400, json!({"error": "slow_down"}));
    assert_eq!(pending(ok(h.p.poll(Some(&id)))).interval_seconds, 10);
    h.c.advance(6_000);
    assert_eq!(pending(ok(h.p.poll(Some(&id)))).interval_seconds, 10);
    assert_eq!(h.t.count(), 2, "early poll answered without a request");
    h.c.advance(4_000);
    h.t.json(400, json!({"error": "slow_down"}));
    assert_eq!(pending(ok(h.p.poll(Some(&id)))).interval_seconds, 15);
    h.c.advance(14_999);
    pending(ok(h.p.poll(None)));
    assert_eq!(h.t.count(), 3);
    h.c.advance(1);
    h.t.json(400, json!({"error": "authorization_pending"}));
    assert_eq!(pending(ok(h.p.poll(None))).interval_seconds, 15);
    assert_eq!(h.t.count(), 4);
}

#[test]
fn access_denied_explains_the_account_gate_and_ends_the_flow() {
    let mut h = H::new();
    let id = started(&mut h, 1);
    h.t.json(
        400,
        json!({"error": "access_denied", "error_description": "denied"}),
    );
    let e = err(h.p.poll(Some(&id)));
    let ProviderError::AccessDenied(m) = &e else {
        panic!("{e:?}")
    };
    for needle in [
        "subscription",
        "already logged in",
        "API key",
        "BYOK",
        "console.x.ai",
        "do not retry",
    ] {
        assert!(m.contains(needle), "{needle} missing from {m}");
    }
    assert!(h.s.keys().iter().all(|k| !k.starts_with("pending.")));
    assert!(matches!(
        err(h.p.poll(Some(&id))),
        ProviderError::NotConnected(_)
    ));
    assert_eq!(h.t.count(), 2);
}

#[test]
fn expired_device_codes() {
    // Upstream says so.
    let mut h = H::new();
    let id = started(&mut h, 1);
    h.t.json(400, json!({"error": "expired_token"}));
    assert!(matches!(
        err(h.p.poll(Some(&id))),
        ProviderError::DeviceCodeExpired(_)
    ));
    assert!(h.s.keys().iter().all(|k| !k.starts_with("pending.")));
    // The local clock says so: no request.
    let mut h = H::new();
    let id = started(&mut h, 1);
    h.c.advance(1_800_000);
    assert!(matches!(
        err(h.p.poll(None)),
        ProviderError::DeviceCodeExpired(_)
    ));
    assert_eq!(h.t.count(), 1);
    assert!(matches!(
        err(h.p.poll(Some(&id))),
        ProviderError::NotConnected(_)
    ));
}

#[test]
fn other_oauth_errors_end_the_flow() {
    let mut h = H::new();
    let id = started(&mut h, 1);
    h.t.json(
        401,
        json!({"error": "invalid_client", "error_description": "who are you"}),
    );
    let e = err(h.p.poll(Some(&id)));
    assert!(
        matches!(&e, ProviderError::InvalidResponse(m) if m.contains("invalid_client")),
        "{e:?}"
    );
    assert!(h.s.keys().iter().all(|k| !k.starts_with("pending.")));
}

#[test]
fn transient_failures_keep_the_flow() {
    let mut h = H::new();
    let id = started(&mut h, 1);
    h.t.reply(503, "unavailable");
    assert!(matches!(
        err(h.p.poll(Some(&id))),
        ProviderError::UpstreamUnavailable(_)
    ));
    h.c.advance(5_000);
    h.t.reply_h(429, &[("retry-after", "20")], "{}");
    assert!(matches!(
        err(h.p.poll(Some(&id))),
        ProviderError::RateLimited {
            retry_after_seconds: Some(20),
            ..
        }
    ));
    h.c.advance(5_000);
    h.t.fail(TransportError::Timeout("no answer".into()));
    assert!(matches!(
        err(h.p.poll(Some(&id))),
        ProviderError::Network(_)
    ));
    h.t.reply(403, "<html>cloudflare</html>");
    assert!(matches!(
        err(h.p.poll(Some(&id))),
        ProviderError::InvalidResponse(_)
    ));
    assert!(h.s.raw(&format!("pending.{id}")).is_some());
    h.c.advance(5_000);
    h.t.json(400, json!({"error": "authorization_pending"}));
    pending(ok(h.p.poll(Some(&id))));
}

#[test]
fn connected_stores_credentials_and_forgets_the_flow() {
    let mut h = H::new();
    let id = started(&mut h, 1);
    let access = jwt(3, NOW + 6 * HOUR, "a1");
    h.t.json(200, token_body(&access, Some("rt-SECRET-1"), Some(21_600)));
    let outcome = ok(h.p.poll(Some(&id)));
    let PollOutcome::Connected(status) = outcome else {
        panic!("{outcome:?}")
    };
    assert!(status.connected);
    assert_eq!(status.tier, Some(3));
    assert_eq!(
        status.tier_name.as_deref(),
        Some("X Premium"),
        "tier 3 of xAI's enum"
    );
    assert_eq!(status.expires_at, Some(NOW / 1000 + 21_600));
    assert_eq!(status.default_model_id.as_deref(), Some(DEFAULT_MODEL_ID));
    assert_eq!(h.t.count(), 2, "poll sends exactly one request");

    let c = h.creds();
    assert_eq!(c.access_token.expose(), access);
    assert_eq!(
        c.refresh_token.as_ref().map(|t| t.expose()),
        Some("rt-SECRET-1")
    );
    assert_eq!(
        (c.expires_at_ms, c.obtained_at_ms, c.tier, c.generation),
        (NOW + 21_600_000, NOW, Some(3), 1)
    );
    assert_eq!(c.scope.as_deref(), Some("openid api:access"));
    assert!(!h.s.any_lock_held());

    // A used device code is never polled again.
    assert!(h.s.keys().iter().all(|k| !k.starts_with("pending.")));
    h.c.advance(10_000);
    assert!(matches!(
        err(h.p.poll(Some(&id))),
        ProviderError::NotConnected(_)
    ));
    // Without an id there is nothing pending, and the tenant is connected: say so.
    assert!(matches!(
        ok(h.p.poll(None)),
        PollOutcome::Connected(s) if s.connected && s.tier == Some(3)
    ));
    assert_eq!(h.t.count(), 2);
}

#[test]
fn connecting_forgets_every_other_pending_login() {
    let mut h = H::new();
    let older = started(&mut h, 1);
    h.c.advance(1_000);
    let newer = started(&mut h, 2);
    h.t.json(
        200,
        token_body(
            &jwt(2, NOW + 6 * HOUR, "a1"),
            Some("rt-SECRET-1"),
            Some(21_600),
        ),
    );
    assert!(matches!(
        ok(h.p.poll(Some(&newer))),
        PollOutcome::Connected(_)
    ));
    assert!(h.s.keys().iter().all(|k| !k.starts_with("pending.")));
    let sent = h.t.count();
    // The older device code is never redeemed after the tenant connected.
    assert!(matches!(
        err(h.p.poll(Some(&older))),
        ProviderError::NotConnected(_)
    ));
    assert_eq!(h.t.count(), sent);
}

#[test]
fn a_poll_waits_for_the_credentials_lock_before_using_the_device_code() {
    let mut h = H::new();
    let id = started(&mut h, 1);
    let sent = h.t.count();
    // Another process is refreshing (it holds the credentials lock past our wait).
    let held = {
        use grok_provider_core::io::SecretStore;
        let mut store = h.s.clone();
        store.lock("credentials", 0).unwrap()
    };
    let e = err(h.p.poll(Some(&id)));
    assert!(matches!(e, ProviderError::UpstreamUnavailable(_)), "{e:?}");
    assert_eq!(h.t.count(), sent, "the device code was not sent");
    assert!(
        h.s.keys().contains(&format!("pending.{id}")),
        "the login is still pending"
    );
    drop(held);
    h.t.json(
        200,
        token_body(
            &jwt(1, NOW + 6 * HOUR, "a1"),
            Some("rt-SECRET-1"),
            Some(21_600),
        ),
    );
    assert!(matches!(ok(h.p.poll(Some(&id))), PollOutcome::Connected(_)));
}

#[test]
fn relogin_bumps_the_generation_and_drops_the_model_cache() {
    let mut h = H::connected(1);
    for key in ["models.api", "models.subscription"] {
        h.s.put(key, br#"{"fetched_at_ms":0,"models":[],"media_models":[]}"#);
    }
    let id = started(&mut h, 2);
    h.t.json(200, token_body(&jwt(4, NOW + HOUR, "a2"), None, None));
    ok(h.p.poll(Some(&id)));
    let c = h.creds();
    assert_eq!(
        (c.generation, c.tier, c.expires_at_ms),
        (2, Some(4), (NOW + HOUR) / 1000 * 1000)
    );
    // A fresh login never inherits the previous login's refresh token.
    assert_eq!(c.refresh_token, None);
    assert!(h.s.raw("models.api").is_none() && h.s.raw("models.subscription").is_none());
}

#[test]
fn poll_without_id_takes_the_newest_flow() {
    let mut h = H::new();
    let _old = started(&mut h, 1);
    h.c.advance(1_000);
    let new = started(&mut h, 2);
    h.t.json(400, json!({"error": "authorization_pending"}));
    assert_eq!(pending(ok(h.p.poll(None))).pending_id, new);
    assert_eq!(form(&h.t.requests()[2])["device_code"], "dc-SECRET-2");
}

#[test]
fn unusable_token_answers() {
    let mut h = H::new();
    let id = started(&mut h, 1);
    h.t.json(200, json!({"token_type": "Bearer"}));
    assert!(matches!(
        err(h.p.poll(Some(&id))),
        ProviderError::InvalidResponse(_)
    ));
    // The code was consumed either way.
    assert!(h.s.keys().iter().all(|k| !k.starts_with("pending.")));
    assert!(h.s.raw("credentials").is_none());
}

#[test]
fn a_new_login_over_a_revoked_one_is_connected() {
    let mut h = H::connected(1);
    h.t.json(400, json!({"error": "invalid_grant"}));
    err(h.p.refresh());
    assert!(h.s.raw("credentials-revoked").is_some());
    let id = started(&mut h, 1);
    h.c.advance(5_000);
    let access = jwt(1, NOW + 6 * HOUR, "a9");
    h.t.json(200, token_body(&access, Some("rt-SECRET-9"), Some(21_600)));
    h.t.json(200, models_body());
    let PollOutcome::Connected(status) = ok(h.p.poll(Some(&id))) else {
        panic!("not connected")
    };
    assert!(status.connected);
    assert!(h.s.raw("credentials-revoked").is_none());
    assert!(h.creds().generation > 1);
}
