//! Helpers shared by the fuzz targets: how an input is cut into pieces (status selector,
//! chunk boundaries), the fixed "secrets" the targets pretend to hold, and the checks every
//! error message must pass (no secret, no control character, bounded length).
#![deny(missing_docs)]

use grok_provider_core::{ChatChunk, FinishReason, ProviderError, ToolCall, Usage};

/// "Now" for every target (2023-11-14T22:13:20Z), so that runs are reproducible.
pub const NOW_MS: u64 = 1_700_000_000_000;

/// A device code the token target pretends to be redeeming.
pub const DEVICE_CODE: &str = "dc-8f3kQ2pL9xVw";
/// An access token the refresh and API targets pretend to hold (short and opaque on
/// purpose: the generic token-like redaction does not catch it, only the secret list does).
pub const OLD_ACCESS_TOKEN: &str = "at-Yx81Q0mNbc7T";
/// The refresh token the refresh target pretends to redeem.
pub const OLD_REFRESH_TOKEN: &str = "rt-Zq7UO2x1Lk9c";
/// Every fixed secret above.
pub const SECRETS: [&str; 3] = [DEVICE_CODE, OLD_ACCESS_TOKEN, OLD_REFRESH_TOKEN];

/// Longest error message accepted from any input (the longest fixed text is the access
/// denied guidance; upstream text is cut to 300 characters).
pub const MAX_MESSAGE_BYTES: usize = 2048;

/// HTTP statuses a selector byte picks from: the interesting ones, several times 200.
pub const STATUSES: [u16; 16] = [
    200, 200, 200, 201, 204, 301, 400, 401, 402, 403, 404, 408, 429, 500, 503, 418,
];

/// The status a selector byte stands for (ASCII `'0'` is 200, as in the seed files).
pub fn status(selector: u8) -> u16 {
    STATUSES[usize::from(selector) % STATUSES.len()]
}

/// Splits `data` as `[k][gap_1 .. gap_k][body]`: `k = data[0] % 32` chunk lengths, then the
/// body. The body is cut into chunks of those lengths (the rest is the last chunk), so the
/// fuzzer chooses the boundaries while the body stays a plain byte string.
pub fn split_body(data: &[u8]) -> (Vec<usize>, &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return (Vec::new(), data);
    };
    let k = usize::from(first % 32).min(rest.len());
    let (gaps, body) = rest.split_at(k);
    (gaps.iter().map(|&g| usize::from(g)).collect(), body)
}

/// `body` cut after `gaps[0]`, then `gaps[1]` more bytes, …, then the rest (empty chunks
/// included: a transport may hand those out too).
pub fn chunks<'a>(body: &'a [u8], gaps: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::with_capacity(gaps.len() + 1);
    let mut rest = body;
    for &g in gaps {
        let (a, b) = rest.split_at(g.min(rest.len()));
        out.push(a);
        rest = b;
    }
    out.push(rest);
    out
}

/// Whether `s` looks like a credential we would have to keep out of messages: token
/// alphabet, at least 12 characters, letters and digits. (Shorter or plainer strings occur
/// in fixed message text by chance.)
pub fn is_secret_like(s: &str) -> bool {
    s.len() >= 12
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'+' | b'/')
        })
        && s.bytes().any(|b| b.is_ascii_digit())
        && s.bytes().any(|b| b.is_ascii_alphabetic())
}

/// Every message shown to a caller or a log: no secret (of those that look like one), no
/// control character (no log injection), bounded length.
pub fn check_message(msg: &str, secrets: &[&str]) {
    assert!(
        msg.len() <= MAX_MESSAGE_BYTES,
        "message of {} bytes",
        msg.len()
    );
    assert!(
        !msg.chars().any(char::is_control),
        "control character in message {msg:?}"
    );
    for s in secrets.iter().filter(|s| is_secret_like(s)) {
        assert!(!msg.contains(s), "secret {s:?} in message {msg:?}");
    }
}

/// [`check_message`] for an error's display and debug forms.
pub fn check_error(e: &ProviderError, secrets: &[&str]) {
    check_message(&e.to_string(), secrets);
    let debug = format!("{e:?}");
    for s in secrets.iter().filter(|s| is_secret_like(s)) {
        assert!(!debug.contains(s), "secret {s:?} in {debug}");
    }
}

/// What a stream's events add up to: each kind of delta concatenated, each tool call (in
/// index order) with its arguments concatenated.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Assembled {
    /// Text deltas, concatenated.
    pub text: String,
    /// Reasoning deltas, concatenated.
    pub reasoning: String,
    /// The calls, by index.
    pub calls: Vec<ToolCall>,
    /// Reasoning items, citations: how many.
    pub others: usize,
    /// The usage event.
    pub usage: Option<Usage>,
    /// The finish event.
    pub finish: Option<FinishReason>,
}

/// Assemble `events`, checking the promises of the stream contract on the way: no empty
/// delta; tool-call indexes are 0, 1, ... in the order of their starts, each started
/// once; a call's argument deltas come after its start; usage and finish once at most;
/// nothing after the finish.
pub fn assemble(events: &[ChatChunk]) -> Assembled {
    let mut a = Assembled::default();
    for e in events {
        assert!(a.finish.is_none(), "{e:?} after the finish");
        match e {
            ChatChunk::Text(t) => {
                assert!(!t.is_empty(), "empty text delta");
                a.text.push_str(t);
            }
            ChatChunk::Reasoning(t) => {
                assert!(!t.is_empty(), "empty reasoning delta");
                a.reasoning.push_str(t);
            }
            ChatChunk::ToolCallStart { index, id, name } => {
                assert_eq!(
                    *index as usize,
                    a.calls.len(),
                    "tool call {id:?} started out of order"
                );
                assert!(!id.is_empty() && !name.is_empty(), "{e:?}");
                a.calls.push(ToolCall {
                    id: id.clone(),
                    name: name.clone(),
                    arguments: String::new(),
                });
            }
            ChatChunk::ToolCallArguments { index, arguments } => {
                assert!(!arguments.is_empty(), "empty arguments delta");
                let call = a.calls.get_mut(*index as usize);
                let call =
                    call.unwrap_or_else(|| panic!("arguments of call {index} before its start"));
                call.arguments.push_str(arguments);
            }
            ChatChunk::ReasoningItem(_) | ChatChunk::Citation(_) => a.others += 1,
            ChatChunk::Usage(u) => {
                assert!(a.usage.is_none(), "usage twice");
                // Input plus output (saturating: u32 is the contract's width).
                assert_eq!(
                    u.total_tokens,
                    u.input_tokens.saturating_add(u.output_tokens),
                    "total is not input + output: {u:?}"
                );
                a.usage = Some(*u);
            }
            ChatChunk::Finish(f) => a.finish = Some(f.clone()),
        }
    }
    a
}

/// A response body handing out fixed chunks.
pub struct Chunked(pub std::collections::VecDeque<Vec<u8>>);

impl grok_provider_core::ResponseBody for Chunked {
    fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, grok_provider_core::TransportError> {
        Ok(self.0.pop_front())
    }
}

impl Chunked {
    /// A body of these chunks.
    pub fn new(chunks: &[&[u8]]) -> Self {
        Self(chunks.iter().map(|c| c.to_vec()).collect())
    }
}

/// The whole stream at once, straight from the spec: lines end at CRLF, LF or CR; comments
/// start with `:`; `data` lines join with LF; an empty line dispatches; the end of the
/// stream ends the last line and dispatches a pending event.
pub fn reference_sse(stream: &[u8]) -> Vec<grok_provider_core::sse::SseEvent> {
    let mut lines = Vec::new();
    let mut i = 0;
    let mut start = 0;
    while i < stream.len() {
        match stream[i] {
            b'\r' => {
                lines.push(&stream[start..i]);
                i += if stream.get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                start = i;
            }
            b'\n' => {
                lines.push(&stream[start..i]);
                i += 1;
                start = i;
            }
            _ => i += 1,
        }
    }
    if start < stream.len() {
        lines.push(&stream[start..]);
    }
    lines.push(b""); // end of stream: dispatch what is pending
    let (mut out, mut event, mut data): (
        Vec<grok_provider_core::sse::SseEvent>,
        Option<String>,
        Option<String>,
    ) = (Vec::new(), None, None);
    for line in lines {
        if line.is_empty() {
            if let Some(d) = data.take() {
                out.push(grok_provider_core::sse::SseEvent {
                    event: event.take().filter(|e| !e.is_empty()),
                    data: d,
                });
            }
            event = None;
            continue;
        }
        if line[0] == b':' {
            continue;
        }
        let line = String::from_utf8_lossy(line);
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (&*line, ""),
        };
        match field {
            "data" => match &mut data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => data = Some(value.to_owned()),
            },
            "event" => event = Some(value.to_owned()),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitting() {
        assert_eq!(split_body(b""), (vec![], &b""[..]));
        assert_eq!(
            split_body(b"\x02\x01\x03abcdef"),
            (vec![1, 3], &b"abcdef"[..])
        );
        assert_eq!(chunks(b"abcdef", &[1, 3]), vec![&b"a"[..], b"bcd", b"ef"]);
        assert_eq!(chunks(b"ab", &[5, 1]), vec![&b"ab"[..], b"", b""]);
        assert_eq!(status(b'0'), 200);
        assert!(is_secret_like(OLD_REFRESH_TOKEN) && !is_secret_like("authorization"));
    }
}
