//! A streamed reply: SSE events of either lane turned into [`ChatChunk`]s.
//!
//! The stream must end with its lane's terminal event (`data: [DONE]` for
//! chat-completions, `response.completed` / `response.incomplete` for responses); a body
//! that ends before it is a [`ProviderError::Network`] error, never a silent truncation.

use std::collections::VecDeque;

use crate::chat::collect::ReplyCollector;
use crate::chat::completions::CompletionsAssembler;
use crate::chat::responses::ResponsesAssembler;
use crate::error::ProviderError;
use crate::io::ResponseBody;
use crate::routes::Route;
use crate::sse::{SseDecoder, SseEvent};
use crate::types::{ChatChunk, ChatReply, Lane};

/// The lane's event reader.
#[derive(Debug)]
enum Assembler {
    Completions(CompletionsAssembler),
    Responses(ResponsesAssembler),
}

enum State {
    /// Reading events.
    Open,
    /// The terminal event arrived; queued chunks are still to be handed out.
    Terminated,
    /// Failed; every later call repeats the error.
    Failed(ProviderError),
}

/// A reply delivered piece by piece. Owns its response body, so it can outlive the
/// [`crate::Provider`] call that opened it (the component keeps it in a resource).
pub struct ChatStream<B> {
    body: B,
    decoder: SseDecoder,
    lane: Lane,
    model: String,
    state: State,
    queue: VecDeque<ChatChunk>,
    assembler: Assembler,
    /// Secrets to mask in any error this stream reports (the credentials it was sent with).
    secrets: Vec<String>,
    /// The route serving it, named by the quota refusals it reports.
    route: Option<Route>,
    body_done: bool,
    /// A framing error (line or event over its cap), reported only after the events
    /// decoded before it: the outcome must not depend on where the transport cut the
    /// body (found by fuzzing: a whole-body chunk lost the events before a bad line, so
    /// a stream could fail or end cleanly depending on the chunking).
    framing_error: Option<ProviderError>,
}

impl<B> std::fmt::Debug for ChatStream<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            State::Open => "open",
            State::Terminated => "terminated",
            State::Failed(_) => "failed",
        };
        f.debug_struct("ChatStream")
            .field("lane", &self.lane)
            .field("model", &self.model)
            .field("state", &state)
            .field("queued", &self.queue.len())
            .finish_non_exhaustive()
    }
}

impl<B: ResponseBody> ChatStream<B> {
    /// Decode `body` as an event stream of `lane`; `model` is the provider-prefixed id.
    pub fn new(body: B, lane: Lane, model: String) -> Self {
        Self {
            body,
            decoder: SseDecoder::new(),
            lane,
            model,
            state: State::Open,
            queue: VecDeque::new(),
            assembler: match lane {
                Lane::Responses => Assembler::Responses(ResponsesAssembler::default()),
                _ => Assembler::Completions(CompletionsAssembler::default()),
            },
            secrets: Vec::new(),
            route: None,
            body_done: false,
            framing_error: None,
        }
    }

    /// [`ChatStream::new`] with explicit SSE caps (bytes per line, bytes of data per
    /// event; see [`SseDecoder::with_caps`]). Hidden: only for the fuzz targets, which need
    /// small caps to reach the limits with small inputs.
    #[doc(hidden)]
    pub fn with_sse_caps(
        body: B,
        lane: Lane,
        model: String,
        line_cap: usize,
        event_cap: usize,
    ) -> Self {
        Self {
            decoder: SseDecoder::with_caps(line_cap, event_cap),
            ..Self::new(body, lane, model)
        }
    }

    /// Mask `secrets` (and any piece of one) in every error this stream reports.
    pub fn redacting(mut self, secrets: Vec<String>) -> Self {
        self.secrets = secrets;
        self
    }

    /// Served on `route`: its quota refusals name it (the routes that could serve instead
    /// are the provider's to add, [`crate::Provider::in_route`]).
    pub fn on_route(mut self, route: Route) -> Self {
        self.route = Some(route);
        self
    }

    /// The lane serving this stream.
    pub fn lane(&self) -> Lane {
        self.lane
    }

    /// The route serving this stream, when known.
    pub fn route(&self) -> Option<Route> {
        self.route
    }

    /// The model id requested, with its route's prefix.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// Read the stream to its end and fold it into the complete reply `chat` answers.
    pub fn collect(mut self) -> Result<ChatReply, ProviderError> {
        let route = self.route.map_or("", Route::name);
        let mut reply = ReplyCollector::new(self.model.clone(), self.lane, route);
        while let Some(chunk) = self.next_chunk()? {
            reply.push(chunk)?;
        }
        Ok(reply.finish())
    }

    /// The next event: text, reasoning, tool-call starts and argument deltas, reasoning
    /// items, citations, then usage and the finish reason when upstream reported them;
    /// after the terminal event, `Ok(None)`. Empty deltas are skipped. Errors are sticky:
    /// once failed, every call returns the same error.
    pub fn next_chunk(&mut self) -> Result<Option<ChatChunk>, ProviderError> {
        loop {
            if let Some(chunk) = self.queue.pop_front() {
                return Ok(Some(chunk));
            }
            match &self.state {
                State::Terminated => return Ok(None),
                State::Failed(e) => return Err(e.clone()),
                State::Open => {}
            }
            if let Err(e) = self.advance() {
                let secrets: Vec<&str> = self.secrets.iter().map(String::as_str).collect();
                let mut e = e.redacted(&secrets);
                if let Some(route) = self.route {
                    e = e.in_route(route.name(), &[]);
                }
                self.queue.clear();
                self.state = State::Failed(e.clone());
                return Err(e);
            }
        }
    }

    /// Handle one decoded event, or read one more chunk of the body.
    fn advance(&mut self) -> Result<(), ProviderError> {
        if let Some(ev) = self.decoder.next_event() {
            return self.handle(ev);
        }
        if let Some(e) = self.framing_error.take() {
            return Err(e);
        }
        if self.body_done {
            return Err(ProviderError::Network(
                "stream ended before completion".into(),
            ));
        }
        let framed = match self.body.next_chunk()? {
            Some(bytes) => self.decoder.feed(&bytes),
            None => {
                self.body_done = true;
                self.decoder.finish()
            }
        };
        self.framing_error = framed.err();
        Ok(())
    }

    fn handle(&mut self, ev: SseEvent) -> Result<(), ProviderError> {
        let terminal = match &mut self.assembler {
            Assembler::Completions(a) => a.on_event(&ev.data, &mut self.queue)?,
            Assembler::Responses(a) => {
                a.on_event(&ev.data, ev.event.as_deref(), &mut self.queue)?
            }
        };
        if terminal {
            self.state = State::Terminated;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::TransportError;

    struct Chunks(VecDeque<Vec<u8>>);
    impl ResponseBody for Chunks {
        fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, TransportError> {
            Ok(self.0.pop_front())
        }
    }

    fn run(pieces: &[&[u8]]) -> (String, Result<(), ProviderError>) {
        let body = Chunks(pieces.iter().map(|p| p.to_vec()).collect());
        let mut s = ChatStream::with_sse_caps(body, Lane::ChatCompletions, "m".into(), 64, 160);
        let mut text = String::new();
        loop {
            match s.next_chunk() {
                Ok(Some(ChatChunk::Text(t))) => text.push_str(&t),
                Ok(Some(_)) => {}
                Ok(None) => return (text, Ok(())),
                Err(e) => return (text, Err(e)),
            }
        }
    }

    #[test]
    fn framing_errors_come_after_the_events_before_them() {
        let good = b"data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n";
        let long = [b'x'; 100];
        let mut body = good.to_vec();
        body.extend_from_slice(&long);
        // Whole or cut, the event before the over-long line is delivered, then the error.
        for pieces in [vec![&body[..]], vec![&good[..], &long[..]]] {
            let (text, end) = run(&pieces);
            assert_eq!(text, "a");
            assert!(
                matches!(end, Err(ProviderError::InvalidResponse(_))),
                "{end:?}"
            );
        }
        // A terminal event before the bad line ends the stream cleanly, however it is cut.
        let mut done = good.to_vec();
        done.extend_from_slice(b"data: [DONE]\n\n");
        let mut body = done.clone();
        body.extend_from_slice(&long);
        for pieces in [vec![&body[..]], vec![&done[..], &long[..]]] {
            assert_eq!(run(&pieces), ("a".into(), Ok(())));
        }
    }

    #[test]
    fn errors_mask_pieces_of_the_credentials() {
        let token = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiIxMjMiLCJ0aWVyIjozfQ.c2lnbmF0dXJl";
        let event = format!(
            "data: {{\"error\": {{\"code\": \"server_error\", \"message\": \"bad bearer {}\"}}}}\n\n",
            &token[5..35]
        );
        let body = Chunks([event.into_bytes()].into_iter().collect());
        let mut s = ChatStream::new(body, Lane::ChatCompletions, "m".into())
            .redacting(vec![token.to_owned()]);
        let e = s.next_chunk().unwrap_err();
        let text = e.to_string();
        assert!(
            !text.contains(&token[5..35]) && text.contains("[redacted]"),
            "{text}"
        );
    }
}
