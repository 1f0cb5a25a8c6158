//! One chat turn's request, built from what a caller gives (a message, a messages array or
//! a whole OpenAI Chat Completions body, plus overrides), the plugin's default model when
//! none is named, and the stream's events in the script-mode JSON (`chat --stream --json`
//! lines; the Python package's iterator items).

use provider_runtime::bindings::types::{
    ChatChunk, ChatRequest, Citation, FinishReason, Lane, Message, ProviderError, Role,
    ThinkingEffort, Usage,
};
use provider_runtime::{HostError, Session};
use provider_serve::openai;
use serde_json::{Value, json};

use crate::render;

/// What a caller asks for, sources already read.
#[derive(Debug, Clone, Default)]
pub struct ChatInput {
    /// Model id (bare, or with a route's prefix); `None`: the body's, else the default.
    pub model: Option<String>,
    /// The route to pay with.
    pub route: Option<String>,
    /// The lane to serve the turn on instead of the model's own.
    pub lane: Option<Lane>,
    /// Reasoning effort.
    pub thinking: Option<ThinkingEffort>,
    /// A system message before the user's (not with `request`).
    pub system: Option<String>,
    /// The conversation: a JSON array of OpenAI-style messages.
    pub messages: Option<String>,
    /// A whole OpenAI Chat Completions request body (JSON).
    pub request: Option<String>,
    /// Upper bound on generated tokens.
    pub max_output_tokens: Option<u32>,
    /// The user's message (not with `messages` or `request`).
    pub message: Option<String>,
}

fn invalid(message: String) -> HostError {
    HostError::Provider(ProviderError::InvalidInput(message))
}

/// The request, and whether it asks to be streamed (`"stream": true` in a body). The
/// model is empty when none was named: [`fill_default_model`] fills it.
pub fn build_request(input: &ChatInput) -> Result<(ChatRequest, bool), HostError> {
    let (mut request, body_stream) = if let Some(body) = &input.request {
        let body = openai::parse(body).map_err(invalid)?;
        let model = input
            .model
            .clone()
            .or_else(|| body.model.clone())
            .unwrap_or_default();
        let stream = body.stream == Some(true);
        (body.into_request(model).map_err(invalid)?, stream)
    } else {
        let mut messages = Vec::new();
        if let Some(system) = &input.system {
            messages.push(Message::text(Role::System, system.as_str()));
        }
        match (&input.messages, &input.message) {
            (Some(list), _) => {
                let wrapped = format!("{{\"messages\": {list}}}");
                let body = openai::parse(&wrapped).map_err(|e| {
                    invalid(format!("--messages must be a JSON array of messages: {e}"))
                })?;
                messages.extend(body.into_request(String::new()).map_err(invalid)?.messages);
            }
            (None, Some(text)) => messages.push(Message::text(Role::User, text.as_str())),
            (None, None) => return Err(HostError::Config("give a MESSAGE or --messages".into())),
        }
        let model = input.model.clone().unwrap_or_default();
        (ChatRequest::new(model, messages), false)
    };
    // What the caller names wins over the body.
    if let Some(t) = input.thinking {
        request.thinking = Some(t);
    }
    if let Some(n) = input.max_output_tokens {
        request.max_output_tokens = Some(n);
    }
    if let Some(r) = &input.route {
        request.route = Some(r.clone());
    }
    if let Some(l) = input.lane {
        request.lane = Some(l);
    }
    Ok((request, body_stream))
}

/// An empty model becomes the plugin's default: the named route's when one is, else the
/// default route's (no network call while the caches are fresh).
pub async fn fill_default_model(
    session: &mut Session,
    request: &mut ChatRequest,
) -> Result<(), HostError> {
    if !request.model.is_empty() {
        return Ok(());
    }
    let default = match request.route.clone() {
        Some(route) => session
            .models(false, Some(&route))
            .await
            .map(|l| Some(l.default_model_id))?,
        None => session.status().await?.default_model_id,
    };
    match default {
        Some(m) => {
            request.model = m;
            Ok(())
        }
        None => Err(invalid(
            "no model given and the plugin names no default: pass --model".into(),
        )),
    }
}

/// The JSON line of one chunk (`None` for what only the closing line reports).
pub fn chunk_event(chunk: &ChatChunk) -> Option<Value> {
    Some(match chunk {
        ChatChunk::Text(t) => json!({ "delta": t }),
        ChatChunk::Reasoning(t) => json!({ "reasoning_delta": t }),
        ChatChunk::ToolCallStart(s) => {
            json!({ "tool_call": { "index": s.index, "id": s.id, "name": s.name } })
        }
        ChatChunk::ToolCallArguments(d) => {
            json!({ "tool_call_arguments": { "index": d.index, "delta": d.arguments } })
        }
        ChatChunk::ReasoningItem(r) => json!({ "reasoning_item": render::reasoning_item(r) }),
        ChatChunk::Citation(_) | ChatChunk::Usage(_) | ChatChunk::Finish(_) => return None,
    })
}

/// What a stream delivered, for its closing object.
#[derive(Debug, Default, Clone)]
pub struct StreamSummary {
    content_bytes: usize,
    finish: Option<FinishReason>,
    usage: Option<Usage>,
    citations: Vec<Citation>,
}

impl StreamSummary {
    /// Count `chunk` in.
    pub fn add(&mut self, chunk: &ChatChunk) {
        match chunk {
            ChatChunk::Text(t) => self.content_bytes += t.len(),
            ChatChunk::Citation(c) => self.citations.push(c.clone()),
            ChatChunk::Usage(u) => self.usage = Some(*u),
            ChatChunk::Finish(f) => self.finish = Some(f.clone()),
            _ => {}
        }
    }

    /// The closing object: `ok`, `done`, `content_bytes`, `finish_reason`, `usage`,
    /// `citations`.
    pub fn done(&self) -> Value {
        json!({
            "ok": true,
            "done": true,
            "content_bytes": self.content_bytes,
            "finish_reason": self.finish.as_ref().map(FinishReason::name),
            "usage": render::usage(&self.usage),
            "citations": self.citations.iter().map(render::citation).collect::<Vec<_>>(),
        })
    }
}
