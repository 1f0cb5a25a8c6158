//! Ways to pay, picked per request (the routes profile: a plugin names them `api`,
//! `subscription` and `api-key`, and reads the subscription rail's base from the key
//! `subscription-base`): the subscription rail with its headers and stream-only rules, an
//! API key that never touches the login (and vice versa), the per-request override and its
//! contradictions, quota errors that name the alternatives, and what is left of a quota.

use provider_reference::{
    Billing, BillingConfig, CredentialScope, PeriodType, QuotaFault, UsagePeriod, random_api_key,
};
use provider_runtime::bindings::types::{
    ChatReply, ChatRequest, Lane, Model, ProviderError, QuotaPeriod, QuotaReport,
};
use provider_runtime::{HostConfig, HostError, Session};

use crate::check::{Outcome, Step, check, describe, expect_code, fail};
use crate::context::{Ctx, ask, echo, models_of};
use crate::scenarios::agents::streamed;

pub(crate) const API: &str = "api";
pub(crate) const RAIL: &str = "subscription";
pub(crate) const KEY: &str = "api-key";

/// The scenario's configuration with the rail pointed at the reference rail and enabled.
pub(crate) fn with_rail(ctx: &Ctx) -> HostConfig {
    ctx.config
        .clone()
        .set("subscription-base", ctx.api.subscription_base())
        .enable_route(RAIL)
}

/// The model prefix the plugin's manifest gives `route`.
pub(crate) async fn prefix(ctx: &Ctx, route: &str) -> Outcome<String> {
    let manifest = ctx.runtime.manifest().await.step("manifest")?;
    match manifest.routes.iter().find(|r| r.name == route) {
        Some(r) => Ok(r.model_prefix.clone()),
        None => fail!(
            "manifest: expected a route {route:?} (the routes profile), seen {:?}",
            manifest.routes.iter().map(|r| &r.name).collect::<Vec<_>>()
        ),
    }
}

/// A chat model listed for `route` (a chat-completions one when the route has any),
/// checking that the list is the route's.
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
    // A chat-completions model where the route has one; else the route's first model in
    // the lane its catalogue gives (the rail's: `apiBackend: responses`).
    let first = list.models.first().cloned();
    match models_of(&list, Lane::ChatCompletions)
        .into_iter()
        .next()
        .or(first)
    {
        Some(m) => Ok(m),
        None => fail!("models of route {route}: expected a chat model, seen none"),
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

pub(crate) fn no_header_refusals(ctx: &Ctx, what: &str) -> Outcome {
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
        rail.chat_completions + rail.responses >= 2 && rail.streams >= 2,
        "subscription route: expected both turns streamed from the rail, it saw {} chat request(s), {} stream(s)",
        rail.chat_completions + rail.responses,
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

pub(crate) fn names_alternatives(e: &HostError, route: &str, want: &[&str], what: &str) -> Outcome {
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

/// The setting (routes profile) that names the client version the rail is told.
pub(crate) const CLIENT_VERSION_KEY: &str = "subscription-client-version";

/// Requests the rail received on its inference paths, refused and faulted ones included.
pub(crate) fn rail_inference(ctx: &Ctx) -> usize {
    ctx.api
        .rail_requests()
        .iter()
        .filter(|r| {
            ["/chat/completions", "/responses", "/messages"]
                .iter()
                .any(|p| r.path.ends_with(p))
        })
        .count()
}

/// The first chat model the rail lists for the connected account (forced past the cache
/// when `force`), checking that the list is the subscription route's.
pub(crate) async fn rail_model(session: &mut Session, force: bool, what: &str) -> Outcome<Model> {
    let list = session
        .models(force, Some(RAIL))
        .await
        .step(&format!("{what}: models of the subscription route"))?;
    check!(
        list.route == RAIL,
        "{what}: expected the list of route {RAIL:?}, seen route {:?}",
        list.route
    );
    match list.models.into_iter().next() {
        Some(m) => Ok(m),
        None => fail!("{what}: expected the rail's models, seen none"),
    }
}

/// A streamed turn: the error it ends with, whether the open or a chunk failed.
async fn stream_outcome(session: &mut Session, request: &ChatRequest) -> Result<(), HostError> {
    let stream = session.open_chat_stream(request).await?;
    let (_, error) = crate::scenarios::chat::drain(session, &stream).await;
    let _ = session.close_chat_stream(stream).await;
    error.map_or(Ok(()), Err)
}

/// The rail's version gate (reference doc §2.2): a client version below the floor, or one
/// that is no release, is refused with 426 on inference only; that is `client_outdated`,
/// final (one request, no refresh), quoting the minimum the rail named and naming the
/// setting (and its environment variable), never relaying the rail's "grok update"
/// advice. `/models` is not gated, and the plugin's default version passes.
pub async fn version_gate(ctx: &mut Ctx) -> Outcome {
    let manifest = ctx.runtime.manifest().await.step("manifest")?;
    let Some(setting) = manifest
        .settings
        .iter()
        .find(|s| s.key == CLIENT_VERSION_KEY)
        .cloned()
    else {
        fail!(
            "manifest: expected a setting {CLIENT_VERSION_KEY:?} (the client version the rail is told), seen {:?}",
            manifest.settings.iter().map(|s| &s.key).collect::<Vec<_>>()
        );
    };
    let mut session = ctx.session_with(&with_rail(ctx)).await?;
    ctx.connect(&mut session, 3).await?;

    for value in ["0.1.0", "2026.9.3"] {
        let what = format!("the subscription route announcing client version {value}");
        let config = with_rail(ctx).set(CLIENT_VERSION_KEY, value);
        let mut gated = ctx.session_with(&config).await?;
        // The catalogue is not gated: a client looks healthy until its first turn.
        let listed = ctx.api.rail_stats().models_requests;
        let model = rail_model(&mut gated, true, &what).await?;
        check!(
            ctx.api.rail_stats().models_requests > listed,
            "{what}: expected the forced model list fetched from the rail, it saw no /models request"
        );
        let mut request = ask(&model.id, "gated");
        request.route = Some(RAIL.into());
        let (sent, refused, redemptions) = (
            rail_inference(ctx),
            ctx.api.rail_stats().client_outdated,
            ctx.auth.stats().refresh_redemptions,
        );
        let err = expect_code(
            gated.chat(&request).await,
            "client_outdated",
            &format!("chat on {what}"),
        )?;
        check!(
            ctx.api.rail_stats().client_outdated == refused + 1,
            "chat on {what}: expected the rail's version gate to refuse 1 request, it refused {}",
            ctx.api.rail_stats().client_outdated - refused
        );
        check!(
            rail_inference(ctx) - sent == 1,
            "chat on {what}: expected exactly 1 request (426 is final), the rail saw {}",
            rail_inference(ctx) - sent
        );
        check!(
            ctx.auth.stats().refresh_redemptions == redemptions,
            "chat on {what}: expected no refresh (logging in again does not help), the server saw one"
        );
        let text = err.to_string();
        check!(
            text.contains(provider_reference::MIN_CLIENT_VERSION),
            "chat on {what}: expected the message to quote the minimum the rail named ({}), seen {text:?}",
            provider_reference::MIN_CLIENT_VERSION
        );
        check!(
            text.contains(CLIENT_VERSION_KEY),
            "chat on {what}: expected the message to name the setting {CLIENT_VERSION_KEY:?}, seen {text:?}"
        );
        if let Some(env) = &setting.env {
            check!(
                text.contains(env.as_str()),
                "chat on {what}: expected the message to name the setting's environment variable {env}, seen {text:?}"
            );
        }
        check!(
            !text.contains("grok update"),
            "chat on {what}: the message relays the rail's `grok update` advice (xAI's CLI's, not this plugin's): {text:?}"
        );
        expect_code(
            stream_outcome(&mut gated, &request).await,
            "client_outdated",
            &format!("a stream on {what}"),
        )?;
    }

    // The default value is a release the rail knows.
    let model = rail_model(&mut session, false, "the default client version").await?;
    let refused = ctx.api.rail_stats().client_outdated;
    let reply = served_by(
        &mut session,
        &ask(&model.id, "default version"),
        RAIL,
        "chat on the subscription route with the default client version",
    )
    .await?;
    check!(
        reply.content == echo("default version") && ctx.api.rail_stats().client_outdated == refused,
        "chat with the default client version: expected {:?} and no 426, seen {:?} after {} refusal(s)",
        echo("default version"),
        reply.content,
        ctx.api.rail_stats().client_outdated - refused
    );
    no_header_refusals(ctx, "version gate")
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn cents(v: Option<i64>) -> Option<u64> {
    v.map(i64::unsigned_abs)
}

/// Whether `report` carries no figure at all.
fn no_figures(report: &QuotaReport) -> bool {
    report.percent_used.is_none()
        && report.period.is_none()
        && report.period_start.is_none()
        && report.resets_at.is_none()
        && report.on_demand_cap_cents.is_none()
        && report.on_demand_used_cents.is_none()
        && report.prepaid_balance_cents.is_none()
        && report.credits.is_none()
}

/// `report` says what `config` says, field by field.
fn matches_config(report: &QuotaReport, config: &BillingConfig, what: &str) -> Outcome {
    check!(
        report.route == RAIL,
        "{what}: expected the report of route {RAIL:?}, seen {:?}",
        report.route
    );
    match report.percent_used {
        Some(p) if (p - config.credit_usage_percent).abs() < 1e-9 => {}
        other => fail!(
            "{what}: expected {}% used, seen {other:?} ({report:?})",
            config.credit_usage_percent
        ),
    }
    if let Some(period) = config.current_period {
        let kind = match period.kind {
            PeriodType::Weekly => QuotaPeriod::Weekly,
            PeriodType::Monthly => QuotaPeriod::Monthly,
        };
        check!(
            report.period == Some(kind),
            "{what}: expected a {kind:?} period, seen {:?}",
            report.period
        );
        check!(
            report.period_start == Some(period.start) && report.resets_at == Some(period.end),
            "{what}: expected the period {}..{} (reset at its end), seen {:?}..{:?}",
            period.start,
            period.end,
            report.period_start,
            report.resets_at
        );
    }
    let amounts = [
        (
            "on-demand cap",
            report.on_demand_cap_cents,
            config.on_demand_cap,
        ),
        (
            "on-demand used",
            report.on_demand_used_cents,
            config.on_demand_used,
        ),
        (
            "prepaid balance (its magnitude)",
            report.prepaid_balance_cents,
            config.prepaid_balance,
        ),
    ];
    for (name, seen, sent) in amounts {
        check!(
            seen == cents(sent),
            "{what}: expected {name} {:?} US cents, seen {seen:?}",
            cents(sent)
        );
    }
    Ok(())
}

/// `usage` of the subscription route reads the rail's billing answer in its current shape
/// (reference doc §3.1): percent used, period kind and reset, on-demand cap and use,
/// prepaid balance (its magnitude when negative); the legacy shape is still read; an
/// answer with nothing in it (`config: null`, `{}`) is a report of no figures, not an
/// error.
pub async fn billing_shape(ctx: &mut Ctx) -> Outcome {
    let config = with_rail(ctx);
    let mut session = ctx.session_with(&config).await?;
    ctx.connect(&mut session, 1).await?;

    let Billing::Config(example) = ctx.api.rail_billing() else {
        fail!("setup: the reference rail's billing is not the current shape's example");
    };
    let asked = ctx.api.rail_stats().billing_requests;
    let report = session
        .usage(Some(RAIL))
        .await
        .step("usage of the subscription route")?;
    check!(
        ctx.api.rail_stats().billing_requests > asked,
        "usage of the subscription route: expected the rail's billing asked, it saw no request"
    );
    matches_config(&report, &example, "usage (the rail's example answer)")?;

    let now = unix_now();
    let monthly = BillingConfig {
        credit_usage_percent: 99.5,
        current_period: Some(UsagePeriod {
            kind: PeriodType::Monthly,
            start: now - 10 * 86_400,
            end: now + 20 * 86_400,
        }),
        on_demand_cap: None,
        on_demand_used: None,
        prepaid_balance: Some(-250),
        is_unified_billing_user: false,
        product_usage: Vec::new(),
    };
    ctx.api.set_rail_billing(Billing::Config(monthly.clone()));
    let report = session
        .usage(Some(RAIL))
        .await
        .step("usage with a monthly period and a negative prepaid balance")?;
    matches_config(
        &report,
        &monthly,
        "usage (monthly, no on-demand, prepaid -$2.50)",
    )?;

    let (start, end) = (now - 86_400, now + 29 * 86_400);
    ctx.api.set_rail_billing(Billing::Legacy {
        monthly_limit: 2000,
        used: 500,
        period_start: start,
        period_end: end,
    });
    let what = "usage (the legacy shape: monthlyLimit 2000, used 500)";
    let report = session.usage(Some(RAIL)).await.step(what)?;
    let by_percent = report.percent_used.is_some_and(|p| (p - 25.0).abs() < 1e-6);
    let by_balance = report.credits.as_ref().is_some_and(|c| {
        c.total
            .is_some_and(|t| t > 0.0 && (c.remaining / t - 0.75).abs() < 1e-6)
    });
    check!(
        by_percent || by_balance,
        "{what}: expected 25% used or a balance of 1500 left of 2000, seen {report:?}"
    );
    check!(
        report.resets_at == Some(end),
        "{what}: expected the reset at billingPeriodEnd ({end}), seen {:?}",
        report.resets_at
    );

    for (billing, what) in [
        (
            Billing::NullConfig,
            "usage when the rail answers config: null",
        ),
        (Billing::Empty, "usage when the rail answers {}"),
    ] {
        ctx.api.set_rail_billing(billing);
        let report = session.usage(Some(RAIL)).await.step(what)?;
        check!(
            report.route == RAIL && no_figures(&report) && !report.detail.trim().is_empty(),
            "{what}: expected a report of route {RAIL:?} with no figures and a reason (unknown, not invented), seen {report:?}"
        );
    }
    no_header_refusals(ctx, "billing shape")
}

/// The rail serves its own catalogue per tier (reference doc §2.5): `grok-4.6` first (the
/// route's default) and `grok-4.5` for paid tiers, `grok-4.5` for a free account, no
/// API-only model; its answers echo the CLI variant (`-build`, `-build-free`), which the
/// reply reports as the catalogue id or as that variant, never as an error.
pub async fn rail_catalogue(ctx: &mut Ctx) -> Outcome {
    let config = with_rail(ctx);
    let rail_prefix = prefix(ctx, RAIL).await?;
    let mut session = ctx.session_with(&config).await?;
    for tier in [3u32, 0] {
        if tier != 3 {
            session.logout().await.step("logout")?;
        }
        ctx.connect(&mut session, tier).await?;
        let want =
            provider_reference::model_ids_for_tier(&provider_reference::rail_catalogue(), tier);
        let what = format!("models of the subscription route at tier {tier}");
        let list = session.models(true, Some(RAIL)).await.step(&what)?;
        let seen: Vec<&str> = list
            .models
            .iter()
            .map(|m| m.id.strip_prefix(&rail_prefix).unwrap_or(&m.id))
            .collect();
        check!(
            seen == want,
            "{what}: expected the rail's catalogue for the tier, in its order, {want:?}, seen {seen:?}"
        );
        check!(
            crate::context::names(&list.default_model_id, &want[0]),
            "{what}: expected the catalogue's first entry {:?} as the default, seen {:?}",
            want[0],
            list.default_model_id
        );
        // The lane is the catalogue's `apiBackend` (every rail entry: `responses`).
        let catalogue = provider_reference::rail_catalogue();
        for m in &list.models {
            let bare = m.id.strip_prefix(&rail_prefix).unwrap_or(&m.id);
            let backend = catalogue
                .iter()
                .find(|c| c.id == bare)
                .and_then(|c| c.api_backend.as_deref());
            check!(
                backend != Some("responses") || m.lane == Lane::Responses,
                "{what}: expected {bare} in the Responses lane (the catalogue's apiBackend), seen {:?}",
                m.lane
            );
        }
        for id in &want {
            let what = format!("chat with {id} on the rail at tier {tier}");
            let model = format!("{rail_prefix}{id}");
            let reply = served_by(&mut session, &ask(&model, "which model"), RAIL, &what).await?;
            check!(
                reply.content == echo("which model"),
                "{what}: expected {:?}, seen {:?}",
                echo("which model"),
                reply.content
            );
            let bare = reply
                .model
                .strip_prefix(&rail_prefix)
                .unwrap_or(&reply.model);
            check!(
                bare == id || bare.starts_with(&format!("{id}-build")),
                "{what}: expected the reply to name {id} or the build variant the rail echoes ({id}-build…), seen {:?}",
                reply.model
            );
            let out = streamed(&mut session, &ask(&model, "streamed model"), &what).await?;
            check!(
                out.text == echo("streamed model"),
                "{what}, streamed: expected {:?}, seen {:?}",
                echo("streamed model"),
                out.text
            );
        }
    }
    no_header_refusals(ctx, "rail catalogue")
}
