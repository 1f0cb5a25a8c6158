//! `provider-host chat`: one turn, streamed or not, human or script mode.

use std::io::{Read, Write};
use std::process::ExitCode;

use provider_app::PluginVars;
use provider_app::chat::{
    ChatInput, StreamSummary, build_request, chunk_event, fill_default_model,
};
use provider_runtime::bindings::types::{ChatChunk, Lane, ThinkingEffort};
use provider_runtime::{HostError, Session};

use super::args::{ChatArgs, LaneArg, Thinking};
use super::{fail_with, ok, print_json, render};

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

/// The flags as the library's chat input, `--messages` and `--request` read.
fn input(args: &ChatArgs) -> Result<ChatInput, HostError> {
    Ok(ChatInput {
        model: args.model.clone(),
        route: args.route.clone(),
        lane: args.lane.map(|l| match l {
            LaneArg::ChatCompletions => Lane::ChatCompletions,
            LaneArg::Responses => Lane::Responses,
        }),
        thinking: args.thinking.map(|t| match t {
            Thinking::Low => ThinkingEffort::Low,
            Thinking::Medium => ThinkingEffort::Medium,
            Thinking::High => ThinkingEffort::High,
        }),
        system: args.system.clone(),
        messages: match &args.messages {
            Some(source) => Some(read_source(source, "the messages")?),
            None => None,
        },
        request: match &args.request {
            Some(source) => Some(read_source(source, "the request")?),
            None => None,
        },
        max_output_tokens: args.max_output_tokens,
        message: args.message.clone(),
    })
}

pub async fn run(session: &mut Session, args: &ChatArgs, vars: &PluginVars) -> ExitCode {
    let fail = |e: &HostError| fail_with(e, vars);
    let (mut request, body_stream) = match input(args).and_then(|i| build_request(&i)) {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    if let Err(e) = fill_default_model(session, &mut request).await {
        return fail(&e);
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
    let mut summary = StreamSummary::default();
    loop {
        match session.next_chunk(&stream).await {
            Ok(Some(chunk)) => {
                summary.add(&chunk);
                if args.json {
                    if let Some(line) = chunk_event(&chunk) {
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
        ok(summary.done())
    } else {
        println!();
        ExitCode::SUCCESS
    }
}
