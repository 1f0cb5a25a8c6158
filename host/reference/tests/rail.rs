//! The subscription rail: its own origin, the API's tokens and answers, its per-tier
//! catalogue and `-build` echo, the version gate, the Grok CLI header gate, streaming-only
//! body rules, `/billing`, `/user`, its quota and faults, and counters apart from the API's.

mod support;

use provider_reference::{
    ApiConfig, ApiHandle, ApiServer, AuthConfig, AuthHandle, AuthServer, Billing, BillingConfig,
    CatalogueModel, CredentialScope, Fault, GROK_CLI_TOKEN_AUTH, ModelKind, PeriodType,
    ProductUsage, QuotaFault, RailConfig, RailRefusal, Route, Tier, Tiers, UsagePeriod,
    model_ids_for_tier, rail_catalogue, random_api_key,
};
use serde_json::{Value, json};
use support::{Event, Resp, parse_sse, post_json};

const CLIENT_ID: &str = "grok-cli";
/// A real release of xAI's CLI (reference doc §2.2): the version gate lets it through.
const CLIENT_VERSION: &str = "1.0.6";

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
    json!({"model": "grok-4.6", "stream": true,
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

    // The catalogue is the rail's own and depends on the tier claim (an enum: §3.3, §5):
    // every paid tier gets grok-4.6 (first, the default) and grok-4.5, a free account
    // only grok-4.5.
    for tier in 0..=7 {
        let token = auth.issue_grant(tier, "u").access_token;
        let r = rail_get(&api, "models", &token).await;
        assert_eq!(r.status, 200);
        let expected: &[&str] = if tier == 0 {
            &["grok-4.5"]
        } else {
            &["grok-4.6", "grok-4.5"]
        };
        assert_eq!(ids(&r.json()), expected, "tier {tier}");
        assert_eq!(model_ids_for_tier(&rail_catalogue(), tier), expected);
    }
    let free = auth.issue_grant(0, "u").access_token;
    assert_eq!(
        rail_get(&api, "models/grok-4.5", &free).await.json()["id"],
        "grok-4.5"
    );
    assert_eq!(rail_get(&api, "models/grok-4.6", &free).await.status, 403);

    // The same streams as the API's, tools and reasoning included, but for the model the
    // rail echoes: the CLI variant (§2.5).
    let token = auth.issue_grant(4, "u").access_token;
    let mut with_tools = chat("weather?");
    with_tools["tools"] = json!([{"type": "function", "function": {"name": "lookup",
                                   "parameters": {"type": "object"}}}]);
    let mut reasoning = responses("grok-4.5", "think");
    reasoning["tools"] = json!([{"type": "function", "name": "lookup"}]);
    for (path, body) in [
        ("chat/completions", chat("hello rail")),
        ("chat/completions", with_tools),
        ("responses", responses("grok-4.6", "hello rail")),
        ("responses", reasoning),
    ] {
        let rail = rail_post(&api, path, &token, &body).await;
        assert_eq!(rail.status, 200, "{path}: {}", rail.text());
        assert_eq!(rail.header("content-type"), Some("text/event-stream"));
        let model = body["model"].as_str().unwrap();
        assert!(
            rail.text().contains(&format!("\"{model}-build\"")),
            "{path} echoes {model}-build"
        );
        let direct = post_json(&format!("{}/{path}", api.base_url()), &token, &body).await;
        let said = gist(&parse_sse(
            &rail
                .text()
                .replace(&format!("\"{model}-build\""), &format!("\"{model}\"")),
        ));
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
    assert_eq!(rail.requests, 14);
    assert_eq!(rail.oauth_requests, 14);
    assert_eq!(
        (rail.models_requests, rail.chat_completions, rail.responses),
        (10, 2, 2)
    );
    assert_eq!(rail.streams, 4);
    assert_eq!(rail.requests_by_path["/v1/models"], 8);
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
    assert_eq!(api.rail_requests().len(), 14);
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
    let cases: [(&[(&str, &str)], RailRefusal); 4] = [
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
    assert_eq!(stats.permission_denied, 4);
    assert_eq!(stats.refused(RailRefusal::MissingTokenAuth), 1);
    assert_eq!(stats.refused(RailRefusal::WrongTokenAuth), 1);
    assert_eq!(stats.refused(RailRefusal::MissingClientIdentifier), 2);
    // The header gate comes first: without the headers even no bearer is a 403.
    assert_eq!(rail_send("GET", &url, None, &[], None).await.status, 403);
    assert_eq!(rail_get(&api, "models", &token).await.status, 200);
    assert_eq!(api.rail_stats().permission_denied, 5);
    // `/models` is not version-gated (§2.2): no version at all still lists.
    let no_version = [
        ("x-xai-token-auth", GROK_CLI_TOKEN_AUTH),
        ("x-grok-client-identifier", "c"),
    ];
    assert_eq!(
        rail_send("GET", &url, Some(&token), &no_version, None)
            .await
            .status,
        200
    );

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
    // The rail's 401 is flat and the same for every bearer it cannot use (§2.6).
    let rail_401 = json!({"error": "Invalid or expired credentials (auth_kind=bearer)"});
    for bearer in [key.clone(), random_api_key()] {
        let r = rail_get(&api, "models", &bearer).await;
        assert_eq!((r.status, r.json()), (401, rail_401.clone()));
        assert!(!r.text().contains(&bearer[4..]), "never echoes a key");
    }
    let r = rail_get(&api, "models", "not-a-token").await;
    assert_eq!((r.status, r.json()), (401, rail_401.clone()));
    let url = format!("{}/models", api.subscription_base());
    let r = rail_send("GET", &url, None, &cli_headers(), None).await;
    assert_eq!((r.status, r.json()), (401, rail_401.clone()));

    // Tokens the test invalidates are refused on both rails.
    let token = auth.issue_grant(1, "u").access_token;
    assert_eq!(rail_get(&api, "models", &token).await.status, 200);
    api.deny_seen_tokens();
    let r = rail_get(&api, "models", &token).await;
    assert_eq!((r.status, r.json()), (401, rail_401));
    // api.x.ai answers the same token 403 bad-credentials, with its fixed text (§4).
    let r = support::get(&format!("{}/models", api.base_url()), Some(&token)).await;
    assert_eq!(
        (r.status, r.json()),
        (
            403,
            json!({"code": "unauthenticated:bad-credentials",
                   "error": "The OAuth2 access token could not be validated."})
        )
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
            responses("grok-4.6", "x")
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
    let mut body = responses("grok-4.6", "x");
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
    let mut body = responses("grok-4.6", "x");
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
async fn billing_answers_the_proto3_credits_config_and_other_modes() {
    let (auth, api) = auth_and_api(ApiConfig::default()).await;
    let token = auth.issue_grant(1, "u").access_token;
    // Default: the doc's example in the real shape (§3.1): camelCase, cents as `Cent`
    // messages, the period as RFC 3339, and no "remaining" number at all.
    let r = rail_get(&api, "billing?format=credits", &token).await;
    assert_eq!(r.status, 200);
    let config = &r.json()["config"];
    assert_eq!(config["creditUsagePercent"], 42.5);
    assert_eq!(config["currentPeriod"]["type"], "USAGE_PERIOD_TYPE_WEEKLY");
    for end in ["start", "end"] {
        let at = config["currentPeriod"][end].as_str().unwrap();
        assert!(
            at.len() == 20 && at.ends_with('Z') && at.as_bytes()[10] == b'T',
            "{at}"
        );
    }
    assert_eq!(config["onDemandCap"], json!({"val": 5000}));
    assert_eq!(config["onDemandUsed"], json!({"val": 300}));
    assert_eq!(config["prepaidBalance"], json!({"val": 1250}));
    assert_eq!(config["isUnifiedBillingUser"], true);
    assert!(config.get("remaining").is_none() && r.json().get("remaining").is_none());

    // Zero values are left out, a zero `Cent` is `{}`, a negative balance stays negative.
    let monthly = BillingConfig {
        credit_usage_percent: 0.0,
        current_period: Some(UsagePeriod {
            kind: PeriodType::Monthly,
            start: 1_798_761_600,
            end: 1_801_440_000,
        }),
        on_demand_cap: Some(0),
        on_demand_used: None,
        prepaid_balance: Some(-1250),
        is_unified_billing_user: false,
        product_usage: vec![ProductUsage {
            product: "PRODUCT_GROK_BUILD".into(),
            usage_percent: 7.5,
        }],
    };
    api.set_rail_billing(Billing::Config(monthly.clone()));
    assert_eq!(api.rail_billing(), Billing::Config(monthly));
    assert_eq!(
        rail_get(&api, "billing?format=credits", &token)
            .await
            .json(),
        json!({"config": {
            "currentPeriod": {"type": "USAGE_PERIOD_TYPE_MONTHLY",
                              "start": "2027-01-01T00:00:00Z", "end": "2027-02-01T00:00:00Z"},
            "onDemandCap": {},
            "prepaidBalance": {"val": -1250},
            "productUsage": [{"product": "PRODUCT_GROK_BUILD", "usagePercent": 7.5}]
        }})
    );
    api.set_rail_billing(Billing::NullConfig);
    assert_eq!(
        rail_get(&api, "billing?format=credits", &token)
            .await
            .json(),
        json!({"config": null})
    );
    api.set_rail_billing(Billing::Empty);
    assert_eq!(
        rail_get(&api, "billing?format=credits", &token)
            .await
            .json(),
        json!({})
    );
    api.set_rail_billing(Billing::Legacy {
        monthly_limit: 10_000,
        used: 2_500,
        period_start: 1_798_761_600,
        period_end: 1_801_440_000,
    });
    assert_eq!(
        rail_get(&api, "billing?format=credits", &token)
            .await
            .json(),
        json!({"config": {"monthlyLimit": {"val": 10000}, "used": {"val": 2500},
                          "billingPeriodStart": "2027-01-01T00:00:00Z",
                          "billingPeriodEnd": "2027-02-01T00:00:00Z"}})
    );
    // Errors are flat (§3.1).
    api.set_rail_billing(Billing::Error {
        status: 503,
        message: "billing is down".into(),
    });
    let r = rail_get(&api, "billing?format=credits", &token).await;
    assert_eq!(
        (r.status, r.json()),
        (503, json!({"error": "billing is down"}))
    );

    api.set_rail_billing(Billing::NotFound);
    assert_eq!(
        rail_get(&api, "billing?format=credits", &token)
            .await
            .status,
        404
    );
    api.set_rail_billing(Billing::ServerError);
    let r = rail_get(&api, "billing?format=credits", &token).await;
    assert_eq!(r.status, 500);
    assert!(r.json()["error"].is_string() && r.json().get("code").is_none());
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
    assert_eq!(api.rail_stats().billing_requests, 15);
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
    let r = rail_post(&api, "responses", &token, &responses("grok-4.6", "x")).await;
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
        &responses("grok-4.6", "x"),
    )
    .await;
    assert_eq!(direct.status, 200, "the API's queue is separate");
    let r = rail_post(&api, "responses", &token, &responses("grok-4.6", "x")).await;
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
async fn the_rails_catalogue_is_its_own_per_tier_and_configurable() {
    let (auth, api) = auth_and_api(ApiConfig::default()).await;
    let paid = auth.issue_grant(Tier::SuperGrok.claim(), "u").access_token;
    // Entries carry the camelCase extras and the answer an ETag (§2.3).
    let r = rail_get(&api, "models", &paid).await;
    let etag = r.header("etag").expect("an ETag").to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"') && etag.len() > 2);
    let first = &r.json()["data"][0];
    assert_eq!(first["id"], "grok-4.6");
    assert_eq!(first["apiBackend"], "responses");
    assert_eq!(first["contextWindow"], 500_000);
    assert_eq!(
        first["reasoningEfforts"],
        json!(["low", "medium", "high", "xhigh"])
    );
    assert_eq!(first["supportsReasoningEffort"], true);
    assert_eq!(
        r.json()["data"][1]["reasoningEfforts"],
        json!(["low", "medium", "high"])
    );
    // The API lists without the rail's extras and without an ETag.
    let listed = support::get(&format!("{}/models", api.base_url()), Some(&paid)).await;
    assert!(listed.header("etag").is_none());
    assert!(listed.json()["data"][0].get("apiBackend").is_none());
    // A free account's list differs, and so does its tag.
    let free = auth.issue_grant(Tier::Free.claim(), "f").access_token;
    let free_etag = rail_get(&api, "models", &free)
        .await
        .header("etag")
        .unwrap()
        .to_owned();
    assert_ne!(free_etag, etag);

    // Inference answers echo the CLI variant and carry the catalogue's tag (§2.4, §2.5).
    let r = rail_post(&api, "responses", &paid, &responses("grok-4.6", "x")).await;
    assert_eq!(r.header("x-models-etag"), Some(etag.as_str()));
    assert!(r.text().contains("\"model\":\"grok-4.6-build\""));
    let r = rail_post(&api, "chat/completions", &free, &{
        let mut body = chat("x");
        body["model"] = json!("grok-4.5");
        body
    })
    .await;
    assert_eq!(
        parse_sse(&r.text())[0].json()["model"],
        "grok-4.5-build-free"
    );
    assert_eq!(r.header("x-models-etag"), Some(free_etag.as_str()));
    // The free tier is not offered grok-4.6: the tier gate.
    let r = rail_post(&api, "chat/completions", &free, &chat("x")).await;
    assert_eq!(r.status, 403);

    // API-only ids are refused on the rail (a guessed 404, the API's shape) and served by
    // the API (§2.5, §5).
    for id in [
        "grok-4.3",
        "grok-4.20-0309-reasoning",
        "grok-4.20-0309-non-reasoning",
        "grok-4.20-multi-agent-0309",
        "grok-build-0.1",
    ] {
        let r = rail_post(&api, "responses", &paid, &responses(id, "x")).await;
        assert_eq!(r.status, 404, "{id}");
        assert_eq!(r.json()["code"], "Some requested entity was not found");
        assert!(r.json()["error"].as_str().unwrap().contains(id));
        let direct = post_json(
            &format!("{}/responses", api.base_url()),
            &paid,
            &responses(id, "x"),
        )
        .await;
        assert_eq!(direct.status, 200, "{id} on the API");
    }

    // Configurable: another list and other suffixes.
    let only = CatalogueModel::new(
        "grok-next",
        Tiers::of(&[Tier::SuperGrokHeavy]),
        ModelKind::Chat,
    )
    .with_rail_extras(1_000_000, &[]);
    let (auth, custom) = auth_and_api(ApiConfig {
        rail: RailConfig {
            models: vec![only],
            build_suffix: "-cli".into(),
            ..RailConfig::default()
        },
        ..ApiConfig::default()
    })
    .await;
    let heavy = auth
        .issue_grant(Tier::SuperGrokHeavy.claim(), "h")
        .access_token;
    let plus = auth
        .issue_grant(Tier::XPremiumPlus.claim(), "p")
        .access_token;
    let listed = rail_get(&custom, "models", &heavy).await.json();
    assert_eq!(ids(&listed), ["grok-next"]);
    assert_eq!(listed["data"][0]["supportsReasoningEffort"], false);
    assert!(ids(&rail_get(&custom, "models", &plus).await.json()).is_empty());
    let mut body = chat("x");
    body["model"] = json!("grok-next");
    let r = rail_post(&custom, "chat/completions", &heavy, &body).await;
    assert_eq!(parse_sse(&r.text())[0].json()["model"], "grok-next-cli");
    assert_eq!(
        rail_post(&custom, "chat/completions", &plus, &body)
            .await
            .status,
        403
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

/// The 426 every report quotes (§2.2) for this header value.
fn outdated(value: &str) -> Value {
    json!({"error": format!(
        "Your Grok CLI version ({value}) is outdated. Please update to version 0.1.202 or later via `grok update` or the installation documentation."
    )})
}

#[tokio::test]
async fn the_version_gate_refuses_inference_from_unknown_or_old_clients() {
    let (auth, api) = auth_and_api(ApiConfig::default()).await;
    let token = auth.issue_grant(1, "u").access_token;
    let with_version = |version: Option<&'static str>| {
        let mut headers = vec![
            ("x-xai-token-auth", GROK_CLI_TOKEN_AUTH),
            ("x-grok-client-identifier", CLIENT_ID),
        ];
        if let Some(v) = version {
            headers.push(("x-grok-client-version", v));
        }
        headers
    };
    let inference = [
        ("chat/completions", chat("x")),
        ("responses", responses("grok-4.6", "x")),
        (
            "messages",
            json!({"model": "grok-4.6", "stream": true, "max_tokens": 8,
                            "messages": [{"role": "user", "content": "x"}]}),
        ),
    ];
    // Below the floor, not semver, missing, or well-formed but no release (2026.9.3 was
    // refused from mid-September: openclaw#147728).
    let refused = [
        (Some("0.1.0"), "0.1.0"),
        (Some("0.1.201"), "0.1.201"),
        (Some("agent-afk"), "agent-afk"),
        (None, "none"),
        (Some("2026.9.3"), "2026.9.3"),
        (Some("1.0.7"), "1.0.7"),
    ];
    let mut count = 0;
    for (path, body) in &inference {
        let url = format!("{}/{path}", api.subscription_base());
        for (version, shown) in refused {
            let r = rail_send(
                "POST",
                &url,
                Some(&token),
                &with_version(version),
                Some(body),
            )
            .await;
            assert_eq!(
                (r.status, r.json()),
                (426, outdated(shown)),
                "{path} {version:?}"
            );
            count += 1;
        }
        // The gate comes before the bearer: an old client without a token is told the same.
        let r = rail_send("POST", &url, None, &with_version(Some("0.1.0")), Some(body)).await;
        assert_eq!(r.status, 426, "{path}");
        count += 1;
    }
    let stats = api.rail_stats();
    assert_eq!(stats.client_outdated, count);
    assert_eq!(stats.refused(RailRefusal::ClientOutdated), count);
    assert_eq!((stats.permission_denied, stats.streams), (0, 0));

    // Real releases pass, on each inference path (`/messages` is not emulated past the gate).
    for version in ["1.0.6", "0.2.120", "1.0.13", "1.0.34", "0.1.210-alpha.5"] {
        let url = format!("{}/responses", api.subscription_base());
        let r = rail_send(
            "POST",
            &url,
            Some(&token),
            &with_version(Some(version)),
            Some(&responses("grok-4.6", "x")),
        )
        .await;
        assert_eq!(r.status, 200, "{version}");
    }
    let url = format!("{}/messages", api.subscription_base());
    let r = rail_send(
        "POST",
        &url,
        Some(&token),
        &with_version(Some("1.0.6")),
        Some(&inference[2].1),
    )
    .await;
    assert_eq!(r.status, 404);
    // Neither `/models`, `/billing` nor `/user` is gated.
    for path in [
        "models",
        "billing?format=credits",
        "user?include=subscription",
    ] {
        let url = format!("{}/{path}", api.subscription_base());
        let r = rail_send(
            "GET",
            &url,
            Some(&token),
            &with_version(Some("0.1.0")),
            None,
        )
        .await;
        assert_eq!(r.status, 200, "{path}");
        let r = rail_send("GET", &url, Some(&token), &with_version(None), None).await;
        assert_eq!(r.status, 200, "{path}");
    }

    // Configurable: another floor (named in the text) and no list of releases.
    let (auth, custom) = auth_and_api(ApiConfig {
        rail: RailConfig {
            min_client_version: "1.0.0".into(),
            known_client_versions: None,
            ..RailConfig::default()
        },
        ..ApiConfig::default()
    })
    .await;
    let token = auth.issue_grant(1, "u").access_token;
    let url = format!("{}/responses", custom.subscription_base());
    let body = responses("grok-4.6", "x");
    let r = rail_send(
        "POST",
        &url,
        Some(&token),
        &with_version(Some("0.2.121")),
        Some(&body),
    )
    .await;
    assert_eq!(r.status, 426);
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("update to version 1.0.0 or later")
    );
    let r = rail_send(
        "POST",
        &url,
        Some(&token),
        &with_version(Some("2026.9.3")),
        Some(&body),
    )
    .await;
    assert_eq!(r.status, 200, "any well-formed version above the floor");
}

#[tokio::test]
async fn user_names_the_subscription_tier_only_when_asked_and_paid() {
    let (auth, api) = auth_and_api(ApiConfig::default()).await;
    let expected = [
        (Tier::Free, None),
        (Tier::SuperGrok, Some("GrokPro")),
        (Tier::XBasic, Some("XBasic")),
        (Tier::XPremium, Some("XPremium")),
        (Tier::XPremiumPlus, Some("XPremiumPlus")),
        (Tier::SuperGrokHeavy, Some("SuperGrokPro")),
        (Tier::SuperGrokLite, Some("SuperGrokLite")),
        (Tier::SuperGrokPlus, Some("SuperGrokPlus")),
    ];
    for (tier, name) in expected {
        let token = auth.issue_grant(tier.claim(), "user-7").access_token;
        let user = rail_get(&api, "user?include=subscription", &token)
            .await
            .json();
        assert_eq!(user["userId"], "user-7");
        assert!(user["email"].as_str().unwrap().contains('@'));
        assert_eq!(
            user.get("subscriptionTier").and_then(Value::as_str),
            name,
            "{tier:?}"
        );
        // Without the query, never.
        let plain = rail_get(&api, "user", &token).await.json();
        assert!(plain.get("subscriptionTier").is_none());
        assert_eq!(plain["userId"], "user-7");
    }
    // A stale claim: the rail says what the account has now.
    let token = auth.issue_grant(Tier::XPremium.claim(), "u").access_token;
    api.set_rail_subscription(Some(Tier::SuperGrokHeavy));
    let user = rail_get(&api, "user?include=subscription", &token)
        .await
        .json();
    assert_eq!(user["subscriptionTier"], "SuperGrokPro");
    api.set_rail_subscription(Some(Tier::Free));
    let user = rail_get(&api, "user?include=subscription", &token)
        .await
        .json();
    assert!(user.get("subscriptionTier").is_none());
    api.set_rail_subscription(None);
    let user = rail_get(&api, "user?include=subscription", &token)
        .await
        .json();
    assert_eq!(user["subscriptionTier"], "XPremium");
    // The bearer is checked; faults can be queued for it.
    let r = rail_get(&api, "user", "not-a-token").await;
    assert_eq!(r.status, 401);
    api.push_rail_fault(Route::User, Fault::server_error(503));
    assert_eq!(rail_get(&api, "user", &token).await.status, 503);
    assert_eq!(
        api.rail_stats().user_requests,
        20,
        "a faulted request is not counted"
    );
}

#[tokio::test]
async fn the_rails_quota_refusals_are_the_observed_ones() {
    let (auth, api) = auth_and_api(ApiConfig::default()).await;
    let token = auth.issue_grant(1, "u").access_token;
    api.set_rail_quota_fault(Some(QuotaFault::CreditsExhaustedWke));
    let r = rail_post(&api, "responses", &token, &responses("grok-4.6", "x")).await;
    assert_eq!(
        (r.status, r.json()),
        (
            429,
            json!({"code": 429,
                   "error": "You ran out of credits. [WKE=personal-team-blocked:spending-limit]"})
        )
    );
    assert!(r.header("retry-after").is_none(), "a quota, not a rate");
    api.set_rail_quota_fault(Some(QuotaFault::UsageBalanceExhausted));
    let r = rail_post(&api, "responses", &token, &responses("grok-4.6", "x")).await;
    assert_eq!(r.status, 402);
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("usage balance exhausted")
    );
    api.set_rail_quota_fault(Some(QuotaFault::FREE_USAGE_429));
    let r = rail_post(&api, "responses", &token, &responses("grok-4.6", "x")).await;
    assert_eq!(r.status, 429);
    assert!(
        r.header("retry-after").is_none(),
        "resets over a rolling 24 h"
    );
    assert_eq!(r.json()["code"], "subscription:free-usage-exhausted");
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .starts_with("You've used all the included free usage for model grok-4.5-build-free")
    );
    api.set_rail_quota_fault(None);

    // x-should-retry on any status, e.g. a 503 that must not be retried (§2.6).
    api.push_rail_fault(Route::Responses, Fault::unavailable_no_retry());
    let r = rail_post(&api, "responses", &token, &responses("grok-4.6", "x")).await;
    assert_eq!((r.status, r.header("x-should-retry")), (503, Some("false")));
    api.push_rail_fault(
        Route::Responses,
        Fault::rate_limited(Some(3)).with_should_retry(false),
    );
    let r = rail_post(&api, "responses", &token, &responses("grok-4.6", "x")).await;
    assert_eq!(
        (
            r.status,
            r.header("retry-after"),
            r.header("x-should-retry")
        ),
        (429, Some("3"), Some("false"))
    );
    assert_eq!(
        rail_post(&api, "responses", &token, &responses("grok-4.6", "x"))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn the_catalogue_and_the_gate_can_drift_while_the_rail_runs() {
    let (auth, api) = auth_and_api(ApiConfig::default()).await;
    let token = auth.issue_grant(1, "u").access_token;
    let before = rail_get(&api, "models", &token).await;
    let etag = before.header("etag").unwrap().to_owned();
    // The rail drops grok-4.5: the tags change, on the listing and on answers.
    api.set_rail_models(rail_catalogue().into_iter().take(1).collect());
    let after = rail_get(&api, "models", &token).await;
    assert_eq!(ids(&after.json()), ["grok-4.6"]);
    let new_etag = after.header("etag").unwrap().to_owned();
    assert_ne!(new_etag, etag);
    let r = rail_post(&api, "responses", &token, &responses("grok-4.6", "x")).await;
    assert_eq!(r.header("x-models-etag"), Some(new_etag.as_str()));
    assert_eq!(
        rail_post(&api, "responses", &token, &responses("grok-4.5", "x"))
            .await
            .status,
        404
    );
    // The rail stops knowing the client's release: 426 from the next request on.
    api.set_rail_version_gate("0.1.202", Some(vec!["1.0.34".into()]));
    let r = rail_post(&api, "responses", &token, &responses("grok-4.6", "x")).await;
    assert_eq!((r.status, r.json()), (426, outdated(CLIENT_VERSION)));
    api.set_rail_version_gate("0.1.202", None);
    assert_eq!(
        rail_post(&api, "responses", &token, &responses("grok-4.6", "x"))
            .await
            .status,
        200
    );
}
