//! [`Metrics`]: the server's Prometheus counters, shown by `GET /metrics` in the
//! OpenMetrics text format.
//!
//! - `serve_requests{route,status}`: requests by route and HTTP status (a stream counts
//!   with the status of its headers, 200, whatever happens later: its end shows in the
//!   access log; a request whose client went away before its head counts as 499);
//! - `serve_request_duration_seconds{route}`: from the request's arrival to the end of its
//!   response body (the last event of a stream, or the client going away);
//! - `serve_upstream_errors{code}`: host and plugin errors answered, by the host's error
//!   code (`rate_limited`, `unauthorized`, `network`, …), streamed or not;
//! - `serve_open_streams`: streams being relayed now;
//! - `serve_quota_used_percent{route}`: the share of a route's included allowance used, from
//!   the last `GET /v1/usage` answer with a percentage;
//! - `serve_token_refreshes{outcome}`: refresh-token redemptions the plugin sent (RFC 6749
//!   section 6: a form `POST` with `grant_type=refresh_token`), seen on their way out by
//!   [`RefreshCounting`], a wrapper of the runtime's HTTP client, by the authorization
//!   server's answer: `ok` (2xx), `refused` (4xx: the grant is gone, log in again),
//!   `failed` (anything else, or no answer).
//!
//! Routes are the fixed set the router serves (anything else is `other`), so a client
//! cannot grow the label space.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use provider_runtime::{ClientFuture, HttpClient};

use crate::Shared;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteStatus {
    route: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabel {
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

type Histograms = Family<RouteLabel, Histogram, fn() -> Histogram>;
type Percent = Gauge<f64, std::sync::atomic::AtomicU64>;

/// The server's counters and the registry they are in: created by the embedder, given to
/// [`ServeState`](crate::ServeState) (whose `GET /metrics` shows it) and to
/// [`RefreshCounting`]. Clones share the same counters.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    requests: Family<RouteStatus, Counter>,
    latency: Histograms,
    upstream_errors: Family<CodeLabel, Counter>,
    open_streams: Gauge,
    refreshes: Family<OutcomeLabel, Counter>,
    quota: Family<QuotaLabel, Percent>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QuotaLabel {
    route: String,
}

fn latency_histogram() -> Histogram {
    // 5 ms … ~82 s.
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// A registry of its own (prefix `serve`) with every counter at zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("serve");
        let requests = Family::<RouteStatus, Counter>::default();
        let latency: Histograms = Family::new_with_constructor(latency_histogram);
        let upstream_errors = Family::<CodeLabel, Counter>::default();
        let open_streams = Gauge::default();
        registry.register(
            "requests",
            "Requests by route and HTTP status",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time from a request's arrival to the end of its response body",
            latency.clone(),
        );
        registry.register(
            "upstream_errors",
            "Host and plugin errors answered, by error code",
            upstream_errors.clone(),
        );
        registry.register(
            "open_streams",
            "Streams being relayed now",
            open_streams.clone(),
        );
        let refreshes = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "token_refreshes",
            "Refresh-token redemptions sent by the plugin, by the authorization server's answer",
            refreshes.clone(),
        );
        let quota = Family::<QuotaLabel, Percent>::default();
        registry.register(
            "quota_used_percent",
            "Share of a route's included allowance used, from the last usage report seen",
            quota.clone(),
        );
        Self {
            inner: Arc::new(Inner {
                registry,
                requests,
                latency,
                upstream_errors,
                open_streams,
                refreshes,
                quota,
            }),
        }
    }

    /// The registry in the OpenMetrics text format (what `GET /metrics` answers).
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.inner.registry)?;
        Ok(text)
    }

    /// One host or plugin error answered to a client.
    pub(crate) fn upstream_error(&self, code: &str) {
        self.inner
            .upstream_errors
            .get_or_create(&CodeLabel {
                code: code.to_owned(),
            })
            .inc();
    }

    /// A usage report's percentage of `route`'s allowance used
    /// (`serve_quota_used_percent`). The route name is the plugin manifest's (a fixed set),
    /// never a client's text.
    pub(crate) fn quota_used(&self, route: &str, percent: f64) {
        self.inner
            .quota
            .get_or_create(&QuotaLabel {
                route: route.to_owned(),
            })
            .set(percent);
    }

    /// Held while a stream is relayed: `serve_open_streams` counts the live ones.
    pub(crate) fn open_stream(&self) -> OpenStream {
        self.inner.open_streams.inc();
        OpenStream(self.clone())
    }

    fn count_request(&self, route: &'static str, status: u16) {
        self.inner
            .requests
            .get_or_create(&RouteStatus { route, status })
            .inc();
    }
}

/// The route label of a path: one of the router's routes, or `other`.
fn route_of(path: &str) -> &'static str {
    match path {
        "/v1/models" => "/v1/models",
        "/v1/usage" => "/v1/usage",
        "/v1/chat/completions" => "/v1/chat/completions",
        "/v1/responses" => "/v1/responses",
        "/v1/messages" => "/v1/messages",
        "/v1/messages/count_tokens" => "/v1/messages/count_tokens",
        "/healthz" => "/healthz",
        "/metrics" => "/metrics",
        _ => "other",
    }
}

/// The runtime's HTTP client, with the plugin's refresh-token redemptions counted on the
/// way (`serve_token_refreshes`) in the [`Metrics`] given. Only the method, content type
/// and `grant_type` field are looked at; nothing of a request or its answer is kept.
#[derive(Debug)]
pub struct RefreshCounting {
    inner: Arc<dyn HttpClient>,
    metrics: Metrics,
}

impl RefreshCounting {
    /// `inner` (the runtime's client, say [`provider_runtime::default_http_client`]),
    /// counting refreshes in `metrics`.
    pub fn new(inner: Arc<dyn HttpClient>, metrics: Metrics) -> Self {
        Self { inner, metrics }
    }
}

impl HttpClient for RefreshCounting {
    fn send(&self, request: http::Request<Bytes>) -> ClientFuture {
        let refresh = is_refresh(&request);
        let sent = self.inner.send(request);
        if !refresh {
            return sent;
        }
        let metrics = self.metrics.clone();
        Box::pin(async move {
            let answer = sent.await;
            let outcome = match &answer {
                Ok(r) if r.status().is_success() => "ok",
                Ok(r) if r.status().is_client_error() => "refused",
                _ => "failed",
            };
            metrics
                .inner
                .refreshes
                .get_or_create(&OutcomeLabel { outcome })
                .inc();
            answer
        })
    }
}

/// A form `POST` whose `grant_type` is `refresh_token` (RFC 6749 section 6).
fn is_refresh(request: &http::Request<Bytes>) -> bool {
    let form = request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    request.method() == http::Method::POST
        && form
        && form_urlencoded::parse(request.body())
            .any(|(k, v)| k == "grant_type" && v == "refresh_token")
}

/// Held while a stream is relayed: `serve_open_streams` counts the live ones.
pub(crate) struct OpenStream(Metrics);

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.inner.open_streams.dec();
    }
}

/// The status a request is counted (and logged) with when its client went away before
/// the response head: nginx's "client closed request".
pub const CLIENT_CLOSED: u16 = 499;

/// Counts a request as [`CLIENT_CLOSED`] (and times it) if dropped before it is answered.
struct Unanswered {
    done: Option<Done>,
}

impl Drop for Unanswered {
    fn drop(&mut self) {
        if let Some(done) = &self.done {
            done.metrics.count_request(done.route, CLIENT_CLOSED);
        }
    }
}

/// Middleware: counts every request and times it to the end of its body; a request whose
/// client goes away before the head counts as [`CLIENT_CLOSED`].
pub(crate) async fn track(
    State(metrics): State<Metrics>,
    request: Request,
    next: Next,
) -> Response {
    let began = Instant::now();
    let route = route_of(request.uri().path());
    let mut unanswered = Unanswered {
        done: Some(Done {
            metrics: metrics.clone(),
            route,
            began,
        }),
    };
    let response = next.run(request).await;
    let done = unanswered.done.take();
    metrics.count_request(route, response.status().as_u16());
    let (parts, body) = response.into_parts();
    let timed = Timed { inner: body, done };
    Response::from_parts(parts, Body::new(timed))
}

/// Observes the latency once, when the body ends or is dropped (client gone).
struct Done {
    metrics: Metrics,
    route: &'static str,
    began: Instant,
}

impl Drop for Done {
    fn drop(&mut self) {
        self.metrics
            .inner
            .latency
            .get_or_create(&RouteLabel { route: self.route })
            .observe(self.began.elapsed().as_secs_f64());
    }
}

struct Timed {
    inner: Body,
    done: Option<Done>,
}

impl http_body::Body for Timed {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(None) = polled {
            self.done = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// `GET /metrics`. Needs no API key: it tells counts, routes, statuses and error codes,
/// never a tenant, a model, a key or a prompt.
pub(crate) async fn scrape(State(state): State<Shared>) -> Response {
    let Ok(text) = state.metrics.encode() else {
        return axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
