//! `usage`: the subscription rail's allowance when it reports it, plainly unknown otherwise;
//! the developer API's routes report nothing.

use grok_provider_core::{CreditBalance, ProviderError, QuotaPeriod, TransportError};
use serde_json::json;

use crate::*;

#[test]
fn the_rail_reports_its_allowance_as_xais_cli_reads_it() {
    let mut h = H::connected(1);
    h.t.json(
        200,
        json!({"config": {
            "creditUsagePercent": 42.5,
            "currentPeriod": {"type": "USAGE_PERIOD_TYPE_WEEKLY",
                              "start": "2023-11-13T00:00:00Z", "end": "2023-11-20T00:00:00Z"},
            "onDemandCap": {"val": 5000},
            "onDemandUsed": {"val": 300},
            "prepaidBalance": {"val": -1250},
            "isUnifiedBillingUser": true
        }}),
    );
    let q = ok(h.p.usage(Some("subscription")));
    assert_eq!(q.route, "subscription");
    assert_eq!(q.percent_used, Some(42.5));
    assert_eq!(q.period, Some(QuotaPeriod::Weekly));
    assert_eq!(
        (q.period_start, q.resets_at, q.fetched_at),
        (Some(1_699_833_600), Some(1_700_438_400), NOW / 1000)
    );
    assert_eq!(
        (
            q.on_demand_cap_cents,
            q.on_demand_used_cents,
            q.prepaid_balance_cents
        ),
        (Some(5000), Some(300), Some(1250))
    );
    assert_eq!(q.credits, None);
    assert!(
        q.detail.contains("billing") && q.detail.contains("cents"),
        "{}",
        q.detail
    );
    let req = &h.t.requests()[0];
    assert_eq!(req.url, SUB_BILLING_URL);
    assert_eq!(
        header(req, "authorization"),
        Some(format!("Bearer {}", h.creds().access_token.expose()))
    );
    for (name, value) in [
        ("x-xai-token-auth", "xai-grok-cli"),
        ("x-grok-client-version", "1.0.6"),
        ("x-grok-client-mode", "headless"),
    ] {
        assert_eq!(header(req, name).as_deref(), Some(value), "{name}");
    }

    // The legacy shape, on the default route (now the subscription).
    let mut h = H::connected(1).defaults();
    h.t.json(
        200,
        json!({"config": {"monthlyLimit": 2000, "used": 500,
                          "billingPeriodEnd": "2023-12-01T00:00:00Z"}}),
    );
    let q = ok(h.p.usage(None));
    assert_eq!(q.route, "subscription");
    assert_eq!(q.percent_used, Some(25.0));
    assert_eq!(q.period, Some(QuotaPeriod::Monthly));
    assert_eq!(
        q.credits,
        Some(CreditBalance {
            remaining: 1500.0,
            total: Some(2000.0),
            unit: "usd_cents".into()
        })
    );
    assert_eq!(q.resets_at, Some(1_701_388_800));
}

#[test]
fn an_answer_without_a_figure_is_plainly_unknown() {
    for (status, body) in [
        (404, "{\"error\":\"not found\"}"),
        (500, "boom"),
        (503, ""),
        (200, "<html>not json</html>"),
        (200, "{\"status\":\"ok\"}"),
        (200, "{\"remaining\":\"lots\"}"),
        (200, "{\"config\":null}"),
        (200, "{\"config\":{}}"),
    ] {
        let mut h = H::connected(3);
        h.t.reply(status, body);
        let q = ok(h.p.usage(Some("subscription")));
        assert_eq!(
            (q.credits, q.resets_at, q.percent_used, q.period),
            (None, None, None, None),
            "{status} {body}"
        );
        assert!(q.detail.starts_with("unknown:"), "{}", q.detail);
        assert_eq!(h.t.count(), 1, "a figure nobody waits for is not retried");
        assert!(h.c.sleeps().is_empty());
    }
}

#[test]
fn missing_or_rejected_credentials_stay_errors() {
    let mut h = H::new();
    assert!(matches!(
        err(h.p.usage(Some("subscription"))),
        ProviderError::NotConnected(_)
    ));
    let mut h = H::connected(3);
    h.t.json(401, json!({"error": "no"}));
    h.t.json(400, json!({"error": "invalid_grant"}));
    assert!(matches!(
        err(h.p.usage(Some("subscription"))),
        ProviderError::Unauthorized(_)
    ));
    let mut h = H::connected(3);
    h.t.fail(TransportError::Denied("not allowed".into()));
    assert!(matches!(
        err(h.p.usage(Some("subscription"))),
        ProviderError::DeniedBySandbox(_)
    ));
}

#[test]
fn the_api_routes_report_no_figure_without_asking() {
    for route in [None, Some("api"), Some("api-key")] {
        let mut h = H::connected(1).with_key();
        let q = ok(h.p.usage(route));
        assert_eq!(
            q.route,
            route.unwrap_or("api"),
            "the tests pin the default to api"
        );
        assert_eq!((q.credits, q.resets_at), (None, None));
        assert!(
            q.detail.contains("reports no remaining quota"),
            "{}",
            q.detail
        );
        assert_eq!(h.t.count(), 0);
    }
}
