//! Ways to pay, picked per request (the routes profile: a plugin names them `api`,
//! `subscription` and `api-key`, and reads the subscription rail's base from the key
//! `subscription-base`): the subscription rail with its headers and stream-only rules, an
//! API key that never touches the login (and vice versa), the per-request override and its
//! contradictions, the rail's own catalogue; and the helpers the route-aware scenarios share.
//! Quotas per route are in `quota.rs`, the rail's version gate in `version.rs`.

use provider_reference::{Billing, random_api_key};
use provider_runtime::bindings::types::{ChatReply, ChatRequest, Lane, Model, ProviderError};
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
pub(crate) async fn chat_model(session: &mut Session, ctx: &Ctx, route: &str) -> Outcome<Model> {
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
pub(crate) async fn served_by(
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
