//! The Responses stream assembled into the WIT's chunks, whatever way a server sends a
//! call's arguments (deltas, an empty delta, only the `.done` events).

use std::collections::{BTreeSet, VecDeque};

use serde_json::Value;

use super::super::chunk_event::DeltaEvent;
use super::super::response_failure;
use super::super::usage::responses_usage;
use super::reply::{
    citation, finish_reason, function_call, parse_event, reasoning_item, summary_text,
};
use crate::error::ProviderError;
use crate::types::{ChatChunk, Citation, FinishReason};

/// A function call being assembled from events.
#[derive(Debug)]
pub(super) struct PartialCall {
    /// The output item's id, which the argument events name.
    item_id: Option<String>,
    output_index: Option<u64>,
    /// Our index.
    index: u32,
    /// Arguments handed out so far.
    sent: String,
}

/// Turns `response.*` events into [`ChatChunk`]s.
#[derive(Debug, Default)]
pub struct ResponsesAssembler {
    calls: Vec<PartialCall>,
    /// Output items (by id) whose text or reasoning arrived as deltas, so their `.done`
    /// does not repeat it.
    streamed_text: BTreeSet<String>,
    streamed_reasoning: BTreeSet<String>,
    /// The reasoning part (item, summary index) the last reasoning delta belonged to.
    reasoning_part: Option<(String, Option<u64>)>,
    /// Citations already given, keyed by [`citation_key`].
    cited: BTreeSet<String>,
}

impl ResponsesAssembler {
    fn find(&self, v: &Value) -> Option<usize> {
        let item_id = v
            .get("item_id")
            .or_else(|| v.get("item").and_then(|i| i.get("id")))
            .and_then(Value::as_str);
        let output_index = v.get("output_index").and_then(Value::as_u64);
        self.calls
            .iter()
            .position(|c| match (item_id, c.item_id.as_deref()) {
                (Some(a), Some(b)) => a == b,
                _ => output_index.is_some() && output_index == c.output_index,
            })
    }

    fn start(
        &mut self,
        v: &Value,
        item: &Value,
        out: &mut VecDeque<ChatChunk>,
    ) -> Result<usize, ProviderError> {
        if let Some(i) = self.find(v) {
            return Ok(i);
        }
        let call = function_call(item)?;
        let index = u32::try_from(self.calls.len()).unwrap_or(u32::MAX);
        out.push_back(ChatChunk::ToolCallStart {
            index,
            id: call.id,
            name: call.name,
        });
        self.calls.push(PartialCall {
            item_id: item.get("id").and_then(Value::as_str).map(str::to_owned),
            output_index: v.get("output_index").and_then(Value::as_u64),
            index,
            sent: String::new(),
        });
        Ok(self.calls.len() - 1)
    }

    fn push_args(&mut self, slot: usize, delta: &str, out: &mut VecDeque<ChatChunk>) {
        if delta.is_empty() {
            return;
        }
        let call = &mut self.calls[slot];
        call.sent.push_str(delta);
        out.push_back(ChatChunk::ToolCallArguments {
            index: call.index,
            arguments: delta.to_owned(),
        });
    }

    /// The final arguments of a call: hand out what the deltas did not.
    fn settle_args(
        &mut self,
        slot: usize,
        full: &str,
        out: &mut VecDeque<ChatChunk>,
    ) -> Result<(), ProviderError> {
        let sent = &self.calls[slot].sent;
        if full.is_empty() || full == sent {
            return Ok(());
        }
        match full.strip_prefix(sent.as_str()) {
            Some(rest) => {
                let rest = rest.to_owned();
                self.push_args(slot, &rest, out);
                Ok(())
            }
            None => Err(ProviderError::InvalidResponse(
                "a tool call's final arguments contradict its streamed deltas".into(),
            )),
        }
    }

    /// Handle one event (its `type`, or the SSE `event:` name); `Ok(true)` at the terminal
    /// `response.completed` / `response.incomplete`.
    pub fn on_event(
        &mut self,
        data: &str,
        event: Option<&str>,
        out: &mut VecDeque<ChatChunk>,
    ) -> Result<bool, ProviderError> {
        // Most events are one token of text or of reasoning: read through a typed view (as
        // `chunk_event` explains), every other kind as a `Value`.
        if let Some(e) = DeltaEvent::parse(data) {
            let kind = e.kind.as_deref().or(event).unwrap_or_default();
            let item_id = e.item_id.as_deref().unwrap_or("");
            let delta = e.delta.as_deref().unwrap_or("");
            // An empty delta says nothing.
            if !delta.is_empty() {
                match kind {
                    "response.output_text.delta" => {
                        self.streamed_text.insert(item_id.to_owned());
                        out.push_back(ChatChunk::Text(delta.to_owned()));
                        return Ok(false);
                    }
                    "response.reasoning_summary_text.delta" | "response.reasoning_text.delta" => {
                        self.on_reasoning(item_id, e.summary_index, delta, out);
                        return Ok(false);
                    }
                    _ => {}
                }
            }
        }
        let v = parse_event(data)?;
        let kind = v
            .get("type")
            .and_then(Value::as_str)
            .or(event)
            .unwrap_or_default()
            .to_owned();
        let delta = v.get("delta").and_then(Value::as_str).unwrap_or("");
        match kind.as_str() {
            // Text and reasoning deltas were handled above (an empty one says nothing).
            "response.output_text.annotation.added" => {
                if let Some(c) = v.get("annotation").and_then(citation) {
                    self.cite(c, out);
                }
            }
            "response.output_item.added" => {
                let item = v.get("item").unwrap_or(&Value::Null);
                if item.get("type").and_then(Value::as_str) == Some("function_call") {
                    let slot = self.start(&v, item, out)?;
                    let args = item.get("arguments").and_then(Value::as_str).unwrap_or("");
                    self.settle_args(slot, args, out)?;
                }
            }
            "response.function_call_arguments.delta" => match self.find(&v) {
                Some(slot) => self.push_args(slot, delta, out),
                None if delta.is_empty() => {}
                None => {
                    return Err(ProviderError::InvalidResponse(
                        "tool-call arguments for a call that never started".into(),
                    ));
                }
            },
            "response.function_call_arguments.done" => {
                if let Some(slot) = self.find(&v) {
                    let args = v.get("arguments").and_then(Value::as_str).unwrap_or("");
                    self.settle_args(slot, args, out)?;
                }
            }
            "response.output_item.done" => self.item_done(&v, out)?,
            "response.completed" | "response.incomplete" => {
                let resp = v.get("response").cloned().unwrap_or(Value::Null);
                if let Some(u) = resp.get("usage").and_then(responses_usage) {
                    out.push_back(ChatChunk::Usage(u));
                }
                let finish = finish_reason(&resp, !self.calls.is_empty()).unwrap_or(
                    if kind == "response.completed" {
                        FinishReason::Stop
                    } else {
                        FinishReason::Other("incomplete".into())
                    },
                );
                out.push_back(ChatChunk::Finish(finish));
                return Ok(true);
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
            _ => {} // created, in_progress, content_part.*, server tool progress, ...
        }
        Ok(false)
    }

    fn on_reasoning(
        &mut self,
        item_id: &str,
        summary_index: Option<u64>,
        delta: &str,
        out: &mut VecDeque<ChatChunk>,
    ) {
        // Parts (and items) are separated as `chat` joins them: a blank line.
        let part = (item_id.to_owned(), summary_index);
        if self.reasoning_part.as_ref().is_some_and(|p| *p != part) {
            out.push_back(ChatChunk::Reasoning("\n\n".into()));
        }
        self.reasoning_part = Some(part);
        self.streamed_reasoning.insert(item_id.to_owned());
        out.push_back(ChatChunk::Reasoning(delta.to_owned()));
    }

    fn cite(&mut self, c: Citation, out: &mut VecDeque<ChatChunk>) {
        if self.cited.insert(citation_key(&c.url, c.start_index)) {
            out.push_back(ChatChunk::Citation(c));
        }
    }

    /// A finished output item: what its deltas did not deliver is delivered now.
    fn item_done(&mut self, v: &Value, out: &mut VecDeque<ChatChunk>) -> Result<(), ProviderError> {
        let item = v.get("item").unwrap_or(&Value::Null);
        let id = item.get("id").and_then(Value::as_str).unwrap_or("");
        match item.get("type").and_then(Value::as_str) {
            Some("function_call") => {
                let slot = self.start(v, item, out)?;
                let args = item.get("arguments").and_then(Value::as_str).unwrap_or("");
                self.settle_args(slot, args, out)?;
            }
            Some("reasoning") => {
                let text = summary_text(item);
                if !text.is_empty() && !streamed(&self.streamed_reasoning, id) {
                    if self.reasoning_part.is_some() {
                        out.push_back(ChatChunk::Reasoning("\n\n".into()));
                    }
                    self.reasoning_part = Some((id.to_owned(), None));
                    out.push_back(ChatChunk::Reasoning(text));
                }
                if let Some(r) = reasoning_item(item) {
                    out.push_back(ChatChunk::ReasoningItem(r));
                }
            }
            Some("message") if !streamed(&self.streamed_text, id) => {
                for part in item
                    .get("content")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter(|p| p.get("type").and_then(Value::as_str) == Some("output_text"))
                {
                    if let Some(t) = part
                        .get("text")
                        .and_then(Value::as_str)
                        .filter(|t| !t.is_empty())
                    {
                        out.push_back(ChatChunk::Text(t.to_owned()));
                    }
                    for c in part
                        .get("annotations")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(citation)
                    {
                        self.cite(c, out);
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// Whether item `id` got deltas (deltas without an `item_id` count for every item).
/// One string per (url, start index): the index (or `-`) before the first space, so two
/// different pairs never share a key (one set type, `BTreeSet<String>`, for the component).
pub(super) fn citation_key(url: &str, start_index: Option<u32>) -> String {
    match start_index {
        Some(i) => format!("{i} {url}"),
        None => format!("- {url}"),
    }
}

pub(super) fn streamed(set: &BTreeSet<String>, id: &str) -> bool {
    set.contains(id) || set.contains("")
}
