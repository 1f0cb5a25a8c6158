//! The host's allowlist is enforced whatever the plugin is told: a request to an origin
//! outside it is refused before it leaves, and the plugin reports `denied_by_sandbox`.

use crate::check::{Outcome, Step, check, expect_code};
use crate::context::Ctx;

/// An allowlist without the issuer refuses the login; one without the API refuses chat.
pub async fn sandbox_denial(ctx: &mut Ctx) -> Outcome {
    let api_only = ctx
        .config
        .clone()
        .with_allowed_origins(&[&ctx.api.base_url()])
        .step("configuring an allowlist without the issuer")?;
    let mut session = ctx.session_with(&api_only).await?;
    expect_code(
        session.start().await,
        "denied_by_sandbox",
        "start with the issuer outside the allowlist",
    )?;
    check!(
        ctx.auth.requests().is_empty(),
        "start with the issuer outside the allowlist: expected no request to reach the issuer, it saw {}",
        ctx.auth.requests().len()
    );
    check!(
        session.denied_requests() >= 1,
        "start with the issuer outside the allowlist: expected the host to count a refused request, it counted none"
    );
    let status = session
        .status()
        .await
        .step("status after a refused request")?;
    check!(
        !status.connected,
        "status after a refused login: expected not connected, seen connected"
    );

    // Logged in normally, then the same tenant under an allowlist without the API.
    let _connected = ctx.connected_session(1).await?;
    let auth_only = ctx
        .config
        .clone()
        .with_allowed_origins(&[ctx.auth.issuer()])
        .step("configuring an allowlist without the API")?;
    let mut session = ctx.session_with(&auth_only).await?;
    let reached = ctx.api.requests().len();
    expect_code(
        session.models(true, None).await,
        "denied_by_sandbox",
        "models with the API outside the allowlist",
    )?;
    check!(
        ctx.api.requests().len() == reached,
        "models with the API outside the allowlist: expected no request to reach the API, it saw {}",
        ctx.api.requests().len() - reached
    );
    check!(
        session.denied_requests() >= 1,
        "models with the API outside the allowlist: expected the host to count a refused request, it counted none"
    );
    Ok(())
}
