//! `logout`: best-effort revocation, then everything local goes.

use grok_provider_core::discovery::{DISCOVERY_KEY, DiscoveryCache, Endpoints};
use grok_provider_core::{LogoutReport, TransportError};

use crate::*;

fn with_leftovers(h: &H) {
    // The caches of both OAuth routes, and the one kept before routes existed.
    for key in ["models.api", "models.subscription", "models"] {
        h.s.put(key, br#"{"fetched_at_ms":0,"models":[],"media_models":[]}"#);
    }
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

/// The memory store behind a host that cannot read some keys back: `get` of any of them
/// fails the way the component reports the host's `corrupt` (or `too-large`) error.
struct UnreadableStore {
    inner: fakes::MemoryStore,
    unreadable: &'static [&'static str],
    message: &'static str,
}

impl grok_provider_core::io::SecretStore for UnreadableStore {
    type Guard = fakes::MemoryGuard;
    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, grok_provider_core::io::StoreError> {
        if self.unreadable.contains(&key) && self.inner.raw(key).is_some() {
            return Err(grok_provider_core::io::StoreError::Failed(
                self.message.into(),
            ));
        }
        self.inner.get(key)
    }
    fn set(&mut self, key: &str, value: &[u8]) -> Result<(), grok_provider_core::io::StoreError> {
        self.inner.set(key, value)
    }
    fn delete(&mut self, key: &str) -> Result<(), grok_provider_core::io::StoreError> {
        self.inner.delete(key)
    }
    fn list_keys(
        &mut self,
        prefix: &str,
    ) -> Result<Vec<String>, grok_provider_core::io::StoreError> {
        self.inner.list_keys(prefix)
    }
    fn lock(
        &mut self,
        name: &str,
        timeout_ms: u32,
    ) -> Result<fakes::MemoryGuard, grok_provider_core::io::StoreError> {
        self.inner.lock(name, timeout_ms)
    }
}

#[test]
fn logout_deletes_credentials_the_store_reports_corrupt() {
    for message in [
        "corrupt: corrupt secret: key \"credentials\" of tenant \"t\": authentication failed",
        "too large: the stored value of key \"credentials\" is 3221225472 bytes on disk",
    ] {
        // Connected, with leftovers; then the stored credentials stop decrypting.
        let h = H::connected(3);
        with_leftovers(&h);
        let mut p = grok_provider_core::Provider::new(
            settings(),
            h.t.clone(),
            UnreadableStore {
                inner: h.s.clone(),
                unreadable: &["credentials"],
                message,
            },
            h.c.clone(),
        );
        // The store refuses to read them: status fails, logout still deletes them.
        assert!(p.status().is_err(), "{message}");
        assert_eq!(
            ok(p.logout()),
            LogoutReport {
                was_connected: true,
                revoked: false
            },
            "{message}"
        );
        // No revocation was attempted: there is no token to send.
        assert_eq!(h.t.count(), 0);
        assert!(h.s.raw("credentials").is_none());
        assert_eq!(h.s.keys(), vec![DISCOVERY_KEY.to_owned()]);
        assert_eq!(h.s.locks_taken(), vec!["login", "credentials"]);
        assert!(!h.s.any_lock_held());
        // And the tenant is cleanly disconnected afterwards.
        assert_eq!(
            ok(p.logout()),
            LogoutReport {
                was_connected: false,
                revoked: false
            }
        );
    }
}
