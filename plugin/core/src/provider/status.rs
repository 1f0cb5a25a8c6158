//! What is stored (`status`) and forgetting the login (`logout`).

use provider_redact::Secret;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::api::ServerErrors;
use super::credentials::{CREDENTIALS_KEY, REVOKED_KEY};
use super::routes::{Stored, StoredCredentials};
use super::{CREDENTIALS_LOCK, LOCK_TIMEOUT_MS, LOGIN_LOCK, Provider};
use crate::error::ProviderError;
use crate::http::{get_json, post_form, read_json};
use crate::io::{Clock, SecretStore, Transport};
use crate::models::{LEGACY_MODELS_KEY, MODELS_TTL_MS, ModelsCache, choose_default, models_key};
use crate::record::{Fields, Record};
use crate::routes::Route;
use crate::tier::{subscription_name, tier_name};
use crate::token::Credentials;
use crate::types::{ConnectionStatus, CredentialKind, LogoutReport, Model};

/// Store key of the subscription the rail named (`GET /user?include=subscription`).
pub const SUBSCRIPTION_KEY: &str = "subscription";
/// Path (under the subscription base) of the user's profile with the subscription.
pub const USER_PATH: &str = "user?include=subscription";

/// The cached subscription, reused like the model catalogue (1 h, same tier).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionCache {
    /// When fetched (unix ms).
    pub fetched_at_ms: u64,
    /// The JWT tier of the credentials it was fetched with.
    #[serde(default)]
    pub tier: Option<u32>,
    /// Its display name; `None`: the rail named no active subscription.
    pub name: Option<String>,
}

impl Record for SubscriptionCache {
    fn read(f: &mut Fields) -> Option<Self> {
        Some(Self {
            fetched_at_ms: f.u64("fetched_at_ms")?,
            tier: f.opt_u32("tier")?,
            name: f.opt_string("name")?,
        })
    }
}

impl SubscriptionCache {
    fn is_fresh(&self, now_ms: u64, tier: Option<u32>) -> bool {
        self.tier == tier
            && self.fetched_at_ms <= now_ms
            && now_ms - self.fetched_at_ms < MODELS_TTL_MS
    }
}

impl<T: Transport, S: SecretStore, C: Clock> Provider<T, S, C> {
    /// The stored credentials' state: the OAuth login (refreshed first when close to
    /// expiry; a transient refresh failure while the token is still valid reports the
    /// current state anyway; a login the token endpoint declared dead is reported not
    /// connected), the API key's presence, each route's usability and the pool it bills,
    /// the subscription the rail names (when the subscription route is usable; asked when
    /// it is the default route, then cached like the models), and the default route's models from the cache, fetched once (best
    /// effort) when the cache is absent or stale and the route's credential is stored.
    /// Nothing stored: no network.
    pub fn status(&mut self) -> Result<ConnectionStatus, ProviderError> {
        let creds = match self.load_credentials()? {
            Some(creds) if self.revoked_mark(&creds).is_some() => Some(creds),
            Some(creds) => match self.fresh_credentials(creds) {
                Ok(c) => Some(c),
                // The refresh has just learned that the login is dead: say so.
                Err(ProviderError::Unauthorized(_))
                    if self
                        .load_credentials()?
                        .is_some_and(|c| self.revoked_mark(&c).is_some()) =>
                {
                    self.load_credentials()?
                }
                Err(e) => return Err(e),
            },
            None => None,
        };
        Ok(self.status_of(creds, true))
    }

    /// The subscription the rail names for `tier`: from the cache, else (with `fetch`)
    /// asked once, best effort; `None` when unknown or none.
    fn known_subscription(&mut self, tier: Option<u32>, fetch: bool) -> Option<String> {
        let now = self.now();
        let cache: Option<SubscriptionCache> = self.load_json(SUBSCRIPTION_KEY).unwrap_or(None);
        if let Some(c) = &cache
            && c.is_fresh(now, tier)
        {
            return c.name.clone();
        }
        let stale = cache.filter(|c| c.tier == tier).and_then(|c| c.name);
        if !fetch {
            return stale;
        }
        match self.fetch_subscription() {
            Ok(name) => {
                let record = SubscriptionCache {
                    fetched_at_ms: now,
                    tier,
                    name: name.clone(),
                };
                let _ = self.save_json(SUBSCRIPTION_KEY, &record);
                name
            }
            Err(_) => stale,
        }
    }

    /// `GET {subscription-base}/user?include=subscription` -> the subscription's name.
    fn fetch_subscription(&mut self) -> Result<Option<String>, ProviderError> {
        let (url, ua) = (
            self.settings.api_url(Route::Subscription, USER_PATH),
            self.user_agent(),
        );
        let (mut resp, _) = self.api_send(Route::Subscription, ServerErrors::Report, &|token| {
            get_json(url.clone(), &ua, Some(token))
        })?;
        let v = read_json(&mut resp.body, "user profile")?;
        // The rail's profile answer; only the subscription is read (`subscriptionTier` is
        // present only with `?include=subscription` and an active subscription). Read by
        // name: no `Value`-to-struct deserializer in the component for one field.
        let tier = match &v {
            Value::Object(user) => match user.get("subscriptionTier") {
                None | Some(Value::Null) => None,
                Some(Value::String(tier)) => Some(tier.as_str()),
                Some(_) => return Err(not_a_profile()),
            },
            _ => return Err(not_a_profile()),
        };
        Ok(tier.and_then(subscription_name))
    }

    /// The status with the OAuth login `creds`; with `fetch`, a missing or stale model
    /// cache of the default route is refilled best effort.
    pub(super) fn status_of(
        &mut self,
        mut creds: Option<Credentials>,
        fetch: bool,
    ) -> ConnectionStatus {
        let default = self.settings.default_route;
        let revoked = creds
            .as_ref()
            .is_some_and(|c| self.revoked_mark(c).is_some());
        let stored = StoredCredentials {
            oauth: match &creds {
                Some(_) if revoked => Stored::Revoked,
                Some(_) => Stored::Usable,
                None => Stored::Absent,
            },
            api_key: self.stored_api_key(),
        };
        let (models, default_model_id) = if stored.of(default) == Stored::Usable {
            let tier = match default.credential() {
                CredentialKind::Oauth => creds.as_ref().and_then(|c| c.tier),
                CredentialKind::ApiKey => None,
            };
            let (models, fetched) = self.known_models(default, tier, fetch);
            // The fetch may have refreshed the credentials.
            if fetched
                && default.credential() == CredentialKind::Oauth
                && let Ok(Some(latest)) = self.load_credentials()
            {
                creds = Some(latest);
            }
            let id = choose_default(default, &models);
            (models, Some(id))
        } else {
            (Vec::new(), None)
        };
        // Asked only when the rail is the default route (its origin is then allowed for
        // sure); otherwise what an earlier answer cached.
        let subscription = if stored.of(Route::Subscription) == Stored::Usable {
            let tier = creds.as_ref().and_then(|c| c.tier);
            self.known_subscription(tier, fetch && default == Route::Subscription)
        } else {
            None
        };
        ConnectionStatus {
            connected: creds.is_some() && !revoked,
            subscription,
            tier: creds.as_ref().and_then(|c| c.tier),
            tier_name: creds.as_ref().and_then(|c| c.tier).map(tier_name),
            expires_at: creds.as_ref().map(|c| c.expires_at_ms / 1000),
            default_model_id,
            models,
            default_route: default.name().to_owned(),
            api_key_stored: stored.api_key != Stored::Absent,
            routes: stored.route_statuses(),
        }
    }

    /// `route`'s chat models as the cache knows them (fresh for `tier`); else, with
    /// `fetch`, fetched once; else the stale list of the same tier, or none. The flag
    /// says whether they were fetched.
    fn known_models(&mut self, route: Route, tier: Option<u32>, fetch: bool) -> (Vec<Model>, bool) {
        let now = self.now();
        let cache: Option<ModelsCache> = self.load_json(&models_key(route)).unwrap_or(None);
        match cache {
            Some(c) if c.is_fresh(now, tier) => (c.models, false),
            stale => {
                let stale = stale.filter(|c| c.tier == tier).map(|c| c.models);
                let fetched = if fetch {
                    self.fetch_models(route).ok()
                } else {
                    None
                };
                match fetched {
                    Some(c) => (c.models, true),
                    None => (stale.unwrap_or_default(), false),
                }
            }
        }
    }

    /// Revoke the refresh token (best effort), then delete the credentials, the OAuth
    /// routes' model caches and every pending login. Credentials that cannot be read back
    /// (corrupt, over the store's size limit, undecodable) are still deleted, without
    /// revocation. The API key and its model cache stay.
    pub fn logout(&mut self) -> Result<LogoutReport, ProviderError> {
        // Login first, as `poll` takes them: a poll in flight finishes before its flow and
        // credentials are deleted, and cannot write them back afterwards.
        let _login = self.store.lock(LOGIN_LOCK, LOCK_TIMEOUT_MS)?;
        let _guard = self.store.lock(CREDENTIALS_LOCK, LOCK_TIMEOUT_MS)?;
        let (was_connected, refresh_token) = self.stored_refresh_token();
        let revoked = match refresh_token {
            Some(token) => self.revoke(&token),
            None => false,
        };
        self.store.delete(CREDENTIALS_KEY)?;
        self.store.delete(REVOKED_KEY)?;
        self.forget_oauth_models()?;
        self.forget_pending_logins()?;
        Ok(LogoutReport {
            was_connected,
            revoked,
        })
    }

    /// Delete the model caches of the routes that spend the OAuth login, and the
    /// subscription the rail named for it.
    pub(super) fn forget_oauth_models(&mut self) -> Result<(), ProviderError> {
        self.store.delete(SUBSCRIPTION_KEY)?;
        for route in Route::ALL {
            if route.credential() == CredentialKind::Oauth {
                self.store.delete(&models_key(route))?;
            }
        }
        Ok(self.store.delete(LEGACY_MODELS_KEY)?)
    }

    /// For `logout`: whether credentials are stored, and their refresh token if they can be
    /// read. A read that fails (the host reports the stored value corrupt or too large, or
    /// any other storage failure) counts as stored credentials without a token: logout
    /// must still be able to delete them, and the delete reports a real storage failure.
    fn stored_refresh_token(&mut self) -> (bool, Option<Secret>) {
        match self.store.get(CREDENTIALS_KEY) {
            Ok(None) => (false, None),
            Ok(Some(bytes)) => (
                true,
                Credentials::from_bytes(&bytes)
                    .ok()
                    .and_then(|c| c.refresh_token.clone()),
            ),
            Err(_) => (true, None),
        }
    }

    /// RFC 7009 revocation; `true` only on a 2xx answer.
    fn revoke(&mut self, refresh_token: &Secret) -> bool {
        let Ok(endpoints) = self.endpoints() else {
            return false;
        };
        let Some(endpoint) = endpoints.revocation_endpoint else {
            return false;
        };
        let client_id = self.settings.client_id.clone();
        let req = post_form(
            endpoint,
            &self.user_agent(),
            &[
                ("token", refresh_token.expose()),
                ("token_type_hint", "refresh_token"),
                ("client_id", &client_id),
            ],
        );
        matches!(self.send(req), Ok(r) if (200..300).contains(&r.status))
    }
}

/// The rail's user profile was not an object with an optional string `subscriptionTier`.
fn not_a_profile() -> ProviderError {
    ProviderError::InvalidResponse("the rail's user profile is not the expected object".into())
}
