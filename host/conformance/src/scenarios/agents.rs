//! What agents need through the contract: tool calls and their results on both lanes,
//! however upstream streams the arguments; image inputs; reasoning output and reasoning
//! items passed back; structured output; prompt caching; citations; and a clear refusal
//! of client tools on a multi-agent model.

use provider_reference::{RecordedRequest, ToolStreamStyle};
use serde_json::Value;

use crate::check::{Outcome, Step, check, describe, expect_code, fail};
use crate::context::{Ctx, ask, echo};
use crate::scenarios::chat::{Streamed, drain, model_in_lane};
use provider_runtime::Session;
use provider_runtime::bindings::types::{
    ChatReply, ChatRequest, ContentPart, FinishReason, FunctionTool, Image, ImageData, ImageDetail,
    ImageSource, JsonSchemaFormat, Lane, Message, ResponseFormat, Role,
};

/// The chat-completions model every tier has, also served on the Responses lane on request.
const CHAT_MODEL: &str = "xai-grok/grok-4.3";
const QUESTION: &str = "What is the weather in Paris?";

fn weather_tool() -> FunctionTool {
    FunctionTool {
        name: "get_weather".into(),
        description: Some("Current weather of a city".into()),
        parameters: Some(
            r#"{"type":"object","properties":{"text":{"type":"string"}},"required":["text"]}"#
                .into(),
        ),
        strict: Some(true),
    }
}

fn clock_tool() -> FunctionTool {
    FunctionTool {
        name: "get_time".into(),
        description: Some("Local time of a city".into()),
        parameters: Some(r#"{"type":"object","properties":{"text":{"type":"string"}}}"#.into()),
        strict: None,
    }
}

/// A question to `CHAT_MODEL` on `lane` with `tools`.
fn tool_request(lane: Lane, tools: Vec<FunctionTool>) -> ChatRequest {
    let mut r = ask(CHAT_MODEL, QUESTION);
    r.lane = Some(lane);
    r.tools = tools;
    r
}

fn last_request(ctx: &Ctx, endpoint: &str) -> Option<RecordedRequest> {
    ctx.api
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.path.ends_with(endpoint))
}

fn last_body(ctx: &Ctx, lane: Lane) -> Value {
    let endpoint = match lane {
        Lane::Responses => "/responses",
        _ => "/chat/completions",
    };
    last_request(ctx, endpoint)
        .and_then(|r| r.json())
        .unwrap_or_default()
}

/// A streamed turn, assembled; a stream error or a contract breach fails the step.
pub(crate) async fn streamed(
    session: &mut Session,
    request: &ChatRequest,
    what: &str,
) -> Outcome<Streamed> {
    let stream = session
        .open_chat_stream(request)
        .await
        .step(&format!("opening {what}"))?;
    let (out, error) = drain(session, &stream).await;
    let _ = session.close_chat_stream(stream).await;
    if let Some(e) = error {
        fail!(
            "{what}: expected the whole stream, seen an error after {} chunks: {}",
            out.chunks,
            describe(&e)
        );
    }
    if let Some(b) = &out.breach {
        fail!("{what}: the chunks break the stream contract: {b}");
    }
    Ok(out)
}

/// The turn as a complete reply would give it, whether it came whole or streamed.
fn as_reply(s: &Streamed, lane: Lane) -> ChatReply {
    ChatReply {
        content: s.text.clone(),
        tool_calls: s.tool_calls.clone(),
        reasoning: (!s.reasoning.is_empty()).then(|| s.reasoning.clone()),
        reasoning_items: s.reasoning_items.clone(),
        citations: s.citations.clone(),
        model: String::new(),
        route: String::new(),
        lane,
        usage: None,
        finish_reason: s.finish_reason.clone(),
    }
}

async fn turn(
    session: &mut Session,
    request: &ChatRequest,
    stream: bool,
    what: &str,
) -> Outcome<ChatReply> {
    if stream {
        Ok(as_reply(
            &streamed(session, request, what).await?,
            request.lane.unwrap_or(Lane::ChatCompletions),
        ))
    } else {
        session.chat(request).await.step(what)
    }
}

/// The calls of a reply must be `names`, each with the question as its `text` argument.
fn check_calls(reply: &ChatReply, names: &[&str], what: &str) -> Outcome {
    let seen: Vec<&str> = reply.tool_calls.iter().map(|c| c.name.as_str()).collect();
    check!(
        seen == names,
        "{what}: expected tool calls {names:?}, seen {seen:?}"
    );
    for call in &reply.tool_calls {
        let args: Option<Value> = serde_json::from_str(&call.arguments).ok();
        let text = args.as_ref().and_then(|a| a.get("text")?.as_str());
        check!(
            text == Some(QUESTION),
            "{what}: expected the arguments of {} to be {{\"text\": {QUESTION:?}}}, seen {:?}",
            call.name,
            call.arguments
        );
        check!(
            !call.id.is_empty(),
            "{what}: expected an id on tool call {}, seen none",
            call.name
        );
    }
    check!(
        matches!(reply.finish_reason, Some(FinishReason::ToolCalls)),
        "{what}: expected finish reason tool-calls, seen {:?}",
        reply.finish_reason
    );
    let preamble = format!("Calling {}.", names.join(", "));
    check!(
        reply.content == preamble,
        "{what}: expected the text of the same turn ({preamble:?}) beside the calls, seen {:?}",
        reply.content
    );
    Ok(())
}

/// The model asks for a tool, the result goes back, the model answers: on both lanes,
/// whole and streamed; the tool result reaches upstream in the lane's own shape.
pub async fn tool_round_trip(ctx: &mut Ctx) -> Outcome {
    let mut session = ctx.connected_session(1).await?;
    for lane in [Lane::ChatCompletions, Lane::Responses] {
        for stream in [false, true] {
            let what = format!(
                "{lane:?} tool call ({})",
                if stream { "streamed" } else { "whole" }
            );
            let mut request = tool_request(lane, vec![weather_tool()]);
            let reply = turn(&mut session, &request, stream, &what).await?;
            check_calls(&reply, &["get_weather"], &what)?;
            let body = last_body(ctx, lane);
            let tool_name = match lane {
                Lane::Responses => body.pointer("/tools/0/name"),
                _ => body.pointer("/tools/0/function/name"),
            };
            check!(
                tool_name.and_then(Value::as_str) == Some("get_weather"),
                "{what}: expected the tool declared in the lane's shape, seen {:?}",
                body.get("tools")
            );

            let call = reply.tool_calls[0].clone();
            let mut assistant = Message::text(Role::Assistant, reply.content.clone());
            assistant.tool_calls = vec![call.clone()];
            let mut result = Message::text(Role::Tool, "sunny, 21 °C");
            result.tool_call_id = Some(call.id.clone());
            request.messages.extend([assistant, result]);
            let what = format!("{what}, then its result");
            let answer = turn(&mut session, &request, stream, &what).await?;
            check!(
                answer.content == "Tool results: sunny, 21 °C",
                "{what}: expected the model to answer from the tool result, seen {:?}",
                answer.content
            );
            check!(
                answer.tool_calls.is_empty()
                    && matches!(answer.finish_reason, Some(FinishReason::Stop)),
                "{what}: expected a final answer (no calls, finish stop), seen {} calls, {:?}",
                answer.tool_calls.len(),
                answer.finish_reason
            );
            let body = last_body(ctx, lane);
            let answered = match lane {
                Lane::Responses => body["input"].as_array().is_some_and(|items| {
                    items.iter().any(|i| {
                        i["type"] == "function_call_output" && i["call_id"] == call.id.as_str()
                    }) && items
                        .iter()
                        .any(|i| i["type"] == "function_call" && i["call_id"] == call.id.as_str())
                }),
                _ => body["messages"].as_array().is_some_and(|m| {
                    m.iter()
                        .any(|m| m["role"] == "tool" && m["tool_call_id"] == call.id.as_str())
                        && m.iter()
                            .any(|m| m["tool_calls"][0]["id"] == call.id.as_str())
                }),
            };
            check!(
                answered,
                "{what}: expected the call and its result sent in the lane's shape, seen {body}"
            );
        }
    }
    Ok(())
}

/// However upstream streams tool calls (each whole in one chunk, arguments spread over
/// many chunks, or the arguments only in the final event), the stream assembles to the
/// same calls as the complete reply, next to the turn's text.
pub async fn tool_call_streams(ctx: &mut Ctx) -> Outcome {
    let mut session = ctx.connected_session(1).await?;
    for lane in [Lane::ChatCompletions, Lane::Responses] {
        let request = tool_request(lane, vec![weather_tool(), clock_tool()]);
        let whole = session
            .chat(&request)
            .await
            .step(&format!("{lane:?} chat with two tools"))?;
        check_calls(
            &whole,
            &["get_weather", "get_time"],
            &format!("{lane:?} chat with two tools"),
        )?;
        for style in [
            ToolStreamStyle::Whole,
            ToolStreamStyle::Split,
            ToolStreamStyle::DoneOnly,
        ] {
            ctx.api.set_tool_stream_style(style);
            let what = format!("{lane:?} stream with two tool calls sent {style:?}");
            let s = streamed(&mut session, &request, &what).await?;
            check_calls(&as_reply(&s, lane), &["get_weather", "get_time"], &what)?;
        }
        ctx.api.set_tool_stream_style(ToolStreamStyle::Whole);
    }
    Ok(())
}

/// Client tools sent to a multi-agent model: upstream's 400 becomes invalid-input that
/// names the model and the reason.
pub async fn client_tools_on_multi_agent(ctx: &mut Ctx) -> Outcome {
    let mut session = ctx.connected_session(4).await?;
    let model = model_in_lane(&mut session, Lane::Responses).await?;
    let mut request = ask(&model.id, QUESTION);
    request.tools = vec![weather_tool()];
    let what = format!("chat with a client tool on {}", model.id);
    let e = expect_code(session.chat(&request).await, "invalid_input", &what)?;
    let message = describe(&e);
    let upstream_id = model.id.rsplit('/').next().unwrap_or(&model.id);
    check!(
        message.contains(upstream_id) && message.to_ascii_lowercase().contains("tool"),
        "{what}: expected the error to name the model and client tools, seen {message}"
    );
    Ok(())
}

fn png() -> ImageSource {
    // A 1x1 PNG.
    ImageSource::Data(ImageData {
        media_type: "image/png".into(),
        base64: "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==".into(),
    })
}

/// Images (a URL with a detail hint and inline bytes) reach upstream on both lanes.
pub async fn image_input(ctx: &mut Ctx) -> Outcome {
    let mut session = ctx.connected_session(1).await?;
    for lane in [Lane::ChatCompletions, Lane::Responses] {
        let mut request = ask(CHAT_MODEL, "Describe these.");
        request.lane = Some(lane);
        request.messages[0].content.extend([
            ContentPart::Image(Image {
                source: ImageSource::Url("https://example.com/cat.png".into()),
                detail: Some(ImageDetail::High),
            }),
            ContentPart::Image(Image {
                source: png(),
                detail: None,
            }),
        ]);
        let what = format!("{lane:?} chat with two images");
        let reply = session.chat(&request).await.step(&what)?;
        let expected = format!(
            "{} [image https://example.com/cat.png detail=high] [image data:image/png]",
            echo("Describe these.")
        );
        check!(
            reply.content == expected,
            "{what}: expected upstream to see both images ({expected:?}), seen {:?}",
            reply.content
        );
    }
    Ok(())
}

/// Reasoning comes back visible on both lanes, whole and streamed; on the Responses lane
/// the encrypted reasoning item returns, and passed back it reaches upstream.
pub async fn reasoning_output(ctx: &mut Ctx) -> Outcome {
    let mut session = ctx.connected_session(4).await?;
    let list = session.models(false, None).await.step("models")?;
    let Some(reasoner) = list
        .models
        .iter()
        .find(|m| m.id.contains("reasoning") && !m.id.contains("non-reasoning"))
    else {
        fail!("models at tier 4: expected a reasoning chat model, seen none");
    };
    let responses = model_in_lane(&mut session, Lane::Responses).await?;
    for (model, lane) in [
        (reasoner.id.clone(), Lane::ChatCompletions),
        (responses.id.clone(), Lane::Responses),
    ] {
        let request = ask(&model, "think first");
        let what = format!("{lane:?} chat with {model}");
        let whole = session.chat(&request).await.step(&what)?;
        check!(
            whole.reasoning.as_deref().is_some_and(|r| !r.is_empty()),
            "{what}: expected visible reasoning (the API sent it), seen {:?}",
            whole.reasoning
        );
        check!(
            whole.content == echo("think first"),
            "{what}: expected the reasoning kept apart from the text, seen content {:?}",
            whole.content
        );
        let s = streamed(&mut session, &request, &format!("{what} streamed")).await?;
        check!(
            Some(s.reasoning.as_str()) == whole.reasoning.as_deref() && s.text == whole.content,
            "{what} streamed: expected the same reasoning and text as the whole reply, seen reasoning {:?} text {:?}",
            s.reasoning,
            s.text
        );
        if lane != Lane::Responses {
            continue;
        }
        let include = last_body(ctx, lane)["include"].clone();
        check!(
            include
                .as_array()
                .is_some_and(|i| i.iter().any(|v| v == "reasoning.encrypted_content")),
            "{what}: expected encrypted reasoning asked for (nothing is stored upstream), seen include={include}"
        );
        check!(
            !whole.reasoning_items.is_empty()
                && s.reasoning_items.len() == whole.reasoning_items.len(),
            "{what}: expected reasoning items in the reply and the stream, seen {} and {}",
            whole.reasoning_items.len(),
            s.reasoning_items.len()
        );
        let mut next = request.clone();
        let mut assistant = Message::text(Role::Assistant, whole.content.clone());
        assistant.reasoning = whole.reasoning_items.clone();
        next.messages
            .extend([assistant, Message::text(Role::User, "and now?")]);
        let again = session
            .chat(&next)
            .await
            .step(&format!("{what}, its reasoning passed back"))?;
        check!(
            again.content == format!("{} [reasoning returned]", echo("and now?")),
            "{what}: expected the reasoning item to reach upstream in the next turn, seen {:?}",
            again.content
        );
    }
    Ok(())
}

/// A JSON Schema response format reaches upstream in the lane's shape and the reply
/// follows it.
pub async fn structured_output(ctx: &mut Ctx) -> Outcome {
    let mut session = ctx.connected_session(1).await?;
    for lane in [Lane::ChatCompletions, Lane::Responses] {
        let mut request = ask(CHAT_MODEL, "rate it");
        request.lane = Some(lane);
        request.response_format = Some(ResponseFormat::JsonSchema(JsonSchemaFormat {
            name: "rating".into(),
            schema: r#"{"type":"object","properties":{"answer":{"type":"string"},"score":{"type":"number"}},"required":["answer","score"]}"#.into(),
            description: None,
            strict: Some(true),
        }));
        let what = format!("{lane:?} chat with a JSON schema");
        let reply = session.chat(&request).await.step(&what)?;
        let parsed: Option<Value> = serde_json::from_str(&reply.content).ok();
        check!(
            parsed
                .as_ref()
                .is_some_and(|v| v["answer"].is_string() && v["score"].is_number()),
            "{what}: expected JSON following the schema, seen {:?}",
            reply.content
        );
        let body = last_body(ctx, lane);
        let name = match lane {
            Lane::Responses => body.pointer("/text/format/name"),
            _ => body.pointer("/response_format/json_schema/name"),
        };
        check!(
            name.and_then(Value::as_str) == Some("rating"),
            "{what}: expected the schema sent in the lane's shape, seen {body}"
        );
    }
    Ok(())
}

/// The prompt-cache key travels as upstream routes cache hits (a header on
/// chat-completions, `prompt_cache_key` on Responses) and cached tokens are reported.
pub async fn prompt_cache(ctx: &mut Ctx) -> Outcome {
    let mut session = ctx.connected_session(1).await?;
    for (lane, key) in [
        (Lane::ChatCompletions, "conv-a"),
        (Lane::Responses, "conv-b"),
    ] {
        let mut request = ask(CHAT_MODEL, "a prompt worth caching, long enough to count");
        request.lane = Some(lane);
        request.prompt_cache_key = Some(key.into());
        let what = format!("{lane:?} chat with a prompt-cache key");
        session.chat(&request).await.step(&what)?;
        let sent = match lane {
            Lane::Responses => last_body(ctx, lane)["prompt_cache_key"]
                .as_str()
                .map(str::to_owned),
            _ => last_request(ctx, "/chat/completions")
                .and_then(|r| r.header("x-grok-conv-id").map(str::to_owned)),
        };
        check!(
            sent.as_deref() == Some(key),
            "{what}: expected the key sent where upstream routes cache hits, seen {sent:?}"
        );
        let again = session
            .chat(&request)
            .await
            .step(&format!("{what}, again"))?;
        let cached = again.usage.as_ref().and_then(|u| u.cached_input_tokens);
        check!(
            cached.is_some_and(|c| c > 0),
            "{what}, again: expected cached input tokens reported, seen {cached:?}"
        );
    }
    Ok(())
}

/// Server-side search through the escape hatch returns citations, whole and streamed.
pub async fn citations(ctx: &mut Ctx) -> Outcome {
    let mut session = ctx.connected_session(1).await?;
    let mut request = ask(CHAT_MODEL, "search this");
    request.lane = Some(Lane::Responses);
    request.extra_body = Some(r#"{"tools":[{"type":"web_search"}]}"#.into());
    let whole = session.chat(&request).await.step("chat with web search")?;
    let s = streamed(&mut session, &request, "streamed chat with web search").await?;
    for (what, cites) in [
        ("chat with web search", &whole.citations),
        ("streamed chat with web search", &s.citations),
    ] {
        check!(
            cites.iter().any(|c| c.url.starts_with("https://")),
            "{what}: expected citations (the API sent one), seen {cites:?}"
        );
    }
    let tools = last_body(ctx, Lane::Responses)["tools"].clone();
    check!(
        tools
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t["type"] == "web_search")),
        "chat with web search: expected the server tool merged into the body, seen tools={tools}"
    );
    Ok(())
}
