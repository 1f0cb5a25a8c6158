//! `provider-host serve` driven by the agent frameworks people build on, each with its own
//! suite in `tests/serve` (pinned there, installed by `scripts/test`): the Vercel AI SDK
//! (`ai` with `@ai-sdk/xai` — its chat model and its default Responses model —,
//! `@ai-sdk/openai` chat and Responses, `@ai-sdk/openai-compatible`), `@openai/agents`,
//! Python `openai-agents`, `langchain-openai` and the `llm` CLI. Upstream is the reference
//! servers; the tenant logs in through the CLI.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use provider_reference::{
    ApiConfig, ApiHandle, ApiServer, AuthConfig, AuthHandle, AuthServer, ToolStreamStyle,
};
use serde_json::Value;

use crate::support::{self, cli_to};

const CLIENTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/serve");

/// `serve` in front of the reference servers, tenant `team` logged in at tier 4.
struct Served {
    _auth: AuthHandle,
    api: ApiHandle,
    _state: tempfile::TempDir,
    child: Child,
    base: String,
    key: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve() -> Served {
    let auth = AuthServer::start_background(AuthConfig {
        interval: 1,
        ..AuthConfig::default()
    })
    .unwrap();
    let api = ApiServer::start_background(ApiConfig::for_auth(&auth)).unwrap();
    let state = support::state_dir();
    support::login(state.path(), &auth, &api, "team", 4, "served");
    let created = support::json_of(
        &cli_to(state.path(), &auth, &api)
            .args(["--tenant", "team", "serve-key", "create"])
            .output()
            .unwrap(),
    );
    let key = created["key"].as_str().unwrap().to_owned();
    let mut child = cli_to(state.path(), &auth, &api)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let base = support::serve_base(&mut child);
    // serve's log, drained so it never blocks on a full pipe, echoed for failures.
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("serve: {line}");
        }
    });
    Served {
        _auth: auth,
        api,
        _state: state,
        child,
        base,
        key,
    }
}

/// Run `program args` in tests/serve with serve's base URL and key; its JSON on success.
fn client(s: &Served, program: &str, args: &[&str], env: &[(&str, &str)]) -> Value {
    let mut command = Command::new(program);
    command
        .current_dir(CLIENTS)
        .args(args)
        .env("OPENAI_BASE_URL", &s.base)
        .env("OPENAI_API_KEY", &s.key);
    for (k, v) in env {
        command.env(k, v);
    }
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{program} runs: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{program} {args:?} failed:\n{}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{program} {args:?} printed no JSON ({e}): {stdout}"))
}

fn npm_installed(package: &str) {
    assert!(
        Path::new(CLIENTS)
            .join("node_modules")
            .join(package)
            .exists(),
        "{package} is not installed: run `npm ci --prefix tests/serve` (scripts/test does)"
    );
}

/// Every step of the AI SDK suite with one provider, tool calls streamed both ways.
fn ai_sdk(provider: &str) {
    npm_installed("ai");
    let s = serve();
    let run = |step: &str| client(&s, "node", &["ai_sdk.mjs", provider, step], &[]);
    for step in [
        "text",
        "stream",
        "tools",
        "tools_streamed",
        "structured",
        "reasoning_tools",
        "reasoning_tools_streamed",
        "image",
        "unknown_model",
    ] {
        run(step);
    }
    // Upstream sending the arguments in pieces (OpenAI's way) changes nothing for clients.
    s.api.set_tool_stream_style(ToolStreamStyle::Split);
    run("tools_streamed");
    run("reasoning_tools_streamed");
    s.api.set_tool_stream_style(ToolStreamStyle::DoneOnly);
    run("tools_streamed");
}

#[test]
fn the_ai_sdk_xai_chat_model_runs_agents_through_serve() {
    ai_sdk("xai-chat");
}

#[test]
fn the_ai_sdk_xai_responses_model_runs_agents_through_serve() {
    ai_sdk("xai");
}

#[test]
fn the_ai_sdk_openai_chat_model_runs_agents_through_serve() {
    ai_sdk("openai-chat");
}

#[test]
fn the_ai_sdk_openai_responses_model_runs_agents_through_serve() {
    ai_sdk("openai-responses");
}

#[test]
fn the_ai_sdk_openai_compatible_model_runs_agents_through_serve() {
    ai_sdk("compatible");
}
