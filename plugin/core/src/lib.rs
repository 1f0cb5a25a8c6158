//! Sans-IO logic of the "Sign in with Grok" model provider.
//!
//! Everything that talks to the outside goes through the traits in [`io`], so this
//! crate builds natively for tests, benchmarks and fuzzers, and for `wasm32-wasip2`
//! inside the plugin component.
#![deny(missing_docs)]

pub mod error;
pub mod io;
pub mod types;

pub use error::ProviderError;
