//! Response bodies: whole, piecewise under a fault plan (cut, abort, stall), and oversized
//! filler.

use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::Response;
use hyper::body::Frame;
use tokio::sync::mpsc;

/// Response body type of both servers.
pub(crate) type Body = BoxBody<Bytes, io::Error>;

/// A response before rendering: a whole body, or server-sent events.
pub(crate) enum Reply {
    /// A body sent in one piece (headers carry its content type).
    Full {
        status: u16,
        headers: Vec<(String, String)>,
        body: Bytes,
    },
    /// An event stream; each entry is one complete SSE event.
    Sse {
        headers: Vec<(String, String)>,
        events: Vec<Bytes>,
    },
}

impl Reply {
    /// A JSON body.
    pub(crate) fn json(status: u16, value: &serde_json::Value) -> Self {
        Reply::Full {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: Bytes::from(value.to_string()),
        }
    }

    /// A body with the given content type.
    pub(crate) fn raw(status: u16, content_type: &str, body: impl Into<Bytes>) -> Self {
        Reply::Full {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body: body.into(),
        }
    }

    /// An SSE stream.
    pub(crate) fn sse(events: Vec<Bytes>) -> Self {
        Reply::Sse {
            headers: vec![
                ("content-type".into(), "text/event-stream".into()),
                ("cache-control".into(), "no-cache".into()),
            ],
            events,
        }
    }

    /// Add a header.
    pub(crate) fn with_header(mut self, name: &str, value: &str) -> Self {
        match &mut self {
            Reply::Full { headers, .. } | Reply::Sse { headers, .. } => {
                headers.push((name.to_owned(), value.to_owned()))
            }
        }
        self
    }

    /// Build the hyper response, applying `plan` to the body.
    pub(crate) fn render(self, plan: &BodyPlan, split_events: bool) -> Response<Body> {
        match self {
            Reply::Full {
                status,
                headers,
                body,
            } => {
                let len = body.len();
                let body = if plan.is_clean() {
                    full(body)
                } else {
                    // A whole body counts as two pieces, so "after 1" means mid-body.
                    let mid = len / 2;
                    piece_body(vec![body.slice(..mid), body.slice(mid..)], *plan, false)
                };
                let mut response = build(status, &headers, body);
                // Declared length makes a cut body detectable as incomplete.
                response.headers_mut().insert(
                    hyper::header::CONTENT_LENGTH,
                    hyper::header::HeaderValue::from(len),
                );
                response
            }
            Reply::Sse { headers, events } => {
                build(200, &headers, piece_body(events, *plan, split_events))
            }
        }
    }
}

/// Build a response; header names or values that are not valid HTTP are skipped.
pub(crate) fn build(status: u16, headers: &[(String, String)], body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    *response.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in headers {
        if let (Ok(n), Ok(v)) = (
            hyper::header::HeaderName::from_bytes(name.as_bytes()),
            hyper::header::HeaderValue::from_str(value),
        ) {
            response.headers_mut().append(n, v);
        }
    }
    response
}

/// A body sent at once.
pub(crate) fn full(bytes: Bytes) -> Body {
    Full::new(bytes)
        .map_err(|never: Infallible| match never {})
        .boxed()
}

/// How a piecewise body misbehaves. Indices count pieces (SSE events) already sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct BodyPlan {
    /// End the body cleanly after this many pieces.
    pub cut_after: Option<usize>,
    /// Abort the connection (no terminating chunk) after this many pieces.
    pub abort_after: Option<usize>,
    /// Pause after this many pieces for the duration.
    pub stall: Option<(usize, Duration)>,
}

impl BodyPlan {
    fn is_clean(&self) -> bool {
        *self == BodyPlan::default()
    }
}

type FrameResult = std::result::Result<Frame<Bytes>, io::Error>;

/// A body fed by a task through a channel.
struct ChannelBody {
    rx: mpsc::Receiver<FrameResult>,
}

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<FrameResult>> {
        self.rx.poll_recv(cx)
    }
}

/// Send `pieces` one by one, following `plan`. With `split`, every piece goes out as two
/// chunks cut at its byte midpoint (clients must buffer partial events, even mid UTF-8).
fn piece_body(pieces: Vec<Bytes>, plan: BodyPlan, split: bool) -> Body {
    let (tx, rx) = mpsc::channel::<FrameResult>(4);
    tokio::spawn(async move {
        let count = pieces.len();
        for index in 0..=count {
            if let Some((at, pause)) = plan.stall
                && (at == index || (at > count && index == count))
            {
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = tx.closed() => return,
                }
            }
            if plan.cut_after == Some(index) {
                return;
            }
            if plan
                .abort_after
                .is_some_and(|at| at == index || (at > count && index == count))
            {
                let _ = tx
                    .send(Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        "stream cut by a fault",
                    )))
                    .await;
                return;
            }
            let Some(piece) = pieces.get(index) else {
                return;
            };
            let chunks = if split && piece.len() > 1 {
                let mid = piece.len() / 2;
                vec![piece.slice(..mid), piece.slice(mid..)]
            } else {
                vec![piece.clone()]
            };
            for chunk in chunks {
                if tx.send(Ok(Frame::data(chunk))).await.is_err() {
                    return;
                }
            }
        }
    });
    ChannelBody { rx }.boxed()
}

/// A well-formed body of exactly `total` bytes: `prefix`, filler `x`s, `suffix`, sent in
/// 64 KiB chunks without a declared length, so only a client-side size cap stops it.
pub(crate) fn filler_body(prefix: &'static [u8], total: usize, suffix: &'static [u8]) -> Body {
    let (tx, rx) = mpsc::channel::<FrameResult>(2);
    tokio::spawn(async move {
        const CHUNK: usize = 64 * 1024;
        let filler_len = total.saturating_sub(prefix.len() + suffix.len());
        if tx
            .send(Ok(Frame::data(Bytes::from_static(prefix))))
            .await
            .is_err()
        {
            return;
        }
        let block = Bytes::from(vec![b'x'; CHUNK]);
        let mut left = filler_len;
        while left > 0 {
            let n = left.min(CHUNK);
            if tx.send(Ok(Frame::data(block.slice(..n)))).await.is_err() {
                return;
            }
            left -= n;
        }
        let _ = tx.send(Ok(Frame::data(Bytes::from_static(suffix)))).await;
    });
    ChannelBody { rx }.boxed()
}
