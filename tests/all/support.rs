//! Shared helpers: temporary state directories, runtimes and the CLI binary.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};

use provider_reference::{ApiConfig, ApiHandle, ApiServer, AuthConfig, AuthHandle, AuthServer};
use provider_runtime::secrets::KeySource;
use provider_runtime::{HostConfig, Runtime, RuntimeOptions};

/// A fixed test master key (hex), so tests never touch a real key.
pub const TEST_KEY_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

/// A fresh state directory, removed at drop.
pub fn state_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("provider-host-test")
        .tempdir()
        .unwrap()
}

/// Runtime over the built component with a key file inside `state`.
pub fn runtime(state: &Path) -> Runtime {
    let mut options = RuntimeOptions::new(env!("PROVIDER_PLUGIN_COMPONENT"), state);
    options.key = KeySource::File(state.join("keyring").join("master.key"));
    Runtime::new(options).expect("runtime")
}

/// Settings pointing both endpoints at `issuer` / `api`.
pub fn config(issuer: &str, api: &str) -> HostConfig {
    HostConfig::new()
        .unwrap()
        .set("oauth-issuer", issuer)
        .set("api-base", api)
}

/// The reference authorization server configured so (polled every second) and the
/// reference model API with its subscription rail, accepting its tokens.
pub fn servers_with(config: AuthConfig) -> (AuthHandle, ApiHandle) {
    let auth = AuthServer::start_background(AuthConfig {
        interval: 1,
        ..config
    })
    .unwrap();
    let api = ApiServer::start_background(ApiConfig::for_auth(&auth)).unwrap();
    (auth, api)
}

/// [`servers_with`] the default configuration.
pub fn servers() -> (AuthHandle, ApiHandle) {
    servers_with(AuthConfig::default())
}

/// The CLI binary built with these tests.
pub fn cli(state: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_provider-host"));
    cmd.arg("--state-dir").arg(state);
    cmd.env("PROVIDER_HOST_KEY", TEST_KEY_HEX);
    for var in [
        "XAI_OAUTH_ISSUER",
        "XAI_API_BASE",
        "XAI_CLIENT_ID",
        "XAI_OAUTH_SCOPE",
        "XAI_ROUTE",
        "XAI_SUBSCRIPTION_BASE",
        "XAI_SUBSCRIPTION_CLIENT_VERSION",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// Parse the single JSON object a script-mode command prints.
pub fn json_of(out: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut lines = stdout.lines().filter(|l| !l.trim().is_empty());
    let first = lines.next().unwrap_or_else(|| {
        panic!(
            "no output; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(
        lines.next().is_none(),
        "more than one line on stdout: {stdout}"
    );
    serde_json::from_str(first).unwrap_or_else(|e| panic!("not JSON ({e}): {first}"))
}

/// The base URL (`http(s)://127.0.0.1:PORT/v1`) a `serve` child says it listens on: its
/// first line on stdout (piped), which it prints once bound.
pub fn serve_base(child: &mut Child) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("serve's stdout piped"))
        .read_line(&mut line)
        .unwrap();
    let banner: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|_| panic!("serve's banner: {line:?}"));
    banner["listening"]
        .as_str()
        .unwrap_or_else(|| panic!("serve's banner: {banner}"))
        .to_owned()
}

/// Every regular file below `dir`.
pub fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// The CLI pointed at these reference servers.
pub fn cli_to(state: &Path, auth: &AuthHandle, api: &ApiHandle) -> Command {
    let mut cmd = cli(state);
    cmd.env("XAI_OAUTH_ISSUER", auth.issuer())
        .env("XAI_API_BASE", api.base_url())
        .env("XAI_SUBSCRIPTION_BASE", api.subscription_base());
    cmd
}

/// `start` and `poll` of `tenant` through the CLI, approved at `tier` for `subject`
/// in between: the tenant is connected.
pub fn login(
    state: &Path,
    auth: &AuthHandle,
    api: &ApiHandle,
    tenant: &str,
    tier: u32,
    subject: &str,
) {
    let step = |sub: &str| {
        json_of(
            &cli_to(state, auth, api)
                .args(["--tenant", tenant, sub])
                .output()
                .unwrap(),
        )
    };
    let start = step("start");
    auth.approve(start["user_code"].as_str().unwrap(), tier, subject)
        .unwrap();
    let poll = step("poll");
    assert_eq!(poll["status"], "connected", "{poll}");
}
