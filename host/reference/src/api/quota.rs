//! Quota refusals that stay until cleared (unlike the one-shot [`Fault`] queue): set on the
//! API per credential kind, or on the subscription rail, so a test can exhaust one route
//! while another keeps working. They apply to inference (`/chat/completions`,
//! `/responses`) after authentication; `/models` and `/billing` stay available, as a
//! client needs them to explain the refusal.

use std::sync::Mutex;

use super::credential::Kind;
use crate::faults::{CannedResponse, Fault};
use crate::http::{Reply, lock};

/// A standing quota refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaFault {
    /// The free usage is used up: `status` (429 as reported; 403 in older reports) with
    /// `{"code":"subscription:free-usage-exhausted", …}` (see
    /// [`Fault::free_usage_exhausted`]).
    FreeUsageExhausted {
        /// HTTP status of the refusal.
        status: u16,
    },
    /// The team's spending limit: `status` (402 as reported; 403 is seen too) with
    /// `{"code":"personal-team-blocked:spending-limit", …}` (see [`Fault::spending_limit`]).
    SpendingLimit {
        /// HTTP status of the refusal.
        status: u16,
    },
    /// The fair-use ceiling: 429, with `Retry-After` when given (see
    /// [`Fault::rate_limited`]).
    RateLimited {
        /// Seconds for `Retry-After`.
        retry_after_seconds: Option<u32>,
    },
    /// The rail's credits quota: 429 `[WKE=personal-team-blocked:spending-limit]` (see
    /// [`Fault::credits_exhausted_wke`]).
    CreditsExhaustedWke,
    /// The rail's credit block: 402 "usage balance exhausted" (see
    /// [`Fault::usage_balance_exhausted`]).
    UsageBalanceExhausted,
}

impl QuotaFault {
    /// Free usage exhausted, answered with 429.
    pub const FREE_USAGE_429: Self = Self::FreeUsageExhausted { status: 429 };
    /// Spending limit, answered with 402.
    pub const SPENDING_LIMIT_402: Self = Self::SpendingLimit { status: 402 };

    /// The same answer as a one-shot fault for the queue.
    pub fn fault(&self) -> Fault {
        match *self {
            Self::FreeUsageExhausted { status } => Fault::free_usage_exhausted(status),
            Self::SpendingLimit { status } => Fault::spending_limit(status),
            Self::RateLimited {
                retry_after_seconds,
            } => Fault::rate_limited(retry_after_seconds),
            Self::CreditsExhaustedWke => Fault::credits_exhausted_wke(),
            Self::UsageBalanceExhausted => Fault::usage_balance_exhausted(),
        }
    }

    pub(super) fn reply(&self) -> Reply {
        match self.fault() {
            Fault::Respond(CannedResponse {
                status,
                headers,
                body,
            }) => Reply::Full {
                status,
                headers,
                body: body.into(),
            },
            _ => unreachable!("quota faults are canned answers"),
        }
    }
}

/// Which requests of the API a [`QuotaFault`] refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialScope {
    /// Requests with an OAuth access token (the `api` route).
    OAuth,
    /// Requests with an API key (the `api-key` route).
    ApiKey,
    /// Both.
    Both,
}

/// The standing quota refusals of one server.
#[derive(Default)]
pub(super) struct Quotas {
    oauth: Mutex<Option<QuotaFault>>,
    api_key: Mutex<Option<QuotaFault>>,
    rail: Mutex<Option<QuotaFault>>,
}

impl Quotas {
    pub fn set(&self, scope: CredentialScope, fault: Option<QuotaFault>) {
        if scope != CredentialScope::ApiKey {
            *lock(&self.oauth) = fault;
        }
        if scope != CredentialScope::OAuth {
            *lock(&self.api_key) = fault;
        }
    }

    pub fn set_rail(&self, fault: Option<QuotaFault>) {
        *lock(&self.rail) = fault;
    }

    /// The refusal for an API request of this credential kind, when one stands.
    pub fn api(&self, kind: Kind) -> Option<QuotaFault> {
        match kind {
            Kind::OAuth => *lock(&self.oauth),
            Kind::ApiKey => *lock(&self.api_key),
        }
    }

    pub fn rail(&self) -> Option<QuotaFault> {
        *lock(&self.rail)
    }
}
