//! `usage`: the subscription rail's credits when it reports them, plainly unknown otherwise;
//! the developer API's routes report nothing.

use grok_provider_core::{CreditBalance, ProviderError, TransportError};
use serde_json::json;

use crate::*;

#[test]
fn the_rail_reports_its_credits() {
    let mut h = H::connected(3);
    h.t.json(
        200,
        json!({"remaining": 1234.5, "total": 5000.0, "unit": "credits", "resets_at": 1_700_086_400u64}),
    );
    let q = ok(h.p.usage(Some("subscription")));
    assert_eq!(q.route, "subscription");
    assert_eq!(
        q.credits,
        Some(CreditBalance {
            remaining: 1234.5,
            total: Some(5000.0),
            unit: "credits".into()
        })
    );
    assert_eq!(
        (q.resets_at, q.fetched_at),
        (Some(1_700_086_400), NOW / 1000)
    );
    assert!(q.detail.contains("billing"), "{}", q.detail);
    let req = &h.t.requests()[0];
    assert_eq!(req.url, SUB_BILLING_URL);
    assert_eq!(
        header(req, "authorization"),
        Some(format!("Bearer {}", h.creds().access_token))
    );
    assert_eq!(
        header(req, "x-xai-token-auth").as_deref(),
        Some("xai-grok-cli")
    );

    // Other spellings, nested, a default unit.
    let mut h = H::connected(3).configured(&[("default-route", "subscription")]);
    h.t.json(200, json!({"credits": {"balance": "12", "limit": 50}}));
    let q = ok(h.p.usage(None));
    assert_eq!(q.route, "subscription");
    assert_eq!(
        q.credits,
        Some(CreditBalance {
            remaining: 12.0,
            total: Some(50.0),
            unit: "credits".into()
        })
    );
    assert_eq!(q.resets_at, None);
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
    ] {
        let mut h = H::connected(3);
        h.t.reply(status, body);
        let q = ok(h.p.usage(Some("subscription")));
        assert_eq!((q.credits, q.resets_at), (None, None), "{status} {body}");
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
        assert_eq!(q.route, route.unwrap_or("api"));
        assert_eq!((q.credits, q.resets_at), (None, None));
        assert!(
            q.detail.contains("reports no remaining quota"),
            "{}",
            q.detail
        );
        assert_eq!(h.t.count(), 0);
    }
}
