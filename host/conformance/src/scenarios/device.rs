//! The device login (RFC 8628): the happy path per tier, denial, expiry and pacing.

use std::time::{SystemTime, UNIX_EPOCH};

use provider_reference::{ModelKind, Tier};

use crate::check::{Outcome, Step, check, expect_code};
use crate::context::{Ctx, names, poll_pending, poll_until_connected, subject, wait_interval};
use crate::scenarios::routes::{RAIL, with_rail};
use provider_runtime::Session;
use provider_runtime::bindings::types::Lane;

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// start → poll (pending) → the user approves at `tier` → poll (connected) → status, and
/// the model list is exactly what the tier unlocks, each model in its lane.
pub async fn happy_path(ctx: &mut Ctx, tier: u32) -> Outcome {
    let mut session = ctx.session().await?;
    let fresh = session.status().await.step("status on a fresh state")?;
    check!(
        !fresh.connected,
        "status on a fresh state: expected not connected, seen connected"
    );

    let prompt = session.start().await.step("start")?;
    let issued = ctx.auth.latest_user_code().unwrap_or_default();
    check!(
        prompt.user_code == issued,
        "start: expected the server's user code {issued:?}, seen {:?}",
        prompt.user_code
    );
    check!(
        prompt.verification_url.starts_with(ctx.auth.issuer()),
        "start: expected the verification URL the server gave (below {}), seen {:?}",
        ctx.auth.issuer(),
        prompt.verification_url
    );
    check!(
        prompt
            .verification_url_with_code
            .contains(&prompt.user_code),
        "start: expected the URL with code to contain {:?}, seen {:?}",
        prompt.user_code,
        prompt.verification_url_with_code
    );
    check!(
        prompt.interval_seconds >= 1 && prompt.expires_in_seconds > 0,
        "start: expected interval >= 1 s and a future expiry, seen interval {} s, expires in {} s",
        prompt.interval_seconds,
        prompt.expires_in_seconds
    );

    wait_interval(&prompt).await;
    let p = poll_pending(&mut session, &prompt.pending_id, "poll before approval").await?;
    check!(
        p.pending_id == prompt.pending_id,
        "poll before approval: expected pending id {:?}, seen {:?}",
        prompt.pending_id,
        p.pending_id
    );
    check!(
        ctx.polls(&prompt.user_code) == 1,
        "poll before approval: expected 1 token request, the server saw {}",
        ctx.polls(&prompt.user_code)
    );

    ctx.auth
        .approve(&prompt.user_code, tier, &subject(tier))
        .step("approving the login")?;
    let status = poll_until_connected(&mut session, &prompt.pending_id).await?;
    check!(
        status.connected && status.tier == Some(tier),
        "poll after approval: expected connected at tier {tier}, seen connected={} tier={:?}",
        status.connected,
        status.tier
    );
    check!(
        status
            .tier_name
            .as_deref()
            .is_some_and(|n| !n.trim().is_empty()),
        "poll after approval: expected a tier name, seen {:?}",
        status.tier_name
    );
    check!(
        status.expires_at.is_some_and(|t| t > unix_now()),
        "poll after approval: expected an expiry in the future, seen {:?}",
        status.expires_at
    );

    let status = session.status().await.step("status after login")?;
    check!(
        status.connected && status.tier == Some(tier),
        "status after login: expected connected at tier {tier}, seen connected={} tier={:?}",
        status.connected,
        status.tier
    );

    let list = session.models(false, None).await.step("models")?;
    let unlocked: Vec<_> = ctx
        .catalogue
        .iter()
        .filter(|m| m.tiers.includes(tier))
        .collect();
    check!(
        list.models.len() + list.media_models.len() == unlocked.len(),
        "models at tier {tier}: expected {} models ({}), seen {} ({})",
        unlocked.len(),
        unlocked
            .iter()
            .map(|m| m.id.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        list.models.len() + list.media_models.len(),
        list.models
            .iter()
            .chain(&list.media_models)
            .map(|m| m.id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    for model in unlocked {
        let (pool, lane, kind) = match model.kind {
            ModelKind::Media => (&list.media_models, Lane::Media, "media"),
            ModelKind::MultiAgent => (&list.models, Lane::Responses, "chat"),
            ModelKind::Chat | ModelKind::Reasoning => (&list.models, Lane::ChatCompletions, "chat"),
        };
        let found = pool.iter().find(|m| names(&m.id, &model.id));
        check!(
            found.is_some_and(|m| m.lane == lane),
            "models at tier {tier}: expected {} among the {kind} models in lane {lane:?}, seen {:?}",
            model.id,
            found.map(|m| (&m.id, m.lane))
        );
    }
    check!(
        list.models.iter().any(|m| m.id == list.default_model_id),
        "models: expected the default model {:?} to be one of the chat models",
        list.default_model_id
    );
    Ok(())
}

/// The user denies: the poll answers `access_denied`, and nothing is connected.
pub async fn denial(ctx: &mut Ctx) -> Outcome {
    let mut session = ctx.session().await?;
    let prompt = session.start().await.step("start")?;
    ctx.auth.deny(&prompt.user_code).step("denying the login")?;
    wait_interval(&prompt).await;
    expect_code(
        session.poll(Some(&prompt.pending_id)).await,
        "access_denied",
        "poll after denial",
    )?;
    let again = session.poll(Some(&prompt.pending_id)).await;
    check!(
        again.is_err(),
        "poll of a denied login: expected an error (the login is over), seen success"
    );
    let status = session.status().await.step("status after denial")?;
    check!(
        !status.connected,
        "status after denial: expected not connected, seen connected"
    );
    Ok(())
}

/// The device code expires: the poll answers `expired_token`.
pub async fn expiry(ctx: &mut Ctx) -> Outcome {
    let mut session = ctx.session().await?;
    let prompt = session.start().await.step("start")?;
    ctx.auth
        .expire(&prompt.user_code)
        .step("expiring the device code")?;
    wait_interval(&prompt).await;
    expect_code(
        session.poll(Some(&prompt.pending_id)).await,
        "expired_token",
        "poll of an expired device code",
    )?;
    let status = session.status().await.step("status after expiry")?;
    check!(
        !status.connected,
        "status after expiry: expected not connected, seen connected"
    );
    Ok(())
}

/// `slow_down` raises the interval by 5 s, and a poll sooner than that sends nothing.
pub async fn slow_down_pacing(ctx: &mut Ctx) -> Outcome {
    let mut session = ctx.session().await?;
    let prompt = session.start().await.step("start")?;
    ctx.auth.force_slow_down(1);
    wait_interval(&prompt).await;
    let raised = poll_pending(&mut session, &prompt.pending_id, "poll answered slow_down")
        .await?
        .interval_seconds;
    check!(
        ctx.auth.stats().slow_downs == 1,
        "poll: expected the server to answer slow_down once, it did {} times",
        ctx.auth.stats().slow_downs
    );
    check!(
        raised == prompt.interval_seconds + 5,
        "poll answered slow_down: expected the interval raised from {} to {} s, seen {raised} s",
        prompt.interval_seconds,
        prompt.interval_seconds + 5
    );
    let before = ctx.polls(&prompt.user_code);
    let p = poll_pending(
        &mut session,
        &prompt.pending_id,
        "poll sooner than the raised interval",
    )
    .await?;
    check!(
        p.interval_seconds == raised,
        "poll sooner than the interval: expected the interval to stay {raised} s, seen {} s",
        p.interval_seconds
    );
    let after = ctx.polls(&prompt.user_code);
    check!(
        after == before,
        "poll sooner than the interval: expected no token request, the server saw {}",
        after - before
    );
    Ok(())
}

/// Polls within the interval answer pending without any token request.
pub async fn pending_without_server_call(ctx: &mut Ctx) -> Outcome {
    let mut session = ctx.session().await?;
    let prompt = session.start().await.step("start")?;
    check!(
        prompt.interval_seconds >= 5,
        "start: expected the server's 5 s interval, seen {} s",
        prompt.interval_seconds
    );
    for attempt in 1..=4 {
        let step = format!("poll {attempt} before approval");
        let p = poll_pending(&mut session, &prompt.pending_id, &step).await?;
        check!(
            p.pending_id == prompt.pending_id,
            "{step}: expected pending id {:?}, seen {:?}",
            prompt.pending_id,
            p.pending_id
        );
    }
    // One token request if the plugin counts the interval from its first poll, none if
    // from `start`: either way no more than one.
    let stats = ctx.auth.stats();
    check!(
        ctx.polls(&prompt.user_code) <= 1 && stats.token_requests_device_code <= 1,
        "4 polls within the 5 s interval: expected at most 1 token request, the server saw {}",
        stats.token_requests_device_code
    );
    check!(
        stats.slow_downs == 0,
        "polls within the interval: expected no slow_down from the server, seen {}",
        stats.slow_downs
    );
    Ok(())
}

/// What `status` says of a login at `tier`, with the rail as the default route: the tier's
/// name from the claim's enum, and the subscription the rail's `/user` names (`expected`:
/// `subscriptionTier`'s value; `None`: no subscription).
async fn tier_status(
    ctx: &Ctx,
    session: &mut Session,
    claim: u32,
    tier_name: &str,
    expected: Option<Tier>,
) -> Outcome {
    let status = ctx.connect(session, claim).await?;
    check!(
        status.connected && status.tier == Some(claim),
        "login at tier claim {claim}: expected connected at that tier, seen connected={} tier={:?}",
        status.connected,
        status.tier
    );
    let status = session
        .status()
        .await
        .step(&format!("status at tier claim {claim}"))?;
    check!(
        status.tier_name.as_deref() == Some(tier_name),
        "status at tier claim {claim}: expected the tier named {tier_name:?} (the claim is xAI's enum, not a rank), seen {:?}",
        status.tier_name
    );
    match expected.and_then(|t| t.subscription_tier().map(|raw| (t.display_name(), raw))) {
        Some((name, raw)) => check!(
            status.subscription.as_deref() == Some(name)
                || status.subscription.as_deref() == Some(raw),
            "status at tier claim {claim}: expected the subscription the rail's /user names ({raw}, i.e. {name:?}), seen {:?}",
            status.subscription
        ),
        None => check!(
            status.subscription.is_none(),
            "status at tier claim {claim}: expected no subscription (the rail's /user names none), seen {:?}",
            status.subscription
        ),
    }
    Ok(())
}

/// The `tier` claim is an enum (reference doc §3.3): `status` names each of its values
/// right (1 SuperGrok, 3 X Premium, 5 SuperGrok Heavy, …), and, while the subscription
/// route is usable, the subscription the rail's `GET /user?include=subscription` names
/// (§3.2), which wins over a stale claim.
pub async fn tier_enum(ctx: &mut Ctx) -> Outcome {
    let config = with_rail(ctx).set("default-route", RAIL);
    let mut session = ctx.session_with(&config).await?;
    for tier in Tier::ALL {
        if tier != Tier::Free {
            session.logout().await.step("logout")?;
        }
        tier_status(
            ctx,
            &mut session,
            tier.claim(),
            tier.display_name(),
            Some(tier),
        )
        .await?;
    }
    check!(
        ctx.api.rail_stats().user_requests > 0,
        "status with the subscription route usable: expected the rail's /user asked, it saw no request"
    );
    // The claim is stale (SuperGrok), the rail knows better (SuperGrok Heavy).
    session.logout().await.step("logout")?;
    ctx.api.set_rail_subscription(Some(Tier::SuperGrokHeavy));
    tier_status(
        ctx,
        &mut session,
        Tier::SuperGrok.claim(),
        Tier::SuperGrok.display_name(),
        Some(Tier::SuperGrokHeavy),
    )
    .await
}
