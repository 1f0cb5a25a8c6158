//! Reading answers of the OAuth endpoints (device authorization, token). Errors arrive
//! as `{"error": "...", "error_description": "..."}` with HTTP 400/401, and from some
//! servers with HTTP 200, so the `error` field decides, not the status.

use serde_json::Value;

use crate::api_error::upstream_message;
use crate::error::ProviderError;
use crate::http::Reply;
use crate::redact::{sanitize, truncate};
use crate::retry_after::parse_retry_after;

/// What an OAuth endpoint said.
#[derive(Debug, Clone, PartialEq)]
pub enum OAuthReply {
    /// A 2xx JSON object without `error`.
    Success(Value),
    /// An OAuth error (`error` field), whatever the status.
    Error {
        /// The error code, e.g. `authorization_pending`.
        code: String,
        /// `error_description`, sanitized.
        description: Option<String>,
    },
    /// Anything else, already mapped: 429 -> `RateLimited`, 5xx -> `UpstreamUnavailable`,
    /// redirects and unreadable answers -> `InvalidResponse`.
    Failure(ProviderError),
}

/// Classify `reply` of the endpoint named `what`.
pub fn classify_oauth(reply: &Reply, what: &str, now_ms: u64, secrets: &[&str]) -> OAuthReply {
    let status = reply.status;
    if (300..400).contains(&status) {
        return OAuthReply::Failure(ProviderError::InvalidResponse(format!(
            "{what}: unexpected redirect (HTTP {status})"
        )));
    }
    if status == 429 {
        return OAuthReply::Failure(ProviderError::RateLimited {
            message: format!("{what}: {}", upstream_message(status, &reply.body, secrets)),
            retry_after_seconds: reply
                .header("retry-after")
                .and_then(|v| parse_retry_after(v, now_ms)),
        });
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
            code: truncate(&sanitize(code, secrets), 64),
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
pub fn describe(code: &str, description: Option<&str>) -> String {
    match description {
        Some(d) => format!("{code}: {d}"),
        None => code.to_owned(),
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
                    0,
                    &[]
                ),
                OAuthReply::Error {
                    code: "authorization_pending".into(),
                    description: Some("wait".into())
                }
            );
        }
    }

    #[test]
    fn other_answers() {
        assert!(matches!(
            classify_oauth(&reply(200, r#"{"access_token":"a"}"#), "t", 0, &[]),
            OAuthReply::Success(_)
        ));
        assert!(matches!(
            classify_oauth(&reply(200, "<html>"), "t", 0, &[]),
            OAuthReply::Failure(ProviderError::InvalidResponse(_))
        ));
        assert!(matches!(
            classify_oauth(&reply(429, ""), "t", 0, &[]),
            OAuthReply::Failure(ProviderError::RateLimited {
                retry_after_seconds: Some(3),
                ..
            })
        ));
        assert!(matches!(
            classify_oauth(&reply(502, r#"{"error":"server_error"}"#), "t", 0, &[]),
            OAuthReply::Failure(ProviderError::UpstreamUnavailable(_))
        ));
        assert!(
            matches!(classify_oauth(&reply(301, ""), "t", 0, &[]), OAuthReply::Failure(ProviderError::InvalidResponse(m)) if m.contains("redirect"))
        );
        assert!(
            matches!(classify_oauth(&reply(403, "<html>cf</html>"), "t", 0, &[]), OAuthReply::Failure(ProviderError::InvalidResponse(m)) if m.contains("HTTP 403"))
        );
    }
}
