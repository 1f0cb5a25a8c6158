//! A streamed reply: SSE events of either lane turned into [`ChatChunk`]s.
//!
//! The stream must end with its lane's terminal event (`data: [DONE]` for
//! chat-completions, `response.completed` / `response.incomplete` for responses); a body
//! that ends before it is a [`ProviderError::Network`] error, never a silent truncation.

use std::collections::VecDeque;

use serde_json::Value;

use crate::chat::{
    chat_completions_usage, response_failure, responses_finish_reason, responses_usage,
};
use crate::error::ProviderError;
use crate::io::ResponseBody;
use crate::sse::{SseDecoder, SseEvent};
use crate::types::{ChatChunk, Lane, Usage};

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
    finish_reason: Option<String>,
    usage: Option<Usage>,
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
            finish_reason: None,
            usage: None,
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

    /// The lane serving this stream.
    pub fn lane(&self) -> Lane {
        self.lane
    }

    /// The provider-prefixed model id requested.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// The next piece of text. The last piece carries the finish reason and usage when
    /// upstream reported them; after it, `Ok(None)`. Chunks with nothing in them are
    /// skipped. Errors are sticky: once failed, every call returns the same error.
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
        match self.lane {
            Lane::Responses => self.handle_responses(ev),
            _ => self.handle_chat_completions(ev),
        }
    }

    fn push_delta(&mut self, text: &str) {
        if !text.is_empty() {
            self.queue.push_back(ChatChunk {
                delta: text.to_owned(),
                finish_reason: None,
                usage: None,
            });
        }
    }

    /// Queue the final chunk (when there is something to say) and stop reading.
    fn terminate(&mut self) {
        if self.finish_reason.is_some() || self.usage.is_some() {
            self.queue.push_back(ChatChunk {
                delta: String::new(),
                finish_reason: self.finish_reason.take(),
                usage: self.usage.take(),
            });
        }
        self.state = State::Terminated;
    }

    fn handle_chat_completions(&mut self, ev: SseEvent) -> Result<(), ProviderError> {
        if ev.data.trim() == "[DONE]" {
            self.terminate();
            return Ok(());
        }
        let v = parse_event(&ev.data)?;
        if let Some(err) = v.get("error").filter(|e| !e.is_null()) {
            let err = if err.is_object() {
                err.clone()
            } else {
                serde_json::json!({"message": err})
            };
            return Err(response_failure(Some(&err)));
        }
        if let Some(choice) = v
            .get("choices")
            .and_then(Value::as_array)
            .and_then(|c| c.first())
        {
            if let Some(text) = choice
                .get("delta")
                .and_then(|d| d.get("content"))
                .and_then(Value::as_str)
            {
                self.push_delta(text);
            }
            if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
                self.finish_reason = Some(reason.to_owned());
            }
        }
        if let Some(u) = v.get("usage").and_then(chat_completions_usage) {
            self.usage = Some(u);
        }
        Ok(())
    }

    fn handle_responses(&mut self, ev: SseEvent) -> Result<(), ProviderError> {
        let v = parse_event(&ev.data)?;
        let kind = v
            .get("type")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or(ev.event)
            .unwrap_or_default();
        match kind.as_str() {
            "response.output_text.delta" => {
                if let Some(d) = v.get("delta").and_then(Value::as_str) {
                    self.push_delta(d);
                }
            }
            "response.completed" | "response.incomplete" => {
                let resp = v.get("response").cloned().unwrap_or(Value::Null);
                self.usage = resp.get("usage").and_then(responses_usage);
                self.finish_reason = responses_finish_reason(&resp).or_else(|| {
                    Some(
                        if kind == "response.completed" {
                            "stop"
                        } else {
                            "incomplete"
                        }
                        .to_owned(),
                    )
                });
                self.terminate();
            }
            "response.failed" => {
                return Err(response_failure(
                    v.get("response").and_then(|r| r.get("error")),
                ));
            }
            "error" => {
                let err = v.get("error").filter(|e| e.is_object()).unwrap_or(&v);
                return Err(response_failure(Some(err)));
            }
            _ => {} // created, in_progress, output_item.*, reasoning, ...
        }
        Ok(())
    }
}

fn parse_event(data: &str) -> Result<Value, ProviderError> {
    serde_json::from_str(data)
        .map_err(|_| ProviderError::InvalidResponse("unparsable event in the reply stream".into()))
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
                Ok(Some(c)) => text.push_str(&c.delta),
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
}
