//! The scenarios, by name. Each one gets a fresh [`Ctx`] and speaks only the WIT
//! contract (through [`provider_runtime::Session`]), judging the plugin by its answers and
//! by what the reference servers saw.

pub(crate) mod agents;
pub(crate) mod chat;
mod device;
mod errors;
mod quota;
mod routes;
mod sandbox;
mod tokens;
mod version;

use super::check::{Failure, Outcome};
use super::context::{Ctx, Setup};

/// A named check of the contract.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    /// The name `--only` takes.
    pub name: &'static str,
    /// What it checks, in one line.
    pub about: &'static str,
    /// How the reference servers are set up for it.
    pub setup: Setup,
}

const fn scenario(name: &'static str, about: &'static str) -> Scenario {
    Scenario {
        name,
        about,
        setup: Setup {
            interval: 1,
            access_token_ttl: None,
        },
    }
}

/// Every scenario, in the order a run takes them.
pub const SCENARIOS: &[Scenario] = &[
    scenario(
        "device_flow_tier_1",
        "device login at tier 1: pending, approved, connected, tier's models",
    ),
    scenario(
        "device_flow_tier_2",
        "device login at tier 2: pending, approved, connected, tier's models",
    ),
    scenario(
        "device_flow_tier_3",
        "device login at tier 3: pending, approved, connected, tier's models",
    ),
    scenario(
        "device_flow_tier_4",
        "device login at tier 4: pending, approved, connected, tier's models",
    ),
    scenario("denial", "a denied login answers access_denied"),
    scenario("expiry", "an expired device code answers expired_token"),
    scenario(
        "slow_down_pacing",
        "slow_down raises the interval by 5 s; an early poll sends nothing",
    ),
    Scenario {
        setup: Setup {
            interval: 5,
            access_token_ttl: None,
        },
        ..scenario(
            "pending_without_server_call",
            "polls within the interval answer pending without a request",
        )
    },
    scenario(
        "refresh_rotation",
        "refresh redeems once, rotates, never presents a refresh token twice",
    ),
    scenario(
        "concurrent_refresh_single_flight",
        "4 sessions refreshing at once: exactly one redemption",
    ),
    scenario(
        "logout_revokes",
        "logout revokes upstream, forgets credentials, flushes models",
    ),
    scenario(
        "models_cache_and_force",
        "models come from the cache; force fetches once",
    ),
    scenario(
        "chat_completions_lane",
        "chat models answer through /chat/completions",
    ),
    scenario(
        "responses_lane",
        "the multi-agent model answers through /responses",
    ),
    scenario(
        "streaming_both_lanes",
        "streamed chunks add up to the complete reply in both lanes",
    ),
    scenario(
        "cut_stream",
        "a stream cut before its terminal event is an error, never a truncation",
    ),
    scenario(
        "tool_round_trip",
        "a tool call and its result on both lanes, whole and streamed",
    ),
    scenario(
        "tool_call_streams",
        "tool calls sent whole, split or only at the end assemble the same",
    ),
    scenario(
        "client_tools_on_multi_agent",
        "client tools on a multi-agent model: invalid_input naming the model",
    ),
    scenario(
        "image_input",
        "URL and inline images reach upstream on both lanes",
    ),
    scenario(
        "reasoning_output",
        "visible reasoning on both lanes; encrypted reasoning passed back",
    ),
    scenario(
        "structured_output",
        "a JSON schema reaches upstream and the reply follows it",
    ),
    scenario(
        "prompt_cache",
        "the prompt-cache key travels as upstream expects; cached tokens reported",
    ),
    scenario(
        "citations",
        "server-side search through extra-body returns citations",
    ),
    scenario(
        "unauthorized_refresh_retry",
        "a refused token: one refresh, one retry; refused again: unauthorized",
    ),
    scenario(
        "forbidden_variants",
        "403 tier gate, 403/402 spending limit, 403 bad credentials",
    ),
    scenario(
        "rate_limited_retry_after",
        "429 is rate_limited with Retry-After, not retried",
    ),
    scenario(
        "upstream_5xx_backoff",
        "5xx retried a bounded number of times, then upstream_unavailable",
    ),
    scenario(
        "hostile_bodies",
        "oversized, malformed and HTML bodies give typed errors, never a trap",
    ),
    scenario(
        "sandbox_denial",
        "origins outside the host's allowlist are refused: denied_by_sandbox",
    ),
    scenario(
        "subscription_rail",
        "the subscription route: rail headers, streamed upstream, credits, nothing on the API",
    ),
    scenario(
        "subscription_origin_gated",
        "the rail's origin is reachable only while the host enables the route",
    ),
    scenario(
        "api_key_route",
        "an API key: set, last four, used without a login, kept by logout, no refresh, deleted",
    ),
    scenario(
        "route_override",
        "a request's route or model prefix picks the route; contradictions are invalid input",
    ),
    scenario(
        "quota_per_route",
        "spent quota and spending limits name the other routes; the key route keeps serving",
    ),
    scenario(
        "usage_unknown",
        "a balance the rail does not report is plainly unknown, never invented",
    ),
    scenario(
        "version_gate",
        "the rail's 426 for an old or unreleased client version: client_outdated; /models not gated",
    ),
    scenario(
        "billing_shape",
        "usage reads the rail's credits shape and the legacy one; config: null is unknown",
    ),
    scenario(
        "tier_enum",
        "status names every tier of the claim's enum and the subscription the rail's /user names",
    ),
    scenario(
        "rail_catalogue",
        "the rail's per-tier catalogue, grok-4.6 first; its -build echo is never an error",
    ),
    scenario(
        "quota_429s_and_should_retry",
        "WKE and free-usage 429s are quota_exhausted; x-should-retry: false is final; Retry-After seconds",
    ),
    Scenario {
        setup: Setup {
            interval: 1,
            access_token_ttl: Some(tokens::SHORT_TOKEN_TTL),
        },
        ..scenario(
            "transient_refresh_failures",
            "refresh retried on 5xx/429 with the login kept; persistent failures are transient",
        )
    },
    scenario(
        "family_revocation",
        "a second login of the account under the same client id revokes the first: unauthorized, not connected",
    ),
];

/// Run the scenario `name` in `ctx`.
pub(crate) async fn run(name: &str, ctx: &mut Ctx) -> Outcome {
    match name {
        "device_flow_tier_1" => device::happy_path(ctx, 1).await,
        "device_flow_tier_2" => device::happy_path(ctx, 2).await,
        "device_flow_tier_3" => device::happy_path(ctx, 3).await,
        "device_flow_tier_4" => device::happy_path(ctx, 4).await,
        "denial" => device::denial(ctx).await,
        "expiry" => device::expiry(ctx).await,
        "slow_down_pacing" => device::slow_down_pacing(ctx).await,
        "pending_without_server_call" => device::pending_without_server_call(ctx).await,
        "refresh_rotation" => tokens::refresh_rotation(ctx).await,
        "concurrent_refresh_single_flight" => tokens::concurrent_refresh_single_flight(ctx).await,
        "logout_revokes" => tokens::logout_revokes(ctx).await,
        "models_cache_and_force" => chat::models_cache_and_force(ctx).await,
        "chat_completions_lane" => chat::chat_completions_lane(ctx).await,
        "responses_lane" => chat::responses_lane(ctx).await,
        "streaming_both_lanes" => chat::streaming_both_lanes(ctx).await,
        "cut_stream" => chat::cut_stream(ctx).await,
        "tool_round_trip" => agents::tool_round_trip(ctx).await,
        "tool_call_streams" => agents::tool_call_streams(ctx).await,
        "client_tools_on_multi_agent" => agents::client_tools_on_multi_agent(ctx).await,
        "image_input" => agents::image_input(ctx).await,
        "reasoning_output" => agents::reasoning_output(ctx).await,
        "structured_output" => agents::structured_output(ctx).await,
        "prompt_cache" => agents::prompt_cache(ctx).await,
        "citations" => agents::citations(ctx).await,
        "unauthorized_refresh_retry" => tokens::unauthorized_refresh_retry(ctx).await,
        "forbidden_variants" => errors::forbidden_variants(ctx).await,
        "rate_limited_retry_after" => errors::rate_limited_retry_after(ctx).await,
        "upstream_5xx_backoff" => errors::upstream_5xx_backoff(ctx).await,
        "hostile_bodies" => errors::hostile_bodies(ctx).await,
        "sandbox_denial" => sandbox::sandbox_denial(ctx).await,
        "subscription_rail" => routes::subscription_rail(ctx).await,
        "subscription_origin_gated" => routes::subscription_origin_gated(ctx).await,
        "api_key_route" => routes::api_key_route(ctx).await,
        "route_override" => routes::route_override(ctx).await,
        "quota_per_route" => quota::quota_per_route(ctx).await,
        "usage_unknown" => quota::usage_unknown(ctx).await,
        "version_gate" => version::version_gate(ctx).await,
        "billing_shape" => quota::billing_shape(ctx).await,
        "tier_enum" => device::tier_enum(ctx).await,
        "rail_catalogue" => routes::rail_catalogue(ctx).await,
        "quota_429s_and_should_retry" => errors::quota_429s_and_should_retry(ctx).await,
        "transient_refresh_failures" => tokens::transient_refresh_failures(ctx).await,
        "family_revocation" => tokens::family_revocation(ctx).await,
        other => Err(Failure(format!("no scenario is named {other:?}"))),
    }
}
