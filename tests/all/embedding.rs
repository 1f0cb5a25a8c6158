//! The embedding guide's examples (`host/runtime/examples/embed.rs`, and `own_store.rs`:
//! an embedder's own wasmtime store), run as they are against the reference servers: what
//! the docs show compiles and works.

use std::sync::Arc;

use provider_runtime::RuntimeOptions;
use provider_runtime::secrets::{KeySource, SecretStore, StoreConfig};

#[path = "../../host/runtime/examples/embed.rs"]
mod example;

#[path = "../../host/runtime/examples/own_store.rs"]
mod own_store;

use crate::support;

#[tokio::test]
async fn the_embedding_example_logs_in_chats_and_streams() {
    let (auth, api) = support::servers();
    let state = support::state_dir();
    let mut options = RuntimeOptions::new(env!("PROVIDER_PLUGIN_COMPONENT"), state.path());
    options.key = KeySource::File(state.path().join("keyring").join("master.key"));
    let config = support::config(auth.issuer(), &api.base_url())
        .set("client-id", auth.client_id())
        .set("subscription-base", api.subscription_base());
    let approver = &auth;
    let (whole, streamed) = example::embed(options, config, "alice", move |prompt| {
        approver.approve(&prompt.user_code, 3, "alice").unwrap();
    })
    .await
    .unwrap();
    assert!(!whole.is_empty());
    assert_eq!(whole, streamed);
}

/// An embedder's own store data and linker, with the host's capabilities linked by
/// `capabilities::add_to_linker`: the plugin logs in (its tokens go through `secrets`,
/// its requests through the sandbox to the allowed origins) and chats; the tokens it
/// stored are there for the runtime's own sessions too.
#[tokio::test]
async fn the_own_store_example_logs_in_and_chats() {
    let (auth, api) = support::servers();
    let state = support::state_dir();
    let key = KeySource::File(state.path().join("keyring").join("master.key"));
    let secrets = SecretStore::open(StoreConfig::new(state.path(), key.clone())).unwrap();
    let config = support::config(auth.issuer(), &api.base_url())
        .set("client-id", auth.client_id())
        .set("subscription-base", api.subscription_base());
    let approver = &auth;
    let reply = own_store::own_store(
        env!("PROVIDER_PLUGIN_COMPONENT").as_ref(),
        Arc::new(secrets),
        config.clone(),
        "bob",
        move |prompt| {
            approver.approve(&prompt.user_code, 3, "bob").unwrap();
        },
    )
    .await
    .unwrap();
    assert!(!reply.is_empty());

    let mut options = RuntimeOptions::new(env!("PROVIDER_PLUGIN_COMPONENT"), state.path());
    options.key = key;
    let runtime = provider_runtime::Runtime::new(options).unwrap();
    let mut session = runtime
        .session("bob", &config.grant_default_route())
        .await
        .unwrap();
    assert!(session.status().await.unwrap().connected);
}
