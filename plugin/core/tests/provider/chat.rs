//! `chat` in both lanes: request bodies, replies, tools, the prompt-cache key and the
//! multi-agent refusal of client-side tools.

use grok_provider_core::{
    ChatRequest, FinishReason, FunctionTool, Lane, Message, ProviderError, Role, ThinkingEffort,
    ToolCall, ToolChoice, Usage,
};
use serde_json::json;

use crate::*;

pub fn simple_request(model: &str) -> ChatRequest {
    ChatRequest {
        model: model.into(),
        messages: vec![
            Message::text(Role::System, "Be terse."),
            Message::text(Role::User, "Hi"),
        ],
        ..ChatRequest::default()
    }
}

/// A conversation at the point where the model's tool call has been answered: system,
/// user, the assistant's call (no text), the tool's result; one function tool declared.
pub fn tool_round_trip(model: &str) -> ChatRequest {
    let call = ToolCall {
        id: "call_1".into(),
        name: "weather".into(),
        arguments: r#"{"city":"Paris"}"#.into(),
    };
    let mut assistant = Message::text(Role::Assistant, "");
    assistant.content.clear();
    assistant.tool_calls = vec![call];
    let mut tool = Message::text(Role::Tool, r#"{"temp_c":21}"#);
    tool.tool_call_id = Some("call_1".into());
    ChatRequest {
        model: model.into(),
        messages: vec![
            Message::text(Role::System, "Be terse."),
            Message::text(Role::User, "Weather in Paris and Rome?"),
            assistant,
            tool,
        ],
        tools: vec![FunctionTool {
            name: "weather".into(),
            description: Some("Current weather".into()),
            parameters: Some(
                r#"{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}"#
                    .into(),
            ),
            strict: None,
        }],
        tool_choice: Some(ToolChoice::Auto),
        ..ChatRequest::default()
    }
}

pub fn weather_schema() -> serde_json::Value {
    json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
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
    assert!(reply.tool_calls.is_empty());
    assert_eq!(
        (reply.model.as_str(), reply.lane),
        ("xai-grok/grok-4.3", Lane::ChatCompletions)
    );
    assert_eq!(reply.finish_reason, Some(FinishReason::Stop));
    assert_eq!(
        reply.usage,
        Some(Usage {
            input_tokens: 9,
            output_tokens: 2,
            reasoning_tokens: Some(0),
            cached_input_tokens: None,
            total_tokens: 11
        })
    );

    let r = &h.t.requests()[0];
    assert_eq!(r.url, CHAT_URL);
    assert_eq!(
        header(r, "authorization"),
        Some(format!("Bearer {}", h.creds().access_token.expose()))
    );
    assert_eq!(
        header(r, "content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(header(r, "accept").as_deref(), Some("application/json"));
    assert_eq!(header(r, "user-agent").as_deref(), Some(UA));
    assert_eq!(header(r, "x-grok-conv-id"), None);
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
    assert_eq!(reply.finish_reason, Some(FinishReason::Stop));
    // OpenAI's convention (reasoning inside output: 20 + 5 = 25): nothing is added.
    assert_eq!(
        reply.usage,
        Some(Usage {
            input_tokens: 20,
            output_tokens: 5,
            reasoning_tokens: Some(3),
            cached_input_tokens: None,
            total_tokens: 25
        })
    );
    // A reasoning item without encrypted content cannot be passed back.
    assert!(reply.reasoning_items.is_empty());
    let r = &h.t.requests()[0];
    assert_eq!(r.url, RESPONSES_URL);
    assert_eq!(
        body_json(r),
        json!({
            "model": "grok-4.20-multi-agent-0309",
            "instructions": "Be terse.",
            "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]}],
            "stream": false, "store": false, "include": ["reasoning.encrypted_content"],
            "max_output_tokens": 500, "reasoning": {"effort": "high"}
        })
    );
}

#[test]
fn xai_usage_counts_reasoning_inside_output() {
    // xAI reports reasoning outside completion tokens (total = 10 + 5 + 30).
    let mut h = H::connected(1);
    h.t.json(200, json!({
        "model": "grok-4.3",
        "choices": [{"message": {"role": "assistant", "content": "ok", "reasoning_content": "thought"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 45,
                  "prompt_tokens_details": {"cached_tokens": 8},
                  "completion_tokens_details": {"reasoning_tokens": 30}}
    }));
    let reply = ok(h.p.chat(&simple_request("grok-4.3")));
    assert_eq!(reply.reasoning.as_deref(), Some("thought"));
    assert_eq!(
        reply.usage,
        Some(Usage {
            input_tokens: 10,
            output_tokens: 35,
            reasoning_tokens: Some(30),
            cached_input_tokens: Some(8),
            total_tokens: 45
        })
    );
}

#[test]
fn tool_round_trip_on_chat_completions() {
    let mut h = H::connected(1);
    h.t.json(200, json!({
        "model": "grok-4.3",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": null,
            "tool_calls": [{"id": "call_2", "type": "function",
                            "function": {"name": "weather", "arguments": "{\"city\":\"Rome\"}"}}]
        }}]
    }));
    let reply = ok(h.p.chat(&tool_round_trip("grok-4.3")));
    assert_eq!(reply.content, "");
    assert_eq!(
        reply.tool_calls,
        vec![ToolCall {
            id: "call_2".into(),
            name: "weather".into(),
            arguments: r#"{"city":"Rome"}"#.into()
        }]
    );
    assert_eq!(reply.finish_reason, Some(FinishReason::ToolCalls));

    let b = body_json(&h.t.requests()[0]);
    assert_eq!(
        b["tools"],
        json!([{"type": "function", "function": {
            "name": "weather", "description": "Current weather", "parameters": weather_schema()
        }}])
    );
    assert_eq!(b["tool_choice"], json!("auto"));
    assert_eq!(
        b["messages"],
        json!([
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}}
            ]},
            {"role": "tool", "content": "{\"temp_c\":21}", "tool_call_id": "call_1"}
        ])
    );
}

#[test]
fn tool_round_trip_on_responses() {
    let mut h = H::connected(4);
    h.t.json(200, json!({
        "status": "completed", "model": "grok-4.20-multi-agent-0309",
        "output": [{"type": "function_call", "id": "fc_2", "call_id": "call_2", "name": "weather",
                    "arguments": "{\"city\":\"Rome\"}", "status": "completed"}]
    }));
    let reply = ok(h.p.chat(&tool_round_trip("grok-4.20-multi-agent-0309")));
    assert_eq!(reply.lane, Lane::Responses);
    assert_eq!(
        reply.tool_calls,
        vec![ToolCall {
            // call_id, not the item's id: the function_call_output must name it.
            id: "call_2".into(),
            name: "weather".into(),
            arguments: r#"{"city":"Rome"}"#.into()
        }]
    );
    assert_eq!(reply.finish_reason, Some(FinishReason::ToolCalls));

    let b = body_json(&h.t.requests()[0]);
    assert_eq!(
        b["tools"],
        json!([{"type": "function", "name": "weather", "description": "Current weather",
                "parameters": weather_schema()}])
    );
    assert_eq!(b["tool_choice"], json!("auto"));
    assert_eq!(b["instructions"], json!("Be terse."));
    assert_eq!(
        b["input"],
        json!([
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Weather in Paris and Rome?"}]},
            {"type": "function_call", "call_id": "call_1", "name": "weather", "arguments": "{\"city\":\"Paris\"}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "{\"temp_c\":21}"}
        ])
    );
}

#[test]
fn prompt_cache_key_is_a_header_on_chat_completions_and_a_field_on_responses() {
    let mut h = H::connected(4);
    h.t.json(200, json!({
        "model": "grok-4.3",
        "choices": [{"message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}]
    }));
    let mut req = simple_request("grok-4.3");
    req.prompt_cache_key = Some("conv-42".into());
    ok(h.p.chat(&req));
    // The stream asks the same way.
    h.t.push(|_| {
        Ok(crate::fakes::response(
            200,
            &[("content-type", "text/event-stream")],
            crate::fakes::FakeBody::bytes(b"data: [DONE]\n\n"),
        ))
    });
    let mut s = ok(h.p.open_chat_stream(&req));
    assert_eq!(s.next_chunk(), Ok(None));
    for r in &h.t.requests() {
        assert_eq!(r.url, CHAT_URL);
        assert_eq!(header(r, "x-grok-conv-id").as_deref(), Some("conv-42"));
        assert_eq!(body_json(r).get("prompt_cache_key"), None);
    }

    let mut h = H::connected(4);
    h.t.json(
        200,
        json!({
            "status": "completed",
            "output": [{"type": "message", "content": [{"type": "output_text", "text": "ok"}]}]
        }),
    );
    req.model = "grok-4.20-multi-agent-0309".into();
    ok(h.p.chat(&req));
    let r = &h.t.requests()[0];
    assert_eq!(r.url, RESPONSES_URL);
    assert_eq!(header(r, "x-grok-conv-id"), None);
    assert_eq!(body_json(r)["prompt_cache_key"], json!("conv-42"));
}

#[test]
fn multi_agent_refusal_of_client_tools_names_the_model() {
    let upstream = json!({
        "code": "Client specified an invalid argument",
        "error": "Client-side tools for multi-agent models require beta access"
    });
    let model = "xai-grok/grok-4.20-multi-agent-0309";
    let check = |e: ProviderError| match e {
        ProviderError::InvalidInput(m) => {
            assert!(m.contains(model), "{m}");
            assert!(m.contains("Client-side tools"), "upstream text kept: {m}");
        }
        other => panic!("{other:?}"),
    };
    let mut h = H::connected(4);
    h.t.json(400, upstream.clone());
    check(err(h.p.chat(&tool_round_trip(model))));
    assert_eq!(h.t.count(), 1, "a 400 is not retried");
    h.t.json(400, upstream.clone());
    check(err(h.p.open_chat_stream(&tool_round_trip(model))));

    // Without tools the same words are left as upstream said them.
    let mut h = H::connected(4);
    h.t.json(400, upstream);
    match err(h.p.chat(&simple_request(model))) {
        ProviderError::InvalidInput(m) => assert_eq!(
            m,
            "Client-side tools for multi-agent models require beta access"
        ),
        other => panic!("{other:?}"),
    }
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
    // A tool message must name its call.
    let mut req = tool_round_trip("grok-4.3");
    req.messages[3].tool_call_id = None;
    assert!(matches!(
        err(h.p.chat(&req)),
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
