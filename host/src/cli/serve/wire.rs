//! OpenAI's shapes on the way out: model lists, `chat.completion`, `chat.completion.chunk`
//! events, and errors (`{"error": {message, type, code, param}}` with the status an SDK
//! turns into its own typed exception).

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use provider_runtime::HostError;
use provider_runtime::bindings::types::{ChatChunk, ChatReply, ModelList, ToolCall, Usage};
use serde_json::{Value, json};

use crate::cli::render;

/// An error as an OpenAI-compatible server answers it.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub code: String,
    pub message: String,
    pub retry_after: Option<u32>,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        kind: &'static str,
        code: &str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            kind,
            code: code.to_owned(),
            message: message.into(),
            retry_after: None,
        }
    }

    /// The client's key is missing or unknown. Says nothing about any tenant.
    pub fn bad_key() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "invalid_api_key",
            "Incorrect API key provided: use a key from `provider-host serve-key create`.",
        )
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "invalid_input",
            message,
        )
    }

    /// A host or plugin error, with the status the seed's error table implies.
    pub fn from_host(e: &HostError, tenant: &str) -> Self {
        let code = e.code();
        super::metrics::upstream_error(code);
        let (status, kind) = match code {
            "invalid_input" => (StatusCode::BAD_REQUEST, "invalid_request_error"),
            "not_connected" | "unauthorized" => (StatusCode::UNAUTHORIZED, "authentication_error"),
            "tier_denied" | "access_denied" => (StatusCode::FORBIDDEN, "permission_error"),
            "quota_exhausted" => (StatusCode::PAYMENT_REQUIRED, "insufficient_quota"),
            "rate_limited" => (StatusCode::TOO_MANY_REQUESTS, "rate_limit_error"),
            "upstream_unavailable" => (StatusCode::SERVICE_UNAVAILABLE, "api_error"),
            "network" | "invalid_response" | "denied_by_sandbox" => {
                (StatusCode::BAD_GATEWAY, "api_error")
            }
            "call_timeout" => (StatusCode::GATEWAY_TIMEOUT, "api_error"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "server_error"),
        };
        let mut message = e.to_string();
        match code {
            "not_connected" => {
                message = format!(
                    "tenant {tenant} is not connected: run `provider-host login --tenant {tenant}` on the serving machine"
                )
            }
            "unauthorized" => message.push_str(&format!(
                " (run `provider-host logout --tenant {tenant}`, then `provider-host login --tenant {tenant}`)"
            )),
            _ => {}
        }
        Self {
            status,
            kind,
            code: code.to_owned(),
            message,
            retry_after: e.retry_after_seconds(),
        }
    }

    pub fn body(&self) -> Value {
        json!({"error": {"message": self.message, "type": self.kind, "code": self.code, "param": null}})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.status, axum::Json(self.body())).into_response();
        if let Some(s) = self.retry_after {
            r.headers_mut().insert("retry-after", HeaderValue::from(s));
        }
        r
    }
}

/// `GET /v1/models`: the lists of one or more routes in one OpenAI list; each entry also
/// says its `route` (an extension field SDKs ignore).
pub fn models(lists: &[ModelList]) -> Value {
    let data: Vec<Value> = lists
        .iter()
        .flat_map(|l| &l.models)
        .map(|m| {
            json!({"id": m.id, "object": "model", "created": m.created.unwrap_or(0),
                   "owned_by": m.owned_by.as_deref().unwrap_or("unknown"), "route": m.route})
        })
        .collect();
    json!({"object": "list", "data": data})
}

/// OpenAI usage: completion tokens include reasoning, as the WIT's output tokens do.
pub fn usage(u: &Usage) -> Value {
    json!({
        "prompt_tokens": u.input_tokens,
        "completion_tokens": u.output_tokens,
        "total_tokens": u.total_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cached_input_tokens.unwrap_or(0)},
        "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens.unwrap_or(0)},
    })
}

fn tool_call(c: &ToolCall) -> Value {
    json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}})
}

pub fn completion(id: &str, created: u64, r: &ChatReply) -> Value {
    let mut message = json!({"role": "assistant", "content": r.content, "refusal": null});
    if !r.tool_calls.is_empty() {
        message["tool_calls"] = r.tool_calls.iter().map(tool_call).collect();
        if r.content.is_empty() {
            message["content"] = Value::Null;
        }
    }
    if let Some(reasoning) = &r.reasoning {
        message["reasoning_content"] = json!(reasoning);
    }
    if !r.citations.is_empty() {
        message["annotations"] = r
            .citations
            .iter()
            .map(|c| json!({"type": "url_citation", "url_citation": {
                "url": c.url, "title": c.title, "start_index": c.start_index, "end_index": c.end_index}}))
            .collect();
    }
    let mut v = json!({
        "id": id, "object": "chat.completion", "created": created, "model": r.model,
        "choices": [{"index": 0, "message": message,
                     "finish_reason": r.finish_reason.as_ref().map(render::finish_reason)}],
    });
    if let Some(u) = &r.usage {
        v["usage"] = usage(u);
    }
    v
}

/// Builds the `chat.completion.chunk` events of one stream.
pub struct ChunkWriter {
    pub id: String,
    pub created: u64,
    pub model: String,
    pub include_usage: bool,
}

impl ChunkWriter {
    fn chunk(&self, delta: Value, finish: Option<&str>) -> Value {
        json!({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
               "model": self.model,
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    }

    /// The opening chunk (the role, as OpenAI sends it).
    pub fn open(&self) -> Value {
        self.chunk(json!({"role": "assistant", "content": ""}), None)
    }

    /// The events for one chunk of the plugin's stream (none for what has no place).
    pub fn event(&self, c: &ChatChunk) -> Option<Value> {
        Some(match c {
            ChatChunk::Text(t) => self.chunk(json!({"content": t}), None),
            ChatChunk::Reasoning(t) => self.chunk(json!({"reasoning_content": t}), None),
            ChatChunk::ToolCallStart(s) => self.chunk(
                json!({"tool_calls": [{"index": s.index, "id": s.id, "type": "function",
                                       "function": {"name": s.name, "arguments": ""}}]}),
                None,
            ),
            ChatChunk::ToolCallArguments(d) => self.chunk(
                json!({"tool_calls": [{"index": d.index, "function": {"arguments": d.arguments}}]}),
                None,
            ),
            ChatChunk::Citation(c) => self.chunk(
                json!({"annotations": [{"type": "url_citation", "url_citation": {
                    "url": c.url, "title": c.title, "start_index": c.start_index, "end_index": c.end_index}}]}),
                None,
            ),
            ChatChunk::Finish(f) => self.chunk(json!({}), Some(render::finish_reason(f))),
            ChatChunk::Usage(u) if self.include_usage => json!({
                "id": self.id, "object": "chat.completion.chunk", "created": self.created,
                "model": self.model, "choices": [], "usage": usage(u)}),
            ChatChunk::Usage(_) | ChatChunk::ReasoningItem(_) => return None,
        })
    }
}
