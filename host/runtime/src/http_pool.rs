//! Outgoing connections of every session of a runtime: one keep-alive pool, behind the
//! [`HttpClient`] trait (an embedder may bring its own client; the sandbox's caps and
//! timeouts apply to it all the same, since they are enforced around `send`).
//!
//! wasi-http's default sender opens a new TCP (and TLS) connection per request and closes
//! it when the response body is dropped; against `api.x.ai` that is a TCP and a TLS
//! handshake per chat turn. The sandbox hook ([`crate::http_sandbox`]) decides *whether* a
//! request may leave; this pool decides *how*: idle connections are kept per origin and
//! reused, TLS with the webpki roots and the system's store, HTTP/1.1, proxies from the
//! environment, no redirects followed. Sharing connections across tenants is safe: every
//! request carries its own credentials, and a response is read by the request that asked
//! for it.
//!
//! Destinations are checked on the addresses actually connected to: a request the sandbox
//! marked [`Reach::Public`] (a plugin's own default endpoint) connects only to public
//! addresses ([`is_public_ip`]): an IP literal is checked before connecting, a name's
//! resolved addresses are filtered (none left: refused), on every new connection, and
//! such connections are pooled apart from those of operator-set endpoints, so one is
//! never reused for the other. Through a proxy the name is resolved by the proxy: the
//! pool checks a literal, and a name it can resolve itself (refused if any address is not
//! public); a name only the proxy can resolve is the proxy's to check. The connection to
//! the proxy itself is the operator's and is not checked.

use std::error::Error as StdError;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Full};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody};

use crate::config::{Reach, is_public_ip};

/// How long an unused connection stays open.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Idle connections kept per origin.
const MAX_IDLE_PER_ORIGIN: usize = 32;

type PooledClient = Client<HttpsConnector<ProxyConnector>, WasiBody>;

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

/// The client a runtime sends with when [`crate::RuntimeOptions::http_client`] is `None`:
/// hyper's keep-alive pool, TLS with the webpki and system roots, proxies from the
/// environment, connection attempts given up after `connect_timeout`. An embedder that
/// wants to observe or decorate requests (count token refreshes, add tracing) wraps this
/// one in an [`HttpClient`] of its own and passes that.
pub fn default_http_client(connect_timeout: Duration) -> Arc<dyn HttpClient> {
    Arc::new(PoolClient {
        public: OnceLock::new(),
        any: OnceLock::new(),
        connect_timeout,
        lookup: Lookup::System,
    })
}

/// The default client: hyper's keep-alive pool, TLS with the webpki and system roots,
/// proxies from the environment. Built on the first request, so a call that sends none
/// (like `status`) does not pay for it. Two pools: connections to public addresses only
/// (a plugin's own defaults) and to any address (operator-set endpoints).
struct PoolClient {
    public: OnceLock<PooledClient>,
    any: OnceLock<PooledClient>,
    connect_timeout: Duration,
    lookup: Lookup,
}

/// How names are resolved: the system's resolver, or a fixed table (tests).
#[derive(Clone, Debug)]
enum Lookup {
    System,
    #[cfg(test)]
    Fixed(Arc<std::collections::HashMap<String, Vec<std::net::IpAddr>>>),
}

impl Lookup {
    async fn resolve(&self, host: &str) -> io::Result<Vec<std::net::IpAddr>> {
        match self {
            Lookup::System => Ok(tokio::net::lookup_host((host, 0))
                .await?
                .map(|a| a.ip())
                .collect()),
            #[cfg(test)]
            Lookup::Fixed(table) => table
                .get(host)
                .cloned()
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such name")),
        }
    }
}

/// A destination a [`Reach::Public`] request may not connect to (the guest sees
/// `HTTP-request-denied`).
#[derive(Debug)]
struct ForbiddenDestination(String);

impl std::fmt::Display for ForbiddenDestination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} is not a public address: only an endpoint the operator set may reach it",
            self.0
        )
    }
}

impl StdError for ForbiddenDestination {}

/// The resolver of direct connections: every address a name resolves to, or with
/// [`Reach::Public`] only its public ones (none: [`ForbiddenDestination`]).
#[derive(Clone, Debug)]
struct CheckedResolver {
    reach: Reach,
    lookup: Lookup,
}

impl tower_service::Service<Name> for CheckedResolver {
    type Response = std::vec::IntoIter<std::net::SocketAddr>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send + 'static>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let (reach, lookup) = (self.reach, self.lookup.clone());
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let mut addrs = lookup.resolve(&host).await?;
            if reach == Reach::Public {
                addrs.retain(|ip| is_public_ip(*ip));
                if addrs.is_empty() {
                    return Err(ForbiddenDestination(host).into());
                }
            }
            // The port is set by the connector.
            Ok(addrs
                .into_iter()
                .map(|ip| std::net::SocketAddr::new(ip, 0))
                .collect::<Vec<_>>()
                .into_iter())
        })
    }
}

/// The IP address of `uri`'s host, when it is a literal.
fn literal_ip(uri: &http::Uri) -> Option<std::net::IpAddr> {
    let host = uri.host()?;
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

impl std::fmt::Debug for PoolClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolClient")
            .field("connect_timeout", &self.connect_timeout)
            .finish_non_exhaustive()
    }
}

impl PoolClient {
    fn client(&self, reach: Reach) -> &PooledClient {
        let cell = match reach {
            Reach::Public => &self.public,
            Reach::Any => &self.any,
        };
        cell.get_or_init(|| {
            build_client(
                self.connect_timeout,
                trust_roots(),
                Arc::new(Matcher::from_env()),
                reach,
                self.lookup.clone(),
            )
        })
    }
}

impl HttpClient for PoolClient {
    fn send(&self, request: http::Request<Bytes>) -> ClientFuture {
        // A request the sandbox did not mark is held to public addresses (fail closed).
        let reach = request
            .extensions()
            .get::<Reach>()
            .copied()
            .unwrap_or(Reach::Public);
        let request = request.map(|body| Full::new(body).map_err(|e| match e {}).boxed_unsync());
        let pending = self.client(reach).request(request);
        Box::pin(async move {
            let response = pending.await.map_err(classify)?;
            Ok(response.map(|incoming| {
                incoming
                    .map_err(|e| {
                        if e.is_timeout() {
                            HttpError::ConnectionReadTimeout
                        } else {
                            HttpError::from(e)
                        }
                    })
                    .boxed_unsync()
            }))
        })
    }
}

/// TCP to the destination, or, for an `https` destination that `HTTPS_PROXY` /
/// `ALL_PROXY` route through a proxy (and `NO_PROXY` does not exempt), a `CONNECT` tunnel
/// through that proxy, as curl does. TLS to the destination runs over either, so the
/// destination's certificate is verified end to end; a TLS-inspecting proxy works when
/// its CA is in the system's store.
#[derive(Clone)]
struct ProxyConnector {
    /// To destinations: through the [`CheckedResolver`].
    direct: HttpConnector<CheckedResolver>,
    /// To the operator's proxy.
    to_proxy: HttpConnector,
    proxies: Arc<Matcher>,
    reach: Reach,
    lookup: Lookup,
}

type BoxError = Box<dyn StdError + Send + Sync>;

impl tower_service::Service<http::Uri> for ProxyConnector {
    type Response = TokioIo<tokio::net::TcpStream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.direct.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, dst: http::Uri) -> Self::Future {
        // A literal address is connected to without resolving: checked here, proxied or not.
        if self.reach == Reach::Public
            && let Some(ip) = literal_ip(&dst)
            && !is_public_ip(ip)
        {
            return Box::pin(async move { Err(ForbiddenDestination(ip.to_string()).into()) });
        }
        // Plain http is only ever loopback here (the sandbox's rule): never proxied.
        let proxy = match dst.scheme_str() {
            Some("https") => self.proxies.intercept(&dst),
            _ => None,
        };
        match proxy {
            Some(proxy) => {
                let mut tunnel = Tunnel::new(proxy.uri().clone(), self.to_proxy.clone());
                if let Some(auth) = proxy.basic_auth() {
                    tunnel = tunnel.with_auth(auth.clone());
                }
                let check =
                    (self.reach == Reach::Public && literal_ip(&dst).is_none()).then(|| {
                        (
                            self.lookup.clone(),
                            dst.host().unwrap_or_default().to_owned(),
                        )
                    });
                Box::pin(async move {
                    // The proxy resolves the name; what this host can resolve is checked too
                    // (a name it cannot resolve is left to the proxy).
                    if let Some((lookup, host)) = check
                        && let Ok(Ok(addrs)) =
                            tokio::time::timeout(Duration::from_secs(2), lookup.resolve(&host))
                                .await
                        && addrs.iter().any(|ip| !is_public_ip(*ip))
                    {
                        return Err(ForbiddenDestination(host).into());
                    }
                    tunnel.call(dst).await.map_err(Into::into)
                })
            }
            None => {
                let mut direct = self.direct.clone();
                Box::pin(async move { direct.call(dst).await.map_err(Into::into) })
            }
        }
    }
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
    /// The default pool, whose connection attempts give up after `connect_timeout`.
    pub(crate) fn new(connect_timeout: Duration) -> Self {
        Self::over(default_http_client(connect_timeout))
    }

    /// Requests sent by `client` (an embedder's).
    pub(crate) fn over(client: Arc<dyn HttpClient>) -> Self {
        Self { client }
    }

    /// A pool that trusts exactly `roots` and routes through `proxies` (tests).
    #[cfg(test)]
    fn with(connect_timeout: Duration, roots: rustls::RootCertStore, proxies: Matcher) -> Self {
        Self::resolving(connect_timeout, roots, proxies, Lookup::System)
    }

    /// The same, resolving names with `lookup` (tests).
    #[cfg(test)]
    fn resolving(
        connect_timeout: Duration,
        roots: rustls::RootCertStore,
        proxies: Matcher,
        lookup: Lookup,
    ) -> Self {
        let (public, any) = (OnceLock::new(), OnceLock::new());
        let proxies = Arc::new(proxies);
        for (cell, reach) in [(&public, Reach::Public), (&any, Reach::Any)] {
            let proxies = proxies.clone();
            let client = build_client(
                connect_timeout,
                roots.clone(),
                proxies,
                reach,
                lookup.clone(),
            );
            let _ = cell.set(client);
        }
        Self::over(Arc::new(PoolClient {
            public,
            any,
            connect_timeout,
            lookup,
        }))
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

/// The proxy variables the pool honours (`hyper-util`'s `Matcher::from_env` reads these).
const PROXY_VARS: &[&str] = &[
    "HTTPS_PROXY",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
    "HTTP_PROXY",
    "http_proxy",
];

/// Why the environment's proxy settings cannot be used, if they cannot. Only `http://`
/// proxies are supported: a tunnel through an `https://` proxy would send `CONNECT` and
/// `Proxy-Authorization` in cleartext to a server expecting TLS, and SOCKS is not spoken,
/// so both are refused rather than mishandled. The message never repeats credentials.
pub fn proxy_env_problem() -> Option<String> {
    proxy_problem(|name| std::env::var(name).ok())
}

fn proxy_problem(var: impl Fn(&str) -> Option<String>) -> Option<String> {
    for name in PROXY_VARS {
        let Some(value) = var(name).filter(|v| !v.trim().is_empty()) else {
            continue;
        };
        let value = value.trim();
        // curl takes a bare host:port as http.
        let scheme = value.split_once("://").map_or("http", |(s, _)| s);
        if !scheme.eq_ignore_ascii_case("http") {
            return Some(format!(
                "{name} uses a {scheme}:// proxy: only http:// proxies are supported (https is tunnelled through them with TLS end to end)"
            ));
        }
        let with_scheme = if value.contains("://") {
            value.to_owned()
        } else {
            format!("http://{value}")
        };
        // Credentials are not an authority `http::Uri` accepts: check what follows them.
        let without_userinfo = match with_scheme.split_once("://") {
            Some((s, rest)) => {
                let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
                let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
                format!("{s}://{host}/{path}")
            }
            None => with_scheme.clone(),
        };
        if without_userinfo
            .parse::<http::Uri>()
            .map_or(true, |u| u.host().is_none())
        {
            return Some(format!("{name} is not a usable proxy URL"));
        }
    }
    None
}

fn build_client(
    connect_timeout: Duration,
    roots: rustls::RootCertStore,
    proxies: Arc<Matcher>,
    reach: Reach,
    lookup: Lookup,
) -> PooledClient {
    let mut tcp = HttpConnector::new_with_resolver(CheckedResolver {
        reach,
        lookup: lookup.clone(),
    });
    // The scheme is checked by the connector below (https or loopback http, as the
    // sandbox allowed it), so the TCP layer must accept both.
    tcp.enforce_http(false);
    tcp.set_nodelay(true);
    tcp.set_connect_timeout(Some(connect_timeout));
    let mut to_proxy = HttpConnector::new();
    to_proxy.enforce_http(false);
    to_proxy.set_nodelay(true);
    to_proxy.set_connect_timeout(Some(connect_timeout));
    let tls = rustls::ClientConfig::builder_with_provider(
        rustls::crypto::ring::default_provider().into(),
    )
    .with_safe_default_protocol_versions()
    .expect("ring supports the default TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(ProxyConnector {
            direct: tcp,
            to_proxy,
            proxies,
            reach,
            lookup,
        });
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(IDLE_TIMEOUT)
        .pool_max_idle_per_host(MAX_IDLE_PER_ORIGIN)
        .pool_timer(TokioTimer::new())
        .build(connector)
}

/// The webpki roots plus the system's trust store, so a TLS-inspecting proxy whose CA the
/// operator installed is trusted as it is by curl (a known failure of similar tools).
fn trust_roots() -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.into(),
    };
    let native = rustls_native_certs::load_native_certs();
    let (added, ignored) = roots.add_parsable_certificates(native.certs);
    if !native.errors.is_empty() || ignored > 0 {
        tracing::debug!(
            added,
            ignored,
            errors = native.errors.len(),
            "some of the system's trust store could not be read"
        );
    }
    roots
}

/// The wasi-http error for a failed request.
fn classify(e: hyper_util::client::legacy::Error) -> HttpError {
    // A refused destination may come wrapped in io::Errors, whose `source` skips payloads.
    let forbidden = sources(&e).any(|s| {
        let mut cause: &(dyn StdError + 'static) = s;
        loop {
            if cause.is::<ForbiddenDestination>() {
                return true;
            }
            match cause
                .downcast_ref::<io::Error>()
                .and_then(io::Error::get_ref)
            {
                Some(inner) => cause = inner,
                None => return false,
            }
        }
    });
    if forbidden {
        tracing::debug!(error = %chain(&e), "refused a non-public destination");
        return HttpError::HttpRequestDenied;
    }
    let io_cause = sources(&e).find_map(|s| s.downcast_ref::<io::Error>());
    // rustls's error comes in the chain, or as the payload of (nested) io::Errors, which
    // an io::Error's `source` skips.
    let tls_cause = sources(&e).find_map(|s| {
        let mut cause: &(dyn StdError + 'static) = s;
        loop {
            if let Some(tls) = cause.downcast_ref::<rustls::Error>() {
                return Some(tls);
            }
            let inner = cause.downcast_ref::<io::Error>()?.get_ref()?;
            cause = inner;
        }
    });
    if let Some(tls) = tls_cause {
        return match tls {
            rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented => {
                HttpError::TlsCertificateError
            }
            rustls::Error::AlertReceived(alert) => HttpError::TlsAlertReceived {
                alert_id: None,
                alert_message: Some(format!("{alert:?}")),
            },
            _ => HttpError::TlsProtocolError,
        };
    }
    if e.is_connect() {
        return match io_cause.map(io::Error::kind) {
            Some(io::ErrorKind::TimedOut) => HttpError::ConnectionTimeout,
            Some(io::ErrorKind::ConnectionRefused) => HttpError::ConnectionRefused,
            Some(kind) => HttpError::Connect(io::Error::new(kind, chain(&e))),
            None => HttpError::Connect(io::Error::other(chain(&e))),
        };
    }
    if let Some(h) = sources(&e).find_map(|s| s.downcast_ref::<hyper::Error>()) {
        if h.is_timeout() {
            return HttpError::HttpResponseTimeout;
        }
        if h.is_incomplete_message() || h.is_closed() || h.is_canceled() {
            return HttpError::ConnectionTerminated;
        }
        if h.is_parse() || h.is_parse_status() {
            return HttpError::HttpProtocolError;
        }
    }
    // A body error of the request itself (the guest's stream failed) comes back as is.
    if let Some(code) = sources(&e).find_map(|s| s.downcast_ref::<HttpError>()) {
        return clone_error(code).unwrap_or_else(|| HttpError::InternalError(Some(chain(&e))));
    }
    HttpError::InternalError(Some(chain(&e)))
}

/// The error and its causes.
fn sources<'a>(
    e: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(e), |e: &&'a (dyn StdError + 'static)| (*e).source())
}

/// Every message of the chain, for diagnostics.
fn chain(e: &(dyn StdError + 'static)) -> String {
    sources(e)
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}

/// The variants a request body can fail with that carry no non-clonable payload.
fn clone_error(e: &HttpError) -> Option<HttpError> {
    Some(match e {
        HttpError::HttpRequestBodySize(n) => HttpError::HttpRequestBodySize(*n),
        HttpError::HttpRequestDenied => HttpError::HttpRequestDenied,
        HttpError::ConnectionTerminated => HttpError::ConnectionTerminated,
        HttpError::InternalError(m) => HttpError::InternalError(m.clone()),
        _ => return None,
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Empty;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A GET to an operator-set endpoint (any address: these servers are on loopback).
    fn get(url: &str) -> http::Request<WasiBody> {
        get_reaching(url, Reach::Any)
    }

    fn get_reaching(url: &str, reach: Reach) -> http::Request<WasiBody> {
        let mut request = http::Request::get(url)
            .body(Empty::new().map_err(|e| match e {}).boxed_unsync())
            .unwrap();
        request.extensions_mut().insert(reach);
        request
    }

    /// A server on a second loopback address, 127.0.0.2, standing in for a destination a
    /// plugin's default must not reach (a metadata service, an internal host), which
    /// counts its connections.
    async fn forbidden_destination() -> (u16, tokio::sync::watch::Receiver<u32>) {
        let listener = TcpListener::bind("127.0.0.2:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (count_tx, count_rx) = tokio::sync::watch::channel(0u32);
        tokio::spawn(async move {
            while let Ok(Ok((socket, _))) =
                tokio::time::timeout(Duration::from_secs(10), listener.accept()).await
            {
                count_tx.send_modify(|n| *n += 1);
                tokio::spawn(answer_each_request(socket, "internal"));
            }
        });
        (port, count_rx)
    }

    #[tokio::test]
    async fn a_default_never_connects_to_a_non_public_address_literal_or_resolved() {
        let (port, connections) = forbidden_destination().await;
        let table = [
            (
                "internal.test".to_owned(),
                vec!["127.0.0.2".parse().unwrap()],
            ),
            (
                "mixed.test".to_owned(),
                vec![
                    "169.254.169.254".parse().unwrap(),
                    "127.0.0.2".parse().unwrap(),
                ],
            ),
        ];
        let lookup = Lookup::Fixed(Arc::new(table.into_iter().collect()));
        let pool = HttpPool::resolving(
            Duration::from_secs(5),
            rustls::RootCertStore::empty(),
            no_proxy(),
            lookup,
        );
        for url in [
            format!("http://internal.test:{port}/"),
            format!("http://mixed.test:{port}/"),
            format!("http://127.0.0.2:{port}/"),
            format!("http://[::ffff:127.0.0.2]:{port}/"),
            format!("https://internal.test:{port}/"),
        ] {
            let sent = pool
                .send(get_reaching(&url, Reach::Public), options(5), caps(64, 64))
                .await;
            assert!(
                matches!(sent, Err(HttpError::HttpRequestDenied)),
                "{url}: {:?}",
                sent.map(|r| r.status())
            );
        }
        // A request nobody marked is held to public addresses too.
        let unmarked = http::Request::get(format!("http://internal.test:{port}/"))
            .body(Empty::new().map_err(|e| match e {}).boxed_unsync())
            .unwrap();
        assert!(matches!(
            pool.send(unmarked, options(5), caps(64, 64)).await,
            Err(HttpError::HttpRequestDenied)
        ));
        assert_eq!(
            *connections.borrow(),
            0,
            "a refused destination was connected to"
        );
        // The same destination, set by the operator, is reached.
        let resp = pool
            .send(
                get(&format!("http://internal.test:{port}/")),
                options(5),
                caps(64, 64),
            )
            .await
            .expect("an operator-set endpoint may be private");
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"internal");
        assert_eq!(*connections.borrow(), 1);
        // ... and its kept-alive connection is not handed to a default's request.
        let again = pool
            .send(
                get_reaching(&format!("http://internal.test:{port}/"), Reach::Public),
                options(5),
                caps(64, 64),
            )
            .await;
        assert!(matches!(again, Err(HttpError::HttpRequestDenied)));
    }

    #[tokio::test]
    async fn through_a_proxy_a_default_is_refused_what_the_host_can_check() {
        let (proxy, tunnels) = connect_proxy().await;
        let table = [(
            "internal.test".to_owned(),
            vec!["127.0.0.2".parse().unwrap()],
        )];
        let lookup = Lookup::Fixed(Arc::new(table.into_iter().collect()));
        let proxies = Matcher::builder().https(proxy).build();
        let pool = HttpPool::resolving(
            Duration::from_secs(5),
            rustls::RootCertStore::empty(),
            proxies,
            lookup,
        );
        for url in [
            "https://169.254.169.254/latest/meta-data/",
            "https://[::ffff:169.254.169.254]/",
            "https://internal.test/",
        ] {
            let sent = pool
                .send(get_reaching(url, Reach::Public), options(5), caps(64, 64))
                .await;
            assert!(
                matches!(sent, Err(HttpError::HttpRequestDenied)),
                "{url}: {:?}",
                sent.map(|r| r.status())
            );
        }
        assert_eq!(
            *tunnels.borrow(),
            0,
            "a refused destination reached the proxy"
        );
    }

    fn options(secs: u64) -> RequestOptions {
        let d = Some(Duration::from_secs(secs));
        RequestOptions {
            connect_timeout: d,
            first_byte_timeout: d,
            between_bytes_timeout: d,
        }
    }

    /// Answers each request (a head without body) on `socket` with 200 and `body`.
    async fn answer_each_request(
        socket: impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
        body: &'static str,
    ) {
        answer_each_request_as(socket, "", body).await
    }

    /// The same, with `headers` (each ending in CRLF) added to the answer.
    async fn answer_each_request_as(
        mut socket: impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
        headers: &'static str,
        body: &'static str,
    ) {
        let mut buf = vec![0u8; 4096];
        let mut seen = Vec::new();
        while let Ok(n) = socket.read(&mut buf).await {
            if n == 0 {
                return;
            }
            seen.extend_from_slice(&buf[..n]);
            while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                seen.drain(..end + 4);
                let reply = format!(
                    "HTTP/1.1 200 OK\r\n{headers}content-length: {}\r\n\r\n{body}",
                    body.len()
                );
                if socket.write_all(reply.as_bytes()).await.is_err() {
                    return;
                }
            }
        }
    }

    /// A loopback server that answers every request on a connection with `body`, and counts
    /// the connections it accepted.
    async fn keep_alive_server(body: &'static str) -> (String, tokio::sync::watch::Receiver<u32>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let (count_tx, count_rx) = tokio::sync::watch::channel(0u32);
        tokio::spawn(async move {
            while let Ok(Ok((socket, _))) =
                tokio::time::timeout(Duration::from_secs(10), listener.accept()).await
            {
                count_tx.send_modify(|n| *n += 1);
                tokio::spawn(answer_each_request(socket, body));
            }
        });
        (url, count_rx)
    }

    #[tokio::test]
    async fn reuses_a_connection_for_sequential_requests() {
        let (url, connections) = keep_alive_server("hello").await;
        let pool = HttpPool::new(Duration::from_secs(5));
        for _ in 0..5 {
            let Ok(resp) = pool.send(get(&url), options(5), caps(1024, 1024)).await else {
                panic!("request failed");
            };
            assert_eq!(resp.status(), 200);
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(&body[..], b"hello");
        }
        assert_eq!(*connections.borrow(), 1, "one connection for five requests");
    }

    #[tokio::test]
    async fn request_body_over_the_cap_is_refused_before_sending() {
        let (url, connections) = keep_alive_server("hello").await;
        let pool = HttpPool::new(Duration::from_secs(5));
        let post = |len: usize| {
            let mut request = http::Request::post(&url)
                .body(
                    Full::new(Bytes::from(vec![b'x'; len]))
                        .map_err(|e| match e {})
                        .boxed_unsync(),
                )
                .unwrap();
            request.extensions_mut().insert(Reach::Any);
            request
        };
        let Err(err) = pool.send(post(1025), options(5), caps(1024, 1024)).await else {
            panic!("an oversized body was sent");
        };
        assert!(
            matches!(err, HttpError::HttpRequestBodySize(Some(1024))),
            "{err:?}"
        );
        assert_eq!(*connections.borrow(), 0, "nothing left the host");
        let Ok(resp) = pool.send(post(1024), options(5), caps(1024, 1024)).await else {
            panic!("a body at the cap was refused");
        };
        assert_eq!(resp.status(), 200);
    }

    #[tokio::test]
    async fn response_body_over_the_cap_fails() {
        let (url, _) = keep_alive_server("hello").await;
        let pool = HttpPool::new(Duration::from_secs(5));
        let Ok(resp) = pool.send(get(&url), options(5), caps(1024, 3)).await else {
            panic!("request failed");
        };
        let Err(err) = resp.into_body().collect().await else {
            panic!("a body over the cap came through");
        };
        assert!(
            matches!(err, HttpError::HttpResponseBodySize(Some(3))),
            "{err:?}"
        );
    }

    /// A CA, and a TLS server on 127.0.0.1 for `localhost` signed by it that answers every
    /// request with `hello`.
    async fn tls_server() -> (u16, rustls::RootCertStore) {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::from_params(&ca_params, &ca_key);
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .signed_by(&leaf_key, &issuer)
            .unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.der().clone()).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(
            rustls::crypto::ring::default_provider().into(),
        )
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok(Ok((socket, _))) =
                tokio::time::timeout(Duration::from_secs(10), listener.accept()).await
            {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(socket).await else {
                        return;
                    };
                    answer_each_request(tls, "hello").await;
                });
            }
        });
        (port, roots)
    }

    #[tokio::test]
    async fn https_is_verified_against_the_trusted_roots() {
        let (port, roots) = tls_server().await;
        let url = format!("https://localhost:{port}/");
        let trusting = HttpPool::with(Duration::from_secs(5), roots, no_proxy());
        for _ in 0..2 {
            let Ok(resp) = trusting.send(get(&url), options(5), caps(1024, 1024)).await else {
                panic!("the TLS request failed");
            };
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(&body[..], b"hello");
        }
        // The default roots (webpki and the system's) do not know this CA.
        let Err(err) = HttpPool::new(Duration::from_secs(5))
            .send(get(&url), options(5), caps(1024, 1024))
            .await
        else {
            panic!("a certificate from an unknown CA was accepted");
        };
        assert!(matches!(err, HttpError::TlsCertificateError), "{err:?}");
    }

    fn caps(request: u64, response: u64) -> BodyCaps {
        BodyCaps {
            request,
            response,
            event_stream: response * 4,
        }
    }

    fn no_proxy() -> Matcher {
        Matcher::builder().build()
    }

    /// An HTTP proxy on 127.0.0.1 that serves `CONNECT` only and counts the tunnels.
    async fn connect_proxy() -> (String, tokio::sync::watch::Receiver<u32>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (count_tx, count_rx) = tokio::sync::watch::channel(0u32);
        tokio::spawn(async move {
            while let Ok(Ok((mut client, _))) =
                tokio::time::timeout(Duration::from_secs(10), listener.accept()).await
            {
                count_tx.send_modify(|n| *n += 1);
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        if client.read(&mut byte).await.unwrap_or(0) == 0 {
                            return;
                        }
                        head.push(byte[0]);
                    }
                    let head = String::from_utf8_lossy(&head).into_owned();
                    let Some(target) = head
                        .strip_prefix("CONNECT ")
                        .and_then(|r| r.split(' ').next())
                    else {
                        let _ = client
                            .write_all(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
                            .await;
                        return;
                    };
                    let port = target.rsplit(':').next().unwrap_or("443");
                    let Ok(mut upstream) =
                        tokio::net::TcpStream::connect(format!("127.0.0.1:{port}")).await
                    else {
                        return;
                    };
                    let _ = client
                        .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
                        .await;
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                });
            }
        });
        (url, count_rx)
    }

    #[tokio::test]
    async fn https_goes_through_the_configured_proxy_as_a_tunnel() {
        let (port, roots) = tls_server().await;
        let (proxy, tunnels) = connect_proxy().await;
        let url = format!("https://localhost:{port}/");
        let proxies = Matcher::builder().https(proxy.clone()).build();
        let pool = HttpPool::with(Duration::from_secs(5), roots.clone(), proxies);
        for _ in 0..3 {
            let Ok(resp) = pool.send(get(&url), options(5), caps(1024, 1024)).await else {
                panic!("the request through the proxy failed");
            };
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(&body[..], b"hello");
        }
        assert_eq!(
            *tunnels.borrow(),
            1,
            "one tunnel, kept alive for three requests"
        );

        // NO_PROXY exempts a host; plain http is never proxied.
        let exempt = Matcher::builder()
            .https(proxy.clone())
            .no("localhost")
            .build();
        let pool = HttpPool::with(Duration::from_secs(5), roots, exempt);
        assert!(
            pool.send(get(&url), options(5), caps(1024, 1024))
                .await
                .is_ok()
        );
        let (plain, _) = keep_alive_server("plain").await;
        let all = Matcher::builder().all(proxy).build();
        let pool = HttpPool::with(Duration::from_secs(5), rustls::RootCertStore::empty(), all);
        assert!(
            pool.send(get(&plain), options(5), caps(1024, 1024))
                .await
                .is_ok()
        );
        assert_eq!(*tunnels.borrow(), 1, "neither went through the proxy");
    }

    #[tokio::test]
    async fn an_event_stream_gets_the_stream_cap() {
        const EVENTS: &str =
            "data: {\"delta\":\"a\"}\n\ndata: {\"delta\":\"b\"}\n\ndata: [DONE]\n\n";
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(answer_each_request_as(
                    socket,
                    "content-type: text/event-stream\r\n",
                    EVENTS,
                ));
            }
        });
        let pool = HttpPool::new(Duration::from_secs(5));
        let len = EVENTS.len() as u64;
        // Over the response cap, within the stream cap: whole.
        let within = BodyCaps {
            request: 1024,
            response: 10,
            event_stream: len,
        };
        let Ok(resp) = pool.send(get(&url), options(5), within).await else {
            panic!("request failed");
        };
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body.len() as u64, len);
        // Over the stream cap: cut with the typed error.
        let over = BodyCaps {
            event_stream: len - 1,
            ..within
        };
        let Ok(resp) = pool.send(get(&url), options(5), over).await else {
            panic!("request failed");
        };
        let Err(err) = resp.into_body().collect().await else {
            panic!("a stream over its cap came through");
        };
        assert!(
            matches!(err, HttpError::HttpResponseBodySize(Some(m)) if m == len - 1),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn refused_connection_is_typed() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        drop(listener);
        let pool = HttpPool::new(Duration::from_secs(5));
        let Err(err) = pool.send(get(&url), options(5), caps(1024, 1024)).await else {
            panic!("a closed port answered");
        };
        assert!(matches!(err, HttpError::ConnectionRefused), "{err:?}");
    }

    #[tokio::test]
    async fn stalled_body_times_out_between_bytes() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = socket.read(&mut buf).await;
            let _ = socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc")
                .await;
            tokio::time::sleep(Duration::from_secs(5)).await;
        });
        let pool = HttpPool::new(Duration::from_secs(5));
        let mut opts = options(5);
        opts.between_bytes_timeout = Some(Duration::from_millis(200));
        let Ok(resp) = pool.send(get(&url), opts, caps(1024, 1024)).await else {
            panic!("request failed");
        };
        let Err(err) = resp.into_body().collect().await else {
            panic!("a stalled body completed");
        };
        assert!(matches!(err, HttpError::ConnectionReadTimeout), "{err:?}");
    }

    #[test]
    fn proxy_schemes_other_than_http_are_refused() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert_eq!(proxy_problem(env(&[])), None);
        assert_eq!(
            proxy_problem(env(&[("HTTPS_PROXY", "http://user:pw@proxy:3128")])),
            None
        );
        assert_eq!(
            proxy_problem(env(&[("https_proxy", "proxy.local:8080")])),
            None
        );
        let https =
            proxy_problem(env(&[("HTTPS_PROXY", "https://user:secretpw@proxy:443")])).unwrap();
        assert!(
            https.contains("https://") && !https.contains("secretpw"),
            "{https}"
        );
        let socks = proxy_problem(env(&[("ALL_PROXY", "socks5://proxy:1080")])).unwrap();
        assert!(socks.contains("socks5"), "{socks}");
        assert!(proxy_problem(env(&[("HTTP_PROXY", "http://")])).is_some());
    }
}
