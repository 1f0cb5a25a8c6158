//! One authenticated, parsed turn of a tenant, answered whole or streamed ([`Turn`]), and
//! its access-log line ([`Access`]).
//!
//! Both are cancel-safe: a client that goes away drops the pending call, whose instance
//! goes with it (the runtime's sessions own their instance while a call runs), and the
//! request is logged as [`CLIENT_CLOSED`].

use std::time::Instant;

use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use provider_runtime::HostError;
use provider_runtime::bindings::types::{ChatChunk, ChatReply, ChatRequest};

use crate::Shared;
use crate::metrics::CLIENT_CLOSED;
use crate::wire::ApiError;

/// How one API dialect writes a streamed turn as SSE events.
pub(crate) trait StreamFormat: Send + 'static {
    /// The events before the first chunk.
    fn start(&mut self) -> Vec<Event>;
    /// The events for one chunk of the plugin's stream.
    fn chunk(&mut self, c: &ChatChunk) -> Vec<Event>;
    /// The events after the plugin's stream ended.
    fn finish(&mut self) -> Vec<Event>;
    /// The event for a failure mid-stream (never a silent end).
    fn error(&mut self, e: &ApiError) -> Event;
    /// What keeps a waiting stream alive: an SSE comment line (`:`), unless the dialect
    /// has an event of its own for it (Anthropic's `ping`).
    fn keep_alive(&self) -> KeepAlive {
        KeepAlive::new()
    }
}

/// One access-log line per request (no key, no prompt, no token).
fn access(
    tenant: &str,
    model: &str,
    status: u16,
    began: Instant,
    tokens: Option<u32>,
    stream: bool,
) {
    tracing::info!(
        target: "access",
        tenant, model, status, stream,
        latency_ms = began.elapsed().as_secs_f64() * 1000.0,
        tokens,
        "request"
    );
}

/// The access-log line of one request, written once: with its status when answered, or
/// as 499 (the nginx convention for "client closed the request") when the request is
/// dropped first: a client that gives up still leaves a line.
pub(crate) struct Access {
    tenant: String,
    model: String,
    began: Instant,
    stream: bool,
    written: bool,
}

impl Access {
    pub(crate) fn new(tenant: &str, model: &str, began: Instant, stream: bool) -> Self {
        Self {
            tenant: tenant.to_owned(),
            model: model.to_owned(),
            began,
            stream,
            written: false,
        }
    }

    pub(crate) fn answered(&mut self, status: u16, tokens: Option<u32>) {
        if !std::mem::replace(&mut self.written, true) {
            access(
                &self.tenant,
                &self.model,
                status,
                self.began,
                tokens,
                self.stream,
            );
        }
    }
}

impl Drop for Access {
    fn drop(&mut self) {
        self.answered(CLIENT_CLOSED, None);
    }
}

/// One authenticated, parsed turn of a tenant, served whole or streamed.
pub(crate) struct Turn {
    pub(crate) state: Shared,
    pub(crate) tenant: String,
    pub(crate) model: String,
    pub(crate) began: Instant,
    pub(crate) request: ChatRequest,
}

impl Turn {
    fn access(&self, stream: bool) -> Access {
        Access::new(&self.tenant, &self.model, self.began, stream)
    }

    /// A complete reply, as `render` writes it (its dialect's JSON body). Dropped midway (the client went
    /// away), the call's instance goes with it (the runtime's sessions are cancel-safe)
    /// and the access log says 499.
    pub(crate) async fn whole(self, render: impl FnOnce(&ChatReply) -> Response) -> Response {
        let mut access = self.access(false);
        let answer = match self.state.sessions.lease(&self.tenant).await {
            Ok(mut lease) => lease.session().chat(&self.request).await,
            Err(e) => Err(e),
        };
        match answer {
            Ok(reply) => {
                access.answered(200, reply.usage.map(|u| u.total_tokens));
                render(&reply)
            }
            Err(e) => {
                let response = self.state.host_error(&e, &self.tenant).into_response();
                access.answered(response.status().as_u16(), None);
                response
            }
        }
    }

    /// A streamed reply in `format`, relayed by a task that reads the plugin's stream.
    ///
    /// The response head waits for upstream's at most one keep-alive interval: a failure
    /// by then (no login, a refused key, a spent quota) gets its own HTTP status; past it
    /// the head goes out at once and keep-alives (SSE comments, or the dialect's own
    /// event) follow every interval while the stream waits (a reasoning model may think for minutes; proxies cut idle connections
    /// after 60 to 100 s), after which a failure is an error event.
    pub(crate) async fn streamed(self, format: impl StreamFormat) -> Response {
        let keepalive = self.state.keepalive;
        let keep_alive = format.keep_alive().interval(keepalive);
        let (tx, rx) = tokio::sync::mpsc::channel::<Event>(32);
        let (opened_tx, mut opened_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(self.relay(format, tx, opened_tx));
        let early = match tokio::time::timeout(keepalive, &mut opened_rx).await {
            Ok(outcome) => outcome.ok(),
            Err(_) => {
                // Closed first, so the relay learns the head went out (its send fails and
                // it writes an error as an event), or its answer is already here.
                opened_rx.close();
                opened_rx.try_recv().ok()
            }
        };
        if let Some(Err(error)) = early {
            return error.into_response();
        }
        let events = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv()
                .await
                .map(|e| (Ok::<_, std::convert::Infallible>(e), rx))
        });
        let mut response = Sse::new(events).keep_alive(keep_alive).into_response();
        // nginx buffers proxied responses unless told not to.
        response.headers_mut().insert(
            "x-accel-buffering",
            axum::http::HeaderValue::from_static("no"),
        );
        response
    }

    /// Leases a session, opens the plugin's stream and relays it as `format`'s events into
    /// `tx`; tells `opened` whether the stream opened (an error there is the response's
    /// while the head has not gone out). Stops as soon as the client goes away (`tx`
    /// closed), dropping the pending call and with it the instance's state.
    async fn relay(
        self,
        mut format: impl StreamFormat,
        tx: tokio::sync::mpsc::Sender<Event>,
        opened: tokio::sync::oneshot::Sender<Result<(), ApiError>>,
    ) {
        let mut access = self.access(true);
        let opening = async {
            let mut lease = self.state.sessions.lease(&self.tenant).await?;
            let handle = lease.session().open_chat_stream(&self.request).await?;
            Ok::<_, HostError>((lease, handle))
        };
        let opening = tokio::select! {
            o = opening => o,
            () = tx.closed() => return,
        };
        let (mut lease, handle) = match opening {
            Ok(open) => open,
            Err(e) => {
                let error = self.state.host_error(&e, &self.tenant);
                access.answered(error.status.as_u16(), None);
                if let Err(Err(error)) = opened.send(Err(error)) {
                    // The head went out already: the failure is the stream's first event.
                    let _ = tx.send(format.error(&error)).await;
                }
                return;
            }
        };
        let _ = opened.send(Ok(()));
        let _open = self.state.metrics.open_stream();
        let mut tokens = None;
        for e in format.start() {
            if tx.send(e).await.is_err() {
                return;
            }
        }
        loop {
            let next = tokio::select! {
                next = lease.session().next_chunk(&handle) => next,
                // The client went away: stop reading upstream at once. Dropping the pending
                // call drops the instance with it (which closes the upstream response); the
                // lease then returns a session without one.
                () = tx.closed() => return,
            };
            let events = match next {
                Ok(Some(chunk)) => {
                    if let ChatChunk::Usage(u) = &chunk {
                        tokens = Some(u.total_tokens);
                    }
                    format.chunk(&chunk)
                }
                Ok(None) => {
                    for e in format.finish() {
                        let _ = tx.send(e).await;
                    }
                    let _ = lease.session().close_chat_stream(handle).await;
                    access.answered(200, tokens);
                    return;
                }
                Err(e) => {
                    // Never a silent end: an error event, then the stream closes.
                    let err = self.state.host_error(&e, &self.tenant);
                    let _ = tx.send(format.error(&err)).await;
                    let _ = lease.session().close_chat_stream(handle).await;
                    access.answered(err.status.as_u16(), tokens);
                    return;
                }
            };
            for e in events {
                if tx.send(e).await.is_err() {
                    // Gone between events: the stream is still open in the instance, so
                    // the pool will not lend this session again (`Session::is_reusable`).
                    return;
                }
            }
        }
    }
}
