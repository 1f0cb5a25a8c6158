//! The minimal embedding of a model-provider plugin: a runtime, a tenant's session, a
//! device login, one chat turn whole and one streamed.
//!
//! `cargo run -p provider-runtime --example embed -- <component.wasm> <state-dir>` (against
//! the component's default endpoints; `tests/all/embedding.rs` runs this very file against
//! the reference servers).

use std::time::Duration;

use provider_runtime::bindings::types::{
    ChatChunk, ChatRequest, DevicePrompt, Message, PollOutcome, Role,
};
use provider_runtime::{HostConfig, HostError, Runtime, RuntimeOptions};

/// Signs `tenant` in unless it is (handing the prompt to `show`), then asks one question
/// whole and streamed; answers both replies' text.
pub async fn embed(
    options: RuntimeOptions,
    config: HostConfig,
    tenant: &str,
    show: impl Fn(&DevicePrompt),
) -> Result<(String, String), HostError> {
    // One runtime per process: it compiles the component once and shares its engine.
    let runtime = Runtime::new(options)?;
    // The plugin's default route opens its endpoint only when the embedder grants it
    // (a plugin never widens its own sandbox): this embedder trusts the component it runs.
    let config = config.grant_default_route();
    let mut session = runtime.session(tenant, &config).await?;

    if !session.status().await?.connected {
        let prompt = session.start().await?;
        show(&prompt);
        let mut interval = prompt.interval_seconds;
        loop {
            tokio::time::sleep(Duration::from_secs(interval.into())).await;
            match session.poll(Some(&prompt.pending_id)).await? {
                PollOutcome::Connected(_) => break,
                // `slow_down` raises the interval: honour the one the plugin answers.
                PollOutcome::Pending(p) => interval = p.interval_seconds,
            }
        }
    }

    let model = session.status().await?.default_model_id.unwrap_or_default();
    let question = ChatRequest::new(model, vec![Message::text(Role::User, "Say hi.")]);
    let whole = session.chat(&question).await?.content;

    let stream = session.open_chat_stream(&question).await?;
    let mut streamed = String::new();
    while let Some(chunk) = session.next_chunk(&stream).await? {
        if let ChatChunk::Text(text) = chunk {
            streamed.push_str(&text);
        }
    }
    session.close_chat_stream(stream).await?;
    Ok((whole, streamed))
}

#[allow(dead_code)] // The test includes this file and calls `embed` only.
#[tokio::main]
async fn main() -> Result<(), HostError> {
    let mut args = std::env::args().skip(1);
    let (Some(component), Some(state)) = (args.next(), args.next()) else {
        eprintln!("usage: embed <component.wasm> <state-dir>");
        std::process::exit(2);
    };
    let (whole, streamed) = embed(
        RuntimeOptions::new(component, state),
        HostConfig::new()?,
        "default",
        |p| {
            println!(
                "Open {} and check the code {}",
                p.verification_url_with_code, p.user_code
            )
        },
    )
    .await?;
    println!("{whole}\n{streamed}");
    Ok(())
}
