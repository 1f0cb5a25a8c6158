//! `POST /v1/responses`: the Responses API's request mapped onto the WIT's
//! `chat-request`, and the reply (whole, or as `response.*` events) in its shape.

use provider_runtime::bindings::types::{
    ChatChunk, ChatReply, ChatRequest, ContentPart, FunctionTool, Image, JsonSchemaFormat, Lane,
    Message, ReasoningItem, ResponseFormat, Role, ToolCall, ToolChoice, Usage,
};
use serde_json::{Map, Value, json};

use crate::cli::openai;

fn str_of<'a>(o: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    o.get(k).and_then(Value::as_str)
}

/// Fields this endpoint maps; any other is refused by name.
const KNOWN: &[&str] = &[
    "model",
    "input",
    "instructions",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "text",
    "reasoning",
    "max_output_tokens",
    "temperature",
    "top_p",
    "stream",
    "store",
    "include",
    "prompt_cache_key",
];

/// The request's model, whether it streams, and the WIT request.
pub fn parse(body: &[u8]) -> Result<(String, bool, ChatRequest), String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("request body: {e}"))?;
    let o = v
        .as_object()
        .ok_or("the request body must be a JSON object")?;
    if let Some(k) = o.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(match k.as_str() {
            "previous_response_id" => "previous_response_id is not supported: nothing is stored upstream, send the whole conversation".into(),
            other => format!("unsupported field {other}"),
        });
    }
    if o.get("store").and_then(Value::as_bool) == Some(true) {
        return Err("store: true is not supported: responses are not kept".into());
    }
    let model = str_of(o, "model").ok_or("model is required")?.to_owned();
    let mut messages = Vec::new();
    if let Some(i) = str_of(o, "instructions") {
        messages.push(Message::text(Role::System, i));
    }
    match o.get("input") {
        Some(Value::String(s)) => messages.push(Message::text(Role::User, s.clone())),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                input_item(i, item, &mut messages)?;
            }
        }
        _ => return Err("input must be a string or an array of items".into()),
    }
    let mut tools = Vec::new();
    let mut server_tools = Vec::new();
    for t in o
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let t = t.as_object().ok_or("a tool must be an object")?;
        match str_of(t, "type") {
            Some("function") => tools.push(FunctionTool {
                name: str_of(t, "name")
                    .ok_or("a function tool needs a name")?
                    .to_owned(),
                description: str_of(t, "description").map(str::to_owned),
                parameters: t.get("parameters").map(Value::to_string),
                strict: t.get("strict").and_then(Value::as_bool),
            }),
            // Server-side tools (web_search, x_search, ...) pass through as they are.
            Some(_) => server_tools.push(Value::Object(t.clone())),
            None => return Err("a tool needs a type".into()),
        }
    }
    let tool_choice = match o.get("tool_choice") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(match s.as_str() {
            "auto" => ToolChoice::Auto,
            "none" => ToolChoice::None,
            "required" => ToolChoice::Required,
            other => return Err(format!("unknown tool_choice {other:?}")),
        }),
        Some(Value::Object(c)) if str_of(c, "type") == Some("function") => {
            Some(ToolChoice::Function(
                str_of(c, "name")
                    .ok_or("tool_choice function needs a name")?
                    .to_owned(),
            ))
        }
        Some(_) => return Err("unsupported tool_choice".into()),
    };
    let response_format = match o.get("text").and_then(|t| t.get("format")) {
        None => None,
        Some(f) => Some(match f.get("type").and_then(Value::as_str) {
            Some("text") => ResponseFormat::Text,
            Some("json_object") => ResponseFormat::JsonObject,
            Some("json_schema") => ResponseFormat::JsonSchema(JsonSchemaFormat {
                name: f
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or("text.format json_schema needs a name")?
                    .to_owned(),
                schema: f
                    .get("schema")
                    .ok_or("text.format json_schema needs a schema")?
                    .to_string(),
                description: f
                    .get("description")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                strict: f.get("strict").and_then(Value::as_bool),
            }),
            _ => return Err("unsupported text.format".into()),
        }),
    };
    let thinking = o
        .get("reasoning")
        .and_then(|r| r.get("effort"))
        .and_then(Value::as_str)
        .map(openai::effort)
        .transpose()?;
    let num = |k: &str| o.get(k).and_then(Value::as_f64).map(|f| f as f32);
    let mut request = ChatRequest::new(model.clone(), messages);
    request.tools = tools;
    request.tool_choice = tool_choice;
    request.parallel_tool_calls = o.get("parallel_tool_calls").and_then(Value::as_bool);
    request.response_format = response_format;
    request.thinking = thinking;
    request.max_output_tokens = o
        .get("max_output_tokens")
        .and_then(Value::as_u64)
        .map(|n| u32::try_from(n).unwrap_or(u32::MAX));
    request.temperature = num("temperature");
    request.top_p = num("top_p");
    request.prompt_cache_key = str_of(o, "prompt_cache_key").map(str::to_owned);
    if !server_tools.is_empty() {
        request.extra_body = Some(json!({"tools": server_tools}).to_string());
    }
    Ok((
        model,
        o.get("stream").and_then(Value::as_bool) == Some(true),
        request,
    ))
}

fn image(part: &Map<String, Value>) -> Result<ContentPart, String> {
    let url = str_of(part, "image_url").ok_or("input_image needs image_url")?;
    Ok(ContentPart::Image(Image {
        source: openai::image_source(url)?,
        detail: str_of(part, "detail").map(openai::detail).transpose()?,
    }))
}

fn input_item(i: usize, item: &Value, out: &mut Vec<Message>) -> Result<(), String> {
    let at = |m: &str| format!("input[{i}]: {m}");
    let o = item
        .as_object()
        .ok_or_else(|| at("an item must be an object"))?;
    let kind = str_of(o, "type").unwrap_or("message");
    match kind {
        "message" => {
            let role = match str_of(o, "role") {
                Some("user") => Role::User,
                Some("assistant") => Role::Assistant,
                Some("system" | "developer") => Role::System,
                other => return Err(at(&format!("unknown role {other:?}"))),
            };
            let content = match o.get("content") {
                Some(Value::String(s)) => vec![ContentPart::Text(s.clone())],
                Some(Value::Array(parts)) => parts
                    .iter()
                    .map(|p| {
                        let p = p
                            .as_object()
                            .ok_or_else(|| at("a content part must be an object"))?;
                        match str_of(p, "type") {
                            Some("input_text" | "output_text" | "text") => Ok(ContentPart::Text(
                                str_of(p, "text")
                                    .ok_or_else(|| at("a text part needs text"))?
                                    .to_owned(),
                            )),
                            Some("input_image") => image(p).map_err(|e| at(&e)),
                            other => Err(at(&format!("unsupported content part {other:?}"))),
                        }
                    })
                    .collect::<Result<_, _>>()?,
                _ => return Err(at("content must be a string or an array of parts")),
            };
            let mut m = Message::text(role, "");
            m.content = content;
            out.push(m);
        }
        "function_call" => {
            let call = ToolCall {
                id: str_of(o, "call_id")
                    .ok_or_else(|| at("function_call needs call_id"))?
                    .to_owned(),
                name: str_of(o, "name")
                    .ok_or_else(|| at("function_call needs name"))?
                    .to_owned(),
                arguments: str_of(o, "arguments").unwrap_or("").to_owned(),
            };
            assistant(out).tool_calls.push(call);
        }
        "function_call_output" => {
            let mut m = Message::text(
                Role::Tool,
                match o.get("output") {
                    Some(Value::String(s)) => s.clone(),
                    Some(other) => other.to_string(),
                    None => return Err(at("function_call_output needs output")),
                },
            );
            m.tool_call_id = Some(
                str_of(o, "call_id")
                    .ok_or_else(|| at("function_call_output needs call_id"))?
                    .to_owned(),
            );
            out.push(m);
        }
        "reasoning" => assistant(out).reasoning.push(ReasoningItem {
            lane: Lane::Responses,
            data: item.to_string(),
        }),
        other => return Err(at(&format!("unsupported item type {other:?}"))),
    }
    Ok(())
}

/// The assistant turn the next call or reasoning item belongs to (a new one when the
/// last message is not the assistant's).
fn assistant(out: &mut Vec<Message>) -> &mut Message {
    if out.last().is_none_or(|m| m.role != Role::Assistant) {
        let mut m = Message::text(Role::Assistant, "");
        m.content.clear();
        out.push(m);
    }
    out.last_mut().expect("pushed above")
}

pub fn usage(u: &Usage) -> Value {
    json!({
        "input_tokens": u.input_tokens,
        "output_tokens": u.output_tokens,
        "total_tokens": u.total_tokens,
        "input_tokens_details": {"cached_tokens": u.cached_input_tokens.unwrap_or(0)},
        "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens.unwrap_or(0)},
    })
}

fn message_item(id: &str, text: &str, annotations: Vec<Value>, status: &str) -> Value {
    json!({"type": "message", "id": id, "status": status, "role": "assistant",
           "content": [{"type": "output_text", "text": text, "annotations": annotations}]})
}

fn call_item(id: &str, c: &ToolCall, status: &str) -> Value {
    json!({"type": "function_call", "id": id, "call_id": c.id, "name": c.name,
           "arguments": c.arguments, "status": status})
}

fn reasoning_item(r: &ReasoningItem, n: usize) -> Value {
    serde_json::from_str::<Value>(&r.data)
        .ok()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({"type": "reasoning", "id": format!("rs_{n}"), "summary": []}))
}

fn envelope(
    id: &str,
    created: u64,
    model: &str,
    status: &str,
    output: Vec<Value>,
    usage: Option<&Usage>,
    incomplete: Option<&str>,
) -> Value {
    json!({
        "id": id, "object": "response", "created_at": created, "status": status, "model": model,
        "output": output, "usage": usage.map(self::usage),
        "incomplete_details": incomplete.map(|r| json!({"reason": r})),
        "parallel_tool_calls": true, "tool_choice": "auto", "tools": [], "error": null,
    })
}

fn status_of(
    reply_finish: Option<&provider_runtime::bindings::types::FinishReason>,
) -> (&'static str, Option<&'static str>) {
    use provider_runtime::bindings::types::FinishReason as F;
    match reply_finish {
        Some(F::Length) => ("incomplete", Some("max_output_tokens")),
        Some(F::ContentFilter) => ("incomplete", Some("content_filter")),
        _ => ("completed", None),
    }
}

pub fn whole(id: &str, created: u64, model: &str, r: &ChatReply) -> Value {
    let mut output: Vec<Value> = r
        .reasoning_items
        .iter()
        .enumerate()
        .map(|(n, i)| reasoning_item(i, n))
        .collect();
    if !r.content.is_empty() || r.tool_calls.is_empty() {
        let annotations = r
            .citations
            .iter()
            .map(|c| {
                json!({"type": "url_citation", "url": c.url, "title": c.title,
                            "start_index": c.start_index, "end_index": c.end_index})
            })
            .collect();
        output.push(message_item(
            &format!("msg_{id}"),
            &r.content,
            annotations,
            "completed",
        ));
    }
    for (n, c) in r.tool_calls.iter().enumerate() {
        output.push(call_item(&format!("fc_{id}_{n}"), c, "completed"));
    }
    let (status, incomplete) = status_of(r.finish_reason.as_ref());
    // Name the model as the caller asked for it when the reply did not say.
    let model = if r.model.is_empty() {
        model
    } else {
        r.model.as_str()
    };
    envelope(
        id,
        created,
        model,
        status,
        output,
        r.usage.as_ref(),
        incomplete,
    )
}

/// What is open while a stream is being written.
enum Open {
    None,
    Message { index: usize, text: String },
    Call { index: usize, call: ToolCall },
}

/// Turns the plugin's chunks into `response.*` events.
pub struct EventWriter {
    id: String,
    created: u64,
    model: String,
    seq: u64,
    output: Vec<Value>,
    open: Open,
    annotations: Vec<Value>,
    usage: Option<Usage>,
    finish: Option<provider_runtime::bindings::types::FinishReason>,
}

impl EventWriter {
    pub fn new(id: String, created: u64, model: String) -> Self {
        Self {
            id,
            created,
            model,
            seq: 0,
            output: Vec::new(),
            open: Open::None,
            annotations: Vec::new(),
            usage: None,
            finish: None,
        }
    }

    fn ev(&mut self, kind: &str, mut body: Value) -> (String, Value) {
        body["type"] = json!(kind);
        body["sequence_number"] = json!(self.seq);
        self.seq += 1;
        (kind.to_owned(), body)
    }

    fn envelope(&self, status: &str, incomplete: Option<&str>) -> Value {
        envelope(
            &self.id,
            self.created,
            &self.model,
            status,
            self.output.clone(),
            self.usage.as_ref(),
            incomplete,
        )
    }

    pub fn start(&mut self) -> Vec<(String, Value)> {
        let r = self.envelope("in_progress", None);
        vec![
            self.ev("response.created", json!({"response": r.clone()})),
            self.ev("response.in_progress", json!({"response": r})),
        ]
    }

    fn close(&mut self, out: &mut Vec<(String, Value)>) {
        match std::mem::replace(&mut self.open, Open::None) {
            Open::None => {}
            Open::Message { index, text } => {
                let item_id = format!("msg_{}", self.id);
                let annotations = std::mem::take(&mut self.annotations);
                let part = json!({"type": "output_text", "text": text, "annotations": annotations});
                out.push(self.ev("response.output_text.done", json!({"item_id": item_id, "output_index": index, "content_index": 0, "text": text})));
                out.push(self.ev("response.content_part.done", json!({"item_id": item_id, "output_index": index, "content_index": 0, "part": part})));
                let item = message_item(
                    &item_id,
                    &text,
                    part["annotations"].as_array().cloned().unwrap_or_default(),
                    "completed",
                );
                self.output[index] = item.clone();
                out.push(self.ev(
                    "response.output_item.done",
                    json!({"output_index": index, "item": item}),
                ));
            }
            Open::Call { index, call } => {
                let item_id = format!("fc_{}_{index}", self.id);
                out.push(self.ev(
                    "response.function_call_arguments.done",
                    json!({"item_id": item_id, "output_index": index, "arguments": call.arguments}),
                ));
                let item = call_item(&item_id, &call, "completed");
                self.output[index] = item.clone();
                out.push(self.ev(
                    "response.output_item.done",
                    json!({"output_index": index, "item": item}),
                ));
            }
        }
    }

    /// The events for one chunk.
    pub fn chunk(&mut self, c: &ChatChunk) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        match c {
            ChatChunk::Text(t) => {
                if !matches!(self.open, Open::Message { .. }) {
                    self.close(&mut out);
                    let index = self.output.len();
                    let item_id = format!("msg_{}", self.id);
                    let item = message_item(&item_id, "", Vec::new(), "in_progress");
                    self.output.push(item.clone());
                    out.push(self.ev("response.output_item.added", json!({"output_index": index, "item": {"type": "message", "id": item_id, "status": "in_progress", "role": "assistant", "content": []}})));
                    out.push(self.ev("response.content_part.added", json!({"item_id": item_id, "output_index": index, "content_index": 0, "part": {"type": "output_text", "text": "", "annotations": []}})));
                    self.open = Open::Message {
                        index,
                        text: String::new(),
                    };
                }
                if let Open::Message { index, text } = &mut self.open {
                    text.push_str(t);
                    let index = *index;
                    out.push(self.ev("response.output_text.delta", json!({"item_id": format!("msg_{}", self.id), "output_index": index, "content_index": 0, "delta": t})));
                }
            }
            ChatChunk::Reasoning(t) => {
                out.push(self.ev("response.reasoning_summary_text.delta", json!({"item_id": format!("rs_{}", self.id), "output_index": self.output.len(), "summary_index": 0, "delta": t})));
            }
            ChatChunk::ReasoningItem(r) => {
                self.close(&mut out);
                let index = self.output.len();
                let item = reasoning_item(r, index);
                self.output.push(item.clone());
                out.push(self.ev(
                    "response.output_item.added",
                    json!({"output_index": index, "item": item.clone()}),
                ));
                out.push(self.ev(
                    "response.output_item.done",
                    json!({"output_index": index, "item": item}),
                ));
            }
            ChatChunk::ToolCallStart(s) => {
                self.close(&mut out);
                let index = self.output.len();
                let call = ToolCall {
                    id: s.id.clone(),
                    name: s.name.clone(),
                    arguments: String::new(),
                };
                let item_id = format!("fc_{}_{index}", self.id);
                let item = call_item(&item_id, &call, "in_progress");
                self.output.push(item.clone());
                out.push(self.ev(
                    "response.output_item.added",
                    json!({"output_index": index, "item": item}),
                ));
                self.open = Open::Call { index, call };
            }
            ChatChunk::ToolCallArguments(d) => {
                if let Open::Call { index, call } = &mut self.open {
                    call.arguments.push_str(&d.arguments);
                    let index = *index;
                    out.push(self.ev("response.function_call_arguments.delta", json!({"item_id": format!("fc_{}_{index}", self.id), "output_index": index, "delta": d.arguments})));
                }
            }
            ChatChunk::Citation(c) => {
                let a = json!({"type": "url_citation", "url": c.url, "title": c.title, "start_index": c.start_index, "end_index": c.end_index});
                if let Open::Message { index, .. } = self.open {
                    out.push(self.ev("response.output_text.annotation.added", json!({"item_id": format!("msg_{}", self.id), "output_index": index, "content_index": 0, "annotation_index": self.annotations.len(), "annotation": a.clone()})));
                }
                self.annotations.push(a);
            }
            ChatChunk::Usage(u) => self.usage = Some(*u),
            ChatChunk::Finish(f) => self.finish = Some(f.clone()),
        }
        out
    }

    /// The closing events after the plugin's stream ended.
    pub fn finish(&mut self) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        self.close(&mut out);
        let (status, incomplete) = status_of(self.finish.as_ref());
        let r = self.envelope(status, incomplete);
        let kind = if status == "completed" {
            "response.completed"
        } else {
            "response.incomplete"
        };
        out.push(self.ev(kind, json!({"response": r})));
        out
    }

    /// An `error` event for a failure mid-stream.
    pub fn error(&mut self, code: &str, message: &str) -> (String, Value) {
        self.ev(
            "error",
            json!({"code": code, "message": message, "param": null}),
        )
    }
}
