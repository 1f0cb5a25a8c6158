//! Which route serves a request, the credential each route spends, the API key of the
//! `api-key` route (`set-api-key`, `api-key-status`, `delete-api-key`), and the routes
//! that could serve instead when one cannot.
//!
//! The API key is a secret of its own (key [`API_KEY_KEY`]): its operations never touch the
//! OAuth credentials (the route statuses only look whether they are there), and the OAuth
//! operations (login, refresh, logout) never touch it.

use super::Provider;
use super::credentials::{CREDENTIALS_KEY, not_connected};
use crate::api_key::{API_KEY_CONSOLE, API_KEY_KEY, ApiKey};
use crate::error::ProviderError;
use crate::io::{Clock, SecretStore, Transport};
use crate::models::models_key;
use crate::routes::{Route, RoutedModel, alternatives, resolve};
use crate::token::Credentials;
use crate::types::{ApiKeyInfo, ChatRequest, CredentialKind, RouteStatus};

pub(super) fn no_api_key() -> ProviderError {
    ProviderError::NotConnected(format!(
        "no API key is stored: call set-api-key (a key from {API_KEY_CONSOLE})"
    ))
}

/// What the store holds for a credential, without failing.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Stored {
    /// Nothing.
    Absent,
    /// A credential that can be used.
    Usable,
    /// Something that cannot be read back.
    Unreadable,
    /// A login the token endpoint declared dead (revoked or expired).
    Revoked,
}

/// What the store holds for each kind of credential.
#[derive(Clone, Copy)]
pub(super) struct StoredCredentials {
    /// The OAuth login.
    pub oauth: Stored,
    /// The API key.
    pub api_key: Stored,
}

impl StoredCredentials {
    /// The state of the credential `route` spends.
    pub fn of(&self, route: Route) -> Stored {
        match route.credential() {
            CredentialKind::Oauth => self.oauth,
            CredentialKind::ApiKey => self.api_key,
        }
    }

    /// Every route of the manifest and whether its credential is there now.
    pub fn route_statuses(&self) -> Vec<RouteStatus> {
        Route::ALL
            .into_iter()
            .map(|route| {
                let detail = match (self.of(route), route.credential()) {
                    (Stored::Usable, _) => None,
                    (Stored::Absent, CredentialKind::Oauth) => Some(not_connected().message()),
                    (Stored::Absent, CredentialKind::ApiKey) => Some(no_api_key().message()),
                    (Stored::Unreadable, CredentialKind::Oauth) => {
                        Some("the stored login is unreadable: logout, then start again".to_owned())
                    }
                    (Stored::Unreadable, CredentialKind::ApiKey) => Some(
                        "the stored API key is unreadable: call delete-api-key, then set-api-key"
                            .to_owned(),
                    ),
                    (Stored::Revoked, _) => Some(
                        "the login was revoked upstream (another client using the same xAI client id, \
                         such as xAI's own grok CLI, may have rotated it): logout, then start again"
                            .to_owned(),
                    ),
                };
                RouteStatus {
                    name: route.name().to_owned(),
                    usable: detail.is_none(),
                    detail,
                    bills: route.bills().to_owned(),
                }
            })
            .collect()
    }
}

impl<T: Transport, S: SecretStore, C: Clock> Provider<T, S, C> {
    /// The route named `name`, or the default route.
    pub(super) fn route_or_default(&self, name: Option<&str>) -> Result<Route, ProviderError> {
        name.map_or(Ok(self.settings.default_route), Route::parse)
    }

    /// The route and upstream model of a chat request.
    pub(super) fn route_of(&self, req: &ChatRequest) -> Result<RoutedModel, ProviderError> {
        resolve(
            req.route.as_deref(),
            &req.model,
            self.settings.default_route,
        )
    }

    /// Whether the value under `key` is stored and `readable`.
    fn stored_value(&mut self, key: &str, readable: fn(&[u8]) -> bool) -> Stored {
        match self.store.get(key) {
            Ok(None) => Stored::Absent,
            Ok(Some(bytes)) if readable(&bytes) => Stored::Usable,
            Ok(Some(_)) | Err(_) => Stored::Unreadable,
        }
    }

    /// Whether an API key is stored and readable.
    pub(super) fn stored_api_key(&mut self) -> Stored {
        self.stored_value(API_KEY_KEY, |b| ApiKey::from_bytes(b).is_ok())
    }

    /// What the store holds for each kind of credential.
    pub(super) fn stored(&mut self) -> StoredCredentials {
        let oauth = match self.stored_value(CREDENTIALS_KEY, |b| Credentials::from_bytes(b).is_ok())
        {
            Stored::Usable => match self.load_credentials() {
                Ok(Some(c)) if self.revoked_mark(&c).is_some() => Stored::Revoked,
                _ => Stored::Usable,
            },
            other => other,
        };
        StoredCredentials {
            oauth,
            api_key: self.stored_api_key(),
        }
    }

    /// The routes that could serve instead of `route`: the others, those whose credential
    /// is stored first.
    pub fn alternatives(&mut self, route: Route) -> Vec<String> {
        let stored = self.stored();
        alternatives(route, |r| stored.of(r) == Stored::Usable)
    }

    /// `e` as met on `route`: a quota refusal names the route, and it and a rate limit
    /// name the routes that could serve instead. Never switches routes: the caller picks.
    pub fn in_route(&mut self, route: Route, e: ProviderError) -> ProviderError {
        if e.wants_alternatives() {
            let others = self.alternatives(route);
            e.in_route(route.name(), &others)
        } else {
            e
        }
    }

    // ----- the API key ---------------------------------------------------------------

    /// The stored API key; an unreadable record is a storage error.
    pub(super) fn load_api_key(&mut self) -> Result<Option<ApiKey>, ProviderError> {
        match self.store.get(API_KEY_KEY)? {
            Some(bytes) => ApiKey::from_bytes(&bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Validate and store `key` for the `api-key` route, replacing any stored key (one
    /// atomic write). Its model cache goes: another key may see other models.
    pub fn set_api_key(&mut self, key: &str) -> Result<ApiKeyInfo, ProviderError> {
        let record = ApiKey::new(key, self.now())?;
        self.store.set(API_KEY_KEY, &record.to_bytes())?;
        let _ = self.store.delete(&models_key(Route::ApiKey));
        Ok(record.status())
    }

    /// Whether an API key is stored, and its last four characters.
    pub fn api_key_status(&mut self) -> Result<ApiKeyInfo, ProviderError> {
        Ok(self
            .load_api_key()?
            .map_or_else(ApiKeyInfo::default, |k| k.status()))
    }

    /// Delete the stored API key (absent is fine) and its model cache.
    pub fn delete_api_key(&mut self) -> Result<ApiKeyInfo, ProviderError> {
        self.store.delete(API_KEY_KEY)?;
        self.store.delete(&models_key(Route::ApiKey))?;
        Ok(ApiKeyInfo::default())
    }
}
