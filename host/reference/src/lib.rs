//! Embedded reference servers for conformance runs and tests, all on 127.0.0.1. They follow
//! the wire contract observed of xAI's live service (`shared/reference/xai-wire-2026.md`;
//! `host/reference/README.md` lists what is a guess and what cannot be emulated):
//!
//! - [`AuthServer`]: an RFC 8628 authorization server laid out like `auth.x.ai` (discovery,
//!   JWKS, device authorization, token endpoint with pacing, rotating refresh tokens whose
//!   reuse revokes the whole `(client id, account)` family ([`RefreshFamily`]), transient
//!   refresh failures ([`RefreshFailure`]), revocation), driven by the test through its
//!   [`AuthHandle`]. Access tokens carry the `tier` claim, an enum ([`Tier`]).
//! - [`ApiServer`]: a model API shaped like `api.x.ai/v1` (its catalogue, chat completions
//!   and the Responses API, whole and streamed; an expired token is 403
//!   `unauthenticated:bad-credentials`), driven through [`ApiHandle`]. It accepts the
//!   authorization server's OAuth access tokens and configured API keys
//!   ([`ApiConfig::with_api_key`]), and can refuse either kind with a standing
//!   [`QuotaFault`]. Beside it, on its own port ([`ApiHandle::subscription_base`]), runs
//!   the subscription rail shaped like `cli-chat-proxy.grok.com/v1`: same tokens, no API
//!   keys, its own per-tier catalogue ([`rail_catalogue`]) echoed as `-build` variants, the
//!   version gate (426 below [`MIN_CLIENT_VERSION`] or for no [`known_cli_releases`]
//!   entry; `/models` not gated), its 401, streaming only, `/billing` in the proto3 credits
//!   shape ([`Billing`]) and `/user?include=subscription` ([`RailConfig`]).
//!   Both lanes validate requests as upstream does and answer deterministically with agent
//!   features: scripted tool calls (streamed as a [`ToolStreamStyle`] says) and answers to
//!   tool results, images and returned reasoning visible in the echo, reasoning output,
//!   structured output, citations and cached-token usage.
//!
//! Both take a [`Fault`] queue and keep a request log. Every server binds `127.0.0.1:0`,
//! stops when its handle is dropped, and stops by itself after an idle period or a maximum
//! lifetime ([`Lifetime`]), so none can outlive a test run.
//!
//! ```no_run
//! # async fn demo() -> Result<(), provider_reference::Error> {
//! use provider_reference::{ApiConfig, ApiServer, AuthConfig, AuthServer};
//! let auth = AuthServer::start(AuthConfig { interval: 0, ..AuthConfig::default() }).await?;
//! let api = ApiServer::start(ApiConfig::for_auth(&auth)).await?;
//! // Point the component at auth.issuer() and api.base_url(); approve its login with
//! // auth.approve(&auth.latest_user_code().unwrap(), 1, "user-1")?; (1 = SuperGrok)
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod api;
mod auth;
mod body;
mod error;
mod faults;
mod http;
mod tier;
mod verify;

pub use api::models::{
    CatalogueModel, ModelKind, model_ids_for_tier, rail_catalogue, xai_catalogue,
};
pub use api::{
    ApiConfig, ApiHandle, ApiKey, ApiServer, ApiStats, Billing, BillingConfig, CredentialScope,
    GROK_CLI_TOKEN_AUTH, KeyAccess, MIN_CLIENT_VERSION, PeriodType, ProductUsage, QuotaFault,
    RailConfig, RailRefusal, RailStats, ToolStreamStyle, Unauthenticated, UsagePeriod,
    known_cli_releases, random_api_key,
};
pub use auth::{
    AuthConfig, AuthHandle, AuthServer, AuthStats, IssuedTokens, RefreshFailure, RefreshFamily,
    XAI_CLIENT_ID,
};
pub use error::{Error, Result, VerifyError};
pub use faults::{CannedResponse, Fault, Route};
pub use http::{Lifetime, RecordedRequest};
pub use tier::{Tier, Tiers};
pub use verify::{Claims, TokenVerifier, tier_claim};
