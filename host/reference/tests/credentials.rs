//! The model API's two credential kinds (OAuth access tokens and API keys), the counters
//! that tell them apart, and the standing quota refusals scoped by kind.

mod support;

use provider_reference::{
    ApiConfig, ApiHandle, ApiServer, AuthConfig, AuthHandle, AuthServer, CredentialScope, Fault,
    KeyAccess, QuotaFault, Route, model_ids_for_tier, random_api_key, xai_catalogue,
};
use serde_json::{Value, json};
use support::{get, parse_sse, post_json};

fn ids(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect()
}

fn chat(text: &str, stream: bool) -> Value {
    json!({"model": "grok-4.3", "stream": stream,
           "messages": [{"role": "user", "content": text}]})
}

fn responses(text: &str, stream: bool) -> Value {
    json!({"model": "grok-4.3", "stream": stream, "input": text})
}

async fn auth_and_api(config: impl FnOnce(ApiConfig) -> ApiConfig) -> (AuthHandle, ApiHandle) {
    let auth = AuthServer::start(AuthConfig::default()).await.unwrap();
    let api = ApiServer::start(config(ApiConfig::for_auth(&auth)))
        .await
        .unwrap();
    (auth, api)
}

/// Status and `code` of a chat completion.
async fn chat_status(api: &ApiHandle, bearer: &str) -> (u16, Value) {
    let r = post_json(
        &format!("{}/chat/completions", api.base_url()),
        bearer,
        &chat("hi", false),
    )
    .await;
    let code = if r.status == 200 {
        Value::Null
    } else {
        r.json()["code"].clone()
    };
    (r.status, code)
}

#[tokio::test]
async fn api_keys_are_served_like_a_token_of_their_tier() {
    let tier3 = random_api_key();
    let listed = random_api_key();
    let (auth, api) = auth_and_api(|c| {
        c.with_api_key(&tier3, 3).with_api_key(
            &listed,
            vec!["grok-4.3".to_owned(), "grok-build-0.1".to_owned()],
        )
    })
    .await;
    let base = api.base_url();

    let r = get(&format!("{base}/models"), Some(&tier3)).await;
    assert_eq!(r.status, 200);
    assert_eq!(ids(&r.json()), model_ids_for_tier(&xai_catalogue(), 3));
    let r = get(&format!("{base}/models"), Some(&listed)).await;
    assert_eq!(ids(&r.json()), ["grok-4.3", "grok-build-0.1"]);
    // A listed model above any tier is usable; one not listed is the tier gate's 403.
    let mut body = chat("x", false);
    body["model"] = json!("grok-build-0.1");
    assert_eq!(
        post_json(&format!("{base}/chat/completions"), &listed, &body)
            .await
            .status,
        200
    );
    body["model"] = json!("grok-4.6");
    assert_eq!(
        post_json(&format!("{base}/chat/completions"), &listed, &body)
            .await
            .status,
        403
    );

    // Both lanes, whole and streamed, answer as for a token.
    let whole = post_json(
        &format!("{base}/chat/completions"),
        &tier3,
        &chat("key", false),
    )
    .await;
    assert_eq!(
        whole.json()["choices"][0]["message"]["content"],
        "Echo: key"
    );
    let streamed = post_json(
        &format!("{base}/responses"),
        &tier3,
        &responses("key", true),
    )
    .await;
    let events = parse_sse(&streamed.text());
    assert_eq!(
        events.last().unwrap().name.as_deref(),
        Some("response.completed")
    );
    let whole = post_json(
        &format!("{base}/responses"),
        &tier3,
        &responses("key", false),
    )
    .await;
    assert_eq!(whole.json()["output"][0]["content"][0]["text"], "Echo: key");

    let stats = api.stats();
    assert_eq!(stats.api_key_requests, stats.requests);
    assert_eq!(stats.oauth_requests, 0, "no OAuth bearer was sent");
    assert_eq!(stats.unauthenticated, 0);

    // The OAuth route counts on its own side.
    let token = auth.issue_grant(1, "u").access_token;
    assert_eq!(chat_status(&api, &token).await.0, 200);
    let after = api.stats();
    assert_eq!(after.oauth_requests, 1);
    assert_eq!(after.api_key_requests, stats.api_key_requests);
    // A request without a bearer is neither.
    get(&format!("{base}/models"), None).await;
    assert_eq!(
        api.stats().oauth_requests + api.stats().api_key_requests,
        after.requests
    );
}

#[tokio::test]
async fn unknown_api_keys_get_xais_401_redacted_unless_echo_is_asked() {
    let known = random_api_key();
    let (auth, api) = auth_and_api(|c| c.with_api_key(&known, 1)).await;
    let models = format!("{}/models", api.base_url());
    let unknown = random_api_key();

    let r = get(&models, Some(&unknown)).await;
    assert_eq!(r.status, 401);
    let body = r.json();
    assert_eq!(body["code"], "unauthenticated:invalid-api-key");
    let error = body["error"].as_str().unwrap();
    assert!(
        error.starts_with("Incorrect API key provided: xai-…"),
        "{error}"
    );
    assert!(
        !error.contains(&unknown[4..]),
        "redacted by default: {error}"
    );
    assert!(error.contains(&unknown[unknown.len() - 4..]));

    api.set_echo_api_key_in_errors(true);
    let r = get(&models, Some(&unknown)).await;
    assert!(r.json()["error"].as_str().unwrap().contains(&unknown));
    api.set_echo_api_key_in_errors(false);

    let echoing = ApiServer::start(ApiConfig {
        echo_api_key_in_errors: true,
        ..ApiConfig::default()
    })
    .await
    .unwrap();
    // Without a verifier any bearer passes, but a key-shaped one is still looked up.
    let url = format!("{}/models", echoing.base_url());
    assert_eq!(get(&url, Some("t")).await.status, 200);
    let r = get(&url, Some(&unknown)).await;
    assert_eq!(r.status, 401);
    assert!(r.json()["error"].as_str().unwrap().contains(&unknown));

    // Not key-shaped: the OAuth refusal as before.
    let r = get(&models, Some("not-a-jwt")).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["code"], "unauthenticated:bad-credentials");

    let stats = api.stats();
    assert_eq!(stats.invalid_api_keys, 2);
    assert_eq!(stats.unauthenticated, 3);
    assert_eq!((stats.api_key_requests, stats.oauth_requests), (2, 1));

    // Keys change at run time; deny_token refuses a key, deny_seen_tokens does not.
    assert_eq!(get(&models, Some(&known)).await.status, 200);
    let token = auth.issue_grant(1, "u").access_token;
    assert_eq!(get(&models, Some(&token)).await.status, 200);
    assert_eq!(api.deny_seen_tokens(), 2, "the OAuth bearers only");
    assert_eq!(get(&models, Some(&known)).await.status, 200);
    assert_eq!(get(&models, Some(&token)).await.status, 403);
    api.add_api_key(&unknown, KeyAccess::Tier(2));
    assert_eq!(get(&models, Some(&unknown)).await.status, 200);
    assert!(api.remove_api_key(&unknown));
    assert!(!api.remove_api_key(&unknown));
    assert_eq!(get(&models, Some(&unknown)).await.status, 401);
    api.deny_token(&known);
    assert_eq!(get(&models, Some(&known)).await.status, 401);
}

#[tokio::test]
async fn quota_faults_are_scoped_by_credential_kind() {
    let key = random_api_key();
    let (auth, api) = auth_and_api(|c| c.with_api_key(&key, 1)).await;
    let token = auth.issue_grant(1, "u").access_token;
    let models = format!("{}/models", api.base_url());

    // Exhaust the `api` route: the `api-key` route still works.
    api.set_quota_fault(CredentialScope::OAuth, Some(QuotaFault::FREE_USAGE_429));
    let r = post_json(
        &format!("{}/chat/completions", api.base_url()),
        &token,
        &chat("x", true),
    )
    .await;
    assert_eq!(r.status, 429);
    let body = r.json();
    assert_eq!(body["code"], "subscription:free-usage-exhausted");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("You've used all the included free usage for model")
    );
    assert!(
        r.header("retry-after").is_none(),
        "it resets over a rolling 24 h"
    );
    let r = post_json(
        &format!("{}/responses", api.base_url()),
        &token,
        &responses("x", false),
    )
    .await;
    assert_eq!(r.status, 429);
    assert_eq!(chat_status(&api, &key).await.0, 200);
    assert_eq!(
        get(&models, Some(&token)).await.status,
        200,
        "/models answers"
    );

    // And the other way round, with the spending limit.
    api.set_quota_fault(CredentialScope::OAuth, None);
    api.set_quota_fault(
        CredentialScope::ApiKey,
        Some(QuotaFault::SPENDING_LIMIT_402),
    );
    let (status, code) = chat_status(&api, &key).await;
    assert_eq!(
        (status, code.as_str()),
        (402, Some("personal-team-blocked:spending-limit"))
    );
    assert_eq!(chat_status(&api, &token).await.0, 200);

    // Both, with a 403 free-usage answer.
    api.set_quota_fault(
        CredentialScope::Both,
        Some(QuotaFault::FreeUsageExhausted { status: 403 }),
    );
    for bearer in [&key, &token] {
        let (status, code) = chat_status(&api, bearer).await;
        assert_eq!(
            (status, code.as_str()),
            (403, Some("subscription:free-usage-exhausted"))
        );
    }
    // A bad bearer is refused as such, not by the quota.
    assert_eq!(chat_status(&api, &random_api_key()).await.0, 401);

    api.set_quota_fault(
        CredentialScope::Both,
        Some(QuotaFault::RateLimited {
            retry_after_seconds: Some(12),
        }),
    );
    let r = post_json(
        &format!("{}/chat/completions", api.base_url()),
        &key,
        &chat("x", false),
    )
    .await;
    assert_eq!((r.status, r.header("retry-after")), (429, Some("12")));

    api.clear_quota_faults();
    assert_eq!(chat_status(&api, &key).await.0, 200);
    assert_eq!(chat_status(&api, &token).await.0, 200);
    assert_eq!(api.stats().quota_refusals, 6);

    // The same answers, one-shot through the queue.
    api.push_fault(Route::ChatCompletions, QuotaFault::FREE_USAGE_429.fault());
    api.push_fault(Route::ChatCompletions, Fault::free_usage_exhausted(403));
    assert_eq!(chat_status(&api, &token).await.0, 429);
    assert_eq!(chat_status(&api, &key).await.0, 403);
    assert_eq!(chat_status(&api, &key).await.0, 200);
}
