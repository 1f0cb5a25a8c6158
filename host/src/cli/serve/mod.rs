//! `provider-host serve`: an OpenAI-compatible endpoint in front of the sandboxed plugin.
//! Every request goes through the plugin's exports (login state, refresh, lanes and the
//! error table stay the plugin's); the server itself never talks upstream.
//!
//! - `keys`: local API keys (salted hashes only), each selecting a tenant;
//! - `sessions`: live sessions reused per tenant;
//! - `wire`: OpenAI's chat-completions, stream and error shapes;
//! - `responses`: the Responses API's request, reply and events;
//! - `metrics`: `GET /metrics` (Prometheus, no key needed).

mod keys;
mod metrics;
mod responses;
mod sessions;
mod wire;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use provider_runtime::bindings::types::{ChatChunk, ChatReply, ChatRequest};
use provider_runtime::{HostConfig, HostError, Runtime};
use serde_json::{Value, json};

use self::keys::ServeKeys;
use self::sessions::Sessions;
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
    sessions: Sessions,
    keys: ServeKeys,
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
    let state = Arc::new(AppState {
        sessions: Sessions::new(runtime, config),
        keys,
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
    let response = match state.sessions.lease(&tenant).await {
        Ok(mut lease) => match models_of_routes(lease.session(), route).await {
            Ok(lists) => axum::Json(wire::models(&lists)).into_response(),
            Err(e) => ApiError::from_host(&e, &tenant).into_response(),
        },
        Err(e) => ApiError::from_host(&e, &tenant).into_response(),
    };
    access(&tenant, "", response.status().as_u16(), began, None, false);
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
        writer: ChunkWriter {
            id: completion_id(),
            created: unix_now(),
            model: turn.model.clone(),
            include_usage,
        },
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

/// How one API dialect writes a streamed turn as SSE bytes.
trait StreamFormat: Send + 'static {
    /// The events before the first chunk.
    fn start(&mut self) -> Vec<Bytes>;
    /// The events for one chunk of the plugin's stream.
    fn chunk(&mut self, c: &ChatChunk) -> Vec<Bytes>;
    /// The events after the plugin's stream ended.
    fn finish(&mut self) -> Vec<Bytes>;
    /// The event for a failure mid-stream (never a silent end).
    fn error(&mut self, e: &ApiError) -> Bytes;
}

fn data(v: &Value) -> Bytes {
    Bytes::from(format!("data: {v}\n\n"))
}

/// Chat completions: `chat.completion.chunk` events, then `data: [DONE]`.
struct ChatFormat {
    writer: ChunkWriter,
    /// OpenAI sends the usage chunk last, right before `[DONE]` (the plugin may yield it
    /// before the finish reason): held until the end.
    usage: Option<Value>,
}

impl StreamFormat for ChatFormat {
    fn start(&mut self) -> Vec<Bytes> {
        vec![data(&self.writer.open())]
    }

    fn chunk(&mut self, c: &ChatChunk) -> Vec<Bytes> {
        let event = self.writer.event(c);
        if matches!(c, ChatChunk::Usage(_)) {
            self.usage = event;
            return Vec::new();
        }
        event.iter().map(data).collect()
    }

    fn finish(&mut self) -> Vec<Bytes> {
        let mut out: Vec<Bytes> = self.usage.take().iter().map(data).collect();
        out.push(Bytes::from_static(b"data: [DONE]\n\n"));
        out
    }

    fn error(&mut self, e: &ApiError) -> Bytes {
        data(&e.body())
    }
}

fn frame((kind, v): (String, Value)) -> Bytes {
    Bytes::from(format!("event: {kind}\ndata: {v}\n\n"))
}

/// The Responses API: `response.*` events.
impl StreamFormat for responses::EventWriter {
    fn start(&mut self) -> Vec<Bytes> {
        responses::EventWriter::start(self)
            .into_iter()
            .map(frame)
            .collect()
    }

    fn chunk(&mut self, c: &ChatChunk) -> Vec<Bytes> {
        responses::EventWriter::chunk(self, c)
            .into_iter()
            .map(frame)
            .collect()
    }

    fn finish(&mut self) -> Vec<Bytes> {
        responses::EventWriter::finish(self)
            .into_iter()
            .map(frame)
            .collect()
    }

    fn error(&mut self, e: &ApiError) -> Bytes {
        frame(responses::EventWriter::error(self, &e.code, &e.message))
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
    fn log(&self, status: u16, tokens: Option<u32>, stream: bool) {
        access(
            &self.tenant,
            &self.model,
            status,
            self.began,
            tokens,
            stream,
        );
    }

    /// The error's response, logged.
    fn failed(&self, e: &HostError, stream: bool) -> Response {
        let response = ApiError::from_host(e, &self.tenant).into_response();
        self.log(response.status().as_u16(), None, stream);
        response
    }

    /// A complete reply, in the dialect `render` writes.
    async fn whole(self, render: impl FnOnce(&ChatReply) -> Value) -> Response {
        let mut lease = match self.state.sessions.lease(&self.tenant).await {
            Ok(l) => l,
            Err(e) => return ApiError::from_host(&e, &self.tenant).into_response(),
        };
        match lease.session().chat(&self.request).await {
            Ok(reply) => {
                self.log(200, reply.usage.map(|u| u.total_tokens), false);
                axum::Json(render(&reply)).into_response()
            }
            Err(e) => self.failed(&e, false),
        }
    }

    /// A streamed reply in `format`, fed by a task that reads the plugin's stream.
    async fn streamed(self, mut format: impl StreamFormat) -> Response {
        let mut lease = match self.state.sessions.lease(&self.tenant).await {
            Ok(l) => l,
            Err(e) => return ApiError::from_host(&e, &self.tenant).into_response(),
        };
        let handle = match lease.session().open_chat_stream(&self.request).await {
            Ok(h) => h,
            Err(e) => return self.failed(&e, true),
        };
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(32);
        let open = metrics::OpenStream::start();
        tokio::spawn(async move {
            let _open = open;
            let mut tokens = None;
            for b in format.start() {
                if tx.send(b).await.is_err() {
                    lease.discard();
                    return;
                }
            }
            loop {
                let next = tokio::select! {
                    next = lease.session().next_chunk(&handle) => next,
                    // The client went away: stop reading upstream at once. The abandoned
                    // call leaves the instance in an unknown state, so it is discarded
                    // (which also closes the upstream response).
                    () = tx.closed() => {
                        self.log(499, tokens, true);
                        lease.discard();
                        return;
                    }
                };
                let events = match next {
                    Ok(Some(chunk)) => {
                        if let ChatChunk::Usage(u) = &chunk {
                            tokens = Some(u.total_tokens);
                        }
                        format.chunk(&chunk)
                    }
                    Ok(None) => {
                        for b in format.finish() {
                            let _ = tx.send(b).await;
                        }
                        let _ = lease.session().close_chat_stream(handle).await;
                        self.log(200, tokens, true);
                        return;
                    }
                    Err(e) => {
                        // Never a silent end: an error event, then the stream closes.
                        let err = ApiError::from_host(&e, &self.tenant);
                        let _ = tx.send(format.error(&err)).await;
                        let _ = lease.session().close_chat_stream(handle).await;
                        self.log(err.status.as_u16(), tokens, true);
                        return;
                    }
                };
                for b in events {
                    if tx.send(b).await.is_err() {
                        self.log(499, tokens, true);
                        lease.discard();
                        return;
                    }
                }
            }
        });
        sse(rx)
    }
}

/// An event-stream response fed by `rx`.
fn sse(rx: tokio::sync::mpsc::Receiver<Bytes>) -> Response {
    let body = Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    }));
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(body)
        .expect("static response parts")
}
