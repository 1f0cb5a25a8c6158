//! The reply in Anthropic's shape: whole (a `message`) or as its stream events.

use provider_runtime::bindings::types::{ChatChunk, ChatReply, FinishReason, ReasoningItem, Usage};
use serde_json::{Value, json};

use super::request::signature;

/// Anthropic's stop reason for a finish reason (`tool_use` whenever the turn made calls).
pub(super) fn stop_reason(f: Option<&FinishReason>, calls: bool) -> &'static str {
    match f {
        _ if calls => "tool_use",
        Some(FinishReason::Length) => "max_tokens",
        Some(FinishReason::ToolCalls) => "tool_use",
        Some(FinishReason::ContentFilter) => "refusal",
        _ => "end_turn",
    }
}

/// Anthropic usage: `input_tokens` is the input not read from the cache, which
/// `cache_read_input_tokens` counts; output tokens include reasoning.
pub(super) fn usage(u: &Usage) -> Value {
    let cached = u.cached_input_tokens.unwrap_or(0).min(u.input_tokens);
    json!({"input_tokens": u.input_tokens - cached, "output_tokens": u.output_tokens,
           "cache_read_input_tokens": cached, "cache_creation_input_tokens": 0})
}

/// A tool call's arguments as the `input` object (empty arguments are `{}`).
pub(super) fn input(arguments: &str) -> Value {
    if arguments.trim().is_empty() {
        return json!({});
    }
    serde_json::from_str(arguments).unwrap_or_else(|_| Value::String(arguments.to_owned()))
}

/// The whole reply as a `message`: a thinking block (the visible reasoning, its
/// signature carrying the reasoning items to pass back), the text, then one `tool_use`
/// block per call.
pub fn whole(id: &str, model: &str, r: &ChatReply) -> Value {
    let mut content = Vec::new();
    let reasoning = r.reasoning.as_deref().unwrap_or("");
    if !reasoning.is_empty() || !r.reasoning_items.is_empty() {
        content.push(json!({"type": "thinking", "thinking": reasoning,
                            "signature": signature(&r.reasoning_items)}));
    }
    if !r.content.is_empty() || r.tool_calls.is_empty() {
        content.push(json!({"type": "text", "text": r.content}));
    }
    for c in &r.tool_calls {
        content.push(json!({"type": "tool_use", "id": c.id, "name": c.name,
                            "input": input(&c.arguments)}));
    }
    json!({
        "id": id, "type": "message", "role": "assistant", "model": model, "content": content,
        "stop_reason": stop_reason(r.finish_reason.as_ref(), !r.tool_calls.is_empty()),
        "stop_sequence": null,
        "usage": r.usage.as_ref().map_or_else(
            || json!({"input_tokens": 0, "output_tokens": 0}), usage),
    })
}

/// The content block open in a stream.
#[derive(Debug, PartialEq)]
pub(super) enum Open {
    None,
    Thinking,
    Text,
    /// A `tool_use` block, for the call of this index.
    Tool(u32),
}

/// Writes one stream's events, as (event name, data): `message_start` (with the input
/// estimate: upstream reports usage at the end), `ping`, then for each block
/// `content_block_start`, its deltas and `content_block_stop` — one block open at a time,
/// every delta of its type —, then `message_delta` (stop reason, usage) and
/// `message_stop`.
pub struct EventWriter {
    id: String,
    model: String,
    estimate: u32,
    open: Open,
    /// Index of the next block.
    next: usize,
    /// Reasoning items that came while a thinking block was open (its signature).
    items: Vec<ReasoningItem>,
    usage: Option<Usage>,
    finish: Option<FinishReason>,
    calls: bool,
}

pub(super) type Ev = (&'static str, Value);

impl EventWriter {
    /// A stream of message `id` for `model`, its input estimated at `estimate` tokens.
    pub fn new(id: String, model: String, estimate: u32) -> Self {
        Self {
            id,
            model,
            estimate,
            open: Open::None,
            next: 0,
            items: Vec::new(),
            usage: None,
            finish: None,
            calls: false,
        }
    }

    /// `message_start` and a `ping`.
    pub fn start(&mut self) -> Vec<Ev> {
        vec![
            (
                "message_start",
                json!({"type": "message_start", "message": {
                    "id": self.id, "type": "message", "role": "assistant", "model": self.model,
                    "content": [], "stop_reason": null, "stop_sequence": null,
                    "usage": {"input_tokens": self.estimate, "output_tokens": 0,
                              "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}}}),
            ),
            ("ping", json!({"type": "ping"})),
        ]
    }

    /// Closes the open block (a thinking block first gets its signature).
    fn close(&mut self, out: &mut Vec<Ev>) {
        let index = self.next.saturating_sub(1);
        match std::mem::replace(&mut self.open, Open::None) {
            Open::None => return,
            Open::Thinking => {
                let items = std::mem::take(&mut self.items);
                out.push(self.delta(
                    index,
                    json!({"type": "signature_delta", "signature": signature(&items)}),
                ));
            }
            Open::Text | Open::Tool(_) => {}
        }
        out.push((
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        ));
    }

    /// Opens a block (closing the open one).
    fn open(&mut self, open: Open, block: Value, out: &mut Vec<Ev>) {
        self.close(out);
        out.push((
            "content_block_start",
            json!({"type": "content_block_start", "index": self.next, "content_block": block}),
        ));
        self.next += 1;
        self.open = open;
    }

    fn delta(&self, index: usize, delta: Value) -> Ev {
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": index, "delta": delta}),
        )
    }

    /// The events of one chunk of the plugin's stream.
    pub fn chunk(&mut self, c: &ChatChunk) -> Vec<Ev> {
        let mut out = Vec::new();
        match c {
            ChatChunk::Reasoning(t) => {
                if self.open != Open::Thinking {
                    // The blank line the plugin puts between two reasoning items opens
                    // nothing by itself.
                    if t.trim().is_empty() {
                        return out;
                    }
                    self.open(
                        Open::Thinking,
                        json!({"type": "thinking", "thinking": "", "signature": ""}),
                        &mut out,
                    );
                }
                out.push(self.delta(
                    self.next - 1,
                    json!({"type": "thinking_delta", "thinking": t}),
                ));
            }
            // The item to pass back ends the thinking it belongs to (its signature);
            // without reasoning streamed before it, it is a thinking block of its own.
            ChatChunk::ReasoningItem(r) => {
                if self.open != Open::Thinking {
                    self.open(
                        Open::Thinking,
                        json!({"type": "thinking", "thinking": "", "signature": ""}),
                        &mut out,
                    );
                }
                self.items.push(r.clone());
                self.close(&mut out);
            }
            ChatChunk::Text(t) => {
                if t.is_empty() {
                    return out;
                }
                if self.open != Open::Text {
                    self.open(Open::Text, json!({"type": "text", "text": ""}), &mut out);
                }
                out.push(self.delta(self.next - 1, json!({"type": "text_delta", "text": t})));
            }
            ChatChunk::ToolCallStart(s) => {
                self.calls = true;
                self.open(
                    Open::Tool(s.index),
                    json!({"type": "tool_use", "id": s.id, "name": s.name, "input": {}}),
                    &mut out,
                );
            }
            ChatChunk::ToolCallArguments(d) => {
                if self.open == Open::Tool(d.index) {
                    if !d.arguments.is_empty() {
                        out.push(self.delta(
                            self.next - 1,
                            json!({"type": "input_json_delta", "partial_json": d.arguments}),
                        ));
                    }
                } else {
                    // Its block is closed: no delta may target it (the plugin sends a
                    // call's pieces together; this is never expected).
                    tracing::warn!(
                        index = d.index,
                        "tool call arguments after their block closed"
                    );
                }
            }
            // Anthropic's citations point into documents: URL citations have no place.
            ChatChunk::Citation(_) => {}
            ChatChunk::Usage(u) => self.usage = Some(*u),
            ChatChunk::Finish(f) => self.finish = Some(f.clone()),
        }
        out
    }

    /// The open block's end, `message_delta` and `message_stop`.
    pub fn finish(&mut self) -> Vec<Ev> {
        let mut out = Vec::new();
        self.close(&mut out);
        let mut usage = self
            .usage
            .as_ref()
            .map_or_else(|| json!({"output_tokens": 0}), usage);
        if self.usage.is_none() {
            usage["input_tokens"] = json!(self.estimate);
        }
        out.push((
            "message_delta",
            json!({"type": "message_delta",
                   "delta": {"stop_reason": stop_reason(self.finish.as_ref(), self.calls),
                             "stop_sequence": null},
                   "usage": usage}),
        ));
        out.push(("message_stop", json!({"type": "message_stop"})));
        out
    }
}
