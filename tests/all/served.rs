//! One `provider-host serve` harness for the suites that drive it (serve.rs,
//! frameworks.rs, anthropic.rs): reference servers, a tenant `team` logged in at tier 4
//! through the CLI, a serve key for it, and `serve` on a free loopback port, its stderr
//! (the access log included) kept for the test and echoed for failures.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use provider_reference::{ApiHandle, AuthConfig, AuthHandle};

use crate::support::{self, cli_to};

/// A running `serve`, stopped when dropped.
pub struct Served {
    pub auth: AuthHandle,
    pub api: ApiHandle,
    _state: tempfile::TempDir,
    pub child: Child,
    /// `http://127.0.0.1:PORT/v1`.
    pub base: String,
    /// The tenant's serve key.
    pub key: String,
    /// serve's stderr so far, read by a thread.
    log: Arc<Mutex<String>>,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `serve` in front of reference servers configured with `auth_config` (the device-poll
/// interval is always 1 s); `prepare` adds arguments or variables to its command (and may
/// write into the state directory) before it starts.
pub fn serve_custom(
    auth_config: AuthConfig,
    prepare: impl FnOnce(&mut Command, &Path, &AuthHandle, &ApiHandle),
) -> Served {
    let (auth, api) = support::servers_with(auth_config);
    let state = support::state_dir();
    support::login(state.path(), &auth, &api, "team", 4, "served");
    let created = support::json_of(
        &cli_to(state.path(), &auth, &api)
            .args(["--tenant", "team", "serve-key", "create"])
            .output()
            .unwrap(),
    );
    let key = created["key"].as_str().unwrap().to_owned();
    let mut serve = cli_to(state.path(), &auth, &api);
    serve
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "access=info,warn");
    prepare(&mut serve, state.path(), &auth, &api);
    let mut child = serve
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let base = support::serve_base(&mut child);
    let log = Arc::new(Mutex::new(String::new()));
    let stderr = child.stderr.take().unwrap();
    let sink = log.clone();
    // Drained so that serve never blocks on a full pipe; echoed (shown for failing tests).
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            eprintln!("serve: {line}");
            let mut log = sink.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
    Served {
        auth,
        api,
        _state: state,
        child,
        base,
        key,
        log,
    }
}

impl Served {
    /// The server's root, without `/v1` (what Anthropic's SDKs take).
    pub fn root(&self) -> &str {
        self.base.strip_suffix("/v1").unwrap()
    }

    /// Its listening address.
    pub fn addr(&self) -> SocketAddr {
        self.root()
            .strip_prefix("http://")
            .unwrap()
            .parse()
            .unwrap()
    }

    /// serve's stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Wait until serve's log has a line with all of `parts`; that line.
    pub fn wait_for_log(&self, parts: &[&str], within: Duration) -> Option<String> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(l) = self
                .log()
                .lines()
                .find(|l| parts.iter().all(|p| l.contains(p)))
            {
                return Some(l.to_owned());
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
