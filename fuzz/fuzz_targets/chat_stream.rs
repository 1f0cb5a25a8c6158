//! Streamed replies of both lanes (chat-completions and Responses events over SSE): the
//! caller sees the same chunks and the same ending whichever way the transport cut the
//! body; the stream always ends (no endless loop); errors are sticky; a clean end means
//! the lane's terminal event was there; the events keep the stream contract (no empty
//! delta, tool calls started in index order before their arguments, usage and finish
//! once, nothing after the finish: `grok_provider_fuzz::assemble`).
//!
//! Input: `[k][k chunk lengths][body]` (see `grok_provider_fuzz::split_body`); bit 5 of
//! the first byte picks the lane (0: chat-completions, 1: Responses).
#![no_main]

use grok_provider_core::http::{JSON_BODY_CAP, SSE_LINE_CAP};
use grok_provider_core::sse::SseEvent;
use grok_provider_core::{ChatChunk, ChatStream, Lane, ProviderError};
use grok_provider_fuzz::{Chunked, assemble, check_error, chunks, reference_sse, split_body};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// Everything a caller sees: the chunks, then `Ok(())` (clean end) or the error.
fn drain(
    lane: Lane,
    caps: (usize, usize),
    pieces: &[&[u8]],
    budget: usize,
) -> (Vec<ChatChunk>, Result<(), ProviderError>) {
    let body = Chunked::new(pieces);
    let mut s = ChatStream::with_sse_caps(body, lane, "xai-grok/m".into(), caps.0, caps.1);
    let mut out = Vec::new();
    for _ in 0..budget {
        match s.next_chunk() {
            Ok(Some(c)) => out.push(c),
            Ok(None) => {
                assert_eq!(s.next_chunk(), Ok(None), "an ended stream restarted");
                assemble(&out);
                return (out, Ok(()));
            }
            Err(e) => {
                check_error(&e, &[]);
                assert_eq!(s.next_chunk(), Err(e.clone()), "error not sticky");
                assemble(&out);
                return (out, Err(e));
            }
        }
    }
    panic!("the stream did not end after {budget} calls");
}

fn is_terminal(lane: Lane, ev: &SseEvent) -> bool {
    match lane {
        Lane::Responses => {
            let kind = serde_json::from_str::<Value>(&ev.data)
                .ok()
                .and_then(|v| v.get("type").and_then(Value::as_str).map(str::to_owned))
                .or_else(|| ev.event.clone());
            matches!(
                kind.as_deref(),
                Some("response.completed" | "response.incomplete")
            )
        }
        _ => ev.data.trim() == "[DONE]",
    }
}

fuzz_target!(|data: &[u8]| {
    let lane = match data.first() {
        Some(b) if b & 0x20 != 0 => Lane::Responses,
        _ => Lane::ChatCompletions,
    };
    let (gaps, body) = split_body(data);
    // Every call makes progress: one chunk, one event or one piece of body.
    let budget = 2 * body.len() + gaps.len() + 16;
    // The real caps, and tiny ones so that the fuzzer reaches the limits too.
    for caps in [(SSE_LINE_CAP, JSON_BODY_CAP), (64, 160)] {
        let whole = drain(lane, caps, &[body], budget);
        let split = drain(lane, caps, &chunks(body, &gaps), budget);
        assert_eq!(split, whole, "cut at {gaps:?}, caps {caps:?}");
        if whole.1.is_ok() && caps.0 == SSE_LINE_CAP {
            assert!(
                reference_sse(body).iter().any(|ev| is_terminal(lane, ev)),
                "ended cleanly without a terminal event"
            );
        }
    }
});
