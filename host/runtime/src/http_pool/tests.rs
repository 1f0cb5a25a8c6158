//! The pool's tests against loopback servers: connection reuse, body caps, TLS roots,
//! proxies, destination checks, timeouts.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::proxy::matcher::Matcher;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody};

use super::client::Lookup;
use super::{BodyCaps, ConnectionOptions, HttpPool};
use crate::config::Reach;
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

/// GETs `url` through `pool` `n` times, each answered 200 `hello`.
async fn get_hello(pool: &HttpPool, url: &str, n: usize) {
    for _ in 0..n {
        let Ok(resp) = pool.send(get(url), options(5), caps(1024, 1024)).await else {
            panic!("request failed");
        };
        assert_eq!(resp.status(), 200);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"hello");
    }
}

#[tokio::test]
async fn reuses_a_connection_for_sequential_requests() {
    let (url, connections) = keep_alive_server("hello").await;
    get_hello(&HttpPool::new(Duration::from_secs(5)), &url, 5).await;
    assert_eq!(*connections.borrow(), 1, "one connection for five requests");
}

#[tokio::test]
async fn connection_options_bound_the_idle_connections_kept() {
    let (url, connections) = keep_alive_server("hello").await;
    let client = ConnectionOptions::default()
        .with_max_idle_per_origin(0)
        .http_client(Duration::from_secs(5));
    get_hello(&HttpPool::over(client), &url, 3).await;
    assert_eq!(
        *connections.borrow(),
        3,
        "no idle connection kept, none reused"
    );
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
    const EVENTS: &str = "data: {\"delta\":\"a\"}\n\ndata: {\"delta\":\"b\"}\n\ndata: [DONE]\n\n";
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
