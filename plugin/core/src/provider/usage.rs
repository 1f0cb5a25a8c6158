//! What is left of a route's quota (`usage`): the subscription rail reports its credits;
//! xAI's API reports nothing to this client.

use super::Provider;
use super::api::ServerErrors;
use crate::error::ProviderError;
use crate::http::{get_json, read_json};
use crate::io::{Clock, SecretStore, Transport};
use crate::quota::{BILLING_PATH, BILLING_SOURCE, NO_API_QUOTA, parse_credits};
use crate::routes::Route;
use crate::types::QuotaReport;

impl<T: Transport, S: SecretStore, C: Clock> Provider<T, S, C> {
    /// What is left of `route`'s quota (`None`: the default route). The subscription rail
    /// is asked (`GET {subscription-base}/billing?format=credits`, its bearer and
    /// headers); an answer without a readable balance (404, 5xx, anything unparsable) is
    /// a report with no credits saying why, while a missing or rejected login stays an
    /// error, as do transport and storage failures. The other routes report no figure,
    /// without a request.
    pub fn usage(&mut self, route: Option<&str>) -> Result<QuotaReport, ProviderError> {
        let route = self.route_or_default(route)?;
        let fetched_at = self.now() / 1000;
        let report = |credits, resets_at, detail: String| QuotaReport {
            route: route.name().to_owned(),
            credits,
            resets_at,
            detail,
            fetched_at,
        };
        if route != Route::Subscription {
            return Ok(report(None, None, NO_API_QUOTA.to_owned()));
        }
        match self.fetch_credits(route) {
            Ok(Some(c)) => Ok(report(
                Some(c.balance),
                c.resets_at,
                format!("from {BILLING_SOURCE}"),
            )),
            Ok(None) => Ok(report(
                None,
                None,
                "unknown: the subscription rail's billing answer has no balance this plugin can read"
                    .to_owned(),
            )),
            Err(e) if figure_unknown(&e) => Ok(report(
                None,
                None,
                format!("unknown: the subscription rail did not report credits ({e})"),
            )),
            Err(e) => Err(self.in_route(route, e)),
        }
    }

    fn fetch_credits(
        &mut self,
        route: Route,
    ) -> Result<Option<crate::quota::Credits>, ProviderError> {
        let (url, ua) = (
            self.settings.api_url(route, BILLING_PATH),
            self.user_agent(),
        );
        let (mut resp, _) = self.api_send(route, ServerErrors::Report, &|token| {
            get_json(url.clone(), &ua, Some(token))
        })?;
        let v = read_json(&mut resp.body, "billing")?;
        Ok(parse_credits(&v))
    }
}

/// Whether upstream answered, only without a figure: the report says unknown instead of
/// failing. Credentials missing or rejected, the transport, the sandbox and the store stay
/// errors (the caller has something to do about those).
fn figure_unknown(e: &ProviderError) -> bool {
    matches!(
        e,
        ProviderError::InvalidInput(_)
            | ProviderError::InvalidResponse(_)
            | ProviderError::UpstreamUnavailable(_)
            | ProviderError::TierNotAllowed(_)
            | ProviderError::RateLimited { .. }
            | ProviderError::QuotaExhausted { .. }
    )
}
