//! Upstream refusals and failures, each mapped to the one typed error that says what to
//! do: the 403 variants, 429 with `Retry-After`, 5xx with bounded retries, and hostile
//! bodies that must never crash the plugin.

use std::time::{Duration, Instant};

use provider_reference::{Fault, ModelKind, QuotaFault, Route, random_api_key};

use crate::check::{Outcome, Step, check, describe, expect_code, expect_typed, fail};
use crate::context::{Ctx, ask, echo};
use crate::scenarios::chat::{drain, model_in_lane};
use crate::scenarios::routes::{
    API, KEY, RAIL, names_alternatives, no_header_refusals, rail_inference, rail_model, with_rail,
};
use provider_runtime::bindings::types::{ChatRequest, Lane, ProviderError};
use provider_runtime::{HostError, Session};

const CHAT: &str = "chat/completions";
/// The least wait the suite accepts before each retry of a 5xx answer (a backoff, not a
/// hammering loop). Measured over the whole call: the recorded requests carry no time.
const MIN_BACKOFF_PER_RETRY: Duration = Duration::from_millis(100);

/// Check that a call which made `requests` requests (so `requests - 1` retries) took at
/// least [`MIN_BACKOFF_PER_RETRY`] per retry.
fn waited_between_retries(what: &str, requests: usize, took: Duration) -> Outcome {
    let retries = requests.saturating_sub(1);
    let least = MIN_BACKOFF_PER_RETRY * u32::try_from(retries).unwrap_or(u32::MAX);
    check!(
        took >= least,
        "{what}: expected a backoff before each retry (at least {} ms per retry, {} ms for {retries} retries), the whole call took {} ms",
        MIN_BACKOFF_PER_RETRY.as_millis(),
        least.as_millis(),
        took.as_millis()
    );
    Ok(())
}

/// Queue `fault` for the next chat request, send one chat to `model`, and expect the
/// error `code` after exactly one request (nothing retried).
async fn one_refusal(
    ctx: &Ctx,
    session: &mut Session,
    model: &str,
    fault: Fault,
    code: &str,
    what: &str,
) -> Outcome {
    ctx.api.push_fault(Route::ChatCompletions, fault);
    let (calls, redemptions) = (ctx.calls(CHAT), ctx.auth.stats().refresh_redemptions);
    let result = session.chat(&ask(model, what)).await;
    ctx.api.clear_faults();
    expect_code(result, code, what)?;
    let sent = ctx.calls(CHAT) - calls;
    check!(
        sent == 1,
        "{what}: expected exactly 1 request (no retry), the API saw {sent}"
    );
    check!(
        ctx.auth.stats().refresh_redemptions == redemptions,
        "{what}: expected no refresh (logging in again does not help), the server saw one"
    );
    Ok(())
}

/// 403 has three meanings: the tier gate (`tier_denied`), a spending limit
/// (`quota_exhausted`, also as 402), and bad credentials (refresh, then retry).
pub async fn forbidden_variants(ctx: &mut Ctx) -> Outcome {
    let mut session = ctx.connected_session(1).await?;
    let model = model_in_lane(&mut session, Lane::ChatCompletions).await?;

    // The real tier gate is the rail's (the developer API bills its own pool whatever the
    // tier: reference doc section 4): a free account asks the rail for a model only paid
    // tiers get.
    let Some(locked) = provider_reference::rail_catalogue()
        .into_iter()
        .find(|m| !m.tiers.includes(0) && matches!(m.kind, ModelKind::Chat | ModelKind::Reasoning))
        .map(|m| m.id)
    else {
        fail!("setup: expected a rail model that free accounts do not get");
    };
    let rail_config = ctx
        .config
        .clone()
        .set("subscription-base", ctx.api.subscription_base())
        .enable_route("subscription");
    let mut free = ctx.session_with(&rail_config).await?;
    ctx.connect(&mut free, 0).await?;
    let mut locked_ask = ask(&locked, "locked");
    locked_ask.route = Some("subscription".into());
    let denied = ctx.api.rail_stats().tier_denied;
    expect_code(
        free.chat(&locked_ask).await,
        "tier_denied",
        &format!("a free account's chat with {locked} on the rail"),
    )?;
    check!(
        ctx.api.rail_stats().tier_denied == denied + 1,
        "chat above the tier: expected the rail's tier gate to refuse 1 request, it refused {}",
        ctx.api.rail_stats().tier_denied - denied
    );

    one_refusal(
        ctx,
        &mut session,
        &model.id,
        Fault::tier_denied(),
        "tier_denied",
        "chat refused with 403 permission denied",
    )
    .await?;
    one_refusal(
        ctx,
        &mut session,
        &model.id,
        Fault::spending_limit(403),
        "quota_exhausted",
        "chat refused with 403 spending limit",
    )
    .await?;
    one_refusal(
        ctx,
        &mut session,
        &model.id,
        Fault::spending_limit(402),
        "quota_exhausted",
        "chat refused with 402 spending limit",
    )
    .await?;

    // Bad credentials: refresh once, retry once, succeed.
    ctx.api
        .push_fault(Route::ChatCompletions, Fault::bad_credentials());
    let (calls, redemptions) = (ctx.calls(CHAT), ctx.auth.stats().refresh_redemptions);
    let reply = session
        .chat(&ask(&model.id, "bad credentials"))
        .await
        .step("chat refused with 403 bad-credentials")?;
    check!(
        reply.content == echo("bad credentials"),
        "chat after 403 bad-credentials: expected {:?}, seen {:?}",
        echo("bad credentials"),
        reply.content
    );
    check!(
        ctx.calls(CHAT) - calls == 2 && ctx.auth.stats().refresh_redemptions == redemptions + 1,
        "chat after 403 bad-credentials: expected 1 refresh and 2 requests, seen {} refreshes and {} requests",
        ctx.auth.stats().refresh_redemptions - redemptions,
        ctx.calls(CHAT) - calls
    );
    Ok(())
}

/// 429 is `rate_limited` with the server's `Retry-After`, and is not retried silently.
pub async fn rate_limited_retry_after(ctx: &mut Ctx) -> Outcome {
    let mut session = ctx.connected_session(1).await?;
    let model = model_in_lane(&mut session, Lane::ChatCompletions).await?;
    for (retry_after, what) in [
        (Some(30), "chat answered 429 with Retry-After: 30"),
        (None, "chat answered 429 without Retry-After"),
    ] {
        ctx.api
            .push_fault(Route::ChatCompletions, Fault::rate_limited(retry_after));
        let calls = ctx.calls(CHAT);
        let result = session.chat(&ask(&model.id, what)).await;
        ctx.api.clear_faults();
        let e = expect_code(result, "rate_limited", what)?;
        check!(
            e.retry_after_seconds() == retry_after,
            "{what}: expected retry_after_seconds {retry_after:?}, seen {:?}",
            e.retry_after_seconds()
        );
        check!(
            ctx.calls(CHAT) - calls == 1,
            "{what}: expected 1 request (no silent retry), the API saw {}",
            ctx.calls(CHAT) - calls
        );
    }

    ctx.api
        .push_fault(Route::ChatCompletions, Fault::rate_limited(Some(7)));
    let result = session
        .open_chat_stream(&ask(&model.id, "stream while limited"))
        .await;
    ctx.api.clear_faults();
    let e = expect_code(
        result,
        "rate_limited",
        "stream answered 429 with Retry-After: 7",
    )?;
    check!(
        e.retry_after_seconds() == Some(7),
        "stream answered 429: expected retry_after_seconds 7, seen {:?}",
        e.retry_after_seconds()
    );

    session
        .chat(&ask(&model.id, "after the limit"))
        .await
        .step("chat once the limit is lifted")?;
    Ok(())
}

/// 5xx answers are retried a bounded number of times, with a wait before each retry:
/// transient ones end in success, persistent ones in `upstream_unavailable`.
pub async fn upstream_5xx_backoff(ctx: &mut Ctx) -> Outcome {
    let mut session = ctx.connected_session(1).await?;
    let model = model_in_lane(&mut session, Lane::ChatCompletions).await?;

    ctx.api
        .push_fault(Route::ChatCompletions, Fault::server_error(500));
    ctx.api
        .push_fault(Route::ChatCompletions, Fault::server_error(500));
    let calls = ctx.calls(CHAT);
    let started = Instant::now();
    let reply = session
        .chat(&ask(&model.id, "after two 500s"))
        .await
        .step("chat answered 500 twice, then normally")?;
    let took = started.elapsed();
    check!(
        reply.content == echo("after two 500s"),
        "chat after two 500s: expected {:?}, seen {:?}",
        echo("after two 500s"),
        reply.content
    );
    check!(
        ctx.calls(CHAT) - calls == 3,
        "chat after two 500s: expected 3 requests (two retries), the API saw {}",
        ctx.calls(CHAT) - calls
    );
    waited_between_retries("chat after two 500s", ctx.calls(CHAT) - calls, took)?;

    for _ in 0..10 {
        ctx.api
            .push_fault(Route::ChatCompletions, Fault::server_error(503));
    }
    let calls = ctx.calls(CHAT);
    let started = Instant::now();
    let result = session.chat(&ask(&model.id, "persistent 503")).await;
    let took = started.elapsed();
    ctx.api.clear_faults();
    expect_code(
        result,
        "upstream_unavailable",
        "chat answered 503 every time",
    )?;
    let sent = ctx.calls(CHAT) - calls;
    check!(
        (2..=5).contains(&sent),
        "chat answered 503 every time: expected a few bounded retries (2 to 5 requests), the API saw {sent}"
    );
    waited_between_retries("chat answered 503 every time", sent, took)?;

    session
        .chat(&ask(&model.id, "recovered"))
        .await
        .step("chat once upstream recovered")?;
    Ok(())
}

/// Oversized, malformed and HTML bodies, in every place a body is read, end in a typed
/// error (`invalid_response` where the body is simply not JSON), never a trap; the
/// session answers afterwards.
pub async fn hostile_bodies(ctx: &mut Ctx) -> Outcome {
    let mut session = ctx.session().await?;
    ctx.auth
        .push_fault(provider_reference::Route::Discovery, Fault::html_page(200));
    expect_typed(
        session.start().await,
        "start with an HTML page as discovery document",
    )?;
    ctx.auth.clear_faults();
    let status = ctx.connect(&mut session, 4).await?;
    check!(
        status.connected,
        "login after a hostile discovery answer: expected connected"
    );
    let model = model_in_lane(&mut session, Lane::ChatCompletions).await?;

    let whole: [(&str, Route, Fault, Option<&str>); 6] = [
        (
            "models answered with malformed JSON",
            Route::Models,
            Fault::malformed_json(),
            Some("invalid_response"),
        ),
        (
            "chat answered with malformed JSON",
            Route::ChatCompletions,
            Fault::malformed_json(),
            Some("invalid_response"),
        ),
        (
            "chat answered with an HTML page (200)",
            Route::ChatCompletions,
            Fault::html_page(200),
            Some("invalid_response"),
        ),
        (
            "chat answered with an HTML page (403)",
            Route::ChatCompletions,
            Fault::html_page(403),
            None,
        ),
        (
            "chat answered with a 20 MiB body",
            Route::ChatCompletions,
            Fault::Oversized {
                bytes: 20 * 1024 * 1024,
            },
            None,
        ),
        (
            "chat answered with a 200 and JSON of the wrong shape",
            Route::ChatCompletions,
            Fault::json(200, &serde_json::json!({"choices": "none", "id": 7})),
            Some("invalid_response"),
        ),
    ];
    for (what, route, fault, code) in whole {
        ctx.api.push_fault(route, fault);
        let result = match route {
            Route::Models => session.models(true, None).await.map(|_| ()),
            _ => session.chat(&ask(&model.id, what)).await.map(|_| ()),
        };
        ctx.api.clear_faults();
        match code {
            Some(code) => {
                expect_code(result, code, what)?;
            }
            None => {
                expect_typed(result, what)?;
            }
        }
        answers_after(&mut session, what).await?;
    }

    let streams: [(&str, Fault); 3] = [
        (
            "a stream of one 5 MiB event",
            Fault::Oversized {
                bytes: 5 * 1024 * 1024,
            },
        ),
        (
            "a stream of malformed events",
            Fault::raw(
                200,
                "text/event-stream",
                "data: {\"choices\": [{\n\ndata: [\n\n",
            ),
        ),
        ("a stream answered with an HTML page", Fault::html_page(200)),
    ];
    for (what, fault) in streams {
        ctx.api.push_fault(Route::ChatCompletions, fault);
        match session.open_chat_stream(&ask(&model.id, what)).await {
            Err(e) => {
                expect_typed::<()>(Err(e), what)?;
            }
            Ok(stream) => {
                let (streamed, error) = drain(&mut session, &stream).await;
                let _ = session.close_chat_stream(stream).await;
                match error {
                    Some(e) => {
                        expect_typed::<()>(Err(e), what)?;
                    }
                    None => fail!(
                        "{what}: expected a typed error, seen a normal end after {} chunks",
                        streamed.chunks
                    ),
                }
            }
        }
        ctx.api.clear_faults();
        answers_after(&mut session, what).await?;
    }
    Ok(())
}

/// The session still answers `status`, connected, after `what`.
async fn answers_after(session: &mut Session, what: &str) -> Outcome {
    match session.status().await {
        Ok(s) if s.connected => Ok(()),
        Ok(_) => fail!("status after {what}: expected still connected, seen not connected"),
        Err(e) => fail!(
            "status after {what}: expected an answer, seen {}",
            describe(&e)
        ),
    }
}

/// Whether a refusal's `retry_after_seconds` is the one expected.
type WaitCheck = fn(Option<u32>) -> bool;

/// The reference route a chat of `lane` goes to.
fn route_of(lane: Lane) -> Route {
    match lane {
        Lane::Responses => Route::Responses,
        _ => Route::ChatCompletions,
    }
}

/// The refusal a chat meets on the rail after queuing `faults` there: the error `code`
/// after exactly one request. The rail's queue is cleared afterwards.
async fn rail_refusal(
    ctx: &Ctx,
    session: &mut Session,
    request: &ChatRequest,
    faults: &[Fault],
    code: &str,
    what: &str,
) -> Outcome<HostError> {
    let route = route_of(request.lane.unwrap_or(Lane::ChatCompletions));
    for f in faults {
        ctx.api.push_rail_fault(route, f.clone());
    }
    let sent = rail_inference(ctx);
    let result = session.chat(request).await;
    ctx.api.clear_rail_faults();
    let err = expect_code(result, code, what)?;
    check!(
        rail_inference(ctx) - sent == 1,
        "{what}: expected exactly 1 request (no retry), the rail saw {}",
        rail_inference(ctx) - sent
    );
    Ok(err)
}

/// The live service's refusals as xAI's CLI reads them (reference doc §2.6): a 429 that
/// carries a quota (the `[WKE=…]` credits block, free usage spent) and the rail's 402 are
/// `quota_exhausted` naming the other routes, not a rate limit; `x-should-retry: false`
/// makes even a 503 final (one request) while `true` changes nothing; `Retry-After` is
/// read as integer seconds (an HTTP date is none, a long wait may be capped at 120 s).
pub async fn quota_429s_and_should_retry(ctx: &mut Ctx) -> Outcome {
    let key = random_api_key();
    ctx.api.add_api_key(&key, 3u32);
    let mut session = ctx.session_with(&with_rail(ctx)).await?;
    ctx.connect(&mut session, 3).await?;
    session.set_api_key(&key).await.step("set-api-key")?;
    let rail = rail_model(&mut session, false, "quota refusals").await?;
    let mut rail_ask = ask(&rail.id, "on the rail");
    rail_ask.route = Some(RAIL.into());
    rail_ask.lane = Some(rail.lane);
    let api = model_in_lane(&mut session, Lane::ChatCompletions).await?;

    for (fault, what) in [
        (
            QuotaFault::CreditsExhaustedWke,
            "the rail's 429 [WKE=personal-team-blocked:spending-limit]",
        ),
        (
            QuotaFault::FREE_USAGE_429,
            "the rail's 429 subscription:free-usage-exhausted",
        ),
        (
            QuotaFault::UsageBalanceExhausted,
            "the rail's 402 usage balance exhausted",
        ),
    ] {
        ctx.api.set_rail_quota_fault(Some(fault));
        let sent = rail_inference(ctx);
        let result = session.chat(&rail_ask).await;
        ctx.api.set_rail_quota_fault(None);
        let err = expect_code(result, "quota_exhausted", what)?;
        check!(
            rail_inference(ctx) - sent == 1,
            "{what}: expected exactly 1 request (a quota is not retried), the rail saw {}",
            rail_inference(ctx) - sent
        );
        check!(
            matches!(&err, HostError::Provider(ProviderError::QuotaExhausted(q)) if q.route == RAIL),
            "{what}: expected the refusal to name route {RAIL:?}, seen {}",
            describe(&err)
        );
        names_alternatives(&err, RAIL, &[API, KEY], what)?;
    }

    // The same well-known code on the developer API.
    let what = "the API's 429 [WKE=personal-team-blocked:spending-limit]";
    ctx.api
        .push_fault(Route::ChatCompletions, Fault::credits_exhausted_wke());
    let calls = ctx.calls(CHAT);
    let result = session.chat(&ask(&api.id, what)).await;
    ctx.api.clear_faults();
    let err = expect_code(result, "quota_exhausted", what)?;
    check!(
        ctx.calls(CHAT) - calls == 1,
        "{what}: expected exactly 1 request, the API saw {}",
        ctx.calls(CHAT) - calls
    );
    names_alternatives(&err, API, &[RAIL, KEY], what)?;

    // x-should-retry: false is final, whatever the status.
    let no_retry = [
        Fault::unavailable_no_retry(),
        Fault::unavailable_no_retry(),
        Fault::unavailable_no_retry(),
    ];
    rail_refusal(
        ctx,
        &mut session,
        &rail_ask,
        &no_retry,
        "upstream_unavailable",
        "the rail's 503 with x-should-retry: false",
    )
    .await?;
    let what = "the API's 503 with x-should-retry: false";
    for f in &no_retry {
        ctx.api.push_fault(Route::ChatCompletions, f.clone());
    }
    let calls = ctx.calls(CHAT);
    let result = session.chat(&ask(&api.id, what)).await;
    ctx.api.clear_faults();
    expect_code(result, "upstream_unavailable", what)?;
    check!(
        ctx.calls(CHAT) - calls == 1,
        "{what}: expected exactly 1 request (no retry), the API saw {}",
        ctx.calls(CHAT) - calls
    );
    // x-should-retry: true changes nothing: a 503 is retried as before.
    let what = "the API's 503 with x-should-retry: true, then an answer";
    ctx.api.push_fault(
        Route::ChatCompletions,
        Fault::server_error(503).with_should_retry(true),
    );
    let calls = ctx.calls(CHAT);
    let reply = session.chat(&ask(&api.id, what)).await.step(what)?;
    check!(
        reply.content == echo(what) && ctx.calls(CHAT) - calls == 2,
        "{what}: expected the answer after one retry (2 requests), seen {:?} after {} request(s)",
        reply.content,
        ctx.calls(CHAT) - calls
    );

    // Retry-After: integer seconds only; a long wait may be capped (xAI's CLI: 120 s).
    let cases: [(Fault, &str, WaitCheck, &str); 3] = [
        (
            Fault::rate_limited(Some(7)),
            "the rail's 429 with Retry-After: 7",
            |s| s == Some(7),
            "7",
        ),
        (
            Fault::rate_limited(None).with_header("retry-after", "Wed, 21 Oct 2026 07:28:00 GMT"),
            "the rail's 429 with an HTTP-date Retry-After",
            |s| s.is_none(),
            "none (only integer seconds are read)",
        ),
        (
            Fault::rate_limited(Some(600)),
            "the rail's 429 with Retry-After: 600",
            |s| s.is_some_and(|s| (120..=600).contains(&s)),
            "600, or capped at no less than 120",
        ),
    ];
    for (fault, what, ok, want) in cases {
        let err =
            rail_refusal(ctx, &mut session, &rail_ask, &[fault], "rate_limited", what).await?;
        check!(
            ok(err.retry_after_seconds()),
            "{what}: expected retry_after_seconds {want}, seen {:?}",
            err.retry_after_seconds()
        );
        names_alternatives(&err, RAIL, &[API, KEY], what)?;
    }
    no_header_refusals(ctx, "quota 429s and x-should-retry")
}
