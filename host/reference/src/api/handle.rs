//! The test's side of the model API and its subscription rail: faults, standing quota
//! refusals, the request logs, counters, bearer and API-key control, billing.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::models::CatalogueModel;
use super::{
    ApiShared, ApiStats, Billing, CredentialScope, KeyAccess, QuotaFault, RailStats,
    ToolStreamStyle,
};
use crate::faults::{Fault, Route};
use crate::http::{RecordedRequest, Running, lock};
use crate::tier::Tier;
use crate::verify::TokenVerifier;

/// A running reference model API and its subscription rail. Dropping it stops both.
pub struct ApiHandle {
    pub(super) shared: Arc<ApiShared>,
    pub(super) running: Running,
    /// The subscription rail's listener.
    pub(super) rail: Running,
}

impl fmt::Debug for ApiHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiHandle")
            .field("base_url", &self.base_url())
            .field("subscription_base", &self.subscription_base())
            .finish()
    }
}

impl ApiHandle {
    /// `http://127.0.0.1:PORT/v1` (no trailing slash).
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.running.addr())
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.running.addr()
    }

    /// Whether the server still accepts connections (false after the lifetime guard fired).
    pub fn is_running(&self) -> bool {
        self.running.is_running()
    }

    /// Queue a fault for the next request to `route`; the request is not processed.
    pub fn push_fault(&self, route: Route, fault: Fault) {
        self.shared.faults.push(route, fault, false);
    }

    /// Queue a fault applied after the request was processed (counters move, the answer
    /// is replaced).
    pub fn push_fault_after_processing(&self, route: Route, fault: Fault) {
        self.shared.faults.push(route, fault, true);
    }

    /// Drop every queued fault.
    pub fn clear_faults(&self) {
        self.shared.faults.clear();
    }

    /// Number of queued faults not served yet.
    pub fn pending_faults(&self) -> usize {
        self.shared.faults.len()
    }

    /// Every request received so far, oldest first (bearer included: assert on it with
    /// [`RecordedRequest::bearer`]; its `Debug` redacts it).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.log.snapshot()
    }

    /// Forget the logged requests.
    pub fn clear_requests(&self) {
        self.shared.log.clear();
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> ApiStats {
        lock(&self.shared.stats).clone()
    }

    /// Refuse, from now on, every OAuth bearer presented so far to the API or the rail (as
    /// if they had been invalidated upstream); tokens obtained later, and API keys, still
    /// work. Returns how many were added.
    pub fn deny_seen_tokens(&self) -> usize {
        let seen = lock(&self.shared.seen).clone();
        let mut denied = lock(&self.shared.denied);
        let before = denied.len();
        denied.extend(seen);
        denied.len() - before
    }

    /// Refuse this bearer from now on (an API key too: it is then answered as unknown).
    pub fn deny_token(&self, token: &str) {
        lock(&self.shared.denied).insert(Sha256::digest(token.as_bytes()).into());
    }

    /// How streams carry tool call arguments from the next request on (the initial
    /// value is [`super::ApiConfig::tool_stream_style`], by default
    /// [`ToolStreamStyle::Whole`]).
    pub fn set_tool_stream_style(&self, style: ToolStreamStyle) {
        *lock(&self.shared.tool_stream_style) = style;
    }

    /// The current tool stream style.
    pub fn tool_stream_style(&self) -> ToolStreamStyle {
        *lock(&self.shared.tool_stream_style)
    }

    /// Replace the bearer check (`None`: any non-empty bearer at the default tier).
    pub fn set_verifier(&self, verifier: Option<TokenVerifier>) {
        *self
            .shared
            .verifier
            .write()
            .unwrap_or_else(|e| e.into_inner()) = verifier;
    }
    /// Serve this API key from now on, with the models of a tier or the listed ids (see
    /// [`super::ApiConfig::with_api_key`]); replaces the key's access when it exists.
    pub fn add_api_key(&self, key: impl Into<String>, access: impl Into<KeyAccess>) {
        self.shared.keys.add(key.into(), access.into());
    }

    /// Stop serving this API key (it is refused as unknown from now on). Returns whether
    /// it was configured.
    pub fn remove_api_key(&self, key: &str) -> bool {
        self.shared.keys.remove(key)
    }

    /// Show unknown API keys whole in the 401's `error` (see
    /// [`super::ApiConfig::echo_api_key_in_errors`]).
    pub fn set_echo_api_key_in_errors(&self, echo: bool) {
        self.shared.keys.set_echo_in_errors(echo);
    }

    /// Refuse the API's inference requests (`/chat/completions`, `/responses`) of these
    /// credentials with `fault` until changed (`None` lifts it). Only authenticated
    /// requests are refused; `/models` keeps answering.
    pub fn set_quota_fault(&self, scope: CredentialScope, fault: Option<QuotaFault>) {
        self.shared.quotas.set(scope, fault);
    }

    /// Lift every standing quota refusal, the rail's included.
    pub fn clear_quota_faults(&self) {
        self.shared.quotas.set(CredentialScope::Both, None);
        self.shared.quotas.set_rail(None);
    }

    /// `http://127.0.0.1:PORT/v1` of the subscription rail (its own origin; no trailing
    /// slash).
    pub fn subscription_base(&self) -> String {
        format!("http://{}/v1", self.rail.addr())
    }

    /// The subscription rail's bound address.
    pub fn subscription_addr(&self) -> SocketAddr {
        self.rail.addr()
    }

    /// Whether the subscription rail still accepts connections.
    pub fn is_rail_running(&self) -> bool {
        self.rail.is_running()
    }

    /// Queue a fault for the next rail request to `route` ([`Route::Billing`] included);
    /// the API's queue is separate.
    pub fn push_rail_fault(&self, route: Route, fault: Fault) {
        self.shared.rail.faults.push(route, fault, false);
    }

    /// Queue a rail fault applied after the request was processed.
    pub fn push_rail_fault_after_processing(&self, route: Route, fault: Fault) {
        self.shared.rail.faults.push(route, fault, true);
    }

    /// Drop every queued rail fault.
    pub fn clear_rail_faults(&self) {
        self.shared.rail.faults.clear();
    }

    /// Number of queued rail faults not served yet.
    pub fn pending_rail_faults(&self) -> usize {
        self.shared.rail.faults.len()
    }

    /// Refuse the rail's inference requests with `fault` until changed (`None` lifts it);
    /// `/models` and `/billing` keep answering.
    pub fn set_rail_quota_fault(&self, fault: Option<QuotaFault>) {
        self.shared.quotas.set_rail(fault);
    }

    /// What `GET /v1/billing?format=credits` answers from now on.
    pub fn set_rail_billing(&self, billing: Billing) {
        *lock(&self.shared.rail.billing) = billing;
    }

    /// Answer `subscriptionTier` of `GET /v1/user?include=subscription` for this tier
    /// whatever the token's `tier` claim says (a claim gone stale after an upgrade or a
    /// cancellation; `Tier::Free` leaves it out); `None` follows the claim again.
    pub fn set_rail_subscription(&self, tier: Option<Tier>) {
        *lock(&self.shared.rail.subscription) = tier;
    }

    /// Serve these models on the rail from the next request on (a catalogue change: the
    /// listing's `ETag` and answers' `x-models-etag` change with it).
    pub fn set_rail_models(&self, models: Vec<CatalogueModel>) {
        lock(&self.shared.rail.live).models = models;
    }

    /// Gate inference on the rail from the next request on with this floor and these known
    /// releases (`None`: the floor only), e.g. the rail dropping a release.
    pub fn set_rail_version_gate(&self, min_client_version: &str, known: Option<Vec<String>>) {
        let mut live = lock(&self.shared.rail.live);
        live.min_client_version = min_client_version.to_owned();
        live.known_client_versions = known;
    }

    /// What `GET /v1/billing?format=credits` answers now.
    pub fn rail_billing(&self) -> Billing {
        lock(&self.shared.rail.billing).clone()
    }

    /// Every request the rail received, oldest first (separate from [`Self::requests`]).
    pub fn rail_requests(&self) -> Vec<RecordedRequest> {
        self.shared.rail.log.snapshot()
    }

    /// Forget the rail's logged requests.
    pub fn clear_rail_requests(&self) {
        self.shared.rail.log.clear();
    }

    /// A snapshot of the rail's counters.
    pub fn rail_stats(&self) -> RailStats {
        self.shared.rail.stats()
    }
}
