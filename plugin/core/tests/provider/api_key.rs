//! The API key (BYOK): stored apart from the OAuth login, each untouched by the other's
//! operations; never refreshed; a secret no error shows.

use grok_provider_core::{ApiKeyInfo, ProviderError};
use serde_json::json;

use crate::chat::simple_request;
use crate::fakes::{FakeBody, response};
use crate::stream::SSE;
use crate::*;

#[test]
fn set_describe_and_delete() {
    let mut h = H::new();
    assert_eq!(ok(h.p.api_key_status()), ApiKeyInfo::default());
    let info = ok(h.p.set_api_key(API_KEY));
    assert_eq!(
        (info.stored, info.last_four.as_deref()),
        (true, Some("KEY9"))
    );
    assert_eq!(ok(h.p.api_key_status()), info);
    // Replaced whole.
    let info = ok(h.p.set_api_key("xai-another-key-0000"));
    assert_eq!(info.last_four.as_deref(), Some("0000"));
    assert_eq!(ok(h.p.delete_api_key()), ApiKeyInfo::default());
    assert_eq!(ok(h.p.delete_api_key()), ApiKeyInfo::default());
    assert!(h.s.raw("api-key").is_none());
    assert_eq!(h.t.count(), 0);
    assert!(
        h.s.locks_taken().is_empty(),
        "one atomic write needs no lock"
    );
}

#[test]
fn keys_are_validated_without_being_quoted() {
    let mut h = H::new();
    for bad in [
        String::new(),
        "xai-SECRET with space".into(),
        "xai-SECRET\nline".into(),
        "xai-SECRET\u{e9}".into(),
        format!("xai-SECRET{}", "k".repeat(600)),
    ] {
        let e = err(h.p.set_api_key(&bad));
        assert!(matches!(e, ProviderError::InvalidInput(_)), "{e:?}");
    }
    assert!(h.s.raw("api-key").is_none());
}

#[test]
fn oauth_and_the_key_never_touch_each_other() {
    // Logout keeps the key (and its model cache).
    let mut h = H::connected(1).with_key();
    h.t.json(200, models_body());
    ok(h.p.models(false, Some("api-key")));
    h.t.reply(200, "");
    assert!(ok(h.p.logout()).was_connected);
    assert!(ok(h.p.api_key_status()).stored);
    assert!(h.s.raw("models.api-key").is_some());
    assert!(h.s.raw("credentials").is_none());

    // A login keeps it too.
    let mut h = H::new().with_key();
    h.t.json(200, json!({"device_code": "dc-SECRET", "user_code": "ABCD-EFGH", "verification_uri": "https://accounts.x.ai/device", "interval": 5, "expires_in": 600}));
    let prompt = ok(h.p.start());
    h.t.json(
        200,
        token_body(&jwt(2, NOW + HOUR, "a9"), Some("rt-SECRET-9"), Some(3600)),
    );
    ok(h.p.poll(Some(&prompt.pending_id)));
    assert!(ok(h.p.api_key_status()).stored);

    // Deleting or replacing the key keeps the login, and drops only the key's models.
    let mut h = H::connected(1).with_key();
    let before = h.creds();
    h.t.json(200, models_body());
    h.t.json(200, models_body());
    ok(h.p.models(false, Some("api")));
    ok(h.p.models(false, Some("api-key")));
    ok(h.p.set_api_key("xai-replacement-key-1111"));
    assert!(h.s.raw("models.api-key").is_none());
    h.t.json(200, models_body());
    ok(h.p.models(false, Some("api-key")));
    ok(h.p.delete_api_key());
    assert!(h.creds() == before);
    assert!(h.s.raw("models.api").is_some() && h.s.raw("models.api-key").is_none());
    assert!(ok(h.p.status()).connected);
}

#[test]
fn a_refused_key_is_never_refreshed() {
    for (status, body) in [
        (401, json!({"error": "Incorrect API key provided"})),
        (
            403,
            json!({"code": "unauthenticated:bad-credentials", "error": "bad key"}),
        ),
    ] {
        let mut h = H::connected(1).with_key();
        h.t.json(status, body);
        let e = err(h.p.chat(&simple_request("xai/grok-4.3")));
        assert!(
            matches!(&e, ProviderError::Unauthorized(m) if m.contains("check or replace the key (console.x.ai)")),
            "{e:?}"
        );
        assert_eq!(h.t.count(), 1, "no token request, no retry");
        assert_eq!(h.creds().generation, 1);
        assert!(
            ok(h.p.api_key_status()).stored,
            "a refused key stays until replaced"
        );
    }
    // An expired OAuth token is not refreshed for an api-key request either.
    let mut h = H::connected(1).with_key();
    h.travel(NOW + 6 * HOUR);
    h.t.json(200, json!({"choices": [{"message": {"content": "ok"}}]}));
    ok(h.p.chat(&simple_request("xai/grok-4.3")));
    assert_eq!(h.t.count(), 1);
}

#[test]
fn the_key_is_redacted_from_upstream_echoes() {
    let piece = &API_KEY[4..28];
    // An error body quoting the key, whole and in part.
    for body in [
        json!({"error": format!("Incorrect API key provided: {API_KEY}")}),
        json!({"error": format!("no team for key '{piece}'")}),
    ] {
        let mut h = H::key_only();
        h.t.json(400, body);
        let e = err(h.p.chat(&simple_request("xai/grok-4.3")));
        assert!(
            matches!(&e, ProviderError::InvalidInput(m) if m.contains("[redacted]")),
            "{e:?}"
        );
    }
    // A failed response and a stream error echoing it.
    let mut h = H::key_only();
    h.t.json(
        200,
        json!({"status": "failed", "error": {"code": "server_error", "message": format!("bad bearer {piece}")}}),
    );
    let e = err(h.p.chat(&simple_request("xai/grok-4.20-multi-agent-0309")));
    assert!(e.to_string().contains("[redacted]"), "{e}");
    let mut h = H::key_only();
    let event = format!(
        "data: {{\"error\": {{\"code\": \"server_error\", \"message\": \"bearer {piece} refused\"}}}}\n\n"
    );
    let mut b = Some(FakeBody::bytes(event.as_bytes()));
    h.t.push(move |_| Ok(response(200, &[SSE], b.take().unwrap())));
    let mut s = ok(h.p.open_chat_stream(&simple_request("xai/grok-4.3")));
    let e = err(s.next_chunk());
    assert!(e.to_string().contains("[redacted]"), "{e}");
    // A 401 echoing it.
    let mut h = H::key_only();
    h.t.json(401, json!({"error": format!("key {piece} is revoked")}));
    let e = err(h.p.models(true, Some("api-key")));
    assert!(
        matches!(&e, ProviderError::Unauthorized(m) if m.contains("[redacted]")),
        "{e:?}"
    );
}
