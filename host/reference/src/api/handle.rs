//! The test's side of the model API: faults, the request log, counters and bearer control.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::{ApiShared, ApiStats, ToolStreamStyle};
use crate::faults::{Fault, Route};
use crate::http::{RecordedRequest, Running, lock};
use crate::verify::TokenVerifier;

/// A running reference model API. Dropping it stops the server.
pub struct ApiHandle {
    pub(super) shared: Arc<ApiShared>,
    pub(super) running: Running,
}

impl fmt::Debug for ApiHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiHandle")
            .field("base_url", &self.base_url())
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

    /// Refuse, from now on, every bearer presented so far (as if they had been invalidated
    /// upstream); tokens obtained later still work. Returns how many were added.
    pub fn deny_seen_tokens(&self) -> usize {
        let seen = lock(&self.shared.seen).clone();
        let mut denied = lock(&self.shared.denied);
        let before = denied.len();
        denied.extend(seen);
        denied.len() - before
    }

    /// Refuse this bearer from now on.
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
}
