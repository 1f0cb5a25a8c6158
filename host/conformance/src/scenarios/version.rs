//! The subscription rail's version gate: a client version below its floor is refused on
//! inference only, as `client_outdated`, final, naming the setting to change.

use provider_runtime::bindings::types::ChatRequest;
use provider_runtime::{HostError, Session};

use crate::check::{Outcome, Step, check, expect_code, fail};
use crate::context::{Ctx, ask, echo};
use crate::scenarios::routes::{
    CLIENT_VERSION_KEY, RAIL, no_header_refusals, rail_inference, rail_model, served_by, with_rail,
};

/// A streamed turn: the error it ends with, whether the open or a chunk failed.
async fn stream_outcome(session: &mut Session, request: &ChatRequest) -> Result<(), HostError> {
    let stream = session.open_chat_stream(request).await?;
    let (_, error) = crate::scenarios::chat::drain(session, &stream).await;
    let _ = session.close_chat_stream(stream).await;
    error.map_or(Ok(()), Err)
}

/// The rail's version gate (reference doc §2.2): a client version below the floor, or one
/// that is no release, is refused with 426 on inference only; that is `client_outdated`,
/// final (one request, no refresh), quoting the minimum the rail named and naming the
/// setting (and its environment variable), never relaying the rail's "grok update"
/// advice. `/models` is not gated, and the plugin's default version passes.
pub async fn version_gate(ctx: &mut Ctx) -> Outcome {
    let manifest = ctx.runtime.manifest().await.step("manifest")?;
    let Some(setting) = manifest
        .settings
        .iter()
        .find(|s| s.key == CLIENT_VERSION_KEY)
        .cloned()
    else {
        fail!(
            "manifest: expected a setting {CLIENT_VERSION_KEY:?} (the client version the rail is told), seen {:?}",
            manifest.settings.iter().map(|s| &s.key).collect::<Vec<_>>()
        );
    };
    let mut session = ctx.session_with(&with_rail(ctx)).await?;
    ctx.connect(&mut session, 3).await?;

    for value in ["0.1.0", "2026.9.3"] {
        let what = format!("the subscription route announcing client version {value}");
        let config = with_rail(ctx).set(CLIENT_VERSION_KEY, value);
        let mut gated = ctx.session_with(&config).await?;
        // The catalogue is not gated: a client looks healthy until its first turn.
        let listed = ctx.api.rail_stats().models_requests;
        let model = rail_model(&mut gated, true, &what).await?;
        check!(
            ctx.api.rail_stats().models_requests > listed,
            "{what}: expected the forced model list fetched from the rail, it saw no /models request"
        );
        let mut request = ask(&model.id, "gated");
        request.route = Some(RAIL.into());
        let (sent, refused, redemptions) = (
            rail_inference(ctx),
            ctx.api.rail_stats().client_outdated,
            ctx.auth.stats().refresh_redemptions,
        );
        let err = expect_code(
            gated.chat(&request).await,
            "client_outdated",
            &format!("chat on {what}"),
        )?;
        check!(
            ctx.api.rail_stats().client_outdated == refused + 1,
            "chat on {what}: expected the rail's version gate to refuse 1 request, it refused {}",
            ctx.api.rail_stats().client_outdated - refused
        );
        check!(
            rail_inference(ctx) - sent == 1,
            "chat on {what}: expected exactly 1 request (426 is final), the rail saw {}",
            rail_inference(ctx) - sent
        );
        check!(
            ctx.auth.stats().refresh_redemptions == redemptions,
            "chat on {what}: expected no refresh (logging in again does not help), the server saw one"
        );
        let text = err.to_string();
        check!(
            text.contains(provider_reference::MIN_CLIENT_VERSION),
            "chat on {what}: expected the message to quote the minimum the rail named ({}), seen {text:?}",
            provider_reference::MIN_CLIENT_VERSION
        );
        check!(
            text.contains(CLIENT_VERSION_KEY),
            "chat on {what}: expected the message to name the setting {CLIENT_VERSION_KEY:?}, seen {text:?}"
        );
        if let Some(env) = &setting.env {
            check!(
                text.contains(env.as_str()),
                "chat on {what}: expected the message to name the setting's environment variable {env}, seen {text:?}"
            );
        }
        check!(
            !text.contains("grok update"),
            "chat on {what}: the message relays the rail's `grok update` advice (xAI's CLI's, not this plugin's): {text:?}"
        );
        expect_code(
            stream_outcome(&mut gated, &request).await,
            "client_outdated",
            &format!("a stream on {what}"),
        )?;
    }

    // The default value is a release the rail knows.
    let model = rail_model(&mut session, false, "the default client version").await?;
    let refused = ctx.api.rail_stats().client_outdated;
    let reply = served_by(
        &mut session,
        &ask(&model.id, "default version"),
        RAIL,
        "chat on the subscription route with the default client version",
    )
    .await?;
    check!(
        reply.content == echo("default version") && ctx.api.rail_stats().client_outdated == refused,
        "chat with the default client version: expected {:?} and no 426, seen {:?} after {} refusal(s)",
        echo("default version"),
        reply.content,
        ctx.api.rail_stats().client_outdated - refused
    );
    no_header_refusals(ctx, "version gate")
}
