//! The router as an embedder nests it: under a prefix of its own app, with its own
//! [`Metrics`] and [`TenantResolver`]. No plugin is run: these routes answer before a
//! session is needed (the CLI's tests drive the routes that lease one).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use provider_runtime::{HostConfig, HostError, PoolOptions, Runtime, RuntimeOptions, SessionPool};
use provider_serve::{Metrics, ServeState, TenantResolver};
use serde_json::Value;
use tower::ServiceExt;

/// Knows no key; counts its lookups. `failing`: its store fails.
struct Resolver {
    lookups: AtomicUsize,
    local: bool,
    failing: bool,
}

impl TenantResolver for Resolver {
    fn tenant_of(&self, _presented_key: &str) -> Result<Option<String>, HostError> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        if self.failing {
            return Err(HostError::Config("the store is down".into()));
        }
        Ok(None)
    }

    fn is_local(&self) -> bool {
        self.local
    }
}

/// The plugin component `provider-host`'s build script builds (`cargo build --workspace`
/// first), or `PROVIDER_PLUGIN_COMPONENT`'s: the runtime checks it fits the world, though
/// no session is opened here.
fn component() -> std::path::PathBuf {
    let path = std::env::var_os("PROVIDER_PLUGIN_COMPONENT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            // This test runs as <target>/<profile>/deps/router-…: the component is built
            // under the same target directory, wherever that is.
            let exe = std::env::current_exe().expect("the test's own path");
            let target = exe
                .ancestors()
                .nth(3)
                .expect("<target>/<profile>/deps/<test>");
            target.join("plugin-component/wasm32-wasip2/component/grok_provider_plugin.wasm")
        });
    assert!(
        path.is_file(),
        "no plugin component at {}: run `cargo build --workspace` first (provider-host's build script builds it)",
        path.display()
    );
    path
}

fn app(resolver: Arc<Resolver>, metrics: Metrics, dir: &std::path::Path) -> axum::Router {
    let options = RuntimeOptions::new(component(), dir.join("state"));
    let runtime = Runtime::new(options).unwrap();
    let pool = SessionPool::new(runtime, HostConfig::new().unwrap(), PoolOptions::default());
    axum::Router::new()
        .route("/", axum::routing::get(|| async { "embedder" }))
        .nest(
            "/gateway",
            provider_serve::router(ServeState::new(pool, resolver, metrics)),
        )
}

async fn call(app: &axum::Router, path: &str, key: Option<&str>) -> (StatusCode, String) {
    let mut request = Request::get(path);
    if let Some(k) = key {
        request = request.header(header::AUTHORIZATION, format!("Bearer {k}"));
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

fn resolver(local: bool, failing: bool) -> Arc<Resolver> {
    Arc::new(Resolver {
        lookups: AtomicUsize::new(0),
        local,
        failing,
    })
}

fn code(body: &str) -> Value {
    serde_json::from_str::<Value>(body).unwrap()["error"]["code"].clone()
}

#[tokio::test]
async fn nested_routes_answer_under_the_embedders_prefix_and_count_in_its_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let (ours, theirs) = (Metrics::new(), Metrics::new());
    let keys = resolver(true, false);
    let app = app(keys.clone(), ours.clone(), dir.path());
    let other = self::app(resolver(true, false), theirs.clone(), dir.path());

    assert_eq!(
        call(&app, "/", None).await,
        (StatusCode::OK, "embedder".into())
    );
    let (status, body) = call(&app, "/gateway/healthz", None).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, r#"{"ok":true}"#));
    // No key, then a key the resolver does not know: 401 in OpenAI's shape.
    for key in [None, Some("phk_nope")] {
        let (status, body) = call(&app, "/gateway/v1/models", key).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(code(&body), "invalid_api_key");
    }
    assert_eq!(keys.lookups.load(Ordering::SeqCst), 1);
    let (status, body) = call(&app, "/gateway/v1/nothing", None).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::NOT_FOUND, "not_found".into())
    );

    // `/metrics` scrapes the registry this app was given, and only it.
    let (status, text) = call(&app, "/gateway/metrics", None).await;
    assert_eq!(status, StatusCode::OK);
    for line in [
        r#"serve_requests_total{route="/healthz",status="200"} 1"#,
        r#"serve_requests_total{route="/v1/models",status="401"} 2"#,
        r#"serve_requests_total{route="other",status="404"} 1"#,
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in {text}");
    }
    // The scrape itself is counted in the same registry.
    assert!(
        ours.encode()
            .unwrap()
            .contains(r#"route="/metrics",status="200"} 1"#)
    );
    let (_, elsewhere) = call(&other, "/gateway/metrics", None).await;
    assert!(!elsewhere.contains(r#"route="/healthz""#), "{elsewhere}");
    assert!(!theirs.encode().unwrap().contains("status=\"401\""));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_remote_resolver_runs_off_the_workers_and_its_failure_is_a_500() {
    let dir = tempfile::tempdir().unwrap();
    let keys = resolver(false, true);
    let app = app(keys.clone(), Metrics::new(), dir.path());
    let (status, body) = call(&app, "/gateway/v1/models", Some("phk_any")).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert_eq!(code(&body), "storage");
    // The store's words stay in the log, not the answer.
    assert!(!body.contains("down"), "{body}");
    assert_eq!(keys.lookups.load(Ordering::SeqCst), 1);
}
