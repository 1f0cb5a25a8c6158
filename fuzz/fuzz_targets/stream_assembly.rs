//! Tool-call assembly of both lanes, as a property: from the input, a small scripted
//! reply (text and reasoning deltas, N tool calls each with an id, a name and arguments
//! sent in one of the lane's styles, optionally interleaved between calls) is rendered as
//! the SSE bytes an upstream would send, cut into transport chunks at input-chosen
//! positions and read back through `ChatStream`. Whatever the style and the cut:
//!
//! * the stream ends cleanly, with the events of the uncut body;
//! * the same calls come back in index order (id, name, arguments concatenated per
//!   index), each call's start before its argument deltas;
//! * the same text and reasoning, the usage and the finish reason that were sent.
//!
//! Styles. Chat-completions: `whole` (id, name and all arguments in one chunk, as xAI
//! sends them; adjacent whole calls may share one chunk, and when every call is whole
//! they may all say `index` 0, as Grok's parallel calls do) or `split` (id and name first,
//! possibly the name a chunk after the id, the arguments over several chunks, as OpenAI
//! sends them). Responses: `whole` (one `function_call_arguments.delta`), `split`
//! (several deltas) or `done` (no delta: the arguments only in
//! `function_call_arguments.done` / `response.output_item.done`, possibly without an
//! `output_item.added` either).
//!
//! Input: read with `arbitrary::Unstructured` (every byte string is a valid script;
//! running out of bytes means zeros).
#![no_main]

use grok_provider_core::{ChatChunk, ChatStream, FinishReason, Lane, ToolCall, Usage};
use grok_provider_fuzz::{Assembled, Chunked, assemble};
use libfuzzer_sys::arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

/// Characters of generated text and arguments: JSON's specials, multi-byte UTF-8, line
/// breaks (which SSE must carry inside a JSON string, escaped).
const ALPHABET: [&str; 16] = [
    "a", "Z", "7", " ", "\"", "\\", "{", "}", ":", ",", "\n", "\r", "é", "✓", "😀", "\u{2028}",
];
const NAMES: [&str; 4] = ["weather", "search_web", "get-time", "f1"];

fn int(u: &mut Unstructured, lo: usize, hi: usize) -> usize {
    u.int_in_range(lo..=hi).unwrap_or(lo)
}

fn flag(u: &mut Unstructured) -> bool {
    u.arbitrary::<bool>().unwrap_or(false)
}

fn string(u: &mut Unstructured, min: usize, max: usize) -> String {
    (0..int(u, min, max))
        .map(|_| ALPHABET[int(u, 0, ALPHABET.len() - 1)])
        .collect()
}

/// `s` cut at up to `max` input-chosen character boundaries (pieces never empty).
fn pieces(u: &mut Unstructured, s: &str, max: usize) -> Vec<String> {
    let bounds: Vec<usize> = s.char_indices().map(|(i, _)| i).skip(1).collect();
    let mut cuts: Vec<usize> = (0..int(u, 0, max))
        .filter_map(|_| (!bounds.is_empty()).then(|| bounds[int(u, 0, bounds.len() - 1)]))
        .collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut out = Vec::new();
    let mut last = 0;
    for c in cuts.into_iter().chain([s.len()]) {
        if c > last {
            out.push(s[last..c].to_owned());
            last = c;
        }
    }
    out
}

/// One event's stream of a call (or of the text): the events, and the position of the
/// event that starts the call (names its function), which must come after every earlier
/// call's start.
struct Queue {
    events: Vec<Value>,
    start: Option<usize>,
}

/// Chat-completions chunk with these tool-call deltas.
fn cc_calls(deltas: Vec<Value>) -> Value {
    json!({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"tool_calls": deltas}}]})
}

fn cc_delta(index: usize, id: Option<&str>, name: Option<&str>, args: Option<&str>) -> Value {
    let mut d = json!({"index": index});
    if let Some(id) = id {
        d["id"] = json!(id);
        d["type"] = json!("function");
    }
    let mut f = json!({});
    if let Some(n) = name {
        f["name"] = json!(n);
    }
    if let Some(a) = args {
        f["arguments"] = json!(a);
    }
    if f.as_object().is_some_and(|o| !o.is_empty()) {
        d["function"] = f;
    }
    d
}

/// A whole chat-completions call (id, name, all arguments in one delta): its delta, to
/// be batched with adjacent whole calls.
fn cc_whole(v: &Value) -> Option<&Value> {
    let d = v["choices"][0]["delta"]["tool_calls"].as_array()?;
    (d.len() == 1 && v["x-whole"] == json!(true)).then(|| &d[0])
}

fn completions_queues(
    u: &mut Unstructured,
    calls: &[ToolCall],
    text: &[String],
    reasoning: &[String],
) -> Vec<Queue> {
    let mut queues = Vec::new();
    let mut narrative = Vec::new();
    for r in reasoning {
        narrative.push(json!({"choices": [{"index": 0, "delta": {"reasoning_content": r}}]}));
    }
    for t in text {
        narrative.push(json!({"choices": [{"index": 0, "delta": {"content": t}}]}));
    }
    queues.push(Queue {
        events: narrative,
        start: None,
    });
    let whole: Vec<bool> = calls.iter().map(|_| flag(u)).collect();
    // Grok's parallel calls: each whole in its own chunk, every one at index 0.
    let grok = whole.iter().all(|w| *w) && flag(u);
    for (i, c) in calls.iter().enumerate() {
        let mut events = Vec::new();
        let start;
        if whole[i] {
            let mut v = cc_calls(vec![cc_delta(
                if grok { 0 } else { i },
                Some(&c.id),
                Some(&c.name),
                Some(&c.arguments),
            )]);
            v["x-whole"] = json!(true);
            events.push(v);
            start = 0;
        } else {
            // split: id and name first (the name possibly one chunk later, with the
            // first arguments held until it comes), then the arguments.
            let mut args = pieces(u, &c.arguments, 6).into_iter();
            if flag(u) {
                let first = args.next();
                events.push(cc_calls(vec![cc_delta(
                    i,
                    Some(&c.id),
                    None,
                    first.as_deref(),
                )]));
                events.push(cc_calls(vec![cc_delta(i, None, Some(&c.name), None)]));
                start = 1;
            } else {
                let first = if flag(u) {
                    args.next()
                } else {
                    Some(String::new())
                };
                events.push(cc_calls(vec![cc_delta(
                    i,
                    Some(&c.id),
                    Some(&c.name),
                    first.as_deref(),
                )]));
                start = 0;
            }
            for a in args {
                events.push(cc_calls(vec![cc_delta(i, None, None, Some(&a))]));
            }
        }
        queues.push(Queue {
            events,
            start: Some(start),
        });
    }
    queues
}

fn responses_queues(
    u: &mut Unstructured,
    calls: &[ToolCall],
    text: &[String],
    reasoning: &[String],
) -> Vec<Queue> {
    let mut queues = Vec::new();
    let mut narrative = Vec::new();
    if !reasoning.is_empty() {
        narrative.push(
            json!({"type": "response.output_item.added", "output_index": 0,
                              "item": {"type": "reasoning", "id": "rs_1", "summary": []}}),
        );
        for r in reasoning {
            narrative.push(
                json!({"type": "response.reasoning_summary_text.delta", "item_id": "rs_1",
                                  "output_index": 0, "summary_index": 0, "delta": r}),
            );
        }
        if flag(u) {
            // The finished item repeats the summary: it must not be handed out twice.
            narrative.push(
                json!({"type": "response.output_item.done", "output_index": 0,
                "item": {"type": "reasoning", "id": "rs_1",
                         "summary": [{"type": "summary_text", "text": reasoning.concat()}]}}),
            );
        }
    }
    if !text.is_empty() {
        narrative.push(json!({"type": "response.output_item.added", "output_index": 1,
                              "item": {"type": "message", "id": "msg_1", "role": "assistant", "content": []}}));
        for t in text {
            narrative.push(
                json!({"type": "response.output_text.delta", "item_id": "msg_1",
                                  "output_index": 1, "content_index": 0, "delta": t}),
            );
        }
        if flag(u) {
            narrative.push(
                json!({"type": "response.output_text.done", "item_id": "msg_1",
                                  "output_index": 1, "content_index": 0, "text": text.concat()}),
            );
        }
        if flag(u) {
            narrative.push(json!({"type": "response.output_item.done", "output_index": 1,
                "item": {"type": "message", "id": "msg_1", "role": "assistant",
                         "content": [{"type": "output_text", "text": text.concat(), "annotations": []}]}}));
        }
    }
    queues.push(Queue {
        events: narrative,
        start: None,
    });
    for (i, c) in calls.iter().enumerate() {
        let (item_id, oi) = (format!("fc_{i}"), i + 2);
        let item = |args: &str, status: &str| {
            json!({"type": "function_call", "id": item_id, "call_id": c.id, "name": c.name,
                   "arguments": args, "status": status})
        };
        let added = json!({"type": "response.output_item.added", "output_index": oi, "item": item("", "in_progress")});
        let args_done = json!({"type": "response.function_call_arguments.done", "item_id": item_id,
                               "output_index": oi, "arguments": c.arguments});
        let item_done = json!({"type": "response.output_item.done", "output_index": oi,
                               "item": item(&c.arguments, "completed")});
        let delta = |d: &str| {
            json!({"type": "response.function_call_arguments.delta", "item_id": item_id,
                   "output_index": oi, "delta": d})
        };
        let mut events = Vec::new();
        let start;
        match int(u, 0, 2) {
            style @ (0 | 1) => {
                // whole (one delta) or split (several)
                events.push(added);
                start = 0;
                let args = if style == 0 {
                    Some(c.arguments.clone())
                        .into_iter()
                        .filter(|a| !a.is_empty())
                        .collect()
                } else {
                    pieces(u, &c.arguments, 6)
                };
                events.extend(args.iter().map(|a| delta(a)));
                if flag(u) {
                    events.push(args_done);
                }
                events.push(item_done);
            }
            _ => {
                // done: the arguments only in the closing events.
                let with_added = flag(u);
                if with_added {
                    events.push(added);
                }
                if flag(u) {
                    // Without `added`, `arguments.done` names a call not started yet
                    // (ignored); `output_item.done` starts it.
                    events.push(args_done);
                }
                start = if with_added { 0 } else { events.len() };
                events.push(item_done);
            }
        }
        queues.push(Queue {
            events,
            start: Some(start),
        });
    }
    queues
}

/// Merge the queues: in order, or (`interleave`) in an input-chosen order that keeps each
/// queue's own order and starts the calls in index order.
fn merge(u: &mut Unstructured, mut queues: Vec<Queue>, interleave: bool) -> Vec<Value> {
    let mut out = Vec::new();
    if !interleave {
        for q in queues {
            out.extend(q.events);
        }
        return out;
    }
    let mut pos = vec![0usize; queues.len()];
    loop {
        // A call may go up to its start only once every earlier call has started.
        let mut ready = Vec::new();
        let mut earlier_started = true;
        for (i, q) in queues.iter().enumerate() {
            if pos[i] < q.events.len() {
                let before_start = q.start.is_some_and(|s| pos[i] <= s);
                if !before_start || earlier_started {
                    ready.push(i);
                }
            }
            if let Some(s) = q.start {
                earlier_started &= pos[i] > s;
            }
        }
        if ready.is_empty() {
            break;
        }
        let i = ready[int(u, 0, ready.len() - 1)];
        out.push(std::mem::take(&mut queues[i].events[pos[i]]));
        pos[i] += 1;
    }
    out
}

/// Adjacent whole chat-completions calls in one chunk (xAI's parallel calls).
fn batch(events: Vec<Value>) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for v in events {
        if let (Some(d), Some(last)) = (cc_whole(&v), out.last_mut())
            && cc_whole(last).is_some()
        {
            let d = d.clone();
            last["choices"][0]["delta"]["tool_calls"]
                .as_array_mut()
                .unwrap()
                .push(d);
            continue;
        }
        out.push(v);
    }
    out
}

fn render(u: &mut Unstructured, lane: Lane, events: &[Value]) -> Vec<u8> {
    let eol = ["\n", "\r\n", "\r"][int(u, 0, 2)];
    let (comments, names) = (flag(u), flag(u));
    let mut out = String::new();
    for v in events {
        if comments {
            out.push_str(": keep-alive");
            out.push_str(eol);
            out.push_str(eol);
        }
        let mut v = v.clone();
        if let Some(o) = v.as_object_mut() {
            o.remove("x-whole");
        }
        if lane == Lane::Responses && names {
            out.push_str("event: ");
            out.push_str(v["type"].as_str().unwrap_or("message"));
            out.push_str(eol);
        }
        out.push_str("data: ");
        out.push_str(&v.to_string());
        out.push_str(eol);
        out.push_str(eol);
    }
    if lane == Lane::ChatCompletions {
        out.push_str("data: [DONE]");
        out.push_str(eol);
        out.push_str(eol);
    }
    out.into_bytes()
}

fn read(lane: Lane, pieces: Vec<Vec<u8>>) -> Vec<ChatChunk> {
    let budget = 4 * pieces.iter().map(Vec::len).sum::<usize>() + pieces.len() + 16;
    let mut s = ChatStream::new(Chunked(pieces.into()), lane, "xai-grok/m".into());
    let mut out = Vec::new();
    for _ in 0..budget {
        match s.next_chunk() {
            Ok(Some(c)) => out.push(c),
            Ok(None) => return out,
            Err(e) => panic!("a well-formed stream failed: {e:?}\nevents so far: {out:?}"),
        }
    }
    panic!("the stream did not end after {budget} calls");
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let lane = if flag(&mut u) {
        Lane::Responses
    } else {
        Lane::ChatCompletions
    };
    let text: Vec<String> = (0..int(&mut u, 0, 3))
        .map(|_| string(&mut u, 1, 4))
        .collect();
    let reasoning: Vec<String> = (0..int(&mut u, 0, 2))
        .map(|_| string(&mut u, 1, 4))
        .collect();
    let calls: Vec<ToolCall> = (0..int(&mut u, 0, 4))
        .map(|i| ToolCall {
            id: format!("call_{i}_{}", int(&mut u, 0, 999)),
            name: NAMES[int(&mut u, 0, NAMES.len() - 1)].to_owned(),
            arguments: string(&mut u, 0, 12),
        })
        .collect();
    let interleave = flag(&mut u);
    let queues = match lane {
        Lane::Responses => responses_queues(&mut u, &calls, &text, &reasoning),
        _ => completions_queues(&mut u, &calls, &text, &reasoning),
    };
    let mut events = merge(&mut u, queues, interleave);
    if lane == Lane::ChatCompletions && flag(&mut u) {
        events = batch(events);
    }

    // Usage in either convention: reasoning inside the output (OpenAI) or outside (xAI).
    let (input, generated, reasoning_tokens) = (
        int(&mut u, 0, 5000) as u32,
        int(&mut u, 0, 5000) as u32,
        int(&mut u, 0, 5000) as u32,
    );
    let outside = flag(&mut u);
    let output = if outside && reasoning_tokens > 0 {
        generated + reasoning_tokens
    } else {
        generated.max(reasoning_tokens)
    };
    let usage = Usage {
        input_tokens: input,
        output_tokens: output,
        reasoning_tokens: Some(reasoning_tokens),
        cached_input_tokens: None,
        total_tokens: input + output,
    };
    let finish = if calls.is_empty() {
        FinishReason::Stop
    } else {
        FinishReason::ToolCalls
    };
    match lane {
        Lane::Responses => events.push(json!({"type": "response.completed", "response": {
            "status": "completed",
            "usage": {"input_tokens": input, "output_tokens": output, "total_tokens": input + output,
                      "output_tokens_details": {"reasoning_tokens": reasoning_tokens}}
        }})),
        _ => {
            events.push(json!({"choices": [{"index": 0, "delta": {}, "finish_reason": finish.as_str()}]}));
            let completion = if outside { generated } else { output };
            events.push(json!({"choices": [], "usage": {
                "prompt_tokens": input, "completion_tokens": completion, "total_tokens": input + output,
                "completion_tokens_details": {"reasoning_tokens": reasoning_tokens}}}));
        }
    }
    let body = render(&mut u, lane, &events);

    // The transport's cuts.
    let mut cuts: Vec<usize> = (0..int(&mut u, 0, 24))
        .map(|_| int(&mut u, 0, body.len()))
        .collect();
    cuts.sort_unstable();
    let mut pieces = Vec::new();
    let mut last = 0;
    for c in cuts.into_iter().chain([body.len()]) {
        pieces.push(body[last..c].to_vec());
        last = c;
    }

    let whole = read(lane, vec![body.clone()]);
    let cut = read(lane, pieces);
    assert_eq!(cut, whole, "the events depend on the cut");
    let got = assemble(&whole);
    let expected = Assembled {
        text: text.concat(),
        reasoning: reasoning.concat(),
        calls,
        others: 0,
        usage: Some(usage),
        finish: Some(finish),
    };
    assert_eq!(
        got,
        expected,
        "lane {lane:?}, body:\n{}",
        String::from_utf8_lossy(&body)
    );
});
