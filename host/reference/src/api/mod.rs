//! The reference model API, shaped like xAI's under `/v1`: a tier-gated `/models`,
//! `/chat/completions` and `/responses` (whole and SSE), bearer checks, a fault queue and
//! a request log.
//!
//! Both chat lanes validate requests as upstream does (400 on a malformed field, see
//! `validate`) and answer deterministically, agent features included: scripted tool calls
//! and answers to tool results (`tools`), images and returned reasoning shown in the echo
//! (`turn`), structured output (`format`), citations (`search`) and cached tokens
//! (`cache`). Each lane parses its body into a lane-neutral `turn::Turn` (`chat/request.rs`,
//! `responses/request.rs`); `reply::generate` answers it once for both.

mod cache;
mod chat;
mod format;
mod handle;
pub mod models;
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
use crate::http::{self, Lifetime, Outcome, RecordedRequest, Reply, RequestLog, Spawn, lock};
use crate::verify::{TokenVerifier, tier_claim};
use cache::PromptCache;
use models::CatalogueModel;

pub use handle::ApiHandle;
pub use tools::ToolStreamStyle;

/// How an invalid, expired or missing bearer is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Unauthenticated {
    /// 403 `{"code":"unauthenticated:bad-credentials", …}`, as xAI answers.
    #[default]
    XaiForbidden,
    /// 401 with `WWW-Authenticate: Bearer error="invalid_token"`.
    Unauthorized,
}

/// How the model API behaves.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Checks bearers; `None` accepts any non-empty bearer at `default_tier`.
    pub verifier: Option<TokenVerifier>,
    /// Tier of callers whose token has no `tier` claim (default 1).
    pub default_tier: u32,
    /// How bad bearers are refused.
    pub unauthenticated: Unauthenticated,
    /// Models and the tiers that unlock them (default [`models::xai_catalogue`]).
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
    /// Idle and maximum lifetime of the server.
    pub lifetime: Lifetime,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            verifier: None,
            default_tier: 1,
            unauthenticated: Unauthenticated::default(),
            catalogue: models::xai_catalogue(),
            reply_bytes: None,
            stream_chunk_bytes: 16,
            split_sse_chunks: true,
            tool_stream_style: ToolStreamStyle::default(),
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
}

/// Counters of what the model API saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiStats {
    /// Requests of any kind.
    pub requests: u64,
    /// `GET /v1/models` and `/v1/models/{id}`.
    pub models_requests: u64,
    /// `POST /v1/chat/completions`.
    pub chat_completions: u64,
    /// `POST /v1/responses`.
    pub responses: u64,
    /// Successful streamed answers (either lane).
    pub streams: u64,
    /// Requests refused for a missing or bad bearer.
    pub unauthenticated: u64,
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
    /// SHA-256 of every bearer presented, and of those the test asked to refuse.
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
    stats: &'a Mutex<ApiStats>,
    /// The request itself, for its headers.
    request: &'a RecordedRequest,
    cache: &'a PromptCache,
    /// The style current when the request arrived.
    tool_stream_style: ToolStreamStyle,
    tier: u32,
    seq: u64,
    now: u64,
}

impl Ctx<'_> {
    fn note_stream(&self) {
        lock(self.stats).streams += 1;
    }

    fn note_tier_denied(&self) {
        lock(self.stats).tier_denied += 1;
    }
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
            config,
            seen: Mutex::default(),
            denied: Mutex::default(),
            stats: Mutex::default(),
            seq: AtomicU64::new(1),
            faults: FaultQueue::default(),
            log: log.clone(),
        });
        let handler_shared = Arc::downgrade(&shared);
        let running = http::start(spawn, shared.config.lifetime, log, move |req| {
            let shared = handler_shared.upgrade();
            async move {
                match shared {
                    Some(shared) => dispatch(shared, req).await,
                    None => Err(http::Hangup),
                }
            }
        })?;
        Ok(ApiHandle { shared, running })
    }
}

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

async fn dispatch(shared: Arc<ApiShared>, req: RecordedRequest) -> Outcome {
    lock(&shared.stats).requests += 1;
    let Some(route) = route_of(&req) else {
        let reply = xai_error(
            404,
            "Some requested entity was not found",
            "No such endpoint",
        );
        return Ok(reply.render(&Default::default(), false));
    };
    let wants_sse = req
        .json()
        .and_then(|b| b.get("stream").and_then(Value::as_bool))
        .unwrap_or(false);
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

fn handle(shared: &ApiShared, route: Route, req: &RecordedRequest) -> Reply {
    {
        let mut stats = lock(&shared.stats);
        match route {
            Route::Models => stats.models_requests += 1,
            Route::ChatCompletions => stats.chat_completions += 1,
            _ => stats.responses += 1,
        }
    }
    let tier = match authenticate(shared, req) {
        Ok(tier) => tier,
        Err(reply) => {
            lock(&shared.stats).unauthenticated += 1;
            return reply;
        }
    };
    let ctx = Ctx {
        config: &shared.config,
        stats: &shared.stats,
        request: req,
        cache: &shared.cache,
        tool_stream_style: *lock(&shared.tool_stream_style),
        tier,
        seq: shared.seq.fetch_add(1, Ordering::Relaxed),
        now: http::unix_now(),
    };
    let method = req.method.as_str();
    let reply = match (route, method) {
        (Route::Models, "GET") => match req.path.strip_prefix("/v1/models/") {
            Some(id) => models::get(&ctx, id),
            None => models::list(&ctx),
        },
        (Route::ChatCompletions | Route::Responses, "POST") => {
            let Some(body) = req.json() else {
                lock(&shared.stats).invalid_requests += 1;
                return invalid_argument("Failed to parse the request body as JSON");
            };
            if route == Route::ChatCompletions {
                chat::handle(&ctx, &body)
            } else {
                responses::handle(&ctx, &body)
            }
        }
        _ => xai_error(405, "Method not allowed", "Method not allowed"),
    };
    if let Reply::Full { status: 400, .. } = reply {
        lock(&shared.stats).invalid_requests += 1;
    }
    reply
}

/// The caller's tier, or the refusal.
fn authenticate(shared: &ApiShared, req: &RecordedRequest) -> Result<u32, Reply> {
    let refuse = |why: &str| match shared.config.unauthenticated {
        Unauthenticated::XaiForbidden => Err(xai_error(
            403,
            "unauthenticated:bad-credentials",
            &format!("Could not authenticate the request: {why}."),
        )),
        Unauthenticated::Unauthorized => Err(Reply::json(
            401,
            &json!({"error": {"message": format!("Invalid bearer token: {why}"),
                              "type": "invalid_request_error", "code": "invalid_token"}}),
        )
        .with_header("www-authenticate", "Bearer error=\"invalid_token\"")),
    };
    let Some(token) = req.bearer() else {
        return refuse("no bearer token");
    };
    let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    if lock(&shared.denied).contains(&digest) {
        return refuse("token refused");
    }
    {
        let mut seen = lock(&shared.seen);
        if seen.len() < 100_000 {
            seen.insert(digest);
        }
    }
    let verifier = shared
        .verifier
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    match verifier {
        None => Ok(shared.config.default_tier),
        Some(verifier) => match verifier.verify(token) {
            Ok(claims) => Ok(tier_claim(&claims).unwrap_or(shared.config.default_tier)),
            Err(e) => refuse(&e.to_string()),
        },
    }
}
