//! The reference authorization server: device flow states, pacing, rotation and reuse
//! detection, revocation, JWT round trip, discovery, faults.

mod support;

use std::time::Duration;

use provider_reference::{
    ApiConfig, ApiServer, AuthConfig, AuthHandle, AuthServer, Error, Fault, RefreshFailure,
    RefreshFamily, Route, VerifyError, XAI_CLIENT_ID, tier_claim,
};
use serde_json::{Value, json};
use support::{get, post_form};

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

fn fast() -> AuthConfig {
    AuthConfig {
        interval: 0,
        ..AuthConfig::default()
    }
}

/// Start a device authorization; returns (device_code, response JSON).
async fn start_device(auth: &AuthHandle) -> (String, Value) {
    let r = post_form(
        &auth.device_authorization_endpoint(),
        &[
            ("client_id", auth.client_id()),
            ("scope", "openid offline_access api:access"),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    (body["device_code"].as_str().unwrap().to_owned(), body)
}

async fn poll(auth: &AuthHandle, device_code: &str) -> (u16, Value) {
    let r = post_form(
        &auth.token_endpoint(),
        &[
            ("grant_type", DEVICE_GRANT),
            ("device_code", device_code),
            ("client_id", auth.client_id()),
        ],
    )
    .await;
    (r.status, r.json())
}

async fn refresh(auth: &AuthHandle, refresh_token: &str) -> (u16, Value) {
    refresh_as(auth, auth.client_id(), refresh_token).await
}

async fn refresh_as(auth: &AuthHandle, client_id: &str, refresh_token: &str) -> (u16, Value) {
    let r = post_form(
        &auth.token_endpoint(),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", client_id),
        ],
    )
    .await;
    (r.status, r.json())
}

fn error_of(body: &Value) -> &str {
    body["error"].as_str().unwrap_or("<none>")
}

#[tokio::test]
async fn discovery_lists_the_endpoints_on_the_issuer_origin() {
    let auth = AuthServer::start(AuthConfig::default()).await.unwrap();
    assert!(auth.issuer().starts_with("http://127.0.0.1:"));
    let doc = get(&auth.discovery_url(), None).await.json();
    assert_eq!(doc["issuer"], auth.issuer());
    assert_eq!(
        doc["device_authorization_endpoint"],
        auth.device_authorization_endpoint()
    );
    assert_eq!(doc["token_endpoint"], auth.token_endpoint());
    assert_eq!(doc["revocation_endpoint"], auth.revocation_endpoint());
    let jwks_uri = doc["jwks_uri"].as_str().unwrap();
    let jwks = get(jwks_uri, None).await.json();
    assert_eq!(
        jwks,
        serde_json::from_str::<Value>(&auth.jwks_json()).unwrap()
    );
    assert_eq!(jwks["keys"][0]["alg"], "ES256");
    assert_eq!(auth.stats().discovery_requests, 1);
}

#[tokio::test]
async fn discovery_overrides_replace_and_remove_members() {
    let mut config = AuthConfig::default();
    config
        .discovery_overrides
        .insert("revocation_endpoint".into(), Value::Null);
    config
        .discovery_overrides
        .insert("token_endpoint".into(), json!("https://evil.example/token"));
    let auth = AuthServer::start(config).await.unwrap();
    let doc = get(&auth.discovery_url(), None).await.json();
    assert!(doc.get("revocation_endpoint").is_none());
    assert_eq!(doc["token_endpoint"], "https://evil.example/token");
}

#[tokio::test]
async fn device_flow_pending_approve_success_once() {
    let auth = AuthServer::start(fast()).await.unwrap();
    let (device_code, prompt) = start_device(&auth).await;
    let user_code = prompt["user_code"].as_str().unwrap();
    assert_eq!(auth.latest_user_code().as_deref(), Some(user_code));
    assert!(
        user_code
            .chars()
            .all(|c| c.is_ascii_uppercase() || c == '-')
    );
    assert_eq!(prompt["interval"], 0);
    assert_eq!(prompt["expires_in"], 1800);
    assert_eq!(
        prompt["verification_uri_complete"],
        format!(
            "{}?user_code={user_code}",
            prompt["verification_uri"].as_str().unwrap()
        )
    );

    let (status, body) = poll(&auth, &device_code).await;
    assert_eq!((status, error_of(&body)), (400, "authorization_pending"));

    auth.approve(user_code, 3, "alice").unwrap();
    let (status, tokens) = poll(&auth, &device_code).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 21600);
    assert!(
        tokens["refresh_token"]
            .as_str()
            .is_some_and(|t| t.len() > 20)
    );
    assert!(
        tokens["id_token"].is_string(),
        "openid scope brings an id_token"
    );

    let claims = auth
        .verifier()
        .verify(tokens["access_token"].as_str().unwrap())
        .unwrap();
    assert_eq!(tier_claim(&claims), Some(3));
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["aud"], auth.client_id());
    assert_eq!(claims["client_id"], auth.client_id());
    assert_eq!(claims["iss"], auth.issuer());
    assert_eq!(claims["scope"], "openid offline_access api:access");
    for claim in ["exp", "iat", "jti"] {
        assert!(claims.contains_key(claim), "{claim} missing");
    }

    // The code is consumed: a second redemption is reuse and kills the grant.
    let (status, body) = poll(&auth, &device_code).await;
    assert_eq!((status, error_of(&body)), (400, "invalid_grant"));
    let (status, body) = refresh(&auth, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!((status, error_of(&body)), (400, "invalid_grant"));
    let stats = auth.stats();
    assert_eq!(stats.device_authorizations, 1);
    assert_eq!(stats.token_requests_device_code, 3);
    assert_eq!(stats.reuse_detections, 1);
    assert_eq!(stats.grants_revoked, 1);
    assert_eq!(stats.polls_per_user_code[user_code], 3);
    assert_eq!(
        auth.verifier()
            .verify(tokens["access_token"].as_str().unwrap()),
        Err(VerifyError::Revoked)
    );
}

#[tokio::test]
async fn denial_and_expiry_end_the_flow() {
    let auth = AuthServer::start(fast()).await.unwrap();
    let (denied, prompt) = start_device(&auth).await;
    auth.deny(prompt["user_code"].as_str().unwrap()).unwrap();
    let (status, body) = poll(&auth, &denied).await;
    assert_eq!((status, error_of(&body)), (400, "access_denied"));
    assert!(matches!(
        auth.approve(prompt["user_code"].as_str().unwrap(), 1, "x"),
        Err(Error::UserCodeSettled(_, "denied"))
    ));

    let (expired, prompt) = start_device(&auth).await;
    auth.expire(prompt["user_code"].as_str().unwrap()).unwrap();
    let (status, body) = poll(&auth, &expired).await;
    assert_eq!((status, error_of(&body)), (400, "expired_token"));

    assert!(matches!(
        auth.approve("NOPE-NOPE", 1, "x"),
        Err(Error::UnknownUserCode(_))
    ));
    let (status, body) = poll(&auth, "not-a-device-code").await;
    assert_eq!((status, error_of(&body)), (400, "invalid_grant"));
}

#[tokio::test]
async fn device_code_ttl_expires_codes() {
    let auth = AuthServer::start(AuthConfig {
        device_code_ttl: Duration::ZERO,
        ..fast()
    })
    .await
    .unwrap();
    let (code, prompt) = start_device(&auth).await;
    assert_eq!(prompt["expires_in"], 0);
    let (status, body) = poll(&auth, &code).await;
    assert_eq!((status, error_of(&body)), (400, "expired_token"));
}

#[tokio::test]
async fn polling_faster_than_the_interval_answers_slow_down_and_raises_it() {
    let auth = AuthServer::start(AuthConfig {
        interval: 30,
        ..AuthConfig::default()
    })
    .await
    .unwrap();
    let (code, _) = start_device(&auth).await;
    let (_, body) = poll(&auth, &code).await;
    assert_eq!(
        error_of(&body),
        "authorization_pending",
        "first poll is not paced"
    );
    let (status, body) = poll(&auth, &code).await;
    assert_eq!((status, error_of(&body)), (400, "slow_down"));
    let (_, body) = poll(&auth, &code).await;
    assert_eq!(error_of(&body), "slow_down");
    assert_eq!(auth.stats().slow_downs, 2);
}

#[tokio::test]
async fn forced_slow_down_then_pending() {
    let auth = AuthServer::start(AuthConfig {
        slow_down_increment: 0,
        ..fast()
    })
    .await
    .unwrap();
    let (code, _) = start_device(&auth).await;
    auth.force_slow_down(2);
    for _ in 0..2 {
        let (_, body) = poll(&auth, &code).await;
        assert_eq!(error_of(&body), "slow_down");
    }
    let (_, body) = poll(&auth, &code).await;
    assert_eq!(error_of(&body), "authorization_pending");
    assert_eq!(auth.stats().slow_downs, 2);
}

#[tokio::test]
async fn a_forced_slow_down_raises_the_enforced_interval() {
    let auth = AuthServer::start(fast()).await.unwrap();
    let (code, _) = start_device(&auth).await;
    auth.force_slow_down(1);
    let (_, body) = poll(&auth, &code).await;
    assert_eq!(error_of(&body), "slow_down");
    // The interval is now 5 s: an immediate poll is too fast.
    let (_, body) = poll(&auth, &code).await;
    assert_eq!(error_of(&body), "slow_down");
}

#[tokio::test]
async fn variant_knobs_http_200_errors_and_missing_fields() {
    let auth = AuthServer::start(AuthConfig {
        errors_with_http_200: true,
        omit_expires_in: true,
        omit_verification_uri_complete: true,
        verification_base_url: Some("https://accounts.example/device".into()),
        ..fast()
    })
    .await
    .unwrap();
    let (code, prompt) = start_device(&auth).await;
    assert!(prompt.get("verification_uri_complete").is_none());
    assert_eq!(
        prompt["verification_uri"],
        "https://accounts.example/device"
    );
    let (status, body) = poll(&auth, &code).await;
    assert_eq!((status, error_of(&body)), (200, "authorization_pending"));
    auth.approve(prompt["user_code"].as_str().unwrap(), 1, "bob")
        .unwrap();
    let (status, tokens) = poll(&auth, &code).await;
    assert_eq!(status, 200);
    assert!(tokens.get("expires_in").is_none());
    assert!(tokens["access_token"].is_string());
}

#[tokio::test]
async fn wrong_or_missing_client_id_is_invalid_client() {
    let auth = AuthServer::start(fast()).await.unwrap();
    let r = post_form(
        &auth.device_authorization_endpoint(),
        &[("client_id", "someone-else")],
    )
    .await;
    assert_eq!((r.status, error_of(&r.json())), (401, "invalid_client"));
    let r = post_form(
        &auth.token_endpoint(),
        &[("grant_type", "refresh_token"), ("refresh_token", "x")],
    )
    .await;
    assert_eq!((r.status, error_of(&r.json())), (401, "invalid_client"));
    assert_eq!(auth.stats().device_authorizations, 0);
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_whole_grant() {
    let auth = AuthServer::start(fast()).await.unwrap();
    let api = ApiServer::start(ApiConfig::for_auth(&auth)).await.unwrap();
    let first = auth.issue_grant(2, "carol");

    let (status, second) = refresh(&auth, &first.refresh_token).await;
    assert_eq!(status, 200, "{second}");
    let rt2 = second["refresh_token"].as_str().unwrap().to_owned();
    let at2 = second["access_token"].as_str().unwrap().to_owned();
    assert_ne!(
        rt2, first.refresh_token,
        "rotation issues a new refresh token"
    );
    assert_eq!(tier_claim(&auth.verifier().verify(&at2).unwrap()), Some(2));
    let models = format!("{}/models", api.base_url());
    assert_eq!(get(&models, Some(&at2)).await.status, 200);

    // The retired token comes back: reuse detected, every token of the grant dies.
    let (status, body) = refresh(&auth, &first.refresh_token).await;
    assert_eq!((status, error_of(&body)), (400, "invalid_grant"));
    let (status, body) = refresh(&auth, &rt2).await;
    assert_eq!((status, error_of(&body)), (400, "invalid_grant"));
    assert_eq!(body["error_description"], "Refresh token has been revoked");
    let r = get(&models, Some(&at2)).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["code"], "unauthenticated:bad-credentials");

    let stats = auth.stats();
    assert_eq!(stats.refresh_redemptions, 1);
    assert_eq!(stats.reuse_detections, 1);
    assert_eq!(stats.grants_revoked, 1);
    assert_eq!(stats.token_requests_refresh, 3);

    // Other grants are untouched.
    let other = auth.issue_grant(1, "dave");
    assert_eq!(refresh(&auth, &other.refresh_token).await.0, 200);
}

#[tokio::test]
async fn a_tier_change_shows_in_refreshed_tokens() {
    let auth = AuthServer::start(fast()).await.unwrap();
    let grant = auth.issue_grant(1, "upgrader");
    assert_eq!(auth.set_tier("upgrader", 4), 1);
    let (status, body) = refresh(&auth, &grant.refresh_token).await;
    assert_eq!(status, 200);
    let claims = auth
        .verifier()
        .verify(body["access_token"].as_str().unwrap())
        .unwrap();
    assert_eq!(tier_claim(&claims), Some(4));
    assert_eq!(auth.set_tier("nobody", 2), 0);
}

#[tokio::test]
async fn without_rotation_the_old_refresh_token_stays_valid() {
    let auth = AuthServer::start(AuthConfig {
        rotate_refresh_tokens: false,
        ..fast()
    })
    .await
    .unwrap();
    let grant = auth.issue_grant(1, "erin");
    for _ in 0..2 {
        let (status, body) = refresh(&auth, &grant.refresh_token).await;
        assert_eq!(status, 200);
        assert!(body.get("refresh_token").is_none());
    }
    assert_eq!(auth.stats().reuse_detections, 0);
}

#[tokio::test]
async fn revocation_endpoint_and_revoke_all() {
    let auth = AuthServer::start(fast()).await.unwrap();
    let a = auth.issue_grant(1, "a");
    let r = post_form(
        &auth.revocation_endpoint(),
        &[
            ("token", &a.refresh_token),
            ("token_type_hint", "refresh_token"),
            ("client_id", auth.client_id()),
        ],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        refresh(&auth, &a.refresh_token).await.1["error"],
        "invalid_grant"
    );
    assert_eq!(
        auth.verifier().verify(&a.access_token),
        Err(VerifyError::Revoked)
    );

    // Unknown tokens still get 200 (RFC 7009); an access token is revoked on its own.
    let b = auth.issue_grant(1, "b");
    let r = post_form(
        &auth.revocation_endpoint(),
        &[("token", "unknown"), ("client_id", auth.client_id())],
    )
    .await;
    assert_eq!(r.status, 200);
    let r = post_form(
        &auth.revocation_endpoint(),
        &[("token", &b.access_token), ("client_id", auth.client_id())],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        auth.verifier().verify(&b.access_token),
        Err(VerifyError::Revoked)
    );
    assert_eq!(refresh(&auth, &b.refresh_token).await.0, 200);

    let c = auth.issue_grant(4, "c");
    assert_eq!(auth.revoke_all(), 2, "b and c were still live");
    assert_eq!(
        refresh(&auth, &c.refresh_token).await.1["error"],
        "invalid_grant"
    );
    assert_eq!(auth.stats().revocation_requests, 3);
}

#[tokio::test]
async fn jwt_round_trip_and_rejections() {
    let auth = AuthServer::start(fast()).await.unwrap();
    let tokens = auth.issue_grant(4, "frank");
    let jwks = get(&format!("{}/.well-known/jwks.json", auth.issuer()), None)
        .await
        .text();
    let verifier = provider_reference::TokenVerifier::from_jwks_json(&jwks)
        .unwrap()
        .with_issuer(auth.issuer())
        .with_audience(auth.client_id());
    let claims = verifier.verify(&tokens.access_token).unwrap();
    assert_eq!(tier_claim(&claims), Some(4));

    let mut tampered = tokens.access_token.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    assert!(matches!(
        verifier.verify(&tampered),
        Err(VerifyError::BadSignature | VerifyError::Malformed)
    ));
    assert_eq!(
        verifier
            .clone()
            .with_audience("other")
            .verify(&tokens.access_token),
        Err(VerifyError::WrongAudience)
    );
    assert_eq!(
        verifier
            .clone()
            .with_issuer("https://x")
            .verify(&tokens.access_token),
        Err(VerifyError::WrongIssuer)
    );
    assert_eq!(verifier.verify("a.b"), Err(VerifyError::Malformed));

    // Another server's key does not verify this server's tokens.
    let other = AuthServer::start(fast()).await.unwrap();
    assert!(other.verifier().verify(&tokens.access_token).is_err());

    let short = AuthServer::start(AuthConfig {
        access_token_ttl: Duration::ZERO,
        ..fast()
    })
    .await
    .unwrap();
    let expired = short.issue_grant(1, "g");
    assert_eq!(
        short.verifier().verify(&expired.access_token),
        Err(VerifyError::Expired)
    );
    let header: Value = {
        use base64::Engine;
        let part = tokens.access_token.split('.').next().unwrap();
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(part)
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "ES256");
}

#[tokio::test]
async fn queued_faults_replace_answers_on_their_route_only() {
    let auth = AuthServer::start(fast()).await.unwrap();
    auth.push_fault(Route::Token, Fault::server_error(500));
    auth.push_fault(Route::Token, Fault::oauth_error(200, "slow_down"));
    auth.push_fault(Route::Token, Fault::malformed_json());
    auth.push_fault(Route::DeviceAuthorization, Fault::html_page(403));
    assert_eq!(auth.pending_faults(), 4);

    let r = post_form(
        &auth.device_authorization_endpoint(),
        &[("client_id", auth.client_id())],
    )
    .await;
    assert_eq!(r.status, 403);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    let (code, _) = start_device(&auth).await;

    let form = [
        ("grant_type", DEVICE_GRANT),
        ("device_code", code.as_str()),
        ("client_id", auth.client_id()),
    ];
    let r = post_form(&auth.token_endpoint(), &form).await;
    assert_eq!(r.status, 500);
    let r = post_form(&auth.token_endpoint(), &form).await;
    assert_eq!((r.status, error_of(&r.json())), (200, "slow_down"));
    let r = post_form(&auth.token_endpoint(), &form).await;
    assert_eq!(r.status, 200);
    assert!(serde_json::from_slice::<Value>(r.body.as_ref().unwrap()).is_err());
    let r = post_form(&auth.token_endpoint(), &form).await;
    assert_eq!(error_of(&r.json()), "authorization_pending");
    assert_eq!(auth.stats().faults_served, 4);
    assert_eq!(
        auth.stats().polls_per_user_code.values().sum::<u64>(),
        1,
        "faulted polls never reached the flow"
    );
}

#[tokio::test]
async fn a_lost_refresh_answer_still_consumes_the_token() {
    let auth = AuthServer::start(fast()).await.unwrap();
    let grant = auth.issue_grant(1, "h");
    auth.push_fault_after_processing(Route::Token, Fault::DropConnection);
    let sent = support::send(
        "POST",
        &auth.token_endpoint(),
        &[("content-type", "application/x-www-form-urlencoded")],
        Some(
            format!(
                "grant_type=refresh_token&refresh_token={}&client_id={}",
                grant.refresh_token,
                auth.client_id()
            )
            .into_bytes(),
        ),
    )
    .await;
    assert!(sent.is_err(), "the connection was dropped");
    assert_eq!(auth.stats().refresh_redemptions, 1);
    // Retrying the same (now retired) token is reuse.
    assert_eq!(
        refresh(&auth, &grant.refresh_token).await.1["error"],
        "invalid_grant"
    );
    assert_eq!(auth.stats().reuse_detections, 1);
}

#[tokio::test]
async fn the_verification_page_lets_a_person_decide() {
    let auth = AuthServer::start(fast()).await.unwrap();
    let (code, prompt) = start_device(&auth).await;
    let page_url = prompt["verification_uri_complete"].as_str().unwrap();
    let page = get(page_url, None).await;
    let user_code = prompt["user_code"].as_str().unwrap();
    assert!(page.text().contains(user_code));
    let r = post_form(
        prompt["verification_uri"].as_str().unwrap(),
        &[
            ("user_code", user_code),
            ("tier", "4"),
            ("decision", "approve"),
        ],
    )
    .await;
    assert_eq!(r.status, 200);
    let (status, tokens) = poll(&auth, &code).await;
    assert_eq!(status, 200);
    let claims = auth
        .verifier()
        .verify(tokens["access_token"].as_str().unwrap())
        .unwrap();
    assert_eq!(tier_claim(&claims), Some(4));
}

#[tokio::test]
async fn requests_are_logged_without_leaking_in_debug() {
    let auth = AuthServer::start(fast()).await.unwrap();
    let grant = auth.issue_grant(1, "i");
    refresh(&auth, &grant.refresh_token).await;
    let log = auth.requests();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].path, "/oauth2/token");
    assert_eq!(log[0].header("user-agent"), Some("reference-tests/1"));
    assert_eq!(
        log[0].form_value("grant_type").as_deref(),
        Some("refresh_token")
    );
    let debug = format!("{:?}", log[0]);
    assert!(!debug.contains(&grant.refresh_token));
    assert!(!format!("{grant:?}").contains(&grant.access_token));
    auth.clear_requests();
    assert!(auth.requests().is_empty());
}

#[tokio::test]
async fn the_server_stops_when_dropped_and_when_idle() {
    let auth = AuthServer::start(AuthConfig {
        lifetime: provider_reference::Lifetime {
            idle: Duration::from_millis(100),
            max: Duration::from_secs(60),
        },
        ..fast()
    })
    .await
    .unwrap();
    assert!(
        support::eventually(|| !auth.is_running()).await,
        "idle guard fired"
    );
    assert!(
        support::send("GET", &auth.discovery_url(), &[], None)
            .await
            .is_err()
    );

    let auth = AuthServer::start(fast()).await.unwrap();
    let url = auth.discovery_url();
    assert_eq!(get(&url, None).await.status, 200);
    drop(auth);
    let mut refused = false;
    for _ in 0..100 {
        if support::send("GET", &url, &[], None).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused, "dropping the handle stops the server");
}

/// Two tools sharing xAI's CLI client id, each with its own login of the same account
/// (reference doc §1.6, hermes-agent#36269): the family is (client id, account), so the
/// first refresh supersedes the other login's token, and that login's next refresh is
/// reuse that revokes both, access tokens included.
#[tokio::test]
async fn two_logins_of_one_account_by_one_client_revoke_each_other() {
    let auth = AuthServer::start(AuthConfig {
        other_client_ids: vec!["own-client".into()],
        ..fast()
    })
    .await
    .unwrap();
    assert_eq!(auth.client_id(), XAI_CLIENT_ID);
    let api = ApiServer::start(ApiConfig::for_auth(&auth)).await.unwrap();
    let models = format!("{}/models", api.base_url());
    let official = auth.issue_grant(1, "erin");
    let ours = auth.issue_grant(1, "erin");
    // Another account, and the same account under another client id: other families.
    let stranger = auth.issue_grant(1, "frank");
    let own = auth.issue_grant_for("own-client", 1, "erin");

    let (status, body) = refresh(&auth, &ours.refresh_token).await;
    assert_eq!(status, 200, "{body}");
    let ours_at = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(get(&models, Some(&ours_at)).await.status, 200);
    // The official CLI refreshes its own, untouched-looking token: reuse of the family.
    let (status, body) = refresh(&auth, &official.refresh_token).await;
    assert_eq!((status, error_of(&body)), (400, "invalid_grant"));
    assert_eq!(body["error_description"], "Refresh token has been revoked");
    // Both logins are dead now, their access tokens too (api.x.ai: 403 bad-credentials).
    let ours_rt = body_rt(&auth, &ours.refresh_token).await;
    assert_eq!(ours_rt, "invalid_grant");
    let r = get(&models, Some(&ours_at)).await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (403, Some("unauthenticated:bad-credentials"))
    );
    assert_eq!(get(&models, Some(&official.access_token)).await.status, 403);
    let stats = auth.stats();
    assert_eq!((stats.reuse_detections, stats.family_revocations), (1, 1));
    assert_eq!(stats.grants_revoked, 2);

    // Other families live on.
    assert_eq!(refresh(&auth, &stranger.refresh_token).await.0, 200);
    let (status, body) = refresh_as(&auth, "own-client", &own.refresh_token).await;
    assert_eq!(status, 200, "{body}");
    let claims = auth
        .verifier()
        .verify(body["access_token"].as_str().unwrap())
        .unwrap();
    assert_eq!(claims["client_id"], "own-client");
    // A token is redeemed only by the client it was issued to, and that is no reuse.
    let own2 = body["refresh_token"].as_str().unwrap().to_owned();
    let (status, body) = refresh(&auth, &own2).await;
    assert_eq!((status, error_of(&body)), (400, "invalid_grant"));
    assert_eq!(refresh_as(&auth, "own-client", &own2).await.0, 200);
    // A login revoked by its owner (logout) leaves the other login of the family alone.
    let first = auth.issue_grant(1, "hana");
    let second = auth.issue_grant(1, "hana");
    let r = post_form(
        &auth.revocation_endpoint(),
        &[
            ("token", second.refresh_token.as_str()),
            ("client_id", auth.client_id()),
        ],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(refresh(&auth, &first.refresh_token).await.0, 200);
    assert_eq!(auth.stats().family_revocations, 1);
    // An unknown client is still refused.
    let (status, body) = refresh_as(&auth, "nobody", &own2).await;
    assert_eq!((status, error_of(&body)), (401, "invalid_client"));
}

/// The error code of refreshing with this token.
async fn body_rt(auth: &AuthHandle, refresh_token: &str) -> String {
    error_of(&refresh(auth, refresh_token).await.1).to_owned()
}

#[tokio::test]
async fn per_login_families_leave_a_second_login_alone() {
    let auth = AuthServer::start(AuthConfig {
        refresh_family: RefreshFamily::Grant,
        ..fast()
    })
    .await
    .unwrap();
    let a = auth.issue_grant(1, "erin");
    let b = auth.issue_grant(1, "erin");
    let (status, body) = refresh(&auth, &a.refresh_token).await;
    assert_eq!(status, 200);
    assert_eq!(refresh(&auth, &b.refresh_token).await.0, 200);
    let a2 = body["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(refresh(&auth, &a2).await.0, 200);
    // Reuse still kills its own login only.
    assert_eq!(body_rt(&auth, &a.refresh_token).await, "invalid_grant");
    assert_eq!(auth.stats().family_revocations, 0);
    assert_eq!(auth.stats().grants_revoked, 1);
}

/// Transient refresh failures (§1.6: everything but invalid_grant / invalid_client is
/// retried by xAI's CLI) consume nothing, and hit refreshes only.
#[tokio::test]
async fn transient_refresh_failures_consume_nothing_and_spare_device_polls() {
    let auth = AuthServer::start(fast()).await.unwrap();
    let grant = auth.issue_grant(3, "gail");
    let failures = [
        (RefreshFailure::Unavailable, 503, None),
        (RefreshFailure::TooManyRequests, 429, None),
        (
            RefreshFailure::TemporarilyUnavailable,
            503,
            Some("temporarily_unavailable"),
        ),
        (RefreshFailure::ServerError, 500, Some("server_error")),
    ];
    for (failure, _, _) in failures {
        auth.fail_refreshes(1, failure);
    }
    // A device-code poll passes the queued refresh faults by.
    let (device_code, _) = start_device(&auth).await;
    assert_eq!(
        poll(&auth, &device_code).await.1["error"],
        "authorization_pending"
    );
    assert_eq!(auth.pending_faults(), 4);
    for (failure, status, code) in failures {
        let r = post_form(
            &auth.token_endpoint(),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &grant.refresh_token),
                ("client_id", auth.client_id()),
            ],
        )
        .await;
        assert_eq!(r.status, status, "{failure:?}");
        match code {
            Some(code) => assert_eq!(r.json()["error"], code),
            None => assert!(
                serde_json::from_slice::<Value>(r.body.as_ref().unwrap())
                    .ok()
                    .and_then(|b| b.get("error").cloned())
                    .is_none(),
                "{failure:?} carries no OAuth error code"
            ),
        }
        if failure == RefreshFailure::TooManyRequests {
            assert_eq!(r.header("retry-after"), Some("1"));
        }
    }
    // N attempts of one kind, then the same refresh token still works.
    auth.fail_refreshes(2, RefreshFailure::TemporarilyUnavailable);
    assert_eq!(refresh(&auth, &grant.refresh_token).await.0, 503);
    assert_eq!(refresh(&auth, &grant.refresh_token).await.0, 503);
    let (status, body) = refresh(&auth, &grant.refresh_token).await;
    assert_eq!(status, 200, "{body}");
    let stats = auth.stats();
    assert_eq!((stats.refresh_redemptions, stats.reuse_detections), (1, 0));
    assert_eq!(stats.faults_served, 6);
    // A fault for the whole token endpoint still serves refreshes too.
    auth.push_fault(
        Route::Token,
        Fault::oauth_error(503, "temporarily_unavailable"),
    );
    let rt = body["refresh_token"].as_str().unwrap();
    assert_eq!(refresh(&auth, rt).await.0, 503);
    assert_eq!(refresh(&auth, rt).await.0, 200);
}
