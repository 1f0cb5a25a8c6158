//! SSE framing must not depend on where the transport cut the stream: the same events (and
//! the same failure, if any) whether the bytes arrive whole, at fuzzer-chosen boundaries or
//! one byte at a time — and, without failure, the same events as a plain whole-input
//! reference framer written from the spec.
//!
//! Input: `[k][k chunk lengths][stream]` (see `grok_provider_fuzz::split_body`).
#![no_main]

use grok_provider_core::http::{JSON_BODY_CAP, SSE_LINE_CAP};
use grok_provider_core::sse::{SseDecoder, SseEvent};
use grok_provider_fuzz::{check_error, chunks, reference_sse, split_body};
use libfuzzer_sys::fuzz_target;

/// Events out, and whether the decoder failed (after which nothing more is fed).
fn decode(caps: (usize, usize), pieces: &[&[u8]]) -> (Vec<SseEvent>, bool) {
    let mut d = SseDecoder::with_caps(caps.0, caps.1);
    let mut events = Vec::new();
    let mut failed = false;
    for piece in pieces {
        let r = d.feed(piece);
        while let Some(e) = d.next_event() {
            events.push(e);
        }
        if let Err(e) = r {
            check_error(&e, &[]);
            failed = true;
            break;
        }
    }
    if !failed {
        let r = d.finish();
        while let Some(e) = d.next_event() {
            events.push(e);
        }
        if let Err(e) = r {
            check_error(&e, &[]);
            failed = true;
        }
    }
    (events, failed)
}

fuzz_target!(|data: &[u8]| {
    let (gaps, stream) = split_body(data);
    let split = chunks(stream, &gaps);
    let bytes: Vec<&[u8]> = stream.chunks(1).collect();
    // The real caps, and tiny ones so that the fuzzer reaches the limits too.
    for caps in [(SSE_LINE_CAP, JSON_BODY_CAP), (48, 96)] {
        let whole = decode(caps, &[stream]);
        assert_eq!(decode(caps, &split), whole, "cut at {gaps:?}");
        assert_eq!(decode(caps, &bytes), whole, "cut into bytes");
        if !whole.1 {
            assert_eq!(whole.0, reference_sse(stream));
        }
    }
});
