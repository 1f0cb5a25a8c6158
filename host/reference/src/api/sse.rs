//! Server-sent event framing.

use bytes::Bytes;
use serde_json::Value;

/// `data: {json}` (chat completions style).
pub(super) fn data(value: &Value) -> Bytes {
    Bytes::from(format!("data: {value}\n\n"))
}

/// `event: name` + `data: {json}` (Responses API style).
pub(super) fn named(name: &str, value: &Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {value}\n\n"))
}

/// The chat completions terminal event.
pub(super) fn done() -> Bytes {
    Bytes::from_static(b"data: [DONE]\n\n")
}

/// Cut `text` into pieces of at most `size` bytes on character boundaries (at least one
/// piece, possibly empty; a character wider than `size` stays whole).
pub(super) fn pieces(text: &str, size: usize) -> Vec<&str> {
    let size = size.max(1);
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let mut end = size.min(rest.len());
        while !rest.is_char_boundary(end) {
            end += 1;
        }
        out.push(&rest[..end]);
        rest = &rest[end..];
    }
    if out.is_empty() {
        out.push("");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::pieces;

    #[test]
    fn pieces_respect_char_boundaries_and_reassemble() {
        let text = "héllo wörld ✓";
        let parts = pieces(text, 2);
        assert_eq!(parts.concat(), text);
        assert!(parts.iter().all(|p| !p.is_empty()));
        assert_eq!(pieces("", 4), vec![""]);
    }
}
