//! Real upstream streams recorded by a public SDK (sources, licence and file names in
//! `tests/fixtures/README.md`), fed through [`ChatStream`] however the transport cuts
//! them: what assembles must be what the recording says (its own `.done` /
//! `response.completed` events are the oracle where it repeats itself, literal values
//! where it does not).
//!
//! The recordings are third-party data that this repository does not carry: they are
//! read at run time from `$GROK_RECORDED_STREAMS`, else from `shared/recorded-streams/`
//! beside the repository. A test whose recording is not there says so on stderr and
//! passes without checking anything.

use std::path::PathBuf;

use grok_provider_core::{ChatStream, FinishReason, Lane, ReasoningItem, ToolCall, Usage};
use serde_json::Value;

use crate::fakes::FakeBody;
use crate::stream::{Assembled, assemble};

const XAI_CHAT_TOOL_CALL: &str = "xai-tool-call.chunks.txt";
const XAI_RESPONSES_REASONING: &str = "xai-text-with-reasoning-streaming-store-false.1.chunks.txt";
const OPENAI_RESPONSES_TOOL_LOOP: &str = "openai-reasoning-encrypted-content.1.chunks.txt";
const OPENAI_CHAT_TOOL_DELTAS: &str = "openai-chat-stream-tool-deltas.sse";
const COMPATIBLE_CHAT_TRAILING_EMPTY: &str =
    "openai-compatible-chat-tool-deltas-trailing-empty-chunk.sse";

/// Where the recordings are looked for.
fn recordings_dir() -> PathBuf {
    match std::env::var_os("GROK_RECORDED_STREAMS") {
        Some(dir) => PathBuf::from(dir),
        // plugin/core -> the repository -> beside it.
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/recorded-streams"),
    }
}

/// The recording `name`, or `None` (with a note) when it is not laid out.
fn recording(name: &str) -> Option<String> {
    let path = recordings_dir().join(name);
    match std::fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(e) => {
            eprintln!(
                "recorded stream {name} not checked: {} ({e}); see tests/fixtures/README.md",
                path.display()
            );
            None
        }
    }
}

/// A `.chunks.txt` recording (one event's JSON a line) as the SSE body it came from:
/// `data: <line>\n\n` each, and the chat-completions terminator when `done`.
fn frame(lines: &str, done: bool) -> Vec<u8> {
    let mut out = String::new();
    for line in lines.lines().filter(|l| !l.trim().is_empty()) {
        out.push_str("data: ");
        out.push_str(line);
        out.push_str("\n\n");
    }
    if done {
        out.push_str("data: [DONE]\n\n");
    }
    out.into_bytes()
}

/// `bytes` cut into pieces of `size` (0: whole).
fn pieces(bytes: &[u8], size: usize) -> FakeBody {
    if size == 0 {
        return FakeBody::bytes(bytes);
    }
    FakeBody::chunks(bytes.chunks(size).map(<[u8]>::to_vec))
}

/// Run `bytes` through a stream of `lane` cut every way we try; every cut must assemble
/// the same, and that is returned.
fn replay(lane: Lane, bytes: &[u8]) -> Assembled {
    let mut first: Option<Assembled> = None;
    for size in [0, 1, 2, 7, 61, 512, 4096] {
        let mut s = ChatStream::new(pieces(bytes, size), lane, "xai-grok/recorded".into());
        let mut chunks = Vec::new();
        loop {
            match s.next_chunk() {
                Ok(Some(c)) => chunks.push(c),
                Ok(None) => break,
                Err(e) => panic!("cut every {size} bytes: {e:?}"),
            }
        }
        let a = assemble(&chunks);
        match &first {
            None => first = Some(a),
            Some(f) => assert_eq!(&a, f, "cut every {size} bytes"),
        }
    }
    first.unwrap()
}

fn events(lines: &str) -> Vec<Value> {
    lines
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn of_type<'a>(events: &'a [Value], kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    events
        .iter()
        .filter(move |e| e["type"].as_str() == Some(kind))
}

fn call(id: &str, name: &str, arguments: &str) -> ToolCall {
    ToolCall {
        id: id.into(),
        name: name.into(),
        arguments: arguments.into(),
    }
}

#[test]
fn xai_chat_completions_tool_call() {
    // grok-3-mini: reasoning deltas, then the call whole in one chunk; usage with the
    // reasoning tokens outside the completion tokens (291 + 26 + 196 = 513).
    let Some(rec) = recording(XAI_CHAT_TOOL_CALL) else {
        return;
    };
    let a = replay(Lane::ChatCompletions, &frame(&rec, true));
    assert_eq!(a.text, "");
    assert_eq!(a.reasoning, "First, the user is");
    assert_eq!(
        a.calls,
        vec![call(
            "call_55117580",
            "weather",
            r#"{"location":"San Francisco"}"#
        )]
    );
    assert_eq!(
        a.usage,
        Some(Usage {
            input_tokens: 291,
            output_tokens: 26 + 196,
            reasoning_tokens: Some(196),
            cached_input_tokens: Some(290),
            total_tokens: 513,
        })
    );
    assert_eq!(a.finish, Some(FinishReason::ToolCalls));
}

#[test]
fn openai_chat_completions_tool_arguments_split() {
    // gpt-3.5-turbo: id and name with empty arguments, then the arguments in 7 deltas.
    let Some(rec) = recording(OPENAI_CHAT_TOOL_DELTAS) else {
        return;
    };
    let a = replay(Lane::ChatCompletions, rec.as_bytes());
    assert_eq!(a.text, "");
    assert_eq!(
        a.calls,
        vec![call(
            "call_O17Uplv4lJvD6DVdIvFFeRMw",
            "test-tool",
            r#"{"value":"Sparkle Day"}"#
        )]
    );
    assert_eq!(
        a.usage,
        Some(Usage {
            input_tokens: 53,
            output_tokens: 17,
            reasoning_tokens: None,
            cached_input_tokens: None,
            total_tokens: 70,
        })
    );
    assert_eq!(a.finish, Some(FinishReason::ToolCalls));
}

#[test]
fn openai_compatible_chat_tool_arguments_with_usage_on_every_chunk() {
    // An OpenAI-compatible server (llama-3.1-8b): the name before any arguments, usage
    // on every chunk (the last one counts), and an empty arguments delta after the call
    // is complete, which must not make a second call.
    let Some(rec) = recording(COMPATIBLE_CHAT_TRAILING_EMPTY) else {
        return;
    };
    let a = replay(Lane::ChatCompletions, rec.as_bytes());
    assert_eq!(a.text, "");
    assert_eq!(
        a.calls,
        vec![call(
            "chatcmpl-tool-b3b307239370432d9910d4b79b4dbbaa",
            "searchGoogle",
            r#"{"query": "latest news on ai"}"#
        )]
    );
    assert_eq!(
        a.usage,
        Some(Usage {
            input_tokens: 226,
            output_tokens: 20,
            reasoning_tokens: None,
            cached_input_tokens: None,
            total_tokens: 246,
        })
    );
    assert_eq!(a.finish, Some(FinishReason::ToolCalls));
}

#[test]
fn xai_responses_reasoning_and_text() {
    // grok-code-fast-1 with store: false: a reasoning summary streamed as deltas and
    // its encrypted content in the item's `.done`, then the text.
    let Some(rec) = recording(XAI_RESPONSES_REASONING) else {
        return;
    };
    let evs = events(&rec);
    let a = replay(Lane::Responses, &frame(&rec, false));
    let text_done = of_type(&evs, "response.output_text.done").next().unwrap();
    assert_eq!(a.text, text_done["text"].as_str().unwrap());
    assert!(a.text.starts_with("### Overview of Sonoran Cuisine\n"));
    let summary_done = of_type(&evs, "response.reasoning_summary_text.done")
        .next()
        .unwrap();
    assert_eq!(a.reasoning, summary_done["text"].as_str().unwrap());
    assert!(a.calls.is_empty());

    // The reasoning item, as the plugin keeps it: the item without its status.
    let item = of_type(&evs, "response.output_item.done")
        .map(|e| &e["item"])
        .find(|i| i["type"] == "reasoning")
        .unwrap();
    let mut kept = item.clone();
    kept.as_object_mut().unwrap().remove("status");
    assert_eq!(a.reasoning_items.len(), 1);
    let ReasoningItem { lane, data } = &a.reasoning_items[0];
    assert_eq!(*lane, Lane::Responses);
    assert_eq!(serde_json::from_str::<Value>(data).unwrap(), kept);
    assert!(
        kept["encrypted_content"]
            .as_str()
            .is_some_and(|s| s.len() > 100)
    );

    // OpenAI's convention on this lane: 216 + 831 = 1047, reasoning inside.
    assert_eq!(
        a.usage,
        Some(Usage {
            input_tokens: 216,
            output_tokens: 831,
            reasoning_tokens: Some(253),
            cached_input_tokens: Some(192),
            total_tokens: 1047,
        })
    );
    assert_eq!(a.finish, Some(FinishReason::Stop));
}

#[test]
fn openai_responses_tool_loop() {
    // Four consecutive responses of one agent loop (gpt-5.1-codex-max): reasoning and a
    // call, two more calls, then the answer. Arguments stream as
    // `function_call_arguments.delta` and are repeated by `.done` and `output_item.done`.
    let Some(rec) = recording(OPENAI_RESPONSES_TOOL_LOOP) else {
        return;
    };
    let mut turns: Vec<String> = Vec::new();
    for line in rec.lines() {
        if line.contains(r#""type":"response.created""#) {
            turns.push(String::new());
        }
        let turn = turns.last_mut().expect("starts with response.created");
        turn.push_str(line);
        turn.push('\n');
    }
    assert_eq!(turns.len(), 4);
    let expected_calls = [
        Some(call(
            "call_AB6AaRZ1FYZB2RwS6A5vbdqn",
            "calculator",
            r#"{"a":12,"b":7,"op":"add"}"#,
        )),
        Some(call(
            "call_Q6pW65MUgW9vF59BmItYGos3",
            "calculator",
            r#"{"a":19,"b":3,"op":"multiply"}"#,
        )),
        Some(call(
            "call_Zl5vIMnD7dVAjgU6FkhmiCZh",
            "calculator",
            r#"{"a":57,"b":10,"op":"multiply"}"#,
        )),
        None,
    ];
    let usage = [
        (134, 28, 162),
        (221, 26, 247),
        (260, 26, 286),
        (299, 12, 311),
    ];
    for (n, turn) in turns.iter().enumerate() {
        let a = replay(Lane::Responses, &frame(turn, false));
        let evs = events(turn);
        // The calls are what the completed response lists.
        let completed = of_type(&evs, "response.completed").next().unwrap();
        let listed: Vec<ToolCall> = completed["response"]["output"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["type"] == "function_call")
            .map(|o| {
                call(
                    o["call_id"].as_str().unwrap(),
                    o["name"].as_str().unwrap(),
                    o["arguments"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(a.calls, listed, "turn {n}");
        assert_eq!(
            a.calls,
            expected_calls[n].iter().cloned().collect::<Vec<_>>()
        );
        let (input, output, total) = usage[n];
        assert_eq!(
            a.usage,
            Some(Usage {
                input_tokens: input,
                output_tokens: output,
                reasoning_tokens: Some(0),
                cached_input_tokens: Some(0),
                total_tokens: total,
            }),
            "turn {n}"
        );
        if n == 3 {
            assert_eq!(a.text, "The final result is **570**.");
            assert_eq!(a.finish, Some(FinishReason::Stop));
        } else {
            assert_eq!(a.text, "");
            assert_eq!(a.finish, Some(FinishReason::ToolCalls), "turn {n}");
        }
        if n == 0 {
            let summary = of_type(&evs, "response.reasoning_summary_text.done")
                .next()
                .unwrap();
            assert_eq!(a.reasoning, summary["text"].as_str().unwrap());
            assert!(
                a.reasoning
                    .starts_with("**Calculating step-by-step using calculator**")
            );
            assert_eq!(a.reasoning_items.len(), 1);
            let data: Value = serde_json::from_str(&a.reasoning_items[0].data).unwrap();
            assert_eq!(
                data["id"],
                "rs_01830d662ab3856501693c321405c88190be3ab04d5782d5f9"
            );
            let done = of_type(&evs, "response.output_item.done")
                .find(|e| e["item"]["type"] == "reasoning")
                .unwrap();
            assert_eq!(data["encrypted_content"], done["item"]["encrypted_content"]);
        } else {
            assert_eq!(a.reasoning, "");
            assert!(a.reasoning_items.is_empty());
        }
    }
}
