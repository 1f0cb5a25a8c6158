//! Streaming in both lanes: any chunking, terminal events, cuts and failures.

use grok_provider_core::{ChatChunk, ChatStream, Lane, ProviderError, Usage};
use serde_json::json;

use crate::chat::simple_request;
use crate::fakes::{FakeBody, response};
use crate::*;

const CC: &str = concat!(
    ": keep-alive\n\n",
    "data: {\"id\":\"1\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n",
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\r\n\r\n",
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo, w\u{f6}rld\"}}]}\n\n",
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\"hmm\"}}]}\n\n",
    "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
    "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4,\"total_tokens\":7,\"completion_tokens_details\":{\"reasoning_tokens\":1}}}\n\n",
    "data: [DONE]\n\n",
);

const RESP: &str = concat!(
    "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"status\":\"in_progress\"}}\n\n",
    "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"Multi\"}\n\n",
    ": ping\r\r",
    "event: response.output_text.delta\r\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"-agent \u{2713}\"}\r\n\r\n",
    "event: response.output_text.done\ndata: {\"type\":\"response.output_text.done\",\"text\":\"Multi-agent\"}\n\n",
    "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"status\":\"completed\",",
    "\"usage\":{\"input_tokens\":11,\"output_tokens\":22,\"total_tokens\":33,\"output_tokens_details\":{\"reasoning_tokens\":5}}}}\n\n",
);

const SSE: (&str, &str) = ("content-type", "text/event-stream; charset=utf-8");

fn open(h: &mut H, model: &str, body: FakeBody) -> Result<ChatStream<FakeBody>, ProviderError> {
    let mut body = Some(body);
    h.t.push(move |_| Ok(response(200, &[SSE], body.take().expect("one request"))));
    h.p.open_chat_stream(&simple_request(model))
}

fn drain(s: &mut ChatStream<FakeBody>) -> Result<Vec<ChatChunk>, ProviderError> {
    let mut out = Vec::new();
    while let Some(c) = s.next_chunk()? {
        out.push(c);
    }
    // Stays ended.
    assert_eq!(s.next_chunk(), Ok(None));
    Ok(out)
}

fn text(chunks: &[ChatChunk]) -> String {
    chunks.iter().map(|c| c.delta.as_str()).collect()
}

fn splits(bytes: &[u8], at: &[usize]) -> FakeBody {
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
        ChatChunk {
            delta: "Hel".into(),
            finish_reason: None,
            usage: None,
        },
        ChatChunk {
            delta: "lo, wörld".into(),
            finish_reason: None,
            usage: None,
        },
        ChatChunk {
            delta: String::new(),
            finish_reason: Some("stop".into()),
            usage: Some(Usage {
                input_tokens: 3,
                output_tokens: 4,
                reasoning_tokens: Some(1),
                total_tokens: 7,
            }),
        },
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
        ChatChunk {
            delta: "Multi".into(),
            finish_reason: None,
            usage: None,
        },
        ChatChunk {
            delta: "-agent ✓".into(),
            finish_reason: None,
            usage: None,
        },
        ChatChunk {
            delta: String::new(),
            finish_reason: Some("stop".into()),
            usage: Some(Usage {
                input_tokens: 11,
                output_tokens: 22,
                reasoning_tokens: Some(5),
                total_tokens: 33,
            }),
        },
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
    assert_eq!(s.next_chunk().unwrap().unwrap().delta, "Hel");
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
        chunks.last().unwrap().finish_reason.as_deref(),
        Some("max_output_tokens")
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
