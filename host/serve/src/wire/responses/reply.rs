//! The reply in the Responses API's shape: whole (a `response` object) or as `response.*`
//! events, item ids and output indexes consistent across them.

use provider_runtime::bindings::types::{ChatChunk, ChatReply, ReasoningItem, ToolCall, Usage};
use serde_json::{Value, json};

pub fn usage(u: &Usage) -> Value {
    json!({
        "input_tokens": u.input_tokens,
        "output_tokens": u.output_tokens,
        "total_tokens": u.total_tokens,
        "input_tokens_details": {"cached_tokens": u.cached_input_tokens.unwrap_or(0)},
        "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens.unwrap_or(0)},
    })
}

pub(super) fn message_item(id: &str, text: &str, annotations: Vec<Value>, status: &str) -> Value {
    json!({"type": "message", "id": id, "status": status, "role": "assistant",
           "content": [{"type": "output_text", "text": text, "annotations": annotations}]})
}

pub(super) fn call_item(id: &str, c: &ToolCall, status: &str) -> Value {
    json!({"type": "function_call", "id": id, "call_id": c.id, "name": c.name,
           "arguments": c.arguments, "status": status})
}

pub(super) fn summary(text: &str) -> Value {
    if text.is_empty() {
        json!([])
    } else {
        json!([{"type": "summary_text", "text": text}])
    }
}

/// A reasoning output item, complete: `id`, the summary `text` (or, when none was
/// streamed, upstream's own summary) and upstream's `encrypted_content` when the plugin
/// returned the item to pass back.
pub(super) fn reasoning_output(id: &str, text: &str, upstream: Option<&Value>) -> Value {
    let mut item =
        json!({"type": "reasoning", "id": id, "status": "completed", "summary": summary(text)});
    if let Some(u) = upstream {
        if let Some(e) = u.get("encrypted_content").filter(|e| e.is_string()) {
            item["encrypted_content"] = e.clone();
        }
        if text.is_empty()
            && let Some(s) = u.get("summary").filter(|s| s.is_array())
        {
            item["summary"] = s.clone();
        }
    }
    item
}

/// The JSON of a reasoning item the plugin returned (an object, or nothing).
pub(super) fn upstream_item(r: &ReasoningItem) -> Option<Value> {
    serde_json::from_str::<Value>(&r.data)
        .ok()
        .filter(Value::is_object)
}

/// Output item ids: `<kind>_<response id's hex>_<output index>`, the same in every event
/// and in the final response.
pub(super) fn item_id(response: &str, kind: &str, index: usize) -> String {
    let hex = response.strip_prefix("resp_").unwrap_or(response);
    format!("{kind}_{hex}_{index}")
}

pub(super) fn envelope(
    id: &str,
    created: u64,
    model: &str,
    status: &str,
    output: Vec<Value>,
    usage: Option<&Usage>,
    incomplete: Option<&str>,
) -> Value {
    json!({
        "id": id, "object": "response", "created_at": created, "status": status, "model": model,
        "output": output, "usage": usage.map(self::usage),
        "incomplete_details": incomplete.map(|r| json!({"reason": r})),
        "parallel_tool_calls": true, "tool_choice": "auto", "tools": [], "error": null,
    })
}

pub(super) fn status_of(
    reply_finish: Option<&provider_runtime::bindings::types::FinishReason>,
) -> (&'static str, Option<&'static str>) {
    use provider_runtime::bindings::types::FinishReason as F;
    match reply_finish {
        Some(F::Length) => ("incomplete", Some("max_output_tokens")),
        Some(F::ContentFilter) => ("incomplete", Some("content_filter")),
        _ => ("completed", None),
    }
}

pub(super) fn annotation(c: &provider_runtime::bindings::types::Citation) -> Value {
    json!({"type": "url_citation", "url": c.url, "title": c.title,
           "start_index": c.start_index, "end_index": c.end_index})
}

/// The whole response: reasoning (the items the plugin returned to pass back, or, on the
/// chat-completions lane, which returns none, the visible reasoning as a summary), then
/// the message, then the calls.
pub fn whole(id: &str, created: u64, model: &str, r: &ChatReply) -> Value {
    let mut output: Vec<Value> = Vec::new();
    if r.reasoning_items.is_empty() {
        if let Some(text) = r.reasoning.as_deref().filter(|t| !t.is_empty()) {
            output.push(reasoning_output(&item_id(id, "rs", 0), text, None));
        }
    } else {
        for item in &r.reasoning_items {
            let index = output.len();
            output.push(reasoning_output(
                &item_id(id, "rs", index),
                "",
                upstream_item(item).as_ref(),
            ));
        }
    }
    if !r.content.is_empty() || r.tool_calls.is_empty() {
        let index = output.len();
        output.push(message_item(
            &item_id(id, "msg", index),
            &r.content,
            r.citations.iter().map(annotation).collect(),
            "completed",
        ));
    }
    for c in &r.tool_calls {
        let index = output.len();
        output.push(call_item(&item_id(id, "fc", index), c, "completed"));
    }
    let (status, incomplete) = status_of(r.finish_reason.as_ref());
    // Name the model as the caller asked for it when the reply did not say.
    let model = if r.model.is_empty() {
        model
    } else {
        r.model.as_str()
    };
    envelope(
        id,
        created,
        model,
        status,
        output,
        r.usage.as_ref(),
        incomplete,
    )
}

/// The output item being written while a stream runs.
pub(super) enum Open {
    None,
    Reasoning { index: usize, text: String },
    Message { index: usize, text: String },
    Call { index: usize, call: ToolCall },
}

/// Turns the plugin's chunks into `response.*` events in the order OpenAI's Responses API
/// sends them: each output item announced (`output_item.added`, at the next output index,
/// with its id), its parts and deltas, its `.done` events, and only then the next item;
/// `response.completed` carries every item as its `.done` event did.
pub struct EventWriter {
    id: String,
    created: u64,
    model: String,
    seq: u64,
    output: Vec<Value>,
    open: Open,
    annotations: Vec<Value>,
    usage: Option<Usage>,
    finish: Option<provider_runtime::bindings::types::FinishReason>,
}

impl EventWriter {
    pub fn new(id: String, created: u64, model: String) -> Self {
        Self {
            id,
            created,
            model,
            seq: 0,
            output: Vec::new(),
            open: Open::None,
            annotations: Vec::new(),
            usage: None,
            finish: None,
        }
    }

    fn ev(&mut self, kind: &str, mut body: Value) -> (String, Value) {
        body["type"] = json!(kind);
        body["sequence_number"] = json!(self.seq);
        self.seq += 1;
        (kind.to_owned(), body)
    }

    fn envelope(&self, status: &str, incomplete: Option<&str>) -> Value {
        envelope(
            &self.id,
            self.created,
            &self.model,
            status,
            self.output.clone(),
            self.usage.as_ref(),
            incomplete,
        )
    }

    fn item_id(&self, kind: &str, index: usize) -> String {
        item_id(&self.id, kind, index)
    }

    pub fn start(&mut self) -> Vec<(String, Value)> {
        let r = self.envelope("in_progress", None);
        vec![
            self.ev("response.created", json!({"response": r.clone()})),
            self.ev("response.in_progress", json!({"response": r})),
        ]
    }

    /// Announce a new output item; its index.
    fn add(&mut self, item: Value, out: &mut Vec<(String, Value)>) -> usize {
        let index = self.output.len();
        self.output.push(item.clone());
        out.push(self.ev(
            "response.output_item.added",
            json!({"output_index": index, "item": item}),
        ));
        index
    }

    /// Finish output item `index` as `item`.
    fn done(&mut self, index: usize, item: Value, out: &mut Vec<(String, Value)>) {
        self.output[index] = item.clone();
        out.push(self.ev(
            "response.output_item.done",
            json!({"output_index": index, "item": item}),
        ));
    }

    /// Close the open item; `upstream` is the reasoning item the plugin returned for it.
    fn close_with(&mut self, upstream: Option<&Value>, out: &mut Vec<(String, Value)>) {
        match std::mem::replace(&mut self.open, Open::None) {
            Open::None => {}
            Open::Reasoning { index, text } => {
                let item_id = self.item_id("rs", index);
                out.push(self.ev("response.reasoning_summary_text.done", json!({"item_id": item_id, "output_index": index, "summary_index": 0, "text": text})));
                out.push(self.ev("response.reasoning_summary_part.done", json!({"item_id": item_id, "output_index": index, "summary_index": 0, "part": {"type": "summary_text", "text": text}})));
                let item = reasoning_output(&item_id, &text, upstream);
                self.done(index, item, out);
            }
            Open::Message { index, text } => {
                let item_id = self.item_id("msg", index);
                let annotations = std::mem::take(&mut self.annotations);
                let part = json!({"type": "output_text", "text": text, "annotations": annotations});
                out.push(self.ev("response.output_text.done", json!({"item_id": item_id, "output_index": index, "content_index": 0, "text": text})));
                out.push(self.ev("response.content_part.done", json!({"item_id": item_id, "output_index": index, "content_index": 0, "part": part})));
                let item = message_item(&item_id, &text, annotations, "completed");
                self.done(index, item, out);
            }
            Open::Call { index, call } => {
                let item_id = self.item_id("fc", index);
                out.push(self.ev(
                    "response.function_call_arguments.done",
                    json!({"item_id": item_id, "output_index": index, "arguments": call.arguments}),
                ));
                let item = call_item(&item_id, &call, "completed");
                self.done(index, item, out);
            }
        }
    }

    fn close(&mut self, out: &mut Vec<(String, Value)>) {
        self.close_with(None, out);
    }

    /// The events for one chunk.
    pub fn chunk(&mut self, c: &ChatChunk) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        match c {
            ChatChunk::Text(t) => {
                if !matches!(self.open, Open::Message { .. }) {
                    self.close(&mut out);
                    let index = self.output.len();
                    let item_id = self.item_id("msg", index);
                    let index = self.add(
                        json!({"type": "message", "id": item_id, "status": "in_progress", "role": "assistant", "content": []}),
                        &mut out,
                    );
                    out.push(self.ev("response.content_part.added", json!({"item_id": item_id, "output_index": index, "content_index": 0, "part": {"type": "output_text", "text": "", "annotations": []}})));
                    self.open = Open::Message {
                        index,
                        text: String::new(),
                    };
                }
                if let Open::Message { index, text } = &mut self.open {
                    text.push_str(t);
                    let index = *index;
                    let item_id = self.item_id("msg", index);
                    out.push(self.ev("response.output_text.delta", json!({"item_id": item_id, "output_index": index, "content_index": 0, "delta": t})));
                }
            }
            ChatChunk::Reasoning(t) => {
                if !matches!(self.open, Open::Reasoning { .. }) {
                    // The blank line the plugin puts between two reasoning items opens
                    // nothing.
                    if t.trim().is_empty() {
                        return out;
                    }
                    self.close(&mut out);
                    let index = self.output.len();
                    let item_id = self.item_id("rs", index);
                    let index = self.add(
                        json!({"type": "reasoning", "id": item_id, "status": "in_progress", "summary": []}),
                        &mut out,
                    );
                    out.push(self.ev("response.reasoning_summary_part.added", json!({"item_id": item_id, "output_index": index, "summary_index": 0, "part": {"type": "summary_text", "text": ""}})));
                    self.open = Open::Reasoning {
                        index,
                        text: String::new(),
                    };
                }
                if let Open::Reasoning { index, text } = &mut self.open {
                    text.push_str(t);
                    let index = *index;
                    let item_id = self.item_id("rs", index);
                    out.push(self.ev("response.reasoning_summary_text.delta", json!({"item_id": item_id, "output_index": index, "summary_index": 0, "delta": t})));
                }
            }
            // The item to pass back (its encrypted content) ends the reasoning it belongs
            // to; without streamed reasoning before it, it is an item of its own.
            ChatChunk::ReasoningItem(r) => {
                let upstream = upstream_item(r);
                if !matches!(self.open, Open::Reasoning { .. }) {
                    self.close(&mut out);
                    let index = self.output.len();
                    let item_id = self.item_id("rs", index);
                    self.add(
                        json!({"type": "reasoning", "id": item_id, "status": "in_progress", "summary": []}),
                        &mut out,
                    );
                    let item = reasoning_output(&item_id, "", upstream.as_ref());
                    self.done(index, item, &mut out);
                } else {
                    self.close_with(upstream.as_ref(), &mut out);
                }
            }
            ChatChunk::ToolCallStart(s) => {
                self.close(&mut out);
                let index = self.output.len();
                let call = ToolCall {
                    id: s.id.clone(),
                    name: s.name.clone(),
                    arguments: String::new(),
                };
                let item = call_item(&self.item_id("fc", index), &call, "in_progress");
                self.add(item, &mut out);
                self.open = Open::Call { index, call };
            }
            ChatChunk::ToolCallArguments(d) => {
                if let Open::Call { index, call } = &mut self.open {
                    call.arguments.push_str(&d.arguments);
                    let index = *index;
                    let item_id = self.item_id("fc", index);
                    out.push(self.ev(
                        "response.function_call_arguments.delta",
                        json!({"item_id": item_id, "output_index": index, "delta": d.arguments}),
                    ));
                }
            }
            ChatChunk::Citation(c) => {
                let a = annotation(c);
                if let Open::Message { index, .. } = self.open {
                    let item_id = self.item_id("msg", index);
                    out.push(self.ev("response.output_text.annotation.added", json!({"item_id": item_id, "output_index": index, "content_index": 0, "annotation_index": self.annotations.len(), "annotation": a.clone()})));
                }
                self.annotations.push(a);
            }
            ChatChunk::Usage(u) => self.usage = Some(*u),
            ChatChunk::Finish(f) => self.finish = Some(f.clone()),
        }
        out
    }

    /// The closing events after the plugin's stream ended.
    pub fn finish(&mut self) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        self.close(&mut out);
        let (status, incomplete) = status_of(self.finish.as_ref());
        let r = self.envelope(status, incomplete);
        let kind = if status == "completed" {
            "response.completed"
        } else {
            "response.incomplete"
        };
        out.push(self.ev(kind, json!({"response": r})));
        out
    }

    /// An `error` event for a failure mid-stream.
    pub fn error(&mut self, code: &str, message: &str) -> (String, Value) {
        self.ev(
            "error",
            json!({"code": code, "message": message, "param": null}),
        )
    }
}
