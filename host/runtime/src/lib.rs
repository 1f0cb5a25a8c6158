//! A sandboxed wasmtime host for model-provider plugin components
//! (`wit/provider.wit`, world `model-provider:plugin/provider-plugin`).
//!
//! Data flows one way: the CLI (or an embedder) opens a [`runtime::Session`] for a tenant,
//! calls a component export, and the component reaches the outside only through the
//! capabilities granted here:
//! - [`http_sandbox`]: outgoing `wasi:http` limited to an origin allowlist, with caps on
//!   timeouts and response size, sent over a keep-alive connection pool;
//! - [`secrets`]: tenant-scoped, encrypted, atomically written secret storage with a
//!   cross-process lock;
//! - [`limits`]: memory and CPU (epoch) limits per call;
//! - [`config`]: the operator's overrides of the plugin's manifest, and the allowlist
//!   derived from both; [`outbound`]: an embedder's further say over each request;
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
#![deny(missing_docs)]

pub mod bindings;
mod capabilities;
mod code;
mod compile_cache;
pub mod config;
mod engine;
pub mod error;
mod guest_stderr;
mod http_handler;
mod http_pool;
pub mod http_sandbox;
pub mod limits;
pub mod outbound;
mod pool;
pub mod runtime;
/// The secret backend and its default, the encrypted file store (crate `provider-secrets`).
pub use provider_secrets as secrets;

pub use code::{ErrorCode, UnknownErrorCode};
pub use config::{HostConfig, Origin, ResolvedConfig};
pub use error::HostError;
pub use http_pool::{ClientBody, ClientFuture, HttpClient, default_http_client};
pub use pool::{Lease, PoolOptions, SessionPool};
pub use runtime::{PluginSource, Runtime, RuntimeOptions, Session};
/// wasi-http's error codes, which an [`HttpClient`] answers with.
pub use wasmtime_wasi_http::Error as HttpError;
