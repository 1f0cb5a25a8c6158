//! A Responses API body, validated as upstream does, into a [`Turn`].

use std::collections::HashSet;

use serde_json::Value;

use crate::api::format::Format;
use crate::api::tools::{self, Tools};
use crate::api::turn::{Entry, Image, Role, Turn};
use crate::api::validate::{self, Invalid};

/// What `include` may ask for (OpenAI's list).
const INCLUDABLE: &[&str] = &[
    "reasoning.encrypted_content",
    "message.output_text.logprobs",
    "message.input_image.image_url",
    "web_search_call.action.sources",
    "web_search_call.results",
    "file_search_call.results",
    "code_interpreter_call.outputs",
    "computer_call_output.output.image_url",
];

/// A parsed request.
pub(super) struct Request<'a> {
    pub model: &'a str,
    pub turn: Turn,
    pub stream: bool,
    /// `reasoning.effort`.
    pub effort: Option<&'a str>,
    /// `include` has `reasoning.encrypted_content`.
    pub encrypted_reasoning: bool,
    pub prompt_cache_key: Option<&'a str>,
}

pub(super) fn parse(body: &Value) -> Result<Request<'_>, Invalid> {
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .ok_or("model is required")?;
    let mut entries = Vec::new();
    if let Some(instructions) = validate::opt_str(body, "instructions", "")? {
        entries.push(system(instructions));
    }
    match body.get("input") {
        Some(Value::String(text)) => entries.push(Entry::Message {
            role: Role::User,
            text: text.clone(),
            images: Vec::new(),
        }),
        Some(Value::Array(list)) => items(list, &mut entries)?,
        _ => return Err("input must be a string or an array of items".into()),
    }
    let has_message = entries.iter().any(|e| {
        !matches!(
            e,
            Entry::Message {
                role: Role::System,
                ..
            }
        )
    });
    if !has_message {
        return Err("input must contain at least one message".into());
    }
    let (tools, search) = tools(body)?;
    let format = match validate::opt_object(body, "text", "")? {
        None => Format::Text,
        Some(text) => match validate::opt_object(text, "format", "text")? {
            None => Format::Text,
            Some(f) => Format::parse(
                validate::req_str(f, "type", "text.format")?,
                Some(f),
                "text.format",
            )?,
        },
    };
    let include = validate::opt_array(body, "include", "")?.unwrap_or_default();
    for (i, value) in include.iter().enumerate() {
        match value.as_str() {
            Some(v) if INCLUDABLE.contains(&v) => {}
            _ => {
                return Err(format!(
                    "Invalid value for 'include[{i}]': {value}; supported are {INCLUDABLE:?}"
                ));
            }
        }
    }
    let effort = match validate::opt_object(body, "reasoning", "")? {
        None => None,
        Some(r) => {
            validate::opt_enum(r, "summary", "reasoning", &["auto", "concise", "detailed"])?;
            validate::opt_enum(r, "effort", "reasoning", validate::EFFORTS)?
        }
    };
    validate::sampling(body)?;
    validate::opt_bool(body, "store", "")?;
    Ok(Request {
        model,
        turn: Turn {
            entries,
            tools,
            format,
            max_tokens: validate::opt_integer(body, "max_output_tokens", Some(1))?,
            search,
        },
        stream: validate::opt_bool(body, "stream", "")?.unwrap_or(false),
        effort,
        encrypted_reasoning: include.iter().any(|v| v == "reasoning.encrypted_content"),
        prompt_cache_key: validate::opt_str(body, "prompt_cache_key", "")?,
    })
}

fn system(text: &str) -> Entry {
    Entry::Message {
        role: Role::System,
        text: text.to_owned(),
        images: Vec::new(),
    }
}

/// The input items; a `function_call_output` must answer an earlier `function_call`.
fn items(list: &[Value], entries: &mut Vec<Entry>) -> Result<(), Invalid> {
    let mut call_ids = HashSet::new();
    for (i, item) in list.iter().enumerate() {
        let at = format!("input[{i}]");
        validate::object(item, &at)?;
        // An item with a role and no type is a message ("easy input message").
        match validate::opt_str(item, "type", &at)?.unwrap_or("message") {
            "message" => entries.push(message(item, &at)?),
            "function_call" => {
                validate::opt_str(item, "id", &at)?;
                let call_id = validate::req_str(item, "call_id", &at)?;
                let name = validate::req_str(item, "name", &at)?;
                let arguments = validate::req_str(item, "arguments", &at)?;
                call_ids.insert(call_id);
                entries.push(Entry::Call {
                    name: name.to_owned(),
                    arguments: arguments.to_owned(),
                });
            }
            "function_call_output" => {
                let call_id = validate::req_str(item, "call_id", &at)?;
                if !call_ids.contains(call_id) {
                    return Err(format!(
                        "Invalid '{at}.call_id': no function_call item with call_id {call_id:?} comes before"
                    ));
                }
                let output = match item.get("output") {
                    Some(Value::String(s)) => s.clone(),
                    Some(parts @ Value::Array(_)) => {
                        content(parts, &["input_text"], &format!("{at}.output"))?.0
                    }
                    _ => {
                        return Err(format!(
                            "Invalid '{at}.output': expected a string or an array of input_text parts"
                        ));
                    }
                };
                entries.push(Entry::Output(output));
            }
            "reasoning" => entries.push(reasoning(item, &at)?),
            other => {
                return Err(format!(
                    "Invalid value for '{at}.type': {other:?}; supported are message, function_call, function_call_output, reasoning"
                ));
            }
        }
    }
    Ok(())
}

/// A message item; assistants write `output_text` (or `refusal`), others `input_text`,
/// and users may add `input_image`.
fn message(item: &Value, at: &str) -> Result<Entry, Invalid> {
    let role = match validate::req_str(item, "role", at)? {
        "user" => Role::User,
        "assistant" => Role::Assistant,
        "system" | "developer" => Role::System,
        other => {
            return Err(format!(
                "Invalid value for '{at}.role': {other:?}; supported are user, assistant, system, developer"
            ));
        }
    };
    let allowed: &[&str] = match role {
        Role::User => &["input_text", "input_image"],
        Role::Assistant => &["output_text", "refusal"],
        Role::System => &["input_text"],
    };
    let (text, images) = match item.get("content") {
        Some(Value::String(s)) => (s.clone(), Vec::new()),
        Some(parts @ Value::Array(_)) => content(parts, allowed, &format!("{at}.content"))?,
        _ => {
            return Err(format!(
                "Invalid '{at}.content': expected a string or an array of content parts"
            ));
        }
    };
    Ok(Entry::Message { role, text, images })
}

/// Content parts of the `allowed` types: their text joined, and the images.
fn content(parts: &Value, allowed: &[&str], at: &str) -> Result<(String, Vec<Image>), Invalid> {
    let mut text = String::new();
    let mut images = Vec::new();
    for (i, part) in parts.as_array().into_iter().flatten().enumerate() {
        let at = format!("{at}[{i}]");
        let kind = validate::req_str(part, "type", &at)?;
        if !allowed.contains(&kind) {
            return Err(format!(
                "Invalid value for '{at}.type': {kind:?}; supported here are {allowed:?}"
            ));
        }
        match kind {
            "input_text" | "output_text" => text.push_str(validate::req_str(part, "text", &at)?),
            "refusal" => {
                validate::req_str(part, "refusal", &at)?;
            }
            _ => {
                let url = validate::req_str(part, "image_url", &at)?;
                let detail = validate::opt_str(part, "detail", &at)?;
                images.push(validate::image(url, detail, &format!("{at}.image_url"))?);
            }
        }
    }
    Ok((text, images))
}

/// A reasoning item passed back. Its `encrypted_content`, when present, must be one this
/// server issued (`enc_…`), as upstream refuses content it cannot decrypt.
fn reasoning(item: &Value, at: &str) -> Result<Entry, Invalid> {
    validate::opt_str(item, "id", at)?;
    let summary = validate::opt_array(item, "summary", at)?
        .ok_or_else(|| format!("Missing required parameter: '{at}.summary'"))?;
    let mut text = String::new();
    for (i, part) in summary.iter().enumerate() {
        let at = format!("{at}.summary[{i}]");
        validate::opt_enum(part, "type", &at, &["summary_text"])?
            .ok_or_else(|| format!("Missing required parameter: '{at}.type'"))?;
        text.push_str(validate::req_str(part, "text", &at)?);
    }
    let encrypted = validate::opt_str(item, "encrypted_content", at)?;
    if let Some(e) = encrypted
        && !e
            .strip_prefix("enc_")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(format!(
            "Invalid '{at}.encrypted_content': the encrypted content could not be verified"
        ));
    }
    Ok(Entry::Reasoning {
        summary: text,
        encrypted: encrypted.is_some(),
    })
}

/// Function tools, server search tools (`web_search`, `x_search`: whether to cite),
/// `tool_choice` and `parallel_tool_calls`.
fn tools(body: &Value) -> Result<(Tools, bool), Invalid> {
    let mut functions = Vec::new();
    let mut search = false;
    for (i, tool) in validate::opt_array(body, "tools", "")?
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let at = format!("tools[{i}]");
        validate::object(tool, &at)?;
        match validate::opt_enum(tool, "type", &at, &["function", "web_search", "x_search"])? {
            Some("function") => functions.push(tools::function(tool, &at)?),
            Some(_) => search = true,
            None => return Err(format!("Missing required parameter: '{at}.type'")),
        }
    }
    let choice = tools::choice(body.get("tool_choice"), |c| {
        c.get("name").and_then(Value::as_str)
    })?;
    let parallel = validate::opt_bool(body, "parallel_tool_calls", "")?.unwrap_or(true);
    Ok((Tools::new(functions, choice, parallel, search)?, search))
}
