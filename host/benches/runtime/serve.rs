//! f) `provider-host serve` against the same chat sent directly to the reference API, and
//! against LiteLLM's proxy in front of that API (issue 14).
//!
//! Three ways to one reference API (1 KiB replies), each driven by the same kept-alive
//! hyper client with the same OpenAI-shaped body:
//!
//! - **direct**: `POST /v1/chat/completions` of the reference API with an API key (the
//!   fair baseline: what any proxy adds is measured against it);
//! - **serve**: the release CLI's `serve` (a child process) with a serve key, for a tenant
//!   logged in through the CLI; every request runs through the plugin;
//! - **LiteLLM**: `litellm --config … --num_workers 1` (a child process) with one model
//!   routed to the reference API with that API key, its clients authenticated by a master
//!   key (it refuses to start without one). `scripts/bench` installs it from PyPI
//!   into `target/bench-venv` (`PROVIDER_BENCH_LITELLM`, else `litellm` on `PATH`); when it
//!   is missing or does not start, that is said and the rest is still measured.
//!
//! Figures: non-streamed latency (p50 / p99) and requests per second at concurrency 1
//! (the three interleaved request by request) and at concurrency 64 (64 connections, each
//! proxy in turn), and the time to the first streamed text delta at concurrency 1. Then the
//! latency each proxy adds to the direct call, and serve's throughput against LiteLLM's.
//! Everything shares the machine: the reference servers and the client run in this process.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;

use crate::support::{REPLY_BYTES, Report, Row, Samples, World, dur, heading, ratio};

/// The tenant `serve` serves.
const TENANT: &str = "bench-serve";
/// A 64-hex master key for the CLI's state directory (a test key, as the tests use).
const KEY_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
/// The concurrent connections of the throughput run.
const WIDE: usize = 64;
const PROMPT: &str = "Say something long enough to fill the reply.";

/// How many requests each part sends.
pub struct Counts {
    /// Non-streamed chats per proxy at concurrency 1.
    pub sequential: usize,
    /// Non-streamed chats per connection at concurrency 64.
    pub per_connection: usize,
    /// Streamed chats per proxy (first delta timed).
    pub streams: usize,
}

impl Counts {
    pub fn new(quick: bool) -> Self {
        if quick {
            Self {
                sequential: 100,
                per_connection: 5,
                streams: 50,
            }
        } else {
            Self {
                sequential: 1000,
                per_connection: 20,
                streams: 300,
            }
        }
    }
}

/// One way to the reference API.
struct Target {
    name: &'static str,
    addr: SocketAddr,
    path: &'static str,
    authorization: String,
    whole: Bytes,
    stream: Bytes,
}

impl Target {
    fn new(
        name: &'static str,
        addr: SocketAddr,
        path: &'static str,
        bearer: &str,
        model: &str,
    ) -> Self {
        let body = |stream: bool| {
            let mut v = serde_json::json!({
                "model": model,
                "messages": [{"role": "user", "content": PROMPT}],
            });
            if stream {
                v["stream"] = true.into();
            }
            Bytes::from(v.to_string())
        };
        Self {
            name,
            addr,
            path,
            authorization: format!("Bearer {bearer}"),
            whole: body(false),
            stream: body(true),
        }
    }
}

/// A kept-alive HTTP/1.1 connection to a target; reopened once if the server closed it
/// (uvicorn closes idle connections after 5 s).
struct Conn {
    target: Arc<Target>,
    sender: SendRequest<Full<Bytes>>,
}

impl Conn {
    async fn open(target: Arc<Target>) -> Result<Self, String> {
        let sender = handshake(target.addr).await?;
        Ok(Self { target, sender })
    }

    /// `body` posted; the response once its status is 200.
    async fn post(&mut self, body: &Bytes) -> Result<hyper::body::Incoming, String> {
        let mut reopened = false;
        loop {
            let ready = self.sender.ready().await;
            let sent = match ready {
                Ok(()) => {
                    let t = &self.target;
                    let req = hyper::Request::post(t.path)
                        .header("host", t.addr.to_string())
                        .header("authorization", &t.authorization)
                        .header("content-type", "application/json")
                        .body(Full::new(body.clone()))
                        .expect("request");
                    self.sender
                        .send_request(req)
                        .await
                        .map_err(|e| e.to_string())
                }
                Err(e) => Err(e.to_string()),
            };
            match sent {
                Ok(resp) if resp.status() == 200 => return Ok(resp.into_body()),
                Ok(resp) => {
                    let status = resp.status();
                    let body = resp.into_body().collect().await.map(|b| b.to_bytes());
                    let text = body
                        .map(|b| String::from_utf8_lossy(&b[..b.len().min(600)]).into_owned())
                        .unwrap_or_default();
                    return Err(format!("{}: HTTP {status}: {text}", self.target.name));
                }
                Err(e) if !reopened => {
                    reopened = true;
                    self.sender = handshake(self.target.addr)
                        .await
                        .map_err(|h| format!("{}: {e}; reconnecting: {h}", self.target.name))?;
                }
                Err(e) => return Err(format!("{}: {e}", self.target.name)),
            }
        }
    }

    /// One non-streamed chat, its reply read whole; how long it took.
    async fn chat(&mut self) -> Result<Duration, String> {
        let body = self.target.whole.clone();
        let t = Instant::now();
        let reply = self.post(&body).await?;
        let bytes = reply
            .collect()
            .await
            .map_err(|e| format!("{}: {e}", self.target.name))?
            .to_bytes();
        let took = t.elapsed();
        if bytes.len() < REPLY_BYTES {
            return Err(format!(
                "{}: reply of {} bytes: {}",
                self.target.name,
                bytes.len(),
                String::from_utf8_lossy(&bytes)
            ));
        }
        Ok(took)
    }

    /// One streamed chat: time to its first non-empty text delta (the rest is read too).
    async fn first_token(&mut self) -> Result<Duration, String> {
        let body = self.target.stream.clone();
        let t = Instant::now();
        let mut reply = self.post(&body).await?;
        first_delta(&mut reply)
            .await
            .map_err(|e| format!("{}: {e}", self.target.name))?;
        let took = t.elapsed();
        while let Some(frame) = reply.frame().await {
            frame.map_err(|e| format!("{}: {e}", self.target.name))?;
        }
        Ok(took)
    }

    /// A check that the content really came back (once, before measuring).
    async fn check_content(&mut self) -> Result<(), String> {
        let body = self.target.whole.clone();
        let bytes = self
            .post(&body)
            .await?
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| format!("{}: not JSON ({e})", self.target.name))?;
        let content = v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap_or_default();
        if content.len() == REPLY_BYTES {
            Ok(())
        } else {
            Err(format!(
                "{}: content of {} bytes, not {REPLY_BYTES}: {v}",
                self.target.name,
                content.len()
            ))
        }
    }
}

async fn handshake(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>, String> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let (sender, conn) = http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| format!("handshake {addr}: {e}"))?;
    tokio::spawn(conn);
    Ok(sender)
}

/// Read server-sent events until one carries a non-empty text delta.
async fn first_delta(body: &mut hyper::body::Incoming) -> Result<(), String> {
    let mut buf = Vec::new();
    loop {
        let frame = body
            .frame()
            .await
            .ok_or("the stream ended before any text")?
            .map_err(|e| e.to_string())?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        buf.extend_from_slice(&data);
        while let Some(end) = buf.windows(2).position(|w| w == b"\n\n") {
            let event: Vec<u8> = buf.drain(..end + 2).collect();
            for line in String::from_utf8_lossy(&event).lines() {
                let Some(json) = line.strip_prefix("data: ") else {
                    continue;
                };
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(json)
                    && v["choices"][0]["delta"]["content"]
                        .as_str()
                        .is_some_and(|s| !s.is_empty())
                {
                    return Ok(());
                }
            }
        }
    }
}

/// A child process, killed (with its process group, when it leads one) when dropped.
struct Proc {
    child: Child,
    group: bool,
    log: PathBuf,
    /// Kept open: the child may still write to it.
    _stdout: Option<ChildStdout>,
}

impl Proc {
    fn log_tail(&self) -> String {
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

/// `start`, approval on the reference server, `poll`, `serve-key create`, then `serve` on a
/// free loopback port: the process and its base address, with the serve key.
fn start_serve(world: &World, state: &Path) -> (Proc, SocketAddr, String) {
    let start = json_of(cli(world, state).args(["--tenant", TENANT, "start"]));
    let code = start["user_code"].as_str().expect("user_code");
    world
        .auth
        .approve(code, 4, "user-bench-serve")
        .expect("approve");
    let poll = json_of(cli(world, state).args(["--tenant", TENANT, "poll"]));
    assert_eq!(poll["status"], "connected", "{poll}");
    let created = json_of(cli(world, state).args(["--tenant", TENANT, "serve-key", "create"]));
    let key = created["key"].as_str().expect("serve key").to_owned();
    let log = state.join("serve.log");
    let mut child = cli(world, state)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("serve log"))
        .spawn()
        .expect("start serve");
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
    (proc, addr, key)
}

/// The LiteLLM executable: `PROVIDER_BENCH_LITELLM` (set by `scripts/bench`), else
/// `litellm` on `PATH`.
fn litellm_program() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("PROVIDER_BENCH_LITELLM").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!(
                "PROVIDER_BENCH_LITELLM={} does not exist",
                p.display()
            ))
        };
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("litellm"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            "LiteLLM is not installed (scripts/bench installs `litellm[proxy]` into \
             target/bench-venv; or put `litellm` on PATH)"
                .to_owned()
        })
}

fn litellm_version(program: &Path) -> String {
    // The venv's python beside the script; `litellm --version` starts the whole proxy
    // machinery and takes seconds.
    let python = program.with_file_name("python3");
    Command::new(if python.is_file() {
        python
    } else {
        "python3".into()
    })
    .args([
        "-c",
        "import importlib.metadata as m; print(m.version('litellm'))",
    ])
    .output()
    .ok()
    .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    .filter(|v| !v.is_empty())
    .unwrap_or_else(|| "version unknown".into())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// LiteLLM's proxy with one model routed to the reference API with `api_key`, started
/// and answering `GET /health/liveliness`; the process and its address.
async fn start_litellm(
    world: &World,
    dir: &Path,
    api_key: &str,
    master_key: &str,
) -> Result<(Proc, SocketAddr, String), String> {
    let program = litellm_program()?;
    let version = litellm_version(&program);
    let config = dir.join("litellm.yaml");
    std::fs::write(
        &config,
        format!(
            "model_list:\n  - model_name: grok-4.3\n    litellm_params:\n      model: openai/grok-4.3\n      api_base: {}\n      api_key: {api_key}\n",
            world.api.base_url()
        ),
    )
    .map_err(|e| e.to_string())?;
    let port = free_port();
    let log = dir.join("litellm.log");
    let child = Command::new(&program)
        .arg("--config")
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
        // Its clients authenticate, as serve's do (it refuses to start without a key).
        .env("LITELLM_MASTER_KEY", master_key)
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env_remove("DATABASE_URL")
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).map_err(|e| e.to_string())?)
        .stderr(
            std::fs::OpenOptions::new()
                .append(true)
                .open(&log)
                .map_err(|e| e.to_string())?,
        )
        // Its own process group: whatever it forks is stopped with it.
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
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
                "LiteLLM ({version}) exited with {status} before answering:\n      {}",
                proc.log_tail()
            ));
        }
        if alive(addr).await {
            break;
        }
        if began.elapsed() > Duration::from_secs(180) {
            return Err(format!(
                "LiteLLM ({version}) did not answer within 180 s:\n      {}",
                proc.log_tail()
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok((
        proc,
        addr,
        format!(
            "LiteLLM {version}, answering after {}",
            dur(began.elapsed())
        ),
    ))
}

/// Whether `GET /health/liveliness` answers 200.
async fn alive(addr: SocketAddr) -> bool {
    let Ok(mut sender) = handshake(addr).await else {
        return false;
    };
    let req = hyper::Request::get("/health/liveliness")
        .header("host", addr.to_string())
        .body(Full::new(Bytes::new()))
        .expect("request");
    match tokio::time::timeout(Duration::from_secs(5), sender.send_request(req)).await {
        Ok(Ok(resp)) => resp.status() == 200,
        _ => false,
    }
}

/// Figures of one target.
struct Figures {
    one: Samples,
    one_wall: Duration,
    wide: Samples,
    wide_wall: Duration,
    first: Samples,
}

impl Figures {
    fn new(counts: &Counts) -> Self {
        Self {
            one: Samples::with_capacity(counts.sequential),
            one_wall: Duration::ZERO,
            wide: Samples::with_capacity(WIDE * counts.per_connection),
            wide_wall: Duration::ZERO,
            first: Samples::with_capacity(counts.streams),
        }
    }

    fn rps_one(&self) -> f64 {
        self.one.len() as f64 / self.one_wall.as_secs_f64().max(1e-9)
    }

    fn rps_wide(&self) -> f64 {
        self.wide.len() as f64 / self.wide_wall.as_secs_f64().max(1e-9)
    }
}

fn p50_p99(s: &Samples) -> String {
    format!("{} / {}", dur(s.p50()), dur(s.p99()))
}

/// `requests` chats on each of `WIDE` connections at once; the latencies and the wall time
/// from the moment every connection was open and warm until the last reply.
async fn wide(target: &Arc<Target>, requests: usize) -> Result<(Samples, Duration), String> {
    let barrier = Arc::new(tokio::sync::Barrier::new(WIDE + 1));
    let mut tasks = Vec::with_capacity(WIDE);
    for _ in 0..WIDE {
        let target = target.clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            let warm = async {
                let mut conn = Conn::open(target).await?;
                conn.chat().await?;
                Ok::<_, String>(conn)
            }
            .await;
            barrier.wait().await;
            let mut conn = warm?;
            let mut took = Vec::with_capacity(requests);
            for _ in 0..requests {
                took.push(conn.chat().await?);
            }
            Ok::<_, String>(took)
        }));
    }
    barrier.wait().await;
    let t = Instant::now();
    let mut samples = Samples::with_capacity(WIDE * requests);
    let mut failure = None;
    for task in tasks {
        match task.await.expect("client task") {
            Ok(took) => took.into_iter().for_each(|d| samples.push(d)),
            Err(e) => failure = failure.or(Some(e)),
        }
    }
    let wall = t.elapsed();
    match failure {
        Some(e) => Err(e),
        None => Ok((samples, wall)),
    }
}

pub async fn run(world: &World, counts: Counts, report: &mut Report) {
    heading(&format!(
        "f) serve vs the reference API directly vs LiteLLM's proxy ({REPLY_BYTES} B replies, \
         non-streamed and streamed chats)"
    ));
    let dir = tempfile::Builder::new()
        .prefix("provider-host-bench-serve")
        .tempdir()
        .expect("temp dir");
    let api_key = provider_reference::random_api_key();
    world.api.add_api_key(api_key.clone(), 4u32);

    let (serve_proc, serve_addr, serve_key) =
        tokio::task::block_in_place(|| start_serve(world, dir.path()));
    let master_key = format!(
        "sk-{}",
        provider_reference::random_api_key().trim_start_matches("xai-")
    );
    let litellm = start_litellm(world, dir.path(), &api_key, &master_key).await;
    let (litellm_proc, litellm_note) = match &litellm {
        Ok((_, _, note)) => (true, note.clone()),
        Err(e) => (false, e.clone()),
    };
    println!(
        "   LiteLLM: {}",
        if litellm_proc {
            litellm_note
        } else {
            format!("not measured: {litellm_note}")
        }
    );
    let mut targets = vec![
        Arc::new(Target::new(
            "direct",
            world.api.addr(),
            "/v1/chat/completions",
            &api_key,
            "grok-4.3",
        )),
        Arc::new(Target::new(
            "serve",
            serve_addr,
            "/v1/chat/completions",
            &serve_key,
            "xai-grok/grok-4.3",
        )),
    ];
    let mut litellm_guard = None;
    if let Ok((proc, addr, _)) = litellm {
        targets.push(Arc::new(Target::new(
            "LiteLLM",
            addr,
            "/v1/chat/completions",
            &master_key,
            "grok-4.3",
        )));
        litellm_guard = Some(proc);
    }

    // Check each answer once, then warm up (LiteLLM initialises lazily).
    let mut conns = Vec::new();
    for t in &targets {
        let checked = async {
            let mut c = Conn::open(t.clone()).await?;
            c.check_content().await?;
            for _ in 0..30 {
                c.chat().await?;
                c.first_token().await?;
            }
            Ok::<_, String>(c)
        }
        .await;
        match checked {
            Ok(c) => conns.push(c),
            Err(e) if t.name == "LiteLLM" => {
                println!("   LiteLLM: not measured: its answers failed: {e}");
                if let Some(p) = &litellm_guard {
                    println!("      {}", p.log_tail());
                }
                litellm_guard = None;
            }
            Err(e) => panic!("{e}"),
        }
    }
    targets.truncate(conns.len());
    let mut figures: Vec<Figures> = targets.iter().map(|_| Figures::new(&counts)).collect();

    // Concurrency 1: one request of each in turn, so that all see the same machine.
    for _ in 0..counts.sequential {
        for (c, f) in conns.iter_mut().zip(&mut figures) {
            let took = c.chat().await.expect("chat");
            f.one.push(took);
            f.one_wall += took;
        }
    }
    for _ in 0..counts.streams {
        for (c, f) in conns.iter_mut().zip(&mut figures) {
            f.first.push(c.first_token().await.expect("stream"));
        }
    }
    drop(conns);

    // Concurrency 64: each in turn, alone on the machine.
    for (t, f) in targets.iter().zip(&mut figures) {
        let (samples, wall) = wide(t, counts.per_connection)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        f.wide = samples;
        f.wide_wall = wall;
    }
    // What LiteLLM complained about, if anything (a failing side call would slow it).
    let litellm_log = litellm_guard.as_ref().map(|p| {
        let text = std::fs::read_to_string(&p.log).unwrap_or_default();
        let noisy: Vec<&str> = text
            .lines()
            .filter(|l| {
                let l = l.to_ascii_lowercase();
                l.contains("error") || l.contains("traceback") || l.contains("warn")
            })
            .collect();
        (
            text.lines().count(),
            noisy.len(),
            noisy.last().map(|l| l.to_string()),
        )
    });
    drop(litellm_guard);
    let serve_log = serve_proc.log_tail();
    drop(serve_proc);

    println!("   non-streamed chat, concurrency 1 (p50 / p99 / mean, requests/s):");
    for (t, f) in targets.iter().zip(&figures) {
        println!(
            "     {:<8}: {} · {:.0} req/s",
            t.name,
            f.one.summary(),
            f.rps_one()
        );
    }
    println!("   non-streamed chat, concurrency {WIDE} ({WIDE} kept-alive connections):");
    for (t, f) in targets.iter().zip(&figures) {
        println!(
            "     {:<8}: {} · {:.0} req/s",
            t.name,
            f.wide.summary(),
            f.rps_wide()
        );
    }
    println!("   first streamed text delta, concurrency 1:");
    for (t, f) in targets.iter().zip(&figures) {
        println!("     {:<8}: {}", t.name, f.first.summary());
    }
    if let Some((lines, noisy, last)) = litellm_log {
        println!(
            "   LiteLLM's log: {lines} lines, {noisy} with error/warning{}",
            last.map(|l| format!(" (last: {l})")).unwrap_or_default()
        );
    }
    if !serve_log.trim().is_empty() {
        println!("   serve's log (last lines):\n      {serve_log}");
    }

    let direct = &figures[0];
    let serve = &figures[1];
    let litellm = figures.get(2);
    let added = |f: &Figures| f.one.p50().saturating_sub(direct.one.p50());
    let added_wide = |f: &Figures| f.wide.p50().saturating_sub(direct.wide.p50());
    let added_first = |f: &Figures| f.first.p50().saturating_sub(direct.first.p50());
    println!(
        "   serve added latency (p50, c=1): {} ({:.2}× direct)",
        dur(added(serve)),
        ratio(serve.one.p50(), direct.one.p50())
    );
    println!(
        "   serve requests/s vs direct: {:.2}× at c=1, {:.2}× at c={WIDE}",
        serve.rps_one() / direct.rps_one(),
        serve.rps_wide() / direct.rps_wide()
    );
    if let Some(l) = litellm {
        let r_added = ratio(added(serve), added(l));
        println!(
            "   LiteLLM added latency (p50, c=1): {} ({:.2}× direct)",
            dur(added(l)),
            ratio(l.one.p50(), direct.one.p50())
        );
        println!(
            "   serve's added latency / LiteLLM's: {r_added:.3}× at c=1, {:.3}× at c={WIDE} (p50), \
             {:.3}× to the first token (aim ≤ 0.1×)",
            ratio(added_wide(serve), added_wide(l)),
            ratio(added_first(serve), added_first(l)),
        );
        println!(
            "   serve's requests/s / LiteLLM's: {:.1}× at c=1, {:.1}× at c={WIDE} (aim ≥ 10×)",
            serve.rps_one() / l.rps_one(),
            serve.rps_wide() / l.rps_wide()
        );
    }

    let baseline = |pick: &dyn Fn(&Figures) -> String| {
        let mut s = format!("{} direct", pick(direct));
        if let Some(l) = litellm {
            s.push_str(&format!("; {} LiteLLM", pick(l)));
        }
        s
    };
    report.add(Row {
        bench: "f) serve, non-streamed chat, c=1 (p50 / p99)",
        figure: p50_p99(&serve.one),
        baseline: baseline(&|f| p50_p99(&f.one)),
        ratio: match litellm {
            Some(l) => format!(
                "added {} vs {}: {:.3}×",
                dur(added(serve)),
                dur(added(l)),
                ratio(added(serve), added(l))
            ),
            None => format!("added {}", dur(added(serve))),
        },
        target: "added ≤ 0.1× LiteLLM's",
        met: litellm.map(|l| ratio(added(serve), added(l)) <= 0.1),
    });
    report.add(Row {
        bench: "f) serve, requests/s at c=64 (latency p50 / p99)",
        figure: format!("{:.0} ({})", serve.rps_wide(), p50_p99(&serve.wide)),
        baseline: baseline(&|f| format!("{:.0} ({})", f.rps_wide(), p50_p99(&f.wide))),
        ratio: match litellm {
            Some(l) => format!("{:.1}× LiteLLM's", serve.rps_wide() / l.rps_wide()),
            None => format!("{:.2}× direct", serve.rps_wide() / direct.rps_wide()),
        },
        target: "≥ 10× LiteLLM's",
        met: litellm.map(|l| serve.rps_wide() / l.rps_wide() >= 10.0),
    });
    report.add(Row {
        bench: "f) serve, requests/s at c=1",
        figure: format!("{:.0}", serve.rps_one()),
        baseline: baseline(&|f| format!("{:.0}", f.rps_one())),
        ratio: match litellm {
            Some(l) => format!("{:.1}× LiteLLM's", serve.rps_one() / l.rps_one()),
            None => format!("{:.2}× direct", serve.rps_one() / direct.rps_one()),
        },
        target: "≥ 10× LiteLLM's",
        met: litellm.map(|l| serve.rps_one() / l.rps_one() >= 10.0),
    });
    report.add(Row {
        bench: "f) serve, first streamed token, c=1 (p50 / p99)",
        figure: p50_p99(&serve.first),
        baseline: baseline(&|f| p50_p99(&f.first)),
        ratio: match litellm {
            Some(l) => format!(
                "added {} vs {}: {:.3}×",
                dur(added_first(serve)),
                dur(added_first(l)),
                ratio(added_first(serve), added_first(l))
            ),
            None => format!("added {}", dur(added_first(serve))),
        },
        target: "added ≤ 0.1× LiteLLM's",
        met: litellm.map(|l| ratio(added_first(serve), added_first(l)) <= 0.1),
    });
    if litellm.is_none() {
        println!("   (LiteLLM not measured: serve against direct only)");
    }
}
