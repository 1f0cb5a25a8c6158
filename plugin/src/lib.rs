//! The xAI "Sign in with Grok" model-provider plugin.
//!
//! All protocol logic lives in `grok-provider-core` (plain Rust, tested natively). This
//! crate only binds it to the WIT world `model-provider:plugin/provider-plugin`
//! (`wit/provider.wit`): the exports call into the core, and the core's effect traits are
//! implemented over the host's imports (`secrets`, `wasi:config/store`) and WASI 0.2
//! (`wasi:http`, clocks, random). Built natively the crate is empty; `host/build.rs` builds it for
//! `wasm32-wasip2`, where cargo emits the component directly.

#[cfg(target_arch = "wasm32")]
mod component;
