//! Sessions that are safe to cancel and to reuse for ever: a call dropped midway never
//! poisons the session's next call, a pool never lends a session with a stream left open,
//! and a long-lived session's resource table stays flat.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use provider_reference::{ApiHandle, AuthHandle};
use provider_runtime::bindings::types::{ChatChunk, ChatRequest, Message, PollOutcome, Role};
use provider_runtime::secrets::KeySource;
use provider_runtime::{
    ClientFuture, HostConfig, HostError, HttpClient, PoolOptions, Runtime, RuntimeOptions,
    SessionPool,
};

use crate::support;

/// The runtime's own client, holding back answers while `stall_ms` is set: an upstream
/// that thinks for a long time.
#[derive(Debug)]
struct Stalling {
    inner: Arc<dyn HttpClient>,
    stall_ms: Arc<AtomicU64>,
}

impl HttpClient for Stalling {
    fn send(&self, request: http::Request<bytes::Bytes>) -> ClientFuture {
        let stall = Duration::from_millis(self.stall_ms.load(Ordering::SeqCst));
        let sent = self.inner.send(request);
        Box::pin(async move {
            tokio::time::sleep(stall).await;
            sent.await
        })
    }
}

struct World {
    _auth: AuthHandle,
    _api: ApiHandle,
    _state: tempfile::TempDir,
    runtime: Runtime,
    config: HostConfig,
    stall_ms: Arc<AtomicU64>,
}

/// Reference servers, a runtime whose client can stall, and tenant `t` logged in.
async fn world(tune: impl FnOnce(&mut RuntimeOptions)) -> World {
    let (auth, api) = support::servers();
    let state = support::state_dir();
    let mut options = RuntimeOptions::new(env!("PROVIDER_PLUGIN_COMPONENT"), state.path());
    options.key = KeySource::File(state.path().join("keyring").join("master.key"));
    let stall_ms = Arc::new(AtomicU64::new(0));
    options.http_client = Some(Arc::new(Stalling {
        inner: provider_runtime::default_http_client(Duration::from_secs(5)),
        stall_ms: stall_ms.clone(),
    }));
    tune(&mut options);
    let runtime = Runtime::new(options).unwrap();
    let config = support::config(auth.issuer(), &api.base_url());
    let mut session = runtime.session("t", &config).await.unwrap();
    let prompt = session.start().await.unwrap();
    auth.approve(&prompt.user_code, 3, "sessions-test").unwrap();
    let outcome = session.poll(Some(&prompt.pending_id)).await.unwrap();
    assert!(matches!(outcome, PollOutcome::Connected(_)), "{outcome:?}");
    World {
        _auth: auth,
        _api: api,
        _state: state,
        runtime,
        config,
        stall_ms,
    }
}

fn hello() -> ChatRequest {
    let mut request = ChatRequest::new("grok-4.3", vec![Message::text(Role::User, "hello")]);
    request.route = Some("api".into());
    request
}

async fn streamed_text(session: &mut provider_runtime::Session) -> Result<String, HostError> {
    let stream = session.open_chat_stream(&hello()).await?;
    let mut text = String::new();
    while let Some(chunk) = session.next_chunk(&stream).await? {
        if let ChatChunk::Text(t) = chunk {
            text.push_str(&t);
        }
    }
    session.close_chat_stream(stream).await?;
    Ok(text)
}

#[tokio::test]
async fn a_call_dropped_midway_never_breaks_the_next() {
    let w = world(|_| {}).await;
    let mut session = w.runtime.session("t", &w.config).await.unwrap();
    let expected = session.chat(&hello()).await.unwrap().content;
    for round in 0..20 {
        w.stall_ms.store(5_000, Ordering::SeqCst);
        // Given up before the reply starts: whole, a stream before its head, and a stream
        // between its events (the client's stop button).
        let cancelled = match round % 3 {
            0 => tokio::time::timeout(Duration::from_millis(50), session.chat(&hello()))
                .await
                .is_err(),
            1 => tokio::time::timeout(
                Duration::from_millis(50),
                session.open_chat_stream(&hello()),
            )
            .await
            .is_err(),
            _ => {
                w.stall_ms.store(0, Ordering::SeqCst);
                let stream = session.open_chat_stream(&hello()).await.unwrap();
                let first = session.next_chunk(&stream).await.unwrap();
                assert!(first.is_some());
                // Then dropped while the next event is awaited: the handle is dropped too.
                let cut = tokio::time::timeout(Duration::ZERO, session.next_chunk(&stream));
                let _ = cut.await;
                true
            }
        };
        assert!(cancelled, "round {round}: the call was not cut");
        w.stall_ms.store(0, Ordering::SeqCst);
        let whole = session.chat(&hello()).await;
        assert_eq!(
            whole.map(|r| r.content).ok().as_deref(),
            Some(&*expected),
            "round {round}"
        );
        assert_eq!(
            streamed_text(&mut session).await.unwrap(),
            expected,
            "round {round}"
        );
    }
    // The login survived every cut.
    assert!(session.status().await.unwrap().connected);
}

#[tokio::test]
async fn a_pool_never_lends_a_session_left_mid_call_or_mid_stream() {
    let w = world(|_| {}).await;
    let pool = SessionPool::new(
        w.runtime.clone(),
        w.config.clone(),
        PoolOptions::default().with_sessions_per_tenant(1),
    );
    for round in 0..10 {
        {
            let mut lease = pool.lease("t").await.unwrap();
            if round % 2 == 0 {
                w.stall_ms.store(5_000, Ordering::SeqCst);
                let request = hello();
                let cut =
                    tokio::time::timeout(Duration::from_millis(30), lease.session().chat(&request));
                assert!(cut.await.is_err());
                w.stall_ms.store(0, Ordering::SeqCst);
            } else {
                // A stream opened and abandoned with its handle: never closed.
                let session = lease.session();
                let stream = session.open_chat_stream(&hello()).await.unwrap();
                session.next_chunk(&stream).await.unwrap();
                assert!(!session.is_reusable());
            }
        }
        let mut lease = pool.lease("t").await.unwrap();
        assert!(lease.session().is_reusable());
        lease.session().chat(&hello()).await.unwrap();
        assert!(!streamed_text(lease.session()).await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn a_busy_tenant_gets_a_typed_refusal_after_the_bounded_wait_and_idle_sessions_go() {
    let w = world(|_| {}).await;
    let pool = SessionPool::new(
        w.runtime.clone(),
        w.config.clone(),
        PoolOptions::default()
            .with_sessions_per_tenant(1)
            .with_max_wait(Duration::from_millis(200))
            .with_idle_timeout(Duration::from_millis(100)),
    );
    let held = pool.lease("t").await.unwrap();
    let began = std::time::Instant::now();
    let refused = pool
        .lease("t")
        .await
        .err()
        .expect("the only session is lent");
    assert!(
        matches!(refused, HostError::TenantBusy { sessions: 1, .. }),
        "{refused}"
    );
    assert_eq!(refused.code(), "tenant_busy");
    assert_eq!(refused.retry_after_seconds(), Some(1));
    assert!(began.elapsed() >= Duration::from_millis(200));
    assert!(began.elapsed() < Duration::from_secs(5));
    // Another tenant is not held up.
    drop(pool.lease("other").await.unwrap());
    drop(held);
    assert_eq!(pool.idle_sessions(), 2);
    tokio::time::sleep(Duration::from_millis(150)).await;
    pool.evict_idle();
    assert_eq!(pool.idle_sessions(), 0);
    // And the tenant is served again by a fresh session.
    pool.lease("t")
        .await
        .unwrap()
        .session()
        .chat(&hello())
        .await
        .unwrap();
}

#[tokio::test]
async fn ten_thousand_requests_on_one_session_keep_its_resource_table_flat() {
    // A table of 64 entries: a leak of one entry per request fails within 64 requests.
    let w = world(|options| options.limits.max_resources = 64).await;
    let mut session = w.runtime.session("t", &w.config).await.unwrap();
    for i in 0..10_000 {
        let outcome = if i % 2 == 0 {
            session.chat(&hello()).await.map(|r| r.content)
        } else {
            streamed_text(&mut session).await
        };
        if let Err(e) = outcome {
            panic!("request {i} failed: {} ({e})", e.code());
        }
    }
}
