//! The test's side of the authorization server: the user's decisions, faults, counters,
//! minted grants and a verifier for the API server.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::Value;

use super::{
    AuthShared, AuthStats, DEVICE_PATH, DISCOVERY_PATH, DeviceStatus, IssuedTokens, REVOKE_PATH,
    RefreshFailure, TOKEN_PATH, device, token,
};
use crate::error::Result;
use crate::faults::{Fault, Route};
use crate::http::{RecordedRequest, Running, lock};
use crate::verify::{Claims, TokenVerifier};

/// A running reference authorization server: the test's eyes and the user's browser.
/// Dropping it stops the server.
pub struct AuthHandle {
    pub(super) shared: Arc<AuthShared>,
    pub(super) running: Running,
}

impl fmt::Debug for AuthHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthHandle")
            .field("issuer", &self.shared.issuer)
            .finish()
    }
}

impl AuthHandle {
    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn issuer(&self) -> &str {
        &self.shared.issuer
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.running.addr()
    }

    /// `{issuer}/.well-known/openid-configuration`.
    pub fn discovery_url(&self) -> String {
        self.shared.url(DISCOVERY_PATH)
    }

    /// The token endpoint URL.
    pub fn token_endpoint(&self) -> String {
        self.shared.url(TOKEN_PATH)
    }

    /// The device authorization endpoint URL.
    pub fn device_authorization_endpoint(&self) -> String {
        self.shared.url(DEVICE_PATH)
    }

    /// The revocation endpoint URL.
    pub fn revocation_endpoint(&self) -> String {
        self.shared.url(REVOKE_PATH)
    }

    /// The accepted client id.
    pub fn client_id(&self) -> &str {
        &self.shared.config.client_id
    }

    /// Whether the server still accepts connections (false after the lifetime guard fired).
    pub fn is_running(&self) -> bool {
        self.running.is_running()
    }

    /// The user approves: the next poll of this code's device code succeeds once, with
    /// tokens carrying `tier` and `sub = subject`.
    pub fn approve(&self, user_code: &str, tier: u32, subject: &str) -> Result<()> {
        device::decide(
            &self.shared,
            user_code,
            DeviceStatus::Approved {
                tier,
                subject: subject.to_owned(),
            },
        )
    }

    /// The user (or the account gate) denies: polls answer `access_denied`.
    pub fn deny(&self, user_code: &str) -> Result<()> {
        device::decide(&self.shared, user_code, DeviceStatus::Denied)
    }

    /// Expire the device code now: polls answer `expired_token`.
    pub fn expire(&self, user_code: &str) -> Result<()> {
        device::decide(&self.shared, user_code, DeviceStatus::Expired)
    }

    /// The user code of the newest device authorization.
    pub fn latest_user_code(&self) -> Option<String> {
        lock(&self.shared.state).latest_user_code.clone()
    }

    /// Answer the next `n` device-code polls with `slow_down` (each raises that code's
    /// interval by 5 s, as RFC 8628 requires).
    pub fn force_slow_down(&self, n: u32) {
        lock(&self.shared.state).forced_slow_downs += n;
    }

    /// Revoke every grant (and so all its tokens), e.g. a cancelled subscription.
    /// Returns how many were newly revoked.
    pub fn revoke_all(&self) -> usize {
        let mut state = lock(&self.shared.state);
        let before = state.stats.grants_revoked;
        for grant in 0..state.grants.len() {
            state.revoke_grant(grant);
        }
        (state.stats.grants_revoked - before) as usize
    }

    /// Change the subscription tier of every grant of `subject`: access tokens minted
    /// from now on (refreshes) carry the new `tier`. Returns how many grants changed.
    pub fn set_tier(&self, subject: &str, tier: u32) -> usize {
        let mut state = lock(&self.shared.state);
        let mut changed = 0;
        for grant in state.grants.iter_mut().filter(|g| g.subject == subject) {
            grant.tier = tier;
            changed += 1;
        }
        changed
    }

    /// Mint a grant directly (no device flow): an access token and a refresh token.
    pub fn issue_grant(&self, tier: u32, subject: &str) -> IssuedTokens {
        let client_id = self.shared.config.client_id.clone();
        self.issue_grant_for(&client_id, tier, subject)
    }

    /// Mint a grant for another client id (one of [`super::AuthConfig::other_client_ids`],
    /// or the main one): a second tool's login of the same account.
    pub fn issue_grant_for(&self, client_id: &str, tier: u32, subject: &str) -> IssuedTokens {
        let mut state = lock(&self.shared.state);
        let scope = "openid profile email offline_access grok-cli:access api:access";
        let grant = token::new_grant(&mut state, client_id, subject, tier, scope);
        let (access_token, refresh_token) = token::mint(&self.shared, &mut state, grant, true);
        IssuedTokens {
            access_token,
            refresh_token: refresh_token.unwrap_or_default(),
        }
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> AuthStats {
        lock(&self.shared.state).stats.clone()
    }

    /// The JWKS document as served at `/.well-known/jwks.json`.
    pub fn jwks_json(&self) -> String {
        self.shared.signer.jwks().to_string()
    }

    /// A verifier for this server's access tokens: signature, `exp`, `iss`, `aud` (the
    /// client id), and revocation (a revoked token or grant is refused while this server's
    /// handle lives).
    pub fn verifier(&self) -> TokenVerifier {
        let weak = Arc::downgrade(&self.shared);
        let check = move |claims: &Claims| -> bool {
            let Some(shared) = weak.upgrade() else {
                return false;
            };
            let Some(jti) = claims.get("jti").and_then(Value::as_str) else {
                return false;
            };
            let state = lock(&shared.state);
            state.revoked_jti.contains(jti)
                || state
                    .access
                    .get(jti)
                    .is_some_and(|&g| state.grants.get(g).is_some_and(|g| g.revoked))
        };
        TokenVerifier::from_jwks_json(&self.jwks_json())
            .expect("own JWKS is valid")
            .with_issuer(self.shared.issuer.clone())
            .with_audience(self.shared.config.client_id.clone())
            .with_revocation(Arc::new(check))
    }

    /// Fail the next `n` refreshes (device-code polls are not affected) with a transient
    /// error that xAI's CLI retries (reference doc §1.6); nothing is consumed.
    pub fn fail_refreshes(&self, n: usize, failure: RefreshFailure) {
        for _ in 0..n {
            self.shared
                .faults
                .push(Route::Refresh, failure.fault(), false);
        }
    }

    /// Queue a fault for the next request to `route`; the request is not processed.
    pub fn push_fault(&self, route: Route, fault: Fault) {
        self.shared.faults.push(route, fault, false);
    }

    /// Queue a fault applied after the request was processed (its effects happen, e.g. a
    /// refresh token is consumed, but the answer is lost or replaced).
    pub fn push_fault_after_processing(&self, route: Route, fault: Fault) {
        self.shared.faults.push(route, fault, true);
    }

    /// Drop every queued fault.
    pub fn clear_faults(&self) {
        self.shared.faults.clear();
    }

    /// Number of queued faults not served yet.
    pub fn pending_faults(&self) -> usize {
        self.shared.faults.len()
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.log.snapshot()
    }

    /// Forget the logged requests.
    pub fn clear_requests(&self) {
        self.shared.log.clear();
    }
}
