//! Outgoing connections of every session of a runtime, behind the [`HttpClient`] trait (an
//! embedder may bring its own client; the sandbox's caps and timeouts apply to it all the
//! same, since [`HttpPool::send`] enforces them around `send`).
//!
//! The sandbox hook ([`crate::http_sandbox`]) decides *whether* a request may leave; this
//! module decides *how*. Here: the client seam, and the caps and timeouts around it (whole
//! request bodies, first-byte and between-bytes timeouts, response size caps). The default
//! client (a keep-alive pool that checks the addresses it connects to) is in `client`, the
//! mapping of its failures to wasi-http's error codes in `classify`, the check of the
//! environment's proxy settings in `proxy_env`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody};

mod classify;
mod client;
mod proxy_env;
#[cfg(test)]
mod tests;

pub use client::{ConnectionOptions, default_http_client};
pub(crate) use proxy_env::proxy_env_problem;

/// A response body as an [`HttpClient`] streams it; its errors are wasi-http's codes.
pub type ClientBody = http_body_util::combinators::UnsyncBoxBody<Bytes, HttpError>;

/// What an [`HttpClient`] answers: the response head, with its body still streaming.
pub type ClientFuture =
    Pin<Box<dyn Future<Output = Result<http::Response<ClientBody>, HttpError>> + Send>>;

/// Sends a request the sandbox let through. The request has an absolute URI and its whole
/// body; the host bounds the wait for the response head (first-byte timeout), each body
/// frame (between-bytes timeout) and the body's size itself, around this call. Redirects
/// must not be followed (a 3xx goes back to the plugin as is).
pub trait HttpClient: std::fmt::Debug + Send + Sync + 'static {
    /// Sends `request` and answers its response head.
    fn send(&self, request: http::Request<Bytes>) -> ClientFuture;
}

/// The runtime's sender of outgoing requests: an [`HttpClient`] (the keep-alive pool by
/// default) with the host's caps and timeouts around it. Cheap to clone.
#[derive(Clone)]
pub(crate) struct HttpPool {
    client: Arc<dyn HttpClient>,
}

impl std::fmt::Debug for HttpPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpPool").finish_non_exhaustive()
    }
}

impl HttpPool {
    /// The default pool, whose connection attempts give up after `connect_timeout` (tests).
    #[cfg(test)]
    pub(crate) fn new(connect_timeout: Duration) -> Self {
        Self::over(default_http_client(connect_timeout))
    }

    /// Requests sent by `client` (an embedder's).
    pub(crate) fn over(client: Arc<dyn HttpClient>) -> Self {
        Self { client }
    }

    /// Sends `request` (absolute URI) through the client.
    ///
    /// The request body is read whole first (at most `caps.request`) and sent with a
    /// `content-length`: one write instead of a chunked stream fed piece by piece from the
    /// guest. A guest must therefore finish its body before the response can start (as the
    /// plugin always does). A new connection must be made within the pool's connect
    /// timeout; the body read and the response head must come within the first-byte
    /// timeout, counted from now; each later body frame within the between-bytes timeout;
    /// past its cap (`caps.response`, or `caps.event_stream` for an event stream) the
    /// response body fails.
    pub(crate) async fn send(
        &self,
        request: http::Request<WasiBody>,
        options: RequestOptions,
        caps: BodyCaps,
    ) -> Result<http::Response<ResponseBody>, HttpError> {
        let first_byte = options.first_byte_timeout.unwrap_or(Duration::MAX);
        let between_bytes = options.between_bytes_timeout.unwrap_or(Duration::MAX);
        let exchange = async {
            let (parts, body) = request.into_parts();
            let body = read_whole(body, caps.request).await?;
            self.client
                .send(http::Request::from_parts(parts, body))
                .await
        };
        let response = tokio::time::timeout(first_byte, exchange)
            .await
            .map_err(|_| HttpError::HttpResponseTimeout)??;
        let is_event_stream = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("text/event-stream")
            });
        let max = if is_event_stream {
            caps.event_stream
        } else {
            caps.response
        };
        Ok(response.map(|incoming| ResponseBody::new(incoming, between_bytes, max)))
    }
}

/// Size caps on the bodies of one request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyCaps {
    /// The request body (read whole before sending).
    pub(crate) request: u64,
    /// A response body.
    pub(crate) response: u64,
    /// A `text/event-stream` response: a long streamed reply is mostly event framing, and
    /// it is read event by event, never held whole.
    pub(crate) event_stream: u64,
}

/// The whole body, or `HttpRequestBodySize` past `max` bytes.
async fn read_whole(mut body: WasiBody, max: u64) -> Result<Bytes, HttpError> {
    let mut whole = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            if whole.len() as u64 + data.len() as u64 > max {
                return Err(HttpError::HttpRequestBodySize(Some(max)));
            }
            whole.extend_from_slice(&data);
        }
    }
    Ok(whole.freeze())
}

/// A response body whose frames must each arrive within a time budget, and that fails
/// with `HTTP-response-body-size` once more than `max` bytes came through.
pub(crate) struct ResponseBody {
    inner: ClientBody,
    between_bytes: Duration,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    seen: u64,
    max: u64,
}

impl ResponseBody {
    fn new(inner: ClientBody, between_bytes: Duration, max: u64) -> Self {
        Self {
            inner,
            between_bytes,
            deadline: None,
            seen: 0,
            max,
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let this = &mut *self;
        if this.seen > this.max {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                // The next frame gets a fresh budget, armed only once it is waited for.
                this.deadline = None;
                let Some(frame) = frame else {
                    return Poll::Ready(None);
                };
                if let Ok(data) = frame.as_ref().map(Frame::data_ref)
                    && let Some(data) = data
                {
                    this.seen += data.len() as u64;
                    if this.seen > this.max {
                        return Poll::Ready(Some(Err(HttpError::HttpResponseBodySize(Some(
                            this.max,
                        )))));
                    }
                }
                Poll::Ready(Some(frame))
            }
            Poll::Pending => {
                let between = this.between_bytes;
                let Some(at) = tokio::time::Instant::now().checked_add(between) else {
                    return Poll::Pending;
                };
                let deadline = this
                    .deadline
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
                ready!(deadline.as_mut().poll(cx));
                this.deadline = None;
                Poll::Ready(Some(Err(HttpError::ConnectionReadTimeout)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.seen > self.max || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
