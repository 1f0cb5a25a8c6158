//! # provider-serve
//!
//! An OpenAI-compatible HTTP API in front of model-provider plugin sessions, as an axum
//! [`Router`] an embedder nests in its own app. Every request goes through the plugin's
//! exports (login state, refresh, lanes and the error table stay the plugin's): the API
//! itself never talks upstream. `provider-host serve` is one embedder of it (it adds the
//! listener, TLS, signals and the `serve-key` commands).
//!
//! ## Routes
//!
//! | Route | What |
//! |---|---|
//! | `GET /v1/models`, `GET /v1/models/{id}` | the tenant's models (every enabled route's, or `X-Provider-Route`'s), one model, or 404 `model_not_found` |
//! | `GET /v1/usage[?route=NAME]` | the tenant's quota on a route ([`usage_json`]'s shape); sets `serve_quota_used_percent{route}` |
//! | `POST /v1/chat/completions` | Chat Completions, whole or streamed (SSE with keep-alive) |
//! | `POST /v1/responses` | the Responses API, whole or streamed (`response.*` events) |
//! | `POST /v1/messages` | Anthropic's Messages API, whole or streamed; key also as `x-api-key`, errors in Anthropic's shape |
//! | `POST /v1/messages/count_tokens` | a local estimate of a Messages request's input tokens (never upstream) |
//! | `GET /healthz` | `{"ok": true}`, no key |
//! | `GET /metrics` | the [`Metrics`] given, in the OpenMetrics text format, no key |
//!
//! Anything else is 404 in OpenAI's error shape. A request names its tenant by its key
//! (`Authorization: Bearer …`), resolved by the [`TenantResolver`] given ([`ServeKeys`],
//! salted hashes in the runtime's secret store, is the default one), and its route by the
//! `X-Provider-Route` header, else its model's prefix, else the tenant's default route.
//!
//! ## Public surface
//!
//! - [`router`] and [`ServeState`]: the routes over a runtime's [`SessionPool`] (sessions
//!   reused per tenant, cancel-safe: a client that goes away mid-call drops that call's
//!   instance, and is logged and counted as 499);
//! - [`TenantResolver`], and [`ServeKeys`] ([`keys`]) implementing it;
//! - [`Metrics`] ([`metrics`]): the registry `/metrics` scrapes, and [`RefreshCounting`],
//!   a wrapper of the runtime's HTTP client that counts the plugin's token refreshes in it;
//! - [`openai`]: the Chat Completions request body mapped onto the WIT's `chat-request`
//!   (also what `provider-host chat --request` reads).
//!
//! ## Embedding
//!
//! An embedder builds its own runtime and pool, and nests the routes under a prefix of its
//! own app (`/gateway/v1/chat/completions` here):
//!
//! ```no_run
//! use std::path::PathBuf;
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use provider_runtime::{HostConfig, PoolOptions, Runtime, RuntimeOptions, SessionPool};
//! use provider_serve::{Metrics, RefreshCounting, ServeKeys, ServeState};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let metrics = Metrics::new();
//! let mut options = RuntimeOptions::new(PathBuf::from("provider.wasm"), "/var/lib/my-app");
//! // The plugin's token refreshes, counted in the same registry `/metrics` shows.
//! let client = provider_runtime::default_http_client(options.limits.http.connect_timeout);
//! options.http_client = Some(Arc::new(RefreshCounting::new(client, metrics.clone())));
//! let keys = ServeKeys::open(&options.state_dir, options.secrets.as_ref())?;
//! let runtime = Runtime::new(options)?;
//! // This embedder trusts the component it runs: the plugin's default route is granted.
//! let config = HostConfig::new()?.grant_default_route();
//! let pool = SessionPool::new(runtime, config, PoolOptions::default());
//! let state = ServeState::new(pool, Arc::new(keys), metrics)
//!     .with_keepalive(Duration::from_secs(15));
//!
//! let app = axum::Router::new()
//!     .route("/", axum::routing::get(|| async { "my app" }))
//!     .nest("/gateway", provider_serve::router(state));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await?;
//! # Ok(())
//! # }
//! ```
//!
//! `examples/nest.rs` is this embedding as a program (built by `cargo test`); the crate's
//! router tests nest the routes the same way.

#![deny(missing_docs)]

mod auth;
pub mod keys;
pub mod metrics;
pub mod openai;
mod routes;
mod turn;
mod wire;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};
use provider_runtime::bindings::types::QuotaReport;
use provider_runtime::{HostError, SessionPool};
use serde_json::json;

pub use auth::TenantResolver;
pub use keys::ServeKeys;
pub use metrics::{Metrics, RefreshCounting};
use wire::ApiError;

/// A quota report as JSON: what `GET /v1/usage` answers (and `provider-host usage`
/// prints): the share of the allowance used, its period and reset, pay-as-you-go cap and
/// use and prepaid balance in US dollars, a one-line `summary`, and `known: false` when
/// upstream reported nothing.
pub fn usage_json(report: &QuotaReport) -> serde_json::Value {
    wire::usage::quota(report)
}

/// The default interval of SSE keep-alive comments ([`ServeState::with_keepalive`]).
pub const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(15);

/// What the routes share: the sessions, the key resolver, the metrics and the keep-alive
/// interval.
pub struct ServeState {
    sessions: SessionPool,
    tenants: Arc<dyn TenantResolver>,
    metrics: Metrics,
    keepalive: Duration,
    /// `/v1/messages`' model aliases (`claude-…` names to Grok model ids).
    model_aliases: wire::anthropic::Aliases,
}

impl ServeState {
    /// Routes over `sessions`, naming tenants by `tenants`, counting in `metrics` (which
    /// `GET /metrics` shows), with [`DEFAULT_KEEPALIVE`].
    pub fn new(sessions: SessionPool, tenants: Arc<dyn TenantResolver>, metrics: Metrics) -> Self {
        Self {
            sessions,
            tenants,
            metrics,
            keepalive: DEFAULT_KEEPALIVE,
            model_aliases: Default::default(),
        }
    }

    /// This state with another keep-alive interval: how often a stream waiting for its next
    /// event sends an SSE comment (proxies cut idle connections after 60 to 100 s), and how
    /// long a stream's response head waits for upstream's before it goes out anyway (at
    /// least a millisecond).
    pub fn with_keepalive(mut self, interval: Duration) -> Self {
        self.keepalive = interval.max(Duration::from_millis(1));
        self
    }

    /// This state with model aliases: each `(alias, model)` lets `POST /v1/messages` name
    /// `model` (a Grok model id, prefixed or not) as `alias` (clients that insist on
    /// `claude-…` names: Claude Code's defaults, its small/fast model). `GET /v1/models`
    /// lists them after the models.
    pub fn with_model_aliases(
        mut self,
        aliases: impl IntoIterator<Item = (String, String)>,
    ) -> Self {
        self.model_aliases.extend(aliases);
        self
    }

    /// The sessions the routes lease.
    pub fn sessions(&self) -> &SessionPool {
        &self.sessions
    }

    /// The metrics the routes count in.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// A host or plugin error as the answer to a client, counted in
    /// `serve_upstream_errors`.
    fn host_error(&self, e: &HostError, tenant: &str) -> ApiError {
        self.metrics.upstream_error(e.code().as_str());
        ApiError::from_host(e, tenant)
    }
}

type Shared = Arc<ServeState>;

/// The routes (see the crate's docs) over `state`, with the request metrics' middleware:
/// a router with no state left to give, to serve or to nest in an app.
pub fn router(state: ServeState) -> Router {
    let metrics = state.metrics.clone();
    Router::new()
        .route("/v1/models", get(routes::models::list))
        .route("/v1/models/{*id}", get(routes::models::model))
        .route("/v1/usage", get(routes::usage::usage))
        .route("/v1/chat/completions", post(routes::chat::completions))
        .route("/v1/responses", post(routes::responses::create))
        .route("/v1/messages", post(routes::messages::create))
        .route(
            "/v1/messages/count_tokens",
            post(routes::messages::count_tokens),
        )
        .route(
            "/healthz",
            get(|| async { axum::Json(json!({"ok": true})) }),
        )
        // No key: counts, routes, statuses and error codes only (see `metrics`).
        .route("/metrics", get(metrics::scrape))
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                "not_found",
                "no such endpoint",
            )
        })
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            metrics::track,
        ))
        .with_state(Arc::new(state))
}
