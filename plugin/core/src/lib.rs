//! Sans-IO logic of the "Sign in with Grok" model provider.
//!
//! Everything that talks to the outside goes through the traits in [`io`], so this
//! crate builds natively for tests, benchmarks and fuzzers, and for `wasm32-wasip2`
//! inside the plugin component.
//!
//! The entry point is [`Provider`]: one method per export of the WIT
//! `model-provider` interface, plus [`ChatStream`] for the `chat-stream` resource and
//! [`manifest()`] for the `manifest` export (which needs no effects at all). Its
//! [`Settings`] come from the manifest's defaults and the host's configuration.
//! The other modules are the protocol pieces it is built from, public so that they can
//! be tested and fuzzed on their own.
#![deny(missing_docs)]

pub mod api_error;
pub mod api_key;
pub mod chat;
pub mod device;
pub mod discovery;
pub mod error;
pub mod form;
pub mod http;
pub mod io;
pub mod json;
pub mod jwt;
pub mod manifest;
pub mod models;
pub mod oauth;
pub mod origin;
pub mod provider;
pub mod quota;
pub mod record;
/// The one redactor (crate `provider-redact`).
pub use provider_redact as redact;
pub mod retry_after;
pub mod routes;
pub mod settings;
pub mod sse;
pub mod stream;
pub mod tier;
pub mod token;
pub mod types;

pub use error::ProviderError;
pub use io::{
    Clock, HttpRequest, HttpResponse, Method, Patience, ResponseBody, SecretStore, StoreError,
    Transport, TransportError,
};
pub use manifest::manifest;
pub use provider::Provider;
pub use routes::{Route, RoutedModel};
pub use settings::Settings;
pub use stream::ChatStream;
pub use tier::tier_name;
pub use token::Credentials;
pub use types::{
    ApiKeyInfo, ChatChunk, ChatReply, ChatRequest, Citation, ConnectionStatus, ContentPart,
    CredentialKind, CreditBalance, DevicePrompt, FinishReason, FunctionTool, Image, ImageDetail,
    ImageSource, JsonSchemaFormat, Lane, LogoutReport, Message, Model, ModelList, PendingLogin,
    PluginManifest, PollOutcome, QuotaPeriod, QuotaReport, ReasoningItem, ResponseFormat, Role,
    RouteInfo, RouteStatus, Setting, SettingKind, ThinkingEffort, ToolCall, ToolChoice, Usage,
};
