//! `provider-host serve` driven by the agent frameworks people build on, each with its own
//! suite in `tests/serve` (pinned there, installed by `scripts/test`): the Vercel AI SDK
//! (`ai` with `@ai-sdk/xai` — its chat model and its default Responses model —,
//! `@ai-sdk/openai` chat and Responses, `@ai-sdk/openai-compatible`), `@openai/agents`,
//! Python `openai-agents`, `langchain-openai` and the `llm` CLI. Upstream is the reference
//! servers; the tenant logs in through the CLI.

use std::path::Path;
use std::process::Command;

use provider_reference::{AuthConfig, ToolStreamStyle};
use serde_json::Value;

use crate::served::{self, Served};

const CLIENTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/serve");

/// `serve` in front of the reference servers, tenant `team` logged in at tier 4.
fn serve() -> Served {
    served::serve_custom(AuthConfig::default(), |_, _, _, _| {})
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
    for step in STEPS {
        run(step);
    }
    // A Responses model's server-side search tool goes to the Responses lane.
    if matches!(provider, "xai" | "openai-responses") {
        run("web_search");
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

/// The steps every framework suite runs.
const STEPS: &[&str] = &[
    "text",
    "stream",
    "tools",
    "tools_streamed",
    "structured",
    "reasoning_tools",
    "reasoning_tools_streamed",
    "image",
    "unknown_model",
];

/// Every step of the Python suite for `framework`, tool calls streamed both ways.
fn python(framework: &str) {
    let s = serve();
    let run = |step: &str| client(&s, "python3", &["frameworks.py", framework, step], &[]);
    for step in STEPS {
        run(step);
    }
    s.api.set_tool_stream_style(ToolStreamStyle::Split);
    run("tools_streamed");
    run("reasoning_tools_streamed");
}

#[test]
fn python_openai_agents_run_on_the_responses_api_through_serve() {
    python("agents");
}

#[test]
fn python_openai_agents_run_on_chat_completions_through_serve() {
    python("agents-chat");
}

#[test]
fn langchain_openai_runs_tool_loops_through_serve() {
    python("langchain");
}

#[test]
fn langchain_openai_on_the_responses_api_runs_tool_loops_through_serve() {
    python("langchain-responses");
}

/// Every step of the `@openai/agents` suite on `api`.
fn openai_agents(api: &str) {
    npm_installed("@openai/agents");
    let s = serve();
    let run = |step: &str| client(&s, "node", &["openai_agents.mjs", api, step], &[]);
    for step in STEPS {
        run(step);
    }
    s.api.set_tool_stream_style(ToolStreamStyle::Split);
    run("tools_streamed");
    run("reasoning_tools_streamed");
}

#[test]
fn the_openai_agents_js_sdk_runs_on_the_responses_api_through_serve() {
    openai_agents("responses");
}

#[test]
fn the_openai_agents_js_sdk_runs_on_chat_completions_through_serve() {
    openai_agents("chat_completions");
}

/// `python3 -m llm ARGS` with its configuration in `user_path`; its standard output.
fn llm(s: &Served, user_path: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new("python3")
        .current_dir(CLIENTS)
        .args(["-m", "llm"])
        .args(args)
        .args(["--key", &s.key])
        .env("LLM_USER_PATH", user_path)
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !stderr.contains("No module named llm"),
        "the llm package is not installed: run `pip install -r tests/serve/requirements.txt`"
    );
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!("{stderr}{stdout}"))
    }
}

/// The `llm` CLI with serve configured as OpenAI-compatible models in its
/// `extra-openai-models.yaml`, on chat completions and on the Responses API.
#[test]
fn the_llm_cli_chats_calls_tools_and_reports_errors_through_serve() {
    let s = serve();
    let user = tempfile::tempdir().unwrap();
    let mut yaml = String::new();
    for (id, model, responses) in [
        ("serve-chat", "xai-grok--grok-4.3", false),
        ("serve-chat-reasoning", "xai-grok--grok-4.6", false),
        ("serve-responses", "xai-grok--grok-4.3", true),
        ("serve-responses-reasoning", "xai-grok--grok-4.6", true),
        ("serve-missing", "xai-grok--no-such-model", false),
    ] {
        yaml.push_str(&format!(
            "- model_id: {id}\n  model_name: {model}\n  api_base: {}\n  api_key_name: serve\n  \
             supports_tools: true\n  supports_schema: true\n  vision: true\n  responses: {responses}\n",
            s.base
        ));
    }
    std::fs::write(user.path().join("extra-openai-models.yaml"), yaml).unwrap();
    let png = user.path().join("pixel.png");
    std::fs::write(
        &png,
        [
            0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, 0x49, 0x48, 0x44, 0x52,
            0, 0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0, 0x1f, 0x15, 0xc4, 0x89, 0, 0, 0, 0x0d, 0x49,
            0x44, 0x41, 0x54, 0x78, 0xda, 0x63, 0xf8, 0xcf, 0xc0, 0xf0, 0x1f, 0, 0x05, 0, 0x01,
            0xff, 0x89, 0x99, 0x3d, 0x1d, 0, 0, 0, 0, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60,
            0x82,
        ],
    )
    .unwrap();
    let tool =
        "def get_weather(text: str) -> str:\n    \"Weather of a city.\"\n    return \"sunny\"\n";
    let question = "What is the weather in Paris?";
    let run =
        |args: &[&str]| llm(&s, user.path(), args).unwrap_or_else(|e| panic!("llm {args:?}: {e}"));
    for (plain, reasoning) in [
        ("serve-chat", "serve-chat-reasoning"),
        ("serve-responses", "serve-responses-reasoning"),
    ] {
        assert_eq!(
            run(&["-m", plain, "--no-stream", "hello llm"]),
            "Echo: hello llm"
        );
        assert_eq!(
            run(&["-m", plain, "stream for llm"]),
            "Echo: stream for llm"
        );
        for model in [plain, reasoning] {
            for stream in ["--no-stream", "--no-log"] {
                let out = run(&["-m", model, stream, "--functions", tool, question]);
                assert!(
                    out.ends_with("Tool results: sunny"),
                    "{model} {stream}: {out}"
                );
            }
        }
        let object: Value = serde_json::from_str(&run(&[
            "-m",
            plain,
            "--schema",
            "city, sunny bool",
            "a city",
        ]))
        .unwrap();
        assert_eq!(
            object,
            serde_json::json!({"city": "Echo: a city", "sunny": true})
        );
        let seen = run(&["-m", plain, "-a", png.to_str().unwrap(), "what is this"]);
        assert!(seen.starts_with("Echo: what is this [image"), "{seen}");
    }
    let e = llm(&s, user.path(), &["-m", "serve-missing", "hi"]).unwrap_err();
    assert!(e.contains("Error code: 404"), "{e}");
}

/// Slash-free model ids, `GET /v1/models/{id}` and 404 `model_not_found`, seen by the
/// official Python SDK.
#[test]
fn slash_free_model_ids_are_listed_retrieved_and_used_and_an_unknown_model_is_not_found() {
    let s = serve();
    client(&s, "python3", &["sdk_client.py", "model_ids"], &[]);
}
