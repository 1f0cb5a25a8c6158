//! `provider-host serve`'s Anthropic Messages API driven by the official SDKs
//! (`@anthropic-ai/sdk` and Python `anthropic`, pinned in tests/serve, installed by
//! `scripts/test`): text, streams through the SDKs' accumulators, a tool loop, thinking on
//! a reasoning model sent back, images, `count_tokens` (never upstream), errors as the
//! SDKs' typed exceptions, and a request shaped like Claude Code's. Upstream is the
//! reference servers; the tenant logs in through the CLI.

use std::path::Path;
use std::process::Command;

use provider_reference::{ApiHandle, AuthConfig, Fault, Route, ToolStreamStyle};
use serde_json::Value;

use crate::served::{self, Served};

const CLIENTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/serve");

fn serve() -> Served {
    serve_aliased(Aliases::Flags)
}

/// How `serve` is given its aliases.
enum Aliases {
    /// `--model-alias`, twice.
    Flags,
    /// `PROVIDER_HOST_MODEL_ALIASES`, a comma-separated list.
    Variable,
}

/// `serve` in front of the reference servers, tenant `team` logged in at tier 4, the
/// developer API enabled beside the rail, Claude Code's default name aliased to the rail's
/// reasoning model (and Haiku's to the API's grok-4.3), given as `aliases` says.
fn serve_aliased(aliases: Aliases) -> Served {
    served::serve_custom(AuthConfig::default(), |command, _, _, _| {
        command.args(["--route", "api"]);
        match aliases {
            Aliases::Variable => command.env(
                "PROVIDER_HOST_MODEL_ALIASES",
                "claude-sonnet-4-5=grok-4.6,claude-haiku-4-5=xai-grok/grok-4.3",
            ),
            Aliases::Flags => command.env_remove("PROVIDER_HOST_MODEL_ALIASES").args([
                "--model-alias",
                "claude-sonnet-4-5=grok-4.6",
                "--model-alias",
                "claude-haiku-4-5=xai-grok/grok-4.3",
            ]),
        };
    })
}

/// One step of a client in tests/serve (`program script step`); its JSON on success.
fn client(s: &Served, program: &str, script: &str, step: &str) -> Value {
    let out = Command::new(program)
        .current_dir(CLIENTS)
        .args([script, step])
        .env("ANTHROPIC_BASE_URL", s.root())
        .env("ANTHROPIC_API_KEY", &s.key)
        .env_remove("ANTHROPIC_AUTH_TOKEN")
        .output()
        .unwrap_or_else(|e| panic!("{program} runs: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named 'anthropic'"),
        "the anthropic Python package is not installed: run `pip install -r tests/serve/requirements.txt` (scripts/test does)"
    );
    assert!(
        out.status.success(),
        "{program} {script} {step} failed:\n{stderr}\n{stdout}"
    );
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{script} {step} printed no JSON ({e}): {stdout}"))
}

fn node(s: &Served, step: &str) -> Value {
    assert!(
        Path::new(CLIENTS)
            .join("node_modules/@anthropic-ai/sdk")
            .exists(),
        "@anthropic-ai/sdk is not installed: run `npm ci --prefix tests/serve` (scripts/test does)"
    );
    client(s, "node", "anthropic_client.mjs", step)
}

fn python(s: &Served, step: &str) -> Value {
    client(s, "python3", "anthropic_client.py", step)
}

/// `GET /v1/models` of the tenant: its routes' catalogues cached, so the rail's models take
/// the lane their catalogue names (Responses, whose reasoning items round-trip).
fn list_models(s: &Served) -> Value {
    use std::io::{Read, Write};
    let authority = s.root().strip_prefix("http://").unwrap();
    let mut conn = std::net::TcpStream::connect(authority).unwrap();
    write!(
        conn,
        "GET /v1/models HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nAuthorization: Bearer {}\r\n\r\n",
        s.key
    )
    .unwrap();
    let mut raw = String::new();
    conn.read_to_string(&mut raw).unwrap();
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    let body = raw.split_once("\r\n\r\n").unwrap().1;
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// The encrypted reasoning items of the rail's last Responses request.
fn last_rail_reasoning(api: &ApiHandle) -> Vec<Value> {
    let requests = api.rail_requests();
    let last = requests
        .iter()
        .rev()
        .find(|r| r.path == "/v1/responses")
        .unwrap_or_else(|| {
            let paths: Vec<&str> = requests.iter().map(|r| r.path.as_str()).collect();
            panic!("no Responses turn on the rail: {paths:?}")
        });
    let body: Value = serde_json::from_slice(&last.body).unwrap();
    body["input"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["type"] == "reasoning" && i["encrypted_content"].is_string())
        .cloned()
        .collect()
}

#[test]
fn the_npm_anthropic_sdk_chats_streams_calls_tools_thinks_and_sees_typed_errors() {
    let s = serve();
    let listed = list_models(&s);
    let alias = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "claude-haiku-4-5")
        .unwrap_or_else(|| panic!("{listed}"));
    assert_eq!(alias["alias_for"], "xai-grok/grok-4.3");
    assert_eq!(alias["route"], "api");
    for step in [
        "text",
        "stream",
        "tools",
        "images",
        "bearer",
        "invalid",
        "unknown_model",
        "bad_key",
        "routes",
    ] {
        node(&s, step);
    }
    // Arguments that come in pieces (OpenAI's way), or only at the end, reach the
    // tool_use block as input_json_delta all the same.
    s.api.set_tool_stream_style(ToolStreamStyle::Split);
    let split = node(&s, "tools");
    assert!(split["pieces"].as_u64() > Some(1), "{split}");
    s.api.set_tool_stream_style(ToolStreamStyle::DoneOnly);
    node(&s, "tools");
    s.api.set_tool_stream_style(ToolStreamStyle::Whole);
    // Thinking sent back reaches upstream as the reasoning item it came from.
    node(&s, "thinking");
    assert_eq!(last_rail_reasoning(&s.api).len(), 1);
    s.api
        .push_fault(Route::ChatCompletions, Fault::rate_limited(Some(7)));
    node(&s, "rate_limited");
    s.api
        .push_fault(Route::ChatCompletions, Fault::unavailable_no_retry());
    assert_eq!(node(&s, "overloaded")["status"], 529);
    s.api
        .push_fault(Route::ChatCompletions, Fault::tier_denied());
    node(&s, "permission");
}

#[test]
fn the_python_anthropic_sdk_chats_streams_calls_tools_thinks_and_sees_typed_errors() {
    let s = serve();
    list_models(&s);
    for step in [
        "text", "stream", "tools", "thinking", "images", "bad_key", "invalid",
    ] {
        python(&s, step);
    }
    assert_eq!(last_rail_reasoning(&s.api).len(), 1);
    s.api
        .push_fault(Route::ChatCompletions, Fault::rate_limited(Some(7)));
    python(&s, "rate_limited");
}

#[test]
fn count_tokens_is_answered_locally_counting_system_messages_and_tools() {
    // (The aliases from the variable this time: the clients use both.)
    let s = serve_aliased(Aliases::Variable);
    let listed = list_models(&s);
    let aliases: Vec<(&Value, &Value)> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m.get("alias_for").is_some())
        .map(|m| (&m["id"], &m["alias_for"]))
        .collect();
    assert_eq!(aliases.len(), 2, "{listed}");
    // Warm up: the session is open.
    node(&s, "text");
    let (api, rail) = (s.api.stats(), s.api.rail_stats());
    let npm = node(&s, "count_tokens");
    let py = python(&s, "count_tokens");
    assert!(npm["full"].as_u64() > npm["bare"].as_u64(), "{npm}");
    assert!(py["full"].as_u64() > py["bare"].as_u64(), "{py}");
    // Not one request upstream, of any kind, on either service.
    assert_eq!(s.api.stats(), api);
    assert_eq!(s.api.rail_stats(), rail);
}

#[test]
fn a_request_shaped_like_claude_codes_streams_its_thinking_and_many_tool_calls() {
    let s = serve();
    list_models(&s);
    node(&s, "claude_code");
    // The thinking of the earlier turn went back upstream with it.
    assert_eq!(last_rail_reasoning(&s.api).len(), 1);
}
