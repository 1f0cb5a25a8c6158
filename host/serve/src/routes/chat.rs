//! `POST /v1/chat/completions`: OpenAI's Chat Completions, whole (`chat.completion`) or
//! streamed (`chat.completion.chunk` events, then `data: [DONE]`).

use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::Event;
use axum::response::{IntoResponse, Response};
use provider_runtime::bindings::types::ChatChunk;
use serde_json::Value;

use super::{admit, random_id, unix_now};
use crate::Shared;
use crate::auth::route_header;
use crate::openai;
use crate::turn::{StreamFormat, Turn};
use crate::wire::{self, ApiError, ChunkWriter};

pub(crate) async fn completions(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let began = Instant::now();
    let (tenant, bytes) = match admit(&state, &headers, body).await {
        Ok(admitted) => admitted,
        Err(e) => return e.into_response(),
    };
    let parsed = std::str::from_utf8(&bytes)
        .map_err(|_| "the request body is not UTF-8".to_owned())
        .and_then(openai::parse);
    let body = match parsed {
        Ok(b) => b,
        Err(m) => return ApiError::invalid(m).into_response(),
    };
    let Some(model) = body.model.clone() else {
        return ApiError::invalid("model is required").into_response();
    };
    let stream = body.stream == Some(true);
    let include_usage = body.include_usage();
    let mut request = match body.into_request(model.clone()) {
        Ok(r) => r,
        Err(m) => return ApiError::invalid(m).into_response(),
    };
    match route_header(&headers) {
        Ok(r) => request.route = r,
        Err(e) => return e.into_response(),
    }
    let turn = Turn {
        state,
        tenant,
        model,
        began,
        request,
    };
    if !stream {
        return turn
            .whole(|reply| {
                let id = random_id("chatcmpl-");
                axum::Json(wire::completion(&id, unix_now(), reply)).into_response()
            })
            .await;
    }
    let format = ChatFormat {
        writer: ChunkWriter::new(
            random_id("chatcmpl-"),
            unix_now(),
            turn.model.clone(),
            include_usage,
        ),
        usage: None,
    };
    turn.streamed(format).await
}

fn data(v: &Value) -> Event {
    Event::default().data(v.to_string())
}

/// Chat completions: `chat.completion.chunk` events, then `data: [DONE]`.
struct ChatFormat {
    writer: ChunkWriter,
    /// OpenAI sends the usage chunk last, right before `[DONE]` (the plugin may yield it
    /// before the finish reason): held until the end.
    usage: Option<Value>,
}

impl StreamFormat for ChatFormat {
    fn start(&mut self) -> Vec<Event> {
        vec![data(&self.writer.open())]
    }

    fn chunk(&mut self, c: &ChatChunk) -> Vec<Event> {
        let event = self.writer.event(c);
        if matches!(c, ChatChunk::Usage(_)) {
            self.usage = event;
            return Vec::new();
        }
        event.iter().map(data).collect()
    }

    fn finish(&mut self) -> Vec<Event> {
        let mut out: Vec<Event> = self.usage.take().iter().map(data).collect();
        out.push(Event::default().data("[DONE]"));
        out
    }

    fn error(&mut self, e: &ApiError) -> Event {
        data(&e.body())
    }
}
