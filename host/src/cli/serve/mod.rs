//! `provider-host serve`: the OpenAI-compatible endpoint of [`provider_serve`] on a
//! listener of its own: loopback by default, TLS for other machines, graceful shutdown on
//! SIGTERM or Ctrl-C; and `serve-key create|list|revoke` over provider-serve's
//! [`ServeKeys`].

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use provider_runtime::{HostConfig, HostError, PoolOptions, Runtime, SessionPool};
use provider_serve::{Metrics, RefreshCounting, ServeKeys, ServeState};
use serde_json::json;

use super::args::{Cli, ServeArgs, ServeKeyCommand};
use super::{fail, ok};

/// A client must send its headers within this (the routes time its body).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long streams may finish after SIGTERM.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

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
            json!({"ok": true, "key": key.expose(), "id": info.id, "tenant": info.tenant, "created": info.created})
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
    options.limits.memory_budget_bytes = Some((args.plugin_memory_mib as usize) << 20);
    // The plugin's requests, with its token refreshes counted for /metrics.
    let metrics = Metrics::new();
    let client = options.http_client.take().unwrap_or_else(|| {
        provider_runtime::default_http_client(options.limits.http.connect_timeout)
    });
    options.http_client = Some(Arc::new(RefreshCounting::new(client, metrics.clone())));
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
    let config = match super::env_config(cli, &runtime, config, &routes).await {
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
    let state = ServeState::new(
        SessionPool::new(runtime, config, pool),
        Arc::new(keys),
        metrics,
    )
    .with_keepalive(Duration::from_secs(args.keepalive_secs))
    .with_model_aliases(args.model_alias.clone());
    let app = provider_serve::router(state);
    // One line for whoever started us (tests read the port from it), then the log.
    let scheme = if tls.is_some() { "https" } else { "http" };
    super::print_json(&json!({"ok": true, "listening": format!("{scheme}://{local}/v1")}));
    serve_until_signal(listener, app, tls).await;
    ExitCode::SUCCESS
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
