//! The host's error type, and the one place where errors become the stable codes
//! ([`HostError::code`], an [`ErrorCode`] with its wire spelling and HTTP status) that
//! scripts and servers rely on. How an error is rendered (the CLI's script-mode JSON, a
//! server's error body) is each program's own, from the code, the message, the action and
//! the fields below.
//!
//! The actions here speak of the contract (its exports and routes), never of one program's
//! commands or one vendor's settings: a CLI or a server words its own on top.

use std::time::Duration;

use crate::bindings::types::ProviderError;
use crate::code::ErrorCode;
use crate::secrets::SecretStoreError;

/// Everything that can fail between a caller and a plugin export.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// The configuration is unusable (refused before anything runs).
    #[error("configuration error: {0}")]
    Config(String),
    /// The component could not be read, is not a component, does not fit the
    /// `model-provider:plugin` world, or describes itself with an unusable manifest.
    #[error("invalid plugin component: {0}")]
    InvalidComponent(String),
    /// Every instance slot of the process's pool is in use (a session could not get one), or
    /// the runtime's whole memory budget ([`crate::limits::MemoryBudget`]) is: try again
    /// shortly.
    #[error("instance pool exhausted: {0}")]
    PoolExhausted(String),
    /// All of a tenant's sessions in a [`crate::SessionPool`] stayed busy for the pool's
    /// bounded wait: try again shortly.
    #[error("all {sessions} sessions of this tenant stayed busy for {waited:?}")]
    TenantBusy {
        /// The tenant's session limit.
        sessions: usize,
        /// How long the call waited.
        waited: Duration,
    },
    /// The host itself could not be set up (engine, linker): a host bug or a broken
    /// installation, not the plugin's fault.
    #[error("host setup failed: {0}")]
    HostSetup(String),
    /// The host's secret store failed.
    #[error(transparent)]
    Secrets(#[from] SecretStoreError),
    /// The export ran past its time budget and was interrupted.
    #[error("the plugin call ran longer than {0:?} and was interrupted")]
    CallTimeout(Duration),
    /// The plugin tried to grow its memory past the cap.
    #[error("the plugin exceeded its memory limit: {0}")]
    MemoryLimit(String),
    /// The plugin (or its component) needs more than a session may hold: more core
    /// instances, memories or tables than one instance budget, or more resource-table
    /// entries than [`Limits::max_resources`](crate::limits::Limits::max_resources).
    #[error("the plugin exceeded a host resource limit: {0}")]
    ResourceLimit(String),
    /// A chat stream whose instance was discarded (after a trap or a timeout) was read.
    #[error("the stream is closed: {0}")]
    StreamClosed(String),
    /// The plugin trapped (a bug or a violated invariant in the guest).
    #[error("the plugin trapped: {0}")]
    PluginTrap(String),
    /// The plugin answered with its typed error.
    #[error("{}", provider_message(.0))]
    Provider(ProviderError),
}

fn provider_message(e: &ProviderError) -> String {
    match e {
        ProviderError::RateLimited(r) => r.message.clone(),
        ProviderError::QuotaExhausted(q) => q.message.clone(),
        ProviderError::AccessDenied(m)
        | ProviderError::DeviceCodeExpired(m)
        | ProviderError::Unauthorized(m)
        | ProviderError::TierNotAllowed(m)
        | ProviderError::UpstreamUnavailable(m)
        | ProviderError::Network(m)
        | ProviderError::InvalidResponse(m)
        | ProviderError::NotConnected(m)
        | ProviderError::InvalidInput(m)
        | ProviderError::DeniedBySandbox(m)
        | ProviderError::Storage(m)
        | ProviderError::ClientOutdated(m) => m.clone(),
    }
}

impl HostError {
    /// The stable code (its wire spelling: [`ErrorCode::as_str`]).
    pub fn code(&self) -> ErrorCode {
        match self {
            HostError::Config(_) => ErrorCode::ConfigError,
            HostError::InvalidComponent(_) => ErrorCode::PluginError,
            HostError::PoolExhausted(_) => ErrorCode::PoolExhausted,
            HostError::TenantBusy { .. } => ErrorCode::TenantBusy,
            HostError::HostSetup(_) => ErrorCode::HostError,
            HostError::Secrets(_) => ErrorCode::Storage,
            HostError::CallTimeout(_) => ErrorCode::CallTimeout,
            HostError::MemoryLimit(_) => ErrorCode::MemoryLimit,
            HostError::ResourceLimit(_) => ErrorCode::ResourceLimit,
            HostError::StreamClosed(_) => ErrorCode::StreamClosed,
            HostError::PluginTrap(_) => ErrorCode::PluginTrap,
            HostError::Provider(e) => match e {
                ProviderError::AccessDenied(_) => ErrorCode::AccessDenied,
                ProviderError::DeviceCodeExpired(_) => ErrorCode::ExpiredToken,
                ProviderError::RateLimited(_) => ErrorCode::RateLimited,
                ProviderError::Unauthorized(_) => ErrorCode::Unauthorized,
                ProviderError::TierNotAllowed(_) => ErrorCode::TierDenied,
                ProviderError::QuotaExhausted(_) => ErrorCode::QuotaExhausted,
                ProviderError::UpstreamUnavailable(_) => ErrorCode::UpstreamUnavailable,
                ProviderError::Network(_) => ErrorCode::Network,
                ProviderError::InvalidResponse(_) => ErrorCode::InvalidResponse,
                ProviderError::NotConnected(_) => ErrorCode::NotConnected,
                ProviderError::InvalidInput(_) => ErrorCode::InvalidInput,
                ProviderError::DeniedBySandbox(_) => ErrorCode::DeniedBySandbox,
                ProviderError::Storage(_) => ErrorCode::Storage,
                ProviderError::ClientOutdated(_) => ErrorCode::ClientOutdated,
            },
        }
    }

    /// What the caller should do next, in the contract's terms (a CLI words its own): the
    /// code's [`ErrorCode::action`], then the routes that could serve instead, if any.
    pub fn action(&self) -> String {
        let others = self.alternatives();
        if others.is_empty() {
            self.code().action().to_owned()
        } else {
            format!(
                "{} Routes that could serve instead: {}.",
                self.code().action(),
                others.join(", ")
            )
        }
    }

    /// Routes the plugin says could serve the request instead (rate limit, spent quota).
    pub fn alternatives(&self) -> &[String] {
        match self {
            HostError::Provider(ProviderError::RateLimited(r)) => &r.alternatives,
            HostError::Provider(ProviderError::QuotaExhausted(q)) => &q.alternatives,
            _ => &[],
        }
    }

    /// Seconds to wait before retrying, when upstream said.
    pub fn retry_after_seconds(&self) -> Option<u32> {
        match self {
            HostError::Provider(ProviderError::RateLimited(r)) => r.retry_after_seconds,
            // A session frees as soon as one of the tenant's calls ends.
            HostError::TenantBusy { .. } => Some(1),
            // Capacity frees as other calls end.
            HostError::PoolExhausted(_) => Some(1),
            _ => None,
        }
    }
}

impl From<ProviderError> for HostError {
    fn from(e: ProviderError) -> Self {
        HostError::Provider(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::types::RateLimit;

    #[test]
    fn wire_codes_are_stable() {
        let cases = [
            (ProviderError::AccessDenied("x".into()), "access_denied"),
            (
                ProviderError::DeviceCodeExpired("x".into()),
                "expired_token",
            ),
            (ProviderError::TierNotAllowed("x".into()), "tier_denied"),
            (
                ProviderError::DeniedBySandbox("x".into()),
                "denied_by_sandbox",
            ),
            (ProviderError::NotConnected("x".into()), "not_connected"),
            (ProviderError::ClientOutdated("x".into()), "client_outdated"),
        ];
        for (e, code) in cases {
            let e = HostError::Provider(e);
            assert_eq!(e.code().as_str(), code);
            assert!(e.action().len() > 10);
        }
    }

    #[test]
    fn rate_limits_carry_retry_after() {
        let e = HostError::Provider(ProviderError::RateLimited(RateLimit {
            message: "slow down".into(),
            retry_after_seconds: Some(30),
            alternatives: vec!["api-key".into()],
        }));
        assert_eq!(e.code().as_str(), "rate_limited");
        assert_eq!(e.retry_after_seconds(), Some(30));
        assert_eq!(e.to_string(), "slow down");
        assert_eq!(e.alternatives(), ["api-key"]);
        assert!(e.action().contains("api-key"));
    }
}
