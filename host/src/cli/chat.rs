//! `provider-host chat`: one turn, streamed or not, human or script mode.

use std::io::{Read, Write};
use std::process::ExitCode;

use provider_runtime::bindings::types::{
    ChatChunk, ChatRequest, Citation, FinishReason, Lane, Message, ProviderError, Role,
    ThinkingEffort, Usage,
};
use provider_runtime::{HostError, Session};
use serde_json::{Value, json};

use super::args::{ChatArgs, LaneArg, Thinking};
use provider_serve::openai;

use super::{fail, ok, print_json, render};

fn invalid(message: String) -> HostError {
    HostError::Provider(ProviderError::InvalidInput(message))
}

fn read_source(source: &str, what: &str) -> Result<String, HostError> {
    let mut text = String::new();
    let read = if source == "-" {
        std::io::stdin().read_to_string(&mut text).map(|_| ())
    } else {
        std::fs::read_to_string(source).map(|t| text = t)
    };
    read.map_err(|e| HostError::Config(format!("cannot read {what} from {source}: {e}")))?;
    Ok(text)
}

/// The request, and whether it asks to be streamed (`"stream": true` in a body).
fn build_request(args: &ChatArgs) -> Result<(ChatRequest, bool), HostError> {
    let (mut request, body_stream) = if let Some(source) = &args.request {
        let body = openai::parse(&read_source(source, "the request")?).map_err(invalid)?;
        // Empty: filled with the plugin's default model by `run`.
        let model = args
            .model
            .clone()
            .or_else(|| body.model.clone())
            .unwrap_or_default();
        let stream = body.stream == Some(true);
        (body.into_request(model).map_err(invalid)?, stream)
    } else {
        let mut messages = Vec::new();
        if let Some(system) = &args.system {
            messages.push(Message::text(Role::System, system.as_str()));
        }
        match (&args.messages, &args.message) {
            (Some(source), _) => {
                let wrapped = format!("{{\"messages\": {}}}", read_source(source, "the messages")?);
                let body = openai::parse(&wrapped).map_err(|e| {
                    invalid(format!("--messages must be a JSON array of messages: {e}"))
                })?;
                messages.extend(body.into_request(String::new()).map_err(invalid)?.messages);
            }
            (None, Some(text)) => messages.push(Message::text(Role::User, text.as_str())),
            (None, None) => return Err(HostError::Config("give a MESSAGE or --messages".into())),
        }
        let model = args.model.clone().unwrap_or_default();
        let request = ChatRequest::new(model, messages);
        (request, false)
    };
    // Flags win over the body.
    if let Some(t) = args.thinking {
        request.thinking = Some(match t {
            Thinking::Low => ThinkingEffort::Low,
            Thinking::Medium => ThinkingEffort::Medium,
            Thinking::High => ThinkingEffort::High,
        });
    }
    if let Some(n) = args.max_output_tokens {
        request.max_output_tokens = Some(n);
    }
    if let Some(r) = &args.route {
        request.route = Some(r.clone());
    }
    if let Some(l) = args.lane {
        request.lane = Some(match l {
            LaneArg::ChatCompletions => Lane::ChatCompletions,
            LaneArg::Responses => Lane::Responses,
        });
    }
    Ok((request, body_stream))
}

/// What a stream delivered, for the closing line.
#[derive(Default)]
struct Summary {
    content_bytes: usize,
    finish: Option<FinishReason>,
    usage: Option<Usage>,
    citations: Vec<Citation>,
}

/// The JSON line of one chunk (`None` for what only the closing line reports).
fn chunk_line(chunk: &ChatChunk) -> Option<Value> {
    Some(match chunk {
        ChatChunk::Text(t) => json!({ "delta": t }),
        ChatChunk::Reasoning(t) => json!({ "reasoning_delta": t }),
        ChatChunk::ToolCallStart(s) => {
            json!({ "tool_call": { "index": s.index, "id": s.id, "name": s.name } })
        }
        ChatChunk::ToolCallArguments(d) => {
            json!({ "tool_call_arguments": { "index": d.index, "delta": d.arguments } })
        }
        ChatChunk::ReasoningItem(r) => json!({ "reasoning_item": render::reasoning_item(r) }),
        ChatChunk::Citation(_) | ChatChunk::Usage(_) | ChatChunk::Finish(_) => return None,
    })
}

pub async fn run(session: &mut Session, args: &ChatArgs) -> ExitCode {
    let (mut request, body_stream) = match build_request(args) {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    if request.model.is_empty() {
        // The plugin knows its vendor's default model: the route's when one is named, else
        // the default route's (no network call while the caches are fresh).
        let default = match request.route.clone() {
            Some(route) => session
                .models(false, Some(&route))
                .await
                .map(|l| Some(l.default_model_id)),
            None => session.status().await.map(|s| s.default_model_id),
        };
        match default {
            Ok(model) => match model {
                Some(m) => request.model = m,
                None => {
                    return fail(&invalid(
                        "no model given and the plugin names no default: pass --model".into(),
                    ));
                }
            },
            Err(e) => return fail(&e),
        }
    }
    if !(args.stream || body_stream) {
        return match session.chat(&request).await {
            Ok(reply) if args.json => ok(render::reply(&reply)),
            Ok(reply) => {
                println!("{}", render::terminal_safe(&reply.content));
                for call in &reply.tool_calls {
                    println!(
                        "[tool call {} {}({})]",
                        render::terminal_safe(&call.id),
                        render::terminal_safe(&call.name),
                        render::terminal_safe(&call.arguments)
                    );
                }
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e),
        };
    }
    let stream = match session.open_chat_stream(&request).await {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    let mut summary = Summary::default();
    loop {
        match session.next_chunk(&stream).await {
            Ok(Some(chunk)) => {
                match &chunk {
                    ChatChunk::Text(t) => summary.content_bytes += t.len(),
                    ChatChunk::Citation(c) => summary.citations.push(c.clone()),
                    ChatChunk::Usage(u) => summary.usage = Some(*u),
                    ChatChunk::Finish(f) => summary.finish = Some(f.clone()),
                    _ => {}
                }
                if args.json {
                    if let Some(line) = chunk_line(&chunk) {
                        print_json(&line);
                    }
                } else if let ChatChunk::Text(t) = &chunk {
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(render::terminal_safe(t).as_bytes());
                    let _ = out.flush();
                }
            }
            Ok(None) => break,
            Err(e) => {
                if !args.json {
                    println!();
                }
                return fail(&e);
            }
        }
    }
    let _ = session.close_chat_stream(stream).await;
    if args.json {
        ok(json!({
            "ok": true,
            "done": true,
            "content_bytes": summary.content_bytes,
            "finish_reason": summary.finish.as_ref().map(FinishReason::name),
            "usage": render::usage(&summary.usage),
            "citations": summary.citations.iter().map(render::citation).collect::<Vec<_>>(),
        }))
    } else {
        println!();
        ExitCode::SUCCESS
    }
}
