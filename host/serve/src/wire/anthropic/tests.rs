//! The Messages dialect's tests: requests mapped, replies and streams written, errors.

use axum::http::StatusCode;
use provider_runtime::bindings::types::*;
use serde_json::{Value, json};

use super::error::*;
use super::reply::*;
use super::request::*;
use super::*;

fn request(body: Value) -> Result<ChatRequest, String> {
    parse(body.to_string().as_bytes())?.into_request("m".into(), true)
}

#[test]
fn claude_codes_request_shape_maps_whole() {
    let r = request(json!({
        "model": "claude-sonnet-4-5", "max_tokens": 32000, "stream": true,
        "system": [{"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "system", "content": "more system"},
            {"role": "user", "content": [
                {"type": "text", "text": "look", "cache_control": {"type": "ephemeral"}},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
                {"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}}]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "hmm", "signature": signature(&[ReasoningItem {lane: Lane::Responses, data: "{\"encrypted_content\":\"e\"}".into()}])},
                {"type": "redacted_thinking", "data": "not ours"},
                {"type": "text", "text": "calling"},
                {"type": "tool_use", "id": "t1", "name": "Read", "input": {"path": "a"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t1", "is_error": true,
                 "content": [{"type": "text", "text": "no such file"},
                             {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "BBBB"}}]},
                {"type": "text", "text": "go on"}]}
        ],
        "tools": [{"name": "Read", "description": "read", "input_schema": {"type": "object"}, "cache_control": {"type": "ephemeral"}}],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
        "thinking": {"type": "enabled", "budget_tokens": 10000},
        "metadata": {"user_id": "u"}, "temperature": 1.0, "top_p": 0.9, "stop_sequences": ["END"]
    }))
    .unwrap();
    let roles: Vec<Role> = r.messages.iter().map(|m| m.role).collect();
    assert_eq!(
        roles,
        [
            Role::System,
            Role::System,
            Role::User,
            Role::Assistant,
            Role::Tool,
            Role::User
        ]
    );
    assert_eq!(r.messages[2].content.len(), 3);
    let a = &r.messages[3];
    assert_eq!(a.tool_calls[0].arguments, r#"{"path":"a"}"#);
    // Only the signature this server wrote carries an item back.
    assert_eq!(a.reasoning.len(), 1);
    assert_eq!(a.reasoning[0].data, r#"{"encrypted_content":"e"}"#);
    let tool = &r.messages[4];
    assert_eq!(tool.tool_call_id.as_deref(), Some("t1"));
    assert!(matches!(&tool.content[0], ContentPart::Text(t) if t == "Error: no such file"));
    // The result's image goes to the user message after it, with its text.
    assert!(matches!(r.messages[5].content[0], ContentPart::Image(_)));
    assert!(matches!(r.tool_choice, Some(ToolChoice::Required)));
    assert_eq!(r.parallel_tool_calls, Some(false));
    assert!(matches!(r.thinking, Some(ThinkingEffort::Medium)));
    assert_eq!(
        (
            r.max_output_tokens,
            r.stop.len(),
            r.tools[0].parameters.as_deref()
        ),
        (Some(32000), 1, Some(r#"{"type":"object"}"#))
    );
}

#[test]
fn what_has_no_grok_equivalent_is_refused_by_name() {
    let base = |extra: Value| {
        let mut b =
            json!({"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "x"}]});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    for (body, named) in [
        (base(json!({"top_k": 5})), "top_k"),
        (
            base(json!({"context_management": {}})),
            "context_management",
        ),
        (base(json!({"frobnicate": 1})), "frobnicate"),
        (
            base(json!({"tools": [{"type": "web_search_20250305", "name": "web_search"}]})),
            "web_search_20250305",
        ),
        (
            base(
                json!({"messages": [{"role": "user", "content": [{"type": "document", "source": {}}]}]}),
            ),
            "document",
        ),
        (
            base(json!({"messages": [{"role": "critic", "content": "x"}]})),
            "critic",
        ),
        (base(json!({"output_config": {"effort": "max"}})), "max"),
        (json!({"model": "m", "messages": []}), "max_tokens"),
    ] {
        let e = request(body.clone()).unwrap_err();
        assert!(e.contains(named), "{body}: {e}");
    }
}

#[test]
fn budgets_map_to_efforts() {
    assert!(matches!(effort_of_budget(1024), ThinkingEffort::Low));
    assert!(matches!(effort_of_budget(4096), ThinkingEffort::Medium));
    assert!(matches!(effort_of_budget(16384), ThinkingEffort::High));
}

#[test]
fn the_estimate_counts_system_messages_and_tools() {
    let b = parse(
        json!({"model": "m", "system": "12345678", "messages": [
            {"role": "user", "content": [{"type": "text", "text": "1234"},
                {"type": "image", "source": {"type": "url", "url": "u"}}]}],
            "tools": [{"name": "abcd", "input_schema": {}}]})
        .to_string()
        .as_bytes(),
    )
    .unwrap();
    // 2 (system) + 1 + 1600 (messages) + 1 + 1 (tool name, "{}")
    assert_eq!(b.estimate_tokens(), 2 + 1 + 1600 + 1 + 1);
}

#[test]
fn aliases_name_grok_models() {
    let aliases = Aliases::from([("claude-x".into(), "xai-grok--grok-4.3".into())]);
    assert_eq!(resolve_model("claude-x", &aliases), "xai-grok/grok-4.3");
    assert_eq!(resolve_model("grok-4.6", &aliases), "grok-4.6");
}

/// Every delta targets the open block, of its type; each call its own block.
#[test]
fn a_stream_keeps_its_blocks_apart() {
    let mut w = EventWriter::new("msg_1".into(), "m".into(), 7);
    let mut events = w.start();
    for c in [
        ChatChunk::Reasoning("think".into()),
        ChatChunk::ReasoningItem(ReasoningItem {
            lane: Lane::Responses,
            data: "{}".into(),
        }),
        ChatChunk::Reasoning("\n\n".into()),
        ChatChunk::Text("hi".into()),
        ChatChunk::ToolCallStart(ToolCallStart {
            index: 0,
            id: "a".into(),
            name: "f".into(),
        }),
        ChatChunk::ToolCallArguments(ToolCallDelta {
            index: 0,
            arguments: "{\"x\":".into(),
        }),
        ChatChunk::ToolCallArguments(ToolCallDelta {
            index: 0,
            arguments: "1}".into(),
        }),
        ChatChunk::ToolCallStart(ToolCallStart {
            index: 1,
            id: "b".into(),
            name: "g".into(),
        }),
        ChatChunk::Usage(Usage {
            input_tokens: 10,
            output_tokens: 5,
            reasoning_tokens: Some(2),
            cached_input_tokens: Some(4),
            total_tokens: 15,
        }),
        ChatChunk::Finish(FinishReason::ToolCalls),
    ] {
        events.extend(w.chunk(&c));
    }
    events.extend(w.finish());
    let names: Vec<&str> = events.iter().map(|e| e.0).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    assert_eq!(events[0].1["message"]["usage"]["input_tokens"], 7);
    // Each delta's type matches its block's, at the open index.
    let mut open: Option<(u64, String)> = None;
    for (name, v) in &events {
        match *name {
            "content_block_start" => {
                open = Some((
                    v["index"].as_u64().unwrap(),
                    v["content_block"]["type"].as_str().unwrap().into(),
                ));
            }
            "content_block_delta" => {
                let (i, kind) = open.as_ref().unwrap();
                assert_eq!(v["index"].as_u64(), Some(*i));
                let ok: &[&str] = match kind.as_str() {
                    "thinking" => &["thinking_delta", "signature_delta"],
                    "text" => &["text_delta"],
                    _ => &["input_json_delta"],
                };
                assert!(ok.contains(&v["delta"]["type"].as_str().unwrap()), "{v}");
            }
            "content_block_stop" => open = None,
            _ => {}
        }
    }
    assert_eq!(events[4].1["delta"]["type"], "signature_delta");
    assert_eq!(
        signed_items(events[4].1["delta"]["signature"].as_str().unwrap()).len(),
        1
    );
    let delta = &events[15].1;
    assert_eq!(delta["delta"]["stop_reason"], "tool_use");
    assert_eq!(delta["usage"]["input_tokens"], 6);
    assert_eq!(delta["usage"]["cache_read_input_tokens"], 4);
    assert_eq!(delta["usage"]["output_tokens"], 5);
}

#[test]
fn errors_take_anthropics_types() {
    for (status, kind, out) in [
        (429, "rate_limit_error", 429),
        (503, "overloaded_error", 529),
        (401, "authentication_error", 401),
        (400, "invalid_request_error", 400),
        (403, "permission_error", 403),
        (402, "billing_error", 402),
        (404, "not_found_error", 404),
        (502, "api_error", 502),
    ] {
        let e =
            AnthropicError::from_parts(StatusCode::from_u16(status).unwrap(), "c", "m", Some(3));
        assert_eq!((e.kind, e.status.as_u16()), (kind, out));
        assert_eq!(e.body()["error"]["type"], kind);
    }
}
