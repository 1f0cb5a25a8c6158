//! The subscription rail: the OAuth bearer on its own base, its three client headers on
//! every request, streamed upstream only (a whole reply is a stream assembled), nothing
//! stored upstream, and a refusal for missing headers reported as the plugin bug it is.

use grok_provider_core::{ChatRequest, FinishReason, Lane, ProviderError};
use serde_json::json;

use crate::chat::{simple_request, tool_round_trip};
use crate::fakes::{FakeBody, response};
use crate::stream::{CC, RESP, SSE};
use crate::*;

const RAIL_HEADERS: [(&str, &str); 3] = [
    ("x-xai-token-auth", "xai-grok-cli"),
    ("x-grok-client-identifier", "grok-cli"),
    ("x-grok-client-version", "0.1.0"),
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
        Some(format!("Bearer {}", h.creds().access_token))
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
