//! The one error type of the provider logic; each case maps to one WIT
//! `provider-error` case (the component layer does that mapping).

use thiserror::Error;

/// Everything that can go wrong, one case per thing the caller should do about it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// The authorization server refused the grant (xAI's account gate): do not retry.
    #[error("access denied: {0}")]
    AccessDenied(String),
    /// The device code expired: start again.
    #[error("device code expired: {0}")]
    DeviceCodeExpired(String),
    /// Fair-use ceiling: wait, or use another route.
    #[error("rate limited: {message}")]
    RateLimited {
        /// Upstream's message.
        message: String,
        /// Seconds from `Retry-After`.
        retry_after_seconds: Option<u32>,
        /// Routes that could serve instead (see [`ProviderError::in_route`]).
        alternatives: Vec<String>,
    },
    /// Credentials rejected even after one refresh: logout and start again.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// The tier does not include this; re-login will not help.
    #[error("tier does not allow this: {0}")]
    TierNotAllowed(String),
    /// Spending limit or quota exhausted on a route.
    #[error("quota exhausted on route {route}: {message}")]
    QuotaExhausted {
        /// Upstream's message.
        message: String,
        /// The route that refused (empty until [`ProviderError::in_route`] names it).
        route: String,
        /// Routes that could serve instead.
        alternatives: Vec<String>,
    },
    /// Upstream refuses the client version the plugin announces (the rail's HTTP 426):
    /// change the setting the message names; logging in again will not help.
    #[error("client outdated: {0}")]
    ClientOutdated(String),
    /// Upstream 5xx after bounded retries.
    #[error("upstream unavailable: {0}")]
    UpstreamUnavailable(String),
    /// Transport failure.
    #[error("network error: {0}")]
    Network(String),
    /// Upstream answered something unparsable or unexpected.
    #[error("invalid response: {0}")]
    InvalidResponse(String),
    /// No credentials / no pending login.
    #[error("not connected: {0}")]
    NotConnected(String),
    /// Caller input rejected.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The host's sandbox refused an outgoing request.
    #[error("denied by sandbox: {0}")]
    DeniedBySandbox(String),
    /// Secret storage failed.
    #[error("storage error: {0}")]
    Storage(String),
}

impl ProviderError {
    /// A fair-use refusal; its alternatives are filled in by [`ProviderError::in_route`].
    pub fn rate_limited(message: String, retry_after_seconds: Option<u32>) -> Self {
        Self::RateLimited {
            message,
            retry_after_seconds,
            alternatives: Vec::new(),
        }
    }

    /// A spent quota; its route and alternatives are filled in by [`ProviderError::in_route`].
    pub fn quota_exhausted(message: String) -> Self {
        Self::QuotaExhausted {
            message,
            route: String::new(),
            alternatives: Vec::new(),
        }
    }

    /// The error as met on `route`: a quota refusal names the route, and both it and a
    /// rate limit name the routes that could serve instead (when not named yet).
    pub fn in_route(self, route: &str, alternatives: &[String]) -> Self {
        match self {
            Self::RateLimited {
                message,
                retry_after_seconds,
                alternatives: a,
            } => Self::RateLimited {
                message,
                retry_after_seconds,
                alternatives: if a.is_empty() {
                    alternatives.to_vec()
                } else {
                    a
                },
            },
            Self::QuotaExhausted {
                message,
                route: r,
                alternatives: a,
            } => Self::QuotaExhausted {
                message,
                route: if r.is_empty() { route.to_owned() } else { r },
                alternatives: if a.is_empty() {
                    alternatives.to_vec()
                } else {
                    a
                },
            },
            other => other,
        }
    }

    /// Whether the caller should be told which routes could serve instead.
    pub fn wants_alternatives(&self) -> bool {
        matches!(
            self,
            Self::RateLimited { alternatives, .. } | Self::QuotaExhausted { alternatives, .. }
                if alternatives.is_empty()
        )
    }

    /// The message, without the case's name.
    pub fn message(&self) -> String {
        match self {
            Self::AccessDenied(m)
            | Self::DeviceCodeExpired(m)
            | Self::Unauthorized(m)
            | Self::TierNotAllowed(m)
            | Self::UpstreamUnavailable(m)
            | Self::Network(m)
            | Self::InvalidResponse(m)
            | Self::NotConnected(m)
            | Self::InvalidInput(m)
            | Self::DeniedBySandbox(m)
            | Self::Storage(m)
            | Self::ClientOutdated(m)
            | Self::RateLimited { message: m, .. }
            | Self::QuotaExhausted { message: m, .. } => m.clone(),
        }
    }

    /// The same error with every known secret (and any piece of one) masked in its
    /// message: the last word before an error leaves for the caller.
    pub fn redacted(self, secrets: &[&str]) -> Self {
        use crate::redact::redact_secrets as r;
        match self {
            Self::AccessDenied(m) => Self::AccessDenied(r(&m, secrets)),
            Self::DeviceCodeExpired(m) => Self::DeviceCodeExpired(r(&m, secrets)),
            Self::RateLimited {
                message,
                retry_after_seconds,
                alternatives,
            } => Self::RateLimited {
                message: r(&message, secrets),
                retry_after_seconds,
                alternatives,
            },
            Self::Unauthorized(m) => Self::Unauthorized(r(&m, secrets)),
            Self::TierNotAllowed(m) => Self::TierNotAllowed(r(&m, secrets)),
            Self::QuotaExhausted {
                message,
                route,
                alternatives,
            } => Self::QuotaExhausted {
                message: r(&message, secrets),
                route,
                alternatives,
            },
            Self::UpstreamUnavailable(m) => Self::UpstreamUnavailable(r(&m, secrets)),
            Self::Network(m) => Self::Network(r(&m, secrets)),
            Self::InvalidResponse(m) => Self::InvalidResponse(r(&m, secrets)),
            Self::NotConnected(m) => Self::NotConnected(r(&m, secrets)),
            Self::InvalidInput(m) => Self::InvalidInput(r(&m, secrets)),
            Self::DeniedBySandbox(m) => Self::DeniedBySandbox(r(&m, secrets)),
            Self::Storage(m) => Self::Storage(r(&m, secrets)),
            Self::ClientOutdated(m) => Self::ClientOutdated(r(&m, secrets)),
        }
    }
}
