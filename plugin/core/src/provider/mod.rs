//! The orchestration: every exported operation, over the injected effects. One file per
//! concern:
//!
//! * `login.rs`: the device login (`start`, `poll`);
//! * `credentials.rs`: the stored OAuth login and its single-flight refresh (`refresh`);
//! * `api.rs`: requests to the model API and their retry policy (`models`, `chat`, streams);
//! * `status.rs`: what is stored, and forgetting it (`status`, `logout`);
//! * `routes.rs`: which route serves a request, the API key (`set-api-key`, ...) and the
//!   routes that could serve instead;
//! * `usage.rs`: what is left of a route's quota (`usage`).
//!
//! Concurrency model: several processes (and component instances) share one tenant's
//! store. Refresh tokens are single-use, so every redemption happens under the store
//! lock `credentials`, after re-reading the record: whoever waited on the lock finds
//! the rotated record (its `generation` moved) and uses it instead of redeeming again.
//! Polls of device logins run under the lock `login`, so a device code is never
//! redeemed twice either. The API key is one value written atomically, never read and
//! rewritten, so it needs no lock.

mod api;
mod credentials;
mod login;
mod routes;
mod status;
mod usage;

use serde::Serialize;

use crate::discovery::{DISCOVERY_KEY, DiscoveryCache, Endpoints, parse_discovery};
use crate::error::ProviderError;
use crate::http::{get_json, parse_json, read_reply};
use crate::io::{Clock, HttpRequest, HttpResponse, SecretStore, Transport};
use crate::json::written;
use crate::oauth::{OAuthReply, classify_oauth};
use crate::origin::Origin;
use crate::record::Record;
use crate::settings::Settings;

pub use credentials::{CREDENTIALS_KEY, REVOKED_KEY, RevokedMark};
pub use login::ACCESS_DENIED_GUIDANCE;
pub use status::{SUBSCRIPTION_KEY, SubscriptionCache, USER_PATH};

/// Lock serializing refresh-token redemption, credential writes and logout.
pub const CREDENTIALS_LOCK: &str = "credentials";
/// Lock serializing device-code redemption.
pub const LOGIN_LOCK: &str = "login";
/// How long to wait for a store lock: longer than a holder's token request may take under
/// the host's caps (15 s to connect, 120 s for the first byte), so that a waiter outlasts
/// a slow refresh instead of failing beside it.
pub const LOCK_TIMEOUT_MS: u32 = 150_000;
/// A forced refresh of credentials younger than this reuses them (someone just refreshed).
pub const FORCED_REFRESH_MIN_AGE_MS: u64 = 2_000;
/// Waits before the retries of a 5xx answer (without `Retry-After`).
pub const SERVER_ERROR_BACKOFF_MS: [u64; 2] = [250, 1_000];
/// The longest a retry of a 5xx answer waits, whatever its `Retry-After` says (xAI's CLI
/// clamps generic retries to 30 s).
pub const GENERIC_RETRY_WAIT_CAP_SECONDS: u32 = 30;
/// Attempts of one refresh before a transient failure is reported (xAI's CLI: 3). The
/// login is kept either way.
pub const REFRESH_ATTEMPTS: usize = 3;
/// Waits between refresh attempts.
pub const REFRESH_BACKOFF_MS: [u64; REFRESH_ATTEMPTS - 1] = [200, 1_000];

fn is_transient(e: &ProviderError) -> bool {
    matches!(
        e,
        ProviderError::Network(_)
            | ProviderError::UpstreamUnavailable(_)
            | ProviderError::RateLimited { .. }
    )
}

/// The provider: settings plus the three injected effects.
pub struct Provider<T: Transport, S: SecretStore, C: Clock> {
    /// Endpoints, client and routes.
    pub settings: Settings,
    /// HTTP.
    pub transport: T,
    /// Secret storage shared by every process of the tenant.
    pub store: S,
    /// Time, sleeping and randomness.
    pub clock: C,
}

impl<T: Transport, S: SecretStore, C: Clock> Provider<T, S, C> {
    /// Assemble a provider. Nothing is read or sent until an operation is called.
    pub fn new(settings: Settings, transport: T, store: S, clock: C) -> Self {
        Self {
            settings,
            transport,
            store,
            clock,
        }
    }

    fn now(&self) -> u64 {
        self.clock.now_unix_ms()
    }

    fn user_agent(&self) -> String {
        self.settings.user_agent.clone()
    }

    fn send(&mut self, req: HttpRequest) -> Result<HttpResponse<T::Body>, ProviderError> {
        self.transport.send(req).map_err(ProviderError::from)
    }

    /// A cache record; corrupt ones count as absent.
    fn load_json<V: Record>(&mut self, key: &str) -> Result<Option<V>, ProviderError> {
        Ok(self.store.get(key)?.and_then(|b| V::from_json(&b)))
    }

    fn save_json<V: Serialize>(&mut self, key: &str, value: &V) -> Result<(), ProviderError> {
        let bytes = written(serde_json::to_vec(value));
        Ok(self.store.set(key, &bytes)?)
    }

    // ----- discovery (for the login, the refresh and the revocation) -----------------

    /// The issuer's endpoints, from the cache (1 h) or discovery. A stale cache is used
    /// when discovery fails transiently.
    fn endpoints(&mut self) -> Result<Endpoints, ProviderError> {
        let now = self.now();
        let issuer = self.settings.issuer.clone();
        let cached: Option<DiscoveryCache> = self.load_json(DISCOVERY_KEY)?;
        if let Some(c) = &cached
            && c.is_fresh(&issuer, now)
        {
            return Ok(c.endpoints.clone());
        }
        match self.fetch_discovery(&issuer) {
            Ok(endpoints) => {
                let record = DiscoveryCache {
                    issuer,
                    fetched_at_ms: now,
                    endpoints: endpoints.clone(),
                };
                self.save_json(DISCOVERY_KEY, &record)?;
                Ok(endpoints)
            }
            Err(e) => match cached {
                Some(c) if c.issuer == issuer && is_transient(&e) => Ok(c.endpoints),
                _ => Err(e),
            },
        }
    }

    fn fetch_discovery(&mut self, issuer: &str) -> Result<Endpoints, ProviderError> {
        if Origin::parse(issuer).is_none() {
            return Err(ProviderError::InvalidInput(
                "the configured issuer is not an http(s) URL".into(),
            ));
        }
        let req = get_json(self.settings.discovery_url(), &self.user_agent(), None);
        let reply = read_reply(self.send(req)?, "discovery")?;
        match reply.status {
            200..=299 => parse_discovery(issuer, &parse_json(&reply.body, "discovery")?),
            _ => match classify_oauth(&reply, "discovery", &[]) {
                OAuthReply::Failure(e) => Err(e),
                _ => Err(ProviderError::InvalidResponse(format!(
                    "discovery failed: HTTP {}",
                    reply.status
                ))),
            },
        }
    }
}
