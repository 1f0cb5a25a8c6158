//! `GET /metrics`: Prometheus counters of the server, in the OpenMetrics text format.
//!
//! - `serve_requests{route,status}`: requests by route and HTTP status (a stream counts
//!   with the status of its headers, 200, whatever happens later: its end shows in the
//!   access log);
//! - `serve_request_duration_seconds{route}`: from the request's arrival to the end of its
//!   response body (the last event of a stream, or the client going away);
//! - `serve_upstream_errors{code}`: host and plugin errors answered, by the host's error
//!   code (`rate_limited`, `unauthorized`, `network`, …), streamed or not;
//! - `serve_open_streams`: streams being relayed now.
//!
//! Token refreshes are not counted: the plugin redeems the refresh token inside its own
//! export calls, and nothing of it reaches serve (the host library reports no such event).
//!
//! Routes are the fixed set the router serves (anything else is `other`), so a client
//! cannot grow the label space.

use std::pin::Pin;
use std::sync::LazyLock;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use axum::extract::Request;
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

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

type Histograms = Family<RouteLabel, Histogram, fn() -> Histogram>;

struct Metrics {
    registry: Registry,
    requests: Family<RouteStatus, Counter>,
    latency: Histograms,
    upstream_errors: Family<CodeLabel, Counter>,
    open_streams: Gauge,
}

fn latency_histogram() -> Histogram {
    // 5 ms … ~82 s.
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
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
    Metrics {
        registry,
        requests,
        latency,
        upstream_errors,
        open_streams,
    }
});

/// The route label of a path: one of the router's routes, or `other`.
fn route_of(path: &str) -> &'static str {
    match path {
        "/v1/models" => "/v1/models",
        "/v1/chat/completions" => "/v1/chat/completions",
        "/v1/responses" => "/v1/responses",
        "/healthz" => "/healthz",
        "/metrics" => "/metrics",
        _ => "other",
    }
}

/// One host or plugin error answered to a client.
pub fn upstream_error(code: &str) {
    METRICS
        .upstream_errors
        .get_or_create(&CodeLabel {
            code: code.to_owned(),
        })
        .inc();
}

/// Held while a stream is relayed: `serve_open_streams` counts the live ones.
pub struct OpenStream(());

impl OpenStream {
    pub fn start() -> Self {
        METRICS.open_streams.inc();
        Self(())
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        METRICS.open_streams.dec();
    }
}

/// Middleware: counts every request and times it to the end of its body.
pub async fn track(request: Request, next: Next) -> Response {
    let began = Instant::now();
    let route = route_of(request.uri().path());
    let response = next.run(request).await;
    METRICS
        .requests
        .get_or_create(&RouteStatus {
            route,
            status: response.status().as_u16(),
        })
        .inc();
    let (parts, body) = response.into_parts();
    let timed = Timed {
        inner: body,
        done: Some(Done { route, began }),
    };
    Response::from_parts(parts, Body::new(timed))
}

/// Observes the latency once, when the body ends or is dropped (client gone).
struct Done {
    route: &'static str,
    began: Instant,
}

impl Drop for Done {
    fn drop(&mut self) {
        METRICS
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
/// never a tenant, a model, a key or a prompt (serve listens on loopback only).
pub async fn scrape() -> Response {
    let mut text = String::new();
    if prometheus_client::encoding::text::encode(&mut text, &METRICS.registry).is_err() {
        return axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
