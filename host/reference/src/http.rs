//! Common HTTP plumbing: the loopback listener with its lifetime guard, and request capture
//! and logging.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::sync::oneshot;

pub(crate) use crate::body::{Body, BodyPlan, Reply, build, filler_body, full};
use crate::error::{Error, Result};

/// What a request handler answers: a response, or hang up without one.
pub(crate) type Outcome = std::result::Result<Response<Body>, Hangup>;

/// Largest request body the servers read; larger ones get 413.
const MAX_REQUEST_BODY: usize = 8 * 1024 * 1024;
/// Requests kept in a server's log; later ones are counted but not stored (bounds memory).
const MAX_LOGGED: usize = 10_000;

/// Returned by a handler to close the connection without any response.
#[derive(Debug)]
pub(crate) struct Hangup;

impl fmt::Display for Hangup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection dropped by a fault")
    }
}

impl std::error::Error for Hangup {}

/// How long a server may live, so a leaked handle can never outlive a test run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetime {
    /// Stop after this long without any request (default 5 minutes).
    pub idle: Duration,
    /// Stop after this long in any case (default 30 minutes).
    pub max: Duration,
}

impl Default for Lifetime {
    fn default() -> Self {
        Self {
            idle: Duration::from_secs(300),
            max: Duration::from_secs(1800),
        }
    }
}

/// One request as a server received it.
///
/// `Debug` shows neither the `Authorization` header nor the body, since both may carry
/// tokens; use the accessors to assert on them.
#[derive(Clone)]
pub struct RecordedRequest {
    /// HTTP method, e.g. `POST`.
    pub method: String,
    /// Path without the query, e.g. `/v1/chat/completions`.
    pub path: String,
    /// Raw query string, when present.
    pub query: Option<String>,
    /// Headers in arrival order, names lower-case.
    pub headers: Vec<(String, String)>,
    /// The request body.
    pub body: Bytes,
}

impl RecordedRequest {
    /// First value of a header (name matched case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The bearer token of the `Authorization` header, when there is one.
    pub fn bearer(&self) -> Option<&str> {
        bearer_of(self.header("authorization")?)
    }

    /// The body parsed as JSON, when it is JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// First value of a field of a form-encoded body.
    pub fn form_value(&self, key: &str) -> Option<String> {
        form_value(&self.body, key)
    }
}

impl fmt::Debug for RecordedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| {
                let redacted = n == "authorization" || n == "cookie";
                (n.as_str(), if redacted { "<redacted>" } else { v.as_str() })
            })
            .collect();
        f.debug_struct("RecordedRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("query", &self.query)
            .field("headers", &headers)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// The token of an `Authorization: Bearer …` value.
pub(crate) fn bearer_of(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// First value of `key` in a form-encoded body.
pub(crate) fn form_value(body: &[u8], key: &str) -> Option<String> {
    form_urlencoded::parse(body)
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

/// A server's request log and activity clock.
#[derive(Default)]
pub(crate) struct RequestLog {
    entries: Mutex<Vec<RecordedRequest>>,
}

impl RequestLog {
    fn push(&self, request: RecordedRequest) {
        let mut entries = lock(&self.entries);
        if entries.len() < MAX_LOGGED {
            entries.push(request);
        }
    }

    /// A copy of every logged request, oldest first.
    pub(crate) fn snapshot(&self) -> Vec<RecordedRequest> {
        lock(&self.entries).clone()
    }

    /// Forget the logged requests.
    pub(crate) fn clear(&self) {
        lock(&self.entries).clear();
    }
}

/// Lock a mutex, going on with the data when a panicking test thread poisoned it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A running listener. Dropping it stops the server.
pub(crate) struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    alive: Arc<AtomicBool>,
}

impl Running {
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub(crate) fn is_running(&self) -> bool {
        self.alive.load(Ordering::SeqCst)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Where the accept loop runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Spawn {
    /// On the caller's tokio runtime.
    Current,
    /// On a dedicated thread with its own runtime (callers without a runtime).
    Thread,
}

/// When listeners last saw a request. Listeners of one server share it, so the idle guard
/// stops none of them while another is in use.
pub(crate) struct Activity {
    started: Instant,
    /// Milliseconds after `started`.
    last: AtomicU64,
}

impl Activity {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            started: Instant::now(),
            last: AtomicU64::new(0),
        })
    }

    fn touch(&self) {
        self.last
            .store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        let last = Duration::from_millis(self.last.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(last)
    }
}

/// Bind 127.0.0.1:0 and serve `handler` until the returned `Running` is dropped or the
/// lifetime guard fires.
pub(crate) fn start<H, F>(
    spawn: Spawn,
    lifetime: Lifetime,
    log: Arc<RequestLog>,
    handler: H,
) -> Result<Running>
where
    H: Fn(RecordedRequest) -> F + Send + Sync + 'static,
    F: Future<Output = Outcome> + Send + 'static,
{
    start_with_activity(spawn, lifetime, log, Activity::new(), handler)
}

/// [`start`], sharing `activity` with other listeners.
pub(crate) fn start_with_activity<H, F>(
    spawn: Spawn,
    lifetime: Lifetime,
    log: Arc<RequestLog>,
    activity: Arc<Activity>,
    handler: H,
) -> Result<Running>
where
    H: Fn(RecordedRequest) -> F + Send + Sync + 'static,
    F: Future<Output = Outcome> + Send + 'static,
{
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).map_err(Error::Bind)?;
    listener.set_nonblocking(true).map_err(Error::Bind)?;
    let addr = listener.local_addr().map_err(Error::Bind)?;
    let (stop_tx, stop_rx) = oneshot::channel();
    let alive = Arc::new(AtomicBool::new(true));
    let task = accept_loop(
        listener,
        lifetime,
        stop_rx,
        log,
        Arc::new(handler),
        alive.clone(),
        activity,
    );
    match spawn {
        Spawn::Current => {
            tokio::spawn(task);
        }
        Spawn::Thread => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(Error::Runtime)?;
            std::thread::Builder::new()
                .name(format!("reference-server-{}", addr.port()))
                .spawn(move || runtime.block_on(task))
                .map_err(Error::Runtime)?;
        }
    }
    Ok(Running {
        addr,
        stop: Some(stop_tx),
        alive,
    })
}

async fn accept_loop<H, F>(
    listener: std::net::TcpListener,
    lifetime: Lifetime,
    mut stop: oneshot::Receiver<()>,
    log: Arc<RequestLog>,
    handler: Arc<H>,
    alive: Arc<AtomicBool>,
    activity: Arc<Activity>,
) where
    H: Fn(RecordedRequest) -> F + Send + Sync + 'static,
    F: Future<Output = Outcome> + Send + 'static,
{
    // Marks the server dead however this future ends (stop, guard, or runtime shutdown).
    struct Alive(Arc<AtomicBool>);
    impl Drop for Alive {
        fn drop(&mut self) {
            self.0.store(false, Ordering::SeqCst);
        }
    }
    let _alive = Alive(alive);
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    // Dropping the set aborts every connection task, so nothing outlives the server.
    let mut connections = tokio::task::JoinSet::new();
    let deadline = tokio::time::sleep(lifetime.max);
    tokio::pin!(deadline);
    let mut idle_check = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = &mut deadline => break,
            _ = idle_check.tick() => {
                if activity.idle_for() > lifetime.idle {
                    break;
                }
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                // As production servers do: a stream is many small writes, and with Nagle a
                // kept-alive client's delayed ACK would hold each event back 40 ms.
                let _ = stream.set_nodelay(true);
                let handler = handler.clone();
                let log = log.clone();
                let activity = activity.clone();
                connections.spawn(async move {
                    let service = service_fn(move |req| {
                        activity.touch();
                        let handler = handler.clone();
                        let log = log.clone();
                        async move {
                            let request = match capture(req).await {
                                Ok(r) => r,
                                Err(too_large) => return Ok(too_large),
                            };
                            log.push(request.clone());
                            handler(request).await
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        }
    }
}

/// Read a whole request into a `RecordedRequest` (413 when the body is too large).
async fn capture(
    req: Request<hyper::body::Incoming>,
) -> std::result::Result<RecordedRequest, Response<Body>> {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_REQUEST_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return Err(Reply::json(
                413,
                &serde_json::json!({"error": "request body too large or unreadable"}),
            )
            .render(&BodyPlan::default(), false));
        }
    };
    let headers = parts
        .headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    Ok(RecordedRequest {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers,
        body,
    })
}
