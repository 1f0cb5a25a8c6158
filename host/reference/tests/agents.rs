//! Agent features of the reference model API on both lanes, whole and streamed: request
//! validation, scripted tool calls and their streaming styles, tool results, images,
//! reasoning, structured output, citations and token usage (cached tokens included).

mod support;

use provider_reference::{ApiConfig, ApiHandle, ApiServer, ToolStreamStyle};
use serde_json::{Value, json};
use support::{Event, parse_sse, post_json};

const QUESTION: &str = "weather in Paris?";
const PNG: &str = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";

async fn api(tier: u32) -> ApiHandle {
    ApiServer::start(ApiConfig {
        default_tier: tier,
        ..ApiConfig::default()
    })
    .await
    .unwrap()
}

fn chat_url(api: &ApiHandle) -> String {
    format!("{}/chat/completions", api.base_url())
}

fn responses_url(api: &ApiHandle) -> String {
    format!("{}/responses", api.base_url())
}

/// Chat completions function tools.
fn chat_tools(names: &[&str]) -> Value {
    names
        .iter()
        .map(|n| {
            json!({"type": "function", "function": {"name": n, "description": "d",
                   "parameters": {"type": "object", "properties": {"text": {"type": "string"}}},
                   "strict": true}})
        })
        .collect()
}

/// Responses function tools (flat).
fn responses_tools(names: &[&str]) -> Value {
    names
        .iter()
        .map(|n| json!({"type": "function", "name": n, "parameters": {"type": "object"}}))
        .collect()
}

fn chat_with_tools(names: &[&str]) -> Value {
    json!({"model": "grok-4.3", "tools": chat_tools(names),
           "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": QUESTION}]})
}

fn responses_with_tools(names: &[&str]) -> Value {
    json!({"model": "grok-4.3", "tools": responses_tools(names), "instructions": "s",
           "input": [{"type": "message", "role": "user",
                      "content": [{"type": "input_text", "text": QUESTION}]}]})
}

fn arguments() -> String {
    json!({"text": QUESTION}).to_string()
}

fn streamed(mut body: Value) -> Value {
    body["stream"] = json!(true);
    body
}

async fn status_and_error(url: &str, body: &Value) -> (u16, String) {
    let r = post_json(url, "t", body).await;
    let error = r.json()["error"].as_str().unwrap_or_default().to_owned();
    (r.status, error)
}

async fn events(url: &str, body: &Value) -> Vec<Event> {
    let r = post_json(url, "t", body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    parse_sse(&r.text())
}

/// Chat chunks without `[DONE]` (asserted last).
fn chunks(events: &[Event]) -> Vec<Value> {
    assert_eq!(events.last().unwrap().data, "[DONE]");
    events[..events.len() - 1].iter().map(Event::json).collect()
}

fn named(events: &[Event], name: &str) -> Vec<Value> {
    events
        .iter()
        .filter(|e| e.name.as_deref() == Some(name))
        .map(Event::json)
        .collect()
}

fn names(events: &[Event]) -> Vec<&str> {
    events.iter().map(|e| e.name.as_deref().unwrap()).collect()
}

fn text_of(chunks: &[Value], field: &str) -> String {
    chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"][field].as_str())
        .collect()
}

// ---------------------------------------------------------------- validation

#[tokio::test]
async fn chat_completions_accepts_every_agent_field() {
    let api = api(2).await;
    let body = json!({
        "model": "grok-4.20-0309-reasoning",
        "messages": [
            {"role": "developer", "content": "d"},
            {"role": "system", "content": [{"type": "text", "text": "s"}]},
            {"role": "user", "content": [{"type": "text", "text": "hi"},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "low"}}]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "r1"},
            {"role": "user", "content": "again", "name": "u"},
        ],
        "tools": chat_tools(&["f"]), "tool_choice": {"type": "function", "function": {"name": "f"}},
        "parallel_tool_calls": false,
        "response_format": {"type": "json_schema",
            "json_schema": {"name": "out", "schema": {"type": "object"}, "strict": true}},
        "stop": ["x", "y"], "seed": 7, "top_p": 0.5, "temperature": 1.5,
        "max_tokens": 100, "max_completion_tokens": 100, "reasoning_effort": "high",
        "stream_options": {"include_usage": true}, "search_parameters": {"mode": "auto"},
    });
    let r = post_json(&chat_url(&api), "t", &body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(api.stats().invalid_requests, 0);
}

#[tokio::test]
async fn chat_completions_refuses_malformed_agent_fields() {
    let api = api(1).await;
    let url = chat_url(&api);
    let user = json!({"role": "user", "content": "hi"});
    let call = json!({"role": "assistant", "content": "",
        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]});
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"messages": [{"role": "robot", "content": "x"}]}),
            "role",
        ),
        (json!({"messages": [{"role": "user"}]}), "content"),
        (
            json!({"messages": [{"role": "user", "content": 5}]}),
            "content",
        ),
        (
            json!({"messages": [{"role": "assistant", "content": null}]}),
            "tool_calls",
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "audio"}]}]}),
            "type",
        ),
        (
            json!({"messages": [{"role": "system", "content": [{"type": "image_url",
            "image_url": {"url": "https://example.com/a.png"}}]}]}),
            "type",
        ),
        (
            json!({"messages": [user, {"role": "tool", "tool_call_id": "c1", "content": "r"}]}),
            "tool_call_id",
        ),
        (
            json!({"messages": [user, call, {"role": "tool", "tool_call_id": "c2", "content": "r"}]}),
            "tool_call_id",
        ),
        (
            json!({"messages": [user, call, {"role": "tool", "content": "r"}]}),
            "tool_call_id",
        ),
        (
            json!({"messages": [user, {"role": "assistant", "tool_calls": [
            {"id": "c", "type": "function", "function": {"name": "f", "arguments": {}}}]}]}),
            "arguments",
        ),
        (
            json!({"messages": [user], "tools": [{"type": "function", "function": {"name": "a b"}}]}),
            "tools[0].function.name",
        ),
        (
            json!({"messages": [user], "tools": [{"type": "web_search"}]}),
            "tools[0].type",
        ),
        (
            json!({"messages": [user], "tools": [{"type": "function", "function": {"name": "f",
            "parameters": "no"}}]}),
            "parameters",
        ),
        (
            json!({"messages": [user], "tools": chat_tools(&["f", "f"])}),
            "duplicate",
        ),
        (
            json!({"messages": [user], "tools": chat_tools(&["f"]),
            "tool_choice": {"type": "function", "function": {"name": "g"}}}),
            "tool_choice",
        ),
        (
            json!({"messages": [user], "tool_choice": "sometimes"}),
            "tool_choice",
        ),
        (
            json!({"messages": [user], "tool_choice": "required"}),
            "tool_choice",
        ),
        (
            json!({"messages": [user], "parallel_tool_calls": "yes"}),
            "parallel_tool_calls",
        ),
        (
            json!({"messages": [user], "response_format": {"type": "xml"}}),
            "format",
        ),
        (
            json!({"messages": [user], "response_format": {"type": "json_schema",
            "json_schema": {"name": "x"}}}),
            "schema",
        ),
        (
            json!({"messages": [user], "response_format": {"type": "json_schema",
            "json_schema": {"name": "x", "schema": "object"}}}),
            "schema",
        ),
        (json!({"messages": [user], "stop": 3}), "stop"),
        (
            json!({"messages": [user], "stop": ["a", "b", "c", "d", "e"]}),
            "stop",
        ),
        (json!({"messages": [user], "seed": "7"}), "seed"),
        (json!({"messages": [user], "top_p": 1.5}), "top_p"),
        (
            json!({"messages": [user], "temperature": -1}),
            "temperature",
        ),
        (json!({"messages": [user], "max_tokens": 0}), "max_tokens"),
        (
            json!({"messages": [user], "max_completion_tokens": "9"}),
            "max_completion_tokens",
        ),
        (
            json!({"messages": [user], "reasoning_effort": "max"}),
            "reasoning_effort",
        ),
        (json!({"messages": [user], "stream": "yes"}), "stream"),
        (
            json!({"messages": [user], "search_parameters": {"mode": "always"}}),
            "mode",
        ),
    ];
    let count = cases.len() as u64;
    for (mut body, needle) in cases {
        body["model"] = json!("grok-4.3");
        let (status, error) = status_and_error(&url, &body).await;
        assert_eq!(status, 400, "{body}");
        assert!(
            error.contains(needle),
            "{needle:?} not in {error:?} for {body}"
        );
    }
    assert_eq!(api.stats().invalid_requests, count);
}

#[tokio::test]
async fn responses_accepts_every_agent_field() {
    let api = api(1).await;
    let body = json!({
        "model": "grok-4.3", "instructions": "be brief",
        "input": [
            {"type": "message", "role": "developer", "content": "d"},
            {"role": "user", "content": [{"type": "input_text", "text": "hi"},
                {"type": "input_image", "image_url": PNG, "detail": "high"}]},
            {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "t"}]},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "a"},
                {"type": "refusal", "refusal": "no"}]},
            {"type": "function_call", "id": "fc_1", "call_id": "c1", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "r"},
            {"type": "message", "role": "user", "content": "again"},
        ],
        "tools": [{"type": "function", "name": "f", "description": "d", "parameters": {}, "strict": false},
                  {"type": "web_search"}, {"type": "x_search"}],
        "tool_choice": "required", "parallel_tool_calls": true,
        "text": {"format": {"type": "json_schema", "name": "out", "schema": {"type": "object"}, "strict": true}},
        "include": ["reasoning.encrypted_content"], "prompt_cache_key": "k", "store": false,
        "reasoning": {"effort": "low"}, "top_p": 1, "temperature": 0, "max_output_tokens": 64,
    });
    let r = post_json(&responses_url(&api), "t", &body).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn responses_refuses_malformed_agent_fields() {
    let api = api(1).await;
    let url = responses_url(&api);
    let user = json!({"type": "message", "role": "user", "content": "hi"});
    let call = json!({"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"});
    let cases: Vec<(Value, &str)> = vec![
        (json!({"input": 5}), "input"),
        (
            json!({"input": [user, {"type": "item_reference", "id": "x"}]}),
            "type",
        ),
        (
            json!({"input": [{"type": "message", "role": "robot", "content": "x"}]}),
            "role",
        ),
        (
            json!({"input": [{"type": "message", "role": "user", "content": [{"type": "output_text",
            "text": "x"}]}]}),
            "type",
        ),
        (
            json!({"input": [user, {"type": "message", "role": "assistant", "content": [
            {"type": "input_text", "text": "x"}]}]}),
            "type",
        ),
        (
            json!({"input": [{"type": "message", "role": "user", "content": [{"type": "input_image"}]}]}),
            "image_url",
        ),
        (
            json!({"input": [user, {"type": "function_call", "call_id": "c1", "name": "f"}]}),
            "arguments",
        ),
        (
            json!({"input": [user, {"type": "function_call_output", "call_id": "c1", "output": "r"}]}),
            "call_id",
        ),
        (
            json!({"input": [user, call, {"type": "function_call_output", "call_id": "c2",
            "output": "r"}]}),
            "call_id",
        ),
        (
            json!({"input": [user, call, {"type": "function_call_output", "call_id": "c1",
            "output": 3}]}),
            "output",
        ),
        (
            json!({"input": [user, {"type": "reasoning", "id": "rs"}]}),
            "summary",
        ),
        (
            json!({"input": [user, {"type": "reasoning", "summary": [{"type": "x", "text": "t"}]}]}),
            "summary[0].type",
        ),
        (
            json!({"input": [user, {"type": "reasoning", "summary": [], "encrypted_content": "forged"}]}),
            "encrypted_content",
        ),
        (
            json!({"input": "hi", "tools": [{"type": "function"}]}),
            "name",
        ),
        (
            json!({"input": "hi", "tools": [{"type": "code_interpreter"}]}),
            "type",
        ),
        (
            json!({"input": "hi", "tools": responses_tools(&["f"]),
            "tool_choice": {"type": "function", "name": "g"}}),
            "tool_choice",
        ),
        (
            json!({"input": "hi", "tool_choice": {"type": "function"}}),
            "tool_choice",
        ),
        (
            json!({"input": "hi", "parallel_tool_calls": 1}),
            "parallel_tool_calls",
        ),
        (
            json!({"input": "hi", "text": {"format": {"type": "json_schema", "name": "x"}}}),
            "schema",
        ),
        (
            json!({"input": "hi", "text": {"format": {"type": "json_schema", "schema": {}}}}),
            "name",
        ),
        (
            json!({"input": "hi", "text": {"format": {"type": "yaml"}}}),
            "format",
        ),
        (json!({"input": "hi", "include": ["everything"]}), "include"),
        (
            json!({"input": "hi", "prompt_cache_key": 5}),
            "prompt_cache_key",
        ),
        (json!({"input": "hi", "store": "no"}), "store"),
        (
            json!({"input": "hi", "reasoning": {"effort": "max"}}),
            "effort",
        ),
        (
            json!({"input": "hi", "instructions": ["x"]}),
            "instructions",
        ),
        (json!({"input": "hi", "top_p": 2}), "top_p"),
        (json!({"input": "hi", "temperature": "hot"}), "temperature"),
        (
            json!({"input": "hi", "max_output_tokens": -1}),
            "max_output_tokens",
        ),
    ];
    for (mut body, needle) in cases {
        body["model"] = json!("grok-4.3");
        let (status, error) = status_and_error(&url, &body).await;
        assert_eq!(status, 400, "{body}");
        assert!(
            error.contains(needle),
            "{needle:?} not in {error:?} for {body}"
        );
    }
}

#[tokio::test]
async fn image_urls_must_be_https_or_base64_images() {
    let api = api(1).await;
    for url in [
        "http://example.com/a.png",
        "https://",
        "ftp://example.com/a.png",
        "data:image/bmp;base64,AAAA",
        "data:text/plain;base64,AAAA",
        "data:image/png,rawbytes",
        "data:image/png;base64,!!!",
        "data:image/png;base64,",
    ] {
        let chat = json!({"model": "grok-4.3", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": url}}]}]});
        assert_eq!(
            status_and_error(&chat_url(&api), &chat).await.0,
            400,
            "{url}"
        );
        let responses = json!({"model": "grok-4.3", "input": [{"role": "user", "content": [
            {"type": "input_image", "image_url": url}]}]});
        assert_eq!(
            status_and_error(&responses_url(&api), &responses).await.0,
            400,
            "{url}"
        );
    }
    let bad_detail = json!({"model": "grok-4.3", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "max"}}]}]});
    assert_eq!(status_and_error(&chat_url(&api), &bad_detail).await.0, 400);
}

#[tokio::test]
async fn images_show_in_the_echo_on_both_lanes() {
    let api = api(1).await;
    let expected = "Echo: Describe these. [image https://example.com/cat.png detail=high] [image data:image/png]";
    let chat = json!({"model": "grok-4.3", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "Describe these."},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "high"}},
        {"type": "image_url", "image_url": {"url": PNG}}]}]});
    let body = post_json(&chat_url(&api), "t", &chat).await.json();
    assert_eq!(body["choices"][0]["message"]["content"], expected);
    let responses = json!({"model": "grok-4.3", "input": [{"role": "user", "content": [
        {"type": "input_text", "text": "Describe these."},
        {"type": "input_image", "image_url": "https://example.com/cat.png", "detail": "high"},
        {"type": "input_image", "image_url": PNG}]}]});
    let body = post_json(&responses_url(&api), "t", &responses)
        .await
        .json();
    assert_eq!(body["output"][0]["content"][0]["text"], expected);
}

// ---------------------------------------------------------------- multi-agent

#[tokio::test]
async fn multi_agent_models_refuse_client_tools_but_not_server_tools() {
    let api = api(4).await;
    let mut body = responses_with_tools(&["get_weather"]);
    body["model"] = json!("grok-4.20-multi-agent-0309");
    let r = post_json(&responses_url(&api), "t", &body).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json(),
        json!({"code": "Client specified an invalid argument",
               "error": "Client-side tools for multi-agent models require beta access"})
    );
    for tool in ["web_search", "x_search"] {
        body["tools"] = json!([{"type": tool}]);
        assert_eq!(
            post_json(&responses_url(&api), "t", &body).await.status,
            200
        );
    }
    // Other models take client tools.
    let r = post_json(
        &responses_url(&api),
        "t",
        &responses_with_tools(&["get_weather"]),
    )
    .await;
    assert_eq!(r.status, 200);
}

// ---------------------------------------------------------------- tool calls, whole

#[tokio::test]
async fn chat_completions_calls_every_tool_then_answers_the_results() {
    let api = api(1).await;
    let url = chat_url(&api);
    let body = post_json(&url, "t", &chat_with_tools(&["get_weather", "get_time"]))
        .await
        .json();
    let choice = &body["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(
        choice["message"]["content"],
        "Calling get_weather, get_time."
    );
    assert_eq!(
        choice["message"]["tool_calls"],
        json!([
            {"id": "call_000001_0", "type": "function",
             "function": {"name": "get_weather", "arguments": arguments()}},
            {"id": "call_000001_1", "type": "function",
             "function": {"name": "get_time", "arguments": arguments()}},
        ])
    );
    assert_eq!(arguments(), r#"{"text":"weather in Paris?"}"#, "compact");

    // The results go back; the model answers from them, in order.
    let mut next = chat_with_tools(&["get_weather", "get_time"]);
    let messages = next["messages"].as_array_mut().unwrap();
    messages.push(choice["message"].clone());
    messages.push(json!({"role": "tool", "tool_call_id": "call_000001_0", "content": "sunny"}));
    messages.push(json!({"role": "tool", "tool_call_id": "call_000001_1",
                         "content": [{"type": "text", "text": "noon"}]}));
    let body = post_json(&url, "t", &next).await.json();
    let choice = &body["choices"][0];
    assert_eq!(choice["message"]["content"], "Tool results: sunny; noon");
    assert_eq!(choice["finish_reason"], "stop");
    assert!(choice["message"].get("tool_calls").is_none());
}

#[tokio::test]
async fn tool_choice_and_parallel_tool_calls_decide_the_calls() {
    let api = api(1).await;
    let url = chat_url(&api);
    let calls = |body: &Value| -> Vec<String> {
        body["choices"][0]["message"]["tool_calls"]
            .as_array()
            .map(|c| {
                c.iter()
                    .map(|c| c["function"]["name"].as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut body = chat_with_tools(&["a", "b", "c"]);
    body["parallel_tool_calls"] = json!(false);
    let r = post_json(&url, "t", &body).await.json();
    assert_eq!(calls(&r), ["a"]);
    assert_eq!(r["choices"][0]["message"]["content"], "Calling a.");

    let mut body = chat_with_tools(&["a", "b", "c"]);
    body["tool_choice"] = json!({"type": "function", "function": {"name": "b"}});
    assert_eq!(calls(&post_json(&url, "t", &body).await.json()), ["b"]);

    body["tool_choice"] = json!("required");
    assert_eq!(
        calls(&post_json(&url, "t", &body).await.json()),
        ["a", "b", "c"]
    );

    body["tool_choice"] = json!("none");
    let r = post_json(&url, "t", &body).await.json();
    assert!(calls(&r).is_empty());
    assert_eq!(
        r["choices"][0]["message"]["content"],
        "Echo: weather in Paris?"
    );
    assert_eq!(r["choices"][0]["finish_reason"], "stop");

    // The last word is the assistant's: no call, the echo.
    let mut body = chat_with_tools(&["a"]);
    body["messages"]
        .as_array_mut()
        .unwrap()
        .push(json!({"role": "assistant", "content": "done"}));
    assert!(calls(&post_json(&url, "t", &body).await.json()).is_empty());

    // Responses: the named function.
    let mut body = responses_with_tools(&["a", "b"]);
    body["tool_choice"] = json!({"type": "function", "name": "b"});
    let r = post_json(&responses_url(&api), "t", &body).await.json();
    let output = r["output"].as_array().unwrap();
    assert_eq!(output.len(), 2);
    assert_eq!(output[1]["name"], "b");
}

#[tokio::test]
async fn responses_calls_as_function_call_items_then_answers_the_results() {
    let api = api(1).await;
    let url = responses_url(&api);
    let body = post_json(
        &url,
        "t",
        &responses_with_tools(&["get_weather", "get_time"]),
    )
    .await
    .json();
    assert_eq!(body["status"], "completed");
    let output = body["output"].as_array().unwrap();
    assert_eq!(output.len(), 3);
    assert_eq!(output[0]["type"], "message");
    assert_eq!(
        output[0]["content"][0]["text"],
        "Calling get_weather, get_time."
    );
    for (i, name) in ["get_weather", "get_time"].into_iter().enumerate() {
        assert_eq!(
            output[i + 1],
            json!({"type": "function_call", "id": format!("fc_000001_{i}"),
                   "call_id": format!("call_000001_{i}"), "name": name,
                   "arguments": arguments(), "status": "completed"})
        );
    }

    let mut next = responses_with_tools(&["get_weather", "get_time"]);
    let input = next["input"].as_array_mut().unwrap();
    input.push(json!({"type": "message", "role": "assistant",
                      "content": "Calling get_weather, get_time."}));
    for (i, out) in ["sunny", "noon"].into_iter().enumerate() {
        input.push(
            json!({"type": "function_call", "call_id": format!("call_000001_{i}"),
                          "name": output[i + 1]["name"], "arguments": arguments()}),
        );
        input.push(json!({"type": "function_call_output",
                          "call_id": format!("call_000001_{i}"), "output": out}));
    }
    let body = post_json(&url, "t", &next).await.json();
    let output = body["output"].as_array().unwrap();
    assert_eq!(output.len(), 1);
    assert_eq!(output[0]["content"][0]["text"], "Tool results: sunny; noon");
}

// ---------------------------------------------------------------- tool calls, streamed

/// The chat chunks of a two-tool stream under `style`: preamble text, then the calls.
async fn chat_tool_stream(api: &ApiHandle) -> Vec<Value> {
    let chunks = chunks(&events(&chat_url(api), &streamed(chat_with_tools(&["a", "b"]))).await);
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(text_of(&chunks, "content"), "Calling a, b.");
    let n = chunks.len();
    assert_eq!(chunks[n - 2]["choices"][0]["finish_reason"], "tool_calls");
    assert!(chunks[n - 1]["usage"]["completion_tokens"].is_u64());
    // Text first, then only tool call chunks.
    let first_call = chunks
        .iter()
        .position(|c| c["choices"][0]["delta"]["tool_calls"].is_array())
        .unwrap();
    assert!(
        chunks[first_call..n - 2]
            .iter()
            .all(|c| c["choices"][0]["delta"]["tool_calls"].is_array()
                && c["choices"][0]["delta"].get("content").is_none())
    );
    chunks[first_call..n - 2]
        .iter()
        .map(|c| c["choices"][0]["delta"]["tool_calls"][0].clone())
        .collect()
}

#[tokio::test]
async fn chat_completions_streams_tool_calls_whole_or_split() {
    let api = api(1).await;
    assert_eq!(api.tool_stream_style(), ToolStreamStyle::Whole);
    let calls = chat_tool_stream(&api).await;
    assert_eq!(
        calls,
        vec![
            json!({"index": 0, "id": "call_000001_0", "type": "function",
                   "function": {"name": "a", "arguments": arguments()}}),
            json!({"index": 1, "id": "call_000001_1", "type": "function",
                   "function": {"name": "b", "arguments": arguments()}}),
        ],
        "xAI's way: each call in one chunk"
    );
    for style in [ToolStreamStyle::Split, ToolStreamStyle::DoneOnly] {
        api.set_tool_stream_style(style);
        let calls = chat_tool_stream(&api).await;
        let pieces = arguments().len().div_ceil(7);
        assert_eq!(calls.len(), 2 * (1 + pieces), "{style:?}");
        for (index, per_call) in calls.chunks(1 + pieces).enumerate() {
            assert_eq!(per_call[0]["index"], index);
            assert_eq!(per_call[0]["type"], "function");
            assert!(per_call[0]["id"].as_str().unwrap().starts_with("call_"));
            assert_eq!(per_call[0]["function"]["arguments"], "");
            let mut joined = String::new();
            for piece in &per_call[1..] {
                assert_eq!(
                    piece.as_object().unwrap().len(),
                    2,
                    "only index and function: {piece}"
                );
                assert_eq!(piece["index"], index);
                let p = piece["function"]["arguments"].as_str().unwrap();
                assert!(!p.is_empty() && p.len() <= 7);
                assert!(piece["function"].get("name").is_none());
                joined.push_str(p);
            }
            assert_eq!(joined, arguments());
        }
    }
}

#[tokio::test]
async fn the_initial_tool_stream_style_comes_from_the_config() {
    let api = ApiServer::start(ApiConfig {
        tool_stream_style: ToolStreamStyle::Split,
        ..ApiConfig::default()
    })
    .await
    .unwrap();
    assert_eq!(api.tool_stream_style(), ToolStreamStyle::Split);
    let calls = chat_tool_stream(&api).await;
    assert_eq!(
        calls[0]["function"]["arguments"], "",
        "split from the start"
    );
}

/// The events of a two-tool Responses stream (the server's `seq`-th request) and the
/// argument deltas per call.
async fn responses_tool_stream(api: &ApiHandle, seq: u64) -> (Vec<Event>, Vec<Vec<String>>) {
    let events = events(
        &responses_url(api),
        &streamed(responses_with_tools(&["a", "b"])),
    )
    .await;
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.json()["sequence_number"], i);
        assert_eq!(e.json()["type"], e.name.as_deref().unwrap());
    }
    let mut deltas = vec![Vec::new(), Vec::new()];
    for d in named(&events, "response.function_call_arguments.delta") {
        let index = d["output_index"].as_u64().unwrap() as usize - 1;
        assert_eq!(d["item_id"], format!("fc_{seq:06}_{index}"));
        deltas[index].push(d["delta"].as_str().unwrap().to_owned());
    }
    // Per call: added (no arguments), the deltas, done, item done (whole).
    let call_events: Vec<&str> = names(&events)
        .into_iter()
        .filter(|n| n.contains("function_call") || n.contains("output_item"))
        .collect();
    let mut expected = vec!["response.output_item.added", "response.output_item.done"];
    for d in &deltas {
        expected.push("response.output_item.added");
        expected.extend(std::iter::repeat_n(
            "response.function_call_arguments.delta",
            d.len(),
        ));
        expected.push("response.function_call_arguments.done");
        expected.push("response.output_item.done");
    }
    assert_eq!(call_events, expected);
    let added = named(&events, "response.output_item.added");
    let done = named(&events, "response.function_call_arguments.done");
    let items_done = named(&events, "response.output_item.done");
    for i in 0..2 {
        assert_eq!(added[i + 1]["output_index"], i + 1);
        assert_eq!(added[i + 1]["item"]["type"], "function_call");
        assert_eq!(added[i + 1]["item"]["arguments"], "");
        assert_eq!(
            added[i + 1]["item"]["call_id"],
            format!("call_{seq:06}_{i}")
        );
        assert_eq!(
            done[i],
            json!({"type": "response.function_call_arguments.done",
                   "sequence_number": done[i]["sequence_number"],
                   "item_id": format!("fc_{seq:06}_{i}"), "output_index": i + 1,
                   "arguments": arguments()})
        );
        assert_eq!(items_done[i + 1]["item"]["arguments"], arguments());
        assert_eq!(items_done[i + 1]["item"]["status"], "completed");
    }
    let completed = events.last().unwrap();
    assert_eq!(completed.name.as_deref(), Some("response.completed"));
    let output = completed.json()["response"]["output"].clone();
    assert_eq!(output.as_array().unwrap().len(), 3);
    assert_eq!(output[2]["arguments"], arguments());
    (events, deltas)
}

#[tokio::test]
async fn responses_streams_tool_calls_in_each_style() {
    let api = api(1).await;
    let (events, deltas) = responses_tool_stream(&api, 1).await;
    assert_eq!(deltas, vec![vec![arguments()], vec![arguments()]], "Whole");
    let text: String = named(&events, "response.output_text.delta")
        .iter()
        .map(|d| d["delta"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(text, "Calling a, b.", "the preamble before the calls");

    api.set_tool_stream_style(ToolStreamStyle::Split);
    let (_, deltas) = responses_tool_stream(&api, 2).await;
    for d in &deltas {
        assert_eq!(d.len(), arguments().len().div_ceil(7));
        assert!(d.iter().all(|p| !p.is_empty() && p.len() <= 7));
        assert_eq!(d.concat(), arguments());
    }

    api.set_tool_stream_style(ToolStreamStyle::DoneOnly);
    let (_, deltas) = responses_tool_stream(&api, 3).await;
    assert_eq!(
        deltas,
        vec![vec![String::new()], vec![String::new()]],
        "arguments only in .done"
    );
}

#[tokio::test]
async fn streamed_tool_results_answer() {
    let api = api(1).await;
    let mut body = streamed(chat_with_tools(&["a"]));
    let messages = body["messages"].as_array_mut().unwrap();
    messages.push(
        json!({"role": "assistant", "content": "Calling a.", "tool_calls": [
        {"id": "x1", "type": "function", "function": {"name": "a", "arguments": "{}"}}]}),
    );
    messages.push(json!({"role": "tool", "tool_call_id": "x1", "content": "sunny"}));
    let chunks = chunks(&events(&chat_url(&api), &body).await);
    assert_eq!(text_of(&chunks, "content"), "Tool results: sunny");
    assert!(
        chunks
            .iter()
            .all(|c| c["choices"][0]["delta"]["tool_calls"].is_null())
    );
    assert_eq!(
        chunks[chunks.len() - 2]["choices"][0]["finish_reason"],
        "stop"
    );
}

// ---------------------------------------------------------------- reasoning

#[tokio::test]
async fn chat_completions_streams_reasoning_before_the_text() {
    let api = ApiServer::start(ApiConfig {
        default_tier: 2,
        stream_chunk_bytes: 10,
        ..ApiConfig::default()
    })
    .await
    .unwrap();
    let body = json!({"model": "grok-4.20-0309-reasoning", "stream": true,
                      "messages": [{"role": "user", "content": "why"}]});
    let whole = post_json(
        &chat_url(&api),
        "t",
        &json!({"model": "grok-4.20-0309-reasoning",
        "messages": [{"role": "user", "content": "why"}]}),
    )
    .await
    .json();
    let reasoning = whole["choices"][0]["message"]["reasoning_content"]
        .as_str()
        .unwrap()
        .to_owned();
    let chunks = chunks(&events(&chat_url(&api), &body).await);
    assert_eq!(text_of(&chunks, "reasoning_content"), reasoning);
    let reasoning_chunks = chunks
        .iter()
        .take_while(|c| c["choices"][0]["delta"]["reasoning_content"].is_string())
        .count();
    assert_eq!(reasoning_chunks, reasoning.len().div_ceil(10), "in pieces");
    assert!(
        chunks[reasoning_chunks..]
            .iter()
            .all(|c| c["choices"][0]["delta"]["reasoning_content"].is_null()),
        "all reasoning before the text"
    );
    assert_eq!(text_of(&chunks, "content"), "Echo: why");
    let roles = chunks
        .iter()
        .filter(|c| c["choices"][0]["delta"]["role"].is_string())
        .count();
    assert_eq!(roles, 1, "role once, on the first chunk");
}

#[tokio::test]
async fn responses_reasoning_items_carry_a_summary_and_encrypted_content() {
    let api = api(4).await;
    let url = responses_url(&api);
    let mut body = json!({"model": "grok-4.20-multi-agent-0309", "input": "think first"});
    let plain = post_json(&url, "t", &body).await.json();
    let item = &plain["output"][0];
    assert_eq!(item["type"], "reasoning");
    assert_eq!(item["id"], "rs_000001");
    let summary = item["summary"][0]["text"].as_str().unwrap().to_owned();
    assert_eq!(item["summary"][0]["type"], "summary_text");
    assert!(!summary.is_empty());
    assert!(item.get("encrypted_content").is_none(), "not asked for");

    body["include"] = json!(["reasoning.encrypted_content"]);
    let whole = post_json(&url, "t", &body).await.json();
    let item = whole["output"][0].clone();
    assert_eq!(item["encrypted_content"], "enc_000002");

    // Streamed: added, summary deltas, done, all before the message.
    body["stream"] = json!(true);
    let events = events(&url, &body).await;
    let n = names(&events);
    let first_text = n
        .iter()
        .position(|n| *n == "response.output_text.delta")
        .unwrap();
    let reasoning_events: Vec<&str> = n[2..first_text].to_vec();
    assert_eq!(reasoning_events[0], "response.output_item.added");
    assert_eq!(reasoning_events[1], "response.reasoning_summary_part.added");
    assert!(reasoning_events.contains(&"response.reasoning_summary_text.delta"));
    let streamed: String = named(&events, "response.reasoning_summary_text.delta")
        .iter()
        .map(|d| d["delta"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(streamed, summary);
    let done = named(&events, "response.output_item.done");
    assert_eq!(done[0]["item"]["type"], "reasoning");
    assert_eq!(done[0]["item"]["encrypted_content"], "enc_000003");
    assert_eq!(done[0]["item"]["summary"][0]["text"], summary);

    // Passed back, the item reaches the model.
    let next = json!({"model": "grok-4.20-multi-agent-0309", "input": [
        {"role": "user", "content": "think first"}, item,
        {"type": "message", "role": "assistant", "content": "Echo: think first"},
        {"role": "user", "content": "and now?"}]});
    let again = post_json(&url, "t", &next).await.json();
    assert_eq!(
        again["output"][1]["content"][0]["text"],
        "Echo: and now? [reasoning returned]"
    );
}

// ---------------------------------------------------------------- structured output

#[tokio::test]
async fn structured_output_follows_the_schema_on_both_lanes() {
    let api = api(1).await;
    let schema = json!({"type": "object", "properties": {
        "answer": {"type": "string"}, "score": {"type": "number"}, "count": {"type": "integer"},
        "ok": {"type": "boolean"}, "maybe": {"type": ["string", "null"]}, "list": {"type": "array"}}});
    let expected = json!({"answer": "Echo: rate it", "score": 0, "count": 0, "ok": true,
                          "maybe": "Echo: rate it", "list": null});
    let chat = json!({"model": "grok-4.3", "messages": [{"role": "user", "content": "rate it"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "rating", "schema": schema}}});
    let body = post_json(&chat_url(&api), "t", &chat).await.json();
    let content = body["choices"][0]["message"]["content"].as_str().unwrap();
    assert_eq!(serde_json::from_str::<Value>(content).unwrap(), expected);

    let responses = json!({"model": "grok-4.3", "input": "rate it",
        "text": {"format": {"type": "json_schema", "name": "rating", "schema": schema, "strict": true}}});
    let body = post_json(&responses_url(&api), "t", &responses)
        .await
        .json();
    let text = body["output"][0]["content"][0]["text"].as_str().unwrap();
    assert_eq!(serde_json::from_str::<Value>(text).unwrap(), expected);

    let mut streamed = responses.clone();
    streamed["stream"] = json!(true);
    let text: String = named(
        &events(&responses_url(&api), &streamed).await,
        "response.output_text.delta",
    )
    .iter()
    .map(|d| d["delta"].as_str().unwrap().to_owned())
    .collect();
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), expected);

    let chat = json!({"model": "grok-4.3", "messages": [{"role": "user", "content": "hi"}],
                      "response_format": {"type": "json_object"}});
    let body = post_json(&chat_url(&api), "t", &chat).await.json();
    let content = body["choices"][0]["message"]["content"].as_str().unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(content).unwrap(),
        json!({"echo": "Echo: hi"})
    );
    let responses = json!({"model": "grok-4.3", "input": "hi",
                           "text": {"format": {"type": "json_object"}}});
    let body = post_json(&responses_url(&api), "t", &responses)
        .await
        .json();
    let text = body["output"][0]["content"][0]["text"].as_str().unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(text).unwrap(),
        json!({"echo": "Echo: hi"})
    );
}

// ---------------------------------------------------------------- citations

#[tokio::test]
async fn responses_cite_a_source_when_searching() {
    let api = api(1).await;
    let url = responses_url(&api);
    let citation = |text: &str| {
        json!({"type": "url_citation", "url": "https://example.com/source",
               "title": "Reference source", "start_index": 0, "end_index": text.chars().count()})
    };
    for (seq, tool) in [(1, "web_search"), (3, "x_search")] {
        let body = json!({"model": "grok-4.3", "input": "search ✓", "tools": [{"type": tool}]});
        let whole = post_json(&url, "t", &body).await.json();
        let part = &whole["output"][0]["content"][0];
        assert_eq!(part["text"], "Echo: search ✓");
        assert_eq!(part["annotations"], json!([citation("Echo: search ✓")]));
        assert_eq!(citation("Echo: search ✓")["end_index"], 14, "characters");

        let events = events(&url, &streamed(body)).await;
        let added = named(&events, "response.output_text.annotation.added");
        assert_eq!(added.len(), 1);
        assert_eq!(whole["output"][0]["id"], format!("msg_{seq:06}"));
        assert_eq!(added[0]["item_id"], format!("msg_{:06}", seq + 1));
        assert_eq!(added[0]["output_index"], 0);
        assert_eq!(added[0]["content_index"], 0);
        assert_eq!(added[0]["annotation_index"], 0);
        assert_eq!(added[0]["annotation"], citation("Echo: search ✓"));
        let n = names(&events);
        let at = n
            .iter()
            .position(|n| *n == "response.output_text.annotation.added")
            .unwrap();
        assert_eq!(n[at - 1], "response.output_text.delta");
        assert_eq!(n[at + 1], "response.output_text.done");
        let done = events.last().unwrap().json();
        assert_eq!(
            done["response"]["output"][0]["content"][0]["annotations"][0]["url"],
            "https://example.com/source"
        );
    }
    let plain = post_json(&url, "t", &json!({"model": "grok-4.3", "input": "x"}))
        .await
        .json();
    assert_eq!(plain["output"][0]["content"][0]["annotations"], json!([]));
}

#[tokio::test]
async fn chat_completions_cite_with_live_search() {
    let api = api(1).await;
    let url = chat_url(&api);
    let body = json!({"model": "grok-4.3", "messages": [{"role": "user", "content": "news"}],
                      "search_parameters": {"mode": "on"}});
    let whole = post_json(&url, "t", &body).await.json();
    assert_eq!(whole["citations"], json!(["https://example.com/source"]));
    let chunks = chunks(&events(&url, &streamed(body.clone())).await);
    let (last, rest) = chunks.split_last().unwrap();
    assert_eq!(last["citations"], json!(["https://example.com/source"]));
    assert!(rest.iter().all(|c| c.get("citations").is_none()));

    let mut off = body;
    off["search_parameters"] = json!({"mode": "off"});
    assert!(
        post_json(&url, "t", &off)
            .await
            .json()
            .get("citations")
            .is_none()
    );
    let plain = json!({"model": "grok-4.3", "messages": [{"role": "user", "content": "news"}]});
    assert!(
        post_json(&url, "t", &plain)
            .await
            .json()
            .get("citations")
            .is_none()
    );
}

// ---------------------------------------------------------------- usage

#[tokio::test]
async fn usage_follows_each_upstream() {
    let api = api(3).await;
    // xAI: completion_tokens exclude the reasoning tokens, the total adds them.
    let chat = json!({"model": "grok-4.6", "messages": [
        {"role": "system", "content": "be brief"}, {"role": "user", "content": "why"}]});
    let u = post_json(&chat_url(&api), "t", &chat).await.json()["usage"].clone();
    // Prompt: ceil(8/4)+4 + ceil(3/4)+4 = 11; completion "Echo: why" = 3; reasoning 16.
    assert_eq!(u["prompt_tokens"], 11);
    assert_eq!(u["completion_tokens"], 3);
    assert_eq!(u["completion_tokens_details"]["reasoning_tokens"], 16);
    assert_eq!(u["total_tokens"], 30);
    // OpenAI: output_tokens include the reasoning tokens.
    let responses = json!({"model": "grok-4.6", "instructions": "be brief", "input": "why"});
    let u = post_json(&responses_url(&api), "t", &responses)
        .await
        .json()["usage"]
        .clone();
    assert_eq!(u["input_tokens"], 11);
    assert_eq!(u["output_tokens"], 19);
    assert_eq!(u["output_tokens_details"]["reasoning_tokens"], 16);
    assert_eq!(u["total_tokens"], 30);
    // Tool calls count as output.
    let u = post_json(&chat_url(&api), "t", &chat_with_tools(&["f"]))
        .await
        .json()["usage"]
        .clone();
    let expected = "Calling f.".len().div_ceil(4) + 1 + arguments().len().div_ceil(4);
    assert_eq!(u["completion_tokens"], expected);
}

async fn chat_cached(api: &ApiHandle, key: Option<&str>, text: &str) -> (u64, u64) {
    let body = json!({"model": "grok-4.3", "messages": [{"role": "user", "content": text}]});
    let mut headers = vec![
        ("authorization", "Bearer t"),
        ("content-type", "application/json"),
    ];
    if let Some(key) = key {
        headers.push(("x-grok-conv-id", key));
    }
    let r = support::send(
        "POST",
        &chat_url(api),
        &headers,
        Some(body.to_string().into_bytes()),
    )
    .await
    .unwrap();
    let u = r.json()["usage"].clone();
    (
        u["prompt_tokens"].as_u64().unwrap(),
        u["prompt_tokens_details"]["cached_tokens"]
            .as_u64()
            .unwrap(),
    )
}

async fn responses_cached(api: &ApiHandle, key: Option<&str>, text: &str) -> (u64, u64) {
    let mut body = json!({"model": "grok-4.3", "input": text, "stream": true});
    if let Some(key) = key {
        body["prompt_cache_key"] = json!(key);
    }
    let events = events(&responses_url(api), &body).await;
    let u = events.last().unwrap().json()["response"]["usage"].clone();
    (
        u["input_tokens"].as_u64().unwrap(),
        u["input_tokens_details"]["cached_tokens"].as_u64().unwrap(),
    )
}

#[tokio::test]
async fn cached_tokens_count_the_previous_prompt_of_the_same_key() {
    let api = api(1).await;
    let long = "a prompt worth caching, long enough to count";
    let longer = "a prompt worth caching, long enough to count, and then some more";
    // Chat completions: the x-grok-conv-id header.
    let (first, cached) = chat_cached(&api, Some("conv-a"), long).await;
    assert_eq!(cached, 0, "first time");
    assert_eq!(
        chat_cached(&api, Some("conv-a"), long).await,
        (first, first)
    );
    let (_, cached) = chat_cached(&api, Some("conv-a"), longer).await;
    assert_eq!(cached, first, "the previous prompt");
    let (short, cached) = chat_cached(&api, Some("conv-a"), "hi").await;
    assert_eq!(cached, short, "at most this prompt");
    assert_eq!(
        chat_cached(&api, Some("conv-b"), long).await.1,
        0,
        "another key"
    );
    assert_eq!(chat_cached(&api, None, long).await.1, 0, "no key");
    assert_eq!(chat_cached(&api, None, long).await.1, 0, "no key, again");
    // Responses: prompt_cache_key, streamed here.
    let (first, cached) = responses_cached(&api, Some("conv-c"), long).await;
    assert_eq!(cached, 0);
    assert_eq!(
        responses_cached(&api, Some("conv-c"), long).await,
        (first, first)
    );
    assert_eq!(responses_cached(&api, None, long).await.1, 0);
}
