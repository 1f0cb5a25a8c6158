//! Plain-Rust mirrors of the WIT records (`wit/provider.wit`, interface `types`).
//! The component layer converts these one to one; nothing here holds a token.

use serde::{Deserialize, Serialize};

/// Which upstream API dialect a model is served by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lane {
    /// OpenAI-compatible `/chat/completions`.
    ChatCompletions,
    /// The Responses API (`/responses`).
    Responses,
    /// Image or video generation.
    Media,
}

/// How the host treats a configuration value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SettingKind {
    /// A URL the plugin sends requests to (`https://`, or `http://` on loopback).
    Endpoint,
    /// The name of one of the manifest's routes.
    RouteName,
    /// Any other text.
    Text,
}

/// A configuration key the plugin understands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Setting {
    /// The key, `[a-z0-9-]`.
    pub key: String,
    /// The environment variable a command-line host reads it from.
    pub env: Option<String>,
    /// What the value is for.
    pub description: String,
    /// The value used when the host sets none.
    pub default_value: String,
    /// How the host treats it.
    pub kind: SettingKind,
    /// An endpoint used only by this route (allowed only while the host enables it).
    pub route: Option<String>,
}

/// Which credential a route spends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CredentialKind {
    /// The OAuth login.
    Oauth,
    /// An API key stored with `set-api-key`.
    ApiKey,
}

/// One way of paying for a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteInfo {
    /// Its name.
    pub name: String,
    /// What it is, for people.
    pub description: String,
    /// The credential it spends.
    pub credential: CredentialKind,
    /// The prefix of the model ids listed for it.
    pub model_prefix: String,
}

/// What the plugin says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginManifest {
    /// Stable identifier.
    pub id: String,
    /// Human name.
    pub display_name: String,
    /// Every configuration key it reads.
    pub settings: Vec<Setting>,
    /// Every route, the default first.
    pub routes: Vec<RouteInfo>,
}

/// One model the connected account may use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Model {
    /// Id with its route's model prefix, e.g. `xai-grok/grok-4.3`.
    pub id: String,
    /// Which API dialect serves it.
    pub lane: Lane,
    /// The route it was listed for.
    pub route: String,
    /// Owner as reported upstream.
    pub owned_by: Option<String>,
    /// Creation time (unix seconds) as reported upstream.
    pub created: Option<u64>,
}

/// What the user must do to approve a device login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevicePrompt {
    /// Opaque handle of this login attempt.
    pub pending_id: String,
    /// The verification page with the user code filled in.
    pub verification_url_with_code: String,
    /// The bare verification page.
    pub verification_url: String,
    /// The code the page shows.
    pub user_code: String,
    /// Seconds until the device code expires.
    pub expires_in_seconds: u32,
    /// Minimum seconds between two polls.
    pub interval_seconds: u32,
}

/// The stored credential's state. Never contains a token.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ConnectionStatus {
    /// Whether usable credentials are stored.
    pub connected: bool,
    /// Subscription tier from the access token's `tier` claim.
    pub tier: Option<u32>,
    /// Human name of the tier.
    pub tier_name: Option<String>,
    /// The subscription the rail names (`GET /user?include=subscription`), when known.
    pub subscription: Option<String>,
    /// Access-token expiry (unix seconds).
    pub expires_at: Option<u64>,
    /// The model to switch to after connecting.
    pub default_model_id: Option<String>,
    /// Chat models of the default route, as far as the cache knows them.
    pub models: Vec<Model>,
    /// The route a request that names none takes.
    pub default_route: String,
    /// Whether an API key is stored.
    pub api_key_stored: bool,
    /// Each route of the manifest and whether its credential is there now.
    pub routes: Vec<RouteStatus>,
}

/// Whether a route can serve requests now (as far as stored credentials tell).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteStatus {
    /// The route.
    pub name: String,
    /// Its credential is stored (and, for the login, not known to be revoked).
    pub usable: bool,
    /// Why not, when not.
    pub detail: Option<String>,
    /// Which pool its requests spend, for people.
    pub bills: String,
}

/// The stored API key, described without revealing it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ApiKeyInfo {
    /// Whether a key is stored.
    pub stored: bool,
    /// Its last four characters, when stored.
    pub last_four: Option<String>,
}

/// A remaining balance as upstream reported it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreditBalance {
    /// What is left.
    pub remaining: f64,
    /// The allowance it is part of, when reported.
    pub total: Option<f64>,
    /// What it is counted in (e.g. `credits`).
    pub unit: String,
}

/// The length of a quota's allowance period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuotaPeriod {
    /// Resets weekly.
    Weekly,
    /// Resets monthly.
    Monthly,
}

/// What is left of a route's quota. Money in US cents; `None`: not reported.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct QuotaReport {
    /// The route asked about.
    pub route: String,
    /// Share of the period's included allowance used, 0 to 100.
    pub percent_used: Option<f64>,
    /// The period of the allowance.
    pub period: Option<QuotaPeriod>,
    /// When the current period began (unix seconds).
    pub period_start: Option<u64>,
    /// When the period ends and the allowance resets (unix seconds).
    pub resets_at: Option<u64>,
    /// Cap on pay-as-you-go spending this period (US cents).
    pub on_demand_cap_cents: Option<u64>,
    /// Pay-as-you-go spending this period (US cents).
    pub on_demand_used_cents: Option<u64>,
    /// Prepaid credit balance (US cents, magnitude).
    pub prepaid_balance_cents: Option<u64>,
    /// A limit and its use, when upstream answered the legacy shape.
    pub credits: Option<CreditBalance>,
    /// Where the figure comes from, or plainly why it is unknown.
    pub detail: String,
    /// When upstream was asked (unix seconds).
    pub fetched_at: u64,
}

/// A login attempt still waiting for the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingLogin {
    /// The attempt's handle.
    pub pending_id: String,
    /// Seconds to wait before polling again.
    pub interval_seconds: u32,
    /// Seconds until the device code expires.
    pub expires_in_seconds: u32,
}

/// Result of one poll.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum PollOutcome {
    /// Not approved yet.
    Pending(PendingLogin),
    /// Approved; credentials stored.
    Connected(ConnectionStatus),
}

/// What logout did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogoutReport {
    /// Whether credentials were stored before.
    pub was_connected: bool,
    /// Whether the refresh token was revoked upstream.
    pub revoked: bool,
}

/// The catalogue the account's tier (or API key) unlocks on one route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelList {
    /// The route listed.
    pub route: String,
    /// Chat models.
    pub models: Vec<Model>,
    /// Image and video models.
    pub media_models: Vec<Model>,
    /// The default model.
    pub default_model_id: String,
    /// Which pool the route's requests spend, for people.
    pub bills: String,
    /// Whether this came from the cache.
    pub cached: bool,
    /// When fetched upstream (unix seconds).
    pub fetched_at: u64,
}

/// Speaker of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Instructions.
    System,
    /// The user.
    User,
    /// The model.
    Assistant,
    /// A tool call's result.
    Tool,
}

/// Image detail hint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageDetail {
    /// Upstream's choice.
    Auto,
    /// Coarser.
    Low,
    /// Finer.
    High,
}

/// Where an image comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageSource {
    /// An `https://` URL.
    Url(String),
    /// Inline bytes: media type and standard base64.
    Data {
        /// `image/png`, ...
        media_type: String,
        /// The bytes, base64.
        base64: String,
    },
}

/// An image input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    /// The image.
    pub source: ImageSource,
    /// Detail hint.
    pub detail: Option<ImageDetail>,
}

/// One part of a message's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContentPart {
    /// Text.
    Text(String),
    /// An image.
    Image(Image),
}

/// A function call.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ToolCall {
    /// The call's id.
    pub id: String,
    /// The function's name.
    pub name: String,
    /// The arguments, JSON text as the model wrote it.
    pub arguments: String,
}

/// Opaque reasoning state to pass back next turn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReasoningItem {
    /// The lane that produced it.
    pub lane: Lane,
    /// Plugin-defined data (on the Responses lane: the reasoning output item as JSON).
    pub data: String,
}

/// One message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Who speaks.
    pub role: Role,
    /// What is said, in order.
    pub content: Vec<ContentPart>,
    /// Assistant: the calls made in that turn.
    pub tool_calls: Vec<ToolCall>,
    /// Tool: the id of the call answered.
    pub tool_call_id: Option<String>,
    /// Assistant: reasoning items passed back.
    pub reasoning: Vec<ReasoningItem>,
}

impl Message {
    /// A message of plain text.
    pub fn text(role: Role, text: impl Into<String>) -> Self {
        Self {
            role,
            content: vec![ContentPart::Text(text.into())],
            tool_calls: Vec::new(),
            tool_call_id: None,
            reasoning: Vec::new(),
        }
    }

    /// The text parts concatenated.
    pub fn text_content(&self) -> String {
        self.content
            .iter()
            .filter_map(|p| match p {
                ContentPart::Text(t) => Some(t.as_str()),
                ContentPart::Image(_) => None,
            })
            .collect()
    }
}

/// Reasoning effort.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThinkingEffort {
    /// Least.
    Low,
    /// Middle.
    Medium,
    /// Most.
    High,
}

/// A function the model may call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionTool {
    /// Name.
    pub name: String,
    /// What it does.
    pub description: Option<String>,
    /// JSON Schema of the arguments (JSON text).
    pub parameters: Option<String>,
    /// Strict schema adherence.
    pub strict: Option<bool>,
}

/// Whether and which tool the model must call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolChoice {
    /// The model decides.
    Auto,
    /// No tool calls.
    None,
    /// At least one call.
    Required,
    /// This function.
    Function(String),
}

/// A JSON Schema for the reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonSchemaFormat {
    /// Name.
    pub name: String,
    /// The schema (JSON text).
    pub schema: String,
    /// What the output is for.
    pub description: Option<String>,
    /// Strict adherence.
    pub strict: Option<bool>,
}

/// The form of the reply's text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseFormat {
    /// Free text.
    Text,
    /// Any JSON object.
    JsonObject,
    /// JSON following a schema.
    JsonSchema(JsonSchemaFormat),
}

/// One chat turn.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ChatRequest {
    /// Model id, bare or with a route's model prefix (which then names the route).
    pub model: String,
    /// The route to pay with; `None`: the one the model prefix names, else the default.
    pub route: Option<String>,
    /// The conversation.
    pub messages: Vec<Message>,
    /// Lane override.
    pub lane: Option<Lane>,
    /// Functions the model may call.
    pub tools: Vec<FunctionTool>,
    /// Tool choice.
    pub tool_choice: Option<ToolChoice>,
    /// Several calls per turn.
    pub parallel_tool_calls: Option<bool>,
    /// Reply form.
    pub response_format: Option<ResponseFormat>,
    /// Stop sequences.
    pub stop: Vec<String>,
    /// Sampling seed.
    pub seed: Option<i64>,
    /// Nucleus sampling.
    pub top_p: Option<f32>,
    /// Sampling temperature.
    pub temperature: Option<f32>,
    /// Upper bound on generated tokens.
    pub max_output_tokens: Option<u32>,
    /// Optional reasoning effort.
    pub thinking: Option<ThinkingEffort>,
    /// Prompt-cache routing key.
    pub prompt_cache_key: Option<String>,
    /// JSON object text merged into the upstream body.
    pub extra_body: Option<String>,
}

/// Token accounting: `output_tokens` includes reasoning; total = input + output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens.
    pub input_tokens: u32,
    /// Generated tokens, reasoning included.
    pub output_tokens: u32,
    /// Of those, reasoning tokens.
    pub reasoning_tokens: Option<u32>,
    /// Of the prompt tokens, cached ones.
    pub cached_input_tokens: Option<u32>,
    /// Input plus output.
    pub total_tokens: u32,
}

/// Why generation stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// Natural end or stop sequence.
    Stop,
    /// Token limit.
    Length,
    /// Tool calls to run.
    ToolCalls,
    /// Content filter.
    ContentFilter,
    /// Anything else, raw.
    Other(String),
}

impl FinishReason {
    /// From upstream's word (`stop`, `length`, `max_output_tokens`, `tool_calls`, ...).
    pub fn from_upstream(raw: &str) -> Self {
        match raw {
            "stop" | "end_turn" | "completed" => Self::Stop,
            "length" | "max_tokens" | "max_output_tokens" => Self::Length,
            "tool_calls" | "function_call" | "tool_use" => Self::ToolCalls,
            "content_filter" => Self::ContentFilter,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The OpenAI word for it (`other` keeps its raw string).
    pub fn as_str(&self) -> &str {
        match self {
            Self::Stop => "stop",
            Self::Length => "length",
            Self::ToolCalls => "tool_calls",
            Self::ContentFilter => "content_filter",
            Self::Other(s) => s,
        }
    }
}

/// A cited source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Citation {
    /// The source.
    pub url: String,
    /// Its title.
    pub title: Option<String>,
    /// Start of the supported text range.
    pub start_index: Option<u32>,
    /// End of that range.
    pub end_index: Option<u32>,
}

/// A complete reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatReply {
    /// The text.
    pub content: String,
    /// Calls the model asks for.
    pub tool_calls: Vec<ToolCall>,
    /// Visible reasoning.
    pub reasoning: Option<String>,
    /// Reasoning items to pass back.
    pub reasoning_items: Vec<ReasoningItem>,
    /// Sources cited.
    pub citations: Vec<Citation>,
    /// Model that answered (with its route's prefix).
    pub model: String,
    /// Lane that served it.
    pub lane: Lane,
    /// Route that served it.
    pub route: String,
    /// Token accounting.
    pub usage: Option<Usage>,
    /// Why generation stopped.
    pub finish_reason: Option<FinishReason>,
}

impl ChatReply {
    /// A reply of `model` on `lane` and `route` with nothing in it yet.
    pub fn empty(model: String, lane: Lane, route: &str) -> Self {
        Self {
            content: String::new(),
            tool_calls: Vec::new(),
            reasoning: None,
            reasoning_items: Vec::new(),
            citations: Vec::new(),
            model,
            lane,
            route: route.to_owned(),
            usage: None,
            finish_reason: None,
        }
    }
}

/// One event of a streamed reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatChunk {
    /// Text to append.
    Text(String),
    /// Visible reasoning to append.
    Reasoning(String),
    /// A tool call begins.
    ToolCallStart {
        /// Position in this reply.
        index: u32,
        /// Call id.
        id: String,
        /// Function name.
        name: String,
    },
    /// More arguments of a started call.
    ToolCallArguments {
        /// Position, as in its start.
        index: u32,
        /// Text to append.
        arguments: String,
    },
    /// A reasoning item to pass back.
    ReasoningItem(ReasoningItem),
    /// A cited source.
    Citation(Citation),
    /// Token accounting.
    Usage(Usage),
    /// Why generation stopped.
    Finish(FinishReason),
}
