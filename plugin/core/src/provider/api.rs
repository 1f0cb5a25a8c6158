//! Requests to the model API on a route, with the route's bearer and headers and one retry
//! policy; and the exports built on them: `models`, `chat`, `chat-stream`.

use std::cell::RefCell;

use super::credentials::RefreshMode;
use super::routes::no_api_key;
use super::{GENERIC_RETRY_WAIT_CAP_SECONDS, Provider, SERVER_ERROR_BACKOFF_MS};
use crate::api_error::{ApiFailure, classify_api_error};
use crate::api_key::{API_KEY_CONSOLE, ApiKey};
use crate::chat::{
    Plan, UpstreamRequest, explain_refusal, parse_reply_body, plan_listed, request_body,
};
use crate::error::ProviderError;
use crate::http::{get_json, post_json, read_json, read_json_body, read_reply};
use crate::io::{Clock, HttpRequest, HttpResponse, SecretStore, Transport};
use crate::models::{ModelsCache, models_key, parse_models};
use crate::record::Record;
use crate::routes::{Route, RoutedModel};
use crate::stream::ChatStream;
use crate::token::Credentials;
use crate::types::{ChatReply, ChatRequest, CredentialKind, Lane, ModelList};

/// What a route's requests are authorized with.
pub(super) enum Bearer {
    /// The OAuth access token (routes `api`, `subscription`).
    OAuth(Credentials),
    /// The API key (route `api-key`).
    ApiKey(ApiKey),
}

impl Bearer {
    fn token(&self) -> &str {
        match self {
            Bearer::OAuth(c) => c.access_token.expose(),
            Bearer::ApiKey(k) => k.key.expose(),
        }
    }

    /// What an upstream answer must never echo.
    pub(super) fn secrets(&self) -> Vec<&str> {
        match self {
            Bearer::OAuth(c) => c.secrets(),
            Bearer::ApiKey(k) => vec![k.key.expose()],
        }
    }

    /// The account tier the bearer stands for (an API key has none).
    fn tier(&self) -> Option<u32> {
        match self {
            Bearer::OAuth(c) => c.tier,
            Bearer::ApiKey(_) => None,
        }
    }
}

/// How many 5xx answers a request is retried after.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum ServerErrors {
    /// Backed off and retried ([`SERVER_ERROR_BACKOFF_MS`]).
    Retry,
    /// Reported at once (a figure nobody waits for, such as the quota).
    Report,
}

impl<T: Transport, S: SecretStore, C: Clock> Provider<T, S, C> {
    /// The bearer of `route`, fit for a request (an OAuth token refreshed when close to
    /// expiry).
    fn bearer(&mut self, route: Route) -> Result<Bearer, ProviderError> {
        match route.credential() {
            CredentialKind::Oauth => self.usable_credentials().map(Bearer::OAuth),
            CredentialKind::ApiKey => self
                .load_api_key()?
                .map(Bearer::ApiKey)
                .ok_or_else(no_api_key),
        }
    }

    /// Send a request of `route` built by `build` (given the bearer), with the route's
    /// headers, under the error policy of the model API: on 401 (or 403 bad-credentials)
    /// one forced refresh and one retry for the OAuth login, none for an API key (no
    /// refresh exists for it); two retries on 5xx (unless `server_errors` says report, or
    /// upstream answered `x-should-retry: false`), each after the backoff or the
    /// answer's `Retry-After` clamped to 30 s; everything else final. Returns the 2xx
    /// response and the bearer it was sent with.
    pub(super) fn api_send(
        &mut self,
        route: Route,
        server_errors: ServerErrors,
        build: &dyn Fn(&str) -> HttpRequest,
    ) -> Result<(HttpResponse<T::Body>, Bearer), ProviderError> {
        let mut bearer = self.bearer(route)?;
        let route_headers = self.settings.route_headers(route);
        let mut refreshed = false;
        let mut server_retries = 0;
        loop {
            let mut req = build(bearer.token());
            req.headers.extend(route_headers.iter().cloned());
            let resp = self.send(req)?;
            if (200..300).contains(&resp.status) {
                return Ok((resp, bearer));
            }
            let reply = read_reply(resp, "model API")?;
            // xAI's CLI: `false` makes any status final; `true` is ignored.
            let retry_forbidden = reply
                .header("x-should-retry")
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("false"));
            let failure = classify_api_error(
                reply.status,
                reply.header("retry-after"),
                &reply.body,
                &bearer.secrets(),
                route,
            );
            match (failure, &bearer) {
                (ApiFailure::Unauthenticated(msg), Bearer::ApiKey(_)) => {
                    return Err(ProviderError::Unauthorized(format!(
                        "the API key was rejected: check or replace the key ({API_KEY_CONSOLE}) with set-api-key (upstream: {msg})"
                    )));
                }
                (ApiFailure::Unauthenticated(_), Bearer::OAuth(creds)) if !refreshed => {
                    refreshed = true;
                    let seen = creds.generation;
                    bearer = Bearer::OAuth(self.refresh_locked(seen, RefreshMode::Rejected)?);
                }
                (ApiFailure::Unauthenticated(msg), Bearer::OAuth(_)) => {
                    return Err(ProviderError::Unauthorized(format!(
                        "the credentials were rejected even after a refresh: logout, then start again (upstream: {msg})"
                    )));
                }
                (ApiFailure::Server { retry_after, .. }, _)
                    if server_errors == ServerErrors::Retry
                        && !retry_forbidden
                        && server_retries < SERVER_ERROR_BACKOFF_MS.len() =>
                {
                    let wait = retry_after.map_or(SERVER_ERROR_BACKOFF_MS[server_retries], |s| {
                        u64::from(s.min(GENERIC_RETRY_WAIT_CAP_SECONDS)) * 1000
                    });
                    self.clock.sleep_ms(wait);
                    server_retries += 1;
                }
                (ApiFailure::Server { message, .. }, _) => {
                    let why = if retry_forbidden {
                        " (upstream said not to retry)"
                    } else {
                        ""
                    };
                    return Err(ProviderError::UpstreamUnavailable(format!(
                        "{message}{why}"
                    )));
                }
                (ApiFailure::Final(e), _) => return Err(e),
            }
        }
    }

    pub(super) fn fetch_models(&mut self, route: Route) -> Result<ModelsCache, ProviderError> {
        let (url, ua) = (self.settings.api_url(route, "models"), self.user_agent());
        let (mut resp, bearer) = self.api_send(route, ServerErrors::Retry, &|token| {
            get_json(url.clone(), &ua, Some(token))
        })?;
        let v = read_json(&mut resp.body, "model list")?;
        let (models, media_models) = parse_models(&v, route)?;
        let cache = ModelsCache {
            fetched_at_ms: self.now(),
            tier: bearer.tier(),
            models,
            media_models,
        };
        // The list is good even if caching it fails.
        let _ = self.save_json(&models_key(route), &cache);
        Ok(cache)
    }

    /// The catalogue of `route` (`None`: the default route): from the cache (1 h, same
    /// tier) unless `force`, else `GET {base}/models`. Without the route's credential:
    /// `not-connected`.
    pub fn models(&mut self, force: bool, route: Option<&str>) -> Result<ModelList, ProviderError> {
        let route = self.route_or_default(route)?;
        self.models_of(force, route)
            .map_err(|e| self.in_route(route, e))
    }

    fn models_of(&mut self, force: bool, route: Route) -> Result<ModelList, ProviderError> {
        // The tier the cache must have been fetched for (an API key has none).
        let tier = match route.credential() {
            CredentialKind::Oauth => {
                self.load_credentials()?
                    .ok_or_else(super::credentials::not_connected)?
                    .tier
            }
            CredentialKind::ApiKey => {
                self.load_api_key()?.ok_or_else(no_api_key)?;
                None
            }
        };
        if !force
            && let Some(cache) = self.load_json::<ModelsCache>(&models_key(route))?
            && cache.is_fresh(self.now(), tier)
        {
            return Ok(cache.to_list(route, true));
        }
        Ok(self.fetch_models(route)?.to_list(route, false))
    }

    /// The route and lane of a turn, validated; the lane is the one the route's cached
    /// catalogue lists for the model (its `apiBackend`) when it is listed there.
    fn plan(&mut self, request: &ChatRequest) -> Result<Plan, ProviderError> {
        let model = self.route_of(request)?;
        let listed = self.listed_lane(&model);
        plan_listed(request, model, listed)
    }

    /// The lane of `model` in its route's cached catalogue (no network call; a missing or
    /// unreadable cache is no answer).
    fn listed_lane(&mut self, model: &RoutedModel) -> Option<Lane> {
        let stored = self.store.get(&models_key(model.route)).ok()??;
        let id = model.id();
        LISTED_LANES.with_borrow_mut(|memo| {
            // Every turn asks; the catalogue (several KiB of JSON) changes about hourly.
            if memo.as_ref().is_none_or(|(bytes, _)| *bytes != stored) {
                let cache = ModelsCache::from_json(&stored)?;
                let lanes = cache.models.into_iter().map(|m| (m.id, m.lane)).collect();
                *memo = Some((stored, lanes));
            }
            let (_, lanes) = memo.as_ref()?;
            lanes
                .iter()
                .find(|(listed, _)| *listed == id)
                .map(|(_, lane)| *lane)
        })
    }

    /// One complete reply, on the request's route, from the lane its model belongs to
    /// (or the one asked for). A route that streams only is streamed upstream and the
    /// stream assembled.
    pub fn chat(&mut self, request: &ChatRequest) -> Result<ChatReply, ProviderError> {
        let plan = self.plan(request)?;
        let route = plan.route();
        self.chat_on(&plan, request)
            .map_err(|e| self.in_route(route, e))
    }

    fn chat_on(&mut self, plan: &Plan, request: &ChatRequest) -> Result<ChatReply, ProviderError> {
        if plan.streams_upstream(false) {
            return self.open_on(plan, request)?.collect();
        }
        let upstream = request_body(plan, request, false)?;
        let (url, ua) = (
            self.settings.api_url(plan.route(), plan.path()),
            self.user_agent(),
        );
        let (mut resp, bearer) = self
            .api_send(plan.route(), ServerErrors::Retry, &|token| {
                chat_post(&url, &ua, token, &upstream, "application/json")
            })
            .map_err(|e| explain_refusal(e, plan, request))?;
        let body = read_json_body(&mut resp.body, "chat reply")?;
        // A failed response may echo what it was sent: mask the credentials in its error.
        parse_reply_body(plan, &body, "chat reply").map_err(|e| e.redacted(&bearer.secrets()))
    }

    /// Send a streaming chat request and wait for the response head. The returned
    /// stream owns the body and does not borrow the provider. Errors it reports later
    /// name its route but not the routes that could serve instead: ask
    /// [`Provider::in_route`] for those.
    pub fn open_chat_stream(
        &mut self,
        request: &ChatRequest,
    ) -> Result<ChatStream<T::Body>, ProviderError> {
        let plan = self.plan(request)?;
        let route = plan.route();
        self.open_on(&plan, request)
            .map_err(|e| self.in_route(route, e))
    }

    fn open_on(
        &mut self,
        plan: &Plan,
        request: &ChatRequest,
    ) -> Result<ChatStream<T::Body>, ProviderError> {
        let upstream = request_body(plan, request, true)?;
        let (url, ua) = (
            self.settings.api_url(plan.route(), plan.path()),
            self.user_agent(),
        );
        let (resp, bearer) = self
            .api_send(plan.route(), ServerErrors::Retry, &|token| {
                chat_post(&url, &ua, token, &upstream, "text/event-stream")
            })
            .map_err(|e| explain_refusal(e, plan, request))?;
        if let Some(ct) = resp.header("content-type")
            && !ct.to_ascii_lowercase().contains("text/event-stream")
        {
            return Err(ProviderError::InvalidResponse(format!(
                "expected an event stream, got {}",
                crate::redact::truncate(ct, 60)
            )));
        }
        let secrets = bearer.secrets().into_iter().map(str::to_owned).collect();
        Ok(ChatStream::new(resp.body, plan.lane, plan.model.id())
            .redacting(secrets)
            .on_route(plan.route()))
    }
}

/// A stored model catalogue, and the lane of each model it lists.
type CatalogueLanes = (Vec<u8>, Vec<(String, Lane)>);

thread_local! {
    /// The lanes of the last model catalogue [`Provider::listed_lane`] read, by the stored
    /// bytes they were read from: parsing the whole catalogue (several KiB) on every turn
    /// to find one model's lane cost about 25 µs of `serve`'s CPU per request.
    static LISTED_LANES: RefCell<Option<CatalogueLanes>> = const { RefCell::new(None) };
}

/// A chat POST with the turn's own headers (e.g. the prompt-cache key).
fn chat_post(
    url: &str,
    user_agent: &str,
    token: &str,
    upstream: &UpstreamRequest,
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
