//! The rail's quota: `GET /v1/billing?format=credits` (reference doc §3.1, GB
//! `extensions/billing.rs`). The answer is proto3 JSON: camelCase, zero values left out,
//! amounts as `Cent` messages (`{"val": cents}`, `{}` for 0), and no "credits remaining"
//! number at all: the included allowance is a percentage used plus a reset time.

use serde::Serialize;
use serde_json::json;

use crate::http::{RecordedRequest, Reply, form_value, unix_now};

/// The kind of usage period (`currentPeriod.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum PeriodType {
    /// `USAGE_PERIOD_TYPE_WEEKLY` ("Weekly limit" in xAI's CLI).
    #[serde(rename = "USAGE_PERIOD_TYPE_WEEKLY")]
    Weekly,
    /// `USAGE_PERIOD_TYPE_MONTHLY` ("Monthly limit").
    #[serde(rename = "USAGE_PERIOD_TYPE_MONTHLY")]
    Monthly,
}

/// A usage period; `start` and `end` are unix seconds, sent as RFC 3339.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsagePeriod {
    /// Weekly or monthly.
    pub kind: PeriodType,
    /// Start (unix seconds).
    pub start: u64,
    /// End, when the allowance resets (unix seconds).
    pub end: u64,
}

/// One product's share (`productUsage[]`).
#[derive(Debug, Clone, PartialEq)]
pub struct ProductUsage {
    /// e.g. `PRODUCT_GROK_BUILD`.
    pub product: String,
    /// Percent used, 0–100.
    pub usage_percent: f64,
}

/// The `config` of a billing answer in its current shape. Amounts are US cents; `None`
/// leaves the field out, `Some(0)` sends `{}` (proto3's empty `Cent`).
#[derive(Debug, Clone, PartialEq)]
pub struct BillingConfig {
    /// Share of the included allowance used, 0–100 (left out when 0).
    pub credit_usage_percent: f64,
    /// The current period.
    pub current_period: Option<UsagePeriod>,
    /// Pay-as-you-go cap.
    pub on_demand_cap: Option<i64>,
    /// Pay-as-you-go used.
    pub on_demand_used: Option<i64>,
    /// Prepaid credits; may be negative (an accounting sign: clients show the magnitude).
    pub prepaid_balance: Option<i64>,
    /// `isUnifiedBillingUser` (left out when false).
    pub is_unified_billing_user: bool,
    /// `productUsage`.
    pub product_usage: Vec<ProductUsage>,
}

impl BillingConfig {
    /// The doc's example: 42.5 % of a weekly allowance (2 days in, 5 to go), a $50.00
    /// on-demand cap with $3.00 used, $12.50 prepaid.
    pub fn example() -> Self {
        let now = unix_now();
        Self {
            credit_usage_percent: 42.5,
            current_period: Some(UsagePeriod {
                kind: PeriodType::Weekly,
                start: now - 2 * 86_400,
                end: now + 5 * 86_400,
            }),
            on_demand_cap: Some(5000),
            on_demand_used: Some(300),
            prepaid_balance: Some(1250),
            is_unified_billing_user: true,
            product_usage: vec![ProductUsage {
                product: "PRODUCT_GROK_BUILD".into(),
                usage_percent: 61.2,
            }],
        }
    }
}

/// What `GET /v1/billing?format=credits` answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Billing {
    /// 200 `{"config": {…}}` in the current shape.
    Config(BillingConfig),
    /// 200 `{"config": null}` (the rail has nothing to say).
    NullConfig,
    /// 200 `{}`: every field at its zero value, proto3 leaves out even `config`.
    Empty,
    /// 200 in the legacy shape xAI's CLI still parses: `{"config": {"monthlyLimit": Cent,
    /// "used": Cent, "billingPeriodStart", "billingPeriodEnd"}}`. That the two amounts are
    /// `Cent` messages and the dates RFC 3339 is a guess (the doc names only the fields).
    Legacy {
        /// The period's allowance, cents.
        monthly_limit: i64,
        /// Used so far, cents.
        used: i64,
        /// Period start (unix seconds).
        period_start: u64,
        /// Period end (unix seconds).
        period_end: u64,
    },
    /// A flat error `{"error": message}` with this status (§3.1: errors are flat).
    Error {
        /// HTTP status.
        status: u16,
        /// The `error` text.
        message: String,
    },
    /// 404 as for a path the rail does not serve.
    NotFound,
    /// 500 `{"error": "…"}`.
    ServerError,
    /// 200 JSON of another shape: `{"foo":1}`.
    WrongShape,
    /// 200 `application/json` whose body is not JSON.
    NotJson,
}

impl Default for Billing {
    /// [`BillingConfig::example`].
    fn default() -> Self {
        Billing::Config(BillingConfig::example())
    }
}

/// proto3's `Cent` message: `{"val": n}`, `{}` for 0. The doc shows `val` as a JSON
/// number (proto3 would send an int64 as a string; GB's test fixtures use numbers).
#[derive(Serialize)]
struct Cent {
    #[serde(skip_serializing_if = "is_zero")]
    val: i64,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

fn cent(v: Option<i64>) -> Option<Cent> {
    v.map(|val| Cent { val })
}

#[derive(Serialize)]
struct PeriodWire {
    #[serde(rename = "type")]
    kind: PeriodType,
    start: String,
    end: String,
}

impl From<UsagePeriod> for PeriodWire {
    fn from(p: UsagePeriod) -> Self {
        Self {
            kind: p.kind,
            start: rfc3339(p.start),
            end: rfc3339(p.end),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProductUsageWire<'a> {
    product: &'a str,
    #[serde(skip_serializing_if = "is_zero_f64")]
    usage_percent: f64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ConfigWire<'a> {
    #[serde(skip_serializing_if = "is_zero_f64")]
    credit_usage_percent: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    current_period: Option<PeriodWire>,
    #[serde(skip_serializing_if = "Option::is_none")]
    on_demand_cap: Option<Cent>,
    #[serde(skip_serializing_if = "Option::is_none")]
    on_demand_used: Option<Cent>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prepaid_balance: Option<Cent>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    is_unified_billing_user: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    product_usage: Vec<ProductUsageWire<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LegacyWire {
    monthly_limit: Cent,
    used: Cent,
    billing_period_start: String,
    billing_period_end: String,
}

fn is_zero_f64(v: &f64) -> bool {
    *v == 0.0
}

/// The wire body of a current-shape config.
pub(super) fn config_json(config: &BillingConfig) -> serde_json::Value {
    let wire = ConfigWire {
        credit_usage_percent: config.credit_usage_percent,
        current_period: config.current_period.map(PeriodWire::from),
        on_demand_cap: cent(config.on_demand_cap),
        on_demand_used: cent(config.on_demand_used),
        prepaid_balance: cent(config.prepaid_balance),
        is_unified_billing_user: config.is_unified_billing_user,
        product_usage: config
            .product_usage
            .iter()
            .map(|p| ProductUsageWire {
                product: &p.product,
                usage_percent: p.usage_percent,
            })
            .collect(),
    };
    json!({ "config": wire })
}

/// `GET /v1/billing?format=credits` (an authenticated request).
pub(super) fn answer(billing: &Billing, req: &RecordedRequest) -> Reply {
    if req.method != "GET" {
        return Reply::json(405, &json!({"error": "Method not allowed"}));
    }
    let format = req
        .query
        .as_deref()
        .and_then(|q| form_value(q.as_bytes(), "format"));
    if format.as_deref() != Some("credits") {
        // Only `format=credits` is known (GB's only call); the refusal's text is a guess.
        return Reply::json(
            400,
            &json!({"error": "Invalid 'format': supported is credits"}),
        );
    }
    match billing {
        Billing::Config(config) => Reply::json(200, &config_json(config)),
        Billing::NullConfig => Reply::json(200, &json!({"config": null})),
        Billing::Empty => Reply::json(200, &json!({})),
        Billing::Legacy {
            monthly_limit,
            used,
            period_start,
            period_end,
        } => {
            let wire = LegacyWire {
                monthly_limit: Cent {
                    val: *monthly_limit,
                },
                used: Cent { val: *used },
                billing_period_start: rfc3339(*period_start),
                billing_period_end: rfc3339(*period_end),
            };
            Reply::json(200, &json!({ "config": wire }))
        }
        Billing::Error { status, message } => Reply::json(*status, &json!({"error": message})),
        Billing::NotFound => super::no_such_endpoint(),
        Billing::ServerError => Reply::json(
            500,
            &json!({"error": "The service is temporarily unavailable."}),
        ),
        Billing::WrongShape => Reply::json(200, &json!({"foo": 1})),
        Billing::NotJson => Reply::raw(200, "application/json", "credits: plenty"),
    }
}

/// Unix seconds as RFC 3339 UTC (`2026-09-01T12:00:00Z`), by the civil-from-days
/// algorithm (H. Hinnant), to avoid a date crate for one format.
pub(crate) fn rfc3339(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_of_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_788_912_345), "2026-09-09T00:05:45Z");
    }

    #[test]
    fn zero_values_are_left_out_and_zero_cents_are_empty() {
        let config = BillingConfig {
            credit_usage_percent: 0.0,
            current_period: None,
            on_demand_cap: Some(0),
            on_demand_used: None,
            prepaid_balance: Some(-250),
            is_unified_billing_user: false,
            product_usage: Vec::new(),
        };
        assert_eq!(
            config_json(&config),
            json!({"config": {"onDemandCap": {}, "prepaidBalance": {"val": -250}}})
        );
    }
}
