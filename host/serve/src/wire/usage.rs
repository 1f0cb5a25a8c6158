//! The quota report's JSON: `GET /v1/usage`'s answer, and `provider-host usage`'s.

use provider_runtime::bindings::types::{QuotaPeriod, QuotaReport};
use serde_json::{Value, json};

/// US cents as dollars (`1250` -> `12.5`).
fn dollars(cents: Option<u64>) -> Option<f64> {
    cents.map(|c| c as f64 / 100.0)
}

/// `usage`: what upstream reported (the share of the allowance used, its period and
/// reset, pay-as-you-go cap and use and prepaid balance, in US dollars), and plainly
/// `known: false` when it reported nothing.
pub fn quota(q: &QuotaReport) -> Value {
    let known = q.percent_used.is_some()
        || q.credits.is_some()
        || q.on_demand_cap_cents.is_some()
        || q.on_demand_used_cents.is_some()
        || q.prepaid_balance_cents.is_some()
        || q.resets_at.is_some();
    json!({
        "ok": true,
        "route": q.route,
        "known": known,
        "percent_used": q.percent_used,
        "period": q.period.map(|p| match p {
            QuotaPeriod::Weekly => "weekly",
            QuotaPeriod::Monthly => "monthly",
        }),
        "period_start": q.period_start,
        "resets_at": q.resets_at,
        "on_demand_cap_usd": dollars(q.on_demand_cap_cents),
        "on_demand_used_usd": dollars(q.on_demand_used_cents),
        "prepaid_balance_usd": dollars(q.prepaid_balance_cents),
        "remaining": q.credits.as_ref().map(|c| c.remaining),
        "total": q.credits.as_ref().and_then(|c| c.total),
        "unit": q.credits.as_ref().map(|c| &c.unit),
        "summary": quota_summary(q),
        "detail": q.detail,
        "fetched_at": q.fetched_at,
    })
}

/// One line for people, as xAI's CLI words it: `Weekly limit: 42% used · Pay-as-you-go:
/// $3.00 of $50.00 · Credits: $12.50`; `None` when nothing is known.
fn quota_summary(q: &QuotaReport) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(p) = q.percent_used {
        let label = match q.period {
            Some(QuotaPeriod::Weekly) => "Weekly limit",
            Some(QuotaPeriod::Monthly) => "Monthly limit",
            None => "Limit",
        };
        parts.push(format!("{label}: {}% used", p.floor()));
    }
    if let Some(cap) = q.on_demand_cap_cents.filter(|c| *c > 0) {
        let used = q.on_demand_used_cents.unwrap_or(0);
        parts.push(format!(
            "Pay-as-you-go: ${:.2} of ${:.2}",
            used as f64 / 100.0,
            cap as f64 / 100.0
        ));
    }
    if let Some(prepaid) = q.prepaid_balance_cents.filter(|c| *c > 0) {
        parts.push(format!("Credits: ${:.2}", prepaid as f64 / 100.0));
    }
    (!parts.is_empty()).then(|| parts.join(" · "))
}
