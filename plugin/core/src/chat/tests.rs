use serde_json::{Value, json};

use super::completions::CompletionsAssembler;
use super::responses::ResponsesAssembler;
use super::*;
use crate::routes::{Route, resolve};

/// A reply read from its body, given as JSON.
fn parse_reply(plan: &Plan, v: &Value) -> Result<ChatReply, ProviderError> {
    parse_reply_body(plan, &serde_json::to_vec(v).unwrap(), "reply")
}
use crate::types::{
    ChatChunk, Citation, FinishReason, FunctionTool, Image, ImageDetail, JsonSchemaFormat,
    ReasoningItem, ToolCall, Usage,
};

fn req(model: &str) -> ChatRequest {
    ChatRequest {
        model: model.into(),
        messages: vec![
            Message::text(Role::System, "be brief"),
            Message::text(Role::System, "be kind"),
            Message::text(Role::User, "hi"),
            Message::text(Role::Assistant, "hello"),
            Message::text(Role::User, "again"),
        ],
        thinking: Some(ThinkingEffort::High),
        max_output_tokens: Some(100),
        temperature: Some(0.7),
        ..ChatRequest::default()
    }
}

/// The plan of `r` on its route (the default route: `api`).
fn plan_of(r: &ChatRequest) -> Result<Plan, ProviderError> {
    plan(r, resolve(r.route.as_deref(), &r.model, Route::Api)?)
}

fn body(r: &ChatRequest, stream: bool) -> Value {
    serde_json::from_slice(&request_body(&plan_of(r).unwrap(), r, stream).unwrap().body).unwrap()
}

fn weather_tool() -> FunctionTool {
    FunctionTool {
        name: "get_weather".into(),
        description: Some("Weather of a city".into()),
        parameters: Some(r#"{"type":"object","properties":{"city":{"type":"string"}}}"#.into()),
        strict: Some(true),
    }
}

/// A user question, the model's call, the tool's answer.
fn tool_round_trip(model: &str) -> ChatRequest {
    let mut call = Message::text(Role::Assistant, "");
    call.tool_calls = vec![ToolCall {
        id: "call_1".into(),
        name: "get_weather".into(),
        arguments: r#"{"city":"Paris"}"#.into(),
    }];
    let mut result = Message::text(Role::Tool, "sunny");
    result.tool_call_id = Some("call_1".into());
    let mut user = Message::text(Role::User, "Weather? ");
    user.content.push(ContentPart::Image(Image {
        source: ImageSource::Url("https://example.com/a.png".into()),
        detail: Some(ImageDetail::High),
    }));
    ChatRequest {
        model: model.into(),
        messages: vec![Message::text(Role::System, "sys"), user, call, result],
        tools: vec![weather_tool()],
        tool_choice: Some(ToolChoice::Auto),
        parallel_tool_calls: Some(false),
        ..ChatRequest::default()
    }
}

#[test]
fn validates_and_routes() {
    assert_eq!(
        plan_of(&req("xai-grok/grok-4.3")).unwrap(),
        Plan {
            model: RoutedModel {
                route: Route::Api,
                upstream: "grok-4.3".into()
            },
            lane: Lane::ChatCompletions
        }
    );
    let r = plan_of(&req("grok-4.20-multi-agent-0309")).unwrap();
    assert_eq!((r.lane, r.path()), (Lane::Responses, "responses"));
    for bad in ["", "xai-grok/", "xai-grok/grok-imagine-image"] {
        assert!(
            matches!(plan_of(&req(bad)), Err(ProviderError::InvalidInput(_))),
            "{bad}"
        );
    }
    let mut r = req("grok-4.3");
    r.messages.clear();
    assert!(matches!(plan_of(&r), Err(ProviderError::InvalidInput(_))));
    let mut r = req("grok-4.3");
    r.temperature = Some(f32::NAN);
    assert!(matches!(plan_of(&r), Err(ProviderError::InvalidInput(_))));
    let mut r = req("grok-4.3");
    r.top_p = Some(1.5);
    assert!(matches!(plan_of(&r), Err(ProviderError::InvalidInput(_))));
}

#[test]
fn a_lane_may_be_asked_for() {
    let mut r = req("grok-4.3");
    r.lane = Some(Lane::Responses);
    assert_eq!(plan_of(&r).unwrap().lane, Lane::Responses);
    let mut r = req("grok-4.20-multi-agent-0309");
    r.lane = Some(Lane::ChatCompletions);
    assert!(matches!(plan_of(&r), Err(ProviderError::InvalidInput(m)) if m.contains("Responses")));
    r.lane = Some(Lane::Media);
    assert!(matches!(plan_of(&r), Err(ProviderError::InvalidInput(_))));
}

fn refused(r: &ChatRequest) -> String {
    match plan_of(r).and_then(|ro| request_body(&ro, r, false)) {
        Err(ProviderError::InvalidInput(m)) => m,
        other => panic!("expected invalid input, got {other:?}"),
    }
}

#[test]
fn malformed_agent_requests_are_refused_by_name() {
    let base = tool_round_trip("grok-4.3");
    let mut r = base.clone();
    r.messages[3].tool_call_id = None;
    assert!(refused(&r).contains("tool_call_id"));
    let mut r = base.clone();
    r.messages[1].tool_calls = r.messages[2].tool_calls.clone();
    assert!(refused(&r).contains("only assistant"));
    let mut r = base.clone();
    let image = r.messages[1].content[1].clone();
    r.messages[2].content.push(image);
    assert!(refused(&r).contains("user messages only"));
    let mut r = base.clone();
    r.messages[1].content[1] = ContentPart::Image(Image {
        source: ImageSource::Url("http://example.com/a.png".into()),
        detail: None,
    });
    assert!(refused(&r).contains("https"));
    let mut r = base.clone();
    r.messages[1].content[1] = ContentPart::Image(Image {
        source: ImageSource::Data {
            media_type: "image/png".into(),
            base64: "not base64!".into(),
        },
        detail: None,
    });
    assert!(refused(&r).contains("base64"));
    let mut r = base.clone();
    r.tools[0].parameters = Some("[1]".into());
    assert!(refused(&r).contains("parameters"));
    let mut r = base.clone();
    r.tools.push(weather_tool());
    assert!(refused(&r).contains("twice"));
    let mut r = base.clone();
    r.tools[0].name = "has space".into();
    assert!(refused(&r).contains("tool name"));
    let mut r = base.clone();
    r.tool_choice = Some(ToolChoice::Function("nope".into()));
    assert!(refused(&r).contains("nope"));
    let mut r = base.clone();
    r.response_format = Some(ResponseFormat::JsonSchema(JsonSchemaFormat {
        name: "x".into(),
        schema: "nope".into(),
        description: None,
        strict: None,
    }));
    assert!(refused(&r).contains("schema"));
    let mut r = base.clone();
    r.extra_body = Some(r#"{"model":"other"}"#.into());
    assert!(refused(&r).contains("model"));
    let mut r = base.clone();
    r.lane = Some(Lane::Responses);
    r.stop = vec!["x".into()];
    assert!(refused(&r).contains("stop"));
    r.stop.clear();
    r.seed = Some(1);
    assert!(refused(&r).contains("seed"));
}

#[test]
fn thinking_is_refused_by_name_for_models_that_refuse_reasoning_effort() {
    for (model, takes) in [
        ("xai-grok/grok-4.3", true),
        ("grok-4.6", true),
        ("xai-grok/grok-4.20-0309-reasoning", false),
        ("grok-4.20-0309-non-reasoning", false),
        ("xai-grok/grok-build-0.1", false),
    ] {
        if takes {
            let b = body(&req(model), false);
            assert!(b.get("reasoning_effort").is_some(), "{model}: {b}");
        } else {
            // Never silently dropped: the request names the model that refuses it.
            match plan_of(&req(model)) {
                Err(ProviderError::InvalidInput(m)) => {
                    assert!(m.contains("takes no reasoning effort"), "{model}: {m}")
                }
                other => panic!("{model}: expected a refusal, got {other:?}"),
            }
            // Without an effort the same model is served.
            let mut plain = req(model);
            plain.thinking = None;
            let b = body(&plain, false);
            assert!(b.get("reasoning_effort").is_none(), "{model}: {b}");
        }
    }
    // The multi-agent lane always carries it: it sets how many agents work.
    let b = body(&req("xai-grok/grok-4.20-multi-agent-0309"), false);
    assert_eq!(b["reasoning"]["effort"], "high", "{b}");
}

#[test]
fn chat_completions_request() {
    assert_eq!(
        body(&req("xai-grok/grok-4.3"), true),
        json!({
            "model": "grok-4.3",
            "messages": [
                {"role": "system", "content": "be brief"}, {"role": "system", "content": "be kind"},
                {"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
                {"role": "user", "content": "again"}
            ],
            "stream": true, "stream_options": {"include_usage": true},
            "max_tokens": 100, "temperature": 0.7, "reasoning_effort": "high"
        })
    );
}

#[test]
fn chat_completions_agent_request() {
    let mut r = tool_round_trip("grok-4.3");
    r.response_format = Some(ResponseFormat::JsonObject);
    r.stop = vec!["END".into()];
    r.seed = Some(42);
    r.top_p = Some(0.9);
    r.prompt_cache_key = Some("conv-1".into());
    r.extra_body = Some(r#"{"search_parameters":{"mode":"auto"}}"#.into());
    let up = request_body(&plan_of(&r).unwrap(), &r, false).unwrap();
    assert_eq!(
        up.headers,
        vec![("x-grok-conv-id".to_owned(), "conv-1".to_owned())]
    );
    let b: Value = serde_json::from_slice(&up.body).unwrap();
    assert_eq!(
        b,
        json!({
            "model": "grok-4.3",
            "messages": [
                {"role": "system", "content": "sys"},
                {"role": "user", "content": [
                    {"type": "text", "text": "Weather? "},
                    {"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "high"}}
                ]},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}
                ]},
                {"role": "tool", "content": "sunny", "tool_call_id": "call_1"}
            ],
            "stream": false,
            "top_p": 0.9,
            "tools": [{"type": "function", "function": {
                "name": "get_weather", "description": "Weather of a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                "strict": true}}],
            "tool_choice": "auto", "parallel_tool_calls": false,
            "response_format": {"type": "json_object"},
            "stop": ["END"], "seed": 42,
            "search_parameters": {"mode": "auto"}
        })
    );
}

#[test]
fn responses_request() {
    assert_eq!(
        body(&req("grok-4.20-multi-agent-0309"), false),
        json!({
            "model": "grok-4.20-multi-agent-0309",
            "instructions": "be brief\n\nbe kind",
            "input": [
                {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
                {"type": "message", "role": "assistant", "content": "hello"},
                {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "again"}]}
            ],
            "stream": false, "store": false, "include": ["reasoning.encrypted_content"],
            "max_output_tokens": 100, "temperature": 0.7, "reasoning": {"effort": "high"}
        })
    );
}

#[test]
fn responses_agent_request() {
    let mut r = tool_round_trip("grok-4.3");
    r.lane = Some(Lane::Responses);
    r.tool_choice = Some(ToolChoice::Function("get_weather".into()));
    r.prompt_cache_key = Some("conv-1".into());
    r.response_format = Some(ResponseFormat::JsonSchema(JsonSchemaFormat {
        name: "answer".into(),
        schema: r#"{"type":"object"}"#.into(),
        description: None,
        strict: Some(true),
    }));
    r.messages[2].reasoning = vec![
        ReasoningItem {
            lane: Lane::Responses,
            data: r#"{"type":"reasoning","id":"rs_1","summary":[],"encrypted_content":"enc"}"#
                .into(),
        },
        // Another lane's item is not this lane's business.
        ReasoningItem {
            lane: Lane::ChatCompletions,
            data: "x".into(),
        },
    ];
    r.extra_body = Some(r#"{"tools":[{"type":"web_search"}]}"#.into());
    let up = request_body(&plan_of(&r).unwrap(), &r, true).unwrap();
    assert!(up.headers.is_empty());
    let b: Value = serde_json::from_slice(&up.body).unwrap();
    assert_eq!(
        b,
        json!({
            "model": "grok-4.3",
            "instructions": "sys",
            "input": [
                {"type": "message", "role": "user", "content": [
                    {"type": "input_text", "text": "Weather? "},
                    {"type": "input_image", "image_url": "https://example.com/a.png", "detail": "high"}
                ]},
                {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "enc"},
                {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
                {"type": "function_call_output", "call_id": "call_1", "output": "sunny"}
            ],
            "stream": true, "store": false, "include": ["reasoning.encrypted_content"],
            "tools": [
                {"type": "function", "name": "get_weather", "description": "Weather of a city",
                 "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}, "strict": true},
                {"type": "web_search"}
            ],
            "tool_choice": {"type": "function", "name": "get_weather"},
            "parallel_tool_calls": false,
            "text": {"format": {"type": "json_schema", "name": "answer", "schema": {"type": "object"}, "strict": true}},
            "prompt_cache_key": "conv-1"
        })
    );
    // A reasoning item that is not this plugin's is refused, not forwarded.
    r.messages[2].reasoning[0].data = r#"{"type":"message"}"#.into();
    assert!(refused(&r).contains("reasoning item"));
}

fn on_api(upstream: &str, lane: Lane) -> Plan {
    Plan {
        model: RoutedModel {
            route: Route::Api,
            upstream: upstream.into(),
        },
        lane,
    }
}

fn completions_route() -> Plan {
    on_api("grok-4.3", Lane::ChatCompletions)
}

fn responses_route() -> Plan {
    on_api("grok-4.20-multi-agent-0309", Lane::Responses)
}

#[test]
fn chat_completions_reply() {
    let route = completions_route();
    let r = parse_reply(&route, &json!({
        "id": "x", "model": "grok-4.3-0101",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi!", "reasoning_content": "hmm"}, "finish_reason": "stop"}],
        "citations": ["https://a.example/"],
        "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 15,
                  "prompt_tokens_details": {"cached_tokens": 4},
                  "completion_tokens_details": {"reasoning_tokens": 3}}
    }))
    .unwrap();
    assert_eq!(
        r,
        ChatReply {
            content: "Hi!".into(),
            tool_calls: vec![],
            reasoning: Some("hmm".into()),
            reasoning_items: vec![],
            citations: vec![Citation {
                url: "https://a.example/".into(),
                title: None,
                start_index: None,
                end_index: None
            }],
            model: "xai-grok/grok-4.3-0101".into(),
            lane: Lane::ChatCompletions,
            route: "api".into(),
            usage: Some(Usage {
                input_tokens: 5,
                output_tokens: 10,
                reasoning_tokens: Some(3),
                cached_input_tokens: Some(4),
                total_tokens: 15
            }),
            finish_reason: Some(FinishReason::Stop),
        }
    );
    let r = parse_reply(&route, &json!({"choices": [{"message": {"content": null,
        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        "finish_reason": "tool_calls"}]}))
    .unwrap();
    assert_eq!(
        (
            r.content.as_str(),
            r.model.as_str(),
            r.usage,
            r.finish_reason
        ),
        ("", "xai-grok/grok-4.3", None, Some(FinishReason::ToolCalls))
    );
    assert_eq!(
        r.tool_calls,
        vec![ToolCall {
            id: "c1".into(),
            name: "f".into(),
            arguments: "{}".into()
        }]
    );
    for bad in [
        json!({"choices": []}),
        json!({"choices": [{}]}),
        json!({"choices": [{"message": {"content": 5}}]}),
        json!({"choices": [{"message": {"tool_calls": [{"function": {"name": "f"}}]}}]}),
    ] {
        assert!(parse_reply(&route, &bad).is_err(), "{bad}");
    }
}

#[test]
fn responses_reply() {
    let route = responses_route();
    let r = parse_reply(&route, &json!({
        "status": "completed",
        "output": [
            {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "thought"}], "encrypted_content": "enc"},
            {"type": "reasoning", "id": "rs_2", "summary": []},
            {"type": "message", "role": "assistant", "content": [
                {"type": "output_text", "text": "Hello, ", "annotations": [{"type": "url_citation", "url": "https://s.example/", "title": "S", "start_index": 0, "end_index": 5}]},
                {"type": "refusal", "refusal": "no"}, {"type": "output_text", "text": "world"}]},
            {"type": "function_call", "id": "fc_1", "call_id": "call_9", "name": "f", "arguments": "{\"a\":1}"},
        ],
        "usage": {"input_tokens": 10, "output_tokens": 20, "total_tokens": 30, "output_tokens_details": {"reasoning_tokens": 15}}
    }))
    .unwrap();
    assert_eq!(r.content, "Hello, world");
    assert_eq!(r.model, "xai-grok/grok-4.20-multi-agent-0309");
    assert_eq!(r.finish_reason, Some(FinishReason::ToolCalls));
    assert_eq!(r.reasoning.as_deref(), Some("thought"));
    assert_eq!(
        r.reasoning_items.len(),
        1,
        "only items with encrypted content return"
    );
    let item: Value = serde_json::from_str(&r.reasoning_items[0].data).unwrap();
    assert_eq!(item["encrypted_content"], "enc");
    assert_eq!(r.tool_calls[0].id, "call_9");
    assert_eq!(r.citations[0].title.as_deref(), Some("S"));
    assert_eq!(
        r.usage,
        Some(Usage {
            input_tokens: 10,
            output_tokens: 20,
            reasoning_tokens: Some(15),
            cached_input_tokens: None,
            total_tokens: 30
        })
    );
    let r = parse_reply(&route, &json!({"status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}, "output": []})).unwrap();
    assert_eq!(r.finish_reason, Some(FinishReason::Length));
    assert!(
        matches!(parse_reply(&route, &json!({"status": "failed", "error": {"code": "server_error", "message": "boom"}})), Err(ProviderError::UpstreamUnavailable(m)) if m == "server_error: boom")
    );
    assert!(parse_reply(&route, &json!({"status": "completed"})).is_err());
}

#[test]
fn failures() {
    assert!(matches!(
        response_failure(Some(&json!({"code": "rate_limit_exceeded"}))),
        ProviderError::RateLimited { .. }
    ));
    assert!(matches!(
        response_failure(Some(&json!({"code": "invalid_prompt", "message": "m"}))),
        ProviderError::InvalidInput(_)
    ));
    assert_eq!(
        response_failure(None),
        ProviderError::UpstreamUnavailable("the response failed".into())
    );
    let r = tool_round_trip("grok-4.20-multi-agent-0309");
    let e = explain_refusal(
        ProviderError::InvalidInput(
            "Client-side tools for multi-agent models require beta access".into(),
        ),
        &plan_of(&r).unwrap(),
        &r,
    );
    assert!(
        matches!(&e, ProviderError::InvalidInput(m) if m.contains("xai-grok/grok-4.20-multi-agent-0309") && m.contains("beta access")),
        "{e:?}"
    );
}

/// Feed chat-completions event payloads; the chunks and whether it terminated.
fn completions(events: &[Value]) -> Result<Vec<ChatChunk>, ProviderError> {
    let mut a = CompletionsAssembler::default();
    let mut out = std::collections::VecDeque::new();
    for e in events {
        a.on_event(&e.to_string(), &mut out)?;
    }
    assert!(a.on_event("[DONE]", &mut out)?);
    Ok(out.into())
}

#[test]
fn completions_stream_errors_as_objects_or_bare_values() {
    let err = |e: Value| completions(&[json!({"error": e})]).unwrap_err();
    let object = err(json!({"code": "rate_limit_exceeded", "message": "slow down"}));
    assert!(
        matches!(&object, ProviderError::RateLimited { message, .. } if message == "rate_limit_exceeded: slow down"),
        "{object:?}"
    );
    // A bare string is the message.
    let bare = err(json!("overloaded"));
    assert!(
        matches!(&bare, ProviderError::UpstreamUnavailable(m) if m == "overloaded"),
        "{bare:?}"
    );
    // Anything else carries no message.
    let other = err(json!(5));
    assert!(
        matches!(&other, ProviderError::UpstreamUnavailable(m) if m == "the response failed"),
        "{other:?}"
    );
}

fn start(index: u32, id: &str, name: &str) -> ChatChunk {
    ChatChunk::ToolCallStart {
        index,
        id: id.into(),
        name: name.into(),
    }
}

fn args(index: u32, a: &str) -> ChatChunk {
    ChatChunk::ToolCallArguments {
        index,
        arguments: a.into(),
    }
}

#[test]
fn completions_stream_whole_and_split_tool_calls() {
    // xAI: text, then each call whole in one chunk.
    let got = completions(&[
        json!({"choices": [{"delta": {"content": "Checking."}}]}),
        json!({"choices": [{"delta": {"tool_calls": [
            {"index": 0, "id": "c0", "type": "function", "function": {"name": "a", "arguments": "{\"x\":1}"}},
            {"index": 1, "id": "c1", "type": "function", "function": {"name": "b", "arguments": "{}"}}
        ]}, "finish_reason": "tool_calls"}]}),
        json!({"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}}),
    ])
    .unwrap();
    assert_eq!(
        got,
        vec![
            ChatChunk::Text("Checking.".into()),
            start(0, "c0", "a"),
            args(0, "{\"x\":1}"),
            start(1, "c1", "b"),
            args(1, "{}"),
            ChatChunk::Usage(Usage {
                input_tokens: 1,
                output_tokens: 2,
                reasoning_tokens: None,
                cached_input_tokens: None,
                total_tokens: 3
            }),
            ChatChunk::Finish(FinishReason::ToolCalls),
        ]
    );
    // OpenAI: id and name first, arguments spread, interleaved by index.
    let got = completions(&[
        json!({"choices": [{"delta": {"tool_calls": [{"index": 0, "id": "c0", "function": {"name": "a", "arguments": ""}}]}}]}),
        json!({"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{\"x\""}}]}}]}),
        json!({"choices": [{"delta": {"tool_calls": [{"index": 1, "id": "c1", "function": {"name": "b"}}]}}]}),
        json!({"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]}}]}),
        json!({"choices": [{"delta": {}, "finish_reason": "tool_calls"}]}),
    ])
    .unwrap();
    assert_eq!(
        got,
        vec![
            start(0, "c0", "a"),
            args(0, "{\"x\""),
            start(1, "c1", "b"),
            args(0, ":1}"),
            ChatChunk::Finish(FinishReason::ToolCalls),
        ]
    );
    // Arguments before the name are held until the call can start.
    let got = completions(&[
        json!({"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{"}}]}}]}),
        json!({"choices": [{"delta": {"tool_calls": [{"index": 0, "id": "c", "function": {"name": "a", "arguments": "}"}}]}}]}),
    ])
    .unwrap();
    assert_eq!(got, vec![start(0, "c", "a"), args(0, "{"), args(0, "}")]);
    // A call that never names its function is an error, not a silent drop.
    assert!(completions(&[json!({"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}}]})]).is_err());
}

fn responses(events: &[Value]) -> Result<Vec<ChatChunk>, ProviderError> {
    let mut a = ResponsesAssembler::default();
    let mut out = std::collections::VecDeque::new();
    let mut done = false;
    for e in events {
        done = a.on_event(&e.to_string(), None, &mut out)?;
    }
    assert!(done, "no terminal event");
    Ok(out.into())
}

fn added(id: &str, call: &str, name: &str, out: u32) -> Value {
    json!({"type": "response.output_item.added", "output_index": out,
           "item": {"type": "function_call", "id": id, "call_id": call, "name": name, "arguments": ""}})
}

fn item_done(id: &str, call: &str, name: &str, out: u32, arguments: &str) -> Value {
    json!({"type": "response.output_item.done", "output_index": out,
           "item": {"type": "function_call", "id": id, "call_id": call, "name": name, "arguments": arguments}})
}

fn completed() -> Value {
    json!({"type": "response.completed", "response": {"status": "completed"}})
}

#[test]
fn responses_stream_tool_calls_however_the_arguments_come() {
    let expected = vec![
        ChatChunk::Text("Calling.".into()),
        start(0, "call_a", "f"),
        args(0, "{\"x\":1}"),
        ChatChunk::Finish(FinishReason::ToolCalls),
    ];
    let text = json!({"type": "response.output_text.delta", "item_id": "msg", "delta": "Calling."});
    let done_args = json!({"type": "response.function_call_arguments.done", "item_id": "fc", "output_index": 1, "arguments": "{\"x\":1}"});
    // Deltas, split.
    let split = responses(&[
        text.clone(),
        added("fc", "call_a", "f", 1),
        json!({"type": "response.function_call_arguments.delta", "item_id": "fc", "output_index": 1, "delta": "{\"x\""}),
        json!({"type": "response.function_call_arguments.delta", "item_id": "fc", "output_index": 1, "delta": ":1}"}),
        done_args.clone(),
        item_done("fc", "call_a", "f", 1, "{\"x\":1}"),
        completed(),
    ])
    .unwrap();
    let joined: String = split
        .iter()
        .filter_map(|c| match c {
            ChatChunk::ToolCallArguments { arguments, .. } => Some(arguments.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(joined, "{\"x\":1}");
    // An empty delta, the arguments only in `.done`.
    let done_only = responses(&[
        text.clone(),
        added("fc", "call_a", "f", 1),
        json!({"type": "response.function_call_arguments.delta", "item_id": "fc", "output_index": 1, "delta": ""}),
        done_args,
        item_done("fc", "call_a", "f", 1, "{\"x\":1}"),
        completed(),
    ])
    .unwrap();
    assert_eq!(done_only, expected);
    // No `added` at all: the item's `done` starts and finishes the call.
    let item_only = responses(&[
        text,
        item_done("fc", "call_a", "f", 1, "{\"x\":1}"),
        completed(),
    ])
    .unwrap();
    assert_eq!(item_only, expected);
    // Contradicting arguments are an error.
    assert!(responses(&[
        added("fc", "call_a", "f", 1),
        json!({"type": "response.function_call_arguments.delta", "item_id": "fc", "delta": "{\"y\""}),
        item_done("fc", "call_a", "f", 1, "{\"x\":1}"),
        completed(),
    ])
    .is_err());
}

#[test]
fn responses_stream_reasoning_and_citations() {
    let got = responses(&[
        json!({"type": "response.reasoning_summary_text.delta", "item_id": "rs", "delta": "think"}),
        json!({"type": "response.output_item.done", "item": {"type": "reasoning", "id": "rs", "summary": [{"type": "summary_text", "text": "think"}], "encrypted_content": "E"}}),
        json!({"type": "response.output_text.delta", "item_id": "m", "delta": "Hi"}),
        json!({"type": "response.output_text.annotation.added", "item_id": "m", "annotation": {"type": "url_citation", "url": "https://s/", "start_index": 0, "end_index": 2}}),
        json!({"type": "response.output_item.done", "item": {"type": "message", "id": "m", "content": [{"type": "output_text", "text": "Hi", "annotations": [{"type": "url_citation", "url": "https://s/", "start_index": 0, "end_index": 2}]}]}}),
        json!({"type": "response.completed", "response": {"status": "completed", "usage": {"input_tokens": 1, "output_tokens": 1}}}),
    ])
    .unwrap();
    assert!(matches!(&got[0], ChatChunk::Reasoning(t) if t == "think"));
    assert!(matches!(&got[1], ChatChunk::ReasoningItem(r) if r.data.contains("\"E\"")));
    assert!(matches!(&got[2], ChatChunk::Text(t) if t == "Hi"));
    assert!(matches!(&got[3], ChatChunk::Citation(c) if c.url == "https://s/"));
    assert!(matches!(&got[4], ChatChunk::Usage(_)));
    assert_eq!(got[5], ChatChunk::Finish(FinishReason::Stop));
    assert_eq!(got.len(), 6, "{got:?}");
    // A server that sends only the finished items.
    let got = responses(&[
        json!({"type": "response.output_item.done", "item": {"type": "message", "id": "m", "content": [{"type": "output_text", "text": "Whole"}]}}),
        completed(),
    ])
    .unwrap();
    assert_eq!(
        got,
        vec![
            ChatChunk::Text("Whole".into()),
            ChatChunk::Finish(FinishReason::Stop)
        ]
    );
}

#[test]
fn streamed_reasoning_parts_join_as_the_complete_reply_does() {
    let got = responses(&[
        json!({"type": "response.reasoning_summary_text.delta", "item_id": "rs_1", "summary_index": 0, "delta": "A"}),
        json!({"type": "response.reasoning_summary_text.delta", "item_id": "rs_1", "summary_index": 1, "delta": "B"}),
        json!({"type": "response.output_item.done", "item": {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "A"}, {"type": "summary_text", "text": "B"}]}}),
        completed(),
    ])
    .unwrap();
    let streamed: String = got
        .iter()
        .filter_map(|c| match c {
            ChatChunk::Reasoning(t) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    let whole = parse_reply(
        &responses_route(),
        &json!({"status": "completed", "output": [{"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "A"}, {"type": "summary_text", "text": "B"}]}]}),
    )
    .unwrap();
    assert_eq!(Some(streamed.as_str()), whole.reasoning.as_deref());
}

#[test]
fn sampling_numbers_are_the_decimals_written() {
    for (t, text) in [
        (0.7f32, "0.7"),
        (1.0, "1.0"),
        (0.0, "0.0"),
        (0.05, "0.05"),
        (1.9, "1.9"),
    ] {
        assert_eq!(decimal(t).unwrap().to_string(), text);
    }
    assert!(decimal(f32::NAN).is_none());
    assert!(decimal(f32::INFINITY).is_none());
}

#[test]
fn duplicate_tool_names_are_refused() {
    let mut r = req("grok-4.3");
    let tool = FunctionTool {
        name: "f".into(),
        description: None,
        parameters: None,
        strict: None,
    };
    r.tools = vec![tool.clone(), tool];
    let e = check_tools(&r).unwrap_err();
    assert!(e.to_string().contains("tool f is declared twice"), "{e}");
}

#[test]
fn responses_stream_cites_one_url_once_per_place() {
    let cite = |start: Value| json!({"type": "response.output_text.annotation.added", "item_id": "m", "annotation": {"type": "url_citation", "url": "https://s/", "start_index": start, "end_index": 2}});
    let got = responses(&[
        cite(json!(0)),
        cite(json!(0)),
        cite(json!(1)),
        cite(json!(null)),
        cite(json!(null)),
        completed(),
    ])
    .unwrap();
    let places: Vec<Option<u32>> = got
        .iter()
        .filter_map(|c| match c {
            ChatChunk::Citation(c) => Some(c.start_index),
            _ => None,
        })
        .collect();
    assert_eq!(places, vec![Some(0), Some(1), None], "{got:?}");
}
