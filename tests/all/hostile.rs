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
    assert_eq!(hostile["default_model_id"], "none", "{hostile}");
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

/// A flood of stderr with escapes and fake host output: capped per call, cleaned, and
/// marked as the plugin's; stdout stays the host's one JSON object.
#[test]
fn plugin_stderr_is_capped_cleaned_and_marked() {
    let state = support::state_dir();
    let out = support::cli(state.path())
        .args([
            "--plugin",
            env!("HOSTILE_GUEST_COMPONENT"),
            "chat",
            "--json",
            "--model",
            "stderr-flood",
            "x",
        ])
        .output()
        .unwrap();
    let json = support::json_of(&out);
    assert_eq!(json["error"], "invalid_input", "{json}");
    assert!(
        out.stderr.len() < 256 * 1024,
        "{} bytes of stderr",
        out.stderr.len()
    );
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{7}'),
        "escapes reached the terminal"
    );
    assert!(
        text.contains("plugin_stderr"),
        "{}",
        &text[..text.len().min(500)]
    );
    for line in text.lines() {
        assert!(
            !line.starts_with('{'),
            "a plugin line passes for host output: {line}"
        );
    }
}
