//! The CLI contract: one JSON object per script-mode call, stable codes, exit status; the
//! interactive login; the chat flags and output shapes.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use provider_reference::{ApiHandle, AuthHandle};
use serde_json::Value;

use crate::support::{self, cli_to};

#[test]
fn status_on_a_fresh_state_dir_is_not_connected() {
    let state = support::state_dir();
    let out = support::cli(state.path()).arg("status").output().unwrap();
    let json = support::json_of(&out);
    assert!(out.status.success(), "{json}");
    assert_eq!(json["ok"], true);
    assert_eq!(json["connected"], false);
    assert!(json["models"].as_array().unwrap().is_empty());
}

#[test]
fn plain_http_to_a_remote_host_is_refused_before_anything_runs() {
    let state = support::state_dir();
    for sub in [
        &["status"][..],
        &["start"],
        &["poll"],
        &["logout"],
        &["refresh"],
        &["models"],
        &["chat", "hi"],
        &["login", "--no-wait"],
        &["login"],
    ] {
        let out = support::cli(state.path())
            .args(sub)
            .env("XAI_OAUTH_ISSUER", "http://auth.example.com")
            .output()
            .unwrap();
        let json = support::json_of(&out);
        assert!(!out.status.success());
        assert_eq!(json["ok"], false);
        assert_eq!(json["error"], "config_error", "{sub:?}: {json}");
        assert!(json["message"].as_str().unwrap().contains("loopback"));
        assert!(
            json["message"]
                .as_str()
                .unwrap()
                .contains("XAI_OAUTH_ISSUER")
        );
    }
    // No tenant was touched: the refusal came before any session opened (the component
    // was loaded, since its manifest says which variables are endpoints).
    assert!(
        !support::files_below(state.path())
            .iter()
            .any(|f| f.starts_with(state.path().join("tenants").join("default"))),
        "{:?}",
        support::files_below(state.path())
    );
}

#[test]
fn a_proxy_that_is_not_http_is_refused_before_anything_runs() {
    let state = support::state_dir();
    for (var, value) in [
        (
            "HTTPS_PROXY",
            "https://user:hunter2hunter2@proxy.example:443",
        ),
        ("ALL_PROXY", "socks5://proxy.example:1080"),
    ] {
        let out = support::cli(state.path())
            .arg("status")
            .env(var, value)
            .output()
            .unwrap();
        let json = support::json_of(&out);
        assert!(!out.status.success());
        assert_eq!(json["error"], "config_error", "{var}: {json}");
        let message = json["message"].as_str().unwrap();
        assert!(
            message.contains(var) && !message.contains("hunter2"),
            "{message}"
        );
    }
    assert!(support::files_below(state.path()).is_empty());
}

#[test]
fn a_malformed_command_line_is_one_json_error_too() {
    let state = support::state_dir();
    for args in [
        &["chat", "--thinking", "extreme", "hi"][..],
        &["no-such-command"],
        &["models", "--no-such-flag"],
    ] {
        let out = support::cli(state.path()).args(args).output().unwrap();
        let json = support::json_of(&out);
        assert!(!out.status.success(), "{args:?}");
        assert_eq!(json["ok"], false, "{args:?}: {json}");
        assert_eq!(json["error"], "invalid_input", "{args:?}: {json}");
        assert!(
            json["message"].as_str().unwrap().contains("--help"),
            "{json}"
        );
    }
    // Help stays text for people.
    let out = support::cli(state.path()).arg("--help").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Usage"));
}

#[test]
fn poll_without_a_pending_login_says_so() {
    let state = support::state_dir();
    let out = support::cli(state.path()).arg("poll").output().unwrap();
    let json = support::json_of(&out);
    assert!(!out.status.success());
    assert_eq!(json["error"], "not_connected", "{json}");
    assert!(json["action"].as_str().unwrap().contains("start"));
}

/// Reference servers (1 s polling interval) for CLI runs.
fn servers() -> (AuthHandle, ApiHandle) {
    let (auth, api) = support::servers();
    (auth, api)
}

/// Runs `login` in the background, hands the user code it shows to `decide`, and returns
/// the exit status, the JSON it printed and everything it wrote to stderr.
fn interactive_login(
    mut cmd: Command,
    decide: impl FnOnce(&str),
) -> (std::process::ExitStatus, Value, String) {
    let mut child = cmd
        .arg("login")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut shown = String::new();
    let code = loop {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "login ended before showing a code: {shown}"
        );
        shown.push_str(&line);
        if let Some(rest) = line.trim().strip_prefix("The page should show the code ") {
            break rest.trim_end_matches('.').to_owned();
        }
    };
    decide(&code);
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("login did not end within 60 s: {shown}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    shown.push_str(&rest);
    let out = child.wait_with_output().unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status, json, shown)
}

#[test]
fn login_shows_the_code_polls_at_the_interval_and_ends_on_approval_or_denial() {
    let (auth, api) = servers();
    let state = support::state_dir();

    let out = cli_to(state.path(), &auth, &api)
        .args(["login", "--no-wait"])
        .output()
        .unwrap();
    let json = support::json_of(&out);
    assert!(out.status.success(), "{json}");
    for key in [
        "pending_id",
        "verification_url_with_code",
        "verification_url",
        "user_code",
        "expires_in_seconds",
        "interval_seconds",
    ] {
        assert!(
            !json[key].is_null(),
            "login --no-wait without {key}: {json}"
        );
    }

    let (status, json, shown) = interactive_login(cli_to(state.path(), &auth, &api), |code| {
        auth.deny(code).unwrap()
    });
    assert!(!status.success());
    assert_eq!(json["error"], "access_denied", "{json}");
    assert!(json["action"].as_str().unwrap().contains("BYOK"), "{json}");

    let (status, json, shown_ok) = interactive_login(cli_to(state.path(), &auth, &api), |code| {
        auth.approve(code, 3, "cli-user").unwrap()
    });
    assert!(status.success(), "{json} {shown_ok}");
    assert_eq!(json["status"], "connected", "{json}");
    assert_eq!(json["tier"], 3, "{json}");
    // Not a terminal: plain lines, no QR code, no carriage returns.
    for text in [&shown, &shown_ok] {
        assert!(
            text.contains("Waiting for approval: next check in"),
            "{text}"
        );
        assert!(
            !text.contains('\r') && !text.contains('█') && !text.contains('▀'),
            "{text}"
        );
    }
    let status = support::json_of(
        &cli_to(state.path(), &auth, &api)
            .arg("status")
            .output()
            .unwrap(),
    );
    assert_eq!(status["connected"], true, "{status}");
}

/// The body of the last request the API saw at `path`.
fn last_body(api: &ApiHandle, path: &str) -> Value {
    let req = api
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.path.ends_with(path))
        .unwrap_or_else(|| panic!("no request to {path}"));
    serde_json::from_slice(&req.body).unwrap()
}

#[test]
fn chat_flags_reach_the_api_and_each_mode_prints_its_shape() {
    let (auth, api) = servers();
    let state = support::state_dir();
    support::login(state.path(), &auth, &api, "default", 4, "chatter");

    // --json with --system and --thinking on the Responses lane.
    let out = cli_to(state.path(), &auth, &api)
        .args([
            "chat",
            "--json",
            "--model",
            "xai-grok/grok-4.20-multi-agent-0309",
            "--system",
            "be brief",
            "--thinking",
            "high",
            "plan a trip",
        ])
        .output()
        .unwrap();
    let json = support::json_of(&out);
    assert!(out.status.success(), "{json}");
    assert!(
        json["content"].as_str().is_some_and(|c| !c.is_empty()),
        "{json}"
    );
    assert_eq!(json["lane"], "responses", "{json}");
    assert!(
        json["model"].as_str().unwrap().starts_with("xai-grok/"),
        "{json}"
    );
    assert!(json["usage"]["total_tokens"].as_u64().is_some(), "{json}");
    assert!(json.get("finish_reason").is_some(), "{json}");
    let body = last_body(&api, "/responses");
    assert_eq!(body["instructions"], "be brief", "{body}");
    assert_eq!(body["reasoning"]["effort"], "high", "{body}");

    // --messages - reads the conversation from stdin.
    let mut child = cli_to(state.path(), &auth, &api)
        .args(["chat", "--json", "--route", "api", "--messages", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(
            br#"[{"role":"system","content":"S"},{"role":"user","content":"U1"},{"role":"assistant","content":"A1"},{"role":"user","content":"U2"}]"#,
        )
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let json = support::json_of(&out);
    assert!(out.status.success(), "{json}");
    assert_eq!(json["lane"], "chat_completions", "{json}");
    let body = last_body(&api, "/chat/completions");
    let roles: Vec<&str> = body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["system", "user", "assistant", "user"], "{body}");

    // --stream --json: JSON lines of deltas, then one closing object.
    let out = cli_to(state.path(), &auth, &api)
        .args([
            "chat",
            "--stream",
            "--json",
            "--route",
            "api",
            "tell me a story",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (last, chunks) = lines.split_last().unwrap();
    assert_eq!(last["ok"], true, "{last}");
    assert_eq!(last["done"], true, "{last}");
    assert!(!chunks.is_empty());
    assert!(chunks.iter().all(|c| c["delta"].is_string()), "{chunks:?}");
    let streamed: String = chunks
        .iter()
        .map(|c| c["delta"].as_str().unwrap())
        .collect();
    assert_eq!(last["content_bytes"], streamed.len(), "{last}");

    // Plain mode prints the text itself.
    let out = cli_to(state.path(), &auth, &api)
        .args(["chat", "--route", "api", "hello there"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        !text.trim().is_empty() && serde_json::from_str::<Value>(&text).is_err(),
        "{text}"
    );
}

/// Runs `chat` with `args` and `body` on stdin (`--request -`); its stdout.
fn chat_with_body(cmd: Command, args: &[&str], body: &Value) -> Output {
    let mut cmd = cmd;
    let mut child = cmd
        .arg("chat")
        .args(args)
        .args(["--request", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.to_string().as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn an_agent_loop_through_chat_request_on_both_lanes_whole_and_streamed() {
    let (auth, api) = servers();
    let state = support::state_dir();
    support::login(state.path(), &auth, &api, "default", 1, "agent");
    let tools = serde_json::json!([{"type": "function", "function": {
        "name": "get_weather", "parameters": {"type": "object", "properties": {"text": {"type": "string"}}}}}]);
    for lane in [&[][..], &["--lane", "responses"][..]] {
        let question = serde_json::json!({"model": "xai-grok/grok-4.3", "tools": tools,
            "messages": [{"role": "user", "content": "Weather in Paris?"}]});
        // Whole: the call comes back in `tool_calls`.
        let mut args = vec!["--json"];
        args.extend_from_slice(lane);
        let out = chat_with_body(cli_to(state.path(), &auth, &api), &args, &question);
        let json = support::json_of(&out);
        assert!(out.status.success(), "{lane:?}: {json}");
        assert_eq!(json["finish_reason"], "tool_calls", "{json}");
        assert_eq!(json["content"], "Calling get_weather.", "{json}");
        let call = &json["tool_calls"][0];
        assert_eq!(call["name"], "get_weather", "{json}");
        // Streamed: JSON lines of text, the call's start and its arguments.
        let mut stream_args = vec!["--json", "--stream"];
        stream_args.extend_from_slice(lane);
        let out = chat_with_body(cli_to(state.path(), &auth, &api), &stream_args, &question);
        assert!(out.status.success());
        let lines: Vec<Value> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let started = lines
            .iter()
            .find_map(|l| l.get("tool_call"))
            .expect("a tool_call line");
        assert_eq!(started["name"], "get_weather", "{lines:?}");
        let streamed: String = lines
            .iter()
            .filter_map(|l| l.get("tool_call_arguments"))
            .map(|a| a["delta"].as_str().unwrap())
            .collect();
        assert_eq!(streamed, call["arguments"].as_str().unwrap(), "{lines:?}");
        let last = lines.last().unwrap();
        assert_eq!(
            (last["done"].clone(), last["finish_reason"].clone()),
            (Value::Bool(true), Value::from("tool_calls")),
            "{last}"
        );
        // The result goes back; the model answers from it.
        let answer = serde_json::json!({"model": "xai-grok/grok-4.3", "tools": tools, "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": json["content"], "tool_calls": [
                {"id": call["id"], "type": "function", "function": {"name": "get_weather", "arguments": call["arguments"]}}]},
            {"role": "tool", "tool_call_id": call["id"], "content": "sunny"}]});
        let out = chat_with_body(cli_to(state.path(), &auth, &api), &args, &answer);
        let json = support::json_of(&out);
        assert_eq!(json["content"], "Tool results: sunny", "{lane:?}: {json}");
        assert_eq!(json["finish_reason"], "stop", "{json}");
    }
    // An unknown field is refused by name, nothing sent.
    let before = api.requests().len();
    let out = chat_with_body(
        cli_to(state.path(), &auth, &api),
        &["--json"],
        &serde_json::json!({"model": "xai-grok/grok-4.3", "logprobs": true, "messages": [{"role": "user", "content": "x"}]}),
    );
    let json = support::json_of(&out);
    assert_eq!(json["error"], "invalid_input", "{json}");
    assert!(
        json["message"].as_str().unwrap().contains("logprobs"),
        "{json}"
    );
    assert_eq!(api.requests().len(), before);
}
