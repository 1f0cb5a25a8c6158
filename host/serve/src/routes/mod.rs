//! One module per route: each reads its request, answers through a [`Turn`](crate::turn::Turn)
//! or a session call, and writes its dialect's shapes (`crate::wire`).

pub(crate) mod chat;
pub(crate) mod messages;
pub(crate) mod models;
pub(crate) mod responses;
pub(crate) mod usage;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode};

use crate::ServeState;
use crate::auth::authenticate;
use crate::wire::ApiError;

/// Largest request body (a conversation with inline images).
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// A client must send its body within this (its headers are the listener's to time).
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `prefix` and 24 random hex digits: a completion's or a response's id.
fn random_id(prefix: &str) -> String {
    let mut b = [0u8; 12];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut b);
    format!("{prefix}{}", hex::encode(b))
}

/// What every route that takes a turn does first: the tenant the request's key selects,
/// then the whole body (bounded in size and time). An error is the answer to send (a
/// dialect with an error shape of its own reshapes it).
async fn admit(
    state: &ServeState,
    headers: &HeaderMap,
    body: Body,
) -> Result<(String, Bytes), ApiError> {
    let tenant = authenticate(state, headers).await?;
    let bytes = read_body(body).await?;
    Ok((tenant, bytes))
}

async fn read_body(body: Body) -> Result<Bytes, ApiError> {
    match tokio::time::timeout(
        BODY_READ_TIMEOUT,
        axum::body::to_bytes(body, MAX_BODY_BYTES),
    )
    .await
    {
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "invalid_request_error",
            "timeout",
            "the request body took too long",
        )),
        Ok(Err(_)) => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            "too_large",
            format!("the request body is over {MAX_BODY_BYTES} bytes or broken"),
        )),
        Ok(Ok(b)) => Ok(b),
    }
}
