//! The subscription rail, shaped like `cli-chat-proxy.grok.com/v1` (what xAI's own CLI
//! uses with the OAuth bearer): a second listener on its own loopback port, started with
//! the API and stopped with it.
//!
//! It accepts the API's OAuth access tokens (same verification, same denied tokens, same
//! tier catalogue plus [`RailConfig::extra_models`]) and no API keys, and it serves
//! `/models`, `/chat/completions` and `/responses` with the API's own handlers, so
//! scripted tools, reasoning and usage are identical. What differs, as reported (none of
//! it is documented by xAI, hence configurable):
//!
//! - every request needs `X-XAI-Token-Auth: <RailConfig::token_auth>`, a non-empty
//!   `x-grok-client-identifier` and a non-empty `x-grok-client-version`, else 403
//!   `{"code":"permission-denied", …}`;
//! - chat requests must stream (`stream: true`), may not store (`store: true`) and may not
//!   chain (`previous_response_id`): 400 otherwise;
//! - `GET /v1/billing?format=credits` reports the credit balance (see [`Billing`]).
//!
//! Checks run in this order: the headers, the bearer, a standing quota (inference only),
//! the body rules, then the lane. The rail has its own fault queue, request log, prompt
//! cache and counters ([`RailStats`]), so a test can tell which rail a client used.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::cache::PromptCache;
use super::credential::Kind;
use super::models::CatalogueModel;
use super::{
    ApiConfig, ApiShared, ApiStats, KeyAccess, invalid_argument, is_inference, no_such_endpoint,
    note_arrival, note_endpoint, serve_route, wants_sse, xai_error,
};
use crate::faults::{self, FaultQueue, Route};
use crate::http::{Outcome, RecordedRequest, Reply, RequestLog, form_value, lock, unix_now};

/// The `X-XAI-Token-Auth` value xAI's CLI sends.
pub const GROK_CLI_TOKEN_AUTH: &str = "xai-grok-cli";
/// Distinct paths counted in [`RailStats::requests_by_path`] (bounds memory).
const MAX_PATHS: usize = 1000;

/// What `GET /v1/billing?format=credits` answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Billing {
    /// 200 `{"remaining": …, "total": …, "unit": "credits", "resets_at": …}`.
    Credits {
        /// Credits left.
        remaining: f64,
        /// Credits of the period.
        total: f64,
        /// When the period resets (unix seconds).
        resets_at: u64,
    },
    /// 404 `{"code":"Some requested entity was not found", …}` (no billing endpoint).
    NotFound,
    /// 500 with an xAI-style body.
    ServerError,
    /// 200 JSON of the wrong shape: `{"foo":1}`.
    WrongShape,
    /// 200 `application/json` whose body is not JSON.
    NotJson,
}

impl Default for Billing {
    /// 1000 of 1000 credits, resetting in 30 days.
    fn default() -> Self {
        Billing::Credits {
            remaining: 1000.0,
            total: 1000.0,
            resets_at: unix_now() + 30 * 86_400,
        }
    }
}

/// How the subscription rail behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct RailConfig {
    /// The `X-XAI-Token-Auth` value required (default [`GROK_CLI_TOKEN_AUTH`]).
    pub token_auth: String,
    /// Models the rail lists and serves beside the API's catalogue, e.g. `-build` variants
    /// (default none).
    pub extra_models: Vec<CatalogueModel>,
    /// Also refuse a `/responses` request that leaves `store` out (default false: only
    /// `store: true` is refused), for when upstream defaults to storing.
    pub require_store_false: bool,
    /// The initial billing answer (change it with [`super::ApiHandle::set_rail_billing`]).
    pub billing: Billing,
}

impl Default for RailConfig {
    fn default() -> Self {
        Self {
            token_auth: GROK_CLI_TOKEN_AUTH.into(),
            extra_models: Vec::new(),
            require_store_false: false,
            billing: Billing::default(),
        }
    }
}

/// Why the rail refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RailRefusal {
    /// 403: no `X-XAI-Token-Auth`.
    MissingTokenAuth,
    /// 403: `X-XAI-Token-Auth` is not [`RailConfig::token_auth`].
    WrongTokenAuth,
    /// 403: no or empty `x-grok-client-identifier`.
    MissingClientIdentifier,
    /// 403: no or empty `x-grok-client-version`.
    MissingClientVersion,
    /// 401: the bearer is an API key.
    ApiKey,
    /// No, or an invalid, OAuth bearer (answered as the API answers it).
    Unauthenticated,
    /// 400: `stream` is not `true`.
    NotStreaming,
    /// 400: `store: true` (or `store` left out, under [`RailConfig::require_store_false`]).
    Store,
    /// 400: a `previous_response_id`.
    PreviousResponseId,
    /// A standing quota refusal ([`super::ApiHandle::set_rail_quota_fault`]).
    Quota,
}

impl RailRefusal {
    /// Whether the header gate refused (403 `permission-denied`).
    pub fn is_permission_denied(self) -> bool {
        matches!(
            self,
            Self::MissingTokenAuth
                | Self::WrongTokenAuth
                | Self::MissingClientIdentifier
                | Self::MissingClientVersion
        )
    }
}

/// Counters of what the subscription rail saw. Requests to the rail never move
/// [`ApiStats`], and requests to the API never move these.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RailStats {
    /// Requests of any kind.
    pub requests: u64,
    /// Requests per path (without the query), e.g. `/v1/responses`.
    pub requests_by_path: BTreeMap<String, u64>,
    /// Requests whose bearer is an OAuth access token (valid or not).
    pub oauth_requests: u64,
    /// Requests whose bearer is an API key (all refused).
    pub api_key_requests: u64,
    /// `GET /v1/models` and `/v1/models/{id}`.
    pub models_requests: u64,
    /// `POST /v1/chat/completions`.
    pub chat_completions: u64,
    /// `POST /v1/responses`.
    pub responses: u64,
    /// `GET /v1/billing`.
    pub billing_requests: u64,
    /// Successful streamed answers.
    pub streams: u64,
    /// Requests refused by the header gate (403 `permission-denied`), any reason.
    pub permission_denied: u64,
    /// Requests refused for a missing or bad bearer, API keys included.
    pub unauthenticated: u64,
    /// Requests refused by the tier gate.
    pub tier_denied: u64,
    /// Requests answered 400 (the rail's body rules included).
    pub invalid_requests: u64,
    /// Faults served from the rail's queue.
    pub faults_served: u64,
    /// Refusals by reason.
    pub refusals: BTreeMap<RailRefusal, u64>,
}

impl RailStats {
    /// Refusals for this reason.
    pub fn refused(&self, reason: RailRefusal) -> u64 {
        self.refusals.get(&reason).copied().unwrap_or(0)
    }
}

/// The rail's state inside the API's.
pub(super) struct RailShared {
    /// The API's catalogue and the extra models.
    catalogue: Vec<CatalogueModel>,
    pub(super) log: Arc<RequestLog>,
    pub(super) faults: FaultQueue,
    /// Counters the lanes keep (as on the API).
    lanes: Mutex<ApiStats>,
    counters: Mutex<Counters>,
    cache: PromptCache,
    pub(super) billing: Mutex<Billing>,
}

/// Counters only the rail has.
#[derive(Default)]
struct Counters {
    by_path: BTreeMap<String, u64>,
    billing: u64,
    refusals: BTreeMap<RailRefusal, u64>,
}

impl RailShared {
    pub(super) fn new(config: &ApiConfig) -> Self {
        let mut catalogue = config.catalogue.clone();
        catalogue.extend(config.rail.extra_models.iter().cloned());
        Self {
            catalogue,
            log: Arc::default(),
            faults: FaultQueue::default(),
            lanes: Mutex::default(),
            counters: Mutex::default(),
            cache: PromptCache::default(),
            billing: Mutex::new(config.rail.billing.clone()),
        }
    }

    pub(super) fn stats(&self) -> RailStats {
        let lanes = lock(&self.lanes).clone();
        let counters = lock(&self.counters);
        RailStats {
            requests: lanes.requests,
            requests_by_path: counters.by_path.clone(),
            oauth_requests: lanes.oauth_requests,
            api_key_requests: lanes.api_key_requests,
            models_requests: lanes.models_requests,
            chat_completions: lanes.chat_completions,
            responses: lanes.responses,
            billing_requests: counters.billing,
            streams: lanes.streams,
            permission_denied: counters
                .refusals
                .iter()
                .filter(|(r, _)| r.is_permission_denied())
                .map(|(_, n)| n)
                .sum(),
            unauthenticated: lanes.unauthenticated,
            tier_denied: lanes.tier_denied,
            invalid_requests: lanes.invalid_requests,
            faults_served: lanes.faults_served,
            refusals: counters.refusals.clone(),
        }
    }

    /// Count a refusal and pass its answer on.
    fn refuse(&self, reason: RailRefusal, reply: Reply) -> Reply {
        *lock(&self.counters).refusals.entry(reason).or_default() += 1;
        let mut lanes = lock(&self.lanes);
        match reason {
            RailRefusal::ApiKey | RailRefusal::Unauthenticated => lanes.unauthenticated += 1,
            RailRefusal::NotStreaming | RailRefusal::Store | RailRefusal::PreviousResponseId => {
                lanes.invalid_requests += 1
            }
            _ => {}
        }
        reply
    }
}

fn route_of(req: &RecordedRequest) -> Option<Route> {
    match req.path.as_str() {
        "/v1/billing" => Some(Route::Billing),
        _ => super::route_of(req),
    }
}

pub(super) async fn dispatch(shared: Arc<ApiShared>, req: RecordedRequest) -> Outcome {
    let rail = &shared.rail;
    note_arrival(&shared, &rail.lanes, &req);
    {
        let mut counters = lock(&rail.counters);
        if counters.by_path.len() < MAX_PATHS || counters.by_path.contains_key(&req.path) {
            *counters.by_path.entry(req.path.clone()).or_default() += 1;
        }
    }
    let Some(route) = route_of(&req) else {
        return Ok(no_such_endpoint().render(&Default::default(), false));
    };
    let split = shared.config.split_sse_chunks;
    let (outcome, faulted) = faults::serve(&rail.faults, route, wants_sse(&req), split, || {
        handle(&shared, route, &req)
    })
    .await;
    if faulted {
        lock(&rail.lanes).faults_served += 1;
    }
    outcome
}

fn handle(shared: &ApiShared, route: Route, req: &RecordedRequest) -> Reply {
    let rail = &shared.rail;
    note_endpoint(&rail.lanes, route);
    if route == Route::Billing {
        lock(&rail.counters).billing += 1;
    }
    if let Err((reason, why)) = check_headers(&shared.config.rail.token_auth, req) {
        return rail.refuse(reason, xai_error(403, "permission-denied", &why));
    }
    let tier = match req.bearer() {
        None => {
            let reply = shared.refuse_bearer("no bearer token");
            return rail.refuse(RailRefusal::Unauthenticated, reply);
        }
        Some(token) if shared.keys.kind(token) == Kind::ApiKey => {
            let reply = xai_error(
                401,
                "unauthenticated:api-key-not-accepted",
                "API keys are not accepted on this endpoint: sign in with your Grok subscription.",
            );
            return rail.refuse(RailRefusal::ApiKey, reply);
        }
        Some(token) => match shared.verify_oauth(token) {
            Ok(tier) => tier,
            Err(reply) => return rail.refuse(RailRefusal::Unauthenticated, reply),
        },
    };
    if route == Route::Billing {
        return billing(&rail.billing, req);
    }
    if is_inference(route)
        && let Some(quota) = shared.quotas.rail()
    {
        return rail.refuse(RailRefusal::Quota, quota.reply());
    }
    if is_inference(route)
        && req.method == "POST"
        && let Some(body) = req.json()
        && let Err((reason, why)) = check_body(&body, route, shared.config.rail.require_store_false)
    {
        return rail.refuse(reason, invalid_argument(&why));
    }
    let access = KeyAccess::Tier(tier);
    let ctx = shared.ctx(&rail.lanes, &rail.catalogue, &rail.cache, req, access);
    serve_route(&ctx, route, req)
}

/// The header gate: the first missing or wrong header.
fn check_headers(token_auth: &str, req: &RecordedRequest) -> Result<(), (RailRefusal, String)> {
    let present = |name: &str| req.header(name).map(str::trim).filter(|v| !v.is_empty());
    match present("x-xai-token-auth") {
        None => {
            return Err((
                RailRefusal::MissingTokenAuth,
                "This endpoint serves the Grok CLI only: the X-XAI-Token-Auth header is missing."
                    .into(),
            ));
        }
        Some(v) if v != token_auth => {
            return Err((
                RailRefusal::WrongTokenAuth,
                "This endpoint serves the Grok CLI only: X-XAI-Token-Auth is not accepted.".into(),
            ));
        }
        Some(_) => {}
    }
    if present("x-grok-client-identifier").is_none() {
        return Err((
            RailRefusal::MissingClientIdentifier,
            "The x-grok-client-identifier header is required.".into(),
        ));
    }
    if present("x-grok-client-version").is_none() {
        return Err((
            RailRefusal::MissingClientVersion,
            "The x-grok-client-version header is required.".into(),
        ));
    }
    Ok(())
}

/// The rail's body rules (a body that is not JSON is left to the lane's 400).
fn check_body(
    body: &Value,
    route: Route,
    require_store_false: bool,
) -> Result<(), (RailRefusal, String)> {
    if body.get("stream") != Some(&Value::Bool(true)) {
        return Err((
            RailRefusal::NotStreaming,
            "This endpoint only streams: set \"stream\": true.".into(),
        ));
    }
    let store = body.get("store");
    let store_left_out = store.is_none_or(Value::is_null);
    if store == Some(&Value::Bool(true))
        || (require_store_false && route == Route::Responses && store_left_out)
    {
        return Err((
            RailRefusal::Store,
            "Stored responses are not supported on this endpoint: set \"store\": false.".into(),
        ));
    }
    if body
        .get("previous_response_id")
        .is_some_and(|v| !v.is_null())
    {
        return Err((
            RailRefusal::PreviousResponseId,
            "previous_response_id is not supported on this endpoint: send the whole conversation."
                .into(),
        ));
    }
    Ok(())
}

/// `GET /v1/billing?format=credits`.
fn billing(state: &Mutex<Billing>, req: &RecordedRequest) -> Reply {
    if req.method != "GET" {
        return xai_error(405, "Method not allowed", "Method not allowed");
    }
    let format = req
        .query
        .as_deref()
        .and_then(|q| form_value(q.as_bytes(), "format"));
    if format.as_deref() != Some("credits") {
        return invalid_argument("Invalid 'format': supported is credits");
    }
    match lock(state).clone() {
        Billing::Credits {
            remaining,
            total,
            resets_at,
        } => Reply::json(
            200,
            &json!({"remaining": remaining, "total": total, "unit": "credits",
                    "resets_at": resets_at}),
        ),
        Billing::NotFound => no_such_endpoint(),
        Billing::ServerError => xai_error(
            500,
            "Internal error",
            "The service is temporarily unavailable.",
        ),
        Billing::WrongShape => Reply::json(200, &json!({"foo": 1})),
        Billing::NotJson => Reply::raw(200, "application/json", "credits: plenty"),
    }
}
