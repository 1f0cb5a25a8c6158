//! Command-line interface: argument parsing, dispatch, and output.

mod args;
mod chat;
mod conformance;
mod login;
mod openai;
mod render;
mod serve;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use provider_runtime::{HostConfig, HostError, ProviderSettings, Runtime, RuntimeOptions, Session};
use serde_json::Value;

use self::args::{Cli, Command};

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
            let message = e.render().to_string();
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
    // Refuse a bad configuration before anything runs, whatever the subcommand.
    let config = match HostConfig::new(ProviderSettings::from_env()) {
        Ok(c) => c,
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

async fn open_session(cli: &Cli, config: &HostConfig) -> Result<(Runtime, Session), HostError> {
    let state_dir = cli.state_dir()?;
    let mut options = RuntimeOptions::new(cli.plugin_source(), state_dir);
    // One session per process: reserving the instance pool (sized for thousands of
    // tenants) would cost more than the whole call.
    options.allocation = provider_runtime::limits::InstanceAllocation::OnDemand;
    if let Some(t) = cli.call_timeout_secs {
        options.limits.call_timeout = std::time::Duration::from_secs(t);
    }
    let runtime = Runtime::new(options)?;
    let session = runtime.session(&cli.tenant, config).await?;
    Ok((runtime, session))
}

async fn run(cli: Cli, config: HostConfig) -> ExitCode {
    let (_runtime, mut session) = match open_session(&cli, &config).await {
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
        Command::Models { force } => session.models(*force).await.map(|m| render::models(&m)),
        Command::Login(args) => return login::run(&mut session, args).await,
        Command::Chat(args) => return chat::run(&mut session, args).await,
        // Dispatched by `main` before any session opens; kept here for completeness.
        Command::Conformance(args) => return conformance::run(&cli, args).await,
        Command::Serve(_) | Command::ServeKey { .. } => unreachable!("dispatched by main"),
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

/// Print an error object and exit 1.
pub(crate) fn fail(e: &HostError) -> ExitCode {
    tracing::debug!(code = e.code(), "command failed");
    print_json(&e.to_json());
    ExitCode::FAILURE
}

pub(crate) fn print_json(v: &Value) {
    let mut out = std::io::stdout().lock();
    let _ = serde_json::to_writer(&mut out, v);
    let _ = writeln!(out);
    let _ = out.flush();
}
