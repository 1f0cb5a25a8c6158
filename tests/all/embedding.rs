//! The embedding guide's example (`host/runtime/examples/embed.rs`), run as it is against
//! the reference servers: what the README shows compiles and works.

use provider_runtime::RuntimeOptions;
use provider_runtime::secrets::KeySource;

#[path = "../../host/runtime/examples/embed.rs"]
mod example;

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
