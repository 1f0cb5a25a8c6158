//! `POST /v1/chat/completions`, whole or streamed as `chat.completion.chunk` events.

use serde_json::{Value, json};

use super::models::{self, ModelKind};
use super::reply::{self, Generated};
use super::{Ctx, invalid_argument, sse};
use crate::http::Reply;

pub(super) fn handle(ctx: &Ctx<'_>, body: &Value) -> Reply {
    let Some(model_id) = body.get("model").and_then(Value::as_str) else {
        return invalid_argument("model is required");
    };
    let conversation = match messages(body) {
        Ok(c) => c,
        Err(message) => return invalid_argument(message),
    };
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
    let max_tokens = body
        .get("max_completion_tokens")
        .or_else(|| body.get("max_tokens"))
        .and_then(Value::as_u64);
    let generated = reply::generate(
        model,
        &conversation,
        ctx.config.reply_bytes,
        max_tokens,
        None,
    );
    let reasoning = model.kind == ModelKind::Reasoning;
    let id = format!("chatcmpl-{:06}", ctx.seq);
    if body.get("stream").and_then(Value::as_bool) == Some(true) {
        ctx.note_stream();
        stream(ctx, &id, model_id, &generated, reasoning)
    } else {
        whole(ctx, &id, model_id, &generated, reasoning)
    }
}

/// The conversation as (role, text); an error message when it is not a usable list.
fn messages(body: &Value) -> Result<Vec<(String, String)>, &'static str> {
    let list = body
        .get("messages")
        .and_then(Value::as_array)
        .ok_or("messages must be an array")?;
    if list.is_empty() {
        return Err("messages must not be empty");
    }
    list.iter()
        .map(|m| {
            let role = m
                .get("role")
                .and_then(Value::as_str)
                .ok_or("message without role")?;
            if !matches!(role, "system" | "developer" | "user" | "assistant" | "tool") {
                return Err("unknown message role");
            }
            let text = reply::content_text(m.get("content").unwrap_or(&Value::Null))
                .ok_or("message content must be a string or an array of parts")?;
            Ok((role.to_owned(), text))
        })
        .collect()
}

fn finish_reason(generated: &Generated) -> &'static str {
    if generated.truncated {
        "length"
    } else {
        "stop"
    }
}

fn usage(generated: &Generated) -> Value {
    let u = generated.usage;
    json!({
        "prompt_tokens": u.input,
        "completion_tokens": u.output,
        "total_tokens": u.total,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": u.reasoning},
    })
}

const REASONING_TEXT: &str = "Thinking about the request.";

fn whole(ctx: &Ctx<'_>, id: &str, model: &str, generated: &Generated, reasoning: bool) -> Reply {
    let mut message = json!({"role": "assistant", "content": generated.text, "refusal": null});
    if reasoning {
        // Reasoning models also send their thoughts apart; clients must not mix them in.
        message["reasoning_content"] = json!(REASONING_TEXT);
    }
    Reply::json(
        200,
        &json!({
            "id": id,
            "object": "chat.completion",
            "created": ctx.now,
            "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish_reason(generated)}],
            "usage": usage(generated),
            "system_fingerprint": "fp_reference",
        }),
    )
}

fn stream(ctx: &Ctx<'_>, id: &str, model: &str, generated: &Generated, reasoning: bool) -> Reply {
    let chunk = |choices: Value| {
        json!({
            "id": id, "object": "chat.completion.chunk", "created": ctx.now, "model": model,
            "choices": choices, "system_fingerprint": "fp_reference",
        })
    };
    let mut events = Vec::new();
    if reasoning {
        events.push(sse::data(&chunk(json!([{
            "index": 0,
            "delta": {"role": "assistant", "reasoning_content": REASONING_TEXT},
            "finish_reason": null,
        }]))));
    }
    for (i, piece) in sse::pieces(&generated.text, ctx.config.stream_chunk_bytes)
        .into_iter()
        .enumerate()
    {
        let delta = if i == 0 {
            json!({"role": "assistant", "content": piece})
        } else {
            json!({"content": piece})
        };
        events.push(sse::data(&chunk(
            json!([{"index": 0, "delta": delta, "finish_reason": null}]),
        )));
    }
    events.push(sse::data(&chunk(json!([{
        "index": 0, "delta": {}, "finish_reason": finish_reason(generated),
    }]))));
    let mut usage_chunk = chunk(json!([]));
    usage_chunk["usage"] = usage(generated);
    events.push(sse::data(&usage_chunk));
    events.push(sse::done());
    Reply::sse(events)
}
