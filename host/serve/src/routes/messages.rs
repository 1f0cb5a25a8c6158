//! `POST /v1/messages`: Anthropic's Messages API, whole (a `message`) or streamed
//! (`message_start` … `message_stop` events), through the same [`Turn`] as the OpenAI
//! dialects (sessions, cancel safety, keep-alive, access log, metrics); its shapes are
//! `crate::wire::anthropic`'s.
//!
//! `POST /v1/messages/count_tokens`: a local estimate of the request's input tokens
//! (system, messages and tools), never an upstream call.
//!
//! Both take the serve key as `x-api-key` (what Anthropic's SDKs and Claude Code send) or
//! `Authorization: Bearer`; `anthropic-version`, `anthropic-beta` and `?beta=true` are
//! accepted and change nothing. Every error is in Anthropic's shape.

use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive};
use axum::response::{IntoResponse, Response};
use provider_runtime::bindings::types::ChatChunk;
use serde_json::{Value, json};

use super::{admit, random_id};
use crate::Shared;
use crate::auth::route_header;
use crate::turn::{Access, StreamFormat, Turn};
use crate::wire::ApiError;
use crate::wire::anthropic::{self, AnthropicError, EventWriter};

/// A response of the shared turn in Anthropic's shape: an error (answered in OpenAI's
/// shape by the turn) rewritten from its status, code and `retry-after`.
async fn reshape(response: Response) -> Response {
    let status = response.status();
    if status.is_success() {
        return response;
    }
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let body = axum::body::to_bytes(response.into_body(), 1024 * 1024)
        .await
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .unwrap_or(Value::Null);
    let error = &body["error"];
    AnthropicError::from_parts(
        status,
        error["code"].as_str().unwrap_or(""),
        error["message"].as_str().unwrap_or("the request failed"),
        retry_after,
    )
    .into_response()
}

/// The routes' `admit` step and the parsed Messages body, a refusal in Anthropic's shape.
async fn admit_messages(
    state: &Shared,
    headers: &HeaderMap,
    body: Body,
) -> Result<(String, anthropic::Body), Response> {
    let (tenant, bytes) = admit(state, headers, body)
        .await
        .map_err(|e| AnthropicError::from_api(&e).into_response())?;
    let body = anthropic::parse(&bytes).map_err(|m| AnthropicError::invalid(m).into_response())?;
    Ok((tenant, body))
}

pub(crate) async fn create(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let began = Instant::now();
    let (tenant, body) = match admit_messages(&state, &headers, body).await {
        Ok(admitted) => admitted,
        Err(answer) => return answer,
    };
    let stream = body.stream == Some(true);
    let asked = body.model.clone();
    let estimate = body.estimate_tokens();
    let model = anthropic::resolve_model(&asked, &state.model_aliases);
    let mut request = match body.into_request(model, true) {
        Ok(r) => r,
        Err(m) => return AnthropicError::invalid(m).into_response(),
    };
    match route_header(&headers) {
        Ok(r) => request.route = r,
        Err(e) => return AnthropicError::from_api(&e).into_response(),
    }
    let id = random_id("msg_");
    let turn = Turn {
        state,
        tenant,
        model: asked.clone(),
        began,
        request,
    };
    let response = if stream {
        turn.streamed(Messages(EventWriter::new(id, asked, estimate)))
            .await
    } else {
        turn.whole(|reply| axum::Json(anthropic::whole(&id, &asked, reply)).into_response())
            .await
    };
    reshape(response).await
}

pub(crate) async fn count_tokens(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let began = Instant::now();
    let (tenant, body) = match admit_messages(&state, &headers, body).await {
        Ok(admitted) => admitted,
        Err(answer) => return answer,
    };
    let mut access = Access::new(&tenant, &body.model, began, false);
    let tokens = body.estimate_tokens();
    // The same mapping as a turn, so what a turn would refuse is refused here too.
    let model = anthropic::resolve_model(&body.model, &state.model_aliases);
    if let Err(m) = body.into_request(model, false) {
        access.answered(StatusCode::BAD_REQUEST.as_u16(), None);
        return AnthropicError::invalid(m).into_response();
    }
    access.answered(200, Some(tokens));
    axum::Json(json!({"input_tokens": tokens})).into_response()
}

/// Anthropic's stream events, named (`event: content_block_delta`).
struct Messages(EventWriter);

fn frame((name, data): (&'static str, Value)) -> Event {
    Event::default().event(name).data(data.to_string())
}

impl StreamFormat for Messages {
    fn start(&mut self) -> Vec<Event> {
        self.0.start().into_iter().map(frame).collect()
    }

    fn chunk(&mut self, c: &ChatChunk) -> Vec<Event> {
        self.0.chunk(c).into_iter().map(frame).collect()
    }

    fn finish(&mut self) -> Vec<Event> {
        self.0.finish().into_iter().map(frame).collect()
    }

    fn error(&mut self, e: &ApiError) -> Event {
        frame(("error", AnthropicError::from_api(e).body()))
    }

    /// Anthropic's streams keep alive with `ping` events, which its SDKs read and skip.
    fn keep_alive(&self) -> KeepAlive {
        KeepAlive::new().event(frame(("ping", serde_json::json!({"type": "ping"}))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A failure after the head is an `error` event in Anthropic's shape, never a silent
    /// end.
    #[tokio::test]
    async fn a_failure_mid_stream_is_an_error_event() {
        let mut format = Messages(EventWriter::new("msg_1".into(), "m".into(), 1));
        let error = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "api_error",
            "upstream_unavailable",
            "upstream failed",
        );
        let event = format.error(&error);
        let events = futures_util::stream::iter([Ok::<_, std::convert::Infallible>(event)]);
        let response = axum::response::sse::Sse::new(events).into_response();
        let body = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        let data: Value = serde_json::from_str(
            text.strip_prefix("event: error\ndata: ")
                .and_then(|t| t.strip_suffix("\n\n"))
                .unwrap_or_else(|| panic!("{text:?}")),
        )
        .unwrap();
        assert_eq!(
            data,
            json!({"type": "error", "error": {"type": "overloaded_error",
                   "message": "upstream failed (upstream_unavailable)"}})
        );
    }
}
