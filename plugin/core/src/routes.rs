//! Routes: the ways a request is paid for (the OAuth login on the developer API or on the
//! subscription rail, or an API key), what names one, and which serve instead.

use serde::{Deserialize, Serialize};

use crate::error::ProviderError;
use crate::manifest::{ROUTES, RouteSpec};
use crate::types::CredentialKind;

/// The upstream id of the developer API's model to switch to after connecting, when its
/// catalogue offers it (the seed's default).
pub const DEFAULT_MODEL: &str = "grok-4.3";
/// The subscription rail's default before its catalogue is known: xAI's CLI's default
/// since 2026-08-19 (`default_models.json` of xai-org/grok-build at 19d42e3). The rail
/// does not serve `grok-4.3` (API-only).
pub const DEFAULT_RAIL_MODEL: &str = "grok-4.6";

/// One of the manifest's routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Route {
    /// The OAuth bearer on the developer API (`api-base`).
    Api,
    /// The OAuth bearer on the Grok CLI subscription rail (`subscription-base`): its client
    /// headers on every request, streamed upstream only, nothing stored upstream.
    Subscription,
    /// An API key on the developer API (BYOK).
    ApiKey,
}

impl Route {
    /// Every route, in the manifest's order (the default first).
    pub const ALL: [Route; 3] = [Route::Subscription, Route::Api, Route::ApiKey];

    fn spec(self) -> &'static RouteSpec {
        ROUTES
            .iter()
            .find(|s| s.route == self)
            .expect("every route is in the manifest")
    }

    /// Its name, e.g. `api-key`.
    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// The prefix of its model ids, e.g. `xai-grok/`.
    pub fn prefix(self) -> &'static str {
        self.spec().model_prefix
    }

    /// The credential it spends.
    pub fn credential(self) -> CredentialKind {
        self.spec().credential
    }

    /// Which pool its requests spend, for people.
    pub fn bills(self) -> &'static str {
        self.spec().bills
    }

    /// The route called `name`.
    pub fn from_name(name: &str) -> Option<Route> {
        ROUTES.iter().find(|s| s.name == name).map(|s| s.route)
    }

    /// The route called `name`, or invalid input listing the routes.
    pub fn parse(name: &str) -> Result<Route, ProviderError> {
        Route::from_name(name).ok_or_else(|| {
            ProviderError::InvalidInput(format!(
                "unknown route {:?}: the routes are {}",
                crate::redact::truncate(name, 40),
                route_list()
            ))
        })
    }

    /// Whether upstream must be asked for a stream, whatever the caller wants (the
    /// subscription rail refuses anything else).
    pub fn stream_only(self) -> bool {
        self == Route::Subscription
    }

    /// `grok-4.3` -> `xai-grok/grok-4.3` on this route.
    pub fn prefixed(self, upstream: &str) -> String {
        format!("{}{upstream}", self.prefix())
    }

    /// An upstream model id without this route's prefix, should upstream already carry it.
    pub fn unprefixed(self, id: &str) -> &str {
        id.strip_prefix(self.prefix()).unwrap_or(id)
    }

    /// The model to switch to after connecting, on this route, before its catalogue is
    /// known (see `models::choose_default`).
    pub fn default_model_id(self) -> String {
        match self {
            Route::Subscription => self.prefixed(DEFAULT_RAIL_MODEL),
            Route::Api | Route::ApiKey => self.prefixed(DEFAULT_MODEL),
        }
    }
}

impl std::fmt::Display for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// `subscription, api, api-key`, for messages.
pub fn route_list() -> String {
    Route::ALL.map(Route::name).join(", ")
}

/// The route whose prefix `model` carries, and the model id without it.
pub fn route_of_model(model: &str) -> Option<(Route, &str)> {
    Route::ALL
        .into_iter()
        .find_map(|r| model.strip_prefix(r.prefix()).map(|rest| (r, rest)))
}

/// A model on a route: where a request goes and what upstream calls the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutedModel {
    /// The route that pays.
    pub route: Route,
    /// The model id as upstream knows it (no route prefix).
    pub upstream: String,
}

impl RoutedModel {
    /// The id callers see: the route's prefix and the upstream id.
    pub fn id(&self) -> String {
        self.route.prefixed(&self.upstream)
    }
}

/// The route of a request: the one it names, else the one its model prefix names, else
/// `default`. A named route that the prefix contradicts, or an unknown name, is invalid
/// input listing the routes.
pub fn resolve(
    requested: Option<&str>,
    model: &str,
    default: Route,
) -> Result<RoutedModel, ProviderError> {
    let model = model.trim();
    let named = requested.map(Route::parse).transpose()?;
    let (route, upstream) = match (named, route_of_model(model)) {
        (Some(named), Some((by_prefix, _))) if named != by_prefix => {
            return Err(ProviderError::InvalidInput(format!(
                "the model id {} names the route {by_prefix}, but the request names the route {named}: \
                 drop the prefix or pick the model id of route {named} (prefix {}; the routes are {})",
                crate::redact::truncate(model, 80),
                named.prefix(),
                route_list()
            )));
        }
        (_, Some((by_prefix, rest))) => (by_prefix, rest),
        (Some(named), None) => (named, model),
        (None, None) => (default, model),
    };
    Ok(RoutedModel {
        route,
        upstream: upstream.to_owned(),
    })
}

/// The routes that could serve instead of `failed`: every other route of the manifest,
/// those whose credential is stored first (`stored` tells), each group in manifest order.
pub fn alternatives(failed: Route, mut stored: impl FnMut(Route) -> bool) -> Vec<String> {
    let (ready, rest): (Vec<Route>, Vec<Route>) = Route::ALL
        .into_iter()
        .filter(|r| *r != failed)
        .partition(|r| stored(*r));
    ready
        .into_iter()
        .chain(rest)
        .map(|r| r.name().to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(requested: Option<&str>, model: &str, default: Route) -> (Route, String) {
        let r = resolve(requested, model, default).unwrap();
        (r.route, r.upstream)
    }

    #[test]
    fn a_request_names_its_route_or_takes_the_prefix_or_the_default() {
        assert_eq!(
            ok(None, "grok-4.3", Route::Api),
            (Route::Api, "grok-4.3".into())
        );
        assert_eq!(
            ok(None, "grok-4.3", Route::ApiKey),
            (Route::ApiKey, "grok-4.3".into())
        );
        assert_eq!(
            ok(None, "xai-grok-sub/grok-4.3", Route::Api),
            (Route::Subscription, "grok-4.3".into())
        );
        assert_eq!(
            ok(None, "xai/grok-4.3", Route::Api),
            (Route::ApiKey, "grok-4.3".into())
        );
        assert_eq!(
            ok(None, "xai-grok/grok-4.3", Route::ApiKey),
            (Route::Api, "grok-4.3".into())
        );
        assert_eq!(
            ok(Some("subscription"), "grok-4.3", Route::Api),
            (Route::Subscription, "grok-4.3".into())
        );
        // A prefix that agrees with the named route is fine.
        assert_eq!(
            ok(Some("api-key"), "xai/grok-4.3", Route::Api),
            (Route::ApiKey, "grok-4.3".into())
        );
        // Another vendor's prefix is part of the upstream id.
        assert_eq!(
            ok(None, "other/m", Route::Api),
            (Route::Api, "other/m".into())
        );
    }

    #[test]
    fn the_seeds_model_ids_keep_their_route_under_the_subscription_default() {
        // grok-4.3 is API-only: the seed's `xai-grok/` id names the api route, whatever the
        // default; a bare id takes the default, now the subscription.
        assert_eq!(
            ok(None, "xai-grok/grok-4.3", Route::Subscription),
            (Route::Api, "grok-4.3".into())
        );
        assert_eq!(
            ok(None, "grok-4.6", Route::Subscription),
            (Route::Subscription, "grok-4.6".into())
        );
        assert_eq!(
            crate::settings::Settings::default().default_route,
            Route::Subscription
        );
        assert_eq!(Route::ALL[0], Route::Subscription, "the default first");
    }

    #[test]
    fn contradictions_and_unknown_names_are_invalid_input() {
        let e = resolve(Some("api"), "xai-grok-sub/grok-4.3", Route::Api).unwrap_err();
        assert!(
            matches!(&e, ProviderError::InvalidInput(m) if m.contains("names the route subscription") && m.contains("subscription, api, api-key")),
            "{e:?}"
        );
        let e = resolve(Some("premium"), "grok-4.3", Route::Api).unwrap_err();
        assert!(
            matches!(&e, ProviderError::InvalidInput(m) if m.contains("\"premium\"") && m.contains("subscription, api, api-key")),
            "{e:?}"
        );
    }

    #[test]
    fn alternatives_put_the_stored_first() {
        assert_eq!(
            alternatives(Route::Api, |_| false),
            ["subscription", "api-key"]
        );
        assert_eq!(
            alternatives(Route::Api, |r| r == Route::ApiKey),
            ["api-key", "subscription"]
        );
        assert_eq!(
            alternatives(Route::ApiKey, |_| true),
            ["subscription", "api"]
        );
    }

    #[test]
    fn names_and_prefixes() {
        for r in Route::ALL {
            assert_eq!(Route::from_name(r.name()), Some(r));
            assert_eq!(route_of_model(&r.prefixed("m")), Some((r, "m")));
            assert_eq!(r.unprefixed(&r.prefixed("m")), "m");
        }
        assert_eq!(Route::Api.default_model_id(), "xai-grok/grok-4.3");
        // The rail does not serve grok-4.3 (API-only): its own default.
        assert_eq!(
            Route::Subscription.default_model_id(),
            "xai-grok-sub/grok-4.6"
        );
        assert!(Route::Subscription.stream_only() && !Route::Api.stream_only());
    }
}
