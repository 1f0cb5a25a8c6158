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

/// One model the connected account may use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Model {
    /// Provider-prefixed id, e.g. `xai-grok/grok-4.3`.
    pub id: String,
    /// Which API dialect serves it.
    pub lane: Lane,
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
    /// Access-token expiry (unix seconds).
    pub expires_at: Option<u64>,
    /// The model to switch to after connecting.
    pub default_model_id: Option<String>,
    /// Chat models as far as the cache knows them.
    pub models: Vec<Model>,
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

/// The catalogue the account's tier unlocks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelList {
    /// Chat models.
    pub models: Vec<Model>,
    /// Image and video models.
    pub media_models: Vec<Model>,
    /// The default model.
    pub default_model_id: String,
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
}

/// One message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Who speaks.
    pub role: Role,
    /// What is said.
    pub content: String,
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

/// One chat turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// Model id, with or without the provider prefix.
    pub model: String,
    /// The conversation.
    pub messages: Vec<Message>,
    /// Optional reasoning effort.
    pub thinking: Option<ThinkingEffort>,
    /// Upper bound on generated tokens.
    pub max_output_tokens: Option<u32>,
    /// Sampling temperature.
    pub temperature: Option<f32>,
}

/// Token accounting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens.
    pub input_tokens: u32,
    /// Generated tokens.
    pub output_tokens: u32,
    /// Of those, reasoning tokens.
    pub reasoning_tokens: Option<u32>,
    /// Input plus output.
    pub total_tokens: u32,
}

/// A complete reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatReply {
    /// The text.
    pub content: String,
    /// Model that answered (provider-prefixed).
    pub model: String,
    /// Lane that served it.
    pub lane: Lane,
    /// Token accounting.
    pub usage: Option<Usage>,
    /// Why generation stopped.
    pub finish_reason: Option<String>,
}

/// One piece of a streamed reply.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ChatChunk {
    /// Text added.
    pub delta: String,
    /// Set on the last chunk when reported.
    pub finish_reason: Option<String>,
    /// Set on the last chunk when reported.
    pub usage: Option<Usage>,
}
