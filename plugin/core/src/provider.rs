//! The orchestration: every exported operation, over the injected effects.
//!
//! Concurrency model: several processes (and component instances) share one tenant's
//! store. Refresh tokens are single-use, so every redemption happens under the store
//! lock `credentials`, after re-reading the record: whoever waited on the lock finds
//! the rotated record (its `generation` moved) and uses it instead of redeeming again.
//! Polls of device logins run under the lock `login`, so a device code is never
//! redeemed twice either.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api_error::{ApiFailure, classify_api_error};
use crate::chat::{explain_refusal, parse_reply, request_body, route};
use crate::config::ProviderConfig;
use crate::device::{
    PENDING_PREFIX, PendingFlow, SLOW_DOWN_STEP_SECS, hex, parse_device_authorization, pending_key,
    valid_pending_id,
};
use crate::discovery::{DISCOVERY_KEY, DiscoveryCache, Endpoints, parse_discovery};
use crate::error::ProviderError;
use crate::http::{get_json, parse_json, post_form, post_json, read_json, read_reply};
use crate::io::{Clock, HttpRequest, HttpResponse, SecretStore, Transport};
use crate::models::{MODELS_KEY, ModelsCache, choose_default, parse_models, prefixed};
use crate::oauth::{OAuthReply, classify_oauth, describe};
use crate::origin::Origin;
use crate::stream::ChatStream;
use crate::tier::tier_name;
use crate::token::{Credentials, TokenResponse};
use crate::types::{
    ChatReply, ChatRequest, ConnectionStatus, DevicePrompt, LogoutReport, ModelList, PollOutcome,
};

/// Store key of the credential record.
pub const CREDENTIALS_KEY: &str = "credentials";
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
/// Waits before the retries of a 5xx answer.
pub const SERVER_ERROR_BACKOFF_MS: [u64; 2] = [250, 1_000];

const GRANT_DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Guidance for xAI's account gate (`access_denied` at the token endpoint).
pub const ACCESS_DENIED_GUIDANCE: &str = "xAI refused this login (access_denied). This is xAI's account gate, \
not a client bug, and it is deterministic per account: do not retry blindly. \
1) Verify that the subscription (X Premium, X Premium+, SuperGrok or SuperGrok Heavy) is active at grok.com. \
2) Call start again and open the verification URL in the browser where you are already logged in to xAI \
(not a fresh private window). \
3) If it is still denied, use an xAI API key instead (BYOK, key from https://console.x.ai, billed per token).";

#[derive(Clone, Copy, PartialEq, Eq)]
enum RefreshMode {
    /// Only when the token is close to expiry.
    Auto,
    /// Now (unless someone refreshed in the last two seconds).
    Forced,
    /// The access token of the generation seen was refused upstream: redeem unless the
    /// record moved on since. No coalescing window here: the stored token is known bad,
    /// however young, and `unauthorized` promises that a refresh was tried.
    Rejected,
}

fn not_connected() -> ProviderError {
    ProviderError::NotConnected("not logged in: call start".into())
}

fn is_transient(e: &ProviderError) -> bool {
    matches!(
        e,
        ProviderError::Network(_)
            | ProviderError::UpstreamUnavailable(_)
            | ProviderError::RateLimited { .. }
    )
}

/// The provider: configuration plus the three injected effects.
pub struct Provider<T: Transport, S: SecretStore, C: Clock> {
    /// Endpoints and client.
    pub config: ProviderConfig,
    /// HTTP.
    pub transport: T,
    /// Secret storage shared by every process of the tenant.
    pub store: S,
    /// Time, sleeping and randomness.
    pub clock: C,
}

impl<T: Transport, S: SecretStore, C: Clock> Provider<T, S, C> {
    /// Assemble a provider. Nothing is read or sent until an operation is called.
    pub fn new(config: ProviderConfig, transport: T, store: S, clock: C) -> Self {
        Self {
            config,
            transport,
            store,
            clock,
        }
    }

    fn now(&self) -> u64 {
        self.clock.now_unix_ms()
    }

    fn user_agent(&self) -> String {
        self.config.user_agent().to_owned()
    }

    fn send(&mut self, req: HttpRequest) -> Result<HttpResponse<T::Body>, ProviderError> {
        self.transport.send(req).map_err(ProviderError::from)
    }

    // ----- store helpers -------------------------------------------------------------

    /// The stored credentials; a corrupt record is a storage error.
    fn load_credentials(&mut self) -> Result<Option<Credentials>, ProviderError> {
        match self.store.get(CREDENTIALS_KEY)? {
            Some(bytes) => Credentials::from_bytes(&bytes).map(Some),
            None => Ok(None),
        }
    }

    /// A cache record; corrupt ones count as absent.
    fn load_json<V: DeserializeOwned>(&mut self, key: &str) -> Result<Option<V>, ProviderError> {
        Ok(self
            .store
            .get(key)?
            .and_then(|b| serde_json::from_slice(&b).ok()))
    }

    fn save_json<V: Serialize>(&mut self, key: &str, value: &V) -> Result<(), ProviderError> {
        let bytes = serde_json::to_vec(value).expect("serializable record");
        Ok(self.store.set(key, &bytes)?)
    }

    // ----- discovery -----------------------------------------------------------------

    /// The issuer's endpoints, from the cache (1 h) or discovery. A stale cache is used
    /// when discovery fails transiently.
    fn endpoints(&mut self) -> Result<Endpoints, ProviderError> {
        let now = self.now();
        let issuer = self.config.issuer.clone();
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
        let req = get_json(self.config.discovery_url(), &self.user_agent(), None);
        let reply = read_reply(self.send(req)?, "discovery")?;
        let now = self.now();
        match reply.status {
            200..=299 => parse_discovery(issuer, &parse_json(&reply.body, "discovery")?),
            _ => match classify_oauth(&reply, "discovery", now, &[]) {
                OAuthReply::Failure(e) => Err(e),
                _ => Err(ProviderError::InvalidResponse(format!(
                    "discovery failed: HTTP {}",
                    reply.status
                ))),
            },
        }
    }

    // ----- status --------------------------------------------------------------------

    /// The stored credential's state. Absent credentials: `connected: false`, no network.
    /// Present: refreshed first when close to expiry (a transient refresh failure while
    /// the token is still valid reports the current state anyway); the models come from
    /// the cache, fetched once (best effort) when the cache is absent or stale.
    pub fn status(&mut self) -> Result<ConnectionStatus, ProviderError> {
        let Some(creds) = self.load_credentials()? else {
            return Ok(ConnectionStatus::default());
        };
        let creds = self.fresh_credentials(creds)?;
        Ok(self.status_of(creds, true))
    }

    /// Build the status of `creds`; with `fetch`, a missing or stale model cache is
    /// refilled best effort.
    fn status_of(&mut self, mut creds: Credentials, fetch: bool) -> ConnectionStatus {
        let now = self.now();
        let cache: Option<ModelsCache> = self.load_json(MODELS_KEY).unwrap_or(None);
        let models = match cache {
            Some(c) if c.is_fresh(now, creds.tier) => c.models,
            stale => {
                let stale = stale.filter(|c| c.tier == creds.tier).map(|c| c.models);
                let fetched = if fetch {
                    self.fetch_models().ok()
                } else {
                    None
                };
                match fetched {
                    Some(c) => {
                        // The fetch may have refreshed the credentials.
                        if let Ok(Some(latest)) = self.load_credentials() {
                            creds = latest;
                        }
                        c.models
                    }
                    None => stale.unwrap_or_default(),
                }
            }
        };
        ConnectionStatus {
            connected: true,
            tier: creds.tier,
            tier_name: creds.tier.map(tier_name),
            expires_at: Some(creds.expires_at_ms / 1000),
            default_model_id: Some(choose_default(&models)),
            models,
        }
    }

    // ----- device login --------------------------------------------------------------

    /// Begin a device login: discovery, then the device authorization request. The flow
    /// is stored under `pending.<id>`; the device code never leaves the store.
    pub fn start(&mut self) -> Result<DevicePrompt, ProviderError> {
        let endpoints = self.endpoints()?;
        let device_endpoint = endpoints
            .device_authorization_endpoint
            .ok_or_else(|| ProviderError::InvalidResponse("device flow not offered".into()))?;
        let (client_id, scope) = (self.config.client_id.clone(), self.config.scope.clone());
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
        let auth = match classify_oauth(&reply, "device authorization", self.now(), &[]) {
            OAuthReply::Success(v) => parse_device_authorization(&v)?,
            OAuthReply::Error { code, .. } if code == "access_denied" => {
                return Err(ProviderError::AccessDenied(ACCESS_DENIED_GUIDANCE.into()));
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
                    Some(creds) => Ok(PollOutcome::Connected(self.status_of(creds, false))),
                    None => Err(ProviderError::NotConnected(m)),
                };
            }
            Err(e) => return Err(e),
        };
        let key = pending_key(&id);
        let now = self.now();
        if flow.is_expired(now) {
            self.store.delete(&key)?;
            return Err(ProviderError::DeviceCodeExpired(
                "the device code expired before approval: call start again".into(),
            ));
        }
        if flow.too_early(now) {
            return Ok(PollOutcome::Pending(flow.pending_login(&id, now)));
        }
        let endpoints = self.endpoints()?;
        // Held from before the token request until the new credentials are stored, so a
        // granted login is never lost to a lock timeout after its device code was used.
        let _credentials = self.store.lock(CREDENTIALS_LOCK, LOCK_TIMEOUT_MS)?;
        let client_id = self.config.client_id.clone();
        let req = post_form(
            endpoints.token_endpoint,
            &self.user_agent(),
            &[
                ("grant_type", GRANT_DEVICE_CODE),
                ("device_code", &flow.device_code),
                ("client_id", &client_id),
            ],
        );
        let reply = read_reply(self.send(req)?, "token endpoint")?;
        flow.last_poll_ms = Some(now);
        let device_code = flow.device_code.clone();
        match classify_oauth(&reply, "device token poll", now, &[&device_code]) {
            OAuthReply::Success(v) => {
                let saved = TokenResponse::parse(&v).and_then(|t| self.store_new_login(t));
                // A used device code is never polled again, whatever happened above; the
                // other pending logins are moot once the tenant is connected.
                let forgotten = self.forget_pending_logins();
                let creds = saved?;
                forgotten?;
                Ok(PollOutcome::Connected(self.status_of(creds, false)))
            }
            OAuthReply::Error { code, description } => match code.as_str() {
                "authorization_pending" => {
                    self.save_json(&key, &flow)?;
                    Ok(PollOutcome::Pending(flow.pending_login(&id, now)))
                }
                "slow_down" => {
                    flow.interval_secs = flow.interval_secs.saturating_add(SLOW_DOWN_STEP_SECS);
                    self.save_json(&key, &flow)?;
                    Ok(PollOutcome::Pending(flow.pending_login(&id, now)))
                }
                "access_denied" => {
                    self.store.delete(&key)?;
                    Err(ProviderError::AccessDenied(ACCESS_DENIED_GUIDANCE.into()))
                }
                "expired_token" => {
                    self.store.delete(&key)?;
                    Err(ProviderError::DeviceCodeExpired(
                        "the device code expired before approval: call start again".into(),
                    ))
                }
                _ => {
                    self.store.delete(&key)?;
                    Err(ProviderError::InvalidResponse(format!(
                        "the token endpoint ended the login with {}: call start again",
                        describe(&code, description.as_deref())
                    )))
                }
            },
            OAuthReply::Failure(e) => {
                self.save_json(&key, &flow)?;
                Err(e)
            }
        }
    }

    /// Store the credentials of a fresh login (a new account may see other models, so
    /// the model cache goes too). The caller holds the credentials lock.
    fn store_new_login(&mut self, tokens: TokenResponse) -> Result<Credentials, ProviderError> {
        let generation = self
            .load_credentials()
            .ok()
            .flatten()
            .map_or(0, |c| c.generation);
        let creds =
            Credentials::from_token_response(tokens, self.now(), None, generation.wrapping_add(1));
        self.store.set(CREDENTIALS_KEY, &creds.to_bytes())?;
        let _ = self.store.delete(MODELS_KEY);
        Ok(creds)
    }

    // ----- refresh -------------------------------------------------------------------

    /// Redeem the refresh token now (unless another process did in the last two seconds)
    /// and report the resulting state (models from the cache only).
    pub fn refresh(&mut self) -> Result<ConnectionStatus, ProviderError> {
        let creds = self.load_credentials()?.ok_or_else(not_connected)?;
        let creds = self.refresh_locked(creds.generation, RefreshMode::Forced)?;
        Ok(self.status_of(creds, false))
    }

    /// Credentials fit for an API call: refreshed when close to expiry; a transient
    /// refresh failure while the token is still valid keeps the current one.
    fn fresh_credentials(&mut self, creds: Credentials) -> Result<Credentials, ProviderError> {
        if !creds.needs_refresh(self.now()) {
            return Ok(creds);
        }
        match self.refresh_locked(creds.generation, RefreshMode::Auto) {
            Ok(c) => Ok(c),
            Err(e) if is_transient(&e) && !creds.is_expired(self.now()) => Ok(creds),
            Err(e) => Err(e),
        }
    }

    fn usable_credentials(&mut self) -> Result<Credentials, ProviderError> {
        let creds = self.load_credentials()?.ok_or_else(not_connected)?;
        self.fresh_credentials(creds)
    }

    /// Single-flight refresh. `seen_generation` is the record the caller worked with:
    /// if the record changed by the time the lock is held, someone else refreshed.
    fn refresh_locked(
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
        let client_id = self.config.client_id.clone();
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
                self.store.set(CREDENTIALS_KEY, &next.to_bytes())?;
                Ok(next)
            }
            OAuthReply::Error { code, .. } if code == "invalid_grant" => {
                match self.load_credentials()? {
                    Some(c) if c.generation != current.generation => Ok(c),
                    _ => Err(ProviderError::Unauthorized(
                        "the login was revoked or expired: logout, then start again".into(),
                    )),
                }
            }
            // The server's trouble, not the login's: the refresh token was not consumed.
            OAuthReply::Error { code, description }
                if code == "temporarily_unavailable" || code == "server_error" =>
            {
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

    // ----- logout --------------------------------------------------------------------

    /// Revoke the refresh token (best effort), then delete the credentials, the model
    /// cache and every pending login. Credentials that cannot be read back (corrupt, over
    /// the store's size limit, undecodable) are still deleted, without revocation.
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
        self.store.delete(MODELS_KEY)?;
        self.forget_pending_logins()?;
        Ok(LogoutReport {
            was_connected,
            revoked,
        })
    }

    /// For `logout`: whether credentials are stored, and their refresh token if they can be
    /// read. A read that fails (the host reports the stored value corrupt or too large, or
    /// any other storage failure) counts as stored credentials without a token: logout
    /// must still be able to delete them, and the delete reports a real storage failure.
    fn stored_refresh_token(&mut self) -> (bool, Option<String>) {
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

    /// Delete every pending login (their device codes stay unused).
    fn forget_pending_logins(&mut self) -> Result<(), ProviderError> {
        for key in self.store.list_keys(PENDING_PREFIX)? {
            self.store.delete(&key)?;
        }
        Ok(())
    }

    /// RFC 7009 revocation; `true` only on a 2xx answer.
    fn revoke(&mut self, refresh_token: &str) -> bool {
        let Ok(endpoints) = self.endpoints() else {
            return false;
        };
        let Some(endpoint) = endpoints.revocation_endpoint else {
            return false;
        };
        let client_id = self.config.client_id.clone();
        let req = post_form(
            endpoint,
            &self.user_agent(),
            &[
                ("token", refresh_token),
                ("token_type_hint", "refresh_token"),
                ("client_id", &client_id),
            ],
        );
        matches!(self.send(req), Ok(r) if (200..300).contains(&r.status))
    }

    // ----- model API -----------------------------------------------------------------

    /// Send an API request built by `build` (given the access token), with the error
    /// policy of the model API: one forced refresh and one retry on 401 (or 403
    /// bad-credentials), two backed-off retries on 5xx, everything else final. Returns
    /// the 2xx response and the credentials it was sent with.
    fn api_send(
        &mut self,
        build: &dyn Fn(&str) -> HttpRequest,
    ) -> Result<(HttpResponse<T::Body>, Credentials), ProviderError> {
        let mut creds = self.usable_credentials()?;
        let mut refreshed = false;
        let mut server_retries = 0;
        loop {
            let resp = self.send(build(&creds.access_token))?;
            if (200..300).contains(&resp.status) {
                return Ok((resp, creds));
            }
            let reply = read_reply(resp, "model API")?;
            let failure = classify_api_error(
                reply.status,
                reply.header("retry-after"),
                &reply.body,
                self.now(),
                &creds.secrets(),
            );
            match failure {
                ApiFailure::Unauthenticated(_) if !refreshed => {
                    refreshed = true;
                    creds = self.refresh_locked(creds.generation, RefreshMode::Rejected)?;
                }
                ApiFailure::Unauthenticated(msg) => {
                    return Err(ProviderError::Unauthorized(format!(
                        "the credentials were rejected even after a refresh: logout, then start again (upstream: {msg})"
                    )));
                }
                ApiFailure::Server(_) if server_retries < SERVER_ERROR_BACKOFF_MS.len() => {
                    self.clock.sleep_ms(SERVER_ERROR_BACKOFF_MS[server_retries]);
                    server_retries += 1;
                }
                ApiFailure::Server(msg) => return Err(ProviderError::UpstreamUnavailable(msg)),
                ApiFailure::Final(e) => return Err(e),
            }
        }
    }

    fn fetch_models(&mut self) -> Result<ModelsCache, ProviderError> {
        let (url, ua) = (self.config.api_url("models"), self.user_agent());
        let (mut resp, creds) = self.api_send(&|token| get_json(url.clone(), &ua, Some(token)))?;
        let v = read_json(&mut resp.body, "model list")?;
        let (models, media_models) = parse_models(&v)?;
        let cache = ModelsCache {
            fetched_at_ms: self.now(),
            tier: creds.tier,
            models,
            media_models,
        };
        // The list is good even if caching it fails.
        let _ = self.save_json(MODELS_KEY, &cache);
        Ok(cache)
    }

    /// The catalogue the account's tier unlocks: from the cache (1 h, same tier) unless
    /// `force`, else `GET {api}/models`.
    pub fn models(&mut self, force: bool) -> Result<ModelList, ProviderError> {
        let creds = self.load_credentials()?.ok_or_else(not_connected)?;
        if !force
            && let Some(cache) = self.load_json::<ModelsCache>(MODELS_KEY)?
            && cache.is_fresh(self.now(), creds.tier)
        {
            return Ok(cache.to_list(true));
        }
        Ok(self.fetch_models()?.to_list(false))
    }

    /// One complete reply, from the lane the model belongs to (or the one asked for).
    pub fn chat(&mut self, request: &ChatRequest) -> Result<ChatReply, ProviderError> {
        let route = route(request)?;
        let upstream = request_body(&route, request, false)?;
        let (url, ua) = (self.config.api_url(route.path()), self.user_agent());
        let (mut resp, creds) = self
            .api_send(&|token| chat_post(&url, &ua, token, &upstream, "application/json"))
            .map_err(|e| explain_refusal(e, &route, request))?;
        let v = read_json(&mut resp.body, "chat reply")?;
        // A failed response may echo what it was sent: mask the credentials in its error.
        parse_reply(&route, &v).map_err(|e| e.redacted(&creds.secrets()))
    }

    /// Send a streaming chat request and wait for the response head. The returned
    /// stream owns the body and does not borrow the provider.
    pub fn open_chat_stream(
        &mut self,
        request: &ChatRequest,
    ) -> Result<ChatStream<T::Body>, ProviderError> {
        let route = route(request)?;
        let upstream = request_body(&route, request, true)?;
        let (url, ua) = (self.config.api_url(route.path()), self.user_agent());
        let (resp, creds) = self
            .api_send(&|token| chat_post(&url, &ua, token, &upstream, "text/event-stream"))
            .map_err(|e| explain_refusal(e, &route, request))?;
        if let Some(ct) = resp.header("content-type")
            && !ct.to_ascii_lowercase().contains("text/event-stream")
        {
            return Err(ProviderError::InvalidResponse(format!(
                "expected an event stream, got {}",
                crate::redact::truncate(ct, 60)
            )));
        }
        let secrets = creds.secrets().into_iter().map(str::to_owned).collect();
        Ok(
            ChatStream::new(resp.body, route.lane, prefixed(&route.upstream_model))
                .redacting(secrets),
        )
    }
}

/// A chat POST with the turn's own headers (e.g. the prompt-cache key).
fn chat_post(
    url: &str,
    user_agent: &str,
    token: &str,
    upstream: &crate::chat::UpstreamRequest,
    accept: &str,
) -> HttpRequest {
    let mut req = post_json(
        url.to_owned(),
        user_agent,
        token,
        upstream.body.clone(),
        accept,
    );
    req.headers.extend(upstream.headers.iter().cloned());
    req
}
