//! Sign in with Grok end to end against a real, independent authorization server (the npm
//! `oidc-provider`, driven over its own pages) and the reference model API checking
//! bearers against that server's JWKS.

use std::process::Output;
use std::time::Duration;

use provider_runtime::bindings::types::{
    ChatRequest, ConnectionStatus, Lane, Message, PollOutcome, Role,
};
use provider_runtime::secrets::{KeySource, SecretStore, StoreConfig};
use provider_runtime::{HostConfig, Session};
use serde_json::Value;

use crate::peers::{OidcServer, api_for};
use crate::support;

/// The plugin against the certified provider and the JWKS-checking API: these tests are
/// about the developer API's side of the login (its tokens, its lanes), so they name it
/// as the default route (xAI's default is the subscription rail).
fn config(oidc: &OidcServer, api_base: &str) -> HostConfig {
    support::config(&oidc.issuer, api_base).set("default-route", "api")
}

/// `config` with the subscription rail of `api` enabled.
fn with_rail(oidc: &OidcServer, api: &provider_reference::ApiHandle) -> HostConfig {
    config(oidc, &api.base_url())
        .set("subscription-base", api.subscription_base())
        .enable_route("subscription")
}

async fn connect(
    oidc: &OidcServer,
    session: &mut Session,
    account: &str,
    tier: u32,
) -> ConnectionStatus {
    let prompt = session.start().await.unwrap();
    oidc.approve(&prompt.user_code, account, tier);
    match session.poll(Some(&prompt.pending_id)).await.unwrap() {
        PollOutcome::Connected(status) => status,
        other => panic!("expected connected, got {other:?}"),
    }
}

fn user(model: &str, text: &str) -> ChatRequest {
    ChatRequest::new(model, vec![Message::text(Role::User, text)])
}

/// The coalescing window of forced refreshes (a refresh within 2 s of the last is shared).
async fn past_refresh_window() {
    tokio::time::sleep(Duration::from_millis(2100)).await;
}

#[tokio::test]
async fn pending_then_approved_connects_with_the_approved_tier() {
    let oidc = OidcServer::start(&[]);
    let state = support::state_dir();
    let runtime = support::runtime(state.path());
    let mut session = runtime
        .session("alice", &config(&oidc, "http://127.0.0.1:9/v1"))
        .await
        .unwrap();

    let prompt = session.start().await.unwrap();
    assert!(
        prompt
            .verification_url_with_code
            .contains(&prompt.user_code),
        "{prompt:?}"
    );
    assert!(prompt.verification_url.starts_with(&oidc.issuer));
    assert_eq!(prompt.interval_seconds, 1);
    let pending = session.poll(None).await.unwrap();
    assert!(
        matches!(pending, PollOutcome::Pending(ref p) if p.pending_id == prompt.pending_id),
        "{pending:?}"
    );

    oidc.approve(&prompt.user_code, "alice", 4);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let PollOutcome::Connected(status) = session.poll(None).await.unwrap() else {
        panic!("not connected after approval");
    };
    assert!(status.connected);
    assert_eq!(status.tier, Some(4));
    // The claim is xAI's enum (4: X Premium+), not a rank.
    assert_eq!(status.tier_name.as_deref(), Some("X Premium+"));
    assert_eq!(
        status.default_model_id.as_deref(),
        Some("xai-grok/grok-4.3")
    );
    assert!(status.expires_at.unwrap() > 1_700_000_000);

    let status = session.status().await.unwrap();
    assert!(status.connected && status.tier == Some(4));
    // The used device code is forgotten, never polled again.
    let again = session.poll(Some(&prompt.pending_id)).await.unwrap_err();
    assert_eq!(again.code(), "not_connected", "{again}");
    assert_eq!(
        oidc.stats()["token_requests"]["device_code"],
        2,
        "{}",
        oidc.stats()
    );
}

#[tokio::test]
async fn denial_is_access_denied_with_guidance_and_no_retry() {
    let oidc = OidcServer::start(&[]);
    let state = support::state_dir();
    let runtime = support::runtime(state.path());
    let mut session = runtime
        .session("bob", &config(&oidc, "http://127.0.0.1:9/v1"))
        .await
        .unwrap();
    let prompt = session.start().await.unwrap();
    oidc.deny(&prompt.user_code);
    let err = session.poll(None).await.unwrap_err();
    assert_eq!(err.code(), "access_denied", "{err}");
    let action = err.action();
    assert!(action.contains("API key"), "{action}");
    // The flow is over: nothing left to poll.
    assert_eq!(
        session.poll(None).await.unwrap_err().code(),
        "not_connected"
    );
    assert!(!session.status().await.unwrap().connected);
}

#[tokio::test]
async fn an_expired_device_code_asks_to_start_again() {
    let oidc = OidcServer::start(&["--device-ttl", "2"]);
    let state = support::state_dir();
    let runtime = support::runtime(state.path());
    let mut session = runtime
        .session("carol", &config(&oidc, "http://127.0.0.1:9/v1"))
        .await
        .unwrap();
    let prompt = session.start().await.unwrap();
    assert!(prompt.expires_in_seconds <= 2);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let err = session.poll(None).await.unwrap_err();
    assert_eq!(err.code(), "expired_token", "{err}");
    assert!(err.action().contains("start"));
}

#[tokio::test]
async fn refresh_rotates_and_the_api_accepts_the_new_token() {
    let oidc = OidcServer::start(&[]);
    let api = api_for(&oidc);
    let state = support::state_dir();
    let runtime = support::runtime(state.path());
    let mut session = runtime
        .session("dave", &config(&oidc, &api.base_url()))
        .await
        .unwrap();
    connect(&oidc, &mut session, "dave", 3).await;

    for round in 1..=2 {
        past_refresh_window().await;
        let status = session.refresh().await.unwrap();
        assert!(status.connected && status.tier == Some(3));
        let stats = oidc.stats();
        assert_eq!(stats["refresh_redemptions"], round, "{stats}");
        assert_eq!(stats["refresh_reuse_detected"], 0, "{stats}");
    }
    let reply = session
        .chat(&user("xai-grok/grok-4.3", "hello"))
        .await
        .unwrap();
    assert!(reply.content.contains("hello"), "{reply:?}");
    let models = session.models(false, None).await.unwrap();
    let ids: Vec<&str> = models.models.iter().map(|m| m.id.as_str()).collect();
    assert!(ids.contains(&"xai-grok/grok-4.3"), "{ids:?}");
    assert!(models.media_models.iter().all(|m| m.id.contains("imagine")));
}

#[tokio::test]
async fn tier_gate_is_tier_denied_and_both_lanes_stream() {
    let oidc = OidcServer::start(&[]);
    let api = api_for(&oidc);
    let state = support::state_dir();
    let runtime = support::runtime(state.path());

    // The tier gate is the rail's (the developer API bills its own pool whatever the
    // tier): a free account (claim 0) asks for a model only paid tiers get.
    let mut low = runtime
        .session("free", &with_rail(&oidc, &api))
        .await
        .unwrap();
    connect(&oidc, &mut low, "free", 0).await;
    let err = low
        .chat(&user("xai-grok-sub/grok-4.6", "hi"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "tier_denied", "{err}");
    assert!(
        err.to_string().to_lowercase().contains("will not help")
            || err.action().contains("will not help")
    );

    let mut heavy = runtime
        .session("heavy", &config(&oidc, &api.base_url()))
        .await
        .unwrap();
    connect(&oidc, &mut heavy, "heavy", 4).await;
    for (model, lane) in [
        ("xai-grok/grok-4.3", Lane::ChatCompletions),
        ("xai-grok/grok-4.20-multi-agent-0309", Lane::Responses),
    ] {
        let whole = heavy.chat(&user(model, "stream me")).await.unwrap();
        assert_eq!(whole.lane, lane);
        assert!(whole.usage.is_some());
        let stream = heavy
            .open_chat_stream(&user(model, "stream me"))
            .await
            .unwrap();
        let mut text = String::new();
        let mut chunks = 0;
        while let Some(chunk) = heavy.next_chunk(&stream).await.unwrap() {
            if let provider_runtime::bindings::types::ChatChunk::Text(t) = chunk {
                text.push_str(&t);
            }
            chunks += 1;
        }
        heavy.close_chat_stream(stream).await.unwrap();
        assert!(chunks > 1, "{model}: expected several chunks");
        assert_eq!(text, whole.content, "{model}");
    }
}

fn run_cli(state: &std::path::Path, oidc: &OidcServer, api: &str, args: &[&str]) -> Output {
    support::cli(state)
        .env("XAI_OAUTH_ISSUER", &oidc.issuer)
        .env("XAI_API_BASE", api)
        .env("XAI_ROUTE", "api")
        .args(args)
        .output()
        .unwrap()
}

fn cli_login(state: &std::path::Path, oidc: &OidcServer, api: &str) {
    let start = support::json_of(&run_cli(state, oidc, api, &["start"]));
    oidc.approve(start["user_code"].as_str().unwrap(), "erin", 2);
    let poll = support::json_of(&run_cli(state, oidc, api, &["poll"]));
    assert_eq!(poll["status"], "connected", "{poll}");
    assert_eq!(poll["tier"], 2);
    assert_eq!(poll["tier_name"], "X Basic");
}

#[test]
fn eight_processes_forcing_a_refresh_redeem_the_token_once() {
    let oidc = OidcServer::start(&[]);
    let state = support::state_dir();
    let api = "http://127.0.0.1:9/v1";
    cli_login(state.path(), &oidc, api);
    std::thread::sleep(Duration::from_millis(2100));

    let children: Vec<_> = (0..8)
        .map(|_| {
            support::cli(state.path())
                .env("XAI_OAUTH_ISSUER", &oidc.issuer)
                .env("XAI_API_BASE", api)
                .env("XAI_ROUTE", "api")
                .arg("refresh")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let json = support::json_of(&out);
        assert!(out.status.success(), "{json}");
        assert_eq!(json["connected"], true);
        assert_eq!(json["tier"], 2);
    }
    let stats = oidc.stats();
    assert_eq!(stats["refresh_redemptions"], 1, "{stats}");
    assert_eq!(stats["refresh_reuse_detected"], 0, "{stats}");
    let status = support::json_of(&run_cli(state.path(), &oidc, api, &["status"]));
    assert_eq!(status["connected"], true, "{status}");
}

/// Reads the stored tokens the way only the host can (for the leak scan below).
fn stored_tokens(state: &std::path::Path) -> Vec<String> {
    let store = SecretStore::open(StoreConfig::new(
        state.to_path_buf(),
        KeySource::File(state.join("keyring").join("master.key")),
    ))
    .unwrap();
    let Some(bytes) = store.tenant("default").unwrap().get("credentials").unwrap() else {
        return Vec::new();
    };
    let creds: Value = serde_json::from_slice(&bytes).unwrap();
    ["access_token", "refresh_token"]
        .iter()
        .filter_map(|k| creds[*k].as_str().map(str::to_string))
        .collect()
}

/// Runs the interactive `login` subcommand to completion: reads its stderr until it shows
/// the user code, approves that code as `account` / `tier`, and waits (at most 60 s, then
/// kills it and fails) for a successful exit. Returns everything it printed.
fn interactive_login(
    mut cmd: std::process::Command,
    oidc: &OidcServer,
    account: &str,
    tier: u32,
) -> Output {
    use std::io::{BufRead, BufReader, Read};
    use std::process::Stdio;
    use std::sync::mpsc;
    use std::time::Instant;

    const MARKER: &str = "The page should show the code ";
    /// Kills the child when the test fails before it exits (a no-op once it has).
    struct KillOnDrop(std::process::Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            if let Ok(None) = self.0.try_wait() {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
    }

    let deadline = Instant::now() + Duration::from_secs(60);
    let mut guard = KillOnDrop(
        cmd.arg("login")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let child = &mut guard.0;
    let mut stdout = child.stdout.take().unwrap();
    let stdout_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    // Stderr is read whole on a thread (so the child never blocks on a full pipe); each
    // line is also sent here so the user code can be picked up as soon as it appears.
    let (lines_tx, lines_rx) = mpsc::channel::<Vec<u8>>();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let stderr_reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        loop {
            let mut line = Vec::new();
            match stderr.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    all.extend_from_slice(&line);
                    let _ = lines_tx.send(line);
                }
            }
        }
        all
    });
    let code = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines_rx.recv_timeout(left) {
            Ok(line) => {
                let line = String::from_utf8_lossy(&line);
                if let Some(at) = line.find(MARKER) {
                    let rest = line[at + MARKER.len()..].trim_end();
                    break rest.strip_suffix('.').unwrap_or(rest).to_string();
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("login: no user code shown within 60 s")
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = child.wait().unwrap();
                let stderr = stderr_reader.join().unwrap();
                panic!(
                    "login exited ({status}) without showing a user code; stderr: {}",
                    String::from_utf8_lossy(&stderr)
                );
            }
        }
    };
    assert!(!code.is_empty(), "login showed an empty user code");
    oidc.approve(&code, account, tier);

    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            panic!("login: not finished within 60 s of starting");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = Output {
        status,
        stdout: stdout_reader.join().unwrap(),
        stderr: stderr_reader.join().unwrap(),
    };
    assert!(
        out.status.success(),
        "login failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
    out
}

#[test]
fn no_token_appears_in_any_output_log_or_state_file() {
    let oidc = OidcServer::start(&[]);
    let api = api_for(&oidc);
    let state = support::state_dir();
    let base = api.base_url();
    // The master key lives in a key file here (no PROVIDER_HOST_KEY), so the test can read
    // the tokens back through the store.
    let command = || {
        let mut cmd = support::cli(state.path());
        cmd.env_remove("PROVIDER_HOST_KEY")
            .env("XAI_OAUTH_ISSUER", &oidc.issuer)
            .env("XAI_API_BASE", &base)
            .env("XAI_ROUTE", "api")
            .env("RUST_LOG", "trace");
        cmd
    };
    let cli = |args: &[&str]| command().args(args).output().unwrap();
    let mut outputs: Vec<(String, Output)> = Vec::new();
    let mut tokens: Vec<String> = Vec::new();
    // Every version of every state file seen after a step (step, path, bytes): logout
    // deletes files, so a scan at the end alone would miss what was there before.
    let mut snapshots: Vec<(String, std::path::PathBuf, Vec<u8>)> = Vec::new();
    let mut last_seen: std::collections::HashMap<std::path::PathBuf, Vec<u8>> =
        std::collections::HashMap::new();
    let mut snapshot = |step: &str| {
        for file in support::files_below(state.path()) {
            let bytes = std::fs::read(&file)
                .unwrap_or_else(|e| panic!("after {step}: reading {}: {e}", file.display()));
            // Unchanged files (the compiled component above all) are kept once.
            if last_seen.get(&file) != Some(&bytes) {
                last_seen.insert(file.clone(), bytes.clone());
                snapshots.push((step.to_string(), file, bytes));
            }
        }
    };
    // Compile the component into the cache first: tracing cranelift's compilation would
    // only slow the test down (it logs no HTTP traffic).
    let warm = support::cli(state.path())
        .env_remove("PROVIDER_HOST_KEY")
        .arg("status")
        .output()
        .unwrap();
    assert!(warm.status.success());
    snapshot("warm-up status");

    // The interactive login, then logout, then the script-mode device flow.
    outputs.push((
        "login".into(),
        interactive_login(command(), &oidc, "frank", 4),
    ));
    snapshot("login");
    let login_tokens = stored_tokens(state.path());
    assert!(!login_tokens.is_empty(), "login stored no credentials");
    tokens.extend(login_tokens);
    outputs.push(("logout (after login)".into(), cli(&["logout"])));
    snapshot("logout (after login)");
    assert_eq!(
        support::json_of(&outputs.last().unwrap().1)["was_connected"],
        true
    );

    outputs.push(("start".into(), cli(&["start"])));
    snapshot("start");
    let start = support::json_of(&outputs.last().unwrap().1);
    oidc.approve(start["user_code"].as_str().unwrap(), "frank", 4);
    outputs.push(("poll".into(), cli(&["poll"])));
    snapshot("poll");
    assert_eq!(
        support::json_of(&outputs.last().unwrap().1)["status"],
        "connected"
    );
    tokens.extend(stored_tokens(state.path()));
    for args in [
        &["status"][..],
        &["models", "--force"],
        &["chat", "--json", "hello"],
        &[
            "chat",
            "--stream",
            "--model",
            "xai-grok/grok-4.20-multi-agent-0309",
            "hi",
        ],
    ] {
        let step = args.join(" ");
        outputs.push((step.clone(), cli(args)));
        snapshot(&step);
        assert!(
            outputs.last().unwrap().1.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&outputs.last().unwrap().1.stdout)
        );
    }
    // The API key: set from stdin, described, spent, refused (the API then echoes it
    // whole in its error), deleted. It must never show up either.
    let key = provider_reference::random_api_key();
    api.add_api_key(&key, 4u32);
    api.set_echo_api_key_in_errors(true);
    let key_set = {
        use std::io::Write;
        let mut child = command()
            .args(["key", "set"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(child.stdin.take().unwrap(), "{key}").unwrap();
        child.wait_with_output().unwrap()
    };
    let set = support::json_of(&key_set);
    assert_eq!(set["last_four"], key[key.len() - 4..], "{set}");
    outputs.push(("key set".into(), key_set));
    snapshot("key set");
    for args in [
        &["key", "status"][..],
        &["models", "--route", "api-key"],
        &["chat", "--json", "--route", "api-key", "by key"],
        &[
            "chat",
            "--stream",
            "--json",
            "--route",
            "api-key",
            "by key, streamed",
        ],
    ] {
        let step = args.join(" ");
        outputs.push((step.clone(), cli(args)));
        snapshot(&step);
        assert!(
            outputs.last().unwrap().1.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&outputs.last().unwrap().1.stdout)
        );
    }
    api.remove_api_key(&key);
    outputs.push((
        "chat with a refused key".into(),
        cli(&["chat", "--json", "--route", "api-key", "refused"]),
    ));
    snapshot("chat with a refused key");
    assert_eq!(
        support::json_of(&outputs.last().unwrap().1)["error"],
        "unauthorized"
    );
    outputs.push(("key delete".into(), cli(&["key", "delete"])));
    snapshot("key delete");
    tokens.push(key);

    std::thread::sleep(Duration::from_millis(2100));
    outputs.push(("refresh".into(), cli(&["refresh"])));
    snapshot("refresh");
    tokens.extend(stored_tokens(state.path()));
    outputs.push(("logout".into(), cli(&["logout"])));
    snapshot("logout");
    assert_eq!(
        support::json_of(&outputs.last().unwrap().1)["was_connected"],
        true
    );
    tokens.extend(
        api.requests()
            .iter()
            .filter_map(|r| r.bearer().map(str::to_string)),
    );
    tokens.sort();
    tokens.dedup();
    assert!(
        tokens.len() >= 7,
        "expected three access and three refresh tokens (login, poll, refresh) and the key, got {}",
        tokens.len()
    );

    for (step, out) in &outputs {
        for (name, stream) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            let text = String::from_utf8_lossy(stream);
            for token in &tokens {
                assert!(
                    !text.contains(token.as_str()),
                    "a token leaked into the {name} of `{step}`"
                );
            }
        }
    }
    assert!(
        outputs.iter().all(|(_, o)| !o.stderr.is_empty()),
        "trace logging produced nothing to scan for some step"
    );
    assert!(
        snapshots.iter().any(|(step, _, _)| step == "login"),
        "login changed no state file"
    );
    for (step, file, bytes) in &snapshots {
        for token in &tokens {
            assert!(
                !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
                "after `{step}`, a token is stored in plaintext in {}",
                file.display()
            );
        }
    }
}

#[tokio::test]
async fn api_errors_cut_streams_and_the_model_cache_against_the_jwks_checking_api() {
    use provider_reference::{Fault, Route};

    let oidc = OidcServer::start(&[]);
    let api = api_for(&oidc);
    let state = support::state_dir();
    let runtime = support::runtime(state.path());
    let mut s = runtime
        .session("gina", &config(&oidc, &api.base_url()))
        .await
        .unwrap();
    connect(&oidc, &mut s, "gina", 4).await;
    let chat = user("xai-grok/grok-4.3", "hello");

    // The cache, and `force`.
    assert!(!s.models(false, None).await.unwrap().cached);
    let before = api.stats().models_requests;
    assert!(s.models(false, None).await.unwrap().cached);
    assert_eq!(
        api.stats().models_requests,
        before,
        "a cached answer must not call the API"
    );
    assert!(!s.models(true, None).await.unwrap().cached);
    assert_eq!(api.stats().models_requests, before + 1);

    // Each upstream answer becomes its typed error, without silent retries.
    let expect = |route: Route, fault: Fault, code: &'static str| (route, fault, code);
    let cases = [
        expect(
            Route::ChatCompletions,
            Fault::rate_limited(Some(30)),
            "rate_limited",
        ),
        expect(
            Route::ChatCompletions,
            Fault::spending_limit(402),
            "quota_exhausted",
        ),
        expect(
            Route::ChatCompletions,
            Fault::spending_limit(403),
            "quota_exhausted",
        ),
        expect(Route::ChatCompletions, Fault::tier_denied(), "tier_denied"),
        expect(
            Route::ChatCompletions,
            Fault::malformed_json(),
            "invalid_response",
        ),
        expect(
            Route::ChatCompletions,
            Fault::html_page(200),
            "invalid_response",
        ),
        expect(
            Route::ChatCompletions,
            Fault::redirect("https://evil.example.com/v1"),
            "invalid_response",
        ),
    ];
    for (route, fault, code) in cases {
        let served = api.stats().faults_served;
        api.push_fault(route, fault);
        let err = s.chat(&chat).await.unwrap_err();
        assert_eq!(err.code(), code, "{err}");
        assert_eq!(api.stats().faults_served, served + 1);
        assert_eq!(api.pending_faults(), 0);
        if code == "rate_limited" {
            assert_eq!(err.retry_after_seconds(), Some(30));
        }
    }

    // 5xx: bounded retries, then success or upstream_unavailable.
    api.push_fault(Route::ChatCompletions, Fault::server_error(500));
    assert!(s.chat(&chat).await.is_ok());
    for _ in 0..3 {
        api.push_fault(Route::ChatCompletions, Fault::server_error(503));
    }
    assert_eq!(
        s.chat(&chat).await.unwrap_err().code(),
        "upstream_unavailable"
    );
    assert_eq!(api.pending_faults(), 0, "expected exactly three attempts");

    // A cut stream is an error on both lanes, never a silent end.
    for (route, model) in [
        (Route::ChatCompletions, "xai-grok/grok-4.3"),
        (Route::Responses, "xai-grok/grok-4.20-multi-agent-0309"),
    ] {
        api.push_fault(route, Fault::CutStream { after_events: 2 });
        let stream = s
            .open_chat_stream(&user(model, "a long answer please"))
            .await
            .unwrap();
        let err = loop {
            match s.next_chunk(&stream).await {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("{model}: a cut stream ended silently"),
                Err(e) => break e,
            }
        };
        assert_eq!(err.code(), "network", "{model}: {err}");
    }

    // 403 bad-credentials: one refresh, one retry, success.
    past_refresh_window().await;
    let redeemed = oidc.stats()["refresh_redemptions"].as_u64().unwrap();
    api.push_fault(Route::ChatCompletions, Fault::bad_credentials());
    assert!(s.chat(&chat).await.is_ok());
    assert_eq!(
        oidc.stats()["refresh_redemptions"].as_u64().unwrap(),
        redeemed + 1
    );
}
