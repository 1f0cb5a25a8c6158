//! Discovery and `start`.

use grok_provider_core::{Method, ProviderError, TransportError};
use serde_json::json;

use crate::*;

fn device_body() -> serde_json::Value {
    json!({
        "device_code": "dc-SECRET-1",
        "user_code": "ABCD-1234",
        "verification_uri": "https://accounts.x.ai/oauth2/device",
        "expires_in": 1800,
        "interval": 5
    })
}

#[test]
fn start_discovers_then_requests_a_device_code() {
    let mut h = H::bare();
    h.t.json(200, discovery_doc());
    h.t.json(200, device_body());
    let prompt = ok(h.p.start());

    // The complete URL is built when the server omits it.
    assert_eq!(
        prompt.verification_url_with_code,
        "https://accounts.x.ai/oauth2/device?user_code=ABCD-1234"
    );
    assert_eq!(
        prompt.verification_url,
        "https://accounts.x.ai/oauth2/device"
    );
    assert_eq!(prompt.user_code, "ABCD-1234");
    assert_eq!(
        (prompt.expires_in_seconds, prompt.interval_seconds),
        (1800, 5)
    );
    assert_eq!(prompt.pending_id.len(), 32);
    assert!(prompt.pending_id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(
        !serde_json::to_string(&prompt)
            .unwrap()
            .contains("dc-SECRET")
    );

    let reqs = h.t.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(
        (reqs[0].method, reqs[0].url.as_str()),
        (Method::Get, DISCOVERY_URL)
    );
    assert_eq!(header(&reqs[0], "user-agent").as_deref(), Some(UA));
    assert_eq!(
        header(&reqs[0], "accept").as_deref(),
        Some("application/json")
    );
    assert_eq!(
        (reqs[1].method, reqs[1].url.as_str()),
        (Method::Post, DEVICE_URL)
    );
    assert_eq!(
        header(&reqs[1], "content-type").as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        header(&reqs[1], "accept").as_deref(),
        Some("application/json")
    );
    assert_eq!(header(&reqs[1], "user-agent").as_deref(), Some(UA));
    let f = form(&reqs[1]);
    assert_eq!(
        f.get("client_id").map(String::as_str),
        Some("b1a00492-073a-47ea-816f-4c329264a828")
    );
    assert_eq!(
        f.get("scope").map(String::as_str),
        Some("openid profile email offline_access grok-cli:access api:access")
    );
    assert_eq!(f.len(), 2);

    // The flow is stored, with its device code, under pending.<id>.
    let flow =
        h.s.json(&format!("pending.{}", prompt.pending_id))
            .expect("flow stored");
    assert_eq!(flow["device_code"], "dc-SECRET-1");
    assert_eq!(flow["expires_at_ms"], NOW + 1_800_000);
    assert_eq!(flow["last_poll_ms"], serde_json::Value::Null);
    assert_eq!(h.s.json("discovery").unwrap()["fetched_at_ms"], NOW);
}

#[test]
fn discovery_is_cached_for_an_hour() {
    let mut h = H::bare();
    h.t.json(200, discovery_doc());
    h.t.json(200, device_body());
    let first = ok(h.p.start());
    h.c.advance(HOUR - 1);
    h.t.json(200, device_body());
    let second = ok(h.p.start());
    assert_ne!(first.pending_id, second.pending_id);
    assert_eq!(h.t.count(), 3, "no second discovery within the hour");
    h.c.advance(1);
    h.t.json(200, discovery_doc());
    h.t.json(200, device_body());
    ok(h.p.start());
    assert_eq!(h.t.requests()[3].url, DISCOVERY_URL);
}

#[test]
fn stale_discovery_is_used_when_the_issuer_is_down() {
    let mut h = H::new();
    h.c.advance(2 * HOUR);
    h.t.fail(TransportError::Failed("dns".into()));
    h.t.json(200, device_body());
    ok(h.p.start());
    assert_eq!(h.t.requests()[1].url, DEVICE_URL);
    // Without a cache the failure is reported.
    let mut h = H::bare();
    h.t.reply(503, "down");
    assert!(matches!(
        err(h.p.start()),
        ProviderError::UpstreamUnavailable(_)
    ));
}

#[test]
fn discovery_refuses_foreign_endpoints() {
    for (field, value) in [
        ("token_endpoint", "https://evil.example/oauth2/token"),
        (
            "device_authorization_endpoint",
            "https://auth.x.ai.evil.example/device",
        ),
        ("device_authorization_endpoint", "http://auth.x.ai/device"),
        ("revocation_endpoint", "https://x.ai@evil.example/revoke"),
    ] {
        let mut h = H::bare();
        let mut doc = discovery_doc();
        doc[field] = json!(value);
        h.t.json(200, doc);
        let e = err(h.p.start());
        assert!(
            matches!(e, ProviderError::InvalidResponse(_)),
            "{field}={value}: {e:?}"
        );
        assert_eq!(h.t.count(), 1, "nothing sent to {value}");
        assert!(h.s.raw("discovery").is_none());
    }
    // Other x.ai https hosts are fine.
    let mut h = H::bare();
    let mut doc = discovery_doc();
    doc["device_authorization_endpoint"] = json!("https://accounts.x.ai/device");
    h.t.json(200, doc);
    h.t.json(200, device_body());
    ok(h.p.start());
    assert_eq!(h.t.requests()[1].url, "https://accounts.x.ai/device");
}

#[test]
fn discovery_failures() {
    let mut h = H::bare();
    h.t.reply(200, "<html>challenge</html>");
    assert!(matches!(
        err(h.p.start()),
        ProviderError::InvalidResponse(_)
    ));
    let mut h = H::bare();
    h.t.reply(404, "");
    assert!(matches!(err(h.p.start()), ProviderError::InvalidResponse(m) if m.contains("404")));
    let mut h = H::bare();
    h.t.reply_h(302, &[("location", "https://evil.example/")], "");
    assert!(
        matches!(err(h.p.start()), ProviderError::InvalidResponse(m) if m.contains("redirect"))
    );
}

#[test]
fn access_denied_at_the_device_endpoint_is_the_account_gate() {
    let mut h = H::new();
    h.t.json(403, json!({"error": "access_denied"}));
    let e = err(h.p.start());
    assert!(
        matches!(&e, ProviderError::AccessDenied(m) if m.contains("BYOK") && m.contains("do not retry")),
        "{e:?}"
    );
    assert!(h.s.keys().iter().all(|k| !k.starts_with("pending.")));
}

#[test]
fn device_flow_not_offered_or_disabled() {
    let mut h = H::bare();
    let mut doc = discovery_doc();
    doc.as_object_mut()
        .unwrap()
        .remove("device_authorization_endpoint");
    h.t.json(200, doc);
    assert_eq!(
        err(h.p.start()),
        ProviderError::InvalidResponse("device flow not offered".into())
    );

    let mut h = H::new();
    h.t.reply(404, "not found");
    assert_eq!(
        err(h.p.start()),
        ProviderError::InvalidResponse("device flow disabled".into())
    );
    assert!(h.s.keys().iter().all(|k| !k.starts_with("pending.")));
}

#[test]
fn device_answer_validation() {
    let cases = [
        ("user_code", json!("ABCD 1234")),
        ("user_code", json!("<script>")),
        ("verification_uri", json!("http://accounts.x.ai/device")),
        ("verification_uri", json!("file:///etc/passwd")),
        (
            "verification_uri_complete",
            json!("http://evil.example/?user_code=ABCD-1234"),
        ),
        ("device_code", json!(null)),
    ];
    for (field, value) in cases {
        let mut h = H::new();
        let mut body = device_body();
        body[field] = value.clone();
        h.t.json(200, body);
        assert!(
            matches!(err(h.p.start()), ProviderError::InvalidResponse(_)),
            "{field}={value}"
        );
    }
    // Loopback http is allowed (local test issuers), complete URL kept as given.
    let mut h = H::new();
    let mut body = device_body();
    body["verification_uri"] = json!("http://127.0.0.1:8080/device?lang=en");
    body["verification_uri_complete"] = json!("http://localhost:8080/device?code=ABCD-1234");
    body.as_object_mut().unwrap().remove("interval");
    body.as_object_mut().unwrap().remove("expires_in");
    h.t.json(200, body);
    let p = ok(h.p.start());
    assert_eq!(
        p.verification_url_with_code,
        "http://localhost:8080/device?code=ABCD-1234"
    );
    assert_eq!((p.interval_seconds, p.expires_in_seconds), (5, 600));
    // Built with & when the page already has a query.
    let mut h = H::new();
    let mut body = device_body();
    body["verification_uri"] = json!("https://accounts.x.ai/device?lang=en");
    h.t.json(200, body);
    assert_eq!(
        ok(h.p.start()).verification_url_with_code,
        "https://accounts.x.ai/device?lang=en&user_code=ABCD-1234"
    );
}

#[test]
fn device_endpoint_errors() {
    let mut h = H::new();
    h.t.reply_h(429, &[("retry-after", "12")], "slow down");
    assert_eq!(
        err(h.p.start()),
        ProviderError::RateLimited {
            message: "device authorization: slow down".into(),
            retry_after_seconds: Some(12),
            alternatives: vec![],
        }
    );
    let mut h = H::new();
    h.t.json(
        400,
        json!({"error": "invalid_client", "error_description": "unknown client"}),
    );
    assert!(
        matches!(err(h.p.start()), ProviderError::InvalidResponse(m) if m.contains("invalid_client") && m.contains("unknown client"))
    );
    let mut h = H::new();
    h.t.json(200, json!({"error": "unauthorized_client"}));
    assert!(
        matches!(err(h.p.start()), ProviderError::InvalidResponse(m) if m.contains("unauthorized_client"))
    );
    let mut h = H::new();
    h.t.reply(502, "bad gateway");
    assert!(matches!(
        err(h.p.start()),
        ProviderError::UpstreamUnavailable(_)
    ));
    let mut h = H::new();
    h.t.fail(TransportError::Denied("not allowed".into()));
    assert_eq!(
        err(h.p.start()),
        ProviderError::DeniedBySandbox("not allowed".into())
    );
}

#[test]
fn start_forgets_expired_flows() {
    let mut h = H::new();
    h.t.json(200, device_body());
    let old = ok(h.p.start());
    h.c.advance(1_800_001);
    h.t.json(200, device_body());
    let new = ok(h.p.start());
    let keys = h.s.keys();
    assert!(!keys.contains(&format!("pending.{}", old.pending_id)));
    assert!(keys.contains(&format!("pending.{}", new.pending_id)));
}
