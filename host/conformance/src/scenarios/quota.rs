//! Quotas per route: spent free usage and spending limits are `quota_exhausted` naming the
//! other routes, a 429 is `rate_limited` with its wait, and `usage` reports what is left of
//! a quota (the rail's billing answer in its current and legacy shapes) or plainly nothing.

use provider_reference::{
    Billing, BillingConfig, CredentialScope, PeriodType, QuotaFault, UsagePeriod, random_api_key,
};
use provider_runtime::HostError;
use provider_runtime::bindings::types::{ProviderError, QuotaPeriod, QuotaReport};

use crate::check::{Outcome, Step, check, describe, expect_code, fail};
use crate::context::{Ctx, ask};
use crate::scenarios::agents::streamed;
use crate::scenarios::routes::{
    API, KEY, RAIL, chat_model, names_alternatives, no_header_refusals, served_by, with_rail,
};

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
