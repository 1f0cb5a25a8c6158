//! What is left of a route's quota: the subscription rail's billing answer, read leniently.

use serde_json::{Map, Value};

use crate::json::as_u64;
use crate::types::CreditBalance;

/// Path (under the subscription base) of the credits balance.
pub const BILLING_PATH: &str = "billing?format=credits";
/// What a balance is counted in when upstream does not say.
pub const DEFAULT_UNIT: &str = "credits";
/// Where a known balance comes from, for the report.
pub const BILLING_SOURCE: &str =
    "the subscription rail's billing endpoint (GET /billing?format=credits)";
/// Why the developer API's routes have no figure.
pub const NO_API_QUOTA: &str = "unknown: xAI's API reports no remaining quota to this client (see console.x.ai for API credits)";

/// A balance read from a billing answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Credits {
    /// The balance.
    pub balance: CreditBalance,
    /// When it resets (unix seconds), when said.
    pub resets_at: Option<u64>,
}

/// A finite number, given as a JSON number or a decimal string.
fn number(v: &Value) -> Option<f64> {
    let n = match v {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    n.is_finite().then_some(n)
}

fn first_number(obj: &Map<String, Value>, names: &[&str]) -> Option<f64> {
    names.iter().find_map(|n| obj.get(*n).and_then(number))
}

fn read(obj: &Map<String, Value>) -> Option<Credits> {
    let remaining = first_number(
        obj,
        &[
            "remaining",
            "remaining_credits",
            "balance",
            "credits_remaining",
        ],
    )?;
    let unit = obj
        .get("unit")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|u| !u.is_empty() && u.len() <= 32 && u.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or(DEFAULT_UNIT)
        .to_owned();
    Some(Credits {
        balance: CreditBalance {
            remaining,
            total: first_number(obj, &["total", "limit"]),
            unit,
        },
        resets_at: obj.get("resets_at").and_then(as_u64),
    })
}

/// The balance of a billing answer: a JSON object with a numeric `remaining` (or
/// `remaining_credits`, `balance`, `credits_remaining`), optional `total` (or `limit`),
/// `unit` (default `credits`) and `resets_at` (unix seconds), at the top or nested under
/// `credits`. `None` when no balance can be read.
pub fn parse_credits(v: &Value) -> Option<Credits> {
    let obj = v.as_object()?;
    read(obj).or_else(|| obj.get("credits").and_then(Value::as_object).and_then(read))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_reference_shape_and_its_variants() {
        let c = parse_credits(
            &json!({"remaining": 42.5, "total": 100.0, "unit": "credits", "resets_at": 1_700_003_600u64}),
        )
        .unwrap();
        assert_eq!(
            c,
            Credits {
                balance: CreditBalance {
                    remaining: 42.5,
                    total: Some(100.0),
                    unit: "credits".into()
                },
                resets_at: Some(1_700_003_600)
            }
        );
        let c = parse_credits(
            &json!({"credits": {"remaining_credits": "7", "limit": 10, "unit": "usd"}}),
        )
        .unwrap();
        assert_eq!(
            (
                c.balance.remaining,
                c.balance.total,
                c.balance.unit.as_str(),
                c.resets_at
            ),
            (7.0, Some(10.0), "usd", None)
        );
        let c = parse_credits(&json!({"balance": 0})).unwrap();
        assert_eq!(
            (c.balance.remaining, c.balance.unit.as_str()),
            (0.0, "credits")
        );
        assert_eq!(
            parse_credits(&json!({"credits_remaining": 3, "unit": "a\\nb c"}))
                .unwrap()
                .balance
                .unit,
            "credits"
        );
    }

    #[test]
    fn unreadable_answers_are_unknown() {
        for v in [
            json!([]),
            json!("12"),
            json!({}),
            json!({"remaining": "lots"}),
            json!({"remaining": null}),
            json!({"credits": 5}),
            json!({"credits": {"total": 5}}),
        ] {
            assert_eq!(parse_credits(&v), None, "{v}");
        }
    }
}
