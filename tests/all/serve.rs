//! `provider-host serve` driven by real clients: the official OpenAI Python SDK
//! (tests/serve/sdk_client.py, installed by the test setup) and raw HTTP for what an SDK
//! hides. The upstream is the reference servers; the tenant logs in through the CLI.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use provider_reference::{
    ApiConfig, ApiHandle, ApiServer, AuthConfig, AuthHandle, AuthServer, Fault, Route,
};
use serde_json::Value;

use crate::support;

struct Served {
    auth: AuthHandle,
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

fn cli_to(state: &std::path::Path, auth: &AuthHandle, api: &ApiHandle) -> Command {
    let mut cmd = support::cli(state);
    cmd.env("XAI_OAUTH_ISSUER", auth.issuer())
        .env("XAI_API_BASE", api.base_url());
    cmd
}

/// Reference servers, a tenant `team` logged in at tier 4, a serve key for it, and
/// `serve` on a free loopback port.
fn serve() -> Served {
    let auth = AuthServer::start_background(AuthConfig {
        interval: 1,
        ..AuthConfig::default()
    })
    .unwrap();
    let api = ApiServer::start_background(ApiConfig::for_auth(&auth)).unwrap();
    let state = support::state_dir();
    let start = support::json_of(
        &cli_to(state.path(), &auth, &api)
            .args(["--tenant", "team", "start"])
            .output()
            .unwrap(),
    );
    auth.approve(start["user_code"].as_str().unwrap(), 4, "served")
        .unwrap();
    let poll = support::json_of(
        &cli_to(state.path(), &auth, &api)
            .args(["--tenant", "team", "poll"])
            .output()
            .unwrap(),
    );
    assert_eq!(poll["status"], "connected", "{poll}");
    let created = support::json_of(
        &cli_to(state.path(), &auth, &api)
            .args(["--tenant", "team", "serve-key", "create"])
            .output()
            .unwrap(),
    );
    let key = created["key"].as_str().unwrap().to_owned();
    let mut child = cli_to(state.path(), &auth, &api)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "access=info,warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let banner: Value = serde_json::from_str(&line).unwrap_or_else(|_| panic!("banner: {line:?}"));
    let base = banner["listening"].as_str().unwrap().to_owned();
    Served {
        auth,
        api,
        _state: state,
        child,
        base,
        key,
    }
}

/// One step of the Python SDK client; its JSON on success.
fn sdk(s: &Served, step: &str) -> Value {
    let out = Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/serve/sdk_client.py"))
        .arg(step)
        .env("OPENAI_BASE_URL", &s.base)
        .env("OPENAI_API_KEY", &s.key)
        .output()
        .expect("python3 runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named 'openai'"),
        "the openai Python package is not installed: run `pip install -r tests/serve/requirements.txt` (the README's test command does)"
    );
    assert!(out.status.success(), "sdk step {step} failed:\n{stderr}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// One step of the npm SDK client; its JSON on success.
fn npm_sdk(s: &Served, step: &str) -> Value {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/serve");
    assert!(
        std::path::Path::new(dir).join("node_modules/openai").exists(),
        "the openai npm package is not installed: run `npm ci --prefix tests/serve` (the README's test command does)"
    );
    let out = Command::new("node")
        .arg(format!("{dir}/sdk_client.mjs"))
        .arg(step)
        .env("OPENAI_BASE_URL", &s.base)
        .env("OPENAI_API_KEY", &s.key)
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "npm sdk step {step} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_npm_sdk_lists_chats_streams_calls_tools_and_sees_typed_errors() {
    let s = serve();
    for step in ["models", "chat", "stream", "tools", "responses", "bad_key"] {
        npm_sdk(&s, step);
    }
    s.api
        .push_fault(Route::ChatCompletions, Fault::rate_limited(Some(7)));
    npm_sdk(&s, "rate_limited");
}

#[test]
fn the_python_sdk_lists_chats_streams_and_calls_tools() {
    let s = serve();
    sdk(&s, "models");
    sdk(&s, "chat");
    sdk(&s, "stream");
    sdk(&s, "tools");
    sdk(&s, "responses");
    sdk(&s, "invalid");
}

#[test]
fn errors_surface_as_the_sdks_own_exceptions() {
    let s = serve();
    sdk(&s, "bad_key");
    s.api
        .push_fault(Route::ChatCompletions, Fault::rate_limited(Some(7)));
    sdk(&s, "rate_limited");
    s.api.push_fault(Route::ChatCompletions, Fault::tier_denied());
    sdk(&s, "tier_denied");
    // Nothing of the tenant leaks to a caller without a key.
    let out = Command::new("curl")
        .args(["-s", "-i", &format!("{}/models", s.base)])
        .output();
    if let Ok(out) = out {
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.starts_with("HTTP/1.1 401"), "{text}");
        assert!(!text.contains("team") && !text.contains("grok"), "{text}");
    }
    let _ = &s.auth;
}

#[test]
fn a_non_loopback_listen_is_refused() {
    let state = support::state_dir();
    for args in [
        &["serve", "--listen", "0.0.0.0:0"][..],
        &["serve", "--listen", "0.0.0.0:0", "--allow-remote"],
    ] {
        let out = support::cli(state.path()).args(args).output().unwrap();
        let json = support::json_of(&out);
        assert!(!out.status.success());
        assert_eq!(json["error"], "config_error", "{json}");
    }
    let _ = Duration::ZERO;
}
