//! The default [`HttpClient`]: hyper's keep-alive pool. wasi-http's own sender opens a new
//! TCP (and TLS) connection per request and closes it when the response body is dropped;
//! against `api.x.ai` that is a TCP and a TLS handshake per chat turn. Here idle
//! connections are kept per origin and reused, TLS with the webpki roots and the system's
//! store, HTTP/1.1, proxies from the environment, no redirects followed. Sharing
//! connections across tenants is safe: every request carries its own credentials, and a
//! response is read by the request that asked for it.
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
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use wasmtime_wasi_http::{Error as HttpError, WasiBody};

#[cfg(test)]
use super::HttpPool;
use super::classify::classify;
use super::{ClientFuture, HttpClient};
use crate::config::{Reach, is_public_ip};

type PooledClient = Client<HttpsConnector<ProxyConnector>, WasiBody>;

/// The client a runtime sends with when [`crate::RuntimeOptions::http_client`] is `None`:
/// hyper's keep-alive pool, TLS with the webpki and system roots, proxies from the
/// environment, connection attempts given up after `connect_timeout`, tuned with
/// [`ConnectionOptions::default`]. An embedder that wants to observe or decorate requests
/// (count token refreshes, add tracing) wraps this one in an [`HttpClient`] of its own and
/// passes that.
pub fn default_http_client(connect_timeout: Duration) -> Arc<dyn HttpClient> {
    ConnectionOptions::default().http_client(connect_timeout)
}

/// How the default client keeps its connections ([`crate::RuntimeOptions::connections`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionOptions {
    /// How long an unused connection stays open (default 30 s).
    pub idle_timeout: Duration,
    /// Idle connections kept per origin (default 32).
    pub max_idle_per_origin: usize,
    /// Through a proxy, how long the host tries to resolve a plugin default's host name
    /// itself to check its addresses (default 2 s); a name it cannot resolve in time is
    /// left to the proxy.
    pub proxy_name_check_timeout: Duration,
}

impl Default for ConnectionOptions {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(30),
            max_idle_per_origin: 32,
            proxy_name_check_timeout: Duration::from_secs(2),
        }
    }
}

impl ConnectionOptions {
    /// With unused connections closed after `idle`.
    pub fn with_idle_timeout(mut self, idle: Duration) -> Self {
        self.idle_timeout = idle;
        self
    }

    /// With at most `n` idle connections kept per origin.
    pub fn with_max_idle_per_origin(mut self, n: usize) -> Self {
        self.max_idle_per_origin = n;
        self
    }

    /// With `timeout` for the host's own resolution of a name sent through a proxy.
    pub fn with_proxy_name_check_timeout(mut self, timeout: Duration) -> Self {
        self.proxy_name_check_timeout = timeout;
        self
    }

    /// The default client (as [`default_http_client`]) tuned with these options.
    pub fn http_client(self, connect_timeout: Duration) -> Arc<dyn HttpClient> {
        Arc::new(PoolClient {
            public: OnceLock::new(),
            any: OnceLock::new(),
            connect_timeout,
            options: self,
            lookup: Lookup::System,
        })
    }
}

/// The default client: hyper's keep-alive pool, TLS with the webpki and system roots,
/// proxies from the environment. Built on the first request, so a call that sends none
/// (like `status`) does not pay for it. Two pools: connections to public addresses only
/// (a plugin's own defaults) and to any address (operator-set endpoints).
struct PoolClient {
    public: OnceLock<PooledClient>,
    any: OnceLock<PooledClient>,
    connect_timeout: Duration,
    options: ConnectionOptions,
    lookup: Lookup,
}

/// How names are resolved: the system's resolver, or a fixed table (tests).
#[derive(Clone, Debug)]
pub(super) enum Lookup {
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
pub(super) struct ForbiddenDestination(String);

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
                self.options,
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
    /// How long the host tries to resolve a proxied name itself.
    name_check_timeout: Duration,
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
                let name_check_timeout = self.name_check_timeout;
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
                            tokio::time::timeout(name_check_timeout, lookup.resolve(&host)).await
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

fn build_client(
    connect_timeout: Duration,
    options: ConnectionOptions,
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
            name_check_timeout: options.proxy_name_check_timeout,
        });
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(options.idle_timeout)
        .pool_max_idle_per_host(options.max_idle_per_origin)
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

#[cfg(test)]
impl HttpPool {
    /// A pool that trusts exactly `roots` and routes through `proxies` (tests).
    #[cfg(test)]
    pub(super) fn with(
        connect_timeout: Duration,
        roots: rustls::RootCertStore,
        proxies: Matcher,
    ) -> Self {
        Self::resolving(connect_timeout, roots, proxies, Lookup::System)
    }

    /// The same, resolving names with `lookup` (tests).
    #[cfg(test)]
    pub(super) fn resolving(
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
                ConnectionOptions::default(),
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
            options: ConnectionOptions::default(),
            lookup,
        }))
    }
}
