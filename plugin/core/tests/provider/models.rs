//! `models` and the model part of `status`.

use grok_provider_core::{Lane, ProviderError, TransportError};
use serde_json::json;

use crate::*;

#[test]
fn fetches_splits_and_caches() {
    let mut h = H::connected(4);
    h.t.json(200, models_body());
    let list = ok(h.p.models(false, None));
    let req = &h.t.requests()[0];
    assert_eq!(req.url, MODELS_URL);
    assert_eq!(
        header(req, "authorization"),
        Some(format!("Bearer {}", h.creds().access_token.expose()))
    );
    assert_eq!(header(req, "accept").as_deref(), Some("application/json"));
    assert_eq!(header(req, "user-agent").as_deref(), Some(UA));

    let ids: Vec<(&str, Lane)> = list
        .models
        .iter()
        .map(|m| (m.id.as_str(), m.lane))
        .collect();
    assert_eq!(
        ids,
        vec![
            ("xai-grok/grok-4.3", Lane::ChatCompletions),
            ("xai-grok/grok-4.20-0309-reasoning", Lane::ChatCompletions),
            ("xai-grok/grok-4.20-multi-agent-0309", Lane::Responses),
        ]
    );
    let media: Vec<(&str, Lane)> = list
        .media_models
        .iter()
        .map(|m| (m.id.as_str(), m.lane))
        .collect();
    assert_eq!(
        media,
        vec![
            ("xai-grok/grok-imagine-image", Lane::Media),
            ("xai-grok/grok-imagine-video", Lane::Media)
        ]
    );
    assert_eq!(list.models[0].created, Some(1_750_000_000));
    assert_eq!(list.models[0].owned_by.as_deref(), Some("xai"));
    assert_eq!(list.default_model_id, DEFAULT_MODEL_ID);
    assert_eq!((list.cached, list.fetched_at), (false, NOW / 1000));

    // Cached for an hour.
    h.c.advance(HOUR - 1);
    let again = ok(h.p.models(false, None));
    assert!(again.cached);
    assert_eq!(again.models, list.models);
    assert_eq!(h.t.count(), 1);
    // force bypasses the cache.
    h.t.json(200, models_body());
    assert!(!ok(h.p.models(true, None)).cached);
    assert_eq!(h.t.count(), 2);
    // Stale after the TTL.
    h.c.advance(HOUR);
    h.t.json(200, json!({"data": [{"id": "grok-4.6"}]}));
    let l = ok(h.p.models(false, None));
    assert_eq!(
        (l.cached, l.default_model_id.as_str()),
        (false, "xai-grok/grok-4.6")
    );
}

#[test]
fn cache_of_another_tier_is_ignored() {
    let mut h = H::connected(1);
    h.t.json(200, models_body());
    ok(h.p.models(false, None));
    let mut c = h.creds();
    c.tier = Some(4);
    h.set_creds(c);
    h.t.json(200, models_body());
    assert!(!ok(h.p.models(false, None)).cached);
    assert_eq!(h.t.count(), 2);
}

#[test]
fn models_errors() {
    let mut h = H::new();
    assert!(matches!(
        err(h.p.models(false, None)),
        ProviderError::NotConnected(_)
    ));
    let mut h = H::connected(1);
    h.t.json(200, json!({"data": [{"object": "model"}]}));
    assert!(matches!(
        err(h.p.models(false, None)),
        ProviderError::InvalidResponse(_)
    ));
    assert!(h.s.raw("models.api").is_none());
}

#[test]
fn status_when_not_connected_touches_nothing() {
    let mut h = H::bare();
    let s = ok(h.p.status());
    assert!(!s.connected && s.models.is_empty() && s.default_model_id.is_none());
    assert_eq!(
        (
            s.tier,
            s.tier_name.as_deref(),
            s.expires_at,
            s.api_key_stored
        ),
        (None, None, None, false)
    );
    assert_eq!(s.default_route, "api");
    assert!(
        s.routes.iter().all(|r| !r.usable && r.detail.is_some()),
        "{s:?}"
    );
    assert_eq!(h.t.count(), 0);
}

#[test]
fn status_uses_the_cache_or_fetches_once() {
    // Fresh cache: no request.
    let mut h = H::connected(2);
    h.t.json(200, models_body());
    ok(h.p.models(false, None));
    let s = ok(h.p.status());
    assert_eq!(s.models.len(), 3);
    assert_eq!(s.default_model_id.as_deref(), Some(DEFAULT_MODEL_ID));
    assert_eq!(
        (s.tier, s.tier_name.as_deref(), s.expires_at),
        (Some(2), Some("X Basic"), Some((NOW + 5 * HOUR) / 1000))
    );
    assert_eq!(h.t.count(), 1);

    // No cache: one best-effort fetch.
    let mut h = H::connected(2);
    h.t.json(200, models_body());
    assert_eq!(ok(h.p.status()).models.len(), 3);
    assert_eq!(h.t.count(), 1);
    assert!(h.s.raw("models.api").is_some());

    // Fetch fails: empty list, no error, no retry loop beyond the API policy.
    let mut h = H::connected(2);
    h.t.fail(TransportError::Failed("offline".into()));
    let s = ok(h.p.status());
    assert!(s.connected && s.models.is_empty());
    assert_eq!(s.default_model_id.as_deref(), Some(DEFAULT_MODEL_ID));
    assert_eq!(h.t.count(), 1);

    // Stale cache of the same tier, fetch fails: the stale list is still shown.
    let mut h = H::connected(2);
    h.t.json(200, models_body());
    ok(h.p.models(false, None));
    h.c.advance(HOUR);
    h.t.reply_h(429, &[], "{}");
    assert_eq!(ok(h.p.status()).models.len(), 3);
}
