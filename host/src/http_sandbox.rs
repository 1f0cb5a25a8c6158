//! Outgoing HTTP for plugins: `wasmtime-wasi-http` with a `send_request` hook that allows
//! only configured origins, caps timeouts, and caps response bodies.
//!
//! A refused request fails with `HttpRequestDenied`, which the guest sees as
//! `error-code::HTTP-request-denied` (the plugin reports `denied_by_sandbox`). Redirects are
//! never followed here: a 3xx is handed to the plugin as is. Allowed requests go out through
//! the runtime's keep-alive pool ([`crate::http_pool`]).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http_body_util::BodyExt;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use crate::config::Origin;
use crate::http_pool::{BodyCaps, HttpPool};

/// Host-side caps that a plugin cannot raise.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// Longest wait for a connection.
    pub connect_timeout: Duration,
    /// Longest wait for the response head.
    pub first_byte_timeout: Duration,
    /// Longest silence inside a response body.
    pub between_bytes_timeout: Duration,
    /// Largest response body; past it the body fails with `HTTP-response-body-size`.
    pub max_response_body_bytes: u64,
    /// Largest `text/event-stream` response (a streamed reply): mostly event framing, read
    /// event by event, so it may be far larger than a JSON answer.
    pub max_event_stream_bytes: u64,
    /// Largest request body; past it the request fails with `HTTP-request-body-size`
    /// (request bodies are read whole before they are sent).
    pub max_request_body_bytes: u64,
    /// How long a refused request's body is drained before it is dropped.
    pub denied_body_drain: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(15),
            first_byte_timeout: Duration::from_secs(300),
            between_bytes_timeout: Duration::from_secs(120),
            max_response_body_bytes: 16 * 1024 * 1024,
            max_event_stream_bytes: 256 * 1024 * 1024,
            max_request_body_bytes: 16 * 1024 * 1024,
            denied_body_drain: Duration::from_secs(5),
        }
    }
}

/// The `wasi:http` hooks of one tenant session.
pub struct SandboxHooks {
    allowed: Arc<[Origin]>,
    limits: HttpLimits,
    denied: Arc<AtomicU64>,
    pool: HttpPool,
}

impl SandboxHooks {
    /// Hooks allowing exactly `allowed`, sending through `pool`; each refusal increments
    /// `denied`.
    pub(crate) fn new(
        allowed: Arc<[Origin]>,
        limits: HttpLimits,
        denied: Arc<AtomicU64>,
        pool: HttpPool,
    ) -> Self {
        Self {
            allowed,
            limits,
            denied,
            pool,
        }
    }

    fn is_allowed(&self, uri: &http::Uri) -> bool {
        let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
            return false;
        };
        Origin::parse(&format!("{scheme}://{authority}"))
            .is_ok_and(|origin| self.allowed.contains(&origin))
    }

    fn clamp(&self, options: Option<RequestOptions>) -> RequestOptions {
        let o = options.unwrap_or_default();
        let cap = |asked: Option<Duration>, max: Duration| Some(asked.map_or(max, |a| a.min(max)));
        RequestOptions {
            connect_timeout: cap(o.connect_timeout, self.limits.connect_timeout),
            first_byte_timeout: cap(o.first_byte_timeout, self.limits.first_byte_timeout),
            between_bytes_timeout: cap(o.between_bytes_timeout, self.limits.between_bytes_timeout),
        }
    }
}

type SendFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), HttpError>> + Send>,
                ),
                HttpError,
            >,
        > + Send,
>;

impl WasiHttpHooks for SandboxHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> SendFuture {
        if !self.is_allowed(request.uri()) {
            self.denied.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                scheme = request.uri().scheme_str().unwrap_or(""),
                authority = request.uri().authority().map(|a| a.as_str()).unwrap_or(""),
                "sandbox denied an outgoing request"
            );
            // Keep the body's receiving end alive and drained for a while: a guest still
            // writing the body must see the denial on the response, not a broken pipe.
            let mut body = request.into_body();
            let drain_for = self.limits.denied_body_drain;
            tokio::spawn(async move {
                let _ = tokio::time::timeout(drain_for, async {
                    while let Some(Ok(_)) = body.frame().await {}
                })
                .await;
            });
            return Box::new(async { Err(HttpError::HttpRequestDenied) });
        }
        let options = self.clamp(options);
        let caps = BodyCaps {
            request: self.limits.max_request_body_bytes,
            response: self.limits.max_response_body_bytes,
            event_stream: self.limits.max_event_stream_bytes,
        };
        let pool = self.pool.clone();
        Box::new(async move {
            let response = pool.send(request, options, caps).await?;
            let response = response.map(BodyExt::boxed_unsync);
            // The pool drives its connections itself: no per-request I/O task.
            Ok((
                response,
                Box::new(async { Ok(()) })
                    as Box<dyn Future<Output = Result<(), HttpError>> + Send>,
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hooks(allowed: &[&str]) -> SandboxHooks {
        let allowed: Vec<Origin> = allowed.iter().map(|o| Origin::parse(o).unwrap()).collect();
        SandboxHooks::new(
            allowed.into(),
            HttpLimits::default(),
            Default::default(),
            HttpPool::new(Duration::from_secs(1)),
        )
    }

    #[test]
    fn only_exact_origins_pass() {
        let h = hooks(&["https://auth.x.ai", "http://127.0.0.1:8080"]);
        let ok = |u: &str| h.is_allowed(&u.parse().unwrap());
        assert!(ok("https://auth.x.ai/oauth2/token"));
        assert!(ok("https://auth.x.ai:443/x"));
        assert!(ok("http://127.0.0.1:8080/v1"));
        assert!(!ok("http://auth.x.ai/oauth2/token"));
        assert!(!ok("https://auth.x.ai.evil.com/"));
        assert!(!ok("https://evil.com/"));
        assert!(!ok("http://127.0.0.1:8081/"));
        assert!(!ok("/relative"));
    }

    #[test]
    fn timeouts_are_capped_not_raised() {
        let h = hooks(&[]);
        let asked = RequestOptions {
            connect_timeout: Some(Duration::from_secs(3600)),
            first_byte_timeout: Some(Duration::from_secs(1)),
            between_bytes_timeout: None,
        };
        let got = h.clamp(Some(asked));
        assert_eq!(got.connect_timeout, Some(Duration::from_secs(15)));
        assert_eq!(got.first_byte_timeout, Some(Duration::from_secs(1)));
        assert_eq!(got.between_bytes_timeout, Some(Duration::from_secs(120)));
    }
}
