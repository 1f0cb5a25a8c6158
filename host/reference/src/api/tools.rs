//! Function tools: what a request declares, the scripted calls the reference model makes
//! with them, and its answer to their results, the same on both lanes.
//!
//! The script: asked by a user with function tools (and `tool_choice` not `none`), the
//! model says `Calling <names>.` and calls every declared function in order (only the
//! first, or the named one, when `parallel_tool_calls` is false or `tool_choice` names
//! one), each with `{"text": <last user text>}`. Given tool results, it answers
//! `Tool results: <outputs joined by "; ">`.

use serde_json::{Value, json};

use super::sse;
use super::turn::{Entry, Role, Turn};
use super::validate::{self, Invalid};

/// How a stream carries the arguments of tool calls, since real servers differ and a
/// client must assemble all of them. Set with `ApiHandle::set_tool_stream_style`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ToolStreamStyle {
    /// Each call's arguments whole in one event (xAI's way on chat completions).
    #[default]
    Whole,
    /// The arguments in pieces of about 7 bytes (OpenAI's way).
    Split,
    /// Responses API: the argument deltas are empty and the arguments come only in
    /// `response.function_call_arguments.done`. Chat completions has no such event, so
    /// there it behaves as [`ToolStreamStyle::Split`].
    DoneOnly,
}

/// Bytes of arguments per streamed piece under [`ToolStreamStyle::Split`].
const ARGUMENT_PIECE_BYTES: usize = 7;

/// `tool_choice`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ToolChoice {
    Auto,
    None,
    Required,
    Function(String),
}

/// The function tools a request declares and how it lets the model use them.
pub(super) struct Tools {
    /// Function names, in declaration order.
    pub functions: Vec<String>,
    pub choice: ToolChoice,
    /// `parallel_tool_calls` (default true).
    pub parallel: bool,
}

impl Tools {
    /// Check the declaration as a whole: unique names, and a `tool_choice` that can be
    /// honoured (a named function must be declared; `required` needs a tool).
    pub fn new(
        functions: Vec<String>,
        choice: ToolChoice,
        parallel: bool,
        has_server_tools: bool,
    ) -> Result<Self, Invalid> {
        for (i, name) in functions.iter().enumerate() {
            if functions[..i].contains(name) {
                return Err(format!("Invalid 'tools': duplicate function name {name:?}"));
            }
        }
        match &choice {
            ToolChoice::Function(name) if !functions.contains(name) => {
                return Err(format!(
                    "Invalid 'tool_choice': function {name:?} is not among the tools"
                ));
            }
            ToolChoice::Required if functions.is_empty() && !has_server_tools => {
                return Err("Invalid 'tool_choice': 'required' needs tools".into());
            }
            _ => {}
        }
        Ok(Self {
            functions,
            choice,
            parallel,
        })
    }
}

/// A function tool's own fields (chat nests them under `function`, Responses does not):
/// its name, and `description`, `parameters`, `strict` checked when present.
pub(super) fn function(spec: &Value, at: &str) -> Result<String, Invalid> {
    validate::object(spec, at)?;
    let name = validate::name(spec, "name", at)?;
    validate::opt_str(spec, "description", at)?;
    validate::opt_object(spec, "parameters", at)?;
    validate::opt_bool(spec, "strict", at)?;
    Ok(name.to_owned())
}

/// `tool_choice`: a mode string, or an object whose function name `named` finds (the
/// lanes nest it differently).
pub(super) fn choice(
    value: Option<&Value>,
    named: impl FnOnce(&Value) -> Option<&str>,
) -> Result<ToolChoice, Invalid> {
    match value {
        None | Some(Value::Null) => Ok(ToolChoice::Auto),
        Some(Value::String(mode)) => match mode.as_str() {
            "auto" => Ok(ToolChoice::Auto),
            "none" => Ok(ToolChoice::None),
            "required" => Ok(ToolChoice::Required),
            other => Err(format!(
                "Invalid value for 'tool_choice': {other:?}; supported are auto, none, required"
            )),
        },
        Some(object @ Value::Object(_)) if object.get("type") == Some(&json!("function")) => {
            named(object)
                .map(|n| ToolChoice::Function(n.to_owned()))
                .ok_or_else(|| "Invalid 'tool_choice': a function choice needs its name".into())
        }
        Some(_) => Err("Invalid 'tool_choice': expected a mode or a function".into()),
    }
}

/// One call the model makes.
pub(super) struct ToolCall {
    /// `call_<seq>_<i>`: what the result must name.
    pub id: String,
    /// `fc_<seq>_<i>`: the Responses output item's own id.
    pub item_id: String,
    pub name: String,
    /// Compact JSON.
    pub arguments: String,
}

/// The calls the model makes for `turn`, or `None` when it should answer in text.
pub(super) fn scripted_calls(turn: &Turn, seq: u64) -> Option<Vec<ToolCall>> {
    let tools = &turn.tools;
    let asked_by_user = matches!(
        turn.last_turn(),
        Some(Entry::Message {
            role: Role::User,
            ..
        })
    );
    if tools.functions.is_empty() || tools.choice == ToolChoice::None || !asked_by_user {
        return None;
    }
    let names: Vec<&str> = match &tools.choice {
        ToolChoice::Function(name) => vec![name],
        _ if !tools.parallel => vec![&tools.functions[0]],
        _ => tools.functions.iter().map(String::as_str).collect(),
    };
    let text = turn.last_user().map_or("", |(text, _)| text);
    let arguments = json!({"text": text}).to_string();
    Some(
        names
            .into_iter()
            .enumerate()
            .map(|(i, name)| ToolCall {
                id: format!("call_{seq:06}_{i}"),
                item_id: format!("fc_{seq:06}_{i}"),
                name: name.to_owned(),
                arguments: arguments.clone(),
            })
            .collect(),
    )
}

/// The text said beside the calls: `Calling a, b.`
pub(super) fn preamble(calls: &[ToolCall]) -> String {
    let names: Vec<&str> = calls.iter().map(|c| c.name.as_str()).collect();
    format!("Calling {}.", names.join(", "))
}

/// The answer to tool results, when the conversation ends with them.
pub(super) fn results_answer(turn: &Turn) -> Option<String> {
    matches!(turn.last_turn(), Some(Entry::Output(_)))
        .then(|| format!("Tool results: {}", turn.outputs_since_user().join("; ")))
}

/// The argument pieces of a [`ToolStreamStyle::Split`] stream.
pub(super) fn argument_pieces(arguments: &str) -> Vec<&str> {
    sse::pieces(arguments, ARGUMENT_PIECE_BYTES)
}
