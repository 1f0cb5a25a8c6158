//! The stored OAuth login (secret key `credentials`) and its single-flight refresh.

use std::cell::RefCell;

use provider_redact::Secret;
use serde::{Deserialize, Serialize};

use super::{
    CREDENTIALS_LOCK, FORCED_REFRESH_MIN_AGE_MS, LOCK_TIMEOUT_MS, Provider, REFRESH_ATTEMPTS,
    REFRESH_BACKOFF_MS, is_transient,
};
use crate::error::ProviderError;
use crate::http::{post_form, read_reply};
use crate::io::{Clock, SecretStore, Transport};
use crate::oauth::{OAuthError, OAuthReply, classify_oauth, describe};
use crate::record::{Fields, Record};
use crate::token::{Credentials, TokenResponse};
use crate::types::ConnectionStatus;

/// Store key of the credential record.
pub const CREDENTIALS_KEY: &str = "credentials";
/// Store key of the mark left when the token endpoint declared the stored login dead
/// (`invalid_grant`, `invalid_client`): `status` then no longer says connected, and calls
/// fail at once instead of redeeming a dead refresh token again.
pub const REVOKED_KEY: &str = "credentials-revoked";

/// What the token endpoint said of the stored login, and which record it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokedMark {
    /// The `generation` of the credential record refused.
    pub generation: u64,
    /// When the refusal was met (unix ms).
    pub at_ms: u64,
    /// The message callers get (no secret in it).
    pub message: String,
}

impl Record for RevokedMark {
    fn read(f: &mut Fields) -> Option<Self> {
        Some(Self {
            generation: f.u64("generation")?,
            at_ms: f.u64("at_ms")?,
            message: f.string("message")?,
        })
    }
}

/// What a caller is told about a login the token endpoint declared dead.
pub fn revoked_message(code: &OAuthError, description: Option<&str>) -> String {
    format!(
        "the login was revoked or has expired (token endpoint: {}). Another client using the same \
         xAI client id for this account (such as xAI's own `grok` CLI) may have rotated it, which \
         revokes this one: log in again (logout, then start); to keep both, sign the other client \
         in with its own login after this one",
        describe(code, description)
    )
}

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

thread_local! {
    /// The last credentials record parsed, as stored and as parsed: every API call reads the
    /// record, which rarely changes, and parsing it was 3 % of `serve`'s CPU per request.
    /// The stored text holds the tokens, so it is kept as a [`Secret`] (wiped when replaced).
    static LAST_PARSED: RefCell<Option<(Secret, Credentials)>> = const { RefCell::new(None) };
}

/// [`Credentials::from_bytes`], reusing the last result for the same stored bytes.
fn parse_credentials(bytes: Vec<u8>) -> Result<Credentials, ProviderError> {
    // Wrapped at once, so that this copy of the tokens is wiped too.
    let stored = match String::from_utf8(bytes) {
        Ok(text) => Secret::new(text),
        // Not a record (its error, as for any other unreadable one).
        Err(e) => return Credentials::from_bytes(e.as_bytes()),
    };
    let known = LAST_PARSED.with_borrow(|last| {
        last.as_ref()
            .filter(|(last, _)| *last == stored)
            .map(|(_, creds)| creds.clone())
    });
    if let Some(creds) = known {
        return Ok(creds);
    }
    let creds = Credentials::from_bytes(stored.expose().as_bytes())?;
    LAST_PARSED.set(Some((stored, creds.clone())));
    Ok(creds)
}

pub(super) fn not_connected() -> ProviderError {
    ProviderError::NotConnected("not logged in: call start".into())
}

impl<T: Transport, S: SecretStore, C: Clock> Provider<T, S, C> {
    /// The stored credentials; a corrupt record is a storage error.
    pub(super) fn load_credentials(&mut self) -> Result<Option<Credentials>, ProviderError> {
        match self.store.get(CREDENTIALS_KEY)? {
            Some(bytes) => parse_credentials(bytes).map(Some),
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
        // A login the token endpoint declared dead is not redeemed again.
        if let Some(mark) = self.revoked_mark(&creds) {
            return Err(ProviderError::Unauthorized(mark.message));
        }
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
        if let Some(mark) = self.revoked_mark(&creds) {
            return Err(ProviderError::Unauthorized(mark.message));
        }
        self.fresh_credentials(creds)
    }

    /// The revocation mark of `creds`, when the token endpoint declared that very record
    /// dead (a newer login or a refresh by another process moved the generation on).
    pub(super) fn revoked_mark(&mut self, creds: &Credentials) -> Option<RevokedMark> {
        self.load_json::<RevokedMark>(REVOKED_KEY)
            .ok()
            .flatten()
            .filter(|m| m.generation == creds.generation)
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
        // Like xAI's CLI: only `invalid_grant` and `invalid_client` end the login; any other
        // failure (network, 5xx, 429, other 4xx, unknown codes) is tried again, up to
        // REFRESH_ATTEMPTS in all, and then reported as transient with the login kept. A
        // resend after a cut answer relies on the issuer's short grace for a just-rotated
        // token (xAI's CLI assumes one of up to 60 s).
        let mut attempt = 0;
        loop {
            let req = post_form(
                endpoints.token_endpoint.clone(),
                &self.user_agent(),
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh_token.expose()),
                    ("client_id", &client_id),
                ],
            );
            let failure = match self.send(req).and_then(|r| read_reply(r, "token endpoint")) {
                Err(e) => e,
                Ok(reply) => match classify_oauth(&reply, "token refresh", &current.secrets()) {
                    OAuthReply::Success(v) => {
                        // A 2xx answer consumed the refresh token: never resent, even when
                        // its body is unreadable.
                        let tokens = TokenResponse::parse(&v)?;
                        let next = Credentials::from_token_response(
                            tokens,
                            self.now(),
                            Some(&current),
                            current.generation.wrapping_add(1),
                        );
                        // Saved before use: the old refresh token is dead from now on.
                        self.save_credentials(&next)?;
                        return Ok(next);
                    }
                    OAuthReply::Error {
                        code: code @ (OAuthError::InvalidGrant | OAuthError::InvalidClient),
                        description,
                    } => return self.login_refused(&current, &code, description.as_deref()),
                    OAuthReply::Error { code, description } => {
                        ProviderError::UpstreamUnavailable(format!(
                            "the token endpoint could not refresh now ({}); the login is kept: retry shortly",
                            describe(&code, description.as_deref())
                        ))
                    }
                    OAuthReply::Failure(ProviderError::InvalidResponse(m))
                        if !reply.is_success() =>
                    {
                        ProviderError::UpstreamUnavailable(format!(
                            "{m}; the login is kept: retry shortly"
                        ))
                    }
                    OAuthReply::Failure(e) => e,
                },
            };
            if !is_transient(&failure) || attempt + 1 >= REFRESH_ATTEMPTS {
                return Err(failure);
            }
            self.clock.sleep_ms(REFRESH_BACKOFF_MS[attempt]);
            attempt += 1;
        }
    }

    /// The token endpoint declared the login dead. Another process may have refreshed
    /// meanwhile (its record is newer): use that. Otherwise mark the record revoked, so
    /// that `status` stops calling it connected, and say what may have happened.
    fn login_refused(
        &mut self,
        current: &Credentials,
        code: &OAuthError,
        description: Option<&str>,
    ) -> Result<Credentials, ProviderError> {
        if let Some(c) = self.load_credentials()?
            && c.generation != current.generation
        {
            return Ok(c);
        }
        let message = revoked_message(code, description);
        let mark = RevokedMark {
            generation: current.generation,
            at_ms: self.now(),
            message: message.clone(),
        };
        // The refusal is reported even if the mark cannot be written.
        let _ = self.save_json(REVOKED_KEY, &mark);
        Err(ProviderError::Unauthorized(message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(token: &str, generation: u64) -> Credentials {
        Credentials {
            access_token: Secret::new(token),
            refresh_token: Some(Secret::new("refresh")),
            expires_at_ms: 2_000,
            obtained_at_ms: 1_000,
            tier: Some(4),
            scope: None,
            generation,
        }
    }

    #[test]
    fn parsing_again_gives_what_the_stored_bytes_say() {
        let (first, second) = (record("a", 1), record("b", 2));
        for _ in 0..2 {
            assert_eq!(parse_credentials(first.to_bytes()).unwrap(), first);
        }
        assert_eq!(parse_credentials(second.to_bytes()).unwrap(), second);
        assert_eq!(parse_credentials(first.to_bytes()).unwrap(), first);
        // An unreadable record after a good one is still unreadable.
        for bad in [&b"{\"access_token\":"[..], &[0xff, 0xfe]] {
            assert!(matches!(
                parse_credentials(bad.to_vec()),
                Err(ProviderError::Storage(_))
            ));
        }
        assert_eq!(parse_credentials(first.to_bytes()).unwrap(), first);
    }
}
