//! Command-line interface: argument parsing, dispatch, and output.

mod args;
mod chat;
mod conformance;
mod doctor;
mod key;
mod login;
mod render;
mod serve;
mod trust;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use provider_runtime::bindings::types::SettingKind;
use provider_runtime::config::env_overrides;
use provider_runtime::{ErrorCode, HostConfig, HostError, Runtime, RuntimeOptions, Session};
use serde_json::Value;

use self::args::{Cli, Command, PluginCommand};

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Help and version are for people: clap prints them as usual (also the help shown
        // for a bare `provider-host`).
        Err(e)
            if !e.use_stderr()
                || e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand =>
        {
            e.exit()
        }
        // A script gets its one JSON object for a bad command line too.
        Err(e) => {
            // `key set` takes the key on stdin: an extra argument there is most likely the
            // key itself, which must not be repeated back.
            let message = if std::env::args().any(|a| a == "key") {
                "`key` takes the API key on stdin or from --from-file, never as an argument \
                 (see `provider-host key --help`)"
                    .to_owned()
            } else {
                e.render().to_string()
            };
            return fail(&HostError::Provider(
                provider_runtime::bindings::types::ProviderError::InvalidInput(
                    message.trim().to_owned(),
                ),
            ));
        }
    };
    if matches!(cli.command, Command::Conformance(_)) && cli.log_level == "warn" {
        // The suite provokes sandbox refusals on purpose: do not warn about those.
        init_tracing("warn,provider_runtime::http_sandbox=error");
    } else {
        init_tracing(&cli.log_level);
    }
    // The conformance suite brings its own servers and endpoints: XAI_* play no part,
    // and no session of the operator's state is opened.
    if let Command::Conformance(args) = &cli.command {
        // Many sessions and embedded servers at once: worker threads.
        return match async_runtime(tokio::runtime::Builder::new_multi_thread().worker_threads(2)) {
            Ok(rt) => rt.block_on(conformance::run(&cli, args)),
            Err(e) => fail(&e),
        };
    }
    if let Command::ServeKey { command } = &cli.command {
        return serve::keys_command(&cli, command);
    }
    if let Command::Secrets { command } = &cli.command {
        return key::secrets_command(&cli, command);
    }
    if let Command::Plugin {
        command: PluginCommand::Trust { path },
    } = &cli.command
    {
        return trust::command(&cli, path);
    }
    let _ = GRANT.set(Grant {
        env: cli.allow_env.iter().cloned().collect(),
        // The embedded plugin's manifest is the build's: approved as it is.
        default_route: cli.plugin.is_none(),
        // Another component's grant is the operator's record (`plugin trust`).
        trusted_by: cli
            .plugin
            .clone()
            .and_then(|path| Some((cli.state_dir().ok()?, path))),
    });
    // Refuse a bad proxy environment before anything runs, whatever the subcommand (the
    // plugin's own settings are checked against its manifest once it is loaded).
    let config = match HostConfig::new() {
        Ok(c) => c.with_user_agent(concat!("provider-host/", env!("CARGO_PKG_VERSION"))),
        Err(e) => return fail(&e),
    };
    if let Command::Serve(args) = &cli.command {
        // Many tenants and requests at once: worker threads.
        return match async_runtime(tokio::runtime::Builder::new_multi_thread().worker_threads(2)) {
            Ok(rt) => rt.block_on(serve::run(&cli, config, args)),
            Err(e) => fail(&e),
        };
    }
    // One tenant, one call at a time: a single-threaded runtime starts faster than worker
    // threads would, and the call never waits on another thread to be scheduled.
    match async_runtime(&mut tokio::runtime::Builder::new_current_thread()) {
        Ok(rt) => rt.block_on(run(cli, config)),
        Err(e) => fail(&e),
    }
}

/// `config` plus the operator's environment: every setting of the plugin's manifest that
/// names an environment variable (xAI's plugin: `XAI_OAUTH_ISSUER`, `XAI_API_BASE`,
/// `XAI_CLIENT_ID`, `XAI_OAUTH_SCOPE`, `XAI_ROUTE`, `XAI_SUBSCRIPTION_BASE`, ...) is
/// overridden by that variable when it is set; `routes` are enabled besides the default.
///
/// What the plugin may read is checked first ([`provider_runtime::config::env_overrides`]):
/// its own prefix (`XAI_` for the embedded plugin) or a name the operator approved with
/// `--allow-env`, never the host's own, proxy or credential variables. The embedded
/// plugin's default route is granted (its manifest is the build's); another component's
/// opens a route-bound endpoint only when the operator or the request names the route.
pub(crate) async fn env_config(
    runtime: &Runtime,
    mut config: HostConfig,
    routes: &[&str],
) -> Result<HostConfig, HostError> {
    let manifest = runtime.manifest().await?;
    let _ = ENDPOINT_VARS.set(
        manifest
            .settings
            .iter()
            .filter(|s| s.kind == SettingKind::Endpoint)
            .filter_map(|s| s.env.clone())
            .collect(),
    );
    let _ = SETTING_VARS.set(
        manifest
            .settings
            .iter()
            .filter_map(|s| Some((s.key.clone(), s.env.clone()?)))
            .collect(),
    );
    let mut grant = GRANT.get().cloned().unwrap_or_default();
    if let Some((state_dir, path)) = &grant.trusted_by
        && let Some(record) = trust::grant_for(state_dir, path, &manifest)?
    {
        grant.env.extend(record.env);
        grant.default_route |= record.default_route;
    }
    for found in env_overrides(&manifest, &grant.env, |var| std::env::var(var).ok())? {
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

/// What the operator grants the plugin of this command line beyond its own manifest: set
/// once by `main` from the flags, read by [`env_config`].
#[derive(Clone, Default)]
struct Grant {
    /// Environment names approved besides the plugin's own prefix (`--allow-env`).
    env: std::collections::BTreeSet<String>,
    /// The plugin's default `route-name` opens its route (the embedded plugin, or a
    /// trusted component whose record grants it).
    default_route: bool,
    /// For `--plugin PATH`: the state directory holding the operator's trust records, and
    /// the component.
    trusted_by: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

static GRANT: std::sync::OnceLock<Grant> = std::sync::OnceLock::new();

/// The runtime options of this command line: state directory, embedded or given
/// component, secret backend, call timeout.
pub(crate) fn runtime_options(cli: &Cli) -> Result<RuntimeOptions, HostError> {
    let mut options = RuntimeOptions::new(cli.plugin_source(), cli.state_dir()?);
    if let Some(t) = cli.call_timeout_secs {
        options.limits.call_timeout = std::time::Duration::from_secs(t);
    }
    options.secrets = key::secret_backend(cli)?;
    Ok(options)
}

fn async_runtime(
    builder: &mut tokio::runtime::Builder,
) -> Result<tokio::runtime::Runtime, HostError> {
    builder
        .enable_all()
        .build()
        .map_err(|e| HostError::Config(format!("cannot start the async runtime: {e}")))
}

fn init_tracing(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    // Colours only for a terminal: a log captured to a file or a pipe stays plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .try_init();
}

async fn open_session(cli: &Cli, config: HostConfig) -> Result<(Runtime, Session), HostError> {
    let mut options = runtime_options(cli)?;
    // One session per process: reserving the instance pool (sized for thousands of
    // tenants) would cost more than the whole call.
    options.allocation = provider_runtime::limits::InstanceAllocation::OnDemand;
    let runtime = Runtime::new(options)?;
    let manifest = runtime.manifest().await?;
    let routes: Vec<&str> = match &cli.command {
        Command::Doctor { route, .. } => route.iter().map(String::as_str).collect(),
        _ => Vec::new(),
    };
    let route = match &cli.command {
        Command::Models { route, .. } | Command::Usage { route } => route.as_deref(),
        // `--model` with a route's prefix names that route as `--route` would.
        Command::Chat(args) => args.route.as_deref().or_else(|| {
            let model = args.model.as_deref()?;
            Some(manifest.route_of_model(model)?.name.as_str())
        }),
        _ => None,
    };
    let routes: Vec<&str> = route.into_iter().chain(routes).collect();
    let config = env_config(&runtime, config, &routes).await?;
    let session = runtime.session(&cli.tenant, &config).await?;
    Ok((runtime, session))
}

async fn run(cli: Cli, config: HostConfig) -> ExitCode {
    let (_runtime, mut session) = match open_session(&cli, config).await {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    let result: Result<Value, HostError> = match &cli.command {
        Command::Status => session.status().await.map(|s| render::status(&s)),
        Command::Start => session.start().await.map(|p| render::prompt(&p)),
        Command::Poll { pending_id } => session
            .poll(pending_id.as_deref())
            .await
            .map(|o| render::poll(&o)),
        Command::Logout => session.logout().await.map(|r| render::logout(&r)),
        Command::Refresh => session.refresh().await.map(|s| render::status(&s)),
        Command::Models { force, route } => session
            .models(*force, route.as_deref())
            .await
            .map(|m| render::models(&m)),
        Command::Usage { route } => session
            .usage(route.as_deref())
            .await
            .map(|u| render::quota(&u)),
        Command::Key { command } => key::run(&mut session, command).await,
        Command::Doctor { json, no_chat, .. } => {
            let manifest = match _runtime.manifest().await {
                Ok(m) => m,
                Err(e) => return fail(&e),
            };
            let report = doctor::run(&mut session, &manifest, !no_chat).await;
            let healthy = report["ok"] == true;
            if *json {
                print_json(&report);
            } else {
                print!("{}", doctor::human(&report));
            }
            return if healthy {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            };
        }
        Command::Login(args) => return login::run(&mut session, args).await,
        Command::Chat(args) => return chat::run(&mut session, args).await,
        // Dispatched by `main` before any session opens; kept here for completeness.
        Command::Conformance(args) => return conformance::run(&cli, args).await,
        Command::Serve(_)
        | Command::ServeKey { .. }
        | Command::Secrets { .. }
        | Command::Plugin { .. } => {
            unreachable!("dispatched by main")
        }
    };
    match result {
        Ok(v) => ok(v),
        Err(e) => fail(&e),
    }
}

/// Print a success object and exit 0.
pub(crate) fn ok(v: Value) -> ExitCode {
    print_json(&v);
    ExitCode::SUCCESS
}

/// The environment variables of the plugin's endpoints (from its manifest, once loaded),
/// for error actions.
static ENDPOINT_VARS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();

/// Every setting of the plugin's manifest with the environment variable it is read from
/// (key, variable), for error actions that name a setting.
static SETTING_VARS: std::sync::OnceLock<Vec<(String, String)>> = std::sync::OnceLock::new();

/// `client_outdated`: the plugin's message names the setting to change; say which
/// environment variable sets it here.
fn client_outdated_action(message: &str) -> String {
    let named = SETTING_VARS.get().and_then(|vars| {
        vars.iter()
            .filter(|(key, _)| message.contains(key.as_str()))
            .max_by_key(|(key, _)| key.len())
    });
    match named {
        Some((key, var)) => format!(
            "Upstream refuses the client version this plugin announces: set {var} (the \
             plugin's setting {key}) to a current release of the vendor's own client, at least \
             the minimum the message names, then retry. Logging in again will not help."
        ),
        None => "Upstream refuses the client version this plugin announces: set the plugin's \
             setting the message names (through its environment variable) to a current release, \
             then retry. Logging in again will not help."
            .to_owned(),
    }
}

/// What to do next, in this CLI's words (its commands and flags); the library's action
/// (in the contract's terms) where the CLI has nothing to add.
fn cli_action(e: &HostError) -> String {
    let others = e.alternatives().join(", ");
    match e.code() {
        ErrorCode::RateLimited if !others.is_empty() => format!(
            "Rate limit reached: wait (retry_after_seconds when given), or send this request \
             on another route with --route ({others}); do not retry in a loop."
        ),
        ErrorCode::QuotaExhausted if !others.is_empty() => format!(
            "This route's quota or spending limit is spent: wait for it to reset, or send \
             this request on another route with --route ({others})."
        ),
        ErrorCode::QuotaExhausted => {
            "This route's quota or spending limit is spent: wait for it to reset.".to_owned()
        }
        ErrorCode::NotConnected => {
            "Not signed in (or no login pending): run `login` (or `start`, then `poll`); \
             for a key route, store a key with `key set`."
                .to_owned()
        }
        ErrorCode::ExpiredToken => {
            "The device code expired: run `login` (or `start`) again.".to_owned()
        }
        ErrorCode::AccessDenied => {
            "Do not retry: the account was refused at authorization. Check that \
             the subscription is active and approve in the browser where you are signed in, \
             or use an API key instead (BYOK: `key set`, then a route that spends it)."
                .to_owned()
        }
        ErrorCode::Unauthorized if e.to_string().contains("revoked") => {
            "The login was revoked: another \
             client using the same OAuth client id for this account (such as the vendor's own \
             CLI) may have rotated it. Run `logout`, then `login` again."
                .to_owned()
        }
        ErrorCode::Unauthorized => {
            "The credentials were refused: for the login, run `logout` then \
             `login`; for an API key, store a valid one with `key set`."
                .to_owned()
        }
        ErrorCode::ClientOutdated => client_outdated_action(&e.to_string()),
        ErrorCode::DeniedBySandbox => {
            let vars = ENDPOINT_VARS
                .get()
                .map(|v| v.join(", "))
                .unwrap_or_default();
            format!(
                "The host's allowlist refused the destination: check the endpoint variables \
                 ({vars}), and name a route-bound endpoint's route with --route."
            )
        }
        ErrorCode::ConfigError => "Fix the flags or the plugin's environment variables.".to_owned(),
        ErrorCode::PluginError => {
            "Check --plugin: it must be a component of the model-provider:plugin world.".to_owned()
        }
        // The contract's wording says it all for these.
        ErrorCode::RateLimited
        | ErrorCode::TierDenied
        | ErrorCode::UpstreamUnavailable
        | ErrorCode::Network
        | ErrorCode::InvalidResponse
        | ErrorCode::InvalidInput
        | ErrorCode::Storage
        | ErrorCode::PoolExhausted
        | ErrorCode::TenantBusy
        | ErrorCode::HostError
        | ErrorCode::CallTimeout
        | ErrorCode::MemoryLimit
        | ErrorCode::ResourceLimit
        | ErrorCode::StreamClosed
        | ErrorCode::PluginTrap => e.action(),
    }
}

/// Print an error object and exit 1.
pub(crate) fn fail(e: &HostError) -> ExitCode {
    tracing::debug!(code = e.code().as_str(), "command failed");
    let mut v = e.to_json();
    v["action"] = Value::String(cli_action(e));
    print_json(&v);
    ExitCode::FAILURE
}

pub(crate) fn print_json(v: &Value) {
    let mut out = std::io::stdout().lock();
    let _ = serde_json::to_writer(&mut out, v);
    let _ = writeln!(out);
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;
    use provider_runtime::bindings::types::ProviderError;

    #[test]
    fn actions_name_the_setting_of_an_outdated_client_and_a_revoked_login() {
        let _ = SETTING_VARS.set(vec![
            (
                "subscription-client-version".into(),
                "XAI_SUBSCRIPTION_CLIENT_VERSION".into(),
            ),
            ("subscription-base".into(), "XAI_SUBSCRIPTION_BASE".into()),
        ]);
        let e = HostError::Provider(ProviderError::ClientOutdated(
            "it asks for version 0.1.202 or later. Set the setting subscription-client-version"
                .into(),
        ));
        let action = cli_action(&e);
        assert!(
            action.contains("XAI_SUBSCRIPTION_CLIENT_VERSION")
                && action.contains("subscription-client-version"),
            "{action}"
        );
        assert!(!action.contains("grok update"), "{action}");
        assert_eq!(e.to_json()["error"], "client_outdated");

        let e = HostError::Provider(ProviderError::Unauthorized(
            "the login was revoked or has expired".into(),
        ));
        let action = cli_action(&e);
        assert!(
            action.contains("same OAuth client id") && action.contains("`login`"),
            "{action}"
        );
    }
}
