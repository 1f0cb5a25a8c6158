//! `POST /v1/responses` (the Responses API), whole or streamed as `response.*` events.

use serde_json::{Value, json};

use super::models::{self, ModelKind};
use super::reply::{self, Generated};
use super::{Ctx, invalid_argument, sse};
use crate::http::Reply;

pub(super) fn handle(ctx: &Ctx<'_>, body: &Value) -> Reply {
    let Some(model_id) = body.get("model").and_then(Value::as_str) else {
        return invalid_argument("model is required");
    };
    let conversation = match conversation(body) {
        Ok(c) => c,
        Err(message) => return invalid_argument(message),
    };
    let model = match models::lookup(ctx, model_id) {
        Ok(m) => m,
        Err(reply) => return reply,
    };
    if model.kind == ModelKind::Media {
        return invalid_argument(&format!("Model {model_id} is not a chat model"));
    }
    let effort = body.pointer("/reasoning/effort").and_then(Value::as_str);
    let agents = (model.kind == ModelKind::MultiAgent).then(|| reply::agents_for_effort(effort));
    let max_tokens = body.get("max_output_tokens").and_then(Value::as_u64);
    let generated = reply::generate(
        model,
        &conversation,
        ctx.config.reply_bytes,
        max_tokens,
        agents,
    );
    let ids = Ids {
        response: format!("resp_{:06}", ctx.seq),
        message: format!("msg_{:06}", ctx.seq),
        reasoning: (model.kind != ModelKind::Chat).then(|| format!("rs_{:06}", ctx.seq)),
    };
    if body.get("stream").and_then(Value::as_bool) == Some(true) {
        ctx.note_stream();
        stream(ctx, &ids, model_id, &generated)
    } else {
        Reply::json(200, &response(ctx, &ids, model_id, Some(&generated)))
    }
}

struct Ids {
    response: String,
    message: String,
    reasoning: Option<String>,
}

/// `instructions` then `input` (a string, or message items) as (role, text).
fn conversation(body: &Value) -> Result<Vec<(String, String)>, &'static str> {
    let mut out = Vec::new();
    if let Some(instructions) = body.get("instructions").and_then(Value::as_str) {
        out.push(("system".to_owned(), instructions.to_owned()));
    }
    match body.get("input") {
        Some(Value::String(text)) => out.push(("user".to_owned(), text.clone())),
        Some(Value::Array(items)) => {
            for item in items {
                let kind = item
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("message");
                if kind != "message" {
                    continue;
                }
                let role = item
                    .get("role")
                    .and_then(Value::as_str)
                    .ok_or("input item without role")?;
                let text = reply::content_text(item.get("content").unwrap_or(&Value::Null))
                    .ok_or("input content must be a string or an array of parts")?;
                out.push((role.to_owned(), text));
            }
        }
        _ => return Err("input must be a string or an array of items"),
    }
    if out.iter().all(|(role, _)| role == "system") {
        return Err("input must contain at least one message");
    }
    Ok(out)
}

fn status(generated: &Generated) -> &'static str {
    if generated.truncated {
        "incomplete"
    } else {
        "completed"
    }
}

fn message_item(ids: &Ids, text: &str, status: &str) -> Value {
    json!({
        "id": ids.message, "type": "message", "role": "assistant", "status": status,
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    })
}

/// The response object; `None` while in progress (no output, no usage yet).
fn response(ctx: &Ctx<'_>, ids: &Ids, model: &str, generated: Option<&Generated>) -> Value {
    let mut value = json!({
        "id": ids.response, "object": "response", "created_at": ctx.now, "model": model,
        "status": "in_progress", "output": [], "usage": null,
        "incomplete_details": null, "error": null,
    });
    if let Some(g) = generated {
        let mut output = Vec::new();
        if let Some(rs) = &ids.reasoning {
            output
                .push(json!({"id": rs, "type": "reasoning", "summary": [], "status": "completed"}));
        }
        output.push(message_item(ids, &g.text, status(g)));
        value["status"] = json!(status(g));
        value["output"] = json!(output);
        value["usage"] = json!({
            "input_tokens": g.usage.input,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": g.usage.output,
            "output_tokens_details": {"reasoning_tokens": g.usage.reasoning},
            "total_tokens": g.usage.total,
        });
        if g.truncated {
            value["incomplete_details"] = json!({"reason": "max_output_tokens"});
        }
    }
    value
}

fn stream(ctx: &Ctx<'_>, ids: &Ids, model: &str, generated: &Generated) -> Reply {
    let mut events = Vec::new();
    let mut push = |name: &str, mut data: Value| {
        data["type"] = json!(name);
        data["sequence_number"] = json!(events.len());
        events.push(sse::named(name, &data));
    };
    let in_progress = response(ctx, ids, model, None);
    push("response.created", json!({"response": in_progress}));
    push("response.in_progress", json!({"response": in_progress}));
    let index = usize::from(ids.reasoning.is_some());
    if let Some(rs) = &ids.reasoning {
        let item = json!({"id": rs, "type": "reasoning", "summary": [], "status": "completed"});
        push(
            "response.output_item.added",
            json!({"output_index": 0, "item": item}),
        );
        push(
            "response.output_item.done",
            json!({"output_index": 0, "item": item}),
        );
    }
    let at = |extra: Value| {
        let mut v = json!({"item_id": ids.message, "output_index": index, "content_index": 0});
        if let (Value::Object(base), Value::Object(more)) = (&mut v, extra) {
            base.extend(more);
        }
        v
    };
    push(
        "response.output_item.added",
        json!({"output_index": index, "item": message_item(ids, "", "in_progress")}),
    );
    push(
        "response.content_part.added",
        at(json!({"part": {"type": "output_text", "text": "", "annotations": []}})),
    );
    for piece in sse::pieces(&generated.text, ctx.config.stream_chunk_bytes) {
        push("response.output_text.delta", at(json!({"delta": piece})));
    }
    push(
        "response.output_text.done",
        at(json!({"text": generated.text})),
    );
    push(
        "response.content_part.done",
        at(json!({"part": {"type": "output_text", "text": generated.text, "annotations": []}})),
    );
    push(
        "response.output_item.done",
        json!({"output_index": index, "item": message_item(ids, &generated.text, status(generated))}),
    );
    let terminal = if generated.truncated {
        "response.incomplete"
    } else {
        "response.completed"
    };
    push(
        terminal,
        json!({"response": response(ctx, ids, model, Some(generated))}),
    );
    Reply::sse(events)
}
