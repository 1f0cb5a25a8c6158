//! The Responses request mapped onto the WIT's `chat-request`: the fields mapped, those
//! accepted with no effect, the input items.

use provider_runtime::bindings::types::{
    ChatRequest, ContentPart, FunctionTool, Image, JsonSchemaFormat, Lane, Message, ReasoningItem,
    ResponseFormat, Role, ToolCall, ToolChoice,
};
use serde_json::{Map, Value};

use crate::openai;

pub(super) fn str_of<'a>(o: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    o.get(k).and_then(Value::as_str)
}

/// Fields this endpoint maps or forwards upstream as they are (`user`,
/// `search_parameters`, through `extra-body`).
pub(super) const MAPPED: &[&str] = &[
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
pub(super) const NO_EFFECT: &[&str] = &[
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

pub(super) fn image(part: &Map<String, Value>) -> Result<ContentPart, String> {
    let url = str_of(part, "image_url").ok_or("input_image needs image_url")?;
    Ok(ContentPart::Image(Image {
        source: openai::image_source(url)?,
        detail: str_of(part, "detail").map(openai::detail).transpose()?,
    }))
}

pub(super) fn input_item(i: usize, item: &Value, out: &mut Vec<Message>) -> Result<(), String> {
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
pub(super) fn assistant(out: &mut Vec<Message>) -> &mut Message {
    if out.last().is_none_or(|m| m.role != Role::Assistant) {
        let mut m = Message::text(Role::Assistant, "");
        m.content.clear();
        out.push(m);
    }
    out.last_mut().expect("pushed above")
}
