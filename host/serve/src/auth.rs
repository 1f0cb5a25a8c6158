//! Who a request is: the tenant its key selects ([`TenantResolver`]), and the route its
//! `X-Provider-Route` header names.

use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode, header};
use provider_runtime::HostError;

use crate::ServeState;
use crate::wire::ApiError;

/// Resolves the key a client presents (`Authorization: Bearer <key>`) to the tenant it
/// selects. [`ServeKeys`](crate::ServeKeys) is the default implementation; an embedder
/// with its own accounts implements this over them.
pub trait TenantResolver: Send + Sync + 'static {
    /// The tenant `presented_key` selects, `None` for any key that selects none (answered
    /// 401 `invalid_api_key`, saying nothing about any tenant), or an error of the store
    /// (answered 500 `storage`, logged).
    fn tenant_of(&self, presented_key: &str) -> Result<Option<String>, HostError>;

    /// Whether [`tenant_of`](Self::tenant_of) is cheap enough to call on an async worker
    /// (a local file read); when not (a database round trip), it runs on the blocking pool.
    fn is_local(&self) -> bool;
}

/// The header a request names its route with (else its model's prefix, else the
/// tenant's default route).
const ROUTE_HEADER: &str = "x-provider-route";

/// The route `X-Provider-Route` names, if any.
pub(crate) fn route_header(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    match headers.get(ROUTE_HEADER) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .map(|r| Some(r.trim().to_owned()))
            .filter(|r| r.as_deref().is_some_and(|r| !r.is_empty()))
            .ok_or_else(|| ApiError::invalid(format!("{ROUTE_HEADER} must name a route"))),
    }
}

/// The header Anthropic's SDKs and Claude Code send the key in.
const API_KEY_HEADER: &str = "x-api-key";

/// The tenant the request's key selects: the key as `Authorization: Bearer` (OpenAI's
/// clients) or `x-api-key` (Anthropic's), on every route, so a client of either dialect
/// can also list models.
pub(crate) async fn authenticate(
    state: &ServeState,
    headers: &HeaderMap,
) -> Result<String, ApiError> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        });
    let presented = bearer
        .or_else(|| headers.get(API_KEY_HEADER).and_then(|v| v.to_str().ok()))
        .map(str::trim)
        .ok_or_else(ApiError::bad_key)?;
    let found = if state.tenants.is_local() {
        state.tenants.tenant_of(presented)
    } else {
        // A database round trip: not on an async worker.
        let (tenants, presented) = (Arc::clone(&state.tenants), presented.to_owned());
        tokio::task::spawn_blocking(move || tenants.tenant_of(&presented))
            .await
            .unwrap_or_else(|e| {
                Err(HostError::HostSetup(format!(
                    "the key lookup task failed: {e}"
                )))
            })
    };
    match found {
        Ok(Some(t)) => Ok(t),
        Ok(None) => Err(ApiError::bad_key()),
        Err(e) => {
            tracing::error!(error = %e, "the serve-key store failed");
            Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "storage",
                "the key store failed",
            ))
        }
    }
}
