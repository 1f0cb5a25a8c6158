//! `GET /v1/usage[?route=NAME]`: what is left of the tenant's quota on a route (default:
//! the `X-Provider-Route` header's, else the tenant's default route), in the CLI's `usage`
//! JSON (`percent_used`, `period`, `resets_at`, on-demand cap and use, prepaid balance in
//! dollars, `summary`, `known`). Each answer with a percentage also sets the gauge
//! `serve_quota_used_percent{route}` (the last report seen: meaningful per route for a
//! server of one tenant, a sample for many).

use std::time::Instant;

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use crate::Shared;
use crate::auth::{authenticate, route_header};
use crate::turn::Access;
use crate::wire::usage::quota;

pub(crate) async fn usage(
    State(state): State<Shared>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let began = Instant::now();
    let tenant = match authenticate(&state, &headers).await {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let route = match route_header(&headers) {
        // `?route=` (form-encoded), else the header.
        Ok(r) => query
            .as_deref()
            .and_then(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .find(|(k, _)| k == "route")
                    .map(|(_, v)| v.into_owned())
            })
            .or(r),
        Err(e) => return e.into_response(),
    };
    let mut access = Access::new(&tenant, "", began, false);
    let answer = match state.sessions.lease(&tenant).await {
        Ok(mut lease) => lease.session().usage(route.as_deref()).await,
        Err(e) => Err(e),
    };
    let response = match answer {
        Ok(report) => {
            if let Some(p) = report.percent_used {
                state.metrics.quota_used(&report.route, p);
            }
            axum::Json(quota(&report)).into_response()
        }
        Err(e) => state.host_error(&e, &tenant).into_response(),
    };
    access.answered(response.status().as_u16(), None);
    response
}
