//! A hostile plugin (`tests/guests/hostile`) cannot hurt the host: each misbehaviour is
//! stopped with a typed error and the same session serves the next call.

use std::time::{Duration, Instant};

use provider_runtime::bindings::types::ProviderError;
use provider_runtime::secrets::KeySource;
use provider_runtime::{HostError, Runtime, RuntimeOptions, Session};

use crate::support;

fn hostile_runtime(state: &std::path::Path, call_timeout: Duration) -> Runtime {
    let mut options = RuntimeOptions::new(env!("HOSTILE_GUEST_COMPONENT"), state);
    options.key = KeySource::File(state.join("keyring").join("master.key"));
    options.limits.call_timeout = call_timeout;
    Runtime::new(options).expect("hostile guest loads")
}

async fn session(runtime: &Runtime, tenant: &str) -> Session {
    runtime
        .session(
            tenant,
            &support::config("https://auth.x.ai", "https://api.x.ai/v1"),
        )
        .await
        .unwrap()
}

async fn still_serves(session: &mut Session) {
    let models = session
        .models(false, None)
        .await
        .expect("the next call is served");
    assert_eq!(models.default_model_id, "none");
}

#[tokio::test]
async fn an_export_that_spins_forever_is_interrupted() {
    let state = support::state_dir();
    let runtime = hostile_runtime(state.path(), Duration::from_secs(1));
    let mut s = session(&runtime, "spin").await;
    for _ in 0..2 {
        let began = Instant::now();
        let err = s.status().await.unwrap_err();
        assert!(matches!(err, HostError::CallTimeout(_)), "{err:?}");
        assert_eq!(err.code(), "call_timeout");
        // A generous sanity bound, not a performance target: it must not run on forever.
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "{:?}",
            began.elapsed()
        );
        still_serves(&mut s).await;
    }
}

/// `models(force)` of the hostile guest blocks on a clock that never fires while holding
/// the credentials lock: it must come back as a call timeout, well before 20 s.
async fn times_out_blocked(s: &mut Session, what: &str) {
    let began = Instant::now();
    let err = tokio::time::timeout(Duration::from_secs(30), s.models(true, None))
        .await
        .unwrap_or_else(|_| panic!("{what} ran past the wall-clock bound"))
        .unwrap_err();
    assert!(matches!(err, HostError::CallTimeout(_)), "{what}: {err:?}");
    assert!(
        began.elapsed() < Duration::from_secs(20),
        "{what}: {:?}",
        began.elapsed()
    );
}

#[tokio::test]
async fn a_call_blocked_on_the_host_is_bounded_in_wall_clock_time_and_drops_its_locks() {
    let state = support::state_dir();
    let runtime = hostile_runtime(state.path(), Duration::from_secs(2));
    let mut s = session(&runtime, "sleeper").await;
    times_out_blocked(&mut s, "a call blocked on the host").await;
    // The abandoned instance's lock is free: another session of the tenant takes it (had
    // it stayed held, the guest's 1 s lock wait would fail with a storage error instead).
    let mut other = session(&runtime, "sleeper").await;
    times_out_blocked(&mut other, "the second call").await;
    still_serves(&mut s).await;
}

#[tokio::test]
async fn unbounded_memory_growth_hits_the_cap_and_traps() {
    let state = support::state_dir();
    let runtime = hostile_runtime(state.path(), Duration::from_secs(60));
    let mut s = session(&runtime, "hoard").await;
    let err = s.start().await.unwrap_err();
    assert!(matches!(err, HostError::MemoryLimit(_)), "{err:?}");
    assert_eq!(err.code(), "memory_limit");
    still_serves(&mut s).await;
}

#[tokio::test]
async fn a_flood_of_requests_to_a_denied_origin_is_denied_every_time() {
    let state = support::state_dir();
    let runtime = hostile_runtime(state.path(), Duration::from_secs(60));
    let mut s = session(&runtime, "flood").await;
    let err = s.poll(None).await.unwrap_err();
    match err {
        HostError::Provider(ProviderError::DeniedBySandbox(m)) => assert_eq!(m, "200/200"),
        other => panic!("{other:?}"),
    }
    assert_eq!(s.denied_requests(), 200);
    still_serves(&mut s).await;
}

#[tokio::test]
async fn one_tenants_instance_cannot_reach_another_tenants_secrets() {
    let state = support::state_dir();
    let runtime = hostile_runtime(state.path(), Duration::from_secs(60));
    let mut bob = session(&runtime, "bob").await;
    let mut alice = session(&runtime, "alice").await;

    let written = bob.refresh().await.unwrap_err();
    assert!(written.to_string().contains("marker written"), "{written}");

    let probe = |e: HostError| match e {
        HostError::Provider(ProviderError::InvalidInput(m)) => m,
        other => panic!("{other:?}"),
    };
    let seen_by_alice = probe(alice.logout().await.unwrap_err());
    assert!(seen_by_alice.contains("marker=absent"), "{seen_by_alice}");
    for crafted in [
        "../other/secrets/marker",
        "..",
        "/etc/passwd",
        "other/marker",
        "MARKER",
        ".store",
    ] {
        assert!(
            seen_by_alice.contains(&format!("{crafted}=error:SecretError::InvalidKey")),
            "{crafted} was not refused: {seen_by_alice}"
        );
    }
    assert!(
        seen_by_alice.ends_with("list="),
        "alice sees keys: {seen_by_alice}"
    );

    let seen_by_bob = probe(bob.logout().await.unwrap_err());
    assert!(seen_by_bob.contains("marker=found:mine"), "{seen_by_bob}");
    assert!(seen_by_bob.ends_with("list=marker"), "{seen_by_bob}");
}

#[tokio::test]
async fn a_trap_while_holding_a_lock_releases_the_lock() {
    use provider_runtime::bindings::types::{ChatRequest, Message, Role};
    use provider_runtime::secrets::{SecretStore, StoreConfig};
    let state = support::state_dir();
    let runtime = hostile_runtime(state.path(), Duration::from_secs(10));
    let mut s = session(&runtime, "alice").await;
    let request = ChatRequest::new("lock-then-trap", vec![Message::text(Role::User, "x")]);
    let err = s.chat(&request).await.unwrap_err();
    assert_eq!(err.code(), "plugin_trap", "{err}");
    // The trapped instance never dropped its handle; the host released the lock with it.
    let store = SecretStore::open(StoreConfig::new(
        state.path(),
        KeySource::File(state.path().join("keyring").join("master.key")),
    ))
    .unwrap();
    let lock = store
        .tenant("alice")
        .unwrap()
        .lock("credentials", Duration::ZERO)
        .expect("the lock is free after the trap");
    drop(lock);
    still_serves(&mut s).await;
}

/// The compile cache holds native code: an artifact swapped for another component's (or
/// tampered with) is recompiled from the component, never run.
#[test]
fn a_swapped_compile_cache_artifact_is_never_run() {
    use std::os::unix::fs::PermissionsExt;
    let state = support::state_dir();
    let cache = state.path().join("cache");
    let artifacts = || -> std::collections::BTreeSet<std::path::PathBuf> {
        std::fs::read_dir(&cache)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
            .collect()
    };
    let real_models =
        || support::json_of(&support::cli(state.path()).arg("models").output().unwrap());
    assert_eq!(real_models()["error"], "not_connected");
    let real = artifacts();
    assert_eq!(real.len(), 1, "{real:?}");
    let hostile = support::json_of(
        &support::cli(state.path())
            .args(["--plugin", env!("HOSTILE_GUEST_COMPONENT"), "models"])
            .output()
            .unwrap(),
    );
    // Compiled (and cached) before its manifest is refused for the variables it asks for.
    assert_eq!(hostile["error"], "config_error", "{hostile}");
    let hostile_artifact = artifacts().difference(&real).next().unwrap().clone();
    let real_artifact = real.into_iter().next().unwrap();
    // The state directory and the cache are private; so is each artifact.
    for (path, mode) in [
        (state.path(), 0o700),
        (cache.as_path(), 0o700),
        (real_artifact.as_path(), 0o600),
    ] {
        assert_eq!(
            std::fs::metadata(path).unwrap().permissions().mode() & 0o777,
            mode,
            "{path:?}"
        );
    }
    std::fs::copy(&hostile_artifact, &real_artifact).unwrap();
    std::fs::set_permissions(&real_artifact, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(
        real_models()["error"],
        "not_connected",
        "the swapped artifact ran"
    );
    // A flipped byte is refused the same way.
    let mut bytes = std::fs::read(&real_artifact).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&real_artifact, &bytes).unwrap();
    assert_eq!(real_models()["error"], "not_connected");
}

/// A flood of stderr with escapes and fake host output ends the call with the plugin's
/// error and the session serves the next call. (Through the CLI the hostile guest is now
/// refused before it runs, its manifest asking for the host's variables; the capping and
/// cleaning of each line is `guest_stderr`'s unit test.)
#[tokio::test]
async fn a_stderr_flood_ends_only_its_call() {
    use provider_runtime::bindings::types::{ChatRequest, Message, Role};
    let state = support::state_dir();
    let runtime = hostile_runtime(state.path(), Duration::from_secs(60));
    let mut s = session(&runtime, "flooder").await;
    let request = ChatRequest::new("stderr-flood", vec![Message::text(Role::User, "x")]);
    let err = s.chat(&request).await.unwrap_err();
    assert_eq!(err.code(), "invalid_input", "{err}");
    still_serves(&mut s).await;
}

/// What the CLI prints for the hostile guest, with the host's secrets in its environment.
fn hostile_cli(state: &std::path::Path, extra: &[&str]) -> (serde_json::Value, String) {
    let out = support::cli(state)
        .args(["--plugin", env!("HOSTILE_GUEST_COMPONENT")])
        .args(extra)
        .arg("models")
        .env("HTTPS_PROXY", "http://127.0.0.1:9")
        .env("GITHUB_TOKEN", "ghp_secretsecretsecretsecret")
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (support::json_of(&out), all)
}

/// A manifest setting that names the master key, the proxy or a credential variable is
/// refused by name (approved or not), and no value of those variables is ever printed.
#[test]
fn a_manifest_asking_for_the_hosts_variables_is_refused() {
    let state = support::state_dir();
    for extra in [
        &[][..],
        &[
            "--allow-env",
            "PROVIDER_HOST_KEY",
            "--allow-env",
            "HTTPS_PROXY",
            "--allow-env",
            "GITHUB_TOKEN",
        ][..],
    ] {
        let (json, all) = hostile_cli(state.path(), extra);
        assert_eq!(json["error"], "config_error", "{json}");
        let message = json["message"].as_str().unwrap();
        assert!(
            message.contains("\"leak-key\"") && message.contains("PROVIDER_HOST_KEY"),
            "{message}"
        );
        for secret in [support::TEST_KEY_HEX, "ghp_secret", "127.0.0.1:9"] {
            assert!(!all.contains(secret), "{secret} printed: {all}");
        }
    }
}

/// Each forbidden name on its own, through the library's rule (the one the CLI uses).
#[tokio::test]
async fn each_of_the_hosts_variables_is_refused_even_when_approved() {
    use provider_runtime::config::env_overrides;
    let state = support::state_dir();
    let runtime = hostile_runtime(state.path(), Duration::from_secs(60));
    let manifest = runtime.manifest().await.unwrap();
    for (key, var) in [
        ("leak-key", "PROVIDER_HOST_KEY"),
        ("leak-proxy", "HTTPS_PROXY"),
        ("leak-token", "GITHUB_TOKEN"),
    ] {
        let mut only = (*manifest).clone();
        only.settings.retain(|s| s.env.is_none() || s.key == key);
        let approved = [var.to_owned()].into_iter().collect();
        let err = env_overrides(&only, &approved, |_| Some("the-secret-value".into())).unwrap_err();
        assert_eq!(err.code(), "config_error");
        let text = err.to_string();
        assert!(text.contains(key) && text.contains(var), "{text}");
        assert!(!text.contains("the-secret-value"), "{text}");
    }
}

/// A listener on 127.0.0.1 or 127.0.0.2 at `port` (when free), counting connections.
fn listener(addr: &str) -> Option<(u16, std::sync::Arc<std::sync::atomic::AtomicUsize>)> {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind(addr).ok()?;
    let port = l.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = seen.clone();
    std::thread::spawn(move || {
        for mut conn in l.incoming().flatten() {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-length: 8\r\nconnection: close\r\n\r\ninternal",
            );
        }
    });
    Some((port, seen))
}

async fn fetch(s: &mut Session, urls: &[String]) -> String {
    use provider_runtime::bindings::types::{ChatRequest, Message, Role};
    let request = ChatRequest::new("fetch", vec![Message::text(Role::User, urls.join(" "))]);
    match s.chat(&request).await.unwrap_err() {
        HostError::Provider(ProviderError::InvalidInput(m)) => m,
        other => panic!("{other:?}"),
    }
}

/// The plugin's own defaults name the metadata address (plain and IPv4-mapped), a second
/// loopback address, `localhost` (a name resolving to loopback) and plain http on
/// loopback: each is refused without a connection; the same internal address set by the
/// operator is reached.
#[tokio::test]
async fn a_plugins_default_endpoint_never_reaches_a_non_public_address() {
    let state = support::state_dir();
    let runtime = hostile_runtime(state.path(), Duration::from_secs(60));
    // Listeners where the defaults point, when those ports are free (the refusal comes
    // before any connection either way; with them, a connection would be seen).
    let watched: Vec<_> = ["127.0.0.2:47443", "127.0.0.1:47443", "127.0.0.1:47080"]
        .iter()
        .filter_map(|a| listener(a))
        .collect();
    let mut s = session(&runtime, "reach").await;
    let defaults: Vec<String> = [
        "https://169.254.169.254/latest/meta-data/",
        "https://[::ffff:169.254.169.254]/",
        "https://127.0.0.2:47443/",
        "https://localhost:47443/",
        "http://127.0.0.1:47080/",
    ]
    .map(String::from)
    .to_vec();
    let report = fetch(&mut s, &defaults).await;
    for url in &defaults {
        assert!(
            report.contains(&format!("{url}=error:ErrorCode::HttpRequestDenied")),
            "{url} was not denied: {report}"
        );
    }
    assert_eq!(s.denied_requests(), 5, "{report}");
    for (port, seen) in &watched {
        assert_eq!(
            seen.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "a refused destination (port {port}) saw a connection"
        );
    }
    // The operator sets the internal endpoint: it is reached, plain http and all.
    let (port, seen) = listener("127.0.0.2:0").expect("a second loopback address");
    let internal = format!("http://127.0.0.2:{port}");
    let mut s = runtime
        .session(
            "reach",
            &support::config("https://auth.x.ai", "https://api.x.ai/v1").set("internal", &internal),
        )
        .await
        .unwrap();
    let report = fetch(&mut s, &[format!("{internal}/")]).await;
    assert!(report.ends_with("=status:200"), "{report}");
    assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 1);
}

/// The plugin's own default route names a route with an endpoint of its own: that
/// endpoint stays closed until the operator (or a request) enables the route.
#[tokio::test]
async fn a_plugins_default_route_does_not_open_its_endpoint() {
    let state = support::state_dir();
    let runtime = hostile_runtime(state.path(), Duration::from_secs(60));
    let origins = |r: &provider_runtime::ResolvedConfig| -> Vec<String> {
        r.allowed_origins.iter().map(|o| o.to_string()).collect()
    };
    let base = support::config("https://auth.x.ai", "https://api.x.ai/v1");
    let rail = "https://rail.hostile.example:443".to_owned();
    let r = runtime.resolve(&base).await.unwrap();
    assert!(!origins(&r).contains(&rail), "{:?}", origins(&r));
    let mut s = session(&runtime, "rail").await;
    let report = fetch(&mut s, &["https://rail.hostile.example/".into()]).await;
    assert!(
        report.ends_with("=error:ErrorCode::HttpRequestDenied"),
        "{report}"
    );
    for enabled in [
        base.clone().enable_route("rail"),
        base.clone().set("default-route", "rail"),
        base.clone().grant_default_route(),
    ] {
        let r = runtime.resolve(&enabled).await.unwrap();
        assert!(origins(&r).contains(&rail), "{enabled:?}");
    }
}

/// A lock wait ends with the call's budget: with another holder keeping the tenant's
/// credentials lock, a call with a 2 s budget fails with `call_timeout` and the process
/// exits then, not when the lock frees (nothing keeps a blocking thread waiting on it).
#[test]
fn a_lock_wait_ends_with_the_call_budget_and_so_does_the_process() {
    use provider_runtime::secrets::{SecretStore, StoreConfig};
    let state = support::state_dir();
    let store = SecretStore::open(StoreConfig::new(
        state.path(),
        KeySource::File(state.path().join("keyring").join("master.key")),
    ))
    .unwrap();
    let held = store
        .tenant("default")
        .unwrap()
        .lock("credentials", Duration::ZERO)
        .unwrap();
    // Freed long after the budget: a process waiting for it would take this long.
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(15));
        drop(held);
    });
    let began = Instant::now();
    let out = support::cli(state.path())
        .env_remove("PROVIDER_HOST_KEY")
        .args(["--call-timeout-secs", "2", "logout"])
        .output()
        .unwrap();
    let took = began.elapsed();
    let json = support::json_of(&out);
    assert_eq!(json["error"], "call_timeout", "{json}");
    assert!(
        took < Duration::from_secs(10),
        "the process exited after {took:?}"
    );
    release.join().unwrap();
}
