//! WIT records to the script-mode JSON shapes (keys are a contract with scripts).

use provider_host::bindings::types::{
    ChatChunk, ChatReply, ConnectionStatus, DevicePrompt, Lane, LogoutReport, Model, ModelList,
    PollOutcome, Usage,
};
use serde_json::{Value, json};

pub fn lane(l: Lane) -> &'static str {
    match l {
        Lane::ChatCompletions => "chat_completions",
        Lane::Responses => "responses",
        Lane::Media => "media",
    }
}

fn model(m: &Model) -> Value {
    json!({ "id": m.id, "lane": lane(m.lane), "owned_by": m.owned_by, "created": m.created })
}

fn status_fields(s: &ConnectionStatus) -> Value {
    json!({
        "connected": s.connected,
        "tier": s.tier,
        "tier_name": s.tier_name,
        "expires_at": s.expires_at,
        "default_model_id": s.default_model_id,
        "models": s.models.iter().map(model).collect::<Vec<_>>(),
    })
}

fn with_ok(mut v: Value) -> Value {
    v.as_object_mut()
        .expect("object")
        .insert("ok".into(), Value::Bool(true));
    v
}

pub fn status(s: &ConnectionStatus) -> Value {
    with_ok(status_fields(s))
}

pub fn prompt(p: &DevicePrompt) -> Value {
    json!({
        "ok": true,
        "pending_id": p.pending_id,
        "verification_url_with_code": p.verification_url_with_code,
        "verification_url": p.verification_url,
        "user_code": p.user_code,
        "expires_in_seconds": p.expires_in_seconds,
        "interval_seconds": p.interval_seconds,
    })
}

pub fn poll(o: &PollOutcome) -> Value {
    match o {
        PollOutcome::Pending(p) => json!({
            "ok": true,
            "status": "pending",
            "pending_id": p.pending_id,
            "interval_seconds": p.interval_seconds,
            "expires_in_seconds": p.expires_in_seconds,
        }),
        PollOutcome::Connected(s) => {
            let mut v = status(s);
            v["status"] = json!("connected");
            v
        }
    }
}

pub fn logout(r: &LogoutReport) -> Value {
    json!({ "ok": true, "was_connected": r.was_connected, "revoked": r.revoked })
}

pub fn models(m: &ModelList) -> Value {
    json!({
        "ok": true,
        "models": m.models.iter().map(model).collect::<Vec<_>>(),
        "media_models": m.media_models.iter().map(model).collect::<Vec<_>>(),
        "default_model_id": m.default_model_id,
        "cached": m.cached,
        "fetched_at": m.fetched_at,
    })
}

pub fn usage(u: &Option<Usage>) -> Value {
    match u {
        Some(u) => json!({
            "input_tokens": u.input_tokens,
            "output_tokens": u.output_tokens,
            "reasoning_tokens": u.reasoning_tokens,
            "total_tokens": u.total_tokens,
        }),
        None => Value::Null,
    }
}

pub fn reply(r: &ChatReply) -> Value {
    json!({
        "ok": true,
        "content": r.content,
        "model": r.model,
        "lane": lane(r.lane),
        "usage": usage(&r.usage),
        "finish_reason": r.finish_reason,
    })
}

pub fn chunk(c: &ChatChunk) -> Value {
    json!({ "delta": c.delta, "finish_reason": c.finish_reason, "usage": usage(&c.usage) })
}
