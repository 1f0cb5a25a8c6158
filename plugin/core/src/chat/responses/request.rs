//! The Responses request body: the conversation as input items (reasoning passed back
//! as the encrypted items it came as), tools, the text format, sampling.

use serde::Serialize;
use serde_json::{Map, Number, Value};

use super::super::completions::{detail, image_url};
use super::super::{
    FunctionFields, SchemaFields, WireToolChoice, decimal, effort, function_tools, json_object,
    schema_fields,
};
use crate::error::ProviderError;
use crate::json::written;
use crate::types::{ChatRequest, ContentPart, Lane, ResponseFormat, Role};

#[derive(Serialize)]
pub(super) struct Body<'a> {
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
pub(super) struct Reasoning {
    effort: &'static str,
}

/// One `input` item: one we write, or a reasoning item passed back as it came.
#[derive(Serialize)]
#[serde(untagged)]
pub(super) enum InputItem<'a> {
    Ours(OurItem<'a>),
    PassedBack(Map<String, Value>),
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum OurItem<'a> {
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
pub(super) enum MessageContent<'a> {
    Parts(Vec<InputPart<'a>>),
    Text(String),
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum InputPart<'a> {
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
pub(super) struct WireTool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(flatten)]
    function: FunctionFields<'a>,
}

/// How a tool choice names its function here: `{"name": ...}` beside the type.
#[derive(Serialize)]
pub(super) struct FunctionName<'a> {
    name: &'a str,
}

#[derive(Serialize)]
pub(super) struct TextOptions<'a> {
    format: TextFormat<'a>,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum TextFormat<'a> {
    Text,
    JsonObject,
    JsonSchema(SchemaFields<'a>),
}

pub(super) fn input_items(req: &ChatRequest) -> Result<Vec<InputItem<'_>>, ProviderError> {
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

pub(super) fn text_format(f: &ResponseFormat) -> Result<TextOptions<'_>, ProviderError> {
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
    Ok(written(serde_json::to_vec(&body)))
}
