//! The chat-completions lane (OpenAI's shape, as xAI serves it): request body, complete
//! reply and stream events.
//!
//! Tool calls stream in two ways that both assemble here: xAI sends each call whole in
//! one chunk (id, name and all the arguments); OpenAI-style servers send the id and name
//! first and the arguments over many chunks, merged by `index`.

use std::collections::{BTreeSet, VecDeque};

use serde::Serialize;
use serde_json::{Map, Number, Value};

use super::{
    FunctionFields, SchemaFields, WireToolChoice, decimal, effort, function_tools,
    response_failure, schema_fields, takes_reasoning_effort,
};
use crate::error::ProviderError;
use crate::json::{as_u64, written};
use crate::routes::Route;
use crate::types::{
    ChatChunk, ChatReply, ChatRequest, Citation, ContentPart, FinishReason, ImageDetail,
    ImageSource, Lane, Message, ResponseFormat, Role, ToolCall, Usage,
};

use super::chunk_event::ChunkEvent;
use super::usage::chat_completions_usage;

#[derive(Serialize)]
struct Body<'a> {
    model: &'a str,
    messages: Vec<WireMessage<'a>>,
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<Number>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<Number>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_effort: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<WireTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<WireToolChoice<NamedFunction<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parallel_tool_calls: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<WireResponseFormat<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    stop: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<i64>,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Serialize)]
struct WireMessage<'a> {
    role: &'static str,
    content: WireContent<'a>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<WireToolCall<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<&'a str>,
}

/// A message's content: a string, an array of parts (user messages with images), or
/// null (an assistant turn that is only tool calls).
#[derive(Serialize)]
#[serde(untagged)]
enum WireContent<'a> {
    Text(String),
    Parts(Vec<WirePart<'a>>),
    Null,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WirePart<'a> {
    Text { text: &'a str },
    ImageUrl { image_url: WireImageUrl },
}

#[derive(Serialize)]
struct WireImageUrl {
    url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'static str>,
}

#[derive(Serialize)]
struct WireToolCall<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: WireFunction<'a>,
}

#[derive(Serialize)]
struct WireFunction<'a> {
    name: &'a str,
    arguments: &'a str,
}

/// `{type: "function", function: {name, description, parameters, strict}}`.
#[derive(Serialize)]
struct WireTool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: FunctionFields<'a>,
}

/// How a tool choice names its function here: `{"function": {"name": ...}}`.
#[derive(Serialize)]
struct NamedFunction<'a> {
    function: FunctionName<'a>,
}

#[derive(Serialize)]
struct FunctionName<'a> {
    name: &'a str,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireResponseFormat<'a> {
    Text,
    JsonObject,
    JsonSchema { json_schema: SchemaFields<'a> },
}

pub(crate) fn role(r: Role) -> &'static str {
    match r {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    }
}

pub(crate) fn detail(d: ImageDetail) -> &'static str {
    match d {
        ImageDetail::Auto => "auto",
        ImageDetail::Low => "low",
        ImageDetail::High => "high",
    }
}

/// An image as a URL upstream accepts: the https URL, or a `data:` URL.
pub(crate) fn image_url(source: &ImageSource) -> String {
    match source {
        ImageSource::Url(u) => u.clone(),
        ImageSource::Data { media_type, base64 } => format!("data:{media_type};base64,{base64}"),
    }
}

fn content(m: &Message) -> WireContent<'_> {
    let has_image = m.content.iter().any(|p| matches!(p, ContentPart::Image(_)));
    if has_image {
        let parts = m
            .content
            .iter()
            .map(|p| match p {
                ContentPart::Text(text) => WirePart::Text { text },
                ContentPart::Image(i) => WirePart::ImageUrl {
                    image_url: WireImageUrl {
                        url: image_url(&i.source),
                        detail: i.detail.map(detail),
                    },
                },
            })
            .collect();
        return WireContent::Parts(parts);
    }
    let text = m.text_content();
    if text.is_empty() && m.role == Role::Assistant && !m.tool_calls.is_empty() {
        WireContent::Null
    } else {
        WireContent::Text(text)
    }
}

fn message(m: &Message) -> WireMessage<'_> {
    WireMessage {
        role: role(m.role),
        content: content(m),
        tool_calls: m
            .tool_calls
            .iter()
            .map(|c| WireToolCall {
                id: &c.id,
                kind: "function",
                function: WireFunction {
                    name: &c.name,
                    arguments: &c.arguments,
                },
            })
            .collect(),
        tool_call_id: m.tool_call_id.as_deref(),
    }
}

fn response_format(f: &ResponseFormat) -> Result<WireResponseFormat<'_>, ProviderError> {
    Ok(match f {
        ResponseFormat::Text => WireResponseFormat::Text,
        ResponseFormat::JsonObject => WireResponseFormat::JsonObject,
        ResponseFormat::JsonSchema(s) => WireResponseFormat::JsonSchema {
            json_schema: schema_fields(s)?,
        },
    })
}

/// The request body (reasoning items of other lanes have no place here and are left out).
pub(crate) fn body(model: &str, req: &ChatRequest, stream: bool) -> Result<Vec<u8>, ProviderError> {
    let body = Body {
        model,
        messages: req.messages.iter().map(message).collect(),
        stream,
        stream_options: stream.then_some(StreamOptions {
            include_usage: true,
        }),
        max_tokens: req.max_output_tokens,
        temperature: req.temperature.and_then(decimal),
        top_p: req.top_p.and_then(decimal),
        reasoning_effort: req
            .thinking
            .filter(|_| takes_reasoning_effort(model))
            .map(effort),
        tools: function_tools(req, |function| WireTool {
            kind: "function",
            function,
        })?,
        tool_choice: req.tool_choice.as_ref().map(|c| {
            WireToolChoice::of(c, |name| NamedFunction {
                function: FunctionName { name },
            })
        }),
        parallel_tool_calls: req.parallel_tool_calls,
        response_format: req
            .response_format
            .as_ref()
            .map(response_format)
            .transpose()?,
        stop: req.stop.iter().map(String::as_str).collect(),
        seed: req.seed,
    };
    Ok(written(serde_json::to_vec(&body)))
}

#[cfg(test)]
fn text_field(v: Option<&Value>, what: &str) -> Result<Option<String>, ProviderError> {
    match v {
        Some(Value::String(s)) => Ok(Some(s.clone())),
        None | Some(Value::Null) => Ok(None),
        Some(_) => Err(ProviderError::InvalidResponse(format!(
            "chat completion {what} is not text"
        ))),
    }
}

/// Citations: xAI's top-level `citations` (URLs) and OpenAI's `url_citation` annotations.
fn citations(top: Option<&Value>, annotations: Option<&Value>) -> Vec<Citation> {
    let mut out = Vec::new();
    for c in top.and_then(Value::as_array).into_iter().flatten() {
        match c {
            Value::String(url) => out.push(Citation {
                url: url.clone(),
                title: None,
                start_index: None,
                end_index: None,
            }),
            obj => out.extend(super::responses::citation(obj)),
        }
    }
    for a in annotations.and_then(Value::as_array).into_iter().flatten() {
        let inner = a.get("url_citation").unwrap_or(a);
        out.extend(super::responses::citation(inner));
    }
    out
}

/// A call's `function.arguments` as text. Some servers send the arguments as an object:
/// its JSON text is kept.
fn arguments_text(function: &Value) -> String {
    match function.get("arguments") {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => String::new(),
        // Written as every body is (not through `Display`, a second JSON writer).
        Some(other) => serde_json::to_string(other).unwrap_or_default(),
    }
}

fn tool_call(v: &Value) -> Result<ToolCall, ProviderError> {
    let f = v.get("function").unwrap_or(&Value::Null);
    let field = |obj: &Value, k: &str| obj.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let call = ToolCall {
        id: field(v, "id"),
        name: field(f, "name"),
        arguments: arguments_text(f),
    };
    if call.id.is_empty() || call.name.is_empty() {
        return Err(ProviderError::InvalidResponse(
            "chat completion tool call without id or name".into(),
        ));
    }
    Ok(call)
}

/// A whole reply read from a `Value`, as before the typed view of [`parse_reply_body`]:
/// kept as the oracle the view is tested against.
#[cfg(test)]
pub(crate) fn parse_reply(
    v: &Value,
    model: String,
    route: Route,
) -> Result<ChatReply, ProviderError> {
    let choice = v
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|c| c.first())
        .ok_or_else(|| ProviderError::InvalidResponse("chat completion without choices".into()))?;
    let message = choice
        .get("message")
        .filter(|m| m.is_object())
        .ok_or_else(|| {
            ProviderError::InvalidResponse("chat completion choice without message".into())
        })?;
    let tool_calls = message
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(tool_call)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ChatReply {
        content: text_field(message.get("content"), "content")?.unwrap_or_default(),
        tool_calls,
        reasoning: text_field(message.get("reasoning_content"), "reasoning")?
            .filter(|s| !s.is_empty()),
        reasoning_items: Vec::new(),
        citations: citations(v.get("citations"), message.get("annotations")),
        model,
        lane: Lane::ChatCompletions,
        route: route.name().to_owned(),
        usage: v.get("usage").and_then(chat_completions_usage),
        finish_reason: choice
            .get("finish_reason")
            .and_then(Value::as_str)
            .map(FinishReason::from_upstream),
    })
}

/// A whole reply read from its body through the typed view (see `chunk_event`): the same
/// answer and the same errors as the `Value` reading it replaced (kept as the tests' oracle),
/// without building a `Value` of the whole reply. `None` when the body is not JSON.
pub(crate) fn parse_reply_body(
    body: &[u8],
    model: impl FnOnce(Option<&str>) -> String,
    route: Route,
) -> Option<Result<ChatReply, ProviderError>> {
    let event = ChunkEvent::parse_bytes(body)?;
    Some(reply_of(&event, model(event.model.as_deref()), route))
}

fn reply_of(e: &ChunkEvent<'_>, model: String, route: Route) -> Result<ChatReply, ProviderError> {
    let choice = e
        .choice
        .as_ref()
        .ok_or_else(|| ProviderError::InvalidResponse("chat completion without choices".into()))?;
    let message = choice.message.as_ref().ok_or_else(|| {
        ProviderError::InvalidResponse("chat completion choice without message".into())
    })?;
    let tool_calls = message
        .tool_calls
        .as_ref()
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(tool_call)
        .collect::<Result<Vec<_>, _>>()?;
    let not_text =
        |what: &str| ProviderError::InvalidResponse(format!("chat completion {what} is not text"));
    if message.content_not_text {
        return Err(not_text("content"));
    }
    if message.reasoning_not_text {
        return Err(not_text("reasoning"));
    }
    Ok(ChatReply {
        content: message.content.as_deref().unwrap_or_default().to_owned(),
        tool_calls,
        reasoning: message
            .reasoning_content
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
        reasoning_items: Vec::new(),
        citations: citations(e.citations.as_ref(), message.annotations.as_ref()),
        model,
        lane: Lane::ChatCompletions,
        route: route.name().to_owned(),
        usage: e.usage.as_ref().and_then(chat_completions_usage),
        finish_reason: choice
            .finish_reason
            .as_deref()
            .map(FinishReason::from_upstream),
    })
}

/// A tool call being assembled from chunks.
#[derive(Debug, Default)]
struct PartialCall {
    /// Upstream's `index`.
    upstream: u64,
    id: Option<String>,
    name: Option<String>,
    /// Our index, once the start was handed out.
    started: Option<u32>,
    /// Arguments that arrived before the name.
    held: String,
}

/// Turns `chat.completion.chunk` events into [`ChatChunk`]s.
#[derive(Debug, Default)]
pub struct CompletionsAssembler {
    calls: Vec<PartialCall>,
    next_index: u32,
    finish: Option<FinishReason>,
    usage: Option<Usage>,
    cited: BTreeSet<String>,
}

impl CompletionsAssembler {
    /// Handle one event's data; `Ok(true)` at the terminal `[DONE]`.
    pub fn on_event(
        &mut self,
        data: &str,
        out: &mut VecDeque<ChatChunk>,
    ) -> Result<bool, ProviderError> {
        if data.trim() == "[DONE]" {
            self.finish_stream(out)?;
            return Ok(true);
        }
        // A typed view, not a `Value`: most events are one token of text (see `chunk_event`).
        let event = ChunkEvent::parse(data).ok_or_else(|| {
            ProviderError::InvalidResponse("unparsable event in the reply stream".into())
        })?;
        self.apply(&event, out)?;
        Ok(false)
    }

    fn apply(
        &mut self,
        event: &ChunkEvent<'_>,
        out: &mut VecDeque<ChatChunk>,
    ) -> Result<(), ProviderError> {
        if let Some(err) = &event.error {
            let err = if err.is_object() {
                err.clone()
            } else {
                // What `json!({"message": err})` builds, without its `to_value(..).unwrap()`
                // (a `Value` serializer and serde_json's error `Debug` in the component).
                let mut m = Map::new();
                m.insert("message".to_owned(), err.clone());
                Value::Object(m)
            };
            return Err(response_failure(Some(&err)));
        }
        if let Some(choice) = &event.choice {
            let delta = &choice.delta;
            if let Some(r) = delta.reasoning_content.as_deref()
                && !r.is_empty()
            {
                out.push_back(ChatChunk::Reasoning(r.to_owned()));
            }
            if let Some(t) = delta.content.as_deref()
                && !t.is_empty()
            {
                out.push_back(ChatChunk::Text(t.to_owned()));
            }
            for (pos, call) in delta
                .tool_calls
                .as_ref()
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                self.tool_call_delta(pos, call, out)?;
            }
            if let Some(reason) = choice.finish_reason.as_deref() {
                self.finish = Some(FinishReason::from_upstream(reason));
            }
            for c in citations(None, delta.annotations.as_ref()) {
                self.cite(c, out);
            }
        }
        for c in citations(event.citations.as_ref(), None) {
            self.cite(c, out);
        }
        if let Some(u) = event.usage.as_ref().and_then(chat_completions_usage) {
            self.usage = Some(u);
        }
        Ok(())
    }

    fn cite(&mut self, c: Citation, out: &mut VecDeque<ChatChunk>) {
        // xAI repeats the whole list on later chunks: each source once.
        if self.cited.insert(c.url.clone()) {
            out.push_back(ChatChunk::Citation(c));
        }
    }

    fn tool_call_delta(
        &mut self,
        pos: usize,
        v: &Value,
        out: &mut VecDeque<ChatChunk>,
    ) -> Result<(), ProviderError> {
        // A missing index means the position in this chunk (some servers leave it out when
        // each call comes whole).
        let upstream = v.get("index").and_then(as_u64).unwrap_or(pos as u64);
        // The latest call at this index, unless the delta names another id: Grok sends
        // parallel calls whole, each at index 0 (tests/provider/stream.rs).
        let slot = match self.calls.iter().rposition(|c| {
            c.upstream == upstream
                && v.get("id")
                    .and_then(Value::as_str)
                    .is_none_or(|id| id.is_empty() || c.id.as_deref().is_none_or(|c| c == id))
        }) {
            Some(i) => i,
            None => {
                self.calls.push(PartialCall {
                    upstream,
                    ..PartialCall::default()
                });
                self.calls.len() - 1
            }
        };
        let f = v.get("function").unwrap_or(&Value::Null);
        let call = &mut self.calls[slot];
        if let Some(id) = v
            .get("id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            call.id.get_or_insert_with(|| id.to_owned());
        }
        if let Some(name) = f
            .get("name")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            call.name.get_or_insert_with(|| name.to_owned());
        }
        let args = arguments_text(f);
        if call.started.is_none()
            && let Some(name) = call.name.clone()
        {
            let index = self.next_index;
            self.next_index += 1;
            call.started = Some(index);
            out.push_back(ChatChunk::ToolCallStart {
                index,
                id: call.id.clone().unwrap_or_else(|| format!("call_{index}")),
                name,
            });
            if !call.held.is_empty() {
                out.push_back(ChatChunk::ToolCallArguments {
                    index,
                    arguments: std::mem::take(&mut call.held),
                });
            }
        }
        if !args.is_empty() {
            match call.started {
                Some(index) => out.push_back(ChatChunk::ToolCallArguments {
                    index,
                    arguments: args,
                }),
                None => call.held.push_str(&args),
            }
        }
        Ok(())
    }

    fn finish_stream(&mut self, out: &mut VecDeque<ChatChunk>) -> Result<(), ProviderError> {
        if self.calls.iter().any(|c| c.started.is_none()) {
            return Err(ProviderError::InvalidResponse(
                "a streamed tool call never named its function".into(),
            ));
        }
        if let Some(u) = self.usage.take() {
            out.push_back(ChatChunk::Usage(u));
        }
        if let Some(f) = self.finish.take() {
            out.push_back(ChatChunk::Finish(f));
        }
        Ok(())
    }
}

#[cfg(test)]
mod reply_tests {
    use serde_json::Value;

    use super::{parse_reply, parse_reply_body};
    use crate::routes::Route;

    /// The view and the `Value` reading give the same reply or the same error for every
    /// kind in every place, fields named twice, escapes, and bodies that are not replies.
    #[test]
    fn the_typed_view_reads_what_the_value_reading_read() {
        let cases = [
            r#"{"id":"x","object":"chat.completion","created":1,"model":"grok-4.3-0101",
                "choices":[{"index":0,"message":{"role":"assistant","content":"Hi!","reasoning_content":"hmm",
                "refusal":null},"finish_reason":"stop"}],"citations":["https://a.example/"],
                "usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":15,
                "prompt_tokens_details":{"cached_tokens":4},"completion_tokens_details":{"reasoning_tokens":3}},
                "system_fingerprint":"fp"}"#,
            r#"{"choices":[{"message":{"content":null,"tool_calls":[{"id":"c1","type":"function",
                "function":{"name":"f","arguments":"{}"}},{"id":"c2","function":{"name":"g","arguments":{"a":1}}}]},
                "finish_reason":"tool_calls"}]}"#,
            r#"{"choices":[{"message":{"tool_calls":[{"function":{"name":"f"}}]}}]}"#,
            r#"{"choices":[{"message":{"tool_calls":"none","content":"a"}}]}"#,
            r#"{"choices":[{"message":{"content":5}}]}"#,
            r#"{"choices":[{"message":{"content":[{"type":"text"}]}}]}"#,
            r#"{"choices":[{"message":{"content":{"a":1}}}]}"#,
            r#"{"choices":[{"message":{"content":true,"content":"fine"}}]}"#,
            r#"{"choices":[{"message":{"content":"a","content":false}}]}"#,
            r#"{"choices":[{"message":{"content":"a","reasoning_content":7}}]}"#,
            r#"{"choices":[{"message":{"content":"a","reasoning_content":""}}]}"#,
            r#"{"choices":[{"message":{"content":"a"},"message":null}]}"#,
            r#"{"choices":[{"message":null,"message":{"content":"b"}}]}"#,
            r#"{"choices":[{"message":"text"}]}"#,
            r#"{"choices":[{"message":{"content":"a"},"finish_reason":7}]}"#,
            r#"{"choices":[{"message":{"content":"a"},"finish_reason":"length"}],"model":""}"#,
            r#"{"choices":[{"message":{"content":"a"}}],"model":7}"#,
            r#"{"choices":[{"message":{"content":"a"}}],"model":"xai-grok/grok-4.3","model":"grok-5"}"#,
            r#"{"choices":[{"message":{"content":"a","annotations":[{"type":"url_citation",
                "url_citation":{"url":"https://b.example/","title":"B","start_index":1,"end_index":2}}]}}],
                "citations":[{"url":"https://c.example/"},"https://d.example/",7]}"#,
            r#"{"choices":[{"message":{"content":"\ud83d\ude00\n\"\\ é"}}]}"#,
            r#"{"choices":[{"delta":{"content":"a"}}]}"#,
            r#"{"choices":[{}]}"#,
            r#"{"choices":[]}"#,
            r#"{"choices":[7,{"message":{"content":"a"}}]}"#,
            r#"{"choices":{"0":{"message":{"content":"a"}}}}"#,
            r#"{"choices":[{"message":{"content":"a"}}],"choices":null}"#,
            r#"{"choices":[{"message":{"content":"a"}}],"usage":{"prompt_tokens":"5"}}"#,
            r#"{"choices":[{"message":{"content":"a"}}],"usage":[1]}"#,
            r#"{"error":{"message":"boom"}}"#,
            r#"[{"choices":[]}]"#,
            r#""text""#,
            "12.5",
            "null",
            r#"{"choices":[{"message":{"content":"a"}}]} trailing"#,
            r#"{"choices":[{"message":{"content":"a"}}]"#,
            "",
            "not json",
        ];
        for body in cases {
            let model = |named: Option<&str>| named.unwrap_or("asked").to_owned();
            let by_view = parse_reply_body(body.as_bytes(), model, Route::Api);
            let by_value = serde_json::from_str::<Value>(body).ok().map(|v| {
                let named = v.get("model").and_then(Value::as_str);
                parse_reply(&v, model(named), Route::Api)
            });
            assert_eq!(by_view, by_value, "{body}");
        }
    }
}
