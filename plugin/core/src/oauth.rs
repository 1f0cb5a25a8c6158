//! Reading answers of the OAuth endpoints (device authorization, token). Errors arrive
//! as `{"error": "...", "error_description": "..."}` with HTTP 400/401, and from some
//! servers with HTTP 200, so the `error` field decides, not the status.

use serde_json::Value;

use crate::api_error::upstream_message;
use crate::error::ProviderError;
use crate::http::Reply;
use crate::redact::{sanitize, truncate};
use crate::retry_after::parse_retry_after;

/// An OAuth error code (RFC 8628 §3.5, RFC 6749 §5.2 and §4.1.2.1), and what it asks of
/// the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OAuthError {
    /// The user has not approved yet.
    AuthorizationPending,
    /// Polling too fast: add 5 s to the interval.
    SlowDown,
    /// The user or the server refused the grant (xAI: the account gate).
    AccessDenied,
    /// The device code expired.
    ExpiredToken,
    /// The grant (device code or refresh token) is invalid, expired or revoked.
    InvalidGrant,
    /// The client is unknown or not allowed.
    InvalidClient,
    /// The request was malformed.
    InvalidRequest,
    /// A scope was refused.
    InvalidScope,
    /// The client may not use this grant type.
    UnauthorizedClient,
    /// The server does not know this grant type.
    UnsupportedGrantType,
    /// The server is overloaded or in maintenance.
    TemporarilyUnavailable,
    /// The server failed.
    ServerError,
    /// Any other code, as the server wrote it (sanitized).
    Other(String),
}

/// What a client does about an [`OAuthError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthAction {
    /// Poll again after the interval.
    KeepPolling,
    /// Poll again after a longer interval.
    SlowDown,
    /// This attempt is over and retrying will not help (a refusal, a misconfiguration).
    Stop,
    /// The grant is dead: log in again.
    LogInAgain,
    /// The server's trouble, not the grant's: retry shortly.
    RetryLater,
}

impl OAuthError {
    /// The code of an `error` field.
    pub fn parse(code: &str) -> Self {
        match code {
            "authorization_pending" => Self::AuthorizationPending,
            "slow_down" => Self::SlowDown,
            "access_denied" => Self::AccessDenied,
            "expired_token" => Self::ExpiredToken,
            "invalid_grant" => Self::InvalidGrant,
            "invalid_client" => Self::InvalidClient,
            "invalid_request" => Self::InvalidRequest,
            "invalid_scope" => Self::InvalidScope,
            "unauthorized_client" => Self::UnauthorizedClient,
            "unsupported_grant_type" => Self::UnsupportedGrantType,
            "temporarily_unavailable" => Self::TemporarilyUnavailable,
            "server_error" => Self::ServerError,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The code as the RFCs spell it.
    pub fn as_str(&self) -> &str {
        match self {
            Self::AuthorizationPending => "authorization_pending",
            Self::SlowDown => "slow_down",
            Self::AccessDenied => "access_denied",
            Self::ExpiredToken => "expired_token",
            Self::InvalidGrant => "invalid_grant",
            Self::InvalidClient => "invalid_client",
            Self::InvalidRequest => "invalid_request",
            Self::InvalidScope => "invalid_scope",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::ServerError => "server_error",
            Self::Other(code) => code,
        }
    }

    /// What the client should do.
    pub fn action(&self) -> OAuthAction {
        match self {
            Self::AuthorizationPending => OAuthAction::KeepPolling,
            Self::SlowDown => OAuthAction::SlowDown,
            Self::ExpiredToken | Self::InvalidGrant => OAuthAction::LogInAgain,
            Self::TemporarilyUnavailable | Self::ServerError => OAuthAction::RetryLater,
            Self::AccessDenied
            | Self::InvalidClient
            | Self::InvalidRequest
            | Self::InvalidScope
            | Self::UnauthorizedClient
            | Self::UnsupportedGrantType
            | Self::Other(_) => OAuthAction::Stop,
        }
    }
}

impl std::fmt::Display for OAuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an OAuth endpoint said.
#[derive(Debug, Clone, PartialEq)]
pub enum OAuthReply {
    /// A 2xx JSON object without `error`.
    Success(Value),
    /// An OAuth error (`error` field), whatever the status.
    Error {
        /// The error code.
        code: OAuthError,
        /// `error_description`, sanitized.
        description: Option<String>,
    },
    /// Anything else, already mapped: 429 -> `RateLimited`, 5xx -> `UpstreamUnavailable`,
    /// redirects and unreadable answers -> `InvalidResponse`.
    Failure(ProviderError),
}

/// Classify `reply` of the endpoint named `what`.
pub fn classify_oauth(reply: &Reply, what: &str, secrets: &[&str]) -> OAuthReply {
    let status = reply.status;
    if (300..400).contains(&status) {
        return OAuthReply::Failure(ProviderError::InvalidResponse(format!(
            "{what}: unexpected redirect (HTTP {status})"
        )));
    }
    if status == 429 {
        return OAuthReply::Failure(ProviderError::rate_limited(
            format!("{what}: {}", upstream_message(status, &reply.body, secrets)),
            reply.header("retry-after").and_then(parse_retry_after),
        ));
    }
    if status >= 500 {
        return OAuthReply::Failure(ProviderError::UpstreamUnavailable(format!(
            "{what}: {}",
            upstream_message(status, &reply.body, secrets)
        )));
    }
    let json = serde_json::from_slice::<Value>(&reply.body).ok();
    if let Some(code) = json
        .as_ref()
        .and_then(|v| v.get("error"))
        .and_then(Value::as_str)
        .filter(|c| !c.trim().is_empty())
    {
        let description = json
            .as_ref()
            .and_then(|v| v.get("error_description"))
            .and_then(Value::as_str)
            .map(|d| sanitize(d, secrets))
            .filter(|d| !d.is_empty());
        return OAuthReply::Error {
            code: OAuthError::parse(&truncate(&sanitize(code, secrets), 64)),
            description,
        };
    }
    match json {
        Some(v) if reply.is_success() && v.is_object() => OAuthReply::Success(v),
        _ if reply.is_success() => OAuthReply::Failure(ProviderError::InvalidResponse(format!(
            "{what}: body is not a JSON object"
        ))),
        _ => OAuthReply::Failure(ProviderError::InvalidResponse(format!(
            "{what}: unexpected HTTP {status}: {}",
            upstream_message(status, &reply.body, secrets)
        ))),
    }
}

/// `code` plus the description when there is one, for messages.
pub fn describe(code: &OAuthError, description: Option<&str>) -> String {
    match description {
        Some(d) => format!("{code}: {d}"),
        None => code.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: vec![("retry-after".into(), "3".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn error_field_wins_over_status() {
        for status in [200, 400, 401, 403] {
            assert_eq!(
                classify_oauth(
                    &reply(
                        status,
                        r#"{"error":"authorization_pending","error_description":"wait"}"#
                    ),
                    "t",
                    &[]
                ),
                OAuthReply::Error {
                    code: OAuthError::AuthorizationPending,
                    description: Some("wait".into())
                }
            );
        }
    }

    #[test]
    fn codes_know_their_action() {
        use OAuthAction as A;
        for (code, action) in [
            ("authorization_pending", A::KeepPolling),
            ("slow_down", A::SlowDown),
            ("access_denied", A::Stop),
            ("expired_token", A::LogInAgain),
            ("invalid_grant", A::LogInAgain),
            ("invalid_client", A::Stop),
            ("invalid_request", A::Stop),
            ("invalid_scope", A::Stop),
            ("unauthorized_client", A::Stop),
            ("unsupported_grant_type", A::Stop),
            ("temporarily_unavailable", A::RetryLater),
            ("server_error", A::RetryLater),
            ("refresh_token_reused", A::Stop),
        ] {
            let e = OAuthError::parse(code);
            assert_eq!((e.as_str(), e.action()), (code, action), "{code}");
        }
        assert_eq!(
            OAuthError::parse("weird"),
            OAuthError::Other("weird".into())
        );
    }

    #[test]
    fn other_answers() {
        assert!(matches!(
            classify_oauth(&reply(200, r#"{"access_token":"a"}"#), "t", &[]),
            OAuthReply::Success(_)
        ));
        assert!(matches!(
            classify_oauth(&reply(200, "<html>"), "t", &[]),
            OAuthReply::Failure(ProviderError::InvalidResponse(_))
        ));
        assert!(matches!(
            classify_oauth(&reply(429, ""), "t", &[]),
            OAuthReply::Failure(ProviderError::RateLimited {
                retry_after_seconds: Some(3),
                ..
            })
        ));
        assert!(matches!(
            classify_oauth(&reply(502, r#"{"error":"server_error"}"#), "t", &[]),
            OAuthReply::Failure(ProviderError::UpstreamUnavailable(_))
        ));
        assert!(
            matches!(classify_oauth(&reply(301, ""), "t", &[]), OAuthReply::Failure(ProviderError::InvalidResponse(m)) if m.contains("redirect"))
        );
        assert!(
            matches!(classify_oauth(&reply(403, "<html>cf</html>"), "t", &[]), OAuthReply::Failure(ProviderError::InvalidResponse(m)) if m.contains("HTTP 403"))
        );
    }
}
