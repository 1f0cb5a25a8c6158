//! Anthropic's Messages API (`POST /v1/messages`, `POST /v1/messages/count_tokens`): the
//! request mapped onto the WIT's `chat-request`, the reply whole (a `message`) or as
//! Anthropic's stream events, the local token estimate, and errors in Anthropic's shape
//! (`{"type": "error", "error": {"type", "message"}}`).
//!
//! What has no Grok equivalent is refused by name (an unknown field, block or tool type,
//! `top_k`, `context_management`, server tools); what changes nothing of the answer is
//! accepted (`cache_control`, `metadata`, `service_tier`, citations sent back).
//!
//! One file per concern: [`request`] (the body, its mapping, the token estimate),
//! [`reply`] (whole and streamed), [`error`] (Anthropic's error shape).

use std::collections::BTreeMap;

mod error;
mod reply;
mod request;
#[cfg(test)]
mod tests;

pub use error::AnthropicError;
pub use reply::{EventWriter, whole};
pub use request::{Body, parse, resolve_model};

/// Model aliases: a name a client insists on (`claude-sonnet-4-5`) and the model it names
/// here (`grok-4.6`, or a prefixed id).
pub type Aliases = BTreeMap<String, String>;
