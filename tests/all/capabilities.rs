//! The runtime's capabilities behind traits, with an embedder's own implementations: a
//! secret backend, an outbound policy and an HTTP client. The sandbox's rules hold over
//! all of them (the allowlist is checked before the policy and the client see anything).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use provider_runtime::bindings::types::{PollOutcome, ProviderError};
use provider_runtime::outbound::{OutboundPolicy, OutboundRequest};
use provider_runtime::secrets::{SecretBackend, SecretLock, SecretStoreError, TenantBackend};
use provider_runtime::{ClientFuture, HostError, HttpClient, HttpError, Runtime, RuntimeOptions};

use crate::support;

/// Every tenant's values, by tenant id.
type Values = Arc<Mutex<HashMap<String, BTreeMap<String, Vec<u8>>>>>;

/// Secrets in memory: what an embedder with its own vault would write.
#[derive(Debug, Default)]
struct MemoryVault {
    values: Values,
    locks: Arc<Mutex<std::collections::HashSet<String>>>,
}

#[derive(Debug)]
struct MemoryTenant {
    id: String,
    values: Values,
    locks: Arc<Mutex<std::collections::HashSet<String>>>,
}

/// Released on drop.
struct Held(Arc<Mutex<std::collections::HashSet<String>>>, String);

impl Drop for Held {
    fn drop(&mut self) {
        self.0.lock().unwrap().remove(&self.1);
    }
}

impl SecretBackend for MemoryVault {
    fn tenant(&self, tenant_id: &str) -> Result<Arc<dyn TenantBackend>, SecretStoreError> {
        Ok(Arc::new(MemoryTenant {
            id: tenant_id.to_owned(),
            values: self.values.clone(),
            locks: self.locks.clone(),
        }))
    }
    fn derive_key(&self, purpose: &[u8]) -> [u8; 32] {
        let mut k = [7u8; 32];
        for (i, b) in purpose.iter().enumerate() {
            k[i % 32] ^= b;
        }
        k
    }
    fn kind(&self) -> &'static str {
        "memory"
    }
}

impl TenantBackend for MemoryTenant {
    fn tenant_id(&self) -> &str {
        &self.id
    }
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, SecretStoreError> {
        let values = self.values.lock().unwrap();
        Ok(values.get(&self.id).and_then(|t| t.get(key)).cloned())
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<(), SecretStoreError> {
        let mut values = self.values.lock().unwrap();
        values
            .entry(self.id.clone())
            .or_default()
            .insert(key.to_owned(), value.to_vec());
        Ok(())
    }
    fn delete(&self, key: &str) -> Result<(), SecretStoreError> {
        if let Some(t) = self.values.lock().unwrap().get_mut(&self.id) {
            t.remove(key);
        }
        Ok(())
    }
    fn list_keys(&self, prefix: &str) -> Result<Vec<String>, SecretStoreError> {
        let values = self.values.lock().unwrap();
        Ok(values
            .get(&self.id)
            .map(|t| {
                t.keys()
                    .filter(|k| k.starts_with(prefix))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }
    fn lock(&self, name: &str, timeout: Duration) -> Result<SecretLock, SecretStoreError> {
        let id = format!("{}/{name}", self.id);
        let until = std::time::Instant::now() + timeout;
        loop {
            if self.locks.lock().unwrap().insert(id.clone()) {
                return Ok(SecretLock::new(name, Held(self.locks.clone(), id)));
            }
            if std::time::Instant::now() >= until {
                return Err(SecretStoreError::LockTimeout(name.to_owned()));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// An HTTP client that answers every request itself and records what it was asked.
#[derive(Debug, Default)]
struct Recorder {
    seen: Mutex<Vec<String>>,
}

impl HttpClient for Recorder {
    fn send(&self, request: http::Request<Bytes>) -> ClientFuture {
        self.seen
            .lock()
            .unwrap()
            .push(format!("{} {}", request.method(), request.uri()));
        Box::pin(async {
            let body = Full::new(Bytes::from_static(b"{\"error\":\"maintenance\"}"))
                .map_err(|e: std::convert::Infallible| -> HttpError { match e {} })
                .boxed_unsync();
            Ok(http::Response::builder()
                .status(503)
                .header("content-type", "application/json")
                .body(body)
                .unwrap())
        })
    }
}

/// Refuses discovery documents (and records what it was asked).
struct NoDiscovery(Mutex<Vec<String>>);

impl OutboundPolicy for NoDiscovery {
    fn check(&self, request: &OutboundRequest<'_>) -> Result<(), String> {
        self.0.lock().unwrap().push(format!(
            "{} {} {}{}",
            request.tenant, request.method, request.origin, request.path
        ));
        if request.path.starts_with("/.well-known/") {
            Err("this embedder serves its own discovery".into())
        } else {
            Ok(())
        }
    }
}

#[tokio::test]
async fn an_embedders_vault_holds_the_login() {
    let (auth, api) = support::servers();
    let state = support::state_dir();
    let vault = Arc::new(MemoryVault::default());
    let mut options = RuntimeOptions::new(env!("PROVIDER_PLUGIN_COMPONENT"), state.path());
    options.secrets = Some(vault.clone());
    let runtime = Runtime::new(options).unwrap();
    let config = support::config(auth.issuer(), &api.base_url()).set("client-id", auth.client_id());
    let mut session = runtime.session("vaulted", &config).await.unwrap();
    let prompt = session.start().await.unwrap();
    auth.approve(&prompt.user_code, 2, "vaulted").unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let connected = loop {
        match session.poll(Some(&prompt.pending_id)).await.unwrap() {
            PollOutcome::Connected(s) => break s,
            PollOutcome::Pending(_) => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    };
    assert_eq!(connected.tier, Some(2));
    let keys: Vec<String> = vault.values.lock().unwrap()["vaulted"]
        .keys()
        .cloned()
        .collect();
    assert!(keys.iter().any(|k| k == "credentials"), "{keys:?}");
    // Nothing of the login went to the state directory's own store.
    assert!(
        !support::files_below(state.path())
            .iter()
            .any(|f| f.to_string_lossy().contains("vaulted")),
        "{:?}",
        support::files_below(state.path())
    );
}

#[tokio::test]
async fn an_embedders_client_and_policy_see_only_what_the_allowlist_let_through() {
    let state = support::state_dir();
    let recorder = Arc::new(Recorder::default());
    let mut options = RuntimeOptions::new(env!("PROVIDER_PLUGIN_COMPONENT"), state.path());
    options.key = provider_runtime::secrets::KeySource::File(state.path().join("key"));
    options.http_client = Some(recorder.clone());
    let runtime = Runtime::new(options).unwrap();

    // Discovery (a GET) reaches the embedder's client, which answers 503 itself.
    let config = support::config("https://auth.example", "https://api.example/v1");
    let mut session = runtime.session("t", &config).await.unwrap();
    let err = session.start().await.unwrap_err();
    assert!(
        matches!(
            err,
            HostError::Provider(ProviderError::UpstreamUnavailable(_) | ProviderError::Network(_))
        ),
        "{err:?}"
    );
    let seen = recorder.seen.lock().unwrap().clone();
    assert!(
        !seen.is_empty()
            && seen
                .iter()
                .all(|s| s.starts_with("GET https://auth.example/")),
        "{seen:?}"
    );

    // The policy refuses discovery: the plugin sees a sandbox refusal, the client nothing.
    let policy = Arc::new(NoDiscovery(Mutex::default()));
    let config = config.with_outbound_policy(policy.clone());
    let mut session = runtime.session("t", &config).await.unwrap();
    let before = recorder.seen.lock().unwrap().len();
    let err = session.start().await.unwrap_err();
    assert_eq!(err.code(), "denied_by_sandbox", "{err:?}");
    let asked = policy.0.lock().unwrap().clone();
    assert!(
        !asked.is_empty()
            && asked
                .iter()
                .all(|a| a.starts_with("t GET https://auth.example:443/.well-known/")),
        "{asked:?}"
    );
    assert_eq!(
        recorder.seen.lock().unwrap().len(),
        before,
        "a refused request went out"
    );

    // Outside the allowlist, neither the policy nor the client hears of the request.
    let narrowed = support::config("https://auth.example", "https://api.example/v1")
        .with_allowed_origins(&["https://api.example"])
        .unwrap()
        .with_outbound_policy(policy.clone());
    let mut session = runtime.session("t", &narrowed).await.unwrap();
    let (asked, sent) = (
        policy.0.lock().unwrap().len(),
        recorder.seen.lock().unwrap().len(),
    );
    let err = session.start().await.unwrap_err();
    assert_eq!(err.code(), "denied_by_sandbox", "{err:?}");
    assert_eq!(policy.0.lock().unwrap().len(), asked);
    assert_eq!(recorder.seen.lock().unwrap().len(), sent);
}

/// `plugin trust PATH` pins a component's grant to its digest: a manifest asking for the
/// host's variables cannot be trusted at all, a trusted one runs, and a different
/// component under the same id is refused with what it asks beyond the grant.
#[test]
fn plugin_trust_pins_the_grant_to_the_component_digest() {
    use std::os::unix::fs::PermissionsExt;
    let state = support::state_dir();
    let run =
        |args: &[&str]| support::json_of(&support::cli(state.path()).args(args).output().unwrap());
    let hostile = env!("HOSTILE_GUEST_COMPONENT");
    for extra in [&[][..], &["--allow-env", "PROVIDER_HOST_KEY"][..]] {
        let mut args = vec!["plugin", "trust", hostile];
        args.extend_from_slice(extra);
        let refused = run(&args);
        assert_eq!(refused["error"], "config_error", "{refused}");
        assert!(
            refused["message"]
                .as_str()
                .unwrap()
                .contains("PROVIDER_HOST_KEY"),
            "{refused}"
        );
    }
    assert!(!state.path().join("trust").join("hostile.json").exists());

    let acme = env!("ACME_GUEST_COMPONENT");
    let trusted = run(&["plugin", "trust", acme]);
    assert_eq!(trusted["ok"], true, "{trusted}");
    assert_eq!(trusted["plugin"], "acme");
    let record = state.path().join("trust").join("acme.json");
    assert_eq!(
        std::fs::metadata(&record).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let status = run(&["--plugin", acme, "status"]);
    assert_eq!(status["ok"], true, "{status}");

    // The record names another digest (the component changed since it was trusted).
    let mut stored: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    stored["sha256"] = "ab".repeat(32).into();
    stored["origins"] = serde_json::json!([]);
    std::fs::write(&record, serde_json::to_vec(&stored).unwrap()).unwrap();
    let refused = run(&["--plugin", acme, "status"]);
    assert_eq!(refused["error"], "config_error", "{refused}");
    let message = refused["message"].as_str().unwrap();
    assert!(
        message.contains("not the component trusted as acme"),
        "{message}"
    );
    assert!(message.contains("+origin https://"), "{message}");
    assert!(message.contains("plugin trust"), "{message}");
    // Trusting it again approves it.
    assert_eq!(run(&["plugin", "trust", acme])["ok"], true);
    assert_eq!(run(&["--plugin", acme, "status"])["ok"], true);
}
