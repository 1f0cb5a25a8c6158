//! What is left of a route's quota (`usage`): the subscription rail reports its allowance;
//! xAI's API reports nothing to this client.

use super::Provider;
use super::api::ServerErrors;
use crate::error::ProviderError;
use crate::http::{get_json, read_json};
use crate::io::{Clock, SecretStore, Transport};
use crate::quota::{BILLING_PATH, BILLING_SOURCE, NO_API_QUOTA, Quota, parse_quota};
use crate::routes::Route;
use crate::types::QuotaReport;

impl<T: Transport, S: SecretStore, C: Clock> Provider<T, S, C> {
    /// What is left of `route`'s quota (`None`: the default route). The subscription rail
    /// is asked (`GET {subscription-base}/billing?format=credits`, its bearer and
    /// headers): the share of the allowance used, its period and reset, the pay-as-you-go
    /// cap and use and the prepaid balance (US cents), as far as the answer says; the
    /// legacy shape (`monthlyLimit`, `used`) is read too. An answer without a readable
    /// figure (`config: null`, 404, 5xx, anything unparsable) is a report with no figures
    /// saying why, while a missing or rejected login stays an error, as do transport and
    /// storage failures. The other routes report no figure, without a request.
    pub fn usage(&mut self, route: Option<&str>) -> Result<QuotaReport, ProviderError> {
        let route = self.route_or_default(route)?;
        let unknown = |detail: String, fetched_at: u64| QuotaReport {
            route: route.name().to_owned(),
            detail,
            fetched_at,
            ..QuotaReport::default()
        };
        let fetched_at = self.now() / 1000;
        if route != Route::Subscription {
            return Ok(unknown(NO_API_QUOTA.to_owned(), fetched_at));
        }
        match self.fetch_quota(route) {
            Ok(Some(q)) => Ok(QuotaReport {
                route: route.name().to_owned(),
                percent_used: q.percent_used,
                period: q.period,
                period_start: q.period_start,
                resets_at: q.resets_at,
                on_demand_cap_cents: q.on_demand_cap_cents,
                on_demand_used_cents: q.on_demand_used_cents,
                prepaid_balance_cents: q.prepaid_balance_cents,
                credits: q.credits,
                detail: format!("from {BILLING_SOURCE}; amounts in US cents"),
                fetched_at,
            }),
            Ok(None) => Ok(unknown(
                "unknown: the subscription rail's billing answer reports no figures (no billing configuration)"
                    .to_owned(),
                fetched_at,
            )),
            Err(e) if figure_unknown(&e) => Ok(unknown(
                format!("unknown: the subscription rail did not report its quota ({e})"),
                fetched_at,
            )),
            Err(e) => Err(self.in_route(route, e)),
        }
    }

    fn fetch_quota(&mut self, route: Route) -> Result<Option<Quota>, ProviderError> {
        let (url, ua) = (
            self.settings.api_url(route, BILLING_PATH),
            self.user_agent(),
        );
        let (mut resp, _) = self.api_send(route, ServerErrors::Report, &|token| {
            get_json(url.clone(), &ua, Some(token))
        })?;
        let v = read_json(&mut resp.body, "billing")?;
        Ok(parse_quota(&v))
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
