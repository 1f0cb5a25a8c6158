//! A sandboxed wasmtime host for model-provider plugin components
//! (`wit/provider.wit`, world `model-provider:plugin/provider-plugin`).
//!
//! Data flows one way: the CLI (or an embedder) opens a [`Session`] of a [`Runtime`] for a
//! tenant, calls a component export, and the component reaches the outside only through
//! the capabilities granted here (linked by [`capabilities::add_to_linker`], which an
//! embedder with its own wasmtime store can call too):
//! - [`http_sandbox`]: outgoing `wasi:http` limited to an origin allowlist, with caps on
//!   timeouts and response size, sent over a keep-alive connection pool;
//! - [`secrets`]: tenant-scoped, encrypted, atomically written secret storage with a
//!   cross-process lock;
//! - [`limits`]: memory and CPU (epoch) limits per call;
//! - [`HostConfig`]: the operator's overrides of the plugin's manifest, and the allowlist
//!   derived from both ([`config`]: origins and the environment's rules); [`outbound`]: an
//!   embedder's further say over each request;
//! - [`HttpClient`]: who sends what the sandbox lets through (default: a keep-alive pool,
//!   [`default_http_client`], which an embedder may wrap to observe requests);
//! - [`secrets::SecretBackend`]: where tenants' secrets live (default: encrypted files);
//! - [`SessionPool`]: sessions reused per tenant for servers, cancel-safe, with a bounded
//!   wait and idle eviction.
//!
//! # Embedding
//!
//! A runtime per process, a session per tenant, and the exports as async methods (from
//! `examples/embed.rs`, which the integration tests run against the reference servers):
//!
//! ```no_run
#![doc = include_str!("../examples/embed.rs")]
//! ```
//!
//! # Embedding in a wasmtime store of your own
//!
//! An embedder with its own engine and store data links the same capabilities into its own
//! [`Linker`](wasmtime::component::Linker), as `wasmtime-wasi-http` does for `wasi:http`:
//! its store data holds a [`capabilities::ProviderCtx`] and a
//! [`http_sandbox::SandboxHooks`] and implements [`capabilities::ProviderView`] (beside
//! wasmtime-wasi's `WasiView` and wasmtime-wasi-http's `WasiHttpView`), and
//! [`capabilities::add_to_linker`] links every import of the world. [`Runtime`] is built
//! on the same functions. From `examples/own_store.rs`, which the integration tests run
//! too:
//!
//! ```no_run
#![doc = include_str!("../examples/own_store.rs")]
//! ```
#![deny(missing_docs)]

pub mod bindings;
pub mod capabilities;
mod code;
mod compile_cache;
pub mod config;
mod engine;
mod error;
mod guest_stderr;
mod host_config;
mod http_handler;
mod http_pool;
pub mod http_sandbox;
pub mod limits;
pub mod outbound;
mod pool;
mod runtime;
/// The secret backend and its default, the encrypted file store (crate `provider-secrets`).
pub use provider_secrets as secrets;

pub use code::{ErrorCode, UnknownErrorCode};
pub use error::HostError;
pub use host_config::{HostConfig, ResolvedConfig};
pub use http_pool::{ClientBody, ClientFuture, ConnectionOptions, HttpClient, default_http_client};
pub use pool::{Lease, PoolOptions, SessionPool};
pub use runtime::{ChatStreamHandle, PluginSource, Runtime, RuntimeOptions, Session};
/// The wasmtime this crate is built on: an embedder that links [`capabilities`] into a
/// linker of its own must use this very version (and the two below).
pub use wasmtime;
/// wasmtime's WASI 0.2 implementation, as linked by [`capabilities::add_to_linker`].
pub use wasmtime_wasi;
/// wasmtime's `wasi:http` implementation, whose hooks the sandbox is.
pub use wasmtime_wasi_http;
/// wasi-http's error codes, which an [`HttpClient`] answers with.
pub use wasmtime_wasi_http::Error as HttpError;
