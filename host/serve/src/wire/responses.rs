//! `POST /v1/responses`: the Responses API's request mapped onto the WIT's
//! `chat-request`, and the reply (whole, or as `response.*` events) in its shape.

use provider_runtime::bindings::types::{
    ChatChunk, ChatReply, ChatRequest, ContentPart, FunctionTool, Image, JsonSchemaFormat, Lane,
    Message, ReasoningItem, ResponseFormat, Role, ToolCall, ToolChoice, Usage,
};
use serde_json::{Map, Value, json};

use crate::openai;

fn str_of<'a>(o: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    o.get(k).and_then(Value::as_str)
}

/// Fields this endpoint maps or forwards upstream as they are (`user`,
/// `search_parameters`, through `extra-body`).
const MAPPED: &[&str] = &[
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
    "prompt_cache_key",
    "user",
    "search_parameters",
];

/// Fields accepted without effect: they change nothing of the answer here (nothing is
/// stored, whatever `store` says; encrypted reasoning is always asked for, whatever
/// `include` says; no truncation, no service tiers).
const NO_EFFECT: &[&str] = &[
    "store",
    "include",
    "metadata",
    "truncation",
    "service_tier",
    "safety_identifier",
    "prompt_cache_retention",
    "stream_options",
    "top_logprobs",
    "background",
];

/// The request's model, whether it streams, and the WIT request.
pub fn parse(body: &[u8]) -> Result<(String, bool, ChatRequest), String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("request body: {e}"))?;
    let o = v
        .as_object()
        .ok_or("the request body must be a JSON object")?;
    if let Some(k) = o
        .keys()
        .find(|k| !MAPPED.contains(&k.as_str()) && !NO_EFFECT.contains(&k.as_str()))
    {
        return Err(match k.as_str() {
            "previous_response_id" | "conversation" => format!(
                "{k} is not supported: nothing is stored upstream, send the whole conversation"
            ),
            other => format!("unsupported field {other}"),
        });
    }
    // Accepted only where they change nothing.
    if o.get("background").and_then(Value::as_bool) == Some(true) {
        return Err("background: true is not supported: the answer comes on this request".into());
    }
    if o.get("top_logprobs")
        .and_then(Value::as_u64)
        .is_some_and(|n| n > 0)
    {
        return Err("top_logprobs is not supported: replies carry no log probabilities".into());
    }
    if let Some(t) = o.get("truncation").and_then(Value::as_str)
        && !matches!(t, "disabled" | "auto")
    {
        return Err(format!("unknown truncation {t:?}"));
    }
    if let Some(r) = o.get("reasoning").and_then(Value::as_object)
        && let Some(k) = r
            .keys()
            .find(|k| !matches!(k.as_str(), "effort" | "summary" | "generate_summary"))
    {
        return Err(format!("unsupported field reasoning.{k}"));
    }
    if let Some(t) = o.get("text").and_then(Value::as_object)
        && let Some(k) = t.keys().find(|k| k.as_str() != "format")
    {
        return Err(format!("unsupported field text.{k}"));
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
    let mut request = ChatRequest::new(openai::model_id(&model), messages);
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
    let mut extra = Map::new();
    if !server_tools.is_empty() {
        // Server-side tools are served by the Responses lane only (chat-completions
        // refuses them): a request that carries them goes there, whatever its model's lane.
        request.lane = Some(Lane::Responses);
        extra.insert("tools".into(), Value::Array(server_tools));
    }
    for k in ["user", "search_parameters"] {
        if let Some(v) = o.get(k).filter(|v| !v.is_null()) {
            extra.insert(k.into(), v.clone());
        }
    }
    if !extra.is_empty() {
        request.extra_body = Some(Value::Object(extra).to_string());
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
        // Only encrypted reasoning can be used again (nothing is stored upstream); a
        // summary alone (what a chat-lane model's reasoning item carries) is left out.
        // Passed back with the fields upstream made it with, as the plugin kept them.
        "reasoning" => {
            if str_of(o, "encrypted_content").is_some_and(|e| !e.is_empty()) {
                let kept: Map<String, Value> = o
                    .iter()
                    .filter(|(k, _)| {
                        matches!(k.as_str(), "type" | "id" | "summary" | "encrypted_content")
                    })
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                assistant(out).reasoning.push(ReasoningItem {
                    lane: Lane::Responses,
                    data: Value::Object(kept).to_string(),
                });
            }
        }
        "item_reference" => {
            return Err(at(
                "item_reference is not supported: nothing is stored, send the items whole \
                 (with the AI SDK's openai provider: providerOptions.openai.store = false)",
            ));
        }
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

fn summary(text: &str) -> Value {
    if text.is_empty() {
        json!([])
    } else {
        json!([{"type": "summary_text", "text": text}])
    }
}

/// A reasoning output item, complete: `id`, the summary `text` (or, when none was
/// streamed, upstream's own summary) and upstream's `encrypted_content` when the plugin
/// returned the item to pass back.
fn reasoning_output(id: &str, text: &str, upstream: Option<&Value>) -> Value {
    let mut item =
        json!({"type": "reasoning", "id": id, "status": "completed", "summary": summary(text)});
    if let Some(u) = upstream {
        if let Some(e) = u.get("encrypted_content").filter(|e| e.is_string()) {
            item["encrypted_content"] = e.clone();
        }
        if text.is_empty()
            && let Some(s) = u.get("summary").filter(|s| s.is_array())
        {
            item["summary"] = s.clone();
        }
    }
    item
}

/// The JSON of a reasoning item the plugin returned (an object, or nothing).
fn upstream_item(r: &ReasoningItem) -> Option<Value> {
    serde_json::from_str::<Value>(&r.data)
        .ok()
        .filter(Value::is_object)
}

/// Output item ids: `<kind>_<response id's hex>_<output index>`, the same in every event
/// and in the final response.
fn item_id(response: &str, kind: &str, index: usize) -> String {
    let hex = response.strip_prefix("resp_").unwrap_or(response);
    format!("{kind}_{hex}_{index}")
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

fn annotation(c: &provider_runtime::bindings::types::Citation) -> Value {
    json!({"type": "url_citation", "url": c.url, "title": c.title,
           "start_index": c.start_index, "end_index": c.end_index})
}

/// The whole response: reasoning (the items the plugin returned to pass back, or, on the
/// chat-completions lane, which returns none, the visible reasoning as a summary), then
/// the message, then the calls.
pub fn whole(id: &str, created: u64, model: &str, r: &ChatReply) -> Value {
    let mut output: Vec<Value> = Vec::new();
    if r.reasoning_items.is_empty() {
        if let Some(text) = r.reasoning.as_deref().filter(|t| !t.is_empty()) {
            output.push(reasoning_output(&item_id(id, "rs", 0), text, None));
        }
    } else {
        for item in &r.reasoning_items {
            let index = output.len();
            output.push(reasoning_output(
                &item_id(id, "rs", index),
                "",
                upstream_item(item).as_ref(),
            ));
        }
    }
    if !r.content.is_empty() || r.tool_calls.is_empty() {
        let index = output.len();
        output.push(message_item(
            &item_id(id, "msg", index),
            &r.content,
            r.citations.iter().map(annotation).collect(),
            "completed",
        ));
    }
    for c in &r.tool_calls {
        let index = output.len();
        output.push(call_item(&item_id(id, "fc", index), c, "completed"));
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

/// The output item being written while a stream runs.
enum Open {
    None,
    Reasoning { index: usize, text: String },
    Message { index: usize, text: String },
    Call { index: usize, call: ToolCall },
}

/// Turns the plugin's chunks into `response.*` events in the order OpenAI's Responses API
/// sends them: each output item announced (`output_item.added`, at the next output index,
/// with its id), its parts and deltas, its `.done` events, and only then the next item;
/// `response.completed` carries every item as its `.done` event did.
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

    fn item_id(&self, kind: &str, index: usize) -> String {
        item_id(&self.id, kind, index)
    }

    pub fn start(&mut self) -> Vec<(String, Value)> {
        let r = self.envelope("in_progress", None);
        vec![
            self.ev("response.created", json!({"response": r.clone()})),
            self.ev("response.in_progress", json!({"response": r})),
        ]
    }

    /// Announce a new output item; its index.
    fn add(&mut self, item: Value, out: &mut Vec<(String, Value)>) -> usize {
        let index = self.output.len();
        self.output.push(item.clone());
        out.push(self.ev(
            "response.output_item.added",
            json!({"output_index": index, "item": item}),
        ));
        index
    }

    /// Finish output item `index` as `item`.
    fn done(&mut self, index: usize, item: Value, out: &mut Vec<(String, Value)>) {
        self.output[index] = item.clone();
        out.push(self.ev(
            "response.output_item.done",
            json!({"output_index": index, "item": item}),
        ));
    }

    /// Close the open item; `upstream` is the reasoning item the plugin returned for it.
    fn close_with(&mut self, upstream: Option<&Value>, out: &mut Vec<(String, Value)>) {
        match std::mem::replace(&mut self.open, Open::None) {
            Open::None => {}
            Open::Reasoning { index, text } => {
                let item_id = self.item_id("rs", index);
                out.push(self.ev("response.reasoning_summary_text.done", json!({"item_id": item_id, "output_index": index, "summary_index": 0, "text": text})));
                out.push(self.ev("response.reasoning_summary_part.done", json!({"item_id": item_id, "output_index": index, "summary_index": 0, "part": {"type": "summary_text", "text": text}})));
                let item = reasoning_output(&item_id, &text, upstream);
                self.done(index, item, out);
            }
            Open::Message { index, text } => {
                let item_id = self.item_id("msg", index);
                let annotations = std::mem::take(&mut self.annotations);
                let part = json!({"type": "output_text", "text": text, "annotations": annotations});
                out.push(self.ev("response.output_text.done", json!({"item_id": item_id, "output_index": index, "content_index": 0, "text": text})));
                out.push(self.ev("response.content_part.done", json!({"item_id": item_id, "output_index": index, "content_index": 0, "part": part})));
                let item = message_item(&item_id, &text, annotations, "completed");
                self.done(index, item, out);
            }
            Open::Call { index, call } => {
                let item_id = self.item_id("fc", index);
                out.push(self.ev(
                    "response.function_call_arguments.done",
                    json!({"item_id": item_id, "output_index": index, "arguments": call.arguments}),
                ));
                let item = call_item(&item_id, &call, "completed");
                self.done(index, item, out);
            }
        }
    }

    fn close(&mut self, out: &mut Vec<(String, Value)>) {
        self.close_with(None, out);
    }

    /// The events for one chunk.
    pub fn chunk(&mut self, c: &ChatChunk) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        match c {
            ChatChunk::Text(t) => {
                if !matches!(self.open, Open::Message { .. }) {
                    self.close(&mut out);
                    let index = self.output.len();
                    let item_id = self.item_id("msg", index);
                    let index = self.add(
                        json!({"type": "message", "id": item_id, "status": "in_progress", "role": "assistant", "content": []}),
                        &mut out,
                    );
                    out.push(self.ev("response.content_part.added", json!({"item_id": item_id, "output_index": index, "content_index": 0, "part": {"type": "output_text", "text": "", "annotations": []}})));
                    self.open = Open::Message {
                        index,
                        text: String::new(),
                    };
                }
                if let Open::Message { index, text } = &mut self.open {
                    text.push_str(t);
                    let index = *index;
                    let item_id = self.item_id("msg", index);
                    out.push(self.ev("response.output_text.delta", json!({"item_id": item_id, "output_index": index, "content_index": 0, "delta": t})));
                }
            }
            ChatChunk::Reasoning(t) => {
                if !matches!(self.open, Open::Reasoning { .. }) {
                    // The blank line the plugin puts between two reasoning items opens
                    // nothing.
                    if t.trim().is_empty() {
                        return out;
                    }
                    self.close(&mut out);
                    let index = self.output.len();
                    let item_id = self.item_id("rs", index);
                    let index = self.add(
                        json!({"type": "reasoning", "id": item_id, "status": "in_progress", "summary": []}),
                        &mut out,
                    );
                    out.push(self.ev("response.reasoning_summary_part.added", json!({"item_id": item_id, "output_index": index, "summary_index": 0, "part": {"type": "summary_text", "text": ""}})));
                    self.open = Open::Reasoning {
                        index,
                        text: String::new(),
                    };
                }
                if let Open::Reasoning { index, text } = &mut self.open {
                    text.push_str(t);
                    let index = *index;
                    let item_id = self.item_id("rs", index);
                    out.push(self.ev("response.reasoning_summary_text.delta", json!({"item_id": item_id, "output_index": index, "summary_index": 0, "delta": t})));
                }
            }
            // The item to pass back (its encrypted content) ends the reasoning it belongs
            // to; without streamed reasoning before it, it is an item of its own.
            ChatChunk::ReasoningItem(r) => {
                let upstream = upstream_item(r);
                if !matches!(self.open, Open::Reasoning { .. }) {
                    self.close(&mut out);
                    let index = self.output.len();
                    let item_id = self.item_id("rs", index);
                    self.add(
                        json!({"type": "reasoning", "id": item_id, "status": "in_progress", "summary": []}),
                        &mut out,
                    );
                    let item = reasoning_output(&item_id, "", upstream.as_ref());
                    self.done(index, item, &mut out);
                } else {
                    self.close_with(upstream.as_ref(), &mut out);
                }
            }
            ChatChunk::ToolCallStart(s) => {
                self.close(&mut out);
                let index = self.output.len();
                let call = ToolCall {
                    id: s.id.clone(),
                    name: s.name.clone(),
                    arguments: String::new(),
                };
                let item = call_item(&self.item_id("fc", index), &call, "in_progress");
                self.add(item, &mut out);
                self.open = Open::Call { index, call };
            }
            ChatChunk::ToolCallArguments(d) => {
                if let Open::Call { index, call } = &mut self.open {
                    call.arguments.push_str(&d.arguments);
                    let index = *index;
                    let item_id = self.item_id("fc", index);
                    out.push(self.ev(
                        "response.function_call_arguments.delta",
                        json!({"item_id": item_id, "output_index": index, "delta": d.arguments}),
                    ));
                }
            }
            ChatChunk::Citation(c) => {
                let a = annotation(c);
                if let Open::Message { index, .. } = self.open {
                    let item_id = self.item_id("msg", index);
                    out.push(self.ev("response.output_text.annotation.added", json!({"item_id": item_id, "output_index": index, "content_index": 0, "annotation_index": self.annotations.len(), "annotation": a.clone()})));
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

#[cfg(test)]
mod tests {
    use super::*;
    use provider_runtime::bindings::types::{FinishReason, ToolCallDelta, ToolCallStart};

    fn events(chunks: &[ChatChunk]) -> Vec<Value> {
        let mut w = EventWriter::new("resp_1".into(), 0, "m".into());
        let mut out = w.start();
        for c in chunks {
            out.extend(w.chunk(c));
        }
        out.extend(w.finish());
        out.into_iter().map(|(_, v)| v).collect()
    }

    /// Reasoning, then text, then a call: each item announced at its own index before its
    /// deltas, with one id from `added` to `completed`, as OpenAI's Responses API streams.
    #[test]
    fn a_stream_with_reasoning_follows_openais_event_order() {
        let evs = events(&[
            ChatChunk::Reasoning("think".into()),
            ChatChunk::Reasoning("ing".into()),
            ChatChunk::ReasoningItem(ReasoningItem {
                lane: Lane::Responses,
                data: r#"{"type":"reasoning","id":"up","encrypted_content":"enc_1","summary":[]}"#
                    .into(),
            }),
            ChatChunk::Reasoning("\n\n".into()),
            ChatChunk::Text("hi".into()),
            ChatChunk::ToolCallStart(ToolCallStart {
                index: 0,
                id: "call".into(),
                name: "f".into(),
            }),
            ChatChunk::ToolCallArguments(ToolCallDelta {
                index: 0,
                arguments: "{}".into(),
            }),
            ChatChunk::Finish(FinishReason::ToolCalls),
        ]);
        let kinds: Vec<&str> = evs.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.reasoning_summary_part.added",
                "response.reasoning_summary_text.delta",
                "response.reasoning_summary_text.delta",
                "response.reasoning_summary_text.done",
                "response.reasoning_summary_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        // One id per output index, in every event that names the item.
        for e in &evs {
            let (Some(index), Some(id)) = (
                e["output_index"].as_u64(),
                e["item_id"].as_str().or(e["item"]["id"].as_str()),
            ) else {
                continue;
            };
            let kind = ["rs", "msg", "fc"][index as usize];
            assert_eq!(id, format!("{kind}_1_{index}"), "{e}");
        }
        let added = &evs[2]["item"];
        assert_eq!(added["status"], "in_progress");
        assert_eq!(added["summary"], json!([]));
        let done = &evs[8]["item"];
        assert_eq!(done["status"], "completed");
        assert_eq!(done["encrypted_content"], "enc_1");
        assert_eq!(done["summary"][0]["text"], "thinking");
        let completed = &evs.last().unwrap()["response"];
        assert_eq!(completed["output"].as_array().unwrap().len(), 3);
        assert_eq!(completed["output"][0], *done);
        assert_eq!(completed["output"][2]["arguments"], "{}");
        let seqs: Vec<u64> = evs
            .iter()
            .map(|e| e["sequence_number"].as_u64().unwrap())
            .collect();
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1));
    }

    #[test]
    fn a_whole_reply_of_a_chat_lane_reasoning_model_has_its_reasoning_item() {
        let reply = ChatReply {
            content: "answer".into(),
            tool_calls: vec![],
            reasoning: Some("because".into()),
            reasoning_items: vec![],
            citations: vec![],
            model: "m".into(),
            route: "r".into(),
            lane: Lane::ChatCompletions,
            usage: None,
            finish_reason: None,
        };
        let v = whole("resp_1", 0, "m", &reply);
        assert_eq!(v["output"][0]["type"], "reasoning");
        assert_eq!(v["output"][0]["status"], "completed");
        assert_eq!(v["output"][0]["summary"][0]["text"], "because");
        assert_eq!(v["output"][1]["id"], "msg_1_1");
    }

    fn request(body: Value) -> Result<ChatRequest, String> {
        parse(body.to_string().as_bytes()).map(|(_, _, r)| r)
    }

    #[test]
    fn optional_fields_are_forwarded_accepted_or_refused_by_name() {
        let r = request(json!({"model": "p--m", "input": "x", "store": true, "metadata": {"a": "b"},
            "include": ["reasoning.encrypted_content"], "truncation": "disabled", "service_tier": "auto",
            "user": "u", "parallel_tool_calls": true, "reasoning": {"effort": "low", "summary": "auto"}}))
        .unwrap();
        assert_eq!(r.model, "p/m");
        assert_eq!(r.extra_body.as_deref(), Some(r#"{"user":"u"}"#));
        assert!(r.lane.is_none());
        for (body, named) in [
            (
                json!({"model": "m", "input": "x", "previous_response_id": "r"}),
                "previous_response_id",
            ),
            (
                json!({"model": "m", "input": "x", "background": true}),
                "background",
            ),
            (
                json!({"model": "m", "input": "x", "top_logprobs": 3}),
                "top_logprobs",
            ),
            (
                json!({"model": "m", "input": "x", "text": {"verbosity": "low"}}),
                "verbosity",
            ),
            (
                json!({"model": "m", "input": [{"type": "item_reference", "id": "i"}]}),
                "item_reference",
            ),
            (
                json!({"model": "m", "input": "x", "max_tool_calls": 2}),
                "max_tool_calls",
            ),
        ] {
            let e = request(body.clone()).unwrap_err();
            assert!(e.contains(named), "{body}: {e}");
        }
    }

    #[test]
    fn server_side_tools_go_to_the_responses_lane() {
        let r = request(json!({"model": "m", "input": "x", "tools": [
            {"type": "web_search"}, {"type": "function", "name": "f"}]}))
        .unwrap();
        assert!(matches!(r.lane, Some(Lane::Responses)));
        assert_eq!(r.tools.len(), 1);
        assert_eq!(
            r.extra_body.as_deref(),
            Some(r#"{"tools":[{"type":"web_search"}]}"#)
        );
    }

    #[test]
    fn only_encrypted_reasoning_is_passed_back() {
        let r = request(json!({"model": "m", "input": [
            {"role": "user", "content": "q"},
            {"type": "reasoning", "id": "rs_1_0", "status": "completed", "summary": []},
            {"type": "reasoning", "id": "rs_2_0", "status": "completed", "summary": [], "encrypted_content": "e"},
            {"role": "assistant", "content": "a"},
        ]}))
        .unwrap();
        let passed: Vec<&ReasoningItem> = r.messages.iter().flat_map(|m| &m.reasoning).collect();
        assert_eq!(passed.len(), 1);
        let v: Value = serde_json::from_str(&passed[0].data).unwrap();
        assert_eq!(
            v,
            json!({"type": "reasoning", "id": "rs_2_0", "summary": [], "encrypted_content": "e"})
        );
    }
}
