//! An incremental Server-Sent Events framer (the HTML "event stream" format): bytes in,
//! events out, whatever the chunk boundaries.
//!
//! Lines end with `\n`, `\r\n` or `\r` (a `\r` at the end of one chunk and a `\n` at the
//! start of the next are one line end). `data:` lines accumulate (joined by `\n`), lines
//! starting with `:` are comments, `event:` names the event, an empty line dispatches it.
//! `id:` and `retry:` are ignored. Lines and events are capped, so a hostile stream can
//! not grow memory without bound.

use std::collections::VecDeque;

use crate::error::ProviderError;
use crate::http::{JSON_BODY_CAP, SSE_LINE_CAP};

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, when given.
    pub event: Option<String>,
    /// The `data:` lines joined by `\n`.
    pub data: String,
}

/// The framer. Feed it chunks, take events out.
#[derive(Debug)]
pub struct SseDecoder {
    line: Vec<u8>,
    skip_lf: bool,
    event: Option<String>,
    data: String,
    has_data: bool,
    ready: VecDeque<SseEvent>,
    line_cap: usize,
    event_cap: usize,
}

impl Default for SseDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl SseDecoder {
    /// A framer with the default caps (1 MiB lines, 4 MiB events).
    pub fn new() -> Self {
        Self::with_caps(SSE_LINE_CAP, JSON_BODY_CAP)
    }

    /// A framer with explicit caps (bytes per line, bytes of data per event).
    pub fn with_caps(line_cap: usize, event_cap: usize) -> Self {
        Self {
            line: Vec::new(),
            skip_lf: false,
            event: None,
            data: String::new(),
            has_data: false,
            ready: VecDeque::new(),
            line_cap,
            event_cap,
        }
    }

    /// Consume a chunk of the stream.
    pub fn feed(&mut self, mut input: &[u8]) -> Result<(), ProviderError> {
        if self.skip_lf && !input.is_empty() {
            if input[0] == b'\n' {
                input = &input[1..];
            }
            self.skip_lf = false;
        }
        while let Some(pos) = input.iter().position(|&b| b == b'\n' || b == b'\r') {
            self.append(&input[..pos])?;
            let line = std::mem::take(&mut self.line);
            self.process_line(&line)?;
            let was_cr = input[pos] == b'\r';
            input = &input[pos + 1..];
            if was_cr {
                match input.first() {
                    Some(b'\n') => input = &input[1..],
                    Some(_) => {}
                    None => self.skip_lf = true,
                }
            }
        }
        self.append(input)
    }

    /// The stream ended: an unterminated last line still counts, and an event missing
    /// only its final blank line is dispatched (its payload is complete; callers still
    /// require their protocol's terminal event).
    pub fn finish(&mut self) -> Result<(), ProviderError> {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.process_line(&line)?;
        }
        self.dispatch();
        Ok(())
    }

    /// The next complete event, if any.
    pub fn next_event(&mut self) -> Option<SseEvent> {
        self.ready.pop_front()
    }

    fn append(&mut self, bytes: &[u8]) -> Result<(), ProviderError> {
        if self.line.len() + bytes.len() > self.line_cap {
            return Err(ProviderError::InvalidResponse(format!(
                "event stream line over {} KiB",
                self.line_cap / 1024
            )));
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    fn process_line(&mut self, line: &[u8]) -> Result<(), ProviderError> {
        if line.is_empty() {
            self.dispatch();
            return Ok(());
        }
        if line[0] == b':' {
            return Ok(()); // comment (keep-alive)
        }
        let line = String::from_utf8_lossy(line);
        let (field, value) = match line.find(':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(' ').unwrap_or(v))
            }
            None => (&line[..], ""),
        };
        match field {
            "data" => {
                if self.data.len() + value.len() + 1 > self.event_cap {
                    return Err(ProviderError::InvalidResponse(format!(
                        "event stream event over {} KiB",
                        self.event_cap / 1024
                    )));
                }
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "event" => self.event = Some(value.to_owned()),
            _ => {} // id, retry, unknown fields
        }
        Ok(())
    }

    fn dispatch(&mut self) {
        let event = self.event.take();
        if !self.has_data {
            return; // an event without data is not dispatched
        }
        self.has_data = false;
        self.ready.push_back(SseEvent {
            event: event.filter(|e| !e.is_empty()),
            data: std::mem::take(&mut self.data),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_split(input: &[u8], splits: &[usize]) -> Vec<SseEvent> {
        let mut d = SseDecoder::new();
        let mut out = Vec::new();
        let mut last = 0;
        for &s in splits.iter().chain(std::iter::once(&input.len())) {
            d.feed(&input[last..s]).unwrap();
            last = s;
            while let Some(e) = d.next_event() {
                out.push(e);
            }
        }
        d.finish().unwrap();
        while let Some(e) = d.next_event() {
            out.push(e);
        }
        out
    }

    fn ev(event: Option<&str>, data: &str) -> SseEvent {
        SseEvent {
            event: event.map(str::to_owned),
            data: data.to_owned(),
        }
    }

    const MIXED: &[u8] = b": keep-alive\r\nevent: a\r\ndata: one\r\ndata:two\r\n\r\ndata: x\rdata: y\r\rid: 5\nretry: 10\ndata\n\nevent: b\ndata: {\"k\": \"v: w\"}\n\nevent: lone\n\ndata: h\xc3\xa9\n\n";

    fn expected() -> Vec<SseEvent> {
        vec![
            ev(Some("a"), "one\ntwo"),
            ev(None, "x\ny"),
            ev(None, ""),
            ev(Some("b"), "{\"k\": \"v: w\"}"),
            ev(None, "hé"),
        ]
    }

    #[test]
    fn frames_all_line_endings() {
        assert_eq!(decode_split(MIXED, &[]), expected());
    }

    #[test]
    fn any_chunk_boundary() {
        for i in 0..=MIXED.len() {
            assert_eq!(decode_split(MIXED, &[i]), expected(), "split at {i}");
            for j in i..=MIXED.len() {
                assert_eq!(decode_split(MIXED, &[i, j]), expected(), "split at {i},{j}");
            }
        }
        let singles: Vec<usize> = (1..MIXED.len()).collect();
        assert_eq!(decode_split(MIXED, &singles), expected());
    }

    #[test]
    fn end_of_stream() {
        // Missing final blank line and final newline: still dispatched.
        assert_eq!(decode_split(b"data: [DONE]", &[]), vec![ev(None, "[DONE]")]);
        assert_eq!(decode_split(b"data: a\n", &[]), vec![ev(None, "a")]);
        assert_eq!(decode_split(b"data: a\r", &[]), vec![ev(None, "a")]);
        assert_eq!(decode_split(b": only a comment", &[]), vec![]);
        assert_eq!(decode_split(b"", &[]), vec![]);
    }

    #[test]
    fn caps() {
        let mut d = SseDecoder::with_caps(8, 12);
        assert!(d.feed(b"data: 12").is_ok());
        assert!(matches!(
            d.feed(b"3"),
            Err(ProviderError::InvalidResponse(_))
        ));
        let mut d = SseDecoder::with_caps(8, 12);
        assert!(d.feed(b"data: 12\ndata: 34\n").is_ok());
        assert!(d.feed(b"data: 567890\n").is_err());
        let mut d = SseDecoder::new();
        assert!(d.feed(&vec![b'a'; SSE_LINE_CAP]).is_ok());
        assert!(d.feed(b"a").is_err());
    }
}
