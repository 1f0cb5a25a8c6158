//! `POST /v1/chat/completions`, whole or streamed as `chat.completion.chunk` events.
//!
//! A stream sends, each as one `data:` chunk: the reasoning (`delta.reasoning_content`,
//! reasoning models), the text (`delta.content`), the tool calls as the handle's
//! [`ToolStreamStyle`] says, a chunk with the finish reason, a usage chunk (always, as
//! xAI does, with or without `stream_options.include_usage`; it also carries `citations`
//! when searched), then `data: [DONE]`. The first chunk carries `role`.

mod request;

use serde_json::{Value, json};

use super::models::{self, ModelKind};
use super::reply::{self, Finish, Generated};
use super::search::SOURCE_URL;
use super::tools::{self, ToolStreamStyle};
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
        ModelKind::MultiAgent => {
            return invalid_argument(&format!(
                "Model {model_id} is only supported on the Responses API (/v1/responses)"
            ));
        }
        ModelKind::Media => {
            return invalid_argument(&format!("Model {model_id} is not a chat model"));
        }
        ModelKind::Chat | ModelKind::Reasoning => {}
    }
    let mut generated =
        reply::generate(model, &request.turn, ctx.config.reply_bytes, None, ctx.seq);
    // xAI routes cache hits by conversation id.
    generated.usage.cached = ctx
        .cache
        .read(ctx.request.header("x-grok-conv-id"), generated.usage.input);
    let echoed = ctx.echoed(model_id);
    let answer = Answer {
        ctx,
        id: format!("chatcmpl-{:06}", ctx.seq),
        model: &echoed,
        generated: &generated,
        citations: request.turn.search,
    };
    if request.stream {
        ctx.note_stream();
        answer.stream()
    } else {
        answer.whole()
    }
}

struct Answer<'a> {
    ctx: &'a Ctx<'a>,
    id: String,
    model: &'a str,
    generated: &'a Generated,
    /// Live search was on: `citations` at the top level.
    citations: bool,
}

fn finish_reason(finish: Finish) -> &'static str {
    match finish {
        Finish::Stop => "stop",
        Finish::Length => "length",
        Finish::ToolCalls => "tool_calls",
    }
}

/// xAI's accounting: `completion_tokens` excludes reasoning, which the total adds.
fn usage(generated: &Generated) -> Value {
    let u = generated.usage;
    json!({
        "prompt_tokens": u.input,
        "completion_tokens": u.output,
        "total_tokens": u.total(),
        "prompt_tokens_details": {"cached_tokens": u.cached},
        "completion_tokens_details": {"reasoning_tokens": u.reasoning},
    })
}

impl Answer<'_> {
    fn with_citations(&self, mut value: Value) -> Value {
        if self.citations {
            value["citations"] = json!([SOURCE_URL]);
        }
        value
    }

    fn whole(&self) -> Reply {
        let g = self.generated;
        let mut message = json!({"role": "assistant", "content": g.text, "refusal": null});
        if let Some(reasoning) = g.reasoning {
            // Reasoning models also send their thoughts apart; clients must not mix them in.
            message["reasoning_content"] = json!(reasoning);
        }
        if !g.calls.is_empty() {
            let calls: Vec<Value> = g
                .calls
                .iter()
                .map(|c| {
                    json!({"id": c.id, "type": "function",
                           "function": {"name": c.name, "arguments": c.arguments}})
                })
                .collect();
            message["tool_calls"] = json!(calls);
        }
        Reply::json(
            200,
            &self.with_citations(json!({
                "id": self.id,
                "object": "chat.completion",
                "created": self.ctx.now,
                "model": self.model,
                "choices": [{"index": 0, "message": message, "finish_reason": finish_reason(g.finish)}],
                "usage": usage(g),
                "system_fingerprint": "fp_reference",
            })),
        )
    }

    fn chunk(&self, choices: Value) -> Value {
        json!({
            "id": self.id, "object": "chat.completion.chunk", "created": self.ctx.now,
            "model": self.model, "choices": choices, "system_fingerprint": "fp_reference",
        })
    }

    fn stream(&self) -> Reply {
        let g = self.generated;
        let size = self.ctx.config.stream_chunk_bytes;
        let mut deltas = Vec::new();
        if let Some(reasoning) = g.reasoning {
            for piece in sse::pieces(reasoning, size) {
                deltas.push(json!({"reasoning_content": piece}));
            }
        }
        for piece in sse::pieces(&g.text, size) {
            deltas.push(json!({"content": piece}));
        }
        let style = self.ctx.tool_stream_style;
        for (index, call) in g.calls.iter().enumerate() {
            let head = |arguments: &str| {
                json!({"tool_calls": [{"index": index, "id": call.id, "type": "function",
                                       "function": {"name": call.name, "arguments": arguments}}]})
            };
            if style == ToolStreamStyle::Whole {
                deltas.push(head(&call.arguments));
                continue;
            }
            // OpenAI's way (DoneOnly has no equivalent here): the head, then the pieces.
            deltas.push(head(""));
            for piece in tools::argument_pieces(&call.arguments) {
                deltas.push(
                    json!({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}),
                );
            }
        }
        if let Some(first) = deltas.first_mut() {
            first["role"] = json!("assistant");
        }
        let mut events: Vec<_> = deltas
            .into_iter()
            .map(|delta| {
                sse::data(&self.chunk(json!([{"index": 0, "delta": delta, "finish_reason": null}])))
            })
            .collect();
        events.push(sse::data(&self.chunk(json!([{
            "index": 0, "delta": {}, "finish_reason": finish_reason(g.finish),
        }]))));
        let mut last = self.chunk(json!([]));
        last["usage"] = usage(g);
        events.push(sse::data(&self.with_citations(last)));
        events.push(sse::done());
        Reply::sse(events)
    }
}
