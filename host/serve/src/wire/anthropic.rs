//! Anthropic's Messages API (`POST /v1/messages`, `POST /v1/messages/count_tokens`): the
//! request mapped onto the WIT's `chat-request`, the reply whole (a `message`) or as
//! Anthropic's stream events, the local token estimate, and errors in Anthropic's shape
//! (`{"type": "error", "error": {"type", "message"}}`).
//!
//! What has no Grok equivalent is refused by name (an unknown field, block or tool type,
//! `top_k`, `context_management`, server tools); what changes nothing of the answer is
//! accepted (`cache_control`, `metadata`, `service_tier`, citations sent back).

use std::collections::BTreeMap;

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use provider_runtime::bindings::types::{
    ChatChunk, ChatReply, ChatRequest, ContentPart, FinishReason, FunctionTool, Image, ImageData,
    ImageSource, Lane, Message, ReasoningItem, Role, ThinkingEffort, ToolCall, ToolChoice, Usage,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::ApiError;

/// Model aliases: a name a client insists on (`claude-sonnet-4-5`) and the model it names
/// here (`grok-4.6`, or a prefixed id).
pub type Aliases = BTreeMap<String, String>;

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
struct Metadata {
    #[allow(dead_code)]
    user_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum System {
    Text(String),
    Blocks(Vec<SystemBlock>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SystemBlock {
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
struct WireMessage {
    role: String,
    content: Value,
}

/// One content block of a message (`tool_result` content takes `text` and `image` only).
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum Block {
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
enum ImageSrc {
    Base64 { media_type: String, data: String },
    Url { url: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireTool {
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
enum WireToolChoice {
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
enum Thinking {
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
struct OutputConfig {
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
struct Signature {
    grok: Vec<SignedItem>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SignedItem {
    lane: String,
    data: String,
}

fn lane_name(l: Lane) -> &'static str {
    match l {
        Lane::ChatCompletions => "chat_completions",
        Lane::Responses => "responses",
        Lane::Media => "media",
    }
}

/// The signature of a thinking block that carries `items`.
fn signature(items: &[ReasoningItem]) -> String {
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
fn signed_items(signature: &str) -> Vec<ReasoningItem> {
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

fn image(src: ImageSrc) -> ContentPart {
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

fn blocks(content: Value, at: &str) -> Result<Vec<Block>, String> {
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
fn tool_result(
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

fn message(i: usize, m: WireMessage, out: &mut Vec<Message>) -> Result<(), String> {
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

fn system_text(s: System) -> Result<String, String> {
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

fn tools(tools: Vec<WireTool>) -> Result<Vec<FunctionTool>, String> {
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
fn text_tokens(t: &str) -> u64 {
    (t.len() as u64).div_ceil(4)
}

/// The estimate of a message's content, walked as JSON: every string that is text (text,
/// thinking, a tool's input, a tool result's text) by [`text_tokens`], every image
/// [`IMAGE_TOKENS`].
fn content_tokens(v: &Value) -> u64 {
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

/// Anthropic's stop reason for a finish reason (`tool_use` whenever the turn made calls).
fn stop_reason(f: Option<&FinishReason>, calls: bool) -> &'static str {
    match f {
        _ if calls => "tool_use",
        Some(FinishReason::Length) => "max_tokens",
        Some(FinishReason::ToolCalls) => "tool_use",
        Some(FinishReason::ContentFilter) => "refusal",
        _ => "end_turn",
    }
}

/// Anthropic usage: `input_tokens` is the input not read from the cache, which
/// `cache_read_input_tokens` counts; output tokens include reasoning.
fn usage(u: &Usage) -> Value {
    let cached = u.cached_input_tokens.unwrap_or(0).min(u.input_tokens);
    json!({"input_tokens": u.input_tokens - cached, "output_tokens": u.output_tokens,
           "cache_read_input_tokens": cached, "cache_creation_input_tokens": 0})
}

/// A tool call's arguments as the `input` object (empty arguments are `{}`).
fn input(arguments: &str) -> Value {
    if arguments.trim().is_empty() {
        return json!({});
    }
    serde_json::from_str(arguments).unwrap_or_else(|_| Value::String(arguments.to_owned()))
}

/// The whole reply as a `message`: a thinking block (the visible reasoning, its
/// signature carrying the reasoning items to pass back), the text, then one `tool_use`
/// block per call.
pub fn whole(id: &str, model: &str, r: &ChatReply) -> Value {
    let mut content = Vec::new();
    let reasoning = r.reasoning.as_deref().unwrap_or("");
    if !reasoning.is_empty() || !r.reasoning_items.is_empty() {
        content.push(json!({"type": "thinking", "thinking": reasoning,
                            "signature": signature(&r.reasoning_items)}));
    }
    if !r.content.is_empty() || r.tool_calls.is_empty() {
        content.push(json!({"type": "text", "text": r.content}));
    }
    for c in &r.tool_calls {
        content.push(json!({"type": "tool_use", "id": c.id, "name": c.name,
                            "input": input(&c.arguments)}));
    }
    json!({
        "id": id, "type": "message", "role": "assistant", "model": model, "content": content,
        "stop_reason": stop_reason(r.finish_reason.as_ref(), !r.tool_calls.is_empty()),
        "stop_sequence": null,
        "usage": r.usage.as_ref().map_or_else(
            || json!({"input_tokens": 0, "output_tokens": 0}), usage),
    })
}

/// The content block open in a stream.
#[derive(Debug, PartialEq)]
enum Open {
    None,
    Thinking,
    Text,
    /// A `tool_use` block, for the call of this index.
    Tool(u32),
}

/// Writes one stream's events, as (event name, data): `message_start` (with the input
/// estimate: upstream reports usage at the end), `ping`, then for each block
/// `content_block_start`, its deltas and `content_block_stop` — one block open at a time,
/// every delta of its type —, then `message_delta` (stop reason, usage) and
/// `message_stop`.
pub struct EventWriter {
    id: String,
    model: String,
    estimate: u32,
    open: Open,
    /// Index of the next block.
    next: usize,
    /// Reasoning items that came while a thinking block was open (its signature).
    items: Vec<ReasoningItem>,
    usage: Option<Usage>,
    finish: Option<FinishReason>,
    calls: bool,
}

type Ev = (&'static str, Value);

impl EventWriter {
    /// A stream of message `id` for `model`, its input estimated at `estimate` tokens.
    pub fn new(id: String, model: String, estimate: u32) -> Self {
        Self {
            id,
            model,
            estimate,
            open: Open::None,
            next: 0,
            items: Vec::new(),
            usage: None,
            finish: None,
            calls: false,
        }
    }

    /// `message_start` and a `ping`.
    pub fn start(&mut self) -> Vec<Ev> {
        vec![
            (
                "message_start",
                json!({"type": "message_start", "message": {
                    "id": self.id, "type": "message", "role": "assistant", "model": self.model,
                    "content": [], "stop_reason": null, "stop_sequence": null,
                    "usage": {"input_tokens": self.estimate, "output_tokens": 0,
                              "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}}}),
            ),
            ("ping", json!({"type": "ping"})),
        ]
    }

    /// Closes the open block (a thinking block first gets its signature).
    fn close(&mut self, out: &mut Vec<Ev>) {
        let index = self.next.saturating_sub(1);
        match std::mem::replace(&mut self.open, Open::None) {
            Open::None => return,
            Open::Thinking => {
                let items = std::mem::take(&mut self.items);
                out.push(self.delta(
                    index,
                    json!({"type": "signature_delta", "signature": signature(&items)}),
                ));
            }
            Open::Text | Open::Tool(_) => {}
        }
        out.push((
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        ));
    }

    /// Opens a block (closing the open one).
    fn open(&mut self, open: Open, block: Value, out: &mut Vec<Ev>) {
        self.close(out);
        out.push((
            "content_block_start",
            json!({"type": "content_block_start", "index": self.next, "content_block": block}),
        ));
        self.next += 1;
        self.open = open;
    }

    fn delta(&self, index: usize, delta: Value) -> Ev {
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": index, "delta": delta}),
        )
    }

    /// The events of one chunk of the plugin's stream.
    pub fn chunk(&mut self, c: &ChatChunk) -> Vec<Ev> {
        let mut out = Vec::new();
        match c {
            ChatChunk::Reasoning(t) => {
                if self.open != Open::Thinking {
                    // The blank line the plugin puts between two reasoning items opens
                    // nothing by itself.
                    if t.trim().is_empty() {
                        return out;
                    }
                    self.open(
                        Open::Thinking,
                        json!({"type": "thinking", "thinking": "", "signature": ""}),
                        &mut out,
                    );
                }
                out.push(self.delta(
                    self.next - 1,
                    json!({"type": "thinking_delta", "thinking": t}),
                ));
            }
            // The item to pass back ends the thinking it belongs to (its signature);
            // without reasoning streamed before it, it is a thinking block of its own.
            ChatChunk::ReasoningItem(r) => {
                if self.open != Open::Thinking {
                    self.open(
                        Open::Thinking,
                        json!({"type": "thinking", "thinking": "", "signature": ""}),
                        &mut out,
                    );
                }
                self.items.push(r.clone());
                self.close(&mut out);
            }
            ChatChunk::Text(t) => {
                if t.is_empty() {
                    return out;
                }
                if self.open != Open::Text {
                    self.open(Open::Text, json!({"type": "text", "text": ""}), &mut out);
                }
                out.push(self.delta(self.next - 1, json!({"type": "text_delta", "text": t})));
            }
            ChatChunk::ToolCallStart(s) => {
                self.calls = true;
                self.open(
                    Open::Tool(s.index),
                    json!({"type": "tool_use", "id": s.id, "name": s.name, "input": {}}),
                    &mut out,
                );
            }
            ChatChunk::ToolCallArguments(d) => {
                if self.open == Open::Tool(d.index) {
                    if !d.arguments.is_empty() {
                        out.push(self.delta(
                            self.next - 1,
                            json!({"type": "input_json_delta", "partial_json": d.arguments}),
                        ));
                    }
                } else {
                    // Its block is closed: no delta may target it (the plugin sends a
                    // call's pieces together; this is never expected).
                    tracing::warn!(
                        index = d.index,
                        "tool call arguments after their block closed"
                    );
                }
            }
            // Anthropic's citations point into documents: URL citations have no place.
            ChatChunk::Citation(_) => {}
            ChatChunk::Usage(u) => self.usage = Some(*u),
            ChatChunk::Finish(f) => self.finish = Some(f.clone()),
        }
        out
    }

    /// The open block's end, `message_delta` and `message_stop`.
    pub fn finish(&mut self) -> Vec<Ev> {
        let mut out = Vec::new();
        self.close(&mut out);
        let mut usage = self
            .usage
            .as_ref()
            .map_or_else(|| json!({"output_tokens": 0}), usage);
        if self.usage.is_none() {
            usage["input_tokens"] = json!(self.estimate);
        }
        out.push((
            "message_delta",
            json!({"type": "message_delta",
                   "delta": {"stop_reason": stop_reason(self.finish.as_ref(), self.calls),
                             "stop_sequence": null},
                   "usage": usage}),
        ));
        out.push(("message_stop", json!({"type": "message_stop"})));
        out
    }
}

/// An error as Anthropic answers it: its `type` by status (400 `invalid_request_error`,
/// 401 `authentication_error`, 402 `billing_error`, 403 `permission_error`, 404
/// `not_found_error`, 413 `request_too_large`, 429 `rate_limit_error`, 504
/// `timeout_error`, 529 `overloaded_error`, else `api_error`), the CLI's error code kept in
/// the message. Upstream unavailable (503 on the OpenAI routes) is 529
/// `overloaded_error`, which Claude Code retries as overload.
#[derive(Debug)]
pub struct AnthropicError {
    /// The HTTP status.
    pub status: StatusCode,
    /// Anthropic's error type.
    pub kind: &'static str,
    /// The message.
    pub message: String,
    retry_after: Option<u32>,
}

impl AnthropicError {
    /// The same error as [`ApiError`] (its status and code) in Anthropic's types.
    pub fn from_api(e: &ApiError) -> Self {
        Self::from_parts(e.status, &e.code, &e.message, e.retry_after)
    }

    /// An error of `status` and the CLI's error `code`.
    pub fn from_parts(
        status: StatusCode,
        code: &str,
        message: &str,
        retry_after: Option<u32>,
    ) -> Self {
        let overloaded = StatusCode::from_u16(529).expect("a valid status");
        let (status, kind) = match status.as_u16() {
            400 | 422 => (status, "invalid_request_error"),
            401 => (status, "authentication_error"),
            402 => (status, "billing_error"),
            403 => (status, "permission_error"),
            404 => (status, "not_found_error"),
            413 => (status, "request_too_large"),
            429 => (status, "rate_limit_error"),
            503 | 529 => (overloaded, "overloaded_error"),
            504 => (status, "timeout_error"),
            _ => (status, "api_error"),
        };
        let message = if code.is_empty() || message.contains(code) {
            message.to_owned()
        } else {
            format!("{message} ({code})")
        };
        Self {
            status,
            kind,
            message,
            retry_after,
        }
    }

    /// 400 `invalid_request_error`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::from_api(&ApiError::invalid(message))
    }

    /// `{"type": "error", "error": {"type", "message"}}`.
    pub fn body(&self) -> Value {
        json!({"type": "error", "error": {"type": self.kind, "message": self.message}})
    }
}

impl IntoResponse for AnthropicError {
    fn into_response(self) -> Response {
        let mut r = (self.status, axum::Json(self.body())).into_response();
        if let Some(s) = self.retry_after {
            r.headers_mut().insert("retry-after", HeaderValue::from(s));
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use provider_runtime::bindings::types::{ToolCallDelta, ToolCallStart};

    fn request(body: Value) -> Result<ChatRequest, String> {
        parse(body.to_string().as_bytes())?.into_request("m".into(), true)
    }

    #[test]
    fn claude_codes_request_shape_maps_whole() {
        let r = request(json!({
            "model": "claude-sonnet-4-5", "max_tokens": 32000, "stream": true,
            "system": [{"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}],
            "messages": [
                {"role": "system", "content": "more system"},
                {"role": "user", "content": [
                    {"type": "text", "text": "look", "cache_control": {"type": "ephemeral"}},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
                    {"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}}]},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": signature(&[ReasoningItem {lane: Lane::Responses, data: "{\"encrypted_content\":\"e\"}".into()}])},
                    {"type": "redacted_thinking", "data": "not ours"},
                    {"type": "text", "text": "calling"},
                    {"type": "tool_use", "id": "t1", "name": "Read", "input": {"path": "a"}}]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "t1", "is_error": true,
                     "content": [{"type": "text", "text": "no such file"},
                                 {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "BBBB"}}]},
                    {"type": "text", "text": "go on"}]}
            ],
            "tools": [{"name": "Read", "description": "read", "input_schema": {"type": "object"}, "cache_control": {"type": "ephemeral"}}],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
            "thinking": {"type": "enabled", "budget_tokens": 10000},
            "metadata": {"user_id": "u"}, "temperature": 1.0, "top_p": 0.9, "stop_sequences": ["END"]
        }))
        .unwrap();
        let roles: Vec<Role> = r.messages.iter().map(|m| m.role).collect();
        assert_eq!(
            roles,
            [
                Role::System,
                Role::System,
                Role::User,
                Role::Assistant,
                Role::Tool,
                Role::User
            ]
        );
        assert_eq!(r.messages[2].content.len(), 3);
        let a = &r.messages[3];
        assert_eq!(a.tool_calls[0].arguments, r#"{"path":"a"}"#);
        // Only the signature this server wrote carries an item back.
        assert_eq!(a.reasoning.len(), 1);
        assert_eq!(a.reasoning[0].data, r#"{"encrypted_content":"e"}"#);
        let tool = &r.messages[4];
        assert_eq!(tool.tool_call_id.as_deref(), Some("t1"));
        assert!(matches!(&tool.content[0], ContentPart::Text(t) if t == "Error: no such file"));
        // The result's image goes to the user message after it, with its text.
        assert!(matches!(r.messages[5].content[0], ContentPart::Image(_)));
        assert!(matches!(r.tool_choice, Some(ToolChoice::Required)));
        assert_eq!(r.parallel_tool_calls, Some(false));
        assert!(matches!(r.thinking, Some(ThinkingEffort::Medium)));
        assert_eq!(
            (
                r.max_output_tokens,
                r.stop.len(),
                r.tools[0].parameters.as_deref()
            ),
            (Some(32000), 1, Some(r#"{"type":"object"}"#))
        );
    }

    #[test]
    fn what_has_no_grok_equivalent_is_refused_by_name() {
        let base = |extra: Value| {
            let mut b = json!({"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "x"}]});
            for (k, v) in extra.as_object().unwrap() {
                b[k] = v.clone();
            }
            b
        };
        for (body, named) in [
            (base(json!({"top_k": 5})), "top_k"),
            (
                base(json!({"context_management": {}})),
                "context_management",
            ),
            (base(json!({"frobnicate": 1})), "frobnicate"),
            (
                base(json!({"tools": [{"type": "web_search_20250305", "name": "web_search"}]})),
                "web_search_20250305",
            ),
            (
                base(
                    json!({"messages": [{"role": "user", "content": [{"type": "document", "source": {}}]}]}),
                ),
                "document",
            ),
            (
                base(json!({"messages": [{"role": "critic", "content": "x"}]})),
                "critic",
            ),
            (base(json!({"output_config": {"effort": "max"}})), "max"),
            (json!({"model": "m", "messages": []}), "max_tokens"),
        ] {
            let e = request(body.clone()).unwrap_err();
            assert!(e.contains(named), "{body}: {e}");
        }
    }

    #[test]
    fn budgets_map_to_efforts() {
        assert!(matches!(effort_of_budget(1024), ThinkingEffort::Low));
        assert!(matches!(effort_of_budget(4096), ThinkingEffort::Medium));
        assert!(matches!(effort_of_budget(16384), ThinkingEffort::High));
    }

    #[test]
    fn the_estimate_counts_system_messages_and_tools() {
        let b = parse(
            json!({"model": "m", "system": "12345678", "messages": [
                {"role": "user", "content": [{"type": "text", "text": "1234"},
                    {"type": "image", "source": {"type": "url", "url": "u"}}]}],
                "tools": [{"name": "abcd", "input_schema": {}}]})
            .to_string()
            .as_bytes(),
        )
        .unwrap();
        // 2 (system) + 1 + 1600 (messages) + 1 + 1 (tool name, "{}")
        assert_eq!(b.estimate_tokens(), 2 + 1 + 1600 + 1 + 1);
    }

    #[test]
    fn aliases_name_grok_models() {
        let aliases = Aliases::from([("claude-x".into(), "xai-grok--grok-4.3".into())]);
        assert_eq!(resolve_model("claude-x", &aliases), "xai-grok/grok-4.3");
        assert_eq!(resolve_model("grok-4.6", &aliases), "grok-4.6");
    }

    /// Every delta targets the open block, of its type; each call its own block.
    #[test]
    fn a_stream_keeps_its_blocks_apart() {
        let mut w = EventWriter::new("msg_1".into(), "m".into(), 7);
        let mut events = w.start();
        for c in [
            ChatChunk::Reasoning("think".into()),
            ChatChunk::ReasoningItem(ReasoningItem {
                lane: Lane::Responses,
                data: "{}".into(),
            }),
            ChatChunk::Reasoning("\n\n".into()),
            ChatChunk::Text("hi".into()),
            ChatChunk::ToolCallStart(ToolCallStart {
                index: 0,
                id: "a".into(),
                name: "f".into(),
            }),
            ChatChunk::ToolCallArguments(ToolCallDelta {
                index: 0,
                arguments: "{\"x\":".into(),
            }),
            ChatChunk::ToolCallArguments(ToolCallDelta {
                index: 0,
                arguments: "1}".into(),
            }),
            ChatChunk::ToolCallStart(ToolCallStart {
                index: 1,
                id: "b".into(),
                name: "g".into(),
            }),
            ChatChunk::Usage(Usage {
                input_tokens: 10,
                output_tokens: 5,
                reasoning_tokens: Some(2),
                cached_input_tokens: Some(4),
                total_tokens: 15,
            }),
            ChatChunk::Finish(FinishReason::ToolCalls),
        ] {
            events.extend(w.chunk(&c));
        }
        events.extend(w.finish());
        let names: Vec<&str> = events.iter().map(|e| e.0).collect();
        assert_eq!(
            names,
            [
                "message_start",
                "ping",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_stop",
                "message_delta",
                "message_stop",
            ]
        );
        assert_eq!(events[0].1["message"]["usage"]["input_tokens"], 7);
        // Each delta's type matches its block's, at the open index.
        let mut open: Option<(u64, String)> = None;
        for (name, v) in &events {
            match *name {
                "content_block_start" => {
                    open = Some((
                        v["index"].as_u64().unwrap(),
                        v["content_block"]["type"].as_str().unwrap().into(),
                    ));
                }
                "content_block_delta" => {
                    let (i, kind) = open.as_ref().unwrap();
                    assert_eq!(v["index"].as_u64(), Some(*i));
                    let ok: &[&str] = match kind.as_str() {
                        "thinking" => &["thinking_delta", "signature_delta"],
                        "text" => &["text_delta"],
                        _ => &["input_json_delta"],
                    };
                    assert!(ok.contains(&v["delta"]["type"].as_str().unwrap()), "{v}");
                }
                "content_block_stop" => open = None,
                _ => {}
            }
        }
        assert_eq!(events[4].1["delta"]["type"], "signature_delta");
        assert_eq!(
            signed_items(events[4].1["delta"]["signature"].as_str().unwrap()).len(),
            1
        );
        let delta = &events[15].1;
        assert_eq!(delta["delta"]["stop_reason"], "tool_use");
        assert_eq!(delta["usage"]["input_tokens"], 6);
        assert_eq!(delta["usage"]["cache_read_input_tokens"], 4);
        assert_eq!(delta["usage"]["output_tokens"], 5);
    }

    #[test]
    fn errors_take_anthropics_types() {
        for (status, kind, out) in [
            (429, "rate_limit_error", 429),
            (503, "overloaded_error", 529),
            (401, "authentication_error", 401),
            (400, "invalid_request_error", 400),
            (403, "permission_error", 403),
            (402, "billing_error", 402),
            (404, "not_found_error", 404),
            (502, "api_error", 502),
        ] {
            let e = AnthropicError::from_parts(
                StatusCode::from_u16(status).unwrap(),
                "c",
                "m",
                Some(3),
            );
            assert_eq!((e.kind, e.status.as_u16()), (kind, out));
            assert_eq!(e.body()["error"]["type"], kind);
        }
    }
}
