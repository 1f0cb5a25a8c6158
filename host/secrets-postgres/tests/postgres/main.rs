//! The PostgreSQL backend against real servers: each test starts a throwaway cluster of its
//! own (see `support`) and stops it when done, failing or not.
//!
//! - `contract`: the backend contract suite shared with the file store;
//! - `server`: what only a database shows: locks across processes and killed holders, a
//!   restart mid-run, concurrent writers on several connections, the schema, what the
//!   database holds, configuration;
//! - `tls`: TLS to the database, verified.

mod contract;
mod server;
mod support;
mod tls;
