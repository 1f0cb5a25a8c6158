//! Binding of the core provider logic to the WIT world.

mod clock;
mod convert;
mod store;
mod transport;

use std::cell::RefCell;

use grok_provider_core::{ChatStream as CoreChatStream, Provider};

use self::bindings::exports::model_provider::plugin::model_provider::{
    ChatStream, Guest, GuestChatStream,
};
use self::bindings::model_provider::plugin::types as wit;
use self::clock::WasiClock;
use self::store::HostSecrets;
use self::transport::{WasiBody, WasiTransport};

mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "provider-plugin",
        // The world's standard WASI imports are the `wasip2` crate's bindings (generated
        // from the same WIT), which the transport and clock use.
        with: {
            "wasi:http/types@0.2.12": wasip2::http::types,
            "wasi:http/outgoing-handler@0.2.12": wasip2::http::outgoing_handler,
            "wasi:io/poll@0.2.12": wasip2::io::poll,
            "wasi:io/error@0.2.12": wasip2::io::error,
            "wasi:io/streams@0.2.12": wasip2::io::streams,
            "wasi:clocks/monotonic-clock@0.2.12": wasip2::clocks::monotonic_clock,
            "wasi:clocks/wall-clock@0.2.12": wasip2::clocks::wall_clock,
            "wasi:random/random@0.2.12": wasip2::random::random,
        },
    });
}

type WasiProvider = Provider<WasiTransport, HostSecrets, WasiClock>;

/// A provider over this instance's capabilities. Cheap: all state lives in the host's
/// secret store, so each export builds one.
fn provider() -> WasiProvider {
    let config = convert::config_from_host(bindings::model_provider::plugin::config::get());
    let transport = WasiTransport::new(config.user_agent.clone());
    Provider::new(config, transport, HostSecrets, WasiClock)
}

struct Component;

impl Guest for Component {
    type ChatStream = StreamState;

    fn status() -> Result<wit::ConnectionStatus, wit::ProviderError> {
        provider()
            .status()
            .map(convert::status)
            .map_err(convert::error)
    }

    fn start() -> Result<wit::DevicePrompt, wit::ProviderError> {
        provider()
            .start()
            .map(convert::prompt)
            .map_err(convert::error)
    }

    fn poll(pending_id: Option<String>) -> Result<wit::PollOutcome, wit::ProviderError> {
        provider()
            .poll(pending_id.as_deref())
            .map(convert::poll_outcome)
            .map_err(convert::error)
    }

    fn logout() -> Result<wit::LogoutReport, wit::ProviderError> {
        provider()
            .logout()
            .map(convert::logout)
            .map_err(convert::error)
    }

    fn refresh() -> Result<wit::ConnectionStatus, wit::ProviderError> {
        provider()
            .refresh()
            .map(convert::status)
            .map_err(convert::error)
    }

    fn models(force: bool) -> Result<wit::ModelList, wit::ProviderError> {
        provider()
            .models(force)
            .map(convert::model_list)
            .map_err(convert::error)
    }

    fn chat(request: wit::ChatRequest) -> Result<wit::ChatReply, wit::ProviderError> {
        provider()
            .chat(&convert::chat_request(request))
            .map(convert::chat_reply)
            .map_err(convert::error)
    }
}

/// The state behind a `chat-stream` resource: the open response body and its decoder.
/// It owns the body, so it stays readable across export calls.
struct StreamState {
    inner: RefCell<CoreChatStream<WasiBody>>,
}

impl GuestChatStream for StreamState {
    fn open(request: wit::ChatRequest) -> Result<ChatStream, wit::ProviderError> {
        let stream = provider()
            .open_chat_stream(&convert::chat_request(request))
            .map_err(convert::error)?;
        Ok(ChatStream::new(StreamState {
            inner: RefCell::new(stream),
        }))
    }

    fn next(&self) -> Result<Option<wit::ChatChunk>, wit::ProviderError> {
        self.inner
            .borrow_mut()
            .next_chunk()
            .map(|chunk| chunk.map(convert::chunk))
            .map_err(convert::error)
    }
}

bindings::export!(Component with_types_in bindings);
