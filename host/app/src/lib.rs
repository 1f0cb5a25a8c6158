//! # provider-app
//!
//! The `provider-host` CLI's behaviour as a library, shared by the CLI and the Python
//! package (`host/python`) so that both run one rule for each of these, and a login made
//! by either is seen by the other:
//!
//! - [`component`]: the xAI plugin component, embedded at build time with its digest;
//! - [`Settings`]: the state directory, tenant, component, secret backend (the state
//!   directory's encrypted files, or PostgreSQL) and call timeout, and the [`Grant`] of
//!   the operator (environment names, default route, [`trust`] records of other components);
//! - [`env_config`]: the plugin's settings read from the environment variables its manifest
//!   names, checked before any tenant's state is touched;
//! - [`render`], [`chat`] and [`action`]: results, stream events and errors as the
//!   script-mode JSON objects, with actions in the words of the [`Surface`] the caller uses;
//! - [`doctor`]: every check a working setup needs, with its fix.
//!
//! Nothing here is process-global: what was read from the plugin's manifest for error
//! wording ([`PluginVars`]) and what the operator grants ([`Grant`]) are values passed in.
#![deny(missing_docs)]

pub mod action;
pub mod chat;
pub mod component;
pub mod doctor;
pub mod render;
mod settings;
pub mod trust;

use provider_runtime::bindings::types::PluginManifest;
use provider_runtime::config::env_overrides;
use provider_runtime::{HostConfig, HostError, Runtime, Session};

pub use action::{PluginVars, Surface, error_json};
pub use settings::{DEFAULT_TENANT, Grant, SECRETS_URL_VAR, STATE_DIR_VAR, Settings};

/// `config` plus the operator's environment: every setting of the plugin's manifest that
/// names an environment variable (xAI's plugin: `XAI_OAUTH_ISSUER`, `XAI_API_BASE`,
/// `XAI_CLIENT_ID`, `XAI_OAUTH_SCOPE`, `XAI_ROUTE`, `XAI_SUBSCRIPTION_BASE`, ...) is
/// overridden by that variable when `env` has it; `routes` are enabled besides the default.
///
/// What the plugin may read is checked first ([`provider_runtime::config::env_overrides`]):
/// its own prefix (`XAI_` for the embedded plugin) or a name the operator approved
/// ([`Grant::env`]), never the host's own, proxy or credential variables. The embedded
/// plugin's default route is granted (its manifest is the build's); another component's
/// opens a route-bound endpoint only when its trust record, the operator or the request
/// names the route.
pub async fn env_config(
    runtime: &Runtime,
    mut config: HostConfig,
    routes: &[&str],
    grant: &Grant,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<HostConfig, HostError> {
    let manifest = runtime.manifest().await?;
    let mut grant = grant.clone();
    if let Some((state_dir, path)) = &grant.trusted_by
        && let Some(record) = trust::grant_for(state_dir, path, &manifest)?
    {
        grant.env.extend(record.env);
        grant.default_route |= record.default_route;
    }
    for found in env_overrides(&manifest, &grant.env, env)? {
        config = config.set(found.key, found.value);
    }
    if grant.default_route {
        config = config.grant_default_route();
    }
    for route in routes {
        config = config.enable_route(*route);
    }
    // Checked now, so a bad value is refused before any tenant state is touched.
    runtime.resolve(&config).await?;
    Ok(config)
}

/// The process environment, as [`env_config`] reads it by default.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// A runtime for a few sessions at a time (a CLI call, a Python process): instances are
/// allocated on demand, since reserving the instance pool (sized for thousands of tenants)
/// would cost more than a whole call.
pub fn runtime(settings: &Settings) -> Result<Runtime, HostError> {
    let mut options = settings.runtime_options()?;
    options.allocation = provider_runtime::limits::InstanceAllocation::OnDemand;
    Runtime::new(options)
}

/// The route a chat call enables: the one named, else the one whose prefix `model` has.
pub fn chat_route<'a>(
    manifest: &'a PluginManifest,
    route: Option<&'a str>,
    model: Option<&str>,
) -> Option<&'a str> {
    route.or_else(|| Some(manifest.route_of_model(model?)?.name.as_str()))
}

/// A session of `settings`' tenant with `config` plus the environment (see
/// [`env_config`]) and `routes` enabled, and the plugin's variables for error actions.
pub async fn open_session(
    runtime: &Runtime,
    settings: &Settings,
    config: HostConfig,
    routes: &[&str],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Session, PluginVars), HostError> {
    let manifest = runtime.manifest().await?;
    let vars = PluginVars::of(&manifest);
    let config = env_config(runtime, config, routes, &settings.grant(), env).await?;
    let session = runtime.session(&settings.tenant, &config).await?;
    Ok((session, vars))
}
