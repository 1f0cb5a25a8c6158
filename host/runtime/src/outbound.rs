//! The outbound policy: an embedder's say over each request a plugin sends, after the
//! allowlist let it through. The allowlist ([`crate::config`]) is the sandbox's rule and
//! cannot be widened from here; a policy can only refuse more (by method, path, time of
//! day, a tenant's budget, ...). The default is to ask nothing further.

use crate::config::Origin;

/// What a policy sees of an outgoing request (never its headers or body: those may carry
/// the plugin's credentials).
#[derive(Debug)]
pub struct OutboundRequest<'a> {
    /// The tenant whose session sends it.
    pub tenant: &'a str,
    /// Its origin (already on the allowlist).
    pub origin: &'a Origin,
    /// Its method.
    pub method: &'a http::Method,
    /// Its path (without the query, which may carry secrets).
    pub path: &'a str,
}

/// Decides whether an allowlisted request may go out. Called on the async thread that
/// sends it: answer quickly, without blocking.
pub trait OutboundPolicy: Send + Sync + 'static {
    /// `Err(reason)` refuses the request: the plugin sees `HTTP-request-denied`, the reason
    /// goes to the host's log.
    fn check(&self, request: &OutboundRequest<'_>) -> Result<(), String>;
}
