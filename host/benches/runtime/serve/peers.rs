//! The gateways under test, each a child process on loopback: `serve` (the release CLI),
//! LiteLLM's proxy and Portkey's gateway, both in front of the same reference API.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;

use super::client::{Dialect, handshake};
use super::machine::Pinning;
use crate::support::{World, dur};

/// The tenant `serve` serves.
const TENANT: &str = "bench-serve";
/// A 64-hex master key for the CLI's state directory (a test key, as the tests use).
const KEY_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

/// A child process, killed (with its process group, when it leads one) when dropped.
pub struct Proc {
    child: Child,
    group: bool,
    pub log: PathBuf,
    /// Kept open: the child may still write to it.
    _stdout: Option<ChildStdout>,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n      ")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.group {
            // SAFETY: kill(2) on the process group this child leads (its pid, not reaped).
            unsafe {
                libc::kill(-(self.child.id() as libc::pid_t), libc::SIGKILL);
            }
        } else {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// One gateway, running: how to reach it in each dialect.
pub struct Gateway {
    pub name: &'static str,
    pub proc: Proc,
    pub addr: SocketAddr,
    /// Said once when it started (version, start-up time).
    pub note: String,
    headers: Vec<(&'static str, String)>,
    /// The model id its clients name.
    model: &'static str,
}

impl Gateway {
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        self.headers.clone()
    }

    pub fn model(&self, _dialect: Dialect) -> &'static str {
        self.model
    }
}

/// The release CLI with the reference servers' endpoints and a state directory.
fn cli(world: &World, state: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_provider-host"));
    cmd.arg("--state-dir")
        .arg(state)
        .env("XAI_OAUTH_ISSUER", world.auth.issuer())
        .env("XAI_API_BASE", world.api.base_url())
        .env("PROVIDER_HOST_KEY", KEY_HEX);
    for var in [
        "RUST_LOG",
        "XAI_CLIENT_ID",
        "XAI_OAUTH_SCOPE",
        "XAI_ROUTE",
        "XAI_SUBSCRIPTION_BASE",
        "PROVIDER_HOST_SECRETS_URL",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// Runs a script-mode command; its one JSON object.
fn json_of(cmd: &mut Command) -> serde_json::Value {
    let out = cmd.output().expect("run provider-host");
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().next().unwrap_or("").trim()).unwrap_or_else(|e| {
        panic!(
            "provider-host printed no JSON ({e}): {stdout} / {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// `start`, approval on the reference server, `poll`, `models`, `serve-key create`, then
/// `serve` on a free loopback port (on the gateway core when pinned), routed to the
/// developer API.
pub fn start_serve(world: &World, state: &Path, pin: Option<Pinning>) -> Gateway {
    let start = json_of(cli(world, state).args(["--tenant", TENANT, "start"]));
    let code = start["user_code"].as_str().expect("user_code");
    world
        .auth
        .approve(code, 4, "user-bench-serve")
        .expect("approve");
    let poll = json_of(cli(world, state).args(["--tenant", TENANT, "poll"]));
    assert_eq!(poll["status"], "connected", "{poll}");
    // The route's model catalogue, as a tenant in service has one (any model listing
    // writes it): every turn looks its model up there for the lane.
    let models = json_of(cli(world, state).args(["--tenant", TENANT, "models", "--route", "api"]));
    assert!(
        models["models"].as_array().is_some_and(|m| !m.is_empty()),
        "{models}"
    );
    let created = json_of(cli(world, state).args(["--tenant", TENANT, "serve-key", "create"]));
    let key = created["key"].as_str().expect("serve key").to_owned();
    // In service a tenant's login and serve key were written long before: the secret store
    // reads a file changed in the last 2 s again on every request (its read cache skips
    // "racily" recent files), so let them age past that before measuring.
    std::thread::sleep(std::time::Duration::from_millis(2_100));
    let log = state.join("serve.log");
    let mut cmd = cli(world, state);
    cmd.args(["serve", "--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("serve log"));
    if let Some(p) = pin {
        p.pin_child(&mut cmd);
    }
    let began = Instant::now();
    let mut child = cmd.spawn().expect("start serve");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("serve banner");
    let proc = Proc {
        child,
        group: false,
        log,
        _stdout: Some(stdout.into_inner()),
    };
    let banner: serde_json::Value = serde_json::from_str(&line)
        .unwrap_or_else(|_| panic!("serve banner {line:?}; log: {}", proc.log_tail()));
    let addr = banner["listening"]
        .as_str()
        .and_then(|u| u.strip_prefix("http://"))
        .and_then(|u| u.strip_suffix("/v1"))
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("serve banner {banner}"));
    Gateway {
        name: "serve",
        proc,
        addr,
        note: format!("serve, listening after {}", dur(began.elapsed())),
        headers: vec![("authorization", format!("Bearer {key}"))],
        // The API route, as the direct baseline's requests go to the API.
        model: "xai-grok/grok-4.3",
    }
}

/// An executable named by `var` (set by `scripts/bench`), else `name` on `PATH`.
fn program(var: &str, name: &str, install: &str) -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os(var).filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return if p.exists() {
            Ok(p)
        } else {
            Err(format!("{var}={} does not exist", p.display()))
        };
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| format!("{name} is not installed ({install})"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Starts `cmd` (its own process group, on the gateway core, output to `log`) and waits
/// until `GET ready_path` on `port` answers 200.
async fn start_peer(
    mut cmd: Command,
    what: &str,
    log: PathBuf,
    port: u16,
    ready_path: &'static str,
    pin: Option<Pinning>,
) -> Result<(Proc, SocketAddr, Duration), String> {
    let out = std::fs::File::create(&log).map_err(|e| e.to_string())?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    cmd.stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        // Its own process group: whatever it forks is stopped with it.
        .process_group(0);
    if let Some(p) = pin {
        p.pin_child(&mut cmd);
    }
    let child = cmd.spawn().map_err(|e| format!("cannot run {what}: {e}"))?;
    let mut proc = Proc {
        child,
        group: true,
        log,
        _stdout: None,
    };
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let began = Instant::now();
    loop {
        if let Ok(Some(status)) = proc.child.try_wait() {
            return Err(format!(
                "{what} exited with {status} before answering:\n      {}",
                proc.log_tail()
            ));
        }
        if answers(addr, ready_path).await {
            return Ok((proc, addr, began.elapsed()));
        }
        if began.elapsed() > Duration::from_secs(180) {
            return Err(format!(
                "{what} did not answer within 180 s:\n      {}",
                proc.log_tail()
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Whether `GET path` answers 200.
async fn answers(addr: SocketAddr, path: &'static str) -> bool {
    let Ok(mut sender) = handshake(addr).await else {
        return false;
    };
    let req = hyper::Request::get(path)
        .header("host", addr.to_string())
        .body(Full::new(Bytes::new()))
        .expect("request");
    match tokio::time::timeout(Duration::from_secs(5), sender.send_request(req)).await {
        Ok(Ok(resp)) => resp.status() == 200,
        _ => false,
    }
}

/// LiteLLM's proxy (`PROVIDER_BENCH_LITELLM`, else `litellm` on `PATH`) with one model
/// routed to the reference API with `api_key`, its clients authenticated by a master key
/// (it refuses to start without one), one worker.
pub async fn start_litellm(
    world: &World,
    dir: &Path,
    api_key: &str,
    pin: Option<Pinning>,
) -> Result<Gateway, String> {
    let program = program(
        "PROVIDER_BENCH_LITELLM",
        "litellm",
        "scripts/bench installs `litellm[proxy]` into target/bench-venv",
    )?;
    let version = python_package_version(&program, "litellm");
    let config = dir.join("litellm.yaml");
    std::fs::write(
        &config,
        format!(
            "model_list:\n  - model_name: grok-4.3\n    litellm_params:\n      model: openai/grok-4.3\n      api_base: {}\n      api_key: {api_key}\n",
            world.api.base_url()
        ),
    )
    .map_err(|e| e.to_string())?;
    let master_key = format!(
        "sk-{}",
        provider_reference::random_api_key().trim_start_matches("xai-")
    );
    let port = free_port();
    let mut cmd = Command::new(&program);
    cmd.arg("--config")
        .arg(&config)
        .args([
            "--port",
            &port.to_string(),
            "--host",
            "127.0.0.1",
            "--num_workers",
            "1",
        ])
        // No network here: the model price list shipped in the package, not the one online.
        .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        .env("LITELLM_LOG", "ERROR")
        .env("LITELLM_MASTER_KEY", &master_key)
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env_remove("DATABASE_URL")
        .current_dir(dir);
    let what = format!("LiteLLM {version}");
    let (proc, addr, took) = start_peer(
        cmd,
        &what,
        dir.join("litellm.log"),
        port,
        "/health/liveliness",
        pin,
    )
    .await?;
    Ok(Gateway {
        name: "LiteLLM",
        proc,
        addr,
        note: format!("{what}, answering after {}", dur(took)),
        headers: vec![("authorization", format!("Bearer {master_key}"))],
        model: "grok-4.3",
    })
}

/// Portkey's gateway (`PROVIDER_BENCH_PORTKEY`: the folder `scripts/bench` installs it
/// into from host/benches/peers/portkey, patched and bound to 127.0.0.1), routed per
/// request to the reference API by its `x-portkey-*` headers with the API key.
pub async fn start_portkey(
    world: &World,
    dir: &Path,
    api_key: &str,
    pin: Option<Pinning>,
) -> Result<Gateway, String> {
    let Some(home) = std::env::var_os("PROVIDER_BENCH_PORTKEY").filter(|p| !p.is_empty()) else {
        return Err(
            "Portkey's gateway is not installed (scripts/bench installs it from \
             host/benches/peers/portkey; PROVIDER_BENCH_PORTKEY names that folder)"
                .into(),
        );
    };
    let home = PathBuf::from(home);
    let package = home.join("node_modules/@portkey-ai/gateway");
    let version = std::fs::read_to_string(package.join("package.json"))
        .ok()
        .and_then(|p| serde_json::from_str::<serde_json::Value>(&p).ok())
        .and_then(|p| p["version"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "version unknown".into());
    let port = free_port();
    let mut cmd = Command::new("node");
    cmd.arg("--require")
        .arg(home.join("loopback.cjs"))
        .arg(package.join("build/start-server.js"))
        .arg(format!("--port={port}"))
        .arg("--headless")
        .env("NODE_ENV", "production")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .current_dir(dir);
    let what = format!("Portkey's gateway {version}");
    let (proc, addr, took) =
        start_peer(cmd, &what, dir.join("portkey.log"), port, "/", pin).await?;
    Ok(Gateway {
        name: "Portkey",
        proc,
        addr,
        note: format!("{what}, answering after {}", dur(took)),
        headers: vec![
            ("authorization", format!("Bearer {api_key}")),
            ("x-portkey-provider", "openai".into()),
            ("x-portkey-custom-host", world.api.base_url()),
        ],
        model: "grok-4.3",
    })
}

/// A Python package's version, asked of the interpreter beside `program` (a venv's
/// script); `program --version` may start a whole proxy.
fn python_package_version(program: &Path, package: &str) -> String {
    let python = program.with_file_name("python3");
    Command::new(if python.is_file() {
        python
    } else {
        "python3".into()
    })
    .args([
        "-c",
        &format!("import importlib.metadata as m; print(m.version('{package}'))"),
    ])
    .output()
    .ok()
    .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    .filter(|v| !v.is_empty())
    .unwrap_or_else(|| "version unknown".into())
}
