//! Faults that tests queue on either server: canned answers, hang-ups, stalls, cut
//! streams and oversized bodies.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use serde_json::json;

use crate::http::{self, BodyPlan, Hangup, Outcome, Reply, lock};

/// Which endpoint a queued fault waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// The next request to any endpoint of the server.
    Any,
    /// `GET /.well-known/openid-configuration`.
    Discovery,
    /// `GET /.well-known/jwks.json`.
    Jwks,
    /// `POST /oauth2/device/code`.
    DeviceAuthorization,
    /// `POST /oauth2/token`.
    Token,
    /// `POST /oauth2/revoke`.
    Revocation,
    /// `GET`/`POST /oauth2/device` (the human verification page).
    VerificationPage,
    /// `GET /v1/models` and `GET /v1/models/{id}`.
    Models,
    /// `POST /v1/chat/completions`.
    ChatCompletions,
    /// `POST /v1/responses`.
    Responses,
    /// `GET /v1/billing` (the subscription rail only).
    Billing,
    /// `GET /v1/user` (the subscription rail only).
    User,
    /// `POST /v1/messages` (the subscription rail only).
    Messages,
    /// `POST /oauth2/token` with `grant_type=refresh_token` only (a fault for
    /// [`Route::Token`] also serves refreshes).
    Refresh,
}

/// A fixed answer: status, headers and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CannedResponse {
    /// HTTP status.
    pub status: u16,
    /// Headers, including `content-type`.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

/// One misbehaviour, served to one request.
///
/// "Events" count SSE events already sent; a non-streaming body counts as two halves, so
/// `after_events: 1` acts mid-body there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer this instead of the real response.
    Respond(CannedResponse),
    /// Close the connection without any response.
    DropConnection,
    /// Wait this long, then answer normally.
    StallBeforeHeaders(Duration),
    /// Answer normally but pause the body after some events.
    StallMidBody {
        /// Events sent before the pause.
        after_events: usize,
        /// Length of the pause.
        duration: Duration,
    },
    /// Answer normally but end the body cleanly after some events: the HTTP message is
    /// complete, the stream's terminal event (`[DONE]`, `response.completed`) never comes.
    CutStream {
        /// Events sent before the end.
        after_events: usize,
    },
    /// Answer normally but abort the connection after some events (no terminating chunk).
    AbortStream {
        /// Events sent before the abort.
        after_events: usize,
    },
    /// A 200 with the endpoint's content type and a well-formed body of this many bytes
    /// (one huge JSON string, or one huge SSE `data:` line), with no declared length.
    Oversized {
        /// Total body size in bytes.
        bytes: usize,
    },
}

impl Fault {
    /// Any status with a JSON body.
    pub fn json(status: u16, body: &serde_json::Value) -> Self {
        Self::raw(status, "application/json", body.to_string())
    }

    /// Any status, content type and body.
    pub fn raw(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Fault::Respond(CannedResponse {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body: body.into(),
        })
    }

    /// Add a header to a `Respond` fault (no effect on other kinds).
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        if let Fault::Respond(canned) = &mut self {
            canned.headers.push((name.to_owned(), value.to_owned()));
        }
        self
    }

    /// Set `x-should-retry` on a `Respond` fault: `false` makes any status final for xAI's
    /// CLI, `true` is ignored by it (reference doc §2.6, GB `retry.rs`).
    pub fn with_should_retry(self, retry: bool) -> Self {
        self.with_header("x-should-retry", if retry { "true" } else { "false" })
    }

    /// A plain rate limit: 429, with `Retry-After` (integer seconds) when given. xAI's CLI
    /// retries it at most twice, waiting the full value (§2.6). The body is a guess: no
    /// source quotes a plain 429's text.
    pub fn rate_limited(retry_after_seconds: Option<u32>) -> Self {
        let fault = Self::json(
            429,
            &json!({"code": "Some resource has been exhausted",
                    "error": "Rate limit exceeded for this subscription. Please retry later."}),
        );
        match retry_after_seconds {
            Some(s) => fault.with_header("retry-after", &s.to_string()),
            None => fault,
        }
    }

    /// The rail's quota 429 with a well-known error code in the text (§2.6, GB
    /// `provider_error.rs` corpus): `{"code":429,"error":"You ran out of credits.
    /// [WKE=personal-team-blocked:spending-limit]"}`, no `Retry-After`. A quota, not a rate.
    pub fn credits_exhausted_wke() -> Self {
        Self::json(
            429,
            &json!({"code": 429,
                    "error": "You ran out of credits. [WKE=personal-team-blocked:spending-limit]"}),
        )
    }

    /// Spending limit reached on api.x.ai: 402 `You have run out of credits or need a Grok
    /// subscription. (type=personal-team-blocked:spending-limit)` (§4, oh-my-pi#5978), or
    /// 403 "run out of credits" (hermes-agent#95166). No `Retry-After`. The `code` member
    /// is inferred from the `type=` the text carries.
    pub fn spending_limit(status: u16) -> Self {
        Self::json(
            status,
            &json!({"code": "personal-team-blocked:spending-limit",
                    "error": "You have run out of credits or need a Grok subscription. (type=personal-team-blocked:spending-limit)"}),
        )
    }

    /// The rail's 402: the Build pool's credit block, "usage balance exhausted" (§2.6, GB
    /// `billing.rs::is_credit_limit_error`). Only the phrase is sourced; the envelope and
    /// `code` are a guess.
    pub fn usage_balance_exhausted() -> Self {
        Self::json(
            402,
            &json!({"code": "usage-balance-exhausted",
                    "error": "Your usage balance exhausted for this period. Buy credits or upgrade your plan to continue."}),
        )
    }

    /// The free usage is used up (§2.6, sub2api#4568): `status` (429 as reported; 403 is
    /// kept for older reports) with `{"code":"subscription:free-usage-exhausted", …}` and
    /// no `Retry-After` (it resets over a rolling 24 h).
    pub fn free_usage_exhausted(status: u16) -> Self {
        Self::json(
            status,
            &json!({"code": "subscription:free-usage-exhausted",
                    "error": "You've used all the included free usage for model grok-4.5-build-free for now. Usage resets over a rolling 24-hour window - tokens (actual/limit): 1065554/1000000."}),
        )
    }

    /// api.x.ai's answer to an expired or invalid OAuth token: 403 (not 401)
    /// `{"code":"unauthenticated:bad-credentials","error":"The OAuth2 access token could
    /// not be validated."}` (§4, hermes-agent#47953).
    pub fn bad_credentials() -> Self {
        Self::json(
            403,
            &json!({"code": "unauthenticated:bad-credentials",
                    "error": "The OAuth2 access token could not be validated."}),
        )
    }

    /// api.x.ai's 403 for an account without resources or subscription (§4,
    /// openclaw#84504). Only the text is quoted; the flat `{"error": …}` envelope is a guess.
    pub fn no_active_subscription() -> Self {
        Self::json(
            403,
            &json!({"error": "You have either run out of available resources or do not have an active Grok subscription. Manage your subscription at https://grok.com/?_s=usage or subscribe at https://grok.com/supergrok."}),
        )
    }

    /// The rail's 401 (§2.6): `{"error":"Invalid or expired credentials (auth_kind=bearer)"}`.
    pub fn rail_unauthorized() -> Self {
        Self::json(
            401,
            &json!({"error": "Invalid or expired credentials (auth_kind=bearer)"}),
        )
    }

    /// Plain 401 with a `WWW-Authenticate` challenge.
    pub fn unauthorized() -> Self {
        Self::json(
            401,
            &json!({"error": {"message": "Invalid bearer token", "type": "invalid_request_error",
                              "code": "invalid_token"}}),
        )
        .with_header("www-authenticate", "Bearer error=\"invalid_token\"")
    }

    /// The tier gate: 403 "The caller does not have permission…".
    pub fn tier_denied() -> Self {
        Self::json(
            403,
            &json!({"code": "The caller does not have permission to execute the specified operation",
                    "error": "Your subscription does not include this model."}),
        )
    }

    /// A 5xx with an xAI-style body.
    pub fn server_error(status: u16) -> Self {
        Self::json(
            status,
            &json!({"code": "Internal error", "error": "The service is temporarily unavailable."}),
        )
    }

    /// 503 with `x-should-retry: false`: final for xAI's CLI, though a 5xx (§2.6).
    pub fn unavailable_no_retry() -> Self {
        Self::server_error(503).with_should_retry(false)
    }

    /// An OAuth error body `{"error": code}` with any status (200 included).
    pub fn oauth_error(status: u16, code: &str) -> Self {
        Self::json(
            status,
            &json!({"error": code, "error_description": format!("{code} (injected)")}),
        )
    }

    /// 200, `application/json`, but the body is not valid JSON.
    pub fn malformed_json() -> Self {
        Self::raw(
            200,
            "application/json",
            r#"{"id": "x", "object": "chat.completion", "choices": [{"#,
        )
    }

    /// An HTML page such as a CDN challenge, with the given status.
    pub fn html_page(status: u16) -> Self {
        Self::raw(
            status,
            "text/html; charset=utf-8",
            "<!DOCTYPE html><html><head><title>Just a moment...</title></head>\
             <body>Checking your browser before accessing the site.</body></html>",
        )
    }

    /// 302 to `location` (another origin, typically).
    pub fn redirect(location: &str) -> Self {
        Self::raw(302, "text/plain", "Found").with_header("location", location)
    }
}

struct Queued {
    route: Route,
    fault: Fault,
    after_processing: bool,
}

/// A server's queue of pending faults.
#[derive(Default)]
pub(crate) struct FaultQueue {
    queue: Mutex<VecDeque<Queued>>,
}

impl FaultQueue {
    pub(crate) fn push(&self, route: Route, fault: Fault, after_processing: bool) {
        lock(&self.queue).push_back(Queued {
            route,
            fault,
            after_processing,
        });
    }

    pub(crate) fn clear(&self) {
        lock(&self.queue).clear();
    }

    pub(crate) fn len(&self) -> usize {
        lock(&self.queue).len()
    }

    /// Take the oldest fault waiting for one of `routes`.
    fn take(&self, routes: &[Route]) -> Option<Queued> {
        let mut queue = lock(&self.queue);
        let at = queue
            .iter()
            .position(|q| q.route == Route::Any || routes.contains(&q.route))?;
        queue.remove(at)
    }
}

/// Serve one request: `normal` computes the real answer (and its side effects); a fault
/// queued for `route` may replace, delay or damage it. Returns whether a fault was served.
pub(crate) async fn serve<N>(
    queue: &FaultQueue,
    route: Route,
    wants_sse: bool,
    split_events: bool,
    normal: N,
) -> (Outcome, bool)
where
    N: FnOnce() -> Reply,
{
    serve_for(queue, &[route], wants_sse, split_events, normal).await
}

/// [`serve`] for a request that a fault queued for any of `routes` may hit.
pub(crate) async fn serve_for<N>(
    queue: &FaultQueue,
    routes: &[Route],
    wants_sse: bool,
    split_events: bool,
    normal: N,
) -> (Outcome, bool)
where
    N: FnOnce() -> Reply,
{
    let Some(queued) = queue.take(routes) else {
        return (
            Ok(normal().render(&BodyPlan::default(), split_events)),
            false,
        );
    };
    let damaged = |plan: BodyPlan, normal: N| Ok(normal().render(&plan, split_events));
    let outcome = match queued.fault {
        Fault::Respond(canned) => {
            if queued.after_processing {
                drop(normal());
            }
            Ok(http::build(
                canned.status,
                &canned.headers,
                http::full(Bytes::from(canned.body)),
            ))
        }
        Fault::DropConnection => {
            if queued.after_processing {
                drop(normal());
            }
            Err(Hangup)
        }
        Fault::Oversized { bytes } => {
            if queued.after_processing {
                drop(normal());
            }
            Ok(oversized(bytes, wants_sse))
        }
        Fault::StallBeforeHeaders(pause) => {
            tokio::time::sleep(pause).await;
            damaged(BodyPlan::default(), normal)
        }
        Fault::StallMidBody {
            after_events,
            duration,
        } => damaged(
            BodyPlan {
                stall: Some((after_events, duration)),
                ..BodyPlan::default()
            },
            normal,
        ),
        Fault::CutStream { after_events } => damaged(
            BodyPlan {
                cut_after: Some(after_events),
                ..BodyPlan::default()
            },
            normal,
        ),
        Fault::AbortStream { after_events } => damaged(
            BodyPlan {
                abort_after: Some(after_events),
                ..BodyPlan::default()
            },
            normal,
        ),
    };
    (outcome, true)
}

fn oversized(bytes: usize, sse: bool) -> hyper::Response<http::Body> {
    let (content_type, prefix, suffix): (&str, &'static [u8], &'static [u8]) = if sse {
        ("text/event-stream", b"data: {\"pad\":\"", b"\"}\n\n")
    } else {
        ("application/json", b"{\"pad\":\"", b"\"}")
    };
    http::build(
        200,
        &[("content-type".into(), content_type.into())],
        http::filler_body(prefix, bytes, suffix),
    )
}
