//! Chat in both lanes: routing, request bodies and complete replies.
//!
//! * chat-completions: OpenAI-compatible `POST {api}/chat/completions`.
//! * responses: `POST {api}/responses` (multi-agent models only work there).

use serde_json::{Map, Value, json};

use crate::error::ProviderError;
use crate::json::as_u32;
use crate::models::{lane_for, prefixed, unprefixed};
use crate::redact::sanitize;
use crate::types::{ChatReply, ChatRequest, Lane, Role, ThinkingEffort, Usage};

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Model id as upstream knows it (no prefix).
    pub upstream_model: String,
    /// The dialect.
    pub lane: Lane,
}

impl Route {
    /// Path under the API base.
    pub fn path(&self) -> &'static str {
        match self.lane {
            Lane::Responses => "responses",
            _ => "chat/completions",
        }
    }
}

/// Validate a request and pick its lane.
pub fn route(req: &ChatRequest) -> Result<Route, ProviderError> {
    let model = unprefixed(req.model.trim());
    if model.is_empty() {
        return Err(ProviderError::InvalidInput("model is empty".into()));
    }
    if req.messages.is_empty() {
        return Err(ProviderError::InvalidInput("messages are empty".into()));
    }
    if req.temperature.is_some_and(|t| !t.is_finite() || t < 0.0) {
        return Err(ProviderError::InvalidInput(
            "temperature must be a finite number >= 0".into(),
        ));
    }
    let lane = lane_for(model);
    if lane == Lane::Media {
        return Err(ProviderError::InvalidInput(format!(
            "{} is an image/video model, not usable for chat",
            prefixed(model)
        )));
    }
    Ok(Route {
        upstream_model: model.to_owned(),
        lane,
    })
}

fn role(r: Role) -> &'static str {
    match r {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
    }
}

fn effort(t: ThinkingEffort) -> &'static str {
    match t {
        ThinkingEffort::Low => "low",
        ThinkingEffort::Medium => "medium",
        ThinkingEffort::High => "high",
    }
}

/// `f32` as the decimal the caller wrote (`0.7`, not `0.699999988079071`).
fn temperature(t: f32) -> Value {
    t.to_string()
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map_or(Value::Null, Value::Number)
}

/// The JSON body for `route` (`stream` selects SSE).
pub fn request_body(route: &Route, req: &ChatRequest, stream: bool) -> Vec<u8> {
    let body = match route.lane {
        Lane::Responses => responses_body(&route.upstream_model, req, stream),
        _ => chat_completions_body(&route.upstream_model, req, stream),
    };
    serde_json::to_vec(&body).expect("json body")
}

fn chat_completions_body(model: &str, req: &ChatRequest, stream: bool) -> Value {
    let messages: Vec<Value> = req
        .messages
        .iter()
        .map(|m| json!({"role": role(m.role), "content": m.content}))
        .collect();
    let mut b = Map::new();
    b.insert("model".into(), json!(model));
    b.insert("messages".into(), Value::Array(messages));
    b.insert("stream".into(), json!(stream));
    if stream {
        b.insert("stream_options".into(), json!({"include_usage": true}));
    }
    if let Some(n) = req.max_output_tokens {
        b.insert("max_tokens".into(), json!(n));
    }
    if let Some(t) = req.temperature {
        b.insert("temperature".into(), temperature(t));
    }
    if let Some(e) = req.thinking
        && takes_reasoning_effort(model)
    {
        b.insert("reasoning_effort".into(), json!(effort(e)));
    }
    Value::Object(b)
}

/// Whether a chat-completions model accepts `reasoning_effort`. The grok-4.20 reasoning and
/// non-reasoning variants (dated or not) and the Grok Build / code models answer HTTP 400
/// to it whatever its value (reported by public xAI clients); for them the thinking hint
/// is left out, as the AI SDK's xAI provider does, rather than failing the turn.
pub fn takes_reasoning_effort(upstream_model: &str) -> bool {
    let m = upstream_model.to_ascii_lowercase();
    !(m.starts_with("grok-4.20") || m.starts_with("grok-build") || m.starts_with("grok-code"))
}

fn responses_body(model: &str, req: &ChatRequest, stream: bool) -> Value {
    let instructions: Vec<&str> = req
        .messages
        .iter()
        .filter(|m| m.role == Role::System)
        .map(|m| m.content.as_str())
        .collect();
    let input: Vec<Value> = req
        .messages
        .iter()
        .filter(|m| m.role != Role::System)
        .map(|m| json!({"type": "message", "role": role(m.role), "content": m.content}))
        .collect();
    let mut b = Map::new();
    b.insert("model".into(), json!(model));
    b.insert("input".into(), Value::Array(input));
    if !instructions.is_empty() {
        b.insert("instructions".into(), json!(instructions.join("\n\n")));
    }
    b.insert("stream".into(), json!(stream));
    // Conversations are resent whole each turn; nothing needs to live upstream.
    b.insert("store".into(), json!(false));
    if let Some(n) = req.max_output_tokens {
        b.insert("max_output_tokens".into(), json!(n));
    }
    if let Some(t) = req.temperature {
        b.insert("temperature".into(), temperature(t));
    }
    if let Some(e) = req.thinking {
        b.insert("reasoning".into(), json!({"effort": effort(e)}));
    }
    Value::Object(b)
}

/// Read a complete (non-streamed) reply.
pub fn parse_reply(route: &Route, v: &Value) -> Result<ChatReply, ProviderError> {
    let model = v
        .get("model")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map_or_else(
            || prefixed(&route.upstream_model),
            |m| prefixed(unprefixed(m)),
        );
    match route.lane {
        Lane::Responses => parse_responses_reply(v, model),
        _ => parse_chat_completions_reply(v, model),
    }
}

fn parse_chat_completions_reply(v: &Value, model: String) -> Result<ChatReply, ProviderError> {
    let choice = v
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|c| c.first())
        .ok_or_else(|| ProviderError::InvalidResponse("chat completion without choices".into()))?;
    let message = choice
        .get("message")
        .filter(|m| m.is_object())
        .ok_or_else(|| {
            ProviderError::InvalidResponse("chat completion choice without message".into())
        })?;
    let content = match message.get("content") {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => String::new(),
        Some(_) => {
            return Err(ProviderError::InvalidResponse(
                "chat completion content is not text".into(),
            ));
        }
    };
    Ok(ChatReply {
        content,
        model,
        lane: Lane::ChatCompletions,
        usage: v.get("usage").and_then(chat_completions_usage),
        finish_reason: choice
            .get("finish_reason")
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

fn parse_responses_reply(v: &Value, model: String) -> Result<ChatReply, ProviderError> {
    if v.get("status").and_then(Value::as_str) == Some("failed") {
        return Err(response_failure(v.get("error")));
    }
    let output = v
        .get("output")
        .and_then(Value::as_array)
        .ok_or_else(|| ProviderError::InvalidResponse("response without output".into()))?;
    let mut content = String::new();
    for item in output {
        if item.get("type").and_then(Value::as_str) != Some("message") {
            continue; // reasoning, tool calls, ...
        }
        for part in item
            .get("content")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if part.get("type").and_then(Value::as_str) == Some("output_text")
                && let Some(t) = part.get("text").and_then(Value::as_str)
            {
                content.push_str(t);
            }
        }
    }
    Ok(ChatReply {
        content,
        model,
        lane: Lane::Responses,
        usage: v.get("usage").and_then(responses_usage),
        finish_reason: responses_finish_reason(v),
    })
}

/// Chat-completions `usage`: `prompt_tokens`, `completion_tokens`, `total_tokens`,
/// `completion_tokens_details.reasoning_tokens`.
pub fn chat_completions_usage(u: &Value) -> Option<Usage> {
    usage(
        u,
        "prompt_tokens",
        "completion_tokens",
        "completion_tokens_details",
    )
}

/// Responses `usage`: `input_tokens`, `output_tokens`, `total_tokens`,
/// `output_tokens_details.reasoning_tokens`.
pub fn responses_usage(u: &Value) -> Option<Usage> {
    usage(u, "input_tokens", "output_tokens", "output_tokens_details")
}

fn usage(u: &Value, input: &str, output: &str, details: &str) -> Option<Usage> {
    let input_tokens = u.get(input).and_then(as_u32)?;
    let output_tokens = u.get(output).and_then(as_u32)?;
    Some(Usage {
        input_tokens,
        output_tokens,
        reasoning_tokens: u
            .get(details)
            .and_then(|d| d.get("reasoning_tokens"))
            .and_then(as_u32),
        total_tokens: u
            .get("total_tokens")
            .and_then(as_u32)
            .unwrap_or(input_tokens.saturating_add(output_tokens)),
    })
}

/// Why a Responses-API response stopped: `completed` -> `stop`, `incomplete` -> its
/// `incomplete_details.reason` (e.g. `max_output_tokens`), otherwise the status itself.
pub fn responses_finish_reason(resp: &Value) -> Option<String> {
    match resp.get("status").and_then(Value::as_str)? {
        "completed" => Some("stop".to_owned()),
        "incomplete" => Some(
            resp.get("incomplete_details")
                .and_then(|d| d.get("reason"))
                .and_then(Value::as_str)
                .unwrap_or("incomplete")
                .to_owned(),
        ),
        other => Some(other.to_owned()),
    }
}

/// The error of a failed response or `error` event (`{code?, message?}`): rate limits
/// stay rate limits, rejected input stays the caller's, the rest is upstream trouble.
pub fn response_failure(err: Option<&Value>) -> ProviderError {
    let field = |k: &str| {
        err.and_then(|e| e.get(k))
            .and_then(Value::as_str)
            .map(|s| sanitize(s, &[]))
            .unwrap_or_default()
    };
    let (code, message) = (field("code"), field("message"));
    let text = match (code.is_empty(), message.is_empty()) {
        (true, true) => "the response failed".to_owned(),
        (false, true) => code.clone(),
        (true, false) => message,
        (false, false) => format!("{code}: {message}"),
    };
    let code_l = code.to_ascii_lowercase();
    if code_l.contains("rate_limit") {
        ProviderError::RateLimited {
            message: text,
            retry_after_seconds: None,
        }
    } else if code_l.starts_with("invalid") {
        ProviderError::InvalidInput(text)
    } else {
        ProviderError::UpstreamUnavailable(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Message;

    fn req(model: &str) -> ChatRequest {
        ChatRequest {
            model: model.into(),
            messages: vec![
                Message {
                    role: Role::System,
                    content: "be brief".into(),
                },
                Message {
                    role: Role::System,
                    content: "be kind".into(),
                },
                Message {
                    role: Role::User,
                    content: "hi".into(),
                },
                Message {
                    role: Role::Assistant,
                    content: "hello".into(),
                },
                Message {
                    role: Role::User,
                    content: "again".into(),
                },
            ],
            thinking: Some(ThinkingEffort::High),
            max_output_tokens: Some(100),
            temperature: Some(0.7),
        }
    }

    #[test]
    fn validates_and_routes() {
        assert_eq!(
            route(&req("xai-grok/grok-4.3")).unwrap(),
            Route {
                upstream_model: "grok-4.3".into(),
                lane: Lane::ChatCompletions
            }
        );
        let r = route(&req("grok-4.20-multi-agent-0309")).unwrap();
        assert_eq!((r.lane, r.path()), (Lane::Responses, "responses"));
        assert!(matches!(
            route(&req("")),
            Err(ProviderError::InvalidInput(_))
        ));
        assert!(matches!(
            route(&req("xai-grok/")),
            Err(ProviderError::InvalidInput(_))
        ));
        assert!(matches!(
            route(&req("xai-grok/grok-imagine-image")),
            Err(ProviderError::InvalidInput(_))
        ));
        let mut r = req("grok-4.3");
        r.messages.clear();
        assert!(matches!(route(&r), Err(ProviderError::InvalidInput(_))));
        let mut r = req("grok-4.3");
        r.temperature = Some(f32::NAN);
        assert!(matches!(route(&r), Err(ProviderError::InvalidInput(_))));
    }

    #[test]
    fn thinking_is_left_out_for_models_that_refuse_reasoning_effort() {
        for (model, sent) in [
            ("xai-grok/grok-4.3", true),
            ("grok-4.6", true),
            ("xai-grok/grok-4.20-0309-reasoning", false),
            ("grok-4.20-0309-non-reasoning", false),
            ("xai-grok/grok-build-0.1", false),
        ] {
            let r = req(model);
            let b: Value =
                serde_json::from_slice(&request_body(&route(&r).unwrap(), &r, false)).unwrap();
            assert_eq!(b.get("reasoning_effort").is_some(), sent, "{model}: {b}");
        }
        // The multi-agent lane always carries it: it sets how many agents work.
        let r = req("xai-grok/grok-4.20-multi-agent-0309");
        let b: Value =
            serde_json::from_slice(&request_body(&route(&r).unwrap(), &r, false)).unwrap();
        assert_eq!(b["reasoning"]["effort"], "high", "{b}");
    }

    #[test]
    fn chat_completions_request() {
        let r = req("xai-grok/grok-4.3");
        let b: Value =
            serde_json::from_slice(&request_body(&route(&r).unwrap(), &r, true)).unwrap();
        assert_eq!(
            b,
            json!({
                "model": "grok-4.3",
                "messages": [
                    {"role": "system", "content": "be brief"}, {"role": "system", "content": "be kind"},
                    {"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
                    {"role": "user", "content": "again"}
                ],
                "stream": true, "stream_options": {"include_usage": true},
                "max_tokens": 100, "temperature": 0.7, "reasoning_effort": "high"
            })
        );
        let r = ChatRequest {
            thinking: None,
            max_output_tokens: None,
            temperature: None,
            ..r
        };
        let b: Value =
            serde_json::from_slice(&request_body(&route(&r).unwrap(), &r, false)).unwrap();
        assert_eq!(
            b.as_object().unwrap().keys().collect::<Vec<_>>(),
            vec!["messages", "model", "stream"]
        );
    }

    #[test]
    fn responses_request() {
        let r = req("xai-grok/grok-4.20-multi-agent-0309");
        let b: Value =
            serde_json::from_slice(&request_body(&route(&r).unwrap(), &r, false)).unwrap();
        assert_eq!(
            b,
            json!({
                "model": "grok-4.20-multi-agent-0309",
                "instructions": "be brief\n\nbe kind",
                "input": [
                    {"type": "message", "role": "user", "content": "hi"},
                    {"type": "message", "role": "assistant", "content": "hello"},
                    {"type": "message", "role": "user", "content": "again"}
                ],
                "stream": false, "store": false,
                "max_output_tokens": 100, "temperature": 0.7, "reasoning": {"effort": "high"}
            })
        );
    }

    #[test]
    fn chat_completions_reply() {
        let route = Route {
            upstream_model: "grok-4.3".into(),
            lane: Lane::ChatCompletions,
        };
        let r = parse_reply(&route, &json!({
            "id": "x", "model": "grok-4.3-0101",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi!"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12, "completion_tokens_details": {"reasoning_tokens": 3}}
        })).unwrap();
        assert_eq!(
            r,
            ChatReply {
                content: "Hi!".into(),
                model: "xai-grok/grok-4.3-0101".into(),
                lane: Lane::ChatCompletions,
                usage: Some(Usage {
                    input_tokens: 5,
                    output_tokens: 7,
                    reasoning_tokens: Some(3),
                    total_tokens: 12
                }),
                finish_reason: Some("stop".into()),
            }
        );
        let r = parse_reply(
            &route,
            &json!({"choices": [{"message": {"content": null}}]}),
        )
        .unwrap();
        assert_eq!(
            (r.content.as_str(), r.model.as_str(), r.usage),
            ("", "xai-grok/grok-4.3", None)
        );
        assert!(parse_reply(&route, &json!({"choices": []})).is_err());
        assert!(parse_reply(&route, &json!({"choices": [{}]})).is_err());
        assert!(parse_reply(&route, &json!({"choices": [{"message": {"content": 5}}]})).is_err());
    }

    #[test]
    fn responses_reply() {
        let route = Route {
            upstream_model: "grok-4.20-multi-agent-0309".into(),
            lane: Lane::Responses,
        };
        let r = parse_reply(&route, &json!({
            "status": "completed",
            "output": [
                {"type": "reasoning", "summary": []},
                {"type": "message", "role": "assistant", "content": [
                    {"type": "output_text", "text": "Hello, "}, {"type": "refusal", "refusal": "no"}, {"type": "output_text", "text": "world"}]},
            ],
            "usage": {"input_tokens": 10, "output_tokens": 20, "total_tokens": 30, "output_tokens_details": {"reasoning_tokens": 15}}
        })).unwrap();
        assert_eq!(r.content, "Hello, world");
        assert_eq!(r.model, "xai-grok/grok-4.20-multi-agent-0309");
        assert_eq!(r.finish_reason.as_deref(), Some("stop"));
        assert_eq!(
            r.usage,
            Some(Usage {
                input_tokens: 10,
                output_tokens: 20,
                reasoning_tokens: Some(15),
                total_tokens: 30
            })
        );
        let r = parse_reply(&route, &json!({"status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}, "output": []})).unwrap();
        assert_eq!(r.finish_reason.as_deref(), Some("max_output_tokens"));
        assert!(
            matches!(parse_reply(&route, &json!({"status": "failed", "error": {"code": "server_error", "message": "boom"}})), Err(ProviderError::UpstreamUnavailable(m)) if m == "server_error: boom")
        );
        assert!(parse_reply(&route, &json!({"status": "completed"})).is_err());
    }

    #[test]
    fn failures() {
        assert!(matches!(
            response_failure(Some(&json!({"code": "rate_limit_exceeded"}))),
            ProviderError::RateLimited { .. }
        ));
        assert!(matches!(
            response_failure(Some(&json!({"code": "invalid_prompt", "message": "m"}))),
            ProviderError::InvalidInput(_)
        ));
        assert_eq!(
            response_failure(None),
            ProviderError::UpstreamUnavailable("the response failed".into())
        );
    }
}
