//! Outgoing HTTP for plugins: `wasmtime-wasi-http` with a `send_request` hook that allows
//! only configured origins, caps timeouts, caps response bodies, and bounds what one session
//! can make the host hold: requests in flight, their buffered request bodies, the size of a
//! `fields` resource and of a response's header section, and the outgoing-body buffers.
//!
//! A refused request fails with `HttpRequestDenied`, which the guest sees as
//! `error-code::HTTP-request-denied` (the plugin reports `denied_by_sandbox`). An origin
//! that is only the plugin's own default (not set by the operator) is refused here when it
//! names plain http, `localhost` or a non-public address, and is sent with
//! [`Reach::Public`], which the pool checks on every address it connects to after DNS (a
//! name resolving to a private address is refused the same way). Redirects are
//! never followed here: a 3xx is handed to the plugin as is. Allowed requests go out through
//! the runtime's keep-alive pool ([`crate::default_http_client`]).
//!
//! This file holds the caps ([`HttpLimits`]) and the hooks' decisions; what the requests
//! in flight of a session hold, and how it is counted, is in `http_sandbox/budget.rs`.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http_body_util::BodyExt;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use crate::HttpClient;
use crate::config::{AllowedOrigin, Origin, Reach};
use crate::host_config::ResolvedConfig;
use crate::http_pool::{BodyCaps, HttpPool};
use crate::outbound::{OutboundPolicy, OutboundRequest};

mod budget;

use budget::{CountedBody, HeldBody, HttpBudget, Permit, header_bytes};

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
    /// Most requests of one session in flight at once (sent and not yet answered, or
    /// answered with a body not yet read to its end or dropped); past it a request fails
    /// at once with `internal-error("too many outstanding requests ...")`.
    pub max_outstanding_requests: usize,
    /// Most request-body bytes the host buffers for one session's requests in flight
    /// (bodies are read whole before they are sent, and stay counted until the exchange
    /// ends); past it the request being read fails with `HTTP-request-body-size` carrying
    /// this number. At least [`Self::max_request_body_bytes`].
    pub max_buffered_request_body_bytes: u64,
    /// Largest `fields` resource (headers or trailers) a plugin may build, in wasi-http's
    /// accounting (bytes of names and values plus a per-entry overhead); past it
    /// `set`/`append`/`from-list` fail with `header-error` `size-exceeded`.
    pub max_fields_bytes: usize,
    /// Largest response header section, same accounting; past it the response fails with
    /// `HTTP-response-header-section-size` (a plugin can clone and mutate it, so it is held
    /// to a bound like the plugin's own fields).
    pub max_response_header_bytes: usize,
    /// Size of the chunks an outgoing body's stream accepts; each body not yet sent
    /// buffers at most two.
    pub outgoing_body_chunk_bytes: usize,
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
            max_outstanding_requests: 16,
            max_buffered_request_body_bytes: 32 * 1024 * 1024,
            max_fields_bytes: 16 * 1024,
            max_response_header_bytes: 32 * 1024,
            outgoing_body_chunk_bytes: 32 * 1024,
        }
    }
}

/// The `wasi:http` hooks of one tenant session: the sandbox. An embedder with its own
/// store data lends one as the `hooks` of its `WasiHttpCtxView` (see
/// [`crate::capabilities`]); a [`Runtime`](crate::Runtime)'s sessions do the same.
pub struct SandboxHooks {
    tenant: Arc<str>,
    allowed: Arc<[AllowedOrigin]>,
    policy: Option<Arc<dyn OutboundPolicy>>,
    limits: HttpLimits,
    denied: Arc<AtomicU64>,
    pool: HttpPool,
    budget: Arc<HttpBudget>,
}

impl SandboxHooks {
    /// Hooks for `tenant`'s session: requests may go to `config`'s allowlist only (and,
    /// among those, where its outbound policy lets them), within `limits`, sent by
    /// `client` (say [`crate::default_http_client`]).
    pub fn new(
        tenant: &str,
        config: &ResolvedConfig,
        limits: HttpLimits,
        client: Arc<dyn HttpClient>,
    ) -> Self {
        Self::with_pool(
            tenant.into(),
            config.allowed_origins.clone(),
            config.policy.clone(),
            limits,
            Arc::default(),
            HttpPool::over(client),
        )
    }

    /// Requests these hooks refused so far.
    pub fn denied_requests(&self) -> u64 {
        self.denied.load(Ordering::Relaxed)
    }

    /// Hooks allowing exactly `allowed` (and, among those, what `policy` lets through),
    /// sending through `pool`; each refusal increments `denied` (a session's counter, which
    /// outlives its instances).
    pub(crate) fn with_pool(
        tenant: Arc<str>,
        allowed: Arc<[AllowedOrigin]>,
        policy: Option<Arc<dyn OutboundPolicy>>,
        limits: HttpLimits,
        denied: Arc<AtomicU64>,
        pool: HttpPool,
    ) -> Self {
        Self {
            tenant,
            allowed,
            policy,
            limits,
            denied,
            pool,
            budget: Arc::default(),
        }
    }

    #[cfg(test)]
    fn is_allowed(&self, uri: &http::Uri) -> bool {
        self.verdict(uri).is_ok()
    }

    /// Which addresses a request to `uri` may reach, or why it may not leave at all.
    fn verdict(&self, uri: &http::Uri) -> Result<Reach, &'static str> {
        let origin = Origin::of_uri(uri).map_err(|_| "not an allowed URL")?;
        let entry = self
            .allowed
            .iter()
            .find(|e| e.origin == origin)
            .ok_or("not on the allowlist")?;
        if entry.operator_set {
            return Ok(Reach::Any);
        }
        match origin.default_refusal() {
            Some(why) => Err(why),
            None => Ok(Reach::Public),
        }
    }

    /// The embedder's verdict on an allowlisted request.
    fn policy_refusal(&self, request: &http::Request<WasiBody>) -> Option<String> {
        let policy = self.policy.as_ref()?;
        let origin = Origin::of_uri(request.uri()).ok()?;
        policy
            .check(&OutboundRequest {
                tenant: &self.tenant,
                origin: &origin,
                method: request.method(),
                path: request.uri().path(),
            })
            .err()
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
        let (refusal, reach) = match self.verdict(request.uri()) {
            Ok(reach) => (self.policy_refusal(&request), reach),
            Err(why) => (Some(why.to_owned()), Reach::Public),
        };
        if let Some(reason) = refusal {
            self.denied.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                tenant = &*self.tenant,
                scheme = request.uri().scheme_str().unwrap_or(""),
                authority = request.uri().authority().map(|a| a.as_str()).unwrap_or(""),
                reason,
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
        let max_outstanding = self.limits.max_outstanding_requests;
        let Some(permit) = Permit::acquire(&self.budget, max_outstanding) else {
            tracing::warn!(
                limit = max_outstanding,
                "sandbox refused an outgoing request: too many outstanding requests"
            );
            return Box::new(async move {
                Err(HttpError::InternalError(Some(format!(
                    "too many outstanding requests (at most {max_outstanding} per session)"
                ))))
            });
        };
        let max_buffered = self.limits.max_buffered_request_body_bytes;
        let body_permit = permit.clone();
        let mut request = request;
        request.extensions_mut().insert(reach);
        let request = request.map(move |inner| {
            CountedBody {
                inner,
                permit: body_permit,
                max: max_buffered,
            }
            .boxed_unsync()
        });
        let max_headers = self.limits.max_response_header_bytes;
        let options = self.clamp(options);
        let caps = BodyCaps {
            request: self.limits.max_request_body_bytes,
            response: self.limits.max_response_body_bytes,
            event_stream: self.limits.max_event_stream_bytes,
        };
        let pool = self.pool.clone();
        let denied = self.denied.clone();
        let tenant = self.tenant.clone();
        let authority = request
            .uri()
            .authority()
            .map(|a| a.as_str().to_owned())
            .unwrap_or_default();
        Box::new(async move {
            let response = match pool.send(request, options, caps).await {
                Ok(r) => r,
                Err(HttpError::HttpRequestDenied) => {
                    // The pool refused the address the name resolved to.
                    denied.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        tenant = &*tenant,
                        authority,
                        reason = "resolves to an address only an operator-set endpoint may reach",
                        "sandbox denied an outgoing request"
                    );
                    return Err(HttpError::HttpRequestDenied);
                }
                Err(e) => return Err(e),
            };
            if header_bytes(response.headers()) > max_headers {
                return Err(HttpError::HttpResponseHeaderSectionSize(Some(
                    u32::try_from(max_headers).unwrap_or(u32::MAX),
                )));
            }
            let response = response.map(|inner| {
                HeldBody {
                    inner: inner.boxed_unsync(),
                    permit: Some(permit),
                }
                .boxed_unsync()
            });
            // The pool drives its connections itself: no per-request I/O task.
            Ok((
                response,
                Box::new(async { Ok(()) })
                    as Box<dyn Future<Output = Result<(), HttpError>> + Send>,
            ))
        })
    }

    fn p2_outgoing_body_chunk_size(&mut self) -> usize {
        self.limits.outgoing_body_chunk_bytes.max(1)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use bytes::Bytes;

    use super::*;

    fn hooks(allowed: &[&str]) -> SandboxHooks {
        let allowed: Vec<AllowedOrigin> = allowed
            .iter()
            .map(|o| AllowedOrigin {
                origin: Origin::parse(o).unwrap(),
                operator_set: true,
            })
            .collect();
        SandboxHooks::with_pool(
            "tenant-1".into(),
            allowed.into(),
            None,
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
    fn a_plugins_own_default_reaches_public_https_only() {
        let mut h = hooks(&["http://127.0.0.1:8080", "https://10.0.0.1"]);
        let defaults = [
            "https://api.example",
            "https://169.254.169.254",
            "https://[::ffff:169.254.169.254]",
            "https://localhost:8443",
            "http://127.0.0.1:8081",
        ];
        let mut allowed = h.allowed.to_vec();
        allowed.extend(defaults.iter().map(|o| AllowedOrigin {
            origin: Origin::parse(o).unwrap(),
            operator_set: false,
        }));
        h.allowed = allowed.into();
        let verdict = |u: &str| h.verdict(&u.parse().unwrap());
        assert_eq!(verdict("http://127.0.0.1:8080/x"), Ok(Reach::Any));
        assert_eq!(verdict("https://10.0.0.1/x"), Ok(Reach::Any));
        assert_eq!(verdict("https://api.example/x"), Ok(Reach::Public));
        for refused in &defaults[1..] {
            assert!(verdict(&format!("{refused}/x")).is_err(), "{refused}");
        }
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

    /// Answers every request with 204 and counts them.
    #[derive(Debug, Default)]
    struct Answering(AtomicUsize);

    impl HttpClient for Answering {
        fn send(&self, _request: http::Request<Bytes>) -> crate::ClientFuture {
            self.0.fetch_add(1, Ordering::Relaxed);
            Box::pin(async {
                let body = http_body_util::Empty::new().map_err(|e| match e {});
                Ok(http::Response::builder()
                    .status(204)
                    .body(body.boxed_unsync())
                    .unwrap())
            })
        }
    }

    async fn send(hooks: &mut SandboxHooks, url: &str) -> Result<u16, HttpError> {
        let request = http::Request::get(url)
            .body(
                http_body_util::Empty::new()
                    .map_err(|e| match e {})
                    .boxed_unsync(),
            )
            .unwrap();
        let sent = hooks.send_request(request, None, Box::new(async { Ok(()) }));
        let (response, _io) = Box::into_pin(sent).await?;
        Ok(response.status().as_u16())
    }

    #[tokio::test]
    async fn an_embedders_hooks_send_what_the_config_allows_through_its_client() {
        let client = Arc::new(Answering::default());
        // Nothing allowed: refused before the client, and counted.
        let mut closed = SandboxHooks::new(
            "tenant-1",
            &ResolvedConfig::default(),
            HttpLimits::default(),
            client.clone(),
        );
        let refused = send(&mut closed, "https://api.example/v1").await;
        assert!(
            matches!(refused, Err(HttpError::HttpRequestDenied)),
            "{refused:?}"
        );
        assert_eq!(closed.denied_requests(), 1);
        assert_eq!(client.0.load(Ordering::Relaxed), 0);

        let config = ResolvedConfig {
            allowed_origins: vec![AllowedOrigin {
                origin: Origin::parse("https://api.example").unwrap(),
                operator_set: true,
            }]
            .into(),
            ..ResolvedConfig::default()
        };
        let mut open =
            SandboxHooks::new("tenant-1", &config, HttpLimits::default(), client.clone());
        assert_eq!(
            send(&mut open, "https://api.example/v1").await.unwrap(),
            204
        );
        assert!(send(&mut open, "https://other.example/").await.is_err());
        assert_eq!(client.0.load(Ordering::Relaxed), 1);
        assert_eq!(open.denied_requests(), 1);
    }
}
