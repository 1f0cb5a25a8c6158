//! `logout`: best-effort revocation, then everything local goes.

use grok_provider_core::discovery::{DISCOVERY_KEY, DiscoveryCache, Endpoints};
use grok_provider_core::{LogoutReport, TransportError};

use crate::*;

fn with_leftovers(h: &H) {
    h.s.put(
        "models",
        br#"{"fetched_at_ms":0,"models":[],"media_models":[]}"#,
    );
    h.s.put("pending.0123456789abcdef0123456789abcdef", b"{}");
    h.s.put("pending.fedcba9876543210fedcba9876543210", b"garbage");
}

#[test]
fn logout_revokes_and_flushes() {
    let mut h = H::connected(3);
    with_leftovers(&h);
    h.t.reply(200, "");
    assert_eq!(
        ok(h.p.logout()),
        LogoutReport {
            was_connected: true,
            revoked: true
        }
    );
    let req = &h.t.requests()[0];
    assert_eq!(req.url, REVOKE_URL);
    let f = form(req);
    assert_eq!(f["token"], "rt-SECRET-1");
    assert_eq!(f["token_type_hint"], "refresh_token");
    assert_eq!(f["client_id"], "b1a00492-073a-47ea-816f-4c329264a828");
    assert_eq!(header(req, "user-agent").as_deref(), Some(UA));
    assert_eq!(h.s.keys(), vec![DISCOVERY_KEY.to_owned()]);
    assert_eq!(h.s.locks_taken(), vec!["login", "credentials"]);
    assert!(!h.s.any_lock_held());
}

#[test]
fn failed_revocation_still_logs_out() {
    for fail in [0, 1] {
        let mut h = H::connected(1);
        with_leftovers(&h);
        if fail == 0 {
            h.t.reply(503, "down");
        } else {
            h.t.fail(TransportError::Failed("reset".into()));
        }
        assert_eq!(
            ok(h.p.logout()),
            LogoutReport {
                was_connected: true,
                revoked: false
            }
        );
        assert_eq!(h.s.keys(), vec![DISCOVERY_KEY.to_owned()]);
    }
}

#[test]
fn logout_without_revocation_endpoint_or_credentials() {
    let mut h = H::connected(1);
    let record = DiscoveryCache {
        issuer: ISSUER.into(),
        fetched_at_ms: NOW,
        endpoints: Endpoints {
            device_authorization_endpoint: Some(DEVICE_URL.into()),
            token_endpoint: TOKEN_URL.into(),
            revocation_endpoint: None,
        },
    };
    h.s.put(DISCOVERY_KEY, &serde_json::to_vec(&record).unwrap());
    assert_eq!(
        ok(h.p.logout()),
        LogoutReport {
            was_connected: true,
            revoked: false
        }
    );
    assert_eq!(h.t.count(), 0);
    assert!(h.s.raw("credentials").is_none());

    let mut h = H::new();
    with_leftovers(&h);
    assert_eq!(
        ok(h.p.logout()),
        LogoutReport {
            was_connected: false,
            revoked: false
        }
    );
    assert_eq!(h.t.count(), 0);
    assert_eq!(h.s.keys(), vec![DISCOVERY_KEY.to_owned()]);

    // Corrupt credentials can still be logged out.
    let mut h = H::new();
    h.s.put("credentials", b"not json");
    assert_eq!(
        ok(h.p.logout()),
        LogoutReport {
            was_connected: true,
            revoked: false
        }
    );
    assert!(h.s.raw("credentials").is_none());
}
