//! Streaming in both lanes: any chunking, terminal events, cuts and failures.

use grok_provider_core::{
    ChatChunk, ChatRequest, ChatStream, Citation, FinishReason, Lane, ProviderError, ReasoningItem,
    ToolCall, Usage,
};
use serde_json::json;

use crate::chat::{simple_request, tool_round_trip, weather_schema};
use crate::fakes::{FakeBody, response};
use crate::*;

pub const CC: &str = concat!(
    ": keep-alive\n\n",
    "data: {\"id\":\"1\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n",
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\r\n\r\n",
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo, w\u{f6}rld\"}}]}\n\n",
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\"hmm\"}}]}\n\n",
    "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
    "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4,\"total_tokens\":7,\"completion_tokens_details\":{\"reasoning_tokens\":1}}}\n\n",
    "data: [DONE]\n\n",
);

pub const RESP: &str = concat!(
    "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"status\":\"in_progress\"}}\n\n",
    "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"Multi\"}\n\n",
    ": ping\r\r",
    "event: response.output_text.delta\r\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"-agent \u{2713}\"}\r\n\r\n",
    "event: response.output_text.done\ndata: {\"type\":\"response.output_text.done\",\"text\":\"Multi-agent\"}\n\n",
    "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"status\":\"completed\",",
    "\"usage\":{\"input_tokens\":11,\"output_tokens\":22,\"total_tokens\":33,\"output_tokens_details\":{\"reasoning_tokens\":5}}}}\n\n",
);

pub const SSE: (&str, &str) = ("content-type", "text/event-stream; charset=utf-8");

pub fn open(h: &mut H, model: &str, body: FakeBody) -> Result<ChatStream<FakeBody>, ProviderError> {
    open_request(h, &simple_request(model), body)
}

pub fn open_request(
    h: &mut H,
    req: &ChatRequest,
    body: FakeBody,
) -> Result<ChatStream<FakeBody>, ProviderError> {
    let mut body = Some(body);
    h.t.push(move |_| Ok(response(200, &[SSE], body.take().expect("one request"))));
    h.p.open_chat_stream(req)
}

pub fn drain(s: &mut ChatStream<FakeBody>) -> Result<Vec<ChatChunk>, ProviderError> {
    let mut out = Vec::new();
    while let Some(c) = s.next_chunk()? {
        out.push(c);
    }
    // Stays ended.
    assert_eq!(s.next_chunk(), Ok(None));
    Ok(out)
}

fn text(chunks: &[ChatChunk]) -> String {
    assemble(chunks).text
}

/// What a stream said, put together: each kind of delta concatenated, each tool call
/// (in index order) with its arguments concatenated.
#[derive(Debug, Default, PartialEq)]
pub struct Assembled {
    pub text: String,
    pub reasoning: String,
    pub calls: Vec<ToolCall>,
    pub reasoning_items: Vec<ReasoningItem>,
    pub citations: Vec<Citation>,
    pub usage: Option<Usage>,
    pub finish: Option<FinishReason>,
}

/// Assemble `chunks`, checking the stream's promises on the way: indexes are 0, 1, ... in
/// order of their starts, a call's arguments come after its start, usage and finish come
/// once each, and nothing but those follows the finish.
pub fn assemble(chunks: &[ChatChunk]) -> Assembled {
    let mut a = Assembled::default();
    for c in chunks {
        assert!(a.finish.is_none(), "{c:?} after the finish");
        match c {
            ChatChunk::Text(t) => {
                assert!(!t.is_empty(), "empty text delta");
                a.text.push_str(t);
            }
            ChatChunk::Reasoning(t) => {
                assert!(!t.is_empty(), "empty reasoning delta");
                a.reasoning.push_str(t);
            }
            ChatChunk::ToolCallStart { index, id, name } => {
                assert_eq!(*index as usize, a.calls.len(), "start of {id} out of order");
                a.calls.push(ToolCall {
                    id: id.clone(),
                    name: name.clone(),
                    arguments: String::new(),
                });
            }
            ChatChunk::ToolCallArguments { index, arguments } => {
                let call = a
                    .calls
                    .get_mut(*index as usize)
                    .unwrap_or_else(|| panic!("arguments of call {index} before its start"));
                call.arguments.push_str(arguments);
            }
            ChatChunk::ReasoningItem(r) => a.reasoning_items.push(r.clone()),
            ChatChunk::Citation(c) => a.citations.push(c.clone()),
            ChatChunk::Usage(u) => {
                assert!(a.usage.is_none(), "usage twice");
                a.usage = Some(*u);
            }
            ChatChunk::Finish(f) => a.finish = Some(f.clone()),
        }
    }
    a
}

pub fn splits(bytes: &[u8], at: &[usize]) -> FakeBody {
    let mut chunks = Vec::new();
    let mut last = 0;
    for &i in at {
        chunks.push(bytes[last..i].to_vec());
        last = i;
    }
    chunks.push(bytes[last..].to_vec());
    FakeBody::chunks(chunks)
}

fn cc_expected() -> Vec<ChatChunk> {
    vec![
        ChatChunk::Text("Hel".into()),
        ChatChunk::Text("lo, wörld".into()),
        ChatChunk::Reasoning("hmm".into()),
        // OpenAI's convention (3 + 4 = 7): the reasoning token is already in the output.
        ChatChunk::Usage(Usage {
            input_tokens: 3,
            output_tokens: 4,
            reasoning_tokens: Some(1),
            cached_input_tokens: None,
            total_tokens: 7,
        }),
        ChatChunk::Finish(FinishReason::Stop),
    ]
}

#[test]
fn chat_completions_stream_request_and_chunks() {
    let mut h = H::connected(1);
    let mut s = ok(open(
        &mut h,
        "xai-grok/grok-4.3",
        FakeBody::bytes(CC.as_bytes()),
    ));
    assert_eq!(
        (s.lane(), s.model()),
        (Lane::ChatCompletions, "xai-grok/grok-4.3")
    );
    assert_eq!(drain(&mut s).unwrap(), cc_expected());
    let r = &h.t.requests()[0];
    assert_eq!(r.url, CHAT_URL);
    assert_eq!(header(r, "accept").as_deref(), Some("text/event-stream"));
    let b = body_json(r);
    assert_eq!(
        (b["stream"].clone(), b["stream_options"].clone()),
        (json!(true), json!({"include_usage": true}))
    );
}

#[test]
fn chat_completions_stream_at_every_boundary() {
    let bytes = CC.as_bytes();
    for i in 0..=bytes.len() {
        let mut h = H::connected(1);
        let mut s = open(&mut h, "grok-4.3", splits(bytes, &[i])).unwrap();
        assert_eq!(drain(&mut s).unwrap(), cc_expected(), "split at {i}");
    }
    let mut h = H::connected(1);
    let ones: Vec<usize> = (1..bytes.len()).collect();
    let mut s = open(&mut h, "grok-4.3", splits(bytes, &ones)).unwrap();
    let chunks = drain(&mut s).unwrap();
    assert_eq!(text(&chunks), "Hello, wörld");
}

fn resp_expected() -> Vec<ChatChunk> {
    vec![
        ChatChunk::Text("Multi".into()),
        ChatChunk::Text("-agent ✓".into()),
        ChatChunk::Usage(Usage {
            input_tokens: 11,
            output_tokens: 22,
            reasoning_tokens: Some(5),
            cached_input_tokens: None,
            total_tokens: 33,
        }),
        ChatChunk::Finish(FinishReason::Stop),
    ]
}

#[test]
fn responses_stream_at_every_boundary() {
    let bytes = RESP.as_bytes();
    let mut h = H::connected(4);
    let mut s = open(
        &mut h,
        "xai-grok/grok-4.20-multi-agent-0309",
        FakeBody::bytes(bytes),
    )
    .unwrap();
    assert_eq!(s.lane(), Lane::Responses);
    assert_eq!(drain(&mut s).unwrap(), resp_expected());
    let r = &h.t.requests()[0];
    assert_eq!(r.url, RESPONSES_URL);
    assert_eq!(body_json(r)["stream"], json!(true));
    for i in 0..=bytes.len() {
        for j in [i, (i + 7).min(bytes.len()), (i + 61).min(bytes.len())] {
            let mut h = H::connected(4);
            let mut s = open(&mut h, "grok-4.20-multi-agent-0309", splits(bytes, &[i, j])).unwrap();
            assert_eq!(drain(&mut s).unwrap(), resp_expected(), "split at {i},{j}");
        }
    }
}

/// Every cut before the terminal event is complete is an error, never a short reply.
fn assert_cuts_fail(model: &str, full: &str, terminal_end: usize) {
    let bytes = full.as_bytes();
    for cut in 0..bytes.len() {
        let mut h = H::connected(4);
        let mut s = open(&mut h, model, FakeBody::bytes(&bytes[..cut])).unwrap();
        let r = drain(&mut s);
        if cut < terminal_end {
            let e = r.expect_err(&format!("cut at {cut} must fail"));
            assert!(
                matches!(
                    e,
                    ProviderError::Network(_) | ProviderError::InvalidResponse(_)
                ),
                "{e:?}"
            );
            // Sticky.
            assert_eq!(s.next_chunk(), Err(e));
        } else {
            assert!(r.is_ok(), "cut at {cut} after the terminal event");
        }
    }
}

#[test]
fn cut_streams_are_errors() {
    let done = CC.find("[DONE]").unwrap() + "[DONE]".len();
    assert_cuts_fail("grok-4.3", CC, done);
    let completed = RESP.rfind('}').unwrap() + 1;
    assert_cuts_fail("grok-4.20-multi-agent-0309", RESP, completed);

    let mut h = H::connected(1);
    let mut s = open(
        &mut h,
        "grok-4.3",
        FakeBody::bytes(&CC.as_bytes()[..CC.find("data: [DONE]").unwrap()]),
    )
    .unwrap();
    assert_eq!(
        drain(&mut s),
        Err(ProviderError::Network(
            "stream ended before completion".into()
        ))
    );
}

#[test]
fn transport_failure_mid_stream() {
    let mut h = H::connected(1);
    let first = CC.as_bytes()[..200].to_vec();
    let mut s = open(&mut h, "grok-4.3", FakeBody::broken(vec![first])).unwrap();
    assert_eq!(s.next_chunk(), Ok(Some(ChatChunk::Text("Hel".into()))));
    let e = drain(&mut s).unwrap_err();
    assert_eq!(e, ProviderError::Network("connection reset".into()));
}

#[test]
fn upstream_failures_in_the_stream() {
    let cases = [
        (
            "grok-4.20-multi-agent",
            "data: {\"type\":\"response.output_text.delta\",\"delta\":\"a\"}\n\ndata: {\"type\":\"response.failed\",\"response\":{\"status\":\"failed\",\"error\":{\"code\":\"server_error\",\"message\":\"agent crashed\"}}}\n\n",
        ),
        (
            "grok-4.20-multi-agent",
            "event: error\ndata: {\"type\":\"error\",\"code\":\"server_error\",\"message\":\"boom\"}\n\n",
        ),
        (
            "grok-4.3",
            "data: {\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\"}}\n\n",
        ),
    ];
    for (model, body) in cases {
        let mut h = H::connected(4);
        let mut s = open(&mut h, model, FakeBody::bytes(body.as_bytes())).unwrap();
        let e = err(drain(&mut s));
        assert!(
            matches!(e, ProviderError::UpstreamUnavailable(_)),
            "{model}: {e:?}"
        );
    }
    let mut h = H::connected(4);
    let body = "data: {\"type\":\"error\",\"error\":{\"code\":\"rate_limit_exceeded\",\"message\":\"slow down\"}}\n\n";
    let mut s = open(
        &mut h,
        "grok-4.20-multi-agent",
        FakeBody::bytes(body.as_bytes()),
    )
    .unwrap();
    assert!(matches!(
        err(drain(&mut s)),
        ProviderError::RateLimited { .. }
    ));
    let mut h = H::connected(4);
    let mut s = open(&mut h, "grok-4.3", FakeBody::bytes(b"data: {not json}\n\n")).unwrap();
    assert!(matches!(
        err(drain(&mut s)),
        ProviderError::InvalidResponse(_)
    ));
}

#[test]
fn incomplete_responses_end_with_their_reason() {
    let mut h = H::connected(4);
    let body = "data: {\"type\":\"response.output_text.delta\",\"delta\":\"par\"}\n\ndata: {\"type\":\"response.incomplete\",\"response\":{\"status\":\"incomplete\",\"incomplete_details\":{\"reason\":\"max_output_tokens\"}}}\n\n";
    let mut s = open(
        &mut h,
        "grok-4.20-multi-agent",
        FakeBody::bytes(body.as_bytes()),
    )
    .unwrap();
    let chunks = drain(&mut s).unwrap();
    assert_eq!(text(&chunks), "par");
    assert_eq!(
        chunks.last(),
        Some(&ChatChunk::Finish(FinishReason::Length))
    );
}

#[test]
fn stream_open_errors() {
    // Not an event stream.
    let mut h = H::connected(1);
    h.t.reply_h(200, &[("content-type", "application/json")], "{}");
    assert!(matches!(
        err(h.p.open_chat_stream(&simple_request("grok-4.3"))),
        ProviderError::InvalidResponse(_)
    ));
    // 401 -> refresh -> retry, same as chat.
    let mut h = H::connected(1);
    h.t.json(401, json!({"error": "expired"}));
    h.t.json(
        200,
        token_body(
            &jwt(1, NOW + 6 * HOUR, "a2"),
            Some("rt-SECRET-2"),
            Some(21_600),
        ),
    );
    h.t.push(|_| Ok(response(200, &[SSE], FakeBody::bytes(CC.as_bytes()))));
    let mut s = ok(h.p.open_chat_stream(&simple_request("grok-4.3")));
    assert_eq!(text(&drain(&mut s).unwrap()), "Hello, wörld");
    assert_eq!(h.t.count(), 3);
    // 429 at open.
    let mut h = H::connected(1);
    h.t.reply_h(429, &[("retry-after", "3")], "{}");
    assert!(matches!(
        err(h.p.open_chat_stream(&simple_request("grok-4.3"))),
        ProviderError::RateLimited {
            retry_after_seconds: Some(3),
            ..
        }
    ));
}

#[test]
fn the_stream_outlives_the_provider() {
    let mut h = H::connected(1);
    let mut s = open(&mut h, "grok-4.3", FakeBody::bytes(CC.as_bytes())).unwrap();
    drop(h);
    assert_eq!(drain(&mut s).unwrap(), cc_expected());
}

/// OpenAI-style tool calls: id and name first, arguments over several chunks, two calls
/// interleaved by index, text before them.
const CC_TOOLS: &str = concat!(
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Checking.\"}}]}\n\n",
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_a\",\"type\":\"function\",\"function\":{\"name\":\"weather\",\"arguments\":\"\"}}]}}]}\n\n",
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"city\\\":\"}}]}}]}\n\n",
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"call_b\",\"type\":\"function\",\"function\":{\"name\":\"weather\",\"arguments\":\"{\\\"city\\\":\\\"Ro\"}}]}}]}\n\n",
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"\\\"Paris\\\"}\"}}]}}]}\n\n",
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"function\":{\"arguments\":\"me\\\"}\"}}]}}]}\n\n",
    "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n",
    "data: [DONE]\n\n",
);

/// A function call streamed as deltas, then one that arrives only whole in its
/// `output_item.done`.
const RESP_TOOLS: &str = concat!(
    "event: response.output_item.added\ndata: {\"type\":\"response.output_item.added\",\"output_index\":0,\"item\":{\"type\":\"function_call\",\"id\":\"fc_a\",\"call_id\":\"call_a\",\"name\":\"weather\",\"arguments\":\"\"}}\n\n",
    "data: {\"type\":\"response.function_call_arguments.delta\",\"item_id\":\"fc_a\",\"output_index\":0,\"delta\":\"{\\\"city\\\":\"}\n\n",
    "data: {\"type\":\"response.function_call_arguments.delta\",\"item_id\":\"fc_a\",\"output_index\":0,\"delta\":\"\\\"Paris\\\"}\"}\n\n",
    "data: {\"type\":\"response.function_call_arguments.done\",\"item_id\":\"fc_a\",\"output_index\":0,\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}\n\n",
    "data: {\"type\":\"response.output_item.done\",\"output_index\":0,\"item\":{\"type\":\"function_call\",\"id\":\"fc_a\",\"call_id\":\"call_a\",\"name\":\"weather\",\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}}\n\n",
    "data: {\"type\":\"response.output_item.done\",\"output_index\":1,\"item\":{\"type\":\"function_call\",\"id\":\"fc_b\",\"call_id\":\"call_b\",\"name\":\"weather\",\"arguments\":\"{\\\"city\\\":\\\"Rome\\\"}\"}}\n\n",
    "data: {\"type\":\"response.completed\",\"response\":{\"status\":\"completed\"}}\n\n",
);

fn paris_and_rome() -> Vec<ToolCall> {
    ["Paris", "Rome"]
        .iter()
        .zip(["call_a", "call_b"])
        .map(|(city, id)| ToolCall {
            id: id.into(),
            name: "weather".into(),
            arguments: format!("{{\"city\":\"{city}\"}}"),
        })
        .collect()
}

#[test]
fn chat_completions_tool_round_trip_stream() {
    let mut h = H::connected(1);
    let req = tool_round_trip("grok-4.3");
    let mut s = ok(open_request(
        &mut h,
        &req,
        FakeBody::bytes(CC_TOOLS.as_bytes()),
    ));
    let a = assemble(&drain(&mut s).unwrap());
    assert_eq!(a.text, "Checking.");
    assert_eq!(a.calls, paris_and_rome());
    assert_eq!(a.finish, Some(FinishReason::ToolCalls));
    let b = body_json(&h.t.requests()[0]);
    assert_eq!(b["stream"], json!(true));
    assert_eq!(b["tools"][0]["function"]["parameters"], weather_schema());
    assert_eq!(b["messages"][2]["tool_calls"][0]["id"], json!("call_1"));
    assert_eq!(b["messages"][3]["tool_call_id"], json!("call_1"));

    // However the transport cuts it.
    let bytes = CC_TOOLS.as_bytes();
    for i in 0..=bytes.len() {
        let mut h = H::connected(1);
        let mut s =
            open_request(&mut h, &req, splits(bytes, &[i, (i + 13).min(bytes.len())])).unwrap();
        let b = assemble(&drain(&mut s).unwrap());
        assert_eq!(b, a, "split at {i}");
    }
}

#[test]
fn responses_tool_round_trip_stream() {
    let mut h = H::connected(4);
    let req = tool_round_trip("grok-4.20-multi-agent-0309");
    let mut s = ok(open_request(
        &mut h,
        &req,
        FakeBody::bytes(RESP_TOOLS.as_bytes()),
    ));
    let chunks = drain(&mut s).unwrap();
    let a = assemble(&chunks);
    assert_eq!(a.calls, paris_and_rome());
    assert_eq!(a.text, "");
    assert_eq!(a.finish, Some(FinishReason::ToolCalls));
    // The `.done` events repeat what the deltas said: nothing is handed out twice.
    let args = chunks
        .iter()
        .filter(|c| matches!(c, ChatChunk::ToolCallArguments { index: 0, .. }))
        .count();
    assert_eq!(args, 2);
    let r = &h.t.requests()[0];
    assert_eq!(r.url, RESPONSES_URL);
    let b = body_json(r);
    assert_eq!(b["stream"], json!(true));
    assert_eq!(b["tools"][0]["name"], json!("weather"));
    assert_eq!(b["input"][1]["type"], json!("function_call"));
    assert_eq!(b["input"][2]["type"], json!("function_call_output"));

    let bytes = RESP_TOOLS.as_bytes();
    for i in 0..=bytes.len() {
        let mut h = H::connected(4);
        let mut s =
            open_request(&mut h, &req, splits(bytes, &[i, (i + 29).min(bytes.len())])).unwrap();
        assert_eq!(assemble(&drain(&mut s).unwrap()), a, "split at {i}");
    }
}

/// Grok sends parallel calls whole, one chunk each, all with `index` 0 (reported by
/// public clients: langchain-oracle PR 108, AIGNE PR 238): a new id at an index already
/// taken is a new call, not more arguments for the old one.
#[test]
fn parallel_whole_calls_at_the_same_index_stay_apart() {
    let body = concat!(
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"id\":\"call_1\",\"function\":{\"name\":\"weather\",\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"},\"index\":0,\"type\":\"function\"}]}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"id\":\"call_2\",\"function\":{\"name\":\"weather\",\"arguments\":\"{\\\"city\\\":\\\"Rome\\\"}\"},\"index\":0,\"type\":\"function\"}]}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n",
        "data: [DONE]\n\n",
    );
    let mut h = H::connected(1);
    let mut s = open(&mut h, "grok-4.3", FakeBody::bytes(body.as_bytes())).unwrap();
    let a = assemble(&drain(&mut s).unwrap());
    let calls: Vec<ToolCall> = ["Paris", "Rome"]
        .iter()
        .zip(["call_1", "call_2"])
        .map(|(city, id)| ToolCall {
            id: id.into(),
            name: "weather".into(),
            arguments: format!("{{\"city\":\"{city}\"}}"),
        })
        .collect();
    assert_eq!(a.calls, calls);
    assert_eq!(a.finish, Some(FinishReason::ToolCalls));
}
