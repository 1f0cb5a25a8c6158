//! Which route serves a request (the one it names, else its model prefix, else the
//! configured default), per-route model lists and caches, and the routes a refusal names
//! as alternatives (never switched to silently).

use grok_provider_core::{ChatRequest, Lane, ProviderError};
use serde_json::json;

use crate::chat::simple_request;
use crate::stream::{CC, SSE};
use crate::*;

fn chat_ok() -> serde_json::Value {
    json!({"model": "grok-4.3", "choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}]})
}

fn on(route: Option<&str>, model: &str) -> ChatRequest {
    ChatRequest {
        route: route.map(str::to_owned),
        ..simple_request(model)
    }
}

fn bearer(h: &H, i: usize) -> Option<String> {
    header(&h.t.requests()[i], "authorization")
}

#[test]
fn the_named_route_else_the_prefix_else_the_default() {
    let mut h = H::connected(1).with_key();
    let oauth = format!("Bearer {}", h.creds().access_token.expose());
    let key = format!("Bearer {API_KEY}");

    // Bare model, no route: the default route (api).
    h.t.json(200, chat_ok());
    let r = ok(h.p.chat(&on(None, "grok-4.3")));
    assert_eq!(
        (r.route.as_str(), r.model.as_str()),
        ("api", "xai-grok/grok-4.3")
    );
    assert_eq!(h.t.requests()[0].url, CHAT_URL);
    assert_eq!(bearer(&h, 0), Some(oauth.clone()));

    // The prefix names the route.
    h.t.json(200, chat_ok());
    let r = ok(h.p.chat(&on(None, "xai/grok-4.3")));
    assert_eq!(
        (r.route.as_str(), r.model.as_str()),
        ("api-key", "xai/grok-4.3")
    );
    assert_eq!(h.t.requests()[1].url, CHAT_URL);
    assert_eq!(bearer(&h, 1), Some(key.clone()));
    assert_eq!(body_json(&h.t.requests()[1])["model"], "grok-4.3");

    // The request names it; a prefix that agrees is fine.
    h.t.json(200, chat_ok());
    assert_eq!(
        ok(h.p.chat(&on(Some("api-key"), "grok-4.3"))).route,
        "api-key"
    );
    h.t.json(200, chat_ok());
    assert_eq!(
        ok(h.p.chat(&on(Some("api"), "xai-grok/grok-4.3"))).route,
        "api"
    );
    assert_eq!(bearer(&h, 2), Some(key));
    assert_eq!(bearer(&h, 3), Some(oauth));

    // Streams follow the same rules.
    let mut body = Some(fakes::FakeBody::bytes(CC.as_bytes()));
    h.t.push(move |_| Ok(fakes::response(200, &[SSE], body.take().unwrap())));
    let s = ok(h.p.open_chat_stream(&on(None, "xai/grok-4.3")));
    assert_eq!(
        (s.model(), s.route().map(|r| r.name())),
        ("xai/grok-4.3", Some("api-key"))
    );
    assert_eq!(bearer(&h, 4), Some(format!("Bearer {API_KEY}")));
}

#[test]
fn contradictions_and_unknown_routes_are_refused_before_sending() {
    let mut h = H::connected(1).with_key();
    for (route, model, needle) in [
        (Some("api"), "xai/grok-4.3", "names the route api-key"),
        (
            Some("api-key"),
            "xai-grok-sub/grok-4.3",
            "names the route subscription",
        ),
        (Some("premium"), "grok-4.3", "unknown route \"premium\""),
    ] {
        let e = err(h.p.chat(&on(route, model)));
        assert!(
            matches!(&e, ProviderError::InvalidInput(m) if m.contains(needle) && m.contains("subscription, api, api-key")),
            "{e:?}"
        );
        let e = err(h.p.open_chat_stream(&on(route, model)).map(|_| ()));
        assert!(matches!(e, ProviderError::InvalidInput(_)), "{e:?}");
    }
    assert!(matches!(
        err(h.p.models(false, Some("premium"))),
        ProviderError::InvalidInput(m) if m.contains("subscription, api, api-key")
    ));
    assert!(matches!(
        err(h.p.usage(Some("premium"))),
        ProviderError::InvalidInput(_)
    ));
    assert_eq!(h.t.count(), 0);
}

#[test]
fn the_configured_default_route_takes_bare_models() {
    let mut h = H::connected(1)
        .with_key()
        .configured(&[("default-route", "api-key")]);
    h.t.json(200, chat_ok());
    let r = ok(h.p.chat(&on(None, "grok-4.3")));
    assert_eq!(
        (r.route.as_str(), r.model.as_str()),
        ("api-key", "xai/grok-4.3")
    );
    assert_eq!(bearer(&h, 0), Some(format!("Bearer {API_KEY}")));
    // A prefix still wins over the default.
    h.t.json(200, chat_ok());
    assert_eq!(ok(h.p.chat(&on(None, "xai-grok/grok-4.3"))).route, "api");
    // And so does `models` without a route, and `status`.
    h.t.json(200, models_body());
    let list = ok(h.p.models(false, None));
    assert_eq!(
        (list.route.as_str(), list.default_model_id.as_str()),
        ("api-key", "xai/grok-4.3")
    );
    let s = ok(h.p.status());
    assert_eq!(s.default_route, "api-key");
    assert_eq!(s.default_model_id.as_deref(), Some("xai/grok-4.3"));
    assert!(
        s.models
            .iter()
            .all(|m| m.id.starts_with("xai/") && m.route == "api-key")
    );
    assert_eq!(h.t.count(), 3, "status answered from the cache");
}

#[test]
fn each_route_lists_its_own_models_in_its_own_cache() {
    let mut h = H::connected(4).with_key();
    h.t.json(200, models_body());
    h.t.json(200, models_body());
    h.t.json(200, models_body());
    let api = ok(h.p.models(false, Some("api")));
    let sub = ok(h.p.models(false, Some("subscription")));
    let key = ok(h.p.models(false, Some("api-key")));
    let reqs = h.t.requests();
    assert_eq!(
        reqs.iter().map(|r| r.url.as_str()).collect::<Vec<_>>(),
        [MODELS_URL, SUB_MODELS_URL, MODELS_URL]
    );
    assert_eq!(
        header(&reqs[2], "authorization"),
        Some(format!("Bearer {API_KEY}"))
    );
    for (list, route, prefix) in [
        (&api, "api", "xai-grok/"),
        (&sub, "subscription", "xai-grok-sub/"),
        (&key, "api-key", "xai/"),
    ] {
        assert_eq!(list.route, route);
        assert_eq!(list.default_model_id, format!("{prefix}grok-4.3"));
        for m in list.models.iter().chain(&list.media_models) {
            assert!(m.id.starts_with(prefix) && m.route == route, "{m:?}");
        }
        assert_eq!(list.models[2].lane, Lane::Responses);
    }
    for key in ["models.api", "models.subscription", "models.api-key"] {
        assert!(h.s.raw(key).is_some(), "{key}");
    }
    // Each from its own cache now.
    for route in ["api", "subscription", "api-key"] {
        let again = ok(h.p.models(false, Some(route)));
        assert!(again.cached && again.route == route);
    }
    assert_eq!(h.t.count(), 3);
    // A listed id serves chat on the route it was listed for.
    h.t.json(200, chat_ok());
    assert_eq!(
        ok(h.p.chat(&simple_request(&key.models[0].id))).route,
        "api-key"
    );
}

#[test]
fn a_route_without_its_credential_is_not_connected() {
    let mut h = H::connected(1);
    let e = err(h.p.models(false, Some("api-key")));
    assert!(
        matches!(&e, ProviderError::NotConnected(m) if m.contains("set-api-key")),
        "{e:?}"
    );
    let e = err(h.p.chat(&on(Some("api-key"), "grok-4.3")));
    assert!(matches!(e, ProviderError::NotConnected(_)), "{e:?}");
    let mut h = H::key_only();
    for route in ["api", "subscription"] {
        let e = err(h.p.models(false, Some(route)));
        assert!(
            matches!(&e, ProviderError::NotConnected(m) if m.contains("call start")),
            "{e:?}"
        );
    }
    assert_eq!(h.t.count(), 0);
}

#[test]
fn status_reports_every_route() {
    let mut h = H::connected(2);
    h.t.json(200, models_body());
    let s = ok(h.p.status());
    assert!(s.connected && !s.api_key_stored);
    assert_eq!(s.default_route, "api");
    assert_eq!(
        s.routes
            .iter()
            .map(|r| (r.name.as_str(), r.usable, r.detail.is_some()))
            .collect::<Vec<_>>(),
        [
            ("subscription", true, false),
            ("api", true, false),
            ("api-key", false, true)
        ]
    );
    assert!(
        s.routes[2]
            .detail
            .as_deref()
            .unwrap()
            .contains("set-api-key")
    );

    // Only a key: not connected, the api-key route usable, and no network.
    let mut h = H::key_only();
    let s = ok(h.p.status());
    assert!(!s.connected && s.api_key_stored);
    assert_eq!(
        s.routes.iter().map(|r| r.usable).collect::<Vec<_>>(),
        [false, false, true]
    );
    assert!(s.models.is_empty() && s.default_model_id.is_none());
    assert_eq!(h.t.count(), 0);

    // An unreadable key is stored but not usable.
    let mut h = H::connected(1);
    h.s.put("api-key", b"garbage");
    h.t.json(200, models_body());
    let s = ok(h.p.status());
    assert!(s.api_key_stored && !s.routes[2].usable);
    assert!(
        s.routes[2]
            .detail
            .as_deref()
            .unwrap()
            .contains("unreadable")
    );
}

#[test]
fn quota_refusals_name_the_route_and_the_alternatives_stored_first() {
    let quota_bodies = [
        (
            429,
            json!({"code": "subscription:free-usage-exhausted", "error": "Free usage exhausted"}),
        ),
        (
            403,
            json!({"code": "subscription:free-usage-exhausted", "error": "Free usage exhausted"}),
        ),
        (
            402,
            json!({"code": "personal-team-blocked:spending-limit", "error": "Spending limit reached"}),
        ),
    ];
    for (status, body) in &quota_bodies {
        // OAuth only: on api, subscription (stored) comes before api-key (not stored).
        let mut h = H::connected(1);
        h.t.json(*status, body.clone());
        assert_eq!(
            err(h.p.chat(&simple_request("grok-4.3"))),
            ProviderError::QuotaExhausted {
                message: body["error"].as_str().unwrap().into(),
                route: "api".into(),
                alternatives: vec!["subscription".into(), "api-key".into()],
            },
            "{status}"
        );
        assert_eq!(h.t.count(), 1, "never retried, never switched");

        // A key only: on api-key, nothing else is stored.
        let mut h = H::key_only();
        h.t.json(*status, body.clone());
        assert!(matches!(
            err(h.p.chat(&simple_request("xai/grok-4.3"))),
            ProviderError::QuotaExhausted { route, alternatives, .. }
                if route == "api-key" && alternatives == ["subscription", "api"]
        ));

        // Both: on subscription, both others are stored (manifest order).
        let mut h = H::connected(1).with_key();
        let mut sse = Some(fakes::FakeBody::bytes(body.to_string().as_bytes()));
        let status = *status;
        h.t.push(move |_| Ok(fakes::response(status, &[], sse.take().unwrap())));
        assert!(matches!(
            err(h.p.chat(&simple_request("xai-grok-sub/grok-4.3"))),
            ProviderError::QuotaExhausted { route, alternatives, .. }
                if route == "subscription" && alternatives == ["api", "api-key"]
        ));
    }

    // `models` too.
    let mut h = H::connected(1).with_key();
    h.t.json(402, json!({"error": "payment required"}));
    assert!(matches!(
        err(h.p.models(true, Some("api-key"))),
        ProviderError::QuotaExhausted { route, alternatives, .. }
            if route == "api-key" && alternatives == ["subscription", "api"]
    ));
}

#[test]
fn rate_limits_keep_retry_after_and_suggest_the_other_routes() {
    let mut h = H::connected(1).with_key();
    h.t.reply_h(
        429,
        &[("retry-after", "17")],
        r#"{"error":"Rate limit exceeded"}"#,
    );
    assert_eq!(
        err(h.p.chat(&simple_request("grok-4.3"))),
        ProviderError::RateLimited {
            message: "Rate limit exceeded".into(),
            retry_after_seconds: Some(17),
            alternatives: vec!["subscription".into(), "api-key".into()],
        }
    );
    let mut h = H::connected(1);
    h.t.reply_h(429, &[], r#"{"error":"slow"}"#);
    assert!(matches!(
        err(h.p.models(true, Some("subscription"))),
        ProviderError::RateLimited { alternatives, .. } if alternatives == ["api", "api-key"]
    ));
    assert_eq!(h.t.count(), 1);
}

#[test]
fn a_quota_refusal_mid_stream_names_its_route() {
    let mut h = H::connected(1).with_key();
    let body = concat!(
        "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n",
        "data: {\"error\":{\"code\":\"subscription:free-usage-exhausted\",\"message\":\"Free usage exhausted\"}}\n\n",
    );
    let mut b = Some(fakes::FakeBody::bytes(body.as_bytes()));
    h.t.push(move |_| Ok(fakes::response(200, &[SSE], b.take().unwrap())));
    let mut s = ok(h.p.open_chat_stream(&simple_request("grok-4.3")));
    assert!(matches!(s.next_chunk(), Ok(Some(_))));
    let e = err(s.next_chunk());
    assert!(
        matches!(&e, ProviderError::QuotaExhausted { route, alternatives, .. } if route == "api" && alternatives.is_empty()),
        "{e:?}"
    );
    // The provider names the alternatives (the component does this for `next`).
    let e = h.p.in_route(s.route().unwrap(), e);
    assert!(
        matches!(&e, ProviderError::QuotaExhausted { alternatives, .. } if alternatives == &["subscription", "api-key"]),
        "{e:?}"
    );
}
