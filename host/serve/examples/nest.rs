//! An embedder's own axum app with provider-serve's routes nested under `/gateway`, over
//! its own runtime, session pool, keys and metrics.
//!
//! `cargo run -p provider-serve --example nest -- <component.wasm> <state-dir>`, then
//! `provider-host --state-dir <state-dir> serve-key create` for a key, and
//! `OPENAI_BASE_URL=http://127.0.0.1:8080/gateway/v1`.

use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use provider_runtime::{HostConfig, PoolOptions, Runtime, RuntimeOptions, SessionPool};
use provider_serve::{Metrics, RefreshCounting, ServeKeys, ServeState};

/// The embedder's app: its own route, and the gateway's.
fn app(state: ServeState) -> axum::Router {
    axum::Router::new()
        .route("/", get(|| async { "my app" }))
        .nest("/gateway", provider_serve::router(state))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(component), Some(state_dir)) = (args.next(), args.next()) else {
        eprintln!("usage: nest <component.wasm> <state-dir>");
        std::process::exit(2);
    };
    // One registry for the whole app: `/gateway/metrics` shows it.
    let metrics = Metrics::new();
    let mut options = RuntimeOptions::new(std::path::PathBuf::from(component), state_dir);
    let client = provider_runtime::default_http_client(options.limits.http.connect_timeout);
    options.http_client = Some(Arc::new(RefreshCounting::new(client, metrics.clone())));
    // The default key store: salted hashes under the state directory (or the secret
    // backend's host space when it has one).
    let keys = ServeKeys::open(&options.state_dir, options.secrets.as_ref())?;
    let runtime = Runtime::new(options)?;
    let pool = PoolOptions::default()
        .with_sessions_per_tenant(4)
        .with_max_wait(Duration::from_secs(5));
    // This embedder trusts the component it runs: the plugin's default route is granted.
    let config = HostConfig::new()?.grant_default_route();
    let state = ServeState::new(
        SessionPool::new(runtime, config, pool),
        Arc::new(keys),
        metrics,
    )
    .with_keepalive(Duration::from_secs(15));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
    println!("http://{}/gateway/v1", listener.local_addr()?);
    axum::serve(listener, app(state)).await?;
    Ok(())
}
