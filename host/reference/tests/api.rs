//! The reference model API: tier gating, both lanes whole and streamed, bearer checks
//! (own tokens and an RS256 JWKS), every fault kind, the request log, the lifetime guard.

mod support;

use std::time::Duration;

use provider_reference::{
    ApiConfig, ApiHandle, ApiServer, AuthConfig, AuthServer, CatalogueModel, Fault, ModelKind,
    Route, Tier, Tiers, Unauthenticated, model_ids_for_tier, xai_catalogue,
};
use serde_json::{Value, json};
use support::{get, parse_sse, post_json};

/// An API that accepts any bearer at `tier`.
async fn open_api(tier: u32) -> ApiHandle {
    ApiServer::start(ApiConfig {
        default_tier: tier,
        ..ApiConfig::default()
    })
    .await
    .unwrap()
}

fn chat_body(model: &str, text: &str, stream: bool) -> Value {
    json!({"model": model, "stream": stream,
           "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": text}]})
}

fn responses_body(model: &str, text: &str, stream: bool) -> Value {
    json!({"model": model, "stream": stream, "instructions": "be brief",
           "input": [{"role": "user", "content": [{"type": "input_text", "text": text}]}]})
}

fn ids(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect()
}

/// api.x.ai's catalogue (§5), which every tier is offered (§4: the API pool, not the
/// subscription, pays there).
const API_IDS: [&str; 9] = [
    "grok-4.3",
    "grok-4.6",
    "grok-4.5",
    "grok-4.20-0309-reasoning",
    "grok-4.20-0309-non-reasoning",
    "grok-4.20-multi-agent-0309",
    "grok-build-0.1",
    "grok-imagine-image",
    "grok-imagine-video",
];

/// A catalogue gated per tier as a set (the claim is an enum, §3.3): `heavy-only` for
/// SuperGrok Heavy (5) alone, `premium-only` for X Premium (3) alone, `grok-4.3` for all.
fn per_tier_catalogue() -> Vec<CatalogueModel> {
    vec![
        CatalogueModel::new("grok-4.3", Tiers::All, ModelKind::Chat),
        CatalogueModel::new(
            "heavy-only",
            Tiers::of(&[Tier::SuperGrokHeavy]),
            ModelKind::Chat,
        ),
        CatalogueModel::new(
            "premium-only",
            Tiers::of(&[Tier::XPremium]),
            ModelKind::MultiAgent,
        ),
    ]
}

#[tokio::test]
async fn models_are_offered_per_tier_as_sets_not_ranks() {
    let auth = AuthServer::start(AuthConfig::default()).await.unwrap();
    let api = ApiServer::start(ApiConfig::for_auth(&auth)).await.unwrap();
    let url = format!("{}/models", api.base_url());
    for tier in 0..=7 {
        let token = auth.issue_grant(tier, "u").access_token;
        let list = get(&url, Some(&token)).await;
        assert_eq!(list.status, 200);
        assert_eq!(list.json()["object"], "list");
        assert_eq!(ids(&list.json()), API_IDS, "tier {tier}");
        assert_eq!(model_ids_for_tier(&xai_catalogue(), tier), API_IDS);
    }

    let api = ApiServer::start(ApiConfig {
        catalogue: per_tier_catalogue(),
        ..ApiConfig::for_auth(&auth)
    })
    .await
    .unwrap();
    let url = format!("{}/models", api.base_url());
    // No "tier >= n": X Premium+ (4) and SuperGrok Plus (7) see neither tier's model.
    let expected: [(Tier, &[&str]); 5] = [
        (Tier::Free, &["grok-4.3"]),
        (Tier::XPremium, &["grok-4.3", "premium-only"]),
        (Tier::XPremiumPlus, &["grok-4.3"]),
        (Tier::SuperGrokHeavy, &["grok-4.3", "heavy-only"]),
        (Tier::SuperGrokPlus, &["grok-4.3"]),
    ];
    for (tier, want) in expected {
        let token = auth.issue_grant(tier.claim(), "u").access_token;
        assert_eq!(ids(&get(&url, Some(&token)).await.json()), want, "{tier:?}");
        assert_eq!(
            model_ids_for_tier(&per_tier_catalogue(), tier.claim()),
            want
        );
    }
    let plus = auth
        .issue_grant(Tier::XPremiumPlus.claim(), "u")
        .access_token;
    let one = get(&format!("{url}/grok-4.3"), Some(&plus)).await;
    assert_eq!(one.json()["id"], "grok-4.3");
    assert_eq!(
        get(&format!("{url}/heavy-only"), Some(&plus)).await.status,
        403
    );
    assert_eq!(
        get(&format!("{url}/no-such-model"), Some(&plus))
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn models_outside_the_tier_are_refused_with_xais_permission_error() {
    let api = ApiServer::start(ApiConfig {
        default_tier: Tier::XPremiumPlus.claim(),
        catalogue: per_tier_catalogue(),
        ..ApiConfig::default()
    })
    .await
    .unwrap();
    for (path, body) in [
        ("chat/completions", chat_body("heavy-only", "hi", false)),
        ("responses", responses_body("premium-only", "hi", false)),
    ] {
        let r = post_json(&format!("{}/{path}", api.base_url()), "t", &body).await;
        assert_eq!(r.status, 403);
        assert_eq!(
            r.json()["code"],
            "The caller does not have permission to execute the specified operation"
        );
    }
    assert_eq!(api.stats().tier_denied, 2);
}

#[tokio::test]
async fn lane_rules_multi_agent_and_media() {
    let api = open_api(4).await;
    let chat = format!("{}/chat/completions", api.base_url());
    let r = post_json(
        &chat,
        "t",
        &chat_body("grok-4.20-multi-agent-0309", "hi", false),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("Responses API")
    );
    let r = post_json(&chat, "t", &chat_body("grok-imagine-image", "hi", false)).await;
    assert_eq!(r.status, 400);
    let r = post_json(&chat, "t", &json!({"model": "grok-4.3", "messages": []})).await;
    assert_eq!(r.status, 400);
    let r = support::send(
        "POST",
        &chat,
        &[("authorization", "Bearer t")],
        Some(b"{not json".to_vec()),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(api.stats().invalid_requests, 4);
}

#[tokio::test]
async fn chat_completions_whole() {
    let api = open_api(2).await;
    let r = post_json(
        &format!("{}/chat/completions", api.base_url()),
        "t",
        &chat_body("grok-4.3", "hello there", false),
    )
    .await;
    assert_eq!(r.status, 200);
    let body = r.json();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "grok-4.3");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Echo: hello there"
    );
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    // ceil(8/4)+4 + ceil(11/4)+4 = 6 + 7; output ceil(17/4) = 5.
    assert_eq!(body["usage"]["prompt_tokens"], 13);
    assert_eq!(body["usage"]["completion_tokens"], 5);
    assert_eq!(body["usage"]["total_tokens"], 18);

    let r = post_json(
        &format!("{}/chat/completions", api.base_url()),
        "t",
        &chat_body("grok-4.20-0309-reasoning", "why", false),
    )
    .await;
    let body = r.json();
    assert_eq!(body["choices"][0]["message"]["content"], "Echo: why");
    assert!(body["choices"][0]["message"]["reasoning_content"].is_string());
    assert_eq!(
        body["usage"]["completion_tokens_details"]["reasoning_tokens"],
        16
    );

    let mut max = chat_body("grok-4.3", "a long question indeed", false);
    max["max_tokens"] = json!(2);
    let body = post_json(&format!("{}/chat/completions", api.base_url()), "t", &max)
        .await
        .json();
    assert_eq!(body["choices"][0]["message"]["content"], "Echo: a ");
    assert_eq!(body["choices"][0]["finish_reason"], "length");
}

#[tokio::test]
async fn reply_size_is_configurable() {
    let api = ApiServer::start(ApiConfig {
        reply_bytes: Some(1024),
        ..ApiConfig::default()
    })
    .await
    .unwrap();
    let body = post_json(
        &format!("{}/chat/completions", api.base_url()),
        "t",
        &chat_body("grok-4.3", "héllo", false),
    )
    .await
    .json();
    let content = body["choices"][0]["message"]["content"].as_str().unwrap();
    assert_eq!(content.len(), 1024);
    assert!(content.starts_with("Echo: héllo Echo: héllo"));
}

#[tokio::test]
async fn chat_completions_streamed() {
    let api = ApiServer::start(ApiConfig {
        reply_bytes: Some(100),
        stream_chunk_bytes: 7,
        ..ApiConfig::default()
    })
    .await
    .unwrap();
    let r = post_json(
        &format!("{}/chat/completions", api.base_url()),
        "t",
        &chat_body("grok-4.3", "stream me", true),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    let events = parse_sse(&r.text());
    assert_eq!(events.last().unwrap().data, "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| e.json())
        .collect();
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk")
    );
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text.len(), 100);
    assert!(text.starts_with("Echo: stream me"));
    assert_eq!(
        chunks
            .iter()
            .filter(|c| c["choices"][0]["delta"]["content"].is_string())
            .count(),
        15
    );
    let finish: Vec<&Value> = chunks
        .iter()
        .filter(|c| !c["choices"][0]["finish_reason"].is_null())
        .collect();
    assert_eq!(finish.len(), 1);
    assert_eq!(finish[0]["choices"][0]["finish_reason"], "stop");
    let usage = &chunks.last().unwrap()["usage"];
    assert_eq!(usage["completion_tokens"], 25);
    assert_eq!(api.stats().streams, 1);
}

#[tokio::test]
async fn responses_whole_with_agents_by_effort() {
    let api = open_api(4).await;
    let url = format!("{}/responses", api.base_url());
    let body = post_json(&url, "t", &responses_body("grok-4.3", "plain", false))
        .await
        .json();
    assert_eq!(body["object"], "response");
    assert_eq!(body["status"], "completed");
    let message = body["output"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["type"] == "message")
        .unwrap();
    assert_eq!(message["content"][0]["type"], "output_text");
    assert_eq!(message["content"][0]["text"], "Echo: plain");
    assert_eq!(
        body["usage"]["output_tokens_details"]["reasoning_tokens"],
        0
    );

    for (effort, reasoning) in [("low", 64), ("medium", 64), ("high", 256)] {
        let mut req = responses_body("grok-4.20-multi-agent-0309", "team", false);
        req["reasoning"] = json!({"effort": effort});
        let body = post_json(&url, "t", &req).await.json();
        assert_eq!(
            body["output"][0]["type"], "reasoning",
            "reasoning item first"
        );
        assert_eq!(body["output"][1]["content"][0]["text"], "Echo: team");
        assert_eq!(
            body["usage"]["output_tokens_details"]["reasoning_tokens"], reasoning,
            "{effort}"
        );
        let u = &body["usage"];
        assert_eq!(
            u["total_tokens"].as_u64(),
            Some(u["input_tokens"].as_u64().unwrap() + u["output_tokens"].as_u64().unwrap())
        );
    }
    let plain = json!({"model": "grok-4.3", "input": "just a string"});
    let body = post_json(&url, "t", &plain).await.json();
    assert_eq!(
        body["output"][0]["content"][0]["text"],
        "Echo: just a string"
    );
}

#[tokio::test]
async fn responses_streamed() {
    let api = ApiServer::start(ApiConfig {
        default_tier: 4,
        stream_chunk_bytes: 3,
        ..ApiConfig::default()
    })
    .await
    .unwrap();
    let r = post_json(
        &format!("{}/responses", api.base_url()),
        "t",
        &responses_body("grok-4.20-multi-agent-0309", "stream ✓ ünïcode", true),
    )
    .await;
    assert_eq!(r.status, 200);
    let events = parse_sse(&r.text());
    let names: Vec<&str> = events.iter().map(|e| e.name.as_deref().unwrap()).collect();
    assert_eq!(names[0], "response.created");
    assert_eq!(*names.last().unwrap(), "response.completed");
    for (i, event) in events.iter().enumerate() {
        let data = event.json();
        assert_eq!(data["type"], names[i], "type matches the event name");
        assert_eq!(data["sequence_number"], i);
    }
    let text: String = events
        .iter()
        .filter(|e| e.name.as_deref() == Some("response.output_text.delta"))
        .map(|e| e.json()["delta"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(text, "Echo: stream ✓ ünïcode");
    let done = events.last().unwrap().json();
    assert_eq!(done["response"]["status"], "completed");
    assert_eq!(
        done["response"]["usage"]["output_tokens_details"]["reasoning_tokens"],
        64
    );

    let mut capped = responses_body("grok-4.3", "a long question indeed", true);
    capped["max_output_tokens"] = json!(1);
    let r = post_json(&format!("{}/responses", api.base_url()), "t", &capped).await;
    let events = parse_sse(&r.text());
    let last = events.last().unwrap();
    assert_eq!(last.name.as_deref(), Some("response.incomplete"));
    assert_eq!(
        last.json()["response"]["incomplete_details"]["reason"],
        "max_output_tokens"
    );
}

#[tokio::test]
async fn bearer_checks_and_styles() {
    let auth = AuthServer::start(AuthConfig {
        access_token_ttl: Duration::ZERO,
        ..AuthConfig::default()
    })
    .await
    .unwrap();
    let api = ApiServer::start(ApiConfig::for_auth(&auth)).await.unwrap();
    let url = format!("{}/models", api.base_url());
    for bearer in [
        None,
        Some("garbage"),
        Some(auth.issue_grant(1, "u").access_token.as_str()),
    ] {
        let r = get(&url, bearer).await;
        assert_eq!(r.status, 403, "{bearer:?}");
        assert_eq!(r.json()["code"], "unauthenticated:bad-credentials");
    }
    assert_eq!(api.stats().unauthenticated, 3);

    let other_auth = AuthServer::start(AuthConfig::default()).await.unwrap();
    let api401 = ApiServer::start(ApiConfig {
        unauthenticated: Unauthenticated::Unauthorized,
        ..ApiConfig::for_auth(&other_auth)
    })
    .await
    .unwrap();
    let r = get(&format!("{}/models", api401.base_url()), Some("garbage")).await;
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").unwrap().starts_with("Bearer"));
    let good = other_auth.issue_grant(2, "u").access_token;
    assert_eq!(
        get(&format!("{}/models", api401.base_url()), Some(&good))
            .await
            .status,
        200
    );
    // Tokens of another issuer are refused.
    let foreign = auth.issue_grant(1, "u").access_token;
    assert_eq!(
        get(&format!("{}/models", api401.base_url()), Some(&foreign))
            .await
            .status,
        401
    );
}

#[tokio::test]
async fn deny_seen_tokens_refuses_old_bearers_only() {
    let auth = AuthServer::start(AuthConfig::default()).await.unwrap();
    let api = ApiServer::start(ApiConfig::for_auth(&auth)).await.unwrap();
    let url = format!("{}/models", api.base_url());
    let old = auth.issue_grant(1, "u").access_token;
    assert_eq!(get(&url, Some(&old)).await.status, 200);
    assert_eq!(api.deny_seen_tokens(), 1);
    assert_eq!(get(&url, Some(&old)).await.status, 403);
    let new = auth.issue_grant(1, "u").access_token;
    assert_eq!(get(&url, Some(&new)).await.status, 200);
    api.deny_token(&new);
    assert_eq!(get(&url, Some(&new)).await.status, 403);
    api.set_verifier(None);
    assert_eq!(get(&url, Some("anything")).await.status, 200);
}

#[tokio::test]
async fn rs256_tokens_verify_against_a_given_jwks() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use rsa::pkcs1v15::SigningKey;
    use rsa::signature::{SignatureEncoding, Signer};
    use rsa::traits::PublicKeyParts;

    let private = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048).unwrap();
    let public = private.to_public_key();
    let jwks = json!({"keys": [
        {"kty": "EC", "crv": "P-256", "use": "enc", "x": "AA", "y": "AA"},
        {"kty": "RSA", "kid": "rsa-1", "alg": "RS256", "use": "sig",
         "n": B64.encode(public.n().to_bytes_be()), "e": B64.encode(public.e().to_bytes_be())},
    ]});
    let signer = SigningKey::<sha2::Sha256>::new(private);
    let sign = |claims: &Value| {
        let input = format!(
            "{}.{}",
            B64.encode(json!({"alg": "RS256", "kid": "rsa-1", "typ": "at+jwt"}).to_string()),
            B64.encode(claims.to_string())
        );
        let signature = signer.sign(input.as_bytes());
        format!("{input}.{}", B64.encode(signature.to_bytes()))
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let api = ApiServer::start(ApiConfig {
        catalogue: per_tier_catalogue(),
        ..ApiConfig::with_jwks(&jwks.to_string()).unwrap()
    })
    .await
    .unwrap();
    let url = format!("{}/models", api.base_url());

    // The claim may be a string; 3 is X Premium.
    let tier3 = sign(&json!({"sub": "x", "exp": now + 600, "tier": "3"}));
    let r = get(&url, Some(&tier3)).await;
    assert_eq!(r.status, 200);
    assert!(ids(&r.json()).contains(&"premium-only".to_owned()));

    let no_tier = sign(&json!({"sub": "x", "exp": now + 600}));
    assert_eq!(
        ids(&get(&url, Some(&no_tier)).await.json()),
        ["grok-4.3"],
        "default tier 1 (SuperGrok)"
    );

    let expired = sign(&json!({"sub": "x", "exp": now - 1, "tier": 4}));
    assert_eq!(get(&url, Some(&expired)).await.status, 403);
    let mut forged = tier3.clone();
    forged.replace_range(forged.len() - 4.., "AAAA");
    assert_eq!(get(&url, Some(&forged)).await.status, 403);
}

#[tokio::test]
async fn the_request_log_shows_bearer_and_user_agent() {
    let api = open_api(1).await;
    get(&format!("{}/models", api.base_url()), Some("secret-bearer")).await;
    let log = api.requests();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].method, "GET");
    assert_eq!(log[0].path, "/v1/models");
    assert_eq!(log[0].bearer(), Some("secret-bearer"));
    assert_eq!(log[0].header("User-Agent"), Some("reference-tests/1"));
    assert!(!format!("{:?}", log[0]).contains("secret-bearer"));
    assert_eq!(api.stats().models_requests, 1);
}

#[tokio::test]
async fn canned_fault_answers() {
    let api = open_api(1).await;
    let models = format!("{}/models", api.base_url());
    let cases: Vec<(Fault, u16, Option<&str>, Option<&str>)> = vec![
        (Fault::rate_limited(Some(7)), 429, Some("7"), None),
        (Fault::rate_limited(None), 429, None, None),
        (
            Fault::spending_limit(402),
            402,
            None,
            Some("personal-team-blocked:spending-limit"),
        ),
        (
            Fault::spending_limit(403),
            403,
            None,
            Some("personal-team-blocked:spending-limit"),
        ),
        (
            Fault::bad_credentials(),
            403,
            None,
            Some("unauthenticated:bad-credentials"),
        ),
        (
            Fault::tier_denied(),
            403,
            None,
            Some("The caller does not have permission to execute the specified operation"),
        ),
        (Fault::server_error(500), 500, None, None),
        (Fault::server_error(503), 503, None, None),
        (Fault::unauthorized(), 401, None, None),
    ];
    for (fault, status, retry_after, code) in cases {
        api.push_fault(Route::Models, fault);
        let r = get(&models, Some("t")).await;
        assert_eq!(r.status, status);
        assert_eq!(r.header("retry-after"), retry_after);
        if let Some(code) = code {
            assert_eq!(r.json()["code"], code);
        }
    }
    // The observed texts (reference doc §2.6, §4), exactly.
    let texts = [
        (
            Fault::credits_exhausted_wke(),
            429,
            json!({"code": 429,
                   "error": "You ran out of credits. [WKE=personal-team-blocked:spending-limit]"}),
        ),
        (
            Fault::bad_credentials(),
            403,
            json!({"code": "unauthenticated:bad-credentials",
                   "error": "The OAuth2 access token could not be validated."}),
        ),
        (
            Fault::rail_unauthorized(),
            401,
            json!({"error": "Invalid or expired credentials (auth_kind=bearer)"}),
        ),
        (
            Fault::no_active_subscription(),
            403,
            json!({"error": "You have either run out of available resources or do not have an active Grok subscription. Manage your subscription at https://grok.com/?_s=usage or subscribe at https://grok.com/supergrok."}),
        ),
    ];
    for (fault, status, body) in texts {
        api.push_fault(Route::Models, fault);
        let r = get(&models, Some("t")).await;
        assert_eq!((r.status, r.json()), (status, body));
        assert!(r.header("retry-after").is_none());
    }
    let r = {
        api.push_fault(Route::Models, Fault::spending_limit(402));
        get(&models, Some("t")).await
    };
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("(type=personal-team-blocked:spending-limit)")
    );
    api.push_fault(
        Route::Models,
        Fault::server_error(502).with_should_retry(true),
    );
    assert_eq!(
        get(&models, Some("t")).await.header("x-should-retry"),
        Some("true")
    );

    api.push_fault(Route::Any, Fault::malformed_json());
    let r = get(&models, Some("t")).await;
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(serde_json::from_slice::<Value>(r.body.as_ref().unwrap()).is_err());

    api.push_fault(Route::Models, Fault::html_page(200));
    let r = get(&models, Some("t")).await;
    assert!(r.header("content-type").unwrap().starts_with("text/html"));

    api.push_fault(
        Route::Models,
        Fault::redirect("http://127.0.0.2:9/v1/models"),
    );
    let r = get(&models, Some("t")).await;
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some("http://127.0.0.2:9/v1/models"));

    api.push_fault(
        Route::Models,
        Fault::raw(418, "text/plain", "teapot").with_header("x-extra", "1"),
    );
    let r = get(&models, Some("t")).await;
    assert_eq!(
        (r.status, r.text().as_str(), r.header("x-extra")),
        (418, "teapot", Some("1"))
    );

    assert_eq!(get(&models, Some("t")).await.status, 200, "queue drained");
    assert_eq!(api.stats().faults_served, 19);
}

#[tokio::test]
async fn faults_wait_for_their_route() {
    let api = open_api(1).await;
    api.push_fault(Route::Responses, Fault::server_error(503));
    let chat = format!("{}/chat/completions", api.base_url());
    assert_eq!(
        post_json(&chat, "t", &chat_body("grok-4.3", "x", false))
            .await
            .status,
        200
    );
    assert_eq!(api.pending_faults(), 1);
    let r = post_json(
        &format!("{}/responses", api.base_url()),
        "t",
        &responses_body("grok-4.3", "x", false),
    )
    .await;
    assert_eq!(r.status, 503);
    api.push_fault(Route::Models, Fault::server_error(500));
    api.clear_faults();
    assert_eq!(
        get(&format!("{}/models", api.base_url()), Some("t"))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn drop_connection_gives_no_response() {
    let api = open_api(1).await;
    api.push_fault(Route::Models, Fault::DropConnection);
    assert!(
        support::send("GET", &format!("{}/models", api.base_url()), &[], None)
            .await
            .is_err()
    );
    assert_eq!(
        get(&format!("{}/models", api.base_url()), Some("t"))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn cut_stream_ends_cleanly_without_the_terminal_event() {
    let api = open_api(1).await;
    let chat = format!("{}/chat/completions", api.base_url());
    api.push_fault(Route::ChatCompletions, Fault::CutStream { after_events: 2 });
    let r = post_json(
        &chat,
        "t",
        &chat_body("grok-4.3", "a message long enough for several chunks", true),
    )
    .await;
    assert_eq!(r.status, 200);
    let events = parse_sse(&r.text());
    assert_eq!(events.len(), 2, "HTTP body complete, only two events");
    assert!(events.iter().all(|e| e.data != "[DONE]"));

    api.push_fault(Route::Responses, Fault::CutStream { after_events: 3 });
    let r = post_json(
        &format!("{}/responses", api.base_url()),
        "t",
        &responses_body("grok-4.3", "long enough text here", true),
    )
    .await;
    let events = parse_sse(&r.text());
    assert_eq!(events.len(), 3);
    assert!(
        events
            .iter()
            .all(|e| e.name.as_deref() != Some("response.completed"))
    );
}

#[tokio::test]
async fn abort_stream_breaks_the_connection_mid_body() {
    let api = open_api(1).await;
    api.push_fault(
        Route::ChatCompletions,
        Fault::AbortStream { after_events: 1 },
    );
    let r = post_json(
        &format!("{}/chat/completions", api.base_url()),
        "t",
        &chat_body("grok-4.3", "a message long enough for several chunks", true),
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(r.body.is_err(), "body must fail, not end");

    // On a whole JSON body the abort lands mid-body (declared length not reached).
    api.push_fault(Route::Models, Fault::AbortStream { after_events: 1 });
    let r = get(&format!("{}/models", api.base_url()), Some("t")).await;
    assert!(r.body.is_err());
}

#[tokio::test]
async fn stalls_before_headers_and_mid_body() {
    let api = open_api(1).await;
    let models = format!("{}/models", api.base_url());
    api.push_fault(
        Route::Models,
        Fault::StallBeforeHeaders(Duration::from_secs(60)),
    );
    let waited = tokio::time::timeout(
        Duration::from_millis(300),
        support::send("GET", &models, &[], None),
    )
    .await;
    assert!(waited.is_err(), "no response head during the stall");

    api.push_fault(
        Route::ChatCompletions,
        Fault::StallMidBody {
            after_events: 2,
            duration: Duration::from_secs(60),
        },
    );
    let response = support::open(
        "POST",
        &format!("{}/chat/completions", api.base_url()),
        &[("authorization", "Bearer t")],
        Some(
            chat_body("grok-4.3", "some text to stream along", true)
                .to_string()
                .into_bytes(),
        ),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let mut received = Vec::new();
    while let Some(Ok(chunk)) = support::next_frame(&mut body, Duration::from_millis(300)).await {
        assert!(!chunk.is_empty(), "stream must not end during a stall");
        received.extend_from_slice(&chunk);
    }
    let events = parse_sse(&String::from_utf8(received).unwrap());
    assert_eq!(events.len(), 2, "two events, then silence");
}

#[tokio::test]
async fn a_short_stall_then_the_normal_answer() {
    let api = open_api(1).await;
    api.push_fault(
        Route::ChatCompletions,
        Fault::StallMidBody {
            after_events: 1,
            duration: Duration::from_millis(50),
        },
    );
    let r = post_json(
        &format!("{}/chat/completions", api.base_url()),
        "t",
        &chat_body("grok-4.3", "ok", true),
    )
    .await;
    assert_eq!(parse_sse(&r.text()).last().unwrap().data, "[DONE]");
}

#[tokio::test]
async fn oversized_bodies_have_the_requested_size() {
    let api = open_api(1).await;
    api.push_fault(
        Route::Models,
        Fault::Oversized {
            bytes: 3 * 1024 * 1024,
        },
    );
    let r = get(&format!("{}/models", api.base_url()), Some("t")).await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-length").is_none());
    let body = r.body.as_ref().unwrap();
    assert_eq!(body.len(), 3 * 1024 * 1024);
    assert!(
        serde_json::from_slice::<Value>(body).is_ok(),
        "well-formed, only too big"
    );

    api.push_fault(
        Route::ChatCompletions,
        Fault::Oversized { bytes: 1024 * 1024 },
    );
    let r = post_json(
        &format!("{}/chat/completions", api.base_url()),
        "t",
        &chat_body("grok-4.3", "x", true),
    )
    .await;
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    let text = r.text();
    assert_eq!(text.len(), 1024 * 1024);
    assert!(text.starts_with("data: {"));
}

#[tokio::test]
async fn after_processing_faults_still_count_the_request() {
    let api = open_api(1).await;
    api.push_fault_after_processing(Route::ChatCompletions, Fault::server_error(500));
    let r = post_json(
        &format!("{}/chat/completions", api.base_url()),
        "t",
        &chat_body("grok-4.3", "x", false),
    )
    .await;
    assert_eq!(r.status, 500);
    assert_eq!(api.stats().chat_completions, 1);
}

#[tokio::test]
async fn lifetime_guard_and_drop_stop_the_server() {
    let api = ApiServer::start(ApiConfig {
        lifetime: provider_reference::Lifetime {
            idle: Duration::from_secs(60),
            max: Duration::from_millis(100),
        },
        ..ApiConfig::default()
    })
    .await
    .unwrap();
    assert!(
        support::eventually(|| !api.is_running()).await,
        "max lifetime fired"
    );
    assert!(
        support::send("GET", &format!("{}/models", api.base_url()), &[], None)
            .await
            .is_err()
    );
}

#[test]
fn a_background_server_needs_no_runtime() {
    use std::io::{Read, Write};
    let api = ApiServer::start_background(ApiConfig::default()).unwrap();
    let mut stream = std::net::TcpStream::connect(api.addr()).unwrap();
    stream
        .write_all(b"GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("grok-4.3"));
    let auth = AuthServer::start_background(AuthConfig::default()).unwrap();
    let tokens = auth.issue_grant(2, "bg");
    assert!(auth.verifier().verify(&tokens.access_token).is_ok());
}
