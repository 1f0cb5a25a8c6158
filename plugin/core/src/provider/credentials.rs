//! The stored OAuth login (secret key `credentials`) and its single-flight refresh.

use super::{CREDENTIALS_LOCK, FORCED_REFRESH_MIN_AGE_MS, LOCK_TIMEOUT_MS, Provider, is_transient};
use crate::error::ProviderError;
use crate::http::{post_form, read_reply};
use crate::io::{Clock, SecretStore, Transport};
use crate::oauth::{OAuthAction, OAuthError, OAuthReply, classify_oauth, describe};
use crate::token::{Credentials, TokenResponse};
use crate::types::ConnectionStatus;

/// Store key of the credential record.
pub const CREDENTIALS_KEY: &str = "credentials";

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum RefreshMode {
    /// Only when the token is close to expiry.
    Auto,
    /// Now (unless someone refreshed in the last two seconds).
    Forced,
    /// The access token of the generation seen was refused upstream: redeem unless the
    /// record moved on since. No coalescing window here: the stored token is known bad,
    /// however young, and `unauthorized` promises that a refresh was tried.
    Rejected,
}

pub(super) fn not_connected() -> ProviderError {
    ProviderError::NotConnected("not logged in: call start".into())
}

impl<T: Transport, S: SecretStore, C: Clock> Provider<T, S, C> {
    /// The stored credentials; a corrupt record is a storage error.
    pub(super) fn load_credentials(&mut self) -> Result<Option<Credentials>, ProviderError> {
        match self.store.get(CREDENTIALS_KEY)? {
            Some(bytes) => Credentials::from_bytes(&bytes).map(Some),
            None => Ok(None),
        }
    }

    pub(super) fn save_credentials(&mut self, creds: &Credentials) -> Result<(), ProviderError> {
        Ok(self.store.set(CREDENTIALS_KEY, &creds.to_bytes())?)
    }

    /// Redeem the refresh token now (unless another process did in the last two seconds)
    /// and report the resulting state (models from the cache only).
    pub fn refresh(&mut self) -> Result<ConnectionStatus, ProviderError> {
        let creds = self.load_credentials()?.ok_or_else(not_connected)?;
        let creds = self.refresh_locked(creds.generation, RefreshMode::Forced)?;
        Ok(self.status_of(Some(creds), false))
    }

    /// Credentials fit for an API call: refreshed when close to expiry; a transient
    /// refresh failure while the token is still valid keeps the current one.
    pub(super) fn fresh_credentials(
        &mut self,
        creds: Credentials,
    ) -> Result<Credentials, ProviderError> {
        if !creds.needs_refresh(self.now()) {
            return Ok(creds);
        }
        match self.refresh_locked(creds.generation, RefreshMode::Auto) {
            Ok(c) => Ok(c),
            Err(e) if is_transient(&e) && !creds.is_expired(self.now()) => Ok(creds),
            Err(e) => Err(e),
        }
    }

    pub(super) fn usable_credentials(&mut self) -> Result<Credentials, ProviderError> {
        let creds = self.load_credentials()?.ok_or_else(not_connected)?;
        self.fresh_credentials(creds)
    }

    /// Single-flight refresh. `seen_generation` is the record the caller worked with:
    /// if the record changed by the time the lock is held, someone else refreshed.
    pub(super) fn refresh_locked(
        &mut self,
        seen_generation: u64,
        mode: RefreshMode,
    ) -> Result<Credentials, ProviderError> {
        let _guard = self.store.lock(CREDENTIALS_LOCK, LOCK_TIMEOUT_MS)?;
        let current = self.load_credentials()?.ok_or_else(not_connected)?;
        let now = self.now();
        if current.generation != seen_generation {
            return Ok(current);
        }
        let just_obtained = now >= current.obtained_at_ms
            && now - current.obtained_at_ms < FORCED_REFRESH_MIN_AGE_MS;
        match mode {
            RefreshMode::Auto if !current.needs_refresh(now) => return Ok(current),
            RefreshMode::Forced if just_obtained => return Ok(current),
            RefreshMode::Auto | RefreshMode::Forced | RefreshMode::Rejected => {}
        }
        let refresh_token = current.refresh_token.clone().ok_or_else(|| {
            ProviderError::Unauthorized(
                "no refresh token is stored and the access token needs renewal: logout, then start again"
                    .into(),
            )
        })?;
        let endpoints = self.endpoints()?;
        let client_id = self.settings.client_id.clone();
        let req = post_form(
            endpoints.token_endpoint,
            &self.user_agent(),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh_token),
                ("client_id", &client_id),
            ],
        );
        // A network error leaves the old record: whether the token was consumed is unknowable.
        let reply = read_reply(self.send(req)?, "token endpoint")?;
        match classify_oauth(&reply, "token refresh", now, &current.secrets()) {
            OAuthReply::Success(v) => {
                let tokens = TokenResponse::parse(&v)?;
                let next = Credentials::from_token_response(
                    tokens,
                    self.now(),
                    Some(&current),
                    current.generation.wrapping_add(1),
                );
                // Saved before use: the old refresh token is dead from now on.
                self.save_credentials(&next)?;
                Ok(next)
            }
            OAuthReply::Error {
                code: OAuthError::InvalidGrant,
                ..
            } => match self.load_credentials()? {
                Some(c) if c.generation != current.generation => Ok(c),
                _ => Err(ProviderError::Unauthorized(
                    "the login was revoked or expired: logout, then start again".into(),
                )),
            },
            // The server's trouble, not the login's: the refresh token was not consumed.
            OAuthReply::Error { code, description } if code.action() == OAuthAction::RetryLater => {
                Err(ProviderError::UpstreamUnavailable(format!(
                    "the token endpoint could not refresh now ({}): retry shortly",
                    describe(&code, description.as_deref())
                )))
            }
            OAuthReply::Error { code, description } => Err(ProviderError::Unauthorized(format!(
                "the token endpoint refused the refresh ({}): logout, then start again",
                describe(&code, description.as_deref())
            ))),
            OAuthReply::Failure(e) => Err(e),
        }
    }
}
