//! `GET /v1/models`: the tenant's models, of the route `X-Provider-Route` names or of every
//! enabled route side by side, as OpenAI's list.
//!
//! `GET /v1/models/{id}`: one model as OpenAI's model object, or 404 `model_not_found` in
//! OpenAI's error shape. Found in the same list `GET /v1/models` answers (same key, same
//! `X-Provider-Route`, same access-log line), so the two never disagree.

use std::time::Instant;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use provider_runtime::bindings::types::ModelList;
use provider_runtime::{HostError, Session};

use crate::Shared;
use crate::auth::{authenticate, route_header};
use crate::turn::Access;
use crate::wire::{self, ApiError};

pub(crate) async fn list(State(state): State<Shared>, headers: HeaderMap) -> Response {
    match listing(&state, &headers).await {
        Ok(lists) => axum::Json(wire::models::models(&lists, &state.model_aliases)).into_response(),
        Err(answer) => answer,
    }
}

/// The tenant's lists for `GET /v1/models` (rendered with the aliases by
/// [`wire::models::models`]), or the answer for its failure; an access-log line once the
/// tenant is known.
async fn listing(state: &Shared, headers: &HeaderMap) -> Result<Vec<ModelList>, Response> {
    let began = Instant::now();
    let tenant = authenticate(state, headers)
        .await
        .map_err(IntoResponse::into_response)?;
    let route = route_header(headers).map_err(IntoResponse::into_response)?;
    let mut access = Access::new(&tenant, "", began, false);
    let lists = match state.sessions.lease(&tenant).await {
        Ok(mut lease) => models_of_routes(lease.session(), route).await,
        Err(e) => Err(e),
    };
    match lists {
        Ok(lists) => {
            access.answered(StatusCode::OK.as_u16(), None);
            Ok(lists)
        }
        Err(e) => {
            let answer = state.host_error(&e, &tenant).into_response();
            access.answered(answer.status().as_u16(), None);
            Err(answer)
        }
    }
}

/// The models of `route`, or (none named) of every enabled route side by side, their ids
/// told apart by each route's prefix: the default route's error is the answer's, another
/// route that cannot list now (no API key stored, say) is left out.
async fn models_of_routes(
    session: &mut Session,
    route: Option<String>,
) -> Result<Vec<ModelList>, HostError> {
    if let Some(r) = route {
        return Ok(vec![session.models(false, Some(&r)).await?]);
    }
    let mut lists = vec![session.models(false, None).await?];
    let routes = session.config().enabled_routes.clone();
    for r in routes {
        if lists.iter().any(|l| l.route == r) {
            continue;
        }
        match session.models(false, Some(&r)).await {
            Ok(list) => lists.push(list),
            Err(e) => tracing::debug!(route = r, code = %e.code(), "route left out of /v1/models"),
        }
    }
    Ok(lists)
}

pub(crate) async fn model(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let lists = match listing(&state, &headers).await {
        Ok(lists) => lists,
        Err(answer) => return answer,
    };
    let listed = wire::models::models(&lists, &state.model_aliases);
    match wire::models::find(&listed, &id) {
        Some(m) => {
            let mut m = m.clone();
            m.id = id.into();
            axum::Json(m).into_response()
        }
        None => ApiError::model_not_found(&id).into_response(),
    }
}
