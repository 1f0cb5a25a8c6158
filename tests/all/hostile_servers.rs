//! Hostile servers: each misbehaviour ends in a clear typed error, nothing stored is lost,
//! and nothing is followed or allocated without bound.

use std::time::Duration;

use provider_reference::{ApiHandle, AuthConfig, AuthHandle, Fault, Route};
use provider_runtime::bindings::types::{ChatRequest, Message, PollOutcome, Role};
use provider_runtime::secrets::KeySource;
use provider_runtime::{Runtime, RuntimeOptions, Session};

use crate::support;

struct World {
    auth: AuthHandle,
    api: ApiHandle,
    _state: tempfile::TempDir,
    _runtime: Runtime,
    session: Session,
}

/// Reference servers, a runtime whose HTTP timeouts are short, and a connected session.
async fn connected_world(auth_config: AuthConfig) -> World {
    connected_world_with(auth_config, |options| {
        options.limits.http.first_byte_timeout = Duration::from_secs(2);
        options.limits.http.between_bytes_timeout = Duration::from_secs(2);
    })
    .await
}

/// Reference servers, a runtime with the limits `tune` sets, and a connected session.
async fn connected_world_with(
    auth_config: AuthConfig,
    tune: impl FnOnce(&mut RuntimeOptions),
) -> World {
    let (auth, api) = support::servers_with(auth_config);
    let state = support::state_dir();
    let mut options = RuntimeOptions::new(env!("PROVIDER_PLUGIN_COMPONENT"), state.path());
    options.key = KeySource::File(state.path().join("keyring").join("master.key"));
    tune(&mut options);
    let runtime = Runtime::new(options).unwrap();
    // The API route: the subscription rail's endpoint is not set here (and a plugin's own
    // default route opens nothing by itself).
    let config = support::config(auth.issuer(), &api.base_url()).set("default-route", "api");
    let mut session = runtime.session("t", &config).await.unwrap();
    let prompt = session.start().await.unwrap();
    auth.approve(&prompt.user_code, 3, "hostile-test").unwrap();
    let outcome = session.poll(Some(&prompt.pending_id)).await.unwrap();
    assert!(matches!(outcome, PollOutcome::Connected(_)), "{outcome:?}");
    World {
        auth,
        api,
        _state: state,
        _runtime: runtime,
        session,
    }
}

fn hello() -> ChatRequest {
    ChatRequest::new("grok-4.3", vec![Message::text(Role::User, "hello")])
}

async fn still_connected(w: &mut World) {
    let status = w.session.status().await.unwrap();
    assert!(status.connected, "credentials were lost");
    assert_eq!(status.tier, Some(3));
}

#[tokio::test]
async fn bodies_far_over_the_cap_are_refused_without_unbounded_allocation() {
    let mut w = connected_world(AuthConfig::default()).await;
    // Over the plugin's JSON cap (4 MiB) and over the host's body cap (16 MiB).
    for bytes in [6 << 20, 40 << 20] {
        w.api
            .push_fault(Route::ChatCompletions, Fault::Oversized { bytes });
        let err = w.session.chat(&hello()).await.unwrap_err();
        // The plugin stops reading at its own cap, before the host's.
        assert_eq!(err.code(), "invalid_response", "{bytes} bytes: {err}");
    }
    w.api
        .push_fault(Route::Models, Fault::Oversized { bytes: 40 << 20 });
    let err = w.session.models(true, None).await.unwrap_err();
    assert_eq!(err.code(), "invalid_response", "{err}");
    still_connected(&mut w).await;
}

#[tokio::test]
async fn stalls_before_headers_and_mid_body_time_out() {
    let mut w = connected_world(AuthConfig::default()).await;
    w.api.push_fault(
        Route::ChatCompletions,
        Fault::StallBeforeHeaders(Duration::from_secs(10)),
    );
    let err = w.session.chat(&hello()).await.unwrap_err();
    assert_eq!(err.code(), "network", "{err}");

    let mut stream_req = hello();
    stream_req.messages[0] =
        Message::text(Role::User, "a long enough answer to span several events");
    w.api.push_fault(
        Route::ChatCompletions,
        Fault::StallMidBody {
            after_events: 2,
            duration: Duration::from_secs(10),
        },
    );
    let stream = w.session.open_chat_stream(&stream_req).await.unwrap();
    let err = loop {
        match w.session.next_chunk(&stream).await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("a stalled stream ended silently"),
            Err(e) => break e,
        }
    };
    assert_eq!(err.code(), "network", "{err}");
    still_connected(&mut w).await;
}

/// Timeouts per kind of request: a model list that never comes fails in seconds, while a
/// chat may wait longer than that for its first byte (a reasoning model thinking).
#[tokio::test]
async fn a_stalled_model_list_fails_fast_but_a_slow_chat_is_waited_for() {
    // The host's own caps stay at their defaults: the plugin must ask for less.
    let mut w = connected_world_with(AuthConfig::default(), |_| {}).await;
    w.api.push_fault(
        Route::Models,
        Fault::StallBeforeHeaders(Duration::from_secs(90)),
    );
    let t = std::time::Instant::now();
    let err = w.session.models(true, None).await.unwrap_err();
    assert_eq!(err.code(), "network", "{err}");
    let waited = t.elapsed();
    assert!(
        waited < Duration::from_secs(40),
        "a stalled model list held the call for {waited:?}"
    );

    w.api.push_fault(
        Route::ChatCompletions,
        Fault::StallBeforeHeaders(Duration::from_secs(25)),
    );
    let reply = w.session.chat(&hello()).await.unwrap();
    assert_eq!(reply.content, "Echo: hello");
}

#[tokio::test]
async fn wrong_content_types_non_json_and_redirects_are_typed_errors() {
    let mut w = connected_world(AuthConfig::default()).await;
    let cases = [
        Fault::raw(200, "text/html", "<html>Just a moment...</html>"),
        Fault::raw(200, "application/json", "{not json"),
        Fault::raw(200, "application/json", "[]"),
        Fault::redirect("https://evil.example.com/v1/chat/completions"),
    ];
    for fault in cases {
        w.api.push_fault(Route::ChatCompletions, fault);
        let err = w.session.chat(&hello()).await.unwrap_err();
        assert_eq!(err.code(), "invalid_response", "{err}");
    }
    // A stream answered as plain JSON is not a stream.
    w.api.push_fault(
        Route::ChatCompletions,
        Fault::raw(200, "application/json", "{}"),
    );
    let outcome = match w.session.open_chat_stream(&hello()).await {
        Err(e) => e,
        Ok(stream) => w.session.next_chunk(&stream).await.unwrap_err(),
    };
    assert_eq!(outcome.code(), "invalid_response", "{outcome}");
    // Nothing followed the redirect: every request went to the API itself.
    assert!(w.api.requests().iter().all(|r| !r.path.contains("evil")));
    assert_eq!(w.session.denied_requests(), 0);
    still_connected(&mut w).await;
}

#[tokio::test]
async fn oauth_errors_in_http_200_bodies_and_malformed_token_answers_lose_nothing() {
    let mut w = connected_world(AuthConfig {
        errors_with_http_200: true,
        ..AuthConfig::default()
    })
    .await;
    // A pending device flow answered with 200 {"error":"authorization_pending"} stays pending.
    let prompt = w.session.start().await.unwrap();
    let outcome = w.session.poll(Some(&prompt.pending_id)).await.unwrap();
    assert!(matches!(outcome, PollOutcome::Pending(_)), "{outcome:?}");
    // A refresh answered with garbage: an error, and the stored login survives.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    w.auth.push_fault(Route::Token, Fault::malformed_json());
    let err = w.session.refresh().await.unwrap_err();
    assert_eq!(err.code(), "invalid_response", "{err}");
    // An edge's HTML page (a 4xx that is no OAuth answer) is tried again, like xAI's CLI
    // does for everything but invalid_grant/invalid_client: three in a row are a transient
    // failure, and the login is kept.
    for _ in 0..3 {
        w.auth.push_fault(Route::Token, Fault::html_page(403));
    }
    let err = w.session.refresh().await.unwrap_err();
    assert_eq!(err.code(), "upstream_unavailable", "{err}");
    // An OAuth error in a 200 body that only says "not now" keeps the login.
    for _ in 0..3 {
        w.auth.push_fault(
            Route::Token,
            Fault::oauth_error(200, "temporarily_unavailable"),
        );
    }
    let err = w.session.refresh().await.unwrap_err();
    assert_eq!(err.code(), "upstream_unavailable", "{err}");
    still_connected(&mut w).await;
    // And the real refresh still works afterwards (the token was not consumed).
    w.session.refresh().await.unwrap();
    assert_eq!(w.auth.stats().reuse_detections, 0);
}

/// A stream outlives its instance only as a closed handle: after the instance is discarded
/// (here: the call ran past its wall-clock bound on a stalled stream), reading the old
/// handle answers `stream_closed` and never reaches, or breaks, the session's next instance.
#[tokio::test]
async fn a_stream_handle_does_not_outlive_its_instance() {
    let mut w = connected_world_with(AuthConfig::default(), |options| {
        options.limits.call_timeout = Duration::from_secs(2);
    })
    .await;
    let mut request = hello();
    request.messages[0] = Message::text(Role::User, "a long enough answer to span several events");
    w.api.push_fault(
        Route::ChatCompletions,
        Fault::StallMidBody {
            after_events: 2,
            duration: Duration::from_secs(30),
        },
    );
    let stream = w.session.open_chat_stream(&request).await.unwrap();
    let err = loop {
        match w.session.next_chunk(&stream).await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("a stalled stream ended silently"),
            Err(e) => break e,
        }
    };
    assert_eq!(err.code(), "call_timeout", "{err}");
    // The session's next instance serves calls; the old handle is closed, not a trap.
    assert!(w.session.status().await.unwrap().connected);
    let err = w.session.next_chunk(&stream).await.unwrap_err();
    assert_eq!(err.code(), "stream_closed", "{err}");
    w.session.close_chat_stream(stream).await.unwrap();
    assert!(w.session.status().await.unwrap().connected);
    assert_eq!(
        w.session.chat(&hello()).await.unwrap().content,
        "Echo: hello"
    );
}
