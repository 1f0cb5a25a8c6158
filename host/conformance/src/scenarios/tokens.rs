//! The credential's life after login: refresh with rotation, single-flight refresh across
//! sessions, logout with revocation, and the refresh-and-retry of a rejected token.

use std::time::{Duration, Instant};

use provider_reference::{Fault, RefreshFailure, Route};

use crate::check::{Outcome, Step, check, expect_code, fail};
use crate::context::{Ctx, ask, echo, models_of, poll_until_connected, subject};
use provider_runtime::bindings::types::{ConnectionStatus, Lane};
use provider_runtime::{ErrorCode, Session};

/// How long a refresh may be coalesced with a login or refresh that happened just before
/// (single-flight across processes): the suite keeps asking for that long.
const COALESCE_DEADLINE: Duration = Duration::from_secs(10);
const RETRY_PAUSE: Duration = Duration::from_millis(250);
const CHAT: &str = "chat/completions";

/// Call `refresh` until the server redeemed one more refresh token than `base`.
async fn refresh_until_redeemed(
    ctx: &Ctx,
    session: &mut Session,
    base: u64,
) -> Outcome<ConnectionStatus> {
    let started = Instant::now();
    loop {
        let status = session.refresh().await.step("refresh")?;
        check!(
            status.connected,
            "refresh: expected connected, seen not connected"
        );
        let redeemed = ctx.auth.stats().refresh_redemptions - base;
        match redeemed {
            0 if started.elapsed() < COALESCE_DEADLINE => tokio::time::sleep(RETRY_PAUSE).await,
            0 => fail!(
                "refresh: expected a refresh-token redemption within {COALESCE_DEADLINE:?}, the server saw none"
            ),
            1 => return Ok(status),
            n => fail!("one refresh call: expected 1 redemption, the server saw {n}"),
        }
    }
}

/// The bearer of the newest request to the model API (kept in memory, never shown).
fn last_bearer(ctx: &Ctx) -> Option<String> {
    ctx.api
        .requests()
        .last()
        .and_then(|r| r.bearer().map(str::to_owned))
}

/// Refresh redeems the refresh token once, the rotated one is used next, and no refresh
/// token is ever presented twice (no reuse detection, no revoked grant).
pub async fn refresh_rotation(ctx: &mut Ctx) -> Outcome {
    let mut session = ctx.connected_session(2).await?;
    session
        .models(true, None)
        .await
        .step("models before refresh")?;
    let before = last_bearer(ctx);

    for round in 1..=2 {
        let base = ctx.auth.stats();
        let status = refresh_until_redeemed(ctx, &mut session, base.refresh_redemptions).await?;
        check!(
            status.tier == Some(2),
            "refresh {round}: expected tier 2 kept, seen {:?}",
            status.tier
        );
        let stats = ctx.auth.stats();
        check!(
            stats.reuse_detections == 0 && stats.grants_revoked == 0,
            "refresh {round}: expected no refresh-token reuse, the server detected {} reuses and revoked {} grants",
            stats.reuse_detections,
            stats.grants_revoked
        );
    }

    session
        .models(true, None)
        .await
        .step("models after refresh")?;
    let after = last_bearer(ctx);
    check!(
        before.is_some() && after.is_some() && before != after,
        "models after refresh: expected the new access token to be used, seen the old one"
    );
    check!(
        ctx.api.stats().unauthenticated == 0,
        "expected every API request to carry a valid token, the API refused {}",
        ctx.api.stats().unauthenticated
    );
    let presented: Vec<String> = ctx
        .auth
        .requests()
        .iter()
        .filter(|r| r.form_value("grant_type").as_deref() == Some("refresh_token"))
        .filter_map(|r| r.form_value("refresh_token"))
        .collect();
    let mut distinct = presented.clone();
    distinct.sort();
    distinct.dedup();
    check!(
        distinct.len() == presented.len(),
        "refresh: expected every refresh token presented once, {} of {} presentations reused a token",
        presented.len() - distinct.len(),
        presented.len()
    );
    Ok(())
}

/// Several sessions of one tenant refresh at once: exactly one redemption, all succeed.
pub async fn concurrent_refresh_single_flight(ctx: &mut Ctx) -> Outcome {
    let mut a = ctx.connected_session(3).await?;
    let mut b = ctx.session().await?;
    let mut c = ctx.session().await?;
    let mut d = ctx.session().await?;
    let started = Instant::now();
    loop {
        let base = ctx.auth.stats().refresh_redemptions;
        let (ra, rb, rc, rd) = tokio::join!(a.refresh(), b.refresh(), c.refresh(), d.refresh());
        for (i, r) in [ra, rb, rc, rd].into_iter().enumerate() {
            let status = r.step(&format!("concurrent refresh of session {}", i + 1))?;
            check!(
                status.connected && status.tier == Some(3),
                "concurrent refresh of session {}: expected connected at tier 3, seen connected={} tier={:?}",
                i + 1,
                status.connected,
                status.tier
            );
        }
        match ctx.auth.stats().refresh_redemptions - base {
            // Coalesced with the login just before: ask again.
            0 if started.elapsed() < COALESCE_DEADLINE => tokio::time::sleep(RETRY_PAUSE).await,
            0 => fail!(
                "4 concurrent refreshes: expected 1 redemption within {COALESCE_DEADLINE:?}, the server saw none"
            ),
            1 => break,
            n => fail!("4 concurrent refreshes: expected exactly 1 redemption, the server saw {n}"),
        }
    }
    let stats = ctx.auth.stats();
    check!(
        stats.reuse_detections == 0 && stats.grants_revoked == 0,
        "concurrent refresh: expected no refresh-token reuse, the server detected {} and revoked {} grants",
        stats.reuse_detections,
        stats.grants_revoked
    );
    for (i, s) in [&mut a, &mut b, &mut c, &mut d].into_iter().enumerate() {
        s.models(true, None)
            .await
            .step(&format!("models from session {} after the refresh", i + 1))?;
    }
    check!(
        ctx.api.stats().unauthenticated == 0,
        "after the concurrent refresh: expected every session's token accepted, the API refused {}",
        ctx.api.stats().unauthenticated
    );
    Ok(())
}

/// Logout revokes upstream, forgets the credentials and flushes the cached models: after
/// logging in again (same account, same tier), the models are fetched anew.
pub async fn logout_revokes(ctx: &mut Ctx) -> Outcome {
    let mut session = ctx.connected_session(1).await?;
    // Fill the model cache.
    session.models(false, None).await.step("models")?;
    let cached = session.status().await.step("status before logout")?;
    check!(
        !cached.models.is_empty(),
        "status before logout: expected the cached models, seen none"
    );
    let base = ctx.auth.stats();
    let report = session.logout().await.step("logout")?;
    check!(
        report.was_connected && report.revoked,
        "logout: expected was_connected and revoked, seen was_connected={} revoked={}",
        report.was_connected,
        report.revoked
    );
    let stats = ctx.auth.stats();
    check!(
        stats.revocation_requests == base.revocation_requests + 1,
        "logout: expected 1 revocation request, the server saw {}",
        stats.revocation_requests - base.revocation_requests
    );
    check!(
        stats.grants_revoked == base.grants_revoked + 1,
        "logout: expected the login's grant revoked (the refresh token revoked), the server revoked {}",
        stats.grants_revoked - base.grants_revoked
    );
    let status = session.status().await.step("status after logout")?;
    check!(
        !status.connected && status.tier.is_none() && status.models.is_empty(),
        "status after logout: expected not connected, no tier, no models; seen connected={} tier={:?} {} models",
        status.connected,
        status.tier,
        status.models.len()
    );
    let requests = ctx.api.stats().models_requests;
    expect_code(
        session.models(false, None).await,
        "not_connected",
        "models after logout",
    )?;
    check!(
        ctx.api.stats().models_requests == requests,
        "models after logout: expected no API request, the API saw one"
    );
    let again = session.logout().await.step("second logout")?;
    check!(
        !again.was_connected,
        "second logout: expected was_connected=false, seen true"
    );

    // The flush, observed: logged in again at the same tier, the models are not served
    // from the cache filled before logout. (A plugin that fetches them while logging in
    // may answer from that new cache; one way or the other the API sees a request.)
    let before_login = ctx.calls("models");
    let status = ctx.connect(&mut session, 1).await?;
    check!(
        status.connected && status.tier == Some(1),
        "login again after logout: expected connected with tier 1, seen connected={} tier={:?}",
        status.connected,
        status.tier
    );
    let at_login = ctx.calls("models");
    let list = session
        .models(false, None)
        .await
        .step("models after logging in again")?;
    let by_models = ctx.calls("models") - at_login;
    check!(
        ctx.calls("models") > before_login,
        "models after logout and a new login: expected a /models request (the cache flushed at logout), the API saw none and the answer was cached={}",
        list.cached
    );
    check!(
        by_models == 0 || !list.cached,
        "models after logout and a new login: the call sent {by_models} /models request(s), so expected cached=false, seen cached=true"
    );
    check!(
        !list.models.is_empty(),
        "models after logout and a new login: expected the tier's models, seen none"
    );
    Ok(())
}

/// A rejected token is refreshed once and the request retried once; rejected again, the
/// answer is `unauthorized` with no further attempts.
pub async fn unauthorized_refresh_retry(ctx: &mut Ctx) -> Outcome {
    let mut session = ctx.connected_session(1).await?;
    let list = session.models(false, None).await.step("models")?;
    let Some(model) = models_of(&list, Lane::ChatCompletions).into_iter().next() else {
        fail!("models: expected a chat-completions model at tier 1, seen none");
    };
    session
        .chat(&ask(&model.id, "before"))
        .await
        .step("chat before the token is refused")?;

    // Upstream invalidates the token: the next chat must refresh once and retry once.
    check!(
        ctx.api.deny_seen_tokens() > 0,
        "setup: expected the API to have seen a token"
    );
    let (auth0, api0, calls0) = (ctx.auth.stats(), ctx.api.stats(), ctx.calls(CHAT));
    let reply = session
        .chat(&ask(&model.id, "after refusal"))
        .await
        .step("chat with a refused token")?;
    check!(
        reply.content == echo("after refusal"),
        "chat with a refused token: expected {:?}, seen {:?}",
        echo("after refusal"),
        reply.content
    );
    let (auth1, api1, calls1) = (ctx.auth.stats(), ctx.api.stats(), ctx.calls(CHAT));
    check!(
        auth1.refresh_redemptions == auth0.refresh_redemptions + 1,
        "chat with a refused token: expected 1 refresh, the server saw {}",
        auth1.refresh_redemptions - auth0.refresh_redemptions
    );
    check!(
        calls1 == calls0 + 2 && api1.unauthenticated == api0.unauthenticated + 1,
        "chat with a refused token: expected 2 requests (refused, then retried), the API saw {} ({} refused)",
        calls1 - calls0,
        api1.unauthenticated - api0.unauthenticated
    );

    // Still refused after the refresh: `unauthorized`, no loop.
    ctx.api
        .push_fault(Route::ChatCompletions, Fault::unauthorized());
    ctx.api
        .push_fault(Route::ChatCompletions, Fault::unauthorized());
    ctx.api
        .push_fault(Route::ChatCompletions, Fault::unauthorized());
    let (auth1, calls1) = (ctx.auth.stats(), ctx.calls(CHAT));
    expect_code(
        session.chat(&ask(&model.id, "refused twice")).await,
        "unauthorized",
        "chat refused before and after a refresh",
    )?;
    ctx.api.clear_faults();
    let (auth2, calls2) = (ctx.auth.stats(), ctx.calls(CHAT));
    check!(
        calls2 == calls1 + 2,
        "chat refused before and after a refresh: expected exactly 2 requests, the API saw {}",
        calls2 - calls1
    );
    check!(
        auth2.refresh_redemptions == auth1.refresh_redemptions + 1,
        "chat refused before and after a refresh: expected exactly 1 refresh, the server saw {}",
        auth2.refresh_redemptions - auth1.refresh_redemptions
    );
    check!(
        auth2.reuse_detections == 0,
        "expected no refresh-token reuse, the server detected {}",
        auth2.reuse_detections
    );
    Ok(())
}

/// Lifetime of the access tokens in the scenarios that call with an expired one.
pub(crate) const SHORT_TOKEN_TTL: Duration = Duration::from_secs(3);
/// How long to wait for a token of [`SHORT_TOKEN_TTL`] to have expired.
const PAST_EXPIRY: Duration = Duration::from_millis(3_500);
/// Another tenant of the same runtime: a second tool on the same machine.
const OTHER_TENANT: &str = "conformance-other-tool";

/// A refresh that fails transiently (5xx, 429: reference doc §1.6, where only
/// `invalid_grant` and `invalid_client` are final) is retried: two failures, then a call
/// with an expired token succeeds after one redemption with the login kept. Failing every
/// time, the call ends in `upstream_unavailable` after a bounded number of attempts and
/// the login is still stored (status connected once the token endpoint recovers).
pub async fn transient_refresh_failures(ctx: &mut Ctx) -> Outcome {
    let mut session = ctx.connected_session(1).await?;
    let list = session.models(false, None).await.step("models")?;
    let Some(model) = models_of(&list, Lane::ChatCompletions).into_iter().next() else {
        fail!("models: expected a chat-completions model at tier 1, seen none");
    };

    tokio::time::sleep(PAST_EXPIRY).await;
    ctx.auth.fail_refreshes(1, RefreshFailure::ServerError);
    ctx.auth.fail_refreshes(1, RefreshFailure::TooManyRequests);
    let base = ctx.auth.stats();
    let what = "chat with an expired token while the token endpoint fails twice (500, 429)";
    let reply = session
        .chat(&ask(&model.id, "after transient failures"))
        .await
        .step(what)?;
    let stats = ctx.auth.stats();
    check!(
        reply.content == echo("after transient failures"),
        "{what}: expected {:?}, seen {:?}",
        echo("after transient failures"),
        reply.content
    );
    check!(
        stats.faults_served - base.faults_served == 2 && ctx.auth.pending_faults() == 0,
        "{what}: expected both failures met and the refresh retried, the token endpoint served {} of 2",
        stats.faults_served - base.faults_served
    );
    check!(
        stats.refresh_redemptions - base.refresh_redemptions == 1,
        "{what}: expected exactly 1 redemption, the server saw {}",
        stats.refresh_redemptions - base.refresh_redemptions
    );
    check!(
        stats.reuse_detections == 0 && stats.grants_revoked == 0,
        "{what}: expected no refresh-token reuse, the server detected {} and revoked {} grants",
        stats.reuse_detections,
        stats.grants_revoked
    );

    // Failing every time: a transient error, the login kept.
    tokio::time::sleep(PAST_EXPIRY).await;
    ctx.auth.fail_refreshes(20, RefreshFailure::Unavailable);
    let base = ctx.auth.stats();
    let what = "chat with an expired token while every refresh fails with 503";
    let result = session.chat(&ask(&model.id, "refresh keeps failing")).await;
    let stats = ctx.auth.stats();
    ctx.auth.clear_faults();
    expect_code(result, "upstream_unavailable", what)?;
    let attempts = stats.faults_served - base.faults_served;
    check!(
        (2..=5).contains(&attempts),
        "{what}: expected the refresh retried a bounded number of times (2 to 5 attempts), the token endpoint saw {attempts}"
    );
    check!(
        stats.refresh_redemptions == base.refresh_redemptions
            && stats.grants_revoked == base.grants_revoked,
        "{what}: expected nothing redeemed or revoked, the server saw {} redemption(s), {} revocation(s)",
        stats.refresh_redemptions - base.refresh_redemptions,
        stats.grants_revoked - base.grants_revoked
    );
    let status = session
        .status()
        .await
        .step("status once the token endpoint recovered")?;
    check!(
        status.connected && status.tier == Some(1),
        "status after refreshes that failed transiently: expected the login kept (connected at tier 1), seen connected={} tier={:?}",
        status.connected,
        status.tier
    );
    let reply = session
        .chat(&ask(&model.id, "recovered"))
        .await
        .step("chat once the token endpoint recovered")?;
    check!(
        reply.content == echo("recovered"),
        "chat once the token endpoint recovered: expected {:?}, seen {:?}",
        echo("recovered"),
        reply.content
    );
    Ok(())
}

/// Refresh tokens form one family per (client id, account) (reference doc §1.6): a second
/// login of the same account under the same client id (another tool, such as xAI's own
/// CLI) moves the family on, so the first login's next refresh presents a superseded
/// token, the family is revoked and the token endpoint answers `invalid_grant`. That is
/// `unauthorized` saying that another client with the same client id may have rotated
/// it; `status` then says not connected, nothing is redeemed again, and a new login
/// connects.
pub async fn family_revocation(ctx: &mut Ctx) -> Outcome {
    let mut first = ctx.connected_session(1).await?;
    let list = first
        .models(true, None)
        .await
        .step("models of the first login")?;
    let Some(model) = models_of(&list, Lane::ChatCompletions).into_iter().next() else {
        fail!("models: expected a chat-completions model at tier 1, seen none");
    };

    let mut other = ctx
        .runtime
        .session(OTHER_TENANT, &ctx.config)
        .await
        .step("opening a session of a second tenant")?;
    let prompt = other.start().await.step("second login: start")?;
    ctx.auth
        .approve(&prompt.user_code, 1, &subject(1))
        .step("approving the second login of the same account")?;
    let status = poll_until_connected(&mut other, &prompt.pending_id).await?;
    check!(
        status.connected,
        "second login of the same account: expected connected"
    );
    check!(
        ctx.auth.stats().family_revocations == 0,
        "second login: expected no family revoked yet, the server revoked {}",
        ctx.auth.stats().family_revocations
    );

    // The first login's next refresh (past any coalescing of a refresh just after login).
    let base = ctx.auth.stats();
    let started = Instant::now();
    let what = "refresh of the first login after a second login of the same account and client id";
    let err = loop {
        match first.refresh().await {
            Err(e) => break e,
            Ok(_)
                if ctx.auth.stats().token_requests_refresh == base.token_requests_refresh
                    && started.elapsed() < COALESCE_DEADLINE =>
            {
                tokio::time::sleep(RETRY_PAUSE).await
            }
            Ok(s) => fail!(
                "{what}: expected invalid_grant from the token endpoint (the family moved on), seen success (connected={})",
                s.connected
            ),
        }
    };
    check!(
        ctx.auth.stats().family_revocations > base.family_revocations,
        "{what}: expected the reference to revoke the (client id, account) family, it did not"
    );
    let err = expect_code(Err::<(), _>(err), "unauthorized", what)?;
    let text = format!("{err} {}", err.action()).to_lowercase();
    check!(
        (text.contains("client id") || text.contains("client_id") || text.contains("client-id"))
            && text.contains("other"),
        "{what}: expected the error to say that another client with the same client id may have rotated the login, seen {:?}",
        err.to_string()
    );

    let status = first
        .status()
        .await
        .step("status once the revocation is known")?;
    check!(
        !status.connected,
        "status once a call learned the login was revoked: expected not connected, seen connected"
    );
    check!(
        status.routes.iter().any(|r| r.name == "api" && !r.usable),
        "status once the login was revoked: expected route api not usable, seen {:?}",
        status.routes
    );
    let presented = ctx.auth.stats().token_requests_refresh;
    let result = first.chat(&ask(&model.id, "revoked")).await;
    match &result {
        Err(e) if matches!(e.code(), ErrorCode::Unauthorized | ErrorCode::NotConnected) => {}
        _ => {
            expect_code(result, "unauthorized", "chat with the revoked login")?;
        }
    }
    check!(
        ctx.auth.stats().token_requests_refresh == presented,
        "chat with the revoked login: expected the dead refresh token not presented again, the server saw {} refresh request(s)",
        ctx.auth.stats().token_requests_refresh - presented
    );

    let status = ctx.connect(&mut first, 1).await?;
    check!(
        status.connected
            && first
                .status()
                .await
                .step("status after a new login")?
                .connected,
        "a new login after the revocation: expected connected"
    );
    Ok(())
}
