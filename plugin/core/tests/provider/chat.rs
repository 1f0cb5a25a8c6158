//! `chat` in both lanes.

use grok_provider_core::{ChatRequest, Lane, Message, ProviderError, Role, ThinkingEffort, Usage};
use serde_json::json;

use crate::*;

pub fn simple_request(model: &str) -> ChatRequest {
    ChatRequest {
        model: model.into(),
        messages: vec![
            Message {
                role: Role::System,
                content: "Be terse.".into(),
            },
            Message {
                role: Role::User,
                content: "Hi".into(),
            },
        ],
        thinking: None,
        max_output_tokens: None,
        temperature: None,
    }
}

#[test]
fn chat_completions_lane() {
    let mut h = H::connected(1);
    h.t.json(200, json!({
        "id": "c1", "object": "chat.completion", "model": "grok-4.3",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello."}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11, "completion_tokens_details": {"reasoning_tokens": 0}}
    }));
    let mut req = simple_request("xai-grok/grok-4.3");
    req.max_output_tokens = Some(64);
    req.temperature = Some(0.5);
    req.thinking = Some(ThinkingEffort::Low);
    let reply = ok(h.p.chat(&req));
    assert_eq!(reply.content, "Hello.");
    assert_eq!(
        (reply.model.as_str(), reply.lane),
        ("xai-grok/grok-4.3", Lane::ChatCompletions)
    );
    assert_eq!(reply.finish_reason.as_deref(), Some("stop"));
    assert_eq!(
        reply.usage,
        Some(Usage {
            input_tokens: 9,
            output_tokens: 2,
            reasoning_tokens: Some(0),
            total_tokens: 11
        })
    );

    let r = &h.t.requests()[0];
    assert_eq!(r.url, CHAT_URL);
    assert_eq!(
        header(r, "authorization"),
        Some(format!("Bearer {}", h.creds().access_token))
    );
    assert_eq!(
        header(r, "content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(header(r, "accept").as_deref(), Some("application/json"));
    assert_eq!(header(r, "user-agent").as_deref(), Some(UA));
    assert_eq!(
        body_json(r),
        json!({
            "model": "grok-4.3",
            "messages": [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Hi"}],
            "stream": false, "max_tokens": 64, "temperature": 0.5, "reasoning_effort": "low"
        })
    );
}

#[test]
fn responses_lane() {
    let mut h = H::connected(4);
    h.t.json(200, json!({
        "id": "r1", "object": "response", "status": "completed", "model": "grok-4.20-multi-agent-0309",
        "output": [
            {"type": "reasoning", "id": "rs1"},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Agents "}, {"type": "output_text", "text": "agree."}]}
        ],
        "usage": {"input_tokens": 20, "output_tokens": 5, "total_tokens": 25, "output_tokens_details": {"reasoning_tokens": 3}}
    }));
    let mut req = simple_request("xai-grok/grok-4.20-multi-agent-0309");
    req.thinking = Some(ThinkingEffort::High);
    req.max_output_tokens = Some(500);
    let reply = ok(h.p.chat(&req));
    assert_eq!(reply.content, "Agents agree.");
    assert_eq!(
        (reply.model.as_str(), reply.lane),
        ("xai-grok/grok-4.20-multi-agent-0309", Lane::Responses)
    );
    assert_eq!(reply.finish_reason.as_deref(), Some("stop"));
    assert_eq!(
        reply.usage,
        Some(Usage {
            input_tokens: 20,
            output_tokens: 5,
            reasoning_tokens: Some(3),
            total_tokens: 25
        })
    );
    let r = &h.t.requests()[0];
    assert_eq!(r.url, RESPONSES_URL);
    assert_eq!(
        body_json(r),
        json!({
            "model": "grok-4.20-multi-agent-0309",
            "instructions": "Be terse.",
            "input": [{"type": "message", "role": "user", "content": "Hi"}],
            "stream": false, "store": false, "max_output_tokens": 500, "reasoning": {"effort": "high"}
        })
    );
}

#[test]
fn invalid_requests_send_nothing() {
    let mut h = H::connected(1);
    let mut req = simple_request("");
    assert!(matches!(
        err(h.p.chat(&req)),
        ProviderError::InvalidInput(_)
    ));
    req.model = "xai-grok/grok-4.3".into();
    req.messages.clear();
    assert!(matches!(
        err(h.p.chat(&req)),
        ProviderError::InvalidInput(_)
    ));
    assert!(matches!(
        err(h.p.chat(&simple_request("xai-grok/grok-imagine-video"))),
        ProviderError::InvalidInput(_)
    ));
    assert!(matches!(
        err(h.p.open_chat_stream(&simple_request("   "))),
        ProviderError::InvalidInput(_)
    ));
    assert_eq!(h.t.count(), 0);
    // Not connected.
    let mut h = H::new();
    assert!(matches!(
        err(h.p.chat(&simple_request("grok-4.3"))),
        ProviderError::NotConnected(_)
    ));
}

#[test]
fn malformed_replies() {
    let mut h = H::connected(1);
    h.t.reply(200, "{not json");
    assert!(matches!(
        err(h.p.chat(&simple_request("grok-4.3"))),
        ProviderError::InvalidResponse(_)
    ));
    h.t.json(200, json!({"choices": []}));
    assert!(matches!(
        err(h.p.chat(&simple_request("grok-4.3"))),
        ProviderError::InvalidResponse(_)
    ));
    h.t.json(
        200,
        json!({"status": "failed", "error": {"code": "server_error", "message": "agents crashed"}}),
    );
    assert!(
        matches!(err(h.p.chat(&simple_request("grok-4.20-multi-agent"))), ProviderError::UpstreamUnavailable(m) if m.contains("agents crashed"))
    );
}
