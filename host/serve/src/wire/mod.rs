//! OpenAI's shapes on the way out: model lists, `chat.completion`, `chat.completion.chunk`
//! events, and errors (`{"error": {message, type, code, param}}` with the status an SDK
//! turns into its own typed exception).

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use provider_runtime::bindings::types::{ChatChunk, ChatReply, FinishReason, Usage};
use provider_runtime::{ErrorCode, HostError};
use serde::Serialize;
use serde_json::{Value, json};

pub(crate) mod anthropic;
pub(crate) mod models;
pub(crate) mod responses;
pub(crate) mod usage;

/// The `type` of OpenAI's error body for `code` (the class an SDK raises follows the status).
fn openai_type(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::InvalidInput => "invalid_request_error",
        ErrorCode::NotConnected | ErrorCode::Unauthorized => "authentication_error",
        ErrorCode::TierDenied | ErrorCode::AccessDenied => "permission_error",
        ErrorCode::QuotaExhausted => "insufficient_quota",
        ErrorCode::RateLimited | ErrorCode::TenantBusy => "rate_limit_error",
        // OpenAI answers its own overload with 503 and this type.
        ErrorCode::PoolExhausted => "server_error",
        ErrorCode::UpstreamUnavailable
        | ErrorCode::Network
        | ErrorCode::InvalidResponse
        | ErrorCode::DeniedBySandbox
        | ErrorCode::CallTimeout
        | ErrorCode::ClientOutdated => "api_error",
        ErrorCode::ConfigError
        | ErrorCode::PluginError
        | ErrorCode::HostError
        | ErrorCode::Storage
        | ErrorCode::MemoryLimit
        | ErrorCode::ResourceLimit
        | ErrorCode::StreamClosed
        | ErrorCode::PluginTrap
        | ErrorCode::ExpiredToken => "server_error",
    }
}

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

    /// A host or plugin error, with the status its [`ErrorCode`] names (the seed's error
    /// table; counted by the caller: `ServeState::host_error`).
    pub fn from_host(e: &HostError, tenant: &str) -> Self {
        let code = e.code();
        let mut message = e.to_string();
        // An unknown model: upstream's 404 reaches us as invalid input in its own words
        // ("The model … does not exist …", OpenAI's and xAI's wording); OpenAI answers
        // 404 `model_not_found`, which SDKs raise as their NotFound error.
        if code == ErrorCode::InvalidInput && unknown_model(&message) {
            return Self::new(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                "model_not_found",
                message,
            );
        }
        if code == ErrorCode::NotConnected {
            message = format!(
                "tenant {tenant} is not connected: run `provider-host login --tenant {tenant}` on the serving machine"
            );
        } else if code == ErrorCode::Unauthorized {
            message.push_str(&format!(
                " (run `provider-host logout --tenant {tenant}`, then `provider-host login --tenant {tenant}`)"
            ));
        }
        Self {
            status: code.http_status(),
            kind: openai_type(code),
            code: code.as_str().to_owned(),
            message,
            retry_after: e.retry_after_seconds(),
        }
    }

    /// 404 `model_not_found` for `model`, as OpenAI answers it.
    pub fn model_not_found(model: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "model_not_found",
            format!("The model `{model}` does not exist or you do not have access to it."),
        )
    }

    pub fn body(&self) -> Value {
        json!({"error": {"message": self.message, "type": self.kind, "code": self.code, "param": null}})
    }
}

/// Whether an upstream message says the model asked for does not exist.
fn unknown_model(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("model") && (m.contains("does not exist") || m.contains("not found"))
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

/// A whole chat completion, serialized straight from the plugin's reply (the hot path of
/// every non-streamed request: no JSON tree, the content not copied).
#[derive(Serialize)]
pub struct Completion<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [CompletionChoice<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Value>,
}

#[derive(Serialize)]
struct CompletionChoice<'a> {
    index: u32,
    message: CompletionMessage<'a>,
    finish_reason: Option<&'a str>,
}

#[derive(Serialize)]
struct CompletionMessage<'a> {
    role: &'static str,
    /// Null when the reply is only tool calls, as OpenAI writes it.
    content: Option<&'a str>,
    refusal: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<ToolCallBody<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    annotations: Vec<Annotation<'a>>,
}

#[derive(Serialize)]
struct ToolCallBody<'a> {
    id: &'a str,
    r#type: &'static str,
    function: FunctionBody<'a>,
}

#[derive(Serialize)]
struct FunctionBody<'a> {
    name: &'a str,
    arguments: &'a str,
}

#[derive(Serialize)]
struct Annotation<'a> {
    r#type: &'static str,
    url_citation: UrlCitation<'a>,
}

#[derive(Serialize)]
struct UrlCitation<'a> {
    url: &'a str,
    title: Option<&'a str>,
    start_index: Option<u32>,
    end_index: Option<u32>,
}

pub fn completion<'a>(id: &'a str, created: u64, r: &'a ChatReply) -> Completion<'a> {
    let content = (r.tool_calls.is_empty() || !r.content.is_empty()).then_some(r.content.as_str());
    Completion {
        id,
        object: "chat.completion",
        created,
        model: &r.model,
        choices: [CompletionChoice {
            index: 0,
            message: CompletionMessage {
                role: "assistant",
                content,
                refusal: None,
                tool_calls: r
                    .tool_calls
                    .iter()
                    .map(|c| ToolCallBody {
                        id: &c.id,
                        r#type: "function",
                        function: FunctionBody {
                            name: &c.name,
                            arguments: &c.arguments,
                        },
                    })
                    .collect(),
                reasoning_content: r.reasoning.as_deref(),
                annotations: r
                    .citations
                    .iter()
                    .map(|c| Annotation {
                        r#type: "url_citation",
                        url_citation: UrlCitation {
                            url: &c.url,
                            title: c.title.as_deref(),
                            start_index: c.start_index,
                            end_index: c.end_index,
                        },
                    })
                    .collect(),
            },
            finish_reason: r.finish_reason.as_ref().map(FinishReason::name),
        }],
        usage: r.usage.as_ref().map(usage),
    }
}

/// Builds the `chat.completion.chunk` events of one stream.
///
/// Tool calls leave whole: each call's id, type, name and complete arguments in one
/// delta, as xAI streams them. `@ai-sdk/xai`'s chat model reads every tool-call delta as
/// a complete call (id, type and name required, the arguments taken as the whole input),
/// and every OpenAI-style client also assembles a call that arrives in one piece. So a
/// call is held from its start until the stream moves on (another chunk kind, or the
/// finish), its argument pieces joined meanwhile.
pub struct ChunkWriter {
    pub id: String,
    pub created: u64,
    pub model: String,
    pub include_usage: bool,
    /// Calls started and not yet sent: (index, id, name, arguments so far).
    calls: Vec<(u32, String, String, String)>,
}

impl ChunkWriter {
    pub fn new(id: String, created: u64, model: String, include_usage: bool) -> Self {
        Self {
            id,
            created,
            model,
            include_usage,
            calls: Vec::new(),
        }
    }

    fn chunk(&self, delta: Value, finish: Option<&str>) -> Value {
        json!({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
               "model": self.model,
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    }

    /// The opening chunk (the role, as OpenAI sends it).
    pub fn open(&self) -> Value {
        self.chunk(json!({"role": "assistant", "content": ""}), None)
    }

    /// `delta` with the held calls added (each whole), which are then sent.
    fn with_calls(&mut self, mut delta: Value) -> Value {
        if !self.calls.is_empty() {
            delta["tool_calls"] = self
                .calls
                .drain(..)
                .map(|(index, id, name, arguments)| {
                    json!({"index": index, "id": id, "type": "function",
                           "function": {"name": name, "arguments": arguments}})
                })
                .collect();
        }
        delta
    }

    /// The event for one chunk of the plugin's stream (none for what has no place, or
    /// while a tool call is being held).
    pub fn event(&mut self, c: &ChatChunk) -> Option<Value> {
        Some(match c {
            ChatChunk::Text(t) => {
                let delta = self.with_calls(json!({"content": t}));
                self.chunk(delta, None)
            }
            ChatChunk::Reasoning(t) => {
                let delta = self.with_calls(json!({"reasoning_content": t}));
                self.chunk(delta, None)
            }
            ChatChunk::ToolCallStart(s) => {
                self.calls
                    .push((s.index, s.id.clone(), s.name.clone(), String::new()));
                return None;
            }
            ChatChunk::ToolCallArguments(d) => {
                match self.calls.iter_mut().rev().find(|c| c.0 == d.index) {
                    Some(call) => {
                        call.3.push_str(&d.arguments);
                        return None;
                    }
                    // Arguments of a call already sent (only when text came between its
                    // pieces): sent as OpenAI does, by index.
                    None => self.chunk(
                        json!({"tool_calls": [{"index": d.index, "function": {"arguments": d.arguments}}]}),
                        None,
                    ),
                }
            }
            ChatChunk::Citation(c) => {
                let delta = self.with_calls(json!({"annotations": [{"type": "url_citation", "url_citation": {
                    "url": c.url, "title": c.title, "start_index": c.start_index, "end_index": c.end_index}}]}));
                self.chunk(delta, None)
            }
            ChatChunk::Finish(f) => {
                let delta = self.with_calls(json!({}));
                self.chunk(delta, Some(f.name()))
            }
            ChatChunk::Usage(u) if self.include_usage => json!({
                "id": self.id, "object": "chat.completion.chunk", "created": self.created,
                "model": self.model, "choices": [], "usage": usage(u)}),
            ChatChunk::Usage(_) | ChatChunk::ReasoningItem(_) => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use provider_runtime::bindings::types::{FinishReason, ToolCallDelta, ToolCallStart};

    fn writer() -> ChunkWriter {
        ChunkWriter::new("c".into(), 1, "m".into(), false)
    }

    fn start(index: u32, id: &str) -> ChatChunk {
        ChatChunk::ToolCallStart(ToolCallStart {
            index,
            id: id.into(),
            name: "f".into(),
        })
    }

    fn args(index: u32, a: &str) -> ChatChunk {
        ChatChunk::ToolCallArguments(ToolCallDelta {
            index,
            arguments: a.into(),
        })
    }

    /// Every tool-call delta carries index, id, type, name and the whole arguments, as
    /// `@ai-sdk/xai` requires, whether upstream sent the call whole or in pieces.
    #[test]
    fn tool_calls_leave_whole_in_one_delta() {
        let mut w = writer();
        let mut sent: Vec<Value> = [
            start(0, "a"),
            args(0, "{\"x\":"),
            args(0, "1}"),
            start(1, "b"),
            args(1, "{}"),
            ChatChunk::Finish(FinishReason::ToolCalls),
        ]
        .iter()
        .filter_map(|c| w.event(c))
        .collect();
        assert_eq!(sent.len(), 1, "{sent:?}");
        let chunk = sent.remove(0);
        assert_eq!(chunk["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(
            chunk["choices"][0]["delta"]["tool_calls"],
            json!([
                {"index": 0, "id": "a", "type": "function", "function": {"name": "f", "arguments": "{\"x\":1}"}},
                {"index": 1, "id": "b", "type": "function", "function": {"name": "f", "arguments": "{}"}},
            ])
        );
        // Text after a call sends the call first (in the same delta).
        let mut w = writer();
        assert!(w.event(&start(0, "a")).is_none());
        assert!(w.event(&args(0, "{}")).is_none());
        let text = w.event(&ChatChunk::Text("t".into())).unwrap();
        assert_eq!(text["choices"][0]["delta"]["content"], "t");
        assert_eq!(text["choices"][0]["delta"]["tool_calls"][0]["id"], "a");
        let finish = w.event(&ChatChunk::Finish(FinishReason::Stop)).unwrap();
        assert!(finish["choices"][0]["delta"].get("tool_calls").is_none());
    }

    #[test]
    fn an_unknown_model_is_404_model_not_found() {
        let e = ApiError::from_host(
            &HostError::Provider(
                provider_runtime::bindings::types::ProviderError::InvalidInput(
                    "The model nope does not exist or your team t does not have access to it."
                        .into(),
                ),
            ),
            "t",
        );
        assert_eq!(
            (e.status, e.code.as_str()),
            (StatusCode::NOT_FOUND, "model_not_found")
        );
    }

    #[test]
    fn every_code_has_its_status_and_openai_type() {
        use provider_runtime::ErrorCode;
        let table = [
            ("config_error", 500, "server_error"),
            ("plugin_error", 500, "server_error"),
            ("pool_exhausted", 503, "server_error"),
            ("tenant_busy", 429, "rate_limit_error"),
            ("host_error", 500, "server_error"),
            ("storage", 500, "server_error"),
            ("call_timeout", 504, "api_error"),
            ("memory_limit", 500, "server_error"),
            ("resource_limit", 500, "server_error"),
            ("stream_closed", 500, "server_error"),
            ("plugin_trap", 500, "server_error"),
            ("access_denied", 403, "permission_error"),
            ("expired_token", 500, "server_error"),
            ("rate_limited", 429, "rate_limit_error"),
            ("unauthorized", 401, "authentication_error"),
            ("tier_denied", 403, "permission_error"),
            ("quota_exhausted", 402, "insufficient_quota"),
            ("upstream_unavailable", 503, "api_error"),
            ("network", 502, "api_error"),
            ("invalid_response", 502, "api_error"),
            ("not_connected", 401, "authentication_error"),
            ("invalid_input", 400, "invalid_request_error"),
            ("denied_by_sandbox", 502, "api_error"),
            ("client_outdated", 502, "api_error"),
        ];
        assert_eq!(table.len(), ErrorCode::ALL.len());
        for (wire, status, kind) in table {
            let code: ErrorCode = wire.parse().unwrap();
            assert_eq!(
                (code.http_status().as_u16(), super::openai_type(code)),
                (status, kind),
                "{wire}"
            );
        }
    }

    #[test]
    fn an_outdated_client_version_is_a_bad_gateway_for_the_operator() {
        let e = ApiError::from_host(
            &HostError::Provider(
                provider_runtime::bindings::types::ProviderError::ClientOutdated(
                    "set subscription-client-version".into(),
                ),
            ),
            "t",
        );
        assert_eq!(
            (e.status, e.kind, e.code.as_str()),
            (StatusCode::BAD_GATEWAY, "api_error", "client_outdated")
        );
    }
}
