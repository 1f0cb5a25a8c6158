//! Token accounting of both lanes, normalised so that output includes reasoning and the
//! total is input plus output whatever the upstream's convention.

use serde_json::Value;

use crate::json::as_u32;
use crate::types::Usage;

/// Chat-completions `usage`: `prompt_tokens`, `completion_tokens`, `total_tokens`,
/// `prompt_tokens_details.cached_tokens`, `completion_tokens_details.reasoning_tokens`.
pub fn chat_completions_usage(u: &Value) -> Option<Usage> {
    usage(
        u,
        ["prompt_tokens", "completion_tokens"],
        ["prompt_tokens_details", "completion_tokens_details"],
    )
}

/// Responses `usage`: `input_tokens`, `output_tokens`, `total_tokens`,
/// `input_tokens_details.cached_tokens`, `output_tokens_details.reasoning_tokens`.
pub fn responses_usage(u: &Value) -> Option<Usage> {
    usage(
        u,
        ["input_tokens", "output_tokens"],
        ["input_tokens_details", "output_tokens_details"],
    )
}

fn usage(
    u: &Value,
    [input, output]: [&str; 2],
    [in_details, out_details]: [&str; 2],
) -> Option<Usage> {
    let input_tokens = u.get(input).and_then(as_u32)?;
    let generated = u.get(output).and_then(as_u32)?;
    let reasoning_tokens = u
        .get(out_details)
        .and_then(|d| d.get("reasoning_tokens"))
        .and_then(as_u32);
    let cached_input_tokens = u
        .get(in_details)
        .and_then(|d| d.get("cached_tokens"))
        .and_then(as_u32);
    let reasoning = reasoning_tokens.unwrap_or(0);
    // xAI counts reasoning outside completion tokens (its total is prompt + completion +
    // reasoning); OpenAI inside. The reported total tells which: add reasoning in only
    // when the total shows it was left out.
    let reported_total = u.get("total_tokens").and_then(as_u32);
    let outside = reasoning > 0
        && reported_total.is_some_and(|t| {
            u64::from(t) >= u64::from(input_tokens) + u64::from(generated) + u64::from(reasoning)
        });
    let output_tokens = if outside {
        generated.saturating_add(reasoning)
    } else {
        generated
    };
    Some(Usage {
        input_tokens,
        output_tokens,
        reasoning_tokens,
        cached_input_tokens,
        total_tokens: input_tokens.saturating_add(output_tokens),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reasoning_counted_once_whatever_the_convention() {
        // xAI: reasoning outside completion tokens.
        let x = chat_completions_usage(&json!({
            "prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 45,
            "prompt_tokens_details": {"cached_tokens": 8},
            "completion_tokens_details": {"reasoning_tokens": 30}
        }))
        .unwrap();
        assert_eq!(
            x,
            Usage {
                input_tokens: 10,
                output_tokens: 35,
                reasoning_tokens: Some(30),
                cached_input_tokens: Some(8),
                total_tokens: 45
            }
        );
        // OpenAI: inside.
        let o = responses_usage(&json!({
            "input_tokens": 10, "output_tokens": 35, "total_tokens": 45,
            "output_tokens_details": {"reasoning_tokens": 30}
        }))
        .unwrap();
        assert_eq!(
            (o.output_tokens, o.total_tokens, o.cached_input_tokens),
            (35, 45, None)
        );
        // No total: taken as inside; the total is recomputed.
        let n =
            chat_completions_usage(&json!({"prompt_tokens": 1, "completion_tokens": 2})).unwrap();
        assert_eq!(
            (n.output_tokens, n.total_tokens, n.reasoning_tokens),
            (2, 3, None)
        );
        assert!(chat_completions_usage(&json!({"prompt_tokens": 1})).is_none());
    }
}
