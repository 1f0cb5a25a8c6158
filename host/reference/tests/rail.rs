//! The subscription rail: its own origin, the API's tokens and answers, the Grok CLI
//! header gate, streaming-only body rules, `/billing`, its quota and faults, and counters
//! apart from the API's.

mod support;

use provider_reference::{
    ApiConfig, ApiHandle, ApiServer, AuthConfig, AuthHandle, AuthServer, Billing, CatalogueModel,
    CredentialScope, Fault, GROK_CLI_TOKEN_AUTH, ModelKind, QuotaFault, RailConfig, RailRefusal,
    Route, model_ids_for_tier, random_api_key, xai_catalogue,
};
use serde_json::{Value, json};
use support::{Event, Resp, parse_sse, post_json};

const CLIENT_ID: &str = "grok-cli";
const CLIENT_VERSION: &str = "0.1.0";

/// The headers xAI's CLI sends, without the bearer.
fn cli_headers() -> Vec<(&'static str, &'static str)> {
    vec![
        ("x-xai-token-auth", GROK_CLI_TOKEN_AUTH),
        ("x-grok-client-identifier", CLIENT_ID),
        ("x-grok-client-version", CLIENT_VERSION),
    ]
}

/// A request to the rail with `bearer` and these headers.
async fn rail_send(
    method: &str,
    url: &str,
    bearer: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Resp {
    let auth = bearer.map(|b| format!("Bearer {b}"));
    let mut all: Vec<(&str, &str)> = headers.to_vec();
    if let Some(auth) = &auth {
        all.push(("authorization", auth));
    }
    if body.is_some() {
        all.push(("content-type", "application/json"));
    }
    support::send(method, url, &all, body.map(|b| b.to_string().into_bytes()))
        .await
        .expect("request")
}

async fn rail_post(api: &ApiHandle, path: &str, bearer: &str, body: &Value) -> Resp {
    let url = format!("{}/{path}", api.subscription_base());
    rail_send("POST", &url, Some(bearer), &cli_headers(), Some(body)).await
}

async fn rail_get(api: &ApiHandle, path: &str, bearer: &str) -> Resp {
    let url = format!("{}/{path}", api.subscription_base());
    rail_send("GET", &url, Some(bearer), &cli_headers(), None).await
}

fn chat(text: &str) -> Value {
    json!({"model": "grok-4.3", "stream": true,
           "messages": [{"role": "user", "content": text}]})
}

fn responses(model: &str, text: &str) -> Value {
    json!({"model": model, "stream": true, "store": false, "input": text,
           "include": ["reasoning.encrypted_content"]})
}

fn ids(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn auth_and_api(config: ApiConfig) -> (AuthHandle, ApiHandle) {
    let auth = AuthServer::start(AuthConfig::default()).await.unwrap();
    let api = ApiServer::start(ApiConfig {
        verifier: Some(auth.verifier()),
        ..config
    })
    .await
    .unwrap();
    (auth, api)
}

/// What a stream says, without the ids and timestamps that differ per request.
fn gist(events: &[Event]) -> Vec<Value> {
    events
        .iter()
        .filter(|e| e.data != "[DONE]")
        .map(|e| {
            let mut v = e.json();
            for pointer in ["/id", "/created", "/response/id", "/response/created_at"] {
                if let Some(field) = v.pointer_mut(pointer) {
                    *field = Value::Null;
                }
            }
            // Item ids and call ids carry the request's sequence number.
            serde_json::from_str(&mask_seq(&v.to_string())).unwrap()
        })
        .collect()
}

/// Replace the `_000123` sequence numbers of ids by `_N`.
fn mask_seq(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('_') {
        out.push_str(&rest[..at]);
        let digits = rest[at + 1..]
            .bytes()
            .take_while(u8::is_ascii_digit)
            .count();
        if digits == 6 {
            out.push_str("_N");
            rest = &rest[at + 7..];
        } else {
            out.push('_');
            rest = &rest[at + 1..];
        }
    }
    out.push_str(rest);
    out
}

#[tokio::test]
async fn the_rail_has_its_own_origin_and_answers_like_the_api() {
    let (auth, api) = auth_and_api(ApiConfig::default()).await;
    assert_ne!(api.subscription_addr(), api.addr());
    assert_eq!(
        api.subscription_base(),
        format!("http://{}/v1", api.subscription_addr())
    );
    assert!(api.is_rail_running());

    for tier in 1..=4 {
        let token = auth.issue_grant(tier, "u").access_token;
        let r = rail_get(&api, "models", &token).await;
        assert_eq!(r.status, 200);
        assert_eq!(ids(&r.json()), model_ids_for_tier(&xai_catalogue(), tier));
    }
    let tier1 = auth.issue_grant(1, "u").access_token;
    assert_eq!(
        rail_get(&api, "models/grok-4.3", &tier1).await.json()["id"],
        "grok-4.3"
    );
    assert_eq!(rail_get(&api, "models/grok-4.6", &tier1).await.status, 403);

    // The same streams as the API's, tools and reasoning included.
    let token = auth.issue_grant(4, "u").access_token;
    let mut with_tools = chat("weather?");
    with_tools["tools"] = json!([{"type": "function", "function": {"name": "lookup",
                                   "parameters": {"type": "object"}}}]);
    let mut reasoning = responses("grok-4.20-0309-reasoning", "think");
    reasoning["tools"] = json!([{"type": "function", "name": "lookup"}]);
    for (path, body) in [
        ("chat/completions", chat("hello rail")),
        ("chat/completions", with_tools),
        ("responses", responses("grok-4.3", "hello rail")),
        ("responses", reasoning),
    ] {
        let rail = rail_post(&api, path, &token, &body).await;
        assert_eq!(rail.status, 200, "{path}: {}", rail.text());
        assert_eq!(rail.header("content-type"), Some("text/event-stream"));
        let direct = post_json(&format!("{}/{path}", api.base_url()), &token, &body).await;
        let said = gist(&parse_sse(&rail.text()));
        assert!(said.len() >= 3, "{path}");
        assert_eq!(said, gist(&parse_sse(&direct.text())), "{path}");
        if body.get("tools").is_some() {
            assert!(
                rail.text().contains("\"name\":\"lookup\""),
                "{path} calls the tool"
            );
        }
    }

    // Each listener counts only its own requests.
    let rail = api.rail_stats();
    assert_eq!(rail.requests, 10);
    assert_eq!(rail.oauth_requests, 10);
    assert_eq!(
        (rail.models_requests, rail.chat_completions, rail.responses),
        (6, 2, 2)
    );
    assert_eq!(rail.streams, 4);
    assert_eq!(rail.requests_by_path["/v1/models"], 4);
    assert_eq!(rail.requests_by_path["/v1/models/grok-4.6"], 1);
    assert_eq!(rail.requests_by_path["/v1/responses"], 2);
    assert_eq!(rail.tier_denied, 1);
    assert_eq!(rail.permission_denied, 0);
    assert!(rail.refusals.is_empty());
    let stats = api.stats();
    assert_eq!(
        (stats.requests, stats.streams, stats.models_requests),
        (4, 4, 0)
    );
    assert_eq!(api.rail_requests().len(), 10);
    assert_eq!(api.requests().len(), 4);
    assert_eq!(
        api.rail_requests()[0].header("x-grok-client-version"),
        Some(CLIENT_VERSION)
    );
    api.clear_rail_requests();
    assert!(api.rail_requests().is_empty());
}

#[tokio::test]
async fn the_rail_requires_the_grok_cli_headers() {
    let (auth, api) = auth_and_api(ApiConfig::default()).await;
    let token = auth.issue_grant(1, "u").access_token;
    let url = format!("{}/models", api.subscription_base());
    let cases: [(&[(&str, &str)], RailRefusal); 6] = [
        (&[], RailRefusal::MissingTokenAuth),
        (
            &[
                ("x-xai-token-auth", "xai-other"),
                ("x-grok-client-identifier", "c"),
                ("x-grok-client-version", "1"),
            ],
            RailRefusal::WrongTokenAuth,
        ),
        (
            &[
                ("x-xai-token-auth", GROK_CLI_TOKEN_AUTH),
                ("x-grok-client-version", "1"),
            ],
            RailRefusal::MissingClientIdentifier,
        ),
        (
            &[
                ("x-xai-token-auth", GROK_CLI_TOKEN_AUTH),
                ("x-grok-client-identifier", " "),
                ("x-grok-client-version", "1"),
            ],
            RailRefusal::MissingClientIdentifier,
        ),
        (
            &[
                ("x-xai-token-auth", GROK_CLI_TOKEN_AUTH),
                ("x-grok-client-identifier", "c"),
            ],
            RailRefusal::MissingClientVersion,
        ),
        (
            &[
                ("X-XAI-Token-Auth", GROK_CLI_TOKEN_AUTH),
                ("x-grok-client-identifier", "c"),
                ("x-grok-client-version", ""),
            ],
            RailRefusal::MissingClientVersion,
        ),
    ];
    for (i, (headers, reason)) in cases.iter().enumerate() {
        let before = api.rail_stats().refused(*reason);
        let r = rail_send("GET", &url, Some(&token), headers, None).await;
        assert_eq!(r.status, 403, "case {i}");
        let body = r.json();
        assert_eq!(body["code"], "permission-denied", "case {i}");
        assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()));
        assert_eq!(api.rail_stats().refused(*reason), before + 1, "case {i}");
    }
    let stats = api.rail_stats();
    assert_eq!(stats.permission_denied, 6);
    assert_eq!(stats.refused(RailRefusal::MissingTokenAuth), 1);
    assert_eq!(stats.refused(RailRefusal::WrongTokenAuth), 1);
    assert_eq!(stats.refused(RailRefusal::MissingClientIdentifier), 2);
    assert_eq!(stats.refused(RailRefusal::MissingClientVersion), 2);
    // The header gate comes first: without the headers even no bearer is a 403.
    assert_eq!(rail_send("GET", &url, None, &[], None).await.status, 403);
    assert_eq!(rail_get(&api, "models", &token).await.status, 200);
    assert_eq!(api.rail_stats().permission_denied, 7);

    // The expected value is configurable.
    let (auth, custom) = auth_and_api(ApiConfig {
        rail: RailConfig {
            token_auth: "xai-grok-build".into(),
            ..RailConfig::default()
        },
        ..ApiConfig::default()
    })
    .await;
    let token = auth.issue_grant(1, "u").access_token;
    assert_eq!(rail_get(&custom, "models", &token).await.status, 403);
    let headers = [
        ("x-xai-token-auth", "xai-grok-build"),
        ("x-grok-client-identifier", CLIENT_ID),
        ("x-grok-client-version", CLIENT_VERSION),
    ];
    let url = format!("{}/models", custom.subscription_base());
    assert_eq!(
        rail_send("GET", &url, Some(&token), &headers, None)
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn the_rail_refuses_api_keys_and_bad_tokens() {
    let key = random_api_key();
    let (auth, api) = auth_and_api(ApiConfig::default().with_api_key(&key, 4)).await;
    assert_eq!(
        support::get(&format!("{}/models", api.base_url()), Some(&key))
            .await
            .status,
        200,
        "the key works on the API"
    );
    for bearer in [key.clone(), random_api_key()] {
        let r = rail_get(&api, "models", &bearer).await;
        assert_eq!(r.status, 401);
        assert_eq!(r.json()["code"], "unauthenticated:api-key-not-accepted");
        assert!(!r.text().contains(&bearer[4..]), "never echoes a key");
    }
    let r = rail_get(&api, "models", "not-a-token").await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (403, Some("unauthenticated:bad-credentials"))
    );
    let url = format!("{}/models", api.subscription_base());
    assert_eq!(
        rail_send("GET", &url, None, &cli_headers(), None)
            .await
            .status,
        403
    );

    // Tokens the test invalidates are refused on both rails.
    let token = auth.issue_grant(1, "u").access_token;
    assert_eq!(rail_get(&api, "models", &token).await.status, 200);
    api.deny_seen_tokens();
    assert_eq!(rail_get(&api, "models", &token).await.status, 403);
    assert_eq!(
        support::get(&format!("{}/models", api.base_url()), Some(&token))
            .await
            .status,
        403
    );

    let stats = api.rail_stats();
    assert_eq!(stats.refused(RailRefusal::ApiKey), 2);
    assert_eq!(stats.refused(RailRefusal::Unauthenticated), 3);
    assert_eq!(stats.unauthenticated, 5);
    assert_eq!(stats.api_key_requests, 2);
    assert_eq!(stats.oauth_requests, 3);
    assert_eq!(stats.permission_denied, 0);
}

#[tokio::test]
async fn the_rail_only_streams_and_neither_stores_nor_chains() {
    let (auth, api) = auth_and_api(ApiConfig::default()).await;
    let token = auth.issue_grant(1, "u").access_token;
    let mut cases: Vec<(&str, Value, RailRefusal)> = Vec::new();
    for path in ["chat/completions", "responses"] {
        let good = if path == "responses" {
            responses("grok-4.3", "x")
        } else {
            chat("x")
        };
        let mut body = good.clone();
        body["stream"] = json!(false);
        cases.push((path, body, RailRefusal::NotStreaming));
        let mut body = good.clone();
        body.as_object_mut().unwrap().remove("stream");
        cases.push((path, body, RailRefusal::NotStreaming));
        let mut body = good.clone();
        body["store"] = json!(true);
        cases.push((path, body, RailRefusal::Store));
        let mut body = good.clone();
        body["previous_response_id"] = json!("resp_000001");
        cases.push((path, body, RailRefusal::PreviousResponseId));
    }
    for (path, body, reason) in &cases {
        let r = rail_post(&api, path, &token, body).await;
        assert_eq!(r.status, 400, "{path} {reason:?}");
        let error = r.json()["error"].as_str().unwrap().to_owned();
        let hint = match reason {
            RailRefusal::NotStreaming => "\"stream\": true",
            RailRefusal::Store => "\"store\": false",
            _ => "previous_response_id",
        };
        assert!(error.contains(hint), "{error}");
    }
    let stats = api.rail_stats();
    assert_eq!(stats.refused(RailRefusal::NotStreaming), 4);
    assert_eq!(stats.refused(RailRefusal::Store), 2);
    assert_eq!(stats.refused(RailRefusal::PreviousResponseId), 2);
    assert_eq!(stats.invalid_requests, 8);
    // A null previous_response_id and store: false are fine; a non-JSON body is the lanes' 400.
    let mut body = responses("grok-4.3", "x");
    body["previous_response_id"] = Value::Null;
    assert_eq!(
        rail_post(&api, "responses", &token, &body).await.status,
        200
    );
    let url = format!("{}/responses", api.subscription_base());
    let mut headers = cli_headers();
    let auth_header = format!("Bearer {token}");
    headers.push(("authorization", &auth_header));
    let r = support::send("POST", &url, &headers, Some(b"{oops".to_vec()))
        .await
        .unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(api.rail_stats().invalid_requests, 9);

    // Stricter: leaving `store` out of a Responses request is refused too.
    let (auth, strict) = auth_and_api(ApiConfig {
        rail: RailConfig {
            require_store_false: true,
            ..RailConfig::default()
        },
        ..ApiConfig::default()
    })
    .await;
    let token = auth.issue_grant(1, "u").access_token;
    let mut body = responses("grok-4.3", "x");
    assert_eq!(
        rail_post(&strict, "responses", &token, &body).await.status,
        200
    );
    body.as_object_mut().unwrap().remove("store");
    assert_eq!(
        rail_post(&strict, "responses", &token, &body).await.status,
        400
    );
    assert_eq!(
        rail_post(&strict, "chat/completions", &token, &chat("x"))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn billing_reports_credits_and_unknown_modes() {
    let (auth, api) = auth_and_api(ApiConfig::default()).await;
    let token = auth.issue_grant(1, "u").access_token;
    let r = rail_get(&api, "billing?format=credits", &token).await;
    assert_eq!(r.status, 200);
    let body = r.json();
    assert_eq!(
        (body["remaining"].as_f64(), body["total"].as_f64()),
        (Some(1000.0), Some(1000.0))
    );
    assert_eq!(body["unit"], "credits");
    assert!(body["resets_at"].as_u64().unwrap() > 1_700_000_000);

    api.set_rail_billing(Billing::Credits {
        remaining: 12.5,
        total: 100.0,
        resets_at: 1_800_000_000,
    });
    let body = rail_get(&api, "billing?format=credits", &token)
        .await
        .json();
    assert_eq!(
        body,
        json!({"remaining": 12.5, "total": 100.0, "unit": "credits", "resets_at": 1_800_000_000u64})
    );
    assert_eq!(
        api.rail_billing(),
        Billing::Credits {
            remaining: 12.5,
            total: 100.0,
            resets_at: 1_800_000_000
        }
    );

    api.set_rail_billing(Billing::NotFound);
    assert_eq!(
        rail_get(&api, "billing?format=credits", &token)
            .await
            .status,
        404
    );
    api.set_rail_billing(Billing::ServerError);
    assert_eq!(
        rail_get(&api, "billing?format=credits", &token)
            .await
            .status,
        500
    );
    api.set_rail_billing(Billing::WrongShape);
    let r = rail_get(&api, "billing?format=credits", &token).await;
    assert_eq!((r.status, r.json()), (200, json!({"foo": 1})));
    api.set_rail_billing(Billing::NotJson);
    let r = rail_get(&api, "billing?format=credits", &token).await;
    assert_eq!(r.status, 200);
    assert!(serde_json::from_slice::<Value>(r.body.as_ref().unwrap()).is_err());

    // The query and method matter; the gate and the bearer apply as everywhere.
    assert_eq!(rail_get(&api, "billing", &token).await.status, 400);
    assert_eq!(
        rail_get(&api, "billing?format=usd", &token).await.status,
        400
    );
    let url = format!("{}/billing?format=credits", api.subscription_base());
    assert_eq!(
        rail_send("POST", &url, Some(&token), &cli_headers(), Some(&json!({})))
            .await
            .status,
        405
    );
    assert_eq!(
        rail_send("GET", &url, Some(&token), &[], None).await.status,
        403
    );
    assert_eq!(
        rail_get(&api, "billing?format=credits", &random_api_key())
            .await
            .status,
        401
    );
    // The API has no billing endpoint.
    assert_eq!(
        support::get(
            &format!("{}/billing?format=credits", api.base_url()),
            Some(&token)
        )
        .await
        .status,
        404
    );
    assert_eq!(api.rail_stats().billing_requests, 11);
}

#[tokio::test]
async fn rail_quota_and_faults_leave_the_api_alone() {
    let (auth, api) = auth_and_api(ApiConfig::default()).await;
    let token = auth.issue_grant(1, "u").access_token;
    let api_chat = |token: String| {
        let url = format!("{}/chat/completions", api.base_url());
        async move { post_json(&url, &token, &chat("x")).await.status }
    };

    api.set_rail_quota_fault(Some(QuotaFault::RateLimited {
        retry_after_seconds: Some(30),
    }));
    let r = rail_post(&api, "chat/completions", &token, &chat("x")).await;
    assert_eq!((r.status, r.header("retry-after")), (429, Some("30")));
    assert_eq!(api_chat(token.clone()).await, 200);
    assert_eq!(
        rail_get(&api, "models", &token).await.status,
        200,
        "models answer"
    );
    assert_eq!(
        rail_get(&api, "billing?format=credits", &token)
            .await
            .status,
        200
    );

    api.set_rail_quota_fault(Some(QuotaFault::FREE_USAGE_429));
    let r = rail_post(&api, "responses", &token, &responses("grok-4.3", "x")).await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (429, Some("subscription:free-usage-exhausted"))
    );
    api.set_rail_quota_fault(None);
    // An exhausted API leaves the rail serving.
    api.set_quota_fault(CredentialScope::Both, Some(QuotaFault::FREE_USAGE_429));
    assert_eq!(api_chat(token.clone()).await, 429);
    assert_eq!(
        rail_post(&api, "chat/completions", &token, &chat("x"))
            .await
            .status,
        200
    );
    api.clear_quota_faults();
    assert_eq!(api.rail_stats().refused(RailRefusal::Quota), 2);

    // One-shot faults wait in the rail's own queue.
    api.push_rail_fault(Route::Responses, Fault::rate_limited(Some(5)));
    api.push_rail_fault(Route::Billing, Fault::server_error(503));
    assert_eq!(api.pending_rail_faults(), 2);
    assert_eq!(api.pending_faults(), 0);
    let direct = post_json(
        &format!("{}/responses", api.base_url()),
        &token,
        &responses("grok-4.3", "x"),
    )
    .await;
    assert_eq!(direct.status, 200, "the API's queue is separate");
    let r = rail_post(&api, "responses", &token, &responses("grok-4.3", "x")).await;
    assert_eq!((r.status, r.header("retry-after")), (429, Some("5")));
    assert_eq!(
        rail_get(&api, "billing?format=credits", &token)
            .await
            .status,
        503
    );
    api.push_rail_fault(Route::Any, Fault::CutStream { after_events: 2 });
    let r = rail_post(
        &api,
        "chat/completions",
        &token,
        &chat("a longer text to cut short"),
    )
    .await;
    assert_eq!(parse_sse(&r.text()).len(), 2);
    api.push_rail_fault_after_processing(Route::ChatCompletions, Fault::server_error(500));
    assert_eq!(
        rail_post(&api, "chat/completions", &token, &chat("x"))
            .await
            .status,
        500
    );
    api.push_rail_fault(Route::Models, Fault::server_error(500));
    api.clear_rail_faults();
    assert_eq!(api.pending_rail_faults(), 0);
    let stats = api.rail_stats();
    assert_eq!(stats.faults_served, 4);
    // Counted: the refused, the served, the cut and the after-processing one.
    assert_eq!(
        stats.chat_completions, 4,
        "the after-processing fault counts its request"
    );
}

#[tokio::test]
async fn extra_models_are_listed_and_served_on_the_rail_only() {
    let build = CatalogueModel {
        id: "grok-4.3-build".into(),
        min_tier: 1,
        kind: ModelKind::Chat,
        owned_by: "xai".into(),
        created: 1_767_225_600,
    };
    let (auth, api) = auth_and_api(ApiConfig {
        rail: RailConfig {
            extra_models: vec![build],
            ..RailConfig::default()
        },
        ..ApiConfig::default()
    })
    .await;
    let token = auth.issue_grant(1, "u").access_token;
    assert!(
        ids(&rail_get(&api, "models", &token).await.json()).contains(&"grok-4.3-build".to_owned())
    );
    let mut body = chat("built");
    body["model"] = json!("grok-4.3-build");
    let r = rail_post(&api, "chat/completions", &token, &body).await;
    assert_eq!(r.status, 200);
    let events = parse_sse(&r.text());
    assert_eq!(events[0].json()["model"], "grok-4.3-build");
    assert_eq!(
        post_json(
            &format!("{}/chat/completions", api.base_url()),
            &token,
            &body
        )
        .await
        .status,
        404
    );
}

#[test]
fn the_rail_stops_with_its_handle_and_runs_without_a_runtime() {
    use std::io::{Read, Write};
    let api = ApiServer::start_background(ApiConfig::default()).unwrap();
    let addr = api.subscription_addr();
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .write_all(
            b"GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n\
              X-XAI-Token-Auth: xai-grok-cli\r\nx-grok-client-identifier: c\r\n\
              x-grok-client-version: 1\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    drop(api);
    let stopped = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::net::TcpStream::connect(addr).is_err()
    });
    assert!(stopped, "the rail stops with the handle");
}

#[tokio::test]
async fn activity_on_either_listener_keeps_both_alive() {
    let api = ApiServer::start(ApiConfig {
        lifetime: provider_reference::Lifetime {
            idle: std::time::Duration::from_millis(700),
            max: std::time::Duration::from_secs(60),
        },
        ..ApiConfig::default()
    })
    .await
    .unwrap();
    // Only the API is used, for twice the idle period: the rail stays up.
    for _ in 0..7 {
        support::get(&format!("{}/models", api.base_url()), Some("t")).await;
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(api.is_rail_running() && api.is_running());
    assert!(
        support::eventually(|| !api.is_rail_running() && !api.is_running()).await,
        "both stop once idle"
    );
}
