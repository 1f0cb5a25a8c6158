//! Deterministic replies and token accounting, the same for both lanes.
//!
//! The answer is, in this order: scripted tool calls with a `Calling …` preamble (see
//! [`super::tools`]); the answer to tool results; or the echo of the last user message
//! ([`Turn::echo`]). A text answer is stretched or cut to `reply_bytes` when set (plain text
//! only), rendered in the requested format, then cut to the token cap.
//!
//! Tokens are counted as ceil(bytes / 4). [`Usage::output`] counts visible output (text
//! and call arguments) and excludes reasoning; each lane reports it its upstream's way
//! (xAI's chat completions: `completion_tokens` = output, the total adds reasoning;
//! OpenAI's Responses: `output_tokens` = output + reasoning). The total is the same on
//! both: input + output + reasoning.

use super::models::{CatalogueModel, ModelKind};
use super::tools::{self, ToolCall};
use super::turn::Turn;

/// The reasoning a reasoning model shows (chat `reasoning_content`, Responses summary).
pub(super) const REASONING_TEXT: &str = "Thinking about the request.";

/// Why the answer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Finish {
    Stop,
    /// The token cap cut the text.
    Length,
    ToolCalls,
}

/// A generated answer.
pub(super) struct Generated {
    pub text: String,
    pub calls: Vec<ToolCall>,
    /// The visible reasoning, for reasoning and multi-agent models.
    pub reasoning: Option<&'static str>,
    pub finish: Finish,
    pub usage: Usage,
}

/// Token accounting.
#[derive(Debug, Clone, Copy)]
pub(super) struct Usage {
    pub input: u64,
    /// Input tokens read from the prompt cache (set by the lane, which knows the key).
    pub cached: u64,
    /// Visible output: text and tool calls, without reasoning.
    pub output: u64,
    pub reasoning: u64,
}

impl Usage {
    /// Input, output and reasoning.
    pub fn total(&self) -> u64 {
        self.input + self.output + self.reasoning
    }
}

pub(super) fn tokens(text: &str) -> u64 {
    (text.len() as u64).div_ceil(4)
}

/// Answer `turn` (see the module doc); `seq` numbers the call ids.
pub(super) fn generate(
    model: &CatalogueModel,
    turn: &Turn,
    reply_bytes: Option<usize>,
    agents: Option<u64>,
    seq: u64,
) -> Generated {
    let calls = tools::scripted_calls(turn, seq).unwrap_or_default();
    let (text, finish) = if calls.is_empty() {
        let mut text = tools::results_answer(turn).unwrap_or_else(|| turn.echo());
        if let Some(size) = reply_bytes
            && turn.format.is_text()
        {
            text = exact_size(&text, size);
        }
        let mut text = turn.format.render(&text);
        let cut = cut_to_tokens(&mut text, turn.max_tokens);
        (text, if cut { Finish::Length } else { Finish::Stop })
    } else {
        (tools::preamble(&calls), Finish::ToolCalls)
    };
    let reasoning = match model.kind {
        ModelKind::Reasoning => 16,
        ModelKind::MultiAgent => agents.unwrap_or(4) * 16,
        ModelKind::Chat | ModelKind::Media => 0,
    };
    let output = tokens(&text)
        + calls
            .iter()
            .map(|c| tokens(&c.name) + tokens(&c.arguments))
            .sum::<u64>();
    Generated {
        text,
        calls,
        reasoning: (reasoning > 0).then_some(REASONING_TEXT),
        finish,
        usage: Usage {
            input: turn.input_tokens(),
            cached: 0,
            output,
            reasoning,
        },
    }
}

/// Cut `text` to `max` tokens on a character boundary; whether it was cut.
fn cut_to_tokens(text: &mut String, max: Option<u64>) -> bool {
    let Some(max) = max.filter(|&max| tokens(text) > max) else {
        return false;
    };
    let mut end = usize::try_from(max.saturating_mul(4))
        .unwrap_or(usize::MAX)
        .min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    true
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
