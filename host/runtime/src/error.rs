//! The host's error type, and the one place where errors become the stable wire codes that
//! scripts rely on (`{"ok": false, "error": "<code>", "message": ..., "action": ...}`).
//!
//! The actions here speak of the contract (its exports and routes), never of one program's
//! commands or one vendor's settings: a CLI or a server words its own on top.

use std::time::Duration;

use serde_json::{Value, json};

use crate::bindings::types::ProviderError;
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
    /// Every instance slot of the process's pool is in use: a session could not get one.
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
    /// The stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            HostError::Config(_) => "config_error",
            HostError::InvalidComponent(_) => "plugin_error",
            HostError::PoolExhausted(_) => "pool_exhausted",
            HostError::TenantBusy { .. } => "tenant_busy",
            HostError::HostSetup(_) => "host_error",
            HostError::Secrets(_) => "storage",
            HostError::CallTimeout(_) => "call_timeout",
            HostError::MemoryLimit(_) => "memory_limit",
            HostError::ResourceLimit(_) => "resource_limit",
            HostError::StreamClosed(_) => "stream_closed",
            HostError::PluginTrap(_) => "plugin_trap",
            HostError::Provider(e) => match e {
                ProviderError::AccessDenied(_) => "access_denied",
                ProviderError::DeviceCodeExpired(_) => "expired_token",
                ProviderError::RateLimited(_) => "rate_limited",
                ProviderError::Unauthorized(_) => "unauthorized",
                ProviderError::TierNotAllowed(_) => "tier_denied",
                ProviderError::QuotaExhausted(_) => "quota_exhausted",
                ProviderError::UpstreamUnavailable(_) => "upstream_unavailable",
                ProviderError::Network(_) => "network",
                ProviderError::InvalidResponse(_) => "invalid_response",
                ProviderError::NotConnected(_) => "not_connected",
                ProviderError::InvalidInput(_) => "invalid_input",
                ProviderError::DeniedBySandbox(_) => "denied_by_sandbox",
                ProviderError::Storage(_) => "storage",
                ProviderError::ClientOutdated(_) => "client_outdated",
            },
        }
    }

    /// What the caller should do next, in the contract's terms (a CLI words its own).
    pub fn action(&self) -> String {
        let others = self.alternatives();
        let instead = if others.is_empty() {
            String::new()
        } else {
            format!(" Routes that could serve instead: {}.", others.join(", "))
        };
        let text = match self.code() {
            "access_denied" => {
                "Do not retry: the account was refused at authorization. Check that the \
                 subscription is active, or use a route that spends an API key."
            }
            "expired_token" => "The device code expired: call `start` again.",
            "rate_limited" => {
                return format!(
                    "Rate limit reached: wait (retry_after_seconds when given) or pick another \
                     route for this request; do not retry in a loop.{instead}"
                );
            }
            "quota_exhausted" => {
                return format!(
                    "This route's quota or spending limit is spent: wait for it to reset, or \
                     pick another route for this request.{instead}"
                );
            }
            "unauthorized" => {
                "The credentials were refused: for a login, `logout` then `start` again; for \
                 an API key, check or replace it."
            }
            "tier_denied" => {
                "The subscription tier does not include this; logging in again will not help. \
                 Pick another model or upgrade."
            }
            "upstream_unavailable" => "Upstream is failing: retry shortly.",
            "client_outdated" => {
                "Upstream refuses the client version the plugin announces: set the plugin's \
                 setting the message names to a current release (the message names the minimum \
                 upstream asked for), then retry; logging in again will not help."
            }
            "network" => "The request did not complete: check connectivity and retry.",
            "invalid_response" => {
                "Upstream answered something unexpected: retry later; report it if it persists."
            }
            "not_connected" => "Not signed in (or no login pending): call `start`.",
            "invalid_input" => "Fix the request and try again.",
            "denied_by_sandbox" => {
                "The host's allowlist refused the destination: check the plugin's endpoint \
                 settings and the routes the host enables."
            }
            "storage" => {
                "Check the host's secret storage (its permissions, master key or database)."
            }
            "config_error" => "Fix the host's configuration of the plugin.",
            "plugin_error" => "Use a component of the model-provider:plugin world.",
            "pool_exhausted" => {
                "Every instance slot is in use: retry when a session ends, or raise the pool's size."
            }
            "tenant_busy" => {
                "Every session of this tenant is busy: retry shortly, or raise the host's \
                 sessions per tenant."
            }
            "host_error" => "The host could not start: check its installation.",
            "stream_closed" => "Open a new stream: the session itself is fine.",
            "call_timeout" | "memory_limit" | "resource_limit" | "plugin_trap" => {
                "The plugin misbehaved and was stopped; the host is unaffected. Report it to the \
                 plugin's author."
            }
            _ => "Retry; report it if it persists.",
        };
        text.to_owned()
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
            _ => None,
        }
    }

    /// The script-mode JSON object for this error.
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "ok": false,
            "error": self.code(),
            "message": self.to_string(),
            "action": self.action(),
        });
        if let Some(s) = self.retry_after_seconds() {
            v["retry_after_seconds"] = json!(s);
        }
        if let HostError::Provider(ProviderError::QuotaExhausted(q)) = self {
            v["route"] = json!(q.route);
        }
        if !self.alternatives().is_empty() {
            v["alternatives"] = json!(self.alternatives());
        }
        v
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
            let json = HostError::Provider(e).to_json();
            assert_eq!(json["error"], code);
            assert_eq!(json["ok"], false);
            assert!(json["action"].as_str().unwrap().len() > 10);
        }
    }

    #[test]
    fn rate_limits_carry_retry_after() {
        let e = HostError::Provider(ProviderError::RateLimited(RateLimit {
            message: "slow down".into(),
            retry_after_seconds: Some(30),
            alternatives: vec!["api-key".into()],
        }));
        let json = e.to_json();
        assert_eq!(json["error"], "rate_limited");
        assert_eq!(json["retry_after_seconds"], 30);
        assert_eq!(json["message"], "slow down");
        assert_eq!(json["alternatives"], json!(["api-key"]));
        assert!(json["action"].as_str().unwrap().contains("api-key"));
    }
}
