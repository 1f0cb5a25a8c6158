//! Ways to pay, picked per request (the routes profile: a plugin names them `api`,
//! `subscription` and `api-key`, and reads the subscription rail's base from the key
//! `subscription-base`): the subscription rail with its headers and stream-only rules, an
//! API key that never touches the login (and vice versa), the per-request override and its
//! contradictions, quota errors that name the alternatives, and what is left of a quota.

use provider_reference::{Billing, CredentialScope, QuotaFault, random_api_key};
use provider_runtime::bindings::types::{ChatReply, ChatRequest, Lane, Model, ProviderError};
use provider_runtime::config::HostConfig;
use provider_runtime::error::HostError;
use provider_runtime::runtime::Session;

use crate::check::{Outcome, Step, check, describe, expect_code, fail};
use crate::context::{Ctx, ask, echo, models_of};
use crate::scenarios::agents::streamed;

const API: &str = "api";
const RAIL: &str = "subscription";
const KEY: &str = "api-key";

/// The scenario's configuration with the rail pointed at the reference rail and enabled.
fn with_rail(ctx: &Ctx) -> HostConfig {
    ctx.config
        .clone()
        .set("subscription-base", ctx.api.subscription_base())
        .enable_route(RAIL)
}

/// The model prefix the plugin's manifest gives `route`.
async fn prefix(ctx: &Ctx, route: &str) -> Outcome<String> {
    let manifest = ctx.runtime.manifest().await.step("manifest")?;
    match manifest.routes.iter().find(|r| r.name == route) {
        Some(r) => Ok(r.model_prefix.clone()),
        None => fail!(
            "manifest: expected a route {route:?} (the routes profile), seen {:?}",
            manifest.routes.iter().map(|r| &r.name).collect::<Vec<_>>()
        ),
    }
}

/// A chat-completions model listed for `route`, checking that the list is the route's.
async fn chat_model(session: &mut Session, ctx: &Ctx, route: &str) -> Outcome<Model> {
    let list = session
        .models(false, Some(route))
        .await
        .step(&format!("models of route {route}"))?;
    let want = prefix(ctx, route).await?;
    check!(
        list.route == route,
        "models of route {route}: expected the list to say route {route:?}, seen {:?}",
        list.route
    );
    for m in &list.models {
        check!(
            m.route == route && m.id.starts_with(&want),
            "models of route {route}: expected every model of route {route:?} with prefix {want:?}, seen {} of route {:?}",
            m.id,
            m.route
        );
    }
    match models_of(&list, Lane::ChatCompletions).into_iter().next() {
        Some(m) => Ok(m),
        None => fail!("models of route {route}: expected a chat-completions model, seen none"),
    }
}

/// Sends `request` as `step` and checks that route `route` served it.
async fn served_by(
    session: &mut Session,
    request: &ChatRequest,
    route: &str,
    step: &str,
) -> Outcome<ChatReply> {
    let reply = session.chat(request).await.step(step)?;
    check!(
        reply.route == route,
        "{step}: expected route {route:?} to serve it, served by {:?}",
        reply.route
    );
    Ok(reply)
}

fn no_header_refusals(ctx: &Ctx, what: &str) -> Outcome {
    let denied = ctx.api.rail_stats().permission_denied;
    check!(
        denied == 0,
        "{what}: the subscription rail refused {denied} request(s) for missing headers (a plugin bug: every rail request must carry them)"
    );
    Ok(())
}

/// The rail: models, a whole chat (streamed upstream and assembled), a stream, its
/// credits; nothing reaches the developer API, and every request carries the headers.
pub async fn subscription_rail(ctx: &mut Ctx) -> Outcome {
    let config = with_rail(ctx);
    let mut session = ctx.session_with(&config).await?;
    ctx.connect(&mut session, 3).await?;
    let api_chats = ctx.calls("chat/completions");
    let model = chat_model(&mut session, ctx, RAIL).await?;

    let reply = served_by(
        &mut session,
        &ask(&model.id, "rail whole"),
        RAIL,
        "chat on the subscription route",
    )
    .await?;
    check!(
        reply.content == echo("rail whole"),
        "chat on the subscription route: expected {:?}, seen {:?}",
        echo("rail whole"),
        reply.content
    );
    let out = streamed(
        &mut session,
        &ask(&model.id, "rail streamed"),
        "a stream on the subscription route",
    )
    .await?;
    check!(
        out.text == echo("rail streamed"),
        "stream on the subscription route: expected {:?}, seen {:?}",
        echo("rail streamed"),
        out.text
    );
    let rail = ctx.api.rail_stats();
    check!(
        rail.chat_completions >= 2 && rail.streams >= 2,
        "subscription route: expected both turns streamed from the rail, it saw {} chat request(s), {} stream(s)",
        rail.chat_completions,
        rail.streams
    );
    check!(
        ctx.calls("chat/completions") == api_chats,
        "subscription route: expected nothing sent to the developer API, it saw {} chat request(s)",
        ctx.calls("chat/completions") - api_chats
    );

    let usage = session
        .usage(Some(RAIL))
        .await
        .step("usage of the subscription route")?;
    let Billing::Config(expected) = ctx.api.rail_billing() else {
        fail!("the reference rail's billing is not set to the current shape");
    };
    match usage.percent_used {
        Some(p) if (p - expected.credit_usage_percent).abs() < 1e-9 => {}
        other => fail!(
            "usage of the subscription route: expected {}% used, seen {other:?} ({})",
            expected.credit_usage_percent,
            usage.detail
        ),
    }
    no_header_refusals(ctx, "subscription route")
}

/// The rail's origin is reachable only while the route is enabled.
pub async fn subscription_origin_gated(ctx: &mut Ctx) -> Outcome {
    let not_enabled = ctx
        .config
        .clone()
        .set("subscription-base", ctx.api.subscription_base());
    let mut session = ctx.session_with(&not_enabled).await?;
    ctx.connect(&mut session, 3).await?;
    let prefix = prefix(ctx, RAIL).await?;
    let model = format!("{prefix}grok-4.3");
    let result = session.chat(&ask(&model, "not enabled")).await;
    expect_code(
        result,
        "denied_by_sandbox",
        "chat on a subscription route the host did not enable",
    )?;
    check!(
        ctx.api.rail_stats().requests == 0,
        "a route the host did not enable: the rail saw {} request(s)",
        ctx.api.rail_stats().requests
    );
    Ok(())
}

/// An API key: set, described by its last four characters, used with no login at all,
/// untouched by logout, deleted; a refused key is `unauthorized` with no refresh; the
/// key never appears in an answer.
pub async fn api_key_route(ctx: &mut Ctx) -> Outcome {
    let key = random_api_key();
    ctx.api.add_api_key(&key, 3u32);
    let mut session = ctx.session().await?;
    let info = session.set_api_key(&key).await.step("set-api-key")?;
    let last_four = &key[key.len() - 4..];
    check!(
        info.stored && info.last_four.as_deref() == Some(last_four),
        "set-api-key: expected stored with last four {last_four:?}, seen {info:?}"
    );
    let status = session.status().await.step("status with only a key")?;
    check!(
        !status.connected
            && status.api_key_stored
            && status.routes.iter().any(|r| r.name == KEY && r.usable)
            && status.routes.iter().any(|r| r.name == API && !r.usable),
        "status with only a key: expected not connected, key stored, route api-key usable and api not, seen {status:?}"
    );
    let before = ctx.api.stats();
    let model = chat_model(&mut session, ctx, KEY).await?;
    let reply = served_by(
        &mut session,
        &ask(&model.id, "by key"),
        KEY,
        "chat on the api-key route",
    )
    .await?;
    check!(
        reply.content == echo("by key"),
        "chat on the api-key route: expected {:?}, seen {:?}",
        echo("by key"),
        reply.content
    );
    let after = ctx.api.stats();
    check!(
        after.api_key_requests > before.api_key_requests
            && after.oauth_requests == before.oauth_requests,
        "api-key route: expected requests with the key only, the API saw {} key and {} OAuth request(s)",
        after.api_key_requests - before.api_key_requests,
        after.oauth_requests - before.oauth_requests
    );

    // Logging in and out leaves the key alone.
    ctx.connect(&mut session, 2).await?;
    session.logout().await.step("logout")?;
    let info = session
        .api_key_status()
        .await
        .step("api-key-status after logout")?;
    check!(
        info.stored,
        "api-key-status after logout: expected the key still stored, seen {info:?}"
    );

    // A refused key: unauthorized, no refresh, the key never echoed back.
    ctx.api.remove_api_key(&key);
    ctx.api.set_echo_api_key_in_errors(true);
    let redemptions = ctx.auth.stats().refresh_redemptions;
    let err = expect_code(
        session.chat(&ask(&model.id, "revoked key")).await,
        "unauthorized",
        "chat with a refused key",
    )?;
    check!(
        !err.to_string().contains(&key) && !err.action().contains(&key),
        "chat with a refused key: the error repeats the key"
    );
    check!(
        ctx.auth.stats().refresh_redemptions == redemptions,
        "chat with a refused key: expected no refresh (an API key has none), the server saw one"
    );
    let info = session.delete_api_key().await.step("delete-api-key")?;
    check!(
        !info.stored && info.last_four.is_none(),
        "delete-api-key: expected nothing stored, seen {info:?}"
    );
    let result = session.chat(&ask(&model.id, "no key")).await;
    match result {
        Err(HostError::Provider(ProviderError::NotConnected(_)))
        | Err(HostError::Provider(ProviderError::InvalidInput(_))) => Ok(()),
        other => fail!(
            "chat on the api-key route with no key stored: expected not_connected, seen {}",
            match other {
                Ok(_) => "success".to_owned(),
                Err(e) => describe(&e),
            }
        ),
    }
}

/// The request's route wins over the default; a model prefix names its route; a
/// contradiction or an unknown route is invalid input.
pub async fn route_override(ctx: &mut Ctx) -> Outcome {
    let key = random_api_key();
    ctx.api.add_api_key(&key, 3u32);
    let config = with_rail(ctx);
    let mut session = ctx.session_with(&config).await?;
    ctx.connect(&mut session, 3).await?;
    session.set_api_key(&key).await.step("set-api-key")?;
    let (api_prefix, rail_prefix) = (prefix(ctx, API).await?, prefix(ctx, RAIL).await?);
    let bare = chat_model(&mut session, ctx, API).await?;
    let bare = bare.id.trim_start_matches(&api_prefix).to_owned();
    // The rail serves its own catalogue (xAI's rail: not the API-only models).
    let rail_model = chat_model(&mut session, ctx, RAIL).await?;
    let rail_bare = rail_model.id.trim_start_matches(&rail_prefix).to_owned();

    let mut by_field = ask(&bare, "named route");
    by_field.route = Some(KEY.into());
    served_by(&mut session, &by_field, KEY, "chat naming route api-key").await?;
    served_by(
        &mut session,
        &ask(&format!("{rail_prefix}{rail_bare}"), "by prefix"),
        RAIL,
        "chat with a subscription-prefixed model",
    )
    .await?;
    served_by(
        &mut session,
        &ask(&bare, "default"),
        API,
        "chat naming no route (the default route)",
    )
    .await?;

    let mut contradiction = ask(&format!("{rail_prefix}{rail_bare}"), "contradiction");
    contradiction.route = Some(API.into());
    expect_code(
        session.chat(&contradiction).await,
        "invalid_input",
        "a route the model's prefix contradicts",
    )?;
    let mut unknown = ask(&bare, "unknown");
    unknown.route = Some("no-such-route".into());
    expect_code(
        session.chat(&unknown).await,
        "invalid_input",
        "an unknown route",
    )?;
    expect_code(
        session.models(false, Some("no-such-route")).await,
        "invalid_input",
        "models of an unknown route",
    )?;
    no_header_refusals(ctx, "route override")
}

fn names_alternatives(e: &HostError, route: &str, want: &[&str], what: &str) -> Outcome {
    let others = e.alternatives();
    for w in want {
        check!(
            others.iter().any(|o| o == w),
            "{what}: expected the error to name route {w:?} as an alternative, seen {others:?}"
        );
    }
    check!(
        !others.iter().any(|o| o == route),
        "{what}: the refusing route {route:?} is named as its own alternative"
    );
    Ok(())
}

/// Free usage spent and the spending limit on `api` are `quota_exhausted` naming the
/// other routes, and the key route keeps working meanwhile (never switched to silently);
/// a 429 is `rate_limited` with its wait and the alternatives.
pub async fn quota_per_route(ctx: &mut Ctx) -> Outcome {
    let key = random_api_key();
    ctx.api.add_api_key(&key, 3u32);
    let config = with_rail(ctx);
    let mut session = ctx.session_with(&config).await?;
    ctx.connect(&mut session, 3).await?;
    session.set_api_key(&key).await.step("set-api-key")?;
    let model = chat_model(&mut session, ctx, API).await?;
    let key_model = chat_model(&mut session, ctx, KEY).await?;

    for (fault, what) in [
        (
            QuotaFault::FreeUsageExhausted { status: 429 },
            "free usage spent (429)",
        ),
        (
            QuotaFault::FreeUsageExhausted { status: 403 },
            "free usage spent (403)",
        ),
        (QuotaFault::SPENDING_LIMIT_402, "spending limit (402)"),
    ] {
        ctx.api.set_quota_fault(CredentialScope::OAuth, Some(fault));
        let chats = ctx.calls("chat/completions");
        let err = expect_code(
            session.chat(&ask(&model.id, what)).await,
            "quota_exhausted",
            what,
        )?;
        check!(
            ctx.calls("chat/completions") - chats == 1,
            "{what}: expected one request and no silent retry elsewhere, the API saw {}",
            ctx.calls("chat/completions") - chats
        );
        check!(
            matches!(&err, HostError::Provider(ProviderError::QuotaExhausted(q)) if q.route == API),
            "{what}: expected the refusal to name route {API:?}, seen {}",
            describe(&err)
        );
        names_alternatives(&err, API, &[RAIL, KEY], what)?;
        // The key route is not affected.
        served_by(
            &mut session,
            &ask(&key_model.id, "still served"),
            KEY,
            &format!("{what}: chat on the api-key route"),
        )
        .await?;
    }
    ctx.api.set_quota_fault(
        CredentialScope::OAuth,
        Some(QuotaFault::RateLimited {
            retry_after_seconds: Some(7),
        }),
    );
    let err = expect_code(
        session.chat(&ask(&model.id, "rate limited")).await,
        "rate_limited",
        "429 on route api",
    )?;
    ctx.api.clear_quota_faults();
    check!(
        err.retry_after_seconds() == Some(7),
        "429 on route api: expected retry after 7 s, seen {:?}",
        err.retry_after_seconds()
    );
    names_alternatives(&err, API, &[KEY], "429 on route api")?;
    no_header_refusals(ctx, "quota per route")
}

/// What is left of a quota is reported when upstream says and plainly unknown otherwise.
pub async fn usage_unknown(ctx: &mut Ctx) -> Outcome {
    let config = with_rail(ctx);
    let mut session = ctx.session_with(&config).await?;
    ctx.connect(&mut session, 3).await?;
    for (billing, what) in [
        (Billing::NotFound, "billing answers 404"),
        (Billing::ServerError, "billing answers 500"),
        (Billing::WrongShape, "billing answers another shape"),
        (Billing::NotJson, "billing answers no JSON"),
    ] {
        ctx.api.set_rail_billing(billing);
        let report = session
            .usage(Some(RAIL))
            .await
            .step(&format!("usage when {what}"))?;
        check!(
            report.credits.is_none() && !report.detail.trim().is_empty(),
            "usage when {what}: expected an unknown balance with a reason, seen {report:?}"
        );
    }
    let report = session.usage(Some(API)).await.step("usage of route api")?;
    check!(
        report.credits.is_none() && report.route == API && !report.detail.trim().is_empty(),
        "usage of route api: expected an unknown balance with a reason, seen {report:?}"
    );
    // A stream on the rail after all that still works (and carries the headers).
    let model = chat_model(&mut session, ctx, RAIL).await?;
    let out = streamed(
        &mut session,
        &ask(&model.id, "after usage"),
        "a stream on the subscription route",
    )
    .await?;
    check!(
        !out.text.is_empty(),
        "stream on the subscription route: empty"
    );
    no_header_refusals(ctx, "usage")
}
