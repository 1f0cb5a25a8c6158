//! The reference model API, shaped like xAI's under `/v1`: a tier-gated `/models`,
//! `/chat/completions` and `/responses` (whole and SSE), bearer checks (OAuth access tokens
//! and API keys, see `credential`), standing quota refusals (`quota`), a fault queue and a
//! request log; and beside it, on its own port, the subscription rail (`rail`) that xAI's
//! CLI uses with the same OAuth tokens.
//!
//! Both chat lanes validate requests as upstream does (400 on a malformed field, see
//! `validate`) and answer deterministically, agent features included: scripted tool calls
//! and answers to tool results (`tools`), images and returned reasoning shown in the echo
//! (`turn`), structured output (`format`), citations (`search`) and cached tokens
//! (`cache`). Each lane parses its body into a lane-neutral `turn::Turn` (`chat/request.rs`,
//! `responses/request.rs`); `reply::generate` answers it once for both.

mod billing;
mod cache;
mod chat;
mod credential;
mod format;
mod handle;
pub mod models;
mod quota;
mod rail;
mod reply;
mod responses;
mod search;
mod sse;
mod tools;
mod turn;
mod validate;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::auth::AuthHandle;
use crate::error::Result;
use crate::faults::{self, FaultQueue, Route};
use crate::http::{
    self, Activity, Lifetime, Outcome, RecordedRequest, Reply, RequestLog, Spawn, lock,
};
use crate::verify::{TokenVerifier, tier_claim};
use cache::PromptCache;
use credential::{Keys, Kind};
use models::CatalogueModel;
use quota::Quotas;
use rail::RailShared;

pub use billing::{Billing, BillingConfig, PeriodType, ProductUsage, UsagePeriod};
pub use credential::{ApiKey, KeyAccess, random_api_key};
pub use handle::ApiHandle;
pub use quota::{CredentialScope, QuotaFault};
pub use rail::{
    GROK_CLI_TOKEN_AUTH, MIN_CLIENT_VERSION, RailConfig, RailRefusal, RailStats, known_cli_releases,
};
pub use tools::ToolStreamStyle;

/// How an invalid, expired or missing bearer is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Unauthenticated {
    /// 403 `{"code":"unauthenticated:bad-credentials","error":"The OAuth2 access token could
    /// not be validated."}`, as api.x.ai answers an expired or invalid OAuth token (not
    /// 401: reference doc §4).
    #[default]
    XaiForbidden,
    /// 401 with `WWW-Authenticate: Bearer error="invalid_token"`.
    Unauthorized,
}

/// How the model API behaves.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Checks bearers; `None` accepts any non-empty bearer at `default_tier` (but API keys:
    /// a bearer shaped like one, `xai-` without a `.`, is always looked up in `api_keys`).
    pub verifier: Option<TokenVerifier>,
    /// API keys served like a token of their tier (default none; add with
    /// [`ApiConfig::with_api_key`], or at run time with [`ApiHandle::add_api_key`]).
    pub api_keys: Vec<ApiKey>,
    /// Show an unknown API key whole in the 401's `error` instead of `xai-…` and its last
    /// four characters (default false; lets a test prove a client redacts upstream text).
    pub echo_api_key_in_errors: bool,
    /// Tier of callers whose token has no `tier` claim (default 1, SuperGrok).
    pub default_tier: u32,
    /// How bad bearers are refused on the API (the rail always answers its own 401).
    pub unauthenticated: Unauthenticated,
    /// The API's models and the tiers offered each (default [`models::xai_catalogue`]).
    pub catalogue: Vec<CatalogueModel>,
    /// Make every reply exactly this many bytes (default: just the echo).
    pub reply_bytes: Option<usize>,
    /// Bytes of text per streamed delta (default 16).
    pub stream_chunk_bytes: usize,
    /// Send every SSE event as two TCP-level chunks cut mid-event, possibly mid UTF-8
    /// character (default true: clients must buffer).
    pub split_sse_chunks: bool,
    /// How streams carry tool call arguments at start (change it at run time with
    /// [`ApiHandle::set_tool_stream_style`]).
    pub tool_stream_style: ToolStreamStyle,
    /// The subscription rail, started beside the API on its own port.
    pub rail: RailConfig,
    /// Idle and maximum lifetime of the server (both listeners: activity on either keeps
    /// both alive).
    pub lifetime: Lifetime,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            verifier: None,
            api_keys: Vec::new(),
            echo_api_key_in_errors: false,
            default_tier: 1,
            unauthenticated: Unauthenticated::default(),
            catalogue: models::xai_catalogue(),
            reply_bytes: None,
            stream_chunk_bytes: 16,
            split_sse_chunks: true,
            tool_stream_style: ToolStreamStyle::default(),
            rail: RailConfig::default(),
            lifetime: Lifetime::default(),
        }
    }
}

impl ApiConfig {
    /// Accept the tokens of this reference authorization server (signature, expiry,
    /// issuer, audience, revocation).
    pub fn for_auth(auth: &AuthHandle) -> Self {
        Self {
            verifier: Some(auth.verifier()),
            ..Self::default()
        }
    }

    /// Accept tokens signed by a key of this JWKS (ES256 or RS256), e.g. from the npm
    /// `oidc-provider` used by the interop tests.
    pub fn with_jwks(jwks_json: &str) -> Result<Self> {
        Ok(Self {
            verifier: Some(TokenVerifier::from_jwks_json(jwks_json)?),
            ..Self::default()
        })
    }

    /// Also accept this API key (`Authorization: Bearer <key>`), with the models of a tier
    /// (`3`) or exactly the listed ids (`vec!["grok-4.3".to_owned()]`); see [`KeyAccess`].
    pub fn with_api_key(mut self, key: impl Into<String>, access: impl Into<KeyAccess>) -> Self {
        self.api_keys.push(ApiKey {
            key: key.into(),
            access: access.into(),
        });
        self
    }
}

/// Counters of what the model API saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiStats {
    /// Requests of any kind.
    pub requests: u64,
    /// Requests whose bearer is an OAuth access token (anything not an API key, valid or
    /// not), counted on arrival, faults included.
    pub oauth_requests: u64,
    /// Requests whose bearer is an API key (configured, or shaped like one), counted on
    /// arrival, faults included.
    pub api_key_requests: u64,
    /// `GET /v1/models` and `/v1/models/{id}`.
    pub models_requests: u64,
    /// `POST /v1/chat/completions`.
    pub chat_completions: u64,
    /// `POST /v1/responses`.
    pub responses: u64,
    /// Successful streamed answers (either lane).
    pub streams: u64,
    /// Requests refused for a missing or bad bearer (unknown API keys included).
    pub unauthenticated: u64,
    /// Requests refused for an unknown API key (401 `unauthenticated:invalid-api-key`).
    pub invalid_api_keys: u64,
    /// Requests refused by a standing [`QuotaFault`].
    pub quota_refusals: u64,
    /// Requests refused by the tier gate.
    pub tier_denied: u64,
    /// Requests refused as invalid (400).
    pub invalid_requests: u64,
    /// Faults served from the queue.
    pub faults_served: u64,
}

struct ApiShared {
    config: ApiConfig,
    verifier: RwLock<Option<TokenVerifier>>,
    keys: Keys,
    quotas: Quotas,
    rail: RailShared,
    /// SHA-256 of every OAuth bearer presented, and of any bearer the test asked to refuse.
    seen: Mutex<HashSet<[u8; 32]>>,
    denied: Mutex<HashSet<[u8; 32]>>,
    stats: Mutex<ApiStats>,
    seq: AtomicU64,
    faults: FaultQueue,
    log: Arc<RequestLog>,
    tool_stream_style: Mutex<ToolStreamStyle>,
    cache: PromptCache,
}

/// What a handler knows about the call.
pub(crate) struct Ctx<'a> {
    config: &'a ApiConfig,
    /// The listener's counters (the API's or the rail's).
    stats: &'a Mutex<ApiStats>,
    /// The models this listener knows.
    catalogue: &'a [CatalogueModel],
    /// The request itself, for its headers.
    request: &'a RecordedRequest,
    cache: &'a PromptCache,
    /// The style current when the request arrived.
    tool_stream_style: ToolStreamStyle,
    /// What the caller's token tier or API key includes.
    access: KeyAccess,
    /// On the rail: the suffix of the model id its answers echo (`-build`, or
    /// `-build-free` for a free account: §2.5); `None` on the API.
    rail: Option<&'a str>,
    seq: u64,
    now: u64,
}

impl Ctx<'_> {
    /// The `model` an answer echoes for a request of `id`: the id itself on the API, the
    /// CLI variant (`grok-4.6-build`) on the rail (§2.5).
    fn echoed(&self, id: &str) -> String {
        match self.rail {
            Some(suffix) => format!("{id}{suffix}"),
            None => id.to_owned(),
        }
    }

    fn note_stream(&self) {
        lock(self.stats).streams += 1;
    }

    fn note_tier_denied(&self) {
        lock(self.stats).tier_denied += 1;
    }
}

/// api.x.ai's `error` for an expired or invalid OAuth token (reference doc §4).
const BAD_CREDENTIALS: &str = "The OAuth2 access token could not be validated.";

/// An authenticated OAuth caller.
pub(crate) struct Caller {
    /// The `tier` claim (or the configured default).
    tier: u32,
    /// The `sub` claim, when the token is verified and has one.
    subject: Option<String>,
}

/// xAI's error shape `{"code": …, "error": …}`.
pub(crate) fn xai_error(status: u16, code: &str, error: &str) -> Reply {
    Reply::json(status, &json!({"code": code, "error": error}))
}

/// 400 as xAI answers a malformed request.
fn invalid_argument(error: &str) -> Reply {
    xai_error(400, "Client specified an invalid argument", error)
}

/// Starts reference model APIs.
pub struct ApiServer;

impl ApiServer {
    /// Start on the current tokio runtime, bound to 127.0.0.1 on a free port.
    pub async fn start(config: ApiConfig) -> Result<ApiHandle> {
        Self::launch(config, Spawn::Current)
    }

    /// Start on a dedicated thread with its own runtime (for callers without one).
    pub fn start_background(config: ApiConfig) -> Result<ApiHandle> {
        Self::launch(config, Spawn::Thread)
    }

    fn launch(config: ApiConfig, spawn: Spawn) -> Result<ApiHandle> {
        let log = Arc::new(RequestLog::default());
        let shared = Arc::new(ApiShared {
            verifier: RwLock::new(config.verifier.clone()),
            tool_stream_style: Mutex::new(config.tool_stream_style),
            cache: PromptCache::default(),
            keys: Keys::new(&config.api_keys, config.echo_api_key_in_errors),
            quotas: Quotas::default(),
            rail: RailShared::new(&config),
            config,
            seen: Mutex::default(),
            denied: Mutex::default(),
            stats: Mutex::default(),
            seq: AtomicU64::new(1),
            faults: FaultQueue::default(),
            log: log.clone(),
        });
        let activity = Activity::new();
        let handler_shared = Arc::downgrade(&shared);
        let running = http::start_with_activity(
            spawn,
            shared.config.lifetime,
            log,
            activity.clone(),
            move |req| {
                let shared = handler_shared.upgrade();
                async move {
                    match shared {
                        Some(shared) => dispatch(shared, req).await,
                        None => Err(http::Hangup),
                    }
                }
            },
        )?;
        let rail_shared = Arc::downgrade(&shared);
        let rail = http::start_with_activity(
            spawn,
            shared.config.lifetime,
            shared.rail.log.clone(),
            activity,
            move |req| {
                let shared = rail_shared.upgrade();
                async move {
                    match shared {
                        Some(shared) => rail::dispatch(shared, req).await,
                        None => Err(http::Hangup),
                    }
                }
            },
        )?;
        Ok(ApiHandle {
            shared,
            running,
            rail,
        })
    }
}

/// The endpoint of an API path (the rail adds `/billing`).
fn route_of(req: &RecordedRequest) -> Option<Route> {
    let path = req.path.strip_prefix("/v1")?;
    match path {
        "/models" => Some(Route::Models),
        p if p.starts_with("/models/") => Some(Route::Models),
        "/chat/completions" => Some(Route::ChatCompletions),
        "/responses" => Some(Route::Responses),
        _ => None,
    }
}

/// 404 for a path no endpoint serves.
fn no_such_endpoint() -> Reply {
    xai_error(
        404,
        "Some requested entity was not found",
        "No such endpoint",
    )
}

/// Count a request on arrival, by the kind of credential it presents.
fn note_arrival(shared: &ApiShared, stats: &Mutex<ApiStats>, req: &RecordedRequest) {
    let kind = req.bearer().map(|b| shared.keys.kind(b));
    let mut stats = lock(stats);
    stats.requests += 1;
    match kind {
        Some(Kind::OAuth) => stats.oauth_requests += 1,
        Some(Kind::ApiKey) => stats.api_key_requests += 1,
        None => {}
    }
}

/// Whether the body asks for a stream (so an oversized fault answers SSE).
fn wants_sse(req: &RecordedRequest) -> bool {
    req.json()
        .and_then(|b| b.get("stream").and_then(Value::as_bool))
        .unwrap_or(false)
}

async fn dispatch(shared: Arc<ApiShared>, req: RecordedRequest) -> Outcome {
    note_arrival(&shared, &shared.stats, &req);
    let Some(route) = route_of(&req) else {
        return Ok(no_such_endpoint().render(&Default::default(), false));
    };
    let wants_sse = wants_sse(&req);
    let split = shared.config.split_sse_chunks;
    let (outcome, faulted) = faults::serve(&shared.faults, route, wants_sse, split, || {
        handle(&shared, route, &req)
    })
    .await;
    if faulted {
        lock(&shared.stats).faults_served += 1;
    }
    outcome
}

/// Count a request on its endpoint.
fn note_endpoint(stats: &Mutex<ApiStats>, route: Route) {
    let mut stats = lock(stats);
    match route {
        Route::Models => stats.models_requests += 1,
        Route::ChatCompletions => stats.chat_completions += 1,
        Route::Responses => stats.responses += 1,
        _ => {}
    }
}

/// Whether a route generates tokens (what quotas refuse).
fn is_inference(route: Route) -> bool {
    matches!(route, Route::ChatCompletions | Route::Responses)
}

fn handle(shared: &ApiShared, route: Route, req: &RecordedRequest) -> Reply {
    note_endpoint(&shared.stats, route);
    let (kind, access) = match authenticate(shared, req) {
        Ok(caller) => caller,
        Err((kind, reply)) => {
            let mut stats = lock(&shared.stats);
            stats.unauthenticated += 1;
            if kind == Some(Kind::ApiKey) {
                stats.invalid_api_keys += 1;
            }
            return reply;
        }
    };
    if is_inference(route)
        && let Some(quota) = shared.quotas.api(kind)
    {
        lock(&shared.stats).quota_refusals += 1;
        return quota.reply();
    }
    let ctx = shared.ctx(
        &shared.stats,
        &shared.config.catalogue,
        &shared.cache,
        req,
        access,
        None,
    );
    serve_route(&ctx, route, req)
}

/// Answer an authenticated request on one of the routes both listeners share.
fn serve_route(ctx: &Ctx<'_>, route: Route, req: &RecordedRequest) -> Reply {
    let reply = match (route, req.method.as_str()) {
        (Route::Models, "GET") => match req.path.strip_prefix("/v1/models/") {
            Some(id) => models::get(ctx, id),
            None => models::list(ctx),
        },
        (Route::ChatCompletions | Route::Responses, "POST") => match req.json() {
            None => invalid_argument("Failed to parse the request body as JSON"),
            Some(body) if route == Route::ChatCompletions => chat::handle(ctx, &body),
            Some(body) => responses::handle(ctx, &body),
        },
        _ => xai_error(405, "Method not allowed", "Method not allowed"),
    };
    if let Reply::Full { status: 400, .. } = reply {
        lock(ctx.stats).invalid_requests += 1;
    }
    reply
}

impl ApiShared {
    /// The context of an authenticated request on one listener.
    fn ctx<'a>(
        &'a self,
        stats: &'a Mutex<ApiStats>,
        catalogue: &'a [CatalogueModel],
        cache: &'a PromptCache,
        request: &'a RecordedRequest,
        access: KeyAccess,
        rail: Option<&'a str>,
    ) -> Ctx<'a> {
        Ctx {
            config: &self.config,
            stats,
            catalogue,
            request,
            cache,
            tool_stream_style: *lock(&self.tool_stream_style),
            access,
            rail,
            seq: self.seq.fetch_add(1, Ordering::Relaxed),
            now: http::unix_now(),
        }
    }

    fn is_denied(&self, token: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        lock(&self.denied).contains(&digest)
    }

    /// A refused bearer, in the configured style.
    fn refuse_bearer(&self, why: &str) -> Reply {
        match self.config.unauthenticated {
            // The reason stays in our logs only: xAI's text is fixed (§4).
            Unauthenticated::XaiForbidden => {
                xai_error(403, "unauthenticated:bad-credentials", BAD_CREDENTIALS)
            }
            Unauthenticated::Unauthorized => Reply::json(
                401,
                &json!({"error": {"message": format!("Invalid bearer token: {why}"),
                                  "type": "invalid_request_error", "code": "invalid_token"}}),
            )
            .with_header("www-authenticate", "Bearer error=\"invalid_token\""),
        }
    }

    /// The caller of an OAuth access token, or the refusal.
    fn verify_oauth(&self, token: &str) -> Result<Caller, Reply> {
        if self.is_denied(token) {
            return Err(self.refuse_bearer("token refused"));
        }
        {
            let mut seen = lock(&self.seen);
            if seen.len() < 100_000 {
                seen.insert(Sha256::digest(token.as_bytes()).into());
            }
        }
        let verifier = self
            .verifier
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        match verifier {
            None => Ok(Caller {
                tier: self.config.default_tier,
                subject: None,
            }),
            Some(verifier) => match verifier.verify(token) {
                Ok(claims) => Ok(Caller {
                    tier: tier_claim(&claims).unwrap_or(self.config.default_tier),
                    subject: claims.get("sub").and_then(Value::as_str).map(str::to_owned),
                }),
                Err(e) => Err(self.refuse_bearer(&e.to_string())),
            },
        }
    }
}

/// The caller's credential kind and access, or the refusal (with the kind, when there
/// was a bearer).
fn authenticate(
    shared: &ApiShared,
    req: &RecordedRequest,
) -> Result<(Kind, KeyAccess), (Option<Kind>, Reply)> {
    let Some(token) = req.bearer() else {
        return Err((None, shared.refuse_bearer("no bearer token")));
    };
    match shared.keys.kind(token) {
        Kind::ApiKey => match shared.keys.access(token) {
            Some(access) if !shared.is_denied(token) => Ok((Kind::ApiKey, access)),
            _ => Err((Some(Kind::ApiKey), shared.keys.invalid(token))),
        },
        Kind::OAuth => match shared.verify_oauth(token) {
            Ok(caller) => Ok((Kind::OAuth, KeyAccess::Tier(caller.tier))),
            Err(reply) => Err((Some(Kind::OAuth), reply)),
        },
    }
}
