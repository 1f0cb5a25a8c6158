//! What is left of a route's quota: the subscription rail's billing answer
//! (`GET {rail}/billing?format=credits`), as xAI's own CLI reads it
//! (`xai-org/grok-build`, `extensions/billing.rs`; `shared/reference/xai-wire-2026.md` §3.1).
//!
//! The answer is proto3 JSON (camelCase, zero values omitted, 64-bit integers possibly
//! written as strings), money in US cents:
//!
//! ```text
//! {"config": {"creditUsagePercent": 42.5,
//!             "currentPeriod": {"type": "USAGE_PERIOD_TYPE_WEEKLY", "start": RFC 3339, "end": RFC 3339},
//!             "onDemandCap": {"val": 5000}, "onDemandUsed": {"val": 300},
//!             "prepaidBalance": {"val": 1250}, ...}}
//! ```
//!
//! The legacy shape (`monthlyLimit`, `used`, `billingPeriodStart`, `billingPeriodEnd`) is
//! still read. There is no "remaining credits" number: the allowance is a percentage and a
//! reset time.

use serde::Deserialize;
use serde_json::Value;

use crate::types::{CreditBalance, QuotaPeriod};

/// Path (under the subscription base) of the billing answer.
pub const BILLING_PATH: &str = "billing?format=credits";
/// The unit of the legacy shape's limit and use.
pub const CENTS_UNIT: &str = "usd_cents";
/// Where a known figure comes from, for the report.
pub const BILLING_SOURCE: &str =
    "the subscription rail's billing endpoint (GET /billing?format=credits)";
/// Why the developer API's routes have no figure.
pub const NO_API_QUOTA: &str = "unknown: xAI's API reports no remaining quota to this client (see console.x.ai for API credits)";

/// The figures of a billing answer; every field `None` when not reported.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Quota {
    /// Share of the included allowance used, 0 to 100.
    pub percent_used: Option<f64>,
    /// The allowance period.
    pub period: Option<QuotaPeriod>,
    /// Start of the current period (unix seconds).
    pub period_start: Option<u64>,
    /// End of the current period: when the allowance resets (unix seconds).
    pub resets_at: Option<u64>,
    /// Pay-as-you-go cap (US cents).
    pub on_demand_cap_cents: Option<u64>,
    /// Pay-as-you-go spent (US cents).
    pub on_demand_used_cents: Option<u64>,
    /// Prepaid balance (US cents, magnitude: the rail may sign it for accounting).
    pub prepaid_balance_cents: Option<u64>,
    /// The legacy shape's limit and use.
    pub credits: Option<CreditBalance>,
}

/// `{"val": n}`: an amount in US cents; `{}` is zero (proto3 omits zero values).
#[derive(Debug, Default, Deserialize)]
struct Cent {
    #[serde(default)]
    val: Option<Value>,
}

impl Cent {
    /// The amount, or `None` when `val` is not a number.
    fn cents(&self) -> Option<i64> {
        match &self.val {
            None => Some(0),
            Some(v) => number(v).map(|n| n.round() as i64),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct Period {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    start: Option<Value>,
    #[serde(default)]
    end: Option<Value>,
}

/// `config` of the answer. Fields are read leniently (a value of the wrong type counts as
/// not reported) so that one odd field does not hide the others.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BillingConfig {
    #[serde(default)]
    credit_usage_percent: Option<Value>,
    #[serde(default)]
    current_period: Option<Value>,
    #[serde(default)]
    on_demand_cap: Option<Value>,
    #[serde(default)]
    on_demand_used: Option<Value>,
    #[serde(default)]
    prepaid_balance: Option<Value>,
    #[serde(default)]
    is_unified_billing_user: Option<Value>,
    #[serde(default)]
    product_usage: Option<Value>,
    // The legacy shape.
    #[serde(default)]
    monthly_limit: Option<Value>,
    #[serde(default)]
    used: Option<Value>,
    #[serde(default)]
    billing_period_start: Option<Value>,
    #[serde(default)]
    billing_period_end: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct BillingAnswer {
    #[serde(default)]
    config: Option<Value>,
}

/// A finite number, given as a JSON number or a decimal string (proto3 writes 64-bit
/// integers as strings).
fn number(v: &Value) -> Option<f64> {
    let n = match v {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    n.is_finite().then_some(n)
}

fn cents(v: Option<&Value>) -> Option<i64> {
    serde_json::from_value::<Cent>(v?.clone()).ok()?.cents()
}

/// A time: RFC 3339 text, or unix seconds as a number.
fn instant(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::String(s) => parse_rfc3339(s),
        other => number(other).filter(|n| *n >= 0.0).map(|n| n as u64),
    }
}

fn period_kind(kind: &str) -> Option<QuotaPeriod> {
    let k = kind.to_ascii_uppercase();
    if k.ends_with("WEEKLY") {
        Some(QuotaPeriod::Weekly)
    } else if k.ends_with("MONTHLY") {
        Some(QuotaPeriod::Monthly)
    } else {
        None
    }
}

/// The figures of a billing answer, `None` when it says nothing this plugin can read
/// (not an object, `config` absent, null or empty).
pub fn parse_quota(v: &Value) -> Option<Quota> {
    let answer: BillingAnswer = serde_json::from_value(v.clone()).ok()?;
    let config = answer
        .config
        .filter(|c| c.as_object().is_some_and(|o| !o.is_empty()))?;
    let c: BillingConfig = serde_json::from_value(config).ok()?;
    let period: Period = c
        .current_period
        .as_ref()
        .and_then(|p| serde_json::from_value(p.clone()).ok())
        .unwrap_or_default();
    let credits_shape = c.credit_usage_percent.is_some()
        || c.current_period.is_some()
        || c.on_demand_cap.is_some()
        || c.on_demand_used.is_some()
        || c.prepaid_balance.is_some()
        || c.is_unified_billing_user.is_some()
        || c.product_usage.is_some();
    let limit = c.monthly_limit.as_ref().and_then(legacy_amount);
    let used = c.used.as_ref().and_then(legacy_amount);
    let mut q = Quota {
        percent_used: c
            .credit_usage_percent
            .as_ref()
            .and_then(number)
            .map(|p| p.clamp(0.0, 100.0)),
        period: period.kind.as_deref().and_then(period_kind),
        period_start: instant(period.start.as_ref()),
        resets_at: instant(period.end.as_ref()),
        on_demand_cap_cents: cents(c.on_demand_cap.as_ref()).map(i64::unsigned_abs),
        on_demand_used_cents: cents(c.on_demand_used.as_ref()).map(i64::unsigned_abs),
        prepaid_balance_cents: cents(c.prepaid_balance.as_ref()).map(i64::unsigned_abs),
        credits: None,
    };
    if credits_shape && q.percent_used.is_none() && c.credit_usage_percent.is_none() {
        // proto3 leaves a zero out: a credits answer without the percentage used none.
        q.percent_used = Some(0.0);
    }
    if let Some(limit) = limit {
        let used = used.unwrap_or(0.0);
        q.credits = Some(CreditBalance {
            remaining: (limit - used).max(0.0),
            total: Some(limit),
            unit: CENTS_UNIT.to_owned(),
        });
        if q.percent_used.is_none() && limit > 0.0 {
            q.percent_used = Some((used / limit * 100.0).clamp(0.0, 100.0));
        }
        if q.period.is_none() {
            q.period = Some(QuotaPeriod::Monthly);
        }
        q.period_start = q
            .period_start
            .or_else(|| instant(c.billing_period_start.as_ref()));
        q.resets_at = q
            .resets_at
            .or_else(|| instant(c.billing_period_end.as_ref()));
    }
    (q != Quota::default()).then_some(q)
}

/// A legacy amount: a number, a decimal string, or a `{"val": n}` cent record.
fn legacy_amount(v: &Value) -> Option<f64> {
    match v {
        Value::Object(_) => cents(Some(v)).map(|c| c as f64),
        other => number(other),
    }
}

/// `2026-08-24T00:00:00Z` (or with fractional seconds, or an offset) -> unix seconds;
/// `None` for anything else or a time before 1970.
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let s = s.trim();
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let rb = rest.as_bytes();
            if rb.len() != 6 || !matches!(rb[0], b'+' | b'-') || rb[3] != b':' {
                return None;
            }
            let oh: i64 = rest.get(1..3)?.parse().ok()?;
            let om: i64 = rest.get(4..6)?.parse().ok()?;
            let sign = if rb[0] == b'-' { -1 } else { 1 };
            sign * (oh * 3600 + om * 60)
        }
    };
    let t =
        crate::retry_after::days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset;
    u64::try_from(t).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_credits_shape() {
        let q = parse_quota(&json!({"config": {
            "creditUsagePercent": 42.5,
            "currentPeriod": {"type": "USAGE_PERIOD_TYPE_WEEKLY",
                              "start": "2026-08-17T00:00:00Z", "end": "2026-08-24T00:00:00Z"},
            "onDemandCap": {"val": 5000},
            "onDemandUsed": {"val": "300"},
            "prepaidBalance": {"val": -1250},
            "isUnifiedBillingUser": true,
            "productUsage": [{"product": "PRODUCT_GROK_BUILD", "usagePercent": 61.2}]
        }}))
        .unwrap();
        assert_eq!(
            q,
            Quota {
                percent_used: Some(42.5),
                period: Some(QuotaPeriod::Weekly),
                period_start: Some(1_786_924_800),
                resets_at: Some(1_787_529_600),
                on_demand_cap_cents: Some(5000),
                on_demand_used_cents: Some(300),
                prepaid_balance_cents: Some(1250),
                credits: None,
            }
        );
    }

    #[test]
    fn zero_values_are_omitted_by_the_rail() {
        let q = parse_quota(&json!({"config": {
            "currentPeriod": {"type": "USAGE_PERIOD_TYPE_MONTHLY", "end": "2026-09-01T00:00:00.123+02:00"},
            "onDemandCap": {}
        }}))
        .unwrap();
        assert_eq!(q.percent_used, Some(0.0));
        assert_eq!(q.period, Some(QuotaPeriod::Monthly));
        assert_eq!(q.period_start, None);
        assert_eq!(q.resets_at, Some(1_788_213_600));
        assert_eq!(q.on_demand_cap_cents, Some(0));
        assert_eq!(
            (q.on_demand_used_cents, q.prepaid_balance_cents),
            (None, None)
        );
    }

    #[test]
    fn reads_the_legacy_shape() {
        let q = parse_quota(&json!({"config": {
            "monthlyLimit": 2000, "used": {"val": 500},
            "billingPeriodStart": "2026-08-01T00:00:00Z", "billingPeriodEnd": "2026-09-01T00:00:00Z"
        }}))
        .unwrap();
        assert_eq!(q.percent_used, Some(25.0));
        assert_eq!(q.period, Some(QuotaPeriod::Monthly));
        assert_eq!(
            q.credits,
            Some(CreditBalance {
                remaining: 1500.0,
                total: Some(2000.0),
                unit: CENTS_UNIT.into()
            })
        );
        assert_eq!(
            (q.period_start, q.resets_at),
            (Some(1_785_542_400), Some(1_788_220_800))
        );
    }

    #[test]
    fn answers_that_say_nothing_are_unknown() {
        for v in [
            json!({"config": null}),
            json!({"config": {}}),
            json!({}),
            json!([]),
            json!("12"),
            json!({"remaining": 42}),
            json!({"config": {"isUnifiedBillingUser": "yes", "x": 1}})
                .get("nothing")
                .cloned()
                .unwrap_or(json!(null)),
        ] {
            assert_eq!(parse_quota(&v), None, "{v}");
        }
        // A wrongly typed field is not reported; the others still are.
        let q = parse_quota(
            &json!({"config": {"creditUsagePercent": "lots", "onDemandCap": {"val": 100}}}),
        )
        .unwrap();
        assert_eq!((q.percent_used, q.on_demand_cap_cents), (None, Some(100)));
    }

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_rfc3339("2024-02-29T12:00:00.5Z"), Some(1_709_208_000));
        assert_eq!(parse_rfc3339("2024-02-29"), None);
        assert_eq!(parse_rfc3339("2024-13-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("2024-01-01T00:00:00"), None);
        assert_eq!(parse_rfc3339("1969-12-31T23:59:59Z"), None);
    }
}
