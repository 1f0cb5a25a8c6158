//! Chat in both lanes: validation and the lane choice here; each lane's wire format
//! (request body, complete reply, stream events) in its own module.
//!
//! * [`completions`]: OpenAI-compatible `POST {base}/chat/completions`.
//! * [`responses`]: `POST {base}/responses` (multi-agent models only work there; any chat
//!   model may be sent there on request).
//!
//! The route (who pays, which base) is decided before, by [`crate::routes::resolve`]; the
//! plan keeps it because the subscription rail has rules of its own (streamed upstream,
//! nothing stored upstream).

mod chunk_event;
pub mod collect;
pub mod completions;
pub mod responses;
mod usage;

use base64::Engine as _;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::ProviderError;
use crate::json::written;
use crate::models::lane_for;
use crate::redact::sanitize;
use crate::routes::{Route, RoutedModel};
use crate::types::{
    ChatReply, ChatRequest, ContentPart, FunctionTool, ImageSource, JsonSchemaFormat, Lane,
    Message, ResponseFormat, Role, ThinkingEffort, ToolChoice,
};

pub use usage::{chat_completions_usage, responses_usage};

/// Media types accepted for inline images.
const IMAGE_TYPES: &[&str] = &["image/png", "image/jpeg", "image/webp", "image/gif"];

/// Where a turn goes: the model on its route, and the dialect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The route and the model id as upstream knows it (no prefix).
    pub model: RoutedModel,
    /// The dialect.
    pub lane: Lane,
}

impl Plan {
    /// Path under the route's base.
    pub fn path(&self) -> &'static str {
        match self.lane {
            Lane::Responses => "responses",
            _ => "chat/completions",
        }
    }

    /// The route that pays.
    pub fn route(&self) -> Route {
        self.model.route
    }

    /// The model id as upstream knows it.
    pub fn upstream_model(&self) -> &str {
        &self.model.upstream
    }

    /// Whether upstream is asked for a stream: when the caller streams, and always on a
    /// route that serves nothing else.
    pub fn streams_upstream(&self, caller_streams: bool) -> bool {
        caller_streams || self.route().stream_only()
    }
}

/// What to send upstream for one turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamRequest {
    /// The JSON body.
    pub body: Vec<u8>,
    /// Headers beyond the transport's own (e.g. the prompt-cache key on chat-completions).
    pub headers: Vec<(String, String)>,
}

fn invalid(msg: impl Into<String>) -> ProviderError {
    ProviderError::InvalidInput(msg.into())
}

/// Validate a request for `model` (its route resolved) and pick its lane: the model's
/// own (by its id: [`lane_for`]), or the one asked for.
pub fn plan(req: &ChatRequest, model: RoutedModel) -> Result<Plan, ProviderError> {
    plan_listed(req, model, None)
}

/// [`plan`], with the lane the route's catalogue lists for the model (its `apiBackend`)
/// taking precedence over the id's rule when known.
pub fn plan_listed(
    req: &ChatRequest,
    model: RoutedModel,
    listed: Option<Lane>,
) -> Result<Plan, ProviderError> {
    let shown = model.id();
    let model_id = model.upstream.as_str();
    if model_id.is_empty() {
        return Err(invalid("model is empty"));
    }
    if req.messages.is_empty() {
        return Err(invalid("messages are empty"));
    }
    if req.temperature.is_some_and(|t| !t.is_finite() || t < 0.0) {
        return Err(invalid("temperature must be a finite number >= 0"));
    }
    if req
        .top_p
        .is_some_and(|p| !p.is_finite() || !(0.0..=1.0).contains(&p))
    {
        return Err(invalid("top_p must be a number between 0 and 1"));
    }
    // An image or video model stays one whatever a catalogue says.
    let own = match lane_for(model_id) {
        Lane::Media => Lane::Media,
        by_id => listed.filter(|l| *l != Lane::Media).unwrap_or(by_id),
    };
    if own == Lane::Media {
        return Err(invalid(format!(
            "{shown} is an image/video model, not usable for chat"
        )));
    }
    let lane = match req.lane {
        None => own,
        Some(Lane::Media) => return Err(invalid("the media lane does not serve chat")),
        Some(Lane::ChatCompletions) if own == Lane::Responses => {
            return Err(invalid(format!(
                "{shown} is served only by the Responses API (lane responses)"
            )));
        }
        Some(lane) => lane,
    };
    for (i, m) in req.messages.iter().enumerate() {
        check_message(i, m)?;
    }
    check_tools(req)?;
    // JSON texts (tool parameters, schemas, extra_body) are parsed once, where the body
    // is built (`request_body`), and refused there.
    if let Some(ResponseFormat::JsonSchema(f)) = &req.response_format
        && f.name.trim().is_empty()
    {
        return Err(invalid("response_format json_schema needs a name"));
    }
    if lane == Lane::ChatCompletions && req.thinking.is_some() && !takes_reasoning_effort(model_id)
    {
        // Dropping it would answer without the reasoning asked for: refused by name.
        return Err(invalid(format!(
            "{shown} takes no reasoning effort (xAI answers 400 to it): leave the thinking \
             effort out, or pick a model that reasons on request"
        )));
    }
    if lane == Lane::Responses {
        // The Responses API has no such fields: refusing is better than dropping them.
        if !req.stop.is_empty() {
            return Err(invalid(
                "stop sequences are not supported on the Responses lane",
            ));
        }
        if req.seed.is_some() {
            return Err(invalid("seed is not supported on the Responses lane"));
        }
    }
    Ok(Plan { model, lane })
}

fn check_message(i: usize, m: &Message) -> Result<(), ProviderError> {
    let at = |what: &str| invalid(format!("messages[{i}]: {what}"));
    if m.role != Role::Assistant && !m.tool_calls.is_empty() {
        return Err(at("only assistant messages carry tool calls"));
    }
    if m.role != Role::Assistant && !m.reasoning.is_empty() {
        return Err(at("only assistant messages carry reasoning items"));
    }
    match (m.role, &m.tool_call_id) {
        (Role::Tool, None) => return Err(at("a tool message needs tool_call_id")),
        (Role::Tool, Some(id)) if id.trim().is_empty() => {
            return Err(at("tool_call_id is empty"));
        }
        (Role::Tool, Some(_)) | (_, None) => {}
        (_, Some(_)) => return Err(at("only tool messages carry tool_call_id")),
    }
    for call in &m.tool_calls {
        if call.id.trim().is_empty() || call.name.trim().is_empty() {
            return Err(at("a tool call needs an id and a name"));
        }
    }
    for part in &m.content {
        let ContentPart::Image(image) = part else {
            continue;
        };
        if m.role != Role::User {
            return Err(at("images are accepted in user messages only"));
        }
        match &image.source {
            ImageSource::Url(url) => {
                if !url
                    .get(..8)
                    .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
                    || url.len() <= 8
                {
                    return Err(at("an image URL must be https://"));
                }
            }
            ImageSource::Data { media_type, base64 } => {
                if !IMAGE_TYPES.contains(&media_type.as_str()) {
                    return Err(at(&format!(
                        "image media type must be one of {}",
                        IMAGE_TYPES.join(", ")
                    )));
                }
                if base64.is_empty()
                    || base64::engine::general_purpose::STANDARD
                        .decode(base64.as_bytes())
                        .is_err()
                {
                    return Err(at("image data is not standard base64"));
                }
            }
        }
    }
    Ok(())
}

fn check_tools(req: &ChatRequest) -> Result<(), ProviderError> {
    // Owned names: the chat assemblers' `BTreeSet<String>` is already in the component.
    let mut names = std::collections::BTreeSet::new();
    for t in &req.tools {
        let ok = !t.name.is_empty()
            && t.name.len() <= 64
            && t.name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !ok {
            return Err(invalid(format!(
                "tool name {:?} must be 1 to 64 of [A-Za-z0-9_-]",
                crate::redact::truncate(&t.name, 80)
            )));
        }
        if !names.insert(t.name.clone()) {
            return Err(invalid(format!("tool {} is declared twice", t.name)));
        }
    }
    match &req.tool_choice {
        Some(ToolChoice::Required) if req.tools.is_empty() => {
            Err(invalid("tool_choice required needs tools"))
        }
        Some(ToolChoice::Function(name)) if !names.contains(name.as_str()) => Err(invalid(
            format!("tool_choice names {name}, which is not among the tools"),
        )),
        _ => Ok(()),
    }
}

/// A function tool's `{name, description?, parameters?, strict?}`, as both lanes write
/// them (chat-completions nests them under `function`, Responses flattens them).
#[derive(Debug, Serialize)]
pub(crate) struct FunctionFields<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    strict: Option<bool>,
}

/// The request's function tools, each written the lane's way by `wrap`.
pub(crate) fn function_tools<'a, W>(
    req: &'a ChatRequest,
    wrap: impl Fn(FunctionFields<'a>) -> W,
) -> Result<Vec<W>, ProviderError> {
    req.tools
        .iter()
        .map(|t| function_fields(t).map(&wrap))
        .collect()
}

fn function_fields(t: &FunctionTool) -> Result<FunctionFields<'_>, ProviderError> {
    Ok(FunctionFields {
        name: &t.name,
        description: t.description.as_deref(),
        parameters: t
            .parameters
            .as_deref()
            .map(|p| json_object(p, &format!("tool {} parameters", t.name)))
            .transpose()?,
        strict: t.strict,
    })
}

/// A JSON schema format's `{name, schema, description?, strict?}`, as both lanes write
/// them (chat-completions under `json_schema`, Responses beside `type` in `text.format`).
#[derive(Debug, Serialize)]
pub(crate) struct SchemaFields<'a> {
    name: &'a str,
    schema: Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    strict: Option<bool>,
}

pub(crate) fn schema_fields(s: &JsonSchemaFormat) -> Result<SchemaFields<'_>, ProviderError> {
    Ok(SchemaFields {
        name: &s.name,
        schema: json_object(&s.schema, "response_format json_schema schema")?,
        description: s.description.as_deref(),
        strict: s.strict,
    })
}

/// A tool choice that is a mode (`"auto"`, `"none"`, `"required"`) or names a function
/// (each lane writes the function its own way).
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(crate) enum WireToolChoice<F> {
    /// A mode.
    Mode(&'static str),
    /// `{"type": "function", ...}`.
    Function {
        /// Always `function`.
        #[serde(rename = "type")]
        kind: &'static str,
        /// The lane's way of naming it.
        #[serde(flatten)]
        function: F,
    },
}

impl<F> WireToolChoice<F> {
    /// The choice `c`, a function named the lane's way by `named`.
    pub(crate) fn of<'a>(c: &'a ToolChoice, named: impl FnOnce(&'a str) -> F) -> Self {
        match c {
            ToolChoice::Auto => Self::Mode("auto"),
            ToolChoice::None => Self::Mode("none"),
            ToolChoice::Required => Self::Mode("required"),
            ToolChoice::Function(name) => Self::Function {
                kind: "function",
                function: named(name),
            },
        }
    }
}

/// Parse `text` as a JSON object, or say which field is not one.
pub(crate) fn json_object(text: &str, what: &str) -> Result<Map<String, Value>, ProviderError> {
    match serde_json::from_slice::<Value>(text.as_bytes()) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(invalid(format!("{what} must be a JSON object"))),
    }
}

/// Fields the subscription rail refuses, which `extra_body` may therefore not add there.
const REFUSED_BY_STREAM_ONLY_ROUTES: &[&str] = &["previous_response_id"];

/// The body (and headers) for `plan`; `stream` selects SSE (see [`Plan::streams_upstream`]).
pub fn request_body(
    plan: &Plan,
    req: &ChatRequest,
    stream: bool,
) -> Result<UpstreamRequest, ProviderError> {
    let model = plan.upstream_model();
    let (body, headers) = match plan.lane {
        Lane::Responses => (responses::body(model, req, stream)?, Vec::new()),
        _ => (
            completions::body(model, req, stream)?,
            // xAI routes cache hits by this header on chat-completions.
            req.prompt_cache_key
                .iter()
                .map(|k| ("x-grok-conv-id".to_owned(), k.clone()))
                .collect(),
        ),
    };
    // Serialized straight from the lane's structs (no `Value` on the way): only a request
    // with `extra_body` is read back into a map to merge it.
    let Some(extra) = &req.extra_body else {
        return Ok(UpstreamRequest { body, headers });
    };
    let mut body = match serde_json::from_slice(&body) {
        Ok(Value::Object(m)) => m,
        _ => unreachable!("bodies are objects"),
    };
    let extra = json_object(extra, "extra_body")?;
    if plan.route().stream_only()
        && let Some(field) = REFUSED_BY_STREAM_ONLY_ROUTES
            .iter()
            .find(|f| extra.contains_key(**f))
    {
        return Err(invalid(format!(
            "extra_body field {field} is not accepted on the {} route (nothing is stored upstream there)",
            plan.route()
        )));
    }
    merge_extra(&mut body, extra)?;
    Ok(UpstreamRequest {
        body: written(serde_json::to_vec(&body)),
        headers,
    })
}

/// Merge the escape hatch: new fields are added, arrays are appended to the request's own
/// (server-side tools beside function tools), anything else already set is refused.
fn merge_extra(
    body: &mut Map<String, Value>,
    extra: Map<String, Value>,
) -> Result<(), ProviderError> {
    for (k, v) in extra {
        match (body.get_mut(&k), v) {
            (None, v) => {
                body.insert(k, v);
            }
            (Some(Value::Array(mine)), Value::Array(more)) => mine.extend(more),
            (Some(_), _) => {
                return Err(invalid(format!(
                    "extra_body field {k} is already set by the request"
                )));
            }
        }
    }
    Ok(())
}

/// Upstream's word for an effort.
pub(crate) fn effort(t: ThinkingEffort) -> &'static str {
    match t {
        ThinkingEffort::Low => "low",
        ThinkingEffort::Medium => "medium",
        ThinkingEffort::High => "high",
    }
}

/// `f32` as the decimal the caller wrote (`0.7`, not `0.699999988079071`).
/// serde_json writes an `f32` as its shortest decimal and reads that back as the `f64` the
/// caller meant, so core's float formatting and parsing stay out of the component.
pub(crate) fn decimal(t: f32) -> Option<serde_json::Number> {
    // A non-finite `t` is written as `null`, which is no number.
    match serde_json::from_slice(&serde_json::to_vec(&t).ok()?) {
        Ok(Value::Number(n)) => Some(n),
        _ => None,
    }
}

/// Whether a chat-completions model accepts `reasoning_effort`. The grok-4.20 reasoning and
/// non-reasoning variants (dated or not) and the Grok Build / code models answer HTTP 400
/// to it whatever its value (reported by public xAI clients); a request asking them for an
/// effort is refused by name in `plan` (never silently dropped).
pub fn takes_reasoning_effort(upstream_model: &str) -> bool {
    let m = upstream_model.to_ascii_lowercase();
    !(m.starts_with("grok-4.20") || m.starts_with("grok-build") || m.starts_with("grok-code"))
}

/// The reply of a non-streamed request, from its body (`what` names it when it is not JSON).
/// A chat completion is read through a typed view (`chunk_event`) rather than a `Value` of
/// the whole body; a Responses reply, with its many item kinds, as a `Value`.
pub fn parse_reply_body(plan: &Plan, body: &[u8], what: &str) -> Result<ChatReply, ProviderError> {
    match plan.lane {
        Lane::Responses => {
            let v = crate::http::parse_json(body, what)?;
            let model = reply_model(plan, v.get("model").and_then(Value::as_str));
            responses::parse_reply(&v, model, plan.route())
        }
        _ => completions::parse_reply_body(body, |m| reply_model(plan, m), plan.route())
            .unwrap_or_else(|| Err(crate::http::not_json(what))),
    }
}

/// The model a reply names (prefixed with the route), else the one asked for.
fn reply_model(plan: &Plan, named: Option<&str>) -> String {
    let route = plan.route();
    named
        .filter(|s| !s.is_empty())
        .map_or_else(|| plan.model.id(), |m| route.prefixed(route.unprefixed(m)))
}

/// The error of a failed response or `error` event (`{code?, message?}`): rate limits
/// stay rate limits, a spent quota (free usage, spending limit) is a quota refusal,
/// rejected input stays the caller's, the rest is upstream trouble.
pub fn response_failure(err: Option<&Value>) -> ProviderError {
    let field = |k: &str| {
        err.and_then(|e| e.get(k))
            .and_then(Value::as_str)
            .map(|s| sanitize(s, &[]))
            .unwrap_or_default()
    };
    let (code, message) = (field("code"), field("message"));
    let text = match (code.is_empty(), message.is_empty()) {
        (true, true) => "the response failed".to_owned(),
        (false, true) => code.clone(),
        (true, false) => message,
        (false, false) => format!("{code}: {message}"),
    };
    let code_l = code.to_ascii_lowercase();
    if code_l.contains("free-usage-exhausted") || code_l.contains("spending-limit") {
        ProviderError::quota_exhausted(text)
    } else if code_l.contains("rate_limit") {
        ProviderError::rate_limited(text, None)
    } else if code_l.starts_with("invalid") {
        ProviderError::InvalidInput(text)
    } else {
        ProviderError::UpstreamUnavailable(text)
    }
}

/// A 400 that says the model refuses client tools becomes an error naming the model and
/// the way out (multi-agent models need xAI's beta access for function tools).
pub fn explain_refusal(e: ProviderError, plan: &Plan, req: &ChatRequest) -> ProviderError {
    match e {
        ProviderError::InvalidInput(m)
            if !req.tools.is_empty() && m.to_ascii_lowercase().contains("client-side tools") =>
        {
            ProviderError::InvalidInput(format!(
                "{} does not accept client-side tools (function tools need xAI beta access for multi-agent models): drop the tools or pick another model (upstream: {m})",
                plan.model.id()
            ))
        }
        other => other,
    }
}

#[cfg(test)]
mod tests;
