//! The component loads and instantiates, answers `status` on a fresh store, and the host's
//! capabilities hold: sandbox denial, tenant isolation, encryption at rest.

use provider_runtime::HostError;
use provider_runtime::bindings::types::ProviderError;

use crate::support;

#[tokio::test]
async fn fresh_state_is_not_connected() {
    let state = support::state_dir();
    let runtime = support::runtime(state.path());
    let mut session = runtime
        .session(
            "alice",
            &support::config("https://auth.x.ai", "https://api.x.ai/v1"),
        )
        .await
        .unwrap();
    let status = session.status().await.unwrap();
    assert!(!status.connected);
    assert_eq!(status.tier, None);
    assert!(status.models.is_empty());
    assert_eq!(session.denied_requests(), 0);
}

#[tokio::test]
async fn request_outside_the_allowlist_is_denied_by_the_sandbox() {
    let state = support::state_dir();
    let runtime = support::runtime(state.path());
    // The plugin is told to use a loopback issuer, but the host allows only api.x.ai.
    let config = support::config("http://127.0.0.1:9", "https://api.x.ai/v1")
        .with_allowed_origins(&["https://api.x.ai"])
        .unwrap();
    let mut session = runtime.session("alice", &config).await.unwrap();
    for _ in 0..3 {
        let err = session.start().await.unwrap_err();
        assert!(
            matches!(err, HostError::Provider(ProviderError::DeniedBySandbox(_))),
            "{err:?}"
        );
        assert_eq!(err.code(), "denied_by_sandbox");
    }
    assert_eq!(session.denied_requests(), 3);
    // The session survives and still answers.
    assert!(!session.status().await.unwrap().connected);
}

#[tokio::test]
async fn a_component_of_another_world_is_refused_with_a_clear_error() {
    let state = support::state_dir();
    let bogus = state.path().join("not-a-component.wasm");
    std::fs::write(&bogus, b"\0asm\x01\0\0\0").unwrap();
    let mut options = provider_runtime::RuntimeOptions::new(&bogus, state.path());
    options.key = provider_runtime::secrets::KeySource::File(state.path().join("k"));
    let err = provider_runtime::Runtime::new(options)
        .err()
        .expect("must fail");
    assert_eq!(err.code(), "plugin_error", "{err}");
}

#[tokio::test]
async fn the_compile_cache_is_keyed_by_the_component_file_and_follows_its_changes() {
    use sha2::{Digest, Sha256};
    let state = support::state_dir();
    let plugin = state.path().join("plugin.wasm");
    let digests_of = |dir: &std::path::Path| -> Vec<Vec<u8>> {
        let mut d: Vec<Vec<u8>> = std::fs::read_dir(dir.join("digests"))
            .map(|rd| {
                // Each memo is the digest followed by its 32-byte MAC.
                rd.map(|e| std::fs::read(e.unwrap().path()).unwrap()[..32].to_vec())
                    .collect()
            })
            .unwrap_or_default();
        d.sort();
        d
    };
    let artifacts = |dir: &std::path::Path| {
        std::fs::read_dir(dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".cwasm")
            })
            .count()
    };
    let open = |cache: &std::path::Path| {
        let mut options = provider_runtime::RuntimeOptions::new(&plugin, state.path());
        options.key = provider_runtime::secrets::KeySource::File(state.path().join("k"));
        options.allocation = provider_runtime::limits::InstanceAllocation::OnDemand;
        options.compile_cache = Some(cache.to_path_buf());
        provider_runtime::Runtime::new(options)
    };

    // Two caches, so that each load goes through its own cache rather than the process's
    // registry of components already loaded.
    let (first, second) = (state.path().join("cache-1"), state.path().join("cache-2"));
    let ours = std::fs::read(env!("PROVIDER_PLUGIN_COMPONENT")).unwrap();
    std::fs::write(&plugin, &ours).unwrap();
    open(&first).unwrap();
    assert_eq!(digests_of(&first), vec![Sha256::digest(&ours).to_vec()]);
    assert_eq!(artifacts(&first), 1);

    // Rewritten in place with other bytes: a new stat key, so the file is read and hashed
    // again, never mistaken for the old component.
    let other = std::fs::read(env!("HOSTILE_GUEST_COMPONENT")).unwrap();
    std::fs::write(&plugin, &other).unwrap();
    let _ = open(&second);
    assert_eq!(digests_of(&second), vec![Sha256::digest(&other).to_vec()]);
    let _ = open(&first);
    let mut both = vec![
        Sha256::digest(&ours).to_vec(),
        Sha256::digest(&other).to_vec(),
    ];
    both.sort();
    assert_eq!(digests_of(&first), both);
}

/// The manifest is asked of one instance per component and remembered beside the compiled
/// artifact: the next runtime reads it there instead of instantiating the plugin (the
/// file is not written again), and a file that no longer verifies is asked again and
/// replaced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_manifest_is_asked_once_per_component_and_kept_in_the_compile_cache() {
    use std::os::unix::fs::MetadataExt;
    let state = support::state_dir();
    let cache = state.path().join("cache");
    let open = || {
        let mut options =
            provider_runtime::RuntimeOptions::new(env!("PROVIDER_PLUGIN_COMPONENT"), state.path());
        options.key = provider_runtime::secrets::KeySource::File(state.path().join("k"));
        options.allocation = provider_runtime::limits::InstanceAllocation::OnDemand;
        options.compile_cache = Some(cache.clone());
        provider_runtime::Runtime::new(options).unwrap()
    };
    let kept = || {
        let files: Vec<_> = std::fs::read_dir(&cache)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "manifest"))
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        files[0].clone()
    };
    let asked = open().manifest().await.unwrap();
    let file = kept();
    let written = std::fs::metadata(&file).unwrap().ino();

    let read = open().manifest().await.unwrap();
    assert_eq!(format!("{read:?}"), format!("{asked:?}"));
    assert_eq!(
        std::fs::metadata(&file).unwrap().ino(),
        written,
        "asked again"
    );

    let mut bytes = std::fs::read(&file).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&file, &bytes).unwrap();
    let again = open().manifest().await.unwrap();
    assert_eq!(format!("{again:?}"), format!("{asked:?}"));
    assert_ne!(
        std::fs::metadata(&file).unwrap().ino(),
        written,
        "not replaced"
    );
}
