//! The host's integration tests: one binary, modules per area.
//!
//! The plugin component is built by `host/build.rs`; these tests load it the way the CLI
//! does and talk to it only through the WIT contract.

mod anthropic;
mod capabilities;
mod cli;
mod conformance;
mod doctor;
mod embedding;
mod fleet;
mod foundation;
mod frameworks;
mod hostile;
mod hostile_servers;
mod interop;
mod memory_bounds;
mod neutrality;
mod peers;
mod rotation;
mod routes;
mod serve;
mod served;
mod sessions;
mod store_hardening;
mod support;
