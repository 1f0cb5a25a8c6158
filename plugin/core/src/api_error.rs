//! The one place where a failed model-API answer (status + body) becomes a
//! [`ProviderError`], or a signal to refresh or retry.

use serde_json::Value;

use crate::error::ProviderError;
use crate::manifest::{keys, setting};
use crate::redact::sanitize;
use crate::retry_after::parse_retry_after;
use crate::routes::Route;

/// What a failed API answer means for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiFailure {
    /// The bearer was not accepted: refresh once and retry once.
    Unauthenticated(String),
    /// A server error (5xx): retry with backoff (or after `Retry-After` seconds, when
    /// given), then give up.
    Server {
        /// Upstream's message.
        message: String,
        /// Seconds from `Retry-After`, when given.
        retry_after: Option<u32>,
    },
    /// Nothing to retry: report this.
    Final(ProviderError),
}

/// The code the subscription rail answers (403) to a request without its client headers
/// (its tier gate says "does not have permission" like the API's, in another field).
pub const MISSING_RAIL_HEADERS_CODE: &str = "permission-denied";

/// Whether a body speaks of a spent quota rather than a rate: xAI's well-known error codes
/// (`[WKE=personal-team-blocked:spending-limit]`, also as a `code` or `type=`), a spending
/// limit, or credits run out.
fn quota_shaped(raw: &str) -> bool {
    raw.contains("personal-team-blocked")
        || raw.contains("spending-limit")
        || raw.contains("spending limit")
        || raw.contains("out of credits")
        || raw.contains("credit-limit")
        || raw.contains("usage balance exhausted")
}

/// The version a 426 body asks for: `... update to version 0.1.202 or later ...`. Only a
/// plain version word is taken (digits, letters, `.`, `-`, `+`; at most 32 characters).
pub fn minimum_client_version(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let lower = text.to_ascii_lowercase();
    let at = lower.find("update to version")? + "update to version".len();
    let word: String = text[at..]
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+'))
        .collect();
    let word = word.trim_end_matches(['.', '-', '+']);
    (!word.is_empty() && word.len() <= 32 && word.starts_with(|c: char| c.is_ascii_digit()))
        .then(|| word.to_owned())
}

/// The rail's version gate (HTTP 426), in this plugin's words: the minimum the rail named
/// and the setting to change. Upstream's advice (`grok update`) is not relayed: it is
/// about xAI's CLI, not this plugin.
fn client_outdated(body: &[u8]) -> ProviderError {
    let spec = setting(keys::SUBSCRIPTION_CLIENT_VERSION).expect("a key of the manifest");
    let env = spec
        .env
        .map(|e| format!(" (environment variable {e})"))
        .unwrap_or_default();
    let wanted = match minimum_client_version(body) {
        Some(v) => format!("version {v} or later, and a real release of xAI's grok CLI"),
        None => "a newer, real release of xAI's grok CLI".to_owned(),
    };
    ProviderError::ClientOutdated(format!(
        "the subscription rail refused the client version this plugin announces (HTTP 426): it asks for {wanted}. \
         Set the setting {}{env} to a current release of xAI's grok CLI; logging in again will not help",
        spec.key
    ))
}

/// Classify a non-2xx answer of `route`. `retry_after` is the header value, `secrets` are
/// scrubbed from any upstream text that ends up in a message. A spent quota (the API's
/// free usage, whatever the status; 402; a 403 spending limit; a 429 with a quota-shaped
/// well-known error code) is `QuotaExhausted` naming `route` (its alternatives are the
/// caller's to add, see [`ProviderError::in_route`]). HTTP 426 is `ClientOutdated`.
pub fn classify_api_error(
    status: u16,
    retry_after: Option<&str>,
    body: &[u8],
    secrets: &[&str],
    route: Route,
) -> ApiFailure {
    let raw = String::from_utf8_lossy(body).to_ascii_lowercase();
    let msg = upstream_message(status, body, secrets);
    let quota = || quota_shaped(&raw);
    let spent = |msg: String| {
        ApiFailure::Final(ProviderError::quota_exhausted(msg).in_route(route.name(), &[]))
    };
    match status {
        300..=399 => ApiFailure::Final(ProviderError::InvalidResponse(format!(
            "unexpected redirect (HTTP {status})"
        ))),
        // The API's free tier is spent: a quota, whatever the status says (429 and 403 seen).
        _ if raw.contains("free-usage-exhausted") => spent(msg),
        401 => ApiFailure::Unauthenticated(msg),
        403 if raw.contains("unauthenticated:bad-credentials") => ApiFailure::Unauthenticated(msg),
        402 => spent(msg),
        426 => ApiFailure::Final(client_outdated(body)),
        429 if quota() => spent(msg),
        403 if quota() => spent(msg),
        403 if route == Route::Subscription
            && error_code(body).is_some_and(|c| c.starts_with(MISSING_RAIL_HEADERS_CODE)) =>
        {
            ApiFailure::Final(ProviderError::InvalidResponse(format!(
                "the subscription rail refused the request as lacking its client headers (HTTP 403 {MISSING_RAIL_HEADERS_CODE}): \
                 this is a bug in the plugin, which sends them on every request; please report it (upstream: {msg})"
            )))
        }
        403 if raw.contains("does not have permission") => {
            ApiFailure::Final(ProviderError::TierNotAllowed(format!(
                "the subscription tier does not include this model or feature; logging in again will not help (upstream: {msg})"
            )))
        }
        // Not the API's JSON: a proxy or bot challenge in front of it, not a tier gate.
        403 if serde_json::from_slice::<Value>(body).is_err() => {
            ApiFailure::Final(ProviderError::Network(format!(
                "the request was refused before it reached the API (HTTP 403 from a proxy or bot challenge?): {msg}"
            )))
        }
        403 => ApiFailure::Final(ProviderError::TierNotAllowed(format!(
            "access refused; logging in again will not help (upstream: {msg})"
        ))),
        429 => ApiFailure::Final(ProviderError::rate_limited(
            msg,
            retry_after.and_then(parse_retry_after),
        )),
        500..=599 => ApiFailure::Server {
            message: msg,
            retry_after: retry_after.and_then(parse_retry_after),
        },
        408 => ApiFailure::Final(ProviderError::Network(format!("upstream timed out: {msg}"))),
        400 | 404 | 413 | 422 => ApiFailure::Final(ProviderError::InvalidInput(msg)),
        _ => ApiFailure::Final(ProviderError::InvalidResponse(format!(
            "unexpected HTTP {status}: {msg}"
        ))),
    }
}

/// The human part of an upstream error body, sanitized: `error.message`, `error`,
/// `message`, `detail`, `error_description` or `code` of a JSON body, else the text
/// itself (HTML pages, e.g. proxy challenges, are not quoted).
pub fn upstream_message(status: u16, body: &[u8], secrets: &[&str]) -> String {
    let fallback = format!("HTTP {status}");
    let text = match serde_json::from_slice::<Value>(body) {
        Ok(v) => json_message(&v).unwrap_or_default(),
        Err(_) => {
            let t = String::from_utf8_lossy(body);
            let t = t.trim();
            if t.starts_with('<') {
                format!("{fallback} (non-JSON body)")
            } else {
                t.to_owned()
            }
        }
    };
    let clean = sanitize(&text, secrets);
    if clean.is_empty() { fallback } else { clean }
}

/// The machine-readable code of a JSON error body: `code`, `error.code`, or an `error`
/// that is a bare code word (lower case).
fn error_code(body: &[u8]) -> Option<String> {
    let v = serde_json::from_slice::<Value>(body).ok()?;
    let err = v.get("error");
    [v.get("code"), err.and_then(|e| e.get("code")), err]
        .into_iter()
        .flatten()
        .find_map(Value::as_str)
        .map(|c| c.trim().to_ascii_lowercase())
}

fn json_message(v: &Value) -> Option<String> {
    fn s(v: Option<&Value>) -> Option<&str> {
        v.and_then(Value::as_str).filter(|s| !s.trim().is_empty())
    }
    let err = v.get("error");
    s(err.and_then(|e| e.get("message")))
        .or_else(|| s(err))
        .or_else(|| s(v.get("message")))
        .or_else(|| s(v.get("detail")))
        .or_else(|| s(v.get("error_description")))
        .or_else(|| s(v.get("code")))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify(status: u16, retry_after: Option<&str>, body: &[u8]) -> ApiFailure {
        classify_api_error(status, retry_after, body, &[], Route::Api)
    }

    fn final_err(status: u16, body: &str) -> ProviderError {
        final_on(Route::Api, status, body)
    }

    fn final_on(route: Route, status: u16, body: &str) -> ProviderError {
        match classify_api_error(status, None, body.as_bytes(), &[], route) {
            ApiFailure::Final(e) => e,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_three_meanings_of_403() {
        assert!(matches!(
            classify(403, None, br#"{"code":"unauthenticated:bad-credentials"}"#),
            ApiFailure::Unauthenticated(_)
        ));
        let e = final_err(
            403,
            r#"{"code":"x","error":"The caller does not have permission to execute the specified operation"}"#,
        );
        assert!(
            matches!(&e, ProviderError::TierNotAllowed(m) if m.contains("logging in again will not help") && m.contains("does not have permission")),
            "{e:?}"
        );
        assert!(matches!(
            final_err(403, r#"{"code":"personal-team-blocked:spending-limit"}"#),
            ProviderError::QuotaExhausted { .. }
        ));
        assert!(matches!(
            final_err(403, "You have run out of credits"),
            ProviderError::QuotaExhausted { .. }
        ));
        assert!(
            matches!(final_err(402, "{}"), ProviderError::QuotaExhausted { message, route, .. } if message == "HTTP 402" && route == "api")
        );
        assert!(
            matches!(final_err(403, "<html>challenge</html>"), ProviderError::Network(m) if m.contains("non-JSON body") && !m.contains("<html>"))
        );
        assert!(
            matches!(final_err(403, r#"{"error":"forbidden"}"#), ProviderError::TierNotAllowed(m) if m.contains("logging in again will not help"))
        );
    }

    #[test]
    fn spent_quotas_on_every_route() {
        for route in Route::ALL {
            for (status, body) in [
                (
                    429,
                    r#"{"code":"subscription:free-usage-exhausted","error":"Free usage exhausted"}"#,
                ),
                (
                    403,
                    r#"{"code":"subscription:free-usage-exhausted","error":"Free usage exhausted"}"#,
                ),
                (
                    400,
                    r#"{"error":{"code":"subscription:free-usage-exhausted"}}"#,
                ),
                (
                    402,
                    r#"{"code":"personal-team-blocked:spending-limit","error":"limit"}"#,
                ),
            ] {
                let e = final_on(route, status, body);
                assert!(
                    matches!(&e, ProviderError::QuotaExhausted { route: r, alternatives, .. } if r == route.name() && alternatives.is_empty()),
                    "{route} {status}: {e:?}"
                );
            }
        }
    }

    #[test]
    fn quota_shaped_429s_are_spent_quotas_not_rates() {
        for body in [
            r#"{"code":429,"error":"You ran out of credits. [WKE=personal-team-blocked:spending-limit]"}"#,
            r#"{"code":"subscription:free-usage-exhausted","error":"You've used all the included free usage for model grok-4.5-build-free for now."}"#,
            r#"{"error":"Your team has either used all available credits or reached its monthly spending limit"}"#,
        ] {
            for route in Route::ALL {
                assert!(
                    matches!(final_on(route, 429, body), ProviderError::QuotaExhausted { route: r, .. } if r == route.name()),
                    "{route} {body}"
                );
            }
        }
        assert!(matches!(
            final_err(429, r#"{"error":"Too many requests"}"#),
            ProviderError::RateLimited { .. }
        ));
    }

    #[test]
    fn the_version_gate_is_its_own_error() {
        let body = br#"{"error":"Your Grok CLI version (0.1.0) is outdated. Please update to version 0.1.202 or later via `grok update` or the installation documentation."}"#;
        assert_eq!(minimum_client_version(body).as_deref(), Some("0.1.202"));
        let e = final_on(Route::Subscription, 426, std::str::from_utf8(body).unwrap());
        let ProviderError::ClientOutdated(m) = &e else {
            panic!("{e:?}")
        };
        assert!(m.contains("0.1.202 or later"), "{m}");
        assert!(
            m.contains("subscription-client-version")
                && m.contains("XAI_SUBSCRIPTION_CLIENT_VERSION"),
            "{m}"
        );
        assert!(!m.contains("grok update"), "{m}");
        // Without a readable minimum: still typed, still no upstream advice.
        let e = final_on(Route::Subscription, 426, r#"{"error":"run grok update"}"#);
        assert!(
            matches!(&e, ProviderError::ClientOutdated(m) if m.contains("newer") && !m.contains("grok update")),
            "{e:?}"
        );
        assert_eq!(
            minimum_client_version(b"update to version <script> or later"),
            None
        );
        assert_eq!(
            minimum_client_version(b"Update to version 1.0.6-alpha.5."),
            Some("1.0.6-alpha.5".into())
        );
    }

    #[test]
    fn missing_rail_headers_are_a_plugin_bug() {
        let body = r#"{"code":"permission-denied","error":"missing X-XAI-Token-Auth"}"#;
        let e = final_on(Route::Subscription, 403, body);
        assert!(
            matches!(&e, ProviderError::InvalidResponse(m) if m.contains("bug in the plugin") && m.contains("permission-denied")),
            "{e:?}"
        );
        for other in [
            r#"{"error":{"code":"PERMISSION-DENIED","message":"no client headers"}}"#,
            r#"{"error":"permission-denied:missing-headers"}"#,
        ] {
            assert!(
                matches!(
                    final_on(Route::Subscription, 403, other),
                    ProviderError::InvalidResponse(_)
                ),
                "{other}"
            );
        }
        // Elsewhere it is a refusal like any other 403 of the API.
        assert!(matches!(
            final_on(Route::Api, 403, body),
            ProviderError::TierNotAllowed(_)
        ));
        // The tier gate stays the tier gate on the rail.
        assert!(matches!(
            final_on(
                Route::Subscription,
                403,
                r#"{"code":"The caller does not have permission to execute the specified operation"}"#
            ),
            ProviderError::TierNotAllowed(_)
        ));
    }

    #[test]
    fn other_statuses() {
        assert!(
            matches!(classify(401, None, b""), ApiFailure::Unauthenticated(m) if m == "HTTP 401")
        );
        assert!(
            matches!(classify(503, None, b"down"), ApiFailure::Server { message, retry_after: None } if message == "down")
        );
        assert!(matches!(
            classify(503, Some("500"), b""),
            ApiFailure::Server {
                retry_after: Some(120),
                ..
            }
        ));
        assert_eq!(
            classify(429, Some("7"), br#"{"error":"slow"}"#),
            ApiFailure::Final(ProviderError::rate_limited("slow".into(), Some(7)))
        );
        assert_eq!(
            final_err(404, r#"{"error":{"message":"no such model"}}"#),
            ProviderError::InvalidInput("no such model".into())
        );
        assert!(
            matches!(final_err(422, r#"{"detail":"bad"}"#), ProviderError::InvalidInput(m) if m == "bad")
        );
        assert!(
            matches!(final_err(400, r#"{"message":"x"}"#), ProviderError::InvalidInput(m) if m == "x")
        );
        assert!(
            matches!(final_err(302, ""), ProviderError::InvalidResponse(m) if m.contains("redirect"))
        );
        assert!(matches!(
            final_err(418, ""),
            ProviderError::InvalidResponse(_)
        ));
    }

    #[test]
    fn messages_are_scrubbed_and_bounded() {
        let body = format!(r#"{{"error":"token tok-123 is bad {}"}}"#, "z".repeat(500));
        let m = upstream_message(400, body.as_bytes(), &["tok-123"]);
        assert!(!m.contains("tok-123") && m.chars().count() <= 301, "{m}");
    }
}
