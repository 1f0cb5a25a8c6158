//! Sans-IO logic of the "Sign in with Grok" model provider.
//!
//! Everything that talks to the outside goes through the traits in [`io`], so this
//! crate builds natively for tests, benchmarks and fuzzers, and for `wasm32-wasip2`
//! inside the plugin component.
//!
//! The entry point is [`Provider`]: one method per export of the WIT
//! `model-provider` interface, plus [`ChatStream`] for the `chat-stream` resource.
//! The other modules are the protocol pieces it is built from, public so that they can
//! be tested and fuzzed on their own.
#![deny(missing_docs)]

pub mod api_error;
pub mod chat;
pub mod config;
pub mod device;
pub mod discovery;
pub mod error;
pub mod form;
pub mod http;
pub mod io;
pub mod json;
pub mod jwt;
pub mod models;
pub mod oauth;
pub mod origin;
pub mod provider;
pub mod redact;
pub mod retry_after;
pub mod sse;
pub mod stream;
pub mod tier;
pub mod token;
pub mod types;

pub use config::{DEFAULT_MODEL_ID, MODEL_PREFIX, ProviderConfig};
pub use error::ProviderError;
pub use io::{
    Clock, HttpRequest, HttpResponse, Method, Patience, ResponseBody, SecretStore, StoreError,
    Transport, TransportError,
};
pub use provider::Provider;
pub use stream::ChatStream;
pub use tier::tier_name;
pub use token::Credentials;
pub use types::{
    ChatChunk, ChatReply, ChatRequest, Citation, ConnectionStatus, ContentPart, DevicePrompt,
    FinishReason, FunctionTool, Image, ImageDetail, ImageSource, JsonSchemaFormat, Lane,
    LogoutReport, Message, Model, ModelList, PendingLogin, PollOutcome, ReasoningItem,
    ResponseFormat, Role, ThinkingEffort, ToolCall, ToolChoice, Usage,
};
