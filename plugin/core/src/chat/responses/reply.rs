//! A complete Responses reply read into the WIT's `chat-reply`: text, calls, reasoning
//! (summary and the items to pass back), citations, the finish reason.

use serde::Serialize;
use serde_json::Value;

use super::super::response_failure;
use super::super::usage::responses_usage;
use crate::error::ProviderError;
use crate::json::as_u32;
use crate::routes::Route;
use crate::types::{ChatReply, Citation, FinishReason, Lane, ReasoningItem, ToolCall};

/// A `url_citation` annotation (or any object with a `url`).
pub(crate) fn citation(a: &Value) -> Option<Citation> {
    let url = a
        .get("url")
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty())?;
    Some(Citation {
        url: url.to_owned(),
        title: a.get("title").and_then(Value::as_str).map(str::to_owned),
        start_index: a.get("start_index").and_then(as_u32),
        end_index: a.get("end_index").and_then(as_u32),
    })
}

/// An event's JSON.
pub(super) fn parse_event(data: &str) -> Result<Value, ProviderError> {
    // From bytes, as every JSON the plugin reads: one reader type, so one copy of serde_json's
    // parser in the component (`from_str` would instantiate a second).
    serde_json::from_slice(data.as_bytes())
        .map_err(|_| ProviderError::InvalidResponse("unparsable event in the reply stream".into()))
}

pub(super) fn function_call(item: &Value) -> Result<ToolCall, ProviderError> {
    let s = |k: &str| item.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let call = ToolCall {
        // `call_id` is what a function_call_output must name; `id` is the item's own.
        id: Some(s("call_id"))
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| s("id")),
        name: s("name"),
        arguments: s("arguments"),
    };
    if call.id.is_empty() || call.name.is_empty() {
        return Err(ProviderError::InvalidResponse(
            "function call without call_id or name".into(),
        ));
    }
    Ok(call)
}

pub(super) fn summary_text(item: &Value) -> String {
    item.get("summary")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s.get("text").and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// A reasoning output item worth passing back: only one with encrypted content can be
/// used again when nothing is stored upstream.
pub(super) fn reasoning_item(item: &Value) -> Option<ReasoningItem> {
    item.get("encrypted_content")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())?;
    let keep = KeptReasoning {
        encrypted_content: item.get("encrypted_content"),
        id: item.get("id"),
        summary: item.get("summary"),
        kind: item.get("type"),
    };
    Some(ReasoningItem {
        lane: Lane::Responses,
        data: serde_json::to_string(&keep)
            .unwrap_or_else(|_| unreachable!("JSON of the plugin's own types always serializes")),
    })
}

/// The fields of a reasoning output item that passing it back needs (in the order a JSON
/// object of them always had: sorted).
#[derive(Serialize)]
pub(super) struct KeptReasoning<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    encrypted_content: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<&'a Value>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'a Value>,
}

/// Why a response stopped: `completed` -> stop (tool calls when it made any),
/// `incomplete` -> its `incomplete_details.reason`, otherwise the status itself.
pub fn finish_reason(resp: &Value, made_calls: bool) -> Option<FinishReason> {
    match resp.get("status").and_then(Value::as_str)? {
        "completed" if made_calls => Some(FinishReason::ToolCalls),
        "completed" => Some(FinishReason::Stop),
        "incomplete" => Some(FinishReason::from_upstream(
            resp.get("incomplete_details")
                .and_then(|d| d.get("reason"))
                .and_then(Value::as_str)
                .unwrap_or("incomplete"),
        )),
        other => Some(FinishReason::Other(other.to_owned())),
    }
}

pub(crate) fn parse_reply(
    v: &Value,
    model: String,
    route: Route,
) -> Result<ChatReply, ProviderError> {
    if v.get("status").and_then(Value::as_str) == Some("failed") {
        return Err(response_failure(v.get("error")));
    }
    let output = v
        .get("output")
        .and_then(Value::as_array)
        .ok_or_else(|| ProviderError::InvalidResponse("response without output".into()))?;
    let mut reply = ChatReply {
        usage: v.get("usage").and_then(responses_usage),
        ..ChatReply::empty(model, Lane::Responses, route.name())
    };
    let mut reasoning = Vec::new();
    for item in output {
        match item.get("type").and_then(Value::as_str) {
            Some("message") => {
                for part in item
                    .get("content")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if part.get("type").and_then(Value::as_str) != Some("output_text") {
                        continue; // refusal, ...
                    }
                    if let Some(t) = part.get("text").and_then(Value::as_str) {
                        reply.content.push_str(t);
                    }
                    reply.citations.extend(
                        part.get("annotations")
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                            .filter_map(citation),
                    );
                }
            }
            Some("function_call") => reply.tool_calls.push(function_call(item)?),
            Some("reasoning") => {
                let text = summary_text(item);
                if !text.is_empty() {
                    reasoning.push(text);
                }
                reply.reasoning_items.extend(reasoning_item(item));
            }
            _ => {} // server-side tool calls (web_search_call, ...)
        }
    }
    reply.reasoning = (!reasoning.is_empty()).then(|| reasoning.join("\n\n"));
    reply.finish_reason = finish_reason(v, !reply.tool_calls.is_empty());
    Ok(reply)
}
