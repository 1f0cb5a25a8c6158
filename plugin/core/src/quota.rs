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

/// The fields of the answer are read from the parsed JSON by name rather than through
/// derived structs: the shapes are lenient (a value of the wrong type counts as not
/// reported, so that one odd field does not hide the others), and no `Value`-to-struct
/// deserializer is linked into the component for them (serde's derive would add one per
/// type).
///
/// Field `key` of the object `v`; absent, `null` or `v` not an object: `None`.
fn field<'v>(v: &'v Value, key: &str) -> Option<&'v Value> {
    v.as_object()?.get(key).filter(|f| !f.is_null())
}

/// Names of `config`'s fields in the credits shape (any of them present marks that shape).
const CREDITS_FIELDS: &[&str] = &[
    "creditUsagePercent",
    "currentPeriod",
    "onDemandCap",
    "onDemandUsed",
    "prepaidBalance",
    "isUnifiedBillingUser",
    "productUsage",
];

/// A finite number, given as a JSON number or a decimal string (proto3 writes 64-bit
/// integers as strings).
fn number(v: &Value) -> Option<f64> {
    let n = match v {
        Value::Number(n) => n.as_f64()?,
        // Read as JSON (proto3's decimal strings are JSON numbers): serde_json's number
        // parser is in the component already, core's `f64` parser need not be.
        Value::String(s) => match serde_json::from_slice(s.trim().as_bytes()) {
            Ok(Value::Number(n)) => n.as_f64()?,
            _ => return None,
        },
        _ => return None,
    };
    n.is_finite().then_some(n)
}

/// `{"val": n}`: an amount in US cents; `{}` is zero (proto3 omits zero values); `None`
/// when `v` is not such a record or `val` is not a number.
fn cents(v: Option<&Value>) -> Option<i64> {
    let v = v?;
    v.as_object()?;
    match field(v, "val") {
        None => Some(0),
        Some(n) => number(n).map(|n| n.round() as i64),
    }
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
    let c = field(v, "config").filter(|c| c.as_object().is_some_and(|o| !o.is_empty()))?;
    let period = field(c, "currentPeriod");
    let in_period = |key| period.and_then(|p| field(p, key));
    let credits_shape = CREDITS_FIELDS.iter().any(|k| field(c, k).is_some());
    let credit_usage_percent = field(c, "creditUsagePercent");
    let limit = field(c, "monthlyLimit").and_then(legacy_amount);
    let used = field(c, "used").and_then(legacy_amount);
    let mut q = Quota {
        percent_used: credit_usage_percent
            .and_then(number)
            .map(|p| p.clamp(0.0, 100.0)),
        period: in_period("type")
            .and_then(Value::as_str)
            .and_then(period_kind),
        period_start: instant(in_period("start")),
        resets_at: instant(in_period("end")),
        on_demand_cap_cents: cents(field(c, "onDemandCap")).map(i64::unsigned_abs),
        on_demand_used_cents: cents(field(c, "onDemandUsed")).map(i64::unsigned_abs),
        prepaid_balance_cents: cents(field(c, "prepaidBalance")).map(i64::unsigned_abs),
        credits: None,
    };
    if credits_shape && q.percent_used.is_none() && credit_usage_percent.is_none() {
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
            .or_else(|| instant(field(c, "billingPeriodStart")));
        q.resets_at = q
            .resets_at
            .or_else(|| instant(field(c, "billingPeriodEnd")));
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

    #[test]
    fn one_odd_field_does_not_hide_the_others() {
        // A period type that is not text still lets its end be read; numbers may be
        // decimal strings; a cent record's `val` may be one too.
        let q = parse_quota(&json!({"config": {
            "creditUsagePercent": " 12.5 ",
            "currentPeriod": {"type": 5, "end": "2026-08-24T00:00:00Z"},
            "onDemandCap": {"val": "1500"},
            "prepaidBalance": [7]
        }}))
        .unwrap();
        assert_eq!(q.percent_used, Some(12.5));
        assert_eq!(q.period, None);
        assert_eq!(q.resets_at, parse_rfc3339("2026-08-24T00:00:00Z"));
        assert_eq!(q.on_demand_cap_cents, Some(1500));
        assert_eq!(q.prepaid_balance_cents, None);
        for text in ["NaN", "inf", "1e400", "12%"] {
            assert_eq!(number(&json!(text)), None, "{text}");
        }
    }
}
