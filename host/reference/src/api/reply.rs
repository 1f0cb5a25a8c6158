//! Deterministic replies and token accounting, the same for both lanes.
//!
//! Tokens are counted as ceil(bytes / 4). Output tokens include reasoning tokens, and the
//! total is input plus output.

use serde_json::Value;

use super::models::{CatalogueModel, ModelKind};

/// A generated answer.
pub(super) struct Generated {
    pub text: String,
    /// Whether `max tokens` cut the text.
    pub truncated: bool,
    pub usage: Usage,
}

/// Token accounting.
#[derive(Debug, Clone, Copy)]
pub(super) struct Usage {
    pub input: u64,
    pub output: u64,
    pub reasoning: u64,
    pub total: u64,
}

pub(super) fn tokens(text: &str) -> u64 {
    (text.len() as u64).div_ceil(4)
}

/// Text of a message `content`: a string, or an array of parts with `text`.
pub(super) fn content_text(content: &Value) -> Option<String> {
    match content {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => Some(
            parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join(""),
        ),
        Value::Null => Some(String::new()),
        _ => None,
    }
}

/// Answer `conversation` (role, text): "Echo: " and the last user message, stretched or
/// cut to `reply_bytes` when set, then cut to `max_tokens`.
pub(super) fn generate(
    model: &CatalogueModel,
    conversation: &[(String, String)],
    reply_bytes: Option<usize>,
    max_tokens: Option<u64>,
    agents: Option<u64>,
) -> Generated {
    let last_user = conversation
        .iter()
        .rev()
        .find(|(role, _)| role == "user")
        .map(|(_, text)| text.as_str())
        .unwrap_or("");
    let mut text = format!("Echo: {last_user}");
    if let Some(size) = reply_bytes {
        text = exact_size(&text, size);
    }
    let mut truncated = false;
    if let Some(max) = max_tokens
        && tokens(&text) > max
    {
        let mut end = usize::try_from(max.saturating_mul(4))
            .unwrap_or(usize::MAX)
            .min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        truncated = true;
    }
    let reasoning = match model.kind {
        ModelKind::Reasoning => 16,
        ModelKind::MultiAgent => agents.unwrap_or(4) * 16,
        ModelKind::Chat | ModelKind::Media => 0,
    };
    let input: u64 = conversation.iter().map(|(_, t)| tokens(t) + 4).sum();
    let output = tokens(&text) + reasoning;
    Generated {
        text,
        truncated,
        usage: Usage {
            input,
            output,
            reasoning,
            total: input + output,
        },
    }
}

/// Repeat `seed` to exactly `size` bytes (ASCII `.` pads where a character would straddle).
fn exact_size(seed: &str, size: usize) -> String {
    let unit = format!("{seed} ");
    let mut out = String::with_capacity(size);
    for c in unit.chars().cycle() {
        if out.len() + c.len_utf8() > size {
            break;
        }
        out.push(c);
    }
    while out.len() < size {
        out.push('.');
    }
    out
}

/// Agents a multi-agent model uses for a `reasoning.effort` (xAI: low/medium 4, high 16).
pub(super) fn agents_for_effort(effort: Option<&str>) -> u64 {
    match effort {
        Some("high" | "xhigh") => 16,
        _ => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_size_hits_the_byte_count() {
        for size in [0, 1, 5, 1024, 1025] {
            assert_eq!(exact_size("Echo: hé", size).len(), size);
        }
    }
}
