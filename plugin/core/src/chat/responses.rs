//! The Responses lane (`/responses`): request body, complete reply and stream events.
//!
//! Conversations are resent whole each turn with `store: false`, so reasoning is asked
//! back encrypted (`include: ["reasoning.encrypted_content"]`) and returned to the caller
//! as opaque [`ReasoningItem`]s to pass back. Tool-call arguments stream as
//! `response.function_call_arguments.delta`; servers that send an empty delta or the
//! arguments only in `.done` / `response.output_item.done` assemble the same.

use std::collections::{BTreeSet, VecDeque};

use serde::Serialize;
use serde_json::{Map, Number, Value};

use super::completions::{detail, image_url};
use super::usage::responses_usage;
use super::{
    FunctionFields, SchemaFields, WireToolChoice, decimal, effort, function_tools, json_object,
    response_failure, schema_fields,
};
use crate::error::ProviderError;
use crate::json::as_u32;
use crate::routes::Route;
use crate::types::{
    ChatChunk, ChatReply, ChatRequest, Citation, ContentPart, FinishReason, Lane, ReasoningItem,
    ResponseFormat, Role, ToolCall,
};

#[derive(Serialize)]
struct Body<'a> {
    model: &'a str,
    input: Vec<InputItem<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    instructions: Option<String>,
    stream: bool,
    /// Nothing needs to live upstream: every turn carries the whole conversation (and the
    /// subscription rail refuses anything else).
    store: bool,
    include: [&'static str; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    max_output_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<Number>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<Number>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning: Option<Reasoning>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<WireTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<WireToolChoice<FunctionName<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parallel_tool_calls: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<TextOptions<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prompt_cache_key: Option<&'a str>,
}

#[derive(Serialize)]
struct Reasoning {
    effort: &'static str,
}

/// One `input` item: one we write, or a reasoning item passed back as it came.
#[derive(Serialize)]
#[serde(untagged)]
enum InputItem<'a> {
    Ours(OurItem<'a>),
    PassedBack(Map<String, Value>),
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum OurItem<'a> {
    Message {
        role: &'static str,
        content: MessageContent<'a>,
    },
    FunctionCall {
        call_id: &'a str,
        name: &'a str,
        arguments: &'a str,
    },
    FunctionCallOutput {
        call_id: &'a str,
        output: String,
    },
}

/// User messages are parts; assistant messages plain text.
#[derive(Serialize)]
#[serde(untagged)]
enum MessageContent<'a> {
    Parts(Vec<InputPart<'a>>),
    Text(String),
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum InputPart<'a> {
    InputText {
        text: &'a str,
    },
    InputImage {
        image_url: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        detail: Option<&'static str>,
    },
}

/// `{type: "function", name, description, parameters, strict}`.
#[derive(Serialize)]
struct WireTool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(flatten)]
    function: FunctionFields<'a>,
}

/// How a tool choice names its function here: `{"name": ...}` beside the type.
#[derive(Serialize)]
struct FunctionName<'a> {
    name: &'a str,
}

#[derive(Serialize)]
struct TextOptions<'a> {
    format: TextFormat<'a>,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum TextFormat<'a> {
    Text,
    JsonObject,
    JsonSchema(SchemaFields<'a>),
}

fn input_items(req: &ChatRequest) -> Result<Vec<InputItem<'_>>, ProviderError> {
    let mut items = Vec::new();
    for m in req.messages.iter().filter(|m| m.role != Role::System) {
        match m.role {
            Role::User => {
                let parts = m
                    .content
                    .iter()
                    .map(|p| match p {
                        ContentPart::Text(text) => InputPart::InputText { text },
                        ContentPart::Image(i) => InputPart::InputImage {
                            image_url: image_url(&i.source),
                            detail: i.detail.map(detail),
                        },
                    })
                    .collect();
                items.push(InputItem::Ours(OurItem::Message {
                    role: "user",
                    content: MessageContent::Parts(parts),
                }));
            }
            Role::Assistant => {
                for r in m.reasoning.iter().filter(|r| r.lane == Lane::Responses) {
                    let item = json_object(&r.data, "reasoning item")
                        .ok()
                        .filter(|o| o.get("type").and_then(Value::as_str) == Some("reasoning"))
                        .ok_or_else(|| {
                            ProviderError::InvalidInput(
                                "a reasoning item was not made by this plugin".into(),
                            )
                        })?;
                    items.push(InputItem::PassedBack(item));
                }
                let text = m.text_content();
                if !text.is_empty() {
                    items.push(InputItem::Ours(OurItem::Message {
                        role: "assistant",
                        content: MessageContent::Text(text),
                    }));
                }
                for c in &m.tool_calls {
                    items.push(InputItem::Ours(OurItem::FunctionCall {
                        call_id: &c.id,
                        name: &c.name,
                        arguments: &c.arguments,
                    }));
                }
            }
            Role::Tool => items.push(InputItem::Ours(OurItem::FunctionCallOutput {
                call_id: m.tool_call_id.as_deref().unwrap_or_default(),
                output: m.text_content(),
            })),
            Role::System => {}
        }
    }
    Ok(items)
}

fn text_format(f: &ResponseFormat) -> Result<TextOptions<'_>, ProviderError> {
    let format = match f {
        ResponseFormat::Text => TextFormat::Text,
        ResponseFormat::JsonObject => TextFormat::JsonObject,
        ResponseFormat::JsonSchema(s) => TextFormat::JsonSchema(schema_fields(s)?),
    };
    Ok(TextOptions { format })
}

pub(crate) fn body(model: &str, req: &ChatRequest, stream: bool) -> Result<Vec<u8>, ProviderError> {
    let instructions: Vec<String> = req
        .messages
        .iter()
        .filter(|m| m.role == Role::System)
        .map(|m| m.text_content())
        .collect();
    let body = Body {
        model,
        input: input_items(req)?,
        instructions: (!instructions.is_empty()).then(|| instructions.join("\n\n")),
        stream,
        store: false,
        include: ["reasoning.encrypted_content"],
        max_output_tokens: req.max_output_tokens,
        temperature: req.temperature.and_then(decimal),
        top_p: req.top_p.and_then(decimal),
        reasoning: req.thinking.map(|e| Reasoning { effort: effort(e) }),
        tools: function_tools(req, |function| WireTool {
            kind: "function",
            function,
        })?,
        tool_choice: req
            .tool_choice
            .as_ref()
            .map(|c| WireToolChoice::of(c, |name| FunctionName { name })),
        parallel_tool_calls: req.parallel_tool_calls,
        text: req.response_format.as_ref().map(text_format).transpose()?,
        prompt_cache_key: req.prompt_cache_key.as_deref(),
    };
    Ok(serde_json::to_vec(&body).expect("json body"))
}

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
pub(crate) fn parse_event(data: &str) -> Result<Value, ProviderError> {
    // From bytes, as every JSON the plugin reads: one reader type, so one copy of serde_json's
    // parser in the component (`from_str` would instantiate a second).
    serde_json::from_slice(data.as_bytes())
        .map_err(|_| ProviderError::InvalidResponse("unparsable event in the reply stream".into()))
}

fn function_call(item: &Value) -> Result<ToolCall, ProviderError> {
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

fn summary_text(item: &Value) -> String {
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
fn reasoning_item(item: &Value) -> Option<ReasoningItem> {
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
        data: serde_json::to_string(&keep).expect("json"),
    })
}

/// The fields of a reasoning output item that passing it back needs (in the order a JSON
/// object of them always had: sorted).
#[derive(Serialize)]
struct KeptReasoning<'a> {
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

/// A function call being assembled from events.
#[derive(Debug)]
struct PartialCall {
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
        let v = parse_event(data)?;
        let kind = v
            .get("type")
            .and_then(Value::as_str)
            .or(event)
            .unwrap_or_default()
            .to_owned();
        let item_id = v
            .get("item_id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let delta = v.get("delta").and_then(Value::as_str).unwrap_or("");
        match kind.as_str() {
            // An empty delta says nothing (the `_` arm).
            "response.output_text.delta" if !delta.is_empty() => {
                self.streamed_text.insert(item_id);
                out.push_back(ChatChunk::Text(delta.to_owned()));
            }
            "response.reasoning_summary_text.delta" | "response.reasoning_text.delta"
                if !delta.is_empty() =>
            {
                // Parts (and items) are separated as `chat` joins them: a blank line.
                let part = (
                    item_id.clone(),
                    v.get("summary_index").and_then(Value::as_u64),
                );
                if self.reasoning_part.as_ref().is_some_and(|p| *p != part) {
                    out.push_back(ChatChunk::Reasoning("\n\n".into()));
                }
                self.reasoning_part = Some(part);
                self.streamed_reasoning.insert(item_id);
                out.push_back(ChatChunk::Reasoning(delta.to_owned()));
            }
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
fn citation_key(url: &str, start_index: Option<u32>) -> String {
    match start_index {
        Some(i) => format!("{i} {url}"),
        None => format!("- {url}"),
    }
}

fn streamed(set: &BTreeSet<String>, id: &str) -> bool {
    set.contains(id) || set.contains("")
}
