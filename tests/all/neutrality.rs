//! The host knows no vendor: a made-up second vendor's plugin (`tests/guests/acme`) gets
//! its own configuration and allowlist, derived from its own manifest, and nothing of xAI's.

use provider_reference::{ApiConfig, ApiServer, AuthConfig, AuthServer};
use provider_runtime::bindings::types::ChatRequest;
use provider_runtime::bindings::types::{Message, ProviderError, Role};
use provider_runtime::secrets::KeySource;
use provider_runtime::{HostConfig, HostError, Runtime, RuntimeOptions};

use crate::support;

fn acme_runtime(state: &std::path::Path) -> Runtime {
    let mut options = RuntimeOptions::new(env!("ACME_GUEST_COMPONENT"), state);
    options.key = KeySource::File(state.join("keyring").join("master.key"));
    Runtime::new(options).expect("runtime")
}

/// What the plugin reports it was handed (`status().tier_name`).
async fn handed(runtime: &Runtime, config: &HostConfig) -> String {
    let mut session = runtime.session("t", config).await.unwrap();
    session.status().await.unwrap().tier_name.unwrap()
}

async fn verdict(runtime: &Runtime, config: &HostConfig, url: &str) -> String {
    let mut session = runtime.session("t", config).await.unwrap();
    let request = ChatRequest::new("acme/one", vec![Message::text(Role::User, url)]);
    match session.chat(&request).await {
        Err(HostError::Provider(ProviderError::InvalidInput(m))) => m,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_second_vendor_gets_its_own_configuration_and_allowlist() {
    let state = support::state_dir();
    let runtime = acme_runtime(state.path());
    let manifest = runtime.manifest().await.unwrap();
    assert_eq!(manifest.id, "acme");

    // Defaults are not handed over; the allowlist is Acme's endpoint only.
    let config = HostConfig::new().unwrap();
    let resolved = runtime.resolve(&config).await.unwrap();
    let origins: Vec<String> = resolved
        .allowed_origins
        .iter()
        .map(|o| o.to_string())
        .collect();
    assert_eq!(origins, ["https://api.acme.example:443"]);
    assert_eq!(handed(&runtime, &config).await, "");

    // Its own keys reach it, and nothing else does.
    let config = HostConfig::new()
        .unwrap()
        .set("acme-region", "us")
        .with_user_agent("embedder/1");
    assert_eq!(
        handed(&runtime, &config).await,
        "acme-region=us;user-agent=embedder/1"
    );
    // xAI's keys are not Acme's: refused by name, before any instance runs.
    let err = runtime
        .session(
            "t",
            &HostConfig::new()
                .unwrap()
                .set("api-base", "https://api.x.ai/v1"),
        )
        .await
        .err()
        .unwrap();
    assert_eq!(err.code(), "config_error");
    assert!(err.to_string().contains("not a setting of acme"), "{err}");

    // The sandbox lets it reach its endpoint and nothing of xAI.
    assert_eq!(
        verdict(&runtime, &config, "https://api.x.ai/v1/models").await,
        "denied"
    );
    assert_eq!(
        verdict(&runtime, &config, "https://auth.x.ai/oauth2/token").await,
        "denied"
    );
}

#[tokio::test]
async fn the_cli_takes_the_second_vendors_variables_from_its_manifest() {
    let auth = AuthServer::start_background(AuthConfig::default()).unwrap();
    let api = ApiServer::start_background(ApiConfig::for_auth(&auth)).unwrap();
    let state = support::state_dir();
    let base = api.base_url();
    let run = |args: &[&str]| {
        let out = support::cli(state.path())
            .args(["--plugin", env!("ACME_GUEST_COMPONENT")])
            .args(args)
            .env("ACME_BASE", &base)
            .env("ACME_REGION", "us")
            // xAI's variables mean nothing to this plugin.
            .env("XAI_API_BASE", "http://127.0.0.1:1/v1")
            .env("XAI_OAUTH_ISSUER", "http://auth.example.com")
            .output()
            .unwrap();
        support::json_of(&out)
    };
    let status = run(&["status"]);
    assert_eq!(status["ok"], true, "{status}");
    assert_eq!(
        status["tier_name"],
        format!(
            "acme-base={base};acme-region=us;user-agent=provider-host/{}",
            env!("CARGO_PKG_VERSION")
        )
    );
    // ACME_BASE's origin is allowed (the reference API answers, refusing the missing key)...
    let models = run(&["models"]);
    let id = models["models"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        id == "acme/status-401" || id == "acme/status-403",
        "{models}"
    );
    // ... and a bad value of its variable is refused naming the variable.
    let out = support::cli(state.path())
        .args(["--plugin", env!("ACME_GUEST_COMPONENT"), "status"])
        .env("ACME_BASE", "http://api.acme.example")
        .output()
        .unwrap();
    let json = support::json_of(&out);
    assert_eq!(json["error"], "config_error", "{json}");
    assert!(
        json["message"].as_str().unwrap().contains("ACME_BASE"),
        "{json}"
    );
}
