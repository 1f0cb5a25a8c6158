//! The device login (RFC 8628): `start` asks for a device code, `poll` redeems it once the
//! user approved. Each flow lives in the store under `pending.<id>`; its device code never
//! leaves the store.

use super::{CREDENTIALS_LOCK, LOCK_TIMEOUT_MS, LOGIN_LOCK, Provider};
use crate::device::{
    PENDING_PREFIX, PendingFlow, SLOW_DOWN_STEP_SECS, hex, parse_device_authorization, pending_key,
    valid_pending_id,
};
use crate::error::ProviderError;
use crate::http::{post_form, read_reply};
use crate::io::{Clock, SecretStore, Transport};
use crate::oauth::{OAuthAction, OAuthError, OAuthReply, classify_oauth, describe};
use crate::token::{Credentials, TokenResponse};
use crate::types::{DevicePrompt, PollOutcome};

const GRANT_DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Guidance for xAI's account gate (`access_denied` at the token endpoint).
pub const ACCESS_DENIED_GUIDANCE: &str = "xAI refused this login (access_denied). This is xAI's account gate, \
not a client bug, and it is deterministic per account: do not retry blindly. \
1) Verify that the subscription (X Premium, X Premium+, SuperGrok or SuperGrok Heavy) is active at grok.com. \
2) Call start again and open the verification URL in the browser where you are already logged in to xAI \
(not a fresh private window). \
3) If it is still denied, use an xAI API key instead (BYOK, key from https://console.x.ai, billed per token).";

fn device_code_expired() -> ProviderError {
    ProviderError::DeviceCodeExpired(
        "the device code expired before approval: call start again".into(),
    )
}

impl<T: Transport, S: SecretStore, C: Clock> Provider<T, S, C> {
    /// Begin a device login: discovery, then the device authorization request. The flow
    /// is stored under `pending.<id>`; the device code never leaves the store.
    pub fn start(&mut self) -> Result<DevicePrompt, ProviderError> {
        let endpoints = self.endpoints()?;
        let device_endpoint = endpoints
            .device_authorization_endpoint
            .ok_or_else(|| ProviderError::InvalidResponse("device flow not offered".into()))?;
        let (client_id, scope) = (self.settings.client_id.clone(), self.settings.scope.clone());
        let req = post_form(
            device_endpoint,
            &self.user_agent(),
            &[("client_id", &client_id), ("scope", &scope)],
        );
        let resp = self.send(req)?;
        if resp.status == 404 {
            return Err(ProviderError::InvalidResponse(
                "device flow disabled".into(),
            ));
        }
        let reply = read_reply(resp, "device authorization")?;
        let auth = match classify_oauth(&reply, "device authorization", &[]) {
            OAuthReply::Success(v) => parse_device_authorization(&v)?,
            OAuthReply::Error {
                code: OAuthError::AccessDenied,
                ..
            } => {
                return Err(ProviderError::AccessDenied(ACCESS_DENIED_GUIDANCE.into()));
            }
            OAuthReply::Error { code, description } if code.action() == OAuthAction::RetryLater => {
                return Err(ProviderError::UpstreamUnavailable(format!(
                    "the device authorization endpoint cannot start a login now ({}): retry shortly",
                    describe(&code, description.as_deref())
                )));
            }
            OAuthReply::Error { code, description } => {
                return Err(ProviderError::InvalidResponse(format!(
                    "device authorization refused: {}",
                    describe(&code, description.as_deref())
                )));
            }
            OAuthReply::Failure(e) => return Err(e),
        };
        let now = self.now();
        self.prune_expired_flows(now);
        let mut raw = [0u8; 16];
        self.clock.random_bytes(&mut raw);
        let id = hex(&raw);
        let flow = PendingFlow::new(auth, now);
        self.save_json(&pending_key(&id), &flow)?;
        Ok(flow.prompt(&id, now))
    }

    /// Forget flows whose device code expired (best effort housekeeping).
    fn prune_expired_flows(&mut self, now: u64) {
        let Ok(keys) = self.store.list_keys(PENDING_PREFIX) else {
            return;
        };
        for key in keys {
            let flow: Option<PendingFlow> = self.load_json(&key).unwrap_or(None);
            if flow.is_none_or(|f| f.is_expired(now)) {
                let _ = self.store.delete(&key);
            }
        }
    }

    /// The flow `id`, or the newest one.
    fn find_flow(
        &mut self,
        pending_id: Option<&str>,
    ) -> Result<(String, PendingFlow), ProviderError> {
        match pending_id {
            Some(id) => {
                let unknown = || {
                    ProviderError::NotConnected(
                        "no such login is pending (it ended or expired): call start".into(),
                    )
                };
                if !valid_pending_id(id) {
                    return Err(unknown());
                }
                let flow = self.load_json(&pending_key(id))?.ok_or_else(unknown)?;
                Ok((id.to_owned(), flow))
            }
            None => {
                let mut newest: Option<(String, PendingFlow)> = None;
                for key in self.store.list_keys(PENDING_PREFIX)? {
                    let Some(id) = key.strip_prefix(PENDING_PREFIX) else {
                        continue;
                    };
                    if !valid_pending_id(id) {
                        continue;
                    }
                    if let Some(flow) = self.load_json::<PendingFlow>(&key)?
                        && newest
                            .as_ref()
                            .is_none_or(|(_, n)| flow.created_at_ms > n.created_at_ms)
                    {
                        newest = Some((id.to_owned(), flow));
                    }
                }
                newest.ok_or_else(|| {
                    ProviderError::NotConnected("no login is pending: call start".into())
                })
            }
        }
    }

    /// One token request for a pending login (the newest when `pending_id` is `None`).
    /// Too early (within `interval` of the last poll) answers `Pending` without a request;
    /// the first poll is never too early. Without an id, when no login is pending and the
    /// tenant is connected, it answers `Connected` (the login already completed).
    pub fn poll(&mut self, pending_id: Option<&str>) -> Result<PollOutcome, ProviderError> {
        let _login = self.store.lock(LOGIN_LOCK, LOCK_TIMEOUT_MS)?;
        let (id, mut flow) = match self.find_flow(pending_id) {
            Ok(found) => found,
            Err(ProviderError::NotConnected(m)) if pending_id.is_none() => {
                return match self.load_credentials()? {
                    Some(creds) => Ok(PollOutcome::Connected(self.status_of(Some(creds), false))),
                    None => Err(ProviderError::NotConnected(m)),
                };
            }
            Err(e) => return Err(e),
        };
        let key = pending_key(&id);
        let now = self.now();
        if flow.is_expired(now) {
            self.store.delete(&key)?;
            return Err(device_code_expired());
        }
        if flow.too_early(now) {
            return Ok(PollOutcome::Pending(flow.pending_login(&id, now)));
        }
        let endpoints = self.endpoints()?;
        // Held from before the token request until the new credentials are stored, so a
        // granted login is never lost to a lock timeout after its device code was used.
        let _credentials = self.store.lock(CREDENTIALS_LOCK, LOCK_TIMEOUT_MS)?;
        let client_id = self.settings.client_id.clone();
        let req = post_form(
            endpoints.token_endpoint,
            &self.user_agent(),
            &[
                ("grant_type", GRANT_DEVICE_CODE),
                ("device_code", flow.device_code.expose()),
                ("client_id", &client_id),
            ],
        );
        let reply = read_reply(self.send(req)?, "token endpoint")?;
        flow.last_poll_ms = Some(now);
        let device_code = flow.device_code.clone();
        match classify_oauth(&reply, "device token poll", &[device_code.expose()]) {
            OAuthReply::Success(v) => {
                let saved = TokenResponse::parse(&v).and_then(|t| self.store_new_login(t));
                // A used device code is never polled again, whatever happened above; the
                // other pending logins are moot once the tenant is connected.
                let forgotten = self.forget_pending_logins();
                let creds = saved?;
                forgotten?;
                Ok(PollOutcome::Connected(self.status_of(Some(creds), false)))
            }
            OAuthReply::Error { code, description } => match code.action() {
                OAuthAction::KeepPolling => {
                    self.save_json(&key, &flow)?;
                    Ok(PollOutcome::Pending(flow.pending_login(&id, now)))
                }
                OAuthAction::SlowDown => {
                    flow.interval_secs = flow.interval_secs.saturating_add(SLOW_DOWN_STEP_SECS);
                    self.save_json(&key, &flow)?;
                    Ok(PollOutcome::Pending(flow.pending_login(&id, now)))
                }
                // The server's trouble: the device code is still good, the flow stays (and
                // its interval is kept before the next poll).
                OAuthAction::RetryLater => {
                    self.save_json(&key, &flow)?;
                    Err(ProviderError::UpstreamUnavailable(format!(
                        "the token endpoint cannot answer the login now ({}): poll again shortly",
                        describe(&code, description.as_deref())
                    )))
                }
                OAuthAction::Stop | OAuthAction::LogInAgain => {
                    self.store.delete(&key)?;
                    Err(match code {
                        OAuthError::AccessDenied => {
                            ProviderError::AccessDenied(ACCESS_DENIED_GUIDANCE.into())
                        }
                        OAuthError::ExpiredToken => device_code_expired(),
                        _ => ProviderError::InvalidResponse(format!(
                            "the token endpoint ended the login with {}: call start again",
                            describe(&code, description.as_deref())
                        )),
                    })
                }
            },
            OAuthReply::Failure(e) => {
                self.save_json(&key, &flow)?;
                Err(e)
            }
        }
    }

    /// Store the credentials of a fresh login (a new account may see other models, so
    /// the OAuth routes' model caches go too). The caller holds the credentials lock.
    fn store_new_login(&mut self, tokens: TokenResponse) -> Result<Credentials, ProviderError> {
        let generation = self
            .load_credentials()
            .ok()
            .flatten()
            .map_or(0, |c| c.generation);
        let creds =
            Credentials::from_token_response(tokens, self.now(), None, generation.wrapping_add(1));
        self.save_credentials(&creds)?;
        let _ = self.forget_oauth_models();
        // A mark left on an older login does not concern this one.
        let _ = self.store.delete(super::credentials::REVOKED_KEY);
        Ok(creds)
    }

    /// Delete every pending login (their device codes stay unused).
    pub(super) fn forget_pending_logins(&mut self) -> Result<(), ProviderError> {
        for key in self.store.list_keys(PENDING_PREFIX)? {
            self.store.delete(&key)?;
        }
        Ok(())
    }
}
