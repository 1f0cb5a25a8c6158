//! `provider-host serve` driven by real clients: the official OpenAI Python SDK
//! (tests/serve/sdk_client.py, installed by the test setup) and raw HTTP for what an SDK
//! hides. The upstream is the reference servers; the tenant logs in through the CLI.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use provider_reference::{ApiHandle, AuthConfig, AuthHandle, Fault, Route};
use serde_json::Value;

use crate::served::{self, Served};
use crate::support::{self, cli_to};

/// Reference servers, a tenant `team` logged in at tier 4, a serve key for it, and
/// `serve` on a free loopback port.
fn serve() -> Served {
    serve_with(AuthConfig::default())
}

/// `serve()` against an authorization server configured so (the device-poll interval is
/// always 1 s).
fn serve_with(auth_config: AuthConfig) -> Served {
    serve_custom(auth_config, |_, _, _, _| {})
}

/// The shared harness's `serve`, with the developer API's route enabled: the default
/// route is the subscription rail, and the SDK clients also chat with the developer
/// API's grok-4.3 (`xai-grok/…`). `prepare` as there.
fn serve_custom(
    auth_config: AuthConfig,
    prepare: impl FnOnce(&mut Command, &std::path::Path, &AuthHandle, &ApiHandle),
) -> Served {
    served::serve_custom(auth_config, |cmd, state, auth, api| {
        cmd.args(["--route", "api"]);
        prepare(cmd, state, auth, api);
    })
}

impl Served {
    /// Write one HTTP/1.1 request (`Connection: close`) on a new connection.
    fn send(&self, method: &str, path: &str, key: Option<&str>, body: Option<&str>) -> TcpStream {
        self.send_with(method, path, key, body, &[])
    }

    /// `send` with more request headers.
    pub(crate) fn send_with(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> TcpStream {
        let mut conn = TcpStream::connect(self.addr()).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let mut head =
            format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
        if let Some(k) = key {
            head.push_str(&format!("Authorization: Bearer {k}\r\n"));
        }
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if let Some(b) = body {
            head.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                b.len()
            ));
        }
        head.push_str("\r\n");
        head.push_str(body.unwrap_or(""));
        conn.write_all(head.as_bytes()).unwrap();
        conn
    }

    /// One request, its status and (de-chunked) body.
    fn request(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<&str>,
    ) -> (u16, String) {
        self.request_with(method, path, key, body, &[])
    }

    /// `request` with more request headers.
    pub(crate) fn request_with(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> (u16, String) {
        let mut conn = self.send_with(method, path, key, body, headers);
        let mut raw = Vec::new();
        conn.read_to_end(&mut raw).unwrap();
        parse_response(&raw)
    }

    /// A non-streamed chat of the tenant; its status and body.
    fn chat(&self, text: &str) -> (u16, String) {
        let body =
            serde_json::json!({"model": MODEL, "messages": [{"role": "user", "content": text}]});
        self.request(
            "POST",
            "/v1/chat/completions",
            Some(&self.key),
            Some(&body.to_string()),
        )
    }

    /// The `/metrics` text.
    fn metrics(&self) -> String {
        let (status, text) = self.request("GET", "/metrics", None, None);
        assert_eq!(status, 200, "{text}");
        text
    }
}

const MODEL: &str = "xai-grok/grok-4.3";

/// Status and body of a raw HTTP/1.1 response (chunked bodies decoded).
fn parse_response(raw: &[u8]) -> (u16, String) {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no head: {text:?}"));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("status line: {head:?}"));
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    (
        status,
        if chunked {
            dechunk(body)
        } else {
            body.to_owned()
        },
    )
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].strip_prefix("\r\n").unwrap_or(&rest[n..]);
    }
    out
}

/// The value of the sample `series` (name and labels exactly as OpenMetrics writes them).
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|l| {
        l.strip_prefix(series)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|v| v.split(' ').next()?.parse().ok())
    })
}

/// One step of the Python SDK client; its JSON on success.
fn sdk(s: &Served, step: &str) -> Value {
    let out = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/serve/sdk_client.py"
        ))
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
        std::path::Path::new(dir)
            .join("node_modules/openai")
            .exists(),
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
    s.api
        .push_fault(Route::ChatCompletions, Fault::tier_denied());
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
    // Remote listening with TLS given but a bad certificate is refused too, before binding.
    let bogus = state.path().join("bogus.pem");
    std::fs::write(&bogus, "not a certificate").unwrap();
    let out = support::cli(state.path())
        .args([
            "serve",
            "--listen",
            "0.0.0.0:0",
            "--allow-remote",
            "--tls-cert",
        ])
        .arg(&bogus)
        .arg("--tls-key")
        .arg(&bogus)
        .output()
        .unwrap();
    assert_eq!(support::json_of(&out)["error"], "config_error");
}

#[test]
fn serve_speaks_https_with_the_given_certificate() {
    let state = support::state_dir();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let (cert_path, key_path) = (state.path().join("cert.pem"), state.path().join("key.pem"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    let mut child = support::cli(state.path())
        .args(["serve", "--listen", "127.0.0.1:0", "--tls-cert"])
        .arg(&cert_path)
        .arg("--tls-key")
        .arg(&key_path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = support::serve_base(&mut child);
    assert!(base.starts_with("https://127.0.0.1:"), "{base}");
    let health = base.trim_end_matches("/v1").to_owned() + "/healthz";
    let out = Command::new("curl")
        .args(["-s", "--max-time", "10", "--cacert"])
        .arg(&cert_path)
        .arg(&health)
        .output()
        .expect("curl runs");
    let body = String::from_utf8_lossy(&out.stdout).to_string();
    // Plain HTTP to the TLS port gets no answer.
    let plain = Command::new("curl")
        .args([
            "-s",
            "--max-time",
            "5",
            &health.replacen("https://", "http://", 1),
        ])
        .output()
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(body.trim(), r#"{"ok":true}"#, "curl over TLS: {body:?}");
    assert!(!String::from_utf8_lossy(&plain.stdout).contains("\"ok\""));
}

/// Every line of an OpenMetrics text is a comment or `name{labels} value`, and it ends
/// with `# EOF`.
fn assert_openmetrics_lines(text: &str) {
    assert_eq!(text.lines().last(), Some("# EOF"), "{text}");
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line:?}"));
        assert!(value.parse::<f64>().is_ok(), "value of {line:?}");
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => (n, Some(l)),
            None => (series, None),
        };
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "name of {line:?}"
        );
        if let Some(labels) = labels {
            let labels = labels
                .strip_suffix('}')
                .unwrap_or_else(|| panic!("{line:?}"));
            for pair in labels.split("\",").filter(|p| !p.is_empty()) {
                let (k, v) = pair
                    .split_once("=\"")
                    .unwrap_or_else(|| panic!("label of {line:?}"));
                assert!(
                    k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                    "{line:?}"
                );
                assert!(!v.trim_end_matches('"').contains('"'), "{line:?}");
            }
        }
    }
}

#[test]
fn metrics_count_requests_latency_upstream_errors_and_streams_without_a_key() {
    let s = serve();
    assert_eq!(s.request("GET", "/v1/models", Some(&s.key), None).0, 200);
    assert_eq!(s.chat("counted").0, 200);
    assert_eq!(s.request("GET", "/v1/models", None, None).0, 401);
    s.api
        .push_fault(Route::ChatCompletions, Fault::rate_limited(Some(7)));
    assert_eq!(s.chat("limited").0, 429);
    let stream = serde_json::json!({"model": MODEL, "stream": true,
        "messages": [{"role": "user", "content": "a stream to count"}]});
    let (status, events) = s.request(
        "POST",
        "/v1/chat/completions",
        Some(&s.key),
        Some(&stream.to_string()),
    );
    assert_eq!(status, 200);
    assert!(events.ends_with("data: [DONE]\n\n"), "{events}");

    let text = s.metrics();
    assert_openmetrics_lines(&text);
    // A fresh login needed no refresh.
    assert!(!text.contains("serve_token_refreshes_total{"), "{text}");
    let at = |series: &str| sample(&text, series).unwrap_or_else(|| panic!("{series} in\n{text}"));
    assert_eq!(
        at(r#"serve_requests_total{route="/v1/models",status="200"}"#),
        1.0
    );
    assert_eq!(
        at(r#"serve_requests_total{route="/v1/models",status="401"}"#),
        1.0
    );
    assert_eq!(
        at(r#"serve_requests_total{route="/v1/chat/completions",status="200"}"#),
        2.0
    );
    assert_eq!(
        at(r#"serve_requests_total{route="/v1/chat/completions",status="429"}"#),
        1.0
    );
    assert_eq!(
        at(r#"serve_upstream_errors_total{code="rate_limited"}"#),
        1.0
    );
    assert_eq!(
        at(r#"serve_request_duration_seconds_count{route="/v1/chat/completions"}"#),
        3.0
    );
    assert_eq!(
        at(r#"serve_request_duration_seconds_count{route="/v1/models"}"#),
        2.0
    );
    assert!(at(r#"serve_request_duration_seconds_sum{route="/v1/chat/completions"}"#) > 0.0);
    assert!(
        text.contains(
            r#"serve_request_duration_seconds_bucket{le="+Inf",route="/v1/chat/completions"} 3"#
        ) || text.contains(
            r#"serve_request_duration_seconds_bucket{route="/v1/chat/completions",le="+Inf"} 3"#
        ),
        "{text}"
    );
    assert_eq!(at("serve_open_streams"), 0.0);
    // Nothing of the tenant or its key is in the scrape.
    assert!(!text.contains("team") && !text.contains(&s.key), "{text}");
    // The scrape itself was counted by the time of the next one.
    assert_eq!(
        sample(
            &s.metrics(),
            r#"serve_requests_total{route="/metrics",status="200"}"#
        ),
        Some(1.0)
    );
}

#[test]
fn fifty_concurrent_requests_meeting_an_expired_token_redeem_the_refresh_token_once() {
    // Access tokens live 6 s (the plugin refreshes in the last tenth of that).
    const TTL: Duration = Duration::from_secs(6);
    let s = serve_with(AuthConfig {
        access_token_ttl: TTL,
        ..AuthConfig::default()
    });
    let logged_in = Instant::now();
    // Warm the tenant's sessions while the token is fresh: no refresh.
    std::thread::scope(|scope| {
        for i in 0..8 {
            let s = &s;
            scope.spawn(move || assert_eq!(s.chat(&format!("warm {i}")).0, 200));
        }
    });
    assert_eq!(s.auth.stats().refresh_redemptions, 0);
    // Past expiry.
    std::thread::sleep(
        (logged_in + TTL + Duration::from_millis(300)).saturating_duration_since(Instant::now()),
    );
    let results: Vec<(u16, String)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..50)
            .map(|i| {
                let s = &s;
                scope.spawn(move || s.chat(&format!("concurrent {i}")))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, (status, body)) in results.iter().enumerate() {
        assert_eq!(*status, 200, "request {i}: {body}");
        let v: Value = serde_json::from_str(body).unwrap();
        assert_eq!(
            v["choices"][0]["message"]["content"],
            format!("Echo: concurrent {i}"),
            "{body}"
        );
    }
    let stats = s.auth.stats();
    assert_eq!(stats.refresh_redemptions, 1, "{stats:?}");
    assert_eq!(stats.reuse_detections, 0, "{stats:?}");
    // The one redemption is what /metrics counts.
    let text = s.metrics();
    assert_eq!(
        sample(&text, r#"serve_token_refreshes_total{outcome="ok"}"#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"serve_token_refreshes_total{outcome="refused"}"#),
        None,
        "{text}"
    );
}

/// A streamed chat whose upstream pauses for `stall` after two events.
fn open_stalled_stream(s: &Served, stall: Duration) -> TcpStream {
    s.api.push_fault(
        Route::ChatCompletions,
        Fault::StallMidBody {
            after_events: 2,
            duration: stall,
        },
    );
    let body = serde_json::json!({"model": MODEL, "stream": true,
        "messages": [{"role": "user", "content": "a slow stream, long enough to be left midway"}]});
    s.send(
        "POST",
        "/v1/chat/completions",
        Some(&s.key),
        Some(&body.to_string()),
    )
}

/// Read until `events` SSE events arrived; what was read.
fn read_events(conn: &mut TcpStream, events: usize) -> String {
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    while seen.matches("data: ").count() < events {
        let n = conn.read(&mut buf).unwrap();
        assert!(n > 0, "the stream ended early: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    seen
}

#[test]
fn a_client_leaving_mid_stream_stops_the_upstream_stream_at_once() {
    let s = serve();
    let mut conn = open_stalled_stream(&s, Duration::from_secs(60));
    // The opening chunk and the upstream's first text.
    let first = read_events(&mut conn, 2);
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    assert_eq!(
        sample(&s.metrics(), "serve_open_streams"),
        Some(1.0),
        "the stream is relayed"
    );
    let left = Instant::now();
    drop(conn);
    // serve notices while upstream is still stalled (60 s), logs 499 and discards the
    // session, which closes the upstream response.
    let line = s
        .wait_for_log(&["status=499", "stream=true"], Duration::from_secs(5))
        .unwrap_or_else(|| panic!("no 499 in the log:\n{}", s.log()));
    assert!(left.elapsed() < Duration::from_secs(5), "{line}");
    assert_eq!(sample(&s.metrics(), "serve_open_streams"), Some(0.0));
    // The tenant's next request works (a fresh session in place of the discarded one).
    let (status, body) = s.chat("after the cancellation");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Echo: after the cancellation"), "{body}");
}

#[test]
fn sigterm_refuses_new_connections_lets_the_open_stream_finish_and_exits_zero() {
    let mut s = serve();
    let mut conn = open_stalled_stream(&s, Duration::from_secs(3));
    let mut seen = read_events(&mut conn, 2);
    let pid = i32::try_from(s.child.id()).unwrap();
    let signalled = Instant::now();
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    // The listener closes: new connections are refused.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match TcpStream::connect_timeout(&s.addr(), Duration::from_millis(500)) {
            Err(_) => break,
            Ok(_) => {
                assert!(
                    Instant::now() < deadline,
                    "serve still accepts after SIGTERM"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
    // The open stream runs to its end.
    let mut rest = Vec::new();
    conn.read_to_end(&mut rest).unwrap();
    seen.push_str(&String::from_utf8_lossy(&rest));
    let (status, events) = parse_response(seen.as_bytes());
    assert_eq!(status, 200);
    assert!(events.ends_with("data: [DONE]\n\n"), "{events}");
    let text: String = events
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(text, "Echo: a slow stream, long enough to be left midway");
    // And the process exits 0 well within the grace period (30 s).
    let status = loop {
        if let Some(st) = s.child.try_wait().unwrap() {
            break st;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(25),
            "serve did not exit after SIGTERM:\n{}",
            s.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}:\n{}", s.log());
    assert!(s.log().contains("status=200"), "{}", s.log());
}

/// The chunks of a streamed chat, as JSON (`[DONE]` left out).
fn stream_chunks(s: &Served, body: &Value) -> Vec<Value> {
    let (status, events) = s.request(
        "POST",
        "/v1/chat/completions",
        Some(&s.key),
        Some(&body.to_string()),
    );
    assert_eq!(status, 200, "{events}");
    assert!(events.ends_with("data: [DONE]\n\n"), "{events}");
    events
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

#[test]
fn a_stream_carries_a_usage_chunk_only_when_include_usage_asks() {
    let s = serve();
    let messages = serde_json::json!([{"role": "user", "content": "usage or not"}]);
    let without = stream_chunks(
        &s,
        &serde_json::json!({"model": MODEL, "stream": true, "messages": messages}),
    );
    assert!(without.len() > 2, "{without:?}");
    assert!(
        without.iter().all(|c| c.get("usage").is_none()),
        "{without:?}"
    );
    let off = stream_chunks(
        &s,
        &serde_json::json!({"model": MODEL, "stream": true, "messages": messages,
                            "stream_options": {"include_usage": false}}),
    );
    assert!(off.iter().all(|c| c.get("usage").is_none()), "{off:?}");
    let with = stream_chunks(
        &s,
        &serde_json::json!({"model": MODEL, "stream": true, "messages": messages,
                            "stream_options": {"include_usage": true}}),
    );
    let usage: Vec<_> = with.iter().filter(|c| c.get("usage").is_some()).collect();
    assert_eq!(usage.len(), 1, "{with:?}");
    assert_eq!(usage[0]["choices"], serde_json::json!([]), "{with:?}");
    assert!(usage[0]["usage"]["total_tokens"].as_u64().unwrap() > 0);
    // The usage chunk is the last one, as OpenAI sends it.
    assert!(with.last().unwrap().get("usage").is_some(), "{with:?}");
}

#[test]
fn headers_trickling_slower_than_the_header_read_timeout_are_cut() {
    const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
    let s = serve();
    let mut conn = TcpStream::connect(s.addr()).unwrap();
    conn.set_read_timeout(Some(Duration::from_millis(250)))
        .unwrap();
    let began = Instant::now();
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
        .unwrap();
    // One byte of an endless header every 250 ms: never a complete head.
    let header = b"X-Slow: ".iter().chain(std::iter::repeat(&b'a'));
    let mut answer = Vec::new();
    for byte in header {
        if conn.write_all(&[*byte]).is_err() {
            break;
        }
        let mut buf = [0u8; 1024];
        match conn.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
        assert!(
            began.elapsed() < HEADER_READ_TIMEOUT + Duration::from_secs(5),
            "serve kept reading the trickled head"
        );
    }
    let cut = began.elapsed();
    assert!(
        cut >= HEADER_READ_TIMEOUT - Duration::from_millis(500),
        "cut after {cut:?}"
    );
    // Nothing but possibly a 408 came back.
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
    // serve itself goes on.
    assert_eq!(s.request("GET", "/healthz", None, None).0, 200);
}

/// Routes through `serve`: the default route (the subscription rail), the enabled developer
/// API and the stored API key, listed side by side by `/v1/models` and picked per request by the
/// `X-Provider-Route` header or the model's prefix.
#[test]
fn serve_picks_the_route_per_request_and_lists_every_enabled_route() {
    let key = provider_reference::random_api_key();
    let stored = key.clone();
    let served = serve_custom(AuthConfig::default(), move |serve, state, auth, api| {
        api.add_api_key(&stored, 4u32);
        let mut set = cli_to(state, auth, api)
            .args(["--tenant", "team", "key", "set"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(set.stdin.take().unwrap(), "{stored}").unwrap();
        assert!(set.wait_with_output().unwrap().status.success());
        serve
            .env("XAI_SUBSCRIPTION_BASE", api.subscription_base())
            .args(["--route", "api", "--route", "api-key"]);
    });
    let (status, body) = served.request("GET", "/v1/models", Some(&served.key), None);
    assert_eq!(status, 200, "{body}");
    let list: Value = serde_json::from_str(&body).unwrap();
    let routes: std::collections::BTreeSet<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["route"].as_str().unwrap())
        .collect();
    assert_eq!(
        routes.into_iter().collect::<Vec<_>>(),
        ["api", "api-key", "subscription"],
        "{body}"
    );
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    let unique: std::collections::HashSet<&&str> = ids.iter().collect();
    assert_eq!(
        unique.len(),
        ids.len(),
        "model ids of different routes collide: {ids:?}"
    );

    let chat = |headers: &[(&str, &str)], model: &str| {
        let body = serde_json::json!({"model": model, "messages": [{"role": "user", "content": "route?"}]});
        let mut conn = served.send_with(
            "POST",
            "/v1/chat/completions",
            Some(&served.key),
            Some(&body.to_string()),
            headers,
        );
        let mut raw = Vec::new();
        conn.read_to_end(&mut raw).unwrap();
        parse_response(&raw)
    };
    let before = (served.api.stats(), served.api.rail_stats());
    let (status, body) = chat(&[("X-Provider-Route", "api-key")], "grok-4.3");
    assert_eq!(status, 200, "{body}");
    let (status, body) = chat(&[], "xai-grok-sub/grok-4.6");
    assert_eq!(status, 200, "{body}");
    let after = (served.api.stats(), served.api.rail_stats());
    assert!(
        after.0.api_key_requests > before.0.api_key_requests,
        "the header's route was not used"
    );
    assert!(
        // The rail's catalogue puts grok-4.6 in the Responses lane (its apiBackend).
        after.1.responses > before.1.responses,
        "the prefix's route was not used"
    );
    assert_eq!(after.1.permission_denied, 0);
    // A route the prefix contradicts is the client's error.
    let (status, body) = chat(&[("X-Provider-Route", "api")], "xai-grok-sub/grok-4.6");
    assert_eq!(status, 400, "{body}");
    assert!(
        !served.log().contains(&key),
        "the API key reached serve's log"
    );
}

/// A chat (whole or streamed) whose client gives up after `after`: the connection is
/// dropped with the request pending.
fn give_up(s: &Served, stream: bool, after: Duration) {
    let body = serde_json::json!({"model": MODEL, "stream": stream,
        "messages": [{"role": "user", "content": "given up on"}]});
    let conn = s.send(
        "POST",
        "/v1/chat/completions",
        Some(&s.key),
        Some(&body.to_string()),
    );
    std::thread::sleep(after);
    drop(conn);
}

#[test]
fn twenty_cancels_before_and_during_streams_never_break_the_tenants_next_requests() {
    let s = serve();
    for round in 0..20 {
        match round % 3 {
            // Whole, and streamed before the head: upstream thinks for 30 s.
            0 | 1 => {
                s.api.push_fault(
                    Route::ChatCompletions,
                    Fault::StallBeforeHeaders(Duration::from_secs(30)),
                );
                give_up(&s, round % 3 == 1, Duration::from_millis(300));
            }
            // Streamed, left between events.
            _ => {
                let mut conn = open_stalled_stream(&s, Duration::from_secs(30));
                read_events(&mut conn, 2);
                drop(conn);
            }
        }
        // Each cancellation is seen before the next requests go out (they could otherwise
        // take another of the tenant's sessions and never meet the cancelled one).
        for _ in 0..3 {
            let (status, body) = s.chat("after a cancellation");
            assert_eq!(status, 200, "round {round}: {body}");
            assert!(body.contains("Echo: after a cancellation"), "{body}");
        }
    }
    // Cancelled requests are in the log and the metrics, and none counted as upstream trouble.
    s.wait_for_log(&["status=499", "stream=false"], Duration::from_secs(5))
        .unwrap_or_else(|| panic!("no whole 499 in the log:\n{}", s.log()));
    s.wait_for_log(&["status=499", "stream=true"], Duration::from_secs(5))
        .unwrap_or_else(|| panic!("no streamed 499 in the log:\n{}", s.log()));
    let metrics = s.metrics();
    let cancelled = sample(
        &metrics,
        r#"serve_requests_total{route="/v1/chat/completions",status="499"}"#,
    )
    .unwrap_or_else(|| panic!("no 499 series:\n{metrics}"));
    assert!(cancelled >= 6.0, "{metrics}");
    assert!(!metrics.contains(r#"code="plugin_trap""#), "{metrics}");
    assert!(!s.log().contains("plugin_trap"), "{}", s.log());
}

/// Issue 22: a reasoning model that thinks for 70 s before its first token. Proxies in
/// front of `serve` (nginx, cloud load balancers, Cloudflare) cut connections idle for 60 to
/// 100 s: the client must get the response head and then bytes at least every keep-alive
/// interval for the whole pause, and the answer after it.
#[test]
fn a_stream_whose_upstream_thinks_for_70_s_gets_bytes_every_keepalive_interval() {
    const INTERVAL: Duration = Duration::from_secs(10);
    const PAUSE: Duration = Duration::from_secs(70);
    // Scheduling slack on a loaded 2-core machine.
    const SLACK: Duration = Duration::from_secs(3);
    let s = serve_custom(AuthConfig::default(), |cmd, _, _, _| {
        cmd.args(["--keepalive-secs", &INTERVAL.as_secs().to_string()]);
    });
    s.api
        .push_fault(Route::ChatCompletions, Fault::StallBeforeHeaders(PAUSE));
    let body = serde_json::json!({"model": MODEL, "stream": true,
        "messages": [{"role": "user", "content": "think first"}]});
    let began = Instant::now();
    let mut conn = s.send(
        "POST",
        "/v1/chat/completions",
        Some(&s.key),
        Some(&body.to_string()),
    );
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    let mut first_bytes = None;
    let mut last_bytes = began;
    let mut longest_silence = Duration::ZERO;
    let mut keepalives_before_data = 0;
    while !seen.contains("data: [DONE]") {
        let n = conn.read(&mut buf).unwrap();
        assert!(n > 0, "the stream ended early: {seen}");
        let now = Instant::now();
        first_bytes.get_or_insert(now - began);
        if !seen.contains("data: ") {
            longest_silence = longest_silence.max(now - last_bytes);
        }
        last_bytes = now;
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        if !seen.contains("data: ") {
            keepalives_before_data = seen.matches("\n:").count();
        }
    }
    let first_bytes = first_bytes.unwrap();
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    // The head within one keep-alive interval, long before upstream's first byte.
    assert!(
        first_bytes < INTERVAL + SLACK,
        "first bytes after {first_bytes:?}"
    );
    // Never silent longer than the interval while upstream thinks.
    assert!(
        longest_silence < INTERVAL + SLACK,
        "{longest_silence:?} without a byte during the pause"
    );
    // The head at one interval, then one comment per interval until the data.
    let expected = (PAUSE.as_secs() / INTERVAL.as_secs()) as usize - 2;
    assert!(
        keepalives_before_data >= expected,
        "{keepalives_before_data} keep-alives (expected at least {expected}):\n{seen}"
    );
    assert!(began.elapsed() >= PAUSE);
    assert!(seen.contains("Echo"), "{seen}");
}

#[test]
fn a_tenant_over_its_session_limit_gets_a_429_with_retry_after_not_silence() {
    let s = serve_custom(AuthConfig::default(), |cmd, _, _, _| {
        cmd.args(["--sessions-per-tenant", "1", "--queue-wait-secs", "1"]);
    });
    let mut held = open_stalled_stream(&s, Duration::from_secs(30));
    read_events(&mut held, 2);
    let began = Instant::now();
    let body =
        serde_json::json!({"model": MODEL, "messages": [{"role": "user", "content": "queued"}]});
    let mut conn = s.send(
        "POST",
        "/v1/chat/completions",
        Some(&s.key),
        Some(&body.to_string()),
    );
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).unwrap();
    let waited = began.elapsed();
    let head = String::from_utf8_lossy(&raw).to_ascii_lowercase();
    let (status, text) = parse_response(&raw);
    assert_eq!(status, 429, "{text}");
    assert!(head.contains("\r\nretry-after: 1\r\n"), "{head}");
    let error: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(error["error"]["type"], "rate_limit_error", "{error}");
    assert_eq!(error["error"]["code"], "tenant_busy", "{error}");
    assert!(
        waited >= Duration::from_secs(1) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    // Once the stream is gone the tenant is served again.
    drop(held);
    s.wait_for_log(&["status=499", "stream=true"], Duration::from_secs(5))
        .unwrap_or_else(|| panic!("the held stream was not let go:\n{}", s.log()));
    let (status, body) = s.chat("served again");
    assert_eq!(status, 200, "{body}");
}

#[test]
fn thirty_parallel_streams_of_one_tenant_all_complete() {
    let s = serve();
    let s = &s;
    std::thread::scope(|scope| {
        let streams: Vec<_> = (0..30)
            .map(|i| {
                scope.spawn(move || {
                    let body = serde_json::json!({"model": MODEL, "stream": true,
                        "messages": [{"role": "user", "content": format!("parallel {i}")}]});
                    let mut conn = s.send(
                        "POST",
                        "/v1/chat/completions",
                        Some(&s.key),
                        Some(&body.to_string()),
                    );
                    let mut raw = Vec::new();
                    conn.read_to_end(&mut raw).unwrap();
                    let (status, text) = parse_response(&raw);
                    assert_eq!(status, 200, "stream {i}: {text}");
                    let said: String = text
                        .lines()
                        .filter_map(|l| l.strip_prefix("data: "))
                        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
                        .filter_map(|c| {
                            c["choices"][0]["delta"]["content"]
                                .as_str()
                                .map(str::to_owned)
                        })
                        .collect();
                    assert!(
                        said.contains(&format!("parallel {i}")),
                        "stream {i}: {text}"
                    );
                    assert!(
                        text.trim_end().ends_with("data: [DONE]"),
                        "stream {i}: {text}"
                    );
                })
            })
            .collect();
        for t in streams {
            t.join().unwrap();
        }
    });
}

#[test]
fn usage_reports_the_rails_quota_and_sets_its_gauge() {
    let s = serve();
    let (status, body) = s.request("GET", "/v1/usage", Some(&s.key), None);
    assert_eq!(status, 200, "{body}");
    let usage: Value = serde_json::from_str(&body).unwrap();
    // The reference rail answers the live billing shape (42.5 % of a weekly allowance).
    assert_eq!(usage["route"], "subscription", "{usage}");
    assert_eq!(usage["known"], true, "{usage}");
    assert_eq!(usage["percent_used"], 42.5, "{usage}");
    assert_eq!(usage["period"], "weekly", "{usage}");
    assert!(usage["resets_at"].as_u64().is_some(), "{usage}");
    let metrics = s.metrics();
    assert_eq!(
        sample(
            &metrics,
            r#"serve_quota_used_percent{route="subscription"}"#
        ),
        Some(42.5),
        "{metrics}"
    );
    // Another route by query; a key is needed.
    let (status, body) = s.request("GET", "/v1/usage?route=api", Some(&s.key), None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["route"],
        "api"
    );
    assert_eq!(s.request("GET", "/v1/usage", None, None).0, 401);
}

#[test]
fn the_key_is_read_as_x_api_key_too_on_every_route() {
    let s = serve();
    // What Anthropic's SDKs and Claude Code send, here to list models.
    let mut conn = s.send_with("GET", "/v1/models", None, None, &[("x-api-key", &s.key)]);
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).unwrap();
    let (status, body) = parse_response(&raw);
    assert_eq!(status, 200, "{body}");
    let mut conn = s.send_with(
        "GET",
        "/v1/models",
        None,
        None,
        &[("x-api-key", "phk_wrong")],
    );
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).unwrap();
    assert_eq!(parse_response(&raw).0, 401);
}

#[test]
fn an_anthropic_stream_waiting_for_upstream_keeps_alive_with_ping_events() {
    let s = serve_custom(AuthConfig::default(), |cmd, _, _, _| {
        cmd.args(["--keepalive-secs", "1"]);
    });
    s.api.push_fault(
        Route::ChatCompletions,
        Fault::StallBeforeHeaders(Duration::from_secs(4)),
    );
    let body = serde_json::json!({"model": MODEL, "max_tokens": 64, "stream": true,
        "messages": [{"role": "user", "content": "think first"}]});
    let mut conn = s.send_with(
        "POST",
        "/v1/messages",
        None,
        Some(&body.to_string()),
        &[("x-api-key", &s.key)],
    );
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).unwrap();
    let (status, text) = parse_response(&raw);
    assert_eq!(status, 200, "{text}");
    let before_start = text.split("event: message_start").next().unwrap();
    // Anthropic's own keep-alive event (its SDKs skip it), not a bare comment.
    assert!(before_start.matches("event: ping").count() >= 2, "{text}");
    assert!(text.contains("event: message_stop"), "{text}");
}
