//! The subscription rail: the OAuth bearer on its own base, its five client headers on
//! every request, streamed upstream only (a whole reply is a stream assembled), nothing
//! stored upstream, and a refusal for missing headers reported as the plugin bug it is.

use grok_provider_core::{ChatRequest, FinishReason, Lane, ProviderError};
use serde_json::json;

use crate::chat::{simple_request, tool_round_trip};
use crate::fakes::{FakeBody, response};
use crate::stream::{CC, RESP, SSE};
use crate::*;

const RAIL_HEADERS: [(&str, &str); 5] = [
    ("x-xai-token-auth", "xai-grok-cli"),
    ("x-grok-client-identifier", "grok-cli"),
    // A real release of xAI's CLI (the rail's version gate refuses others).
    ("x-grok-client-version", "1.0.6"),
    ("x-grok-client-mode", "headless"),
    ("x-authenticateresponse", "authenticate-response"),
];

fn assert_rail_headers(req: &HttpRequest) {
    for (name, value) in RAIL_HEADERS {
        assert_eq!(
            header(req, name).as_deref(),
            Some(value),
            "{name} on {}",
            req.url
        );
    }
}

fn stream_reply(h: &H, body: &str) {
    let mut b = Some(FakeBody::bytes(body.as_bytes()));
    h.t.push(move |_| Ok(response(200, &[SSE], b.take().unwrap())));
}

#[test]
fn a_whole_reply_is_streamed_upstream_and_assembled() {
    let mut h = H::connected(4);
    stream_reply(&h, CC);
    let r = ok(h.p.chat(&simple_request("xai-grok-sub/grok-4.3")));
    assert_eq!(
        (
            r.content.as_str(),
            r.reasoning.as_deref(),
            r.route.as_str(),
            r.model.as_str()
        ),
        (
            "Hello, w\u{f6}rld",
            Some("hmm"),
            "subscription",
            "xai-grok-sub/grok-4.3"
        )
    );
    assert_eq!(
        (r.lane, r.finish_reason),
        (Lane::ChatCompletions, Some(FinishReason::Stop))
    );
    assert_eq!(r.usage.map(|u| u.total_tokens), Some(7));
    let req = &h.t.requests()[0];
    assert_eq!(req.url, SUB_CHAT_URL);
    assert_eq!(
        header(req, "authorization"),
        Some(format!("Bearer {}", h.creds().access_token.expose()))
    );
    assert_eq!(header(req, "accept").as_deref(), Some("text/event-stream"));
    assert_rail_headers(req);
    let body = body_json(req);
    assert_eq!(
        (&body["stream"], &body["model"]),
        (&json!(true), &json!("grok-4.3"))
    );

    // The Responses lane: streamed, nothing stored, no previous response.
    let mut h = H::connected(4);
    stream_reply(&h, RESP);
    let r =
        ok(h.p.chat(&simple_request("xai-grok-sub/grok-4.20-multi-agent-0309")));
    assert_eq!(
        (r.content.as_str(), r.lane),
        ("Multi-agent \u{2713}", Lane::Responses)
    );
    let req = &h.t.requests()[0];
    assert_eq!(req.url, SUB_RESPONSES_URL);
    assert_rail_headers(req);
    let body = body_json(req);
    assert_eq!(
        (&body["stream"], &body["store"]),
        (&json!(true), &json!(false))
    );
    assert!(body.get("previous_response_id").is_none());
}

#[test]
fn tool_calls_survive_the_assembly() {
    let mut h = H::connected(4);
    let body = concat!(
        "data: {\"choices\":[{\"delta\":{\"content\":\"Checking.\"}}]}\n\n",
        "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"function\":{\"name\":\"weather\",\"arguments\":\"{\\\"city\\\":\"}}]}}]}\n\n",
        "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"\\\"Rome\\\"}\"}}]},\"finish_reason\":\"tool_calls\"}]}\n\n",
        "data: [DONE]\n\n",
    );
    stream_reply(&h, body);
    let r = ok(h.p.chat(&tool_round_trip("xai-grok-sub/grok-4.3")));
    assert_eq!(r.content, "Checking.");
    assert_eq!(r.tool_calls.len(), 1);
    assert_eq!(
        (
            r.tool_calls[0].id.as_str(),
            r.tool_calls[0].name.as_str(),
            r.tool_calls[0].arguments.as_str()
        ),
        ("call_1", "weather", r#"{"city":"Rome"}"#)
    );
    assert_eq!(r.finish_reason, Some(FinishReason::ToolCalls));
}

#[test]
fn every_request_on_the_rail_carries_its_headers() {
    let mut h = H::connected(4);
    h.t.json(200, models_body());
    stream_reply(&h, CC);
    h.t.json(200, json!({"remaining": 1.0}));
    ok(h.p.models(true, Some("subscription")));
    let mut s =
        ok(h.p.open_chat_stream(&simple_request("xai-grok-sub/grok-4.3")));
    while ok(s.next_chunk()).is_some() {}
    ok(h.p.usage(Some("subscription")));
    let reqs = h.t.requests();
    assert_eq!(
        reqs.iter().map(|r| r.url.as_str()).collect::<Vec<_>>(),
        [SUB_MODELS_URL, SUB_CHAT_URL, SUB_BILLING_URL]
    );
    for r in &reqs {
        assert_rail_headers(r);
    }
    // After a refresh the retried request still carries them; other routes never do.
    let mut h = H::connected(4);
    h.t.json(401, json!({"error": "expired"}));
    h.t.json(
        200,
        token_body(
            &jwt(4, NOW + 6 * HOUR, "a2"),
            Some("rt-SECRET-2"),
            Some(21_600),
        ),
    );
    h.t.json(200, models_body());
    h.t.json(200, models_body());
    ok(h.p.models(true, Some("subscription")));
    ok(h.p.models(true, Some("api")));
    let reqs = h.t.requests();
    assert_eq!(
        reqs.iter().map(|r| r.url.as_str()).collect::<Vec<_>>(),
        [SUB_MODELS_URL, TOKEN_URL, SUB_MODELS_URL, MODELS_URL]
    );
    assert_rail_headers(&reqs[0]);
    assert_rail_headers(&reqs[2]);
    for r in [&reqs[1], &reqs[3]] {
        assert!(header(r, "x-xai-token-auth").is_none(), "{}", r.url);
    }
}

#[test]
fn the_rail_headers_and_base_come_from_the_settings() {
    let mut h = H::connected(4).configured(&[
        ("subscription-base", "http://127.0.0.1:9/rail/v1/"),
        ("subscription-token-auth", "other-cli"),
        ("subscription-client-version", "9.9.9"),
    ]);
    h.t.json(200, models_body());
    ok(h.p.models(true, Some("subscription")));
    let req = &h.t.requests()[0];
    assert_eq!(req.url, "http://127.0.0.1:9/rail/v1/models");
    assert_eq!(
        header(req, "x-xai-token-auth").as_deref(),
        Some("other-cli")
    );
    assert_eq!(
        header(req, "x-grok-client-version").as_deref(),
        Some("9.9.9")
    );
    assert_eq!(
        header(req, "x-grok-client-identifier").as_deref(),
        Some("grok-cli")
    );
}

#[test]
fn what_the_rail_refuses_is_refused_by_name() {
    let mut h = H::connected(4);
    for extra in [
        json!({"previous_response_id": "resp_1"}),
        json!({"store": true}),
        json!({"stream": false}),
    ] {
        let req = ChatRequest {
            extra_body: Some(extra.to_string()),
            ..simple_request("xai-grok-sub/grok-4.20-multi-agent-0309")
        };
        let e = err(h.p.chat(&req));
        assert!(
            matches!(e, ProviderError::InvalidInput(_)),
            "{extra}: {e:?}"
        );
    }
    assert_eq!(h.t.count(), 0);
    // Elsewhere a previous response id is the caller's business.
    h.t.json(200, json!({"status": "completed", "output": []}));
    let req = ChatRequest {
        extra_body: Some(json!({"previous_response_id": "resp_1"}).to_string()),
        ..simple_request("grok-4.20-multi-agent-0309")
    };
    ok(h.p.chat(&req));
    assert_eq!(
        body_json(&h.t.requests()[0])["previous_response_id"],
        "resp_1"
    );
}

#[test]
fn missing_rail_headers_are_reported_as_a_plugin_bug() {
    let mut h = H::connected(4);
    h.t.json(
        403,
        json!({"code": "permission-denied", "error": "Missing X-XAI-Token-Auth"}),
    );
    let e = err(h.p.chat(&simple_request("xai-grok-sub/grok-4.3")));
    assert!(
        matches!(&e, ProviderError::InvalidResponse(m) if m.contains("bug in the plugin")),
        "{e:?}"
    );
    assert_eq!(h.t.count(), 1, "no refresh, no retry");
}

#[test]
fn the_version_gate_is_client_outdated_naming_the_setting() {
    let mut h = H::connected(1).with_key();
    h.t.json(
        426,
        json!({"error": "Your Grok CLI version (1.0.6) is outdated. Please update to version 1.2.0 or later via `grok update` or the installation documentation."}),
    );
    let e = err(h.p.chat(&simple_request("xai-grok-sub/grok-4.6")));
    let ProviderError::ClientOutdated(m) = &e else {
        panic!("{e:?}")
    };
    assert!(m.contains("1.2.0 or later"), "{m}");
    assert!(
        m.contains("subscription-client-version") && m.contains("XAI_SUBSCRIPTION_CLIENT_VERSION"),
        "{m}"
    );
    assert!(!m.contains("grok update"), "{m}");
    assert_eq!(h.t.count(), 1, "neither refreshed nor retried");
    // The configured version is what the rail is sent.
    let mut h = H::connected(1).configured(&[
        ("default-route", "api"),
        ("subscription-client-version", "1.0.34"),
    ]);
    stream_reply(&h, CC);
    ok(h.p.chat(&simple_request("xai-grok-sub/grok-4.6")));
    assert_eq!(
        header(&h.t.requests()[0], "x-grok-client-version").as_deref(),
        Some("1.0.34")
    );
}

#[test]
fn quota_shaped_429s_on_the_rail_are_spent_quotas_with_alternatives() {
    for body in [
        json!({"code": 429, "error": "You ran out of credits. [WKE=personal-team-blocked:spending-limit]"}),
        json!({"code": "subscription:free-usage-exhausted", "error": "You've used all the included free usage for model grok-4.5-build-free for now."}),
    ] {
        let mut h = H::connected(1).with_key();
        h.t.json(429, body.clone());
        let e = err(h.p.chat(&simple_request("xai-grok-sub/grok-4.6")));
        assert!(
            matches!(&e, ProviderError::QuotaExhausted { route, alternatives, .. }
                if route == "subscription" && alternatives == &["api", "api-key"]),
            "{body}: {e:?}"
        );
        assert_eq!(h.t.count(), 1);
    }
    // A 402 credit block likewise.
    let mut h = H::connected(1);
    h.t.json(402, json!({"error": "usage balance exhausted"}));
    assert!(matches!(
        err(h.p.chat(&simple_request("xai-grok-sub/grok-4.6"))),
        ProviderError::QuotaExhausted { .. }
    ));
}

#[test]
fn the_default_route_spends_the_subscription_and_status_names_it() {
    let mut h = H::connected(1).defaults();
    h.t.json(
        200,
        json!({"object": "list", "data": [{"id": "grok-4.6"}, {"id": "grok-4.5"}]}),
    );
    h.t.json(
        200,
        json!({"userId": "user-1", "email": "a@example.com", "subscriptionTier": "GrokPro"}),
    );
    let s = ok(h.p.status());
    assert_eq!(s.default_route, "subscription");
    assert_eq!(
        (s.tier_name.as_deref(), s.subscription.as_deref()),
        (Some("SuperGrok"), Some("SuperGrok"))
    );
    let urls: Vec<String> = h.t.requests().into_iter().map(|r| r.url).collect();
    assert_eq!(
        urls,
        [
            SUB_MODELS_URL,
            "https://cli-chat-proxy.grok.com/v1/user?include=subscription"
        ]
    );
    assert_rail_headers(&h.t.requests()[1]);
    // Which pool each route bills.
    let bills: Vec<(&str, &str)> = s
        .routes
        .iter()
        .map(|r| (r.name.as_str(), r.bills.as_str()))
        .collect();
    assert_eq!(bills[0].0, "subscription");
    assert!(bills[0].1.contains("subscription"), "{bills:?}");
    assert!(
        bills[1].1.contains("API pool") && bills[1].1.contains("not the subscription"),
        "{bills:?}"
    );
    // Cached like the models: no request the second time.
    let s = ok(h.p.status());
    assert_eq!(s.subscription.as_deref(), Some("SuperGrok"));
    assert_eq!(h.t.count(), 2);
    let list = ok(h.p.models(false, None));
    assert_eq!(list.route, "subscription");
    assert!(list.bills.contains("subscription"), "{}", list.bills);
    assert_eq!(h.t.count(), 2);
    // A bare model goes to the rail; the seed's `xai-grok/` id to the API (grok-4.3 is
    // API-only there).
    stream_reply(&h, CC);
    let r = ok(h.p.chat(&simple_request("grok-4.6")));
    assert_eq!(r.route, "subscription");
    h.t.json(
        200,
        json!({"choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}]}),
    );
    let r = ok(h.p.chat(&simple_request("xai-grok/grok-4.3")));
    assert_eq!(r.route, "api");
    assert_eq!(h.t.requests()[3].url, CHAT_URL);

    // No active subscription (or `Free`): none named; a logout forgets the cache.
    let mut h = H::connected(0).defaults();
    h.t.json(200, models_body());
    h.t.json(200, json!({"userId": "user-1"}));
    let s = ok(h.p.status());
    assert_eq!(
        (s.tier_name.as_deref(), s.subscription),
        (Some("Free"), None)
    );
    h.t.reply(200, "");
    ok(h.p.logout());
    assert!(h.s.raw("subscription").is_none());
}

/// The rail's catalogue says which dialect serves each model (`apiBackend`): a chat of a
/// listed model goes where its entry says, though its id alone would pick the chat lane;
/// the route's default is the catalogue's first entry.
#[test]
fn the_catalogue_decides_the_lane_and_the_default() {
    let mut h = H::connected(4);
    h.t.json(
        200,
        json!({"data": [
            {"id": "grok-4.6", "apiBackend": "responses", "contextWindow": 500000},
            {"id": "grok-4.5", "apiBackend": "responses"},
        ]}),
    );
    let list = ok(h.p.models(true, Some("subscription")));
    assert_eq!(list.default_model_id, "xai-grok-sub/grok-4.6");
    assert!(
        list.models.iter().all(|m| m.lane == Lane::Responses),
        "{list:?}"
    );
    stream_reply(&h, RESP);
    let r = ok(h.p.chat(&simple_request("xai-grok-sub/grok-4.6")));
    assert_eq!(r.lane, Lane::Responses);
    let reqs = h.t.requests();
    assert_eq!(reqs[1].url, SUB_RESPONSES_URL);
    assert_rail_headers(&reqs[1]);
    // A model the catalogue does not list keeps the id's rule.
    stream_reply(&h, CC);
    let r = ok(h.p.chat(&simple_request("xai-grok-sub/grok-4.3")));
    assert_eq!(r.lane, Lane::ChatCompletions);
    // A new catalogue (the lanes of the last one read are kept by its stored bytes) is
    // the one the next turn follows.
    h.t.json(
        200,
        json!({"data": [{"id": "grok-4.6", "apiBackend": "chat_completions"}]}),
    );
    ok(h.p.models(true, Some("subscription")));
    stream_reply(&h, CC);
    let r = ok(h.p.chat(&simple_request("xai-grok-sub/grok-4.6")));
    assert_eq!(r.lane, Lane::ChatCompletions);
}
