//! `provider-host chat`: one turn, streamed or not, human or script mode.

use std::io::{Read, Write};
use std::process::ExitCode;

use provider_host::bindings::types::{ChatRequest, Message, Role, ThinkingEffort};
use provider_host::{HostError, Session};
use serde::Deserialize;
use serde_json::json;

use super::args::{ChatArgs, Thinking};
use super::{fail, ok, print_json, render};

#[derive(Deserialize)]
struct JsonMessage {
    role: String,
    content: String,
}

fn parse_role(role: &str) -> Result<Role, HostError> {
    match role {
        "system" => Ok(Role::System),
        "user" => Ok(Role::User),
        "assistant" => Ok(Role::Assistant),
        other => Err(HostError::Config(format!(
            "unknown role {other:?}: use system, user or assistant"
        ))),
    }
}

fn read_messages(source: &str) -> Result<Vec<Message>, HostError> {
    let mut text = String::new();
    let read = if source == "-" {
        std::io::stdin().read_to_string(&mut text).map(|_| ())
    } else {
        std::fs::read_to_string(source).map(|t| text = t)
    };
    read.map_err(|e| HostError::Config(format!("cannot read messages from {source}: {e}")))?;
    let parsed: Vec<JsonMessage> = serde_json::from_str(&text).map_err(|e| {
        HostError::Config(format!(
            "messages must be a JSON array of {{role, content}}: {e}"
        ))
    })?;
    parsed
        .into_iter()
        .map(|m| {
            Ok(Message {
                role: parse_role(&m.role)?,
                content: m.content,
            })
        })
        .collect()
}

fn build_request(args: &ChatArgs) -> Result<ChatRequest, HostError> {
    let mut messages = Vec::new();
    if let Some(system) = &args.system {
        messages.push(Message {
            role: Role::System,
            content: system.clone(),
        });
    }
    match (&args.messages, &args.message) {
        (Some(source), _) => messages.extend(read_messages(source)?),
        (None, Some(text)) => messages.push(Message {
            role: Role::User,
            content: text.clone(),
        }),
        (None, None) => return Err(HostError::Config("give a MESSAGE or --messages".into())),
    }
    Ok(ChatRequest {
        model: args.model.clone(),
        messages,
        thinking: args.thinking.map(|t| match t {
            Thinking::Low => ThinkingEffort::Low,
            Thinking::Medium => ThinkingEffort::Medium,
            Thinking::High => ThinkingEffort::High,
        }),
        max_output_tokens: args.max_output_tokens,
        temperature: None,
    })
}

pub async fn run(session: &mut Session, args: &ChatArgs) -> ExitCode {
    let request = match build_request(args) {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    if !args.stream {
        return match session.chat(&request).await {
            Ok(reply) if args.json => ok(render::reply(&reply)),
            Ok(reply) => {
                println!("{}", reply.content);
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e),
        };
    }
    let stream = match session.open_chat_stream(&request).await {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    let mut content_len = 0usize;
    loop {
        match session.next_chunk(&stream).await {
            Ok(Some(chunk)) => {
                content_len += chunk.delta.len();
                if args.json {
                    print_json(&render::chunk(&chunk));
                } else {
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(chunk.delta.as_bytes());
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
        ok(json!({ "ok": true, "done": true, "content_bytes": content_len }))
    } else {
        println!();
        ExitCode::SUCCESS
    }
}
