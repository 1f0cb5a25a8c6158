//! The model API through the contract: the model cache, both chat lanes, streaming, and
//! streams cut before their terminal event.

use provider_reference::{Fault, Route};

use crate::check::{Outcome, Step, check, describe, expect_typed, fail};
use crate::context::{Ctx, ask, echo, models_of, names};
use provider_runtime::bindings::types::{
    ChatChunk, ChatReply, Citation, FinishReason, Lane, Message, Model, ReasoningItem, Role,
    ThinkingEffort, ToolCall,
};
use provider_runtime::{ChatStreamHandle, HostError, Session};

/// Most chunks a stream is read for before the suite calls it endless.
const MAX_CHUNKS: usize = 100_000;

/// What a drained stream delivered, assembled.
#[derive(Debug, Default)]
pub struct Streamed {
    /// Text deltas concatenated.
    pub text: String,
    /// Reasoning deltas concatenated.
    pub reasoning: String,
    /// Tool calls by index: (id, name, arguments concatenated).
    pub tool_calls: Vec<ToolCall>,
    /// Reasoning items to pass back.
    pub reasoning_items: Vec<ReasoningItem>,
    /// Citations.
    pub citations: Vec<Citation>,
    /// Chunks received.
    pub chunks: usize,
    /// The last finish reason reported.
    pub finish_reason: Option<FinishReason>,
    /// Whether usage was reported.
    pub usage: bool,
    /// A contract breach seen while assembling (arguments before their call's start, an
    /// index out of order).
    pub breach: Option<String>,
}

impl Streamed {
    fn take(&mut self, chunk: ChatChunk) {
        self.chunks += 1;
        match chunk {
            ChatChunk::Text(t) => self.text.push_str(&t),
            ChatChunk::Reasoning(t) => self.reasoning.push_str(&t),
            ChatChunk::ToolCallStart(s) => {
                if s.index as usize != self.tool_calls.len() {
                    self.breach.get_or_insert(format!(
                        "tool call started with index {} after {} calls",
                        s.index,
                        self.tool_calls.len()
                    ));
                }
                self.tool_calls.push(ToolCall {
                    id: s.id,
                    name: s.name,
                    arguments: String::new(),
                });
            }
            ChatChunk::ToolCallArguments(d) => match self.tool_calls.get_mut(d.index as usize) {
                Some(call) => call.arguments.push_str(&d.arguments),
                None => {
                    self.breach.get_or_insert(format!(
                        "arguments for tool call {} before its start",
                        d.index
                    ));
                }
            },
            ChatChunk::ReasoningItem(r) => self.reasoning_items.push(r),
            ChatChunk::Citation(c) => self.citations.push(c),
            ChatChunk::Usage(_) => self.usage = true,
            ChatChunk::Finish(f) => self.finish_reason = Some(f),
        }
    }
}

/// Read `stream` to its end; the error that stopped it, if any.
pub async fn drain(
    session: &mut Session,
    stream: &ChatStreamHandle,
) -> (Streamed, Option<HostError>) {
    let mut out = Streamed::default();
    while out.chunks < MAX_CHUNKS {
        match session.next_chunk(stream).await {
            Ok(Some(chunk)) => out.take(chunk),
            Ok(None) => return (out, None),
            Err(e) => return (out, Some(e)),
        }
    }
    (out, None)
}

/// The first chat model of `lane` the connected account lists.
pub async fn model_in_lane(session: &mut Session, lane: Lane) -> Outcome<Model> {
    let list = session.models(false, None).await.step("models")?;
    match models_of(&list, lane).into_iter().next() {
        Some(m) => Ok(m),
        None => fail!("models: expected a chat model in lane {lane:?}, seen none"),
    }
}

fn check_reply(reply: &ChatReply, model: &Model, expected: &str, what: &str) -> Outcome {
    check!(
        reply.content == expected,
        "{what}: expected content {expected:?}, seen {:?}",
        reply.content
    );
    check!(
        reply.lane == model.lane,
        "{what}: expected lane {:?}, seen {:?}",
        model.lane,
        reply.lane
    );
    check!(
        reply.model == model.id,
        "{what}: expected model {:?}, seen {:?}",
        model.id,
        reply.model
    );
    let Some(usage) = &reply.usage else {
        fail!("{what}: expected usage (the API reported it), seen none");
    };
    check!(
        usage.total_tokens == usage.input_tokens + usage.output_tokens,
        "{what}: expected total = input + output tokens, seen {} != {} + {}",
        usage.total_tokens,
        usage.input_tokens,
        usage.output_tokens
    );
    check!(
        reply.finish_reason.is_some(),
        "{what}: expected a finish reason (the API reported it), seen none"
    );
    Ok(())
}

/// The body of the newest request the API received for `endpoint`.
fn last_body(ctx: &Ctx, endpoint: &str) -> Option<serde_json::Value> {
    ctx.api
        .requests()
        .iter()
        .rev()
        .find(|r| r.path.ends_with(endpoint))
        .and_then(|r| r.json())
}

/// A second `models` comes from the cache without a request; `force` makes one.
pub async fn models_cache_and_force(ctx: &mut Ctx) -> Outcome {
    let mut session = ctx.connected_session(3).await?;
    let first = session.models(false, None).await.step("models")?;
    let requests = ctx.api.stats().models_requests;
    check!(
        requests >= 1,
        "models: expected the list fetched from the API, the API saw no request"
    );

    let second = session.models(false, None).await.step("second models")?;
    check!(
        second.cached,
        "second models: expected cached=true, seen false"
    );
    check!(
        ctx.api.stats().models_requests == requests,
        "second models: expected no request, the API saw {}",
        ctx.api.stats().models_requests - requests
    );
    let ids = |l: &provider_runtime::bindings::types::ModelList| {
        l.models.iter().map(|m| m.id.clone()).collect::<Vec<_>>()
    };
    check!(
        ids(&first) == ids(&second),
        "second models: expected the same models, seen {:?} then {:?}",
        ids(&first),
        ids(&second)
    );

    let forced = session.models(true, None).await.step("models with force")?;
    check!(
        !forced.cached,
        "models with force: expected cached=false, seen true"
    );
    check!(
        ctx.api.stats().models_requests == requests + 1,
        "models with force: expected 1 request, the API saw {}",
        ctx.api.stats().models_requests - requests
    );
    check!(
        forced.fetched_at >= first.fetched_at,
        "models with force: expected fetched_at not before the first fetch, seen {} < {}",
        forced.fetched_at,
        first.fetched_at
    );

    let status = session.status().await.step("status")?;
    check!(
        ctx.api.stats().models_requests == requests + 1
            && status.models.len() == forced.models.len(),
        "status with a fresh cache: expected the {} cached models and no request, seen {} models and {} requests",
        forced.models.len(),
        status.models.len(),
        ctx.api.stats().models_requests - requests - 1
    );
    Ok(())
}

/// Every chat-completions model answers through `/chat/completions`, and a conversation
/// with a system message and earlier turns is sent whole.
pub async fn chat_completions_lane(ctx: &mut Ctx) -> Outcome {
    let mut session = ctx.connected_session(4).await?;
    let list = session.models(false, None).await.step("models")?;
    let models = models_of(&list, Lane::ChatCompletions);
    check!(
        models.len() >= 2,
        "models at tier 4: expected several chat-completions models, seen {}",
        models.len()
    );
    let responses_before = ctx.calls("responses");
    for model in &models {
        let text = format!("ping {}", model.id);
        let reply = session
            .chat(&ask(&model.id, &text))
            .await
            .step(&format!("chat with {}", model.id))?;
        check_reply(
            &reply,
            model,
            &echo(&text),
            &format!("chat with {}", model.id),
        )?;
        let body = last_body(ctx, "/chat/completions");
        let sent = body
            .as_ref()
            .and_then(|b| b.get("model")?.as_str().map(str::to_owned));
        check!(
            sent.as_deref().is_some_and(|s| names(&model.id, s)),
            "chat with {}: expected a /chat/completions request for that model, seen {sent:?}",
            model.id
        );
    }

    let model = &models[0];
    let mut conversation = ask(&model.id, "second question");
    conversation.messages = vec![
        Message::text(Role::System, "Answer briefly."),
        Message::text(Role::User, "first question"),
        Message::text(Role::Assistant, echo("first question")),
        Message::text(Role::User, "second question"),
    ];
    let reply = session
        .chat(&conversation)
        .await
        .step("chat with a conversation")?;
    check_reply(
        &reply,
        model,
        &echo("second question"),
        "chat with a conversation",
    )?;
    let sent = last_body(ctx, "/chat/completions")
        .and_then(|b| b.get("messages")?.as_array().map(Vec::len));
    check!(
        sent == Some(4),
        "chat with a conversation: expected the 4 messages sent, seen {sent:?}"
    );
    check!(
        ctx.calls("responses") == responses_before,
        "chat-completions models: expected no /responses request, the API saw {}",
        ctx.calls("responses") - responses_before
    );
    Ok(())
}

/// The multi-agent model answers through `/responses`, with its reasoning accounted; the
/// system message travels as `instructions` and the thinking effort as `reasoning.effort`.
pub async fn responses_lane(ctx: &mut Ctx) -> Outcome {
    let mut session = ctx.connected_session(4).await?;
    let model = model_in_lane(&mut session, Lane::Responses).await?;
    let chat_before = ctx.calls("chat/completions");
    let mut request = ask(&model.id, "agents, assemble");
    let system = "you are a committee of careful agents";
    request
        .messages
        .insert(0, Message::text(Role::System, system));
    request.thinking = Some(ThinkingEffort::High);
    let reply = session
        .chat(&request)
        .await
        .step(&format!("chat with {}", model.id))?;
    check_reply(
        &reply,
        &model,
        &echo("agents, assemble"),
        &format!("chat with {}", model.id),
    )?;
    let reasoning = reply.usage.as_ref().and_then(|u| u.reasoning_tokens);
    check!(
        reasoning.is_some_and(|r| r > 0),
        "chat with {}: expected reasoning tokens reported (the API reported them), seen {reasoning:?}",
        model.id
    );
    let body = last_body(ctx, "/responses").unwrap_or_default();
    let sent = body.get("model").and_then(|m| m.as_str());
    check!(
        sent.is_some_and(|s| names(&model.id, s)),
        "chat with {}: expected a /responses request for that model, seen {sent:?}",
        model.id
    );
    let instructions = body.get("instructions").and_then(|i| i.as_str());
    check!(
        instructions.is_some_and(|i| i.contains(system)),
        "chat with {}: expected the system message as `instructions`, seen {instructions:?}",
        model.id
    );
    let system_items = body
        .get("input")
        .and_then(|i| i.as_array())
        .map_or(0, |items| {
            items
                .iter()
                .filter(|item| item.get("role").and_then(|r| r.as_str()) == Some("system"))
                .count()
        });
    check!(
        system_items == 0,
        "chat with {}: expected no system item in `input` (it goes to `instructions`), seen {system_items}",
        model.id
    );
    let effort = body.pointer("/reasoning/effort").and_then(|e| e.as_str());
    check!(
        effort == Some("high"),
        "chat with {}: expected thinking high as `reasoning.effort` \"high\", seen {effort:?}",
        model.id
    );
    check!(
        ctx.calls("chat/completions") == chat_before,
        "chat with {}: expected no /chat/completions request, the API saw {}",
        model.id,
        ctx.calls("chat/completions") - chat_before
    );
    Ok(())
}

/// In both lanes the streamed chunks add up to the complete reply, ending with a finish
/// reason and usage. The text is cut mid UTF-8 character on the wire.
pub async fn streaming_both_lanes(ctx: &mut Ctx) -> Outcome {
    let mut session = ctx.connected_session(4).await?;
    let text = "stream me: héllo wörld ✓ — ünïcode split across chunks and packets, 0123456789";
    for lane in [Lane::ChatCompletions, Lane::Responses] {
        let model = model_in_lane(&mut session, lane).await?;
        let what = format!("stream from {} ({lane:?})", model.id);
        let whole = session
            .chat(&ask(&model.id, text))
            .await
            .step(&format!("chat with {}", model.id))?;
        let streams = ctx.api.stats().streams;
        let stream = session
            .open_chat_stream(&ask(&model.id, text))
            .await
            .step(&format!("opening a {what}"))?;
        let (streamed, error) = drain(&mut session, &stream).await;
        session
            .close_chat_stream(stream)
            .await
            .step(&format!("closing a {what}"))?;
        if let Some(e) = error {
            fail!(
                "{what}: expected the whole reply, seen an error after {} chunks: {}",
                streamed.chunks,
                describe(&e)
            );
        }
        check!(
            ctx.api.stats().streams == streams + 1,
            "{what}: expected a streamed request, the API saw {}",
            ctx.api.stats().streams - streams
        );
        check!(
            streamed.text == whole.content,
            "{what}: expected the chunks to add up to {:?}, seen {:?}",
            whole.content,
            streamed.text
        );
        check!(
            streamed.chunks > 1,
            "{what}: expected several chunks, seen {}",
            streamed.chunks
        );
        check!(
            streamed.finish_reason.is_some() && streamed.usage,
            "{what}: expected a finish reason and usage on the last chunk (the API sent both), seen finish_reason={:?} usage={}",
            streamed.finish_reason,
            streamed.usage
        );
    }
    Ok(())
}

/// A stream that ends (or breaks) before its terminal event is an error, never a silent
/// truncation; so is a complete reply whose body is cut short.
pub async fn cut_stream(ctx: &mut Ctx) -> Outcome {
    let mut session = ctx.connected_session(4).await?;
    let text = "a reply long enough to be cut into many streamed pieces";
    for (lane, route) in [
        (Lane::ChatCompletions, Route::ChatCompletions),
        (Lane::Responses, Route::Responses),
    ] {
        let model = model_in_lane(&mut session, lane).await?;
        for (kind, fault) in [
            ("cut cleanly", Fault::CutStream { after_events: 3 }),
            ("aborted", Fault::AbortStream { after_events: 3 }),
        ] {
            let what = format!("a {lane:?} stream {kind} before its terminal event");
            ctx.api.push_fault(route, fault);
            match session.open_chat_stream(&ask(&model.id, text)).await {
                Err(e) => {
                    expect_typed::<()>(Err(e), &what)?;
                }
                Ok(stream) => {
                    let (streamed, error) = drain(&mut session, &stream).await;
                    let _ = session.close_chat_stream(stream).await;
                    match error {
                        None => fail!(
                            "{what}: expected an error, seen a normal end after {} chunks ({:?}): a silent truncation",
                            streamed.chunks,
                            streamed.text
                        ),
                        Some(e) => {
                            expect_typed::<()>(Err(e), &what)?;
                        }
                    }
                }
            }
            check!(
                ctx.api.pending_faults() == 0,
                "{what}: expected the stream request sent, the API saw none"
            );
        }
    }

    let model = model_in_lane(&mut session, Lane::ChatCompletions).await?;
    ctx.api
        .push_fault(Route::ChatCompletions, Fault::CutStream { after_events: 1 });
    expect_typed(
        session.chat(&ask(&model.id, text)).await,
        "a complete reply whose body is cut short",
    )?;
    let status = session.status().await.step("status after cut streams")?;
    check!(
        status.connected,
        "status after cut streams: expected still connected, seen not connected"
    );
    Ok(())
}
