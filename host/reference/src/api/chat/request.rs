//! A chat completions body, validated as upstream does, into a [`Turn`].

use std::collections::HashSet;

use serde_json::Value;

use crate::api::format::Format;
use crate::api::tools::{self, Tools};
use crate::api::turn::{Entry, Image, Role, Turn};
use crate::api::validate::{self, Invalid};

/// A parsed request.
pub(super) struct Request<'a> {
    pub model: &'a str,
    pub turn: Turn,
    pub stream: bool,
}

pub(super) fn parse(body: &Value) -> Result<Request<'_>, Invalid> {
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .ok_or("model is required")?;
    let list = body
        .get("messages")
        .and_then(Value::as_array)
        .ok_or("messages must be an array")?;
    if list.is_empty() {
        return Err("messages must not be empty".into());
    }
    let entries = messages(list)?;
    let tools = tools(body)?;
    let format = match validate::opt_object(body, "response_format", "")? {
        None => Format::Text,
        Some(f) => Format::parse(
            validate::req_str(f, "type", "response_format")?,
            f.get("json_schema"),
            "response_format.json_schema",
        )?,
    };
    validate::sampling(body)?;
    validate::stop(body)?;
    validate::opt_integer(body, "seed", None)?;
    validate::opt_enum(body, "reasoning_effort", "", validate::EFFORTS)?;
    if let Some(options) = validate::opt_object(body, "stream_options", "")? {
        validate::opt_bool(options, "include_usage", "stream_options")?;
    }
    let max_completion = validate::opt_integer(body, "max_completion_tokens", Some(1))?;
    let max_tokens = validate::opt_integer(body, "max_tokens", Some(1))?;
    // xAI Live Search: any `search_parameters` but `mode: "off"` searches.
    let search = match validate::opt_object(body, "search_parameters", "")? {
        None => false,
        Some(p) => {
            validate::opt_enum(p, "mode", "search_parameters", &["auto", "on", "off"])?
                != Some("off")
        }
    };
    Ok(Request {
        model,
        turn: Turn {
            entries,
            tools,
            format,
            max_tokens: max_completion.or(max_tokens),
            search,
        },
        stream: validate::opt_bool(body, "stream", "")?.unwrap_or(false),
    })
}

/// The messages; a `tool` message must answer a call an earlier assistant message made.
fn messages(list: &[Value]) -> Result<Vec<Entry>, Invalid> {
    let mut entries = Vec::new();
    let mut call_ids = HashSet::new();
    for (i, m) in list.iter().enumerate() {
        let at = format!("messages[{i}]");
        validate::object(m, &at)?;
        validate::opt_str(m, "name", &at)?;
        let role = validate::req_str(m, "role", &at)?;
        let content = m.get("content").filter(|c| !c.is_null());
        match role {
            "system" | "developer" | "user" => {
                let user = role == "user";
                let content =
                    content.ok_or_else(|| format!("Missing required parameter: '{at}.content'"))?;
                let (text, images) = parts(content, user, &format!("{at}.content"))?;
                let role = if user { Role::User } else { Role::System };
                entries.push(Entry::Message { role, text, images });
            }
            "assistant" => {
                let calls = validate::opt_array(m, "tool_calls", &at)?.unwrap_or_default();
                let text = match content {
                    Some(c) => parts(c, false, &format!("{at}.content"))?.0,
                    None if !calls.is_empty() => String::new(),
                    None => {
                        return Err(format!(
                            "Invalid '{at}': an assistant message needs content or tool_calls"
                        ));
                    }
                };
                entries.push(Entry::Message {
                    role: Role::Assistant,
                    text,
                    images: Vec::new(),
                });
                for (j, call) in calls.iter().enumerate() {
                    let at = format!("{at}.tool_calls[{j}]");
                    let (id, name, arguments) = tool_call(call, &at)?;
                    call_ids.insert(id.to_owned());
                    entries.push(Entry::Call {
                        name: name.to_owned(),
                        arguments: arguments.to_owned(),
                    });
                }
            }
            "tool" => {
                let id = validate::req_str(m, "tool_call_id", &at)?;
                if !call_ids.contains(id) {
                    return Err(format!(
                        "Invalid '{at}.tool_call_id': {id:?} answers no tool call of an earlier assistant message"
                    ));
                }
                let content =
                    content.ok_or_else(|| format!("Missing required parameter: '{at}.content'"))?;
                entries.push(Entry::Output(
                    parts(content, false, &format!("{at}.content"))?.0,
                ));
            }
            other => {
                return Err(format!(
                    "Invalid value for '{at}.role': {other:?}; supported are system, developer, user, assistant, tool"
                ));
            }
        }
    }
    Ok(entries)
}

/// `{id, type: "function", function: {name, arguments}}` with string arguments.
fn tool_call<'a>(call: &'a Value, at: &str) -> Result<(&'a str, &'a str, &'a str), Invalid> {
    validate::object(call, at)?;
    let id = validate::req_str(call, "id", at)?;
    validate::opt_enum(call, "type", at, &["function"])?;
    let function = validate::opt_object(call, "function", at)?
        .ok_or_else(|| format!("Missing required parameter: '{at}.function'"))?;
    let at = format!("{at}.function");
    let name = validate::req_str(function, "name", &at)?;
    let arguments = validate::req_str(function, "arguments", &at)?;
    Ok((id, name, arguments))
}

/// Content: a string, or parts `text` (and `image_url` where `images` are allowed).
fn parts(content: &Value, images: bool, at: &str) -> Result<(String, Vec<Image>), Invalid> {
    let parts = match content {
        Value::String(s) => return Ok((s.clone(), Vec::new())),
        Value::Array(parts) => parts,
        _ => {
            return Err(format!(
                "Invalid '{at}': expected a string or an array of content parts"
            ));
        }
    };
    let mut text = String::new();
    let mut found = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let at = format!("{at}[{i}]");
        match validate::req_str(part, "type", &at)? {
            "text" => text.push_str(validate::req_str(part, "text", &at)?),
            "image_url" if images => {
                let image = validate::opt_object(part, "image_url", &at)?
                    .ok_or_else(|| format!("Missing required parameter: '{at}.image_url'"))?;
                let at = format!("{at}.image_url");
                let url = validate::req_str(image, "url", &at)?;
                let detail = validate::opt_str(image, "detail", &at)?;
                found.push(validate::image(url, detail, &at)?);
            }
            other => {
                let allowed = if images { "text, image_url" } else { "text" };
                return Err(format!(
                    "Invalid value for '{at}.type': {other:?}; supported here are {allowed}"
                ));
            }
        }
    }
    Ok((text, found))
}

/// `tools` (functions only on this lane), `tool_choice` and `parallel_tool_calls`.
fn tools(body: &Value) -> Result<Tools, Invalid> {
    let mut functions = Vec::new();
    for (i, tool) in validate::opt_array(body, "tools", "")?
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let at = format!("tools[{i}]");
        validate::object(tool, &at)?;
        validate::opt_enum(tool, "type", &at, &["function"])?
            .ok_or_else(|| format!("Missing required parameter: '{at}.type'"))?;
        let spec = tool
            .get("function")
            .ok_or_else(|| format!("Missing required parameter: '{at}.function'"))?;
        functions.push(tools::function(spec, &format!("{at}.function"))?);
    }
    let choice = tools::choice(body.get("tool_choice"), |c| {
        c.pointer("/function/name").and_then(Value::as_str)
    })?;
    let parallel = validate::opt_bool(body, "parallel_tool_calls", "")?.unwrap_or(true);
    Tools::new(functions, choice, parallel, false)
}
