//! An OpenAI Chat Completions request body (`POST /v1/chat/completions`, and
//! `provider-host chat --request`) mapped onto the WIT's `chat-request`. Every field maps,
//! is forwarded upstream as it is (through `extra-body`), is accepted without effect (it changes nothing of the answer: `store`,
//! `metadata`, `service_tier`, `n: 1`, `logprobs: false`, `reasoning_content` sent back on
//! assistant messages, which xAI's chat-completions lane does not take back), or is refused
//! by name (an unknown field, or one that would silently change the answer: `n > 1`,
//! `logprobs: true`).
//!
//! One extension: an assistant message may carry `reasoning_items` (as `chat --json`
//! printed them) so that encrypted reasoning can round-trip through the CLI.

use provider_runtime::bindings::types::{
    ChatRequest, ContentPart, FunctionTool, Image, ImageData, ImageDetail, ImageSource,
    JsonSchemaFormat, Lane, Message, ReasoningItem, ResponseFormat, Role, ThinkingEffort, ToolCall,
    ToolChoice,
};
use serde::Deserialize;
use serde_json::Value;

/// The body, as far as this contract understands it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    /// The model asked for (required by `serve`; `chat --request` has a default).
    pub model: Option<String>,
    messages: Vec<WireMessage>,
    #[serde(default)]
    tools: Vec<WireTool>,
    tool_choice: Option<Value>,
    parallel_tool_calls: Option<bool>,
    response_format: Option<WireFormat>,
    reasoning_effort: Option<String>,
    max_tokens: Option<u32>,
    max_completion_tokens: Option<u32>,
    temperature: Option<f32>,
    top_p: Option<f32>,
    stop: Option<Value>,
    seed: Option<i64>,
    prompt_cache_key: Option<String>,
    /// Whether the reply is asked for as a stream.
    pub stream: Option<bool>,
    stream_options: Option<StreamOptions>,
    // Forwarded upstream as they are (xAI takes them; the WIT names none of them).
    user: Option<String>,
    frequency_penalty: Option<f64>,
    presence_penalty: Option<f64>,
    search_parameters: Option<Value>,
    // Accepted without effect (`n` other than 1 refused).
    n: Option<u32>,
    #[allow(dead_code)]
    store: Option<bool>,
    #[allow(dead_code)]
    metadata: Option<Value>,
    #[allow(dead_code)]
    service_tier: Option<String>,
    logprobs: Option<bool>,
    top_logprobs: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StreamOptions {
    include_usage: Option<bool>,
    /// OpenAI's padding of stream events; nothing here is padded.
    #[allow(dead_code)]
    include_obfuscation: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireMessage {
    role: String,
    content: Option<Value>,
    #[serde(default)]
    tool_calls: Vec<WireToolCall>,
    tool_call_id: Option<String>,
    #[serde(default)]
    reasoning_items: Vec<WireReasoningItem>,
    /// Reasoning text a client sends back (`@ai-sdk/openai-compatible` does): xAI's
    /// chat-completions lane takes none back, so it is accepted and left out.
    #[allow(dead_code)]
    reasoning_content: Option<Value>,
    // What SDKs echo of a reply's message (`model_dump()`): no effect on the turn.
    #[allow(dead_code)]
    refusal: Option<Value>,
    #[allow(dead_code)]
    annotations: Option<Value>,
    #[allow(dead_code)]
    audio: Option<Value>,
    #[allow(dead_code)]
    function_call: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireToolCall {
    id: String,
    #[serde(rename = "type")]
    kind: Option<String>,
    function: WireFunctionCall,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireFunctionCall {
    name: String,
    arguments: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireReasoningItem {
    lane: String,
    data: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireTool {
    #[serde(rename = "type")]
    kind: String,
    function: WireFunction,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireFunction {
    name: String,
    description: Option<String>,
    parameters: Option<Value>,
    strict: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireFormat {
    #[serde(rename = "type")]
    kind: String,
    json_schema: Option<WireSchema>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireSchema {
    name: String,
    schema: Option<Value>,
    description: Option<String>,
    strict: Option<bool>,
}

impl Body {
    /// Whether a stream should end with a usage chunk (`stream_options.include_usage`).
    pub fn include_usage(&self) -> bool {
        self.stream_options
            .as_ref()
            .and_then(|o| o.include_usage)
            .unwrap_or(false)
    }
}

/// What separates a route prefix from the model in the slash-free form of a model id:
/// `xai-grok-sub--grok-4.3` names what `xai-grok-sub/grok-4.3` names, for clients that read
/// a slash in a model id as a provider prefix of their own (Python `openai-agents`).
pub const SLASH_FREE: &str = "--";

/// The model id a request names: its slash-free form (no `/`, a `--`) read back with the
/// first `--` as the route prefix's `/`; any other id as it is.
pub fn model_id(requested: &str) -> String {
    match requested.split_once(SLASH_FREE) {
        Some((prefix, model)) if !requested.contains('/') && !prefix.is_empty() => {
            format!("{prefix}/{model}")
        }
        _ => requested.to_owned(),
    }
}

/// The slash-free form of a listed id that has a route prefix (`a/b` -> `a--b`).
pub fn slash_free(id: &str) -> Option<String> {
    let (prefix, model) = id.split_once('/')?;
    (!prefix.is_empty() && !prefix.contains(SLASH_FREE) && !model.contains('/'))
        .then(|| format!("{prefix}{SLASH_FREE}{model}"))
}

/// Parse the body's JSON text.
pub fn parse(text: &str) -> Result<Body, String> {
    serde_json::from_str(text).map_err(|e| format!("request body: {e}"))
}

/// A lane by its wire name (`chat_completions`, `responses`, `media`).
pub fn lane_name(name: &str) -> Result<Lane, String> {
    match name {
        "chat_completions" => Ok(Lane::ChatCompletions),
        "responses" => Ok(Lane::Responses),
        "media" => Ok(Lane::Media),
        other => Err(format!("unknown lane {other:?}")),
    }
}

fn role(name: &str) -> Result<Role, String> {
    match name {
        "system" | "developer" => Ok(Role::System),
        "user" => Ok(Role::User),
        "assistant" => Ok(Role::Assistant),
        "tool" => Ok(Role::Tool),
        other => Err(format!(
            "unknown role {other:?}: use system, developer, user, assistant or tool"
        )),
    }
}

pub(crate) fn detail(d: &str) -> Result<ImageDetail, String> {
    match d {
        "auto" => Ok(ImageDetail::Auto),
        "low" => Ok(ImageDetail::Low),
        "high" => Ok(ImageDetail::High),
        other => Err(format!("unknown image detail {other:?}")),
    }
}

/// `https://…` stays a URL; `data:<type>;base64,<bytes>` becomes inline data.
pub(crate) fn image_source(url: &str) -> Result<ImageSource, String> {
    let Some(rest) = url.strip_prefix("data:") else {
        return Ok(ImageSource::Url(url.to_owned()));
    };
    let (media_type, base64) = rest
        .split_once(";base64,")
        .ok_or("a data: image URL must be data:<media type>;base64,<bytes>")?;
    Ok(ImageSource::Data(ImageData {
        media_type: media_type.to_owned(),
        base64: base64.to_owned(),
    }))
}

fn part(v: &Value, at: &str) -> Result<ContentPart, String> {
    let obj = v
        .as_object()
        .ok_or(format!("{at}: a content part must be an object"))?;
    let kind = obj.get("type").and_then(Value::as_str).unwrap_or("");
    let known: &[&str] = match kind {
        // `@openai/agents` on chat completions echoes the fields of the reply's message
        // beside its text (`role`, `refusal`, `annotations`, even `tool_calls`, which it
        // also sends on the message itself): no effect on the turn.
        "text" => &[
            "type",
            "text",
            "role",
            "refusal",
            "annotations",
            "tool_calls",
            "reasoning_content",
            "audio",
            "function_call",
        ],
        "image_url" => &["type", "image_url"],
        // An earlier refusal, sent back as what the assistant said.
        "refusal" => &["type", "refusal"],
        other => return Err(format!("{at}: unsupported content part type {other:?}")),
    };
    if let Some(k) = obj.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(format!("{at}: unsupported field {k} in a {kind} part"));
    }
    if kind == "refusal" {
        let text = obj
            .get("refusal")
            .and_then(Value::as_str)
            .ok_or(format!("{at}: refusal part without refusal"))?;
        return Ok(ContentPart::Text(text.to_owned()));
    }
    if kind == "text" {
        let text = obj
            .get("text")
            .and_then(Value::as_str)
            .ok_or(format!("{at}: text part without text"))?;
        return Ok(ContentPart::Text(text.to_owned()));
    }
    let image = obj.get("image_url");
    let (url, d) = match image {
        Some(Value::String(u)) => (u.as_str(), None),
        Some(Value::Object(o)) => {
            if let Some(k) = o.keys().find(|k| !matches!(k.as_str(), "url" | "detail")) {
                return Err(format!("{at}: unsupported field {k} in image_url"));
            }
            (
                o.get("url")
                    .and_then(Value::as_str)
                    .ok_or(format!("{at}: image_url without url"))?,
                o.get("detail").and_then(Value::as_str),
            )
        }
        _ => return Err(format!("{at}: image_url must be an object with url")),
    };
    Ok(ContentPart::Image(Image {
        source: image_source(url)?,
        detail: d.map(detail).transpose()?,
    }))
}

fn content(v: Option<&Value>, at: &str) -> Result<Vec<ContentPart>, String> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![ContentPart::Text(s.clone())]),
        Some(Value::Array(parts)) => parts
            .iter()
            .enumerate()
            .map(|(i, p)| part(p, &format!("{at}.content[{i}]")))
            .collect(),
        Some(_) => Err(format!(
            "{at}: content must be a string, an array of parts or null"
        )),
    }
}

fn message(i: usize, m: WireMessage) -> Result<Message, String> {
    let at = format!("messages[{i}]");
    for (field, v) in [("function_call", &m.function_call), ("audio", &m.audio)] {
        if v.as_ref().is_some_and(|v| !v.is_null()) {
            return Err(format!("{at}: {field} is not supported (use tool_calls)"));
        }
    }
    let tool_calls = m
        .tool_calls
        .into_iter()
        .map(|c| match c.kind.as_deref() {
            None | Some("function") => Ok(ToolCall {
                id: c.id,
                name: c.function.name,
                arguments: c.function.arguments,
            }),
            Some(other) => Err(format!("{at}: unsupported tool call type {other:?}")),
        })
        .collect::<Result<_, _>>()?;
    let reasoning = m
        .reasoning_items
        .into_iter()
        .map(|r| {
            Ok(ReasoningItem {
                lane: lane_name(&r.lane).map_err(|e| format!("{at}: {e}"))?,
                data: r.data,
            })
        })
        .collect::<Result<_, String>>()?;
    Ok(Message {
        role: role(&m.role).map_err(|e| format!("{at}: {e}"))?,
        content: content(m.content.as_ref(), &at)?,
        tool_calls,
        tool_call_id: m.tool_call_id,
        reasoning,
    })
}

fn tool_choice(v: &Value) -> Result<ToolChoice, String> {
    match v {
        Value::String(s) => match s.as_str() {
            "auto" => Ok(ToolChoice::Auto),
            "none" => Ok(ToolChoice::None),
            "required" => Ok(ToolChoice::Required),
            other => Err(format!("unknown tool_choice {other:?}")),
        },
        Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("function") => o
            .get("function")
            .and_then(|f| f.get("name"))
            .and_then(Value::as_str)
            .map(|n| ToolChoice::Function(n.to_owned()))
            .ok_or_else(|| "tool_choice function needs function.name".to_owned()),
        _ => Err(
            "tool_choice must be auto, none, required or {type: function, function: {name}}".into(),
        ),
    }
}

pub(crate) fn effort(e: &str) -> Result<ThinkingEffort, String> {
    match e {
        "low" => Ok(ThinkingEffort::Low),
        "medium" => Ok(ThinkingEffort::Medium),
        "high" => Ok(ThinkingEffort::High),
        other => Err(format!(
            "unsupported reasoning_effort {other:?}: use low, medium or high"
        )),
    }
}

fn format(f: WireFormat) -> Result<ResponseFormat, String> {
    match (f.kind.as_str(), f.json_schema) {
        ("text", None) => Ok(ResponseFormat::Text),
        ("json_object", None) => Ok(ResponseFormat::JsonObject),
        ("json_schema", Some(s)) => Ok(ResponseFormat::JsonSchema(JsonSchemaFormat {
            name: s.name,
            schema: s
                .schema
                .ok_or("response_format json_schema needs a schema")?
                .to_string(),
            description: s.description,
            strict: s.strict,
        })),
        ("json_schema", None) => Err("response_format json_schema needs json_schema".into()),
        (kind, Some(_)) => Err(format!("response_format {kind} takes no json_schema")),
        (kind, None) => Err(format!("unsupported response_format type {kind:?}")),
    }
}

impl Body {
    /// The WIT request (`model` as resolved by the caller).
    pub fn into_request(self, model: String) -> Result<ChatRequest, String> {
        if self.max_tokens.is_some() && self.max_completion_tokens.is_some() {
            return Err("give max_tokens or max_completion_tokens, not both".into());
        }
        // What would change the answer silently is refused by name.
        if self.n.is_some_and(|n| n != 1) {
            return Err("n other than 1 is not supported: one choice per request".into());
        }
        if self.logprobs == Some(true) || self.top_logprobs.is_some_and(|n| n > 0) {
            return Err("logprobs are not supported: replies carry no log probabilities".into());
        }
        let mut extra = serde_json::Map::new();
        if let Some(u) = self.user {
            extra.insert("user".into(), u.into());
        }
        for (k, v) in [
            ("frequency_penalty", self.frequency_penalty),
            ("presence_penalty", self.presence_penalty),
        ] {
            if let Some(v) = v {
                extra.insert(k.into(), v.into());
            }
        }
        if let Some(p) = self.search_parameters {
            extra.insert("search_parameters".into(), p);
        }
        let stop = match self.stop {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) => vec![s],
            Some(Value::Array(a)) => a
                .into_iter()
                .map(|s| match s {
                    Value::String(s) => Ok(s),
                    _ => Err("stop must be a string or an array of strings".to_owned()),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err("stop must be a string or an array of strings".into()),
        };
        let tools = self
            .tools
            .into_iter()
            .map(|t| {
                if t.kind != "function" {
                    return Err(format!("unsupported tool type {:?}", t.kind));
                }
                Ok(FunctionTool {
                    name: t.function.name,
                    description: t.function.description,
                    parameters: t.function.parameters.map(|p| p.to_string()),
                    strict: t.function.strict,
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(ChatRequest {
            model: model_id(&model),
            route: None,
            messages: self
                .messages
                .into_iter()
                .enumerate()
                .map(|(i, m)| message(i, m))
                .collect::<Result<_, _>>()?,
            lane: None,
            tools,
            tool_choice: self.tool_choice.as_ref().map(tool_choice).transpose()?,
            parallel_tool_calls: self.parallel_tool_calls,
            response_format: self.response_format.map(format).transpose()?,
            stop,
            seed: self.seed,
            top_p: self.top_p,
            temperature: self.temperature,
            max_output_tokens: self.max_completion_tokens.or(self.max_tokens),
            thinking: self.reasoning_effort.as_deref().map(effort).transpose()?,
            prompt_cache_key: self.prompt_cache_key,
            extra_body: (!extra.is_empty()).then(|| Value::Object(extra).to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(body: &str) -> Result<ChatRequest, String> {
        parse(body)?.into_request("m".into())
    }

    #[test]
    fn the_agent_shape_maps_whole() {
        let r = request(r#"{
            "model": "grok-4.3",
            "messages": [
                {"role": "developer", "content": "sys"},
                {"role": "user", "content": [{"type": "text", "text": "look"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}}]},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
                 "reasoning_items": [{"lane": "responses", "data": "{}"}]},
                {"role": "tool", "tool_call_id": "c1", "content": "done"}
            ],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}, "strict": true}}],
            "tool_choice": {"type": "function", "function": {"name": "f"}},
            "parallel_tool_calls": false,
            "response_format": {"type": "json_schema", "json_schema": {"name": "n", "schema": {"type": "object"}}},
            "reasoning_effort": "high", "max_completion_tokens": 9, "temperature": 0.5, "top_p": 0.9,
            "stop": "END", "seed": 7, "prompt_cache_key": "k", "stream": true, "stream_options": {"include_usage": true}
        }"#).unwrap();
        assert_eq!(r.messages.len(), 4);
        assert!(matches!(r.messages[0].role, Role::System));
        assert!(
            matches!(&r.messages[1].content[1], ContentPart::Image(Image { source: ImageSource::Data(d), detail: Some(ImageDetail::Low) }) if d.media_type == "image/png" && d.base64 == "AAAA")
        );
        assert_eq!(r.messages[2].tool_calls[0].name, "f");
        assert_eq!(r.messages[2].reasoning.len(), 1);
        assert_eq!(r.messages[3].tool_call_id.as_deref(), Some("c1"));
        assert_eq!(
            r.tools[0].parameters.as_deref(),
            Some(r#"{"type":"object"}"#)
        );
        assert!(matches!(r.tool_choice, Some(ToolChoice::Function(ref n)) if n == "f"));
        assert!(matches!(
            r.response_format,
            Some(ResponseFormat::JsonSchema(_))
        ));
        assert_eq!(
            (r.max_output_tokens, r.seed, r.stop.len()),
            (Some(9), Some(7), 1)
        );
        assert!(matches!(r.thinking, Some(ThinkingEffort::High)));
        assert_eq!(r.prompt_cache_key.as_deref(), Some("k"));
    }

    #[test]
    fn unknown_fields_are_refused_by_name() {
        for (body, named) in [
            (r#"{"messages": [], "logprobs": true}"#, "logprobs"),
            (
                r#"{"messages": [{"role": "user", "content": "x", "name": "bob"}]}"#,
                "name",
            ),
            (
                r#"{"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]}"#,
                "input_audio",
            ),
            (
                r#"{"messages": [{"role": "user", "content": [{"type": "text", "text": "x", "cache": 1}]}]}"#,
                "cache",
            ),
            (
                r#"{"messages": [], "tools": [{"type": "web_search", "function": {"name": "x"}}]}"#,
                "web_search",
            ),
            (
                r#"{"messages": [], "reasoning_effort": "minimal"}"#,
                "minimal",
            ),
            (
                r#"{"messages": [], "max_tokens": 1, "max_completion_tokens": 2}"#,
                "max_tokens",
            ),
            (
                r#"{"messages": [{"role": "critic", "content": "x"}]}"#,
                "critic",
            ),
        ] {
            let e = request(body).unwrap_err();
            assert!(e.contains(named), "{body}: {e}");
        }
    }

    #[test]
    fn what_clients_send_back_and_optional_fields_are_tolerated() {
        let r = request(r#"{
            "model": "p--m",
            "messages": [
                {"role": "user", "content": "q"},
                {"role": "assistant", "content": [{"type": "text", "text": "a", "refusal": null, "annotations": []},
                                                  {"type": "refusal", "refusal": "no"}],
                 "reasoning_content": "thought", "refusal": null,
                 "annotations": [], "audio": null, "function_call": null},
                {"role": "user", "content": "again"}
            ],
            "user": "u", "n": 1, "store": false, "metadata": {"k": "v"}, "frequency_penalty": 0.5,
            "presence_penalty": 0, "logprobs": false, "top_logprobs": 0, "service_tier": "auto",
            "search_parameters": {"mode": "auto"}, "parallel_tool_calls": true,
            "stream_options": {"include_usage": true, "include_obfuscation": false}
        }"#)
        .unwrap();
        assert_eq!(r.messages.len(), 3);
        let named = parse(r#"{"messages": [{"role": "user", "content": "q"}]}"#)
            .unwrap()
            .into_request("p--m".into())
            .unwrap();
        assert_eq!(named.model, "p/m");
        let extra: Value = serde_json::from_str(r.extra_body.as_deref().unwrap()).unwrap();
        assert_eq!(
            extra,
            serde_json::json!({"user": "u", "frequency_penalty": 0.5, "presence_penalty": 0.0,
                               "search_parameters": {"mode": "auto"}})
        );
        for (body, named) in [
            (r#"{"messages": [], "n": 2}"#, "n other than 1"),
            (r#"{"messages": [], "top_logprobs": 2}"#, "logprobs"),
            (
                r#"{"messages": [{"role": "assistant", "function_call": {"name": "f", "arguments": "{}"}}]}"#,
                "function_call",
            ),
        ] {
            let e = request(body).unwrap_err();
            assert!(e.contains(named), "{body}: {e}");
        }
    }

    #[test]
    fn the_slash_free_form_names_the_prefixed_id() {
        assert_eq!(model_id("xai-grok-sub--grok-4.3"), "xai-grok-sub/grok-4.3");
        assert_eq!(model_id("grok-4.3"), "grok-4.3");
        assert_eq!(model_id("a/b--c"), "a/b--c");
        assert_eq!(
            slash_free("xai-grok-sub/grok-4.3").as_deref(),
            Some("xai-grok-sub--grok-4.3")
        );
        assert_eq!(slash_free("grok-4.3"), None);
        for id in ["xai-grok/grok-4.20-0309-reasoning", "xai/grok-4.6"] {
            assert_eq!(model_id(&slash_free(id).unwrap()), id);
        }
    }
}
