//! Binding of the core provider logic to the WIT world.

mod clock;
mod convert;
mod store;
mod transport;

use std::cell::RefCell;

use grok_provider_core::{ChatStream as CoreChatStream, Provider, ProviderError, Settings};

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
            // Not in the `wasip2` crate: generated here from `wit/deps/config.wit`.
            "wasi:config/store@0.2.0-rc.1": generate,
        },
    });
}

type WasiProvider = Provider<WasiTransport, HostSecrets, WasiClock>;

thread_local! {
    /// This instance's settings, read by the first export call that succeeds in reading them.
    /// A host hands an instance its `wasi:config/store` when it creates it and never
    /// changes it (both hosts do so; the WIT says so): reading and checking it on every
    /// call took 7 % of `serve`'s CPU per request.
    static SETTINGS: std::cell::OnceCell<Settings> = const { std::cell::OnceCell::new() };
}

/// The settings of this instance: the manifest's defaults overridden by the host's
/// `wasi:config/store`. A failed read is not kept: the next call reads again.
fn settings() -> Result<Settings, ProviderError> {
    SETTINGS.with(|cell| {
        if let Some(s) = cell.get() {
            return Ok(s.clone());
        }
        let read = read_settings()?;
        Ok(cell.get_or_init(|| read).clone())
    })
}

fn read_settings() -> Result<Settings, ProviderError> {
    let pairs = bindings::wasi::config::store::get_all().map_err(|e| {
        use bindings::wasi::config::store::Error;
        let (Error::Upstream(m) | Error::Io(m)) = e;
        ProviderError::Storage(format!("the host's configuration could not be read: {m}"))
    })?;
    Settings::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

/// A provider over this instance's capabilities. Cheap: all state lives in the host's
/// secret store, so each export builds one.
fn provider() -> Result<WasiProvider, ProviderError> {
    let settings = settings()?;
    let transport = WasiTransport::new(settings.user_agent.clone());
    Ok(Provider::new(settings, transport, HostSecrets, WasiClock))
}

/// Run `f` on a fresh provider, converting both ends.
fn with<T, W>(
    f: impl FnOnce(&mut WasiProvider) -> Result<T, ProviderError>,
    out: impl FnOnce(T) -> W,
) -> Result<W, wit::ProviderError> {
    provider()
        .and_then(|mut p| f(&mut p))
        .map(out)
        .map_err(convert::error)
}

struct Component;

impl Guest for Component {
    type ChatStream = StreamState;

    fn manifest() -> wit::PluginManifest {
        convert::manifest(grok_provider_core::manifest())
    }

    fn status() -> Result<wit::ConnectionStatus, wit::ProviderError> {
        with(|p| p.status(), convert::status)
    }

    fn start() -> Result<wit::DevicePrompt, wit::ProviderError> {
        with(|p| p.start(), convert::prompt)
    }

    fn poll(pending_id: Option<String>) -> Result<wit::PollOutcome, wit::ProviderError> {
        with(|p| p.poll(pending_id.as_deref()), convert::poll_outcome)
    }

    fn logout() -> Result<wit::LogoutReport, wit::ProviderError> {
        with(|p| p.logout(), convert::logout)
    }

    fn refresh() -> Result<wit::ConnectionStatus, wit::ProviderError> {
        with(|p| p.refresh(), convert::status)
    }

    fn models(force: bool, route: Option<String>) -> Result<wit::ModelList, wit::ProviderError> {
        with(|p| p.models(force, route.as_deref()), convert::model_list)
    }

    fn set_api_key(key: String) -> Result<wit::ApiKeyInfo, wit::ProviderError> {
        with(|p| p.set_api_key(&key), convert::api_key_info)
    }

    fn api_key_status() -> Result<wit::ApiKeyInfo, wit::ProviderError> {
        with(|p| p.api_key_status(), convert::api_key_info)
    }

    fn delete_api_key() -> Result<wit::ApiKeyInfo, wit::ProviderError> {
        with(|p| p.delete_api_key(), convert::api_key_info)
    }

    fn usage(route: Option<String>) -> Result<wit::QuotaReport, wit::ProviderError> {
        with(|p| p.usage(route.as_deref()), convert::quota_report)
    }

    fn chat(request: wit::ChatRequest) -> Result<wit::ChatReply, wit::ProviderError> {
        let request = convert::chat_request(request);
        with(|p| p.chat(&request), convert::chat_reply)
    }
}

/// The state behind a `chat-stream` resource: the open response body and its decoder.
/// It owns the body, so it stays readable across export calls.
struct StreamState {
    inner: RefCell<CoreChatStream<WasiBody>>,
}

impl GuestChatStream for StreamState {
    fn open(request: wit::ChatRequest) -> Result<ChatStream, wit::ProviderError> {
        let request = convert::chat_request(request);
        with(
            |p| p.open_chat_stream(&request),
            |stream| {
                ChatStream::new(StreamState {
                    inner: RefCell::new(stream),
                })
            },
        )
    }

    fn next(&self) -> Result<Option<wit::ChatChunk>, wit::ProviderError> {
        let mut stream = self.inner.borrow_mut();
        stream
            .next_chunk()
            .map(|chunk| chunk.map(convert::chunk))
            .map_err(|e| {
                // A quota or rate limit met mid-stream: name the routes that could serve
                // instead (the stream itself cannot look at the store).
                let e = match (stream.route(), provider()) {
                    (Some(route), Ok(mut p)) if e.wants_alternatives() => p.in_route(route, e),
                    _ => e,
                };
                convert::error(e)
            })
    }
}

bindings::export!(Component with_types_in bindings);
