//! A streamed reply folded into the complete reply `chat` answers: what a route that
//! streams only (the subscription rail) needs to serve a non-streamed turn. The stream's
//! contract makes this exact: the deltas of each kind, concatenated, are the reply.

use crate::error::ProviderError;
use crate::types::{ChatChunk, ChatReply, Lane, ToolCall};

/// Folds [`ChatChunk`]s into a [`ChatReply`].
#[derive(Debug)]
pub struct ReplyCollector {
    reply: ChatReply,
    reasoning: String,
    /// Our call indexes, in the order their starts arrived.
    calls: Vec<u32>,
}

impl ReplyCollector {
    /// An empty reply of `model` (with its route's prefix), served on `lane` and `route`.
    pub fn new(model: String, lane: Lane, route: &str) -> Self {
        Self {
            reply: ChatReply::empty(model, lane, route),
            reasoning: String::new(),
            calls: Vec::new(),
        }
    }

    /// Take one chunk in.
    pub fn push(&mut self, chunk: ChatChunk) -> Result<(), ProviderError> {
        let r = &mut self.reply;
        match chunk {
            ChatChunk::Text(t) => r.content.push_str(&t),
            ChatChunk::Reasoning(t) => self.reasoning.push_str(&t),
            ChatChunk::ToolCallStart { index, id, name } => {
                self.calls.push(index);
                r.tool_calls.push(ToolCall {
                    id,
                    name,
                    arguments: String::new(),
                });
            }
            ChatChunk::ToolCallArguments { index, arguments } => {
                let slot = self.calls.iter().position(|i| *i == index).ok_or_else(|| {
                    ProviderError::InvalidResponse(
                        "tool-call arguments for a call that never started".into(),
                    )
                })?;
                r.tool_calls[slot].arguments.push_str(&arguments);
            }
            ChatChunk::ReasoningItem(item) => r.reasoning_items.push(item),
            ChatChunk::Citation(c) => r.citations.push(c),
            ChatChunk::Usage(u) => r.usage = Some(u),
            ChatChunk::Finish(f) => r.finish_reason = Some(f),
        }
        Ok(())
    }

    /// The reply.
    pub fn finish(mut self) -> ChatReply {
        self.reply.reasoning = (!self.reasoning.is_empty()).then_some(self.reasoning);
        self.reply
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{FinishReason, Usage};

    #[test]
    fn folds_every_kind() {
        let mut c = ReplyCollector::new(
            "xai-grok-sub/m".into(),
            Lane::ChatCompletions,
            "subscription",
        );
        for chunk in [
            ChatChunk::Reasoning("think".into()),
            ChatChunk::Reasoning("ing".into()),
            ChatChunk::Text("Hel".into()),
            ChatChunk::ToolCallStart {
                index: 0,
                id: "c0".into(),
                name: "a".into(),
            },
            ChatChunk::ToolCallStart {
                index: 1,
                id: "c1".into(),
                name: "b".into(),
            },
            ChatChunk::ToolCallArguments {
                index: 1,
                arguments: "{}".into(),
            },
            ChatChunk::ToolCallArguments {
                index: 0,
                arguments: "{\"x\":".into(),
            },
            ChatChunk::ToolCallArguments {
                index: 0,
                arguments: "1}".into(),
            },
            ChatChunk::Text("lo".into()),
            ChatChunk::Usage(Usage::default()),
            ChatChunk::Finish(FinishReason::ToolCalls),
        ] {
            c.push(chunk).unwrap();
        }
        let r = c.finish();
        assert_eq!(
            (r.content.as_str(), r.reasoning.as_deref(), r.route.as_str()),
            ("Hello", Some("thinking"), "subscription")
        );
        assert_eq!(
            r.tool_calls
                .iter()
                .map(|t| (t.id.as_str(), t.arguments.as_str()))
                .collect::<Vec<_>>(),
            [("c0", "{\"x\":1}"), ("c1", "{}")]
        );
        assert_eq!(r.finish_reason, Some(FinishReason::ToolCalls));
        assert!(r.usage.is_some());

        let mut c = ReplyCollector::new("m".into(), Lane::Responses, "api");
        assert!(
            c.push(ChatChunk::ToolCallArguments {
                index: 3,
                arguments: "x".into()
            })
            .is_err()
        );
        assert_eq!(c.finish().reasoning, None);
    }
}
