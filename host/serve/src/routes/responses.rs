//! `POST /v1/responses`: the Responses API, whole (a `response` object) or streamed
//! (`response.*` events); its shapes are `crate::wire::responses`'.

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
use crate::turn::{StreamFormat, Turn};
use crate::wire::ApiError;
use crate::wire::responses::{self, EventWriter};

pub(crate) async fn create(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let began = Instant::now();
    let (tenant, bytes) = match admit(&state, &headers, body).await {
        Ok(admitted) => admitted,
        Err(e) => return e.into_response(),
    };
    let (model, stream, mut request) = match responses::parse(&bytes) {
        Ok(p) => p,
        Err(m) => return ApiError::invalid(m).into_response(),
    };
    match route_header(&headers) {
        Ok(r) => request.route = r,
        Err(e) => return e.into_response(),
    }
    let id = random_id("resp_");
    let turn = Turn {
        state,
        tenant,
        model,
        began,
        request,
    };
    if !stream {
        let model = turn.model.clone();
        return turn
            .whole(|reply| {
                axum::Json(responses::whole(&id, unix_now(), &model, reply)).into_response()
            })
            .await;
    }
    let format = EventWriter::new(id, unix_now(), turn.model.clone());
    turn.streamed(format).await
}

fn frame((kind, v): (String, Value)) -> Event {
    Event::default().event(kind).data(v.to_string())
}

/// The Responses API: `response.*` events.
impl StreamFormat for EventWriter {
    fn start(&mut self) -> Vec<Event> {
        EventWriter::start(self).into_iter().map(frame).collect()
    }

    fn chunk(&mut self, c: &ChatChunk) -> Vec<Event> {
        EventWriter::chunk(self, c).into_iter().map(frame).collect()
    }

    fn finish(&mut self) -> Vec<Event> {
        EventWriter::finish(self).into_iter().map(frame).collect()
    }

    fn error(&mut self, e: &ApiError) -> Event {
        frame(EventWriter::error(self, &e.code, &e.message))
    }
}
