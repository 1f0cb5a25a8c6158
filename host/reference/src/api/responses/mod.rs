//! `POST /v1/responses` (the Responses API), whole or streamed as `response.*` events.
//!
//! Output items, in order: a reasoning item (reasoning and multi-agent models), the
//! message, then one `function_call` item per scripted call. A stream sends
//! `response.created`, `response.in_progress`, each item's events (see [`Events`]), then
//! `response.completed` (or `response.incomplete` when the token cap cut the text) with
//! the whole response. Every event carries `type` and `sequence_number`.

mod request;

use bytes::Bytes;
use serde_json::{Value, json};

use super::models::{self, ModelKind};
use super::reply::{self, Finish, Generated};
use super::search;
use super::tools::{self, ToolCall, ToolStreamStyle};
use super::{Ctx, invalid_argument, sse};
use crate::http::Reply;

pub(super) fn handle(ctx: &Ctx<'_>, body: &Value) -> Reply {
    let request = match request::parse(body) {
        Ok(r) => r,
        Err(message) => return invalid_argument(&message),
    };
    let model_id = request.model;
    let model = match models::lookup(ctx, model_id) {
        Ok(m) => m,
        Err(reply) => return reply,
    };
    match model.kind {
        ModelKind::Media => {
            return invalid_argument(&format!("Model {model_id} is not a chat model"));
        }
        // As xAI answers; its server tools (web_search, x_search) are fine.
        ModelKind::MultiAgent if !request.turn.tools.functions.is_empty() => {
            return invalid_argument(
                "Client-side tools for multi-agent models require beta access",
            );
        }
        _ => {}
    }
    let agents =
        (model.kind == ModelKind::MultiAgent).then(|| reply::agents_for_effort(request.effort));
    let mut generated = reply::generate(
        model,
        &request.turn,
        ctx.config.reply_bytes,
        agents,
        ctx.seq,
    );
    generated.usage.cached = ctx
        .cache
        .read(request.prompt_cache_key, generated.usage.input);
    let echoed = ctx.echoed(model_id);
    let answer = Answer {
        ctx,
        id: format!("resp_{:06}", ctx.seq),
        model: &echoed,
        items: items(ctx.seq, &generated, &request),
        generated: &generated,
    };
    if request.stream {
        ctx.note_stream();
        answer.stream()
    } else {
        Reply::json(200, &answer.response(true))
    }
}

/// One output item.
enum Item<'a> {
    Reasoning {
        id: String,
        text: &'static str,
        /// `encrypted_content`, when `include` asked for it.
        encrypted: Option<String>,
    },
    Message {
        id: String,
        text: &'a str,
        /// Citations of the text (live search).
        annotations: Vec<Value>,
        status: &'static str,
    },
    Call(&'a ToolCall),
}

fn items<'a>(seq: u64, g: &'a Generated, request: &request::Request<'_>) -> Vec<Item<'a>> {
    let mut items = Vec::new();
    if let Some(text) = g.reasoning {
        items.push(Item::Reasoning {
            id: format!("rs_{seq:06}"),
            text,
            encrypted: request.encrypted_reasoning.then(|| format!("enc_{seq:06}")),
        });
    }
    let annotations = if request.turn.search && !g.text.is_empty() {
        vec![search::url_citation(&g.text)]
    } else {
        Vec::new()
    };
    items.push(Item::Message {
        id: format!("msg_{seq:06}"),
        text: &g.text,
        annotations,
        status: status(g),
    });
    items.extend(g.calls.iter().map(Item::Call));
    items
}

fn status(g: &Generated) -> &'static str {
    if g.finish == Finish::Length {
        "incomplete"
    } else {
        "completed"
    }
}

fn output_text(text: &str, annotations: &[Value]) -> Value {
    json!({"type": "output_text", "text": text, "annotations": annotations})
}

impl Item<'_> {
    fn id(&self) -> &str {
        match self {
            Item::Reasoning { id, .. } | Item::Message { id, .. } => id,
            Item::Call(call) => &call.item_id,
        }
    }

    /// The item complete.
    fn done(&self) -> Value {
        match self {
            Item::Reasoning {
                id,
                text,
                encrypted,
            } => {
                let mut item = json!({
                    "id": id, "type": "reasoning", "status": "completed",
                    "summary": [{"type": "summary_text", "text": text}],
                });
                if let Some(e) = encrypted {
                    item["encrypted_content"] = json!(e);
                }
                item
            }
            Item::Message {
                id,
                text,
                annotations,
                status,
            } => json!({
                "id": id, "type": "message", "role": "assistant", "status": status,
                "content": [output_text(text, annotations)],
            }),
            Item::Call(call) => call_item(call, &call.arguments, "completed"),
        }
    }

    /// The item as `response.output_item.added` announces it.
    fn added(&self) -> Value {
        match self {
            Item::Reasoning { id, .. } => {
                json!({"id": id, "type": "reasoning", "status": "in_progress", "summary": []})
            }
            Item::Message { id, .. } => json!({
                "id": id, "type": "message", "role": "assistant", "status": "in_progress",
                "content": [output_text("", &[])],
            }),
            Item::Call(call) => call_item(call, "", "in_progress"),
        }
    }
}

fn call_item(call: &ToolCall, arguments: &str, status: &str) -> Value {
    json!({
        "id": call.item_id, "type": "function_call", "status": status,
        "call_id": call.id, "name": call.name, "arguments": arguments,
    })
}

struct Answer<'a> {
    ctx: &'a Ctx<'a>,
    id: String,
    model: &'a str,
    generated: &'a Generated,
    items: Vec<Item<'a>>,
}

impl Answer<'_> {
    /// The response object; while in progress without output or usage.
    fn response(&self, done: bool) -> Value {
        let mut value = json!({
            "id": self.id, "object": "response", "created_at": self.ctx.now,
            "model": self.model, "status": "in_progress", "output": [], "usage": null,
            "incomplete_details": null, "error": null,
        });
        if !done {
            return value;
        }
        let g = self.generated;
        let u = g.usage;
        value["status"] = json!(status(g));
        value["output"] = self.items.iter().map(Item::done).collect();
        // OpenAI's accounting: output tokens include reasoning tokens.
        value["usage"] = json!({
            "input_tokens": u.input,
            "input_tokens_details": {"cached_tokens": u.cached},
            "output_tokens": u.output + u.reasoning,
            "output_tokens_details": {"reasoning_tokens": u.reasoning},
            "total_tokens": u.total(),
        });
        if g.finish == Finish::Length {
            value["incomplete_details"] = json!({"reason": "max_output_tokens"});
        }
        value
    }

    fn stream(&self) -> Reply {
        let mut events = Events {
            list: Vec::new(),
            size: self.ctx.config.stream_chunk_bytes,
            style: self.ctx.tool_stream_style,
        };
        let in_progress = self.response(false);
        events.push("response.created", json!({"response": in_progress}));
        events.push("response.in_progress", json!({"response": in_progress}));
        for (index, item) in self.items.iter().enumerate() {
            events.item(index, item);
        }
        let terminal = if self.generated.finish == Finish::Length {
            "response.incomplete"
        } else {
            "response.completed"
        };
        events.push(terminal, json!({"response": self.response(true)}));
        Reply::sse(events.list)
    }
}

/// The events of a stream. Per item, between `response.output_item.added` (the item
/// empty) and `response.output_item.done` (the item complete):
///
/// - reasoning: `response.reasoning_summary_part.added`,
///   `response.reasoning_summary_text.delta`…, `response.reasoning_summary_text.done`,
///   `response.reasoning_summary_part.done`;
/// - message: `response.content_part.added`, `response.output_text.delta`…,
///   `response.output_text.annotation.added` (when cited), `response.output_text.done`,
///   `response.content_part.done`;
/// - function call: `response.function_call_arguments.delta` (Whole: one, all the
///   arguments; Split: pieces of about 7 bytes; DoneOnly: one, empty), then
///   `response.function_call_arguments.done` with all the arguments.
struct Events {
    list: Vec<Bytes>,
    size: usize,
    style: ToolStreamStyle,
}

/// `base` with the fields of `extra` added.
fn merged(base: &Value, extra: Value) -> Value {
    let mut out = base.clone();
    if let (Value::Object(out), Value::Object(extra)) = (&mut out, extra) {
        out.extend(extra);
    }
    out
}

impl Events {
    fn push(&mut self, name: &str, mut data: Value) {
        data["type"] = json!(name);
        data["sequence_number"] = json!(self.list.len());
        self.list.push(sse::named(name, &data));
    }

    fn item(&mut self, index: usize, item: &Item<'_>) {
        self.push(
            "response.output_item.added",
            json!({"output_index": index, "item": item.added()}),
        );
        let at = json!({"item_id": item.id(), "output_index": index});
        match item {
            Item::Reasoning { text, .. } => {
                let at = merged(&at, json!({"summary_index": 0}));
                let part = |text: &str| json!({"part": {"type": "summary_text", "text": text}});
                self.push(
                    "response.reasoning_summary_part.added",
                    merged(&at, part("")),
                );
                for piece in sse::pieces(text, self.size) {
                    self.push(
                        "response.reasoning_summary_text.delta",
                        merged(&at, json!({"delta": piece})),
                    );
                }
                self.push(
                    "response.reasoning_summary_text.done",
                    merged(&at, json!({"text": text})),
                );
                self.push(
                    "response.reasoning_summary_part.done",
                    merged(&at, part(text)),
                );
            }
            Item::Message {
                text, annotations, ..
            } => {
                let at = merged(&at, json!({"content_index": 0}));
                self.push(
                    "response.content_part.added",
                    merged(&at, json!({"part": output_text("", &[])})),
                );
                for piece in sse::pieces(text, self.size) {
                    self.push(
                        "response.output_text.delta",
                        merged(&at, json!({"delta": piece})),
                    );
                }
                for (i, annotation) in annotations.iter().enumerate() {
                    self.push(
                        "response.output_text.annotation.added",
                        merged(
                            &at,
                            json!({"annotation_index": i, "annotation": annotation}),
                        ),
                    );
                }
                self.push(
                    "response.output_text.done",
                    merged(&at, json!({"text": text})),
                );
                self.push(
                    "response.content_part.done",
                    merged(&at, json!({"part": output_text(text, annotations)})),
                );
            }
            Item::Call(call) => {
                let deltas = match self.style {
                    ToolStreamStyle::Whole => vec![call.arguments.as_str()],
                    ToolStreamStyle::Split => tools::argument_pieces(&call.arguments),
                    ToolStreamStyle::DoneOnly => vec![""],
                };
                for delta in deltas {
                    self.push(
                        "response.function_call_arguments.delta",
                        merged(&at, json!({"delta": delta})),
                    );
                }
                self.push(
                    "response.function_call_arguments.done",
                    merged(&at, json!({"arguments": call.arguments})),
                );
            }
        }
        self.push(
            "response.output_item.done",
            json!({"output_index": index, "item": item.done()}),
        );
    }
}
