//! [`ErrorCode`]: the stable codes of [`HostError`](crate::HostError), each with its wire
//! spelling, the HTTP status a server answers it with, and what to do next.
//!
//! The enum is deliberately not `#[non_exhaustive]`: a new code must be given a status and an
//! action in every `match` on it (here, in a CLI, in a server), not fall into a default.

use std::fmt;
use std::str::FromStr;

use http::StatusCode;

/// Declares the codes once: variant, wire spelling, HTTP status, contract-level action.
macro_rules! codes {
    ($( $(#[$doc:meta])* $variant:ident = $wire:literal, $status:ident, $action:expr; )*) => {
        /// A [`HostError`](crate::HostError)'s stable code, the `error` field of its JSON
        /// (`{"ok": false, "error": "<code>", ...}`) and the `code` of a server's error body.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $( $(#[$doc])* $variant, )*
        }

        impl ErrorCode {
            /// Every code, in declaration order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),*];

            /// The snake_case wire spelling scripts rely on.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $wire,)*
                }
            }

            /// The HTTP status a server answers this code with (500 for a fault of the
            /// host or the plugin).
            pub const fn http_status(self) -> StatusCode {
                match self {
                    $(ErrorCode::$variant => StatusCode::$status,)*
                }
            }

            /// What the caller should do next, in the contract's terms (its exports and
            /// routes; a CLI or a server words its own). [`HostError::action`](
            /// crate::HostError::action) adds the routes that could serve instead.
            pub const fn action(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $action,)*
                }
            }
        }
    };
}

codes! {
    /// The configuration is unusable.
    ConfigError = "config_error", INTERNAL_SERVER_ERROR,
        "Fix the host's configuration of the plugin.";
    /// The component is not a usable `model-provider:plugin` component.
    PluginError = "plugin_error", INTERNAL_SERVER_ERROR,
        "Use a component of the model-provider:plugin world.";
    /// Every instance slot of the process's pool, or the plugins' whole memory budget, is
    /// in use: the host is loaded, nothing is wrong with the call.
    PoolExhausted = "pool_exhausted", SERVICE_UNAVAILABLE,
        "The host is at capacity (instance slots or the plugins' memory budget): retry \
         shortly, or raise the pool's size or the memory budget.";
    /// Every session of the tenant stayed busy for the pool's bounded wait.
    TenantBusy = "tenant_busy", TOO_MANY_REQUESTS,
        "Every session of this tenant is busy: retry shortly, or raise the host's \
         sessions per tenant.";
    /// The host itself could not be set up (engine, linker).
    HostError = "host_error", INTERNAL_SERVER_ERROR,
        "The host could not start: check its installation.";
    /// The secret store failed (the host's, or as the plugin reports it).
    Storage = "storage", INTERNAL_SERVER_ERROR,
        "Check the host's secret storage (its permissions, master key or database).";
    /// The export ran past its time budget.
    CallTimeout = "call_timeout", GATEWAY_TIMEOUT,
        "The plugin misbehaved and was stopped; the host is unaffected. Report it to the \
         plugin's author.";
    /// The plugin tried to grow its memory past the cap.
    MemoryLimit = "memory_limit", INTERNAL_SERVER_ERROR,
        "The plugin misbehaved and was stopped; the host is unaffected. Report it to the \
         plugin's author.";
    /// The plugin needs more than a session may hold.
    ResourceLimit = "resource_limit", INTERNAL_SERVER_ERROR,
        "The plugin misbehaved and was stopped; the host is unaffected. Report it to the \
         plugin's author.";
    /// A stream whose instance was discarded was read.
    StreamClosed = "stream_closed", INTERNAL_SERVER_ERROR,
        "Open a new stream: the session itself is fine.";
    /// The plugin trapped.
    PluginTrap = "plugin_trap", INTERNAL_SERVER_ERROR,
        "The plugin misbehaved and was stopped; the host is unaffected. Report it to the \
         plugin's author.";
    /// The account was refused at authorization.
    AccessDenied = "access_denied", FORBIDDEN,
        "Do not retry: the account was refused at authorization. Check that the \
         subscription is active, or use a route that spends an API key.";
    /// The device code expired before the login was approved.
    ExpiredToken = "expired_token", INTERNAL_SERVER_ERROR,
        "The device code expired: call `start` again.";
    /// Upstream's rate limit was reached.
    RateLimited = "rate_limited", TOO_MANY_REQUESTS,
        "Rate limit reached: wait (retry_after_seconds when given) or pick another \
         route for this request; do not retry in a loop.";
    /// The credentials were refused.
    Unauthorized = "unauthorized", UNAUTHORIZED,
        "The credentials were refused: for a login, `logout` then `start` again; for \
         an API key, check or replace it.";
    /// The subscription tier does not include this.
    TierDenied = "tier_denied", FORBIDDEN,
        "The subscription tier does not include this; logging in again will not help. \
         Pick another model or upgrade.";
    /// The route's quota or spending limit is spent.
    QuotaExhausted = "quota_exhausted", PAYMENT_REQUIRED,
        "This route's quota or spending limit is spent: wait for it to reset, or \
         pick another route for this request.";
    /// Upstream is failing (5xx after the plugin's retries).
    UpstreamUnavailable = "upstream_unavailable", SERVICE_UNAVAILABLE,
        "Upstream is failing: retry shortly.";
    /// The request did not complete.
    Network = "network", BAD_GATEWAY,
        "The request did not complete: check connectivity and retry.";
    /// Upstream answered something unexpected.
    InvalidResponse = "invalid_response", BAD_GATEWAY,
        "Upstream answered something unexpected: retry later; report it if it persists.";
    /// Not signed in, or no login pending.
    NotConnected = "not_connected", UNAUTHORIZED,
        "Not signed in (or no login pending): call `start`.";
    /// The request is invalid.
    InvalidInput = "invalid_input", BAD_REQUEST,
        "Fix the request and try again.";
    /// The host's allowlist refused the destination.
    DeniedBySandbox = "denied_by_sandbox", BAD_GATEWAY,
        "The host's allowlist refused the destination: check the plugin's endpoint \
         settings and the routes the host enables.";
    /// Upstream refuses the client version the plugin announces: the operator's setting to
    /// change, not the caller's request (hence a 502 from a server).
    ClientOutdated = "client_outdated", BAD_GATEWAY,
        "Upstream refuses the client version the plugin announces: set the plugin's \
         setting the message names to a current release (the message names the minimum \
         upstream asked for), then retry; logging in again will not help.";
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A text that is not the wire spelling of any [`ErrorCode`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown error code {0:?}")]
pub struct UnknownErrorCode(pub String);

impl FromStr for ErrorCode {
    type Err = UnknownErrorCode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ErrorCode::ALL
            .iter()
            .copied()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownErrorCode(s.to_owned()))
    }
}

/// Compares with the wire spelling (tests and scripts speak it).
impl PartialEq<str> for ErrorCode {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

/// Compares with the wire spelling (tests and scripts speak it).
impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl serde::Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for ErrorCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_are_distinct_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for &code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "{code} twice");
            assert_eq!(code.as_str().parse::<ErrorCode>(), Ok(code));
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(json, code.as_str());
            assert_eq!(serde_json::from_value::<ErrorCode>(json).unwrap(), code);
            assert!(code.action().len() > 10, "{code}");
        }
        assert_eq!(ErrorCode::ALL.len(), 24);
        assert!("no_such_code".parse::<ErrorCode>().is_err());
        assert!(serde_json::from_str::<ErrorCode>("\"RateLimited\"").is_err());
    }

    #[test]
    fn statuses_a_server_answers() {
        assert_eq!(ErrorCode::InvalidInput.http_status(), 400);
        assert_eq!(ErrorCode::Unauthorized.http_status(), 401);
        assert_eq!(ErrorCode::QuotaExhausted.http_status(), 402);
        assert_eq!(ErrorCode::TierDenied.http_status(), 403);
        assert_eq!(ErrorCode::TenantBusy.http_status(), 429);
        assert_eq!(ErrorCode::Storage.http_status(), 500);
        assert_eq!(ErrorCode::ClientOutdated.http_status(), 502);
        assert_eq!(ErrorCode::UpstreamUnavailable.http_status(), 503);
        assert_eq!(ErrorCode::CallTimeout.http_status(), 504);
    }
}
