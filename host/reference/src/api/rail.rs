//! The subscription rail, shaped like `cli-chat-proxy.grok.com/v1` (what xAI's own CLI
//! uses with the OAuth bearer): a second listener on its own loopback port, started with
//! the API and stopped with it. Each behaviour names the section of the reference doc
//! (`shared/reference/xai-wire-2026.md`) it follows.
//!
//! It accepts the API's OAuth access tokens (same verification, same denied tokens) and
//! no API keys, and it serves `/models`, `/chat/completions` and `/responses` with the
//! API's own handlers, so scripted tools, reasoning and usage are identical. What differs:
//!
//! - its own per-tier catalogue ([`RailConfig::models`], by default
//!   [`super::models::rail_catalogue`]: `grok-4.6` then `grok-4.5`, camelCase extras, an
//!   `ETag`), and answers that echo the CLI variant of the model (`grok-4.6-build`,
//!   `grok-4.5-build-free` for a free account: §2.5);
//! - the version gate on inference (`/responses`, `/chat/completions`, `/messages`):
//!   426 for an `x-grok-client-version` below the floor, not semver, missing, or no
//!   known release (§2.2); `/models` is not gated;
//! - a bad bearer is 401 `{"error":"Invalid or expired credentials (auth_kind=bearer)"}`
//!   (§2.6);
//! - `GET /v1/billing?format=credits` (§3.1, see [`Billing`]) and
//!   `GET /v1/user[?include=subscription]` (§3.2);
//! - guesses kept from before (no source says what the live rail does; configurable or
//!   listed in the README): every request needs `X-XAI-Token-Auth` and a non-empty
//!   `x-grok-client-identifier`, else 403 `{"code":"permission-denied", …}`; chat
//!   requests must stream, may not store and may not chain (400 otherwise).
//!
//! Checks run in this order: the headers, the version gate (inference only), the bearer,
//! a standing quota (inference only), the body rules, then the lane. The rail has its own
//! fault queue, request log, prompt cache and counters ([`RailStats`]), so a test can tell
//! which rail a client used.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::{Value, json};

use super::billing::{self, Billing};
use super::cache::PromptCache;
use super::credential::Kind;
use super::models::{self, CatalogueModel};
use super::{
    ApiConfig, ApiShared, ApiStats, Caller, KeyAccess, invalid_argument, is_inference,
    no_such_endpoint, note_arrival, note_endpoint, serve_route, wants_sse, xai_error,
};
use crate::faults::{self, FaultQueue, Route};
use crate::http::{Outcome, RecordedRequest, Reply, RequestLog, form_value, lock};
use crate::tier::Tier;

/// The `X-XAI-Token-Auth` value xAI's CLI sends.
pub const GROK_CLI_TOKEN_AUTH: &str = "xai-grok-cli";
/// The version floor every quoted 426 names (§2.2, 2026-07-10 to 2026-09-01).
pub const MIN_CLIENT_VERSION: &str = "0.1.202";
/// Distinct paths counted in [`RailStats::requests_by_path`] (bounds memory).
const MAX_PATHS: usize = 1000;
/// The rail's 401 body (§2.6, GB `xai-grok-pager/src/app/error_display.rs` fixture).
const INVALID_CREDENTIALS: &str = "Invalid or expired credentials (auth_kind=bearer)";

/// Releases of xAI's CLI known to exist (§2.2): the public tree's `0.2.101` … `0.2.121`
/// and `1.0.0` … `1.0.6` (GB `xai-grok-version`, `Cargo.toml` history), the field reports
/// `1.0.13` and `1.0.34`, and `0.1.210-alpha.5` (a value §2.1 quotes). Since about
/// 2026-09-13 the rail refuses a well-formed version that is no release (openclaw#147728);
/// which releases it knows is not public, so this list stands in for it.
pub fn known_cli_releases() -> Vec<String> {
    let mut releases = vec!["0.1.210-alpha.5".to_owned()];
    releases.extend((101..=121).map(|p| format!("0.2.{p}")));
    releases.extend((0..=6).map(|p| format!("1.0.{p}")));
    releases.extend(["1.0.13".to_owned(), "1.0.34".to_owned()]);
    releases
}

/// How the subscription rail behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct RailConfig {
    /// The `X-XAI-Token-Auth` value required (default [`GROK_CLI_TOKEN_AUTH`]).
    pub token_auth: String,
    /// The rail's catalogue, offered per tier (default
    /// [`super::models::rail_catalogue`]); the API's catalogue is not served here.
    pub models: Vec<CatalogueModel>,
    /// Suffix of the model a paid account's answers echo (default `-build`: §2.5).
    pub build_suffix: String,
    /// Suffix for a free account, or a `tier` claim outside the enum (default
    /// `-build-free`: §2.5).
    pub free_build_suffix: String,
    /// The version floor of the gate (default [`MIN_CLIENT_VERSION`]); the 426 names it.
    pub min_client_version: String,
    /// Releases the gate accepts (default [`known_cli_releases`]); `None` checks only the
    /// floor and the syntax, as the rail did before mid-September 2026.
    pub known_client_versions: Option<Vec<String>>,
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
            models: models::rail_catalogue(),
            build_suffix: "-build".into(),
            free_build_suffix: "-build-free".into(),
            min_client_version: MIN_CLIENT_VERSION.into(),
            known_client_versions: Some(known_cli_releases()),
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
    /// 426: the version gate (missing, not semver, below the floor, or no known release).
    ClientOutdated,
    /// 401: the bearer is an API key.
    ApiKey,
    /// No, or an invalid, OAuth bearer (401).
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
            Self::MissingTokenAuth | Self::WrongTokenAuth | Self::MissingClientIdentifier
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
    /// `GET /v1/user`.
    pub user_requests: u64,
    /// Successful streamed answers.
    pub streams: u64,
    /// Requests refused by the header gate (403 `permission-denied`), any reason.
    pub permission_denied: u64,
    /// Requests refused by the version gate (426).
    pub client_outdated: u64,
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
    /// What a test may change while the rail runs (drift): the catalogue and the gate.
    pub(super) live: Mutex<RailLive>,
    pub(super) log: Arc<RequestLog>,
    pub(super) faults: FaultQueue,
    /// Counters the lanes keep (as on the API).
    lanes: Mutex<ApiStats>,
    counters: Mutex<Counters>,
    cache: PromptCache,
    pub(super) billing: Mutex<Billing>,
    /// `subscriptionTier` of `/user` regardless of the token's claim (a stale JWT: GB
    /// `jwt_claim_matches_user_subscription_tier`); `None` follows the claim.
    pub(super) subscription: Mutex<Option<Tier>>,
}

/// The rail's changeable settings, initially from [`RailConfig`].
pub(super) struct RailLive {
    pub(super) models: Vec<CatalogueModel>,
    pub(super) min_client_version: String,
    pub(super) known_client_versions: Option<Vec<String>>,
}

/// Counters only the rail has.
#[derive(Default)]
struct Counters {
    by_path: BTreeMap<String, u64>,
    billing: u64,
    user: u64,
    refusals: BTreeMap<RailRefusal, u64>,
}

impl RailShared {
    pub(super) fn new(config: &ApiConfig) -> Self {
        Self {
            live: Mutex::new(RailLive {
                models: config.rail.models.clone(),
                min_client_version: config.rail.min_client_version.clone(),
                known_client_versions: config.rail.known_client_versions.clone(),
            }),
            log: Arc::default(),
            faults: FaultQueue::default(),
            lanes: Mutex::default(),
            counters: Mutex::default(),
            cache: PromptCache::default(),
            billing: Mutex::new(config.rail.billing.clone()),
            subscription: Mutex::new(None),
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
            user_requests: counters.user,
            streams: lanes.streams,
            permission_denied: counters
                .refusals
                .iter()
                .filter(|(r, _)| r.is_permission_denied())
                .map(|(_, n)| n)
                .sum(),
            client_outdated: counters
                .refusals
                .get(&RailRefusal::ClientOutdated)
                .copied()
                .unwrap_or(0),
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
        "/v1/user" => Some(Route::User),
        "/v1/messages" => Some(Route::Messages),
        _ => super::route_of(req),
    }
}

/// Whether the version gate applies: inference only, `/models` is not gated (§2.2,
/// openclaw#113662).
fn is_gated(route: Route) -> bool {
    is_inference(route) || route == Route::Messages
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
        // `/responses/compact` lands here: 404 on the rail (§2.3, CPA comment).
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

/// The rail's 401 (§2.6). Also for an API key: the rail takes OAuth bearers only, and
/// `auth_kind=bearer` suggests the same answer for any bearer it cannot validate
/// (inferred; no source shows an API key sent there).
fn invalid_credentials() -> Reply {
    Reply::json(401, &json!({"error": INVALID_CREDENTIALS}))
}

fn handle(shared: &ApiShared, route: Route, req: &RecordedRequest) -> Reply {
    let rail = &shared.rail;
    let config = &shared.config.rail;
    note_endpoint(&rail.lanes, route);
    match route {
        Route::Billing => lock(&rail.counters).billing += 1,
        Route::User => lock(&rail.counters).user += 1,
        _ => {}
    }
    if let Err((reason, why)) = check_headers(&config.token_auth, req) {
        return rail.refuse(reason, xai_error(403, "permission-denied", &why));
    }
    // The gate runs before the bearer check: a refusal names only the version (inferred
    // from every quoted 426, none of which mentions credentials).
    let (catalogue, gate) = {
        let live = lock(&rail.live);
        let gate = (
            live.min_client_version.clone(),
            live.known_client_versions.clone(),
        );
        (live.models.clone(), gate)
    };
    if is_gated(route)
        && let Err(reply) = version_gate(
            &gate.0,
            gate.1.as_deref(),
            req.header("x-grok-client-version"),
        )
    {
        return rail.refuse(RailRefusal::ClientOutdated, reply);
    }
    let caller = match req.bearer() {
        None => return rail.refuse(RailRefusal::Unauthenticated, invalid_credentials()),
        Some(token) if shared.keys.kind(token) == Kind::ApiKey => {
            return rail.refuse(RailRefusal::ApiKey, invalid_credentials());
        }
        Some(token) => match shared.verify_oauth(token) {
            Ok(caller) => caller,
            Err(_) => return rail.refuse(RailRefusal::Unauthenticated, invalid_credentials()),
        },
    };
    match route {
        Route::Billing => return billing::answer(&lock(&rail.billing), req),
        Route::User => return user(rail, &caller, req),
        _ => {}
    }
    if is_gated(route)
        && let Some(quota) = shared.quotas.rail()
    {
        return rail.refuse(RailRefusal::Quota, quota.reply());
    }
    if is_gated(route)
        && req.method == "POST"
        && let Some(body) = req.json()
        && let Err((reason, why)) = check_body(&body, route, config.require_store_false)
    {
        return rail.refuse(reason, invalid_argument(&why));
    }
    if route == Route::Messages {
        // The Anthropic Messages dialect (§2.3) is not emulated: no catalogue model of the
        // rail uses it today.
        return no_such_endpoint();
    }
    let suffix = match Tier::from_claim(caller.tier) {
        Some(tier) if tier.is_paid() => config.build_suffix.as_str(),
        _ => config.free_build_suffix.as_str(),
    };
    let access = KeyAccess::Tier(caller.tier);
    let ctx = shared.ctx(
        &rail.lanes,
        &catalogue,
        &rail.cache,
        req,
        access,
        Some(suffix),
    );
    let reply = serve_route(&ctx, route, req);
    // Answers carry the catalogue's tag so a client refreshes it when it changes (§2.4).
    if is_inference(route) && reply_is_success(&reply) {
        reply.with_header("x-models-etag", &models::etag(&ctx))
    } else {
        reply
    }
}

fn reply_is_success(reply: &Reply) -> bool {
    match reply {
        Reply::Full { status, .. } => *status < 300,
        Reply::Sse { .. } => true,
    }
}

/// The header gate (guesses kept: see the module doc): the first missing or wrong header.
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
    Ok(())
}

/// A semantic version: numbers and an optional pre-release (compared as semver orders
/// them: a pre-release sorts before its release). Build metadata (`+…`) is not accepted:
/// xAI's CLI sends plain semver (§2.1). Hand-parsed rather than with the `semver` crate to
/// keep this crate's dependencies (and the shared lock file) as they are.
#[derive(Debug, PartialEq, Eq)]
struct Version<'a> {
    numbers: [u64; 3],
    pre: Option<&'a str>,
}

impl<'a> Version<'a> {
    fn parse(text: &'a str) -> Option<Self> {
        let (core, pre) = match text.split_once('-') {
            Some((core, pre)) => (core, Some(pre)),
            None => (text, None),
        };
        let mut numbers = [0u64; 3];
        let mut parts = core.split('.');
        for slot in &mut numbers {
            let part = parts.next()?;
            let leading_zero = part.len() > 1 && part.starts_with('0');
            if part.is_empty() || leading_zero || !part.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            *slot = part.parse().ok()?;
        }
        if parts.next().is_some() {
            return None;
        }
        if let Some(pre) = pre {
            let ok = pre.split('.').all(|id| {
                !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
            if !ok {
                return None;
            }
        }
        Some(Self { numbers, pre })
    }

    /// Whether this is older than `floor` (pre-releases sort before their release; two
    /// pre-releases of the same numbers are compared as text, enough for a floor).
    fn is_below(&self, floor: &Version<'_>) -> bool {
        match self.numbers.cmp(&floor.numbers) {
            std::cmp::Ordering::Less => true,
            std::cmp::Ordering::Greater => false,
            std::cmp::Ordering::Equal => match (self.pre, floor.pre) {
                (Some(_), None) => true,
                (Some(a), Some(b)) => a < b,
                (None, _) => false,
            },
        }
    }
}

/// The rail's version gate (§2.2): 426 with the flat body every report quotes, naming the
/// value as received (`none` when the header is missing), when the value is not semver,
/// is below the floor, or (since ~2026-09-13, openclaw#147728) is no known release.
fn version_gate(min: &str, known: Option<&[String]>, value: Option<&str>) -> Result<(), Reply> {
    let floor = Version::parse(min);
    let passes = value.is_some_and(|v| {
        let Some(version) = Version::parse(v) else {
            return false;
        };
        let above_floor = floor.as_ref().is_none_or(|f| !version.is_below(f));
        let known = known.is_none_or(|known| known.iter().any(|k| k == v));
        above_floor && known
    });
    if passes {
        return Ok(());
    }
    Err(Reply::json(
        426,
        &json!({"error": format!(
            "Your Grok CLI version ({}) is outdated. Please update to version {} or later via `grok update` or the installation documentation.",
            value.unwrap_or("none"),
            min
        )}),
    ))
}

/// The rail's body rules (guesses kept; a body that is not JSON is left to the lane's 400).
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

/// `GET /v1/user` (§3.2, GB `auth/model.rs::UserInfo`): camelCase, `userId` required.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UserInfo<'a> {
    user_id: &'a str,
    email: String,
    first_name: &'static str,
    last_name: &'static str,
    /// Only with `?include=subscription` and an active subscription.
    #[serde(skip_serializing_if = "Option::is_none")]
    subscription_tier: Option<&'static str>,
}

fn user(rail: &RailShared, caller: &Caller, req: &RecordedRequest) -> Reply {
    if req.method != "GET" {
        return Reply::json(405, &json!({"error": "Method not allowed"}));
    }
    let include = req
        .query
        .as_deref()
        .and_then(|q| form_value(q.as_bytes(), "include"));
    let tier = (*lock(&rail.subscription)).or_else(|| Tier::from_claim(caller.tier));
    let subscription_tier = if include.as_deref() == Some("subscription") {
        tier.and_then(Tier::subscription_tier)
    } else {
        None
    };
    let user_id = caller.subject.as_deref().unwrap_or("reference-user");
    let info = UserInfo {
        user_id,
        email: format!("{user_id}@users.reference.test"),
        first_name: "Reference",
        last_name: "User",
        subscription_tier,
    };
    Reply::json(200, &json!(info))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(value: Option<&str>) -> Result<(), u16> {
        let config = RailConfig::default();
        let known = config.known_client_versions.as_deref();
        version_gate(&config.min_client_version, known, value).map_err(|r| match r {
            Reply::Full { status, .. } => status,
            Reply::Sse { .. } => 0,
        })
    }

    #[test]
    fn the_gate_takes_known_releases_above_the_floor_only() {
        for ok in ["1.0.6", "0.2.120", "1.0.34", "0.1.210-alpha.5"] {
            assert_eq!(gate(Some(ok)), Ok(()), "{ok}");
        }
        for refused in [
            None,
            Some("0.1.0"),
            Some("0.1.201"),
            Some("2026.9.3"),
            Some("1.0.7"),
            Some("agent-afk"),
            Some("1.0"),
            Some("1.0.6+abc"),
            Some("01.0.6"),
            Some(""),
        ] {
            assert_eq!(gate(refused), Err(426), "{refused:?}");
        }
        let floor_only = |v| version_gate(MIN_CLIENT_VERSION, None, Some(v));
        assert!(floor_only("2026.9.3").is_ok());
        assert!(floor_only("0.1.202").is_ok());
        assert!(floor_only("0.1.202-rc.1").is_err());
        assert!(floor_only("0.1.201").is_err());
    }
}
