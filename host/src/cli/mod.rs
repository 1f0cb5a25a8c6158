//! Command-line interface: argument parsing, dispatch, and output.

mod args;
mod chat;
mod conformance;
mod key;
mod login;
mod serve;
mod trust;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use provider_app::{PluginVars, Surface, doctor, render};
use provider_runtime::{HostConfig, HostError, Runtime, RuntimeOptions, Session};
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
    // Refuse a bad proxy environment before anything runs, whatever the subcommand (the
    // plugin's own settings are checked against its manifest once it is loaded).
    let config = match HostConfig::new() {
        Ok(c) => c.with_user_agent(concat!("provider-host/", env!("CARGO_PKG_VERSION"))),
        Err(e) => return fail(&e),
    };
    if let Command::Serve(args) = &cli.command {
        // Many tenants and requests at once: a worker thread per core it may use.
        let workers = args.workers.map_or_else(
            || std::thread::available_parallelism().map_or(2, |n| n.get()),
            usize::from,
        );
        return match async_runtime(
            tokio::runtime::Builder::new_multi_thread().worker_threads(workers),
        ) {
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

/// `config` plus the operator's environment and what this command line grants the plugin
/// (see [`provider_app::env_config`]); `routes` are enabled besides the default.
pub(crate) async fn env_config(
    cli: &Cli,
    runtime: &Runtime,
    config: HostConfig,
    routes: &[&str],
) -> Result<HostConfig, HostError> {
    let grant = cli.settings().grant();
    provider_app::env_config(runtime, config, routes, &grant, &provider_app::process_env).await
}

/// The runtime options of this command line: state directory, embedded or given
/// component, secret backend, call timeout.
pub(crate) fn runtime_options(cli: &Cli) -> Result<RuntimeOptions, HostError> {
    cli.settings().runtime_options()
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

async fn open_session(
    cli: &Cli,
    config: HostConfig,
) -> Result<(Runtime, Session, PluginVars), HostError> {
    let settings = cli.settings();
    // One session per process (see provider_app::runtime).
    let runtime = provider_app::runtime(&settings)?;
    let manifest = runtime.manifest().await?;
    let routes: Vec<&str> = match &cli.command {
        Command::Doctor { route, .. } => route.iter().map(String::as_str).collect(),
        _ => Vec::new(),
    };
    let route = match &cli.command {
        Command::Models { route, .. } | Command::Usage { route } => route.as_deref(),
        // `--model` with a route's prefix names that route as `--route` would.
        Command::Chat(args) => {
            provider_app::chat_route(&manifest, args.route.as_deref(), args.model.as_deref())
        }
        _ => None,
    };
    let routes: Vec<&str> = route.into_iter().chain(routes).collect();
    let (session, vars) = provider_app::open_session(
        &runtime,
        &settings,
        config,
        &routes,
        &provider_app::process_env,
    )
    .await?;
    Ok((runtime, session, vars))
}

async fn run(cli: Cli, config: HostConfig) -> ExitCode {
    let (_runtime, mut session, vars) = match open_session(&cli, config).await {
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
        // Written straight out, with no `Value` per model.
        Command::Models { force, route } => match session.models(*force, route.as_deref()).await {
            Ok(m) => {
                print_json(&render::ModelsJson(&m));
                return ExitCode::SUCCESS;
            }
            Err(e) => Err(e),
        },
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
            let report = doctor::run(&mut session, &manifest, !no_chat, Surface::Cli).await;
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
        Command::Login(args) => return login::run(&mut session, args, &vars).await,
        Command::Chat(args) => return chat::run(&mut session, args, &vars).await,
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
        Err(e) => fail_with(&e, &vars),
    }
}

/// Print a success object and exit 0.
pub(crate) fn ok(v: Value) -> ExitCode {
    print_json(&v);
    ExitCode::SUCCESS
}

/// Print an error object and exit 1 (before a plugin is loaded: no variables to name).
pub(crate) fn fail(e: &HostError) -> ExitCode {
    fail_with(e, &PluginVars::default())
}

/// Print an error object whose action may name the plugin's variables, and exit 1.
pub(crate) fn fail_with(e: &HostError, vars: &PluginVars) -> ExitCode {
    tracing::debug!(code = e.code().as_str(), "command failed");
    print_json(&provider_app::error_json(e, vars, Surface::Cli));
    ExitCode::FAILURE
}

pub(crate) fn print_json<T: serde::Serialize + ?Sized>(v: &T) {
    let mut out = std::io::stdout().lock();
    let _ = serde_json::to_writer(&mut out, v);
    let _ = writeln!(out);
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;
    use provider_runtime::bindings::types::ProviderError;

    /// What to do next, in this CLI's words (its commands and flags).
    fn cli_action(e: &HostError, vars: &PluginVars) -> String {
        provider_app::action::action(e, vars, Surface::Cli)
    }

    #[test]
    fn actions_name_the_setting_of_an_outdated_client_and_a_revoked_login() {
        // What the loaded plugin's manifest names, passed as a value.
        let vars = PluginVars {
            endpoints: Vec::new(),
            settings: vec![
                (
                    "subscription-client-version".into(),
                    "XAI_SUBSCRIPTION_CLIENT_VERSION".into(),
                ),
                ("subscription-base".into(), "XAI_SUBSCRIPTION_BASE".into()),
            ],
        };
        let e = HostError::Provider(ProviderError::ClientOutdated(
            "it asks for version 0.1.202 or later. Set the setting subscription-client-version"
                .into(),
        ));
        let action = cli_action(&e, &vars);
        assert!(
            action.contains("XAI_SUBSCRIPTION_CLIENT_VERSION")
                && action.contains("subscription-client-version"),
            "{action}"
        );
        assert!(!action.contains("grok update"), "{action}");
        assert_eq!(e.code().as_str(), "client_outdated");

        let e = HostError::Provider(ProviderError::Unauthorized(
            "the login was revoked or has expired".into(),
        ));
        let action = cli_action(&e, &vars);
        assert!(
            action.contains("same OAuth client id") && action.contains("`login`"),
            "{action}"
        );
    }
}
