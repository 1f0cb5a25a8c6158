//! `provider-host serve`: an OpenAI-compatible endpoint in front of the sandboxed plugin.
//! Every request goes through the plugin's exports (login state, refresh, lanes and the
//! error table stay the plugin's); the server itself never talks upstream.
//!
//! - `keys`: local API keys (salted hashes only), each selecting a tenant;
//! - sessions reused per tenant: the runtime's [`SessionPool`] (cancel-safe, bounded wait,
//!   idle eviction);
//! - `wire`: OpenAI's chat-completions, stream and error shapes;
//! - `responses`: the Responses API's request, reply and events;
//! - `metrics`: `GET /metrics` (Prometheus, no key needed).

mod keys;
mod metrics;
mod models;
mod responses;
mod usage;
mod wire;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use provider_runtime::bindings::types::{ChatChunk, ChatReply, ChatRequest};
use provider_runtime::{HostConfig, HostError, PoolOptions, Runtime, SessionPool};
use serde_json::{Value, json};

use self::keys::ServeKeys;
use self::wire::{ApiError, ChunkWriter};
use super::args::{Cli, ServeArgs, ServeKeyCommand};
use super::{fail, ok, openai};

/// Largest request body (a conversation with inline images).
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// A client must send its headers, and then its body, within these.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long streams may finish after SIGTERM.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

struct AppState {
    sessions: SessionPool,
    keys: ServeKeys,
    /// SSE keep-alive interval, and how long a stream's head waits for upstream's.
    keepalive: Duration,
}

type Shared = Arc<AppState>;

/// `serve-key create|list|revoke`.
pub fn keys_command(cli: &Cli, command: &ServeKeyCommand) -> ExitCode {
    let keys = match cli.state_dir().and_then(|d| {
        let backend = super::key::secret_backend(cli)?;
        ServeKeys::open(&d, backend.as_ref())
    }) {
        Ok(k) => k,
        Err(e) => return fail(&e),
    };
    let result = match command {
        ServeKeyCommand::Create => keys.create(&cli.tenant).map(|(key, info)| {
            json!({"ok": true, "key": key, "id": info.id, "tenant": info.tenant, "created": info.created})
        }),
        ServeKeyCommand::List => keys
            .list()
            .map(|l| json!({"ok": true, "keys": serde_json::to_value(l).expect("json")})),
        ServeKeyCommand::Revoke { id } => keys.revoke(id).map(|r| json!({"ok": true, "revoked": r})),
    };
    match result {
        Ok(v) => ok(v),
        Err(e) => fail(&e),
    }
}

fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().is_loopback()
}

/// `serve`: bind, print one line saying where, serve until SIGTERM or Ctrl-C.
pub async fn run(cli: &Cli, config: HostConfig, args: &ServeArgs) -> ExitCode {
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => match tls_acceptor(cert, key) {
            Ok(t) => Some(t),
            Err(e) => return fail(&e),
        },
        _ => None,
    };
    if !is_loopback(&args.listen) {
        let refusal = if !args.allow_remote {
            Some(format!(
                "{} is not a loopback address: pass --allow-remote (with --tls-cert and --tls-key) to serve other machines",
                args.listen
            ))
        } else if tls.is_none() {
            Some("serving other machines needs TLS: pass --tls-cert and --tls-key".to_owned())
        } else {
            None
        };
        if let Some(refusal) = refusal {
            return fail(&HostError::Config(refusal));
        }
    }
    let mut options = match super::runtime_options(cli) {
        Ok(o) => o,
        Err(e) => return fail(&e),
    };
    // The plugin's requests, with its token refreshes counted for /metrics.
    let client = options.http_client.take().unwrap_or_else(|| {
        provider_runtime::default_http_client(options.limits.http.connect_timeout)
    });
    options.http_client = Some(Arc::new(metrics::RefreshCounting::new(client)));
    // The keys live with the tenants' secrets when the backend can hold them (one database:
    // every replica knows every key).
    let keys = match ServeKeys::open(&options.state_dir, options.secrets.as_ref()) {
        Ok(k) => k,
        Err(e) => return fail(&e),
    };
    let runtime = match Runtime::new(options) {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    let routes: Vec<&str> = args.route.iter().map(String::as_str).collect();
    let config = match super::env_config(&runtime, config, &routes).await {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(l) => l,
        Err(e) => {
            return fail(&HostError::Config(format!(
                "cannot listen on {}: {e}",
                args.listen
            )));
        }
    };
    let local = listener.local_addr().map_or(args.listen, |a| a);
    let pool = PoolOptions::default()
        .with_sessions_per_tenant(args.sessions_per_tenant.into())
        .with_max_wait(Duration::from_secs(args.queue_wait_secs));
    let state = Arc::new(AppState {
        sessions: SessionPool::new(runtime, config, pool),
        keys,
        keepalive: Duration::from_secs(args.keepalive_secs),
    });
    let app = router(state);
    // One line for whoever started us (tests read the port from it), then the log.
    let scheme = if tls.is_some() { "https" } else { "http" };
    super::print_json(&json!({"ok": true, "listening": format!("{scheme}://{local}/v1")}));
    serve_until_signal(listener, app, tls).await;
    ExitCode::SUCCESS
}

fn router(state: Shared) -> Router {
    Router::new()
        .route("/v1/models", get(models))
        .route("/v1/models/{*id}", get(models::model))
        .route("/v1/usage", get(usage::usage))
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/responses", post(responses_api))
        .route(
            "/healthz",
            get(|| async { axum::Json(json!({"ok": true})) }),
        )
        // No key: counts, routes, statuses and error codes only (see `metrics`).
        .route("/metrics", get(metrics::scrape))
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                "not_found",
                "no such endpoint",
            )
        })
        .layer(axum::middleware::from_fn(metrics::track))
        .with_state(state)
}

/// A TLS acceptor for `cert` (a PEM chain) and `key` (a PEM private key).
fn tls_acceptor(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<tokio_rustls::TlsAcceptor, HostError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |what: &str, path: &std::path::Path, e: &dyn std::fmt::Display| {
        HostError::Config(format!(
            "cannot use {} as the TLS {what}: {e}",
            path.display()
        ))
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| bad("certificate", cert, &e))?;
    if chain.is_empty() {
        return Err(bad("certificate", cert, &"no certificate in it"));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| bad("key", key, &e))?;
    let mut config = rustls::ServerConfig::builder_with_provider(
        rustls::crypto::ring::default_provider().into(),
    )
    .with_safe_default_protocol_versions()
    .map_err(|e| HostError::Config(format!("TLS: {e}")))?
    .with_no_client_auth()
    .with_single_cert(chain, key_der)
    .map_err(|e| HostError::Config(format!("the TLS certificate and key do not fit: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

async fn serve_until_signal(
    listener: tokio::net::TcpListener,
    app: Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::server::graceful::GracefulShutdown;
    use hyper_util::service::TowerToHyperService;

    let graceful = GracefulShutdown::new();
    let mut signal = std::pin::pin!(shutdown_signal());
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let service = TowerToHyperService::new(app.clone());
                let http = {
                    let mut b = hyper::server::conn::http1::Builder::new();
                    b.timer(TokioTimer::new())
                        .header_read_timeout(HEADER_READ_TIMEOUT)
                        .max_buf_size(64 * 1024);
                    b
                };
                let watcher = graceful.watcher();
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        None => {
                            let conn = http.serve_connection(TokioIo::new(stream), service);
                            let _ = watcher.watch(conn).await;
                        }
                        Some(acceptor) => {
                            // The handshake shares the header-read deadline: a client that
                            // never finishes it cannot hold the connection.
                            let Ok(Ok(tls_stream)) =
                                tokio::time::timeout(HEADER_READ_TIMEOUT, acceptor.accept(stream)).await
                            else {
                                return;
                            };
                            let conn = http.serve_connection(TokioIo::new(tls_stream), service);
                            let _ = watcher.watch(conn).await;
                        }
                    }
                });
            }
            () = &mut signal => break,
        }
    }
    drop(listener);
    tracing::info!("shutting down: no new connections; open requests get {SHUTDOWN_GRACE:?}");
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await;
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

/// The tenant the request's key selects.
/// The header a request names its route with (else its model's prefix, else the
/// tenant's default route).
const ROUTE_HEADER: &str = "x-provider-route";

fn route_header(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    match headers.get(ROUTE_HEADER) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .map(|r| Some(r.trim().to_owned()))
            .filter(|r| r.as_deref().is_some_and(|r| !r.is_empty()))
            .ok_or_else(|| ApiError::invalid(format!("{ROUTE_HEADER} must name a route"))),
    }
}

async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<String, ApiError> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .ok_or_else(ApiError::bad_key)?;
    let found = if state.keys.reads_are_local() {
        state.keys.tenant_of(presented)
    } else {
        // A database round trip: not on an async worker.
        let (keys, presented) = (state.keys.clone(), presented.to_owned());
        tokio::task::spawn_blocking(move || keys.tenant_of(&presented))
            .await
            .unwrap_or_else(|e| {
                Err(HostError::HostSetup(format!(
                    "the key lookup task failed: {e}"
                )))
            })
    };
    match found {
        Ok(Some(t)) => Ok(t),
        Ok(None) => Err(ApiError::bad_key()),
        Err(e) => {
            tracing::error!(error = %e, "the serve-key store failed");
            Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "storage",
                "the key store failed",
            ))
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn completion_id() -> String {
    let mut b = [0u8; 12];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut b);
    format!("chatcmpl-{}", hex::encode(b))
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

async fn models(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let began = Instant::now();
    let tenant = match authenticate(&state, &headers).await {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let route = match route_header(&headers) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let mut access = Access::new(&tenant, "", began, false);
    let response = match state.sessions.lease(&tenant).await {
        Ok(mut lease) => match models_of_routes(lease.session(), route).await {
            Ok(lists) => axum::Json(wire::models(&lists)).into_response(),
            Err(e) => ApiError::from_host(&e, &tenant).into_response(),
        },
        Err(e) => ApiError::from_host(&e, &tenant).into_response(),
    };
    access.answered(response.status().as_u16(), None);
    response
}

/// The models of `route`, or (none named) of every enabled route side by side, their ids
/// told apart by each route's prefix: the default route's error is the answer's, another
/// route that cannot list now (no API key stored, say) is left out.
async fn models_of_routes(
    session: &mut provider_runtime::Session,
    route: Option<String>,
) -> Result<Vec<provider_runtime::bindings::types::ModelList>, HostError> {
    if let Some(r) = route {
        return Ok(vec![session.models(false, Some(&r)).await?]);
    }
    let mut lists = vec![session.models(false, None).await?];
    let routes = session.config().enabled_routes.clone();
    for r in routes {
        if lists.iter().any(|l| l.route == r) {
            continue;
        }
        match session.models(false, Some(&r)).await {
            Ok(list) => lists.push(list),
            Err(e) => tracing::debug!(route = r, code = e.code(), "route left out of /v1/models"),
        }
    }
    Ok(lists)
}

async fn read_body(body: Body) -> Result<Bytes, ApiError> {
    match tokio::time::timeout(
        BODY_READ_TIMEOUT,
        axum::body::to_bytes(body, MAX_BODY_BYTES),
    )
    .await
    {
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "invalid_request_error",
            "timeout",
            "the request body took too long",
        )),
        Ok(Err(_)) => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            "too_large",
            format!("the request body is over {MAX_BODY_BYTES} bytes or broken"),
        )),
        Ok(Ok(b)) => Ok(b),
    }
}

async fn chat_completions(State(state): State<Shared>, headers: HeaderMap, body: Body) -> Response {
    let began = Instant::now();
    let tenant = match authenticate(&state, &headers).await {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let bytes = match read_body(body).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let parsed = std::str::from_utf8(&bytes)
        .map_err(|_| "the request body is not UTF-8".to_owned())
        .and_then(openai::parse);
    let body = match parsed {
        Ok(b) => b,
        Err(m) => return ApiError::invalid(m).into_response(),
    };
    let Some(model) = body.model.clone() else {
        return ApiError::invalid("model is required").into_response();
    };
    let stream = body.stream == Some(true);
    let include_usage = body.include_usage();
    let mut request = match body.into_request(model.clone()) {
        Ok(r) => r,
        Err(m) => return ApiError::invalid(m).into_response(),
    };
    match route_header(&headers) {
        Ok(r) => request.route = r,
        Err(e) => return e.into_response(),
    }
    let turn = Turn {
        state,
        tenant,
        model,
        began,
        request,
    };
    if !stream {
        return turn
            .whole(|reply| wire::completion(&completion_id(), unix_now(), reply))
            .await;
    }
    let format = ChatFormat {
        writer: ChunkWriter::new(
            completion_id(),
            unix_now(),
            turn.model.clone(),
            include_usage,
        ),
        usage: None,
    };
    turn.streamed(format).await
}

fn response_id() -> String {
    let mut b = [0u8; 12];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut b);
    format!("resp_{}", hex::encode(b))
}

async fn responses_api(State(state): State<Shared>, headers: HeaderMap, body: Body) -> Response {
    let began = Instant::now();
    let tenant = match authenticate(&state, &headers).await {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let bytes = match read_body(body).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let (model, stream, mut request) = match responses::parse(&bytes) {
        Ok(p) => p,
        Err(m) => return ApiError::invalid(m).into_response(),
    };
    match route_header(&headers) {
        Ok(r) => request.route = r,
        Err(e) => return e.into_response(),
    }
    let id = response_id();
    let turn = Turn {
        state,
        tenant,
        model,
        began,
        request,
    };
    if !stream {
        let model = turn.model.clone();
        return turn
            .whole(|reply| responses::whole(&id, unix_now(), &model, reply))
            .await;
    }
    let format = responses::EventWriter::new(id, unix_now(), turn.model.clone());
    turn.streamed(format).await
}

/// How one API dialect writes a streamed turn as SSE events.
trait StreamFormat: Send + 'static {
    /// The events before the first chunk.
    fn start(&mut self) -> Vec<Event>;
    /// The events for one chunk of the plugin's stream.
    fn chunk(&mut self, c: &ChatChunk) -> Vec<Event>;
    /// The events after the plugin's stream ended.
    fn finish(&mut self) -> Vec<Event>;
    /// The event for a failure mid-stream (never a silent end).
    fn error(&mut self, e: &ApiError) -> Event;
}

fn data(v: &Value) -> Event {
    Event::default().data(v.to_string())
}

/// Chat completions: `chat.completion.chunk` events, then `data: [DONE]`.
struct ChatFormat {
    writer: ChunkWriter,
    /// OpenAI sends the usage chunk last, right before `[DONE]` (the plugin may yield it
    /// before the finish reason): held until the end.
    usage: Option<Value>,
}

impl StreamFormat for ChatFormat {
    fn start(&mut self) -> Vec<Event> {
        vec![data(&self.writer.open())]
    }

    fn chunk(&mut self, c: &ChatChunk) -> Vec<Event> {
        let event = self.writer.event(c);
        if matches!(c, ChatChunk::Usage(_)) {
            self.usage = event;
            return Vec::new();
        }
        event.iter().map(data).collect()
    }

    fn finish(&mut self) -> Vec<Event> {
        let mut out: Vec<Event> = self.usage.take().iter().map(data).collect();
        out.push(Event::default().data("[DONE]"));
        out
    }

    fn error(&mut self, e: &ApiError) -> Event {
        data(&e.body())
    }
}

fn frame((kind, v): (String, Value)) -> Event {
    Event::default().event(kind).data(v.to_string())
}

/// The Responses API: `response.*` events.
impl StreamFormat for responses::EventWriter {
    fn start(&mut self) -> Vec<Event> {
        responses::EventWriter::start(self)
            .into_iter()
            .map(frame)
            .collect()
    }

    fn chunk(&mut self, c: &ChatChunk) -> Vec<Event> {
        responses::EventWriter::chunk(self, c)
            .into_iter()
            .map(frame)
            .collect()
    }

    fn finish(&mut self) -> Vec<Event> {
        responses::EventWriter::finish(self)
            .into_iter()
            .map(frame)
            .collect()
    }

    fn error(&mut self, e: &ApiError) -> Event {
        frame(responses::EventWriter::error(self, &e.code, &e.message))
    }
}

/// The access-log line of one request, written once: with its status when answered, or
/// as 499 (the nginx convention for "client closed the request") when the request is
/// dropped first: a client that gives up still leaves a line.
struct Access {
    tenant: String,
    model: String,
    began: Instant,
    stream: bool,
    written: bool,
}

impl Access {
    fn new(tenant: &str, model: &str, began: Instant, stream: bool) -> Self {
        Self {
            tenant: tenant.to_owned(),
            model: model.to_owned(),
            began,
            stream,
            written: false,
        }
    }

    fn answered(&mut self, status: u16, tokens: Option<u32>) {
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
        self.answered(metrics::CLIENT_CLOSED, None);
    }
}

/// One authenticated, parsed turn of a tenant, served whole or streamed.
struct Turn {
    state: Shared,
    tenant: String,
    model: String,
    began: Instant,
    request: ChatRequest,
}

impl Turn {
    fn access(&self, stream: bool) -> Access {
        Access::new(&self.tenant, &self.model, self.began, stream)
    }

    /// A complete reply, in the dialect `render` writes. Dropped midway (the client went
    /// away), the call's instance goes with it (the runtime's sessions are cancel-safe)
    /// and the access log says 499.
    async fn whole(self, render: impl FnOnce(&ChatReply) -> Value) -> Response {
        let mut access = self.access(false);
        let answer = match self.state.sessions.lease(&self.tenant).await {
            Ok(mut lease) => lease.session().chat(&self.request).await,
            Err(e) => Err(e),
        };
        match answer {
            Ok(reply) => {
                access.answered(200, reply.usage.map(|u| u.total_tokens));
                axum::Json(render(&reply)).into_response()
            }
            Err(e) => {
                let response = ApiError::from_host(&e, &self.tenant).into_response();
                access.answered(response.status().as_u16(), None);
                response
            }
        }
    }

    /// A streamed reply in `format`, relayed by a task that reads the plugin's stream.
    ///
    /// The response head waits for upstream's at most one keep-alive interval: a failure
    /// by then (no login, a refused key, a spent quota) gets its own HTTP status; past it
    /// the head goes out at once and SSE comments keep the connection alive until the
    /// first event (a reasoning model may think for minutes; proxies cut idle connections
    /// after 60 to 100 s), after which a failure is an error event.
    async fn streamed(self, format: impl StreamFormat) -> Response {
        let keepalive = self.state.keepalive;
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
        let mut response = Sse::new(events)
            .keep_alive(KeepAlive::new().interval(keepalive))
            .into_response();
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
                let error = ApiError::from_host(&e, &self.tenant);
                access.answered(error.status.as_u16(), None);
                if let Err(Err(error)) = opened.send(Err(error)) {
                    // The head went out already: the failure is the stream's first event.
                    let _ = tx.send(format.error(&error)).await;
                }
                return;
            }
        };
        let _ = opened.send(Ok(()));
        let _open = metrics::OpenStream::start();
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
                    let err = ApiError::from_host(&e, &self.tenant);
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
