//! The Messages request: its body as far as this endpoint understands it, mapped onto the
//! WIT's `chat-request` (what has no Grok equivalent refused by name), the thinking
//! blocks' signatures, and the local token estimate of `count_tokens`.

use provider_runtime::bindings::types::{
    ChatRequest, ContentPart, FunctionTool, Image, ImageData, ImageSource, Lane, Message,
    ReasoningItem, Role, ThinkingEffort, ToolCall, ToolChoice,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Aliases;

/// The request body, as far as this endpoint understands it (`count_tokens` takes the same
/// fields less `max_tokens`, `stream`, sampling and `metadata`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    /// The model asked for: a Grok id (as on every route), or an operator's alias.
    pub model: String,
    messages: Vec<WireMessage>,
    system: Option<System>,
    max_tokens: Option<u32>,
    #[serde(default)]
    tools: Vec<WireTool>,
    tool_choice: Option<WireToolChoice>,
    temperature: Option<f32>,
    top_p: Option<f32>,
    /// No Grok equivalent: refused when set.
    top_k: Option<u32>,
    stop_sequences: Option<Vec<String>>,
    /// Whether the reply is asked for as a stream.
    pub stream: Option<bool>,
    thinking: Option<Thinking>,
    output_config: Option<OutputConfig>,
    // Accepted without effect.
    #[allow(dead_code)]
    metadata: Option<Metadata>,
    #[allow(dead_code)]
    service_tier: Option<String>,
    /// Server-side context editing: no Grok equivalent, refused when set.
    context_management: Option<Value>,
    /// Anthropic's MCP connector: refused when set.
    mcp_servers: Option<Value>,
    /// Anthropic's code-execution container: refused when set.
    container: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Metadata {
    #[allow(dead_code)]
    user_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum System {
    Text(String),
    Blocks(Vec<SystemBlock>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SystemBlock {
    #[serde(rename = "type")]
    kind: String,
    text: String,
    #[allow(dead_code)]
    cache_control: Option<Value>,
    #[allow(dead_code)]
    citations: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WireMessage {
    role: String,
    content: Value,
}

/// One content block of a message (`tool_result` content takes `text` and `image` only).
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub(super) enum Block {
    Text {
        text: String,
        #[allow(dead_code)]
        cache_control: Option<Value>,
        #[allow(dead_code)]
        citations: Option<Value>,
    },
    Image {
        source: ImageSrc,
        #[allow(dead_code)]
        cache_control: Option<Value>,
    },
    ToolUse {
        id: String,
        name: String,
        input: Value,
        #[allow(dead_code)]
        cache_control: Option<Value>,
        // What the SDKs echo of a reply's block (Python's `model_dump()`): no effect.
        #[allow(dead_code)]
        caller: Option<Value>,
        #[allow(dead_code)]
        toolset_name: Option<Value>,
    },
    ToolResult {
        tool_use_id: String,
        content: Option<Value>,
        is_error: Option<bool>,
        #[allow(dead_code)]
        cache_control: Option<Value>,
    },
    Thinking {
        /// Grok's visible reasoning: not taken back upstream (the signature's items are).
        #[allow(dead_code)]
        thinking: String,
        signature: Option<String>,
        #[allow(dead_code)]
        cache_control: Option<Value>,
    },
    RedactedThinking {
        data: String,
        #[allow(dead_code)]
        cache_control: Option<Value>,
    },
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub(super) enum ImageSrc {
    Base64 { media_type: String, data: String },
    Url { url: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WireTool {
    /// `custom` (or absent) only: Anthropic's server tools have no Grok equivalent here.
    #[serde(rename = "type")]
    kind: Option<String>,
    name: String,
    description: Option<String>,
    input_schema: Option<Value>,
    strict: Option<bool>,
    #[allow(dead_code)]
    cache_control: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub(super) enum WireToolChoice {
    Auto {
        disable_parallel_tool_use: Option<bool>,
    },
    Any {
        disable_parallel_tool_use: Option<bool>,
    },
    Tool {
        name: String,
        disable_parallel_tool_use: Option<bool>,
    },
    None {},
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub(super) enum Thinking {
    Enabled {
        budget_tokens: u32,
        /// Whether thinking text is shown; Grok's visible reasoning is what it is.
        #[allow(dead_code)]
        display: Option<String>,
    },
    Disabled {},
    /// The model decides how much to think: no effort is asked for.
    Adaptive {
        #[allow(dead_code)]
        display: Option<String>,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OutputConfig {
    effort: Option<String>,
}

/// `thinking.budget_tokens` as a reasoning effort: under 4096 `low`, under 16384
/// `medium`, else `high`.
pub fn effort_of_budget(budget: u32) -> ThinkingEffort {
    match budget {
        0..4096 => ThinkingEffort::Low,
        4096..16384 => ThinkingEffort::Medium,
        _ => ThinkingEffort::High,
    }
}

/// The model a request names: an alias's target, else the id itself (a slash-free id read
/// back as its prefixed form, as on every route).
pub fn resolve_model(requested: &str, aliases: &Aliases) -> String {
    let id = aliases.get(requested).map_or(requested, String::as_str);
    crate::openai::model_id(id)
}

/// Parse the body's JSON.
pub fn parse(bytes: &[u8]) -> Result<Body, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("request body: {e}"))
}

/// What a thinking block's `signature` carries: the reasoning items the plugin returned
/// with the turn, passed back upstream when the block is sent back (so encrypted
/// reasoning round-trips where the lane takes it).
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Signature {
    grok: Vec<SignedItem>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct SignedItem {
    lane: String,
    data: String,
}

pub(super) fn lane_name(l: Lane) -> &'static str {
    match l {
        Lane::ChatCompletions => "chat_completions",
        Lane::Responses => "responses",
        Lane::Media => "media",
    }
}

/// The signature of a thinking block that carries `items`.
pub(super) fn signature(items: &[ReasoningItem]) -> String {
    serde_json::to_string(&Signature {
        grok: items
            .iter()
            .map(|r| SignedItem {
                lane: lane_name(r.lane).to_owned(),
                data: r.data.clone(),
            })
            .collect(),
    })
    .unwrap_or_default()
}

/// The reasoning items a signature (or redacted block) sent back carries; none for one
/// this server did not write (another provider's, or a thinking block without items).
pub(super) fn signed_items(signature: &str) -> Vec<ReasoningItem> {
    serde_json::from_str::<Signature>(signature)
        .map(|s| {
            s.grok
                .into_iter()
                .filter_map(|i| {
                    Some(ReasoningItem {
                        lane: crate::openai::lane_name(&i.lane).ok()?,
                        data: i.data,
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

pub(super) fn image(src: ImageSrc) -> ContentPart {
    ContentPart::Image(Image {
        source: match src {
            ImageSrc::Base64 { media_type, data } => ImageSource::Data(ImageData {
                media_type,
                base64: data,
            }),
            ImageSrc::Url { url } => ImageSource::Url(url),
        },
        detail: None,
    })
}

pub(super) fn blocks(content: Value, at: &str) -> Result<Vec<Block>, String> {
    match content {
        Value::String(s) => Ok(vec![Block::Text {
            text: s,
            cache_control: None,
            citations: None,
        }]),
        Value::Array(_) => serde_json::from_value(content).map_err(|e| format!("{at}: {e}")),
        _ => Err(format!(
            "{at}: content must be a string or an array of blocks"
        )),
    }
}

/// A tool result's content: its text parts, and its images (which go to a user message
/// after the results: Grok takes images in user messages only).
pub(super) fn tool_result(
    content: Option<Value>,
    is_error: bool,
    at: &str,
) -> Result<(String, Vec<ContentPart>), String> {
    let mut text = Vec::new();
    let mut images = Vec::new();
    for b in blocks(content.unwrap_or(Value::String(String::new())), at)? {
        match b {
            Block::Text { text: t, .. } => text.push(t),
            Block::Image { source, .. } => images.push(image(source)),
            _ => {
                return Err(format!(
                    "{at}: a tool_result holds text and image blocks only"
                ));
            }
        }
    }
    let mut text = text.join("\n");
    // Grok's tool messages have no error flag: the text says it.
    if is_error {
        text = format!("Error: {text}");
    }
    Ok((text, images))
}

pub(super) fn message(i: usize, m: WireMessage, out: &mut Vec<Message>) -> Result<(), String> {
    let at = format!("messages[{i}]");
    let role = match m.role.as_str() {
        "user" => Role::User,
        "assistant" => Role::Assistant,
        // Claude Code sends system text inside messages.
        "system" => Role::System,
        other => {
            return Err(format!(
                "{at}: unknown role {other:?}: use user, assistant or system"
            ));
        }
    };
    let mut msg = Message::text(role, "");
    msg.content.clear();
    // A user message's tool results go first, each as a tool message; images they hold
    // follow in the user message.
    let mut results = Vec::new();
    for (j, b) in blocks(m.content, &at)?.into_iter().enumerate() {
        let at = format!("{at}.content[{j}]");
        match (b, role) {
            (Block::Text { text, .. }, _) => msg.content.push(ContentPart::Text(text)),
            (Block::Image { source, .. }, Role::User) => msg.content.push(image(source)),
            (
                Block::ToolResult {
                    tool_use_id,
                    content,
                    is_error,
                    ..
                },
                Role::User,
            ) => {
                let (text, images) = tool_result(content, is_error == Some(true), &at)?;
                let mut r = Message::text(Role::Tool, text);
                r.tool_call_id = Some(tool_use_id);
                results.push(r);
                msg.content.extend(images);
            }
            (
                Block::ToolUse {
                    id, name, input, ..
                },
                Role::Assistant,
            ) => msg.tool_calls.push(ToolCall {
                id,
                name,
                arguments: input.to_string(),
            }),
            // Thinking sent back: the reasoning items its signature carries go back
            // upstream; its text (or another provider's signature) has no use there.
            (
                Block::Thinking {
                    signature: Some(s), ..
                },
                Role::Assistant,
            )
            | (Block::RedactedThinking { data: s, .. }, Role::Assistant) => {
                msg.reasoning.extend(signed_items(&s));
            }
            (Block::Thinking { .. }, Role::Assistant) => {}
            (b, _) => {
                let kind = match b {
                    Block::Image { .. } => "image",
                    Block::ToolResult { .. } => "tool_result",
                    Block::ToolUse { .. } => "tool_use",
                    _ => "thinking",
                };
                return Err(format!(
                    "{at}: a {kind} block cannot be in a {} message",
                    m.role
                ));
            }
        }
    }
    out.extend(results);
    if !msg.content.is_empty() || !msg.tool_calls.is_empty() || !msg.reasoning.is_empty() {
        out.push(msg);
    }
    Ok(())
}

pub(super) fn system_text(s: System) -> Result<String, String> {
    match s {
        System::Text(t) => Ok(t),
        System::Blocks(b) => b
            .into_iter()
            .map(|b| {
                (b.kind == "text")
                    .then_some(b.text)
                    .ok_or(format!("system: unsupported block type {:?}", b.kind))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|t| t.join("\n\n")),
    }
}

pub(super) fn tools(tools: Vec<WireTool>) -> Result<Vec<FunctionTool>, String> {
    tools
        .into_iter()
        .map(|t| match t.kind.as_deref() {
            None | Some("custom") => {
                let schema = t
                    .input_schema
                    .ok_or(format!("tool {}: input_schema is required", t.name))?;
                Ok(FunctionTool {
                    name: t.name,
                    description: t.description,
                    parameters: Some(schema.to_string()),
                    strict: t.strict,
                })
            }
            Some(other) => Err(format!(
                "tool {}: unsupported tool type {other:?}: only custom tools (with input_schema) are served",
                t.name
            )),
        })
        .collect()
}

impl Body {
    /// The WIT request for `model` (already resolved).
    pub fn into_request(self, model: String, whole: bool) -> Result<ChatRequest, String> {
        for (field, set) in [
            ("top_k", self.top_k.is_some()),
            ("context_management", self.context_management.is_some()),
            ("mcp_servers", self.mcp_servers.is_some()),
            ("container", self.container.is_some()),
        ] {
            if set {
                return Err(format!("{field} is not supported: Grok has no equivalent"));
            }
        }
        if whole && self.max_tokens.is_none() {
            return Err("max_tokens is required".into());
        }
        let mut messages = Vec::new();
        if let Some(s) = self.system {
            messages.push(Message::text(Role::System, system_text(s)?));
        }
        for (i, m) in self.messages.into_iter().enumerate() {
            message(i, m, &mut messages)?;
        }
        let mut request = ChatRequest::new(model, messages);
        request.tools = tools(self.tools)?;
        if let Some(c) = self.tool_choice {
            let (choice, no_parallel) = match c {
                WireToolChoice::Auto {
                    disable_parallel_tool_use: p,
                } => (ToolChoice::Auto, p),
                WireToolChoice::Any {
                    disable_parallel_tool_use: p,
                } => (ToolChoice::Required, p),
                WireToolChoice::Tool {
                    name,
                    disable_parallel_tool_use: p,
                } => (ToolChoice::Function(name), p),
                WireToolChoice::None {} => (ToolChoice::None, None),
            };
            request.tool_choice = Some(choice);
            request.parallel_tool_calls = no_parallel.map(|n| !n);
        }
        request.temperature = self.temperature;
        request.top_p = self.top_p;
        request.stop = self.stop_sequences.unwrap_or_default();
        request.max_output_tokens = self.max_tokens;
        request.thinking = match (self.thinking, self.output_config.and_then(|o| o.effort)) {
            (_, Some(e)) => Some(crate::openai::effort(&e).map_err(|_| {
                format!("unsupported output_config.effort {e:?}: use low, medium or high")
            })?),
            (Some(Thinking::Enabled { budget_tokens, .. }), None) => {
                Some(effort_of_budget(budget_tokens))
            }
            _ => None,
        };
        Ok(request)
    }

    /// The local token estimate of what the request sends: see [`estimate_tokens`].
    pub fn estimate_tokens(&self) -> u32 {
        let mut n = 0u64;
        if let Some(s) = &self.system {
            n += match s {
                System::Text(t) => text_tokens(t),
                System::Blocks(b) => b.iter().map(|b| text_tokens(&b.text)).sum(),
            };
        }
        for m in &self.messages {
            n += content_tokens(&m.content);
        }
        for t in &self.tools {
            n += text_tokens(&t.name)
                + t.description.as_deref().map_or(0, text_tokens)
                + t.input_schema
                    .as_ref()
                    .map_or(0, |s| text_tokens(&s.to_string()));
        }
        u32::try_from(n).unwrap_or(u32::MAX)
    }
}

/// What one image counts for in the estimate (Anthropic's figure for a picture of about a
/// megapixel).
pub const IMAGE_TOKENS: u64 = 1600;

/// One text in the estimate: its UTF-8 bytes over four, rounded up.
pub(super) fn text_tokens(t: &str) -> u64 {
    (t.len() as u64).div_ceil(4)
}

/// The estimate of a message's content, walked as JSON: every string that is text (text,
/// thinking, a tool's input, a tool result's text) by [`text_tokens`], every image
/// [`IMAGE_TOKENS`].
pub(super) fn content_tokens(v: &Value) -> u64 {
    match v {
        Value::String(s) => text_tokens(s),
        Value::Array(a) => a.iter().map(content_tokens).sum(),
        Value::Object(o) => match o.get("type").and_then(Value::as_str) {
            Some("image") => IMAGE_TOKENS,
            Some("text") => o.get("text").map_or(0, content_tokens),
            Some("thinking") => o.get("thinking").map_or(0, content_tokens),
            Some("tool_use") => {
                o.get("name").map_or(0, content_tokens)
                    + o.get("input").map_or(0, |i| text_tokens(&i.to_string()))
            }
            Some("tool_result") => o.get("content").map_or(0, content_tokens),
            _ => 0,
        },
        _ => 0,
    }
}
